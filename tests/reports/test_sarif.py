"""SARIF reports, read from what a real scanner writes, and written back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.model import Finding
from conveyor.reports.junit import ReportError
from conveyor.reports.sarif import read_sarif, write_sarif
from tests.reports.conftest import tool_env, write

APP = """\
import os

password = "hunter2"


def check(x: int) -> int:
    assert x > 0
    return x
"""


def ruff_sarif(workspace: Path, out: Path) -> None:
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    select = ["--select", "F,E,S", "--exit-zero", "--no-cache", "--isolated"]
    with out.open("w") as fh:
        subprocess.run(
            [*command, "check", "--output-format", "sarif", *select, "src"],
            cwd=workspace,
            env=tool_env(),
            stdout=fh,
            check=True,
        )


def test_ruff_findings_keep_their_fingerprints_when_lines_move(tmp_path: Path) -> None:
    app = write(tmp_path / "src/app.py", APP)
    ruff_sarif(tmp_path, tmp_path / "ruff.sarif")
    before = read_sarif(str(tmp_path / "ruff.sarif"), str(tmp_path), str(tmp_path))
    assert sorted((f.tool, f.rule, f.path, f.line) for f in before) == [
        ("ruff", "F401", "src/app.py", 1),
        ("ruff", "S101", "src/app.py", 7),
        ("ruff", "S105", "src/app.py", 3),
    ]
    by_rule = {f.rule: f for f in before}
    assert by_rule["F401"].message == "`os` imported but unused"
    assert len({f.fingerprint for f in before}) == 3

    app.write_text("\n\n\n" + APP)
    ruff_sarif(tmp_path, tmp_path / "ruff.sarif")
    after = read_sarif(str(tmp_path / "ruff.sarif"), str(tmp_path), str(tmp_path))
    assert sorted((f.rule, f.line) for f in after) == [("F401", 4), ("S101", 10), ("S105", 6)]
    assert {f.rule: f.fingerprint for f in after} == {f.rule: f.fingerprint for f in before}


def test_a_report_from_another_checkout_names_this_checkouts_files(tmp_path: Path) -> None:
    # ruff writes absolute paths: a report restored from the cache in a fresh clone (or
    # made on another runner) names the files where it was made. Its findings are the
    # same findings here, not new ones under a path outside the workspace.
    first, clone = tmp_path / "first", tmp_path / "clone"
    write(first / "src/app.py", APP)
    ruff_sarif(first, first / "ruff.sarif")
    shutil.copytree(first, clone)
    here = read_sarif(str(first / "ruff.sarif"), str(first), str(first))
    restored = read_sarif(str(clone / "ruff.sarif"), str(clone), str(clone))
    assert "/first/" in (first / "ruff.sarif").read_text()
    assert {f.path for f in restored} == {"src/app.py"}
    assert sorted(f.fingerprint for f in restored) == sorted(f.fingerprint for f in here)


def sarif_log(tmp_path: Path, log: dict[str, Any]) -> str:
    path = tmp_path / "report.sarif"
    path.write_text(json.dumps(log))
    return str(path)


def test_sarif_severities_rules_messages_and_paths(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    log = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "scanner",
                        "rules": [
                            {
                                "id": "SEC001",
                                "shortDescription": {"text": "Command injection"},
                                "properties": {"security-severity": "9.8"},
                            },
                            {"id": "SEC002", "properties": {"security-severity": 7.5}},
                            {"id": "SEC003", "properties": {"security-severity": "5"}},
                            {"id": "SEC004", "properties": {"security-severity": 2}},
                            {
                                "id": "STY001",
                                "defaultConfiguration": {"level": "note"},
                                "messageStrings": {"short": {"text": "Name {0} is too short"}},
                            },
                            {"id": "STY002"},
                        ],
                    }
                },
                "originalUriBaseIds": {
                    "SRC": {"uri": "src/", "uriBaseId": "ROOT"},
                    "ROOT": {"uri": f"file://{ws}/"},
                },
                "results": [
                    {
                        "ruleId": "SEC001",
                        "level": "note",  # security-severity wins
                        "message": {"id": "absent"},
                        "locations": [_loc(f"file://{ws}/app/main%20file.py", 10)],
                    },
                    {
                        "ruleIndex": 1,
                        "message": {"text": "Secret in code"},
                        "locations": [_loc("lib/x.py", 3, base="SRC")],
                    },
                    {
                        "ruleId": "SEC003",
                        "message": {"text": "Weak hash"},
                        "locations": [_loc("rel.py", 4, base="UNKNOWN")],
                    },
                    {
                        "ruleId": "SEC004",
                        "message": {"text": "Debug on"},
                        "locations": [_loc("/elsewhere/abs.py", 1)],
                    },
                    {
                        "ruleId": "STY001",
                        "message": {"id": "short", "arguments": ["x"]},
                        "locations": [_loc("style.py", 2)],
                    },
                    {"ruleId": "STY002", "level": "error", "message": {"text": "Bad"}},
                    {"ruleId": "STY002", "message": {"text": "Default level"}},
                    {
                        "ruleId": "STY002",
                        "level": "error",
                        "message": {"text": "Scored zero"},
                        "properties": {"security-severity": "0.0"},
                    },
                    {"ruleId": "STY002", "kind": "pass", "message": {"text": "Fine"}},
                    {
                        "ruleId": "STY002",
                        "message": {"text": "Suppressed"},
                        "suppressions": [{"kind": "inSource"}],
                    },
                ],
            },
            {
                "tool": {
                    "driver": {"name": "CodeQL"},
                    "extensions": [
                        {
                            "name": "js-queries",
                            "rules": [{"id": "js/xss", "properties": {"security-severity": "6.1"}}],
                        }
                    ],
                },
                "results": [
                    {
                        "ruleId": "js/xss",
                        "rule": {"id": "js/xss", "index": 0, "toolComponent": {"index": 0}},
                        "message": {"text": "XSS"},
                        "locations": [_loc("web/a.js", 8, base="%SRCROOT%")],
                    },
                    {"ruleId": "js/other", "level": "none", "message": {"text": "FYI"}},
                ],
            },
        ],
    }
    findings = read_sarif(sarif_log(tmp_path, log), str(ws), str(ws / "job"))
    plain = [(f.tool, f.rule, f.severity, f.message, f.path, f.line) for f in findings]
    assert plain == [
        ("scanner", "SEC001", "critical", "Command injection", "app/main file.py", 10),
        ("scanner", "SEC002", "high", "Secret in code", "src/lib/x.py", 3),
        ("scanner", "SEC003", "medium", "Weak hash", "job/rel.py", 4),
        ("scanner", "SEC004", "low", "Debug on", "/elsewhere/abs.py", 1),
        # A linter's levels: error is medium, warning low, note note (not a vulnerability).
        ("scanner", "STY001", "note", "Name x is too short", "job/style.py", 2),
        ("scanner", "STY002", "medium", "Bad", None, None),
        ("scanner", "STY002", "low", "Default level", None, None),
        ("scanner", "STY002", "note", "Scored zero", None, None),
        ("CodeQL", "js/xss", "medium", "XSS", "web/a.js", 8),
        ("CodeQL", "js/other", "note", "FYI", None, None),
    ]


def _loc(uri: str, line: int, base: str | None = None) -> dict[str, Any]:
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    return {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": line}}}


def test_a_security_rule_by_its_tags_and_codeql_problem_severity(tmp_path: Path) -> None:
    rules = [
        {"id": "py/sql", "properties": {"tags": ["Security", "external/cwe/cwe-089"]}},
        {"id": "py/unused", "properties": {"problem.severity": "recommendation"}},
        {"id": "py/bug", "properties": {"problem.severity": "error"}},
    ]
    results = [
        {"ruleId": "py/sql", "level": "error", "message": {"text": "SQL"}},
        {"ruleId": "py/sql", "level": "warning", "message": {"text": "SQL?"}},
        {"ruleId": "py/unused", "message": {"text": "unused"}},
        {"ruleId": "py/bug", "message": {"text": "bug"}},
        {"ruleId": "py/bug", "level": "note", "message": {"text": "the result's own level"}},
    ]
    log = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "CodeQL", "rules": rules}}, "results": results}],
    }
    found = read_sarif(sarif_log(tmp_path, log), str(tmp_path), str(tmp_path))
    assert [(f.rule, f.severity) for f in found] == [
        ("py/sql", "high"),
        ("py/sql", "medium"),
        ("py/unused", "note"),
        ("py/bug", "medium"),
        ("py/bug", "note"),
    ]


def test_fingerprints_are_conveyors_own_with_an_index(tmp_path: Path) -> None:
    def read(*results: dict[str, Any]) -> list[Finding]:
        log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}}]}
        log["runs"][0]["results"] = list(results)  # type: ignore[index]
        return read_sarif(sarif_log(tmp_path, log), str(tmp_path), str(tmp_path))

    def result(line: int, text: str = "m", **extra: Any) -> dict[str, Any]:
        return {
            "ruleId": "R1",
            "message": {"text": text},
            "locations": [_loc("a.py", line)],
            **extra,
        }

    # No such file: the message stands in for the line, and the line number is left out.
    [one] = read(result(1))
    [moved] = read(result(90))
    assert one.fingerprint == moved.fingerprint
    digest = hashlib.sha256(b"t\0R1\0a.py\0m").hexdigest()[:32]
    assert one.fingerprint == f"{digest}:0"
    # Identical findings in one file: told apart by their order in the file, whatever
    # order the tool wrote them in.
    twice = read(result(7), result(3))
    assert [f.fingerprint for f in twice] == [f"{digest}:1", f"{digest}:0"]
    # The tool's own fingerprints are not used; Conveyor's own is, as written.
    tools: dict[str, Any] = {"partialFingerprints": {"primaryLocationLineHash": "abc:1"}}
    assert read(result(1, **tools))[0].fingerprint == one.fingerprint
    ours: dict[str, Any] = {"partialFingerprints": {"conveyor/v2": f"{'0' * 32}:4"}}
    assert read(result(1, **ours))[0].fingerprint == f"{'0' * 32}:4"
    # With the source at hand, the line (whitespace aside) is what is hashed.
    (tmp_path / "a.py").write_text("x = 1\n    y  =  2\nx = 1\n")
    lines = read(result(1, "first"), result(2), result(3, "third"))
    assert lines[0].fingerprint.split(":")[0] == lines[2].fingerprint.split(":")[0]
    assert [f.fingerprint[-2:] for f in lines] == [":0", ":0", ":1"]
    (tmp_path / "a.py").write_text("y=2\n")
    assert read(result(1))[0].fingerprint == lines[1].fingerprint


def test_write_sarif_reads_back_the_same_findings(tmp_path: Path) -> None:
    fp = [f"{n:032x}:0" for n in range(1, 6)]
    findings = [
        Finding("conveyor", "secrets/aws", "critical", "AWS key", "src/a b.py", 3, fp[0]),
        Finding("conveyor", "secrets/aws", "high", "AWS key again", "src/c.py", 9, fp[1]),
        Finding("conveyor", "deps/cve", "medium", "CVE-2024-1", "requirements.txt", 1, fp[2]),
        Finding("conveyor", "deps/cve", "low", "CVE-2024-2", "/opt/outside.py", 2, fp[3]),
        Finding("conveyor", "size", "note", "Large file", None, None, fp[4]),
    ]
    out = tmp_path / "ws/out/conveyor.sarif"
    out.parent.mkdir(parents=True)
    write_sarif(findings, "conveyor", "1.2.3", str(out), "https://example.com/conveyor")
    assert os.listdir(out.parent) == ["conveyor.sarif"]  # no .tmp left behind

    back = read_sarif(str(out), str(tmp_path / "ws"), str(tmp_path / "ws/out"))
    assert back == findings

    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("conveyor", "1.2.3")
    assert driver["informationUri"] == "https://example.com/conveyor"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == ["secrets/aws", "deps/cve", "size"]
    for result in run["results"]:
        assert result["ruleId"] in rule_ids
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note", "none")
        assert isinstance(result["message"]["text"], str)


def test_sarif_of_another_version_is_refused(tmp_path: Path) -> None:
    path = sarif_log(tmp_path, {"version": "2.0.0", "runs": []})
    with pytest.raises(ReportError, match=r"'2\.0\.0', expected 2\.1\.0") as info:
        read_sarif(path, str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"runs": []}', "no version, expected 2.1.0"),
        ('{"version": "2.1.0"}', "no 'runs' list"),
        ('{"version": "2.1.0", "runs": [{"results": []}]}', r"runs\[0\] has no tool.driver.name"),
    ],
)
def test_what_is_not_a_sarif_log_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.sarif"
    path.write_text(text)
    with pytest.raises(ReportError, match=problem) as info:
        read_sarif(str(path), str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{path}: ")
