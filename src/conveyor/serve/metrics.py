"""`/metrics`: the Prometheus exposition `conveyor metrics --all-pipelines` prints (the
same code), remembered (`AppState.memo`): its counters add up every job of the whole
history (in the database: `history.totals`), seconds at a million job rows."""

from __future__ import annotations

import time

from conveyor.history.queries import pipeline_names
from conveyor.serve.state import AppState

WINDOW = 30 * 86400.0
"""The window of the gauges, `conveyor metrics`' default `--since 30d`."""


def exposition(state: AppState) -> str:
    """The metrics of every pipeline in the history."""
    from conveyor.export import prometheus

    def make() -> str:
        store = state.store
        registry = prometheus.registry_for(store, pipeline_names(store), WINDOW, time.time())
        return prometheus.exposition(registry)

    return state.memo(("metrics",), make)
