"""One definition of a percentile and of the histogram buckets, with their error bound."""

from __future__ import annotations

import random

import pytest

from conveyor.insights.definitions import (
    DURATION_BUCKETS,
    MEMORY_BUCKETS,
    percentile,
    relative_error,
)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10
    assert percentile(values, 0.95) == 19
    assert percentile(values, 1.0) == 20
    assert percentile([7.0], 0.95) == 7
    assert percentile([], 0.5) is None
    assert percentile([1, 2, 3], 0.5) == 2, "a recorded value, ints stay ints"


def _histogram_quantile(q: float, bounds: tuple[float, ...], values: list[float]) -> float:
    """Prometheus' classic-histogram interpolation (promql/quantile.go, bucketQuantile)."""
    counts = [sum(v <= b for v in values) for b in bounds]
    rank = q * len(values)
    b = next(i for i, c in enumerate(counts) if c >= rank)
    start, below = (bounds[b - 1], counts[b - 1]) if b else (0.0, 0)
    return start + (bounds[b] - start) * (rank - below) / (counts[b] - below)


@pytest.mark.parametrize(
    ("bounds", "low", "high"),
    [(DURATION_BUCKETS, 0.05, 3000.0), (MEMORY_BUCKETS, 2.0**21, 2.0**34)],
)
def test_buckets_keep_histogram_quantile_within_the_stated_error(
    bounds: tuple[float, ...], low: float, high: float
) -> None:
    error = relative_error(bounds)
    assert 0.09 < error < 0.092, "2**(1/8) apart, rounded to 4 digits"
    rng = random.Random(13)
    for _ in range(200):
        values = sorted(low * (high / low) ** rng.random() for _ in range(rng.randint(1, 60)))
        for q in (0.5, 0.95):
            exact = percentile(values, q)
            assert exact is not None
            estimate = _histogram_quantile(q, bounds, values)
            assert abs(estimate - exact) <= error * exact, (q, values)
