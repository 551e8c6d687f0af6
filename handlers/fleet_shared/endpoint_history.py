"""The recent results of a health endpoint, as the health monitor keeps them in the state table.

The health monitor writes one entry per probe (`{"at", "ok", "latency_ms"}`) under
`endpoint_history_key`, keeping the entries of the last `HISTORY_RETENTION` (or of its error-rate
window, when that is longer); the change validator reads them back to know how an endpoint
behaved before and after a change (a bake longer than the retention is judged on its last
part). One module owns the key and the entry format, so writer and reader never drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.timestamps import iso_z, parse_iso

HISTORY_RETENTION = timedelta(hours=2)
"""How long the health monitor keeps an endpoint's results: a default 15-minute baseline and
bake, with the bake's callback late by minutes, are covered many times over."""

SCHEDULED_RUN_MINUTES = 5
"""Minutes between two scheduled health monitor runs, each adding one result to an endpoint's
history: the catalog's `health-check` schedule, rate(5 minutes)."""

HISTORY_VALUE = "recent_results"
"""The name of the saved value holding an endpoint's recent results."""


def endpoint_history_key(cluster_label: str, endpoint_name: str) -> str:
    """The state-table key of an endpoint's recent results; `cluster_label` is
    `<account>/<region>/<cluster>`."""
    return f"health_monitor/endpoint/{cluster_label}/{endpoint_name}"


@dataclass(frozen=True)
class EndpointResult:
    """One probe of an endpoint: when, whether it succeeded and how long it took (None for an
    entry written before latencies were kept)."""

    at: datetime
    ok: bool
    latency_ms: float | None

    def as_entry(self) -> dict[str, Any]:
        """The stored form of this result."""
        return {"at": iso_z(self.at), "ok": self.ok, "latency_ms": self.latency_ms}


def read_results(stored: dict[str, Any] | None) -> list[EndpointResult]:
    """The readable results of a stored history, oldest first (an unreadable entry is dropped)."""
    results: list[EndpointResult] = []
    for entry in (stored or {}).get("results", []):
        if not isinstance(entry, dict):
            continue
        try:
            at = parse_iso(str(entry.get("at", "")))
        except ValueError:
            continue
        latency = entry.get("latency_ms")
        readable_latency = (
            float(latency)
            if isinstance(latency, int | float) and math.isfinite(float(latency))
            else None
        )
        results.append(EndpointResult(at, bool(entry.get("ok")), readable_latency))
    return sorted(results, key=lambda result: result.at)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` (0-1) percentile of `values` by linear interpolation; `values` not empty."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def summarise(results: Iterable[EndpointResult]) -> dict[str, float | int | None]:
    """Latency percentiles (p50, p95, p99 in ms), error rate and sample count of `results`;
    figures are None when there is nothing to compute them from."""
    chosen = list(results)
    latencies = [result.latency_ms for result in chosen if result.latency_ms is not None]
    failures = sum(1 for result in chosen if not result.ok)
    return {
        "samples": len(chosen),
        "error_rate": round(failures / len(chosen), 3) if chosen else None,
        "latency_p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "latency_p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "latency_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
    }
