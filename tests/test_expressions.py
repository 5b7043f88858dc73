"""The `if:` language: what it evaluates to, and where it points when it is wrong."""

from __future__ import annotations

import json

import pytest

from conveyor.expressions import ExpressionError, Scope, evaluate, parse, truthy
from tests.conftest import Project

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
            "known: startsWith, endsWith, contains, matches, fromJSON, success, failure, always, "
            "cancelled",
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


# (left, right) -> what `<`, `<=`, `>`, `>=` give, as docs/configuration.md says:
# numbers, and strings that look like numbers, compare as decimals; anything else makes
# every one of the four false.
ORDERING = [
    ("3", "4", (True, True, False, False)),
    ("4", "3", (False, False, True, True)),
    ("3", "3", (False, True, False, True)),
    ("3", "3.0", (False, True, False, True)),
    ("0", "0.5", (True, True, False, False)),
    ("'10'", "'9'", (False, False, True, True)),  # as numbers, not as text
    ("'3.9'", "'3.12'", (False, False, True, True)),  # decimals, not versions
    ("env.N", "3", (False, True, False, True)),
    ("env.N", "'12'", (True, True, False, False)),
    ("matrix.python", "3.1", (False, True, False, True)),  # '3.10' is 3.1
    ("'abc'", "'abd'", (False, False, False, False)),  # text is not ordered
    ("'abc'", "'abc'", (False, False, False, False)),
    ("'3a'", "4", (False, False, False, False)),
    ("tag", "1", (False, False, False, False)),  # null
    ("null", "0", (False, False, False, False)),
    ("0", "null", (False, False, False, False)),
    ("true", "0", (False, False, False, False)),  # booleans are not numbers
    ("false", "1", (False, False, False, False)),
    ("env.MISSING", "0", (False, False, False, False)),
    ("['1']", "2", (False, False, False, False)),
]


@pytest.mark.parametrize(("left", "right", "expected"), ORDERING)
def test_ordering_truth_table(left: str, right: str, expected: tuple[bool, ...]) -> None:
    got = tuple(evaluate(parse(f"{left} {op} {right}"), SCOPE) for op in ("<", "<=", ">", ">="))
    assert got == expected


def test_ordering_decides_which_jobs_run(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          newer:
            matrix:
              python: ["3.9", "3.10", "3.12"]
            if: matrix.python > 3.10
            run: "true"
          older:
            matrix:
              python: ["3.9", "3.10", "3.12"]
            if: matrix.python <= 3.10
            run: "true"
        """
    )
    result = project.run("run", "--dry-run", "--json")
    assert result.code == 0, result.out + result.err
    will_run = {j["name"]: j["will_run"] for j in json.loads(result.out)["jobs"]}
    # As decimals: 3.9 > 3.1 and 3.12 > 3.1; '3.10' is 3.1 (the documented pitfall).
    assert will_run == {
        "newer (python=3.9)": True,
        "newer (python=3.10)": False,
        "newer (python=3.12)": True,
        "older (python=3.9)": False,
        "older (python=3.10)": True,
        "older (python=3.12)": False,
    }


# `==` and `!=` as docs/configuration.md says: two strings compare as text; otherwise a
# string that looks like a number is that number, and null equals only null.
EQUALITY = [
    ("env.N == 3", True),  # N=3 in the environment: a string, equal to the number
    ("3 == env.N", True),
    ("env.N != 3", False),
    ("env.N == 3.0", True),
    ("env.N == '3'", True),
    ("env.N == '3.0'", False),  # two strings: as text
    ("'3' == '3.0'", False),
    ("matrix.python == 3.1", True),  # '3.10' is the number 3.1
    ("matrix.python == '3.1'", False),
    ("env.DEPLOY == 1", False),
    ("tag == null", True),
    ("tag == ''", False),  # null is not the empty string
    ("tag != ''", True),
    ("null == 0", False),
]


@pytest.mark.parametrize(("source", "expected"), EQUALITY)
def test_equality_between_text_and_numbers(source: str, expected: bool) -> None:
    assert evaluate(parse(source), SCOPE) is expected


def test_needs_values_and_from_json() -> None:
    from conveyor.expressions import EvaluationError, Scope, reads_needs

    node = parse(
        "needs.set.up.values.version == '2' && contains(fromJSON(needs.set.up.values.list), 'b')",
        needs=["set.up"],
    )
    assert reads_needs(node)
    scope = Scope(
        values={}, env={}, matrix={}, needs={"set.up": {"version": "2", "list": '["a", "b"]'}}
    )
    assert evaluate(node, scope) is True
    # A value not written is the empty string, as on GitHub.
    assert evaluate(parse("needs.x.values.nope", needs=["x"]), scope) == ""
    bad = Scope(values={}, env={}, matrix={}, needs={"x": {"v": "[1,"}})
    with pytest.raises(EvaluationError, match="fromJSON: not valid JSON"):
        evaluate(parse("fromJSON(needs.x.values.v)", needs=["x"]), bad)
    assert evaluate(parse("fromJSON('[1, {\"a\": true}]')"), scope) == (1.0, '{"a": true}')


@pytest.mark.parametrize(
    ("source", "offset", "message"),
    [
        ("needs.biuld.values.v == 'x'", 6, "'biuld' is not among the jobs this one needs"),
        ("needs.build.outputs.v", 12, "expected needs.JOB.values.NAME"),
        ("fromJSON('[1,')", 9, "fromJSON: not valid JSON"),
        ("fromJSON(env.X)", 9, "fromJSON() takes needs.JOB.values.NAME or a quoted string"),
    ],
)
def test_needs_and_from_json_errors(source: str, offset: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source, needs=["build"])
    assert message in info.value.message
    assert info.value.offset == offset


def test_status_functions_read_the_scope_and_are_found() -> None:
    from conveyor.expressions import Scope, evaluate, status_calls

    node = parse("always() && (failure() || needs.build.result == 'cancelled')")
    assert [c.func for c in status_calls(node)] == ["always", "failure"]
    scope = Scope(values={}, env={}, matrix={}, status={"failure": False})
    assert evaluate(node, scope) is False
    scope = Scope(values={}, env={}, matrix={}, results={"build": "cancelled"})
    assert evaluate(node, scope) is True
    assert status_calls(parse("branch == 'main'")) == []


def test_needs_result_names_only_jobs_needed() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("needs.tset.result == 'success'", needs=frozenset({"test"}))
    assert "(did you mean 'test'?)" in info.value.message
    assert info.value.offset == 6


# Hostile input (issue 12): a pattern chosen by the file's author and a branch name
# chosen by whoever pushes it must not hang planning, nor nesting crash the parser.


@pytest.mark.timeout(20)
def test_a_catastrophic_pattern_on_a_long_branch_does_not_hang(project: Project) -> None:
    # With a backtracking engine `(a+)+$` against 'aaa...a-' takes 2**n steps: a
    # 40-character branch name already held `run` for hours.
    project.pipeline(
        """
        jobs:
          deploy:
            if: branch =~ '(a+)+$' || matches(branch, '^(a|aa)+$')
            run: "true"
        """
    )
    project.commit()
    project.git("checkout", "-q", "-b", "a" * 200 + "-")
    result = project.run("run", "--dry-run", "--json")
    assert result.code == 0, result.out + result.err
    assert {j["name"]: j["will_run"] for j in json.loads(result.out)["jobs"]} == {"deploy": False}


@pytest.mark.timeout(20)
def test_regex_search_is_linear_in_the_text() -> None:
    scope = Scope(values={"branch": "a" * 1_000_000 + "!"}, env={}, matrix={})
    assert evaluate(parse("branch =~ '(a+)+$'"), scope) is False
    assert evaluate(parse("branch =~ '(x+x+)+y'"), scope) is False
    assert evaluate(parse("branch =~ 'a!$'"), scope) is True


@pytest.mark.parametrize(
    ("source", "offset"),
    [
        ("(" * 200 + "true" + ")" * 200, 64),
        ("!" * 500 + "true", 63),
        ("[" * 100 + "]" * 100 + " == 1", 63),
        (" || ".join(["true"] * 200), 64 * 8 - 3),
        ("contains(" * 100 + "'a'" + ", 'b')" * 100, 64 * 9),
    ],
)
def test_nesting_deeper_than_the_limit_is_an_error(source: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    assert info.value.message.startswith("expression nested too deeply (more than 64 levels")
    assert info.value.offset == offset


def test_nesting_up_to_the_limit_evaluates() -> None:
    assert evaluate(parse("(" * 63 + "true" + ")" * 63), SCOPE) is True
    assert evaluate(parse(" || ".join(["false"] * 63 + ["true"])), SCOPE) is True


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a)\\\\1", "invalid escape sequence: \\1"),
        ("(?<=v)1", "invalid perl operator: (?<"),
        ("a{2000}", "invalid repetition size: {2000}"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_at_parse(pattern: str, why: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(f"branch =~ '{pattern}'")
    assert why in info.value.message
    assert info.value.offset == 10


def test_a_pattern_from_a_value_is_checked_when_evaluated() -> None:
    from conveyor.errors import UserError

    scope = Scope(values={"branch": "main"}, env={"P": "(?=main)"}, matrix={})
    with pytest.raises(UserError, match=r"if: the pattern '\(\?=main\)' is not a valid"):
        evaluate(parse("branch =~ env.P"), scope)


def test_a_value_named_result_is_a_value() -> None:
    # needs.check.values.result: the value `result` that `check` wrote, not the result
    # of a job named `check.values` (found running pydantic's workflow).
    node = parse("needs.check.values.result == 'ok'", needs=["check"])
    scope = Scope(
        values={},
        env={},
        matrix={},
        needs={"check": {"result": "ok"}},
        results={"check": "failure"},
    )
    assert evaluate(node, scope) is True
    plain = parse("needs.check.result == 'failure'", needs=["check"])
    assert evaluate(plain, scope) is True
