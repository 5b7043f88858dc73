"""A run killed (SIGKILL) while it copies a large artifact into the store leaves no half
version in the index and no half blob: only a temporary, which the next run removes
before it stores the version whole."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.conftest import Project


def test_sigkill_mid_collect_leaves_no_partial_version(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          big:
            run: truncate -s 256M big.bin && echo small > small.txt
            artifacts: {paths: [big.bin, small.txt], name: big, version: "1.0.0"}
        """
    )
    project.commit()
    store = project.root / ".conveyor" / "artifacts"
    tmp = store / "tmp"
    proc = project.spawn("run", "--plain")
    try:
        deadline = time.monotonic() + 60
        partial: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            partial = (
                [p for p in tmp.glob("*.part") if p.stat().st_size > 0] if tmp.is_dir() else []
            )
            if partial:
                break
            time.sleep(0.002)
        assert partial, "the run was seen copying the large file into the store"
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None and not partial:
            proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not list((store / "index").rglob("*.json")) if (store / "index").exists() else True
    blobs = store / "blobs" / "sha256"
    whole = [p for p in blobs.rglob("*") if p.is_file() and p.stat().st_size == 256 << 20]
    assert not whole, "no blob of the large file: it was being copied"
    assert list(tmp.glob("*.part")), "SIGKILL leaves the temporary (nothing else)"

    done = project.run("run", "--plain")
    assert done.code == 0, done.out + done.err
    assert "conveyor: artifact big@1.0.0 stored: 2 files" in done.out
    assert list(tmp.iterdir()) == [], "the next run removed the killed run's temporary"
    assert not [p for p in blobs.rglob("*") if p.is_file() and len(p.name) != 64]
    (record,) = (store / "index" / "big").glob("*.json")
    files = {f["path"]: f for f in json.loads(record.read_text())["files"]}
    assert files["big.bin"]["size"] == 256 << 20
    verified = project.run("artifacts", "verify", "big@1.0.0")
    assert verified.code == 0, verified.out
