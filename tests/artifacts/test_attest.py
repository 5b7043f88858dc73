"""A version signed and attested as the store keeps it (each `.sig` beside its file, the
provenance beside them), checked by openssl and securesystemslib, then by
`verify_version`: every tampered byte is found, and the file or attachment named."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from conveyor.artifacts import attest, provenance, signing
from conveyor.artifacts.record import ArtifactFile, ArtifactVersion, Attachment
from tests.artifacts.keytools import keygen, openssl

FILES = {"dist/app-1.2.0.whl": b"wheel " * 1000, "dist/app-1.2.0.tar.gz": b"sdist " * 700}


class Stored:
    """A version's files and attachments in a directory, as a store might keep them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        files = []
        for path, data in FILES.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
            files.append(ArtifactFile(path, hashlib.sha256(data).hexdigest(), len(data)))
        self.version = ArtifactVersion(
            name="app", version="1.2.0", files=tuple(files), job="build", run_id="r-7"
        )

    def keep(self, attachments: list[tuple[Attachment, bytes]]) -> None:
        for attachment, data in attachments:
            (self.root / attachment.name).write_bytes(data)
        self.version = dataclasses.replace(
            self.version, attachments=tuple(a for a, _ in attachments)
        )

    def digests(self) -> dict[str, str]:
        return {
            f.path: hashlib.sha256((self.root / f.path).read_bytes()).hexdigest()
            for f in self.version.files
        }

    def read(self, attachment: Attachment) -> bytes:
        return (self.root / attachment.name).read_bytes()

    def problems(self, pub: Path) -> list[str]:
        return attest.verify_version(
            self.version, signing.load_public_key(pub), digests=self.digests(), read=self.read
        )


@pytest.fixture
def stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Stored, Path]:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "release")
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(key))
    run_key = signing.signing_key()
    assert run_key is not None
    store = Stored(tmp_path / "store")
    store.keep(
        attest.attest(
            store.version,
            run_key,
            builder_id="https://ci.example.com/runner/1",
            pipeline_file="conveyor.yml",
            started_on="2026-11-28T21:00:00Z",
            finished_on="2026-11-28T21:02:00Z",
            resolved_dependencies=[("src/app.py", {"sha256": "c" * 64})],
        )
    )
    return store, pub


def test_each_file_has_a_sig_beside_it_that_openssl_verifies(
    stored: tuple[Stored, Path], tmp_path: Path
) -> None:
    store, pub = stored
    names = sorted(a.name for a in store.version.attachments)
    assert names == [
        "app-1.2.0.intoto.jsonl",
        "dist/app-1.2.0.tar.gz.sig",
        "dist/app-1.2.0.whl.sig",
    ]
    for path in FILES:
        der = tmp_path / "sig.der"
        der.write_bytes(base64.b64decode((store.root / f"{path}.sig").read_bytes()))
        proc = openssl(
            "dgst", "-sha256", "-verify", str(pub), "-signature", str(der), str(store.root / path)
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for attachment in store.version.attachments:  # the record's digests are the bytes'
        assert attachment.sha256 == hashlib.sha256(store.read(attachment)).hexdigest()


def test_the_provenance_verifies_with_securesystemslib_and_names_the_files(
    stored: tuple[Stored, Path],
) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    store, pub = stored
    public_key = signing.load_public_key(pub)
    (line,) = (store.root / "app-1.2.0.intoto.jsonl").read_bytes().splitlines()
    envelope = Envelope.from_dict(json.loads(line))
    envelope.verify([SSlibKey.from_crypto(public_key, keyid=signing.key_id(public_key))], 1)
    statement = json.loads(envelope.payload)
    assert statement["subject"] == [
        {"name": f.path, "digest": {"sha256": f.sha256}} for f in store.version.files
    ]
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"pipeline": "conveyor.yml", "job": "build"}
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == "r-7/build"


def test_an_untouched_version_verifies(stored: tuple[Stored, Path]) -> None:
    store, pub = stored
    assert store.problems(pub) == []


def test_a_flipped_byte_in_a_file_is_found_and_the_file_named(
    stored: tuple[Stored, Path],
) -> None:
    store, pub = stored
    path = store.root / "dist/app-1.2.0.tar.gz"
    data = bytearray(path.read_bytes())
    data[1234] ^= 0x20
    path.write_bytes(bytes(data))

    problems = store.problems(pub)

    assert problems[0] == (
        "dist/app-1.2.0.tar.gz: the signature dist/app-1.2.0.tar.gz.sig does not verify: "
        "the file was changed"
    )
    assert problems[1].startswith("app-1.2.0.intoto.jsonl: dist/app-1.2.0.tar.gz: sha256 ")
    assert len(problems) == 2


def test_a_changed_signature_or_provenance_or_another_key_is_named(
    stored: tuple[Stored, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, pub = stored
    sig = store.root / "dist/app-1.2.0.whl.sig"
    original = sig.read_bytes()
    sig.write_bytes(base64.b64encode(base64.b64decode(original)[:-1] + b"\x00"))
    assert store.problems(pub) == [
        "dist/app-1.2.0.whl: the signature dist/app-1.2.0.whl.sig does not verify: "
        "the signature was changed, or another key signed it"
    ]
    sig.write_bytes(original)

    jsonl = store.root / "app-1.2.0.intoto.jsonl"
    envelope = json.loads(jsonl.read_bytes())
    payload = base64.b64decode(envelope["payload"]).replace(b'"build"', b'"deploy"')
    envelope["payload"] = base64.b64encode(payload).decode()
    jsonl.write_bytes(provenance.dumps_jsonl([envelope]))
    (problem,) = store.problems(pub)
    assert problem.startswith("app-1.2.0.intoto.jsonl: no signature verifies with the key")

    _, other_pub = keygen(capsys, monkeypatch, tmp_path / "other")
    assert len(store.problems(other_pub)) == 3  # both files and the provenance


def test_a_version_without_signatures_or_provenance_says_so(stored: tuple[Stored, Path]) -> None:
    store, pub = stored
    store.version = dataclasses.replace(store.version, attachments=())
    assert store.problems(pub) == [
        "dist/app-1.2.0.whl: not signed (no dist/app-1.2.0.whl.sig)",
        "dist/app-1.2.0.tar.gz: not signed (no dist/app-1.2.0.tar.gz.sig)",
        "app@1.2.0: no provenance",
    ]
