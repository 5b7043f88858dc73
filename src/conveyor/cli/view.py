"""Terminal sinks: plain lines for CI and pipes, a rich live view on a terminal."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from conveyor.events import (
    ChecksFinished,
    Event,
    JobFinished,
    JobOutput,
    JobRetrying,
    JobStarted,
    JobWaiting,
    RunFinished,
    RunStarted,
)
from conveyor.fsutil import log_tail
from conveyor.model import GateResult, JobResult, JobStatus
from conveyor.units import format_duration

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table

MARK = {
    JobStatus.SUCCESS: "✔",
    JobStatus.FAILED: "✘",
    JobStatus.TIMED_OUT: "⏱",
    JobStatus.CANCELLED: "⊘",
    JobStatus.SKIPPED: "○",
}
STYLE = {
    JobStatus.SUCCESS: "green",
    JobStatus.FAILED: "red",
    JobStatus.TIMED_OUT: "red",
    JobStatus.CANCELLED: "yellow",
    JobStatus.SKIPPED: "dim",
}


def _rel(path: str | None) -> str:
    if not path:
        return ""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def status_text(result: JobResult) -> str:
    """A job's status as the tables show it: 'cached', 'failed (allowed)', 'success'..."""
    if result.cached:
        return "cached (remote)" if result.cache_tier == "remote" else "cached"
    if result.allowed_failure:
        return f"{result.status.value} (allowed)"
    return result.status.value


# Above this many jobs, the closing table leaves out cache hits (the closing line counts
# them, and each had its own line as it finished): a 1,000-row table of "cached" is noise.
LIST_CACHED_UP_TO = 30


def listed(results: tuple[JobResult, ...]) -> tuple[JobResult, ...]:
    """The jobs the closing table shows."""
    if len(results) <= LIST_CACHED_UP_TO:
        return results
    return tuple(r for r in results if not r.cached)


def summary_rows(results: tuple[JobResult, ...]) -> list[tuple[str, str, str, str, str]]:
    """The closing table's rows: job (with its mark), status, duration, exit code, reason."""
    rows = []
    for r in results:
        duration = format_duration(r.duration) if r.duration is not None else "-"
        code = "-" if r.exit_code is None else str(r.exit_code)
        reason = "" if r.cached else r.reason
        rows.append((f"{MARK[r.status]} {r.name}", status_text(r), duration, code, reason))
    return rows


def failure_tail(result: JobResult, lines: int = 20) -> list[str]:
    """The last lines of a failed job's log: with --quiet, what a user needs to see why."""
    if result.status not in (JobStatus.FAILED, JobStatus.TIMED_OUT) or not result.log_path:
        return []
    return log_tail(result.log_path, lines) or []


def closing_line(event: RunFinished) -> str:
    """The run's verdict in one line: counts by status, time the cache saved, gates and
    checks that failed; then the critical path, when it has more than one job."""
    counts: dict[str, int] = {}
    saved = 0.0
    for r in event.results:
        key = "allowed to fail" if r.allowed_failure else ("cached" if r.cached else r.status.value)
        counts[key] = counts.get(key, 0) + 1
        saved += r.saved or 0.0
    parts = ", ".join(f"{n} {k}" for k, n in counts.items())
    if saved:
        parts += f" (the cache saved {format_duration(saved)})"
    verdict = {"success": "Run succeeded", "failed": "Run failed", "interrupted": "Run interrupted"}
    text = f"{verdict[event.status]} in {format_duration(event.wall_time)}: {parts}"
    gates = event.all_gates
    if gates:
        failed = [f"{g.gate} ({g.scope})" for g in gates if g.blocking]
        text += f"; {len(gates) - len(failed)} of {len(gates)} gates passed"
        if failed:
            text += f"; failed: {', '.join(failed)}"
    blocking = [c.check for c in event.checks if c.blocking]
    if blocking:
        text += f"; checks failed: {', '.join(blocking)}"
    if len(event.critical_path) > 1:
        text += f"\ncritical path: {' -> '.join(event.critical_path)}"
    return text


def waiting_line(event: JobWaiting) -> str:
    """`⏸ deploy waits for resource group 'prod', held by another run (pid 12, ...)`."""
    return (
        f"⏸ {event.name} waits for resource group '{event.group}', "
        f"held by another run ({event.holder})"
    )


def table_lines(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(head)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (head, *rows)
    ]


def gate_table(gates: Sequence[GateResult]) -> list[str]:
    """Every gate, measured against its threshold, then what failed and why: the table
    at the end of a run, in `conveyor show` and in `conveyor gates`."""
    if not gates:
        return []
    rows = [
        (
            g.gate,
            g.scope,
            g.measured,
            g.threshold,
            "passed" if g.passed else ("FAILED" if g.blocking else "failed (warn)"),
        )
        for g in gates
    ]
    lines = table_lines(("GATE", "SCOPE", "MEASURED", "THRESHOLD", "RESULT"), rows)
    lines += [f"  {g.gate} ({g.scope}): {g.detail}" for g in gates if not g.passed and g.detail]
    return lines


def check_lines(event: ChecksFinished) -> list[str]:
    """Checks before or after the build: one line each; a failure says what was expected,
    what was found, and how to fix it."""
    title = "checks before the build" if event.phase == "before" else "checks after the build"
    lines = [f"{title}:"]
    width = min(32, max(len(c.check) for c in event.results))
    for c in event.results:
        mark = "✔" if c.ok else ("✘" if c.blocking else "!")
        where = f" [{c.location}]" if c.location and not c.ok else ""
        lines.append(f"  {mark} {c.check:<{width}}  {c.found}{where}")
        if not c.ok:
            lines.append(f"      expected {c.expected}")
            if c.hint:
                lines.append(f"      fix: {c.hint}")
    return lines


def run_header(event: RunStarted) -> str:
    """The run's first line: how many jobs, of which pipeline, for what, and its id."""
    ctx = event.context
    facts = [
        f"branch {ctx.branch}" if ctx.branch else "",
        f"tag {ctx.tag}" if ctx.tag else "",
        f"event {ctx.event}",
    ]
    where = ", ".join(f for f in facts if f)
    return (
        f"conveyor: {len(event.jobs)} job(s) of {event.pipeline} ({where}), "
        f"{event.parallelism} at a time; run {event.run_id}"
    )


class PlainView:
    """Line-based output: safe for CI logs and pipes, one event per line."""

    FLUSH_EVERY = 0.1
    events = (
        RunStarted,
        JobStarted,
        JobOutput,
        JobRetrying,
        JobWaiting,
        JobFinished,
        ChecksFinished,
        RunFinished,
    )

    def __init__(
        self, stream: TextIO | None = None, *, show_output: bool = True, explain: bool = False
    ) -> None:
        self.out = stream or sys.stdout
        self.show_output = show_output
        self.explain = explain
        self.prefix = False
        self.width = 0
        self.replaying: set[str] = set()
        self._flushed = 0.0
        self._pending = False

    def write(self, text: str) -> None:
        """One line out (flushed by `_flush`, not here)."""
        self.out.write(text + "\n")
        self._pending = True

    def handle(self, event: Event) -> None:
        """Print what the event says, as lines."""
        if isinstance(event, RunStarted):
            self.prefix = event.parallelism > 1 and len(event.jobs) > 1
            self.width = min(28, max((len(j) for j in event.jobs), default=0))
            self.write(run_header(event))
        elif isinstance(event, JobStarted):
            if event.cached:
                self.replaying.add(event.name)
            else:
                again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
                self.write(f"▶ {event.name}{again}")
        elif isinstance(event, JobOutput):
            if self.show_output:
                if self.prefix:
                    self.write(f"{event.name[: self.width]:<{self.width}} │ {event.line}")
                else:
                    self.write(event.line)
        elif isinstance(event, JobWaiting):
            self.write(waiting_line(event))
        elif isinstance(event, JobRetrying):
            self.write(
                f"↻ {event.name}: {event.reason}; retrying in {format_duration(event.delay)}"
            )
        elif isinstance(event, JobFinished):
            self.write(self.finished_line(event.result))
            if self.explain:
                for reason in event.result.miss_reasons:
                    self.write(f"  cache miss: {reason}")
            if not self.show_output:
                for line in failure_tail(event.result):
                    self.write(f"  │ {line}")
        elif isinstance(event, ChecksFinished):
            for line in check_lines(event):
                self.write(line)
        elif isinstance(event, RunFinished):
            self.summary(event)
        self._flush(event)

    def _flush(self, event: Event) -> None:
        """Flush at once, except within a burst of cache hits (a write per line cost more
        than the hit itself): those are flushed every FLUSH_EVERY seconds, and by the
        next event of a job that executes, which always comes before any wait."""
        if isinstance(event, JobFinished):
            burst = event.result.cached
            self.replaying.discard(event.result.name)
        elif isinstance(event, JobStarted | JobOutput):
            burst = event.name in self.replaying
        else:
            burst = False
        if not self._pending or (burst and time.monotonic() - self._flushed < self.FLUSH_EVERY):
            return
        self.out.flush()
        self._pending = False
        self._flushed = time.monotonic()

    @staticmethod
    def finished_line(r: JobResult) -> str:
        """The line of a finished job: its mark, name, and how it ended."""
        if r.cached:
            saved = f", saved {format_duration(r.saved)}" if r.saved else ""
            tier = "the remote cache, " if r.cache_tier == "remote" else ""
            return f"{MARK[r.status]} {r.name} cached ({tier}{r.reason}{saved})"
        took = f" in {format_duration(r.duration)}" if r.duration is not None else ""
        if r.worker:
            took += f" on {r.worker}"
        if r.status is JobStatus.SUCCESS:
            return f"{MARK[r.status]} {r.name}{took}"
        text = f"{MARK[r.status]} {r.name} {status_text(r)}{took}"
        if r.reason:
            text += f": {r.reason}"
        if r.log_path and r.status is not JobStatus.SKIPPED:
            text += f" (log: {_rel(r.log_path)})"
        return text

    def summary(self, event: RunFinished) -> None:
        """The closing table of jobs, the gate table, the closing line."""
        rows = summary_rows(listed(event.results))
        if rows:
            head = ("JOB", "STATUS", "DURATION", "EXIT", "REASON")
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head[:4])]
            self.write("")
            self.write(
                "  ".join(h.ljust(w) for h, w in zip(head[:4], widths, strict=True))
                + "  "
                + head[4]
            )
            for row in rows:
                line = "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True))
                self.write(f"{line}  {row[4]}".rstrip())
        gates = gate_table(event.all_gates)
        if gates:
            self.write("")
            for line in gates:
                self.write(line)
        self.write(closing_line(event))

    def close(self) -> None:
        """Flush what is left."""
        self.out.flush()


class LiveView:
    """On a terminal: a live table of running jobs, output above it, a table at the end."""

    events = PlainView.events

    def __init__(
        self, stream: TextIO | None = None, *, show_output: bool = True, explain: bool = False
    ) -> None:
        from rich.console import Console

        self.explain = explain
        self.console = Console(file=stream or sys.stdout, highlight=False)
        self.show_output = show_output
        self.live: Live | None = None
        self.running: dict[str, tuple[float, int]] = {}
        self.done = 0
        self.total = 0
        self.prefix = False
        self.width = 0
        self.colors = ("cyan", "magenta", "blue", "yellow", "green", "bright_cyan")
        self.color_of: dict[str, str] = {}

    def _render(self) -> Table:
        import time

        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        now = time.time()
        for name, (since, attempt) in list(self.running.items())[:12]:
            again = f" (attempt {attempt})" if attempt > 1 else ""
            table.add_row(Spinner("dots"), name + again, format_duration(now - since))
        more = len(self.running) - 12
        if more > 0:
            table.add_row("", f"… and {more} more", "")
        table.add_row("", f"[dim]{self.done}/{self.total} done[/dim]", "")
        return table

    def handle(self, event: Event) -> None:
        """Update the live table, or print above it."""
        from rich.live import Live
        from rich.markup import escape

        if isinstance(event, RunStarted):
            self.total = len(event.jobs) + len(event.skipped)
            self.prefix = event.parallelism > 1 and len(event.jobs) > 1
            self.width = min(28, max((len(j) for j in event.jobs), default=0))
            self.console.print(escape(run_header(event)))
            self.live = Live(
                self._render(),
                console=self.console,
                refresh_per_second=8,
                transient=True,
                get_renderable=self._render,
            )
            self.live.start()
        elif isinstance(event, JobStarted):
            self.running[event.name] = (event.time, event.attempt)
        elif isinstance(event, JobOutput):
            if self.show_output:
                if self.prefix:
                    color = self.color_of.setdefault(
                        event.name, self.colors[len(self.color_of) % len(self.colors)]
                    )
                    self.console.print(
                        f"[{color}]{escape(event.name)}[/{color}] │ {escape(event.line)}"
                    )
                else:
                    self.console.print(escape(event.line))
        elif isinstance(event, JobWaiting):
            self.console.print(f"[yellow]{escape(waiting_line(event))}[/yellow]")
        elif isinstance(event, JobRetrying):
            self.console.print(
                f"[yellow]↻ {escape(event.name)}[/yellow]: {escape(event.reason)}; "
                f"retrying in {format_duration(event.delay)}"
            )
        elif isinstance(event, JobFinished):
            r = event.result
            self.running.pop(r.name, None)
            self.done += 1
            style = STYLE[r.status]
            self.console.print(f"[{style}]{escape(PlainView.finished_line(r))}[/{style}]")
            if self.explain:
                for reason in r.miss_reasons:
                    self.console.print(f"  [yellow]cache miss:[/yellow] {escape(reason)}")
            if not self.show_output:
                for line in failure_tail(r):
                    self.console.print(f"  [dim]│[/dim] {escape(line)}")
        elif isinstance(event, ChecksFinished):
            for line in check_lines(event):
                self.console.print(escape(line))
        elif isinstance(event, RunFinished):
            if self.live is not None:
                self.live.stop()
                self.live = None
            self.summary(event)

    def summary(self, event: RunFinished) -> None:
        """The closing table of jobs, the gate table, the closing line, in colour."""
        from rich.markup import escape
        from rich.table import Table

        shown = listed(event.results)
        rows = summary_rows(shown)
        with_reason = any(row[4] for row in rows)
        table = Table(show_edge=False, header_style="bold")
        for col in ("job", "status", "duration", "exit", "reason")[: 5 if with_reason else 4]:
            table.add_column(col, justify="right" if col in ("duration", "exit") else "left")
        for r, row in zip(shown, rows, strict=True):
            style = STYLE[r.status]
            cells = [escape(row[0]), f"[{style}]{row[1]}[/{style}]", row[2], row[3], escape(row[4])]
            table.add_row(*cells[: 5 if with_reason else 4])
        if rows:
            self.console.print()
            self.console.print(table)
        gates = gate_table(event.all_gates)
        if gates:
            self.console.print()
            for line in gates:
                style = (
                    "red"
                    if line.endswith("FAILED")
                    else ("yellow" if line.endswith("(warn)") else "")
                )
                self.console.print(f"[{style}]{escape(line)}[/{style}]" if style else escape(line))
        style = "green" if event.status == "success" else "red"
        self.console.print(f"[bold {style}]{closing_line(event)}[/bold {style}]", highlight=False)

    def close(self) -> None:
        """Stop the live table (a run that raised never sent RunFinished)."""
        if self.live is not None:
            self.live.stop()
            self.live = None
