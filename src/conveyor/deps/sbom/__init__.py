"""Software bills of materials from the dependency inventory: CycloneDX 1.6 JSON
(`cyclonedx`) and SPDX 2.3 JSON (`spdx`), each one string a command writes or an
artifact version keeps.

Both are drawn from one graph (`conveyor.deps.sbom.graph.build`): one package per
package URL (a package pinned by several lockfiles, or installed at several places by
one, is one package listing each place), the project at its root, and the edges the
lockfiles keep. What each format makes of it is said in `cyclonedx_json` and
`spdx_json`.

Reproducible: with SOURCE_DATE_EPOCH set, the document's time is that instant and its
identity (CycloneDX's serial number, SPDX's namespace) is derived from its content, so
two runs on the same inventory write the same bytes; without it, the time is now and
the identity a random UUID, as both specifications ask of a new document.

Owns: the SBOM formats. The inventory (what lockfiles pin) and license normalisation
are other modules': licenses come in as a mapping `purl -> SPDX expression`, else as the
lockfile states them, kept when they parse as SPDX.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from conveyor.deps.sbom.graph import Project, project_of

if TYPE_CHECKING:
    from conveyor.deps.inventory import Inventory

__all__ = ["FORMATS", "Project", "cyclonedx", "project_of", "render", "spdx"]

FORMATS = ("cyclonedx-json", "spdx-json")
"""The formats `render` writes, as `conveyor deps sbom --format` names them."""


def cyclonedx(
    inventory: Inventory,
    *,
    project: Project,
    licenses: Mapping[str, str] | None = None,
    dev: bool = True,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The inventory as a CycloneDX 1.6 JSON document (see `cyclonedx_json`).

    `licenses`: purl -> SPDX expression, preferred over what the lockfile says; `dev`:
    False leaves out the packages only development needs; `environ` (default the
    process's) is read for SOURCE_DATE_EPOCH."""
    from conveyor.deps.sbom.cyclonedx_json import write
    from conveyor.deps.sbom.graph import build, creation

    graph = build(inventory, project, licenses=licenses, dev=dev)
    return write(graph, creation(environ))


def spdx(
    inventory: Inventory,
    *,
    project: Project,
    licenses: Mapping[str, str] | None = None,
    dev: bool = True,
    environ: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> str:
    """The inventory as an SPDX 2.3 JSON document (see `spdx_json`); the arguments as
    `cyclonedx`'s. `namespace`: the document's URI (unique to this document); by
    default one is made from the project's name and a UUID."""
    from conveyor.deps.sbom.graph import build, creation
    from conveyor.deps.sbom.spdx_json import write

    graph = build(inventory, project, licenses=licenses, dev=dev)
    return write(graph, creation(environ), namespace=namespace)


def render(
    fmt: str,
    inventory: Inventory,
    *,
    project: Project,
    licenses: Mapping[str, str] | None = None,
    dev: bool = True,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The document in `fmt`, one of FORMATS."""
    if fmt == "cyclonedx-json":
        return cyclonedx(inventory, project=project, licenses=licenses, dev=dev, environ=environ)
    if fmt == "spdx-json":
        return spdx(inventory, project=project, licenses=licenses, dev=dev, environ=environ)
    raise ValueError(f"unknown SBOM format {fmt!r}; one of {', '.join(FORMATS)}")
