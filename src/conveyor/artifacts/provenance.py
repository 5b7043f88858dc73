"""Where a version came from, as SLSA says it: an in-toto Statement v1 whose predicate is
SLSA Provenance v1, in a DSSE envelope signed with the run's signing key.

The statement names the version's files (subjects, by SHA-256) and how they were made:
`buildDefinition` (buildType; externalParameters: the pipeline file and job;
resolvedDependencies: the job's inputs and upstream artifacts, by digest) and
`runDetails` (the builder's id; the invocation id, start and finish). The envelope
signs DSSE's pre-authentication encoding of the payload (https://github.com/secure-
systems-lab/dsse/blob/master/protocol.md), with the same ECDSA over SHA-256 as a
blob's signature, so securesystemslib, in-toto and cosign's `verify-blob-attestation`
read it. It is kept as `<name>-<version>.intoto.jsonl`, one envelope a line, the name
the SLSA GitHub generators give theirs.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from conveyor.artifacts.signing import VerificationFailed, key_id
from conveyor.urls import without_userinfo

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "urn:conveyor:build-type:job:v1"
"""What a Conveyor job's externalParameters mean (the pipeline file and the job): a URN,
since the project has no address of its own to put a URL under."""

# A resolved dependency given as (ref, digest) and named by a URI ('git+https://...',
# 'conveyor-artifact:app@1.2') goes in `uri`; anything else ('src/main.c') is a `name`.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# git's scp-like remote syntax, `[user@]host:path` (no scheme, no slash before the colon).
_SCP = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$")


class Resource(NamedTuple):
    """A SLSA v1 ResourceDescriptor: a `uri` and/or a `name`, its digests
    ({'sha256': hex}, {'gitCommit': sha}), and annotations. (A NamedTuple: a job
    with 10,000 inputs makes 10,000 of them.)"""

    digest: Mapping[str, str]
    uri: str | None = None
    name: str | None = None
    annotations: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.uri is not None:
            out["uri"] = self.uri
        if self.name is not None:
            out["name"] = self.name
        out["digest"] = {alg: value.lower() for alg, value in self.digest.items()}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def source(
    url: str | None, *, commit: str, branch: str | None, tag: str | None, root: str
) -> Resource:
    """The source repository at `commit`, as SLSA names a git source: uri
    `git+<url>@refs/heads/<branch>` (or `refs/tags/<tag>`), digest {'gitCommit': sha}.
    `url` is the checkout's remote (its credentials left out; git's `host:path` form
    written as ssh://); without one, the checkout's own directory (`root`) as a file URL."""
    if url is None:
        where = "file://" + os.path.abspath(root)
    else:
        url = url.removeprefix("git+")
        scp = None if "://" in url else _SCP.match(url)
        if scp is not None:
            url = f"ssh://{scp['host']}/{scp['path'].lstrip('/')}"
        elif not _URI.match(url):
            url = "file://" + os.path.abspath(os.path.join(root, url))
        where = without_userinfo(url)
    ref = f"refs/heads/{branch}" if branch else f"refs/tags/{tag}" if tag else None
    return Resource({"gitCommit": commit}, uri=f"git+{where}" + (f"@{ref}" if ref else ""))


def statement(
    subjects: Iterable[tuple[str, str]],
    *,
    build_type: str = BUILD_TYPE,
    builder_id: str,
    external_parameters: Mapping[str, Any],
    internal_parameters: Mapping[str, Any] | None = None,
    resolved_dependencies: Iterable[Resource | tuple[str, Mapping[str, str]]] = (),
    started_on: datetime | str | None = None,
    finished_on: datetime | str | None = None,
    invocation_id: str | None = None,
) -> dict[str, Any]:
    """The in-toto Statement v1 with a SLSA Provenance v1 predicate for `subjects`
    ((name, sha256 hex) each). `resolved_dependencies` are Resources, or (uri or name,
    digests: {'sha256': hex, ...}); times are datetimes (UTC if naive) or RFC 3339 strings."""
    subject = [{"name": name, "digest": {"sha256": _hex256(sha, name)}} for name, sha in subjects]
    if not subject:
        raise ValueError("a provenance statement needs at least one subject")
    build_definition: dict[str, Any] = {
        "buildType": build_type,
        "externalParameters": dict(external_parameters),
    }
    if internal_parameters:
        build_definition["internalParameters"] = dict(internal_parameters)
    dependencies = [
        d.to_json() if isinstance(d, Resource) else _resource(*d) for d in resolved_dependencies
    ]
    if dependencies:
        build_definition["resolvedDependencies"] = dependencies
    metadata: dict[str, str] = {}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    if started_on is not None:
        metadata["startedOn"] = _timestamp(started_on)
    if finished_on is not None:
        metadata["finishedOn"] = _timestamp(finished_on)
    run_details: dict[str, Any] = {"builder": {"id": builder_id}}
    if metadata:
        run_details["metadata"] = metadata
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {"buildDefinition": build_definition, "runDetails": run_details},
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def envelope(
    statement: Mapping[str, Any],
    private_key: EllipticCurvePrivateKey,
    keyid: str | None = None,
) -> dict[str, Any]:
    """`statement` in a DSSE envelope signed with `private_key` (keyid: the key's id,
    `signing.key_id`, unless given)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    payload = json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {
                "keyid": key_id(private_key.public_key()) if keyid is None else keyid,
                "sig": base64.b64encode(signature).decode("ascii"),
            }
        ],
    }


def verify_envelope(
    envelope: Mapping[str, Any], public_key: EllipticCurvePublicKey
) -> dict[str, Any]:
    """The statement in `envelope`, once a signature in it verifies under `public_key`
    and it is an in-toto Statement v1 of SLSA Provenance v1; else `VerificationFailed`
    saying which of those failed."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise VerificationFailed(
            f"provenance: payloadType is {payload_type!r}, not {PAYLOAD_TYPE!r}"
            if payload_type is not None
            else "provenance: not a DSSE envelope (no payloadType)"
        )
    payload = _b64(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise VerificationFailed("provenance: the envelope has no signatures")
    message = pae(payload_type, payload)
    for entry in signatures:
        sig = _b64(entry.get("sig") if isinstance(entry, Mapping) else None, "signature")
        try:
            public_key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
            break
        except (InvalidSignature, ValueError):
            continue
    else:
        raise VerificationFailed(
            f"provenance: no signature verifies with the key {key_id(public_key)[:16]}: "
            "the envelope was changed or another key signed it"
        )
    try:
        document = json.loads(payload)
    except ValueError:
        raise VerificationFailed("provenance: the signed payload is not JSON") from None
    if not isinstance(document, dict) or document.get("_type") != STATEMENT_TYPE:
        raise VerificationFailed(f"provenance: the payload is not an in-toto {STATEMENT_TYPE}")
    if document.get("predicateType") != PREDICATE_TYPE:
        raise VerificationFailed(
            f"provenance: predicateType is {document.get('predicateType')!r}, "
            f"not {PREDICATE_TYPE!r}"
        )
    return document


def subject_mismatches(statement: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    """What differs between a verified statement's subjects and `files` (name ->
    sha256 hex, as stored now), one line each; empty when they agree."""
    attested: dict[str, str] = {}
    for subject in statement.get("subject", ()):
        if isinstance(subject, Mapping):
            attested[str(subject.get("name"))] = str(subject.get("digest", {}).get("sha256"))
    problems = []
    for name, sha in files.items():
        if name not in attested:
            problems.append(f"{name}: not in the provenance")
        elif attested[name] != sha.lower():
            problems.append(
                f"{name}: sha256 {sha[:12]}... but the provenance says {attested[name][:12]}..."
            )
    problems.extend(f"{name}: in the provenance but not stored" for name in attested.keys() - files)
    return problems


def provenance_name(name: str, version: str) -> str:
    """The provenance file's name: `<name>-<version>.intoto.jsonl`."""
    return f"{name}-{version}.intoto.jsonl"


def dumps_jsonl(envelopes: Sequence[Mapping[str, Any]]) -> bytes:
    """Envelopes as a `.intoto.jsonl` file holds them: one JSON object a line."""
    return b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in envelopes)


def loads_jsonl(data: bytes) -> list[dict[str, Any]]:
    """The envelopes of a `.intoto.jsonl` file (`VerificationFailed` on a line that is
    not a JSON object, with its number)."""
    out = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, dict):
            raise VerificationFailed(f"provenance: line {number} is not a JSON envelope")
        out.append(item)
    return out


def _resource(ref: str, digest: Mapping[str, str]) -> dict[str, Any]:
    key = "uri" if _URI.match(ref) else "name"
    return {key: ref, "digest": {alg: value.lower() for alg, value in digest.items()}}


def _hex256(value: str, name: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError(f"{name}: not a SHA-256 in hex: {value!r}")
    return value.lower()


def _timestamp(value: datetime | str) -> str:
    """RFC 3339 in UTC with a Z, as SLSA's Timestamp fields are written."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationFailed(f"provenance: the envelope has no {what}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed(f"provenance: the {what} is not base64") from None
