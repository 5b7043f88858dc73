"""A remote cache over mutual TLS, as a team's server behind certificates is: BuildGrid
started with a server certificate and asking clients for theirs, all signed by a CA
made here with openssl. The right files work; a missing client certificate or an
untrusted server is one line saying TLS failed."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.cache.interface import StoreUnavailable
from conveyor.cache.remote import RemoteStore
from conveyor.model import Remote
from tests.conftest import Project
from tests.history.conftest import free_port
from tests.reapi import bgd

CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: false
    credentials:
      tls-server-key: {dir}/server.key
      tls-server-cert: {dir}/server.pem
      tls-client-certs: {dir}/ca.pem
authorization:
  method: none
storages:
  - !lru-storage &cas
    size: 64M
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100
    allow-updates: true
instances:
  - name: ""
    services:
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
      - !action-cache
        cache: *ac
thread-pool-size: 20
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "1",
        "-subj", f"/CN={name}", cwd=d,
    )  # fmt: skip


def _signed(d: Path, name: str, ca: str, extensions: str) -> None:
    (d / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext",
        cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(grpcs:// URL, directory of ca.pem, client.pem/.key, other-ca.pem)."""
    command = bgd()
    d = tmp_path_factory.mktemp("tls")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _signed(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _signed(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
    port = free_port()
    (d / "bgd.yml").write_text(CONFIG.format(port=port, dir=d))
    url = f"grpcs://127.0.0.1:{port}"
    with (d / "bgd.log").open("ab") as log:
        proc = subprocess.Popen(
            [command, "server", "start", str(d / "bgd.yml")], stdout=log, stderr=log, cwd=d
        )
    try:
        good = Remote(
            url=url,
            upload=True,
            ca_file=str(d / "ca.pem"),
            client_cert=str(d / "client.pem"),
            client_key=str(d / "client.key"),
            timeout=2,
            retries=0,
        )
        deadline = time.monotonic() + 30
        while True:
            store = RemoteStore(good, {})
            try:
                store.server_capabilities()
                break
            except StoreUnavailable:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((d / "bgd.log").read_text()[-3000:]) from None
                time.sleep(0.3)
            finally:
                store.close()
        yield url, d
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_mutual_tls_with_the_right_files_reads_and_writes(
    tls_server: tuple[str, Path], project: Project
) -> None:
    url, d = tls_server
    remote = Remote(
        url=url,
        upload=True,
        ca_file=str(d / "ca.pem"),
        client_cert=str(d / "client.pem"),
        client_key=str(d / "client.key"),
    )
    store = RemoteStore(remote, {})
    try:
        data = os.urandom(3000)
        assert store.get_bytes(store.put_bytes(data)) == data
    finally:
        store.close()
    # The same from the pipeline file, paths relative to it, through the CLI.
    for name in ("ca.pem", "client.pem", "client.key"):
        project.write(f"certs/{name}", (d / name).read_text())
    project.pipeline(
        f"""
        remote:
          url: {url}
          upload: true
          ca_file: certs/ca.pem
          client_cert: certs/client.pem
          client_key: certs/client.key
        jobs:
          a: {{run: "true"}}
        """
    )
    checked = project.run("remote", "check")
    assert checked.code == 0, checked.out + checked.err
    assert "a blob written and read back" in checked.out


@pytest.mark.parametrize(
    ("client", "ca"),
    [
        (False, "ca.pem"),  # the server asks for a certificate and gets none
        (True, "other-ca.pem"),  # the server's certificate is not one we trust
    ],
)
def test_tls_that_cannot_be_set_up_is_one_line(
    tls_server: tuple[str, Path], client: bool, ca: str
) -> None:
    url, d = tls_server
    remote = Remote(
        url=url,
        upload=True,
        ca_file=str(d / ca),
        client_cert=str(d / "client.pem") if client else None,
        client_key=str(d / "client.key") if client else None,
        timeout=3,
        retries=0,
    )
    store = RemoteStore(remote, {})
    try:
        with pytest.raises(StoreUnavailable) as err:
            store.get_bytes(store.put_bytes(b"x" * 100))
    finally:
        store.close()
    assert err.value.reason == "TLS handshake failed", err.value
    if not client:
        assert "does it ask for a client certificate?" in str(err.value)
    assert "\n" not in str(err.value)
