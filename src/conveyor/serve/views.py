"""Each page's parameters read and its data gathered: what the HTML page renders and
the API returns as JSON (one function per page, shared by both)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request

from conveyor.history.record import RunRecord
from conveyor.serve import params
from conveyor.serve.files import run_dir
from conveyor.serve.state import AppState

Data = Mapping[str, Any]


class NotFound(Exception):
    """The address names nothing this dashboard has (HTTP 404)."""


def runs_page(state: AppState, request: Request) -> Data:
    from conveyor.serve.runs import STATUSES, RunFilter, list_runs

    state.refresh()
    q = request.query_params
    status = params.text(q, "status")
    if status is not None and status not in STATUSES:
        raise params.BadParameter(f"status: '{status}' is not one of {', '.join(STATUSES)}")
    flt = RunFilter(
        pipeline=params.text(q, "pipeline"),
        branch=params.text(q, "branch"),
        status=status,
        since=params.when(q, "from"),
        until=params.when(q, "to", end_of_day=True),
        page=params.integer(q, "page", 1, 1, 1_000_000),
        per_page=params.integer(q, "per_page", 50, 1, 200),
    )
    return {"nav": "runs", "runs": list_runs(state.store, flt)}


def recorded(state: AppState, run_id: str) -> RunRecord:
    """The recorded run with exactly this id."""
    from conveyor.serve.run import find

    state.refresh()
    record = find(state.store, run_id) if len(run_id) <= 64 else None
    if record is None and run_dir(state.settings.root, run_id) is not None:
        state.refresh(force=True)  # a run just finished: record it now
        record = find(state.store, run_id)
    if record is None:
        raise NotFound(f"no run '{run_id}' in the history")
    return record


def _live(state: AppState, run_id: str) -> Data | None:
    """A run its directory shows going on, not recorded yet: what has happened so far."""
    directory = run_dir(state.settings.root, run_id)
    if directory is None:
        return None
    from conveyor.history.rundirs import running

    if not running(directory):
        return None
    jobs: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {}
    try:
        with open(os.path.join(directory, "events.jsonl"), encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    break
                kind = event.get("type")
                if kind == "run_started":
                    meta = event
                    for name in event.get("jobs") or ():
                        jobs[name] = {"name": name, "status": "pending", "duration": None}
                elif kind == "job_started":
                    jobs[event["name"]] = {
                        "name": event["name"],
                        "status": "running",
                        "duration": None,
                    }
                elif kind == "job_finished":
                    result = event["result"]
                    jobs[result["name"]] = {
                        "name": result["name"],
                        "status": "cached" if result.get("cached") else result.get("status"),
                        "duration": result.get("duration"),
                    }
    except OSError:
        pass
    return {
        "nav": "runs",
        "live": True,
        "run_id": run_id,
        "pipeline": meta.get("pipeline", ""),
        "started_at": meta.get("time"),
        "context": meta.get("context") or {},
        "jobs": list(jobs.values()),
    }


def run_page(state: AppState, request: Request) -> Data:
    from conveyor.serve.run import view

    run_id = request.path_params["run_id"]
    try:
        record = recorded(state, run_id)
    except NotFound:
        live = _live(state, run_id)
        if live is None:
            raise
        return live
    if record.run.status == "running":  # recorded as it started (a shared history)
        live = _live(state, run_id)
        if live is not None:
            return live
    return {"nav": "runs", "live": False, "view": view(state.store, record)}


def _job(request: Request) -> str:
    job = str(request.path_params["job"])
    if not job or len(job) > 512:
        raise NotFound("no such job")
    return job


def log_page(state: AppState, request: Request) -> Data:
    from conveyor.serve.logs import job_log

    record = recorded(state, request.path_params["run_id"])
    query = params.text(request.query_params, "q", limit=200) or ""
    log = job_log(state.settings.root, record, _job(request), query)
    if log is None:
        raise NotFound(f"no job '{_job(request)}' in run {record.run.id}")
    return {"nav": "runs", "log": log, "run": record.run}


def raw_log(state: AppState, request: Request) -> str:
    from conveyor.serve.logs import raw_log as path_of

    record = recorded(state, request.path_params["run_id"])
    path = path_of(state.settings.root, record, _job(request))
    if path is None:
        raise NotFound(f"no log of '{_job(request)}' in run {record.run.id}")
    return path


def _pipeline(state: AppState, request: Request) -> str | None:
    return params.text(request.query_params, "pipeline") or state.default_pipeline()


def trends_page(state: AppState, request: Request) -> Data:
    from conveyor.history.queries import pipeline_names
    from conveyor.serve.trends import BUCKETS, trends

    state.refresh()
    q = request.query_params
    window, seconds = params.window(q)
    bucket = params.choice(q, "bucket", tuple(BUCKETS), "day")
    pipeline, job = _pipeline(state, request), params.text(q, "job")
    data = state.memo(
        ("trends", pipeline, job, seconds, bucket),
        lambda: trends(state.store, pipeline, job, time.time() - seconds, bucket),
    )
    return {
        "nav": "trends",
        "trends": data,
        "window": window,
        "pipelines": pipeline_names(state.store),
    }


def tests_page(state: AppState, request: Request) -> Data:
    from conveyor.serve.testcases import tests_page as make

    state.refresh()
    window, seconds = params.window(request.query_params)
    pipeline = state.settings.pipeline
    quarantine: frozenset[tuple[str, str]] = frozenset()
    note = ""
    if pipeline is not None:
        from conveyor.gates.keeper import load_quarantine

        listed = load_quarantine(pipeline)
        quarantine, note = listed.tests, listed.note
    chosen = _pipeline(state, request)
    data = state.memo(
        ("tests", chosen, seconds, quarantine),
        lambda: make(state.store, chosen, time.time() - seconds, quarantine),
    )
    return {"nav": "tests", "tests": data, "window": window, "quarantine_note": note}


def cache_page(state: AppState, request: Request) -> Data:
    from conveyor.cache.local import LocalCache, default_root
    from conveyor.insights.stats import compute
    from conveyor.serve.cachepage import CachePage
    from conveyor.serve.cachepage import cache_page as make

    state.refresh()
    window, seconds = params.window(request.query_params)
    pipeline = _pipeline(state, request)
    where = default_root(dict(os.environ))

    def size() -> tuple[int, int] | None:
        if not os.path.isdir(where):
            return None
        stats = LocalCache(where).stats()
        return stats.total_bytes, stats.blobs + stats.actions

    def figures() -> CachePage:
        since = time.time() - seconds
        per_job = compute(state.store, pipeline, since).jobs if pipeline else ()
        measured = state.cached("cache-size", 60.0, size)
        return make(state.store, state.settings.root, pipeline, since, per_job, where, measured)

    data = state.memo(("cache", pipeline, seconds), figures)
    return {"nav": "cache", "cache": data, "window": window}


def deps_page(state: AppState, request: Request) -> Data:
    from conveyor.serve.depspage import deps_page as make

    return {"nav": "deps", "deps": make(state.settings.root)}


def artifacts_page(state: AppState, request: Request) -> Data:
    from conveyor.artifacts.s3store import open_store
    from conveyor.serve.artifactspage import artifacts_page as make

    pipeline = state.settings.pipeline
    store = open_store(pipeline.artifacts.dir if pipeline else None, state.settings.root)
    name = params.text(request.query_params, "name")
    return {"nav": "artifacts", "artifacts": make(store, store.root, name)}


PAGES: tuple[tuple[str, str, Callable[[AppState, Request], Data]], ...] = (
    ("/", "runs.html", runs_page),
    ("/trends", "trends.html", trends_page),
    ("/tests", "tests.html", tests_page),
    ("/cache", "cache.html", cache_page),
    ("/deps", "deps.html", deps_page),
    ("/artifacts", "artifacts.html", artifacts_page),
)
"""(path, template, data function) of the pages served at `path` and `/api{path}`."""
