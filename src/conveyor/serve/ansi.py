"""A log line with ANSI escape codes as escaped HTML: colours and styles become spans
with classes (the Content-Security-Policy forbids inline styles), every other escape
sequence is dropped, and the matches of a search are wrapped in <mark>.

The classes: `ansi-b` (bold), `ansi-i` (italic), `ansi-u` (underline), `ansi-fgN` and
`ansi-bgN` for the 16 standard colours (N from 0 to 15; 256-colour and true-colour codes
map to the nearest of the 16)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from markupsafe import Markup, escape

_ESCAPE = re.compile(r"\x1b(?:\[([0-9;:?]*)([A-Za-z])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(slots=True)
class _Style:
    bold: bool = False
    italic: bool = False
    underline: bool = False
    fg: int | None = None
    bg: int | None = None

    def classes(self) -> str:
        names = [
            *(["ansi-b"] if self.bold else []),
            *(["ansi-i"] if self.italic else []),
            *(["ansi-u"] if self.underline else []),
            *([f"ansi-fg{self.fg}"] if self.fg is not None else []),
            *([f"ansi-bg{self.bg}"] if self.bg is not None else []),
        ]
        return " ".join(names)

    def apply(self, params: str) -> None:
        codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                self.bold = self.italic = self.underline = False
                self.fg = self.bg = None
            elif code == 1:
                self.bold = True
            elif code == 3:
                self.italic = True
            elif code == 4:
                self.underline = True
            elif code == 22:
                self.bold = False
            elif code == 23:
                self.italic = False
            elif code == 24:
                self.underline = False
            elif 30 <= code <= 37:
                self.fg = code - 30
            elif 90 <= code <= 97:
                self.fg = code - 90 + 8
            elif code == 39:
                self.fg = None
            elif 40 <= code <= 47:
                self.bg = code - 40
            elif 100 <= code <= 107:
                self.bg = code - 100 + 8
            elif code == 49:
                self.bg = None
            elif code in (38, 48):
                colour, used = _extended(codes[i + 1 :])
                if code == 38:
                    self.fg = colour
                else:
                    self.bg = colour
                i += used
            i += 1


def _extended(rest: list[int]) -> tuple[int | None, int]:
    """A 256-colour (5;N) or true-colour (2;R;G;B) code as the nearest of the 16."""
    if len(rest) >= 2 and rest[0] == 5:
        n = rest[1]
        if n < 16:
            return n, 2
        if n >= 232:  # greys
            return (0 if n < 238 else 8 if n < 250 else 7 if n < 254 else 15), 2
        n -= 16
        r, g, b = n // 36, (n // 6) % 6, n % 6
        return _nearest(r * 51, g * 51, b * 51), 2
    if len(rest) >= 4 and rest[0] == 2:
        return _nearest(rest[1], rest[2], rest[3]), 4
    return None, len(rest)


def _nearest(r: int, g: int, b: int) -> int:
    bright = max(r, g, b) > 191
    index = (1 if r > 127 else 0) | (2 if g > 127 else 0) | (4 if b > 127 else 0)
    return index + (8 if bright else 0)


class Line:
    """One line of a log as text segments, each with the style it was written in."""

    def __init__(self, raw: str, style: _Style) -> None:
        self.segments: list[tuple[str, str]] = []
        pos = 0
        for match in _ESCAPE.finditer(raw):
            self._add(raw[pos : match.start()], style)
            if match.group(2) == "m":
                style.apply(match.group(1) or "0")
            pos = match.end()
        self._add(raw[pos:], style)

    def _add(self, text: str, style: _Style) -> None:
        text = _CONTROL.sub("", text.replace("\t", "    "))
        if text:
            self.segments.append((text, style.classes()))

    @property
    def text(self) -> str:
        """The line without its escape codes."""
        return "".join(text for text, _ in self.segments)

    def html(self, query: str = "") -> tuple[Markup, int]:
        """The line as escaped HTML, and how many matches of `query` (case-insensitive)
        it has, each in a <mark>."""
        marks: list[tuple[int, int]] = []
        if query:
            plain = self.text.casefold()
            needle = query.casefold()
            start = plain.find(needle)
            while start >= 0 and needle:
                marks.append((start, start + len(needle)))
                start = plain.find(needle, start + len(needle))
        out: list[str] = []
        offset = 0
        in_mark = False
        for text, classes in self.segments:
            cuts = sorted(
                {0, len(text)}
                | {p - offset for a, b in marks for p in (a, b) if offset < p < offset + len(text)}
            )
            for a, b in itertools.pairwise(cuts):
                piece = text[a:b]
                at = offset + a
                marked = any(s <= at < e for s, e in marks)
                if marked and not in_mark:
                    out.append("<mark>")
                    in_mark = True
                elif not marked and in_mark:
                    out.append("</mark>")
                    in_mark = False
                part = str(escape(piece))
                out.append(f'<span class="{classes}">{part}</span>' if classes else part)
            offset += len(text)
        if in_mark:
            out.append("</mark>")
        return Markup("".join(out)), len(marks)


def lines(text: str) -> list[Line]:
    """A log's lines, the style carried from one line to the next as a terminal does."""
    style = _Style()
    return [Line(raw, style) for raw in text.split("\n")]
