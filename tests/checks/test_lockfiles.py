"""Lockfiles against their manifests: real files, the messages a user reads."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.checks.lockfiles import check_lockfiles
from conveyor.model import GateLevel
from tests.checks.conftest import only, write

PACKAGE_JSON = {
    "name": "app",
    "version": "1.0.0",
    "dependencies": {"lodash": "^4.17.21"},
    "devDependencies": {"left-pad": "~1.3.0"},
}


def package_lock(lodash_range: str = "^4.17.21") -> dict[str, object]:
    """A lockfileVersion 3 file as npm 9+ writes it."""
    return {
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {
                "name": "app",
                "version": "1.0.0",
                "dependencies": {"lodash": lodash_range},
                "devDependencies": {"left-pad": "~1.3.0"},
            },
            "node_modules/left-pad": {
                "version": "1.3.0",
                "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
                "integrity": "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQEx5n6Rtmd4V7P/"
                "1emN4yTK2kaOlTwqFHn7T0/7I1yBEY8Q==",
                "dev": True,
            },
            "node_modules/lodash": {
                "version": "4.17.21",
                "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",
                "integrity": "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVx"
                "VjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==",
            },
        },
    }


def write_json(root: Path, name: str, data: object) -> None:
    write(root, name, json.dumps(data, indent=2) + "\n")


def test_npm_lockfile_consistent_then_range_changed(tmp_path: Path) -> None:
    write_json(tmp_path, "package.json", PACKAGE_JSON)
    write_json(tmp_path, "package-lock.json", package_lock())
    files = ["package.json", "package-lock.json"]
    ok = only(check_lockfiles(str(tmp_path), files))
    assert ok.ok
    assert ok.check == "lockfile package-lock.json"

    write_json(tmp_path, "package-lock.json", package_lock("^4.17.20"))
    stale = only(check_lockfiles(str(tmp_path), files))
    assert not stale.ok
    assert stale.found == "package.json wants lodash ^4.17.21, package-lock.json records ^4.17.20"
    assert stale.hint == "run npm install and commit package-lock.json"
    assert stale.location == "package-lock.json"
    assert stale.level is GateLevel.ERROR


def test_npm_dependency_added_without_install(tmp_path: Path) -> None:
    manifest = {**PACKAGE_JSON, "dependencies": {"lodash": "^4.17.21", "express": "^4.19.2"}}
    write_json(tmp_path, "package.json", manifest)
    write_json(tmp_path, "package-lock.json", package_lock())
    result = only(check_lockfiles(str(tmp_path), ["package.json", "package-lock.json"]))
    assert not result.ok
    assert "package.json wants express ^4.19.2 in dependencies" in result.found


def test_npm_without_lockfile_warns(tmp_path: Path) -> None:
    write_json(tmp_path, "package.json", PACKAGE_JSON)
    write_json(tmp_path, "tools/package.json", {"name": "no-deps"})
    result = only(check_lockfiles(str(tmp_path), ["package.json", "tools/package.json"]))
    assert not result.ok
    assert result.level is GateLevel.WARN
    assert not result.blocking
    assert result.hint == (
        "commit a lockfile (npm install writes package-lock.json) so builds are reproducible"
    )


def test_npm_workspace_member_uses_the_root_lockfile(tmp_path: Path) -> None:
    write_json(tmp_path, "package.json", {"name": "root", "workspaces": ["packages/*"]})
    write_json(
        tmp_path,
        "packages/a/package.json",
        {"name": "a", "dependencies": PACKAGE_JSON["dependencies"]},
    )
    lock = package_lock()
    packages = lock["packages"]
    assert isinstance(packages, dict)
    packages[""] = {"name": "root", "workspaces": ["packages/*"]}
    packages["packages/a"] = {"name": "a", "dependencies": {"lodash": "^4.17.21"}}
    write_json(tmp_path, "package-lock.json", lock)
    files = ["package.json", "package-lock.json", "packages/a/package.json"]
    results = check_lockfiles(str(tmp_path), files)
    assert [r.ok for r in results] == [True, True]
    assert all(r.check == "lockfile package-lock.json" for r in results)


GO_MOD = """
module example.com/app

go 1.22

require github.com/google/uuid v1.6.0

require (
\tgolang.org/x/text v0.14.0 // indirect
\tgithub.com/stretchr/testify v1.9.0
)
"""

GO_SUM = """
github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=
github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=
github.com/stretchr/testify v1.9.0 h1:HtqpIVDClZ4nwg75+f6Lvsy/wHu+3BoSGCbBAcpTsTg=
github.com/stretchr/testify v1.9.0/go.mod h1:r2ic/lqez/lEtzL7wO/rwa5dbSLXVDPFyf8C91i36aY=
golang.org/x/text v0.14.0/go.mod h1:18ZOQIKpY8NJVqYksKHtTdi31H5itFRjB5/qKTNYzSU=
"""


def test_go_sum_consistent_and_missing_entry(tmp_path: Path) -> None:
    write(tmp_path, "go.mod", GO_MOD)
    write(tmp_path, "go.sum", GO_SUM)
    ok = only(check_lockfiles(str(tmp_path), ["go.mod", "go.sum"]))
    assert ok.ok
    assert ok.check == "lockfile go.sum"
    assert ok.found == "3 dependencies recorded"

    # The indirect requirement is still checked.
    write(tmp_path, "go.sum", GO_SUM.replace("golang.org/x/text v0.14.0/go.mod", "x v0/go.mod"))
    missing = only(check_lockfiles(str(tmp_path), ["go.mod", "go.sum"]))
    assert not missing.ok
    assert missing.found == "go.sum has no entry for golang.org/x/text v0.14.0"
    assert missing.hint == "run go mod tidy and commit go.sum"


def test_go_mod_without_go_sum(tmp_path: Path) -> None:
    write(tmp_path, "svc/go.mod", GO_MOD)
    result = only(check_lockfiles(str(tmp_path), ["svc/go.mod"]))
    assert not result.ok
    assert result.check == "lockfile svc/go.sum"
    assert result.found == "no go.sum in the repository"


def test_a_go_mod_go_would_refuse_is_located(tmp_path: Path) -> None:
    write(tmp_path, "svc/go.mod", "module example.com/svc\n\nrequire (\n\tgithub.com/a/b v1.0.0\n")
    result = only(check_lockfiles(str(tmp_path), ["svc/go.mod"]))
    assert not result.ok
    assert (result.check, result.location) == ("manifest svc/go.mod", "svc/go.mod:3:1")
    assert result.found == "the require block is never closed with ')'"


CARGO_TOML = """
[package]
name = "app"
version = "0.1.0"
edition = "2021"

[dependencies]
serde = { version = "1", features = ["derive"] }
json = { package = "serde_json", version = "1" }

[dev-dependencies]
tempfile = "3"
"""

CARGO_LOCK = """
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["serde", "serde_json", "tempfile"]

[[package]]
name = "serde"
version = "1.0.200"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "serde_json"
version = "1.0.117"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "tempfile"
version = "3.10.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
"""


def test_cargo_lock(tmp_path: Path) -> None:
    write(tmp_path, "Cargo.toml", CARGO_TOML)
    write(tmp_path, "Cargo.lock", CARGO_LOCK)
    files = ["Cargo.toml", "Cargo.lock"]
    assert only(check_lockfiles(str(tmp_path), files)).ok

    write(tmp_path, "Cargo.toml", CARGO_TOML + '\n[build-dependencies]\ncc = "1"\n')
    result = only(check_lockfiles(str(tmp_path), files))
    assert not result.ok
    assert result.found == "Cargo.toml depends on cc, Cargo.lock has no [[package]] for it"


PYPROJECT = """
[project]
name = "app"
version = "1.0"
dependencies = ["Requests_OAuthlib>=1.3", "tomli; python_version < '3.11'"]

[project.optional-dependencies]
test = ["pytest>=8", "app[extra]"]
"""


def uv_lock(*names: str) -> str:
    packages = "".join(
        f'\n[[package]]\nname = "{name}"\nversion = "1.0.0"\n' for name in ("app", *names)
    )
    return 'version = 1\nrequires-python = ">=3.11"\n' + packages


def test_uv_lock_names(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", PYPROJECT)
    write(tmp_path, "uv.lock", uv_lock("requests-oauthlib", "tomli", "pytest"))
    files = ["pyproject.toml", "uv.lock"]
    ok = only(check_lockfiles(str(tmp_path), files))
    assert ok.ok
    assert ok.found == "3 dependencies recorded"

    write(tmp_path, "uv.lock", uv_lock("requests-oauthlib", "tomli"))
    result = only(check_lockfiles(str(tmp_path), files))
    assert not result.ok
    assert result.found == "pyproject.toml requires pytest, uv.lock has no [[package]] for it"
    assert result.hint == "run uv lock and commit uv.lock"


def test_poetry_lock_names(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """
        [tool.poetry]
        name = "app"
        version = "1.0"

        [tool.poetry.dependencies]
        python = "^3.11"
        Django = "^5.0"

        [tool.poetry.group.dev.dependencies]
        pytest-cov = "^5"
        """,
    )
    write(tmp_path, "poetry.lock", uv_lock("django").replace('"app"', '"unrelated"'))
    result = only(check_lockfiles(str(tmp_path), ["pyproject.toml", "poetry.lock"]))
    assert not result.ok
    assert (
        result.found == "pyproject.toml requires pytest-cov, poetry.lock has no [[package]] for it"
    )


def test_pipfile_lock_names(tmp_path: Path) -> None:
    write(tmp_path, "Pipfile", '[packages]\nrequests = "*"\n\n[dev-packages]\nPyTest = "*"\n')
    lock = {"_meta": {"hash": {"sha256": "0" * 64}}, "default": {"requests": {}}, "develop": {}}
    write_json(tmp_path, "Pipfile.lock", lock)
    result = only(check_lockfiles(str(tmp_path), ["Pipfile", "Pipfile.lock"]))
    assert not result.ok
    assert (
        result.found
        == 'Pipfile [dev-packages] lists PyTest, Pipfile.lock has no entry for it in "develop"'
    )
