"""Where a run's history goes: the database URL, and the marker of a run kept out of it.
Every `conveyor run` asks this, so it stays light (the typed rows of `record`, dataclasses
whose creation costs milliseconds, are loaded only by what reads or writes the history)."""

from __future__ import annotations

import os
from collections.abc import Mapping

DB_ENV = "CONVEYOR_DB_URL"

NO_HISTORY = "no-history"
"""A file in a run directory: the run asked not to be recorded (`--no-history`)."""


def database_url(root: str, configured: str | None, environ: Mapping[str, str]) -> str:
    """$CONVEYOR_DB_URL, else the pipeline's `history.url`, else SQLite in the workspace."""
    url = environ.get(DB_ENV) or configured
    if url:
        return url
    return "sqlite:///" + os.path.join(root, ".conveyor", "history.db")


def explicit_url(configured: str | None, environ: Mapping[str, str]) -> bool:
    """Whether a database was named (a shared history: each run records itself)."""
    return bool(environ.get(DB_ENV) or configured)
