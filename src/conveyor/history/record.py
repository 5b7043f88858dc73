"""A recorded run, as plain data (no database imports: `conveyor run` loads this)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DB_ENV = "CONVEYOR_DB_URL"

NO_HISTORY = "no-history"
"""A file in a run directory: the run asked not to be recorded (`--no-history`)."""


@dataclass
class RunRecord:
    """One run as recorded: the run row and its job rows (column name -> value)."""

    run: dict[str, Any]
    jobs: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    """Test cases from the jobs' JUnit reports: job, suite, name, status, duration,
    message."""
    gates: list[dict[str, Any]] = field(default_factory=list)
    """The run's gates as evaluated: scope (a job, or 'pipeline'), gate, level, passed,
    measured, threshold, detail."""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    """Files the jobs produced or restored: job, path, sha256, size, artifact (its type
    when the job declares it among its `artifacts:`)."""


def database_url(root: str, configured: str | None, environ: Mapping[str, str]) -> str:
    """$CONVEYOR_DB_URL, else the pipeline's `history.url`, else SQLite in the workspace."""
    url = environ.get(DB_ENV) or configured
    if url:
        return url
    return "sqlite:///" + os.path.join(root, ".conveyor", "history.db")


def explicit_url(configured: str | None, environ: Mapping[str, str]) -> bool:
    """Whether a database was named (a shared history: each run records itself)."""
    return bool(environ.get(DB_ENV) or configured)
