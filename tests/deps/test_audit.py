"""The advisory database (import, re-import, status, an import killed half-way) and the
audit over it: matching, aliases merged, withdrawn records ignored, the fix across
several advisories, exceptions with a reason and an expiry; on the test data's advisories."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conveyor.deps.advisories import Database, DatabaseError, import_records, status
from conveyor.deps.audit import (
    AuditResult,
    DatabaseSource,
    Exemption,
    audit,
    exceptions,
)
from conveyor.deps.components import Component, Ecosystem
from tests.deps.osvdata import OSV, SHARED_PYPI

PYPI, NPM = Ecosystem.PYPI, Ecosystem.NPM


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test data's advisories imported once (PyPI's and npm's)."""
    directory = tmp_path_factory.mktemp("osv")
    import_records(str(OSV), str(directory))
    return directory


def run(db_dir: Path, *components: Component, ignore: list[Exemption] | None = None) -> AuditResult:
    with Database(str(db_dir)) as db:
        return audit(list(components), DatabaseSource(db), ignore or [], today=dt.date(2025, 6, 1))


def pinned(name: str, version: str | None, ecosystem: Ecosystem = PYPI) -> Component:
    lockfile = "package-lock.json" if ecosystem is NPM else "uv.lock"
    return Component(name, version, ecosystem, lockfile, line=7)


# -- the database ---------------------------------------------------------------------------


def test_an_import_indexes_every_ecosystem_of_a_directory(db_dir: Path) -> None:
    found = {s.ecosystem: s for s in status(str(db_dir))}
    assert set(found) == {"PyPI", "npm"}
    assert (found["PyPI"].records, found["PyPI"].withdrawn) == (30, 2)
    assert found["npm"].records == 7
    assert found["npm"].newest == "2024-09-10T00:00:00Z"
    assert found["PyPI"].source == str(OSV)
    assert found["PyPI"].imported.endswith("Z")


def test_a_zip_imports_as_its_directory_does(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(OSV.rglob("*.json")):
            zf.write(path, path.name)
        zf.writestr("README.txt", "not a record")
        zf.writestr("broken.json", "{")
    report = import_records(str(archive), str(tmp_path / "db"))
    assert [(s.ecosystem, s.records) for s in report.ecosystems] == [("PyPI", 30), ("npm", 7)]
    assert len(report.skipped) == 1
    assert report.skipped[0].startswith("broken.json: not JSON")


def test_a_reimport_replaces_only_the_ecosystems_it_has(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    import_records(str(OSV), str(directory))
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(OSV / "pypa" / "PYSEC-2019-217.json", one)
    import_records(str(one), str(directory))
    found = {s.ecosystem: s.records for s in status(str(directory))}
    assert found == {"PyPI": 1, "npm": 7}
    with Database(str(directory)) as db:
        assert set(db.lookup("PyPI", ["jinja2", "urllib3"])) == {"jinja2"}


def test_nothing_to_import_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no such file"):
        import_records(str(tmp_path / "missing"), str(tmp_path / "db"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatabaseError, match="no OSV record"):
        import_records(str(tmp_path / "empty"), str(tmp_path / "db"))


_KILLED_IMPORT = """
import os, signal, sys
import conveyor.deps.advisories as advisories

real = advisories.parse_record
seen = []

def parse(data, **kw):
    seen.append(1)
    if len(seen) == 10:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(data, **kw)

advisories.parse_record = parse
advisories.import_records(sys.argv[1], sys.argv[2])
"""


def test_an_import_killed_half_way_leaves_the_old_index(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    import_records(str(OSV), str(directory))
    before = {s.ecosystem: (s.records, s.imported) for s in status(str(directory))}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, str(OSV), str(directory)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    left = [n for n in os.listdir(directory) if n.endswith(".tmp")]
    assert left, "the killed import had started writing"
    assert {s.ecosystem: (s.records, s.imported) for s in status(str(directory))} == before
    with Database(str(directory)) as db:
        assert "jinja2" in db.lookup("PyPI", ["jinja2"])
    # The next import removes the dead one's temporary.
    import_records(str(OSV), str(directory))
    assert not [n for n in os.listdir(directory) if n.endswith(".tmp")]


@pytest.mark.skipif(not SHARED_PYPI.exists(), reason="the shared PyPI.zip is not here")
def test_the_whole_pypi_database_imports(tmp_path: Path) -> None:
    # How long it takes is measured by bench/deps.py, not asserted here.
    report = import_records(str(SHARED_PYPI), str(tmp_path))
    assert [(s.ecosystem, s.records, s.withdrawn) for s in report.ecosystems] == [
        ("PyPI", 2661, 10)
    ]


def test_a_record_cannot_give_itself_the_severity_the_index_keeps(tmp_path: Path) -> None:
    """The index keeps each record's severity as scored at import; a record that
    arrives with that key already set is scored from its own vectors all the same."""
    from conveyor.deps.osv import SCORED

    data = json.loads((OSV / "ghsa" / "GHSA-462w-v97r-4m45.json").read_text())
    data[SCORED] = ["low", 0.1, None]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "record.json").write_text(json.dumps(data))
    import_records(str(tmp_path / "in"), str(tmp_path / "db"))
    result = run(tmp_path / "db", pinned("Jinja2", "2.10"))
    (found,) = result.findings
    assert (found.vulnerabilities[0].severity.rating, found.vulnerabilities[0].severity.score) == (
        "high",
        8.6,
    )


# -- matching and merging -------------------------------------------------------------------


def ids(result: AuditResult) -> dict[str, list[str]]:
    return {f.component.name: [v.id for v in f.vulnerabilities] for f in result.findings}


def test_aliases_make_one_finding_of_a_pysec_and_a_ghsa_record(db_dir: Path) -> None:
    result = run(db_dir, pinned("Jinja2", "2.10"))
    (found,) = result.findings
    merged = next(v for v in found.vulnerabilities if "CVE-2019-10906" in v.ids)
    assert merged.id == "GHSA-462w-v97r-4m45"
    assert merged.aliases == ("CVE-2019-10906", "PYSEC-2019-217")
    assert [r.id for r in merged.records] == ["GHSA-462w-v97r-4m45", "PYSEC-2019-217"]
    # The PYSEC record gives no severity; its GHSA twin scores CVSS 3.0 8.6.
    assert (merged.severity.rating, merged.severity.score) == ("high", 8.6)
    assert len(found.vulnerabilities) == 4


def test_the_fix_is_the_lowest_version_fixing_every_advisory(db_dir: Path) -> None:
    result = run(
        db_dir,
        pinned("jinja2", "2.10"),
        pinned("urllib3", "1.26.4"),
        pinned("urllib3", "2.0.3"),
        pinned("lodash", "4.17.15", NPM),
        pinned("minimist", "1.2.0", NPM),
        pinned("minimist", "0.0.8", NPM),
    )
    fixes = [
        (f.component.name, f.component.version, f.fix, len(f.vulnerabilities))
        for f in result.findings
    ]
    assert fixes == [
        ("jinja2", "2.10", "3.1.4", 4),  # 2.10.1, 2.11.3, 3.1.3, 3.1.4
        ("urllib3", "1.26.4", "1.26.19", 4),  # 1.26.5, 1.26.17, 1.26.18, 1.26.19
        ("urllib3", "2.0.3", "2.2.2", 3),  # not 1.26.19: a downgrade is no fix
        ("lodash", "4.17.15", "4.17.21", 3),
        ("minimist", "1.2.0", "1.2.6", 2),
        ("minimist", "0.0.8", "0.2.4", 2),  # 0.2.1 fixes only GHSA-vh95-rmgr-6w4m
    ]
    minimist = result.findings[-1]
    assert {v.id: v.fixed_in for v in minimist.vulnerabilities} == {
        "GHSA-xvch-5gv4-984h": "0.2.4",
        "GHSA-vh95-rmgr-6w4m": "0.2.1",
    }


def test_no_fix_when_an_advisory_has_none(db_dir: Path) -> None:
    (found,) = run(db_dir, pinned("py", "1.9.0")).findings
    assert {v.id: v.fixed_in for v in found.vulnerabilities} == {
        "PYSEC-2020-92": "1.10.0",
        "PYSEC-2022-42969": None,  # last_affected 1.11.0, nothing above it in the data
    }
    assert found.fix is None


def test_unaffected_and_withdrawn_find_nothing(db_dir: Path) -> None:
    result = run(
        db_dir,
        pinned("jinja2", "3.1.4"),
        pinned("lodash", "4.17.21", NPM),
        pinned("hyperledger", "0.1.0"),  # PYSEC-2022-43055, withdrawn
        pinned("loguru", "0.5.3"),  # PYSEC-2022-15, withdrawn
        pinned("left-pad", "1.3.0", NPM),
    )
    assert result.findings == ()
    assert result.audited == 5


def test_what_cannot_be_audited_is_said(db_dir: Path) -> None:
    result = run(
        db_dir,
        pinned("workspace-pkg", None, NPM),
        Component("serde", "1.0.0", Ecosystem.CARGO, "Cargo.lock"),
        Component("tokio", "1.0.0", Ecosystem.CARGO, "Cargo.lock"),
        Component("app", "0.1.0", PYPI, "uv.lock", local=True),
    )
    assert [c.name for c in result.unpinned] == ["workspace-pkg"]
    assert result.no_database == {"crates.io": 2}
    assert result.audited == 0


# -- exceptions -------------------------------------------------------------------------------


def test_an_exception_by_any_alias_sets_a_finding_aside(db_dir: Path) -> None:
    ignore = exceptions([("cve-2019-10906", "we never render untrusted templates", None)])
    (found,) = run(db_dir, pinned("jinja2", "2.10"), ignore=ignore).findings
    merged = next(v for v in found.vulnerabilities if v.id == "GHSA-462w-v97r-4m45")
    assert merged.ignored is not None
    assert merged.ignored.reason == "we never render untrusted templates"
    assert not merged.counts
    assert len(found.counted) == 3


def test_an_expired_exception_counts_again(db_dir: Path) -> None:
    ignore = exceptions(
        [
            ("GHSA-xvch-5gv4-984h", "upgrade planned", "2025-05-31"),  # the day before
            ("GHSA-vh95-rmgr-6w4m", "upgrade planned", "2025-06-01"),  # until today
        ]
    )
    result = run(db_dir, pinned("minimist", "1.2.0", NPM), ignore=ignore)
    (found,) = result.findings
    by_id = {v.id: v for v in found.vulnerabilities}
    assert by_id["GHSA-xvch-5gv4-984h"].counts
    assert by_id["GHSA-xvch-5gv4-984h"].expired is not None
    assert not by_id["GHSA-vh95-rmgr-6w4m"].counts
    assert [e.id for e in result.expired] == ["GHSA-xvch-5gv4-984h"]
