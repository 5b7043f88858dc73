"""GitHub Actions workflows run as they are: `translate` (workflow), the step runner
(steps), the expression language (expr) and the stand-ins for common actions (actions)."""

from __future__ import annotations

import os

from conveyor import model
from conveyor.errors import ConfigError


def load(path: str, opts: object) -> tuple[model.Pipeline, list[str]]:
    """The workflow in `path` as a validated pipeline, and the notes to show before the
    run (jobs that cannot run here). Errors are located in the workflow file."""
    from conveyor.config.build import build_pipeline
    from conveyor.config.loader import locate, parse_yaml, read_text, relpath
    from conveyor.interop.github.workflow import Options, translate

    assert isinstance(opts, Options)
    abspath = os.path.abspath(path)
    file = relpath(abspath)
    text = read_text(abspath, file)
    try:
        data = parse_yaml(text, file)
        done = translate(abspath, data, opts)
        pipeline = build_pipeline(done.data, path=file, root=done.root)
    except ConfigError as exc:
        raise locate(exc, text, file) from None
    return pipeline, done.notes
