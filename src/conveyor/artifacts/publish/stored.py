"""A stored version published: its files (and, for a directory or a bucket, its
attachments: the signatures beside their files, the provenance, the SBOM) handed to
every target at once. A package index takes distributions only, so it gets the files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from conveyor.artifacts.backend import Store
from conveyor.artifacts.inline import local_paths
from conveyor.artifacts.publish import PublishFailure, PublishFile, PublishReceipt, Target
from conveyor.artifacts.publish import publish_all as _publish_all
from conveyor.artifacts.record import ArtifactVersion

_FILES_ONLY = ("pypi",)


def files_of(
    store: Store, version: ArtifactVersion, attachments: Mapping[str, str] | None
) -> list[PublishFile]:
    """What a target is given: each file's blob under its path, then (when given: a
    local file for each by name, `inline.local_paths`) the attachments."""
    out = [
        PublishFile(f.path, path, f.sha256, f.size, f.media_type)
        for f, path in store.files(version)
    ]
    if attachments is not None:
        out += [
            PublishFile(a.name, attachments[a.name], a.sha256, a.size, a.media_type)
            for a in version.attachments
        ]
    return out


def publish_version(
    store: Store, version: ArtifactVersion, targets: Sequence[Target], *, retries: int = 3
) -> list[PublishReceipt | PublishFailure]:
    """Every target at once, one result each in the order given."""
    groups = {
        whole: [t for t in targets if (t.kind not in _FILES_ONLY) == whole]
        for whole in (True, False)
    }
    with (
        local_paths(store, version.attachments if groups[True] else ()) as local,
        ThreadPoolExecutor(2, thread_name_prefix="publish-group") as pool,
    ):
        futures = {
            whole: pool.submit(
                _publish_all,
                group,
                version.ref,
                files_of(store, version, local if whole else None),
                retries=retries,
            )
            for whole, group in groups.items()
            if group
        }
        done = {whole: iter(f.result()) for whole, f in futures.items()}
    return [next(done[t.kind not in _FILES_ONLY]) for t in targets]
