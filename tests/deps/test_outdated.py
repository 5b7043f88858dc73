"""`conveyor deps outdated` against real registries on 127.0.0.1: pypiserver holding
wheels built and uploaded by the tests, Verdaccio holding packages published by them;
a static PEP 503 index served from a directory, and a PEP 691 JSON page, for what
pypiserver does not do (yanked files, the JSON simple API)."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conveyor.deps.components import Component, Ecosystem
from conveyor.deps.outdated import Distance, check, distance, newest_pypi
from conveyor.deps.registries import (
    RegistryError,
    npm_latest,
    npm_registry,
    pypi_index,
    pypi_releases,
    registry,
    urllib_transport,
)
from conveyor.errors import UserError
from tests.conftest import Project
from tests.deps.registries import (
    NpmRegistry,
    PypiServer,
    build_wheel,
    publish,
    pypiserver,
    upload,
    verdaccio,
)

WHEELS = [
    ("tinypkg", "1.0.0"),
    ("tinypkg", "1.2.0"),
    ("tinypkg", "2.0.0rc1"),
    ("patch-pkg", "0.4.0"),
    ("patch-pkg", "0.4.2"),
    ("major-pkg", "1.5.0"),
    ("major-pkg", "3.0.0"),
    ("same-pkg", "5.0.0"),
]


@pytest.fixture(scope="module")
def pypi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiServer]:
    work = tmp_path_factory.mktemp("pypi")
    with pypiserver(work) as server:
        with ThreadPoolExecutor(4) as pool:  # hatchling runs in a process of its own
            wheels = list(pool.map(lambda w: build_wheel(work, *w), WHEELS))
        for wheel in wheels:
            upload(server.root, wheel)
        yield server


@pytest.fixture(scope="module")
def npm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NpmRegistry]:
    work = tmp_path_factory.mktemp("npm")
    with verdaccio(work / "registry") as server:
        # `latest` moves to the version published last (plain's 2.0.0).
        packages = {
            "plain": ["1.4.0", "2.0.0"],
            "@acme/tiny": ["1.0.1"],
            "@private/secret": ["0.2.0"],
        }

        def publish_all(name: str) -> None:  # one package's versions in order
            for version in packages[name]:
                publish(server, work, name, version)

        with ThreadPoolExecutor(len(packages)) as pool:
            list(pool.map(publish_all, packages))
        yield server


# -- versions and distance --------------------------------------------------------------
@pytest.mark.parametrize(
    ("ecosystem", "current", "newest", "expected"),
    [
        (Ecosystem.PYPI, "1.0.0", "2.0.0", Distance.MAJOR),
        (Ecosystem.PYPI, "1.0", "1.1", Distance.MINOR),
        (Ecosystem.PYPI, "1.2.3", "1.2.10", Distance.PATCH),
        (Ecosystem.PYPI, "2.0.0rc1", "2.0.0", Distance.PATCH),
        (Ecosystem.PYPI, "1.2.3", "1.2.3", None),
        (Ecosystem.PYPI, "1.3", "1.2.9", None),
        (Ecosystem.NPM, "1.9.0", "1.10.0", Distance.MINOR),
        (Ecosystem.NPM, "0.9.9", "1.0.0", Distance.MAJOR),
        (Ecosystem.NPM, "1.0.0-beta.2", "1.0.0", Distance.PATCH),
        (Ecosystem.NPM, "2.0.0", "1.9.9", None),
        (Ecosystem.NPM, "not-a-version", "1.0.0", None),
    ],
)
def test_distance_is_the_first_of_major_minor_patch_that_differs(
    ecosystem: Ecosystem, current: str, newest: str, expected: Distance | None
) -> None:
    assert distance(ecosystem, current, newest) is expected


def test_the_newest_pypi_version_leaves_out_yanked_ones_and_pre_releases() -> None:
    offered = [("1.0", False), ("1.1", False), ("1.2", True), ("2.0b1", False)]
    assert newest_pypi(offered, "1.0") == "1.1"
    # Pre-releases count for a project already on one.
    assert newest_pypi(offered, "2.0a1") == "2.0b1"


# -- which registry ---------------------------------------------------------------------
def test_an_index_comes_from_the_option_then_the_pipeline_then_pip(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:9/from-pip-conf/simple\n")
    env = {"PIP_CONFIG_FILE": str(conf)}
    home = str(tmp_path / "home")
    found = pypi_index(None, None, env, home=home, system_dirs=())
    assert found is not None
    assert (found.url, found.origin) == ("http://127.0.0.1:9/from-pip-conf/simple/", str(conf))
    env["PIP_INDEX_URL"] = "http://127.0.0.1:9/env/simple"
    found = pypi_index(None, None, env, home=home, system_dirs=())
    assert found is not None
    assert found.origin == "PIP_INDEX_URL"
    found = pypi_index(None, "http://127.0.0.1:9/conf/simple", env, home=home, system_dirs=())
    assert found is not None
    assert found.origin == "deps.registries.pypi"
    found = pypi_index("http://127.0.0.1:9/opt/simple", "x", env, home=home, system_dirs=())
    assert found is not None
    assert found.origin == "--index-url"


def test_no_index_is_assumed(tmp_path: Path) -> None:
    # pip's own rule: PIP_CONFIG_FILE=/dev/null reads no configuration file.
    assert pypi_index(None, None, {"PIP_CONFIG_FILE": "/dev/null"}, home=str(tmp_path)) is None
    assert npm_registry(None, None, {}, root=str(tmp_path), home=str(tmp_path)) is None


def test_credentials_in_the_url_are_sent_and_never_shown() -> None:
    found = registry("http://user:s3cret@127.0.0.1:9/simple", "PIP_INDEX_URL", bearer=False)
    assert found.url == "http://127.0.0.1:9/simple/"
    assert "s3cret" not in repr(found)
    assert found.headers["Authorization"] == "Basic " + base64.b64encode(b"user:s3cret").decode()
    with pytest.raises(UserError, match="is not an http"):
        registry("ftp://127.0.0.1/simple", "--index-url", bearer=False)
    with pytest.raises(UserError, match=r"--index-url: 'http://127.0.0.1:99999/simple' is not"):
        registry("http://127.0.0.1:99999/simple", "--index-url", bearer=False)


def test_the_npm_registry_and_its_token_come_from_npmrc(tmp_path: Path) -> None:
    (tmp_path / ".npmrc").write_text(
        "registry=http://127.0.0.1:9/npm/\n//127.0.0.1:9/npm/:_authToken=${MY_TOKEN}\n"
    )
    found = npm_registry(
        None, None, {"MY_TOKEN": "tok-1"}, root=str(tmp_path), home=str(tmp_path / "h")
    )
    assert found is not None
    assert (found.url, found.origin) == ("http://127.0.0.1:9/npm/", str(tmp_path / ".npmrc"))
    assert found.headers == {"Authorization": "Bearer tok-1"}
    # The .npmrc beside a lockfile comes before the workspace's.
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / ".npmrc").write_text("registry=http://127.0.0.1:9/web/\n")
    found = npm_registry(None, None, {}, root=str(tmp_path), projects=["web"], home="/nowhere")
    assert found is not None
    assert (found.url, found.headers) == ("http://127.0.0.1:9/web/", {})
    env = {"NPM_CONFIG_REGISTRY": "http://127.0.0.1:9/other/"}
    found = npm_registry(None, None, env, root=str(tmp_path), home=str(tmp_path / "h"))
    assert found is not None
    assert (found.origin, found.headers) == ("npm_config_registry", {})


# -- the PyPI-compatible index -------------------------------------------------------------
def test_pypiserver_offers_the_versions_uploaded(pypi: PypiServer) -> None:
    index = registry(pypi.simple, "test", bearer=False)
    versions = {r.version for r in pypi_releases(index, "TinyPkg", urllib_transport)}
    assert versions == {"1.0.0", "1.2.0", "2.0.0rc1"}
    with pytest.raises(RegistryError, match="not on the index"):
        pypi_releases(index, "no-such-package", urllib_transport)


def test_outdated_python_packages_against_pypiserver(pypi: PypiServer) -> None:
    index = registry(pypi.simple, "test", bearer=False)
    pins = {"tinypkg": "1.0.0", "patch_pkg": "0.4.0", "Major.Pkg": "1.5.0", "same-pkg": "5.0.0"}
    pins["absent-pkg"] = "1.0"
    components = [Component(n, v, Ecosystem.PYPI, "uv.lock") for n, v in pins.items()]
    components.append(Component("tinypkg", "1.0.0", Ecosystem.PYPI, "sub/uv.lock"))
    report = check(components, pypi=index, npm=None)
    got = {p.name: (p.newest, p.distance, p.error) for p in report.packages}
    assert got == {
        "tinypkg": ("1.2.0", Distance.MINOR, None),  # 2.0.0rc1 is a pre-release
        "patch_pkg": ("0.4.2", Distance.PATCH, None),
        "Major.Pkg": ("3.0.0", Distance.MAJOR, None),
        "same-pkg": ("5.0.0", None, None),
        "absent-pkg": (None, None, f"not on the index {index.url}"),
    }
    tiny = next(p for p in report.packages if p.name == "tinypkg")
    assert tiny.locations == ("uv.lock", "sub/uv.lock")  # asked once


def test_an_index_that_does_not_answer_is_one_line_per_package() -> None:
    from tests.deps.registries import free_port

    index = registry(f"http://127.0.0.1:{free_port()}/simple", "test", bearer=False)
    report = check([Component("a", "1", Ecosystem.PYPI, "uv.lock")], pypi=index, npm=None)
    (only,) = report.packages
    assert only.error is not None
    assert only.error.startswith(f"{index.url} could not be reached")


class _Static(http.server.SimpleHTTPRequestHandler):
    """A static index: PEP 503 pages as index.html files; a PEP 691 JSON page
    (index.json) to whoever asks for it in Accept."""

    def do_GET(self) -> None:
        if "vnd.pypi.simple.v1+json" in self.headers.get("Accept", ""):
            page = Path(self.translate_path(self.path)) / "index.json"
            if page.exists():
                body = page.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_index(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "index"
    html = root / "simple" / "yanky"
    html.mkdir(parents=True)
    (html / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        '<a href="../../files/yanky-1.0.0-py3-none-any.whl#sha256=00">'
        "yanky-1.0.0-py3-none-any.whl</a>\n"
        '<a href="../../files/yanky-1.1.0.tar.gz">yanky-1.1.0.tar.gz</a>\n'
        '<a href="../../files/yanky-1.2.0-py3-none-any.whl" data-yanked="broken">'
        "yanky-1.2.0-py3-none-any.whl</a>\n"
        '<a href="../../files/other-9.0.tar.gz">other-9.0.tar.gz</a>\n'
        "</body></html>\n"
    )
    jsonpkg = root / "simple" / "jsony"
    jsonpkg.mkdir(parents=True)
    (jsonpkg / "index.json").write_text(
        json.dumps(
            {
                "meta": {"api-version": "1.1"},
                "name": "jsony",
                "files": [
                    {"filename": "jsony-0.1.0-py3-none-any.whl", "url": "x", "hashes": {}},
                    {"filename": "jsony-0.3.0.tar.gz", "url": "x", "hashes": {}},
                    {"filename": "jsony-0.4.0.tar.gz", "url": "x", "hashes": {}, "yanked": True},
                ],
            }
        )
    )
    api = root / "pypi" / "apionly"
    api.mkdir(parents=True)
    (api / "json").write_text(
        json.dumps(
            {
                "info": {"name": "apionly", "version": "2.0.0"},
                "releases": {
                    "1.0.0": [{"filename": "apionly-1.0.0.tar.gz", "yanked": False}],
                    "1.5.0": [{"filename": "apionly-1.5.0.tar.gz", "yanked": False}],
                    "2.0.0": [{"filename": "apionly-2.0.0.tar.gz", "yanked": True}],
                    "3.0.0": [],
                },
            }
        )
    )
    handler = functools.partial(_Static, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_yanked_files_and_the_json_simple_api(static_index: str) -> None:
    index = registry(static_index, "test", bearer=False)
    components = [
        Component("yanky", "1.0.0", Ecosystem.PYPI, "uv.lock"),
        Component("jsony", "0.1.0", Ecosystem.PYPI, "uv.lock"),
    ]
    report = check(components, pypi=index, npm=None)
    got = {p.name: (p.newest, p.distance) for p in report.packages}
    # 1.2.0 is yanked (PEP 592), 0.4.0 too (PEP 691); other-9.0 is another project's.
    assert got == {"yanky": ("1.1.0", Distance.MINOR), "jsony": ("0.3.0", Distance.MINOR)}


def test_the_json_api_at_a_base_url(static_index: str) -> None:
    base = registry(static_index.removesuffix("simple/"), "test", bearer=False)
    components = [
        Component("apionly", "1.0.0", Ecosystem.PYPI, "uv.lock"),
        Component("yanky", "1.0.0", Ecosystem.PYPI, "uv.lock"),
    ]
    got = {p.name: (p.newest, p.error) for p in check(components, pypi=base, npm=None).packages}
    # 2.0.0 is yanked, 3.0.0 has no file; yanky has no JSON API page: its simple page,
    # which a base URL does not hold, is not found.
    assert got == {"apionly": ("1.5.0", None), "yanky": (None, f"not on the index {base.url}")}


# -- the npm-compatible registry ----------------------------------------------------------------
def test_npm_latest_from_verdaccio(npm: NpmRegistry) -> None:
    reg = registry(npm.url, "test", bearer=True)
    assert npm_latest(reg, "plain", urllib_transport) == "2.0.0"
    assert npm_latest(reg, "@acme/tiny", urllib_transport) == "1.0.1"
    with pytest.raises(RegistryError, match="not on the registry"):
        npm_latest(reg, "left-pad-not-here", urllib_transport)
    # A scope that needs a user: refused without the token, answered with it.
    with pytest.raises(RegistryError, match="refused the request"):
        npm_latest(reg, "@private/secret", urllib_transport)
    authed = registry(npm.url, "test", npm.token, bearer=True)
    assert npm_latest(authed, "@private/secret", urllib_transport) == "0.2.0"


# -- the command --------------------------------------------------------------------------------
UV_LOCK = """\
version = 1
revision = 5
requires-python = ">=3.11"

[[package]]
name = "app"
version = "1.0.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "major-pkg" }},
    {{ name = "same-pkg" }},
    {{ name = "tinypkg" }},
]

[[package]]
name = "major-pkg"
version = "1.5.0"
source = {{ registry = "{index}" }}

[[package]]
name = "same-pkg"
version = "5.0.0"
source = {{ registry = "{index}" }}

[[package]]
name = "tinypkg"
version = "1.0.0"
source = {{ registry = "{index}" }}
"""


def _package_lock(pins: dict[str, str]) -> str:
    packages: dict[str, object] = {"": {"name": "web", "version": "1.0.0", "dependencies": pins}}
    packages.update({f"node_modules/{n}": {"version": v} for n, v in pins.items()})
    return json.dumps(
        {"name": "web", "version": "1.0.0", "lockfileVersion": 3, "packages": packages}
    )


def _workspace(project: Project, pypi_url: str) -> None:
    # uv.lock in uv's format (as tests/data/deps/licenses/python/uv.lock, which uv wrote),
    # package-lock.json in npm's lockfileVersion 3 (as .../npm/package-lock.json).
    project.write("uv.lock", UV_LOCK.format(index=pypi_url))
    project.write(
        "web/package-lock.json",
        _package_lock({"plain": "1.4.0", "@acme/tiny": "1.0.0", "@private/secret": "0.2.0"}),
    )
    project.write("web/package.json", '{"name": "web", "version": "1.0.0"}')


def test_deps_outdated_reports_both_ecosystems(
    project: Project, pypi: PypiServer, npm: NpmRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _workspace(project, pypi.simple)
    project.pipeline(
        f"""
        jobs:
          build: {{run: "true"}}
        deps:
          registries:
            pypi: {pypi.simple}
        """
    )
    monkeypatch.setenv("CONVEYOR_NPM_TOKEN", npm.token)
    result = project.run("deps", "outdated", "--registry", npm.url)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["PACKAGE", "CURRENT", "NEWEST", "BEHIND", "WHERE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    # WHERE is the lockfile line of the entry
    where = rows["major-pkg"][3]
    path, line = where.split(":")
    locked = (project.root / path).read_text().splitlines()
    assert locked[int(line) - 1] == "[[package]]"
    assert locked[int(line)] == 'name = "major-pkg"'
    rows = {name: [*row[:3], row[3].rsplit(":", 1)[0]] for name, row in rows.items()}
    assert rows == {
        "major-pkg": ["1.5.0", "3.0.0", "major", "uv.lock"],
        "tinypkg": ["1.0.0", "1.2.0", "minor", "uv.lock"],
        "plain": ["1.4.0", "2.0.0", "major", "web/package-lock.json"],
        "@acme/tiny": ["1.0.0", "1.0.1", "patch", "web/package-lock.json"],
    }
    assert lines[-1] == "4 outdated of 6 checked (2 major, 1 minor, 1 patch)"
    assert f"asking {pypi.simple} (from deps.registries.pypi)" in result.err

    result = project.run("deps", "outdated", "--registry", npm.url, "--fail-on", "major")
    assert result.code == 1
    result = project.run("deps", "outdated", "--registry", npm.url, "--json", "--ecosystem", "npm")
    assert result.code == 0
    data = json.loads(result.out)
    assert data["registries"] == {"pypi": None, "npm": npm.url}
    secret = next(p for p in data["packages"] if p["name"] == "@private/secret")
    assert secret == {
        "name": "@private/secret",
        "ecosystem": "npm",
        "current": "0.2.0",
        "newest": "0.2.0",
        "distance": None,
        "locations": ["web/package-lock.json:1"],  # the test writes it on one line
        "error": None,
    }


def test_deps_outdated_with_no_registry_says_how_to_configure_one(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("PIP_INDEX_URL", "npm_config_registry", "NPM_CONFIG_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    _workspace(project, "http://127.0.0.1:9/simple")
    result = project.run("deps", "outdated")
    assert result.code == 2
    assert "no package registry is configured" in result.err
    assert "give --index-url URL, or set deps.registries.pypi" in result.err
    assert "give --registry URL, or set deps.registries.npm" in result.err
