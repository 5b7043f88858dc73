"""The build_output hand-off: every artifact with its digest and version metadata."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import Project
from tests.history.conftest import history


def test_build_output_hands_over_every_artifact_with_its_digest(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from ruamel.yaml import YAML

    project.pipeline(
        """
        name: shop
        jobs:
          build:
            run: mkdir -p dist && echo "app $RANDOM" > dist/shop.tar.gz && echo x > dist/log.txt
            outputs: [dist/]
            artifacts: {paths: ["dist/*.tar.gz"]}
          manifests:
            run: mkdir -p deploy && echo kind=Deployment > deploy/shop.yaml
            outputs: [deploy/]
            artifacts: {paths: [deploy/], type: deployment-manifest}
          docs:
            run: mkdir -p site && echo '<h1>shop</h1>' > site/index.html
            outputs: [site/index.html]
            artifacts: {paths: [site/], type: documentation}
          test:
            needs: [build]
            run: test -s dist/shop.tar.gz && test "$FAIL" != 1
            pass_env: [FAIL]
        """
    )
    project.commit()
    project.git("tag", "v1.4.0")
    monkeypatch.setenv("FAIL", "1")
    assert project.run("run").code == 1
    monkeypatch.delenv("FAIL")
    assert project.run("run").code == 0
    for path in ("dist", "deploy", "site"):
        shutil.rmtree(project.root / path)
    assert project.run("run").code == 0, "the third run restores everything from the cache"

    shown = project.run("show", "--format", "build-output")
    assert shown.code == 0, shown.err
    doc = YAML(typ="safe").load(shown.out)["build_output"]
    as_json = project.run("show", "--format", "build-output", "--json")
    assert json.loads(as_json.out) == {"build_output": doc}, "the same hand-off either way"

    latest = history(project)[0]
    assert doc["pipeline"] == "shop"
    assert doc["pipeline_config"] == "conveyor.yml"
    assert doc["run"]["id"] == latest["id"]
    assert doc["run"]["tag"] == "v1.4.0"
    by_location = {a["location"]: a for a in doc["artifacts"]}
    assert sorted(by_location) == [
        "deploy/shop.yaml",
        "dist/log.txt",
        "dist/shop.tar.gz",
        "site/index.html",
    ]
    for location, artifact in by_location.items():
        data = (project.root / location).read_bytes()  # restored by the cache
        assert artifact["sha256"] == hashlib.sha256(data).hexdigest(), location
        assert artifact["size_bytes"] == len(data)
        expected = {
            "version": "v1.4.0",
            "commit_hash": latest["commit"],
            "build_number": 3,
            "run_id": latest["id"],
        }
        if artifact["type"] != "output":  # stored as the job's artifact version too
            expected["artifact_version"] = f"{artifact['job']}@3"
        assert artifact["metadata"] == expected
    assert by_location["dist/shop.tar.gz"]["type"] == "application"
    assert by_location["dist/log.txt"]["type"] == "output", "an output not among artifacts"
    assert by_location["dist/shop.tar.gz"]["job"] == "build"
    assert doc["deployment_manifests"] == ["deploy/shop.yaml"]
    assert doc["documentation"] == ["site/index.html"]
    metrics = doc["metrics"]
    assert metrics["success_rate"] == "66.7%", "two of the three runs succeeded"
    assert metrics["success_rate_runs"] == 3
    assert metrics["success_rate_target"] == "99%"
    assert metrics["jobs"] == 4
    assert metrics["jobs_cached"] == 4
    assert metrics["build_time_seconds"] == pytest.approx(latest["wall_time"], abs=0.001)

    first = history(project)[-1]["id"]
    early = json.loads(project.run("show", first, "--format", "build-output", "--json").out)
    early_doc = early["build_output"]
    assert early_doc["run"]["status"] == "failed"
    assert early_doc["metrics"]["success_rate"] == "0.0%", "only the runs up to that one count"
    assert {a["metadata"]["build_number"] for a in early_doc["artifacts"]} == {1}
    assert "dist/shop.tar.gz" in {a["location"] for a in early_doc["artifacts"]}, (
        "the build succeeded in the failed run: its artifact was produced"
    )

    assert project.run("run").code == 0, "outputs in place: the hits this workspace recorded"
    again = json.loads(project.run("show", "--format", "build-output", "--json").out)
    assert {
        a["location"]: (a["sha256"], a["type"]) for a in again["build_output"]["artifacts"]
    } == {k: (a["sha256"], a["type"]) for k, a in by_location.items()}
