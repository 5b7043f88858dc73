"""The history as Prometheus metrics: printed, written for node_exporter, pushed."""

from __future__ import annotations

import json
from pathlib import Path

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
            conveyor_job="build",
        )
        == 1
    ), "only the execution, not the cache hit"
    assert (
        sample_value(
            families, "conveyor_jobs", "conveyor_jobs_total", conveyor_job="test", status="success"
        )
        == 2
    )
    textfile = tmp_path / "collector" / "conveyor.prom"
    textfile.parent.mkdir()
    assert project.run("metrics", "--textfile", str(textfile)).code == 0
    assert metric_families(textfile.read_text()).keys() == families.keys()
    cpu = sample_value(
        families, "conveyor_job_cpu_seconds", "conveyor_job_cpu_seconds_total", conveyor_job="test"
    )
    assert cpu >= 0
    as_json = json.loads(project.run("metrics", "--json").out)
    assert {f["name"] for f in as_json} == set(families)
    [runs] = [f for f in as_json if f["name"] == "conveyor_runs"]
    assert runs["type"] == "counter"
    assert [s["value"] for s in runs["samples"] if s["labels"].get("status") == "success"] == [2]


def test_counters_cover_the_whole_history_and_the_window_is_a_gauge(
    project: Project, tmp_path: Path
) -> None:
    import subprocess
    import time

    from tests.export.servers import PROMTOOL, need

    project.pipeline(PIPELINE)
    project.commit()
    for _ in range(3):
        assert project.run("run").code == 0
    time.sleep(1.1)  # the runs are now over a second old
    wide, narrow = project.run("metrics", "--since", "30d"), project.run("metrics", "--since", "1s")
    assert wide.code == narrow.code == 0, narrow.err
    for text in (wide.out, narrow.out):
        families = metric_families(text)
        assert sample_value(families, "conveyor_runs", "conveyor_runs_total") == 3, (
            "a counter never goes down as the window shrinks"
        )
        jobs = sample_value(families, "conveyor_jobs", "conveyor_jobs_total", conveyor_job="test")
        assert jobs == 3
    runs = [metric_families(t)["conveyor_window_runs"].samples[0] for t in (wide.out, narrow.out)]
    assert [(s.labels["window"], s.value) for s in runs] == [("30d", 3), ("1s", 0)]
    checked = subprocess.run(
        [need(PROMTOOL), "check", "metrics"], input=wide.out, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == "", "no lint either"


def test_metrics_pushed_to_a_real_pushgateway_twice_for_two_pipelines(
    project: Project, tmp_path: Path
) -> None:
    import urllib.request

    from tests.export.servers import get, pushgateway

    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    project.pipeline(PIPELINE.replace("name: hist", "name: other"))
    project.commit()
    assert project.run("run").code == 0
    with pushgateway(tmp_path) as url:
        for _ in range(2):  # a second push replaces the first
            pushed = project.run("metrics", "--all-pipelines", "--push", url)
            assert pushed.code == 0, pushed.err
            assert pushed.err == ""
        assert project.run("metrics", "--push", url).code == 0, "one pipeline's group alone"
        status, text = get(f"{url}/metrics")
        assert status == 200
        families = metric_families(text)
        for pipeline in ("hist", "other"):
            assert (
                sample_value(
                    families,
                    "conveyor_jobs",
                    "conveyor_jobs_total",
                    job="conveyor",
                    pipeline=pipeline,
                    conveyor_job="test",
                    status="success",
                )
                == 1
            )
            assert (
                sample_value(
                    families, "conveyor_window_runs", "conveyor_window_runs", pipeline=pipeline
                )
                == 1
            )
        # A gateway that refuses says why: its status and its words, not a guess. (The
        # groups emptied first: the gateway refuses the clash otherwise, not Conveyor.)
        for pipeline in ("hist", "other"):
            empty = urllib.request.Request(
                f"{url}/metrics/job/conveyor/pipeline/{pipeline}", method="DELETE"
            )
            urllib.request.urlopen(empty, timeout=5).close()
        clash = urllib.request.Request(
            f"{url}/metrics/job/someone-else",
            data=b"# TYPE conveyor_runs_total gauge\nconveyor_runs_total 1\n",
            method="PUT",
        )
        urllib.request.urlopen(clash, timeout=5).close()
        refused = project.run("metrics", "--push", url)
    assert refused.code == 2
    assert f"the Pushgateway at {url} refused the metrics of other: HTTP 400" in refused.err
    assert "conveyor_runs_total" in refused.err, "the gateway's own explanation"
    assert "reachable" not in refused.err
    assert "Traceback" not in refused.err
    unreachable = project.run("metrics", "--push", f"http://127.0.0.1:{free_port()}")
    assert unreachable.code == 2
    assert "cannot push the metrics to http://127.0.0.1:" in unreachable.err
    assert "is the Pushgateway reachable at that address?" in unreachable.err
