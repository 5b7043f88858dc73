"""Conveyor: a build and CI/CD orchestrator."""

__version__ = "0.1.0"
