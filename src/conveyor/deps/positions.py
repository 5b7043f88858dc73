"""Where things are in a dependency file: the 1-based line of each entry of a JSON
document (the decoder keeps none), found by one pass over text that has already been
decoded, so that a component read from packages.lock.json or composer.lock can point at
the line its entry starts on (vulnerability findings in SARIF point there)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from json import decoder

# The JSON decoder's own string scanner (C): (text, index after the quote) -> (value,
# index after the closing quote). typeshed does not list it.
_scanstring: Callable[[str, int], tuple[str, int]] = decoder.scanstring  # type: ignore[attr-defined]

JsonPath = tuple[str | int, ...]
"""Object keys and array indexes from the top of the document: ('packages', 3, 'name')."""

_SIGNIFICANT = re.compile(r'[{}\[\]",]')


class _Frame:
    __slots__ = ("at", "expect_key", "is_object")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.at: str | int = 0 if not is_object else ""
        self.expect_key = is_object


def json_lines(text: str, depth: int) -> dict[JsonPath, int]:
    """The line each member starts on (an object member at its key, an array element at
    its first character), for every path of at most `depth` parts. `text` must be valid
    JSON (decode it first: this reads it without checking it); an array element that is
    a number, true, false or null has no entry."""
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(offset: int) -> int:
        return bisect.bisect_left(newlines, offset) + 1

    lines: dict[JsonPath, int] = {}
    stack: list[_Frame] = []

    def element_starts(offset: int) -> None:
        if stack and not stack[-1].is_object and len(stack) <= depth:
            lines[tuple(f.at for f in stack)] = line_at(offset)

    pos = 0
    while True:
        found = _SIGNIFICANT.search(text, pos)
        if found is None:
            return lines
        char, start = found.group(), found.start()
        pos = start + 1
        if char == '"':
            value, pos = _scanstring(text, start + 1)
            top = stack[-1] if stack else None
            if top is not None and top.is_object and top.expect_key:
                top.at, top.expect_key = value, False
                if len(stack) <= depth:
                    lines[tuple(f.at for f in stack)] = line_at(start)
            else:
                element_starts(start)
        elif char in "{[":
            element_starts(start)
            stack.append(_Frame(char == "{"))
        elif char in "}]":
            if stack:
                stack.pop()
        elif stack:  # ','
            top = stack[-1]
            if top.is_object:
                top.expect_key = True
            else:
                assert isinstance(top.at, int)
                top.at += 1
