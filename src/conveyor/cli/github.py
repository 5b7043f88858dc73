"""On GitHub Actions: failed gates and checks as workflow annotations (shown on the run
and, with a file and line, on the pull request's diff), and the gate table in the job's
step summary ($GITHUB_STEP_SUMMARY), beside the plain log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from conveyor.events import ChecksFinished, Event, RunFinished
from conveyor.model import CheckResult, GateResult


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def check_annotation(c: CheckResult) -> str:
    """A failed check as a workflow command: an error or warning, on its file and line
    when it has one."""
    kind = "error" if c.blocking else "warning"
    where = ""
    if c.location and ":" in c.location and c.location.split(":")[1].isdigit():
        parts = c.location.split(":")
        where = f"file={_prop(parts[0])},line={parts[1]},"
        if len(parts) > 2 and parts[2].isdigit():
            where += f"col={parts[2]},"
    elif c.location and "*" not in c.location:
        where = f"file={_prop(c.location)},"
    message = f"expected {c.expected}, found {c.found}" + (f". Fix: {c.hint}" if c.hint else "")
    return f"::{kind} {where}title={_prop('check ' + c.check)}::{_data(message)}"


def gate_annotation(g: GateResult) -> str:
    """A failed gate as a workflow command: an error, or a warning for a `warn` gate."""
    kind = "error" if g.blocking else "warning"
    message = f"measured {g.measured}, wanted {g.threshold}" + (f". {g.detail}" if g.detail else "")
    return f"::{kind} title={_prop(f'gate {g.gate} ({g.scope})')}::{_data(message)}"


def summary_markdown(event: RunFinished) -> str:
    """The run's gates and failed checks as Markdown tables, for the step summary."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    verdict = {"success": "succeeded", "failed": "failed"}.get(event.status, event.status)
    lines = [f"### Conveyor: run {event.run_id} {verdict}", ""]
    gates = event.all_gates
    if gates:
        lines += [
            "| gate | scope | measured | threshold | result |",
            "| --- | --- | --- | --- | --- |",
        ]
        for g in gates:
            result = "✅ passed" if g.passed else ("❌ failed" if g.blocking else "⚠️ warning")
            lines.append(
                f"| {cell(g.gate)} | {cell(g.scope)} | {cell(g.measured)} | "
                f"{cell(g.threshold)} | {result} |"
            )
        lines.append("")
    failed = [c for c in event.checks if not c.ok]
    if failed:
        lines += ["| check | expected | found | fix |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {cell(c.check)} | {cell(c.expected)} | {cell(c.found)} | {cell(c.hint)} |"
            for c in failed
        ]
        lines.append("")
    return "\n".join(lines) + "\n"


class GitHubSink:
    """Annotations on standard output (where the runner reads workflow commands) and the
    step summary, for runs under GitHub Actions."""

    events = (ChecksFinished, RunFinished)

    def __init__(self, stream: TextIO, environ: Mapping[str, str]) -> None:
        self.out = stream
        self.summary_file = environ.get("GITHUB_STEP_SUMMARY") or None

    def handle(self, event: Event) -> None:
        """Annotate the failed checks as they are known, the failed gates and the step
        summary at the end."""
        if isinstance(event, ChecksFinished):
            for c in event.results:
                if not c.ok:
                    self.out.write(check_annotation(c) + "\n")
        elif isinstance(event, RunFinished):
            for g in event.all_gates:
                if not g.passed:
                    self.out.write(gate_annotation(g) + "\n")
            self.out.flush()
            if self.summary_file and (event.all_gates or event.checks):
                with open(self.summary_file, "a", encoding="utf-8") as fh:
                    fh.write(summary_markdown(event))

    def close(self) -> None:
        """Flush the annotations written."""
        self.out.flush()
