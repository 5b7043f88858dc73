"""gitlab-ci-local's test cases (corpus/gitlab-ci-local/test-cases/*/expected.json), run
with `conveyor run -f`: what each test expects, checked on Conveyor's output. Shared by
tests/interop/test_gitlab.py and bench/interop.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_OUTPUT = re.compile(r"^(.*?)\s*│ (.*)$")
_SUMMARY = re.compile(
    r"^\S (.+?)\s{2,}(success|failed \(allowed\)|failed|timed_out \(allowed\)|timed_out|"
    r"skipped|cancelled)(?:\s|$)"
)
_GCL_LINE = re.compile(r"^(\S.*?)\s+> (.*)$")
_GCL_ANY = re.compile(r"^\s+> (.*)$")
_GCL_STATUS = re.compile(r"^\s*(PASS|FAIL|WARN)\s+(.+?)(?:\s{2,}(pre_script|after_script))?\s*$")
_CHALK = re.compile(r"chalk`\{black\.bg\w+ (PASS|FAIL|WARN) ?\} \{blueBright ([^}]+)\}( \w+)?`")

Runner = Callable[[Sequence[str]], tuple[int, str, str]]
"""Runs `conveyor ARGS` in the case's folder: exit code, stdout, stderr."""


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def lines(self) -> list[tuple[str, str]]:
        """(job, text) for each line a job printed (matrix instances under their job)."""
        out = []
        current = ""  # a run of one job prints its lines without the job's name
        for line in self.out.splitlines():
            m = _OUTPUT.match(line)
            if m:
                out.append((m.group(1).split(" (")[0].strip(), m.group(2)))
            elif line.startswith("▶ "):
                current = line[2:].split(" (")[0].strip()
            elif line.startswith("JOB "):
                break
            elif current and line and line[0] not in "✔✘↻○⊘":
                out.append((current, line))
        return out

    def statuses(self) -> dict[str, str]:
        found = {}
        for line in self.out.splitlines():
            m = _SUMMARY.match(line)
            if m:
                found[m.group(1).split(" (")[0]] = m.group(2)
        return found


def args_for(test: Mapping[str, Any], names: Mapping[str, str]) -> list[str] | str:
    """`conveyor run` arguments for a gitlab-ci-local test, or why it cannot be asked."""
    handler = dict(test.get("handler") or {})
    for key in ("cwd", "stateDir", "noColor", "shellIsolation", "jsonSchemaValidation"):
        handler.pop(key, None)
    args = [
        "run",
        "-f",
        str(handler.pop("file", ".gitlab-ci.yml")),
        "--plain",
        "--no-cache",
        "--no-history",
        "--var",
        "CI_DEFAULT_BRANCH=main",
    ]
    for item in handler.pop("variable", None) or []:
        args += ["--var", str(item)]
    manual = handler.pop("manual", None) or []
    for job in [manual] if isinstance(manual, str) else manual:
        args += ["--manual", names.get(str(job), str(job))]
    # Conveyor runs a named job with what it needs: gitlab-ci-local's --needs.
    needs = handler.pop("needs", False)
    jobs = list(dict.fromkeys(str(j) for j in handler.pop("job", None) or []))
    if handler:
        return f"asks gitlab-ci-local's {', '.join(sorted(handler))}"
    del needs
    args += [names.get(j, j) for j in jobs]
    return args


def check(test: Mapping[str, Any], run: Runner, names: Mapping[str, str]) -> str | None:
    """None when Conveyor's run satisfies the test, else what did not hold (or why the
    test cannot be asked of Conveyor)."""
    if test.get("stderr_contains") or test.get("stderr_not_contains"):
        return "checks gitlab-ci-local's own warnings on stderr"
    wants: list[tuple[str, str, str]] = []  # (kind, job, text)
    for line in test.get("stdout_contains") or []:
        status = _GCL_STATUS.match(line)
        m = _GCL_LINE.match(line)
        any_ = _GCL_ANY.match(line)
        if status:
            wants.append((status.group(1), status.group(2), status.group(3) or ""))
        elif any_:
            wants.append(("line", "", any_.group(1)))
        elif m:
            wants.append(("line", m.group(1).strip(), m.group(2)))
        else:
            return f"expects a line of gitlab-ci-local's own: {line!r}"
    for assertion in test.get("other_assertions") or []:
        chalk = _CHALK.search(assertion)
        if chalk and ".toContain(" in assertion:
            wants.append((chalk.group(1), chalk.group(2), (chalk.group(3) or "").strip()))
        elif assertion.strip() != "expect(true).toBe(false);":
            return f"asserts {assertion[:80]!r}"
    absent: list[str] = []
    for check_ in test.get("line_checks") or []:
        if check_["stream"] != "stdout" or check_["expect"] not in (
            "count == 0",
            "found == undefined",
        ):
            return f"counts lines: {check_['pattern']} {check_['expect']}"
        absent.append(check_["pattern"].strip("/"))
    absent += [re.escape(t) for t in test.get("stdout_not_contains") or []]
    args = args_for(test, names)
    if isinstance(args, str):
        return args
    code, out, err = run(args)
    ran = Ran(code, out, err)
    if test.get("expect_error"):
        if code != 2 or "Traceback" in err or not re.search(r"^[^:\s]+:\d+:\d+: ", err, re.M):
            return f"expected a located error (exit 2), got exit {code}: {err[-300:]}"
        return None
    if code not in (0, 1) or "Traceback" in err:
        return f"exit {code}: {err[-500:]}"
    lines = ran.lines()
    statuses = ran.statuses()
    for kind, job, text in wants:
        conveyor = names.get(job, job)
        if kind == "line":
            if not any((not job or j == conveyor) and t.strip() == text.strip() for j, t in lines):
                return f"no line {text!r} from {job or 'any job'}"
            continue
        got = statuses.get(conveyor)
        if text == "after_script":
            ok = any(
                j == conveyor and t.startswith("conveyor: finally: exit code") for j, t in lines
            )
        elif kind == "PASS":
            ok = got == "success"
        elif kind == "WARN":
            ok = got in ("failed (allowed)", "timed_out (allowed)")
        else:
            ok = got in ("failed", "timed_out")
        if not ok:
            return f"{kind} {job}: Conveyor says {got}"
    for pattern in absent:
        for _, text in lines:
            if re.search(pattern, text):
                return f"printed {text!r}, which must not be"
    return None
