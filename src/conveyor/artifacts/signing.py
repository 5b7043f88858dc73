"""Signing keys and blob signatures in the format `cosign sign-blob --key` writes.

A signature is the base64 of an ASN.1 DER ECDSA signature over the SHA-256 of a file's
content, kept as `<file>.sig` beside it: `openssl dgst -sha256 -verify KEY.pub
-signature <(base64 -d F.sig) F` checks it (the tests do), and cosign 2's `verify-blob
--key KEY.pub --signature F.sig --insecure-ignore-tlog=true F` takes our `.pub` (a
SubjectPublicKeyInfo PEM, as cosign writes its own) and our `.sig` (the flag: no
transparency log holds them; cosign 3 wants a Sigstore bundle instead, which Conveyor
does not write).

The private key differs from cosign's on purpose: cosign keeps its key in a
sigstore-encrypted format of its own (scrypt and secretbox), which no other tool reads;
ours is ECDSA P-256 in PKCS#8 PEM encrypted with the password (cryptography's
`BestAvailableEncryption`), which openssl reads (`openssl pkey -in KEY.key -passin
env:CONVEYOR_SIGNING_PASSWORD`); cosign reads no encrypted PEM, so `cosign
import-key-pair` takes it once openssl has written it out unencrypted.
That encryption is PBES2 (AES-256-CBC, PBKDF2-HMAC-SHA256 at 2,048 rounds, openssl's
own default, which cryptography does not let a PKCS#8 PEM change): far cheaper to guess
at than cosign's scrypt, so the password should be a long random one (a CI secret), not
a word.

Where a run's key comes from: `CONVEYOR_SIGNING_KEY` (a path) or a path the caller has
from the config, with its password in `CONVEYOR_SIGNING_PASSWORD` (as cosign reads
`COSIGN_PASSWORD`). The store hashes each file once: `sign_digest` signs that digest
(`Prehashed`), so a large file is never read twice. `cryptography` is imported inside
the functions: `conveyor --help` and a run that signs nothing never load it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.errors import ConveyorError, UserError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        ECDSA,
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

KEY_VARIABLE = "CONVEYOR_SIGNING_KEY"
PASSWORD_VARIABLE = "CONVEYOR_SIGNING_PASSWORD"  # pragma: allowlist secret (a name)
SIGNATURE_SUFFIX = ".sig"

# cosign's own key files (older cosigns said COSIGN), which we can name but not read.
_COSIGN_KEY_HEADERS = (
    b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----",
    b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----",
)


class SigningError(UserError):
    """A key cannot be made or used: a missing or unreadable file, a wrong or missing
    password, something that is not an ECDSA key. One line, exit 2."""


class VerificationFailed(ConveyorError):
    """A signature or an attestation does not hold for the bytes and key given: the
    artifact, its signature or its provenance was changed, or another key signed it.
    Exit 1, as a failed gate: the check ran and said no."""

    exit_code = 1


@dataclass(frozen=True)
class SigningKey:
    """A private key ready to sign, with where it came from and its key id."""

    private_key: EllipticCurvePrivateKey
    path: str
    key_id: str


def generate_key(password: str | bytes) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair: (private key as PKCS#8 PEM encrypted with `password`,
    public key as SubjectPublicKeyInfo PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    secret = password.encode() if isinstance(password, str) else password
    if not secret:
        # BestAvailableEncryption refuses an empty password; an unencrypted key on disk
        # is what the password is there to prevent.
        raise SigningError(f"the password is empty: set {PASSWORD_VARIABLE} to a password")
    private_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    )
    return private_pem, public_pem(private_key.public_key())


def public_pem(public_key: EllipticCurvePublicKey) -> bytes:
    """The public key as the `.pub` file holds it (SubjectPublicKeyInfo PEM, as cosign's)."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(public_key: EllipticCurvePublicKey) -> str:
    """The key's id: the SHA-256 (hex) of its DER SubjectPublicKeyInfo, the same for the
    private key and its `.pub`; the DSSE envelope names its signer by it."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def password_from_environment(environ: Mapping[str, str] | None = None) -> bytes:
    """`CONVEYOR_SIGNING_PASSWORD`'s value; a one-line error when it is not set."""
    env = os.environ if environ is None else environ
    value = env.get(PASSWORD_VARIABLE)
    if value is None:
        raise SigningError(
            f"the signing key is encrypted and {PASSWORD_VARIABLE} is not set: "
            "set it to the key's password"
        )
    return value.encode()


def load_private_key(
    path: str | os.PathLike[str],
    password: str | bytes | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> EllipticCurvePrivateKey:
    """The ECDSA private key in the PEM file at `path`. An encrypted key is opened with
    `password`, else with `CONVEYOR_SIGNING_PASSWORD`; an unencrypted PEM (one openssl
    wrote) needs none. Every failure is a one-line `SigningError` naming the file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    name = os.fspath(path)
    data = _read_key_file(name, "signing key")
    if any(header in data for header in _COSIGN_KEY_HEADERS):
        raise SigningError(
            f"{name}: a key in cosign's own format, which only cosign reads: "
            "make one with `conveyor artifacts keygen`"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: the password is needed
        key = _decrypt(name, data, password, environ)
    except ValueError:
        raise SigningError(f"{name}: not a PEM private key") from None
    except Exception as exc:  # cryptography's UnsupportedAlgorithm and kin
        raise SigningError(f"{name}: cannot read the private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningError(
            f"{name}: not an ECDSA key (signatures are ECDSA over SHA-256, as cosign's)"
        )
    return key


def load_public_key(path: str | os.PathLike[str]) -> EllipticCurvePublicKey:
    """The ECDSA public key in the PEM file at `path` (a `.pub` of ours or cosign's)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    name = os.fspath(path)
    data = _read_key_file(name, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        hint = " (it is a private key: give the .pub)" if b"PRIVATE KEY-----" in data else ""
        raise SigningError(f"{name}: not a PEM public key{hint}") from None
    except Exception as exc:
        raise SigningError(f"{name}: cannot read the public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningError(f"{name}: not an ECDSA public key")
    return key


def signing_key(
    configured: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> SigningKey | None:
    """The key a run signs with: `CONVEYOR_SIGNING_KEY` when set (it wins, as a variable
    over a file should), else `configured` (the config's path); None when neither names
    one, and the run does not sign. Its password comes from `CONVEYOR_SIGNING_PASSWORD`."""
    env = os.environ if environ is None else environ
    path = env.get(KEY_VARIABLE) or (os.fspath(configured) if configured else None)
    if not path:
        return None
    private_key = load_private_key(path, environ=env)
    return SigningKey(private_key=private_key, path=path, key_id=key_id(private_key.public_key()))


def file_sha256(path: str | os.PathLike[str]) -> bytes:
    """The SHA-256 of a file's content, read in chunks (a file of gigabytes costs no
    more memory than a small one)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def sign_digest(private_key: EllipticCurvePrivateKey, sha256: bytes) -> str:
    """The signature over content whose SHA-256 is `sha256` (32 bytes): base64 of the
    DER ECDSA signature, what `sign` gives for the content itself."""
    if len(sha256) != hashlib.sha256().digest_size:
        raise ValueError(f"a SHA-256 digest is 32 bytes, not {len(sha256)}")
    der = private_key.sign(sha256, _prehashed())
    return base64.b64encode(der).decode("ascii")


@functools.cache
def _prehashed() -> ECDSA:
    """ECDSA over a SHA-256 given as a digest: made once, not once per file signed."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    return ec.ECDSA(utils.Prehashed(hashes.SHA256()))


def sign(private_key: EllipticCurvePrivateKey, data: bytes | str | os.PathLike[str]) -> str:
    """The signature of `data`: bytes are the content itself; a str or path names a file,
    read in chunks. Base64 of the DER ECDSA signature over SHA-256, as cosign's."""
    return sign_digest(private_key, _sha256_of(data))


def verify_digest(public_key: EllipticCurvePublicKey, sha256: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` signs content whose SHA-256 is `sha256` under `public_key`
    (False, too, for a signature that is not base64 or not DER)."""
    from cryptography.exceptions import InvalidSignature

    try:
        # cosign and `base64` may end the file with a newline; whitespace is not data.
        der = base64.b64decode("".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(der, sha256, _prehashed())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(
    public_key: EllipticCurvePublicKey, data: bytes | str | os.PathLike[str], signature_b64: str
) -> bool:
    """Whether `signature_b64` signs `data` (bytes: the content; str or path: a file,
    read in chunks) under `public_key`."""
    return verify_digest(public_key, _sha256_of(data), signature_b64)


def signature_name(file_name: str) -> str:
    """Where a file's signature is kept: `<file>.sig`, beside it (cosign's habit)."""
    return file_name + SIGNATURE_SUFFIX


def _sha256_of(data: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(data, bytes):
        return hashlib.sha256(data).digest()
    try:
        return file_sha256(data)
    except OSError as exc:
        raise SigningError(f"{os.fspath(data)}: cannot read: {exc.strerror}") from None


def _decrypt(
    name: str, data: bytes, password: str | bytes | None, environ: Mapping[str, str] | None
) -> PrivateKeyTypes:
    """The encrypted private key `data`, opened with `password` or the variable's."""
    from cryptography.hazmat.primitives import serialization

    if password is None:
        secret, source = password_from_environment(environ), f" (from {PASSWORD_VARIABLE})"
    else:
        secret, source = (password.encode() if isinstance(password, str) else password), ""
    try:
        return serialization.load_pem_private_key(data, password=secret)
    except ValueError:
        # cryptography says "Bad decrypt. Incorrect password?" for a wrong password, and
        # nothing more useful for a damaged file; both read the same to a user.
        raise SigningError(
            f"{name}: cannot decrypt the signing key: wrong password{source} or a damaged file"
        ) from None
    except Exception as exc:
        raise SigningError(f"{name}: cannot read the private key ({exc})") from None


def _read_key_file(name: str, what: str) -> bytes:
    try:
        with open(name, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise SigningError(f"{name}: no such {what} file") from None
    except IsADirectoryError:
        raise SigningError(f"{name}: a directory, not a {what} file") from None
    except OSError as exc:
        raise SigningError(f"{name}: cannot read the {what}: {exc.strerror}") from None
