"""Reading `conveyor.yml`: the fast load, and the one that knows positions.

The normal path parses with ruamel.yaml's C-backed safe loader, whose data keeps no
line numbers. Only when something is wrong is the file composed again into YAML nodes
(by the same C parser), which remember where they came from, to turn a config path
such as ('jobs', 'test', 'needs', 0) into `conveyor.yml:12:7`.
"""

from __future__ import annotations

import os
import re
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
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw[: exc.start].count(b"\n") + 1
        col = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise ConfigError(
            f"the file is not valid UTF-8 text: byte 0x{raw[exc.start]:02x} cannot start or "
            "continue a character here",
            file=shown,
            line=line,
            col=col,
            hint="save the file as UTF-8 (a Latin-1 'é' is one byte; in UTF-8 it is two)",
        ) from None


MAX_YAML_NODES = 1_000_000
"""Nodes the document may have once its aliases are expanded (a 2,000-job file has
~30,000): a few kilobytes of nested aliases ("billion laughs") would otherwise expand
to billions of values wherever the data is walked."""

_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    _YAML_TAG + t for t in ("null", "bool", "int", "float", "str", "seq", "map", "timestamp")
)


def _refusing_constructor() -> type:
    """The safe constructor without YAML's extra types (!!omap, !!set, !!binary, !!pairs)
    and with a located error, rather than a crash further on, for any other tag."""
    from ruamel.yaml.constructor import ConstructorError, SafeConstructor

    class Constructor(SafeConstructor):
        pass

    def refuse(loader: Any, node: Any) -> Any:
        tag = str(node.tag)
        shown = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
        raise ConstructorError(
            None,
            None,
            f"the tag '{shown}' is not supported: Conveyor reads plain YAML (mappings, "
            "lists, strings, numbers, booleans, null); remove the tag",
            node.start_mark,
        )

    def checked(construct: Any) -> Any:
        def build(loader: Any, node: Any) -> Any:
            try:
                return construct(loader, node)
            except (ValueError, TypeError, OverflowError, LookupError, AttributeError):
                # `!!int abc`: an explicit tag on a value that is not of its type.
                tag = str(node.tag).removeprefix(_YAML_TAG)
                raise ConstructorError(
                    None, None, f"cannot read {node.value!r} as !!{tag}", node.start_mark
                ) from None

        return build

    for tag, construct in list(SafeConstructor.yaml_constructors.items()):
        if tag in _PLAIN_TAGS and tag.endswith(("seq", "map", "str", "null")):
            continue  # cannot fail on a scalar (or are generators: lists, mappings)
        Constructor.add_constructor(tag, checked(construct) if tag in _PLAIN_TAGS else refuse)
    return Constructor


def _yaml() -> Any:
    """ruamel.yaml's C-backed safe loader, refusing duplicate keys and unknown tags."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    yaml.allow_duplicate_keys = False
    yaml.Constructor = _refusing_constructor()
    return yaml


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML into plain Python data; syntax errors become located ConfigErrors."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        _check_nesting(text, file)
        data = _yaml().load(text)
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
    if "&" in text and "*" in text:  # without both, no alias can repeat anything
        _check_expansion(data)
    return data


MAX_NESTING = 100
"""Lists and mappings inside one another: a pipeline needs fewer than ten levels, and the
YAML parser takes time quadratic in the depth (5,000 `[` cost seconds, 20,000 minutes)."""

_BRACKET = re.compile(r"[\[\]{}]")


def _check_nesting(text: str, file: str) -> None:
    """Refuse nesting deeper than MAX_NESTING before the parser sees it. Brackets are
    counted in the text first (cheap; quotes ignored, so it may overcount); only when
    that count is too deep are the parser's events followed, stopping at the first
    level too deep, where the quadratic cost is still small."""
    depth = 0
    for m in _BRACKET.finditer(text):
        depth = depth + 1 if m.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_NESTING:
            break
    else:
        return
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    level = 0
    for event in _yaml().parse(text):
        if isinstance(event, CollectionStartEvent):
            level += 1
            if level > MAX_NESTING:
                mark = event.start_mark
                raise ConfigError(
                    f"invalid YAML: lists and mappings nested more than {MAX_NESTING} levels deep",
                    file=file,
                    line=mark.line + 1,
                    col=mark.column + 1,
                )
        elif isinstance(event, CollectionEndEvent):
            level -= 1


def _check_expansion(data: Any) -> None:
    """Refuse a document whose aliases expand to more than MAX_YAML_NODES values, naming
    the place that grows most, before anything walks it. Each distinct list or mapping
    is counted once (aliases share the object), so this is linear in the file."""
    size: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, dict | list) or id(node) in size:
            continue
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if done:
            size[id(node)] = 1 + sum(size.get(id(c), 1) for c in children)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, dict | list))
    if size.get(id(data), 1) <= MAX_YAML_NODES:
        return
    # Down the largest branch to the first value that is too big on its own.
    path: list[str | int] = []
    node = data
    while True:
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        big = [(k, v) for k, v in items if size.get(id(v), 1) > MAX_YAML_NODES]
        if not big:
            break
        key, node = big[0]
        path.append(key if isinstance(key, int) else str(key))
    total = size.get(id(data), 1)
    raise ConfigError(
        f"the document expands to {total:,} values through its aliases (*name), more than "
        f"the limit of {MAX_YAML_NODES:,}",
        path=tuple(path),
        hint="repeat less through aliases; a pipeline needs far fewer values",
    )


class Locator:
    """Maps config paths to (line, col), 1-based, from the text's YAML nodes (composed by
    the C parser: a round-trip parse of a 50 KB workflow took 0.4 s to place one error)."""

    def __init__(self, text: str) -> None:
        try:
            self.doc: Any = _yaml().compose(text)
        except Exception:  # the fast parse accepted it; positions are a nicety
            self.doc = None

    def position(
        self, path: ConfigPath, *, at_key: bool = False, offset: int = 0
    ) -> tuple[int, int]:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        node: Any = self.doc
        best = (1, 1)
        if node is None:
            return best
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, MappingNode) and isinstance(part, str):
                found = self._owned(node, path[:i], part)
                if found is None:
                    return best
                key, value = found
                key_line, key_col = key.start_mark.line, key.start_mark.column
                line, col = value.start_mark.line, value.start_mark.column
                nested = isinstance(value, MappingNode | SequenceNode)
                if last and (at_key or (nested and line > key_line)):
                    # A key, or a block mapping/list: point at its key, not its first item.
                    return key_line + 1, key_col + 1
                if last or not nested:
                    # (not nested: a string given where a list is allowed, run: "x" as run[0])
                    return line + 1, col + 1 + _shift(value, offset)
                best = (line + 1, col + 1)
                node = value
            elif isinstance(node, SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return best
                value = node.value[part]
                line, col = value.start_mark.line, value.start_mark.column
                if last:
                    return line + 1, col + 1 + _shift(value, offset)
                best = (line + 1, col + 1)
                node = value
            else:
                return best
        return best

    def _owned(self, node: Any, prefix: ConfigPath, key: str) -> tuple[Any, Any] | None:
        """The (key, value) nodes that define `key`: in the mapping itself or, for a
        job, in a template it extends."""
        found = _pair(node, key)
        if found is not None:
            return found
        if len(prefix) == 2 and prefix[0] == "jobs":
            jobs = _value(self.doc, "jobs")
            seen: set[str] = set()
            stack = [str(prefix[1])]
            while stack:
                name = stack.pop()
                if name in seen:
                    continue
                seen.add(name)
                job = _value(jobs, name)
                found = _pair(job, key)
                if found is not None:
                    return found
                ext = _value(job, "extends")
                stack.extend(_texts(ext))
        return None


def _pair(node: Any, key: str) -> tuple[Any, Any] | None:
    """The (key, value) nodes of `key` in a mapping node, its own keys first, then what
    it merges (`<<: *anchor`); None if it has no such key (or is no mapping)."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    if not isinstance(node, MappingNode):
        return None
    merged: list[Any] = []
    for k, v in node.value:
        if str(k.tag).endswith(":merge"):  # a plain `<<` (a quoted one is a string)
            merged.extend(v.value if isinstance(v, SequenceNode) else [v])
        elif k.value == key:
            return k, v
    for source in merged:
        found = _pair(source, key)
        if found is not None:
            return found
    return None


def _value(node: Any, key: str) -> Any:
    found = _pair(node, key)
    return None if found is None else found[1]


def _texts(node: Any) -> list[str]:
    """The scalar text of a node, or of each item of a list node."""
    from ruamel.yaml.nodes import ScalarNode, SequenceNode

    if isinstance(node, ScalarNode):
        return [str(node.value)]
    if isinstance(node, SequenceNode):
        return [str(n.value) for n in node.value if isinstance(n, ScalarNode)]
    return []


def _shift(value: Any, offset: int) -> int:
    """Columns from a value's start to `offset` characters into its text."""
    if not offset:
        return 0
    return offset + (1 if _is_quoted(value) else 0)


def _is_quoted(value: Any) -> bool:
    return getattr(value, "style", None) in ('"', "'")


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
