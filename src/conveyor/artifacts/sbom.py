"""The SBOM attached to every artifact version: the workspace's, at the commit the
version was built from, as `conveyor deps sbom` writes it (CycloneDX 1.6 JSON).

Drawing it reads every lockfile and looks licenses up in the installed environments:
seconds on a large inventory. So it is kept in the store, keyed by the lockfiles' paths
and content (and Conveyor's version): a run whose lockfiles did not change attaches the
SBOM an earlier run drew, without reading them again. A workspace without lockfiles
has no SBOM (None).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading

from conveyor import __version__
from conveyor.fsutil import atomic_write


def lockfiles(root: str) -> list[str]:
    """The workspace's lockfiles (workspace-relative), as `conveyor deps` finds them."""
    from conveyor.deps.inventory import discover
    from conveyor.workspace.listing import tracked_files

    return discover(tracked_files(root))


def sbom_key(root: str, paths: list[str]) -> str:
    """What the SBOM depends on: the lockfiles' paths and bytes (and the project's
    manifests, which name it at the SBOM's root)."""
    h = hashlib.sha256(f"conveyor {__version__}\0".encode())
    manifests = ["pyproject.toml", "package.json", "Cargo.toml"]
    for path in [*paths, *manifests]:
        h.update(path.encode() + b"\0")
        try:
            with open(os.path.join(root, path), "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
        except OSError:
            h.update(b"-")
    for name in ("SOURCE_DATE_EPOCH",):
        h.update(f"{name}={os.environ.get(name, '')}\0".encode())
    return h.hexdigest()


def draw(root: str, paths: list[str]) -> bytes:
    """The SBOM of these lockfiles (CycloneDX 1.6 JSON), as `conveyor deps sbom`."""
    from conveyor.deps.inventory import read_lockfiles
    from conveyor.deps.license_sources import spdx_licenses
    from conveyor.deps.sbom import cyclonedx, project_of

    inventory = read_lockfiles(root, paths)
    licenses = spdx_licenses(root, inventory.components)
    return cyclonedx(inventory, project=project_of(root), licenses=licenses).encode()


class WorkspaceSbom:
    """The workspace's SBOM for one run: drawn (or found in the cache directory) the
    first time a version asks for it, then the same bytes for every version."""

    def __init__(self, root: str, cache_dir: str) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._done = False
        self._document: bytes | None = None
        self.error: str | None = None
        """Why there is none, when drawing it failed (said once, never the run's failure)."""

    def __call__(self) -> bytes | None:
        with self._lock:
            if not self._done:
                self._done = True
                try:
                    self._document = self._get()
                except Exception as exc:  # an SBOM that cannot be drawn is not a failed build
                    self.error = f"{type(exc).__name__}: {exc}"
                    self._document = None
            return self._document

    def _get(self) -> bytes | None:
        paths = lockfiles(self.root)
        if not paths:
            return None
        key = sbom_key(self.root, paths)
        cached = os.path.join(self.cache_dir, f"{key}.cdx.json")
        with contextlib.suppress(OSError), open(cached, "rb") as fh:
            return fh.read()
        document = draw(self.root, paths)
        with contextlib.suppress(OSError):  # a cache that cannot be written is no cache
            atomic_write(cached, document, makedirs=True)
        return document
