"""packages.lock.json read into components: a lockfile written by hand in NuGet's
documented format (version 2, Central Package Management; two target frameworks;
Direct, Transitive, Project and CentralTransitive entries; tests/deps/data/SOURCES.md)."""

from __future__ import annotations

import base64

import pytest

from conveyor.deps.components import Ecosystem
from conveyor.deps.ecosystems.nuget import read_packages_lock
from conveyor.deps.syntax import ParseError
from tests.deps.lockdata import line_of, source, text

LOCK = text("two-targets.packages.lock.json")


def test_packages_of_every_target_once_each() -> None:
    components = read_packages_lock(source("src/Acme.Web/packages.lock.json", LOCK))
    assert [(c.name, c.version, c.direct, c.local, c.line) for c in components] == [
        ("Serilog", "3.1.1", True, False, 5),  # in both targets
        ("Serilog.Sinks.Console", "5.0.1", True, False, 11),
        ("System.Runtime.CompilerServices.Unsafe", "6.0.0", False, False, 20),  # net6.0 only
        ("System.Text.Encodings.Web", "8.0.0", False, False, 25),
        ("acme.shared", None, True, True, 33),  # a ProjectReference
        ("System.Text.Json", "8.0.5", False, False, 40),  # CentralTransitive
    ]
    for component in components:
        assert line_of(LOCK, component).strip() == f'"{component.name}": {{'
        assert component.ecosystem is Ecosystem.NUGET
        assert component.scope is None
    assert components[0].purl == "pkg:nuget/Serilog@3.1.1"
    assert components[4].hashes == ()  # a project has no package to hash


def test_content_hash_is_sha512_in_hex() -> None:
    serilog = read_packages_lock(source("packages.lock.json", LOCK))[0]
    content = (
        "UzDAziStMZp7MgoFBOC7X26P78RYSSuwngjeff1UlYuB7NQ+k+NdP1wYGWcxD9XbOgDqJVtPdGdTPol38C4aIA=="
    )
    assert f'"contentHash": "{content}"' in LOCK
    assert serilog.hashes == (f"sha512:{base64.b64decode(content).hex()}",)  # same in both
    assert len(serilog.hashes[0]) == len("sha512:") + 128


def test_edges_are_the_versions_locked_in_the_same_target() -> None:
    serilog, console, unsafe, encodings, shared, json = read_packages_lock(
        source("packages.lock.json", LOCK)
    )
    assert console.dependencies == ("pkg:nuget/Serilog@3.1.1",)
    assert encodings.dependencies == ("pkg:nuget/System.Runtime.CompilerServices.Unsafe@6.0.0",)
    # A project's dependencies are its PackageReferences, by range: the locked versions.
    assert shared.dependencies == ("pkg:nuget/Serilog@3.1.1", "pkg:nuget/System.Text.Json@8.0.5")
    # net6.0's System.Text.Json needs two packages; net8.0's none: the union.
    assert json.dependencies == (
        "pkg:nuget/System.Runtime.CompilerServices.Unsafe@6.0.0",
        "pkg:nuget/System.Text.Encodings.Web@8.0.0",
    )
    assert (serilog.dependencies, unsafe.dependencies) == ((), ())


def test_ids_are_case_insensitive_and_central_transitive_is_transitive() -> None:
    # Written here in the form NuGet gives Central Package Management's pins
    # (CentralTransitive); contentHash left out.
    body = """{
  "version": 2,
  "dependencies": {
    "net8.0": {
      "Serilog.Sinks.File": {
        "type": "Direct",
        "requested": "[5.0.0, )",
        "resolved": "5.0.0",
        "dependencies": {
          "serilog": "2.10.0"
        }
      },
      "Serilog": {
        "type": "CentralTransitive",
        "requested": "[3.1.1, )",
        "resolved": "3.1.1"
      }
    }
  }
}
"""
    sink, serilog = read_packages_lock(source("packages.lock.json", body))
    assert sink.dependencies == ("pkg:nuget/Serilog@3.1.1",)
    assert (serilog.direct, serilog.line) == (False, 13)


@pytest.mark.parametrize(
    ("body", "message", "line", "col"),
    [
        ('{\n  "version": 1,\n  "dependencies": {\n    "net8.0": {\n}\n', "Expecting", 6, 1),
        ("[]", "top level", 1, 1),
        ('{\n  "dependencies": {\n    "net8.0": []\n  }\n}', "must be an object", 3, 1),
        (
            '{\n  "dependencies": {\n    "net8.0": {\n      "A": {"type": "Direct"}\n    }\n  }\n}',
            "no resolved version",
            4,
            1,
        ),
        (
            '{"dependencies": {"net8.0": {\n"A": {"resolved": "1.0.0", "contentHash": "%%"}}}}',
            "not base64",
            2,
            1,
        ),
    ],
)
def test_a_malformed_lockfile_is_one_located_error(
    body: str, message: str, line: int, col: int
) -> None:
    with pytest.raises(ParseError) as caught:
        read_packages_lock(source("packages.lock.json", body))
    assert message in caught.value.message
    assert (caught.value.line, caught.value.col) == (line, col)
