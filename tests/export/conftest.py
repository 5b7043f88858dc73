"""Shared by the export tests: the Prometheus text format, parsed."""

from __future__ import annotations

from typing import Any


def metric_families(text: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(families: dict[str, Any], name: str, sample: str, **labels: str) -> float:
    for s in families[name].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no {sample} {labels}")
