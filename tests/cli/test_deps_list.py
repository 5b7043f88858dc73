"""`conveyor deps list`: a monorepo's lockfiles (those of tests/deps/data, SOURCES.md
there) listed by lockfile, as JSON and as trees; unreadable ones reported
with their location and exit code 2; no conveyor.yml needed."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conveyor.cli import run_cli
from tests.conftest import Project
from tests.deps.lockdata import DATA
from tests.deps.test_inventory import monorepo


def test_lists_each_lockfile_with_its_components_and_a_summary(project: Project) -> None:
    monorepo(project)
    done = project.run("deps", "list")
    assert done.code == 0, done.err
    assert done.err == ""
    out = done.out.splitlines()
    assert "ruby/Gemfile.lock (RubyGems): 11 components" in out
    assert "services/storage/go.mod (Go): 7 components" in out
    rows = {line.split()[0]: line.split() for line in out if line.startswith("  ")}
    assert rows["rack-attack"] == ["rack-attack", "6.7.0", "-", "direct", "-"]
    assert rows["ledger"][3] == "local"
    assert rows["github.com/kr/pretty"] == [
        "github.com/kr/pretty",
        "v0.3.0",
        "-",
        "transitive",
        "1",
        "hash",
    ]
    assert rows["kint-php/kint"][:4] == ["kint-php/kint", "5.1.1", "dev", "direct"]
    assert rows["drupal/pathauto"][4:] == ["1", "hash"]
    assert out[-1] == (
        "94 components in 8 lockfiles (crates.io 23, Go 7, Maven 26, NuGet 6, Packagist 11, "
        "RubyGems 21)"
    )


def test_json_document(project: Project) -> None:
    monorepo(project)
    done = project.run("deps", "list", "--json")
    assert done.code == 0, done.err
    document = json.loads(done.out)
    assert document["errors"] == []
    locks = {lock["path"]: lock for lock in document["lockfiles"]}
    assert len(locks) == 8
    composer = locks["site/composer.lock"]
    assert (composer["format"], composer["ecosystem"], composer["edges"]) == (
        "composer.lock",
        "Packagist",
        True,
    )
    tester = next(c for c in composer["components"] if c["name"] == "nette/tester")
    assert tester == {
        "name": "nette/tester",
        "version": "v2.5.4",
        "purl": "pkg:composer/nette/tester@v2.5.4",
        "scope": "dev",
        "direct": True,
        "local": False,
        "line": 277,
        "declared": "site/composer.json",
        "hashes": [],
        "license": "BSD-3-Clause OR GPL-2.0-only OR GPL-3.0-only",
        "dependencies": [],
    }
    go = locks["services/storage/go.mod"]
    assert go["edges"] is False
    assert go["components"][0]["dependencies"] is None
    assert go["components"][0]["hashes"] == ["h1:MRVx0/zhvdseW+Gza6N9rVzU/IVzaeE1SFI4raAhmBU="]


def test_tree_for_the_formats_that_keep_edges(project: Project) -> None:
    monorepo(project)
    done = project.run("deps", "list", "--tree", "ruby/Gemfile.lock", "services/storage")
    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "ruby/Gemfile.lock (RubyGems)",
        "├── ledger 0.4.0 [local]",
        "│   ├── bigdecimal 3.1.8",
        "│   ├── concurrent-ruby 1.3.4",
        "│   ├── i18n 1.14.6",
        "│   │   └── concurrent-ruby 1.3.4 (*)",
        "│   ├── money 6.19.0",
        "│   │   └── i18n 1.14.6 (*)",
        "│   ├── tzinfo 2.0.6",
        "│   │   └── concurrent-ruby 1.3.4 (*)",
        "│   └── zeitwerk 2.7.1",
        "├── rack-attack 6.7.0",
        "│   └── rack 3.1.8",
        "├── minitest 5.25.1",
        "└── rake 13.2.1",
        "",
        "services/storage/go.mod (Go): go.mod keeps no edges between packages, so there is "
        "no tree to draw",
        "",
        "(*) shown above; (cycle) depends back on a package above it",
        "18 components in 2 lockfiles (Go 7, RubyGems 11)",
    ]


def test_unreadable_lockfiles_are_located_on_stderr_and_the_others_listed(
    project: Project,
) -> None:
    monorepo(project)
    project.write("broken/composer.lock", '{\n    "packages": [\n        {"name": "a/b",}\n')
    project.write("broken/pom.xml", "<project>\n  <dependencies>\n</project>\n")
    done = project.run("deps", "list")
    assert done.code == 2
    assert done.err.splitlines() == [
        "broken/composer.lock:3:24: Expecting property name enclosed in double quotes",
        "broken/pom.xml:3:3: mismatched tag",
    ]
    assert done.out.splitlines()[-1].endswith("; 2 lockfiles could not be read")
    assert "ruby/Gemfile.lock (RubyGems): 11 components" in done.out
    as_json = json.loads(project.run("deps", "list", "--json").out)
    assert as_json["errors"][1] == {
        "path": "broken/pom.xml",
        "line": 3,
        "col": 3,
        "message": "mismatched tag",
    }


def test_paths_narrow_the_list_and_a_named_lockfile_is_read_wherever_it_is(
    project: Project,
) -> None:
    monorepo(project)
    vendored = project.root / "site/vendor/acme/lib"
    vendored.mkdir(parents=True)
    shutil.copyfile(DATA / "drupal-like.composer.lock", vendored / "composer.lock")
    done = project.run("deps", "list", "java", "site/vendor/acme/lib/composer.lock")
    assert done.code == 0, done.err
    heads = [line for line in done.out.splitlines() if line and not line.startswith(" ")]
    assert heads == [
        "java/plugin/gradle.lockfile (Maven): 16 components",
        "java/pom.xml (Maven): 10 components",
        "site/vendor/acme/lib/composer.lock (Packagist): 11 components",
        "37 components in 3 lockfiles (Maven 26, Packagist 11)",
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("missing", "missing: no such file or directory"),
        ("README.md", "README.md: not a lockfile Conveyor reads ("),
        ("..", "is outside the workspace"),
    ],
)
def test_a_path_that_is_not_a_lockfile_is_a_usage_error(
    project: Project, argument: str, message: str
) -> None:
    project.write("README.md", "# app\n")
    done = project.run("deps", "list", argument)
    assert done.code == 2
    assert message in done.err


def test_from_a_subdirectory_the_workspace_is_the_git_checkout(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monorepo(project)
    monkeypatch.chdir(project.root / "java" / "plugin")
    capsys.readouterr()
    assert run_cli(["deps", "list"]) == 0
    out = capsys.readouterr().out
    assert "services/crypto/Cargo.lock (crates.io): 23 components" in out
    # A path is taken from where the command runs.
    assert run_cli(["deps", "list", "gradle.lockfile"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "java/plugin/gradle.lockfile (Maven): 16 components"
    )


def test_the_workspace_is_the_pipeline_file_s_directory_when_there_is_one(
    project: Project,
) -> None:
    monorepo(project)
    project.write("ruby/conveyor.yml", "jobs:\n  test:\n    run: bundle exec rake\n")
    done = Project.run(project, "deps", "list")  # from the checkout's top: no conveyor.yml
    assert "services/crypto/Cargo.lock" in done.out
    old = os.getcwd()
    os.chdir(project.root / "ruby" / "site")
    try:
        project.capsys.readouterr()
        assert run_cli(["deps", "list"]) == 0
        heads = [
            line for line in project.capsys.readouterr().out.splitlines() if "components" in line
        ]
    finally:
        os.chdir(old)
    assert heads == [
        "Gemfile.lock (RubyGems): 11 components",
        "site/Gemfile.lock (RubyGems): 10 components",
        "21 components in 2 lockfiles (RubyGems 21)",
    ]


def test_no_lockfile(project: Project) -> None:
    project.write("README.md", "# app\n")
    done = project.run("deps", "list")
    assert done.code == 0
    assert (
        done.out.strip() == f"0 components in 0 lockfiles; no lockfile found under {project.root}"
    )


def test_a_requirements_file_without_pip_compiles_comments_says_why_it_has_no_tree(
    project: Project,
) -> None:
    project.write("requirements.txt", "click==8.1.8\nsix==1.17.0\n")
    done = project.run("deps", "list", "--tree")
    assert done.code == 0, done.err
    assert done.out.splitlines()[0] == (
        "requirements.txt (PyPI): no pip-compile '# via' comments say which package needs "
        "which, so there is no tree to draw"
    )
