"""gradle.lockfile and pom.xml read into components: a gradle.lockfile written by hand
in Gradle's documented format (a library's compile, runtime, test and annotation
processor configurations) and plexus-io 3.5.1's pom as Maven Central serves it, whole
(tests/deps/data/SOURCES.md). The parent-pom test writes two small poms in Maven's
documented form (no multi-module project's poms could be fetched here)."""

from __future__ import annotations

import pytest

from conveyor.deps.components import Ecosystem, Scope
from conveyor.deps.ecosystems.maven import is_test_configuration, read_gradle_lockfile, read_pom
from conveyor.deps.syntax import ParseError
from tests.deps.lockdata import line_of, source, text

GRADLE = text("gradle-configurations.gradle.lockfile")
POM = text("plexus-io-3.5.1.pom.xml")


def test_gradle_lockfile_artifacts_with_their_lines_and_scope() -> None:
    components = read_gradle_lockfile(source("gradle.lockfile", GRADLE))
    assert [(c.name, c.version, c.scope, c.line) for c in components] == [
        ("com.google.code.findbugs:jsr305", "3.0.2", Scope.PROD, 4),
        ("com.google.errorprone:error_prone_annotations", "2.26.1", Scope.PROD, 5),
        ("com.google.guava:failureaccess", "1.0.2", Scope.PROD, 6),
        ("com.google.guava:guava", "33.2.1-jre", Scope.PROD, 7),
        (
            "com.google.guava:listenablefuture",
            "9999.0-empty-to-avoid-conflict-with-guava",
            Scope.PROD,
            8,
        ),
        # compileClasspath (and the tests'): not only test configurations
        ("com.google.j2objc:j2objc-annotations", "3.0.0", Scope.PROD, 9),
        ("net.bytebuddy:byte-buddy", "1.14.11", Scope.DEV, 10),
        ("org.apiguardian:apiguardian-api", "1.1.2", Scope.DEV, 11),
        ("org.assertj:assertj-core", "3.26.0", Scope.DEV, 12),
        ("org.checkerframework:checker-qual", "3.42.0", Scope.PROD, 13),
        ("org.immutables:value", "2.10.1", Scope.PROD, 14),  # annotationProcessor only
        ("org.junit.jupiter:junit-jupiter-api", "5.10.2", Scope.DEV, 15),
        ("org.junit.jupiter:junit-jupiter-engine", "5.10.2", Scope.DEV, 16),
        ("org.junit.platform:junit-platform-commons", "1.10.2", Scope.DEV, 17),
        ("org.junit.platform:junit-platform-engine", "1.10.2", Scope.DEV, 18),
        ("org.opentest4j:opentest4j", "1.3.0", Scope.DEV, 19),
    ]
    for component in components:
        group, artifact = component.name.split(":")
        assert line_of(GRADLE, component).startswith(f"{group}:{artifact}:{component.version}=")
        # The file says neither which are direct, nor hashes, nor edges.
        assert (component.direct, component.hashes, component.dependencies) == (None, (), None)
    assert components[3].purl == "pkg:maven/com.google.guava/guava@33.2.1-jre"
    assert components[0].ecosystem is Ecosystem.MAVEN


@pytest.mark.parametrize(
    ("name", "test"),
    [
        ("testRuntimeClasspath", True),
        ("testFixturesApi", True),
        ("integrationTestRuntimeClasspath", True),
        ("debugUnitTestCompileClasspath", True),
        ("debugAndroidTestRuntimeClasspath", True),
        ("runtimeClasspath", False),
        ("testosteroneRuntimeClasspath", False),
        ("annotationProcessor", False),
    ],
)
def test_test_configurations(name: str, test: bool) -> None:
    assert is_test_configuration(name) is test


@pytest.mark.parametrize(
    ("body", "line", "col"),
    [
        ("# comment\norg.a:b:1.0\n", 2, 1),
        ("org.a:b=runtimeClasspath\n", 1, 1),
        ("  org.a:b:1.0:extra=runtimeClasspath\n", 1, 3),
    ],
)
def test_a_malformed_gradle_lockfile_is_located(body: str, line: int, col: int) -> None:
    with pytest.raises(ParseError) as caught:
        read_gradle_lockfile(source("gradle.lockfile", body))
    assert (caught.value.line, caught.value.col) == (line, col)


def test_pom_declared_dependencies_resolved_from_its_own_properties() -> None:
    components = read_pom(source("pom.xml", POM))
    assert [(c.name, c.version, c.scope, c.line) for c in components] == [
        ("javax.inject:javax.inject", "1", Scope.PROD, 55),
        ("org.codehaus.plexus:plexus-utils", "4.0.1", Scope.PROD, 61),
        ("org.codehaus.plexus:plexus-xml", "3.0.1", Scope.DEV, 66),  # test
        ("com.google.code.findbugs:jsr305", "3.0.2", Scope.DEV, 72),  # provided
        ("commons-io:commons-io", "2.16.1", Scope.PROD, 78),
        # Its version comes from a BOM the parent imports: not in this pom.
        ("org.junit.jupiter:junit-jupiter-api", None, Scope.DEV, 85),
        ("org.slf4j:slf4j-simple", "1.7.36", Scope.DEV, 90),  # ${slf4jVersion}
        ("org.codehaus.plexus:plexus-testing", "1.4.0", Scope.DEV, 96),
        # No version of its own: <dependencyManagement>'s, itself ${eclipseSisuVersion}.
        ("org.eclipse.sisu:org.eclipse.sisu.inject", "0.9.0.M3", Scope.DEV, 103),
        ("com.google.inject:guice", "6.0.0", Scope.DEV, 108),
    ]
    for component in components:
        assert line_of(POM, component).strip() == "<dependency>"
        assert component.direct is True
        assert component.declared == f"pom.xml:{component.line}"
        assert component.dependencies is None
    assert components[6].purl == "pkg:maven/org.slf4j/slf4j-simple@1.7.36"
    assert components[5].purl == "pkg:maven/org.junit.jupiter/junit-jupiter-api"


PARENT = """\
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>parent</artifactId>
  <version>2.1.0</version>
  <packaging>pom</packaging>
  <properties>
    <jackson.version>2.17.1</jackson.version>
  </properties>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>com.fasterxml.jackson.core</groupId>
        <artifactId>jackson-databind</artifactId>
        <version>${jackson.version}</version>
      </dependency>
      <dependency>
        <groupId>junit</groupId>
        <artifactId>junit</artifactId>
        <version>4.13.2</version>
        <scope>test</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
</project>
"""

CHILD = """\
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>com.example</groupId>
    <artifactId>parent</artifactId>
    <version>2.1.0</version>
  </parent>
  <artifactId>core</artifactId>
  <dependencies>
    <dependency>
      <groupId>com.fasterxml.jackson.core</groupId>
      <artifactId>jackson-databind</artifactId>
    </dependency>
    <dependency>
      <groupId>junit</groupId>
      <artifactId>junit</artifactId>
    </dependency>
    <dependency>
      <groupId>${project.groupId}</groupId>
      <artifactId>api</artifactId>
      <version>${project.version}</version>
    </dependency>
    <dependency>
      <groupId>org.example</groupId>
      <artifactId>tool</artifactId>
      <version>${env.TOOL_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""


def test_pom_inherits_properties_and_managed_versions_from_its_parent_in_the_workspace() -> None:
    components = read_pom(source("core/pom.xml", CHILD, {"../pom.xml": PARENT}))
    assert [(c.name, c.version, c.scope) for c in components] == [
        ("com.fasterxml.jackson.core:jackson-databind", "2.17.1", Scope.PROD),
        ("junit:junit", "4.13.2", Scope.DEV),  # the managed scope
        ("com.example:api", "2.1.0", Scope.PROD),  # the parent's groupId and version
        ("org.example:tool", None, Scope.PROD),  # cannot be known from the files
    ]
    alone = read_pom(source("core/pom.xml", CHILD))
    assert [c.version for c in alone] == [None, None, "2.1.0", None]


def test_a_parent_that_is_another_project_is_not_taken() -> None:
    other = PARENT.replace("<artifactId>parent</artifactId>", "<artifactId>other</artifactId>")
    components = read_pom(source("core/pom.xml", CHILD, {"../pom.xml": other}))
    assert components[0].version is None


@pytest.mark.parametrize(
    ("body", "message", "line", "col"),
    [
        ("<project>\n  <dependencies>\n</project>\n", "mismatched tag", 3, 3),
        ("<settings/>\n", "not a Maven POM", 1, 1),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY x "y">]>\n<project>&x;</project>\n',
            "EntitiesForbidden",
            2,
            None,
        ),
        (
            "<project><dependencies>\n<dependency><version>1</version></dependency>\n"
            "</dependencies></project>\n",
            "without groupId and artifactId",
            2,
            1,
        ),
    ],
)
def test_a_malformed_pom_is_one_located_error(
    body: str, message: str, line: int, col: int | None
) -> None:
    with pytest.raises(ParseError) as caught:
        read_pom(source("pom.xml", body))
    assert message in caught.value.message
    assert caught.value.line == line
    if col is not None:
        assert caught.value.col == col
