"""The build scan's test cases, at the scale of a real suite (issue 13): the failures
listed first with their messages, then every job's cases grouped by suite and
collapsed into counts, each group a <details> to open, and a search box over them.

A pytest report is one JUnit suite for the whole run, so the group of a case is its class
or module (the dotted part of its name before the test's own) when the name has one, and
its JUnit suite otherwise."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from conveyor.export.html_assets import d, e, label
from conveyor.history.record import CaseRow

FAILING = ("failed", "error")
FULL_FAILURES = 50
"""Failures shown with their messages at once; the rest wait behind one <details>."""
OPEN_GROUPS_UP_TO = 40
"""Groups listed at once (jobs with failures first); a job whose groups would go past it
shows only its counts until opened, so that the page stays a few screens tall."""
_ORDER = ("failed", "error", "skipped", "passed")
_PATH = re.compile(r"[\w$/-]+(?:\.[\w$/-]+)*")
"""A module or class path; a name with spaces (Jest's sentences) has no group in it."""


@dataclass
class _Group:
    label: str
    prefix: str
    """What the names shown leave out, for the search to match whole names."""
    cases: list[tuple[int, str, CaseRow]] = field(default_factory=list)


def counts(cases: Sequence[CaseRow]) -> str:
    """'3000 tests: 2 failed, 40 skipped, 2958 passed': worst first."""
    by: dict[str, int] = {}
    for case in cases:
        by[case.status] = by.get(case.status, 0) + 1
    order = sorted(by, key=lambda s: (_ORDER.index(s) if s in _ORDER else len(_ORDER), s))
    noun = "test" if len(cases) == 1 else "tests"
    return f"{len(cases)} {noun}: " + ", ".join(f"{by[s]} {s}" for s in order)


def _split(case: CaseRow) -> tuple[str, str]:
    """(group, name within it): a dotted module or class path before the test's name."""
    head = case.name.split("[", 1)[0]  # a parameter may hold dots of its own
    if "." in head:
        group = head.rsplit(".", 1)[0]
        if _PATH.fullmatch(group):
            return group, case.name[len(group) + 1 :]
    return "", case.name


def failed_section(tests: Sequence[CaseRow]) -> list[str]:
    """Every failing case with its message, in report order (none failed: nothing)."""
    failing = [(i, c) for i, c in enumerate(tests) if c.status in FAILING]
    if not failing:
        return []
    items = [
        f'<li id="case-{i}">{label(c.status)} <span class="n">{e(c.name)}</span> '
        f'<span class="muted">in {e(c.job)}{", " + e(c.suite) if c.suite else ""}, '
        f"{d(c.duration)}</span>" + (f"<pre>{e(c.message)}</pre>" if c.message else "") + "</li>"
        for i, c in failing
    ]
    parts = [
        f'<h2 id="failed-tests">Failed tests <span class="muted">({len(failing)} of '
        f"{len(tests)})</span></h2>",
        '<ol class="failed">',
        *items[:FULL_FAILURES],
        "</ol>",
    ]
    if len(items) > FULL_FAILURES:
        parts += [
            f"<details><summary>{len(items) - FULL_FAILURES} more failed tests</summary>",
            '<ol class="failed">',
            *items[FULL_FAILURES:],
            "</ol></details>",
        ]
    return parts


def _failing(cases: Sequence[CaseRow]) -> bool:
    return any(c.status in FAILING for c in cases)


def _grouped(tests: Sequence[CaseRow]) -> list[tuple[str, list[_Group]]]:
    """Each job's groups of cases, jobs and groups with failures first, else in the
    reports' order."""
    jobs: dict[str, dict[str, _Group]] = {}
    for i, case in enumerate(tests):
        name, short = _split(case)
        by_key = jobs.setdefault(case.job, {})
        key = name or case.suite
        if key not in by_key:
            prefix = f"{name}." if name else ""
            by_key[key] = _Group(label=name or case.suite or "(no suite)", prefix=prefix)
        by_key[key].cases.append((i, short, case))
    out = [
        (job, sorted(by_key.values(), key=lambda g: not _failing([c for _, _, c in g.cases])))
        for job, by_key in jobs.items()
    ]
    return sorted(out, key=lambda jg: not _failing([c for g in jg[1] for _, _, c in g.cases]))


def suites_section(tests: Sequence[CaseRow]) -> list[str]:
    """Each job's cases by group, collapsed into counts, with a search box over the
    names (no test cases: nothing)."""
    if not tests:
        return []
    parts = [
        f'<h2 id="tests">Tests <span class="muted">({e(counts(tests))})</span></h2>',
        '<p class="find" hidden><label>Find a test: <input type="search" id="find" '
        'placeholder="part of its name" autocomplete="off"></label> '
        '<span id="found" class="muted" role="status"></span></p>',
    ]
    budget = OPEN_GROUPS_UP_TO
    for job, groups in _grouped(tests):
        cases = [c for g in groups for _, _, c in g.cases]
        opened = " open" if len(groups) <= budget else ""
        budget -= len(groups) if opened else 0
        parts.append(
            f'<details class="job"{opened}><summary><span class="w">{e(job)}</span> '
            f'<span class="muted">{e(counts(cases))}</span></summary><div>'
        )
        parts += (_group(g) for g in groups)
        parts.append("</div></details>")
    return parts


def _group(group: _Group) -> str:
    cases = [c for _, _, c in group.cases]
    bad = sum(1 for c in cases if c.status in FAILING)
    flag = f"{label('failed', f'{bad} failing')} " if bad else ""
    items = "".join(_case(i, short, c) for i, short, c in group.cases)
    return (
        f'<details class="suite" data-prefix="{e(group.prefix)}"><summary>{flag}'
        f'<span class="n">{e(group.label)}</span> <span class="muted">{e(counts(cases))}'
        f'</span></summary><ul class="cases">{items}</ul></details>'
    )


def _case(index: int, short: str, case: CaseRow) -> str:
    status = label(case.status)
    if case.status in FAILING:
        status = f'<a href="#case-{index}">{status}</a>'  # its message is above
        note = ""
    elif case.message:
        note = f' <span class="muted">{e(case.message[:300])}</span>'
    else:
        note = ""
    return f'<li>{status} <span class="n">{e(short)}</span>{note}</li>'
