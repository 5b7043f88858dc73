"""package-lock.json (v1-v3), yarn.lock (v1, Berry) and pnpm-lock.yaml (5.4, 6.0, 9.0) read
into the inventory. The data under data/ was written by the real tools (see
data/README.md) for one small workspace: a root asking for debug 2.6.9 (which pins
ms 2.0.0), ms ^2.1.3, @sindresorhus/is, react and use-sync-external-store (react as its
peer), is-odd as a dev dependency (is-number 6 under it), and a member packages/lib
(@demo/lib) asking for is-number ^7, so two versions of ms and of is-number are
locked."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.ecosystems import lockyaml
from conveyor.deps.inventory import Lockfile, read_lockfile

DATA = Path(__file__).parent / "data"
PROD, DEV = Scope.PROD, Scope.DEV

# (name, version, direct, scope) of the workspace's packages, as every format locks them.
COMMON = {
    ("@sindresorhus/is", "4.6.0", True, PROD),
    ("debug", "2.6.9", True, PROD),
    ("ms", "2.0.0", False, PROD),
    ("ms", "2.1.3", True, PROD),
    ("is-odd", "3.0.1", True, DEV),
    ("is-number", "6.0.0", False, DEV),
    ("react", "19.1.0", True, PROD),
    ("use-sync-external-store", "1.5.0", True, PROD),
}
MEMBER = ("@demo/lib", "1.0.0", True, PROD)
IS_NUMBER_7 = ("is-number", "7.0.0", True, PROD)  # direct for the member packages/lib
INTEGRITY = {  # as the registry publishes them
    "ms@2.1.3": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAO"
    "tHnSO/tXtF3WRTlA==",
    "debug@2.6.9": "sha512-bC7ElrdJaJnPbAP+1EotYvqZsb3ecl5wi6Bfi6BJTUcNowp6cvspg0jXznRTKDjm/E7Ad"
    "gFBVeAPVMNcKGsHMA==",
}


def read(directory: str, name: str) -> list[Component]:
    found = read_lockfile(str(DATA / directory), name)
    assert isinstance(found, Lockfile), found
    return list(found.components)


def table(components: list[Component]) -> set[tuple[str, str | None, bool | None, Scope | None]]:
    return {(c.name, c.version, c.direct, c.scope) for c in components}


def by_ref(components: list[Component]) -> dict[str, Component]:
    refs = [c.ref for c in components]
    assert len(refs) == len(set(refs)), "one component per package and version"
    return {c.ref: c for c in components}


def sri_hex(integrity: str) -> str:
    algorithm, _, digest = integrity.partition("-")
    return f"{algorithm}:{base64.b64decode(digest).hex()}"


def assert_lines_hold_entries(directory: str, name: str, components: list[Component]) -> None:
    """Each component's line is the line of its entry: it names the package (pnpm names
    a workspace member by its directory)."""
    lines = (DATA / directory / name).read_text().splitlines()
    for c in components:
        assert c.line is not None, c
        names = (c.name, "packages/lib") if c.local else (c.name,)
        assert any(n in lines[c.line - 1] for n in names), (c, lines[c.line - 1])


def assert_common_edges(components: dict[str, Component], peers: bool) -> None:
    assert components["pkg:npm/debug@2.6.9"].dependencies == ("pkg:npm/ms@2.0.0",)
    assert components["pkg:npm/is-odd@3.0.1"].dependencies == ("pkg:npm/is-number@6.0.0",)
    assert components["pkg:npm/ms@2.1.3"].dependencies == ()
    expected = ("pkg:npm/react@19.1.0",) if peers else ()
    assert components["pkg:npm/use-sync-external-store@1.5.0"].dependencies == expected


# package-lock.json ------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["lock-v2", "lock-v3"])
def test_package_lock_v2_and_v3(version: str) -> None:
    directory = f"npm/{version}"
    components = read(directory, "package-lock.json")
    assert table(components) == {*COMMON, MEMBER, IS_NUMBER_7}
    found = by_ref(components)
    member = found["pkg:npm/%40demo/lib@1.0.0"]
    assert member.local
    assert member.declared == "package.json"
    assert set(member.dependencies or ()) == {
        "pkg:npm/%40sindresorhus/is@4.6.0",
        "pkg:npm/is-number@7.0.0",  # packages/lib/node_modules/is-number, not the root's 6
        "pkg:npm/ms@2.1.3",
    }
    assert found["pkg:npm/is-number@7.0.0"].declared == "packages/lib/package.json"
    assert_common_edges(found, peers=True)
    assert found["pkg:npm/ms@2.1.3"].hashes == (sri_hex(INTEGRITY["ms@2.1.3"]),)
    assert found["pkg:npm/debug@2.6.9"].hashes == (sri_hex(INTEGRITY["debug@2.6.9"]),)
    assert {c.license for c in components} == {"MIT"}
    assert_lines_hold_entries(directory, "package-lock.json", components)
    lines = (DATA / directory / "package-lock.json").read_text().splitlines()
    nested = found["pkg:npm/ms@2.0.0"]
    assert nested.line is not None
    assert '"node_modules/debug/node_modules/ms": {' in lines[nested.line - 1]


def test_package_lock_v1_direct_from_package_json() -> None:
    components = read("npm/lock-v1", "package-lock.json")
    assert table(components) == {
        *COMMON,
        ("@demo/lib", None, True, PROD),  # file:packages/lib: a link, no registry version
        ("is-number", "7.0.0", False, PROD),  # hoisted; only the member asks for it
    }
    found = by_ref(components)
    assert found["pkg:npm/%40demo/lib"].local
    assert set(found["pkg:npm/%40demo/lib"].dependencies or ()) == {
        "pkg:npm/%40sindresorhus/is@4.6.0",
        "pkg:npm/is-number@7.0.0",
        "pkg:npm/ms@2.1.3",
    }
    assert_common_edges(found, peers=False)  # version 1 records no peers
    assert found["pkg:npm/ms@2.1.3"].hashes == (sri_hex(INTEGRITY["ms@2.1.3"]),)
    assert found["pkg:npm/debug@2.6.9"].declared == "package.json"
    assert_lines_hold_entries("npm/lock-v1", "package-lock.json", components)


def test_package_lock_v1_without_package_json_does_not_say_direct(tmp_path: Path) -> None:
    (tmp_path / "package-lock.json").write_text(
        (DATA / "npm/lock-v1/package-lock.json").read_text()
    )
    found = read_lockfile(str(tmp_path), "package-lock.json")
    assert isinstance(found, Lockfile)
    assert {c.direct for c in found.components} == {None}


# yarn.lock -----------------------------------------------------------------------------


def test_yarn_v1() -> None:
    components = read("yarn/v1", "yarn.lock")
    # Yarn 1 does not lock workspace members; packages/lib is named by path in
    # package.json's workspaces, so what it asks for is direct.
    assert table(components) == {*COMMON, IS_NUMBER_7}
    found = by_ref(components)
    assert_common_edges(found, peers=False)
    assert found["pkg:npm/ms@2.1.3"].hashes == (sri_hex(INTEGRITY["ms@2.1.3"]),)
    assert found["pkg:npm/is-number@7.0.0"].declared == "packages/lib/package.json"
    assert_lines_hold_entries("yarn/v1", "yarn.lock", components)
    lines = (DATA / "yarn/v1/yarn.lock").read_text().splitlines()
    line = found["pkg:npm/ms@2.1.3"].line
    assert line is not None
    assert lines[line - 1] == "ms@2.1.3, ms@^2.1.3:"  # one entry, two ranges
    line = found["pkg:npm/%40sindresorhus/is@4.6.0"].line
    assert line is not None
    assert lines[line - 1] == '"@sindresorhus/is@^4.0.0", "@sindresorhus/is@^4.6.0":'


def test_yarn_v1_workspace_members_named_by_a_glob(tmp_path: Path) -> None:
    shutil.copytree(DATA / "yarn/v1", tmp_path, dirs_exist_ok=True)
    manifest = json.loads((tmp_path / "package.json").read_text())
    manifest["workspaces"] = ["packages/*", "!packages/legacy"]
    (tmp_path / "package.json").write_text(json.dumps(manifest))
    # Left out by the '!' pattern: had it counted, is-number 6 would be direct and prod.
    (tmp_path / "packages/legacy").mkdir()
    (tmp_path / "packages/legacy/package.json").write_text(
        json.dumps({"name": "legacy", "dependencies": {"is-number": "^6.0.0"}})
    )
    found = read_lockfile(str(tmp_path), "yarn.lock")
    assert isinstance(found, Lockfile), found
    components = list(found.components)
    assert table(components) == {*COMMON, IS_NUMBER_7}
    assert by_ref(components)["pkg:npm/is-number@7.0.0"].declared == "packages/lib/package.json"

    manifest["workspaces"] = ["packages/*"]  # now legacy is a member
    (tmp_path / "package.json").write_text(json.dumps(manifest))
    found = read_lockfile(str(tmp_path), "yarn.lock")
    assert isinstance(found, Lockfile), found
    assert ("is-number", "6.0.0", True, PROD) in table(list(found.components))


def test_yarn_berry() -> None:
    components = read("yarn/berry", "yarn.lock")
    assert table(components) == {*COMMON, MEMBER, IS_NUMBER_7}
    found = by_ref(components)
    assert_common_edges(found, peers=False)  # Berry resolves peers in virtual copies
    member = found["pkg:npm/%40demo/lib@1.0.0"]  # version from its package.json
    assert member.local
    assert set(member.dependencies or ()) == {
        "pkg:npm/%40sindresorhus/is@4.6.0",
        "pkg:npm/is-number@7.0.0",
        "pkg:npm/ms@2.1.3",
    }
    text = (DATA / "yarn/berry/yarn.lock").read_text()
    assert found["pkg:npm/ms@2.1.3"].hashes == (
        "sha512:d924b57e7312b3b63ad21fc5b3dc0af5e78d61a1fc7cfb5457edaf26326bf62be5307cc87ffb6862"
        "ef1c2b33b0233cdb5d4f01c4c958cc0d660948b65a287a48",
    )
    assert found["pkg:npm/ms@2.1.3"].hashes[0].split(":")[1] in text
    assert "demo-app" not in {c.name for c in components}  # the project itself
    # The root's package.json declares it first (the member asks for it too).
    assert found["pkg:npm/%40sindresorhus/is@4.6.0"].declared == "package.json"
    assert_lines_hold_entries("yarn/berry", "yarn.lock", components)


def test_yarn_v1_syntax_error_is_located(tmp_path: Path) -> None:
    (tmp_path / "yarn.lock").write_text(
        '# yarn lockfile v1\n\nms@^2.1.3:\n  version "2.1.3\n  resolved "x"\n'
    )
    found = read_lockfile(str(tmp_path), "yarn.lock")
    assert not isinstance(found, Lockfile)
    assert (found.line, found.col) == (4, 11)
    assert found.message == "unterminated string"


# pnpm-lock.yaml ------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v5", "v6", "v9"])
def test_pnpm(version: str) -> None:
    directory = f"pnpm/{version}"
    components = read(directory, "pnpm-lock.yaml")
    assert table(components) == {*COMMON, MEMBER, IS_NUMBER_7}
    found = by_ref(components)
    assert_common_edges(found, peers=True)
    member = found["pkg:npm/%40demo/lib@1.0.0"]
    assert member.local
    assert member.declared == "package.json"  # the root asks for it (workspace:*)
    assert set(member.dependencies or ()) == {
        "pkg:npm/%40sindresorhus/is@4.6.0",
        "pkg:npm/is-number@7.0.0",
        "pkg:npm/ms@2.1.3",
    }
    assert found["pkg:npm/is-number@7.0.0"].declared == "packages/lib/package.json"
    assert found["pkg:npm/ms@2.1.3"].hashes == (sri_hex(INTEGRITY["ms@2.1.3"]),)
    assert_lines_hold_entries(directory, "pnpm-lock.yaml", components)
    lines = (DATA / directory / "pnpm-lock.yaml").read_text().splitlines()
    line = found["pkg:npm/use-sync-external-store@1.5.0"].line
    assert line is not None
    assert (
        lines[line - 1]
        .strip()
        .startswith(
            {
                "v5": "/use-sync-external-store/1.5.0_react@19.1.0:",
                "v6": "/use-sync-external-store@1.5.0(react@19.1.0):",
                "v9": "use-sync-external-store@1.5.0:",
            }[version]
        )
    )


def test_pnpm_v9_single_project_without_importers(tmp_path: Path) -> None:
    (tmp_path / "pnpm-lock.yaml").write_text(
        "lockfileVersion: '9.0'\n\nimporters:\n\n  .:\n    devDependencies:\n      ms:\n"
        "        specifier: ^2.1.3\n        version: 2.1.3\n\npackages:\n\n  ms@2.1.3:\n"
        "    resolution: {integrity: sha512-AAAA}\n\nsnapshots:\n\n  ms@2.1.3: {}\n"
    )
    found = read_lockfile(str(tmp_path), "pnpm-lock.yaml")
    assert isinstance(found, Lockfile)
    [ms] = found.components
    assert (ms.name, ms.version, ms.scope, ms.line, ms.hashes) == (
        "ms",
        "2.1.3",
        DEV,
        13,
        ("sha512:000000",),
    )


def test_pnpm_yaml_outside_the_fast_subset_is_read_by_the_general_loader(tmp_path: Path) -> None:
    shutil.copytree(DATA / "pnpm/v9", tmp_path, dirs_exist_ok=True)
    text = (DATA / "pnpm/v9/pnpm-lock.yaml").read_text()
    # An anchor and an alias: valid YAML that pnpm does not write.
    text = text.replace("engines: {node: '>=10'}", "engines: &e {node: '>=10'}", 1)
    text = text.replace("engines: {node: '>=4'}", "engines: *e", 1)
    (tmp_path / "pnpm-lock.yaml").write_text(text)
    found = read_lockfile(str(tmp_path), "pnpm-lock.yaml")
    assert isinstance(found, Lockfile)
    assert table(list(found.components)) == table(read("pnpm/v9", "pnpm-lock.yaml"))
    assert [c.line for c in found.components] == [c.line for c in read("pnpm/v9", "pnpm-lock.yaml")]


def test_pnpm_syntax_error_is_located(tmp_path: Path) -> None:
    (tmp_path / "pnpm-lock.yaml").write_text(
        "lockfileVersion: '9.0'\n\npackages:\n\n  ms@2.1.3:\n    resolution: {integrity: x\n"
    )
    found = read_lockfile(str(tmp_path), "pnpm-lock.yaml")
    assert not isinstance(found, Lockfile)
    assert found.line == 7
    assert found.col is not None


def test_scoped_purls_and_ecosystem() -> None:
    components = read("pnpm/v9", "pnpm-lock.yaml")
    assert {c.ecosystem for c in components} == {Ecosystem.NPM}
    assert "pkg:npm/%40sindresorhus/is@4.6.0" in {c.purl for c in components}


@pytest.mark.parametrize(
    "path",
    [
        "pnpm/v5/pnpm-lock.yaml",
        "pnpm/v6/pnpm-lock.yaml",
        "pnpm/v9/pnpm-lock.yaml",
        "yarn/berry/yarn.lock",
    ],
)
def test_fast_yaml_reader_agrees_with_the_general_loader(path: str) -> None:
    from ruamel.yaml import YAML

    text = (DATA / path).read_text()
    documents, lines = lockyaml.load(text)
    assert documents == list(YAML(typ="safe").load_all(text))
    assert lines == lockyaml.key_lines(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors
        "a: |\n  text\n",  # block scalars
        "a: {b: {c: 1}}\n",  # nested flow
        "a:\n  - b: 1\n",  # a mapping in a sequence
        "a: 1\na: 2\n",  # a duplicate key
        "a: !tag x\n",
        "a:\n  b: 1\n c: 2\n",  # indentation
        'a: "\\x41"\n',  # an escape JSON does not have
        "a: 0x1F\n",
    ],
)
def test_fast_yaml_reader_gives_up_outside_its_subset(text: str) -> None:
    with pytest.raises(lockyaml.Unsupported):
        lockyaml.load(text)


def test_package_lock_copies_of_one_package_are_one_component(tmp_path: Path) -> None:
    """npm installs one package and version at several paths when hoisting cannot share
    it (here ms 2.0.0 under a and under b, ms 2.1.3 at the top)."""
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"dependencies": {"a": "1", "b": "1", "ms": "2"}, "devDependencies": {}},
            "node_modules/a": {"version": "1.0.0", "dev": True, "dependencies": {"ms": "2.0.0"}},
            "node_modules/a/node_modules/ms": {"version": "2.0.0", "dev": True},
            "node_modules/b": {"version": "1.0.0", "dependencies": {"ms": "2.0.0"}},
            "node_modules/b/node_modules/ms": {"version": "2.0.0"},
            "node_modules/ms": {"version": "2.1.3"},
        },
    }
    (tmp_path / "package-lock.json").write_text(json.dumps(lock, indent=2))
    found = read_lockfile(str(tmp_path), "package-lock.json")
    assert isinstance(found, Lockfile)
    assert [(c.name, c.version, c.scope, c.line) for c in found.components] == [
        ("a", "1.0.0", DEV, 12),
        ("ms", "2.0.0", PROD, 19),  # the first copy's line; b's copy is production's
        ("b", "1.0.0", PROD, 23),
        ("ms", "2.1.3", PROD, 32),
    ]


def test_yarn_berry_before_lockfile_8(tmp_path: Path) -> None:
    """Yarn 2 and 3 wrote ranges without the default 'npm:' and checksums without the
    cache key."""
    digest = "ab" * 64
    (tmp_path / "package.json").write_text('{"devDependencies": {"debug": "2.6.9"}}')
    (tmp_path / "yarn.lock").write_text(
        "__metadata:\n  version: 6\n  cacheKey: 8\n\n"
        '"app@workspace:.":\n  version: 0.0.0-use.local\n  resolution: "app@workspace:."\n'
        "  dependencies:\n    debug: 2.6.9\n  languageName: unknown\n  linkType: soft\n\n"
        '"debug@npm:2.6.9":\n  version: 2.6.9\n  resolution: "debug@npm:2.6.9"\n'
        f"  dependencies:\n    ms: 2.0.0\n  checksum: {digest}\n  languageName: node\n"
        "  linkType: hard\n\n"
        '"ms@npm:2.0.0":\n  version: 2.0.0\n  resolution: "ms@npm:2.0.0"\n'
        f"  checksum: {digest}\n  languageName: node\n  linkType: hard\n"
    )
    found = read_lockfile(str(tmp_path), "yarn.lock")
    assert isinstance(found, Lockfile)
    assert [
        (c.name, c.direct, c.scope, c.line, c.hashes, c.dependencies) for c in found.components
    ] == [
        ("debug", True, DEV, 13, (f"sha512:{digest}",), ("pkg:npm/ms@2.0.0",)),
        ("ms", False, DEV, 22, (f"sha512:{digest}",), ()),
    ]


def test_yarn_resolutions_that_replaced_a_range_still_give_the_edge(tmp_path: Path) -> None:
    # As JupyterLab's staging yarn.lock has it (Berry, lockfile 6): a package asks for
    # ^4.7.0-alpha.2, package.json's `resolutions` forces ~4.7.0-alpha.2, and only the
    # forced range is a key. Without following it, everything under that package
    # lost its scope (213 of 1,106 packages there). Written in the shape Yarn writes.
    (tmp_path / "package.json").write_text(
        json.dumps(
            {
                "name": "top",
                "dependencies": {"ext": "~1.0.0"},
                "resolutions": {"core": "~4.7.0-alpha.2", "left-pad": "1.3.0"},
            }
        )
    )
    (tmp_path / "yarn.lock").write_text(
        "__metadata:\n  version: 6\n  cacheKey: 8\n\n"
        '"core@npm:~4.7.0-alpha.2":\n  version: 4.7.0-alpha.2\n'
        '  resolution: "core@npm:4.7.0-alpha.2"\n  dependencies:\n'
        "    leaf: ^2.0.0\n  languageName: node\n  linkType: hard\n\n"
        '"ext@npm:~1.0.0":\n  version: 1.0.1\n  resolution: "ext@npm:1.0.1"\n'
        "  dependencies:\n    core: ^4.7.0-alpha.2\n    left-pad: ^1.1.0\n"
        "  languageName: node\n  linkType: hard\n\n"
        '"leaf@npm:^2.0.0":\n  version: 2.1.0\n  resolution: "leaf@npm:2.1.0"\n'
        "  languageName: node\n  linkType: hard\n\n"
        '"left-pad@npm:1.3.0":\n  version: 1.3.0\n  resolution: "left-pad@npm:1.3.0"\n'
        "  languageName: node\n  linkType: hard\n\n"
        '"left-pad@npm:^1.0.0":\n  version: 1.1.3\n  resolution: "left-pad@npm:1.1.3"\n'
        "  languageName: node\n  linkType: hard\n\n"
        '"top@workspace:.":\n  version: 0.0.0-use.local\n  resolution: "top@workspace:."\n'
        "  dependencies:\n    ext: ~1.0.0\n  languageName: unknown\n  linkType: soft\n"
    )
    lock = read_lockfile(str(tmp_path), "yarn.lock")
    assert isinstance(lock, Lockfile)
    found = by_ref(list(lock.components))
    # the range a package asks for is replaced as package.json says; with one version
    # locked, that one; with two, the one `resolutions` names
    assert found["pkg:npm/ext@1.0.1"].dependencies == (
        "pkg:npm/core@4.7.0-alpha.2",
        "pkg:npm/left-pad@1.3.0",
    )
    assert found["pkg:npm/core@4.7.0-alpha.2"].scope is PROD
    assert found["pkg:npm/leaf@2.1.0"].scope is PROD
    assert found["pkg:npm/left-pad@1.1.3"].scope is None  # nothing reaches it
