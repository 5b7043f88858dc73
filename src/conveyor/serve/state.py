"""What the app keeps between requests: the history (opened once), the runs its
directories hold brought in at most every few seconds, and a few slow figures cached
for a short while."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import func, select

from conveyor.history.rundirs import ingest
from conveyor.history.schema import runs
from conveyor.history.store import HistoryStore
from conveyor.serve.settings import ServeSettings

T = TypeVar("T")
MEMO_TTL = 60.0
MEMO_SIZE = 64


class AppState:
    """The history and the caches of one dashboard."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.store = HistoryStore(settings.db_url)
        self._lock = threading.Lock()
        self._ingested = 0.0
        self._cache: dict[str, tuple[float, object]] = {}
        self._memo_lock = threading.Lock()
        self._memo: OrderedDict[tuple[object, ...], tuple[float, object, object]] = OrderedDict()
        self._pending: set[tuple[object, ...]] = set()
        self._inflight: dict[tuple[object, ...], Future[object]] = {}
        # One background thread: figures are computed again one at a time.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memo")
        self._version: tuple[float, tuple[object, ...]] = (0.0, ())
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """Record the runs the workspace's run directories hold that the history lacks
        (as every history command does), at most every `ingest_every` seconds."""
        now = time.monotonic()
        if not force and now - self._ingested < self.settings.ingest_every:
            return
        if not self._lock.acquire(blocking=force):
            return  # another request is at it
        try:
            self._ingested = now
            ingest(self.store, self.settings.root)
        finally:
            self._lock.release()

    def cached(self, key: str, seconds: float, make: Callable[[], T]) -> T:
        """`make()`, kept for `seconds` (for figures that walk a directory tree)."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < seconds:
            return hit[1]  # type: ignore[return-value]
        value = make()
        self._cache[key] = (now, value)
        return value

    def version(self) -> tuple[object, ...]:
        """What changes when the history does: its runs, the newest start and end (asked
        of the database at most once a second)."""
        now = time.monotonic()
        if now - self._version[0] < 1.0:
            return self._version[1]
        query = select(func.count(), func.max(runs.c.started_at), func.max(runs.c.finished_at))
        with self.store.engine.connect() as conn:
            row = tuple(conn.execute(query).one())
        self._version = (now, row)
        return row

    def memo(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        """`make()`, remembered: the figures of a large window take the database seconds
        (a year of a large history: most of a minute for the metrics), more than a page
        should wait. The first asking computes them; after that the remembered answer is
        served at once, and computed again in the background once a run was recorded or
        it is MEMO_TTL old (its window has moved), to be served from then on."""
        version = self.version()
        now = time.monotonic()
        with self._memo_lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
        if hit is None:
            return self._first(key, make, now, version)
        made_at, made_for, kept = hit
        if made_for != version or now - made_at >= MEMO_TTL:
            self._again(key, make, version)
        return kept  # type: ignore[return-value]

    def _first(
        self, key: tuple[object, ...], make: Callable[[], T], now: float, version: object
    ) -> T:
        """`make()` for a key nothing remembers yet, computed once however many ask at
        the same time (two Prometheus servers scraping a fresh dashboard, a browser
        beside them): the others wait for that answer rather than compute it again."""
        with self._memo_lock:
            running = self._inflight.get(key)
            mine = running is None
            if running is None:
                running = self._inflight[key] = Future()
        if not mine:
            return running.result()  # type: ignore[return-value]
        try:
            value = make()
        except BaseException as exc:
            running.set_exception(exc)
            raise
        else:
            self._keep(key, now, version, value)
            running.set_result(value)
            return value
        finally:
            with self._memo_lock:
                self._inflight.pop(key, None)

    def _keep(self, key: tuple[object, ...], at: float, version: object, value: object) -> None:
        with self._memo_lock:
            self._memo[key] = (at, version, value)
            self._memo.move_to_end(key)
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)

    def _again(self, key: tuple[object, ...], make: Callable[[], T], version: object) -> None:
        """Compute `key` again in the background (once at a time)."""
        with self._memo_lock:
            if key in self._pending:
                return
            self._pending.add(key)

        def work() -> None:
            try:
                began = time.monotonic()
                self._keep(key, began, version, make())
            finally:
                with self._memo_lock:
                    self._pending.discard(key)

        self._worker.submit(work)

    def default_pipeline(self) -> str | None:
        """The workspace's pipeline, else that of the newest run."""
        if self.settings.pipeline is not None:
            return self.settings.pipeline.label
        newest = self.store.recent(1)
        return newest[0].pipeline if newest else None

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        self.store.close()
