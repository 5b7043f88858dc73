"""Committed secrets: a real git repository scanned by the real detect-secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.checks.secrets import scan_secrets, secrets_check
from conveyor.model import Finding, GateLevel
from tests.checks.conftest import write
from tests.conftest import Project

AWS_KEY = "AKIAZ7QWERTYUIOP4ABC"
KEY_BODY = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo",
]
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----\n"
)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def commit(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "x")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write(
        root, "config/settings.py", f'import os\n\naws_access_key_id = "{AWS_KEY}"\nDEBUG = False\n'
    )
    write(root, "src/app.py", "def add(a: int, b: int) -> int:\n    return a + b\n")
    commit(root)
    return root


def add_private_key(root: Path) -> None:
    write(root, "deploy/id_rsa", PRIVATE_KEY)
    commit(root)


FILES = ["config/settings.py", "src/app.py", "deploy/id_rsa"]


def assert_no_secret_text(*objects: object) -> None:
    text = repr(objects)
    assert AWS_KEY not in text
    assert not any(line in text for line in KEY_BODY)


def test_scan_finds_the_committed_secrets(repo: Path) -> None:
    from detect_secrets.settings import get_settings

    add_private_key(repo)
    settings_before = get_settings().json()
    findings = scan_secrets(str(repo), FILES)
    assert [(f.rule, f.path, f.line, f.severity) for f in findings] == [
        ("AWS Access Key", "config/settings.py", 3, "high"),
        ("Private Key", "deploy/id_rsa", 1, "critical"),
    ]
    assert all(f.tool == "conveyor-secrets" for f in findings)
    assert findings[0].message == "AWS Access Key committed in config/settings.py"
    assert len({f.fingerprint for f in findings}) == 2
    # detect-secrets' global settings are as they were.
    assert get_settings().json() == settings_before

    check = secrets_check(findings, GateLevel.ERROR)
    assert not check.ok
    assert check.blocking
    assert check.found == (
        "2 secrets: AWS Access Key in config/settings.py:3, Private Key in deploy/id_rsa:1"
    )
    assert "rotate them" in check.hint
    assert_no_secret_text(findings, check)


def test_an_unchanged_file_is_not_scanned_again(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detect_secrets.core.secrets_collection import SecretsCollection

    scanned: list[str] = []
    original = SecretsCollection.scan_file

    def counting(self: SecretsCollection, *names: str) -> None:
        scanned.extend(names)
        original(self, *names)

    monkeypatch.setattr(SecretsCollection, "scan_file", counting)
    cache = str(tmp_path / "cache" / "secrets.json")
    add_private_key(repo)
    first = scan_secrets(str(repo), FILES, cache_file=cache)
    assert sorted(scanned) == sorted(FILES)
    scanned.clear()
    assert scan_secrets(str(repo), FILES, cache_file=cache) == first
    assert scanned == [], "nothing changed: every file's result came from the cache"

    write(repo, "src/app.py", f'TOKEN_ID = "{AWS_KEY}"\n')
    again = scan_secrets(str(repo), FILES, cache_file=cache)
    assert scanned == ["src/app.py"], "only the changed file"
    assert [(f.rule, f.path) for f in again] == [
        ("AWS Access Key", "config/settings.py"),
        ("Private Key", "deploy/id_rsa"),
        ("AWS Access Key", "src/app.py"),
    ]
    assert_no_secret_text(Path(cache).read_text())

    Path(cache).write_text("{not json")
    scanned.clear()
    assert scan_secrets(str(repo), FILES, cache_file=cache) == again, "a broken cache is ignored"
    assert sorted(scanned) == sorted(FILES)


def test_clean_file_has_no_findings(repo: Path) -> None:
    assert scan_secrets(str(repo), ["src/app.py"]) == []
    check = secrets_check([], GateLevel.WARN)
    assert check.ok
    assert check.expected == "no secrets committed"


def test_fingerprint_survives_moving_lines(repo: Path) -> None:
    before = scan_secrets(str(repo), ["config/settings.py"])
    settings = repo / "config/settings.py"
    settings.write_text("# a new first line\n" + settings.read_text())
    after = scan_secrets(str(repo), ["config/settings.py"])
    assert [f.line for f in before] == [3]
    assert [f.line for f in after] == [4]
    assert before[0].fingerprint == after[0].fingerprint


def test_baseline_from_the_real_cli_drops_reviewed_secrets(repo: Path) -> None:
    # Reviewed when only the AWS key was there; the private key came later.
    done = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    (repo / ".secrets.baseline").write_text(done.stdout)
    assert "config/settings.py" in json.loads(done.stdout)["results"]
    add_private_key(repo)

    files = [*FILES, ".secrets.baseline"]
    findings = scan_secrets(str(repo), files, baseline=".secrets.baseline")
    assert [(f.rule, f.path) for f in findings] == [("Private Key", "deploy/id_rsa")]
    absolute = scan_secrets(str(repo), files, baseline=str(repo / ".secrets.baseline"))
    assert absolute == findings


def test_inline_allowlist_pragma(repo: Path) -> None:
    add_private_key(repo)
    settings = repo / "config/settings.py"
    settings.write_text(
        settings.read_text().replace(f'"{AWS_KEY}"', f'"{AWS_KEY}"  # pragma: allowlist secret')
    )
    assert [f.rule for f in scan_secrets(str(repo), FILES)] == ["Private Key"]


@pytest.mark.parametrize("pattern", ["deploy/*", "deploy/", "*/id_rsa"])
def test_exclude_globs(repo: Path, pattern: str) -> None:
    add_private_key(repo)
    findings = scan_secrets(str(repo), FILES, exclude=[pattern])
    assert [f.path for f in findings] == ["config/settings.py"]


def test_large_and_binary_files_are_skipped(repo: Path) -> None:
    (repo / "blob.dat").write_bytes(b"\0\1\2" + f'aws_access_key_id = "{AWS_KEY}"'.encode())
    write(repo, "big.py", "x = 1\n" * 200_000 + f'aws_access_key_id = "{AWS_KEY}"\n')
    assert scan_secrets(str(repo), ["blob.dat"]) == []
    assert scan_secrets(str(repo), ["big.py"]) == []


def test_broken_or_missing_baseline(repo: Path) -> None:
    write(repo, ".secrets.baseline", '{"results": {')
    with pytest.raises(ValueError, match=r"\.secrets\.baseline is not valid JSON"):
        scan_secrets(str(repo), FILES, baseline=".secrets.baseline")
    write(repo, "other.json", '{"version": "1.5.0"}')
    with pytest.raises(ValueError, match="not a detect-secrets baseline"):
        scan_secrets(str(repo), FILES, baseline="other.json")
    with pytest.raises(ValueError, match="does not exist"):
        scan_secrets(str(repo), FILES, baseline="missing.baseline")


# Writes an AWS key (put together at run time: this file is committed and scanned) into
# what the job builds, and into its SARIF report with a SHA-256 fingerprint.
RENDER = f"""
import hashlib, json, os
key = {AWS_KEY[:4]!r} + {AWS_KEY[4:]!r}
os.makedirs("dist", exist_ok=True)
with open("dist/settings.py", "w") as fh:
    fh.write(f'aws_access_key_id = "{{key}}"\\n')
os.makedirs("reports", exist_ok=True)
result = {{
    "ruleId": "leaked-key",
    "level": "note",
    "message": {{"text": f"aws_access_key_id = {{key}}"}},
    "partialFingerprints": {{"primary": hashlib.sha256(key.encode()).hexdigest()}},
}}
run = {{"tool": {{"driver": {{"name": "scanner"}}}}, "results": [result]}}
with open("reports/scan.sarif", "w") as fh:
    json.dump({{"version": "2.1.0", "runs": [run]}}, fh, indent=2)
"""


def test_conveyors_own_files_never_trip_the_secrets_check(project: Project) -> None:
    """A job's declared outputs and reports (what it built) and a findings baseline (the
    SHA-256 fingerprints of known findings) are not scanned; any other file is."""
    project.write("app/render.py", RENDER)
    project.pipeline(
        f"""
        checks:
          secrets: true
        gates:
          findings: {{max: {{high: 0}}, baseline: findings-baseline.json}}
        jobs:
          render:
            dir: app
            run: {json.dumps(f"{sys.executable} render.py")}
            outputs: [dist/]
            reports: {{sarif: reports/scan.sarif}}
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    assert AWS_KEY in (project.root / "app" / "dist" / "settings.py").read_text()
    assert project.run("gates", "--write-baseline").code == 0
    baseline = json.loads((project.root / "findings-baseline.json").read_text())
    assert [e["rule"] for e in baseline["findings"]] == ["leaked-key"]
    # The scanner's message quotes the key: the committed baseline leaves messages out.
    assert AWS_KEY not in (project.root / "findings-baseline.json").read_text()
    # Untracked and not ignored, all three are among the files the check sees...
    again = project.run("run", "--plain")
    assert again.code == 0, again.out
    assert "✔ secrets" in again.out
    # ...and the same key anywhere else is still found.
    project.write("app/notes.py", f'aws_access_key_id = "{AWS_KEY}"\n')
    found = project.run("run", "--plain")
    assert found.code == 1
    assert "✘ secrets 1 secret: AWS Access Key in app/notes.py:1" in " ".join(found.out.split())


def test_secrets_check_lists_the_first_five() -> None:
    findings = [
        Finding("conveyor-secrets", "Secret Keyword", "high", "m", f"f{i}.py", i + 1, str(i))
        for i in range(7)
    ]
    check = secrets_check(findings, GateLevel.WARN)
    assert not check.ok
    assert not check.blocking
    assert check.found.startswith("7 secrets: Secret Keyword in f0.py:1, ")
    assert check.found.endswith("Secret Keyword in f4.py:5, and 2 more")
