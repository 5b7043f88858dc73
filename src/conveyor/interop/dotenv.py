"""Reading `.env`-style files (`NAME=value` lines), as act's `--secret-file` and
`--env-file` and docker's `--env-file` take them: `#` comments, an optional `export `,
single quotes taken literally, double quotes with `\\n`, `\\t`, `\\"` and `\\\\` escapes,
spanning lines until the closing quote."""

from __future__ import annotations

import re

from conveyor.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def parse(text: str, file: str) -> dict[str, str]:
    """The file's variables; a located ConfigError for a line that is not one."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise ConfigError(
                "expected NAME=value",
                file=file,
                line=number,
                col=1,
                hint="one variable a line; '#' starts a comment",
            )
        value = value.strip()
        if value.startswith("'"):
            end = value.find("'", 1)
            value = value[1:end] if end != -1 else value[1:]
        elif value.startswith('"'):
            body = value[1:]
            while not _closed(body) and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            if not _closed(body):
                raise ConfigError("unterminated double quote", file=file, line=number, col=1)
            value = re.sub(
                r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), body[: _close(body)]
            )
        else:
            value = value.split(" #", 1)[0].rstrip()
        out[name] = value
    return out


def _close(body: str) -> int:
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == '"':
            return i
        i += 1
    return -1


def _closed(body: str) -> bool:
    return _close(body) != -1


def read(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    return parse(text, path)
