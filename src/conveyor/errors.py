"""The one exception tree of Conveyor, and what each branch means to a user.

    ConveyorError                   every error Conveyor raises on purpose
    ├── UserError                   the user can fix it; exit 2, one clean line
    │   ├── ConfigError             conveyor.yml is wrong; carries file:line:col
    │   │   └── CycleError          `needs` (or `extends`) form a cycle; carries it
    │   └── UsageError              bad command-line arguments (unknown job, ...)
    └── EnvironmentProblem          the machine is not as required; exit 2
        (a tool or secret is missing, git is unusable, ...)

Anything else that escapes is a bug in Conveyor: the CLI prints its traceback and
exits 3. A failed job is not an exception at all: it is a result, reported by the
scheduler's events, and makes the run exit 1.
"""

from __future__ import annotations

from collections.abc import Sequence

ConfigPath = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """Render ('jobs', 'test', 'needs', 0) as 'jobs.test.needs[0]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class ConveyorError(Exception):
    """Base of every deliberate Conveyor error."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UserError(ConveyorError):
    """Something the user wrote or typed is wrong."""


class UsageError(UserError):
    """Bad command-line arguments."""


class ConfigError(UserError):
    """An error in the pipeline file, located by a config path and, once known, line:col.

    The core raises it with `path` only when it has no positions at hand (positions
    cost a second, slower YAML parse); `conveyor.config.locate` fills in line and column.
    """

    def __init__(
        self,
        message: str,
        *,
        path: ConfigPath = (),
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
        at_key: bool = False,
        offset: int = 0,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.file = file
        self.line = line
        self.col = col
        # Point at the key rather than its value (unknown keys, missing keys).
        self.at_key = at_key
        # Characters into the value (an `if:` expression's bad token, say).
        self.offset = offset

    def render(self) -> str:
        where = self.file or "conveyor.yml"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        subject = f"{format_path(self.path)}: " if self.path else ""
        text = f"{where}: {subject}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class CycleError(ConfigError):
    """`needs` form a cycle; `cycle` lists it with the first job repeated at the end."""

    def __init__(self, cycle: Sequence[str], *, path: ConfigPath = (), kind: str = "needs") -> None:
        self.cycle = tuple(cycle)
        super().__init__(
            f"{kind} form a cycle: {' -> '.join(self.cycle)}",
            path=path,
            hint=f"remove one of these {kind} so the jobs can be ordered",
        )


class EnvironmentProblem(ConveyorError):
    """The machine lacks something the pipeline requires (tool, secret, git)."""
