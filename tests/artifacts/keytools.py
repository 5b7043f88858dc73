"""What the signing and provenance tests share: openssl run as a real process (the
judge of compatibility, a tool we did not write), the CLI run in-process, and a key
pair made by `conveyor artifacts keygen`."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.cli import run_cli

PASSWORD = "correct horse battery staple"


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def conveyor(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """`conveyor ARGS` in-process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def openssl(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """openssl ARGS; `password` reaches it as the variable OPENSSL_PASS (-passin env:)."""
    env = dict(os.environ)
    if password is not None:
        env["OPENSSL_PASS"] = password
    return subprocess.run(
        ["openssl", *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def keygen(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, prefix: Path
) -> tuple[Path, Path]:
    """A key pair made by `conveyor artifacts keygen --out PREFIX` with PASSWORD."""
    monkeypatch.setenv("CONVEYOR_SIGNING_PASSWORD", PASSWORD)
    result = conveyor(capsys, "artifacts", "keygen", "--out", str(prefix))
    assert result.code == 0, result.err
    return Path(f"{prefix}.key"), Path(f"{prefix}.pub")
