"""Load `conveyor.yml` into a validated, frozen `model.Pipeline`, or one located error.

A validated pipeline is cached (pickled) under `.conveyor/` keyed by the file's
content, Conveyor's version and the code that builds it, so an unchanged file costs
neither the YAML parse nor the schema's import on the next run.

Modules: `loader` (YAML with positions), `schema` (pydantic models of the file),
`errors_map` (pydantic's errors as located ConfigErrors), `build` (the file into a
model.Pipeline), `paths` (path fields checked). Imports the shared types only; never
workspace, graph, cache, executor, run, features or cli.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from collections.abc import Sequence
from typing import TYPE_CHECKING

from conveyor import __version__
from conveyor.config.loader import locate, parse_yaml, read_text, relpath, render_warnings
from conveyor.errors import ConfigError, ConfigPath, format_path
from conveyor.fsutil import STATE_DIR, atomic_file, ensure_state_dir

if TYPE_CHECKING:
    # Imported when a pipeline is loaded: commands that only look for the file (the
    # `deps` commands without one) do not pay for building the model's classes.
    from conveyor import model

__all__ = [
    "PIPELINE_FILE",
    "find_pipeline_file",
    "load_pipeline",
    "locate_in_file",
    "locate_warnings",
]

PIPELINE_FILE = "conveyor.yml"
_CACHE_SCHEMA = "2"


def _code_stamp() -> str:
    """The code that shapes a cached pipeline, by file identity: a development install
    changes it without changing the version, and an old pickle then lacks new fields."""
    from conveyor import model

    here = os.path.dirname(__file__)
    stamps = []
    modules = ("build.py", "schema.py", "paths.py", "resolve.py")
    for path in (model.__file__, *(os.path.join(here, m) for m in modules)):
        try:
            st = os.stat(path)
            stamps.append(f"{st.st_size}:{st.st_mtime_ns}")
        except (OSError, TypeError):
            stamps.append("?")
    return ",".join(stamps)


def find_pipeline_file(start: str | None = None) -> str:
    """`conveyor.yml` in `start` (default: the current directory) or its nearest parent."""
    cur = os.path.abspath(start or os.getcwd())
    while True:
        for name in (PIPELINE_FILE, "conveyor.yaml"):
            candidate = os.path.join(cur, name)
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(cur)
        if parent == cur:
            return os.path.join(os.path.abspath(start or os.getcwd()), PIPELINE_FILE)
        cur = parent


def _cache_path(root: str, text: str, abspath: str) -> str:
    key = hashlib.sha256(
        f"{_CACHE_SCHEMA}\0{__version__}\0{_code_stamp()}\0{abspath}\0".encode() + text.encode()
    ).hexdigest()[:32]
    return os.path.join(root, STATE_DIR, "cache", f"pipeline-{key}.pickle")


def load_pipeline(path: str, *, use_cache: bool = True) -> model.Pipeline:
    """Read, validate and build the pipeline in `path`; raise a located ConfigError."""
    from conveyor import model

    abspath = os.path.abspath(path)
    file = relpath(abspath)
    root = os.path.dirname(abspath)
    text = read_text(abspath, file)
    cache = _cache_path(root, text, abspath)
    if use_cache:
        try:
            with open(cache, "rb") as fh:
                cached = pickle.load(fh)
            if isinstance(cached, model.Pipeline):
                # The same file may be named differently from another directory.
                return cached if cached.path == file else dataclasses.replace(cached, path=file)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass
    # Imported only on a cache miss: the schema pulls in pydantic.
    from conveyor.config.build import build_pipeline

    try:
        data = parse_yaml(text, file)
        pipeline = build_pipeline(data, path=file, root=root)
    except ConfigError as exc:
        raise locate(exc, text, file) from None
    if use_cache:
        _store(cache, pipeline)
    return pipeline


def _store(cache: str, pipeline: model.Pipeline) -> None:
    """Atomic write; a cache that cannot be written is simply not used."""
    try:
        ensure_state_dir(os.path.dirname(os.path.dirname(os.path.dirname(cache))), "cache")
        with atomic_file(cache) as fh:
            pickle.dump(pipeline, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:
        pass


def locate_in_file(error: ConfigError, pipeline_path: str) -> ConfigError:
    """Add line:col to an error raised past loading (a `needs` cycle found by the graph)."""
    abspath = os.path.abspath(pipeline_path)
    try:
        text: str | None = read_text(abspath, relpath(abspath))
    except ConfigError:
        text = None
    return locate(error, text, relpath(abspath))


def locate_warnings(warnings: Sequence[tuple[ConfigPath, str]], pipeline_path: str) -> list[str]:
    """Each (config path, message) as `conveyor.yml:LINE:COL: warning: PATH: MESSAGE`."""
    if not warnings:
        return []
    abspath = os.path.abspath(pipeline_path)
    file = relpath(abspath)
    try:
        text = read_text(abspath, file)
    except ConfigError:  # gone since it was loaded: name the place without a line
        return [f"{file}: warning: {format_path(p)}: {m}" for p, m in warnings]
    return render_warnings(warnings, text, file)
