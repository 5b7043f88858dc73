"""Java: the artifacts Gradle's dependency lockfile pins (gradle.lockfile) and the
dependencies a Maven pom.xml declares, each named 'group:artifact'.

gradle.lockfile lists every resolved artifact with the configurations that resolve it
(one line each: 'group:artifact:version=conf1,conf2'); it keeps no edges, no hashes
(those are in gradle/verification-metadata.xml) and does not say which artifacts the
build script asks for. An artifact only test configurations resolve is a dev one.

pom.xml is not a lockfile: Maven resolves transitive versions at build time. What it
does pin are its declared dependencies: those are read, with `${property}` taken from
the pom's own <properties> (and the project's coordinates), versions from its
<dependencyManagement>, and both inherited from a parent pom found in the workspace
(<parent>'s relativePath, '../pom.xml' by default). A version that cannot be known so
(one from a BOM or a parent that is not in the workspace) is left None. The XML is
parsed without DTDs' entities or external references (defusedxml), keeping the line of
each <dependency>.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.syntax import ParseError

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

# --- gradle.lockfile -----------------------------------------------------------------

# A test configuration: 'test…' or a camelCase word 'Test' ('integrationTestRuntimeClasspath',
# Android's 'debugUnitTestCompileClasspath', 'debugAndroidTestRuntimeClasspath').
_TEST_CONFIGURATION = re.compile(r"(?:^test|Test)(?=[A-Z]|$)")


def is_test_configuration(name: str) -> bool:
    """Whether a Gradle configuration serves only tests."""
    return _TEST_CONFIGURATION.search(name) is not None


def read_gradle_lockfile(source: LockSource) -> list[Component]:
    """gradle.lockfile's artifacts, in the file's order; dev when every configuration
    resolving it is a test one."""
    found = []
    for number, raw in enumerate(source.text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip()) + 1
        coordinates, equals, configurations = line.partition("=")
        if not equals:
            raise ParseError(
                "expected 'group:artifact:version=configurations' (or 'empty=...')",
                number,
                indent,
            )
        if coordinates == "empty":
            continue
        parts = coordinates.split(":")
        if len(parts) != 3 or not all(parts):
            raise ParseError("expected 'group:artifact:version' before '='", number, indent)
        group, artifact, version = parts
        names = [c for c in configurations.split(",") if c]
        scope = Scope.DEV if names and all(map(is_test_configuration, names)) else Scope.PROD
        found.append(
            Component(
                f"{group}:{artifact}",
                version,
                Ecosystem.MAVEN,
                source.path,
                line=number,
                scope=scope,
            )
        )
    return found


# --- pom.xml -------------------------------------------------------------------------

# Scopes whose artifacts are not in what the project ships: tests', and those the
# runtime provides (a servlet container's API).
_DEV_SCOPES = frozenset({"test", "provided"})
_PROPERTY = re.compile(r"\$\{([^}]+)\}")
_MAX_PARENTS = 10


@dataclass
class _Element:
    name: str
    line: int
    children: list[_Element] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.chunks).strip()

    def child(self, name: str) -> _Element | None:
        return next((c for c in self.children if c.name == name), None)

    def all(self, *path: str) -> list[_Element]:
        found = [self]
        for name in path:
            found = [c for e in found for c in e.children if c.name == name]
        return found

    def value(self, name: str) -> str | None:
        found = self.child(name)
        return found.text if found is not None else None


def parse_xml(text: str) -> _Element:
    """The document's root element, each element with its start line; ParseError, at
    its line and column, for XML that does not parse or that declares entities or
    refers to external ones."""
    import xml.sax
    from xml.sax.handler import ContentHandler

    import defusedxml
    import defusedxml.sax

    class Builder(ContentHandler):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[_Element] = []
            self.root: _Element | None = None
            self.locator: xml.sax.xmlreader.Locator | None = None

        def setDocumentLocator(self, locator: xml.sax.xmlreader.Locator) -> None:
            self.locator = locator

        def startElement(self, name: str, attrs: object) -> None:
            line = self.locator.getLineNumber() if self.locator is not None else None
            element = _Element(name.rpartition(":")[2], line or 0)
            if self.stack:
                self.stack[-1].children.append(element)
            else:
                self.root = element
            self.stack.append(element)

        def endElement(self, name: str) -> None:
            self.stack.pop()

        def characters(self, content: str) -> None:
            if self.stack:
                self.stack[-1].chunks.append(content)

    builder = Builder()
    try:
        defusedxml.sax.parseString(text.encode("utf-8"), builder)
    except xml.sax.SAXParseException as exc:
        message = " ".join(str(exc.getMessage()).split())
        raise ParseError(message, exc.getLineNumber(), _column(exc.getColumnNumber())) from None
    except defusedxml.DefusedXmlException as exc:
        where = builder.locator
        line = where.getLineNumber() if where is not None else None
        col = _column(where.getColumnNumber()) if where is not None else None
        # Entity declarations are how an XML file reads other files or expands itself
        # without bound; a pom needs none.
        raise ParseError(
            f"{type(exc).__name__}: entities and external references are not read", line, col
        ) from None
    if builder.root is None:  # pragma: no cover - expat refuses a document without one
        raise ParseError("no root element", 1, 1)
    return builder.root


def _column(zero_based: int | None) -> int | None:
    """expat counts columns from 0."""
    return None if zero_based is None else zero_based + 1


@dataclass(frozen=True)
class _Pom:
    """What a pom gives its dependencies (and its children): properties, managed
    versions and scopes."""

    properties: Mapping[str, str]
    managed: Mapping[str, tuple[str | None, str | None]]


def read_pom(source: LockSource) -> list[Component]:
    """pom.xml's declared dependencies (the project's and its profiles'), versions
    resolved as far as the workspace's poms allow; direct, dev for test and provided
    scopes."""
    project = parse_xml(source.text)
    if project.name != "project":
        raise ParseError(
            f"not a Maven POM: the root element is <{project.name}>, not <project>",
            project.line,
            1,
        )
    parent = _parent(project, source.read_sibling, "", 0)
    pom = _resolve_pom(project, parent)
    found: list[Component] = []
    seen: set[tuple[str, str | None]] = set()
    for declared in (
        *project.all("dependencies", "dependency"),
        *project.all("profiles", "profile", "dependencies", "dependency"),
    ):
        group = _coordinate(declared.value("groupId"), pom.properties)
        artifact = _coordinate(declared.value("artifactId"), pom.properties)
        if not group or not artifact:
            raise ParseError("a <dependency> without groupId and artifactId", declared.line, 1)
        name = f"{group}:{artifact}"
        managed_version, managed_scope = pom.managed.get(name, (None, None))
        version = declared.value("version")
        version = _interpolate(version, pom.properties) if version else managed_version
        scope = declared.value("scope") or managed_scope or "compile"
        if (name, version) in seen:
            continue
        seen.add((name, version))
        found.append(
            Component(
                name,
                version,
                Ecosystem.MAVEN,
                source.path,
                direct=True,
                declared=f"{source.path}:{declared.line}",
                line=declared.line,
                scope=Scope.DEV if scope in _DEV_SCOPES else Scope.PROD,
            )
        )
    return found


def _resolve_pom(project: _Element, parent: _Pom | None) -> _Pom:
    properties = dict(parent.properties) if parent is not None else {}
    parent_element = project.child("parent")
    coordinates = {
        "groupId": project.value("groupId")
        or (parent_element.value("groupId") if parent_element else None),
        "artifactId": project.value("artifactId"),
        "version": project.value("version")
        or (parent_element.value("version") if parent_element else None),
    }
    for key, value in coordinates.items():
        if value:
            properties[f"project.{key}"] = properties[f"pom.{key}"] = value
            if key == "version":
                properties["version"] = value
    if parent_element is not None:
        for key in ("groupId", "artifactId", "version"):
            value = parent_element.value(key)
            if value:
                properties[f"project.parent.{key}"] = value
    for holder in project.all("properties"):
        properties.update((p.name, p.text) for p in holder.children)
    managed = dict(parent.managed) if parent is not None else {}
    for entry in project.all("dependencyManagement", "dependencies", "dependency"):
        scope = entry.value("scope")
        if scope == "import":  # a BOM: its versions are in another pom
            continue
        group = _coordinate(entry.value("groupId"), properties)
        artifact = _coordinate(entry.value("artifactId"), properties)
        version = entry.value("version")
        managed[f"{group}:{artifact}"] = (
            _interpolate(version, properties) if version else None,
            scope,
        )
    return _Pom(properties, managed)


def _parent(
    project: _Element, read: Callable[[str], str | None], folder: str, depth: int
) -> _Pom | None:
    """The parent pom as far as the workspace has it: <parent>'s relativePath (default
    '../pom.xml', a directory meaning its pom.xml) read when it is the parent named."""
    declared = project.child("parent")
    if declared is None or depth >= _MAX_PARENTS:
        return None
    relative = declared.value("relativePath")
    if relative == "":  # an empty relativePath: look the parent up in repositories only
        return None
    relative = relative or "../pom.xml"
    if not relative.endswith(".xml"):
        relative = posixpath.join(relative, "pom.xml")
    path = posixpath.normpath(posixpath.join(folder, relative))
    text = read(path)
    if text is None:
        return None
    try:
        found = parse_xml(text)
    except ParseError:
        return None
    its_parent = found.child("parent")
    group = found.value("groupId") or (its_parent.value("groupId") if its_parent else None)
    if (group, found.value("artifactId")) != (
        declared.value("groupId"),
        declared.value("artifactId"),
    ):
        return None
    grandparent = _parent(found, read, posixpath.dirname(path), depth + 1)
    return _resolve_pom(found, grandparent)


def _coordinate(value: str | None, properties: Mapping[str, str]) -> str:
    """A groupId or artifactId, its properties resolved where they can be."""
    if not value:
        return ""
    return _interpolate(value, properties) or value


def _interpolate(value: str, properties: Mapping[str, str]) -> str | None:
    """`value` with each ${name} replaced, properties referring to properties followed;
    None when one cannot be resolved."""
    for _ in range(_MAX_PARENTS):
        if "${" not in value:
            return value
        missing = False

        def lookup(match: re.Match[str]) -> str:
            nonlocal missing
            found = properties.get(match.group(1))
            if found is None:
                missing = True
                return match.group(0)
            return found

        value = _PROPERTY.sub(lookup, value)
        if missing:
            return None
    return None
