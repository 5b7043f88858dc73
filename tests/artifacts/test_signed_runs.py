"""Real `conveyor run`s that sign what they store (CONVEYOR_SIGNING_KEY from `conveyor
artifacts keygen`): signatures openssl accepts, provenance that verifies and names the
job's inputs and upstream artifacts, `artifacts verify --key` that names a tampered
byte or another key, and a bad password that stops the run before any job."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.artifacts import provenance
from conveyor.artifacts.signing import key_id, load_public_key
from tests.artifacts.keytools import keygen, openssl
from tests.conftest import Project

PIPELINE = """
    name: shop
    jobs:
      build:
        run:
          - mkdir -p dist && echo wheel > dist/shop-1.0-py3-none-any.whl
        artifacts:
          paths: [dist/]
          name: shop
          version: "1.0.{{ run_number }}"
      docs:
        needs: [build]
        run:
          - mkdir -p site && echo page > site/index.html
        artifacts:
          paths: [site/]
          name: docs
          version: "2.0"
"""


def _show(project: Project, ref: str) -> dict[str, Any]:
    shown = project.run("artifacts", "show", ref, "--json")
    assert shown.code == 0, shown.err
    return dict(json.loads(shown.out))


@pytest.fixture
def signed(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> tuple[Project, Path, Path]:
    """A project whose run signed with a fresh key: (project, private, public)."""
    private, public = keygen(capsys, monkeypatch, tmp_path / "ci")
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(private))
    project.pipeline(PIPELINE)
    project.commit()
    ran = project.run("run", "--plain")
    assert ran.code == 0, ran.out + ran.err
    assert "conveyor: artifact shop@1.0.1 signed" in ran.out
    return project, private, public


def test_a_signed_run_stores_signatures_openssl_accepts(
    signed: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, _private, public = signed
    out = tmp_path / "fetched"
    fetched = project.run(
        "artifacts", "fetch", "shop@1.0.1", "--to", str(out), "--with-attachments",
        "--key", str(public),
    )  # fmt: skip
    assert fetched.code == 0, fetched.out + fetched.err
    wheel = out / "dist" / "shop-1.0-py3-none-any.whl"
    sig = out / "dist" / "shop-1.0-py3-none-any.whl.sig"
    raw = tmp_path / "sig.der"
    raw.write_bytes(base64.b64decode(sig.read_text()))
    checked = openssl("dgst", "-sha256", "-verify", str(public), "-signature", str(raw), str(wheel))
    assert checked.returncode == 0, checked.stderr
    assert "Verified OK" in checked.stdout


def test_the_provenance_names_the_subjects_inputs_and_upstream_artifacts(
    signed: tuple[Project, Path, Path],
) -> None:
    project, _private, public = signed
    shop = _show(project, "shop@1.0.1")
    docs = _show(project, "docs@2.0")
    [att] = [a for a in docs["attachments"] if a["kind"] == "provenance"]
    assert att["name"] == "docs-2.0.intoto.jsonl"
    [envelope] = provenance.loads_jsonl(Path(att["blob"]).read_bytes())
    statement = provenance.verify_envelope(envelope, load_public_key(public))
    assert statement["subject"] == [
        {"name": f["path"], "digest": {"sha256": f["sha256"]}} for f in docs["files"]
    ]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {"pipeline": "conveyor.yml", "job": "docs"}
    deps = {d.get("name") or d.get("uri"): d["digest"] for d in definition["resolvedDependencies"]}
    [wheel] = shop["files"]
    upstream = f"conveyor:artifact/shop@1.0.1/{wheel['path']}"
    assert deps[upstream] == {"sha256": wheel["sha256"]}
    metadata = statement["predicate"]["runDetails"]["metadata"]
    assert metadata["startedOn"] <= metadata["finishedOn"]
    # The job's inputs, as its cache key digests them.
    assert len(deps["conveyor:job-inputs/docs"]["sha256"]) == 64
    shown = project.run("artifacts", "show", "docs@2.0")
    assert "site/index.html.sig" in shown.out
    assert "unsigned" not in shown.out


def test_verify_with_the_key_names_a_tampered_file_and_another_key(
    signed: tuple[Project, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    project, _private, public = signed
    good = project.run("artifacts", "verify", "shop@1.0.1", "--key", str(public))
    assert good.code == 0, good.out
    assert "signatures and provenance verified" in good.out
    plain = project.run("artifacts", "verify", "shop@1.0.1")
    assert plain.code == 0
    assert "signatures not checked" in plain.out

    _other_private, other = keygen(capsys, monkeypatch, tmp_path / "other")
    wrong = project.run("artifacts", "verify", "shop@1.0.1", "--key", str(other))
    assert wrong.code == 1
    assert "dist/shop-1.0-py3-none-any.whl: the signature" in wrong.out
    assert "another key" in wrong.out
    assert "shop-1.0.1.intoto.jsonl" in wrong.out

    refused = project.run(
        "artifacts", "fetch", "shop@1.0.1", "--to", str(tmp_path / "out"), "--key", str(other)
    )
    assert refused.code == 1
    assert "nothing was fetched" in refused.err
    assert not (tmp_path / "out").exists()

    stored = _show(project, "shop@1.0.1")
    [sig] = [a for a in stored["attachments"] if a["kind"] == "signature"]
    assert sig["blob"] is None  # a signature is kept in the version's record
    record = project.root / ".conveyor" / "artifacts" / "index" / "shop" / "1.0.1.json"
    original = record.read_text()
    assert original.count(sig["content"]) == 1
    # A byte of the signature changed in the record: its digest no longer matches.
    record.write_text(original.replace(sig["content"], sig["content"][:-4] + "AAA="))
    changed = project.run("artifacts", "verify", "shop@1.0.1", "--key", str(public))
    assert changed.code == 1
    assert "attachment dist/shop-1.0-py3-none-any.whl.sig: tampered" in changed.out
    # The signature and its digest both changed: the signature itself no longer verifies.
    forged = sig["content"][:-4] + "AAA="
    record.write_text(
        original.replace(sig["content"], forged).replace(
            sig["sha256"], hashlib.sha256(forged.encode()).hexdigest()
        )
    )
    forged_run = project.run("artifacts", "verify", "shop@1.0.1", "--key", str(public))
    assert forged_run.code == 1
    assert "dist/shop-1.0-py3-none-any.whl: the signature" in forged_run.out
    record.write_text(original)

    [wheel] = _show(project, "shop@1.0.1")["files"]
    blob = Path(wheel["blob"])
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[0] ^= 0x01
    blob.write_bytes(bytes(data))
    monkeypatch.setenv("CONVEYOR_VERIFY_KEY", str(public))
    bad = project.run("artifacts", "verify", "shop@1.0.1")
    assert bad.code == 1
    assert "dist/shop-1.0-py3-none-any.whl: tampered" in bad.out


def test_a_key_that_cannot_be_opened_fails_the_run_before_any_job(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    private, _public = keygen(capsys, monkeypatch, tmp_path / "ci")
    monkeypatch.setenv("CONVEYOR_SIGNING_PASSWORD", "not the password")  # pragma: allowlist secret
    project.write(
        "conveyor.yml",
        PIPELINE + f"    artifacts:\n      signing_key: {private}\n",
    )
    project.commit()
    ran = project.run("run", "--plain")
    assert ran.code == 2, ran.out + ran.err
    assert str(private) in ran.err
    assert len(ran.err.strip().splitlines()) == 1
    assert not (project.root / "dist").exists()


def test_a_version_stored_without_a_key_says_it_is_unsigned(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run", "--plain").code == 0
    shown = project.run("artifacts", "show", "shop@1.0.1")
    assert "unsigned" in shown.out


CHAIN = """
    name: shop
    jobs:
      build:
        inputs: [src/**]
        run:
          - mkdir -p dist && cp src/app.py dist/app.py
        artifacts:
          paths: [dist/]
          name: app
          version: "1.{{ run_number }}"
      package:
        needs: [build]
        run:
          - mkdir -p pkg && cat dist/app.py notes.txt > pkg/app.tar
        artifacts:
          paths: [pkg/]
          name: pkg
          version: "1.{{ run_number }}"
"""


def _statement_of(project: Project, ref: str, public: Path) -> tuple[dict[str, Any], str]:
    """The provenance of `ref` as securesystemslib verifies it and the in-toto bindings
    read it: (statement, its payload as text)."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    [att] = [a for a in _show(project, ref)["attachments"] if a["kind"] == "provenance"]
    [written] = provenance.loads_jsonl(Path(att["blob"]).read_bytes())
    key = load_public_key(public)
    envelope = Envelope.from_dict(written)
    assert envelope.verify([SSlibKey.from_crypto(key, keyid=key_id(key))], 1)
    statement = json.loads(envelope.payload)
    json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())  # SLSA's shape
    return statement, envelope.payload.decode()


def _resolved(statement: dict[str, Any]) -> dict[str, dict[str, str]]:
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    return {d.get("name") or d["uri"]: d["digest"] for d in deps}


def test_the_provenance_lists_the_source_each_input_file_and_the_upstream_files(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    private, public = keygen(capsys, monkeypatch, tmp_path / "ci")
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(private))
    project.pipeline(CHAIN)
    project.write("src/app.py", "print('app')\n")
    project.write("notes.txt", "first\n")
    project.write(".gitignore", "dist/\npkg/\n")
    url = "https://ci:s3cret@git.example.com/shop.git"  # pragma: allowlist secret
    project.git("remote", "add", "origin", url)
    project.commit()
    assert project.run("run", "--plain").code == 0
    project.write("notes.txt", "second\n")
    project.commit("notes changed")
    again = project.run("run", "--plain")
    assert again.code == 0, again.out + again.err
    assert "build cached" in again.out

    first, _ = _statement_of(project, "pkg@1.1", public)
    second, payload = _statement_of(project, "pkg@1.2", public)
    before, after = _resolved(first), _resolved(second)
    # The changed input shows its new digest; the unchanged one its same digest.
    assert after["notes.txt"] == {"sha256": hashlib.sha256(b"second\n").hexdigest()}
    assert before["notes.txt"] == {"sha256": hashlib.sha256(b"first\n").hexdigest()}
    app = {"sha256": hashlib.sha256(b"print('app')\n").hexdigest()}
    assert before["src/app.py"] == after["src/app.py"] == app
    # The version the job it needs stored in this run, file by file.
    assert after["conveyor:artifact/app@1.2/dist/app.py"] == app
    assert "conveyor:artifact/app@1.1/dist/app.py" not in after
    # The source at the run's commit, its remote without the credentials.
    branch = project.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    commit = project.git("rev-parse", "HEAD").strip()
    source = f"git+https://git.example.com/shop.git@refs/heads/{branch}"
    assert after[source] == {"gitCommit": commit}
    assert "s3cret" not in payload
    assert len(after["conveyor:job-inputs/package"]["sha256"]) == 64
    # A version stored from a cache hit names the inputs its key was made of.
    served, _ = _statement_of(project, "app@1.2", public)
    assert _resolved(served)["src/app.py"] == app
    # With the cache off there is no key: the inputs are digested as they are.
    project.write("notes.txt", "third\n")
    uncached = project.run("run", "--plain", "--no-cache", "package", "--only")
    assert uncached.code == 0, uncached.out + uncached.err
    third, _ = _statement_of(project, "pkg@1.3", public)
    assert _resolved(third)["notes.txt"] == {"sha256": hashlib.sha256(b"third\n").hexdigest()}
    assert "conveyor:job-inputs/package" not in _resolved(third)


def test_a_signed_version_is_never_seen_unsigned(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The signatures and provenance go into the version's first record: a reader (a
    `fetch --key` in another job or on another machine) never finds it unsigned."""
    import threading

    private, _public = keygen(capsys, monkeypatch, tmp_path / "ci")
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(private))
    project.pipeline(
        """
        name: shop
        jobs:
          build:
            run:
              - mkdir -p dist && for i in $(seq 1 400); do echo $i > dist/f$i.txt; done
            artifacts:
              paths: [dist/]
              name: many
              version: "1.0"
        """
    )
    project.commit()
    record = project.root / ".conveyor" / "artifacts" / "index" / "many" / "1.0.json"
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        # Every state of the record a reader could meet while the run stores it.
        while not done.is_set():
            try:
                data = json.loads(record.read_text())
            except (FileNotFoundError, ValueError):
                continue
            seen.append(sum(1 for a in data["attachments"] if a["kind"] == "signature"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        ran = project.run("run", "--plain")
    finally:
        done.set()
        watcher.join()
    assert ran.code == 0, ran.out
    assert "signed (400 signature(s), provenance)" in ran.out
    assert seen, "the record was never read while the run went on"
    assert set(seen) == {400}, "a reader saw the version with fewer signatures"
