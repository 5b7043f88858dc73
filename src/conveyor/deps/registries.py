"""The package registries `deps outdated` asks for the newest versions: which one the
user configured, and the HTTP that asks it.

There is no default registry: a PyPI-compatible index comes from `--index-url`,
`deps.registries.pypi`, `PIP_INDEX_URL` or pip's configuration files (`index-url`); an
npm-compatible registry from `--registry`, `deps.registries.npm`, `npm_config_registry`
or an `.npmrc` (`registry=`). Credentials come from the URL's userinfo (user and
token before the host), a token variable (CONVEYOR_PYPI_TOKEN,
CONVEYOR_NPM_TOKEN), or for npm the `.npmrc` `//host/:_authToken=`; they go in an
Authorization header and are never shown (a registry is shown without its userinfo).

A PyPI-compatible index is read through its simple API: PEP 691's JSON when the server
offers it, else PEP 503's HTML page (one request; the server picks by the Accept
header); given a base URL rather than a simple index (not ending in /simple), the JSON
API there (`<url>/pypi/<name>/json`) is asked first. An npm registry is read through
the package's packument (`dist-tags.latest`).

HTTP goes through a `Transport` (urllib by default), which tests may replace.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

from conveyor.errors import UserError
from conveyor.urls import without_userinfo

DEFAULT_TIMEOUT = 10.0
"""Seconds one request may take."""


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


Transport = Callable[[str, Mapping[str, str], float], Response]
"""GET `url` with `headers` within `timeout` seconds: the response, whatever its status;
raises OSError when no response came (refused, timed out, name unknown)."""


def urllib_transport(url: str, headers: Mapping[str, str], timeout: float) -> Response:
    """The standard library's HTTP client (redirects followed)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Response(reply.status, reply.headers.get("Content-Type", ""), reply.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.headers.get("Content-Type", ""), exc.read())
    except urllib.error.URLError as exc:
        reason = exc.reason
        raise OSError(reason if isinstance(reason, str) else str(reason)) from None


class RegistryError(Exception):
    """One package's question could not be answered: one line saying why."""


@dataclass(frozen=True)
class Registry:
    """A registry as configured: its URL without credentials (what is shown), the
    headers that carry them, and where the setting came from."""

    url: str
    origin: str
    """'--index-url', 'deps.registries.pypi', 'PIP_INDEX_URL', '/etc/pip.conf', ..."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def get(self, url: str, accept: str, transport: Transport, timeout: float) -> Response:
        """GET `url` of this registry; a refused connection or a timeout raises
        RegistryError saying which registry."""
        try:
            return transport(url, {**self.headers, "Accept": accept}, timeout)
        except TimeoutError:
            raise RegistryError(f"{self.url} did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise RegistryError(f"{self.url} could not be reached: {exc}") from None


def registry(url: str, origin: str, token: str | None = None, *, bearer: bool) -> Registry:
    """A registry from a configured URL: userinfo in it becomes Basic credentials; a
    token (when no userinfo) a Bearer token (npm) or Basic `__token__` (PyPI's
    convention for API tokens)."""
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise UserError(
            f"{origin}: {without_userinfo(url)!r} is not an http(s) URL of a registry",
            hint="e.g. https://packages.example.com/simple",
        )
    headers: dict[str, str] = {}
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = _basic(user, password)
    elif token:
        headers["Authorization"] = f"Bearer {token}" if bearer else _basic("__token__", token)
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is not None:
        netloc += f":{port}"
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return Registry(url=clean.rstrip("/") + "/", origin=origin, headers=headers)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- which registry --------------------------------------------------------------------------
PYPI_HOW = (
    "give --index-url URL, or set deps.registries.pypi in conveyor.yml, PIP_INDEX_URL, "
    "or index-url in pip.conf (a PyPI-compatible index's simple API: .../simple)"
)
NPM_HOW = (
    "give --registry URL, or set deps.registries.npm in conveyor.yml, "
    "npm_config_registry, or registry= in .npmrc (an npm-compatible registry)"
)


def pypi_index(
    option: str | None,
    configured: str | None,
    environ: Mapping[str, str],
    *,
    home: str | None = None,
    system_dirs: tuple[str, ...] = ("/etc/xdg", "/etc"),
) -> Registry | None:
    """The PyPI-compatible index the user configured, first found of: the option, the
    pipeline's `deps.registries.pypi`, PIP_INDEX_URL, pip's configuration files (as pip
    reads them: PIP_CONFIG_FILE, the user's, the machine's; PIP_CONFIG_FILE set to
    /dev/null reads none). None when there is none."""
    token = environ.get("CONVEYOR_PYPI_TOKEN") or None
    for value, origin in (
        (option, "--index-url"),
        (configured, "deps.registries.pypi"),
        (environ.get("PIP_INDEX_URL"), "PIP_INDEX_URL"),
    ):
        if value:
            return registry(value, origin, token, bearer=False)
    for path in _pip_config_files(environ, home, system_dirs):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        for section in ("global", "install", "download"):
            if parser.has_option(section, "index-url"):
                value = parser.get(section, "index-url").strip()
                if value:
                    return registry(value, path, token, bearer=False)
    return None


def _pip_config_files(
    environ: Mapping[str, str], home: str | None, system_dirs: tuple[str, ...]
) -> list[str]:
    """pip's configuration files, the one that takes precedence first."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    home = home if home is not None else os.path.expanduser("~")
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files = [named] if named else []
    files += [os.path.join(xdg, "pip", "pip.conf"), os.path.join(home, ".pip", "pip.conf")]
    files += [os.path.join(d, "pip", "pip.conf") for d in system_dirs if d.endswith("xdg")]
    files += [os.path.join(d, "pip.conf") for d in system_dirs if not d.endswith("xdg")]
    return [f for f in files if os.path.isfile(f)]


def npm_registry(
    option: str | None,
    configured: str | None,
    environ: Mapping[str, str],
    *,
    root: str,
    projects: Sequence[str] = (),
    home: str | None = None,
) -> Registry | None:
    """The npm-compatible registry the user configured, first found of: the option,
    `deps.registries.npm`, npm_config_registry, a project's `.npmrc` (in `projects`,
    the workspace-relative directories of the npm lockfiles, then at the root), the
    user's (NPM_CONFIG_USERCONFIG, else ~/.npmrc). None when there is none."""
    home = home if home is not None else os.path.expanduser("~")
    rcs = [os.path.join(root, d, ".npmrc") for d in (*projects, ".")]
    rcs = list(dict.fromkeys(os.path.normpath(p) for p in rcs))
    user = _env(environ, "npm_config_userconfig") or os.path.join(home, ".npmrc")
    rcs.append(user)
    settings = [(p, _npmrc(p, environ)) for p in rcs]
    chosen: tuple[str, str] | None = None
    for value, origin in (
        (option, "--registry"),
        (configured, "deps.registries.npm"),
        (_env(environ, "npm_config_registry"), "npm_config_registry"),
    ):
        if value:
            chosen = (value, origin)
            break
    if chosen is None:
        chosen = next(((s["registry"], p) for p, s in settings if s.get("registry")), None)
    if chosen is None:
        return None
    value, origin = chosen
    token = environ.get("CONVEYOR_NPM_TOKEN") or _npm_token(value, [s for _p, s in settings])
    return registry(value, origin, token, bearer=True)


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """An npm setting from the environment, in any case (npm reads them so)."""
    return next((v for k, v in environ.items() if k.lower() == name and v), None)


def _npmrc(path: str, environ: Mapping[str, str]) -> dict[str, str]:
    """An .npmrc's `key=value` lines, ${VAR} expanded as npm does."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    out: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = re.sub(r"\$\{([^}]+)\}", lambda m: environ.get(m.group(1), ""), value.strip())
        out[key.strip()] = value.strip().strip('"')
    return out


def _npm_token(url: str, settings: list[dict[str, str]]) -> str | None:
    """The `//host/path/:_authToken` an .npmrc gives for this registry (the longest
    path that prefixes the registry's)."""
    parts = urllib.parse.urlsplit(url)
    target = f"//{parts.netloc.rsplit('@', 1)[-1]}{parts.path.rstrip('/')}/"
    best: tuple[int, str] | None = None
    for found in settings:
        for key, value in found.items():
            if not key.endswith(":_authToken") or not value:
                continue
            prefix = key[: -len(":_authToken")]
            prefix = prefix if prefix.endswith("/") else prefix + "/"
            if target.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), value)
    return best[1] if best else None


# -- asking --------------------------------------------------------------------------------
SIMPLE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.1"
)
NPM_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"


@dataclass(frozen=True)
class Release:
    """A version an index offers, and whether every file of it is yanked (PEP 592)."""

    version: str
    yanked: bool


def pypi_releases(
    index: Registry, name: str, transport: Transport, timeout: float = DEFAULT_TIMEOUT
) -> list[Release]:
    """The versions a PyPI-compatible index offers for `name`, from its simple API
    page (PEP 691 JSON or PEP 503 HTML); RegistryError when it has none to give."""
    from conveyor.deps.ecosystems.pypi import normalise

    project = normalise(name)
    if not index.url.rstrip("/").endswith("/simple"):
        offered = _json_api(index, project, transport, timeout)
        if offered is not None:
            return offered
    url = urllib.parse.urljoin(index.url, urllib.parse.quote(project) + "/")
    reply = index.get(url, SIMPLE_ACCEPT, transport, timeout)
    if reply.status == 404:
        raise RegistryError(f"not on the index {index.url}")
    if reply.status in (401, 403):
        raise RegistryError(
            f"{index.url} refused the request (HTTP {reply.status}): check the credentials"
        )
    if reply.status != 200:
        raise RegistryError(f"{index.url} answered HTTP {reply.status}")
    kind = reply.content_type.split(";")[0].strip().lower()
    if kind.endswith("+json") or kind == "application/json":
        files = _json_files(reply.body)
    else:
        files = _html_files(reply.body)
    versions: dict[str, bool] = {}
    for filename, yanked in files:
        version = _version_of(filename, project)
        if version is not None:
            versions[version] = versions.get(version, True) and yanked
    return [Release(v, y) for v, y in versions.items()]


def _json_api(
    index: Registry, project: str, transport: Transport, timeout: float
) -> list[Release] | None:
    """The releases `<index>/pypi/<project>/json` lists (the JSON API an index may
    offer beside its simple API, at its base URL); None when it offers none, and the
    simple API is asked instead."""
    url = urllib.parse.urljoin(index.url, f"pypi/{urllib.parse.quote(project)}/json")
    reply = index.get(url, "application/json", transport, timeout)
    if reply.status != 200:
        return None
    try:
        data = json.loads(reply.body)
    except ValueError:
        return None
    releases = data.get("releases") if isinstance(data, dict) else None
    if not isinstance(releases, dict):
        return None
    out = []
    for version, files in releases.items():
        if not isinstance(files, list) or not files:
            continue  # a release without files cannot be installed
        yanked = all(isinstance(f, dict) and f.get("yanked") is True for f in files)
        out.append(Release(str(version), yanked))
    return out


def _json_files(body: bytes) -> list[tuple[str, bool]]:
    try:
        data = json.loads(body)
    except ValueError:
        raise RegistryError("the index's JSON page does not parse") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise RegistryError('the index\'s JSON page has no "files" list (PEP 691)')
    out = []
    for f in files:
        if isinstance(f, dict) and isinstance(f.get("filename"), str):
            out.append((f["filename"], bool(f.get("yanked", False))))
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, bool]] = []
        self._open: tuple[str, bool] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            found = dict(attrs)
            href = found.get("href") or ""
            path = urllib.parse.urlsplit(href).path
            self._open = (urllib.parse.unquote(path.rsplit("/", 1)[-1]), "data-yanked" in found)
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            href_name, yanked = self._open
            self.files.append((self._text.strip() or href_name, yanked))
            self._open = None


def _html_files(body: bytes) -> list[tuple[str, bool]]:
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    return parser.files


def _version_of(filename: str, project: str) -> str | None:
    """The version a distribution's file name carries, when it is `project`'s wheel or
    sdist (other files, and other projects' files, are not counted)."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return str(version) if name == project else None


def npm_latest(
    registry: Registry, name: str, transport: Transport, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """The version an npm-compatible registry tags `latest` for `name`."""
    encoded = urllib.parse.quote(name, safe="@")  # '@scope/name' -> '@scope%2Fname'
    reply = registry.get(registry.url + encoded, NPM_ACCEPT, transport, timeout)
    if reply.status == 404:
        raise RegistryError(f"not on the registry {registry.url}")
    if reply.status in (401, 403):
        raise RegistryError(
            f"{registry.url} refused the request (HTTP {reply.status}): check the token"
        )
    if reply.status != 200:
        raise RegistryError(f"{registry.url} answered HTTP {reply.status}")
    try:
        data = json.loads(reply.body)
    except ValueError:
        raise RegistryError("the registry's answer is not JSON") from None
    tags = data.get("dist-tags") if isinstance(data, dict) else None
    latest = tags.get("latest") if isinstance(tags, dict) else None
    if not isinstance(latest, str):
        raise RegistryError("the registry tags no version `latest`")
    return latest
