"""The store the caching suite runs against: a test module that says
`pytestmark = pytest.mark.usefixtures("cache_store")` runs each of its tests twice, once
against the local store (the default, on disk in the test's home) and once against the
in-memory one (tests/cache/memory.py), handed to every run and `why` of the test through
`conveyor.cache.stores.using`. A test about the disk store itself (its directory, its
files, a full disk, another process sharing it) is marked `local_store`: it runs against
the local store only.

`buildgrid` is a real REAPI server (tests/reapi.py) for the session, for the tests of the
remote store: started on first use, stopped with SIGTERM at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.cache.stores import using
from tests.cache.memory import MemoryStore
from tests.reapi import Server
from tests.reapi import buildgrid as start_buildgrid

STORES = ("local", "memory")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_store: about the local (disk) store itself: run against it only"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cache_store" in metafunc.fixturenames:
        only_local = metafunc.definition.get_closest_marker("local_store") is not None
        metafunc.parametrize("cache_store", ["local"] if only_local else STORES, indirect=True)


@pytest.fixture
def cache_store(request: pytest.FixtureRequest) -> Iterator[MemoryStore | None]:
    """None for the local store; the memory store every run of the test uses otherwise."""
    if request.param == "local":
        yield None
        return
    store = MemoryStore()
    with using(store):
        yield store


@pytest.fixture(scope="session")
def buildgrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A BuildGrid server shared by the session (a start takes 3-5 s); tests keep apart
    by content (random bytes) or by instance name."""
    with start_buildgrid(tmp_path_factory.mktemp("buildgrid")) as server:
        yield server
