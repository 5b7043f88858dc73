"""The SBOM graph as CycloneDX 1.6 JSON, written with cyclonedx-python-lib.

- metadata: the time (see `graph.creation`), the tool (conveyor and its version), and
  the project as the root component (type application; bom-ref and purl its package
  URL when a manifest names it, else 'conveyor:project/NAME'). The workspace's own
  packages other than the project are the root's subcomponents (nested under it: they
  are part of what the SBOM describes, not dependencies of it), with their own edges.
- components: one per package URL, sorted; bom-ref = purl; type library; group the
  npm scope ('@types'), Maven groupId or Composer vendor, name the rest (a Go module
  keeps its whole path as its name, as cyclonedx-gomod writes it); hashes, every digest
  the lockfiles record; licenses (an SPDX id as `license.id`, a compound expression or
  a LicenseRef- as `expression`, anything else as `license.name`); one property
  `conveyor:lockfile` per lockfile entry it was read from ('path:line').
- scope: prod is `required`; dev is `excluded` (CycloneDX: "not reachable within a
  call graph at runtime" — used for tests and tooling, which is what a dev dependency
  is; `optional` means used at runtime when present, which it is not); unknown is left
  out (the spec then reads it as required, the cautious reading).
- dependencies: every component (the root and subcomponents too) with its dependsOn,
  as `graph.build` draws them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Ecosystem, Scope

if TYPE_CHECKING:
    from cyclonedx.model.component import Component
    from cyclonedx.model.license import License as CdxLicense

    from conveyor.deps.sbom.graph import Creation, Graph, License, Package

LOCKFILE_PROPERTY = "conveyor:lockfile"
"""The property naming a lockfile entry a component was read from ('path:line')."""

_GROUPED = (Ecosystem.NPM, Ecosystem.MAVEN, Ecosystem.PACKAGIST)
_ORDER = ("$schema", "bomFormat", "specVersion", "serialNumber", "version", "metadata")


def write(graph: Graph, when: Creation) -> str:
    """The CycloneDX 1.6 JSON text (indented, ending in a newline)."""
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.bom_ref import BomRef
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6

    from conveyor import __version__

    members = [_component(p, member=True) for p in graph.members]
    packages = [_component(p, member=False) for p in graph.packages]
    project = graph.project
    root = Component(
        type=ComponentType.APPLICATION,
        bom_ref=graph.root_ref,
        name=_split(project.name, project.ecosystem)[1],
        group=_split(project.name, project.ecosystem)[0],
        version=project.version,
        purl=_purl(project.purl) if project.purl and project.purl == graph.root_ref else None,
        licenses=_licenses(graph.root_license),
        components=members,
    )
    tool = Component(type=ComponentType.APPLICATION, name="conveyor", version=__version__)
    bom = Bom(
        metadata=BomMetaData(
            timestamp=when.time,
            tools=ToolRepository(components=[tool]),
            component=root,
        ),
        components=packages,
    )
    refs: dict[str, BomRef] = {str(c.bom_ref.value): c.bom_ref for c in (root, *members, *packages)}

    def dependency(ref: str, on: tuple[str, ...]) -> Dependency:
        return Dependency(ref=refs[ref], dependencies=[Dependency(ref=refs[d]) for d in on])

    edges = [(graph.root_ref, graph.dependencies)]
    edges += [(p.ref, p.dependencies) for p in graph.all_packages()]
    bom.dependencies = [dependency(ref, on) for ref, on in edges]
    # What Bom.validate checks (every edge's ends are components, one per bom-ref) holds
    # by construction; its check is quadratic (a linear search per component).
    bom.validate = lambda: True  # type: ignore[method-assign]
    data: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    if when.reproducible:
        data.pop("serialNumber", None)
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        data["serialNumber"] = uuid.uuid5(uuid.NAMESPACE_URL, f"conveyor-sbom:{digest}").urn
    ordered = {k: data[k] for k in _ORDER if k in data}
    ordered.update((k, v) for k, v in data.items() if k not in ordered)
    return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"


def _component(package: Package, *, member: bool) -> Component:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.component import Component, ComponentScope, ComponentType

    algorithms = {
        "md5": HashAlgorithm.MD5,
        "sha1": HashAlgorithm.SHA_1,
        "sha256": HashAlgorithm.SHA_256,
        "sha384": HashAlgorithm.SHA_384,
        "sha512": HashAlgorithm.SHA_512,
        "sha3-256": HashAlgorithm.SHA3_256,
        "sha3-384": HashAlgorithm.SHA3_384,
        "sha3-512": HashAlgorithm.SHA3_512,
        "blake2b-256": HashAlgorithm.BLAKE2B_256,
        "blake2b-384": HashAlgorithm.BLAKE2B_384,
        "blake2b-512": HashAlgorithm.BLAKE2B_512,
        "blake3": HashAlgorithm.BLAKE3,
    }
    scopes = {Scope.PROD: ComponentScope.REQUIRED, Scope.DEV: ComponentScope.EXCLUDED}
    purl = _purl(package.ref)
    if package.ecosystem in _GROUPED and purl.namespace:
        group, name = purl.namespace, purl.name
    else:
        group, name = None, package.name
    return Component(
        type=ComponentType.LIBRARY,
        bom_ref=package.ref,
        name=name,
        group=group,
        version=package.version,
        purl=purl,
        scope=None if member or package.scope is None else scopes[package.scope],
        hashes=[
            HashType(alg=algorithms[alg], content=hexdigest) for alg, hexdigest in package.hashes
        ],
        licenses=_licenses(package.license),
        properties=[Property(name=LOCKFILE_PROPERTY, value=where) for where in package.locations],
    )


def _split(name: str, ecosystem: Ecosystem | None) -> tuple[str | None, str]:
    """(group, name) of the project's own name."""
    if ecosystem is Ecosystem.NPM and name.startswith("@") and "/" in name:
        scope, _, rest = name.partition("/")
        return scope, rest
    return None, name


def _purl(text: str) -> Any:
    from packageurl import PackageURL

    return PackageURL.from_string(text)


def _licenses(found: License | None) -> list[CdxLicense]:
    if found is None:
        return []
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.spdx import fixup_id  # its import builds the SPDX license index

    if found.spdx is not None:
        known = fixup_id(found.spdx)
        if known is not None:
            return [DisjunctiveLicense(id=known)]
        return [LicenseExpression(found.spdx)]
    return [DisjunctiveLicense(name=found.name)]
