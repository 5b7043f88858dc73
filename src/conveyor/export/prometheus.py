"""The history as Prometheus metrics, for one scrape, a node_exporter textfile or a
Pushgateway.

Two kinds of series (issue 13):

- counters and histograms over the whole history (`conveyor_runs_total`,
  `conveyor_job_duration_seconds`, ...): they only grow as runs are recorded, so
  `rate()` and `increase()` over them are right, whatever `--since` says;
- gauges over the `--since` window (`conveyor_window_*{window="30d"}`): the figures of
  `conveyor stats --since 30d`, computed by the same code, so the two agree exactly.

A job is the label `conveyor_job`, never `job`: Prometheus gives every scraped series
the `job` and `instance` of its target and renames a clashing label to `exported_job`,
and the Pushgateway overwrites `job` with its grouping key's, which made the series of
different jobs duplicates of each other (HTTP 400).
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    generate_latest,
    push_to_gateway,
    write_to_textfile,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from conveyor.errors import EnvironmentProblem
from conveyor.history.record import PHASES
from conveyor.history.store import HistoryStore
from conveyor.history.totals import (
    Buckets,
    gate_totals,
    job_histograms,
    run_durations,
    run_totals,
)
from conveyor.insights.definitions import (
    DURATION_BUCKETS,
    MEMORY_BUCKETS,
    QUANTILES,
    TIMED_STATUS,
    relative_error,
)
from conveyor.insights.stats import Figures, JobFigures, PipelineFigures, compute

JOB_LABEL = "conveyor_job"
"""The label naming a pipeline's job (see the module's docstring for why not `job`)."""
PUSH_JOB = "conveyor"
"""The Pushgateway's `job` grouping label; each pipeline is its own group under it."""


def _bound(buckets: Sequence[float], unit: str, low: str, high: str) -> str:
    return (
        f"Buckets 2^(1/8) apart: histogram_quantile() is within "
        f"{relative_error(buckets) * 100:.1f}% of the exact (nearest-rank) quantile for "
        f"{unit} from {low} to {high}."
    )


DURATION_BOUND = _bound(DURATION_BUCKETS, "durations", "31 ms", "18 h")
MEMORY_BOUND = _bound(MEMORY_BUCKETS, "sizes", "1 MiB", "64 GiB")


def _cumulative(hist: Buckets, bounds: Sequence[float]) -> list[tuple[str, float]]:
    out, running = [], 0
    for bound, count in zip((*bounds, float("inf")), hist.counts, strict=True):
        running += count
        out.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
    return out


@dataclass(frozen=True, slots=True)
class _Histogram:
    """Counts per bucket, as the database counted them (`history.totals`)."""

    bounds: tuple[float, ...]
    buckets: Buckets

    def cumulative(self) -> list[tuple[str, float]]:
        return _cumulative(self.buckets, self.bounds)

    @property
    def total(self) -> float:
        return self.buckets.total


@dataclass(slots=True)
class _History:
    """The whole history of some pipelines, aggregated by label values."""

    runs: dict[tuple[str, ...], float] = field(default_factory=dict)
    run_seconds: dict[tuple[str, ...], _Histogram] = field(default_factory=dict)
    jobs: dict[tuple[str, ...], float] = field(default_factory=dict)
    job_seconds: dict[tuple[str, ...], _Histogram] = field(default_factory=dict)
    queue_seconds: dict[tuple[str, ...], _Histogram] = field(default_factory=dict)
    phases: dict[tuple[str, ...], float] = field(default_factory=dict)
    cache: dict[tuple[str, ...], float] = field(default_factory=dict)
    saved: dict[tuple[str, ...], float] = field(default_factory=dict)
    cpu: dict[tuple[str, ...], float] = field(default_factory=dict)
    memory: dict[tuple[str, ...], _Histogram] = field(default_factory=dict)
    gates: dict[tuple[str, ...], float] = field(default_factory=dict)
    windows: list[tuple[str, Figures]] = field(default_factory=list)


def _add(into: dict[tuple[str, ...], float], key: tuple[str, ...], value: float = 1.0) -> None:
    into[key] = into.get(key, 0.0) + value


def _histograms(
    into: dict[tuple[str, ...], _Histogram],
    bounds: tuple[float, ...],
    counted: dict[tuple[str, ...], Buckets],
) -> None:
    for key, buckets in counted.items():
        into[key] = _Histogram(bounds, buckets)


def _read(store: HistoryStore, pipeline: str, into: _History) -> None:
    """Every finished run of `pipeline`, its jobs and its gates, into the totals (added
    up by the database: see `history.totals`)."""
    for run in run_totals(store, pipeline):
        p = (run.pipeline,)
        _add(into.runs, (run.pipeline, run.status), float(run.rows))
        # Series that exist at zero, so a dashboard shows 0 rather than "no data".
        _add(into.saved, p, 0.0)
        _add(into.cache, (run.pipeline, "hit"), 0.0)
        _add(into.cache, (run.pipeline, "miss"), 0.0)
    # Every finished run, as `conveyor stats`'s mean wall time counts them.
    _histograms(
        into.run_seconds, DURATION_BUCKETS, run_durations(store, pipeline, DURATION_BUCKETS)
    )
    for g in gate_totals(store, pipeline):
        result = "passed" if g.passed else ("failed" if g.level == "error" else "warned")
        _add(into.gates, (g.pipeline, g.scope, g.gate, result), float(g.rows))
    added = job_histograms(
        store,
        pipeline,
        duration_bounds=DURATION_BUCKETS,
        memory_bounds=MEMORY_BUCKETS,
        queue_bounds=DURATION_BUCKETS,
        timed_status=TIMED_STATUS,
    )
    for job in added.totals:
        key = (job.pipeline, job.name)
        _add(into.jobs, (*key, job.status), float(job.rows))
        if job.status == "skipped":
            continue
        _add(into.cache, (job.pipeline, "hit" if job.cached else "miss"), float(job.rows))
        if job.cached:
            _add(into.saved, (job.pipeline,), job.saved)
        elif job.cpu_time is not None:
            _add(into.cpu, key, job.cpu_time)
        for (phase, _), seconds in zip(PHASES, job.phases, strict=True):
            if seconds is not None:
                _add(into.phases, (*key, phase), seconds)
    _histograms(into.job_seconds, DURATION_BUCKETS, added.durations)
    _histograms(into.memory, MEMORY_BUCKETS, added.memory)
    _histograms(into.queue_seconds, DURATION_BUCKETS, added.queue)


def window_label(seconds: float) -> str:
    """The `--since` window as a label value: '30d', '12h', '90m', '45s'."""
    whole = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


_PipelineGetter = Callable[[PipelineFigures], float | None]
_JobGetter = Callable[[JobFigures], float | None]

PIPELINE_GAUGES: tuple[tuple[str, str, _PipelineGetter], ...] = (
    ("conveyor_window_runs", "Finished runs started in the window.", lambda p: p.runs),
    (
        "conveyor_window_success_ratio",
        "Share of the window's runs that succeeded (0 to 1).",
        lambda p: p.success_rate,
    ),
    (
        "conveyor_window_run_duration_mean_seconds",
        "Mean wall time of the window's runs.",
        lambda p: p.mean_wall_time,
    ),
    (
        "conveyor_window_cache_saved_seconds",
        "Time the cache saved in the window's runs (the durations of the jobs it served).",
        lambda p: p.saved,
    ),
)
"""The pipeline's figures of `conveyor stats`, as gauges (labels pipeline, window)."""

JOB_GAUGES: tuple[tuple[str, str, _JobGetter], ...] = (
    ("conveyor_window_job_runs", "Runs in the window the job took part in.", lambda j: j.runs),
    (
        "conveyor_window_job_success_ratio",
        "Share of those runs the job succeeded in (0 to 1).",
        lambda j: j.success_rate,
    ),
    (
        "conveyor_window_job_failures",
        "Runs in the window the job failed or timed out in.",
        lambda j: j.failed,
    ),
    (
        "conveyor_window_job_cache_hit_ratio",
        "Share of the job's runs in the window the cache served (0 to 1).",
        lambda j: j.cache_hit_rate,
    ),
    (
        "conveyor_window_job_executions",
        "Runs in the window the job executed in and succeeded (what its durations and "
        "memory are of).",
        lambda j: j.executed,
    ),
    (
        "conveyor_window_job_queue_mean_seconds",
        "Mean time the job waited in the window's runs.",
        lambda j: j.queue_time,
    ),
    (
        "conveyor_window_job_check_mean_seconds",
        "Mean time the job's key took to compute and look up, in the window's runs.",
        lambda j: j.check_time,
    ),
    (
        "conveyor_window_job_restore_mean_seconds",
        "Mean time restoring the job (a hit's outputs, dependency caches) took, in the "
        "window's runs that restored something.",
        lambda j: j.restore_time,
    ),
    (
        "conveyor_window_job_run_mean_seconds",
        "Mean time the job's attempts took, in the window's runs that executed it.",
        lambda j: j.run_time,
    ),
    (
        "conveyor_window_job_store_mean_seconds",
        "Mean time storing the job's result and caches took, in the window's runs that stored it.",
        lambda j: j.store_time,
    ),
    (
        "conveyor_window_job_cpu_mean_seconds",
        "Mean user and system CPU time of the job's executions in the window.",
        lambda j: j.cpu_time,
    ),
    (
        "conveyor_window_job_cache_saved_seconds",
        "Time the cache saved by serving the job in the window.",
        lambda j: j.saved,
    ),
)
"""Each job's figures of `conveyor stats`, as gauges (labels pipeline, conveyor_job,
window); its percentiles follow them, one family each."""


_DURATION_PERCENTILES: tuple[_JobGetter, ...] = (lambda j: j.p50, lambda j: j.p95)
"""JobFigures' duration percentiles, in the order of QUANTILES."""


def _window_gauges(windows: list[tuple[str, Figures]]) -> Iterator[Metric]:
    for name, help_text, get in PIPELINE_GAUGES:
        family = GaugeMetricFamily(name, help_text, labels=["pipeline", "window"])
        for window, figures in windows:
            value = get(figures.pipeline)
            if value is not None:
                family.add_metric([figures.pipeline.name, window], float(value))
        yield family
    for name, help_text, job_get in JOB_GAUGES:
        family = GaugeMetricFamily(name, help_text, labels=["pipeline", JOB_LABEL, "window"])
        for window, figures in windows:
            for j in figures.jobs:
                value = job_get(j)
                if value is not None:
                    family.add_metric([figures.pipeline.name, j.job, window], float(value))
        yield family
    # One family per percentile, not a `quantile` label: that label is a summary's.
    percentiles: tuple[tuple[str, str, _JobGetter], ...] = (
        *(
            (
                f"conveyor_window_job_duration_p{round(q * 100)}_seconds",
                f"p{round(q * 100)} (nearest rank) of the durations of the job's "
                "executions in the window that succeeded, as `conveyor stats` shows it.",
                getter,
            )
            for q, getter in zip(QUANTILES, _DURATION_PERCENTILES, strict=True)
        ),
        (
            f"conveyor_window_job_peak_memory_p{round(QUANTILES[-1] * 100)}_bytes",
            f"p{round(QUANTILES[-1] * 100)} (nearest rank) of the peak resident memory of "
            "the job's executions in the window that succeeded, as `conveyor stats` shows "
            "it (in MiB).",
            lambda j: j.peak_memory,
        ),
    )
    for name, help_text, job_get in percentiles:
        family = GaugeMetricFamily(name, help_text, labels=["pipeline", JOB_LABEL, "window"])
        for window, figures in windows:
            for j in figures.jobs:
                value = job_get(j)
                if value is not None:
                    family.add_metric([figures.pipeline.name, j.job, window], float(value))
        yield family


@dataclass(frozen=True, slots=True, eq=False)
class _Collector:
    """The families of `conveyor metrics`, in the order they are exposed. (Hashed by
    identity: the registry keeps its collectors in a dict.)"""

    history: _History

    def collect(self) -> Iterator[Metric]:
        h = self.history
        yield _counter("conveyor_runs", "Runs recorded, by outcome.", ["status"], h.runs)
        yield _histogram(
            "conveyor_run_duration_seconds",
            f"Wall time of finished runs. {DURATION_BOUND}",
            [],
            h.run_seconds,
        )
        yield _counter(
            "conveyor_jobs", "Jobs of the recorded runs, by outcome.", [JOB_LABEL, "status"], h.jobs
        )
        yield _histogram(
            "conveyor_job_duration_seconds",
            "Duration of jobs that executed (not served from the cache) and succeeded. "
            + DURATION_BOUND,
            [JOB_LABEL],
            h.job_seconds,
        )
        yield _histogram(
            "conveyor_job_queue_seconds",
            "Time jobs waited once ready (for a slot, their resource group, the scheduler), "
            f"not working. {DURATION_BOUND}",
            [],
            h.queue_seconds,
        )
        yield _counter(
            "conveyor_job_phase_seconds",
            "Time jobs spent in each phase of their timeline: queued (waiting), check (key "
            "and cache lookup), restore (a hit's outputs, dependency caches), run (attempts), "
            "store (result and caches).",
            [JOB_LABEL, "phase"],
            h.phases,
        )
        yield _counter(
            "conveyor_cache_requests",
            "Jobs looked up in the cache, by result.",
            ["result"],
            h.cache,
        )
        yield _counter(
            "conveyor_cache_saved_seconds",
            "Time the cache saved (the original durations of the jobs it served).",
            [],
            h.saved,
        )
        yield _counter(
            "conveyor_job_cpu_seconds",
            "User and system CPU time of the process trees of jobs that executed.",
            [JOB_LABEL],
            h.cpu,
        )
        yield _histogram(
            "conveyor_job_peak_memory_bytes",
            "Peak resident memory of the process trees of jobs that executed and "
            f"succeeded. {MEMORY_BOUND}",
            [JOB_LABEL],
            h.memory,
        )
        yield _counter(
            "conveyor_gates",
            "Gates evaluated, by outcome (scope: a job, or 'pipeline').",
            ["scope", "gate", "result"],
            h.gates,
        )
        yield from _window_gauges(h.windows)


def _counter(
    name: str, help_text: str, labels: list[str], values: dict[tuple[str, ...], float]
) -> Metric:
    family = CounterMetricFamily(name, help_text, labels=["pipeline", *labels])
    for key, value in values.items():
        family.add_metric(list(key), value)
    return family


def _histogram(
    name: str, help_text: str, labels: list[str], values: dict[tuple[str, ...], _Histogram]
) -> Metric:
    family = HistogramMetricFamily(name, help_text, labels=["pipeline", *labels])
    for key, hist in values.items():
        family.add_metric(list(key), hist.cumulative(), sum_value=hist.total)
    return family


def registry_for(
    store: HistoryStore, pipelines: Sequence[str], window: float, now: float
) -> CollectorRegistry:
    """The metrics of these pipelines: counters and histograms over their whole
    history, gauges over the `window` seconds before `now`."""
    history = _History()
    label = window_label(window)
    for name in pipelines:
        _read(store, name, history)
        history.windows.append((label, compute(store, name, now - window)))
    registry = CollectorRegistry()
    registry.register(_Collector(history))
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


def push(url: str, registry: CollectorRegistry, pipeline: str) -> None:
    """PUT one pipeline's metrics to a Pushgateway, in the group {job="conveyor",
    pipeline=...}: replacing what that pipeline pushed before and leaving the others'."""
    try:
        push_to_gateway(
            url,
            job=PUSH_JOB,
            grouping_key={"pipeline": pipeline},
            registry=registry,
            timeout=30,
        )
    except urllib.error.HTTPError as exc:
        # The gateway answered: what it said is the reason, not its reachability.
        body = exc.read().decode("utf-8", "replace").strip()
        shown = body if len(body) <= 2000 else body[:2000] + " ..."
        raise EnvironmentProblem(
            f"the Pushgateway at {url} refused the metrics of {pipeline}: "
            f"HTTP {exc.code} {exc.reason}" + (f": {shown}" if shown else "")
        ) from None
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot push the metrics to {url}: {exc}",
            hint="is the Pushgateway reachable at that address?",
        ) from None
