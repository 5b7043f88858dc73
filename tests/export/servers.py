"""Real Prometheus, node_exporter and Pushgateway servers for the export tests, from
the machine's Debian packages, each on a free loopback port in tmp_path.

A missing binary skips the test, with its name; with CONVEYOR_TESTS_NEED_PROMETHEUS=1
(set in CI, which installs the packages) it fails it instead."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.history.conftest import free_port

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
PROMTOOL = "/usr/bin/promtool"


def need(path: str) -> str:
    """`path` if it is there; else skip (or fail, when the CI says the tools are there)."""
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(os.path.basename(path))
    if found:
        return found
    reason = (
        f"{path} is not installed (the Debian packages prometheus, "
        "prometheus-node-exporter and prometheus-pushgateway)"
    )
    if os.environ.get("CONVEYOR_TESTS_NEED_PROMETHEUS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def server(argv: list[str], ready_url: str, log: Path) -> Iterator[None]:
    """The server `argv` starts, ready (a bounded poll of `ready_url`), stopped after."""
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{argv[0]} exited: {log.read_text()[-2000:]}")
            try:
                if get(ready_url, timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{argv[0]} not ready in 20 s: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A Pushgateway; yields its URL."""
    binary = need(PUSHGATEWAY)
    url = f"http://127.0.0.1:{free_port()}"
    # Its own persistence file: the packaged default is under /var/lib, shared by every
    # run, and a group left there by another test would be pushed against.
    argv = [
        binary,
        f"--web.listen-address={url[len('http://') :]}",
        f"--persistence.file={tmp_path / 'pushgateway.data'}",
    ]
    with server(argv, f"{url}/-/ready", tmp_path / "pushgateway.log"):
        yield url


@contextmanager
def prometheus_scraping_textfiles(tmp_path: Path, directory: Path) -> Iterator[str]:
    """node_exporter with only its textfile collector, reading `directory`, and a
    Prometheus scraping it every second with a default scrape config (a job name, no
    honor_labels); yields Prometheus' URL."""
    exporter, prom = need(NODE_EXPORTER), need(PROMETHEUS)
    node = f"127.0.0.1:{free_port()}"
    url = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: node\n"
        f"    static_configs:\n      - targets: ['{node}']\n"
    )
    with (
        server(
            [
                exporter,
                f"--web.listen-address={node}",
                "--collector.disable-defaults",
                "--collector.textfile",
                f"--collector.textfile.directory={directory}",
            ],
            f"http://{node}/metrics",
            tmp_path / "node_exporter.log",
        ),
        server(
            [
                prom,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address={url[len('http://') :]}",
            ],
            f"{url}/-/ready",
            tmp_path / "prometheus.log",
        ),
    ):
        yield url


def query(url: str, expr: str) -> list[tuple[dict[str, str], float]]:
    """An instant query through the HTTP API: (labels, value) of each series."""
    status, body = get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, f"{expr}: {body}"
    data = json.loads(body)["data"]
    assert data["resultType"] == "vector", expr
    return [(r["metric"], float(r["value"][1])) for r in data["result"]]


def wait_for(url: str, expr: str, timeout: float = 20.0) -> list[tuple[dict[str, str], float]]:
    """The first non-empty result of `expr` (a scrape takes up to a second to land)."""
    deadline = time.monotonic() + timeout
    while True:
        found = query(url, expr)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
