"""Helpers shared by the report readers' tests."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path


def write(path: Path, text: str) -> Path:
    """Write `text`, dedented, at `path` (its directories made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def tool_env() -> dict[str, str]:
    """The environment for a real tool run: no coverage of this test session leaking into
    the child (pytest-cov's subprocess hooks), no third-party pytest plugins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "COVERAGE_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env
