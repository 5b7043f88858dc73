"""What the dashboard remembers: a slow figure nothing remembers yet is computed once,
however many requests ask for it at the same time (two Prometheus servers scraping a
dashboard that just started), and a failure reaches every one of them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conveyor.serve.settings import ServeSettings
from conveyor.serve.state import AppState


def _state(tmp_path: Path) -> AppState:
    return AppState(ServeSettings(root=str(tmp_path), db_url=f"sqlite:///{tmp_path / 'h.db'}"))


def test_a_figure_asked_for_at_once_is_computed_once(tmp_path: Path) -> None:
    state = _state(tmp_path)
    calls: list[int] = []
    started = threading.Event()

    def make() -> str:
        calls.append(1)
        started.set()
        time.sleep(0.3)  # long enough for the other requests to arrive meanwhile
        return "figures"

    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(state.memo, ("metrics",), make)
            assert started.wait(5)
            others = [pool.submit(state.memo, ("metrics",), make) for _ in range(3)]
            answers = [first.result(), *(o.result() for o in others)]
        assert answers == ["figures"] * 4
        assert len(calls) == 1
        assert state.memo(("metrics",), make) == "figures"  # remembered
        assert len(calls) == 1
    finally:
        state.close()


def test_a_failure_reaches_every_request_waiting_for_it(tmp_path: Path) -> None:
    state = _state(tmp_path)
    started = threading.Event()

    def broken() -> str:
        started.set()
        time.sleep(0.2)
        raise RuntimeError("the database went away")

    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(state.memo, ("metrics",), broken)
            assert started.wait(5)
            second = pool.submit(state.memo, ("metrics",), broken)
            for future in (first, second):
                with pytest.raises(RuntimeError, match="went away"):
                    future.result()
        # Nothing was remembered: the next request computes it afresh.
        assert state.memo(("metrics",), lambda: "back") == "back"
    finally:
        state.close()
