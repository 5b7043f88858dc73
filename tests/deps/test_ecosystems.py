"""What each ecosystem's files say, as Requirements and Components: lockfiles written by
the real npm and cargo where they are installed (offline: local tarballs and path crates),
and lockfiles in the exact formats uv, Poetry, Pipenv, Cargo and Go write for projects
with registry dependencies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import tomllib
from pathlib import Path

import pytest

from conveyor.deps.components import Component, Ecosystem, Requirement
from conveyor.deps.ecosystems import cargo, go, npm, pypi

# Read before the tests give each a home directory of its own: the installed toolchains
# stay where rustup put them (only read; CARGO_HOME follows the test's home).
_RUSTUP_HOME = os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup")


def summary(components: list[Component]) -> set[tuple[str, str | None, bool | None, bool]]:
    """(name, version, direct, local) of each component."""
    return {(c.name, c.version, c.direct, c.local) for c in components}


def toml(text: str) -> dict[str, object]:
    return tomllib.loads(textwrap.dedent(text))


# --- npm -----------------------------------------------------------------------------


def run(cwd: Path, *argv: str) -> None:
    env = {**os.environ, "RUSTUP_HOME": _RUSTUP_HOME}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def npm_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace (root 'app' and member 'packages/web') whose dependencies are local
    tarballs, so the real npm locks it offline: util-a bundles util-b (a transitive
    dependency), left-pad is a dev dependency."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    root = tmp_path_factory.mktemp("npm")
    write_json(
        root / "src/util-a/node_modules/util-b/package.json", {"name": "util-b", "version": "0.3.1"}
    )
    write_json(
        root / "src/util-a/package.json",
        {
            "name": "util-a",
            "version": "1.2.0",
            "dependencies": {"util-b": "^0.3.0"},
            "bundleDependencies": ["util-b"],
        },
    )
    write_json(root / "src/left-pad/package.json", {"name": "left-pad", "version": "1.3.0"})
    (root / "tarballs").mkdir()
    run(root / "tarballs", "npm", "pack", "../src/util-a", "../src/left-pad", "--offline")
    write_json(
        root / "packages/web/package.json",
        {
            "name": "web",
            "version": "2.0.0",
            "dependencies": {"util-a": "file:../../tarballs/util-a-1.2.0.tgz"},
        },
    )
    write_json(
        root / "package.json",
        {
            "name": "app",
            "version": "1.0.0",
            "workspaces": ["packages/web"],
            "dependencies": {"util-a": "file:tarballs/util-a-1.2.0.tgz"},
            "devDependencies": {"left-pad": "file:tarballs/left-pad-1.3.0.tgz"},
        },
    )
    run(
        root,
        "npm",
        "install",
        "--package-lock-only",
        "--offline",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
    )
    return root


def test_npm_lock_written_by_npm(npm_project: Path) -> None:
    data = json.loads((npm_project / "package-lock.json").read_text())
    lock = npm.parse_lock(data, "package-lock.json")
    assert summary(list(lock.components)) == {
        ("util-a", "1.2.0", True, False),
        ("left-pad", "1.3.0", True, False),
        ("util-b", "0.3.1", False, False),  # only util-a asks for it
        ("web", "2.0.0", False, True),  # the workspace member, linked
    }
    declared = {c.name: c.declared for c in lock.components}
    assert declared == {
        "util-a": "package.json",
        "left-pad": "package.json",
        "util-b": None,
        "web": None,
    }
    assert {c.lockfile for c in lock.components} == {"package-lock.json"}
    assert {c.ecosystem for c in lock.components} == {Ecosystem.NPM}
    # What each member asks for, as recorded: the root and the workspace member.
    assert lock.members is not None
    assert lock.members["packages/web"] == {
        "dependencies": {"util-a": "file:../../tarballs/util-a-1.2.0.tgz"}
    }
    assert lock.where_found("packages/web", "util-a") == "node_modules/util-a"  # hoisted
    assert lock.where_found("packages/web", "util-c") is None


def test_npm_lock_in_a_subdirectory_names_its_manifests_from_the_workspace_root(
    npm_project: Path,
) -> None:
    data = json.loads((npm_project / "package-lock.json").read_text())
    lock = npm.parse_lock(data, "web/package-lock.json")
    assert {c.declared for c in lock.components if c.direct} == {"web/package.json"}


def test_npm_manifest_requirements(npm_project: Path) -> None:
    data = json.loads((npm_project / "package.json").read_text())
    assert npm.manifest_requirements(data, "package.json") == [
        Requirement(
            "util-a",
            "file:tarballs/util-a-1.2.0.tgz",
            "dependencies",
            "package.json",
            Ecosystem.NPM,
        ),
        Requirement(
            "left-pad",
            "file:tarballs/left-pad-1.3.0.tgz",
            "devDependencies",
            "package.json",
            Ecosystem.NPM,
        ),
    ]


def test_npm_lockfile_version_1_records_installed_names_only() -> None:
    data = {
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 1,
        "requires": True,
        "dependencies": {
            "express": {
                "version": "4.17.1",
                "resolved": "https://registry.npmjs.org/express/-/express-4.17.1.tgz",
                "requires": {"debug": "2.6.9"},
                "dependencies": {"debug": {"version": "2.6.9"}},
            },
            "ms": {"version": "2.1.3", "dev": True},
        },
    }
    lock = npm.parse_lock(data, "package-lock.json")
    assert lock.members is None
    assert lock.installed == {"express", "ms"}
    # Version 1 does not record what the project asked for: direct is unknown.
    assert summary(list(lock.components)) == {
        ("express", "4.17.1", None, False),
        ("debug", "2.6.9", None, False),
        ("ms", "2.1.3", None, False),
    }


# --- Python --------------------------------------------------------------------------

PYPROJECT = """
[project]
name = "App"
version = "0.1.0"
dependencies = ["requests>=2.31,<3", "Typing_Extensions"]

[project.optional-dependencies]
test = ["pytest>=8", "app[fast]"]

[dependency-groups]
lint = ["ruff==0.6.9", {include-group = "test"}, "not a requirement!"]
"""

UV_LOCK = """
version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "requests" },
]

[package.optional-dependencies]
test = [
    { name = "pytest" },
]

[package.dev-dependencies]
lint = [
    { name = "ruff" },
]

[package.metadata]
requires-dist = [
    { name = "pytest", marker = "extra == 'test'", specifier = ">=8" },
    { name = "requests", specifier = ">=2.31,<3" },
]

[[package]]
name = "certifi"
version = "2024.8.30"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/b0/ee/certifi-2024.8.30.tar.gz", size = 168507 }

[[package]]
name = "pytest"
version = "8.3.3"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "certifi" },
]

[[package]]
name = "ruff"
version = "0.6.9"
source = { registry = "https://pypi.org/simple" }
"""


def test_pyproject_requirements() -> None:
    found = pypi.pyproject_requirements(toml(PYPROJECT), "pyproject.toml")
    assert [(r.name, r.spec, r.section) for r in found.requirements] == [
        ("requests", "<3,>=2.31", "project.dependencies"),
        ("Typing_Extensions", "", "project.dependencies"),
        ("pytest", ">=8", "project.optional-dependencies.test"),
        ("ruff", "==0.6.9", "dependency-groups.lint"),
    ]  # app[fast] is the project itself
    assert found.invalid == ("not a requirement!",)


def test_poetry_tables_in_pyproject() -> None:
    data = toml(
        """
        [tool.poetry]
        name = "app"
        [tool.poetry.dependencies]
        python = "^3.11"
        requests = "^2.31"
        [tool.poetry.group.dev.dependencies]
        pytest = { version = "^8.0", optional = true }
        """
    )
    found = pypi.pyproject_requirements(data, "svc/pyproject.toml")
    assert [r.declared for r in found.requirements] == ["svc/pyproject.toml"] * 2
    assert [(r.name, r.spec, r.section) for r in found.requirements] == [
        ("requests", "^2.31", "tool.poetry.dependencies"),
        ("pytest", "^8.0", "tool.poetry.group.dev.dependencies"),
    ]


def test_uv_lock_components() -> None:
    components = pypi.lock_components(toml(UV_LOCK), "uv.lock")
    assert summary(components) == {
        ("app", "0.1.0", False, True),  # the project itself
        ("requests", "2.32.3", True, False),
        ("pytest", "8.3.3", True, False),  # an extra
        ("ruff", "0.6.9", True, False),  # a dependency group
        ("certifi", "2024.8.30", False, False),  # only requests asks for it
    }
    assert {c.ecosystem for c in components} == {Ecosystem.PYPI}


def test_poetry_lock_components() -> None:
    lock = """
    # This file is automatically @generated by Poetry 1.8.3 and should not be changed by hand.

    [[package]]
    name = "certifi"
    version = "2024.8.30"
    description = "Python package for providing Mozilla's CA Bundle."
    optional = false
    python-versions = ">=3.6"
    files = [
        {file = "certifi-2024.8.30-py3-none-any.whl", hash = "sha256:922820b53db7a725"},
    ]

    [[package]]
    name = "requests"
    version = "2.32.3"
    description = "Python HTTP for Humans."
    optional = false
    python-versions = ">=3.8"
    files = []

    [package.dependencies]
    certifi = ">=2017.4.17"

    [metadata]
    lock-version = "2.0"
    python-versions = "^3.11"
    content-hash = "8b4e8a7e1d2c1f0e0f7c1f1b0f5c1e7d9a3b2c4d5e6f708192a3b4c5d6e7f809"
    """
    components = pypi.lock_components(toml(lock), "poetry.lock")
    # poetry.lock does not say which the project asked for.
    assert summary(components) == {
        ("certifi", "2024.8.30", None, False),
        ("requests", "2.32.3", None, False),
    }


def test_pipfile_and_its_lock() -> None:
    pipfile = toml(
        """
        [[source]]
        url = "https://pypi.org/simple"
        verify_ssl = true
        name = "pypi"

        [packages]
        requests = "==2.32.3"
        flask = { version = ">=3.0", extras = ["async"] }

        [dev-packages]
        pytest = "*"

        [docs]
        sphinx = "*"

        [requires]
        python_version = "3.11"
        """
    )
    requirements = pypi.pipfile_requirements(pipfile, "Pipfile")
    assert [(r.name, r.spec, r.section) for r in requirements] == [
        ("requests", "==2.32.3", "packages"),
        ("flask", ">=3.0", "packages"),
        ("pytest", "", "dev-packages"),
        ("sphinx", "", "docs"),
    ]
    assert [pypi.pipfile_category(r.section) for r in requirements] == [
        "default",
        "default",
        "develop",
        "docs",
    ]
    lock = {
        "_meta": {
            "hash": {"sha256": "5f1c0a8b"},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}],
        },
        "default": {
            "requests": {"hashes": ["sha256:70761cfe"], "index": "pypi", "version": "==2.32.3"},
            "mylib": {"editable": True, "path": "./mylib"},
        },
        "develop": {"pytest": {"hashes": [], "index": "pypi", "version": "==8.3.3"}},
    }
    categories = pypi.pipfile_lock_components(lock, "Pipfile.lock")
    assert {name: summary(found) for name, found in categories.items()} == {
        "default": {("requests", "2.32.3", None, False), ("mylib", None, None, False)},
        "develop": {("pytest", "8.3.3", None, False)},
    }


def test_pep503_names() -> None:
    assert pypi.normalise("Typing_Extensions") == pypi.normalise("typing.extensions")


# --- Cargo ---------------------------------------------------------------------------


CARGO_LOCK = """
# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "rand 0.8.5",
 "serde",
 "old-thing",
]

[[package]]
name = "old-thing"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "0f0c0a8b2c1f0e0f7c1f1b0f5c1e7d9a3b2c4d5e6f708192a3b4c5d6e7f80901"
dependencies = [
 "rand 0.7.3",
]

[[package]]
name = "rand"
version = "0.7.3"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "6a6b1679d49b24bbfe0c803429aa1874472f50d9b363131f0e89fc356b544d03"

[[package]]
name = "rand"
version = "0.8.5"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "34af8d1a0e25924bc5b7c43c079c942339d8f0a8b57c39049bef581b46327404"

[[package]]
name = "serde"
version = "1.0.210"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "c8e3592472072e6e22e0a54d5904d9febf8508f65fb8552499a1abc7d1078c3a"
"""


def test_cargo_lock_components() -> None:
    components = cargo.lock_components(toml(CARGO_LOCK), "Cargo.lock")
    assert summary(components) == {
        ("app", "0.1.0", False, True),
        ("old-thing", "1.0.0", True, False),
        ("rand", "0.8.5", True, False),
        ("rand", "0.7.3", False, False),  # the other version, only old-thing's
        ("serde", "1.0.210", True, False),
    }


def test_cargo_lock_written_by_cargo(tmp_path: Path) -> None:
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    (tmp_path / "Cargo.toml").write_text(
        '[workspace]\nmembers = ["app", "util_lib"]\nresolver = "2"\n'
    )
    for member, version, extra in (
        ("app", "0.1.0", '[dependencies]\nutil = { path = "../util_lib", package = "util_lib" }\n'),
        ("util_lib", "0.2.0", ""),
    ):
        (tmp_path / member / "src").mkdir(parents=True)
        (tmp_path / member / "src" / "lib.rs").write_text("")
        (tmp_path / member / "Cargo.toml").write_text(
            f'[package]\nname = "{member}"\nversion = "{version}"\nedition = "2021"\n\n{extra}'
        )
    run(tmp_path, "cargo", "generate-lockfile", "--offline")
    lock = tomllib.loads((tmp_path / "Cargo.lock").read_text())
    assert summary(cargo.lock_components(lock, "Cargo.lock")) == {
        ("app", "0.1.0", False, True),
        ("util_lib", "0.2.0", True, True),  # a path dependency of app
    }
    manifest = tomllib.loads((tmp_path / "app" / "Cargo.toml").read_text())
    assert [
        (r.name, r.section) for r in cargo.manifest_requirements(manifest, "app/Cargo.toml")
    ] == [
        ("util_lib", "dependencies")  # named by its crate, not the rename
    ]


def test_cargo_manifest_requirements() -> None:
    data = toml(
        """
        [package]
        name = "app"
        [dependencies]
        serde = { version = "1.0", features = ["derive"] }
        rand = "0.8"
        [target.'cfg(unix)'.dependencies]
        libc = "0.2"
        [build-dependencies]
        json = { workspace = true }
        [workspace.dependencies]
        json = { version = "1", package = "serde_json" }
        """
    )
    assert [
        (r.name, r.spec, r.section) for r in cargo.manifest_requirements(data, "Cargo.toml")
    ] == [
        ("serde", "1.0", "dependencies"),
        ("rand", "0.8", "dependencies"),
        ("serde_json", "1", "build-dependencies"),
        ("libc", "0.2", "target.cfg(unix).dependencies"),
    ]
    assert cargo.crate_key("Serde_JSON") == cargo.crate_key("serde-json")


# --- Go ------------------------------------------------------------------------------

GO_MOD = """\
module example.com/app

go 1.22

require github.com/spf13/cobra v1.8.1

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	golang.org/x/text v0.16.0
	example.com/shared v0.0.0-00010101000000-000000000000
)

replace golang.org/x/text => golang.org/x/text v0.17.0

replace example.com/shared => ../shared
"""


def test_go_mod_components() -> None:
    mod = go.parse_go_mod(GO_MOD, "go.mod")
    assert [(r.name, r.spec, r.declared) for r in mod.requirements] == [
        ("github.com/spf13/cobra", "v1.8.1", "go.mod:5"),
        ("github.com/inconshreveable/mousetrap", "v1.1.0", "go.mod:8"),
        ("github.com/spf13/pflag", "v1.0.5", "go.mod:9"),
        ("golang.org/x/text", "v0.16.0", "go.mod:10"),
        ("example.com/shared", "v0.0.0-00010101000000-000000000000", "go.mod:11"),
    ]
    components = mod.components()
    assert summary(components) == {
        ("github.com/spf13/cobra", "v1.8.1", True, False),
        ("github.com/inconshreveable/mousetrap", "v1.1.0", False, False),
        ("github.com/spf13/pflag", "v1.0.5", False, False),
        ("golang.org/x/text", "v0.17.0", True, False),  # the replacement's version is built
        ("example.com/shared", "v0.0.0-00010101000000-000000000000", True, True),
    }
    assert next(c for c in components if c.name == "github.com/spf13/cobra").declared == "go.mod:5"
    assert next(c for c in components if c.name.endswith("pflag")).declared is None


def test_go_sum_entries() -> None:
    sums = go.parse_go_sum(
        "github.com/spf13/cobra v1.8.1 h1:e5/vxKd/rZsfSJMUX1agtjeTDf+qv1/JdBF8gg5k9ZM=\n"
        "github.com/spf13/cobra v1.8.1/go.mod h1:wHxEcudfqmLYa8iTfL+OuZPbBZkmvliBWKIezN3kD9Y=\n"
        "\n"
    )
    assert sums == {
        ("github.com/spf13/cobra", "v1.8.1"),
        ("github.com/spf13/cobra", "v1.8.1/go.mod"),
    }
