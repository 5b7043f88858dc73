"""A job's log as the log page shows it: its lines as escaped HTML with the ANSI
colours kept, and the matches of a search marked server-side."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from conveyor.history.record import RunRecord
from conveyor.serve import ansi
from conveyor.serve.files import inside, read_tail

MAX_MATCHES = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    number: int
    html: Markup
    text: str
    matches: int


@dataclass(frozen=True, slots=True, kw_only=True)
class JobLog:
    """A job's log page."""

    run_id: str
    job: str
    status: str
    available: bool
    """False: the job wrote nothing, or its log is gone (or not on this machine)."""
    cut: bool
    """Only the end of a long log is shown."""
    query: str
    lines: tuple[LogLine, ...]
    matches: int
    matching_lines: tuple[int, ...]
    """Numbers of the lines with a match (at most MAX_MATCHES)."""


def job_log(root: str, record: RunRecord, job: str, query: str) -> JobLog | None:
    """The log of `job` in the run (None: the run has no such job)."""
    row = next((j for j in record.jobs if j.name == job), None)
    if row is None:
        return None
    path = inside(root, record.run.id, row.log_path)
    text, cut = read_tail(path) if path else ("", False)
    out = []
    matching: list[int] = []
    total = 0
    if path:
        if text.endswith("\n"):
            text = text[:-1]
        for number, line in enumerate(ansi.lines(text), start=1):
            html, found = line.html(query)
            total += found
            if found and len(matching) < MAX_MATCHES:
                matching.append(number)
            out.append(LogLine(number=number, html=html, text=line.text, matches=found))
    return JobLog(
        run_id=record.run.id,
        job=job,
        status=row.status_text,
        available=path is not None,
        cut=cut,
        query=query,
        lines=tuple(out),
        matches=total,
        matching_lines=tuple(matching),
    )


def raw_log(root: str, record: RunRecord, job: str) -> str | None:
    """The whole log file's path, when the run has that job and its log is readable."""
    row = next((j for j in record.jobs if j.name == job), None)
    return None if row is None else inside(root, record.run.id, row.log_path)
