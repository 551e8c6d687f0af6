"""Week-over-week trends, regressions, and their alerts: exactly one per regression.

A regression is a rule that fires now and either did not fire in the same window a week earlier
or whose figure rose by at least PERFORMANCE_REGRESSION_PERCENT since; a week earlier without
the rule's figure (a cluster younger than a week, a gap in Container Insights) compares nothing.
Its alert (warning) is published when it starts; while it lasts nothing more is sent. It lasts
while the rule's figure is above the rule's clear level (a margin under its threshold,
`bottlenecks.BOTTLENECK_RULES`), whatever the week earlier measured: a figure around the threshold
or a week earlier catching up with now would otherwise resolve and reopen it run after run. Once
the figure is at or below the clear level, the resolution (same alert id, saying the figure and
the level) is sent and the record closed; a rule the window has no figure for was not measured,
so it is not resolved. A rule whose clear level is its threshold (a count firing above 0) would
still resolve and reopen on a count going 1, 0, 1, 0, so a regression resolves only after its
rule's `clear_runs` clean runs in a row: the open record counts them (CLEAN_RUNS), a run with the
figure above the clear level resets the count, a run without the figure neither counts nor
resets it, and a run over a window already counted (the platform's retry, an `analyze_cluster`
within the hour) does not count again (CLEAN_THROUGH, the end of the last window counted). The
record holds no clear level (the rule table does), so an open record written before clear levels
were kept is held and resolved by them alike.

Exactly once, under faults: each notice goes through `deliver_once`, keyed by the rule's record
as it was before the notice (the regression's start is named by the time the previous one
closed). The record is written after the delivery, whether this run published or found the
notice already delivered: a record write lost after SNS took the alert leaves the record as it
was, and the next run finds the delivery done and only writes the record. A closed record whose
next warning was delivered is open whatever the rule does in that run (fires, clears, holds
between its clear level and threshold): the run records it open and keeps the cluster indexed, so
the warning is resolved once, even after the cluster leaves the inventory. An open record whose
resolution was delivered is closed likewise, so the next regression is announced and resolved
in its turn. A publish SNS refuses
is logged and retried on the next run. Two runs settling one cluster at once (an
`analyze_cluster` sent during the schedule's run) would both find a regression unrecorded: a
lock per cluster lets one settle while the other's cluster is an error (the first one's alerts
stand).

A cluster removed from the inventory is analysed no more, so the clusters with an open regression
are indexed in one state-table record (OPEN_REGRESSIONS_KEY, one value per cluster): written
before a regression's warning is published, removed once none of the cluster's rules is open. A
fleet run resolves the open regressions of every indexed cluster the inventory no longer has
(`resolve_removed_cluster`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once, delivered
from fleet_shared.alerts import Alert, Severity
from fleet_shared.exceptions import RequestInProgressError, UnreadableStateValueError
from fleet_shared.performance_documents import Bottleneck, MetricTrend
from fleet_shared.state_table import ClaimDeadline
from fleet_shared.timestamps import iso_z
from handlers.performance_analyzer.bottlenecks import BOTTLENECK_RULES, BottleneckRule
from handlers.performance_analyzer.measurements import CLUSTER_METRICS, WindowMeasurements
from handlers.performance_analyzer.services import PerformanceServices

OPEN = "open"
CLOSED_AT = "closed_at"
STARTED_AFTER = "started_after"
FIRST = "first"
CLEAN_RUNS = "clean_runs"
"""In an open record: the clean runs in a row so far (figure at or below the clear level)."""
CLEAN_THROUGH = "clean_through"
"""In an open record: the end of the window of the last clean run counted."""
DELIVERY_TTL_SECONDS = 14 * 24 * 3600
"""How long a delivered notice is remembered: longer than the state table could be unwritable
between a publish and its record."""
OPEN_REGRESSIONS_KEY = "performance/open-regressions"
"""The index of the clusters with an open regression: one value per `<account>/<region>/<cluster>`,
listed in one query."""
ALERTS_LOCK_SECONDS = 60
"""The lease of a cluster's alert lock: far longer than reading, publishing and recording the
alerts of its rules takes, short enough that a crashed run blocks the next one only briefly."""


@dataclass(frozen=True)
class MeasuredWindow:
    """What a run measured: the rules its window has a figure for, and the window's end."""

    rules: frozenset[str]
    end: datetime


def trends(now: WindowMeasurements, week_earlier: WindowMeasurements) -> list[MetricTrend]:
    """Every Container Insights figure and the worst load balancer p99, now and a week ago."""
    rows = [
        (
            metric.name,
            metric.unit,
            now.figures.get(metric.name),
            week_earlier.figures.get(metric.name),
        )
        for metric in CLUSTER_METRICS
    ]
    now_p99, earlier_p99 = now.worst_p99(), week_earlier.worst_p99()
    rows.append(
        (
            "lb_p99",
            "Seconds",
            now_p99[1] if now_p99 else None,
            earlier_p99[1] if earlier_p99 else None,
        )
    )
    return [
        MetricTrend(
            name=name,
            unit=unit,
            value=_rounded(value),
            week_earlier=_rounded(earlier),
            change_percent=_change_percent(value, earlier),
        )
        for name, unit, value, earlier in rows
    ]


def _change_percent(value: float | None, earlier: float | None) -> float | None:
    """(value - earlier) / earlier x 100; None when either is missing or zero, or when the
    change is beyond the largest float (a figure near CloudWatch's 2**360 against one near 0),
    which no document can hold."""
    if value is None or not earlier:
        return None
    change = round((value - earlier) / earlier * 100, 2)
    return change if math.isfinite(change) else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def regressions(
    bottlenecks: list[Bottleneck],
    earlier_bottlenecks: list[Bottleneck],
    metric_trends: list[MetricTrend],
    regression_percent: float,
    measured_earlier: frozenset[str],
) -> list[str]:
    """The rules that fire now and fired not at all, or clearly less, a week earlier; only
    rules in `measured_earlier` (whose figure the week earlier has): a week without the figure
    did not show the rule not firing."""
    fired_before = {bottleneck.rule for bottleneck in earlier_bottlenecks}
    changes = {trend.name: trend.change_percent for trend in metric_trends}
    found: list[str] = []
    for bottleneck in bottlenecks:
        if bottleneck.rule not in measured_earlier:
            continue
        change = changes.get(bottleneck.metric)
        if bottleneck.rule not in fired_before or (
            change is not None and change >= regression_percent
        ):
            found.append(bottleneck.rule)
    return found


def settle_regression_alerts(
    services: PerformanceServices,
    logger: Any,
    *,
    resource: str,
    account_id: str,
    region: str,
    regressing: list[str],
    bottlenecks: list[Bottleneck],
    cleared: Mapping[str, str],
    measured: MeasuredWindow | None,
    deadline: ClaimDeadline | None,
) -> dict[str, int]:
    """Open an alert for each new regression and resolve the open ones of the rules in `cleared`
    (rule -> why it cleared, the resolution's detail; a rule whose figure is above its clear
    level, or that the window has no figure for, did not clear) once they cleared in their rule's
    `clear_runs` runs of `measured` in a row; the counts. `measured` None: no run measures the
    cluster again (it left the inventory), so the rules in `cleared` resolve at once. Raises
    `LockNotAcquiredError` while another run settles the same cluster."""
    by_rule = {bottleneck.rule: bottleneck for bottleneck in bottlenecks}
    key = f"performance/{resource}"
    with services.state.lock(key, uuid.uuid4().hex, ALERTS_LOCK_SECONDS):
        return _settle(
            services,
            logger,
            key=key,
            resource=resource,
            account_id=account_id,
            region=region,
            regressing=regressing,
            by_rule=by_rule,
            cleared=cleared,
            measured=measured,
            deadline=deadline,
        )


def open_regression_clusters(
    services: PerformanceServices,
) -> tuple[list[str], list[UnreadableStateValueError]]:
    """The indexed clusters with an open regression, as `<account>/<region>/<cluster>`, and the
    error of each entry of the index that cannot be read (a hand edit, corruption), naming it:
    where one such entry raised, no removed cluster was resolved."""
    read = services.state.readable_values_named(OPEN_REGRESSIONS_KEY, "")
    return list(read.values), list(read.unreadable.values())


def resolve_removed_cluster(
    services: PerformanceServices,
    logger: Any,
    *,
    resource: str,
    account_id: str,
    region: str,
    deadline: ClaimDeadline | None,
) -> dict[str, int]:
    """Resolve every open regression of `resource`, a cluster gone from the inventory (no run
    measures it again), and drop it from the index; the counts."""
    return settle_regression_alerts(
        services,
        logger,
        resource=resource,
        account_id=account_id,
        region=region,
        regressing=[],
        bottlenecks=[],
        cleared={
            rule.name: f"{resource} is no longer in the fleet inventory"
            for rule in BOTTLENECK_RULES
        },
        measured=None,
        deadline=deadline,
    )


def _settle(
    services: PerformanceServices,
    logger: Any,
    *,
    key: str,
    resource: str,
    account_id: str,
    region: str,
    regressing: list[str],
    by_rule: dict[str, Bottleneck],
    cleared: Mapping[str, str],
    measured: MeasuredWindow | None,
    deadline: ClaimDeadline | None,
) -> dict[str, int]:
    counts = {"sent": 0, "resolved": 0, "open": 0}
    indexed = False
    open_rules: list[str] = []
    for rule in BOTTLENECK_RULES:
        record = services.state.get_value(key, rule.name) or {}
        alert = Alert.create(
            severity=Severity.WARNING,
            source=services.function_name,
            title=f"Performance regression on {resource}: {rule.title.lower()}",
            detail=by_rule[rule.name].evidence if rule.name in by_rule else rule.title,
            resource=resource,
            account_id=account_id,
            region=region,
            timestamp=services.clock.now(),
        )
        record, is_open = _current(
            services, key, rule.name, record, alert, publishing=rule.name in regressing
        )
        if is_open and measured is not None and rule.name in measured.rules:
            record = _count_clean_run(
                services, key, rule, record, measured.end, clean=rule.name in cleared
            )
        if rule.name in regressing:
            counts["open"] += 1
            if is_open:
                open_rules.append(rule.name)
                continue
            if not indexed:
                # Before the warning: a run that ends after SNS took it leaves the cluster indexed.
                _index_open(services, resource)
                indexed = True
            started_after = _episode(record)
            delivery = f"{key}/{rule.name}/{started_after}/open"
            sent_now = _deliver(services, logger, delivery, alert, deadline)
            if sent_now is not None:
                open_rules.append(rule.name)
                services.state.put_value(
                    key,
                    rule.name,
                    {OPEN: True, "alert_id": alert.id, STARTED_AFTER: started_after},
                )
                counts["sent"] += sent_now
        elif rule.name in cleared and is_open:
            if measured is not None and _clean_runs(record) < rule.clear_runs:
                # Cleared, but not yet in as many runs in a row as the rule needs (a count that
                # clears at its threshold): the regression lasts.
                counts["open"] += 1
                open_rules.append(rule.name)
                continue
            now = services.clock.now()
            resolution = alert.resolution(cleared[rule.name], now)
            delivery = f"{key}/{rule.name}/{_episode(record)}/resolved"
            sent_now = _deliver(services, logger, delivery, resolution, deadline)
            if sent_now is None:
                open_rules.append(rule.name)
            else:
                services.state.put_value(
                    key, rule.name, {OPEN: False, "alert_id": alert.id, CLOSED_AT: iso_z(now)}
                )
                counts["resolved"] += sent_now
        elif is_open:
            # Its figure is above the clear level, or was not measured: the regression lasts,
            # even when the rule no longer fires or no longer regresses week over week.
            counts["open"] += 1
            open_rules.append(rule.name)
    if not open_rules:
        services.state.delete_value(OPEN_REGRESSIONS_KEY, resource)
    elif not indexed:
        # A regression opened before the index was kept is indexed by the next run.
        _index_open(services, resource)
    return counts


def _current(
    services: PerformanceServices,
    key: str,
    rule: str,
    record: dict[str, Any],
    alert: Alert,
    *,
    publishing: bool,
) -> tuple[dict[str, Any], bool]:
    """`rule`'s record as the notices delivered have it, and whether its regression is open.

    A record write lost after SNS took a notice leaves the record a notice behind, and this
    records what went out. A closed record whose warning went out is open: whatever the figure
    does next (at or below the clear level, between it and the threshold, the cluster removed),
    that warning is resolved once; a run that took the record's word would drop the cluster from
    the index while the warning is open. An open record whose resolution went out is closed: the
    regression is over, as its resolution said, and a later one is announced; a run that took
    the record's word would hold it open and send nothing for the next regression (its warning
    deduplicated as the old one's, its resolution as already sent). A rule this run is
    `publishing` the warning of finds out through `deliver_once` itself."""
    episode = _episode(record)
    if record.get(OPEN):
        if not _delivered(services, f"{key}/{rule}/{episode}/resolved"):
            return record, True
        closed = {OPEN: False, "alert_id": alert.id, CLOSED_AT: iso_z(services.clock.now())}
        services.state.put_value(key, rule, closed)
        return closed, False
    if publishing or not _delivered(services, f"{key}/{rule}/{episode}/open"):
        return record, False
    reopened = {OPEN: True, "alert_id": alert.id, STARTED_AFTER: episode}
    services.state.put_value(key, rule, reopened)
    return reopened, True


def _count_clean_run(
    services: PerformanceServices,
    key: str,
    rule: BottleneckRule,
    record: dict[str, Any],
    window_end: datetime,
    *,
    clean: bool,
) -> dict[str, Any]:
    """The open `record` of `rule` with the measured run ending at `window_end` counted, written
    when it changed: a `clean` run adds one to its clean runs in a row (once per window: a run
    over a window already counted adds none), a run with the figure above the clear level sets
    them back to none. A cleared rule that resolves now gets its closed record from the caller,
    so only a count that keeps the regression open is written."""
    if not clean:
        if CLEAN_RUNS not in record and CLEAN_THROUGH not in record:
            return record
        reset = {
            name: value for name, value in record.items() if name not in {CLEAN_RUNS, CLEAN_THROUGH}
        }
        services.state.put_value(key, rule.name, reset)
        return reset
    through = iso_z(window_end)
    counted_through = record.get(CLEAN_THROUGH)
    if isinstance(counted_through, str) and counted_through >= through:
        return record
    counted = {**record, CLEAN_RUNS: _clean_runs(record) + 1, CLEAN_THROUGH: through}
    if counted[CLEAN_RUNS] < rule.clear_runs:
        services.state.put_value(key, rule.name, counted)
    return counted


def _clean_runs(record: dict[str, Any]) -> int:
    """The clean runs in a row `record` counts: none in a record that holds no count (written
    before counts were kept) or one that is not a count (the table can be edited by hand)."""
    runs = record.get(CLEAN_RUNS)
    return runs if isinstance(runs, int) and not isinstance(runs, bool) and runs > 0 else 0


def _index_open(services: PerformanceServices, resource: str) -> None:
    services.state.put_value(OPEN_REGRESSIONS_KEY, resource, {})


def _episode(record: dict[str, Any]) -> str:
    """The name of the rule's current (or next) regression: when the one before it closed, FIRST
    for the rule's first."""
    return str(record.get(STARTED_AFTER if record.get(OPEN) else CLOSED_AT, FIRST))


def _delivered(services: PerformanceServices, delivery: str) -> bool:
    """Whether the notice under `delivery` went out, without sending it: its delivery claim is
    completed (`alert_delivery.delivered`)."""
    try:
        return delivered(services.state, services.function_name, delivery)
    except RequestInProgressError:
        # Being published right now by a run that died holding the claim: the next run knows.
        return False


def _deliver(
    services: PerformanceServices,
    logger: Any,
    delivery: str,
    alert: Alert,
    deadline: ClaimDeadline | None,
) -> bool | None:
    """Deliver `alert` once under the `delivery` key, its claim bound to `deadline` (the
    invocation): True when this run published it, False when an earlier run had (and its record
    was lost), None when SNS refused it (logged; the next run tries again)."""
    try:
        message_id = deliver_once(
            services.state,
            services.alerts,
            delivery,
            alert,
            DELIVERY_TTL_SECONDS,
            deadline=deadline,
        )
    except AlertNotDeliveredError as error:
        logger.warning(
            "alert not published",
            extra={"alert_id": alert.id, "title": alert.title, "error": error.cause},
        )
        return None
    return message_id is not None
