"""The format of the file a job's `$CONVEYOR_OUTPUT` names: GitHub's `$GITHUB_OUTPUT`,
`NAME=value` lines and multi-line values as `NAME<<DELIMITER`, the lines, then
`DELIMITER` alone on a line.

Here, below both `run` (the local scheduler, `run.values`) and `worker` (a remote
execution's job writes the same file on a worker, which sends the values back in its
result), since those two may not import each other.
"""

from __future__ import annotations

import re

MAX_BYTES = 1024 * 1024
"""What is read of a job's values file (GitHub allows 1 MB of outputs per job)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def parse(text: str) -> tuple[dict[str, str], list[str]]:
    """The values in a file's text, and a warning for each line that is not one."""
    values: dict[str, str] = {}
    warnings: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i].removesuffix("\r")
        number = i + 1
        i += 1
        if not line.strip():
            continue
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc != -1 and (equals == -1 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not delimiter:
                warnings.append(f"line {number}: {_shown(line)}: no delimiter after '<<'")
                continue
            body: list[str] = []
            while i < len(lines) and lines[i].removesuffix("\r") != delimiter:
                body.append(lines[i].removesuffix("\r"))
                i += 1
            if i >= len(lines):
                warnings.append(
                    f"line {number}: {_shown(line)}: no line '{delimiter}' ends the value"
                )
                break
            i += 1  # the delimiter
            value = "\n".join(body)
        elif equals != -1:
            name, value = line[:equals], line[equals + 1 :]
        else:
            warnings.append(
                f"line {number}: {_shown(line)}: expected NAME=value or NAME<<DELIMITER"
            )
            continue
        if not _NAME.fullmatch(name):
            warnings.append(
                f"line {number}: {_shown(line)}: {name!r} is not a value name "
                "(letters, digits, _ and -, not starting with a digit)"
            )
            continue
        values[name] = value
    return values, warnings


def _shown(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:57] + "...")


def decode(data: bytes) -> tuple[dict[str, str], list[str]]:
    """The values in a file's bytes (up to MAX_BYTES of them), and the lines to add to
    the job's log: malformed lines, a file larger than MAX_BYTES."""
    notes: list[str] = []
    if len(data) > MAX_BYTES:
        data = data[:MAX_BYTES]
        notes.append(
            f"conveyor: $CONVEYOR_OUTPUT is larger than {MAX_BYTES // 1024} KiB: "
            "only the first KiB up to that were read"
        )
    values, warnings = parse(data.decode("utf-8", "replace"))
    notes += [f"conveyor: $CONVEYOR_OUTPUT {w}: ignored" for w in warnings]
    return values, notes


def read(path: str) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """The values in the file at `path` (none when it is missing or empty), and the lines
    to add to the job's log (see `decode`)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError:
        return (), []
    values, notes = decode(data)
    return tuple(values.items()), notes
