"""A recorded run as a trace: a Chrome trace file, and OTLP sent to a collector."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from tests.conftest import Project
from tests.history.conftest import PIPELINE, free_port


def test_chrome_trace_has_a_span_per_job_on_separate_rows_when_parallel(
    project: Project, tmp_path: Path
) -> None:
    project.pipeline(
        """
        name: tr
        jobs:
          a: {run: sleep 0.3}
          b: {run: sleep 0.3}
          c: {run: 'true', needs: [a, b]}
        """
    )
    project.commit()
    assert project.run("run", "--jobs", "2").code == 0
    out = tmp_path / "trace.json"
    said = project.run("trace", "--chrome", str(out), "--json")
    assert said.code == 0
    assert json.loads(said.out)["spans"] == 4
    events = json.loads(out.read_text())["traceEvents"]
    spans = {e["name"]: e for e in events if e["ph"] == "X" and e["cat"] != "run"}
    assert set(spans) == {"a", "b", "c"}
    assert spans["a"]["tid"] != spans["b"]["tid"], "a and b ran at once: two rows"
    assert spans["a"]["dur"] >= 250_000  # microseconds
    assert spans["c"]["ts"] >= spans["a"]["ts"] + spans["a"]["dur"]
    assert spans["c"]["args"]["status"] == "success"
    [run] = [e for e in events if e.get("cat") == "run"]
    assert run["dur"] >= spans["c"]["ts"] + spans["c"]["dur"] - 1000


def test_otlp_trace_sent_to_a_collector(project: Project) -> None:
    import http.server

    received: list[tuple[str, str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        project.pipeline(PIPELINE.replace("echo testing", "exit 2"))
        project.commit()
        assert project.run("run").code == 1
        port = server.server_address[1]
        result = project.run("trace", "--otlp", f"http://127.0.0.1:{port}")
        assert result.code == 0, result.err
    finally:
        server.shutdown()
        server.server_close()
    [(path, ctype, body)] = received
    assert (path, ctype) == ("/v1/traces", "application/json")
    spans = json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    root = spans[0]
    assert len(root["traceId"]) == 32
    assert len(root["spanId"]) == 16
    assert root["status"]["code"] == 2  # the run failed
    by_name = {s["name"]: s for s in spans[1:]}
    assert set(by_name) == {"build", "test"}
    assert all(s["parentSpanId"] == root["spanId"] for s in by_name.values())
    assert all(s["traceId"] == root["traceId"] for s in by_name.values())
    assert by_name["test"]["status"]["code"] == 2
    assert int(by_name["build"]["endTimeUnixNano"]) > int(by_name["build"]["startTimeUnixNano"])
    attrs = {a["key"]: a["value"] for a in by_name["test"]["attributes"]}
    assert attrs["conveyor.exit_code"] == {"intValue": "2"}
    assert project.run("trace").code == 2, "no destination is a usage error"
    gone = project.run("trace", "--otlp", f"http://127.0.0.1:{free_port()}")
    assert gone.code == 2
    assert "cannot send the trace to" in gone.err
