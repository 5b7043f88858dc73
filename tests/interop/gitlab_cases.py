"""gitlab-ci-local's test cases (corpus/gitlab-ci-local/test-cases/*/expected.json), run
with `conveyor run -f`: what each test expects, checked on Conveyor's output. Shared by
tests/interop/test_gitlab.py and bench/interop.py."""

from __future__ import annotations

import json
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
_GCL_INSTANCE = re.compile(r"^(.+?): \[(.*)\]$")
_INSTANCE = re.compile(r"^(.+?) \((.*)\)$")
_OUTPUT_HAS = re.compile(r'^expect\(output\)\.(not\.)?toContain\("((?:[^"\\]|\\.)*)"\);$')
_NO_FAIL = 'expect(writeStreams.stderrLines.join("\\n")).not.toMatch(/FAIL/);'
_CHALK = re.compile(r"chalk`\{black\.bg\w+ (PASS|FAIL|WARN) ?\} \{blueBright ([^}]+)\}( \w+)?`")

Runner = Callable[[Sequence[str]], tuple[int, str, str]]
"""Runs `conveyor ARGS` in the case's folder: exit code, stdout, stderr."""


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def lines(self) -> list[tuple[str, str]]:
        """(job, text) for each line a job printed: the job as the line names it, a
        matrix instance's name cut to the column's width."""
        out = []
        current = ""  # a run of one job prints its lines without the job's name
        for line in self.out.splitlines():
            m = _OUTPUT.match(line)
            if m:
                out.append((m.group(1).strip(), m.group(2)))
            elif line.startswith("▶ "):
                current = line[2:].strip()
            elif line.startswith("JOB "):
                break
            elif current and line and line[0] not in "✔✘↻○⊘":
                out.append((current, line))
        return out

    def statuses(self) -> dict[str, str]:
        """Each job's status in the summary, under its instance name ('build (OS=mac)')
        and under its job's name."""
        found = {}
        for line in self.out.splitlines():
            m = _SUMMARY.match(line)
            if m:
                found[m.group(1)] = m.group(2)
                found.setdefault(m.group(1).split(" (")[0], m.group(2))
        return found

    def status(self, job: str, names: Mapping[str, str]) -> str | None:
        """The status of gitlab-ci-local's `job` (`names` maps its names to Conveyor's,
        matrix instances included)."""
        return self.statuses().get(names.get(job, job))


def _same(label: str, job: str) -> bool:
    """Whether a line labelled `label` is from Conveyor's `job`: the job, one of its
    instances, or the instance `job` names (its name cut to the column's width)."""
    if label == job or label.split(" (")[0] == job:
        return True
    return " (" in label and job.startswith(label)


def instance_names(run: Runner, file: str, names: Mapping[str, str]) -> dict[str, str]:
    """gitlab-ci-local's names of matrix instances ('build: [x64,mac]' for
    parallel:matrix, 'test: [1/2]' for parallel: N) -> Conveyor's ('build (ARCH=x64,
    OS=mac)', 'test (CI_NODE_INDEX=1)'), read from `conveyor list --json`."""
    code, out, _ = run(["list", "--json", "-f", file])
    if code != 0:
        return {}
    back = {v: k for k, v in names.items()}
    items = json.loads(out)
    totals: dict[str, int] = {}
    for item in items:
        totals[item["job"]] = totals.get(item["job"], 0) + 1
    found = {}
    for item in items:
        matrix, job = item["matrix"], back.get(item["job"], item["job"])
        if list(matrix) == ["CI_NODE_INDEX"]:
            found[f"{job}: [{matrix['CI_NODE_INDEX']}/{totals[item['job']]}]"] = item["name"]
        elif matrix:
            found[f"{job}: [{','.join(str(v) for v in matrix.values())}]"] = item["name"]
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
    # Conveyor runs a named job with what it needs, as gitlab-ci-local's --needs does;
    # without it, gitlab-ci-local runs the job alone: Conveyor's --only.
    needs = handler.pop("needs", False)
    jobs = list(dict.fromkeys(str(j) for j in handler.pop("job", None) or []))
    if handler:
        return f"asks gitlab-ci-local's {', '.join(sorted(handler))}"
    if jobs and not needs:
        args.append("--only")
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
    # What the whole of stdout must (True) or must not (False) hold: gitlab-ci-local's
    # `output` is the job's lines and its own; a job's lines are what is compared here.
    output: list[tuple[bool, str]] = []
    no_failure = False
    for assertion in test.get("other_assertions") or []:
        chalk = _CHALK.search(assertion)
        has = _OUTPUT_HAS.match(assertion.strip())
        if chalk and ".toContain(" in assertion:
            wants.append((chalk.group(1), chalk.group(2), (chalk.group(3) or "").strip()))
        elif has:
            output.append((not has.group(1), has.group(2).replace('\\"', '"')))
        elif assertion.strip() == _NO_FAIL:
            # gitlab-ci-local says FAIL on stderr for each job that failed: none may.
            no_failure = True
        elif assertion.strip() != "expect(true).toBe(false);":
            return f"asserts {assertion[:80]!r}"
    absent: list[str] = []
    counted: list[tuple[str, int]] = []
    for check_ in test.get("line_checks") or []:
        count = re.fullmatch(r"count == (\d+)", check_["expect"])
        # A job's stderr is among its lines here (gitlab-ci-local keeps it apart).
        if check_["stream"] not in ("stdout", "stderr"):
            return f"counts lines: {check_['pattern']} {check_['expect']}"
        if check_["expect"] in ("count == 0", "found == undefined"):
            absent.append(check_["pattern"].strip("/"))
        elif count:
            counted.append((check_["pattern"].strip("/"), int(count.group(1))))
        else:
            return f"counts lines: {check_['pattern']} {check_['expect']}"
    # A status line that must not be printed: that job must not end so.
    unwanted: list[tuple[str, str]] = []
    for text in test.get("stdout_not_contains") or []:
        status = _GCL_STATUS.match(text)
        if status and not status.group(3):
            unwanted.append((status.group(1), status.group(2)))
        else:
            absent.append(re.escape(text))
    args = args_for(test, names)
    if isinstance(args, str):
        return args
    file = str((test.get("handler") or {}).get("file", ".gitlab-ci.yml"))
    names = {**names, **instance_names(run, file, names)}
    args = args_for(test, names)
    assert not isinstance(args, str)
    code, out, err = run(args)
    ran = Ran(code, out, err)
    if test.get("expect_error"):
        if code != 2 or "Traceback" in err or not re.search(r"^[^:\s]+:\d+:\d+: ", err, re.M):
            return f"expected a located error (exit 2), got exit {code}: {err[-300:]}"
        return None
    if code not in (0, 1) or "Traceback" in err:
        return f"exit {code}: {err[-500:]}"
    lines = ran.lines()
    for kind, job, text in wants:
        conveyor = names.get(job, job)
        if kind == "line":
            if not any(
                (not job or _same(j, conveyor)) and t.strip() == text.strip() for j, t in lines
            ):
                return f"no line {text!r} from {job or 'any job'}"
            continue
        got = ran.status(job, names)
        if text == "after_script":
            ok = any(
                j == conveyor and t.startswith("conveyor: finally: exit code") for j, t in lines
            )
        else:
            ok = got is not None and _ended(kind, got)
        if not ok:
            return f"{kind} {job}: Conveyor says {got}"
    for pattern in absent:
        for _, text in lines:
            if re.search(pattern, text):
                return f"printed {text!r}, which must not be"
    for pattern, times in counted:
        seen = sum(1 for _, text in lines if re.search(pattern, text))
        if seen != times:
            return f"printed /{pattern}/ {seen} times, not {times}"
    for kind, job in unwanted:
        got = ran.status(job, names)
        if got is not None and _ended(kind, got):
            return f"{job} ended {got}, which gitlab-ci-local's test says it must not"
    for present, text in output:
        if (text in out) != present:
            return f"{'no' if present else 'printed'} {text!r}"
    if no_failure:
        failed = [job for job, status in ran.statuses().items() if _ended("FAIL", status)]
        if failed:
            return f"{', '.join(failed)} failed, which gitlab-ci-local's test says none may"
    return None


def _ended(kind: str, got: str) -> bool:
    """Whether Conveyor's status `got` is gitlab-ci-local's PASS, WARN or FAIL."""
    if kind == "PASS":
        return got == "success"
    if kind == "WARN":
        return got in ("failed (allowed)", "timed_out (allowed)")
    return got in ("failed", "timed_out")
