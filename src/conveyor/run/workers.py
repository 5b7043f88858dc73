"""The scheduler's worker threads."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Workers:
    """N threads running submitted calls; started as they are first needed (a run served
    wholly from the cache starts none). concurrent.futures would do, but importing it
    (with logging) cost more than this class on every run."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._loop, name=f"job-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._tasks.put(fn)

    def _loop(self) -> None:
        while True:
            fn = self._tasks.get()
            if fn is None:
                return
            fn()  # never raises: Scheduler._work catches everything
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()
