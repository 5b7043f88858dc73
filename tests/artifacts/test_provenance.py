"""Provenance: the statement is read back by the in-toto attestation framework's own
Statement and SLSA Provenance v1 types (a field SLSA does not define, or a malformed
time, is refused there); the DSSE envelope verifies with securesystemslib's DSSE
implementation, and one securesystemslib signs verifies with ours; a changed payload,
another key or a changed file is found and named."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor.artifacts import provenance, signing
from tests.artifacts.keytools import PASSWORD, conveyor, keygen

WHEEL = "a" * 64
TARBALL = "b" * 64
SOURCE = "c" * 64
UPSTREAM = "d" * 64


def _statement() -> dict[str, Any]:
    return provenance.statement(
        [("dist/app-1.2.0-py3-none-any.whl", WHEEL), ("dist/app-1.2.0.tar.gz", TARBALL.upper())],
        builder_id="https://ci.example.com/runners/linux-7",
        external_parameters={"pipeline": "conveyor.yml", "job": "build"},
        internal_parameters={"runId": "20261128-1"},
        resolved_dependencies=[
            ("git+https://git.example.com/app@refs/heads/main", {"gitCommit": "e" * 40}),
            ("src/app/__init__.py", {"sha256": SOURCE}),
            ("conveyor-artifact:libcore@3.1.0", {"sha256": UPSTREAM}),
        ],
        started_on=datetime(2026, 11, 28, 21, 0, 0, tzinfo=UTC),
        finished_on="2026-11-28T21:03:07Z",
        invocation_id="run-42/build",
    )


def _keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "k")
    return signing.load_private_key(key, PASSWORD), signing.load_public_key(pub)


def test_the_statement_is_slsa_provenance_v1_as_the_in_toto_bindings_read_it() -> None:
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    document = json.loads(json.dumps(_statement()))  # as written and read back

    parsed = json_format.ParseDict(document, statement_pb2.Statement())
    Statement.copy_from_pb(parsed).validate()
    assert parsed.type == "https://in-toto.io/Statement/v1"
    assert parsed.predicate_type == "https://slsa.dev/provenance/v1"
    assert [(s.name, s.digest["sha256"]) for s in parsed.subject] == [
        ("dist/app-1.2.0-py3-none-any.whl", WHEEL),
        ("dist/app-1.2.0.tar.gz", TARBALL),
    ]
    predicate = json_format.ParseDict(document["predicate"], provenance_pb2.Provenance())
    # Written back by the bindings, it is ours again: SLSA's JSON names, nothing lost.
    assert json_format.MessageToDict(parsed) == document
    assert json_format.MessageToDict(predicate) == document["predicate"]
    build = predicate.build_definition
    assert build.build_type == provenance.BUILD_TYPE
    assert dict(build.external_parameters) == {"pipeline": "conveyor.yml", "job": "build"}
    assert dict(build.internal_parameters) == {"runId": "20261128-1"}
    assert [(d.uri, d.name, dict(d.digest)) for d in build.resolved_dependencies] == [
        ("git+https://git.example.com/app@refs/heads/main", "", {"gitCommit": "e" * 40}),
        ("", "src/app/__init__.py", {"sha256": SOURCE}),
        ("conveyor-artifact:libcore@3.1.0", "", {"sha256": UPSTREAM}),
    ]
    run = predicate.run_details
    assert run.builder.id == "https://ci.example.com/runners/linux-7"
    assert run.metadata.invocation_id == "run-42/build"
    started = run.metadata.started_on.ToDatetime(tzinfo=UTC)
    assert started == datetime(2026, 11, 28, 21, 0, 0, tzinfo=UTC)
    assert run.metadata.finished_on.ToJsonString() == "2026-11-28T21:03:07Z"


def test_a_subject_without_a_sha256_is_refused() -> None:
    with pytest.raises(ValueError, match=r"dist/app\.whl: not a SHA-256"):
        provenance.statement(
            [("dist/app.whl", "abc")], builder_id="b", external_parameters={"job": "build"}
        )


def test_the_envelope_verifies_with_securesystemslib_and_a_changed_payload_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    private_key, public_key = _keys(tmp_path, capsys, monkeypatch)
    kid = signing.key_id(public_key)
    envelope = provenance.envelope(_statement(), private_key)
    written = json.loads(provenance.dumps_jsonl([envelope]).decode())

    key = SSlibKey.from_crypto(public_key, keyid=kid)
    verified = Envelope.from_dict(json.loads(json.dumps(written)))
    assert verified.payload_type == "application/vnd.in-toto+json"
    assert set(verified.verify([key], 1)) == {kid}
    assert json.loads(verified.payload) == _statement()

    tampered = dict(written)
    tampered["payload"] = base64.b64encode(
        base64.b64decode(written["payload"]).replace(WHEEL.encode(), ("f" * 64).encode())
    ).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(json.loads(json.dumps(tampered))).verify([key], 1)
    with pytest.raises(signing.VerificationFailed, match="no signature verifies with the key"):
        provenance.verify_envelope(tampered, public_key)


def test_an_envelope_securesystemslib_signs_verifies_with_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    private_key, public_key = _keys(tmp_path, capsys, monkeypatch)
    theirs = Envelope(
        payload=json.dumps(_statement()).encode(),
        payload_type="application/vnd.in-toto+json",
        signatures={},
    )
    theirs.sign(CryptoSigner(private_key))

    assert provenance.verify_envelope(theirs.to_dict(), public_key) == _statement()


def test_verify_names_what_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    private_key, public_key = _keys(tmp_path, capsys, monkeypatch)
    envelope = provenance.envelope(_statement(), private_key)
    other, _ = signing.generate_key("other")
    other_key = signing.load_private_key(_write(tmp_path / "other.key", other), "other")

    assert provenance.verify_envelope(envelope, public_key) == _statement()
    with pytest.raises(signing.VerificationFailed, match="another key signed it"):
        provenance.verify_envelope(envelope, other_key.public_key())
    with pytest.raises(signing.VerificationFailed, match="payloadType is 'text/plain'"):
        provenance.verify_envelope({**envelope, "payloadType": "text/plain"}, public_key)
    with pytest.raises(signing.VerificationFailed, match="has no signatures"):
        provenance.verify_envelope({**envelope, "signatures": []}, public_key)
    not_slsa = {**_statement(), "predicateType": "https://spdx.dev/Document"}
    with pytest.raises(signing.VerificationFailed, match=r"predicateType is 'https://spdx\.dev"):
        provenance.verify_envelope(provenance.envelope(not_slsa, private_key), public_key)


def test_a_changed_file_is_named_against_the_verified_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    private_key, public_key = _keys(tmp_path, capsys, monkeypatch)
    line = provenance.dumps_jsonl([provenance.envelope(_statement(), private_key)])
    name = provenance.provenance_name("app", "1.2.0")
    assert name == "app-1.2.0.intoto.jsonl"
    _write(tmp_path / name, line)

    (envelope,) = provenance.loads_jsonl((tmp_path / name).read_bytes())
    statement = provenance.verify_envelope(envelope, public_key)
    stored = {"dist/app-1.2.0-py3-none-any.whl": WHEEL, "dist/app-1.2.0.tar.gz": TARBALL}
    assert provenance.subject_mismatches(statement, stored) == []
    stored["dist/app-1.2.0.tar.gz"] = "0" * 64
    stored["dist/extra.txt"] = "1" * 64
    assert provenance.subject_mismatches(statement, stored) == [
        "dist/app-1.2.0.tar.gz: sha256 000000000000... but the provenance says bbbbbbbbbbbb...",
        "dist/extra.txt: not in the provenance",
    ]
    with pytest.raises(signing.VerificationFailed, match="line 2 is not a JSON envelope"):
        provenance.loads_jsonl(line + b"{not json\n")


def test_keygen_key_signs_provenance_through_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "k")
    assert signing.signing_key(None) is None  # nothing names a key: the run does not sign
    from_config = signing.signing_key(key)  # the config names it
    assert from_config is not None
    assert from_config.path == str(key)
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(key))

    run_key = signing.signing_key(tmp_path / "ignored-config.key")

    assert run_key is not None
    assert run_key.path == str(key)
    envelope = provenance.envelope(_statement(), run_key.private_key, run_key.key_id)
    assert envelope["signatures"][0]["keyid"] == signing.key_id(signing.load_public_key(pub))
    assert provenance.verify_envelope(envelope, signing.load_public_key(pub)) == _statement()
    result = conveyor(capsys, "artifacts", "verify-blob", str(pub), "--key", str(pub))
    assert result.code == 2  # no pub.sig: one line, not a traceback
    assert result.err.count("\n") == 1


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("remote", "uri"),
    [
        (
            "https://ci:t0k@git.example.com/app.git",  # pragma: allowlist secret
            "git+https://git.example.com/app.git@refs/heads/main",
        ),
        ("git@github.com:org/app.git", "git+ssh://github.com/org/app.git@refs/heads/main"),
        ("ssh://git@host:2222/app", "git+ssh://host:2222/app@refs/heads/main"),
        (None, "git+file:///work/app@refs/heads/main"),
    ],
)
def test_the_source_is_named_as_slsa_names_a_git_source_without_credentials(
    remote: str | None, uri: str
) -> None:
    found = provenance.source(remote, commit="e" * 40, branch="main", tag=None, root="/work/app")
    assert found.to_json() == {"uri": uri, "digest": {"gitCommit": "e" * 40}}
    tagged = provenance.source(remote, commit="e" * 40, branch=None, tag="v1", root="/work/app")
    assert tagged.uri == uri.replace("refs/heads/main", "refs/tags/v1")
