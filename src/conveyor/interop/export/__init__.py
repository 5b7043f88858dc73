"""conveyor.yml written as another CI system's file: `github` (a workflow)."""
