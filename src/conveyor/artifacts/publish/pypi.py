"""The PyPI target (`pypi+https://upload.example/legacy/`, `pypi+http://127.0.0.1:PORT/`):
the wheels and sdists among a version's files, uploaded to a PyPI-compatible index with
the legacy upload API twine uses (a multipart POST: `:action=file_upload`, the
distribution's metadata from its METADATA/PKG-INFO, `sha256_digest`, `content`).

A small client over urllib rather than twine: twine brings keyring, readme_renderer and
requests, and its keyring lookup may prompt or reach a desktop keychain. Credentials
come only from CONVEYOR_PYPI_USERNAME/CONVEYOR_PYPI_PASSWORD, else TWINE_USERNAME/
TWINE_PASSWORD (a token with username `__token__`); they go in an Authorization header
and are never shown.

Verification: the index's simple page for the project (PEP 691 JSON when offered, else
PEP 503 HTML) must list each file, and the file downloaded from it must hash to the
SHA-256 that was uploaded. The simple index is the upload URL with its last `legacy/`
replaced by `simple/` (or `simple/` added), or the `simple=` given.

An index keeps what it accepted and cannot be asked to remove it (PyPI cannot at all),
so "nothing half-published" is approached from the other side: every file is checked
against the index before anything is sent (a name the index holds with other bytes is
refused before the first upload), a file already there with the same SHA-256 is a no-op,
and a retry uploads only what is missing. A publish that fails for good after uploading
some files says which.
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import io
import json
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from conveyor.artifacts.publish.interface import (
    PublishedFile,
    PublishError,
    PublishFile,
    PublishReceipt,
    PublishRefused,
    check_names,
    sha256_stream,
)
from conveyor.urls import without_userinfo

TIMEOUT = 60.0


@dataclass(frozen=True)
class _Reply:
    status: int
    content_type: str
    body: bytes


class PypiTarget:
    """Publishes distributions to a PyPI-compatible index."""

    kind = "pypi"

    def __init__(
        self,
        upload_url: str,
        *,
        simple_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        import os

        env = os.environ if environ is None else environ
        parts = urllib.parse.urlsplit(upload_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PublishRefused(
                f"{without_userinfo(upload_url)!r} is not an http(s) URL of an index"
            )
        self.upload_url = without_userinfo(upload_url)
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        if simple_url is None:
            simple_path = path[: -len("legacy/")] if path.endswith("/legacy/") else path
            simple_url = urllib.parse.urlunsplit(
                (parts.scheme, parts.netloc, simple_path + "simple/", "", "")
            )
        self.simple_url = without_userinfo(simple_url).rstrip("/") + "/"
        user = env.get("CONVEYOR_PYPI_USERNAME") or env.get("TWINE_USERNAME")
        password = env.get("CONVEYOR_PYPI_PASSWORD") or env.get("TWINE_PASSWORD")
        if parts.username is not None:  # credentials in the URL: used, never shown
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
        self._headers: dict[str, str] = {}
        if password:
            token = base64.b64encode(f"{user or '__token__'}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self.timeout = timeout

    def describe(self) -> str:
        return f"pypi+{self.upload_url}"

    def publish(self, version_ref: str, files: Sequence[PublishFile]) -> PublishReceipt:
        start = time.perf_counter()
        check_names(files)
        dists = [f for f in files if _dist_kind(f.name) is not None]
        if not dists:
            raise PublishRefused(f"{version_ref} has no wheel or sdist to upload")
        # Everything checked before anything is sent.
        listed: dict[str, dict[str, str]] = {}
        present: set[str] = set()
        for f in dists:
            name = _basename(f.name)
            project = _project_of(name)
            if project not in listed:
                listed[project] = self._listing(project)
            there = listed[project].get(name)
            if there is None:
                continue
            digest = _fragment(there) or self._download_digest(there)
            if digest != f.sha256:
                raise PublishRefused(
                    f"{name} is already on {self.simple_url} with other bytes "
                    f"(sha256 {digest[:12]}…): an index never replaces a file",
                    hint="publish a new version",
                )
            present.add(name)
        sent = 0
        done: list[str] = []
        for f in dists:
            if _basename(f.name) in present:
                continue
            try:
                sent += self._upload(f)
            except PublishError as exc:
                if done:
                    exc.message += f" (uploaded before the failure: {', '.join(done)})"
                raise
            done.append(_basename(f.name))
        verify_start = time.perf_counter()
        published = tuple(self._verify(f) for f in dists)
        verify = time.perf_counter() - verify_start
        return PublishReceipt(
            target=self.describe(),
            kind=self.kind,
            version_ref=version_ref,
            files=published,
            bytes=sent,
            seconds=time.perf_counter() - start,
            verify_seconds=verify,
            already=not done,
        )

    # -- the index ---------------------------------------------------------------------
    def _listing(self, project: str) -> dict[str, str]:
        """The project's files on the index: file name -> URL (with `#sha256=` when the
        index gives it); empty when the index has no such project."""
        url = self.simple_url + project + "/"
        reply = self._request(url, accept="application/vnd.pypi.simple.v1+json, text/html;q=0.1")
        if reply.status == 404:
            return {}
        if reply.status != 200:
            raise PublishError(f"{url} answered {reply.status}", retry=reply.status >= 500)
        if "json" in reply.content_type:
            data = json.loads(reply.body)
            return {
                e["filename"]: urllib.parse.urljoin(url, e["url"].split("#")[0])
                + (f"#sha256={e['hashes']['sha256']}" if "sha256" in e.get("hashes", {}) else "")
                for e in data.get("files", ())
            }
        links = _Links()
        links.feed(reply.body.decode("utf-8", "replace"))
        return {
            urllib.parse.unquote(urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1]): (
                urllib.parse.urljoin(url, href)
            )
            for href in links.hrefs
        }

    def _upload(self, f: PublishFile) -> int:
        name = _basename(f.name)
        with open(f.local_path, "rb") as fh:
            content = fh.read()
        got = hashlib.sha256(content).hexdigest()
        if got != f.sha256:
            raise PublishError(
                f"{name}: the local file {f.local_path} is not the bytes to publish "
                f"(sha256 {got[:12]}…, expected {f.sha256[:12]}…)",
                retry=False,
            )
        fields = _metadata(name, content)
        fields.update(
            {
                ":action": ["file_upload"],
                "protocol_version": ["1"],
                "sha256_digest": [f.sha256],
                "md5_digest": [hashlib.md5(content, usedforsecurity=False).hexdigest()],
            }
        )
        boundary = uuid.uuid4().hex
        body = io.BytesIO()
        for key, values in fields.items():
            for value in values:
                body.write(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
                    + value.encode()
                    + b"\r\n"
                )
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        body.write(content + f"\r\n--{boundary}--\r\n".encode())
        reply = self._request(
            self.upload_url,
            data=body.getvalue(),
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        if 200 <= reply.status < 300:
            return len(content)
        text = reply.body.decode("utf-8", "replace")
        if reply.status in (400, 409) and "exist" in text.lower():
            # Someone uploaded it meanwhile: the same bytes are a no-op.
            there = self._listing(_project_of(name)).get(name, "")
            if _fragment(there) == f.sha256 or (
                there and not _fragment(there) and self._download_digest(there) == f.sha256
            ):
                return 0
            raise PublishRefused(f"{name} is already on the index with other bytes")
        if reply.status in (401, 403):
            raise PublishRefused(
                f"uploading {name}: {reply.status} {_first_line(text) or 'forbidden'}",
                hint="set CONVEYOR_PYPI_USERNAME and CONVEYOR_PYPI_PASSWORD (or TWINE_USERNAME "
                "and TWINE_PASSWORD) to an account that may upload",
            )
        raise PublishError(
            f"uploading {name}: {reply.status} {_first_line(text)}",
            retry=reply.status >= 500 or reply.status in (408, 429),
        )

    def _verify(self, f: PublishFile) -> PublishedFile:
        name = _basename(f.name)
        url = self._listing(_project_of(name)).get(name)
        if url is None:
            raise PublishError(f"{name} is not listed on {self.simple_url} after its upload")
        got = self._download_digest(url)
        fragment = _fragment(url)
        if got != f.sha256 or fragment not in ("", f.sha256):
            raise PublishError(
                f"{name}: downloaded back as sha256 {got[:12]}… (listed {fragment[:12] or '-'}); "
                f"uploaded {f.sha256[:12]}…"
            )
        return PublishedFile(f.name, url.split("#")[0], got, f.size)

    def _download_digest(self, url: str) -> str:
        request = urllib.request.Request(url.split("#")[0], headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return sha256_stream(reply)[0]
        except urllib.error.HTTPError as exc:
            raise PublishError(f"downloading {url.split('#')[0]}: {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PublishError(f"{self.simple_url} could not be reached: {_reason(exc)}") from None

    def _request(
        self,
        url: str,
        *,
        accept: str = "*/*",
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> _Reply:
        headers = {**self._headers, "Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return _Reply(reply.status, reply.headers.get("Content-Type", ""), reply.read())
        except urllib.error.HTTPError as exc:
            return _Reply(exc.code, exc.headers.get("Content-Type", ""), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            where = urllib.parse.urlsplit(url)
            raise PublishError(
                f"{where.scheme}://{where.hostname}:{where.port or ''} could not be reached: "
                f"{_reason(exc)}"
            ) from None


# -- distributions ------------------------------------------------------------------------
def _basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _dist_kind(name: str) -> str | None:
    base = _basename(name)
    if base.endswith(".whl"):
        return "bdist_wheel"
    if base.endswith((".tar.gz", ".zip")) and "-" in base:
        return "sdist"
    return None


def _project_of(filename: str) -> str:
    """The normalized project name (PEP 503) a distribution's file name carries."""
    from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            return str(canonicalize_name(parse_wheel_filename(filename)[0]))
        return str(canonicalize_name(parse_sdist_filename(filename)[0]))
    except ValueError as exc:
        raise PublishRefused(f"{filename}: not a distribution's file name: {exc}") from None


def _metadata(filename: str, content: bytes) -> dict[str, list[str]]:
    """The form fields twine sends, from the distribution's own METADATA (a wheel) or
    PKG-INFO (an sdist): an index checks them against the file."""
    raw = _metadata_file(filename, content)
    message = email.parser.BytesParser().parsebytes(raw)
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key.lower().replace("-", "_"), []).append(str(value))
    if message.get_payload():
        fields["description"] = [str(message.get_payload())]
    renamed = {"classifier": "classifiers", "project_url": "project_urls"}
    fields = {renamed.get(k, k): v for k, v in fields.items()}
    kind = _dist_kind(filename) or "sdist"
    fields["filetype"] = [kind]
    fields["pyversion"] = [filename.split("-")[-3] if kind == "bdist_wheel" else "source"]
    if "name" not in fields or "version" not in fields:
        raise PublishRefused(f"{filename}: its metadata has no Name or Version")
    return fields


def _metadata_file(filename: str, content: bytes) -> bytes:
    try:
        if filename.endswith((".whl", ".zip")):
            with zipfile.ZipFile(io.BytesIO(content)) as zf:
                wanted = ("/METADATA",) if filename.endswith(".whl") else ("/PKG-INFO",)
                for member in zf.namelist():
                    if member.endswith(wanted) and member.count("/") == 1:
                        return zf.read(member)
        else:
            with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tf:
                for tar_member in tf.getmembers():
                    if tar_member.name.endswith("/PKG-INFO") and tar_member.name.count("/") == 1:
                        extracted = tf.extractfile(tar_member)
                        if extracted is not None:
                            return extracted.read()
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise PublishRefused(f"{filename}: not a readable distribution: {exc}") from None
    raise PublishRefused(f"{filename}: no METADATA or PKG-INFO inside")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _fragment(url: str) -> str:
    """The SHA-256 an index states in a link's `#sha256=` fragment ('' when none)."""
    fragment = urllib.parse.urlsplit(url).fragment
    return fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else ""
