"""The history as Prometheus metrics: printed, written for node_exporter, pushed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from tests.conftest import Project
from tests.export.conftest import metric_families, sample_value
from tests.history.conftest import PIPELINE, free_port


def test_metrics_count_runs_jobs_and_cache_hits(project: Project, tmp_path: Path) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    assert project.run("run").code == 0  # both jobs from the cache
    result = project.run("metrics")
    assert result.code == 0, result.err
    families = metric_families(result.out)
    assert sample_value(families, "conveyor_runs", "conveyor_runs_total", status="success") == 2
    assert (
        sample_value(
            families, "conveyor_cache_requests", "conveyor_cache_requests_total", result="hit"
        )
        == 2
    )
    assert (
        sample_value(
            families, "conveyor_cache_requests", "conveyor_cache_requests_total", result="miss"
        )
        == 2
    )
    assert (
        sample_value(
            families,
            "conveyor_job_duration_seconds",
            "conveyor_job_duration_seconds_count",
            job="build",
        )
        == 1
    ), "only the execution, not the cache hit"
    assert (
        sample_value(families, "conveyor_jobs", "conveyor_jobs_total", job="test", status="success")
        == 2
    )
    textfile = tmp_path / "collector" / "conveyor.prom"
    textfile.parent.mkdir()
    assert project.run("metrics", "--textfile", str(textfile)).code == 0
    assert metric_families(textfile.read_text()).keys() == families.keys()
    cpu = sample_value(
        families, "conveyor_job_cpu_seconds", "conveyor_job_cpu_seconds_total", job="test"
    )
    assert cpu >= 0
    as_json = json.loads(project.run("metrics", "--json").out)
    assert {f["name"] for f in as_json} == set(families)
    [runs] = [f for f in as_json if f["name"] == "conveyor_runs"]
    assert runs["type"] == "counter"
    assert [s["value"] for s in runs["samples"] if s["labels"].get("status") == "success"] == [2]


def test_metrics_pushed_to_a_pushgateway(project: Project) -> None:
    import http.server

    received: list[tuple[str, str, bytes]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        project.pipeline(PIPELINE)
        project.commit()
        assert project.run("run").code == 0
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = project.run("metrics", "--push", url)
        assert result.code == 0, result.err
    finally:
        server.shutdown()
        server.server_close()
    assert [(m, p) for m, p, _ in received] == [("PUT", "/metrics/job/conveyor")]
    families = metric_families(received[0][2].decode())
    assert sample_value(families, "conveyor_runs", "conveyor_runs_total", status="success") == 1
    unreachable = project.run("metrics", "--push", f"http://127.0.0.1:{free_port()}")
    assert unreachable.code == 2
    assert "cannot push the metrics to http://127.0.0.1:" in unreachable.err
