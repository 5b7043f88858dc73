"""Attachments kept in the version's record (`Attachment.content`) rather than as blobs:
which ones may be, how their bytes are read whichever way they are kept, and where they
are put when something needs a file (a fetch's archive, a publish target).

A file's signature (cosign's format: base64 of an ASN.1 ECDSA signature, about 100
bytes) is kept inline: a version of 10,000 files has as many signatures, and creating a
file for each took longer than hashing and signing the files (0.25 to 0.6 ms a file on
this machine's disk; signing is 36 us)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator

from conveyor.artifacts.backend import Store
from conveyor.artifacts.record import Attachment

INLINE_KINDS = frozenset({"signature"})
INLINE_LIMIT = 1024
"""The largest document kept inline, in bytes (a signature is about 100)."""


def inline_text(kind: str, data: bytes) -> str | None:
    """The document as the record's text, when it is kept inline (else None): a
    signature, small, and ASCII (so its bytes are the text's, exactly)."""
    if kind not in INLINE_KINDS or len(data) > INLINE_LIMIT or not data.isascii():
        return None
    return data.decode("ascii")


def inline_attachment(
    kind: str, name: str, text: str, subject: str | None, media_type: str, created: str
) -> Attachment:
    data = text.encode("ascii")
    return Attachment(
        kind=kind,
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        subject=subject,
        media_type=media_type,
        created=created,
        content=text,
    )


def content_of(attachment: Attachment) -> bytes | None:
    """The bytes of an inline attachment (None: it is a blob)."""
    return None if attachment.content is None else attachment.content.encode()


def read_attachment(store: Store, attachment: Attachment) -> bytes:
    """An attachment's bytes, from the record or from its blob."""
    inline = content_of(attachment)
    if inline is not None:
        return inline
    with open(store.attachment_path(attachment), "rb") as fh:
        return fh.read()


@contextlib.contextmanager
def local_paths(store: Store, attachments: Iterable[Attachment]) -> Iterator[dict[str, str]]:
    """A local file for each attachment, by name, while the block runs: its blob, or
    (inline) a file in a temporary directory removed afterwards."""
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="conveyor-attachments-") as tmp:
        for i, attachment in enumerate(attachments):
            inline = content_of(attachment)
            if inline is None:
                out[attachment.name] = store.attachment_path(attachment)
                continue
            path = os.path.join(tmp, str(i))
            with open(path, "wb") as fh:
                fh.write(inline)
            out[attachment.name] = path
        yield out
