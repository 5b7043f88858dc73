"""The checks before the build: real tools on a real PATH, real disks, real files and a
real git repository scanned by the real detect-secrets."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor.checks.disk import check_disk
from conveyor.checks.environment import check_env
from conveyor.checks.lockfiles import check_lockfiles
from conveyor.checks.manifests import (
    MANIFEST_PATTERNS,
    check_manifests,
    select_manifests,
)
from conveyor.checks.secrets import scan_secrets, secrets_check
from conveyor.checks.tools import check_tools
from conveyor.model import CheckResult, Finding, GateLevel
from conveyor.units import format_size
from tests.conftest import Project


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def only(results: list[CheckResult]) -> CheckResult:
    assert len(results) == 1, results
    return results[0]


# --- tools ---------------------------------------------------------------------------


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


def fake_tool(bin_dir: Path, name: str, script: str) -> Path:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script).lstrip("\n"))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def path_env(bin_dir: Path) -> dict[str, str]:
    """The test's environment with the fake tools first on PATH."""
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def real_version(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    match = re.search(r"\d+(\.\d+)+", done.stdout + done.stderr)
    assert match is not None
    return match.group(0)


def test_python3_version_is_compared_with_the_specifier() -> None:
    version = real_version("python3", "--version")
    ok = only(check_tools({"python3": ">=3.8"}, os.environ))
    assert ok.ok
    assert ok.check == "tool python3"
    assert ok.expected == "python3 >=3.8"
    assert ok.found == f"python3 {version} at {shutil.which('python3')}"

    too_new = only(check_tools({"python3": "<3"}, os.environ))
    assert not too_new.ok
    assert too_new.blocking
    assert too_new.found.startswith(f"python3 {version} at ")
    assert too_new.hint == "install python3 <3 or put it first on PATH"


def test_python_falls_back_to_python3(bin_dir: Path) -> None:
    exe = fake_tool(bin_dir, "python3", 'echo "Python 3.99.1"')
    result = only(check_tools({"python": ">=3.11"}, {"PATH": str(bin_dir)}))
    assert result.ok
    assert result.found == f"python 3.99.1 at {exe}"


def test_fake_tool_versions(bin_dir: Path) -> None:
    exe = fake_tool(bin_dir, "fake-tool", 'echo "fake-tool version 1.2.3"')
    env = path_env(bin_dir)
    results = check_tools({"fake-tool": ">=1.2"}, env)
    assert only(results).ok
    assert results[0].found == f"fake-tool 1.2.3 at {exe}"

    newer = only(check_tools({"fake-tool": ">=2"}, env))
    assert not newer.ok
    assert newer.expected == "fake-tool >=2"
    assert newer.found == f"fake-tool 1.2.3 at {exe}"
    assert newer.hint == "install fake-tool >=2 or put it first on PATH"

    bare = only(check_tools({"fake-tool": "1.2"}, env))
    assert bare.ok
    assert bare.expected == "fake-tool >=1.2"
    assert not only(check_tools({"fake-tool": "1.3"}, env)).ok


@pytest.mark.parametrize(
    ("name", "script", "version"),
    [
        # go takes `version`, not --version, and prints go1.22.1
        ("go", '[ "$1" = version ] && echo "go version go1.22.1 linux/amd64" || exit 2', "1.22.1"),
        # java prints to stderr, after -version
        (
            "java",
            '[ "$1" = -version ] && echo \'openjdk version "17.0.9"\' >&2 || exit 2',
            "17.0.9",
        ),
        # node prints v20.1.0
        ("node", '[ "$1" = --version ] && echo v20.1.0 || exit 2', "20.1.0"),
        # a lone integer, and digits in the program's own name are not its version
        ("tool2", 'echo "tool2 release 7 (build 2024-01-02)"', "7"),
    ],
)
def test_version_flags_and_formats(bin_dir: Path, name: str, script: str, version: str) -> None:
    exe = fake_tool(bin_dir, name, script)
    result = only(check_tools({name: ">=1"}, path_env(bin_dir)))
    assert result.found == f"{name} {version} at {exe}"
    assert result.ok


def test_tool_without_a_version(bin_dir: Path) -> None:
    exe = fake_tool(bin_dir, "quiet-tool", 'echo "usage: quiet-tool [options]"')
    result = only(check_tools({"quiet-tool": ">=1"}, path_env(bin_dir)))
    assert not result.ok
    assert result.found == "could not read its version: usage: quiet-tool [options]"
    assert f"`{exe} --version`" in result.hint


def test_tool_that_fails(bin_dir: Path) -> None:
    fake_tool(bin_dir, "broken-tool", 'echo "error while loading libfoo.so.1.2" >&2\nexit 3')
    result = only(check_tools({"broken-tool": ">=1"}, path_env(bin_dir)))
    assert not result.ok
    assert result.found == (
        "could not read its version: exited with status 3: error while loading libfoo.so.1.2"
    )


def test_tool_that_hangs_is_given_up_on(bin_dir: Path) -> None:
    # A wrapper whose child would keep the pipes open: the whole group must be killed.
    fake_tool(bin_dir, "slow-tool", "sleep 30\necho 1.0")
    result = only(check_tools({"slow-tool": ">=1"}, path_env(bin_dir), timeout=0.5))
    assert not result.ok
    assert result.found == "could not read its version: no answer within 0.5s"


def test_missing_tool_and_invalid_specifier(bin_dir: Path) -> None:
    missing, invalid = check_tools(
        {"no-such-tool": ">=1", "fake-tool": ">>1"}, {"PATH": str(bin_dir)}
    )
    assert not missing.ok
    assert missing.found == "not found on PATH"
    assert missing.hint == "install no-such-tool >=1 or put it first on PATH"
    assert not invalid.ok
    assert invalid.found == "invalid version specifier '>>1'"
    assert "'>=18'" in invalid.hint
    assert "'>=3.11,<4'" in invalid.hint


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_real_node() -> None:
    version = real_version("node", "--version")
    result = only(check_tools({"node": ">=18"}, os.environ))
    assert result.found == f"node {version} at {shutil.which('node')}"
    assert result.ok == (int(version.split(".")[0]) >= 18)


# --- disk ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1500, "1.5 kB"),
        (999_960, "1.0 MB"),
        (5 * 10**9, "5.0 GB"),
        (10**18, "1.0 EB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


_UNIT = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15, "EB": 10**18}


def shown_bytes(found: str) -> float:
    match = re.match(r"(\d+(?:\.\d)?) (B|kB|MB|GB|TB|PB|EB) free on /", found)
    assert match is not None, found
    return float(match.group(1)) * _UNIT[match.group(2)]


def test_disk_enough_and_not_enough(tmp_path: Path) -> None:
    enough = only(check_disk({"workspace": str(tmp_path)}, 1))
    assert enough.ok
    assert enough.check == "disk workspace"
    assert enough.expected == ">= 1 B free"

    short = only(check_disk({"workspace": str(tmp_path)}, 10**18))
    assert not short.ok
    assert short.expected == ">= 1.0 EB free"
    # Other processes may write meanwhile: the size shown is the real free space, give or
    # take the rounding to three digits and a little churn.
    free = shutil.disk_usage(tmp_path).free
    assert shown_bytes(short.found) == pytest.approx(free, rel=0.02)
    assert "point workspace at a larger disk" in short.hint


def test_disk_same_filesystem_checked_once(tmp_path: Path) -> None:
    not_yet = tmp_path / "cache" / "not" / "created"
    result = only(check_disk({"workspace": str(tmp_path), "cache": str(not_yet)}, 1))
    assert result.check == "disk workspace, cache"
    assert result.ok
    assert not not_yet.exists()


# --- environment ---------------------------------------------------------------------


def test_env_set_empty_missing() -> None:
    long_value = "x" * 60
    environ = {"AWS_REGION": "eu-west-1", "EMPTY": "", "LONG": long_value}
    region, empty, missing, long = check_env(["AWS_REGION", "EMPTY", "MISSING", "LONG"], environ)
    assert region.ok
    assert region.check == "env AWS_REGION"
    assert region.found == "set: 'eu-west-1'"
    assert not empty.ok
    assert empty.found == "set but empty"
    assert not missing.ok
    assert missing.found == "not set"
    assert missing.expected == "MISSING set and non-empty"
    assert missing.hint.startswith("export MISSING=...")
    assert "CI's variables" in missing.hint
    assert long.ok
    assert long_value not in long.found
    assert long.found == f"set: '{'x' * 37}...'"


def test_env_secret_values_are_never_shown() -> None:
    environ = {"DEPLOY_KEY": "s3cr3t-deploy-value", "GITHUB_TOKEN": "ghp_notreallyatoken123"}
    results = check_env(
        ["DEPLOY_KEY", "GITHUB_TOKEN", "NPM_TOKEN"], environ, secret_names=["DEPLOY_KEY"]
    )
    declared, looks_secret, missing = results
    assert declared.found == "set (value hidden)"
    assert looks_secret.found == "set (value hidden)"
    assert missing.found == "not set"
    assert "secrets" in missing.hint
    # AUTHOR is not AUTH: an ordinary name's value is shown.
    author = only(check_env(["GIT_AUTHOR_NAME"], {"GIT_AUTHOR_NAME": "Ada"}))
    assert author.found == "set: 'Ada'"
    for result in results:
        assert "s3cr3t" not in repr(result)
        assert "ghp_" not in repr(result)


# --- manifests -----------------------------------------------------------------------


def test_valid_and_invalid_package_json(tmp_path: Path) -> None:
    write(tmp_path, "package.json", '{"name": "app", "dependencies": {"lodash": "^4.17.21"}}\n')
    write(tmp_path, "web/package.json", '{\n  "name": "web"\n    "version": "1.0.0"\n}\n')
    good, bad = check_manifests(str(tmp_path), ["package.json", "web/package.json"])
    assert good.ok
    assert good.check == "manifest package.json"
    assert not bad.ok
    assert bad.check == "manifest web/package.json"
    assert bad.location == "web/package.json:3:5"
    assert bad.expected == "valid JSON"
    assert bad.found.startswith("Expecting ',' delimiter")
    assert "web/package.json:3:5" in bad.hint


def test_package_json_must_be_an_object(tmp_path: Path) -> None:
    write(tmp_path, "package.json", '["not", "an", "object"]\n')
    result = only(check_manifests(str(tmp_path), ["package.json"]))
    assert not result.ok
    assert result.found == "a JSON array"
    assert result.expected == "a JSON object ({...}) at the top level"
    assert result.location == "package.json"


def test_invalid_pyproject_toml(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "app"\nversion = \n')
    result = only(check_manifests(str(tmp_path), ["pyproject.toml"]))
    assert not result.ok
    assert result.expected == "valid TOML"
    assert result.location == "pyproject.toml:3:11"
    assert result.found == "Invalid value (at line 3, column 11)"


def test_pyproject_project_needs_a_name(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nversion = "1.0"\n')
    result = only(check_manifests(str(tmp_path), ["pyproject.toml"]))
    assert not result.ok
    assert result.found == "no `name` in [project]"
    assert 'name = "your-package"' in result.hint


def test_yaml_manifests(tmp_path: Path) -> None:
    write(tmp_path, ".github/workflows/ci.yml", "on: push\njobs:\n  test: runs-on: x\n")
    # GitLab's !reference tag is valid YAML that the safe loader cannot construct.
    write(
        tmp_path,
        ".gitlab-ci.yml",
        """
        .setup:
          script: [echo hi]
        test:
          script:
            - !reference [.setup, script]
        """,
    )
    bad, gitlab = check_manifests(str(tmp_path), [".github/workflows/ci.yml", ".gitlab-ci.yml"])
    assert not bad.ok
    assert bad.expected == "valid YAML"
    assert bad.location == ".github/workflows/ci.yml:3:16"
    assert "mapping values are not allowed" in bad.found
    assert gitlab.ok


def test_yaml_duplicate_key_does_not_show_values(tmp_path: Path) -> None:
    write(tmp_path, "pnpm-workspace.yaml", "token: first-value\ntoken: second-value\n")
    result = only(check_manifests(str(tmp_path), ["pnpm-workspace.yaml"]))
    assert not result.ok
    assert result.location == "pnpm-workspace.yaml:2:1"
    assert "duplicate key" in result.found
    assert "first-value" not in repr(result)
    assert "second-value" not in repr(result)


def test_tsconfig_allows_comments_and_trailing_commas(tmp_path: Path) -> None:
    write(
        tmp_path,
        "tsconfig.json",
        """
        {
          // TypeScript accepts comments
          "compilerOptions": {
            "strict": true, /* and trailing commas */
          },
        }
        """,
    )
    write(tmp_path, "app/tsconfig.json", '{\n  /* a comment */ "a": 1,\n  "b": ]\n}\n')
    good, bad = check_manifests(str(tmp_path), ["tsconfig.json", "app/tsconfig.json"])
    assert good.ok
    assert not bad.ok
    assert bad.location == "app/tsconfig.json:3:8"


def test_setup_cfg_duplicate_option(tmp_path: Path) -> None:
    write(tmp_path, "setup.cfg", "[metadata]\npassword = hunter2\npassword = hunter3\n")
    result = only(check_manifests(str(tmp_path), ["setup.cfg"]))
    assert not result.ok
    assert result.expected == "valid INI"
    assert result.location == "setup.cfg:3"
    assert "hunter" not in repr(result)


def test_select_manifests() -> None:
    files = [
        "package.json",
        "web/package.json",
        "web/tsconfig.build.json",
        ".github/workflows/ci.yml",
        "tests/fixtures/data.json",
        "docs/mkdocs.yml",
        "go.mod",
    ]
    assert select_manifests(files) == [
        "package.json",
        "web/package.json",
        "web/tsconfig.build.json",
        ".github/workflows/ci.yml",
    ]
    assert "*.json" not in MANIFEST_PATTERNS


# --- lockfiles -----------------------------------------------------------------------

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


# --- secrets -------------------------------------------------------------------------

AWS_KEY = "AKIAZ7QWERTYUIOP4ABC"
KEY_BODY = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo",
]
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----\n"
)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def commit(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "x")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write(
        root, "config/settings.py", f'import os\n\naws_access_key_id = "{AWS_KEY}"\nDEBUG = False\n'
    )
    write(root, "src/app.py", "def add(a: int, b: int) -> int:\n    return a + b\n")
    commit(root)
    return root


def add_private_key(root: Path) -> None:
    write(root, "deploy/id_rsa", PRIVATE_KEY)
    commit(root)


FILES = ["config/settings.py", "src/app.py", "deploy/id_rsa"]


def assert_no_secret_text(*objects: object) -> None:
    text = repr(objects)
    assert AWS_KEY not in text
    assert not any(line in text for line in KEY_BODY)


def test_scan_finds_the_committed_secrets(repo: Path) -> None:
    from detect_secrets.settings import get_settings

    add_private_key(repo)
    settings_before = get_settings().json()
    findings = scan_secrets(str(repo), FILES)
    assert [(f.rule, f.path, f.line, f.severity) for f in findings] == [
        ("AWS Access Key", "config/settings.py", 3, "high"),
        ("Private Key", "deploy/id_rsa", 1, "critical"),
    ]
    assert all(f.tool == "conveyor-secrets" for f in findings)
    assert findings[0].message == "AWS Access Key committed in config/settings.py"
    assert len({f.fingerprint for f in findings}) == 2
    # detect-secrets' global settings are as they were.
    assert get_settings().json() == settings_before

    check = secrets_check(findings, GateLevel.ERROR)
    assert not check.ok
    assert check.blocking
    assert check.found == (
        "2 secrets: AWS Access Key in config/settings.py:3, Private Key in deploy/id_rsa:1"
    )
    assert "rotate them" in check.hint
    assert_no_secret_text(findings, check)


def test_an_unchanged_file_is_not_scanned_again(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detect_secrets.core.secrets_collection import SecretsCollection

    scanned: list[str] = []
    original = SecretsCollection.scan_file

    def counting(self: SecretsCollection, *names: str) -> None:
        scanned.extend(names)
        original(self, *names)

    monkeypatch.setattr(SecretsCollection, "scan_file", counting)
    cache = str(tmp_path / "cache" / "secrets.json")
    add_private_key(repo)
    first = scan_secrets(str(repo), FILES, cache_file=cache)
    assert sorted(scanned) == sorted(FILES)
    scanned.clear()
    assert scan_secrets(str(repo), FILES, cache_file=cache) == first
    assert scanned == [], "nothing changed: every file's result came from the cache"

    write(repo, "src/app.py", f'TOKEN_ID = "{AWS_KEY}"\n')
    again = scan_secrets(str(repo), FILES, cache_file=cache)
    assert scanned == ["src/app.py"], "only the changed file"
    assert [(f.rule, f.path) for f in again] == [
        ("AWS Access Key", "config/settings.py"),
        ("Private Key", "deploy/id_rsa"),
        ("AWS Access Key", "src/app.py"),
    ]
    assert_no_secret_text(Path(cache).read_text())

    Path(cache).write_text("{not json")
    scanned.clear()
    assert scan_secrets(str(repo), FILES, cache_file=cache) == again, "a broken cache is ignored"
    assert sorted(scanned) == sorted(FILES)


def test_clean_file_has_no_findings(repo: Path) -> None:
    assert scan_secrets(str(repo), ["src/app.py"]) == []
    check = secrets_check([], GateLevel.WARN)
    assert check.ok
    assert check.expected == "no secrets committed"


def test_fingerprint_survives_moving_lines(repo: Path) -> None:
    before = scan_secrets(str(repo), ["config/settings.py"])
    settings = repo / "config/settings.py"
    settings.write_text("# a new first line\n" + settings.read_text())
    after = scan_secrets(str(repo), ["config/settings.py"])
    assert [f.line for f in before] == [3]
    assert [f.line for f in after] == [4]
    assert before[0].fingerprint == after[0].fingerprint


def test_baseline_from_the_real_cli_drops_reviewed_secrets(repo: Path) -> None:
    # Reviewed when only the AWS key was there; the private key came later.
    done = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    (repo / ".secrets.baseline").write_text(done.stdout)
    assert "config/settings.py" in json.loads(done.stdout)["results"]
    add_private_key(repo)

    files = [*FILES, ".secrets.baseline"]
    findings = scan_secrets(str(repo), files, baseline=".secrets.baseline")
    assert [(f.rule, f.path) for f in findings] == [("Private Key", "deploy/id_rsa")]
    absolute = scan_secrets(str(repo), files, baseline=str(repo / ".secrets.baseline"))
    assert absolute == findings


def test_inline_allowlist_pragma(repo: Path) -> None:
    add_private_key(repo)
    settings = repo / "config/settings.py"
    settings.write_text(
        settings.read_text().replace(f'"{AWS_KEY}"', f'"{AWS_KEY}"  # pragma: allowlist secret')
    )
    assert [f.rule for f in scan_secrets(str(repo), FILES)] == ["Private Key"]


@pytest.mark.parametrize("pattern", ["deploy/*", "deploy/", "*/id_rsa"])
def test_exclude_globs(repo: Path, pattern: str) -> None:
    add_private_key(repo)
    findings = scan_secrets(str(repo), FILES, exclude=[pattern])
    assert [f.path for f in findings] == ["config/settings.py"]


def test_large_and_binary_files_are_skipped(repo: Path) -> None:
    (repo / "blob.dat").write_bytes(b"\0\1\2" + f'aws_access_key_id = "{AWS_KEY}"'.encode())
    write(repo, "big.py", "x = 1\n" * 200_000 + f'aws_access_key_id = "{AWS_KEY}"\n')
    assert scan_secrets(str(repo), ["blob.dat"]) == []
    assert scan_secrets(str(repo), ["big.py"]) == []


def test_broken_or_missing_baseline(repo: Path) -> None:
    write(repo, ".secrets.baseline", '{"results": {')
    with pytest.raises(ValueError, match=r"\.secrets\.baseline is not valid JSON"):
        scan_secrets(str(repo), FILES, baseline=".secrets.baseline")
    write(repo, "other.json", '{"version": "1.5.0"}')
    with pytest.raises(ValueError, match="not a detect-secrets baseline"):
        scan_secrets(str(repo), FILES, baseline="other.json")
    with pytest.raises(ValueError, match="does not exist"):
        scan_secrets(str(repo), FILES, baseline="missing.baseline")


# Writes an AWS key (put together at run time: this file is committed and scanned) into
# what the job builds, and into its SARIF report with a SHA-256 fingerprint.
RENDER = f"""
import hashlib, json, os
key = {AWS_KEY[:4]!r} + {AWS_KEY[4:]!r}
os.makedirs("dist", exist_ok=True)
with open("dist/settings.py", "w") as fh:
    fh.write(f'aws_access_key_id = "{{key}}"\\n')
os.makedirs("reports", exist_ok=True)
result = {{
    "ruleId": "leaked-key",
    "level": "note",
    "message": {{"text": f"aws_access_key_id = {{key}}"}},
    "partialFingerprints": {{"primary": hashlib.sha256(key.encode()).hexdigest()}},
}}
run = {{"tool": {{"driver": {{"name": "scanner"}}}}, "results": [result]}}
with open("reports/scan.sarif", "w") as fh:
    json.dump({{"version": "2.1.0", "runs": [run]}}, fh, indent=2)
"""


def test_conveyors_own_files_never_trip_the_secrets_check(project: Project) -> None:
    """A job's declared outputs and reports (what it built) and a findings baseline (the
    SHA-256 fingerprints of known findings) are not scanned; any other file is."""
    project.write("app/render.py", RENDER)
    project.pipeline(
        f"""
        checks:
          secrets: true
        gates:
          findings: {{max: {{high: 0}}, baseline: findings-baseline.json}}
        jobs:
          render:
            dir: app
            run: {json.dumps(f"{sys.executable} render.py")}
            outputs: [dist/]
            reports: {{sarif: reports/scan.sarif}}
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    assert AWS_KEY in (project.root / "app" / "dist" / "settings.py").read_text()
    assert project.run("gates", "--write-baseline").code == 0
    baseline = json.loads((project.root / "findings-baseline.json").read_text())
    assert len(baseline["fingerprints"]) == 1
    # Untracked and not ignored, all three are among the files the check sees...
    again = project.run("run", "--plain")
    assert again.code == 0, again.out
    assert "✔ secrets" in again.out
    # ...and the same key anywhere else is still found.
    project.write("app/notes.py", f'aws_access_key_id = "{AWS_KEY}"\n')
    found = project.run("run", "--plain")
    assert found.code == 1
    assert "✘ secrets 1 secret: AWS Access Key in app/notes.py:1" in " ".join(found.out.split())


def test_secrets_check_lists_the_first_five() -> None:
    findings = [
        Finding("conveyor-secrets", "Secret Keyword", "high", "m", f"f{i}.py", i + 1, str(i))
        for i in range(7)
    ]
    check = secrets_check(findings, GateLevel.WARN)
    assert not check.ok
    assert not check.blocking
    assert check.found.startswith("7 secrets: Secret Keyword in f0.py:1, ")
    assert check.found.endswith("Secret Keyword in f4.py:5, and 2 more")
