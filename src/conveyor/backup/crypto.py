"""The repository's key and what it does: chunk ids, sealing and opening stored bytes.

Without a password a chunk's id is its SHA-256 and stored bytes are only compressed.
With one (CONVEYOR_BACKUP_PASSWORD), scrypt turns it and the repository's salt into two
keys: AES-256-GCM seals everything stored (chunks, indexes, snapshots), and chunk ids are
HMAC-SHA256 of the content, so the names in the repository say nothing of what is in it
(a plain SHA-256 would let anyone holding a file check whether it was backed up). The
chunker's gear table is seeded from the key too, so chunk boundaries leak nothing either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PASSWORD_ENV = "CONVEYOR_BACKUP_PASSWORD"  # pragma: allowlist secret
# scrypt's cost: about 0.1 s and 32 MiB here, once per command.
SCRYPT_N = 1 << 15
SCRYPT_R = 8
SCRYPT_P = 1
_CHECK = b"conveyor-backup-key-check"
_NONCE = 12


class WrongKey(Exception):
    """The bytes were not sealed with this key, or were changed since."""


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def to_json(self) -> dict[str, object]:
        return {
            "kdf": "scrypt",
            "salt": base64.b64encode(self.salt).decode(),
            "n": self.n,
            "r": self.r,
            "p": self.p,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> KdfParams:
        salt = base64.b64decode(str(data["salt"]))
        n, r, p = (int(str(data[k])) for k in ("n", "r", "p"))
        return cls(salt, n, r, p)


class Key:
    """What a repository's bytes are sealed with; `Key(None)` for a plain repository."""

    def __init__(self, password: str | None, params: KdfParams | None) -> None:
        self.encrypted = password is not None and params is not None
        self._aead: AESGCM | None = None
        self._mac = b""
        self.seed = 0
        if password is not None and params is not None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            material = hashlib.scrypt(
                password.encode(),
                salt=params.salt,
                n=params.n,
                r=params.r,
                p=params.p,
                maxmem=256 << 20,
                dklen=64,
            )
            self._aead = AESGCM(material[:32])
            self._mac = material[32:]
            # pyfastcdc XORs the seed into its gear table, and shifts it left by one
            # in 64 bits: it must stay below 2**63.
            seed = hmac.digest(self._mac, b"chunker", "sha256")[:8]
            self.seed = int.from_bytes(seed, "big") >> 1 or 1

    def chunk_id(self, data: bytes | memoryview) -> str:
        """The name of a chunk: its SHA-256, or its HMAC-SHA256 under the key."""
        if self._aead is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.new(self._mac, data, "sha256").hexdigest()

    def seal(self, data: bytes) -> bytes:
        if self._aead is None:
            return data
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data, None)

    def open(self, data: bytes) -> bytes:
        """The plaintext; WrongKey when the bytes were sealed with another key or changed."""
        if self._aead is None:
            return data
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(data[:_NONCE], data[_NONCE:], None)
        except (InvalidTag, ValueError):
            raise WrongKey from None

    def check_value(self) -> str:
        """Sealed known bytes, kept in the repository's config to tell a wrong password."""
        return base64.b64encode(self.seal(_CHECK)).decode()

    def matches(self, check: str) -> bool:
        try:
            return self.open(base64.b64decode(check)) == _CHECK
        except (WrongKey, ValueError):
            return False
