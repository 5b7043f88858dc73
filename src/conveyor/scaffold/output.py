"""The files `init` and `plan` write: conveyor.yml checked by the loader `conveyor
validate` uses before anything is written, the CI file made from it by `conveyor export`,
an existing file never replaced without `force`, each written atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass

from conveyor.errors import UserError

CI_FILES = {"github": ".github/workflows/conveyor.yml", "gitlab": ".gitlab-ci.yml"}


@dataclass(frozen=True)
class File:
    """A file to write: its path (absolute) and text."""

    path: str
    text: str


def files_for(pipeline_path: str, text: str, ci: str | None) -> list[File]:
    """conveyor.yml at `pipeline_path` and, with `ci`, the CI file beside it at the
    workspace's top; the pipeline is validated first (an AssertionError if not: a
    pipeline `init` writes that does not load is Conveyor's bug, not the user's)."""
    pipeline_path = os.path.abspath(pipeline_path)
    root = os.path.dirname(pipeline_path)
    out = [File(pipeline_path, text)]
    exported = _validate_and_export(root, os.path.basename(pipeline_path), text, ci)
    if ci is not None:
        assert exported is not None
        out.append(File(os.path.join(root, CI_FILES[ci]), exported))
    return out


def _validate_and_export(root: str, name: str, text: str, ci: str | None) -> str | None:
    """Load the text as `conveyor validate` loads a file (from a hidden file beside
    where it goes, so paths are judged from the same directory), then export it."""
    from conveyor.config import load_pipeline
    from conveyor.config.build import merged_jobs
    from conveyor.config.loader import parse_yaml
    from conveyor.errors import ConfigError
    from conveyor.fsutil import atomic_write
    from conveyor.graph.plan import check, check_outputs

    probe = os.path.join(root, f".conveyor-init-{os.getpid()}.yml")
    os.makedirs(root, exist_ok=True)
    atomic_write(probe, text.encode())
    try:
        try:
            pipeline = load_pipeline(probe, use_cache=False)
            check(pipeline)
            check_outputs(pipeline)
        except ConfigError as exc:
            raise AssertionError(f"the pipeline written does not validate: {exc.render()}") from exc
        if ci is None:
            return None
        from conveyor.interop.export import render

        return render(ci, pipeline, merged_jobs(parse_yaml(text, name)), name)
    finally:
        os.unlink(probe)


def refuse_existing(files: list[File], *, force: bool) -> None:
    """UserError (exit 2) naming every file that exists, unless `force`."""
    if force:
        return
    taken = [f.path for f in files if os.path.exists(f.path)]
    if not taken:
        return
    shown = ", ".join(os.path.relpath(p) for p in taken)
    raise UserError(
        f"{shown} already exist{'s' if len(taken) == 1 else ''}: not overwritten",
        hint="--force replaces it; --dry-run prints what would be written",
    )


def write(files: list[File]) -> None:
    """Each file written atomically (a temporary beside it, then a rename)."""
    from conveyor.fsutil import atomic_write

    for f in files:
        os.makedirs(os.path.dirname(f.path), exist_ok=True)
        atomic_write(f.path, f.text.encode())
