"""The store itself: blobs by content, stored once; an index of immutable versions; what
may change of a stored version (channel, attachments, publications) and what may not."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.artifacts.backend import Store
from conveyor.artifacts.inline import read_attachment
from conveyor.artifacts.record import ArtifactFile, ArtifactVersion
from conveyor.artifacts.retention import plan, prune
from conveyor.artifacts.store import (
    ArtifactError,
    ArtifactStore,
    NotFound,
    VersionConflict,
    check_member,
    now_iso,
)
from conveyor.artifacts.verify import Problem, verify


def _version(
    store: ArtifactStore, tmp: Path, name: str, version: str, files: dict[str, bytes], **kw: object
) -> ArtifactVersion:
    described = []
    for path, data in files.items():
        src = tmp / "src" / path
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(data)
        sha, size = store.put_file(str(src))
        described.append(ArtifactFile(path, sha, size))
    return ArtifactVersion(name, version, tuple(described), created=now_iso(), **kw)  # type: ignore[arg-type]


def test_the_same_bytes_are_stored_once_under_their_digest(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    big = os.urandom(5 << 20)  # past SMALL: hashed while copied
    for name in ("a.bin", "b.bin"):
        (tmp_path / name).write_bytes(big)
    with store.writing():
        first = store.put_file(str(tmp_path / "a.bin"))
        second = store.put_file(str(tmp_path / "b.bin"))
        small = store.put_bytes(b"hello")
    assert first == second == (hashlib.sha256(big).hexdigest(), len(big))
    assert small == (hashlib.sha256(b"hello").hexdigest(), 5)
    blobs = sorted(store.blobs())
    assert len(blobs) == 2, "one blob per distinct content"
    path = store.blob_path(first[0])
    assert path.endswith(f"blobs/sha256/{first[0][:2]}/{first[0]}")
    assert not os.stat(path).st_mode & 0o222, "blobs are read-only"
    assert os.listdir(tmp_path / "store" / "tmp") == [], "no temporary is left"


def test_a_version_is_immutable_with_both_digests_named(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        one = _version(store, tmp_path, "app", "1.0.0", {"dist/app.whl": b"one"})
        stored, new = store.store(one)
        assert new
        assert stored == one
        again, new = store.store(
            _version(store, tmp_path, "app", "1.0.0", {"dist/app.whl": b"one"})
        )
        assert not new, "the same bytes: nothing changes"
        assert again == one
        other = _version(store, tmp_path, "app", "1.0.0", {"dist/app.whl": b"two"})
        with pytest.raises(VersionConflict) as caught:
            store.store(other)
    message = caught.value.message
    assert one.digest in message
    assert other.digest in message
    assert "dist/app.whl" in message
    assert store.find("app@1.0.0") == one


def test_find_names_what_there_is(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        for v in ("1.0.0", "1.1.0"):
            store.store(_version(store, tmp_path, "shop", v, {"a": v.encode()}))
    assert store.find("shop").version == "1.1.0", "the newest without a version"
    with pytest.raises(NotFound, match="did you mean 'shop'"):
        store.find("shpo@1.0.0")
    with pytest.raises(NotFound) as caught:
        store.find("shop@9.9.9")
    assert caught.value.hint is not None
    assert "1.0.0, 1.1.0" in caught.value.hint


def test_only_channel_attachments_and_publications_change(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        v, _ = store.store(_version(store, tmp_path, "app", "2.0.0", {"dist/app.whl": b"x"}))
    promoted = store.promote("app@2.0.0", "staging")
    promoted = store.promote("app@2.0.0", "prod")
    assert promoted.channel == "prod"
    assert [(p["from"], p["to"]) for p in promoted.promotions] == [
        ("dev", "staging"),
        ("staging", "prod"),
    ]
    assert promoted.digest == v.digest, "promotion changes no byte"
    signed, sig = store.attach(
        "app@2.0.0", "signature", "app.whl.sig", b"MEUCIQ...", subject="dist/app.whl"
    )
    assert sig in signed.attachments
    assert sig.subject == "dist/app.whl"
    assert read_attachment(store, sig) == b"MEUCIQ..."
    assert sig.content == "MEUCIQ...", "a signature is kept in the record"
    assert not os.path.exists(store.attachment_path(sig)), "not as a blob"
    assert sig.sha256 not in store.referenced()
    _, doc = store.attach("app@2.0.0", "sbom", "sbom.cdx.json", b"{}")
    assert doc.content is None, "other kinds: blobs"
    assert read_attachment(store, doc) == b"{}"
    resigned, _ = store.attach(
        "app@2.0.0", "signature", "app.whl.sig", b"other", subject="dist/app.whl"
    )
    assert len(resigned.attachments_of("signature")) == 1, "one of a kind and name"
    with pytest.raises(ArtifactError, match="no file 'nope'"):
        store.attach("app@2.0.0", "signature", "x.sig", b"s", subject="nope")
    published = store.record_publication("app@2.0.0", {"kind": "directory", "location": "/srv"})
    assert published.published[-1]["location"] == "/srv"
    with pytest.raises(ArtifactError, match="cannot change"):
        store.update("app@2.0.0", lambda r: ArtifactVersion(r.name, r.version, ()))
    files = store.files(store.find("app@2.0.0"))
    assert [(f.path, os.path.isfile(p)) for f, p in files] == [("dist/app.whl", True)]


def test_verify_names_a_changed_byte_and_a_missing_blob(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        v, _ = store.store(
            _version(store, tmp_path, "app", "1", {"a.txt": b"alpha" * 1000, "b.txt": b"beta"})
        )
    assert verify(store, v).ok
    blob = store.blob_path(v.files[0].sha256)
    os.chmod(blob, 0o644)
    data = bytearray(Path(blob).read_bytes())
    data[100] ^= 1
    Path(blob).write_bytes(bytes(data))
    os.unlink(store.blob_path(v.files[1].sha256))
    result = verify(store, v)
    assert not result.ok
    by_subject = {p.subject: p for p in result.problems}
    tampered = by_subject["a.txt"]
    assert tampered.expected == v.files[0].sha256
    assert tampered.actual == hashlib.sha256(bytes(data)).hexdigest()
    assert tampered.expected in str(tampered)
    assert tampered.actual in str(tampered)
    assert by_subject["b.txt"].actual is None
    assert "missing" in str(by_subject["b.txt"])


def test_checks_beyond_the_digests_run_on_intact_bytes_only(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        v, _ = store.store(_version(store, tmp_path, "app", "1", {"a": b"a"}))
    seen = []

    class Signature:
        name = "signature"

        def __call__(self, store: Store, version: ArtifactVersion) -> list[Problem]:
            seen.append(version.ref)
            return [Problem("signature", "no signature by the key")]

    result = verify(store, v, checks=[Signature()])
    assert seen == ["app@1"]
    assert result.checks == ("signature",)
    assert [str(p) for p in result.problems] == ["signature: no signature by the key"]


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "", "C:/x", "a\\b", "a/."]
)
def test_a_member_path_never_leaves_its_directory(path: str) -> None:
    with pytest.raises(ArtifactError):
        check_member(path)


def test_retention_keeps_the_newest_per_branch_and_protected_channels(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    made = []
    with store.writing():
        for i, branch in enumerate(["main", "main", "dev", "main", "dev", "main"]):
            v = _version(
                store,
                tmp_path,
                "app",
                f"1.{i}",
                {"f": f"{i}".encode()},
                branch=branch,
                keep_last=2,
                keep_per="branch",
                build_number=i,
            )
            v = ArtifactVersion(**{**v.__dict__, "created": f"2026-01-0{i + 1}T00:00:00.000Z"})
            store.store(v)
            made.append(v)
    store.promote("app@1.0", "prod")
    going = {r.version.version: r.reason for r in plan(store.versions(), protected=["prod"])}
    # main: 1.0 (prod: kept, not counted), 1.1, 1.3, 1.5 -> 1.1 goes; dev: 1.2, 1.4 kept.
    assert going == {"1.1": "older than the newest 2 on branch main"}
    dry = prune(store, protected=["prod"], dry_run=True)
    assert [r.version.version for r in dry.removed] == ["1.1"]
    assert store.get("app", "1.1")
    assert [sha for sha, _ in dry.blobs] == [made[1].files[0].sha256]
    done = prune(store, protected=["prod"])
    assert store.get("app", "1.1") is None
    assert not store.has_blob(made[1].files[0].sha256)
    assert done.kept == 5


def test_an_expired_version_goes_unless_protected(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        for v, channel in (("1", "dev"), ("2", "prod"), ("3", "dev")):
            record = _version(
                store, tmp_path, "app", v, {"f": v.encode()}, expires="2000-01-01T00:00:00.000Z"
            )
            store.store(record)
            store.promote(record.ref, channel)
    going = plan(store.versions(), protected=["prod"])
    assert sorted(r.version.version for r in going) == ["1", "3"]
    assert all(r.reason.startswith("expired 2000-01-01") for r in going)


def test_a_killed_writer_leaves_a_temporary_the_next_writer_removes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "tmp").mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = root / "tmp" / f"{dead.stdout.strip()}.1.0.part"
    stale.write_bytes(b"half")
    live = root / "tmp" / f"{os.getpid()}.1.0.part"
    live.write_bytes(b"mine")
    store = ArtifactStore(str(root))
    with store.writing():
        pass
    assert not stale.exists()
    assert live.exists()


def test_records_from_a_newer_conveyor_are_read(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        v, _ = store.store(_version(store, tmp_path, "app", "1", {"a": b"a"}))
    path = store.record_path("app", "1")
    data = json.loads(Path(path).read_text())
    data["future_field"] = {"x": 1}
    data["files"][0]["future"] = True
    Path(path).write_text(json.dumps(data))
    assert store.find("app@1") == v


def test_two_writers_of_one_version_one_wins_the_other_is_refused(tmp_path: Path) -> None:
    import threading

    store = ArtifactStore(str(tmp_path / "store"))
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def write(data: bytes) -> None:
        with store.writing():
            v = _version(store, tmp_path / data.decode(), "app", "1.0.0", {"a.bin": data})
            start.wait()
            try:
                outcomes.append(store.store(v)[1])
            except VersionConflict as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=write, args=(d,)) for d in (b"one", b"two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(type, outcomes), key=str) == sorted([bool, VersionConflict], key=str)
    assert True in outcomes
    assert store.find("app@1.0.0").files[0].size == 3


def test_a_prune_waits_for_a_writer_and_keeps_its_blobs(tmp_path: Path) -> None:
    import threading

    store = ArtifactStore(str(tmp_path / "store"))
    with store.writing():
        store.store(_version(store, tmp_path / "old", "app", "0", {"a": b"an older version"}))
    written = threading.Event()
    pruned = threading.Event()

    def collect() -> None:
        with store.writing():
            v = _version(store, tmp_path, "app", "1", {"a": b"bytes not yet named"})
            written.set()
            assert not pruned.wait(0.5), "the prune waits for the writer"
            store.store(v)

    def run_prune() -> None:
        written.wait()
        prune(store, protected=["prod"])
        pruned.set()

    threads = [threading.Thread(target=collect), threading.Thread(target=run_prune)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pruned.is_set()
    assert verify(store, store.find("app@1")).ok, "the blob written before the prune stayed"
