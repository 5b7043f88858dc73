"""The workspace's inventory: lockfiles found among the workspace's files (a monorepo's
in every directory; vendored, installed and git-ignored trees left out), each read, one
located error for one that cannot be, and the dependency tree drawn from the edges.
The lockfiles are those of tests/deps/data (SOURCES.md there); the small Gemfile.lock
of the cycle test is written in Bundler's format."""

from __future__ import annotations

import shutil
from pathlib import Path

from conveyor.deps.inventory import (
    Lockfile,
    TreeRow,
    dependency_tree,
    discover,
    format_of,
    inventory_of,
    read_lockfile,
)
from tests.conftest import Project
from tests.deps.lockdata import DATA

PLACES = {
    "services/crypto/Cargo.lock": "cryptography-41.0.7.Cargo.lock",
    "services/storage/go.mod": "prometheus-remote-storage.go.mod",
    "services/storage/go.sum": "prometheus-remote-storage.go.sum",
    "java/pom.xml": "plexus-io-3.5.1.pom.xml",
    "java/plugin/gradle.lockfile": "gradle-configurations.gradle.lockfile",
    "ruby/Gemfile.lock": "handwritten.Gemfile.lock",
    "dotnet/Acme.Web/packages.lock.json": "two-targets.packages.lock.json",
    "site/composer.lock": "drupal-like.composer.lock",
    "site/composer.json": "drupal-like.composer.json",
}


def monorepo(project: Project) -> None:
    """A monorepo with a lockfile of every ecosystem in a directory of its own, and
    lockfiles where the workspace's are not: a vendored package's, an installed npm
    package's, a git-ignored build directory's."""
    for place, name in PLACES.items():
        target = project.root / place
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / name, target)
    project.write(".gitignore", "build/\n")
    project.write("site/vendor/drupal/core/composer.lock", '{"packages": []}\n')
    project.write("web/node_modules/left-pad/Gemfile.lock", "GEM\n")
    project.write("build/out/packages.lock.json", '{"dependencies": {}}\n')
    project.commit()
    # Untracked and not ignored: part of the workspace too.
    (project.root / "ruby/site").mkdir()
    shutil.copyfile(DATA / "bundler-features.Gemfile.lock", project.root / "ruby/site/Gemfile.lock")


def test_a_monorepo_lists_every_lockfile_and_no_vendored_or_ignored_one(
    project: Project,
) -> None:
    monorepo(project)
    inventory = inventory_of(str(project.root))
    assert inventory.errors == ()
    assert [
        (lock.path, lock.format.name, len(lock.components)) for lock in inventory.lockfiles
    ] == [
        ("dotnet/Acme.Web/packages.lock.json", "packages.lock.json", 6),
        ("java/plugin/gradle.lockfile", "gradle.lockfile", 16),
        ("java/pom.xml", "pom.xml", 10),
        ("ruby/Gemfile.lock", "Gemfile.lock", 11),
        ("ruby/site/Gemfile.lock", "Gemfile.lock", 10),
        ("services/crypto/Cargo.lock", "Cargo.lock", 23),
        ("services/storage/go.mod", "go.mod", 7),  # go.sum beside it: hashes
        ("site/composer.lock", "composer.lock", 11),
    ]
    go = next(lock for lock in inventory.lockfiles if lock.path.endswith("go.mod"))
    assert all(len(c.hashes) == 1 for c in go.components)
    site = next(lock for lock in inventory.lockfiles if lock.path == "site/composer.lock")
    assert {c.declared for c in site.components if c.direct} == {"site/composer.json"}
    assert {c.lockfile for c in inventory.components} == {lock.path for lock in inventory.lockfiles}


def test_a_lockfile_that_cannot_be_read_is_one_located_error_and_the_others_are_read(
    project: Project,
) -> None:
    monorepo(project)
    project.write("broken/Gemfile.lock", "GEM\n  specs:\n    rake 13.1.0\n")
    project.write("broken/go.mod", "module m\n\nrequire (\n")
    project.write("toml/uv.lock", 'version = 1\n\n[[package]]\nname = "idna"\nversion = 3.7"\n')
    project.write("toml/Cargo.lock", 'version = 3\n\n[[package]\nname = "libc"\n')
    (project.root / "latin1").mkdir()
    (project.root / "latin1/composer.lock").write_bytes(b'{"packages": [], "x": "\xe9"}')
    inventory = inventory_of(str(project.root))
    assert [(e.location, e.message) for e in inventory.errors] == [
        ("broken/Gemfile.lock:3:5", "expected '    name (version)' under specs:"),
        ("broken/go.mod:3:1", "the require block is never closed with ')'"),
        ("latin1/composer.lock:1", "not UTF-8 text"),
        ("toml/Cargo.lock:3:10", "Expected ']]' at the end of an array declaration"),
        ("toml/uv.lock:5:14", "Expected newline or end of document after a statement"),
    ]
    assert len(inventory.lockfiles) == 8


def test_a_workspace_that_is_not_a_git_checkout_is_walked(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    shutil.copyfile(DATA / "handwritten.Gemfile.lock", tmp_path / "app" / "Gemfile.lock")
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "Gemfile.lock").write_text("GEM\n")
    (tmp_path / "vendor" / "bundle").mkdir(parents=True)
    (tmp_path / "vendor" / "bundle" / "Gemfile.lock").write_text("GEM\n")
    inventory = inventory_of(str(tmp_path))
    assert [lock.path for lock in inventory.lockfiles] == ["app/Gemfile.lock"]


def test_formats_by_name() -> None:
    assert format_of("a/b/Gemfile.lock") is not None
    found = format_of("gems.locked")  # Bundler's other name (gems.rb)
    assert found is not None
    assert found.parser == "rubygems:read_gemfile_lock"
    assert format_of("go.sum") is None  # read with its go.mod
    assert discover(["x/vendor/Cargo.lock", "x/Cargo.lock", "README.md"]) == ["x/Cargo.lock"]


def test_siblings_are_read_from_the_workspace_only(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "core").mkdir(parents=True)
    (tmp_path / "pom.xml").write_text("<project/>")  # outside the workspace
    (root / "core" / "pom.xml").write_text(
        "<project><parent><groupId>g</groupId><artifactId>p</artifactId></parent>"
        "<dependencies><dependency><groupId>a</groupId><artifactId>b</artifactId>"
        "<version>${x}</version></dependency></dependencies></project>"
    )
    (root / "pom.xml").write_text(
        "<project><groupId>g</groupId><artifactId>p</artifactId>"
        "<properties><x>1.0</x></properties></project>"
    )
    read = read_lockfile(str(root), "core/pom.xml")
    assert isinstance(read, Lockfile)
    assert read.components[0].version == "1.0"  # ../pom.xml, inside the workspace
    read = read_lockfile(str(root), "pom.xml")
    assert isinstance(read, Lockfile)
    assert read.components == ()


def shape(rows: list[TreeRow]) -> list[str]:
    marks = {(True, False): " (*)", (False, True): " (cycle)", (False, False): ""}
    return [
        "  " * row.depth
        + f"{row.component.name}{marks[(row.repeat, row.cycle)]}"
        + (" [unreached]" if row.unreached else "")
        for row in rows
    ]


def test_the_tree_from_the_workspace_crates_then_the_direct_dependencies(tmp_path: Path) -> None:
    shutil.copyfile(DATA / "cryptography-41.0.7.Cargo.lock", tmp_path / "Cargo.lock")
    lock = read_lockfile(str(tmp_path), "Cargo.lock")
    assert isinstance(lock, Lockfile)
    rows = dependency_tree(lock)
    assert rows is not None
    lines = shape(rows)
    assert lines[:4] == [
        "cryptography-rust",
        "  asn1",
        "    asn1_derive",
        "      proc-macro2",
    ]
    assert "    asn1 (*)" in lines  # cryptography-x509's, shown above
    # redox_syscall is in the excerpt with nothing needing it any more.
    assert lines[-2:] == ["redox_syscall [unreached]", "  bitflags"]
    names = [row.component.ref for row in rows if not row.repeat]
    assert sorted(names) == sorted(c.ref for c in lock.components)  # each shown once
    assert [row.last for row in rows if row.depth == 0] == [True, True]


CYCLE = """\
GEM
  remote: https://rubygems.org/
  specs:
    a (1.0)
      b
    b (1.0)
      a
      c
    c (1.0)

DEPENDENCIES
  a
"""


def test_a_cycle_is_shown_once_and_marked(tmp_path: Path) -> None:
    (tmp_path / "Gemfile.lock").write_text(CYCLE)
    lock = read_lockfile(str(tmp_path), "Gemfile.lock")
    assert isinstance(lock, Lockfile)
    rows = dependency_tree(lock)
    assert rows is not None
    assert shape(rows) == ["a", "  b", "    a (cycle)", "    c"]


def test_formats_without_edges_have_no_tree(tmp_path: Path) -> None:
    shutil.copyfile(DATA / "gradle-configurations.gradle.lockfile", tmp_path / "gradle.lockfile")
    lock = read_lockfile(str(tmp_path), "gradle.lockfile")
    assert isinstance(lock, Lockfile)
    assert dependency_tree(lock) is None


def test_a_pip_compile_file_has_a_tree_and_a_hand_written_one_says_why_not(
    tmp_path: Path,
) -> None:
    pip_compile = Path(__file__).parent / "data" / "python" / "pip-compile"
    for name in ("requirements.in", "requirements.txt"):
        shutil.copyfile(pip_compile / name, tmp_path / name)
    lock = read_lockfile(str(tmp_path), "requirements.txt")
    assert isinstance(lock, Lockfile)
    rows = dependency_tree(lock)
    assert rows is not None
    # six is direct (-r requirements.in) and python-dateutil's too: shown under it once.
    assert shape(rows) == ["click", "python-dateutil", "  six", "six (*)"]

    (tmp_path / "hand").mkdir()
    (tmp_path / "hand" / "requirements.txt").write_text("click==8.1.8\nsix==1.17.0\n")
    plain = read_lockfile(str(tmp_path), "hand/requirements.txt")
    assert isinstance(plain, Lockfile)
    assert dependency_tree(plain) is None
