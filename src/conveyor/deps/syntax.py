"""The syntax of the files dependencies are declared in (JSON, JSON with comments, TOML,
YAML, INI): each decoded, or one `ParseError` with its 1-based line and column. Messages
never quote a value (a config file may hold a secret). The manifest check
(conveyor.checks.manifests) and the lockfile readers share it.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

_JSON_NAMES = {"composer.lock", "Pipfile.lock"}
# TypeScript's and VS Code's config files are "JSON with comments" (and trailing commas).
_JSONC_NAMES = re.compile(
    r"(tsconfig|jsconfig)(\..*)?\.json|\.devcontainer\.json|devcontainer\.json"
)
_TOML_NAMES = {"Pipfile", "Cargo.lock", "poetry.lock", "uv.lock", "pdm.lock"}


class ParseError(Exception):
    """A file that does not decode: a one-line message and, when known, the 1-based line
    and column."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


def format_of(path: str) -> str | None:
    """'JSON', 'JSONC', 'TOML', 'YAML', 'INI', or None when no parser fits."""
    name = posixpath.basename(path)
    suffix = posixpath.splitext(name)[1].lower()
    if _JSONC_NAMES.fullmatch(name):
        return "JSONC"
    if suffix == ".json" or name in _JSON_NAMES:
        return "JSON"
    if suffix == ".toml" or name in _TOML_NAMES:
        return "TOML"
    if suffix in (".yml", ".yaml"):
        return "YAML"
    if suffix in (".cfg", ".ini"):
        return "INI"
    return None


def parse_text(text: str, fmt: str) -> Any:
    """The parsed document; ParseError (one-line message, 1-based line/col) on bad syntax."""
    if fmt in ("JSON", "JSONC"):
        try:
            return json.loads(_strip_jsonc(text) if fmt == "JSONC" else text)
        except json.JSONDecodeError as exc:
            # exc.msg: the message without the position, which line and col carry.
            raise ParseError(_one_line(exc.msg), exc.lineno, exc.colno) from None
    if fmt == "TOML":
        # tomli is the parser the standard library's tomllib was taken from, with the
        # same results and messages, but its wheels are compiled: lockfiles run to
        # thousands of tables, and the audit reads them all.
        import tomli

        try:
            return tomli.loads(text)
        except tomli.TOMLDecodeError as exc:
            # exc.msg: the message without the position, which line and col carry.
            raise ParseError(_one_line(exc.msg), exc.lineno, exc.colno) from None
    if fmt == "YAML":
        return _parse_yaml(text)
    if fmt == "INI":
        return _parse_ini(text)
    raise AssertionError(fmt)


def _parse_yaml(text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import ConstructorError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    def load(typ: str) -> list[Any]:
        yaml = YAML(typ=typ)
        yaml.allow_duplicate_keys = False
        return list(yaml.load_all(text))

    try:
        try:
            return load("safe")
        except ConstructorError as exc:
            # Application tags (GitLab's !reference, CloudFormation's !Ref) are valid YAML
            # the safe loader cannot build; the round-trip loader keeps them as tagged nodes.
            if "could not determine a constructor for the tag" not in str(exc.problem):
                raise
            return load("rt")
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p.strip() for p in (exc.context, exc.problem) if p) or "syntax error"
        # A duplicate key's message quotes its values, which may be secrets.
        problem = re.sub(r" with value .*", "", problem)
        if mark is None:
            raise ParseError(_one_line(problem)) from None
        raise ParseError(_one_line(problem), mark.line + 1, mark.column + 1) from None
    except YAMLError as exc:
        raise ParseError(_one_line(str(exc))) from None


def _parse_ini(text: str) -> Any:
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        parser.read_string(text)
    # configparser's own messages quote the offending line, which may hold a secret: say
    # what is wrong without it.
    except configparser.DuplicateOptionError as exc:
        message = f"option {exc.option!r} in section {exc.section!r} is set twice"
        raise ParseError(message, exc.lineno) from None
    except configparser.DuplicateSectionError as exc:
        raise ParseError(f"section [{exc.section}] appears twice", exc.lineno) from None
    except configparser.MissingSectionHeaderError as exc:
        raise ParseError("an option before the first [section] header", exc.lineno) from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else None
        message = "a line that is neither a [section], an option nor a continuation"
        raise ParseError(message, line) from None
    except configparser.Error as exc:
        raise ParseError(_one_line(str(exc))) from None
    return parser


def _strip_jsonc(text: str) -> str:
    """JSON-with-comments as plain JSON: comments and trailing commas become spaces, so
    that line and column numbers of any remaining error stay right."""
    out = list(text)
    i, n = 0, len(text)
    pending_comma: int | None = None
    while i < n:
        c = text[i]
        if c == '"':
            pending_comma = None
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out[i:end] = ["\n" if ch == "\n" else " " for ch in text[i:end]]
            i = end
            continue
        if c == ",":
            pending_comma = i
        elif c in "}]":
            if pending_comma is not None:
                out[pending_comma] = " "
            pending_comma = None
        elif not c.isspace():
            pending_comma = None
        i += 1
    return "".join(out)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def read_text(root: str, path: str) -> str:
    """The file's text; ParseError when it cannot be read or is not UTF-8."""
    try:
        raw = (Path(root) / path).read_bytes()
    except FileNotFoundError:
        raise ParseError("the file is missing from the working tree") from None
    except OSError as exc:
        raise ParseError(f"cannot read it: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ParseError("not UTF-8 text", line) from None


def location_of(path: str, exc: ParseError) -> str:
    if exc.line is None:
        return path
    if exc.col is None:
        return f"{path}:{exc.line}"
    return f"{path}:{exc.line}:{exc.col}"
