"""The `VersionCheck` that verifies a version's signatures and provenance against a
public key (conveyor.artifacts.attest.verify_version), for `artifacts verify`, `fetch`
and `publish`. It runs only once every blob matched its digest (verify.verify), so the
digests it checks the signatures over are the record's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from conveyor.artifacts.backend import Store
from conveyor.artifacts.inline import read_attachment
from conveyor.artifacts.record import ArtifactVersion, Attachment
from conveyor.artifacts.verify import Problem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

VERIFY_KEY_VARIABLE = "CONVEYOR_VERIFY_KEY"


class SignatureCheck:
    """Every file's signature and the provenance, under one public key."""

    name = "signatures and provenance"

    def __init__(self, public_key: EllipticCurvePublicKey, key_path: str) -> None:
        self.public_key = public_key
        self.key_path = key_path

    def __call__(self, store: Store, version: ArtifactVersion) -> Sequence[Problem]:
        from conveyor.artifacts.attest import verify_version

        def read(attachment: Attachment) -> bytes:
            return read_attachment(store, attachment)

        lines = verify_version(
            version,
            self.public_key,
            digests={f.path: f.sha256 for f in version.files},
            read=read,
        )
        return [_problem(line) for line in lines]


def _problem(line: str) -> Problem:
    subject, _, message = line.partition(": ")
    return Problem(subject, message or line)


def signature_check(path: str) -> SignatureCheck:
    """The check for the public key at `path` (a SigningError when it cannot be read)."""
    from conveyor.artifacts.signing import load_public_key

    return SignatureCheck(load_public_key(path), path)
