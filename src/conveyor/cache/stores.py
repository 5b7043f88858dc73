"""Which store the job cache uses: the one place `conveyor run` (conveyor.run.compose) and
`conveyor why` open it. Today it is the local cache in the cache directory; a remote or
tiered store will be chosen here.

`using(store)` makes every store opened in its block (in this thread or task) that store
instead: the injection point for an embedder, and for the caching tests, which run the
same suite against an in-memory store (tests/cache/conftest.py). A context variable,
not an environment variable: a store is an object, not a setting.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from conveyor.cache.interface import Store

_given: contextvars.ContextVar[Store | None] = contextvars.ContextVar("store", default=None)


def open_store(root: str) -> Store:
    """The store a run uses: the one `using` gave, else the local cache in `root`
    (created if needed; StoreUnavailable if it cannot be)."""
    given = _given.get()
    if given is not None:
        return given
    from conveyor.cache.local import LocalCache

    return LocalCache(root)


@contextmanager
def using(store: Store) -> Iterator[Store]:
    """Every `open_store` inside the block gives `store`."""
    token = _given.set(store)
    try:
        yield store
    finally:
        _given.reset(token)
