"""A `.gitlab-ci.yml` read as GitLab reads it: YAML with anchors, merge keys and the
`!reference [job, key, ...]` tag kept, local includes merged in (the including file
wins), `extends` merged deeply (several, recursively), then the `!reference`s filled in.

Which file each top-level key came from is kept, so an error in an included job is
located in that file.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConfigError

MAX_DEPTH = 10
"""Levels of `extends` and of nested `!reference` (GitLab's limit, 11 is refused)."""

GLOBAL_KEYS = frozenset(
    {
        "stages",
        "variables",
        "default",
        "include",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
        "spec",
    }
)


@dataclass(frozen=True)
class Reference:
    """`!reference [job, key, ...]`: a part of another job (or of `default:`...)."""

    path: tuple[str, ...]


@dataclass
class Source:
    data: dict[str, Any]
    """The merged file, with `extends` and `!reference` resolved."""
    origin: dict[str, str] = field(default_factory=dict)
    """Top-level key: the file (absolute) that defined it last."""
    texts: dict[str, str] = field(default_factory=dict)
    """File (absolute): its text, for locating errors."""
    scope: dict[str, str] = field(default_factory=dict)
    """The variables an include's path may name."""


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    # GitLab's parser takes a repeated key (or a second `<<`) without complaint.
    yaml.allow_duplicate_keys = True

    def reference(loader: Any, node: Any) -> Reference:
        from ruamel.yaml.constructor import ConstructorError

        items = loader.construct_sequence(node, deep=True)
        if not items or not all(isinstance(i, str | int) for i in items):
            raise ConstructorError(
                None, None, "!reference takes a list of names: [job, key, ...]", node.start_mark
            )
        return Reference(tuple(str(i) for i in items))

    yaml.constructor.add_constructor("!reference", reference)
    return yaml


def parse(text: str, file: str) -> Any:
    """The YAML in `text`; errors located in `file`."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        docs = list(_yaml().load_all(text))
        # A file with a `spec:` header (CI/CD inputs) has its pipeline in a second document.
        if len(docs) == 2 and isinstance(docs[0], dict) and "spec" in docs[0]:
            return docs[1]
        if len(docs) > 1:
            raise ConfigError("not supported: several YAML documents in one file", file=file)
        return docs[0] if docs else None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "syntax error").strip()
        if "could not determine a constructor for the tag" in problem:
            problem = "not supported: the tag " + problem.rsplit("tag", 1)[-1].strip()
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line, col=col) from None
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None


def load(path: str, root: str, variables: Mapping[str, str] | None = None) -> Source:
    """The file at `path` with its local includes, extends and references resolved."""
    from conveyor.config.loader import read_text, relpath

    source = Source({})
    abspath = os.path.abspath(path)
    text = read_text(abspath, relpath(abspath))
    source.texts[abspath] = text
    data = parse(text, relpath(abspath))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("a .gitlab-ci.yml must be a mapping of jobs and keywords", path=())
    merged: dict[str, Any] = {}
    from conveyor.interop.gitlab.rules import expand

    # Include paths may name variables: predefined ones and the file's own.
    scope = dict(variables or {})
    top = data.get("variables")
    if isinstance(top, dict):
        scope.update({str(k): str(v) for k, v in top.items() if not isinstance(v, dict | list)})
    scope.update({k: expand(v, scope) for k, v in scope.items()})
    source.scope = scope
    _include(data, abspath, root, source, merged, [abspath])
    for key, value in data.items():
        if key == "include":
            continue
        merged[str(key)] = _merge(merged.get(str(key)), value) if key == "variables" else value
        source.origin[str(key)] = abspath
    extended = {key: _extended(key, merged, ()) for key in merged}
    source.data = {key: _resolved(value, extended, 0, (key,)) for key, value in extended.items()}
    return source


def _include(
    data: Mapping[str, Any],
    path: str,
    root: str,
    source: Source,
    merged: dict[str, Any],
    chain: list[str],
) -> None:
    from conveyor.config.loader import read_text, relpath

    spec = data.get("include")
    if spec is None:
        return
    entries = spec if isinstance(spec, list) else [spec]
    for i, entry in enumerate(entries):
        where: tuple[str | int, ...] = ("include", i) if isinstance(spec, list) else ("include",)
        if isinstance(entry, str):
            if entry.startswith(("http://", "https://")):
                raise _at(path, "not supported: a remote include (only local files)", where)
            local = entry
        elif isinstance(entry, dict) and "local" in entry:
            local = str(entry["local"])
        elif isinstance(entry, dict):
            kind = next(
                (k for k in ("remote", "project", "template", "component") if k in entry),
                "this kind of",
            )
            raise _at(
                path,
                f"not supported: a {kind} include (only `local:` files run here)",
                where,
                hint="copy the file into the repository and include it with `local:`",
            )
        else:
            raise _at(path, "an include is a path or a mapping", where)
        from conveyor.interop.gitlab.rules import expand

        local = expand(local, source.scope)
        if ".." in local.replace("\\", "/").split("/"):
            raise _at(path, f"include: {local!r} leaves the project", where)
        pattern = os.path.join(root, local.lstrip("/"))
        found = (
            sorted(glob.glob(pattern, recursive=True))
            if glob.has_magic(local)
            else ([pattern] if os.path.isfile(pattern) else [])
        )
        if not found:
            raise _at(
                path, f"include: local file {local!r} was not found in {relpath(root)}", where
            )
        for file in found:
            file = os.path.abspath(file)
            if file in chain:
                raise _at(path, f"include: {local!r} includes itself", where)
            if len(chain) > 100:
                raise _at(path, "include: more than 100 levels of includes", where)
            text = read_text(file, relpath(file))
            source.texts[file] = text
            inner = parse(text, relpath(file)) or {}
            if not isinstance(inner, dict):
                raise _at(file, "an included file must be a mapping", ())
            _include(inner, file, root, source, merged, [*chain, file])
            for key, value in inner.items():
                if key == "include":
                    continue
                merged[str(key)] = _merge(merged.get(str(key)), value)
                source.origin[str(key)] = file


def _at(
    file: str, message: str, where: tuple[str | int, ...], hint: str | None = None
) -> ConfigError:
    from conveyor.config.loader import relpath

    error = ConfigError(message, path=where, hint=hint)
    error.file = relpath(file)
    return error


def _merge(base: Any, over: Any) -> Any:
    """GitLab's deep merge: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    return over


def _extended(name: str, data: Mapping[str, Any], chain: tuple[str, ...]) -> Any:
    job = data[name]
    if name in GLOBAL_KEYS or not isinstance(job, dict) or "extends" not in job:
        return job
    if name in chain:
        raise ConfigError(
            f"extends: a cycle: {' -> '.join((*chain, name))}", path=(chain[0], "extends")
        )
    if len(chain) >= MAX_DEPTH:
        raise ConfigError(f"extends: more than {MAX_DEPTH} levels", path=(chain[0], "extends"))
    parents = job["extends"]
    parents = [parents] if isinstance(parents, str) else parents
    if not isinstance(parents, list):
        raise ConfigError("extends: a job name or a list of them", path=(name, "extends"))
    out: dict[str, Any] = {}
    for parent in parents:
        if str(parent) not in data or not isinstance(data[str(parent)], dict):
            raise ConfigError(
                f"extends: {parent!r} is not a job or template of the file",
                path=(name, "extends"),
            )
        out = _merge(out, _extended(str(parent), data, (*chain, name)))
    own = {k: v for k, v in job.items() if k != "extends"}
    return _merge(out, own)


def _resolved(value: Any, data: Mapping[str, Any], depth: int, where: tuple[str, ...]) -> Any:
    if isinstance(value, Reference):
        if depth >= MAX_DEPTH:
            raise ConfigError(f"!reference: more than {MAX_DEPTH} levels of references", path=where)
        node: Any = data
        for part in value.path:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(
                    f"!reference [{', '.join(value.path)}] refers to nothing", path=where
                )
            node = node[part]
        return _resolved(node, data, depth + 1, where)
    if isinstance(value, dict):
        return {k: _resolved(v, data, depth, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            item_value = _resolved(item, data, depth, where)
            # A referenced list inside a list (a script) is spliced in, as GitLab does.
            if isinstance(item, Reference) and isinstance(item_value, list):
                out.extend(item_value)
            else:
                out.append(item_value)
        return out
    return value
