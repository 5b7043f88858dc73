"""A stored version's signatures and provenance, made and checked in one call each: what
the store calls when it keeps a version (`attest`) and when `artifacts verify` checks
one (`verify_version`). The store keeps the bytes; this module decides what they are.

`attest` gives one `<file>.sig` per file of the version (`signing`) and the version's
`<name>-<version>.intoto.jsonl` (`provenance`), each with the `Attachment` the record
lists. `verify_version` checks them against a public key and the digests of the bytes
stored now, and names each thing that does not hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.artifacts import provenance
from conveyor.artifacts.record import ArtifactVersion, Attachment
from conveyor.artifacts.signing import (
    SigningKey,
    VerificationFailed,
    sign_digest,
    signature_name,
    verify_digest,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

SIGNATURE = "signature"
PROVENANCE = "provenance"


def attest(
    version: ArtifactVersion,
    key: SigningKey,
    *,
    builder_id: str,
    pipeline_file: str,
    started_on: datetime | str | None = None,
    finished_on: datetime | str | None = None,
    resolved_dependencies: Iterable[provenance.Resource | tuple[str, Mapping[str, str]]] = (),
    build_type: str = provenance.BUILD_TYPE,
) -> list[tuple[Attachment, bytes]]:
    """The attachments that sign and attest `version`: a signature per file (signed over
    the SHA-256 the record holds, so no file is read again), then the provenance
    envelope, each with its bytes for the store to keep."""
    out = []
    for file in version.files:
        text = sign_digest(key.private_key, bytes.fromhex(file.sha256)).encode("ascii")
        out.append((_attachment(SIGNATURE, signature_name(file.path), text, file.path), text))
    internal: dict[str, Any] = {"runId": version.run_id} if version.run_id else {}
    if version.build_number is not None:
        internal["buildNumber"] = version.build_number
    statement = provenance.statement(
        [(file.path, file.sha256) for file in version.files],
        build_type=build_type,
        builder_id=builder_id,
        external_parameters={"pipeline": pipeline_file, "job": version.job},
        internal_parameters=internal,
        resolved_dependencies=resolved_dependencies,
        started_on=started_on,
        finished_on=finished_on,
        invocation_id=f"{version.run_id}/{version.job}" if version.run_id else None,
    )
    jsonl = provenance.dumps_jsonl([provenance.envelope(statement, key.private_key, key.key_id)])
    name = provenance.provenance_name(version.name, version.version)
    out.append((_attachment(PROVENANCE, name, jsonl), jsonl))
    return out


def verify_version(
    version: ArtifactVersion,
    public_key: EllipticCurvePublicKey,
    *,
    digests: Mapping[str, str],
    read: Callable[[Attachment], bytes],
) -> list[str]:
    """What does not hold for `version` under `public_key`, one line each naming the
    file or attachment (empty: every file's signature and the provenance verify).
    `digests` are the SHA-256 (hex) of each file's bytes as stored now, by path;
    `read` gives an attachment's bytes."""
    problems: list[str] = []
    signatures = {a.subject: a for a in version.attachments if a.kind == SIGNATURE}
    for file in version.files:
        actual = digests.get(file.path)
        attachment = signatures.get(file.path)
        if actual is None:
            problems.append(f"{file.path}: missing from the store")
        elif attachment is None:
            problems.append(f"{file.path}: not signed (no {signature_name(file.path)})")
        elif not verify_digest(
            public_key, bytes.fromhex(actual), read(attachment).decode("ascii", "replace")
        ):
            problems.append(
                f"{file.path}: the signature {attachment.name} does not verify: "
                + (
                    "the file was changed"
                    if actual != file.sha256
                    else "the signature was changed, or another key signed it"
                )
            )
    problems.extend(_check_provenance(version, public_key, digests, read))
    return problems


def _check_provenance(
    version: ArtifactVersion,
    public_key: EllipticCurvePublicKey,
    digests: Mapping[str, str],
    read: Callable[[Attachment], bytes],
) -> list[str]:
    found = [a for a in version.attachments if a.kind == PROVENANCE]
    if not found:
        return [f"{version.ref}: no provenance"]
    problems: list[str] = []
    for attachment in found:
        try:
            envelopes = provenance.loads_jsonl(read(attachment))
            if not envelopes:
                raise VerificationFailed("provenance: the file holds no envelope")
            statements = [provenance.verify_envelope(e, public_key) for e in envelopes]
        except VerificationFailed as exc:
            problems.append(f"{attachment.name}: {exc.message.removeprefix('provenance: ')}")
            continue
        for statement in statements:
            problems.extend(
                f"{attachment.name}: {line}"
                for line in provenance.subject_mismatches(statement, digests)
            )
    return problems


def _attachment(kind: str, name: str, data: bytes, subject: str | None = None) -> Attachment:
    return Attachment(
        kind=kind,
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        subject=subject,
    )
