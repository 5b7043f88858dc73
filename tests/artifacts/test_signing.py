"""Signing keys and blob signatures, judged by openssl (a real process): the key
`keygen` writes opens in openssl as an encrypted P-256 key; a signature we make
verifies with `openssl dgst -sha256 -verify`, and one openssl makes verifies with ours;
a changed byte fails both; a user's mistake is one line and exit 2."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import tracemalloc
from pathlib import Path

import pytest

from conveyor.artifacts import signing
from tests.artifacts.keytools import PASSWORD, conveyor, keygen, openssl


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _openssl_verifies(pub: Path, signature_b64: str, file: Path, tmp_path: Path) -> bool:
    """What `openssl dgst -sha256 -verify PUB -signature <(base64 -d SIG) FILE` says."""
    der = tmp_path / "signature.der"
    der.write_bytes(base64.b64decode(signature_b64))
    proc = openssl("dgst", "-sha256", "-verify", str(pub), "-signature", str(der), str(file))
    assert ("Verified OK" in proc.stdout) == (proc.returncode == 0), proc
    return proc.returncode == 0


def test_keygen_writes_an_encrypted_p256_key_openssl_opens_with_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "release")

    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    opened = openssl("pkey", "-in", str(key), "-passin", "env:OPENSSL_PASS", "-noout", "-text",
                     password=PASSWORD)  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert "prime256v1" in opened.stdout or "P-256" in opened.stdout
    wrong = openssl("pkey", "-in", str(key), "-passin", "env:OPENSSL_PASS", "-noout",
                    password="not it")  # fmt: skip
    assert wrong.returncode != 0
    public = openssl("pkey", "-pubin", "-in", str(pub), "-noout", "-text")
    assert public.returncode == 0, public.stderr
    assert "prime256v1" in public.stdout or "P-256" in public.stdout
    # The .pub is the private key's: openssl derives the same public key from the .key.
    derived = openssl("pkey", "-in", str(key), "-passin", "env:OPENSSL_PASS", "-pubout",
                      password=PASSWORD)  # fmt: skip
    assert derived.stdout == pub.read_text()


def test_keygen_refuses_to_replace_a_key_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "k")
    before = key.read_bytes()

    again = conveyor(capsys, "artifacts", "keygen", "--out", str(tmp_path / "k"))
    assert again.code == 2
    assert again.err.count("\n") == 1
    assert f"{key} exists" in again.err
    assert "--force" in again.err
    assert key.read_bytes() == before

    forced = conveyor(capsys, "artifacts", "keygen", "--out", str(tmp_path / "k"), "--force")
    assert forced.code == 0, forced.err
    assert key.read_bytes() != before
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert signing.key_id(signing.load_public_key(pub)) == signing.key_id(
        signing.load_private_key(key, PASSWORD).public_key()
    )


def test_keygen_without_a_password_variable_or_terminal_says_to_set_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONVEYOR_SIGNING_PASSWORD", raising=False)

    result = conveyor(capsys, "artifacts", "keygen", "--out", str(tmp_path / "k"))

    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "set CONVEYOR_SIGNING_PASSWORD" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "k.key").exists()


def test_a_signature_we_make_verifies_with_openssl_and_a_flipped_byte_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "k")
    blob = tmp_path / "app-1.0.tar.gz"
    blob.write_bytes(os.urandom(10_000))
    private_key = signing.load_private_key(key)  # the password from the variable

    signature = signing.sign(private_key, blob)

    assert _openssl_verifies(pub, signature, blob, tmp_path)
    # The same signature whether the content, the file or its digest is given.
    digest = hashlib.sha256(blob.read_bytes()).digest()
    assert _openssl_verifies(pub, signing.sign_digest(private_key, digest), blob, tmp_path)
    assert _openssl_verifies(pub, signing.sign(private_key, blob.read_bytes()), blob, tmp_path)
    _flip(blob, 5_000)
    assert not _openssl_verifies(pub, signature, blob, tmp_path)


def test_a_signature_openssl_makes_verifies_with_ours_and_a_flipped_byte_does_not(
    tmp_path: Path,
) -> None:
    # A key openssl made, unencrypted: it needs no password.
    key, pub = tmp_path / "ossl.key", tmp_path / "ossl.pub"
    made = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-out", str(key))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert openssl("pkey", "-in", str(key), "-pubout", "-out", str(pub)).returncode == 0
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"release notes\n" * 100)
    der = tmp_path / "blob.der"
    signed = openssl("dgst", "-sha256", "-sign", str(key), "-out", str(der), str(blob))
    assert signed.returncode == 0, signed.stderr
    signature = base64.b64encode(der.read_bytes()).decode() + "\n"  # as `base64` ends it

    public_key = signing.load_public_key(pub)
    assert signing.verify(public_key, blob, signature)
    assert signing.verify(public_key, blob.read_bytes(), signature)
    digest = hashlib.sha256(blob.read_bytes()).digest()
    assert signing.verify_digest(public_key, digest, signature)
    # openssl's unencrypted key signs with us too, and openssl agrees.
    ours = signing.sign(signing.load_private_key(key), blob)
    assert _openssl_verifies(pub, ours, blob, tmp_path)

    _flip(blob, 3)
    assert not signing.verify(public_key, blob, signature)
    assert not signing.verify(public_key, blob, "not base64 at all!")


def test_a_large_file_is_signed_in_chunks_not_read_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "k")
    private_key = signing.load_private_key(key)
    blob = tmp_path / "image.raw"
    with blob.open("wb") as fh:
        chunk = os.urandom(1 << 20)
        for _ in range(64):
            fh.write(chunk)

    tracemalloc.start()
    try:
        signature = signing.sign(private_key, blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8 << 20, f"signing a 64 MiB file held {peak >> 20} MiB"
    assert _openssl_verifies(pub, signature, blob, tmp_path)


def test_sign_blob_with_a_wrong_or_missing_password_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = keygen(capsys, monkeypatch, tmp_path / "k")
    blob = tmp_path / "blob"
    blob.write_text("x")
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(key))

    monkeypatch.setenv("CONVEYOR_SIGNING_PASSWORD", "wrong")
    wrong = conveyor(capsys, "artifacts", "sign-blob", str(blob))
    monkeypatch.delenv("CONVEYOR_SIGNING_PASSWORD")
    unset = conveyor(capsys, "artifacts", "sign-blob", str(blob))

    assert (wrong.code, unset.code) == (2, 2)
    assert wrong.err == (
        f"error: {key}: cannot decrypt the signing key: wrong password "
        "(from CONVEYOR_SIGNING_PASSWORD) or a damaged file\n"
    )
    assert unset.err == (
        "error: the signing key is encrypted and CONVEYOR_SIGNING_PASSWORD is not set: "
        "set it to the key's password\n"
    )
    assert not (tmp_path / "blob.sig").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such signing key file"),
        (b"hello\n", "not a PEM private key"),
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n"
            b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "a key in cosign's own format",
        ),
    ],
)
def test_sign_blob_with_something_that_is_not_a_key_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    key = tmp_path / "some.key"
    if content is not None:
        key.write_bytes(content)
    blob = tmp_path / "blob"
    blob.write_text("x")

    result = conveyor(capsys, "artifacts", "sign-blob", str(blob), "--key", str(key))

    assert result.code == 2
    assert result.err.startswith(f"error: {key}: {message}")
    assert result.err.count("\n") == 1


def test_sign_blob_then_verify_blob_and_a_tampered_file_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, pub = keygen(capsys, monkeypatch, tmp_path / "k")
    blob = tmp_path / "app.whl"
    blob.write_bytes(b"wheel bytes")

    signed = conveyor(capsys, "artifacts", "sign-blob", str(blob), "--key", str(key))
    assert signed.code == 0, signed.err
    sig = tmp_path / "app.whl.sig"
    assert _openssl_verifies(pub, sig.read_text(), blob, tmp_path)
    ok = conveyor(capsys, "artifacts", "verify-blob", str(blob), "--key", str(pub))
    assert ok.code == 0, ok.err

    _flip(blob, 0)
    bad = conveyor(capsys, "artifacts", "verify-blob", str(blob), "--key", str(pub))
    assert bad.code == 1
    assert bad.err.startswith(f"error: {blob}: the signature {sig} does not verify")


def _converse(argv: list[str], replies: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `argv` (without CONVEYOR_SIGNING_PASSWORD) on a terminal of its own (a
    pseudo-terminal, its controlling one, as a user's shell gives), answering each
    prompt in `replies` when it appears; its exit status and everything it wrote."""
    import pty
    import select

    pid, master = pty.fork()
    if pid == 0:  # the child: nothing but exec
        os.chdir(cwd)
        env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_SIGNING_PASSWORD"}
        os.execve(argv[0], argv, env)
    seen = b""
    pending = dict(replies)
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no output for 30 s; so far: {seen!r}"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its terminal
                break
            if not chunk:
                break
            seen += chunk
            for prompt in list(pending):
                if seen.rstrip().endswith(prompt.encode()):
                    os.write(master, pending.pop(prompt).encode() + b"\n")
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_keygen_on_a_terminal_asks_for_the_password_twice(tmp_path: Path) -> None:
    import sys

    code, said = _converse(
        [sys.executable, "-m", "conveyor", "artifacts", "keygen", "--out", "typed"],
        {
            "Password for the private key:": "typed secret",
            "Repeat for confirmation:": "typed secret",
        },
        tmp_path,
    )

    assert code == 0, said
    assert "typed secret" not in said  # not echoed
    key = tmp_path / "typed.key"
    opened = openssl("pkey", "-in", str(key), "-passin", "env:OPENSSL_PASS", "-noout",
                     password="typed secret")  # fmt: skip
    assert opened.returncode == 0, opened.stderr
