"""The history as Prometheus metrics (prometheus-client): run and job durations as
histograms, outcomes and cache hits as counters, for one scrape, a node_exporter
textfile or a Pushgateway."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from sqlalchemy import and_, select

from conveyor.history.schema import gates, jobs, runs
from conveyor.history.store import HistoryStore

# Seconds: from a cached job's few milliseconds to an hour-long build.
BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Bytes: from a shell's few MiB to a 16 GiB linker or test run.
MEMORY_BUCKETS = tuple(float(2**n) for n in range(22, 35))


def registry_for(store: HistoryStore, pipeline: str | None, since: float) -> CollectorRegistry:
    """Metrics over the runs started at or after `since` (of one pipeline, or all)."""
    # `*_created` series (when each counter was made, i.e. now) would only be noise here.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    run_total = Counter(
        "conveyor_runs", "Runs recorded, by outcome.", ["pipeline", "status"], registry=registry
    )
    run_seconds = Histogram(
        "conveyor_run_duration_seconds",
        "Wall time of finished runs.",
        ["pipeline"],
        buckets=BUCKETS,
        registry=registry,
    )
    job_total = Counter(
        "conveyor_jobs", "Jobs, by outcome.", ["pipeline", "job", "status"], registry=registry
    )
    job_seconds = Histogram(
        "conveyor_job_duration_seconds",
        "Duration of jobs that executed (not served from the cache).",
        ["pipeline", "job"],
        buckets=BUCKETS,
        registry=registry,
    )
    queue_seconds = Histogram(
        "conveyor_job_queue_seconds",
        "Time jobs waited between ready and started.",
        ["pipeline"],
        buckets=BUCKETS,
        registry=registry,
    )
    cache = Counter(
        "conveyor_cache_requests",
        "Jobs looked up in the cache, by result.",
        ["pipeline", "result"],
        registry=registry,
    )
    saved = Counter(
        "conveyor_cache_saved_seconds",
        "Time the cache saved (the original durations of the jobs it served).",
        ["pipeline"],
        registry=registry,
    )
    cpu = Counter(
        "conveyor_job_cpu_seconds",
        "User and system CPU time of the process trees of jobs that executed.",
        ["pipeline", "job"],
        registry=registry,
    )
    memory = Histogram(
        "conveyor_job_peak_memory_bytes",
        "Peak resident memory of the process trees of jobs that executed.",
        ["pipeline", "job"],
        buckets=MEMORY_BUCKETS,
        registry=registry,
    )
    gate_total = Counter(
        "conveyor_gates",
        "Gates evaluated, by outcome (scope: a job, or 'pipeline').",
        ["pipeline", "scope", "gate", "result"],
        registry=registry,
    )
    window: Any = and_(runs.c.started_at >= since, runs.c.status != "running")
    if pipeline is not None:
        window = and_(window, runs.c.pipeline == pipeline)
    with store.engine.connect() as conn:
        for row in conn.execute(
            select(runs.c.pipeline, runs.c.status, runs.c.wall_time).where(window)
        ):
            run_total.labels(row.pipeline, row.status).inc()
            # Series that exist at zero, so a dashboard shows 0 rather than "no data".
            saved.labels(row.pipeline)
            cache.labels(row.pipeline, "hit")
            cache.labels(row.pipeline, "miss")
            if row.wall_time is not None and row.status != "interrupted":
                run_seconds.labels(row.pipeline).observe(row.wall_time)
        query = (
            select(
                runs.c.pipeline,
                jobs.c.name,
                jobs.c.status,
                jobs.c.cached,
                jobs.c.duration,
                jobs.c.queue_time,
                jobs.c.saved,
                jobs.c.cpu_time,
                jobs.c.peak_rss,
            )
            .select_from(jobs.join(runs, jobs.c.run_id == runs.c.id))
            .where(window)
        )
        for g in conn.execute(
            select(runs.c.pipeline, gates.c.scope, gates.c.gate, gates.c.passed, gates.c.level)
            .select_from(gates.join(runs, gates.c.run_id == runs.c.id))
            .where(window)
        ):
            result = "passed" if g.passed else ("failed" if g.level == "error" else "warned")
            gate_total.labels(g.pipeline, g.scope, g.gate, result).inc()
        for job in conn.execute(query):
            job_total.labels(job.pipeline, job.name, job.status).inc()
            if job.status == "skipped":
                continue
            cache.labels(job.pipeline, "hit" if job.cached else "miss").inc()
            if job.cached:
                saved.labels(job.pipeline).inc(job.saved or 0.0)
            else:
                if job.duration is not None:
                    job_seconds.labels(job.pipeline, job.name).observe(job.duration)
                if job.cpu_time is not None:
                    cpu.labels(job.pipeline, job.name).inc(max(0.0, job.cpu_time))
                if job.peak_rss is not None:
                    memory.labels(job.pipeline, job.name).observe(job.peak_rss)
            if job.queue_time is not None:
                queue_seconds.labels(job.pipeline).observe(max(0.0, job.queue_time))
    return registry
