"""The scheduled scan: configured metrics in every member account and region, and daily cost.

History per metric: ANOMALY_LOOKBACK_DAYS (default 28, so the weekly profile has four values per
weekday) up to the last complete period, at the metric's period (one request per distinct period,
start and end aligned to it). Findings count when they end within the last
ANOMALY_RECENT_HOURS (metrics) or ANOMALY_COST_RECENT_DAYS (cost); older ones were the business
of earlier scans; a drop in the daily cost counts only on days Cost Explorer has complete
(`is_judged_cost_finding`). All metrics of one account and region are read in one GetMetricData
request. An account and region that cannot be read, or a series GetMetricData did not return whole
(a status other than Complete), is reported and the others go on; a value that is no metric
value (`MetricSeries.left_out`) or a day's cost that is none is left out and reported, and the
rest of its series evaluated; each finding is
alerted once (`findings.raise_alerts`) and each alerted episode resolved once it is over
(`episodes.py`), the series alarms alerted episodes on read as well (`followed.py`). An account
and region (or the cost) whose turn comes with less than
ANOMALY_TARGET_SECONDS and one hung read's HUNG_TARGET_CALL_SECONDS left in the invocation is
not started: it is listed under `not_started` and the scan is `partial`; the own metrics and
the followed series of an account and region so left, or whose read was cut short between pages
for the same lack of time, are read first by the next scan (`METRICS_LEFT`, `FOLLOWED_LEFT`).
Alerts and resolutions SNS refused fail the invocation once every other one was tried and the
open episodes recorded, so the retry sends them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.cost_explorer import (
    COST_FILLING,
    EXCLUDE_OUT_OF_CYCLE_CHARGES,
    MAX_DAILY_AMOUNT,
    CostPoint,
    cost_and_usage,
    in_one_currency,
    is_complete_day,
    is_cost,
)
from fleet_shared.exceptions import FleetError, MetricReadCutShortError, UnreadableStateValueError
from fleet_shared.fan_out import Deadline
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.inventory import Cluster, FleetInventory
from fleet_shared.listed_members import ListedMembers, note_listed_members
from fleet_shared.metric_data import MetricQuery, MetricSeries, align, get_metric_series
from fleet_shared.numeric.robust_anomalies import detect_anomalies
from fleet_shared.observability import observability_for
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import VersionedValue
from fleet_shared.targets_left import (
    StoredTarget,
    TargetsLeftList,
    in_turn_order,
    stored_account_region,
)
from handlers.anomaly_detector.environment import (
    CLUSTER_PLACEHOLDER,
    AnomalyEnvironment,
    MetricSpec,
)
from handlers.anomaly_detector.episodes import (
    RECORD_TTL_FACTOR,
    EvaluatedSeries,
    close_unread_series,
    continue_open_episodes,
    followed_in,
    read_index,
    resolve_ended_episodes,
)
from handlers.anomaly_detector.exceptions import IncompleteSeriesError
from handlers.anomaly_detector.findings import SOURCE, Finding, findings_from, raise_alerts
from handlers.anomaly_detector.followed import MAX_POINTS, FollowedSeries
from handlers.anomaly_detector.target_calls import (
    HUNG_TARGET_CALL_SECONDS,
    hub_cost_explorer,
    member_cloudwatch,
)
from handlers.anomaly_detector.units import noise_floor

logger = observability_for(SOURCE).logger

TARGET_ERRORS = (FleetError, *AWS_CALL_ERRORS)
"""Every way one target (an account and region's metrics, the cost) fails alone: as every
function's per-target errors, `AWS_CALL_ERRORS` (with botocore's `ResponseParserError`, which is
no `BotoCoreError`) and the fleet's own."""
COST_RESOURCE = "cost/daily/UnblendedCost"
DAY = timedelta(days=1)
"""The period of a daily cost point, stamped with the day's start."""
FOLLOWED_LEFT = TargetsLeftList("anomaly/followed-not-started", "places", ttl_seconds=24 * 3600)
"""The accounts and regions whose followed series a scan did not start for lack of time, in its
order, read first by the next scan; forgotten after a day, which only means the next scan reads
them after its own metrics again."""
METRICS_LEFT = TargetsLeftList("anomaly/metrics-not-started", "places", ttl_seconds=24 * 3600)
"""The accounts and regions whose own metrics (ANOMALY_METRICS) a scan did not start, or whose
read it cut short, for lack of time, in its order, read first by the next scan's own-metric read;
forgotten after a day, which only means the next scan reads them in inventory order again."""
LISTED_MEMBERS_KEY = "anomaly/listed-members"
"""Where the detector notes the accounts its inventories listed (`fleet_shared.listed_members`):
an account the inventory does not list has left the fleet only if listed before."""
INDEX_TARGET = "open-series index"
"""The target of the scan's error for a part of the index of open series it cannot read."""
COMPLETE = "Complete"
"""GetMetricData's status of a series it returned whole (else PartialData, InternalError or
Forbidden)."""


@dataclass
class MetricScan:
    """What the metric part of a scan found, evaluated, failed on and left for lack of time."""

    findings: list[Finding] = field(default_factory=list)
    evaluated: list[EvaluatedSeries] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    not_started: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, other: MetricScan) -> None:
        """Add what `other` found, evaluated, failed on and left to this scan."""
        self.findings += other.findings
        self.evaluated += other.evaluated
        self.errors += other.errors
        self.not_started += other.not_started


def scan_fleet(
    services: FunctionServices[AnomalyEnvironment], deadline: Invocation
) -> dict[str, Any]:
    """Scan every metric target and the daily cost, alert new findings and resolve ended
    episodes; the scan's result. Raises `AlertNotDeliveredError` when SNS refused one."""
    environment = services.environment
    now = services.clock.now()
    state, alerts = services.state, services.alerts
    inventory = services.inventory()
    listed = note_listed_members_of(services, inventory)
    index = read_index(state)
    scan, follow_only = scan_metrics_and_followed_series(
        services, inventory, index.values, deadline
    )
    scan.errors += unreadable_index_errors(index.unreadable)
    if environment.anomaly_cost_enabled:
        if not deadline.allows(target_reserve_seconds(environment)):
            scan.not_started.append({"target": "cost"})
        else:
            try:
                cost = scan_cost(
                    services.sessions,
                    environment,
                    now,
                    next_page_allowed=lambda: deadline.allows(target_reserve_seconds(environment)),
                )
            except TARGET_ERRORS as error:
                scan.errors.append({"target": "cost", "error": call_error_text(error)})
            else:
                scan.findings.extend(cost.findings)
                left_out = cost.left_out_summary()
                if left_out is not None:
                    scan.errors.append({"target": "cost", "error": left_out})
                window = f"{environment.anomaly_cost_recent_days} day(s)"
                scan.evaluated.append(
                    EvaluatedSeries(
                        COST_RESOURCE,
                        window,
                        resolves=cost.resolves,
                        last_value_at=cost.last_value_at,
                    )
                )
    dedup_days = environment.anomaly_dedup_days
    continued = continue_open_episodes(
        scan.findings, state, now=now, ttl_seconds=dedup_days * 86_400, follow_only=follow_only
    )
    raised = raise_alerts(
        continued.findings, state, alerts, dedup_days=dedup_days, now=now, deadline=deadline
    )
    resolutions = resolve_ended_episodes(
        scan.evaluated,
        continued.findings,
        raised.delivered,
        state,
        alerts,
        records=continued.records,
        unreadable=continued.unreadable,
        ttl_seconds=dedup_days * 86_400,
        now=now,
        deadline=deadline,
    )
    unread = close_unread_series(
        scan.evaluated,
        resolutions.open_series,
        index.values,
        state,
        alerts,
        closed_now=series_of_left_members(index.values, inventory, listed),
        unreadable_parts=frozenset(index.unreadable),
        ttl_seconds=dedup_days * 86_400,
        now=now,
        deadline=deadline,
    )
    scan.errors += unreadable_index_errors(unread.unreadable_parts)
    scan.errors += [
        {"target": error.key, "error": str(error)}
        for error in (*resolutions.unreadable_records.values(), *unread.unreadable_records.values())
    ]
    failures = [*raised.failures, *resolutions.failures, *unread.failures]
    if failures:
        raise failures[0]
    return {
        "status": "ok" if not scan.errors and not scan.not_started else "partial",
        "evaluated": len(scan.evaluated),
        "anomalies": raised.reported,
        "alerts": sum(1 for item in raised.reported if item["alerted"]),
        "resolved": resolutions.sent + unread.sent,
        "errors": scan.errors,
        "not_started": scan.not_started,
    }


def unreadable_index_errors(
    unreadable: Mapping[str, UnreadableStateValueError],
) -> list[dict[str, Any]]:
    """The scan's error of each part of the index of open series that cannot be read (by name),
    logged once: its series are neither followed nor closed while it stays so (`read_index`),
    and the other parts are worked as ever."""
    errors = []
    for name, error in sorted(unreadable.items()):
        logger.warning(
            "a part of the index of open series could not be read",
            extra={"part": name, "error": str(error)},
        )
        errors.append({"target": INDEX_TARGET, "error": str(error)})
    return errors


def note_listed_members_of(
    services: FunctionServices[AnomalyEnvironment], inventory: FleetInventory
) -> ListedMembers:
    """Note the accounts `inventory` lists, each kept as long as a series' record after it stops
    being listed; the accounts noted before, by which the caller judges which ones left."""
    return note_listed_members(
        services.state,
        LISTED_MEMBERS_KEY,
        inventory,
        now=services.clock.now(),
        keep_seconds=RECORD_TTL_FACTOR * services.environment.anomaly_dedup_days * 86_400,
        logger=logger,
    )


def scan_metrics_and_followed_series(
    services: FunctionServices[AnomalyEnvironment],
    inventory: FleetInventory,
    index: dict[str, VersionedValue],
    deadline: Deadline,
) -> tuple[MetricScan, frozenset[str]]:
    """The scan of the metrics ANOMALY_METRICS names and of the series the index's alarms follow
    (`followed_targets`) in accounts the inventory lists: not those of accounts that left the
    fleet (`followed_of_left_members`), nor of those it does not list yet (an alarm forwarded
    before the inventory listed its account), whose member role may not exist yet: they are
    read once it lists them. And the resources read only to be followed. The followed places the
    last scan had no time for are read before the scan's own metrics, the others after them:
    read only after them, they were never read by scans that run short of time."""
    environment, now = services.environment, services.clock.now()
    followed = {
        resource: entry
        for resource, entry in followed_in(index).items()
        if inventory.member(str(entry["account_id"])) is not None
    }
    left_before = FOLLOWED_LEFT.read(services.state, logger)
    left_places = {
        (str(place["account_id"]), str(place["region"]))
        for place in left_before
        if isinstance(place, dict) and {"account_id", "region"} <= place.keys()
    }
    first_of, first_only = followed_targets(
        environment,
        inventory,
        {
            resource: entry
            for resource, entry in followed.items()
            if _place_of(entry) in left_places
        },
    )
    early = MetricScan()
    followed_left = read_followed_series(
        services.sessions,
        environment,
        first_of,
        in_turn_order(list(first_of), left_before, stored_account_region),
        now=now,
        deadline=deadline,
        scan=early,
    )
    metrics_left_before = METRICS_LEFT.read(services.state, logger)
    scan = scan_metrics(
        services.sessions, environment, inventory, now, deadline, left_before=metrics_left_before
    )
    # Before the followed reads add theirs, `not_started` holds the own-metric places alone.
    METRICS_LEFT.save(services.state, list(scan.not_started), metrics_left_before, logger)
    rest_of, rest_only = followed_targets(
        environment,
        inventory,
        {
            resource: entry
            for resource, entry in followed.items()
            if _place_of(entry) not in first_of
        },
        evaluated=frozenset(series.resource for series in scan.evaluated),
    )
    scan.merge(early)
    followed_left += read_followed_series(
        services.sessions,
        environment,
        rest_of,
        list(rest_of),
        now=now,
        deadline=deadline,
        scan=scan,
    )
    left = [stored_account_region(place) for place in followed_left]
    FOLLOWED_LEFT.save(services.state, left, left_before, logger)
    return scan, first_only | rest_only


def followed_of_left_members(
    index: dict[str, VersionedValue], inventory: FleetInventory, listed: ListedMembers
) -> dict[str, str]:
    """The series the index's alarms follow in accounts that left the fleet (`inventory` no
    longer lists them, `listed` did: `ListedMembers.has_left`), each with why its episodes are
    closed: their member role is gone with them, so no scan can read them (each scan would
    report the place an error until the episodes were closed as unread, ANOMALY_DEDUP_DAYS
    later), and no state change of their alarms reaches the hub any more. An account never
    listed has not arrived yet: its episodes stay open until it is listed, or are closed as
    unread ANOMALY_DEDUP_DAYS after the first scan that could not read them."""
    return {
        resource: f"is of account {entry['account_id']}, which left the fleet"
        for resource, entry in followed_in(index).items()
        if listed.has_left(str(entry["account_id"]), inventory)
    }


MEMBER_RESOURCE = re.compile(r"(?P<account_id>[0-9]{12})/[^/]+/")
"""The start of the resource of a member's series, `<account id>/<region>/<label>` (as the scans
and the alarms name it): an account id is 12 digits and a region has no `/`, so the first part is
the account; the daily cost's resource (`COST_RESOURCE`) has none."""


def series_of_left_members(
    index: dict[str, VersionedValue], inventory: FleetInventory, listed: ListedMembers
) -> dict[str, str]:
    """The series of the index in accounts that left the fleet (`ListedMembers.has_left`), each
    with why its episodes are closed: the followed ones (`followed_of_left_members`) and the
    scans' own, whose account is the first part of the resource (`MEMBER_RESOURCE`). No scan
    reads an own metric of an account the inventory does not have, so without this its episodes
    stayed open until closed as unread, ANOMALY_DEDUP_DAYS later."""
    left = followed_of_left_members(index, inventory, listed)
    for part in index.values():
        for resource in part.value["series"]:
            own = MEMBER_RESOURCE.match(resource)
            if resource in left or own is None or not listed.has_left(own["account_id"], inventory):
                continue
            left[resource] = f"is of account {own['account_id']}, which left the fleet"
    return left


def target_reserve_seconds(environment: AnomalyEnvironment) -> int:
    """The time a target (an account and region, or the cost) needs left to start: its work,
    ANOMALY_TARGET_SECONDS, and one read that never answers (`HUNG_TARGET_CALL_SECONDS`)."""
    return environment.anomaly_target_seconds + HUNG_TARGET_CALL_SECONDS


LABEL_SEPARATORS = re.compile(r"[\\/ ,=]")
"""The characters a label joins its parts with (`/`, space, `,`, `=`) and its escape (`\\`):
each one inside a name or value is escaped (`_escaped`)."""
NAMESPACE_SEPARATORS = re.compile(r"[\\ ,=]")
"""As LABEL_SEPARATORS, but `/`, which AWS's own namespaces hold (`AWS/EC2`): told apart from
the `/` after the namespace, as every `/` of the metric name is escaped."""


def metric_label(query: MetricQuery) -> str:
    """`ContainerInsights/node_cpu_utilization ClusterName=dev-apps (Average, 3600 s)`: the
    series' whole identity, statistic and period included, as a series' resource (its record,
    episodes and alerts) is named after it. Without them an alarm on another statistic or
    period of a scanned metric shared its episodes: one suppressed or resolved the other's.

    Two series never share a label: every separator inside a name or value is escaped with a
    backslash (`_escaped`), so namespace `A/B` with metric `C` is `A/B/C` and namespace `A` with
    metric `B/C` is `A/B\\/C`, and a dimension value `1,Y=2` is not two dimensions. Joined as
    they are, such series read as one, and one's episodes were taken for the other's."""
    dims = ",".join(
        f"{_escaped(name)}={_escaped(value)}" for name, value in sorted(query.dimensions.items())
    )
    namespace = _escaped(query.namespace, NAMESPACE_SEPARATORS)
    series = f"{namespace}/{_escaped(query.metric_name)}" + (f" {dims}" if dims else "")
    return f"{series} ({_escaped(query.stat)}, {query.period} s)"


def _escaped(text: str, separators: re.Pattern[str] = LABEL_SEPARATORS) -> str:
    """`text` with a backslash before each of its `separators`."""
    return separators.sub(lambda found: f"\\{found.group()}", text)


def expand(spec: MetricSpec, clusters: list[Cluster]) -> list[tuple[dict[str, str], str | None]]:
    """The dimension sets of `spec` in one account and region, each with the time zone of its
    seasonal profile: one per cluster (in the cluster's schedule time zone) when a dimension is
    `{cluster}` (none when the account has no cluster there), else the spec's own, in UTC."""
    if not spec.per_cluster:
        return [(dict(spec.dimensions), None)]
    return [
        (
            {
                name: cluster.name if value == CLUSTER_PLACEHOLDER else value
                for name, value in spec.dimensions.items()
            },
            cluster.schedule.time_zone if cluster.schedule else None,
        )
        for cluster in clusters
    ]


MetricTarget = tuple[MetricQuery, str, str | None]
"""A series to read: its query, its label and the time zone of its seasonal profile."""


def metric_targets(
    environment: AnomalyEnvironment, inventory: FleetInventory
) -> dict[tuple[str, str], list[MetricTarget]]:
    """The series ANOMALY_METRICS names in each account and region of the inventory (none where a
    per-cluster metric finds no cluster), in inventory order."""
    targets_of: dict[tuple[str, str], list[MetricTarget]] = {}
    for account_id, region in inventory.account_regions():
        clusters = [
            cluster
            for member, cluster in inventory.clusters()
            if member.account_id == account_id and cluster.region == region
        ]
        targets: list[MetricTarget] = []
        for spec in environment.metrics():
            for dimensions, time_zone in expand(spec, clusters):
                query = MetricQuery(f"m{len(targets)}", spec.namespace, spec.metric, dimensions,
                                    spec.stat, spec.period, spec.unit)  # fmt: skip
                targets.append((query, metric_label(query), time_zone))
        targets_of[account_id, region] = targets
    return targets_of


def scan_metrics(
    sessions: AccountSessions,
    environment: AnomalyEnvironment,
    inventory: FleetInventory,
    now: datetime,
    deadline: Deadline,
    *,
    left_before: Sequence[StoredTarget],
) -> MetricScan:
    """Findings, series evaluated, an error per account/region that failed, and the
    accounts/regions not started for lack of time, in the order the scan came to them: those the
    last scan left (`left_before`, `METRICS_LEFT`) first, then the others in inventory order. A
    place's next page is asked only while a place could still be started (many series take many
    pages), and a place whose read is so cut short counts as not started."""
    scan = MetricScan()
    targets_of = metric_targets(environment, inventory)
    for account_id, region in in_turn_order(list(targets_of), left_before, stored_account_region):
        if not deadline.allows(target_reserve_seconds(environment)):
            scan.not_started.append({"account_id": account_id, "region": region})
            continue
        targets = targets_of[account_id, region]
        if not targets:
            continue
        try:
            read_targets(
                sessions,
                environment,
                (account_id, region),
                targets,
                now=now,
                scan=scan,
                next_page_allowed=lambda: deadline.allows(target_reserve_seconds(environment)),
            )
        except MetricReadCutShortError:
            # Nothing of its series read so far was added: the next scan reads it first.
            scan.not_started.append({"account_id": account_id, "region": region})
    return scan


Place = tuple[str, str]
"""An account and region: (account id, region)."""


def followed_targets(
    environment: AnomalyEnvironment,
    inventory: FleetInventory,
    followed: dict[str, dict[str, Any]],
    *,
    evaluated: frozenset[str] = frozenset(),
) -> tuple[dict[Place, list[MetricTarget]], frozenset[str]]:
    """The series alarms asked the scans to follow (`followed.py`; `followed`, the index's
    entries by resource) that ANOMALY_METRICS does not name and the scan did not `evaluate`, by
    account and region in name order; and their resources, read only to be followed."""
    own = {
        f"{account_id}/{region}/{label}"
        for (account_id, region), targets in metric_targets(environment, inventory).items()
        for _, label, _ in targets
    } | evaluated
    targets_of: dict[Place, list[MetricTarget]] = defaultdict(list)
    follow_only: set[str] = set()
    for resource, entry in sorted(followed.items()):
        if resource in own:
            continue
        series = FollowedSeries.from_value(entry)
        targets = targets_of[series.account_id, series.region]
        query = MetricQuery(f"f{len(targets)}", series.namespace, series.metric,
                            series.dimensions, series.stat, series.period,
                            series.unit)  # fmt: skip
        # Read under the name the index has it by, which holds its episodes' record: a series an
        # alarm followed before its name held the statistic and period keeps its older name
        # until its episode is over.
        place = f"{series.account_id}/{series.region}/"
        label = resource.removeprefix(place) if resource.startswith(place) else metric_label(query)
        targets.append((query, label, series.time_zone))
        follow_only.add(f"{place}{label}")
    return dict(targets_of), frozenset(follow_only)


def read_followed_series(
    sessions: AccountSessions,
    environment: AnomalyEnvironment,
    targets_of: dict[Place, list[MetricTarget]],
    places: list[Place],
    *,
    now: datetime,
    deadline: Deadline,
    scan: MetricScan,
) -> list[Place]:
    """Read into `scan` the followed series (`followed_targets`) of each of `places`, in that
    order, each at most `MAX_POINTS` values back; the places not started for lack of time. A
    place's next page is asked only while a place could still be started: hundreds of followed
    1-minute series take many pages, and a place whose read is so cut short counts as not
    started. A place the scan could not read is not asked again: its error is already in `scan`,
    and its followed series, unread, resolve nothing."""
    failed = {
        (error["account_id"], error["region"])
        for error in scan.errors
        if "account_id" in error and "metric" not in error
    }
    not_started: list[Place] = []
    for account_id, region in places:
        if (account_id, region) in failed:
            continue
        if not deadline.allows(target_reserve_seconds(environment)):
            scan.not_started.append({"account_id": account_id, "region": region})
            not_started.append((account_id, region))
            continue
        try:
            read_targets(
                sessions,
                environment,
                (account_id, region),
                targets_of[account_id, region],
                now=now,
                scan=scan,
                max_points=MAX_POINTS,
                next_page_allowed=lambda: deadline.allows(target_reserve_seconds(environment)),
            )
        except MetricReadCutShortError:
            # Its series read so far are partial: the place counts as not started, so the next
            # scan reads it first (`FOLLOWED_LEFT`).
            scan.not_started.append({"account_id": account_id, "region": region})
            not_started.append((account_id, region))
    return not_started


def _place_of(entry: dict[str, Any]) -> Place:
    """The account and region of a followed series' index entry."""
    return str(entry["account_id"]), str(entry["region"])


def read_targets(
    sessions: AccountSessions,
    environment: AnomalyEnvironment,
    place: tuple[str, str],
    targets: list[MetricTarget],
    *,
    now: datetime,
    scan: MetricScan,
    max_points: int | None = None,
    next_page_allowed: Callable[[], bool] | None = None,
) -> None:
    """Read `targets` of one account and region, one GetMetricData request per period, each
    ANOMALY_LOOKBACK_DAYS back (or `max_points` values, when fewer), and add to `scan` what they
    show: the series evaluated, their findings in the recent window, and the errors. A request
    after the first is sent only while `next_page_allowed()` answers True, else nothing is added
    and `MetricReadCutShortError` raised."""
    account_id, region = place
    since = now - timedelta(hours=environment.anomaly_recent_hours)
    window = f"{environment.anomaly_recent_hours} hour(s)"
    try:
        cloudwatch = member_cloudwatch(sessions, account_id, region)
        series: dict[str, MetricSeries] = {}
        for period in sorted({target[0].period for target in targets}):
            if series and next_page_allowed is not None and not next_page_allowed():
                raise MetricReadCutShortError
            lookback = timedelta(days=environment.anomaly_lookback_days)
            if max_points is not None:
                lookback = min(lookback, timedelta(seconds=period) * max_points)
            end = align(now, period)
            start = align(end - lookback, period)
            batch = [t[0] for t in targets if t[0].period == period]
            series.update(
                get_metric_series(
                    cloudwatch, batch, start, end, next_page_allowed=next_page_allowed
                )
            )
    except MetricReadCutShortError:
        raise
    except TARGET_ERRORS as error:
        scan.errors.append(
            {"account_id": account_id, "region": region, "error": call_error_text(error)}
        )
        return
    for query, label, time_zone in targets:
        result = series[query.id]
        if result.status != COMPLETE:
            # CloudWatch could not return the whole series: what it did return may lack the
            # episode, which must not pass for the metric being back within its band.
            error = IncompleteSeriesError(label, result.status)
            scan.errors.append(
                {"account_id": account_id, "region": region, "metric": label,
                 "error": str(error)}
            )  # fmt: skip
            continue
        left_out = result.left_out_summary()
        if left_out is not None:
            scan.errors.append(
                {"account_id": account_id, "region": region, "metric": label,
                 "error": f"{label}: {left_out}"}
            )  # fmt: skip
        detection = detect_anomalies(
            result.values,
            result.timestamps,
            time_zone=time_zone,
            absolute_resolution=noise_floor(query.unit),
        )
        resource = f"{account_id}/{region}/{label}"
        # Only a series with values in the recent window shows the metric back within its
        # band: one that stopped reporting (its cluster gone, say) resolves nothing, nor one
        # with a value left out there (the episode may go on in it).
        period = timedelta(seconds=query.period)
        resolves = any(at + period >= since for at in result.timestamps) and not any(
            at + period >= since for at, _ in result.left_out
        )
        last_value_at = max(result.timestamps, default=None)
        scan.evaluated.append(
            EvaluatedSeries(resource, window, resolves=resolves, last_value_at=last_value_at)
        )
        scan.findings.extend(
            findings_from(
                detection,
                label=label,
                resource=resource,
                account_id=account_id,
                region=region,
                since=since,
                value_span=period,
                period=period,
            )
        )


@dataclass(frozen=True)
class CostScan:
    """The findings on the daily cost, and the days whose amount was left out (`is_cost`, or
    in another currency than the series', `other_currency`)."""

    findings: list[Finding]
    left_out: list[CostPoint]
    since: datetime
    """The start of the recent window: a day is in it when it ends after `since` (`DAY`)."""
    last_value_at: datetime | None
    """The start of the newest day with a cost (None when Cost Explorer answered none)."""
    currency: str = "USD"
    """The currency of the series (most days'): a day in another is left out, unread."""
    other_currency: str | None = None
    """One line on the days left out for their currency (`OneCurrency.left_out_message`)."""

    def left_out_summary(self) -> str | None:
        """How many days were left out and the first of them, for a person; None when none."""
        lines = [self.other_currency] if self.other_currency else []
        not_costs = [point for point in self.left_out if point.unit == self.currency]
        if not_costs:
            count, first = len(not_costs), not_costs[0]
            lines.append(
                f"Total.UnblendedCost.Amount: {count} value{'' if count == 1 else 's'} left out, "
                f"not a cost within +-{MAX_DAILY_AMOUNT:g}; the first {first.amount!r} on "
                f"{first.start}"
            )
        return "; ".join(lines) or None

    @property
    def resolves(self) -> bool:
        """Whether the cost may resolve episodes: no day of its recent window was left out (the
        episode may go on in it)."""
        return not any(
            datetime(day.year, day.month, day.day, tzinfo=self.since.tzinfo) + DAY >= self.since
            for day in (point.start for point in self.left_out)
        )


def is_judged_cost_finding(finding: Finding, since: datetime, now: datetime) -> bool:
    """Whether a cost finding is reported. An increase is, once it ends after `since`: its newest
    day may still be filling (`COST_FILLING`), but it can only grow. A drop is judged on complete
    days alone: one that starts on a day still filling is no drop yet (that day only ever
    under-reports), and its recent window is shifted back by COST_FILLING, so a drop is reported
    for as many scans after its day is complete as an increase is after its day ends."""
    if finding.peak.score > 0:
        return finding.end + DAY >= since
    return is_complete_day(finding.start.date(), now) and finding.end + DAY >= since - COST_FILLING


def scan_cost(
    sessions: AccountSessions,
    environment: AnomalyEnvironment,
    now: datetime,
    *,
    next_page_allowed: Callable[[], bool],
) -> CostScan:
    """Findings on the daily unblended cost of the organisation (Cost Explorer in the hub), a
    drop only on complete days (`is_judged_cost_finding`); charges posted once a month or once
    (tax, support, reservation and Savings Plans fees, credits, refunds) are not read, as they
    would spike every 1st; an amount that is no cost (NaN, an infinity, beyond +-10^12), or in
    another currency than most days', is left out. A next page of Cost Explorer's answer is
    asked only while `next_page_allowed()` (else `PagesCutShortError`): one answering page after
    page under new tokens was otherwise read until Lambda ended the scan."""
    today = now.date()
    start = today - timedelta(days=environment.anomaly_lookback_days)
    answered = cost_and_usage(
        hub_cost_explorer(sessions),
        start,
        today,
        filter_expression=EXCLUDE_OUT_OF_CYCLE_CHARGES,
        next_page_allowed=next_page_allowed,
    )
    one_currency = in_one_currency(answered)
    points = [point for point in one_currency.points if is_cost(point.amount)]
    days = [datetime(p.start.year, p.start.month, p.start.day, tzinfo=now.tzinfo) for p in points]
    detection = detect_anomalies([point.amount for point in points], days)
    since = now - timedelta(days=environment.anomaly_cost_recent_days)
    findings = [
        finding
        for finding in findings_from(
            detection,
            label=f"daily cost (UnblendedCost, {one_currency.currency})",
            resource=COST_RESOURCE,
            account_id=None,
            region=None,
            since=since - COST_FILLING,
            value_span=DAY,
            period=DAY,
        )
        if is_judged_cost_finding(finding, since, now)
    ]
    left_out = [
        point
        for point in answered
        if point.unit != one_currency.currency or not is_cost(point.amount)
    ]
    return CostScan(
        findings,
        left_out,
        since,
        max(days, default=None),
        currency=one_currency.currency,
        other_currency=one_currency.left_out_message("Total.UnblendedCost.Unit"),
    )
