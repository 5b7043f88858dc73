"""The history as Prometheus metrics (prometheus-client): run and job durations as
histograms, outcomes and cache hits as counters, for one scrape, a node_exporter
textfile or a Pushgateway."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    push_to_gateway,
    write_to_textfile,
)

from conveyor.errors import EnvironmentProblem
from conveyor.history.queries import gate_outcomes, job_outcomes, run_outcomes
from conveyor.history.store import HistoryStore

# Seconds: from a cached job's few milliseconds to an hour-long build.
BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Bytes: from a shell's few MiB to a 16 GiB linker or test run.
MEMORY_BUCKETS = tuple(float(2**n) for n in range(22, 35))


@dataclass(frozen=True, slots=True)
class _Metrics:
    """The families `conveyor metrics` exports, in the order they are exposed."""

    run_total: Counter
    run_seconds: Histogram
    job_total: Counter
    job_seconds: Histogram
    queue_seconds: Histogram
    cache: Counter
    saved: Counter
    cpu: Counter
    memory: Histogram
    gate_total: Counter


def _metrics(registry: CollectorRegistry) -> _Metrics:
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
    return _Metrics(
        run_total,
        run_seconds,
        job_total,
        job_seconds,
        queue_seconds,
        cache,
        saved,
        cpu,
        memory,
        gate_total,
    )


def registry_for(store: HistoryStore, pipeline: str | None, since: float) -> CollectorRegistry:
    """Metrics over the runs started at or after `since` (of one pipeline, or all)."""
    # `*_created` series (when each counter was made, i.e. now) would only be noise here.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    m = _metrics(registry)
    # Runs, then gates, then jobs: a series is exposed in the order it was first made.
    for run in run_outcomes(store, pipeline, since):
        m.run_total.labels(run.pipeline, run.status).inc()
        # Series that exist at zero, so a dashboard shows 0 rather than "no data".
        m.saved.labels(run.pipeline)
        m.cache.labels(run.pipeline, "hit")
        m.cache.labels(run.pipeline, "miss")
        if run.wall_time is not None and run.status != "interrupted":
            m.run_seconds.labels(run.pipeline).observe(run.wall_time)
    for g in gate_outcomes(store, pipeline, since):
        result = "passed" if g.passed else ("failed" if g.level == "error" else "warned")
        m.gate_total.labels(g.pipeline, g.scope, g.gate, result).inc()
    for job in job_outcomes(store, pipeline, since):
        m.job_total.labels(job.pipeline, job.name, job.status).inc()
        if job.status == "skipped":
            continue
        m.cache.labels(job.pipeline, "hit" if job.cached else "miss").inc()
        if job.cached:
            m.saved.labels(job.pipeline).inc(job.saved or 0.0)
        else:
            if job.duration is not None:
                m.job_seconds.labels(job.pipeline, job.name).observe(job.duration)
            if job.cpu_time is not None:
                m.cpu.labels(job.pipeline, job.name).inc(max(0.0, job.cpu_time))
            if job.peak_rss is not None:
                m.memory.labels(job.pipeline, job.name).observe(job.peak_rss)
        if job.queue_time is not None:
            m.queue_seconds.labels(job.pipeline).observe(max(0.0, job.queue_time))
    return registry


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a metric family: its name (e.g. `_bucket`), labels and value."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family as `conveyor metrics --json` prints it."""

    name: str
    type: str
    help: str
    samples: tuple[Sample, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "help": self.help,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value} for s in self.samples
            ],
        }


def families(registry: CollectorRegistry) -> list[Family]:
    """The registry's metric families, in exposition order."""
    return [
        Family(
            family.name,
            family.type,
            family.documentation,
            tuple(Sample(s.name, s.labels, s.value) for s in family.samples),
        )
        for family in registry.collect()
    ]


def exposition(registry: CollectorRegistry) -> str:
    """The Prometheus text format, as a scrape reads it."""
    return generate_latest(registry).decode()


def write_textfile(path: str, registry: CollectorRegistry) -> None:
    """A file for node_exporter's textfile collector, written atomically."""
    try:
        write_to_textfile(path, registry)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror}") from None


def push(url: str, registry: CollectorRegistry) -> None:
    """PUT the metrics to a Pushgateway, as job `conveyor` (replacing what it had)."""
    try:
        push_to_gateway(url, job="conveyor", registry=registry, timeout=30)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot push the metrics to {url}: {exc}",
            hint="is the Pushgateway reachable at that address?",
        ) from None
