"""`conveyor artifacts publish NAME@VERSION --to pypi+http://…/` from the command line:
a run stores a real wheel (built by hatchling, offline), the CLI publishes it to
pypiserver on 127.0.0.1, and pip installs it back from the index and imports it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import Project
from tests.deps.registries import build_wheel, pypiserver


def test_cli_publishes_a_stored_wheel_that_pip_installs_and_imports(
    project: Project, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "build", "clidemo", "2.3.0")
    project.pipeline(
        f"""
        name: cli
        jobs:
          build:
            run:
              - mkdir -p dist && cp {wheel} dist/
            artifacts:
              paths: [dist/]
              name: clidemo
              version: "2.3.0"
        """
    )
    project.commit()
    ran = project.run("run", "--plain")
    assert ran.code == 0, ran.out + ran.err

    with pypiserver(tmp_path / "pypi") as index:
        published = project.run(
            "artifacts", "publish", "clidemo@2.3.0", "--to", f"pypi+{index.root}", "--json"
        )
        assert published.code == 0, published.out + published.err
        (result,) = json.loads(published.out)["targets"]
        assert result["ok"] is True
        assert result["verified"] is True
        assert result["bytes"] == wheel.stat().st_size

        out = tmp_path / "installed"
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                "--disable-pip-version-check", "--no-cache-dir",
                "--index-url", index.simple, "--target", str(out), "clidemo==2.3.0",
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    imported = subprocess.run(
        [sys.executable, "-c", "import clidemo; print(clidemo.VERSION)"],
        env={"PYTHONPATH": str(out)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "2.3.0"

    shown = project.run("artifacts", "show", "clidemo@2.3.0", "--json")
    assert shown.code == 0, shown.out + shown.err
    assert any(index.root in json.dumps(p) for p in json.loads(shown.out)["published"])
