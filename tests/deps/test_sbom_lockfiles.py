"""SBOMs of real lockfiles (tests/data/deps/sbom: written by npm, uv and Poetry), judged
against the lockfiles themselves, by each format's own validator, and by third-party
readers: cdx-ev and the CycloneDX JavaScript library for CycloneDX, spdx-tools' command
line for SPDX.

What a lockfile says is read here independently of Conveyor's parsers. Hashes, edges
and dev scope are the parsers' to read (their formats are being filled in beside this);
while a parser records none of them for a lockfile, the test that compares them is an
expected failure that says so, and it becomes a strict comparison as soon as it does."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from conveyor.deps.inventory import Inventory, read_inventory
from conveyor.deps.sbom import Project, cyclonedx, project_of, render, spdx
from tests.deps.sbom_tools import (
    DATA,
    cdx_ev,
    cyclonedx_errors,
    cyclonedx_js,
    lay_out,
    pyspdxtools,
    relationships,
    spdx_messages,
    workspace,
)

EPOCH = {"SOURCE_DATE_EPOCH": "1735689600"}


def npm_purl(name: str, version: str | None) -> str:
    namespace, _, short = name.rpartition("/")
    return PackageURL("npm", namespace or None, short, version).to_string()


def pypi_purl(name: str, version: str) -> str:
    return PackageURL("pypi", None, name.lower().replace("_", "-"), version).to_string()


# What the lockfiles say, read here ---------------------------------------------------


def npm_lock(project: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / project / "package-lock.json.fixture").read_text())
    return data


def npm_packages(project: str) -> dict[str, dict[str, Any]]:
    """purl -> entry, links resolved to their target (the workspace's own packages)."""
    packages = npm_lock(project)["packages"]
    found = {}
    for key, entry in packages.items():
        if "node_modules/" not in key:
            continue
        name = entry.get("name") or key.rsplit("node_modules/", 1)[1]
        target = packages[entry["resolved"]] if entry.get("link") else entry
        found[npm_purl(name, target.get("version"))] = entry
    return found


def toml_packages(project: str, lockfile: str) -> dict[str, dict[str, Any]]:
    data = tomllib.loads((DATA / project / f"{lockfile}.fixture").read_text())
    return {pypi_purl(p["name"], p["version"]): p for p in data["package"]}


def lockfile_hashes() -> dict[str, set[tuple[str, str]]]:
    """purl -> every (algorithm, hex) the four lockfiles record for it."""
    found: dict[str, set[tuple[str, str]]] = {}
    for project in ("npm-app", "npm-web"):
        for purl, entry in npm_packages(project).items():
            if "integrity" in entry:
                algorithm, _, digest = entry["integrity"].partition("-")
                found.setdefault(purl, set()).add((algorithm, base64.b64decode(digest).hex()))
    for purl, entry in toml_packages("uv-svc", "uv.lock").items():
        for file in [entry.get("sdist"), *entry.get("wheels", [])]:
            if file:
                found.setdefault(purl, set()).add(tuple(file["hash"].split(":", 1)))
    for purl, entry in toml_packages("poetry-tool", "poetry.lock").items():
        for file in entry["files"]:
            found.setdefault(purl, set()).add(tuple(file["hash"].split(":", 1)))
    return found


# Read off the lockfiles: npm-app's package-lock.json nests ms@2.0.0 under debug, whose
# "dependencies" ask for it, and to-regex-range asks for is-number; npm-web's member
# @sbom/ui asks for @types/ms; in uv.lock and poetry.lock python-dateutil depends on
# tzdata, and uv's project entry on python-dateutil, six and (dev) iniconfig.
EDGES = {
    npm_purl("debug", "2.6.9"): {npm_purl("ms", "2.0.0")},
    npm_purl("to-regex-range", "5.0.1"): {npm_purl("is-number", "7.0.0")},
    npm_purl("@sbom/ui", "0.1.0"): {npm_purl("@types/ms", "0.7.34")},
    pypi_purl("python-dateutil", "4.0.0"): {pypi_purl("tzdata", "2026.6")},
    pypi_purl("sbom-uv-svc", "2.0.1"): {
        pypi_purl("python-dateutil", "4.0.0"),
        pypi_purl("six", "1.17.0"),
        pypi_purl("iniconfig", "2.3.1"),
    },
}
DIRECT = {  # what the projects' manifests ask for, so the root must depend on
    npm_purl("debug", "2.6.9"),
    npm_purl("ms", "2.1.3"),
    npm_purl("@types/ms", "0.7.34"),
    npm_purl("to-regex-range", "5.0.1"),
    npm_purl("argparse", "2.0.1"),
}
MEMBERS = {npm_purl("@sbom/ui", "0.1.0"), pypi_purl("sbom-uv-svc", "2.0.1")}
DEV = {  # npm's "dev": true; uv's dev group; Poetry's groups = ["dev"]
    npm_purl("to-regex-range", "5.0.1"),
    npm_purl("is-number", "7.0.0"),
    pypi_purl("iniconfig", "2.3.1"),
}


@pytest.fixture
def monorepo(tmp_path: Path) -> tuple[str, Inventory]:
    """The four projects side by side in one workspace named 'monorepo'."""
    root = tmp_path / "monorepo"
    files = workspace(root)
    inventory = read_inventory(str(root), files)
    assert inventory.errors == ()
    assert len(inventory.lockfiles) == 4
    return str(root), inventory


def parsers_record(inventory: Inventory, what: str, present: Any) -> None:
    """Every lockfile's parser records `what` (else the comparison that follows would
    pass on nothing)."""
    for lock in inventory.lockfiles:
        assert any(present(c) for c in lock.components), (
            f"the {lock.format.name} parser records no {what}"
        )


def cdx_data(root: str, inventory: Inventory, **kw: Any) -> dict[str, Any]:
    text = cyclonedx(inventory, project=project_of(root), environ=EPOCH, **kw)
    assert cyclonedx_errors(text) is None
    data: dict[str, Any] = json.loads(text)
    return data


def all_components(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nested = data["metadata"]["component"].get("components", [])
    return {c["bom-ref"]: c for c in [*data.get("components", []), *nested]}


# CycloneDX ---------------------------------------------------------------------------


def test_every_locked_package_is_one_component_with_its_purl(
    monorepo: tuple[str, Inventory],
) -> None:
    root, inventory = monorepo
    data = cdx_data(root, inventory)
    locked = {
        *npm_packages("npm-app"),
        *npm_packages("npm-web"),
        *toml_packages("uv-svc", "uv.lock"),
        *toml_packages("poetry-tool", "poetry.lock"),
    }
    third = {c["bom-ref"] for c in data["components"]}
    nested = {c["bom-ref"] for c in data["metadata"]["component"]["components"]}
    assert third | nested == locked
    assert nested == MEMBERS
    assert all(c["purl"] == c["bom-ref"] for c in all_components(data).values())
    root_component = data["metadata"]["component"]
    assert (root_component["name"], root_component["type"]) == ("monorepo", "application")

    def where(purl: str) -> set[str]:
        found = all_components(data)[purl].get("properties", [])
        return {p["value"].split(":")[0] for p in found if p["name"] == "conveyor:lockfile"}

    # pinned by two lockfiles: one component naming both
    assert where(npm_purl("@types/ms", "0.7.34")) == {
        "npm-app/package-lock.json",
        "npm-web/package-lock.json",
    }
    for name, version in (("six", "1.17.0"), ("tzdata", "2026.6"), ("iniconfig", "2.3.1")):
        assert where(pypi_purl(name, version)) == {"poetry-tool/poetry.lock", "uv-svc/uv.lock"}
    # two versions of one package: two components
    assert {npm_purl("ms", "2.1.3"), npm_purl("ms", "2.0.0")} <= third


def test_the_root_reaches_every_package_and_depends_on_the_direct_ones(
    monorepo: tuple[str, Inventory],
) -> None:
    root, inventory = monorepo
    data = cdx_data(root, inventory)
    edges = {d["ref"]: set(d.get("dependsOn", [])) for d in data["dependencies"]}
    top = data["metadata"]["component"]["bom-ref"]
    assert edges[top] >= DIRECT
    reached, pending = set(), [top, *MEMBERS]
    while pending:
        ref = pending.pop()
        if ref not in reached:
            reached.add(ref)
            pending.extend(edges.get(ref, ()))
    assert reached >= set(all_components(data))


def test_hashes_as_in_the_lockfiles(monorepo: tuple[str, Inventory]) -> None:
    root, inventory = monorepo
    parsers_record(inventory, "hashes", lambda c: c.hashes)
    names = {"sha256": "SHA-256", "sha512": "SHA-512"}
    expected = {
        purl: {(names[a], h) for a, h in hashes} for purl, hashes in lockfile_hashes().items()
    }
    data = cdx_data(root, inventory)
    seen = {
        ref: {(h["alg"], h["content"]) for h in c.get("hashes", [])}
        for ref, c in all_components(data).items()
        if c.get("hashes")
    }
    assert seen == expected


def test_edges_as_in_the_lockfiles(monorepo: tuple[str, Inventory]) -> None:
    root, inventory = monorepo
    parsers_record(inventory, "dependency edges", lambda c: c.dependencies is not None)
    data = cdx_data(root, inventory)
    edges = {d["ref"]: set(d.get("dependsOn", [])) for d in data["dependencies"]}
    assert {ref: on for ref, on in edges.items() if on and ref in all_components(data)} == EDGES


def test_dev_scope_as_in_the_lockfiles(monorepo: tuple[str, Inventory]) -> None:
    root, inventory = monorepo
    parsers_record(inventory, "scope", lambda c: c.scope is not None)
    data = cdx_data(root, inventory)
    scopes = {ref: c.get("scope") for ref, c in all_components(data).items() if ref not in MEMBERS}
    assert {ref for ref, scope in scopes.items() if scope == "excluded"} == DEV
    assert {scope for ref, scope in scopes.items() if ref not in DEV} == {"required"}
    without = cdx_data(root, inventory, dev=False)
    assert not DEV & set(all_components(without))


def test_a_single_project_is_the_root_with_its_own_lock_entry_folded_in(tmp_path: Path) -> None:
    files = lay_out(tmp_path, "uv-svc")
    inventory = read_inventory(str(tmp_path), files)
    project = project_of(str(tmp_path))
    assert project == Project("sbom-uv-svc", "2.0.1", project.ecosystem)
    data = cdx_data(str(tmp_path), inventory)
    top = data["metadata"]["component"]
    assert top["bom-ref"] == top["purl"] == "pkg:pypi/sbom-uv-svc@2.0.1"
    assert "components" not in top  # uv's entry for the project is the root itself
    assert set(all_components(data)) == set(toml_packages("uv-svc", "uv.lock")) - {top["purl"]}
    edges = {d["ref"]: set(d.get("dependsOn", [])) for d in data["dependencies"]}
    assert edges[top["bom-ref"]] >= EDGES[top["purl"]]


@pytest.mark.parametrize("fmt", ["cyclonedx-json", "spdx-json"])
def test_reproducible_with_source_date_epoch(tmp_path: Path, fmt: str) -> None:
    runs = []
    for attempt in ("one", "two"):  # each from its own copy, read afresh
        root = tmp_path / attempt / "monorepo"
        inventory = read_inventory(str(root), workspace(root))
        runs.append(render(fmt, inventory, project=project_of(str(root)), environ=EPOCH))
    assert runs[0].encode() == runs[1].encode()


# SPDX --------------------------------------------------------------------------------


def test_spdx_is_valid_and_relates_the_packages(
    tmp_path: Path, monorepo: tuple[str, Inventory]
) -> None:
    root, inventory = monorepo
    text = spdx(inventory, project=project_of(root), environ=EPOCH)
    path = tmp_path / "monorepo.spdx.json"
    path.write_text(text)
    assert spdx_messages(path) == []
    data = json.loads(text)
    related = relationships(data)
    assert ("document", "DESCRIBES", "project") in related
    assert {r for (_, kind, r) in related if kind == "CONTAINS"} == MEMBERS
    for purl in DIRECT:
        assert ("project", "DEPENDS_ON", purl) in related or (
            purl,
            "DEV_DEPENDENCY_OF",
            "project",
        ) in related
    packages = {p["name"]: p for p in data["packages"]}
    assert packages["@types/ms"]["comment"] == (
        "Pinned in npm-app/package-lock.json:19, npm-web/package-lock.json:22."
    )
    assert len(data["packages"]) == 1 + len(all_components(cdx_data(root, inventory)))


def test_spdx_checksums_and_dev_relationships_as_in_the_lockfiles(
    tmp_path: Path, monorepo: tuple[str, Inventory]
) -> None:
    root, inventory = monorepo
    parsers_record(inventory, "hashes", lambda c: c.hashes)
    parsers_record(inventory, "scope", lambda c: c.scope is not None)
    data = json.loads(spdx(inventory, project=project_of(root), environ=EPOCH))
    by_purl = {
        r["referenceLocator"]: p for p in data["packages"] for r in p.get("externalRefs", [])
    }
    for purl, hashes in lockfile_hashes().items():
        checksums = {
            (c["algorithm"].lower(), c["checksumValue"]) for c in by_purl[purl]["checksums"]
        }
        assert checksums == hashes
    related = relationships(data)
    assert (npm_purl("to-regex-range", "5.0.1"), "DEV_DEPENDENCY_OF", "project") in related


# Third-party readers -------------------------------------------------------------------


@pytest.fixture
def documents(tmp_path: Path, monorepo: tuple[str, Inventory]) -> dict[str, Path]:
    """The monorepo's SBOM in each format, written where the readers can read them."""
    root, inventory = monorepo
    project = project_of(root)
    paths = {"cdx": tmp_path / "bom.cdx.json", "spdx": tmp_path / "bom.spdx.json"}
    paths["cdx"].write_text(cyclonedx(inventory, project=project))
    paths["spdx"].write_text(spdx(inventory, project=project))
    return paths


def _broken_cdx(path: Path) -> Path:
    data = json.loads(path.read_text())
    data["components"][0]["scope"] = "sometimes"
    broken = path.with_name("broken.cdx.json")
    broken.write_text(json.dumps(data))
    return broken


def test_pyspdxtools_reads_the_spdx_document(documents: dict[str, Path]) -> None:
    done = pyspdxtools(documents["spdx"])
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(documents["spdx"].read_text())
    data["relationships"].append(
        {
            "spdxElementId": "SPDXRef-Project",
            "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": "SPDXRef-Package-nowhere",
        }
    )
    broken = documents["spdx"].with_name("broken.spdx.json")
    broken.write_text(json.dumps(data))
    refused = pyspdxtools(broken)  # it does judge: a dangling reference is refused
    assert refused.returncode != 0
    assert "SPDXRef-Package-nowhere" in refused.stdout + refused.stderr


def test_cdx_ev_validates_the_cyclonedx_document(documents: dict[str, Path]) -> None:
    done = cdx_ev(documents["cdx"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compliant" in done.stdout + done.stderr
    refused = cdx_ev(_broken_cdx(documents["cdx"]))
    assert refused.returncode != 0
    assert "sometimes" in refused.stdout + refused.stderr


def test_the_cyclonedx_javascript_library_validates_the_document(
    documents: dict[str, Path],
) -> None:
    done = cyclonedx_js(documents["cdx"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid CycloneDX 1.6" in done.stdout
    refused = cyclonedx_js(_broken_cdx(documents["cdx"]))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "/components/0/scope" in refused.stdout
