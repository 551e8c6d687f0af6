"""The end of an anomaly episode: one resolution for each episode whose alert went out.

Every scan records, per series it evaluated, the episodes whose alert was delivered and that
are still in its recent window (ANOMALY_RECENT_HOURS, or ANOMALY_COST_RECENT_DAYS for the daily
cost): the state table value `open_episodes` of `anomaly/<resource>`, with each episode's alert.
An episode is over when a later scan evaluated its series and no longer finds it there: the
metric has been back within its expected band for the whole recent window. The scan then
delivers the alert's resolution (`Alert.resolution`: the same id, so the same PagerDuty dedup
key) with `deliver_once` under `<dedup key>/resolved`, and forgets the episode once SNS took it.
An episode whose alert never went out is never recorded, so it is never resolved; a series that
could not be read, or has no value in its recent window (it stopped reporting), resolves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.state_table import StateTable
from handlers.anomaly_detector.findings import Finding, key_resource

OPEN_EPISODES = "open_episodes"


@dataclass(frozen=True)
class EvaluatedSeries:
    """A series a scan evaluated: its resource, its recent window in words, and whether it may
    resolve episodes (it has values in that window)."""

    resource: str
    window: str
    resolves: bool = True


@dataclass(frozen=True)
class Resolutions:
    """What ending the episodes did."""

    sent: int
    failures: list[AlertNotDeliveredError]


def state_key(resource: str) -> str:
    """The state table key of a series' open episodes."""
    return f"anomaly/{key_resource(resource)}"


def resolve_ended_episodes(
    evaluated: list[EvaluatedSeries],
    findings: list[Finding],
    delivered: dict[str, Alert],
    table: StateTable,
    publisher: AlertPublisher,
    *,
    ttl_seconds: int,
    now: datetime,
) -> Resolutions:
    """Record the delivered episodes of each evaluated series, and resolve those that ended."""
    current: dict[str, set[str]] = {}
    for finding in findings:
        current.setdefault(finding.resource, set()).add(finding.dedup_key())
    sent = 0
    failures: list[AlertNotDeliveredError] = []
    for series in evaluated:
        if not series.resolves:
            continue
        ongoing = current.get(series.resource, set())
        stored: dict[str, Any] = (
            table.get_value(state_key(series.resource), OPEN_EPISODES) or {}
        ).get("episodes", {})
        still_open = {key: alert for key, alert in stored.items() if key in ongoing}
        for key, alert in delivered.items():
            if key in ongoing:
                still_open[key] = alert.model_dump(mode="json")
        for key in sorted(set(stored) - ongoing):
            alert = Alert.model_validate(stored[key])
            resolution = alert.resolution(
                f"{alert.title} is over: {series.resource} has been back within its expected "
                f"band for {series.window}.",
                now,
            )
            try:
                if deliver_once(table, publisher, f"{key}/resolved", resolution, ttl_seconds):
                    sent += 1
            except AlertNotDeliveredError as error:
                # Kept open, so the next scan (or the retry) sends the resolution.
                still_open[key] = stored[key]
                failures.append(error)
        if still_open or stored:
            table.put_value(
                state_key(series.resource),
                OPEN_EPISODES,
                {"episodes": still_open},
                ttl_seconds=ttl_seconds,
            )
    return Resolutions(sent, failures)
