"""What the lockfile readers share: the line an entry starts on (found by a cheap pass
over the text, not a position-keeping parser), digests as 'algorithm:hex', each
package's scope from where it is reachable, and the edges named by `ref`."""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from conveyor.deps.components import Ecosystem, Scope, _purl
from conveyor.deps.syntax import ParseError, parse_text

_SRI_ALGORITHMS = frozenset({"sha1", "sha256", "sha384", "sha512"})


def ref(ecosystem: Ecosystem, name: str, version: str | None) -> str:
    """The `Component.ref` of (name, version) without building the Component."""
    return _purl(ecosystem, name, version)


def sri_hashes(integrity: object) -> tuple[str, ...]:
    """npm's Subresource Integrity ('sha512-<base64>', several separated by spaces) as
    ('sha512:<hex>', ...); what is not SRI is left out."""
    if not isinstance(integrity, str):
        return ()
    found = []
    for part in integrity.split() if " " in integrity else (integrity,):
        algorithm, _, digest = part.partition("-")
        if algorithm not in _SRI_ALGORITHMS or not digest:
            continue
        try:
            raw = binascii.a2b_base64(digest.split("?", 1)[0], strict_mode=True)
        except (binascii.Error, ValueError):
            continue
        found.append(f"{algorithm}:{raw.hex()}")
    return tuple(found)


def sibling_document(
    read_sibling: Callable[[str], str | None], name: str, fmt: str = "JSON"
) -> dict[str, Any] | None:
    """A manifest beside the lockfile (package.json, pyproject.toml, Pipfile) parsed as
    `fmt` ('JSON', 'TOML'); None when it is missing, does not parse or is no mapping
    (the manifest check reports that, not the lockfile's reader)."""
    text = read_sibling(name)
    if text is None:
        return None
    try:
        data = parse_text(text, fmt)
    except ParseError:
        return None
    return data if isinstance(data, dict) else None


def unique(refs: Iterable[str]) -> tuple[str, ...]:
    """The refs in their first order, each once."""
    return tuple(dict.fromkeys(refs))


class LineFinder:
    """The line of each key of a document, found in document order: each search starts
    where the last one matched, so reading a whole file costs one pass over its text."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line = 1

    def find(self, needle: str) -> int | None:
        """The 1-based line of the next occurrence of `needle`, None when there is none
        (the search then stays where it was)."""
        at = self._text.find(needle, self._pos)
        if at < 0:
            return None
        self._line += self._text.count("\n", self._pos, at)
        self._pos = at
        return self._line


def header_lines(text: str, header: str) -> list[int]:
    """The 1-based lines of every `[[header]]` table of a TOML document, in order (the
    n-th is the n-th element of the parsed array)."""
    pattern = re.compile(
        rf"^[ \t]*\[\[[ \t]*{re.escape(header)}[ \t]*\]\][ \t]*(?:#[^\n]*)?\r?$", re.M
    )
    lines = []
    line, pos = 1, 0
    for match in pattern.finditer(text):
        line += text.count("\n", pos, match.start())
        pos = match.start()
        lines.append(line)
    return lines


def json_key(key: str) -> str:
    """`key` as JSON spells it between its quotes (npm writes non-ASCII as it is)."""
    if "\\" in key or '"' in key:
        key = key.replace("\\", "\\\\").replace('"', '\\"')
    return key


def reachable_scopes(
    prod_roots: Iterable[str], dev_roots: Iterable[str], edges: Mapping[str, Iterable[str]]
) -> dict[str, Scope]:
    """Each ref's scope by reachability: what a production root leads to is PROD, what
    only development roots lead to is DEV; a ref neither leads to is left out."""
    scopes: dict[str, Scope] = {}
    for scope, roots in ((Scope.PROD, prod_roots), (Scope.DEV, dev_roots)):
        pending = [r for r in roots if r not in scopes]
        while pending:
            current = pending.pop()
            if current in scopes:
                continue
            scopes[current] = scope
            pending.extend(d for d in edges.get(current, ()) if d not in scopes)
    return scopes
