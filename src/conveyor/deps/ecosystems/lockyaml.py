"""The YAML that pnpm and Yarn Berry write, read fast.

Both tools write a small, regular part of YAML: block mappings indented by two spaces,
plain or quoted scalars, one-line flow mappings and sequences (`{integrity: sha512-…}`,
`[x64]`), block sequences of scalars. The general loaders take 0.5 s (libyaml) to 0.8 s
(ruamel's C loader) over a 3,000-package pnpm-lock.yaml, most of it building Python
objects through their constructors; this reader takes that part only, line by line.
Anything outside it (anchors, tags, block scalars, nested flow collections, a key or
indentation it cannot place) makes it give up, and the caller reads the file with the
general loader (conveyor.deps.syntax), which also places any syntax error.
"""

from __future__ import annotations

import json
import re
from typing import Any


class Unsupported(Exception):
    """The text is outside the subset this reader takes (or is not YAML at all)."""


_NUMBER = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INT = re.compile(r"[-+]?[0-9]+")
# What the general loader would read as something else than a string here (YAML 1.2's
# core schema: hexadecimal and octal integers, infinities, not-a-number).
_OTHER_SCALAR = re.compile(r"[-+]?(?:0[xXoO]|\.(?:inf|Inf|INF|nan|NaN|NAN)$)")
_CONSTANTS: dict[str, Any] = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "null": None,
    "Null": None,
    "NULL": None,
    "~": None,
}
# A plain scalar may not start with an indicator (YAML 1.2, 7.3.3); '-', '?' and ':'
# only when followed by a space, which the line splitting has already ruled out.
_NOT_PLAIN_START = frozenset("@`%!&*|>{}[],#'\"")


def load(text: str) -> tuple[list[Any], dict[tuple[str, ...], int]]:
    """The documents of `text`, and the 1-based line of each key at the first two levels
    of the last one (as `key_lines` gives them); `Unsupported` when the text is outside
    the subset."""
    documents: list[Any] = []
    lines: dict[tuple[str, ...], int] = {}
    root: dict[str, Any] = {}
    top = ""  # the current key of the top level
    # The innermost open container, the indentation of its entries and how deep it is;
    # the enclosing ones on the stack.
    container: Any = root
    level = depth = 0
    stack: list[tuple[int, Any]] = []
    # A key whose value is on the following lines: (its indentation, owner, key).
    pending: tuple[int, dict[str, Any], str] | None = None
    scalars: dict[str, Any] = {}  # repeated values ("2.0.0", "true") parsed once
    started = False  # a line other than a comment seen (a leading '---' starts nothing)
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw:
            continue
        content = raw.lstrip(" ") if raw[0] == " " else raw
        if not content:
            continue
        first = content[0]
        if first == "#":
            continue
        indent = len(raw) - len(content)
        if content[-1] in " \t\r":
            content = content.rstrip(" \t\r")
            if not content:
                continue
        is_item = False
        if first == "-":
            if indent == 0 and content.startswith("---"):
                if content != "---" or pending is not None:
                    raise Unsupported
                if started:
                    documents.append(root)
                    root = container = {}
                    level = depth = 0
                    stack, lines = [], {}
                started = True
                continue
            is_item = len(content) == 1 or content[1] == " "
        started = True
        if pending is not None:
            key_indent, owner, key = pending
            pending = None
            if indent > key_indent or (is_item and indent == key_indent):
                child: Any = [] if is_item else {}
                owner[key] = child
                stack.append((level, container))
                container, level = child, indent
                depth += 1
            else:
                owner[key] = None
        if indent != level:
            while indent < level and stack:
                level, container = stack.pop()
                depth -= 1
            if indent != level:
                raise Unsupported
        if is_item:
            if type(container) is not list:
                raise Unsupported
            item = content[2:].lstrip()
            if not item or _mapping_entry(item) is not None:
                raise Unsupported  # a nested block, or a mapping in a sequence
            container.append(_value(item))
            continue
        if type(container) is not dict:
            raise Unsupported
        if first == "'" and (cut := content.find("'", 1)) > 0 and content[cut + 1 : cut + 2] == ":":
            # '@scope/name@1.0.0': the common quoted key, with no quote inside
            key, rest = content[1:cut], content[cut + 2 :].lstrip()
            if content[cut + 2 : cut + 3] not in ("", " "):
                raise Unsupported
        elif first == "'" or first == '"' or first == "?":
            split = _mapping_entry(content)
            if split is None:
                raise Unsupported
            key, rest = split
        else:
            cut = content.find(": ")
            if cut > 0:
                key, rest = content[:cut], content[cut + 2 :].lstrip()
            elif content[-1] == ":":
                key, rest = content[:-1], ""
            else:
                raise Unsupported
            if first in _NOT_PLAIN_START or key[-1] == " " or " #" in key:
                raise Unsupported
        if key in container:
            raise Unsupported  # a duplicate key: the general loader says where
        if depth < 2:
            if depth:
                lines[(top, key)] = number
            else:
                top = key
                lines[(key,)] = number
        if not rest:
            container[key] = None
            pending = (indent, container, key)
        elif rest in scalars:
            container[key] = scalars[rest]
        elif rest[0] == "{" or rest[0] == "[":
            container[key] = _value(rest)
        else:
            container[key] = scalars[rest] = _value(rest)
    if pending is not None:
        pending[1][pending[2]] = None
    if root or (not documents and started):
        documents.append(root)
    return documents, lines


def _mapping_entry(content: str) -> tuple[str, str] | None:
    """(key, rest of the line) of 'key: value' or 'key:', None when the line is not
    a mapping entry."""
    first = content[0]
    if first == "'" or first == '"':
        end = _quoted_end(content, 0)
        if end < 0 or not content.startswith(":", end):
            return None
        rest = content[end + 1 :]
        if rest and rest[0] != " ":
            return None
        return str(_scalar(content[:end])), rest.strip()
    if first in _NOT_PLAIN_START or (first == "?" and content[1:2] in ("", " ")):
        return None
    if content.endswith(":"):
        key, rest = content[:-1], ""
        if ": " in key:
            key, rest = key.split(": ", 1)
            rest = rest + ":"
    else:
        cut = content.find(": ")
        if cut < 0:
            return None
        key, rest = content[:cut], content[cut + 2 :].strip()
    if " #" in key or key != key.rstrip():
        raise Unsupported
    return key, rest


def _quoted_end(text: str, start: int) -> int:
    """The index just past the quoted scalar starting at `start`, -1 if unclosed."""
    quote = text[start]
    i = start + 1
    while True:
        i = text.find(quote, i)
        if i < 0:
            return -1
        if quote == "'":
            if text.startswith("''", i):
                i += 2
                continue
            return i + 1
        backslashes = 0
        while text[i - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return i + 1
        i += 1


def _value(text: str) -> Any:
    first = text[0]
    if first == "{":
        return _flow(text, "{", "}")
    if first == "[":
        return _flow(text, "[", "]")
    if first == "'" or first == '"':
        if _quoted_end(text, 0) != len(text):
            raise Unsupported
        return _scalar(text)
    if first in _NOT_PLAIN_START or " #" in text or ": " in text:
        raise Unsupported
    return _plain(text)


def _scalar(text: str) -> Any:
    """A whole quoted or plain scalar."""
    first = text[0]
    if first == "'":
        return text[1:-1].replace("''", "'")
    if first == '"':
        try:
            value = json.loads(text)  # YAML's escapes beyond JSON's make this give up
        except ValueError:
            raise Unsupported from None
        if not isinstance(value, str):
            raise Unsupported
        return value
    return _plain(text)


def _plain(text: str) -> Any:
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    if "0" <= text[-1] <= "9" and _NUMBER.fullmatch(text):
        return int(text) if _INT.fullmatch(text) else float(text)
    if _OTHER_SCALAR.match(text):
        raise Unsupported
    return text


def _flow(text: str, opening: str, closing: str) -> Any:
    """A one-line flow mapping or sequence of scalars."""
    if text[-1] != closing:
        raise Unsupported
    inner = text[1:-1].strip()
    if not inner:
        return {} if opening == "{" else []
    if opening == "{" and "," not in inner and "{" not in inner and "}" not in inner:
        # {integrity: sha512-…}, {node: '>=10'}: one entry, the common case
        key, colon, rest = inner.partition(": ")
        if colon and key[0] not in _NOT_PLAIN_START and key[-1] != " " and rest:
            return {key: _flow_scalar(rest.strip())}
    if "'" in inner or '"' in inner or "{" in inner or "[" in inner or "]" in inner:
        items = _flow_items(inner)
    else:
        items = inner.split(",")
        if "}" in inner or not items[-1].strip():
            items = _flow_items(inner)
    if opening == "[":
        return [_flow_scalar(item.strip()) for item in items]
    mapping: dict[str, Any] = {}
    for item in items:
        key, colon, rest = item.strip().partition(": ")
        if not colon or key[0] in "'\"":
            split = _mapping_entry(item.strip())
            if split is None:
                raise Unsupported
            key, rest = split
        elif key[0] in _NOT_PLAIN_START or key[-1] == " ":
            raise Unsupported
        if key in mapping:
            raise Unsupported
        rest = rest.strip()
        mapping[key] = _flow_scalar(rest) if rest else None
    return mapping


def _flow_items(inner: str) -> list[str]:
    """The comma-separated items of a flow collection's inside, quotes respected."""
    if "'" not in inner and '"' not in inner:
        items = [item.strip() for item in inner.split(",")]
    else:
        items, start, i = [], 0, 0
        while i < len(inner):
            char = inner[i]
            if char == "'" or char == '"':
                i = _quoted_end(inner, i)
                if i < 0:
                    raise Unsupported
                continue
            if char == ",":
                items.append(inner[start:i].strip())
                start = i + 1
            i += 1
        items.append(inner[start:].strip())
    if items and not items[-1]:
        items.pop()  # a trailing comma
    if not all(items):
        raise Unsupported
    return items


def _flow_scalar(text: str) -> Any:
    first = text[0]
    if first == "'" and text[-1] == "'" and text.count("'") == 2 and len(text) > 1:
        return text[1:-1]  # '>=10': quoted, no quote inside
    if first == "'" or first == '"':
        if _quoted_end(text, 0) != len(text):
            raise Unsupported
        return _scalar(text)
    if first in _NOT_PLAIN_START or ": " in text or " #" in text or "}" in text or "]" in text:
        raise Unsupported
    return _plain(text)


_KEY = re.compile(
    r"""^( {0,2})('(?:[^'\n]|'')*'|"(?:[^"\\\n]|\\.)*"|[^\s'"#\-][^\n]*?):(?:[ \t]|\r?$)""", re.M
)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The 1-based line of each key at indentation 0 and 2 by its path (('packages',),
    ('packages', 'ms@2.1.3')), found by one pass of a regular expression: for a file
    the general loader had to read. In a file of several documents, the last one's."""
    found: dict[tuple[str, ...], int] = {}
    top = ""
    line, pos = 1, 0
    for match in _KEY.finditer(text):
        line += text.count("\n", pos, match.start())
        pos = match.start()
        raw = match.group(2)
        try:
            key = str(_scalar(raw)) if raw[0] in "'\"" else raw
        except Unsupported:
            continue
        if match.group(1):
            found[(top, key)] = line
        else:
            if (key,) in found:
                found = {}  # a key seen before: a later document
            top = key
            found[(key,)] = line
    return found


def read(text: str) -> tuple[list[Any], dict[tuple[str, ...], int]]:
    """The documents of a lockfile and its `key_lines`: this module's reader when the
    text is in its subset, else the general loader (whose ParseError places a syntax
    error)."""
    try:
        return load(text)
    except Unsupported:
        pass
    from conveyor.deps.syntax import parse_text

    documents = parse_text(text, "YAML")
    return list(documents), key_lines(text)
