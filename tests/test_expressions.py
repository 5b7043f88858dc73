"""The `if:` language: what it evaluates to, and where it points when it is wrong."""

from __future__ import annotations

import pytest

from conveyor.expressions import ExpressionError, Scope, evaluate, parse, truthy

SCOPE = Scope(
    values={"branch": "release/1.2", "tag": None, "commit": "abc", "event": "push", "ci": None},
    env={"DEPLOY": "yes", "N": "3"},
    matrix={"os": "linux", "python": "3.10"},
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("branch == 'release/1.2'", True),
        ("branch != 'main'", True),
        ("startsWith(branch, 'release/')", True),
        ("endsWith(branch, '1.2') and event == 'push'", True),
        ("tag == null", True),
        ("!tag", True),
        ('not tag && event == "push"', True),
        ("event in ['push', 'tag']", True),
        ("event in ['schedule']", False),
        ("branch =~ '^release/[0-9.]+$'", True),
        ("branch !~ '^release/'", False),
        ("matches(commit, '^a')", True),
        ("env.DEPLOY == 'yes' || false", True),
        ("env.MISSING == null", True),
        ("env.N >= 3", True),
        ("matrix.python == '3.10'", True),
        ("matrix.python == '3.1'", False),
        ("(event == 'tag' || event == 'push') && matrix.os == 'linux'", True),
        ("contains(['a', 'b'], 'b')", True),
    ],
)
def test_evaluates(source: str, expected: bool) -> None:
    assert truthy(evaluate(parse(source), SCOPE)) is expected


@pytest.mark.parametrize(
    ("source", "offset", "message"),
    [
        ("branch = 'main'", 7, "unexpected character '='"),
        ("branch == 'main", 10, "unterminated string"),
        ("(branch == 'main'", 17, "expected ')', found end of expression"),
        ("startsWith(branch)", 0, "startsWith() takes 2 arguments, got 1"),
        (
            "starts(branch, 'x')",
            0,
            "unknown function 'starts' (did you mean 'startsWith'?); "
            "known: startsWith, endsWith, contains, matches",
        ),
        ("matrix.osx == 'linux'", 7, "unknown matrix value 'matrix.osx' (axes: os)"),
        ("branch 'main'", 7, "unexpected 'main' (expected an operator such as == or &&)"),
        ("", 0, "empty expression"),
    ],
)
def test_errors_point_at_the_problem(source: str, offset: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source, matrix_keys=frozenset({"os"}))
    assert info.value.message == message
    assert info.value.offset == offset
