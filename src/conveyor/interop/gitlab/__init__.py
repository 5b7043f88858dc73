"""`.gitlab-ci.yml` run as it is: the file as GitLab reads it (source), the `rules:if`
expressions (rules), the pipeline (pipeline) and its jobs (jobs) as conveyor.yml."""

from __future__ import annotations

import os

from conveyor import model
from conveyor.errors import ConfigError


def load(path: str, opts: object) -> tuple[model.Pipeline, list[str]]:
    """The pipeline in `path` as a validated Conveyor pipeline, and the notes to show
    before the run (jobs that cannot run here, what is ignored). Errors are located in
    the file (or the included file) they are about."""
    from conveyor.config.build import build_pipeline
    from conveyor.config.loader import relpath
    from conveyor.interop.gitlab.pipeline import Options, translate

    assert isinstance(opts, Options)
    abspath = os.path.abspath(path)
    file = relpath(abspath)
    done = None
    try:
        done = translate(abspath, opts)
        pipeline = build_pipeline(done.data, path=file, root=done.root)
    except ConfigError as exc:
        raise located(exc, abspath, done) from None
    return pipeline, done.notes


def located(exc: ConfigError, abspath: str, done: object) -> ConfigError:
    """The error located in the file that defines what it is about: Conveyor's own
    errors (paths under `jobs.NAME`) are mapped back to the GitLab job."""
    from conveyor.config.loader import locate, read_text, relpath
    from conveyor.interop.gitlab.pipeline import Translation

    if exc.line is not None:
        return exc
    if isinstance(done, Translation) and exc.path and exc.path[0] == "jobs":
        back = {c: g for g, c in done.names.items()}
        exc.path = (
            (back.get(str(exc.path[1]), str(exc.path[1])), *exc.path[2:])
            if len(exc.path) > 1
            else ()
        )
    origin = None
    if isinstance(done, Translation) and exc.path:
        origin = done.source.origin.get(str(exc.path[0]))
    if exc.file is not None and origin is None:
        target = os.path.abspath(exc.file)
    else:
        target = origin or abspath
    exc.file = None
    return locate(exc, read_text(target, relpath(target)), relpath(target))
