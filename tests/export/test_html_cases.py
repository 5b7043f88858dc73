"""The build scan's test groups: a module or class where the name has one, else the
JUnit suite, as each runner's reports name their cases."""

from __future__ import annotations

import re

import pytest

from conveyor.export.html_cases import counts, suites_section
from conveyor.history.record import CaseRow


def _case(suite: str, name: str, status: str = "passed") -> CaseRow:
    return CaseRow(job="test", suite=suite, name=name, status=status, message="")


def _groups(*cases: CaseRow) -> list[tuple[str, str, list[str]]]:
    """(group shown, search prefix, names shown) of each group, in page order."""
    page = "".join(suites_section(cases))
    found = re.findall(
        r'<details class="suite" data-prefix="([^"]*)"><summary>.*?<span class="n">([^<]*)'
        r"</span>.*?<ul class=\"cases\">(.*?)</ul>",
        page,
    )
    return [
        (label, prefix, re.findall(r'<span class="n">([^<]*)</span>', items))
        for prefix, label, items in found
    ]


@pytest.mark.parametrize(
    ("cases", "groups"),
    [
        pytest.param(  # one suite for the whole run: the module is the group
            [_case("pytest", "tests.a.test_x.test_one"), _case("pytest", "tests.b.test_y[1.5]")],
            [
                ("tests.a.test_x", "tests.a.test_x.", ["test_one"]),
                ("tests.b", "tests.b.", ["test_y[1.5]"]),
            ],
            id="pytest, a dot in a parameter",
        ),
        pytest.param(
            [_case("com.x.FooTest", "com.x.FooTest.testBar")],
            [("com.x.FooTest", "com.x.FooTest.", ["testBar"])],
            id="surefire",
        ),
        pytest.param(  # sentences with dots are names, not paths
            [_case("Cart", "Cart adds 1.5 items.Cart adds 1.5 items")],
            [("Cart", "", ["Cart adds 1.5 items.Cart adds 1.5 items"])],
            id="jest",
        ),
        pytest.param(
            [_case("github.com/x/pkg", "github.com/x/pkg.TestRun")],
            [("github.com/x/pkg", "github.com/x/pkg.", ["TestRun"])],
            id="go",
        ),
        pytest.param(
            [_case("", "test_plain"), _case("s", "ok"), _case("s", "bad", "failed")],
            [("s", "", ["ok", "bad"]), ("(no suite)", "", ["test_plain"])],
            id="no path: the suite, failing groups first",
        ),
    ],
)
def test_cases_are_grouped_by_module_or_class(
    cases: list[CaseRow], groups: list[tuple[str, str, list[str]]]
) -> None:
    assert _groups(*cases) == groups


def test_counts_name_the_worst_first() -> None:
    cases = [_case("s", str(i), s) for i, s in enumerate(["passed", "skipped", "error", "failed"])]
    assert counts(cases) == "4 tests: 1 failed, 1 error, 1 skipped, 1 passed"
    assert counts(cases[:1]) == "1 test: 1 passed"
