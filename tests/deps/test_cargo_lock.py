"""Cargo.lock read into components: an excerpt of the lockfile Cargo wrote for
cryptography 41.0.7's Rust workspace (PyPI sdist; tests/deps/data/SOURCES.md), and
lockfiles the installed cargo writes here (offline: path and local git crates)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.deps.components import Ecosystem
from conveyor.deps.ecosystems.cargo import read_cargo_lock
from conveyor.deps.syntax import ParseError
from tests.deps.lockdata import by_name, line_of, source, text

CRYPTOGRAPHY = text("cryptography-41.0.7.Cargo.lock")
# Read before the tests give each a home directory of its own: the installed toolchains
# stay where rustup put them.
_RUSTUP_HOME = os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup")


def test_each_package_with_its_line_checksum_and_place() -> None:
    components = read_cargo_lock(source("src/rust/Cargo.lock", CRYPTOGRAPHY))
    assert len(components) == 23
    for component in components:
        assert line_of(CRYPTOGRAPHY, component) == "[[package]]"
        following = CRYPTOGRAPHY.splitlines()[component.line or 0]
        assert following == f'name = "{component.name}"'
        assert component.ecosystem is Ecosystem.CARGO
        assert component.lockfile == "src/rust/Cargo.lock"
        assert component.scope is None  # Cargo.lock does not tell dev-dependencies apart
    found = by_name(components)
    openssl = found["openssl"]
    assert (openssl.version, openssl.line, openssl.purl) == (
        "0.10.60",
        107,
        "pkg:cargo/openssl@0.10.60",
    )
    assert openssl.hashes == (
        "sha256:79a4c6c3a2b158f7f8f2a2fc5a969fa3a068df6fc9dbb4a43845436e3af7c800",
    )
    # The workspace's own crates: local, no checksum (they are not downloaded).
    assert {c.name for c in components if c.local} == {
        "cryptography-rust",
        "cryptography-openssl",
        "cryptography-x509",
    }
    assert found["cryptography-x509"].hashes == ()


def test_direct_are_what_the_workspace_crates_depend_on() -> None:
    components = read_cargo_lock(source("Cargo.lock", CRYPTOGRAPHY))
    assert {c.name for c in components if c.direct} == {
        # cryptography-rust's dependencies, two of them its sibling crates
        "asn1",
        "cc",
        "cryptography-openssl",
        "cryptography-x509",
        "foreign-types",  # cryptography-openssl's
        "foreign-types-shared",
        "once_cell",
        "openssl",
        "openssl-sys",
    }
    assert by_name(components)["cryptography-rust"].direct is False  # the root itself


def test_edges_name_the_locked_versions() -> None:
    components = read_cargo_lock(source("Cargo.lock", CRYPTOGRAPHY))
    found = {(c.name, c.version): c for c in components}
    # "bitflags 2.4.1": a version is written when two of the crate are locked.
    assert found[("openssl", "0.10.60")].dependencies == (
        "pkg:cargo/bitflags@2.4.1",
        "pkg:cargo/cfg-if@1.0.0",
        "pkg:cargo/foreign-types@0.3.2",
        "pkg:cargo/libc@0.2.144",
        "pkg:cargo/once_cell@1.17.2",
        "pkg:cargo/openssl-macros@0.1.1",
        "pkg:cargo/openssl-sys@0.9.96",
    )
    assert found[("redox_syscall", "0.2.16")].dependencies == ("pkg:cargo/bitflags@1.3.2",)
    assert found[("bitflags", "1.3.2")].dependencies == ()
    rust = found[("cryptography-rust", "0.1.0")].dependencies
    assert rust is not None
    assert "pkg:cargo/cryptography-x509@0.1.0" in rust


def test_checksums_in_the_metadata_table_of_old_lockfiles() -> None:
    # Cargo before 1.41 wrote the checksums in [metadata]: a lockfile in that form.
    libc_sum = "d515b1f41455adea1313a4a2ac8a8a477634fbae63cc6100e3aebb207ce61558"
    old = f"""\
[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "libc 0.2.66 (registry+https://github.com/rust-lang/crates.io-index)",
]

[[package]]
name = "libc"
version = "0.2.66"
source = "registry+https://github.com/rust-lang/crates.io-index"

[metadata]
"checksum libc 0.2.66 (registry+https://github.com/rust-lang/crates.io-index)" = "{libc_sum}"
"""
    app, libc = read_cargo_lock(source("Cargo.lock", old))
    assert libc.hashes == (f"sha256:{libc_sum}",)
    assert app.dependencies == ("pkg:cargo/libc@0.2.66",)
    assert (libc.direct, libc.line) == (True, 8)


def test_a_crate_from_two_sources_at_one_version(tmp_path: Path) -> None:
    """Cargo writes 'name version (source)' for the git crate and 'name version' for the
    path crate of the same name and version (cargo, here, with a local git repository)."""
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    env = {**os.environ, "RUSTUP_HOME": _RUSTUP_HOME, "CARGO_NET_GIT_FETCH_WITH_CLI": "true"}
    git_crate = tmp_path / "gitutil"
    for folder, extra in ((git_crate, ""), (tmp_path / "ws" / "util", "")):
        (folder / "src").mkdir(parents=True)
        (folder / "src" / "lib.rs").write_text("")
        (folder / "Cargo.toml").write_text(
            f'[package]\nname = "util"\nversion = "0.1.0"\nedition = "2021"\n{extra}'
        )
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-qm", "util")):
        subprocess.run(
            ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
            cwd=git_crate,
            check=True,
            env=env,
        )
    app = tmp_path / "ws" / "app"
    (app / "src").mkdir(parents=True)
    (app / "src" / "lib.rs").write_text("")
    (app / "Cargo.toml").write_text(
        '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n'
        '[dependencies]\nutil = { path = "../util" }\n'
        f'util_git = {{ git = "{git_crate.as_uri()}", package = "util" }}\n'
    )
    (tmp_path / "ws" / "Cargo.toml").write_text(
        '[workspace]\nmembers = ["app", "util"]\nresolver = "2"\n'
    )
    done = subprocess.run(
        ["cargo", "generate-lockfile"],
        cwd=tmp_path / "ws",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    body = (tmp_path / "ws" / "Cargo.lock").read_text()
    assert f' "util 0.1.0 (git+{git_crate.as_uri()})",' in body
    components = read_cargo_lock(source("Cargo.lock", body))
    assert [(c.name, c.local, c.direct) for c in components] == [
        ("app", True, False),
        ("util", True, True),  # the path crate
        ("util", False, True),  # the git crate
    ]
    assert components[2].hashes == ()  # git crates have no checksum
    # Both are pkg:cargo/util@0.1.0: a purl does not tell the sources apart.
    assert components[0].dependencies == ("pkg:cargo/util@0.1.0",)


@pytest.mark.parametrize(
    ("body", "message", "line", "col"),
    [
        ('[[package]]\nname = "a"\nversion = "1.0.0\n', "Illegal character", 3, 17),
        ('version = 3\n\n[[package]]\nname = "a"\n', "[[package]] has no version", 3, 1),
        ('[[package]]\nversion = "1.0.0"\n', "[[package]] has no name", 1, 1),
        ('package = "x"\n', "'package' must be an array", 1, 1),
    ],
)
def test_a_malformed_lockfile_is_one_located_error(
    body: str, message: str, line: int, col: int
) -> None:
    with pytest.raises(ParseError) as caught:
        read_cargo_lock(source("Cargo.lock", body))
    assert message in caught.value.message
    assert (caught.value.line, caught.value.col) == (line, col)
