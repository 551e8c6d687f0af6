"""From detected anomalies to findings, and from findings to alerts raised once.

Point anomalies of the same sign are one episode while the metric is back within its band for
at most `EPISODE_GAP` (30 minutes) or one sample, whichever is longer, between them: a level
shift first shows up as a run of point anomalies (until the detector's rolling median has a day
of the new level), a sustained spike lasts several samples, and a marginal one (about 6 noise
sigmas) scores around the threshold, some of its samples below it; one alert per episode, not
one per sample or per flicker. An episode is kept when it ends within the recent window, and is
identified by where it starts, so a scan that sees it grow does not raise it again; a scan that
draws its start elsewhere continues the open episode it overlaps
(`episodes.continue_open_episodes`).

Dedup: each alert is delivered with `fleet_shared.alert_delivery.deliver_once` under
`anomaly/<resource>/<kind>/<start>` (a resource over 512 bytes by its start and a digest),
remembered ANOMALY_DEDUP_DAYS once SNS took it. A level shift's start is bucketed to 6 hours,
because its estimated position can move by a sample or two as more data arrives. An alert SNS
refuses is not remembered: the caller fails the invocation after trying the others, and the
retry (or the next scan) raises it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, AlertPublisher, Severity, alert_id
from fleet_shared.numeric.robust_anomalies import Anomaly, Detection, severity_for
from fleet_shared.state_table import ClaimDeadline, StateTable
from fleet_shared.timestamps import iso_z

SOURCE = "anomaly_detector"
SHIFT_BUCKET = timedelta(hours=6)
EPISODE_GAP = timedelta(minutes=30)
"""The longest time a metric may be back within its band inside one episode (at least one sample,
`episode_gap`): a spike flickering around the threshold is one episode, and an episode is over
only once the metric has been within its band for longer."""
KEY_RESOURCE_MAX_BYTES = 512
"""The most bytes of a resource a state table key holds: a dedup key is a sort key (at most
1,024 bytes), and a metric's dimension values alone may have 1,024 characters each."""
_DIGEST_CHARACTERS = 32


def key_resource(resource: str) -> str:
    """`resource` as the state table keys name it: itself when it fits KEY_RESOURCE_MAX_BYTES,
    else its start and a digest of the whole, so two long resources never share a key."""
    encoded = resource.encode("utf-8")
    if len(encoded) <= KEY_RESOURCE_MAX_BYTES:
        return resource
    digest = hashlib.sha256(encoded).hexdigest()[:_DIGEST_CHARACTERS]
    start = encoded[: KEY_RESOURCE_MAX_BYTES - _DIGEST_CHARACTERS - 1]
    return f"{start.decode('utf-8', 'ignore')}#{digest}"


def episode_gap(period: timedelta) -> timedelta:
    """The longest stretch of usual values inside one episode of a series of this `period`:
    EPISODE_GAP, or one sample when a sample is longer (an hourly metric, the daily cost)."""
    return max(EPISODE_GAP, period)


@dataclass(frozen=True)
class Finding:
    """One anomaly episode of one series."""

    label: str
    resource: str
    account_id: str | None
    region: str | None
    kind: str
    start: datetime
    end: datetime
    samples: int
    peak: Anomaly
    period: timedelta
    """The series' period: an anomalous value covers it from its stamp."""
    episode_key: str | None = None
    """The dedup key of the open episode this finding continues, when a scan drew its start
    elsewhere (`episodes.continue_open_episodes`)."""

    @property
    def up(self) -> bool:
        """Whether the episode is above its expected band."""
        return self.peak.score > 0

    def continues(self, start: datetime, end: datetime) -> bool:
        """Whether an episode of the same series with anomalous values stamped `start` to `end`
        and this one are one: the metric was within its band for at most `episode_gap` between
        them, or they overlap."""
        gap = episode_gap(self.period)
        return self.start - end - self.period <= gap and start - self.end - self.period <= gap

    @property
    def severity(self) -> Severity:
        """From the episode's strongest score (see robust_anomalies' thresholds)."""
        return severity_for(self.peak.score)

    def dedup_key(self) -> str:
        """What makes two scans' findings the same anomaly: the open episode it continues, or
        its own start."""
        if self.episode_key is not None:
            return self.episode_key
        start = self.start
        if self.kind == "level_shift":
            epoch = datetime(1970, 1, 1, tzinfo=start.tzinfo)
            start = epoch + ((start - epoch) // SHIFT_BUCKET) * SHIFT_BUCKET
        return f"anomaly/{key_resource(self.resource)}/{self.kind}/{iso_z(start)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "label": self.label,
            "resource": self.resource,
            "account_id": self.account_id,
            "region": self.region,
            "kind": self.kind,
            "start": iso_z(self.start),
            "end": iso_z(self.end),
            "samples": self.samples,
            "value": round(self.peak.value, 6),
            "expected": round(self.peak.expected, 6),
            "score": round(self.peak.score, 3),
            "severity": self.severity.value,
        }


def findings_from(
    detection: Detection,
    *,
    label: str,
    resource: str,
    account_id: str | None,
    region: str | None,
    since: datetime,
    value_span: timedelta,
    period: timedelta,
) -> list[Finding]:
    """The episodes of `detection` (values every `period`, anomalies of one sign at most
    `episode_gap` apart joined) that end at or after `since`, an episode ending `value_span`
    after its last value's stamp. A recent window counts ended periods, so its span is the
    values' period (a value is stamped with the start of the period it covers: its stamp alone
    would leave out the last complete hour once it began an hour ago, with a one-hour window
    every hourly anomaly, and a day's cost once that day began a day ago); an alarm's window
    counts stamps, as its evaluation periods do (span 0)."""
    findings: list[Finding] = []
    run: list[Anomaly] = []
    gap = episode_gap(period)

    def close() -> None:
        if run:
            peak = max(run, key=lambda anomaly: abs(anomaly.score))
            findings.append(
                Finding(label, resource, account_id, region, "point", run[0].timestamp,
                        run[-1].timestamp, len(run), peak, period)
            )  # fmt: skip
            run.clear()

    for anomaly in detection.anomalies:
        if anomaly.kind == "level_shift":
            findings.append(
                Finding(label, resource, account_id, region, "level_shift", anomaly.timestamp,
                        anomaly.timestamp, 1, anomaly, period)
            )  # fmt: skip
            continue
        if run and (
            anomaly.timestamp - run[-1].timestamp - period > gap
            or (anomaly.score > 0) != (run[-1].score > 0)
        ):
            close()
        run.append(anomaly)
    close()
    return sorted(
        (finding for finding in findings if finding.end + value_span >= since),
        key=lambda finding: finding.start,
    )


@dataclass(frozen=True)
class RaisedAlerts:
    """What raising the findings' alerts did."""

    reported: list[dict[str, Any]]
    """The findings as dicts, each with `alerted` (True when its alert went out now)."""
    delivered: dict[str, Alert]
    """The alert of every finding whose alert is out (now or by an earlier run), by dedup key."""
    failures: list[AlertNotDeliveredError]
    """The alerts SNS refused: not remembered, so raised again by the retry."""


def raise_alerts(
    findings: list[Finding],
    table: StateTable,
    publisher: AlertPublisher,
    *,
    dedup_days: int,
    now: datetime,
    deadline: ClaimDeadline | None,
    title_prefix: str = "Anomaly",
) -> RaisedAlerts:
    """Deliver an alert for each finding not delivered before, each tried even when an earlier
    one failed; each claim is bound to `deadline` (the invocation)."""
    reported: list[dict[str, Any]] = []
    delivered: dict[str, Alert] = {}
    failures: list[AlertNotDeliveredError] = []
    for finding in findings:
        key = finding.dedup_key()
        alert = _alert(finding, now, title_prefix)
        try:
            message_id = deliver_once(
                table, publisher, key, alert, dedup_days * 86_400, deadline=deadline
            )
        except AlertNotDeliveredError as error:
            failures.append(error)
            message_id = None
        else:
            delivered[key] = alert
        reported.append({**finding.to_dict(), "alerted": message_id is not None})
    return RaisedAlerts(reported, delivered, failures)


def _alert(finding: Finding, now: datetime, title_prefix: str) -> Alert:
    what = "level shift" if finding.kind == "level_shift" else "spike"
    direction = "up" if finding.up else "down"
    return Alert.create(
        severity=finding.severity,
        source=SOURCE,
        title=f"{title_prefix}: {what} {direction} in {finding.label} at {iso_z(finding.start)}",
        detail=(
            f"{finding.label}: {finding.samples} anomalous sample(s) from {iso_z(finding.start)} "
            f"to {iso_z(finding.end)}; strongest {finding.peak.value:.4g} where "
            f"{finding.peak.expected:.4g} was expected (robust score {finding.peak.score:.1f} "
            f"noise sigmas)."
        ),
        resource=finding.resource,
        account_id=finding.account_id,
        region=finding.region,
        timestamp=now,
        # The episode's id, not its title's: a scan and an alarm share the episode's one alert
        # (its dedup key), and a resolution must carry the id of the alert that went out.
        id=alert_id(SOURCE, finding.resource, finding.dedup_key()),
    )
