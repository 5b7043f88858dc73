"""One audited file: its YAML parsed with positions (ruamel.yaml's round-trip loader)
and the raw lines, so a finding inside a multi-line `run:` can point at the line and
column of the very text it is about. A file that is not YAML is one located error."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConfigError

Pos = tuple[int, int]
"""(line, column), both 1-based, as editors and compilers print them."""


@dataclass(frozen=True)
class Source:
    path: str
    """As the user should read it (relative to the current directory when inside it)."""
    lines: tuple[str, ...]
    data: Any
    """The document: CommentedMap / CommentedSeq / scalars, with `.lc` positions."""

    def key(self, node: Any, key: Any) -> Pos:
        """Where `key` of the mapping `node` is written."""
        try:
            line, col = node.lc.key(key)
        except (AttributeError, KeyError, TypeError):
            return self.start(node)
        return line + 1, col + 1

    def value(self, node: Any, key: Any) -> Pos:
        """Where the value of `key` (or item `key` of a sequence) starts."""
        lc: Any = getattr(node, "lc", None)
        try:
            line, col = lc.item(key) if isinstance(node, list) else lc.value(key)
        except (AttributeError, KeyError, TypeError, IndexError):
            return self.key(node, key)
        return line + 1, col + 1

    def start(self, node: Any) -> Pos:
        """Where a mapping or sequence starts (1:1 for a scalar: it carries no position)."""
        lc = getattr(node, "lc", None)
        if lc is None or lc.line is None:
            return 1, 1
        return lc.line + 1, lc.col + 1

    def find(self, start: Pos, needle: str) -> Pos:
        """The first place at or after `start` where `needle` is written: how a match
        inside a scalar (block, folded or quoted) is located in the file."""
        first_line, first_col = start
        for index in range(first_line - 1, len(self.lines)):
            text = self.lines[index]
            at = text.find(needle, first_col - 1 if index == first_line - 1 else 0)
            if at >= 0:
                return index + 1, at + 1
        return start

    def find_re(self, start: Pos, pattern: re.Pattern[str]) -> Pos:
        """As `find`, for the first match of a pattern on one line."""
        first_line, first_col = start
        for index in range(first_line - 1, len(self.lines)):
            text = self.lines[index]
            match = pattern.search(text, first_col - 1 if index == first_line - 1 else 0)
            if match:
                return index + 1, match.start() + 1
        return start


def load(path: str, shown: str) -> Source:
    """The file parsed, or a ConfigError at the line and column of its syntax error."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or exc})", file=shown) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=shown) from None
    yaml = YAML(typ="rt")
    try:
        with warnings.catch_warnings():
            # A reused anchor name is valid YAML (the later one wins) and GitHub takes it.
            warnings.simplefilter("ignore")
            data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (
            " ".join(str(part) for part in (exc.context, exc.problem) if part) or "invalid YAML"
        )
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        raise ConfigError(f"YAML syntax error: {problem}", file=shown, line=line, col=col) from None
    except YAMLError as exc:
        raise ConfigError(f"YAML error: {_one_line(str(exc))}", file=shown) from None
    return Source(path=shown, lines=tuple(text.splitlines()), data=data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def strings(node: Any, seen: set[int] | None = None) -> Iterator[str]:
    """Every string in a document subtree, keys included (what a job "mentions")."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias: the same node twice
        return
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        seen.add(id(node))
        for key, value in node.items():
            if isinstance(key, str):
                yield key
            yield from strings(value, seen)
    elif isinstance(node, list):
        seen.add(id(node))
        for item in node:
            yield from strings(item, seen)
