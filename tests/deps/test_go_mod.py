"""go.mod and go.sum read into components: an excerpt of the go.mod and go.sum of
Prometheus' remote-storage example as Debian ships them (tests/deps/data/SOURCES.md);
malformed files in the forms `go` itself refuses."""

from __future__ import annotations

import pytest

from conveyor.deps.components import Ecosystem
from conveyor.deps.ecosystems.go import go_sum_hashes, read_go_mod
from conveyor.deps.syntax import ParseError
from tests.deps.lockdata import by_name, line_of, source, text

GO_MOD = text("prometheus-remote-storage.go.mod")
GO_SUM = text("prometheus-remote-storage.go.sum")


def test_each_required_module_with_its_line_and_go_sum_hash() -> None:
    components = read_go_mod(source("remote_storage/go.mod", GO_MOD, {"go.sum": GO_SUM}))
    assert [(c.name, c.version, c.direct, c.line) for c in components] == [
        ("github.com/go-kit/log", "v0.2.1", True, 6),
        ("github.com/gogo/protobuf", "v1.3.2", True, 7),
        ("github.com/golang/snappy", "v0.0.4", True, 8),
        ("github.com/docker/distribution", "v2.8.1+incompatible", False, 12),
        ("github.com/kr/pretty", "v0.3.0", False, 13),
        ("github.com/prometheus/prometheus", "v0.37.1-0.20221011120840-430bdc9dd099", True, 17),
        ("golang.org/x/oauth2", "v0.0.0-20220808172628-8227340efae7", False, 18),
    ]
    for component in components:
        assert f"{component.name} {component.version}" in line_of(GO_MOD, component)
        assert component.ecosystem is Ecosystem.GO
        assert component.scope is None
        assert component.dependencies is None  # go.mod keeps no edges
    found = by_name(components)
    log = found["github.com/go-kit/log"]
    # go.sum's hash of the module (not the one of its go.mod alone), as Go writes it.
    assert log.hashes == ("h1:MRVx0/zhvdseW+Gza6N9rVzU/IVzaeE1SFI4raAhmBU=",)
    assert log.declared == "remote_storage/go.mod:6"
    assert log.purl == "pkg:golang/github.com/go-kit/log@v0.2.1"
    assert (
        found["github.com/docker/distribution"].purl
        == "pkg:golang/github.com/docker/distribution@v2.8.1%2Bincompatible"
    )


def test_go_sum_hashes_leave_the_go_mod_lines_out() -> None:
    hashes = go_sum_hashes(GO_SUM)
    assert hashes[("github.com/kr/pretty", "v0.3.0")] == (
        "h1:WgNl7dwNpEZ6jJ9k1snq4pZsg7DOEN8hP9Xw0Tsjwk0="
    )
    assert ("github.com/kr/pretty", "v0.1.0") not in hashes  # only its go.mod is summed
    assert not any(str(version).endswith("/go.mod") for _, version in hashes)


def test_without_go_sum_the_modules_are_still_read() -> None:
    components = read_go_mod(source("go.mod", GO_MOD))
    assert len(components) == 7
    assert all(c.hashes == () for c in components)


def test_replacements_take_the_hash_of_what_is_built() -> None:
    # The form go writes (`go mod edit -replace`); the hashes as in the go.sum above.
    body = """\
module example.com/app

go 1.22

require (
	github.com/go-kit/log v0.2.0
	example.com/shared v0.0.0-00010101000000-000000000000
)

replace github.com/go-kit/log v0.2.0 => github.com/go-kit/log v0.2.1

replace example.com/shared => ../shared
"""
    log, shared = read_go_mod(source("go.mod", body, {"go.sum": GO_SUM}))
    assert (log.name, log.version, log.line) == ("github.com/go-kit/log", "v0.2.1", 6)
    assert log.hashes == ("h1:MRVx0/zhvdseW+Gza6N9rVzU/IVzaeE1SFI4raAhmBU=",)
    assert (shared.local, shared.hashes) == (True, ())


@pytest.mark.parametrize(
    ("body", "message", "line", "col"),
    [
        ("module m\n\nrequire (\n\tgithub.com/a/b v1.0.0\n", "never closed", 3, 1),
        ("module m\n\nrequire github.com/a/b\n", "a module path and a version", 3, 9),
        ("module m\nrequire (\n\tgithub.com/a/b 1.0.0\n)\n", "must start with 'v'", 3, 17),
        ("module m\n\nrequires github.com/a/b v1.0.0\n", "unknown directive: requires", 3, 1),
        ("module m\n<<<<<<< HEAD\n", "unknown directive: <<<<<<<", 2, 1),
        ("module m\nreplace github.com/a/b\n", "a replacement is", 2, 9),
    ],
)
def test_a_malformed_go_mod_is_one_located_error(
    body: str, message: str, line: int, col: int
) -> None:
    with pytest.raises(ParseError) as caught:
        read_go_mod(source("go.mod", body))
    assert message in caught.value.message
    assert (caught.value.line, caught.value.col) == (line, col)
