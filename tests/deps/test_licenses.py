"""Licenses: normalised to SPDX, found in real installed distributions (wheels from
PyPI installed into a virtualenv by pip), real npm packages' package.json files (from
`npm pack`), Cargo's registry sources; judged by the policy; `conveyor deps licenses`
and the `licenses` gate of a run.

tests/data/deps/licenses/: wheels/ as `pip download --no-deps` fetched them; python/
uv.lock as `uv lock` wrote it against a local pypiserver holding those wheels; npm/
package-lock.json as `npm install --package-lock-only` wrote it, and node_modules/*/
package.json taken from the packages' tarballs (`npm pack NAME@VERSION`)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.deps.components import Component, Ecosystem
from conveyor.deps.inventory import read_inventory
from conveyor.deps.license_sources import LicenseFinder
from conveyor.deps.licenses import Policy, Verdict, from_classifiers, normalise
from tests.conftest import Project

DATA = Path(__file__).parent.parent / "data" / "deps" / "licenses"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the real wheels of tests/data installed by pip, offline."""
    path = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(path / "bin" / "python"),
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            *map(str, sorted((DATA / "wheels").glob("*.whl"))),
        ],
        check=True,
        capture_output=True,
    )
    return path


# -- normalising -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expression", "unknown"),
    [
        ("MIT", "MIT", ()),
        ("mit", "MIT", ()),
        ("MIT License", "MIT", ()),
        ("Apache 2.0", "Apache-2.0", ()),
        ("Apache License, Version 2.0", "Apache-2.0", ()),
        ("BSD", "BSD-3-Clause", ()),
        ("MIT/Apache-2.0", "MIT OR Apache-2.0", ()),  # Cargo's and npm's old separator
        ("mit or gpl-2.0+", "MIT OR GPL-2.0-or-later", ()),
        ("GPL-2.0 WITH Classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0", ()),
        (
            "(MIT OR Apache-2.0) AND Unicode-DFS-2016",
            "(MIT OR Apache-2.0) AND Unicode-DFS-2016",
            (),
        ),
        ("Proprietary", "LicenseRef-Proprietary", ("LicenseRef-Proprietary",)),
        ("Dual License", "LicenseRef-Dual-License", ("LicenseRef-Dual-License",)),
        ("Artistic or MIT", "LicenseRef-Artistic OR MIT", ("LicenseRef-Artistic",)),
        ("", None, ()),
    ],
)
def test_licenses_are_normalised_to_spdx(
    raw: str, expression: str | None, unknown: tuple[str, ...]
) -> None:
    found = normalise(raw)
    assert (found.expression, found.unknown) == (expression, unknown)


@pytest.mark.parametrize(
    ("classifiers", "expression"),
    [
        (["License :: OSI Approved :: MIT License"], "MIT"),
        (
            ["License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)"],
            "GPL-3.0-or-later",
        ),
        (["License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)"], "MPL-2.0"),
        (["License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)"], "EPL-2.0"),
        (
            [
                "License :: OSI Approved :: Apache Software License",
                "License :: OSI Approved :: BSD License",
            ],
            "Apache-2.0 OR BSD-3-Clause",
        ),
        (["License :: Other/Proprietary License"], "LicenseRef-Proprietary"),
        (["License :: OSI Approved", "Programming Language :: Python"], None),
    ],
)
def test_license_classifiers_are_read_as_spdx(
    classifiers: list[str], expression: str | None
) -> None:
    found = from_classifiers(classifiers)
    assert (found[0].expression if found else None) == expression


# -- the policy ------------------------------------------------------------------------------
PERMISSIVE = Policy(allow=("MIT", "Apache-2.0", "BSD-3-Clause"), deny=("GPL-3.0-only",))


@pytest.mark.parametrize(
    ("policy", "expression", "verdict", "terms"),
    [
        (PERMISSIVE, "MIT", Verdict.ALLOWED, ()),
        # A choice: one allowed branch is enough, even beside a denied one.
        (PERMISSIVE, "GPL-3.0-only OR MIT", Verdict.ALLOWED, ()),
        # Both at once: the denied term fails it.
        (PERMISSIVE, "MIT AND GPL-3.0-only", Verdict.DENIED, ("GPL-3.0-only",)),
        (PERMISSIVE, "(MIT OR ISC) AND BSD-3-Clause", Verdict.ALLOWED, ()),
        (PERMISSIVE, "ISC AND MIT", Verdict.DENIED, ("ISC",)),  # not in the allow-list
        (PERMISSIVE, "LicenseRef-Proprietary", Verdict.UNKNOWN, ("LicenseRef-Proprietary",)),
        (PERMISSIVE, "MIT OR LicenseRef-Proprietary", Verdict.ALLOWED, ()),
        (PERMISSIVE, None, Verdict.UNKNOWN, ()),
        # Deny wins over allow.
        (
            Policy(allow=("GPL-3.0-only",), deny=("GPL-3.0-only",)),
            "GPL-3.0-only",
            Verdict.DENIED,
            ("GPL-3.0-only",),
        ),
        # No allow-list: anything not denied and known passes; an unknown never does.
        (Policy(deny=("AGPL-3.0-only",)), "WTFPL", Verdict.ALLOWED, ()),
        (Policy(), "LicenseRef-Artistic", Verdict.UNKNOWN, ("LicenseRef-Artistic",)),
        (Policy(), "Artistic", Verdict.UNKNOWN, ("Artistic",)),  # not normalised first
        (Policy(allow=("LicenseRef-Proprietary",)), "LicenseRef-Proprietary", Verdict.ALLOWED, ()),
        # A license allowed is allowed with an exception; denied, denied with one.
        (
            Policy(allow=("GPL-2.0-only",)),
            "GPL-2.0-only WITH Classpath-exception-2.0",
            Verdict.ALLOWED,
            (),
        ),
        (
            Policy(deny=("GPL-2.0-only",)),
            "GPL-2.0-only WITH Classpath-exception-2.0",
            Verdict.DENIED,
            ("GPL-2.0-only WITH Classpath-exception-2.0",),
        ),
        # The policy's entries are normalised as the licenses are.
        (Policy(allow=("Apache 2.0",)), "Apache-2.0", Verdict.ALLOWED, ()),
    ],
)
def test_the_policy_evaluates_or_and_and(
    policy: Policy,
    expression: str | None,
    verdict: Verdict,
    terms: tuple[str, ...],
) -> None:
    judged = policy.judge(expression)
    assert (judged.verdict, judged.terms) == (verdict, terms)


def test_what_a_verdict_says() -> None:
    assert PERMISSIVE.judge("MIT AND GPL-3.0-only").reason == "GPL-3.0-only is denied"
    assert PERMISSIVE.judge("ISC").reason == "ISC is not allowed"
    assert PERMISSIVE.judge(None).reason == "no license found"
    assert PERMISSIVE.judge("LicenseRef-X").reason == "LicenseRef-X is not a known SPDX license"


# -- where licenses are found -------------------------------------------------------------------
def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(DATA / "python", root)
    shutil.copytree(DATA / "npm", root / "web")
    return root


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_installed_distributions_give_python_licenses(tmp_path: Path, venv: Path) -> None:
    root = _workspace(tmp_path)
    (root / ".venv").symlink_to(venv)  # found in the workspace, as `uv sync` leaves it
    inventory = read_inventory(str(root), ["uv.lock"])
    found = {f.name: f for f in LicenseFinder(str(root)).find(inventory.components)}
    site = next(venv.glob("lib/python*/site-packages"))
    where = f".venv/{site.relative_to(venv)}"
    assert {n: (f.expression, f.source) for n, f in found.items()} == {
        # PEP 639
        "iniconfig": ("MIT", f"{where}/iniconfig-2.0.0.dist-info (License-Expression)"),
        # classifiers, several read as a choice
        "packaging": (
            "Apache-2.0 OR BSD-3-Clause",
            f"{where}/packaging-23.2.dist-info (classifiers)",
        ),
        "appdirs": ("MIT", f"{where}/appdirs-1.4.4.dist-info (classifiers)"),
        "mccabe": ("MIT", f"{where}/mccabe-0.7.0.dist-info (classifiers)"),
        # one classifier names no SPDX license: kept, and shown as unknown
        "text-unidecode": (
            "LicenseRef-Artistic-License OR GPL-1.0-or-later OR GPL-2.0-or-later",
            f"{where}/text_unidecode-1.3.dist-info (classifiers)",
        ),
    }
    assert "licenses-fixture" not in found  # the project itself
    assert found["text-unidecode"].unknown == ("LicenseRef-Artistic-License",)
    assert found["packaging"].raw == "Apache Software License; BSD License"
    # where the lockfile pins it: the line of its entry
    (where_locked,) = found["iniconfig"].locations
    path, line = where_locked.split(":")
    assert path == "uv.lock"
    assert (root / "uv.lock").read_text().splitlines()[int(line) - 1] == "[[package]]"
    assert 'name = "iniconfig"' in (root / "uv.lock").read_text().splitlines()[int(line)]


def test_an_environment_given_and_a_version_that_differs(tmp_path: Path, venv: Path) -> None:
    site = next(venv.glob("lib/python*/site-packages"))
    components = [
        Component("appdirs", "1.4.3", Ecosystem.PYPI, "uv.lock"),
        Component("not-installed", "1.0", Ecosystem.PYPI, "uv.lock"),
    ]
    appdirs, missing = LicenseFinder(str(tmp_path), python=str(site)).find(components)
    assert appdirs.expression == "MIT"
    assert appdirs.source.endswith(
        "appdirs-1.4.4.dist-info, installed 1.4.4 (the lockfile pins 1.4.3) (classifiers)"
    )
    assert missing.expression is None
    assert missing.source.startswith("not found: not installed in /")


def test_node_modules_give_npm_licenses_the_lockfile_first(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    inventory = read_inventory(str(root), ["web/package-lock.json"])
    found = {f.name: f for f in LicenseFinder(str(root)).find(inventory.components)}
    # npm's lockfile (v2+) records most licenses itself: those come first; the legacy
    # `licenses` list is not in it, so json-schema's is read from node_modules.
    assert {n: (f.expression, f.source) for n, f in found.items()} == {
        "@isaacs/string-locale-compare": ("ISC", "web/package-lock.json"),
        "isarray": ("MIT", "web/package-lock.json"),
        # the legacy `licenses` list: a choice
        "json-schema": ("AFL-2.1 OR BSD-3-Clause", "web/node_modules/json-schema/package.json"),
        "left-pad": ("WTFPL", "web/package-lock.json"),
    }
    # Without the lockfile's word, node_modules/<name>/package.json gives it.
    bare = [dataclasses.replace(c, license=None) for c in inventory.components]
    from_modules = {f.name: f.source for f in LicenseFinder(str(root)).find(bare)}
    assert from_modules["left-pad"] == "web/node_modules/left-pad/package.json"
    assert from_modules["@isaacs/string-locale-compare"] == (
        "web/node_modules/@isaacs/string-locale-compare/package.json"
    )
    assert found["json-schema"].raw == "AFLv2.1 OR BSD"
    # What the lockfile's metadata says comes first (npm v2+ lockfiles carry it).
    said = Component("isarray", "2.0.5", Ecosystem.NPM, "web/package-lock.json", license="0BSD")
    (isarray,) = LicenseFinder(str(root)).find([said])
    assert (isarray.expression, isarray.source) == ("0BSD", "web/package-lock.json")
    # A version node_modules does not hold is not read from another version's file.
    other = Component("isarray", "1.0.0", Ecosystem.NPM, "web/package-lock.json")
    (old,) = LicenseFinder(str(root)).find([other])
    assert old.expression is None


def test_cargo_registry_sources_give_crate_licenses(tmp_path: Path) -> None:
    # crates.io is not reachable here: Cargo.toml and Cargo.lock written by hand in
    # their documented formats, where `cargo fetch` unpacks crates.
    home = tmp_path / "cargo"
    for crate, version, license in [
        ("serde", "1.0.200", 'license = "MIT OR Apache-2.0"'),
        ("oldcrate", "0.1.0", 'license = "MIT/Apache-2.0"'),
        ("filed", "2.0.0", 'license-file = "LICENSE.txt"'),
    ]:
        src = (
            home / "registry" / "src" / "index.example.org-1949cf8c6b5b557f" / f"{crate}-{version}"
        )
        src.mkdir(parents=True)
        (src / "Cargo.toml").write_text(
            f'[package]\nname = "{crate}"\nversion = "{version}"\n{license}\n'
        )
    root = tmp_path / "ws"
    root.mkdir()
    (root / "Cargo.lock").write_text(
        "version = 3\n\n"
        '[[package]]\nname = "app"\nversion = "0.1.0"\n'
        'dependencies = ["serde", "oldcrate", "filed"]\n\n'
        + "".join(
            f'[[package]]\nname = "{n}"\nversion = "{v}"\n'
            'source = "registry+https://index.example.org/"\n\n'
            for n, v in [("serde", "1.0.200"), ("oldcrate", "0.1.0"), ("filed", "2.0.0")]
        )
    )
    inventory = read_inventory(str(root), ["Cargo.lock"])
    found = LicenseFinder(str(root), environ={"CARGO_HOME": str(home)}).find(inventory.components)
    assert {f.name: (f.expression, f.unknown) for f in found} == {
        "serde": ("MIT OR Apache-2.0", ()),
        "oldcrate": ("MIT OR Apache-2.0", ()),
        "filed": ("LicenseRef-LICENSE.txt", ("LicenseRef-LICENSE.txt",)),
    }


# -- the command ---------------------------------------------------------------------------------
POLICY = """
jobs:
  build: {{run: "true"}}
deps:
  licenses:
    allow: [MIT, ISC, Apache-2.0, BSD-3-Clause]
    deny: [WTFPL]
{extra}
"""


def _project(project: Project, extra: str = "") -> None:
    shutil.copytree(DATA / "python", project.root, dirs_exist_ok=True)
    shutil.copytree(DATA / "npm", project.root / "web")
    project.write(".gitignore", ".venv\nnode_modules\n")
    project.pipeline(POLICY.format(extra=extra))


def test_deps_licenses_judges_every_package(project: Project, venv: Path) -> None:
    _project(project)
    result = project.run("deps", "licenses", "--python", str(venv))
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["PACKAGE", "VERSION", "LICENSE", "VERDICT", "SOURCE"]
    said = ("allowed", "denied:", "unknown:")
    verdicts = {line.split()[0]: next(w for w in line.split() if w in said) for line in lines[1:-1]}
    assert verdicts == {
        "iniconfig": "allowed",
        "packaging": "allowed",
        "appdirs": "allowed",
        "text-unidecode": "unknown:",
        "mccabe": "allowed",
        "@isaacs/string-locale-compare": "allowed",
        "isarray": "allowed",
        "json-schema": "allowed",  # its BSD branch
        "left-pad": "denied:",
    }
    assert lines[-1] == "9 package(s): 7 allowed, 1 denied, 1 unknown"
    left_pad = next(line for line in lines if line.startswith("left-pad"))
    assert "denied: WTFPL is denied" in left_pad
    assert "deps.licenses.overrides" in result.err

    data = json.loads(project.run("deps", "licenses", "--python", str(venv), "--json").out)
    assert data["summary"] == {"allowed": 7, "denied": 1, "unknown": 1}
    unidecode = next(p for p in data["packages"] if p["name"] == "text-unidecode")
    assert unidecode["verdict"] == "unknown"
    assert unidecode["terms"] == ["LicenseRef-Artistic-License"]
    assert unidecode["raw"].startswith("Artistic License; GNU General Public License (GPL)")


def test_overrides_settle_unknown_licenses(project: Project, venv: Path) -> None:
    # text-unidecode's "Artistic License" is Perl's (its LICENSE file says so).
    _project(
        project, "    overrides:\n      text-unidecode: Artistic-1.0-Perl\n      left-pad: MIT"
    )
    result = project.run("deps", "licenses", "--python", str(venv), "--json")
    data = json.loads(result.out)
    unidecode = next(p for p in data["packages"] if p["name"] == "text-unidecode")
    assert (unidecode["license"], unidecode["source"]) == (
        "Artistic-1.0-Perl",
        "deps.licenses.overrides",
    )
    # Overridden, but not allowed: the policy still judges it.
    assert (unidecode["verdict"], unidecode["reason"]) == (
        "denied",
        "Artistic-1.0-Perl is not allowed",
    )
    assert result.code == 1
    project.pipeline(
        POLICY.format(extra="    overrides:\n      text-unidecode: Artistic-1.0-Perl\n")
        .replace("allow: [MIT,", "allow: [Artistic-1.0-Perl, WTFPL, MIT,")
        .replace("deny: [WTFPL]", "deny: []")
    )
    result = project.run("deps", "licenses", "--python", str(venv))
    assert result.code == 0, result.out
    assert result.out.splitlines()[-1] == "9 package(s): 9 allowed, 0 denied, 0 unknown"


def test_deps_licenses_without_the_environment_reports_unknowns(project: Project) -> None:
    _project(project)
    result = project.run("deps", "licenses", "--json")
    assert result.code == 1
    data = json.loads(result.out)
    python = [p for p in data["packages"] if p["ecosystem"] == "PyPI"]
    assert {p["verdict"] for p in python} == {"unknown"}
    assert python[0]["source"].startswith("not found: in no installed environment")
    bad = project.run("deps", "licenses", "--python", str(project.root / "web"))
    assert bad.code == 2
    assert "no site-packages there" in bad.err


# -- the gate --------------------------------------------------------------------------------------
def test_the_licenses_gate_fails_a_run_and_is_judged_again(project: Project, venv: Path) -> None:
    _project(project, "gates:\n  licenses: {level: error}")
    (project.root / ".venv").symlink_to(venv)
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1, result.out + result.err
    gate = next(line for line in result.out.splitlines() if line.lstrip().startswith("licenses"))
    assert " ".join(gate.split()).startswith(
        "licenses pipeline 1 denied, 1 unknown of 9 no denied or unknown license FAILED"
    )
    assert "left-pad 1.3.0 (WTFPL)" in result.out
    (run_dir,) = project.runs()
    kept = json.loads((run_dir / "licenses.json").read_text())
    assert len(kept["packages"]) == 9

    # `conveyor gates` judges what the run found with the policy as it is now.
    project.pipeline(
        POLICY.format(extra="    overrides: {text-unidecode: MIT}\ngates:\n  licenses: {}")
        .replace("deny: [WTFPL]", "deny: []")
        .replace("allow: [MIT,", "allow: [WTFPL, MIT,")
    )
    again = project.run("gates", "--json")
    assert again.code == 0, again.out
    (judged,) = json.loads(again.out)["gates"]
    assert (judged["gate"], judged["passed"], judged["measured"]) == (
        "licenses",
        True,
        "0 denied, 0 unknown of 9",
    )


def test_a_licenses_gate_at_warn_level_reports_without_failing(
    project: Project, venv: Path
) -> None:
    _project(project, "gates:\n  licenses: {level: warn}")
    (project.root / ".venv").symlink_to(venv)
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    assert "1 denied, 1 unknown of 9" in result.out


def test_the_licenses_gate_is_the_pipelines_only(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: "true"
            gates:
              licenses: {level: error}
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert "licenses" in result.err


def test_an_override_needs_an_expression(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build: {run: "true"}
        deps:
          licenses:
            overrides: {left-pad: ""}
        """
    )
    result = project.run("deps", "licenses")
    assert result.code == 2
    assert "deps.licenses.overrides" in result.err
    assert "'left-pad': expected an SPDX license expression" in result.err


def test_the_license_field_when_nothing_better_is_said(tmp_path: Path) -> None:
    """dist-info directories made from mccabe's real METADATA, its classifiers left
    out: its License field ('Expat license') is read; a License field holding a whole
    license text is not."""
    import zipfile

    wheel = DATA / "wheels" / "mccabe-0.7.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        real = zf.read("mccabe-0.7.0.dist-info/METADATA").decode()
    without = "\n".join(line for line in real.split("\n") if not line.startswith("Classifier:"))
    site = tmp_path / "site-packages"
    (site / "mccabe-0.7.0.dist-info").mkdir(parents=True)
    (site / "mccabe-0.7.0.dist-info" / "METADATA").write_text(without)
    text = "Copyright (c) 2012 Someone\n        Permission is hereby granted, free of charge"
    whole = without.replace("Name: mccabe", "Name: wholetext").replace(
        "License: Expat license", f"License: {text}"
    )
    (site / "wholetext-0.7.0.dist-info").mkdir()
    (site / "wholetext-0.7.0.dist-info" / "METADATA").write_text(whole)
    components = [
        Component("mccabe", "0.7.0", Ecosystem.PYPI, "uv.lock"),
        Component("wholetext", "0.7.0", Ecosystem.PYPI, "uv.lock"),
    ]
    mccabe, wholetext = LicenseFinder(str(tmp_path), python=str(site)).find(components)
    assert (mccabe.expression, mccabe.raw) == ("MIT", "Expat license")
    assert mccabe.source == "site-packages/mccabe-0.7.0.dist-info (License)"
    assert wholetext.expression is None


def test_the_sbom_states_the_licenses_the_installed_environment_gives(
    tmp_path: Path, venv: Path
) -> None:
    # uv.lock records no licenses: without the environment the SBOM could state none.
    root = _workspace(tmp_path)
    (root / ".venv").symlink_to(venv)
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "deps", "sbom"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stated = {
        c["name"]: [
            entry.get("expression") or entry["license"].get("id") for entry in c["licenses"]
        ]
        for c in json.loads(done.stdout)["components"]
        if c.get("licenses")
    }
    assert stated["iniconfig"] == ["MIT"]
    assert stated["packaging"] == ["Apache-2.0 OR BSD-3-Clause"]
    # the same workspace without its environment: no license is made up
    (root / ".venv").unlink()
    bare = subprocess.run(
        [sys.executable, "-m", "conveyor", "deps", "sbom"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    unlicensed = json.loads(bare.stdout)["components"]
    assert all(
        not c.get("licenses") for c in unlicensed if c.get("purl", "").startswith("pkg:pypi/")
    )
