"""uv.lock, poetry.lock, Pipfile.lock, pylock.toml and requirement files read into the
inventory. The data under data/python was written by uv, Poetry, Pipenv, pip-compile and
pip (see data/README.md) for one small project: python-dateutil (which pins six) and
click (colorama under it on Windows) for production, iniconfig in a dev group; uv's
project pins six 1.16.0 below Python 3.10 and 1.17.0 from it, so uv.lock locks both."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.inventory import Lockfile, read_inventory, read_lockfile

DATA = Path(__file__).parent / "data" / "python"
PROD, DEV = Scope.PROD, Scope.DEV
HASHES = {  # PyPI's sha256 of each file (wheel, sdist)
    "six-1.17.0": {
        "sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
        "sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
    },
    "iniconfig-2.0.0": {
        "sha256:b6a85871a79d2e3b22d2d1b94ac2824226a63c6b741c88f7ae975f18b6778374",
        "sha256:2d91e135bf72d31a410b17c16da610a82cb55f6b0477d1a902134b24a455b8b3",
    },
}


def read(directory: Path, name: str) -> dict[str, Component]:
    found = read_lockfile(str(directory), name)
    assert isinstance(found, Lockfile), found
    components = {c.ref: c for c in found.components}
    assert len(components) == len(found.components)
    lines = (directory / name).read_text().splitlines()
    for c in found.components:  # each line is where its entry starts
        assert c.line is not None
        assert any(c.name in lines[i] for i in range(c.line - 1, min(c.line + 2, len(lines))))
    return components


def table(components: dict[str, Component]) -> set[tuple[str, str | None, bool | None, object]]:
    return {(c.name, c.version, c.direct, c.scope) for c in components.values()}


def test_uv_lock() -> None:
    found = read(DATA / "uv", "uv.lock")
    assert table(found) == {
        ("click", "8.1.8", True, PROD),
        ("colorama", "0.4.6", False, PROD),
        ("demo-app", "0.1.0", False, PROD),
        ("iniconfig", "2.0.0", True, DEV),
        ("python-dateutil", "2.9.0.post0", True, PROD),
        ("six", "1.16.0", True, PROD),
        ("six", "1.17.0", True, PROD),
    }
    assert found["pkg:pypi/demo-app@0.1.0"].local
    assert found["pkg:pypi/python-dateutil@2.9.0.post0"].dependencies == (
        "pkg:pypi/six@1.16.0",
        "pkg:pypi/six@1.17.0",
    )
    assert found["pkg:pypi/click@8.1.8"].dependencies == ("pkg:pypi/colorama@0.4.6",)
    assert set(found["pkg:pypi/six@1.17.0"].hashes) == HASHES["six-1.17.0"]
    assert found["pkg:pypi/click@8.1.8"].declared == "pyproject.toml"
    assert found["pkg:pypi/click@8.1.8"].line == 9


def test_poetry_lock() -> None:
    found = read(DATA / "poetry", "poetry.lock")
    assert table(found) == {
        ("click", "8.1.8", True, PROD),
        ("colorama", "0.4.6", False, PROD),
        ("iniconfig", "2.0.0", True, DEV),  # groups = ["dev"]
        ("python-dateutil", "2.9.0.post0", True, PROD),
        ("six", "1.17.0", False, PROD),
    }
    assert found["pkg:pypi/python-dateutil@2.9.0.post0"].dependencies == ("pkg:pypi/six@1.17.0",)
    assert set(found["pkg:pypi/iniconfig@2.0.0"].hashes) == HASHES["iniconfig-2.0.0"]


def test_poetry_lock_1_x_category_and_metadata_files(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(
        '[[package]]\nname = "six"\nversion = "1.17.0"\ncategory = "dev"\noptional = false\n'
        'python-versions = "*"\n\n[metadata]\nlock-version = "1.1"\n\n[metadata.files]\n'
        'six = [\n    {file = "six-1.17.0.tar.gz", hash = "sha256:ff70"},\n]\n'
    )
    found = read_lockfile(str(tmp_path), "poetry.lock")
    assert isinstance(found, Lockfile)
    [six] = found.components
    assert (six.scope, six.hashes, six.line, six.direct) == (DEV, ("sha256:ff70",), 1, None)


def test_pipfile_lock() -> None:
    found = read(DATA / "pipenv", "Pipfile.lock")
    assert table(found) == {
        ("click", "8.1.8", True, PROD),
        ("python-dateutil", "2.9.0.post0", True, PROD),
        ("six", "1.17.0", False, PROD),
        ("iniconfig", "2.0.0", True, DEV),  # "develop"
    }
    assert {c.dependencies for c in found.values()} == {None}  # no edges kept
    assert set(found["pkg:pypi/six@1.17.0"].hashes) == HASHES["six-1.17.0"]
    assert found["pkg:pypi/click@8.1.8"].declared == "Pipfile"


def test_pylock_by_uv_export() -> None:
    found = read(DATA / "uv", "pylock.toml")
    assert table(found) == {
        ("click", "8.1.8", True, PROD),
        ("colorama", "0.4.6", False, None),  # pylock.toml does not say
        ("demo-app", None, False, None),
        ("iniconfig", "2.0.0", True, DEV),
        ("python-dateutil", "2.9.0.post0", True, PROD),
        ("six", "1.16.0", True, PROD),
        ("six", "1.17.0", True, PROD),
    }
    assert found["pkg:pypi/demo-app"].local
    assert set(found["pkg:pypi/six@1.17.0"].hashes) == HASHES["six-1.17.0"]
    assert {c.dependencies for c in found.values()} == {None}  # uv writes no edges


def test_pylock_by_pip_lock() -> None:
    found = read(DATA / "pip-lock", "pylock.toml")
    assert table(found) == {
        ("click", "8.1.8", None, None),
        ("python-dateutil", "2.9.0.post0", None, None),
        ("six", "1.17.0", None, None),
    }
    assert found["pkg:pypi/six@1.17.0"].hashes == (
        "sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
    )


# requirement files ---------------------------------------------------------------------


def test_pip_compile_with_hashes() -> None:
    found = read(DATA / "pip-compile", "requirements.txt")
    assert table(found) == {
        ("click", "8.1.8", True, PROD),
        ("python-dateutil", "2.9.0.post0", True, PROD),
        ("six", "1.17.0", True, PROD),  # via -r requirements.in and python-dateutil
    }
    assert found["pkg:pypi/python-dateutil@2.9.0.post0"].dependencies == ("pkg:pypi/six@1.17.0",)
    assert found["pkg:pypi/six@1.17.0"].declared == "requirements.in:3"
    assert set(found["pkg:pypi/six@1.17.0"].hashes) == HASHES["six-1.17.0"]
    assert found["pkg:pypi/click@8.1.8"].line == 7


def test_pip_compile_dev_file_and_constraint() -> None:
    found = read(DATA / "pip-compile", "requirements-dev.txt")
    assert table(found) == {
        ("iniconfig", "2.0.0", True, DEV),
        ("python-dateutil", "2.9.0.post0", True, DEV),
        ("six", "1.17.0", False, DEV),  # via -c requirements.txt and python-dateutil
    }


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("requirements.txt", PROD),
        ("requirements-dev.txt", DEV),
        ("requirements_test.txt", DEV),
        ("requirements/test.txt", DEV),
        ("requirements/docs.txt", DEV),
        ("requirements/base.txt", PROD),
        ("requirements/production.txt", PROD),
        ("svc/requirements-lint.txt", DEV),
    ],
)
def test_requirement_file_scope_by_name(tmp_path: Path, path: str, scope: Scope) -> None:
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text("six==1.17.0\n")
    found = read_lockfile(str(tmp_path), path)
    assert isinstance(found, Lockfile)
    assert [c.scope for c in found.components] == [scope]


def test_requirement_file_forms(tmp_path: Path) -> None:
    (tmp_path / "common.txt").write_text("idna==3.7  # a comment\n")
    (tmp_path / "requirements.txt").write_text(
        "# pinned by hand\n"
        "--index-url https://pypi.org/simple\n"
        "-r common.txt\n"
        "requests[socks]==2.32.3 \\\n"
        "    --hash=sha256:AAAA \\\n"
        "    --hash=sha256:bbbb\n"
        "urllib3>=2.0\n"
        "Typing_Extensions===4.12.2 ; python_version < '3.13'\n"
        "-e ./libs/util\n"
        "-e git+https://github.com/org/tool.git#egg=tool\n"
        "pkg @ https://example.com/pkg-1.0.tar.gz\n"
        "local @ file:///srv/local-2.0.tar.gz\n"
        "./dist/wheelie-3.1-py3-none-any.whl\n"
    )
    found = read_lockfile(str(tmp_path), "requirements.txt")
    assert isinstance(found, Lockfile)
    assert [(c.name, c.version, c.local, c.line, c.lockfile) for c in found.components] == [
        ("idna", "3.7", False, 1, "common.txt"),
        ("requests", "2.32.3", False, 4, "requirements.txt"),
        ("urllib3", None, False, 7, "requirements.txt"),  # unpinned: no version guessed
        ("Typing_Extensions", "4.12.2", False, 8, "requirements.txt"),
        ("util", None, True, 9, "requirements.txt"),
        ("tool", None, False, 10, "requirements.txt"),
        ("pkg", None, False, 11, "requirements.txt"),
        ("local", None, True, 12, "requirements.txt"),
        ("wheelie", None, True, 13, "requirements.txt"),
    ]
    requests = found.components[1]
    assert requests.hashes == ("sha256:aaaa", "sha256:bbbb")
    assert requests.purl == "pkg:pypi/requests@2.32.3"
    assert found.components[3].purl == "pkg:pypi/typing-extensions@4.12.2"
    # Plain pins say nothing of direct or edges.
    assert {(c.direct, c.dependencies) for c in found.components} == {(None, None)}


def test_requirement_file_editable_project_named_by_its_pyproject(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc/pyproject.toml").write_text('[project]\nname = "svc-app"\n')
    (tmp_path / "svc/requirements.txt").write_text("-e .\n-e ../tools/lint\n")
    found = read_lockfile(str(tmp_path), "svc/requirements.txt")
    assert isinstance(found, Lockfile)
    assert [(c.name, c.version, c.local) for c in found.components] == [
        ("svc-app", None, True),
        ("lint", None, True),
    ]


def test_requirement_file_missing_include_is_located(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n\n-r base-deps.txt\n")
    found = read_lockfile(str(tmp_path), "requirements.txt")
    assert not isinstance(found, Lockfile)
    assert (found.location, found.message) == (
        "requirements.txt:3:1",
        "the included requirement file base-deps.txt cannot be read",
    )
    (tmp_path / "requirements.txt").write_text("-c constraints.txt\n")
    found = read_lockfile(str(tmp_path), "requirements.txt")
    assert not isinstance(found, Lockfile)
    assert found.location == "requirements.txt:1:1"


def test_requirement_file_includes_of_requirement_files_are_read_once(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/base.txt").write_text("six==1.17.0\n")
    (tmp_path / "requirements/dev.txt").write_text("-r base.txt\niniconfig==2.0.0\n")
    inventory = read_inventory(str(tmp_path), ["requirements/base.txt", "requirements/dev.txt"])
    assert [(c.name, c.lockfile, c.scope) for c in inventory.components] == [
        ("six", "requirements/base.txt", PROD),
        ("iniconfig", "requirements/dev.txt", DEV),
    ]


def test_requirement_file_bad_line_is_located(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six==1.17.0\nnot a requirement!\n")
    found = read_lockfile(str(tmp_path), "requirements.txt")
    assert not isinstance(found, Lockfile)
    assert found.location == "requirements.txt:2:1"
    assert "requirement" in found.message


# malformed files -----------------------------------------------------------------------


def test_a_malformed_lockfile_is_one_located_error_and_the_others_are_read(
    tmp_path: Path,
) -> None:
    files = {
        "good/uv.lock": (DATA / "uv/uv.lock").read_text(),
        "bad/package-lock.json": '{\n  "lockfileVersion": 3,\n  "packages": {\n    "": {,\n',
        "bad/poetry.lock": '[[package]]\nname = "six"\nversion = 1.17.0"\n',
        "bad/Pipfile.lock": '{"default": {"six": {"version": "==1"}}\n',
        "bad/pnpm-lock.yaml": "lockfileVersion: '9.0'\npackages:\n  a@1.0.0:\n    x: 1\n   y: 2\n",
        "bad/yarn.lock": 'a@^1:\n  version "1"\n\tresolved "x"\n',
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    inventory = read_inventory(str(tmp_path), sorted(files))
    assert [lock.path for lock in inventory.lockfiles] == ["good/uv.lock"]
    assert len(inventory.components) == 7
    located = {e.path: (e.line, e.col) for e in inventory.errors}
    assert located == {
        "bad/Pipfile.lock": (2, 1),
        "bad/package-lock.json": (4, 10),  # the comma
        "bad/pnpm-lock.yaml": (5, 4),
        "bad/poetry.lock": (3, 15),
        "bad/yarn.lock": (3, 1),
    }
    assert all(e.message for e in inventory.errors)


def test_purls_spelled_fast_match_packageurl() -> None:
    from conveyor.deps.components import _purl, _slow_purl

    cases = [
        (Ecosystem.NPM, "@Babel/Core", "7.24.0"),
        (Ecosystem.NPM, "JSONStream", "1.3.5"),
        (Ecosystem.NPM, "x", "1.0.0+build.1"),
        (Ecosystem.NPM, "x", None),
        (Ecosystem.PYPI, "Typing_Extensions", "4.12.2"),
        (Ecosystem.PYPI, "zope.interface", "6.0"),
        (Ecosystem.PYPI, "torch", "2.3.0+cpu"),
        (Ecosystem.PYPI, "six", "1.17.0"),
        (Ecosystem.CARGO, "serde_json", "1.0.128"),
        (Ecosystem.CARGO, "Inflector", "0.11.4"),
        (Ecosystem.CARGO, "a.b", "1.0.0+build.1"),
        (Ecosystem.CARGO, "x", None),
    ]
    for case in cases:
        assert _purl(*case) == _slow_purl(*case), case


def test_pip_compile_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "click==8.1.8\n"
        "    # via demo-app (pyproject.toml)\n"
        'colorama==0.4.6 ; platform_system == "Windows"\n'
        "    # via click\n"
    )
    found = read_lockfile(str(tmp_path), "requirements.txt")
    assert isinstance(found, Lockfile)
    click, colorama = found.components
    assert (click.direct, click.declared, click.dependencies) == (
        True,
        "pyproject.toml",
        ("pkg:pypi/colorama@0.4.6",),
    )
    assert (colorama.direct, colorama.declared, colorama.dependencies) == (False, None, ())
