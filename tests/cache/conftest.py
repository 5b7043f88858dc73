"""The store the caching suite runs against: a test module that says
`pytestmark = pytest.mark.usefixtures("cache_store")` runs each of its tests twice, once
against the local store (the default, on disk in the test's home) and once against the
in-memory one (tests/cache/memory.py), handed to every run and `why` of the test through
`conveyor.cache.stores.using`. A test about the disk store itself (its directory, its
files, a full disk, another process sharing it) is marked `local_store`: it runs against
the local store only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.cache.stores import using
from tests.cache.memory import MemoryStore

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
