"""One definition of each figure that `conveyor stats`, `conveyor metrics` and the
Grafana dashboard show: which executions a duration or a peak memory is of, what a
percentile is, the units, and the histogram buckets with the error they allow.

Issue 13: the dashboard said a job's p95 was 102 s where `conveyor stats` said 64 s
(failed runs counted in one and not the other, and buckets twice as wide as each other),
and 1.02 GB of memory where stats said 552 MiB (a p95 against a maximum, in other units).
Both now read these definitions, so they can only differ by the stated bucket error.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TypeVar

Number = TypeVar("Number", int, float)

QUANTILES = (0.5, 0.95)
"""The percentiles shown of durations (p50, p95); peak memory shows the last."""

TIMED_STATUS = "success"
"""A job's duration and peak memory are of its executions (not cache hits) that
succeeded: a job that broke after a second says nothing about how long it takes."""

MIB = 2**20
"""Memory is shown in binary units (MiB, GiB), as Grafana's `bytes` unit shows it."""


def timed(status: str, cached: bool) -> bool:
    """Whether a job's row is one of the executions its durations and memory are of."""
    return status == TIMED_STATUS and not cached


def percentile(ordered: Sequence[Number], q: float) -> Number | None:
    """The q-quantile (0 < q <= 1) of sorted values by nearest rank: the ceil(q*n)-th
    smallest. A recorded value (never one between two), and the one whose histogram
    bucket Prometheus' `histogram_quantile` interpolates in, which is what bounds the
    error of the dashboard's quantiles (see `relative_error`)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))  # q*n a whole number: that one
    return ordered[min(rank, len(ordered)) - 1]


def geometric_buckets(first: float, last: float, per_doubling: int) -> tuple[float, ...]:
    """Upper bounds from `first` to at least `last`, each 2**(1/per_doubling) times the
    one before, rounded to 4 significant digits (readable `le` labels; the ratios stay
    within 0.1% of each other, and `relative_error` measures the widest)."""
    out: list[float] = []
    k = 0
    while not out or out[-1] < last:
        value = first * 2 ** (k / per_doubling)
        out.append(float(f"{value:.4g}"))
        k += 1
    return tuple(out)


def relative_error(buckets: Sequence[float]) -> float:
    """The most `histogram_quantile` can be off, relative to the exact (nearest-rank)
    quantile, for a value between the first and the last bound: the quantile's value v
    lies in a bucket (l, u] and so does the interpolated estimate, so the two differ by
    at most u - l = l * (u/l - 1) < v * (u/l - 1). Below the first bound the estimate is
    off by at most that bound; above the last, it is that bound."""
    return max(high / low for low, high in itertools.pairwise(buckets)) - 1


# 2**(1/8) apart: quantiles within about 9% (`relative_error`), at 8 buckets per
# doubling; 2**(1/4) would halve the series and double the error.
DURATION_BUCKETS = geometric_buckets(2**-5, 2**16, 8)
"""Seconds, from 31 ms to 18 hours."""
MEMORY_BUCKETS = geometric_buckets(float(MIB), float(2**36), 8)
"""Bytes, from 1 MiB to 64 GiB."""


def format_mib(size: float) -> str:
    """Bytes in MiB, as `conveyor stats` prints memory ('552 MiB')."""
    return f"{size / MIB:.0f} MiB"
