"""The SBOM of an inventory, component by component: one package per purl, the project at
the root, scopes, hashes, licenses, edges, the workspace's own packages, and the
document's time and identity; each document judged by its format's own validator
(cyclonedx-python-lib's strict JSON validator, spdx-tools' full validation). The real
lockfiles' SBOMs are test_sbom_lockfiles.py's."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.inventory import Inventory, Lockfile, format_of
from conveyor.deps.sbom import FORMATS, Project, cyclonedx, project_of, render, spdx
from conveyor.deps.sbom.graph import License, build, creation, hash_of, license_of
from conveyor.errors import EnvironmentProblem
from tests.deps.sbom_tools import cyclonedx_errors, relationships, spdx_messages

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA512 = (
    "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2"
    "7ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"
)
SHA1 = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"


def inventory(*locks: tuple[str, list[Component]]) -> Inventory:
    made = []
    for path, components in locks:
        fmt = format_of(path)
        assert fmt is not None
        made.append(Lockfile(path, fmt, tuple(components)))
    return Inventory(tuple(made), ())


def npm(
    name: str, version: str | None, lockfile: str = "package-lock.json", **kw: Any
) -> Component:
    return Component(name, version, Ecosystem.NPM, lockfile, **kw)


def pypi(name: str, version: str | None, lockfile: str = "uv.lock", **kw: Any) -> Component:
    return Component(name, version, Ecosystem.PYPI, lockfile, **kw)


def purl(name: str, version: str, ecosystem: Ecosystem = Ecosystem.NPM) -> str:
    return Component(name, version, ecosystem, "").purl


APP = Project("app", "1.0.0", Ecosystem.NPM)
ROOT = "pkg:npm/app@1.0.0"


def cdx(inv: Inventory, project: Project = APP, **kw: Any) -> dict[str, Any]:
    """The CycloneDX document, checked valid, as data."""
    text = cyclonedx(inv, project=project, environ=kw.pop("environ", EPOCH), **kw)
    assert cyclonedx_errors(text) is None
    data: dict[str, Any] = json.loads(text)
    return data


def spdx_doc(tmp_path: Path, inv: Inventory, project: Project = APP, **kw: Any) -> dict[str, Any]:
    """The SPDX document, checked valid by spdx-tools, as data."""
    text = spdx(inv, project=project, environ=kw.pop("environ", EPOCH), **kw)
    path = tmp_path / "sbom.spdx.json"
    path.write_text(text)
    assert spdx_messages(path) == []
    data: dict[str, Any] = json.loads(text)
    return data


def components(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in data.get("components", [])}


def depends(data: dict[str, Any]) -> dict[str, set[str]]:
    return {d["ref"]: set(d.get("dependsOn", [])) for d in data["dependencies"]}


def lockfiles(component: dict[str, Any]) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == "conveyor:lockfile"]


# --- one package per purl ---------------------------------------------------------------


def test_a_package_pinned_twice_is_one_component_listing_each_lockfile() -> None:
    inv = inventory(
        (
            "web/package-lock.json",
            [
                npm("ms", "2.1.3", "web/package-lock.json", line=12, hashes=(f"sha512:{SHA512}",)),
                npm("ms", "2.1.3", "web/package-lock.json", line=30, hashes=(f"sha512:{SHA512}",)),
            ],
        ),
        ("api/package-lock.json", [npm("ms", "2.1.3", "api/package-lock.json", line=7)]),
    )
    data = cdx(inv)
    (ms,) = data["components"]
    assert ms["bom-ref"] == ms["purl"] == "pkg:npm/ms@2.1.3"
    assert lockfiles(ms) == [
        "api/package-lock.json:7",
        "web/package-lock.json:12",
        "web/package-lock.json:30",
    ]
    assert ms["hashes"] == [{"alg": "SHA-512", "content": SHA512}]


def test_two_versions_of_a_package_are_two_components() -> None:
    inv = inventory(("package-lock.json", [npm("ms", "2.1.3"), npm("ms", "2.0.0")]))
    assert set(components(cdx(inv))) == {"pkg:npm/ms@2.1.3", "pkg:npm/ms@2.0.0"}


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ((Scope.PROD, Scope.DEV), "required"),
        ((Scope.DEV, Scope.DEV), "excluded"),
        ((Scope.DEV, None), None),  # one lockfile does not say: maybe shipped
        ((None, None), None),
        ((Scope.PROD,), "required"),
    ],
)
def test_scope_is_prod_when_any_lockfile_ships_it(
    scopes: tuple[Scope | None, ...], expected: str | None
) -> None:
    locks = [
        (f"p{i}/package-lock.json", [npm("a", "1.0.0", f"p{i}/package-lock.json", scope=s)])
        for i, s in enumerate(scopes)
    ]
    (a,) = cdx(inventory(*locks))["components"]
    assert a.get("scope") == expected


def test_components_are_sorted_and_grouped_as_each_ecosystem_spells_it() -> None:
    inv = inventory(
        ("package-lock.json", [npm("zod", "3.0.0"), npm("@types/node", "20.1.0")]),
        ("pom.xml", [Component("org.slf4j:slf4j-api", "2.0.9", Ecosystem.MAVEN, "pom.xml")]),
        ("go.mod", [Component("github.com/pkg/errors", "v0.9.1", Ecosystem.GO, "go.mod")]),
        ("uv.lock", [pypi("PyYAML", "6.0.1")]),
    )
    data = cdx(inv)
    seen = {c["purl"]: (c.get("group"), c["name"], c["version"]) for c in data["components"]}
    assert seen == {
        "pkg:npm/zod@3.0.0": (None, "zod", "3.0.0"),
        "pkg:npm/%40types/node@20.1.0": ("@types", "node", "20.1.0"),
        "pkg:maven/org.slf4j/slf4j-api@2.0.9": ("org.slf4j", "slf4j-api", "2.0.9"),
        # cyclonedx-gomod's spelling: the module's whole path is its name
        "pkg:golang/github.com/pkg/errors@v0.9.1": (None, "github.com/pkg/errors", "v0.9.1"),
        "pkg:pypi/pyyaml@6.0.1": (None, "PyYAML", "6.0.1"),
    }
    # the same input, the same order: the library's own sort, twice
    assert [c["bom-ref"] for c in cdx(inv)["components"]] == [
        c["bom-ref"] for c in data["components"]
    ]


# --- hashes, licenses ------------------------------------------------------------------


def test_hashes_map_to_each_formats_algorithm_names(tmp_path: Path) -> None:
    a = npm(
        "a",
        "1.0.0",
        hashes=(
            f"sha512:{SHA512}",
            f"sha256:{SHA256}",
            f"SHA1:{SHA1.upper()}",
            "h1:abc=",
            "sha256:00",
        ),
    )
    (component,) = cdx(inventory(("package-lock.json", [a])))["components"]
    assert component["hashes"] == [
        {"alg": "SHA-1", "content": SHA1},
        {"alg": "SHA-256", "content": SHA256},
        {"alg": "SHA-512", "content": SHA512},
    ]
    package = _package(spdx_doc(tmp_path, inventory(("package-lock.json", [a]))), a.purl)
    assert package["checksums"] == [
        {"algorithm": "SHA1", "checksumValue": SHA1},
        {"algorithm": "SHA256", "checksumValue": SHA256},
        {"algorithm": "SHA512", "checksumValue": SHA512},
    ]


def test_hash_of_reads_the_inventory_spelling() -> None:
    assert hash_of(f"sha256:{SHA256}") == ("sha256", SHA256)
    assert hash_of(f"sha3_256:{SHA256}") == ("sha3-256", SHA256)
    assert hash_of(f"blake2b-256:{SHA256}") == ("blake2b-256", SHA256)
    assert hash_of(f"sha512:{SHA256}") is None  # wrong length
    assert hash_of("h1:2a5fQ=") is None  # Go's dirhash: neither format names it
    assert hash_of(SHA256) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MIT", License(spdx="MIT")),
        ("mit", License(spdx="MIT")),
        ("mit or apache-2.0", License(spdx="MIT OR Apache-2.0")),
        ("GPL-2.0+", License(spdx="GPL-2.0-or-later")),
        (
            "(MIT AND BSD-3-Clause) OR Apache-2.0",
            License(spdx="(MIT AND BSD-3-Clause) OR Apache-2.0"),
        ),
        ("LicenseRef-Acme-EULA", License(spdx="LicenseRef-Acme-EULA")),
        ("MIT License", License(name="MIT License")),
        ("SEE LICENSE IN LICENSE.md", License(name="SEE LICENSE IN LICENSE.md")),
        ("MIT AND", License(name="MIT AND")),
        ("Custom", License(name="Custom")),
        ("", None),
        ("NOASSERTION", None),
        (None, None),
    ],
)
def test_license_of_keeps_spdx_expressions_and_names_the_rest(
    text: str | None, expected: License | None
) -> None:
    assert license_of(text) == expected


def test_licenses_in_cyclonedx_as_id_expression_or_name() -> None:
    inv = inventory(
        (
            "package-lock.json",
            [
                npm("a", "1.0.0", license="mit"),
                npm("b", "1.0.0", license="MIT OR Apache-2.0"),
                npm("c", "1.0.0", license="Acme Public License"),
                npm("d", "1.0.0", license="GPL-3.0"),  # the mapping says otherwise
                npm("e", "1.0.0"),
                npm("f", "1.0.0", license="LicenseRef-Acme"),
            ],
        )
    )
    data = cdx(inv, licenses={purl("d", "1.0.0"): "Apache-2.0 WITH LLVM-exception"})
    seen = {c["name"]: c.get("licenses") for c in data["components"]}
    assert seen == {
        "a": [{"license": {"id": "MIT"}}],
        "b": [{"expression": "MIT OR Apache-2.0"}],
        "c": [{"license": {"name": "Acme Public License"}}],
        "d": [{"expression": "Apache-2.0 WITH LLVM-exception"}],
        "e": None,
        "f": [{"expression": "LicenseRef-Acme"}],
    }


def test_licenses_in_spdx_declared_with_license_refs_for_the_rest(tmp_path: Path) -> None:
    inv = inventory(
        (
            "package-lock.json",
            [
                npm("a", "1.0.0", license="mit"),
                npm("c", "1.0.0", license="Acme Public License"),
                npm("e", "1.0.0"),
                npm("f", "1.0.0", license="MIT AND LicenseRef-Acme"),
            ],
        )
    )
    data = spdx_doc(tmp_path, inv)
    declared = {p["name"]: p["licenseDeclared"] for p in data["packages"]}
    ref = declared["c"]
    assert ref.startswith("LicenseRef-Acme-Public-License-")
    assert declared == {
        "app": "NOASSERTION",
        "a": "MIT",
        "c": ref,
        "e": "NOASSERTION",
        "f": "MIT AND LicenseRef-Acme",
    }
    assert {p["licenseConcluded"] for p in data["packages"]} == {"NOASSERTION"}
    extracted = {e["licenseId"]: e["extractedText"] for e in data["hasExtractedLicensingInfos"]}
    assert extracted == {ref: "Acme Public License", "LicenseRef-Acme": "LicenseRef-Acme"}


# --- edges ---------------------------------------------------------------------------


def test_edges_as_the_lockfile_keeps_them_and_the_root_on_the_direct_ones() -> None:
    inv = inventory(
        (
            "package-lock.json",
            [
                npm("debug", "2.6.9", direct=True, dependencies=(purl("ms", "2.0.0"),)),
                npm("ms", "2.0.0", direct=False, dependencies=()),
                npm("ms", "2.1.3", direct=True, dependencies=()),
                # an edge to a package the inventory does not have is dropped
                npm("x", "1.0.0", direct=True, dependencies=(purl("gone", "1.0.0"),)),
            ],
        )
    )
    data = cdx(inv)
    assert depends(data) == {
        ROOT: {purl("debug", "2.6.9"), purl("ms", "2.1.3"), purl("x", "1.0.0")},
        purl("debug", "2.6.9"): {purl("ms", "2.0.0")},
        purl("ms", "2.0.0"): set(),
        purl("ms", "2.1.3"): set(),
        purl("x", "1.0.0"): set(),
    }


def test_without_edges_every_package_hangs_from_the_root() -> None:
    inv = inventory(
        (
            "requirements.txt",
            [pypi("a", "1", "requirements.txt"), pypi("b", "2", "requirements.txt")],
        )
    )
    data = cdx(inv, Project("svc"))
    root = data["metadata"]["component"]
    assert root["bom-ref"] == "conveyor:project/svc"
    assert "purl" not in root
    assert depends(data)[root["bom-ref"]] == {
        purl("a", "1", Ecosystem.PYPI),
        purl("b", "2", Ecosystem.PYPI),
    }


def test_with_edges_but_no_direct_the_root_takes_what_nothing_depends_on() -> None:
    # poetry.lock: edges, but not which packages the project asks for
    a, b, c = (pypi(n, "1", "poetry.lock") for n in "abc")
    a = pypi("a", "1", "poetry.lock", dependencies=(b.purl,))
    b = pypi("b", "1", "poetry.lock", dependencies=())
    c = pypi("c", "1", "poetry.lock", dependencies=())
    data = cdx(inventory(("poetry.lock", [a, b, c])))
    assert depends(data)[ROOT] == {a.purl, c.purl}


def test_a_cycle_nothing_else_reaches_hangs_from_the_root_once() -> None:
    x = npm("x", "1.0.0", direct=False, dependencies=(purl("y", "1.0.0"),))
    y = npm("y", "1.0.0", direct=False, dependencies=(purl("x", "1.0.0"),))
    graph = build(inventory(("package-lock.json", [x, y])), APP)
    assert graph.dependencies == (x.purl,)
    assert cdx(inventory(("package-lock.json", [x, y])))["dependencies"]  # valid, no warning


def test_edges_merge_across_lockfiles() -> None:
    inv = inventory(
        (
            "a/package-lock.json",
            [
                npm(
                    "p",
                    "1.0.0",
                    "a/package-lock.json",
                    direct=True,
                    dependencies=(purl("q", "1.0.0"),),
                ),
                npm("q", "1.0.0", "a/package-lock.json", dependencies=()),
            ],
        ),
        (
            "b/package-lock.json",
            [
                npm(
                    "p",
                    "1.0.0",
                    "b/package-lock.json",
                    direct=True,
                    dependencies=(purl("r", "1.0.0"),),
                ),
                npm("r", "1.0.0", "b/package-lock.json", dependencies=()),
            ],
        ),
    )
    assert depends(cdx(inv))[purl("p", "1.0.0")] == {purl("q", "1.0.0"), purl("r", "1.0.0")}


# --- dev -----------------------------------------------------------------------------


def _dev_inventory() -> Inventory:
    return inventory(
        (
            "package-lock.json",
            [
                npm(
                    "debug",
                    "2.6.9",
                    direct=True,
                    scope=Scope.PROD,
                    dependencies=(purl("ms", "2.0.0"),),
                ),
                npm("ms", "2.0.0", scope=Scope.PROD, dependencies=()),
                npm(
                    "jest",
                    "29.0.0",
                    direct=True,
                    scope=Scope.DEV,
                    dependencies=(purl("expect", "29.0.0"),),
                ),
                npm("expect", "29.0.0", scope=Scope.DEV, dependencies=()),
            ],
        )
    )


def test_dev_packages_are_excluded_scope_in_cyclonedx() -> None:
    data = cdx(_dev_inventory())
    scopes = {c["name"]: c["scope"] for c in data["components"]}
    assert scopes == {
        "debug": "required",
        "ms": "required",
        "jest": "excluded",
        "expect": "excluded",
    }
    assert depends(data)[ROOT] == {purl("debug", "2.6.9"), purl("jest", "29.0.0")}


def test_no_dev_leaves_dev_packages_and_their_edges_out(tmp_path: Path) -> None:
    data = cdx(_dev_inventory(), dev=False)
    assert {c["name"] for c in data["components"]} == {"debug", "ms"}
    assert depends(data)[ROOT] == {purl("debug", "2.6.9")}
    doc = spdx_doc(tmp_path, _dev_inventory(), dev=False)
    assert {p["name"] for p in doc["packages"]} == {"app", "debug", "ms"}


def test_spdx_relationships_with_dev_dependencies(tmp_path: Path) -> None:
    data = spdx_doc(tmp_path, _dev_inventory())
    assert relationships(data) == {
        ("document", "DESCRIBES", "project"),
        ("project", "DEPENDS_ON", purl("debug", "2.6.9")),
        (purl("debug", "2.6.9"), "DEPENDS_ON", purl("ms", "2.0.0")),
        # SPDX 2.3's way to say the project needs jest only to develop
        (purl("jest", "29.0.0"), "DEV_DEPENDENCY_OF", "project"),
        # what jest needs, it needs to run: an ordinary dependency of jest
        (purl("jest", "29.0.0"), "DEPENDS_ON", purl("expect", "29.0.0")),
    }


# --- the project and its own packages ---------------------------------------------------


def test_the_root_is_the_project_with_the_tool_and_time() -> None:
    data = cdx(
        inventory(("package-lock.json", [npm("a", "1.0.0", direct=True)])),
        Project("@acme/app", "2.0.0", Ecosystem.NPM),
    )
    assert data["specVersion"] == "1.6"
    metadata = data["metadata"]
    assert metadata["timestamp"] == "2023-11-14T22:13:20+00:00"
    from conveyor import __version__

    assert metadata["tools"] == {
        "components": [{"type": "application", "name": "conveyor", "version": __version__}]
    }
    root = metadata["component"]
    assert (root["type"], root["group"], root["name"], root["version"]) == (
        "application",
        "@acme",
        "app",
        "2.0.0",
    )
    assert root["bom-ref"] == root["purl"] == "pkg:npm/%40acme/app@2.0.0"


def test_the_projects_own_lock_entry_is_the_root_and_its_edges_are_the_roots(
    tmp_path: Path,
) -> None:
    # uv.lock lists the project itself (a virtual package) with what it depends on
    me = pypi(
        "svc",
        "2.0.1",
        local=True,
        direct=False,
        dependencies=(purl("six", "1.17.0", Ecosystem.PYPI),),
    )
    six = pypi("six", "1.17.0", direct=True, dependencies=())
    extra = pypi("lonely", "1.0", direct=False, dependencies=())
    project = Project("svc", "2.0.1", Ecosystem.PYPI)
    data = cdx(inventory(("uv.lock", [me, six, extra])), project)
    assert set(components(data)) == {six.purl, extra.purl}
    assert "components" not in data["metadata"]["component"]
    assert depends(data)["pkg:pypi/svc@2.0.1"] == {six.purl, extra.purl}
    doc = spdx_doc(tmp_path, inventory(("uv.lock", [me, six, extra])), project)
    assert [p["name"] for p in doc["packages"]].count("svc") == 1


def test_other_own_packages_are_the_roots_subcomponents(tmp_path: Path) -> None:
    member = npm(
        "@acme/ui", "0.1.0", local=True, direct=True, dependencies=(purl("react", "18.0.0"),)
    )
    react = npm("react", "18.0.0", direct=True, dependencies=())
    inv = inventory(("package-lock.json", [member, react]))
    data = cdx(inv)
    (sub,) = data["metadata"]["component"]["components"]
    assert (sub["bom-ref"], sub["group"], sub["name"]) == (member.purl, "@acme", "ui")
    assert "scope" not in sub
    assert set(components(data)) == {react.purl}
    assert depends(data)[member.purl] == {react.purl}
    doc = spdx_doc(tmp_path, inv)
    assert ("project", "CONTAINS", member.purl) in relationships(doc)
    assert (member.purl, "DEPENDS_ON", react.purl) in relationships(doc)


def test_an_empty_inventory_is_the_project_alone(tmp_path: Path) -> None:
    empty = Inventory((), ())
    data = cdx(empty, Project("bare"))
    assert "components" not in data or data["components"] == []
    doc = spdx_doc(tmp_path, empty, Project("bare"))
    assert [p["SPDXID"] for p in doc["packages"]] == ["SPDXRef-Project"]


def test_spdx_ids_are_safe_and_distinct_for_purls_that_read_alike(tmp_path: Path) -> None:
    inv = inventory(
        (
            "package-lock.json",
            [npm("a_b", "1.0.0"), npm("a.b", "1.0.0"), npm("a~b", "1.0.0"), npm("@s/x", "1.0.0")],
        )
    )
    data = spdx_doc(tmp_path, inv)
    ids = [p["SPDXID"] for p in data["packages"]]
    assert len(set(ids)) == len(ids) == 5
    assert all(
        i.replace("SPDXRef-", "", 1).replace("-", "").replace(".", "").isalnum() for i in ids
    )
    assert any(i.startswith("SPDXRef-Package-npm-s-x-1.0.0-") for i in ids)


def test_spdx_document_header(tmp_path: Path) -> None:
    data = spdx_doc(tmp_path, Inventory((), ()), Project("app", "1.0.0", Ecosystem.NPM))
    from conveyor import __version__

    assert data["spdxVersion"] == "SPDX-2.3"
    assert data["SPDXID"] == "SPDXRef-DOCUMENT"
    assert data["dataLicense"] == "CC0-1.0"
    assert data["name"] == "app-1.0.0"
    assert data["creationInfo"] == {
        "created": "2023-11-14T22:13:20Z",
        "creators": [f"Tool: conveyor-{__version__}"],
    }
    assert data["documentNamespace"].startswith("https://spdx.org/spdxdocs/app-1.0.0-")
    (root,) = data["packages"]
    assert root["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE_MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:npm/app@1.0.0",
        }
    ]
    assert (root["downloadLocation"], root["filesAnalyzed"]) == ("NOASSERTION", False)
    named = spdx(
        Inventory((), ()), project=APP, environ=EPOCH, namespace="https://example.com/sboms/app-1"
    )
    assert json.loads(named)["documentNamespace"] == "https://example.com/sboms/app-1"


# --- time and identity -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_source_date_epoch_makes_the_document_reproducible(fmt: str) -> None:
    inv = _dev_inventory()
    first = render(fmt, inv, project=APP, environ=EPOCH)
    assert render(fmt, inv, project=APP, environ=EPOCH) == first
    later = render(fmt, inv, project=APP, environ={"SOURCE_DATE_EPOCH": "1700000001"})
    other = render(
        fmt, inventory(("package-lock.json", [npm("x", "1.0.0")])), project=APP, environ=EPOCH
    )
    identity = "serialNumber" if fmt == "cyclonedx-json" else "documentNamespace"
    ids = {json.loads(t)[identity] for t in (first, later, other)}
    assert len(ids) == 3  # derived from the content, time included


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_source_date_epoch_the_identity_is_random_and_the_time_now(fmt: str) -> None:
    inv = _dev_inventory()
    one, two = (json.loads(render(fmt, inv, project=APP, environ={})) for _ in range(2))
    if fmt == "cyclonedx-json":
        serials = {one["serialNumber"], two["serialNumber"]}
        assert len(serials) == 2
        assert all(uuid.UUID(s.removeprefix("urn:uuid:")).version == 4 for s in serials)
    else:
        assert one["documentNamespace"] != two["documentNamespace"]


def test_creation_reads_source_date_epoch() -> None:
    assert creation({"SOURCE_DATE_EPOCH": "0"}).time.isoformat() == "1970-01-01T00:00:00+00:00"
    assert creation({"SOURCE_DATE_EPOCH": "0"}).reproducible
    now = creation({})
    assert not now.reproducible
    assert now.time.microsecond == 0
    for bad in ("soon", "-5", "1.5", "99999999999999999999"):
        with pytest.raises(EnvironmentProblem, match="SOURCE_DATE_EPOCH"):
            creation({"SOURCE_DATE_EPOCH": bad})


# --- the project's name -------------------------------------------------------------------


def test_project_of_reads_the_manifests_in_order(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text(
        '[package]\nname = "crate"\nversion.workspace = true\n'
        '[workspace.package]\nversion = "0.4.0"\n'
    )
    assert project_of(str(tmp_path)) == Project("crate", "0.4.0", Ecosystem.CARGO)
    (tmp_path / "package.json").write_text('{"name": "@acme/web", "version": "3.1.0"}')
    assert project_of(str(tmp_path)) == Project("@acme/web", "3.1.0", Ecosystem.NPM)
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\nname = "poet"\nversion = "0.9.0"\n')
    assert project_of(str(tmp_path)) == Project("poet", "0.9.0", Ecosystem.PYPI)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "svc"\ndynamic = ["version"]\n')
    assert project_of(str(tmp_path)) == Project("svc", None, Ecosystem.PYPI)
    (tmp_path / "pyproject.toml").write_text("[project\n")  # does not parse: passed over
    assert project_of(str(tmp_path)).name == "@acme/web"


def test_project_of_a_directory_without_a_manifest_is_its_name(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert project_of(str(tmp_path / "shop")) == Project("shop")


def _package(data: dict[str, Any], purl_text: str) -> dict[str, Any]:
    for package in data["packages"]:
        if any(r["referenceLocator"] == purl_text for r in package.get("externalRefs", [])):
            found: dict[str, Any] = package
            return found
    raise AssertionError(purl_text)
