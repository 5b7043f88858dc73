"""Checks before the build (tools, disk, environment, manifests, lockfiles, committed
secrets) and after it (required and forbidden files, sizes, a build report): each a
declarative, tested feature that says what was expected, what was found and how to fix
it (conveyor.model.CheckResult)."""
