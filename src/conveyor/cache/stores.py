"""Which store the job cache uses: the one place `conveyor run` (conveyor.run.compose) and
`conveyor why` open it. The local cache in the cache directory; with a remote cache
(`remote:`, `--remote`), the two tiered: local first, then the remote, whose hits are
written through to the local cache and to which results are uploaded when `upload` is on.

`using(store)` makes every store opened in its block (in this thread or task) that store
instead: the injection point for an embedder, and for the caching tests, which run the
same suite against an in-memory store (tests/cache/conftest.py). A context variable,
not an environment variable: a store is an object, not a setting.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from conveyor.cache.interface import Store
from conveyor.model import Remote

_given: contextvars.ContextVar[Store | None] = contextvars.ContextVar("store", default=None)


def open_store(
    root: str,
    remote: Remote | None = None,
    environ: Mapping[str, str] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Store:
    """The store a run uses: the one `using` gave, else the local cache in `root`
    (created if needed; StoreUnavailable if it cannot be), tiered with `remote` when
    there is one. A remote that cannot be used is never the run's failure: `on_warning`
    is told, once, and the run goes on with the local cache."""
    given = _given.get()
    if given is not None:
        return given
    from conveyor.cache.local import LocalCache

    local = LocalCache(root)
    if remote is None:
        return local
    # Here only: a run without a remote never loads gRPC.
    from conveyor.cache.interface import StoreUnavailable
    from conveyor.cache.remote import RemoteStore
    from conveyor.cache.tiered import TieredStore, backlog_directory

    warn = on_warning or (lambda _message: None)
    try:
        server = RemoteStore(remote, environ or {})
    except StoreUnavailable as exc:  # a credential missing, say: local only, said once
        warn(f"remote cache unavailable: {exc}; this run uses the local cache only")
        return local
    tiered: Store = TieredStore(
        local,
        server,
        upload=remote.upload,
        on_warning=warn,
        backlog=backlog_directory(root, remote.url, remote.instance_name),
    )
    return tiered


@contextmanager
def using(store: Store) -> Iterator[Store]:
    """Every `open_store` inside the block gives `store`."""
    token = _given.set(store)
    try:
        yield store
    finally:
        _given.reset(token)
