"""A recorded run as a Chrome trace file (OTLP to a collector: test_otlp.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Project


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
