"""The end of an anomaly episode: one resolution for each episode whose alert went out.

Every scan records, per series it evaluated, the episodes whose alert was delivered and that
are still in its recent window (ANOMALY_RECENT_HOURS, or ANOMALY_COST_RECENT_DAYS for the daily
cost): the state table value `open_episodes` of `anomaly/<resource>`, with each episode's alert.
An episode is over when a later scan evaluated its series and no longer finds it there: the
metric has been back within its expected band for the whole recent window. The scan then
delivers the alert's resolution (`Alert.resolution`: the same id, so the same PagerDuty dedup
key) with `deliver_once` under `<dedup key>/resolved`, and forgets the episode once SNS took it.
An episode whose alert never went out is never recorded, so it is never resolved; a series that
could not be read resolves nothing.

A series with no value in its recent window (it stopped reporting) does not show the metric back
within its band, so it resolves nothing while it is silent: its record is kept (saved again with
`silent_since`, its last value's time, so it does not expire while the series is read), and once
it has been silent for ANOMALY_DEDUP_DAYS its episodes are closed by a resolution saying so.
Otherwise the record would expire with the episodes open: their incidents would never close, and
the series' next episode would open another one beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z, parse_iso
from handlers.anomaly_detector.findings import Finding, key_resource

OPEN_EPISODES = "open_episodes"


@dataclass(frozen=True)
class EvaluatedSeries:
    """A series a scan evaluated: its resource, its recent window in words, whether it may
    resolve episodes (it has values in that window), and the time of its newest value (None
    when the read returned none)."""

    resource: str
    window: str
    resolves: bool = True
    last_value_at: datetime | None = None


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
    """Record the delivered episodes of each evaluated series, and resolve those that ended;
    close the episodes of a series silent for `ttl_seconds` (ANOMALY_DEDUP_DAYS)."""
    current: dict[str, set[str]] = {}
    for finding in findings:
        current.setdefault(finding.resource, set()).add(finding.dedup_key())
    sent = 0
    failures: list[AlertNotDeliveredError] = []
    for series in evaluated:
        record = table.get_value(state_key(series.resource), OPEN_EPISODES) or {}
        stored: dict[str, Any] = record.get("episodes", {})
        if not series.resolves:
            if stored:
                closed = _close_if_silent_too_long(
                    series, record, table, publisher, ttl_seconds=ttl_seconds, now=now
                )
                sent += closed.sent
                failures += closed.failures
            continue
        ongoing = current.get(series.resource, set())
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


def _close_if_silent_too_long(
    series: EvaluatedSeries,
    record: dict[str, Any],
    table: StateTable,
    publisher: AlertPublisher,
    *,
    ttl_seconds: int,
    now: datetime,
) -> Resolutions:
    """Keep the open episodes of a silent series, or close them once it has been silent for
    `ttl_seconds`: one resolution each, saying the series stopped reporting."""
    known = [parse_iso(record["silent_since"])] if "silent_since" in record else []
    if series.last_value_at is not None:
        known.append(series.last_value_at)
    silent_since = min(known, default=now)
    stored: dict[str, Any] = record["episodes"]
    still_open = dict(stored)
    sent = 0
    failures: list[AlertNotDeliveredError] = []
    if now - silent_since >= timedelta(seconds=ttl_seconds):
        days = (now - silent_since).days
        for key in sorted(stored):
            alert = Alert.model_validate(stored[key])
            resolution = alert.resolution(
                f"{alert.title} is closed: {series.resource} has reported no value since "
                f"{iso_z(silent_since)} ({days} days), so the episode can no longer be followed.",
                now,
            )
            try:
                if deliver_once(table, publisher, f"{key}/resolved", resolution, ttl_seconds):
                    sent += 1
            except AlertNotDeliveredError as error:
                # Kept open, so the next scan (or the retry) sends the resolution.
                failures.append(error)
                continue
            del still_open[key]
    table.put_value(
        state_key(series.resource),
        OPEN_EPISODES,
        {"episodes": still_open, "silent_since": iso_z(silent_since)},
        ttl_seconds=ttl_seconds,
    )
    return Resolutions(sent, failures)
