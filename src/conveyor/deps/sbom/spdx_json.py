"""The SBOM graph as SPDX 2.3 JSON, written with spdx-tools (imported here, when an SPDX
document is asked for: it takes about a second to import).

- The document: SPDXRef-DOCUMENT, named after the project ('name-version'), data
  license CC0-1.0, created by 'Tool: conveyor-VERSION' at the time `graph.creation`
  gives; its namespace the one given, else
  'https://spdx.org/spdxdocs/NAME-UUID' (the form the SPDX specification shows), the
  UUID derived from the document's content under SOURCE_DATE_EPOCH, random otherwise.
- Packages: the project (SPDXRef-Project, purpose APPLICATION), the workspace's own
  packages and one per third-party package URL (purpose LIBRARY), each with
  downloadLocation NOASSERTION, filesAnalyzed false, its checksums, licenseConcluded
  NOASSERTION (Conveyor concludes nothing), licenseDeclared the SPDX expression or
  NOASSERTION, the purl as a PACKAGE-MANAGER external reference, and a comment naming
  the lockfile entries it was read from. A license stated in words that are not SPDX
  becomes a LicenseRef- declared under hasExtractedLicensingInfos, its words as the
  text. A package's SPDXID is 'SPDXRef-Package-' and its purl's type, namespace, name
  and version in the characters SPDX allows, then eight hex digits of the purl's
  SHA-256 (two purls that read alike stay two ids).
- Relationships: DOCUMENT DESCRIBES the project; the project CONTAINS each of its own
  packages; the project (and each own package) DEPENDS_ON what it depends on, except a
  dev-scope package, which is DEV_DEPENDENCY_OF it (SPDX 2.3's way to say so); a
  third-party package DEPENDS_ON its dependencies (whatever their scope: a dev tool's
  own dependencies are what that tool needs to run). A package is so known to be dev
  when the project reaches it only through a DEV_DEPENDENCY_OF.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Scope

if TYPE_CHECKING:
    from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo
    from spdx_tools.spdx.model.package import Package
    from spdx_tools.spdx.model.relationship import Relationship

    from conveyor.deps.sbom.graph import Creation, Graph, License

ROOT_ID = "SPDXRef-Project"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")
_ORDER = (
    "spdxVersion",
    "dataLicense",
    "SPDXID",
    "name",
    "documentNamespace",
    "creationInfo",
    "documentDescribes",
    "packages",
    "relationships",
    "hasExtractedLicensingInfos",
)


def write(graph: Graph, when: Creation, *, namespace: str | None = None) -> str:
    """The SPDX 2.3 JSON text (indented, ending in a newline)."""
    from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
    from spdx_tools.spdx.model.actor import Actor, ActorType
    from spdx_tools.spdx.model.document import CreationInfo, Document
    from spdx_tools.spdx.model.package import PackagePurpose
    from spdx_tools.spdx.model.relationship import RelationshipType

    from conveyor import __version__

    ids = package_ids(graph)
    refs = _LicenseRefs()
    project = graph.project
    name = project.name if project.version is None else f"{project.name}-{project.version}"
    placeholder = "https://spdx.org/spdxdocs/conveyor-placeholder"
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=name,
        document_namespace=placeholder,
        creators=[Actor(ActorType.TOOL, f"conveyor-{__version__}")],
        created=when.time,
    )
    root = _package(
        ROOT_ID,
        project.name,
        project.version,
        project.purl if project.purl == graph.root_ref else None,
        (),
        graph.root_license,
        (),
        PackagePurpose.APPLICATION,
        refs,
    )
    packages = [root] + [
        _package(
            ids[p.ref],
            p.name,
            p.version,
            p.ref,
            p.hashes,
            p.license,
            p.locations,
            PackagePurpose.LIBRARY,
            refs,
        )
        for p in graph.all_packages()
    ]
    scope = {p.ref: p.scope for p in graph.all_packages()}
    ids[graph.root_ref] = ROOT_ID

    relationships: set[tuple[str, RelationshipType, str]] = {
        ("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, ROOT_ID)
    }

    def own(element: str, on: tuple[str, ...]) -> None:
        for ref in on:
            if scope.get(ref) is Scope.DEV:
                relationships.add((ids[ref], RelationshipType.DEV_DEPENDENCY_OF, element))
            else:
                relationships.add((element, RelationshipType.DEPENDS_ON, ids[ref]))

    own(ROOT_ID, graph.dependencies)
    for member in graph.members:
        relationships.add((ROOT_ID, RelationshipType.CONTAINS, ids[member.ref]))
        own(ids[member.ref], member.dependencies)
    for p in graph.packages:
        relationships.update(
            (ids[p.ref], RelationshipType.DEPENDS_ON, ids[d]) for d in p.dependencies
        )

    document = Document(
        creation_info=info,
        packages=packages,
        relationships=[_relationship(*r) for r in sorted(relationships, key=_order)],
        extracted_licensing_info=refs.infos(),
    )
    data: dict[str, Any] = DocumentConverter().convert(document)  # type: ignore[no-untyped-call]
    if namespace is None:
        if when.reproducible:
            digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
            unique = uuid.uuid5(uuid.NAMESPACE_URL, f"conveyor-spdx:{digest}")
        else:
            unique = uuid.uuid4()
        namespace = f"https://spdx.org/spdxdocs/{_safe(name)}-{unique}"
    data["documentNamespace"] = namespace
    ordered = {k: data[k] for k in _ORDER if k in data}
    ordered.update((k, v) for k, v in data.items() if k not in ordered)
    return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"


def package_ids(graph: Graph) -> dict[str, str]:
    """purl -> SPDXID of every package of the graph (see the module's docstring)."""
    from packageurl import PackageURL

    ids: dict[str, str] = {}
    taken = {ROOT_ID}
    for p in graph.all_packages():
        purl = PackageURL.from_string(p.ref)
        parts = (purl.type, purl.namespace, purl.name, purl.version)
        readable = "-".join(_safe(part) for part in parts if part)[:120]
        digest = hashlib.sha256(p.ref.encode()).hexdigest()
        spdx_id = f"SPDXRef-Package-{readable}-{digest[:8]}"
        if spdx_id in taken:  # eight hex digits alike: the whole digest then
            spdx_id = f"SPDXRef-Package-{readable}-{digest}"
        taken.add(spdx_id)
        ids[p.ref] = spdx_id
    return ids


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-") or "x"


def _order(r: tuple[str, Any, str]) -> tuple[str, str, str]:
    return r[0], r[1].name, r[2]


def _relationship(element: str, kind: Any, related: str) -> Relationship:
    from spdx_tools.spdx.model.relationship import Relationship

    return Relationship(element, kind, related)


def _package(
    spdx_id: str,
    name: str,
    version: str | None,
    purl: str | None,
    hashes: tuple[tuple[str, str], ...],
    license: License | None,
    locations: tuple[str, ...],
    purpose: Any,
    refs: _LicenseRefs,
) -> Package:
    from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
    from spdx_tools.spdx.model.package import (
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
    )
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion

    algorithms = {
        "md5": ChecksumAlgorithm.MD5,
        "sha1": ChecksumAlgorithm.SHA1,
        "sha256": ChecksumAlgorithm.SHA256,
        "sha384": ChecksumAlgorithm.SHA384,
        "sha512": ChecksumAlgorithm.SHA512,
        "sha3-256": ChecksumAlgorithm.SHA3_256,
        "sha3-384": ChecksumAlgorithm.SHA3_384,
        "sha3-512": ChecksumAlgorithm.SHA3_512,
        "blake2b-256": ChecksumAlgorithm.BLAKE2B_256,
        "blake2b-384": ChecksumAlgorithm.BLAKE2B_384,
        "blake2b-512": ChecksumAlgorithm.BLAKE2B_512,
        "blake3": ChecksumAlgorithm.BLAKE3,
    }
    external = (
        [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)]
        if purl
        else []
    )
    return Package(
        spdx_id=spdx_id,
        name=name,
        download_location=SpdxNoAssertion(),
        version=version,
        files_analyzed=False,
        checksums=[Checksum(algorithms[alg], digest) for alg, digest in hashes],
        license_concluded=SpdxNoAssertion(),
        license_declared=refs.declared(license),
        external_references=external,
        primary_package_purpose=purpose,
        comment=f"Pinned in {', '.join(locations)}." if locations else None,
    )


class _LicenseRefs:
    """The LicenseRef-s the document uses, each declared once."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    def declared(self, license: License | None) -> Any:
        from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion

        from conveyor.deps.sbom.graph import licensing

        if license is None:
            return SpdxNoAssertion()
        spdx_licensing = licensing()
        if license.spdx is not None:
            parsed = spdx_licensing.parse(license.spdx)
            for key in spdx_licensing.unknown_license_keys(parsed):
                self._texts.setdefault(key, key)  # a LicenseRef-: its text is not known
            return parsed
        text = license.name or ""
        safe = _safe(text)
        ref = f"LicenseRef-{safe}"
        if safe != text:
            ref += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
        self._texts[ref] = text
        return spdx_licensing.parse(ref)

    def infos(self) -> list[ExtractedLicensingInfo]:
        from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo

        return [
            ExtractedLicensingInfo(license_id=ref, extracted_text=text, license_name=text)
            for ref, text in sorted(self._texts.items())
        ]
