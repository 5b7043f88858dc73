"""Reading `conveyor.yml`: the fast load, and the slower one that knows positions.

The normal path parses with ruamel.yaml's C-backed safe loader, which keeps no
line numbers. Only when something is wrong is the file parsed again with the
round-trip loader, whose nodes remember where they came from, to turn a config
path such as ('jobs', 'test', 'needs', 0) into `conveyor.yml:12:7`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from conveyor.errors import ConfigError, ConfigPath, format_path


def read_text(path: str, shown: str | None = None) -> str:
    """The file's text, or a ConfigError that says what is wrong with the path."""
    shown = shown or path
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        hint = "create it (`conveyor docs complete-example` shows one) or pass another file with -f"
        raise ConfigError("file not found", hint=hint, file=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a pipeline file", file=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=shown) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not valid UTF-8 text", file=shown, line=line) from None


def _yaml(typ: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ=typ)
    yaml.allow_duplicate_keys = False
    if typ == "rt":
        yaml.preserve_quotes = True
    return yaml


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML into plain Python data; syntax errors become located ConfigErrors."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return _yaml("safe").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "syntax error").strip()
        if "found duplicate key" in problem:
            problem = problem.replace("found duplicate key", "duplicate key").split(" with value")[
                0
            ]
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line, col=col) from None
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None


class Locator:
    """Maps config paths to (line, col), 1-based, using a round-trip parse of the text."""

    def __init__(self, text: str) -> None:
        try:
            self.doc: Any = _yaml("rt").load(text)
        except Exception:  # the fast parse accepted it; positions are a nicety
            self.doc = None

    def position(
        self, path: ConfigPath, *, at_key: bool = False, offset: int = 0
    ) -> tuple[int, int]:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        node: Any = self.doc
        best = (1, 1)
        if node is None:
            return best
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, CommentedMap) and isinstance(part, str):
                owner = self._owner(node, path[:i], part)
                if owner is None:
                    return best
                key_line, key_col = owner.lc.key(part)
                line, col = owner.lc.value(part)
                value = owner[part]
                nested = isinstance(value, CommentedMap | CommentedSeq)
                if last and (at_key or (nested and line > key_line)):
                    # A key, or a block mapping/list: point at its key, not its first item.
                    return key_line + 1, key_col + 1
                if last:
                    return line + 1, col + 1 + _shift(value, offset)
                if not nested:
                    # A string given where a list is allowed (run: "x" read as run[0]).
                    return line + 1, col + 1 + _shift(value, offset)
                best = (line + 1, col + 1)
                node = value
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, col = node.lc.item(part)
                value = node[part]
                if last:
                    return line + 1, col + 1 + _shift(value, offset)
                best = (line + 1, col + 1)
                node = value
            else:
                return best
        return best

    def _owner(self, node: Any, prefix: ConfigPath, key: str) -> Any:
        """The mapping that defines `key`: the node itself or, for a job, a template it extends."""
        if key in node:
            return node
        if len(prefix) == 2 and prefix[0] == "jobs" and isinstance(self.doc, dict):
            jobs = self.doc.get("jobs")
            seen: set[str] = set()
            stack = [str(prefix[1])]
            while stack and isinstance(jobs, dict):
                name = stack.pop()
                if name in seen:
                    continue
                seen.add(name)
                job = jobs.get(name)
                if not isinstance(job, dict):
                    continue
                if key in job:
                    return job
                ext = job.get("extends")
                if isinstance(ext, str):
                    stack.append(ext)
                elif isinstance(ext, list):
                    stack.extend(str(e) for e in ext)
        return None


def _shift(value: Any, offset: int) -> int:
    """Columns from a value's start to `offset` characters into its text."""
    if not offset:
        return 0
    return offset + (1 if _is_quoted(value) else 0)


def _is_quoted(value: Any) -> bool:
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    return isinstance(value, DoubleQuotedScalarString | SingleQuotedScalarString)


def locate(error: ConfigError, text: str | None, file: str) -> ConfigError:
    """Fill in file, line and column of a ConfigError raised with only a config path."""
    if error.file is None:
        error.file = file
    if error.line is None and text is not None:
        if error.path:
            error.line, error.col = Locator(text).position(
                error.path, at_key=error.at_key, offset=error.offset
            )
        else:
            error.line, error.col = 1, 1
    return error


def render_warnings(warnings: Sequence[tuple[ConfigPath, str]], text: str, file: str) -> list[str]:
    """`FILE:LINE:COL: warning: PATH: MESSAGE` for each (config path, message), located as
    errors are (one round-trip parse for them all)."""
    if not warnings:
        return []
    locator = Locator(text)
    out = []
    for path, message in warnings:
        line, col = locator.position(path)
        out.append(f"{file}:{line}:{col}: warning: {format_path(path)}: {message}")
    return out


def relpath(path: str) -> str:
    """How to name the file in messages: relative to the current directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
