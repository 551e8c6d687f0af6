"""What the optimizer reads: the analyses of a cluster and the scaler's history of a node group.

Analyses come from `analyses/<account>/<region>/<cluster>/` (validated against the analyzer's
model, with every hour's CPU and memory utilisation within 0-105 %, no hour after the analysis's
time and no analysis after the run, and the account, region and cluster of its key; one that
does not, or cannot be read, is skipped and named in the notes; so is one over
ANALYSIS_MAX_BYTES or ANALYSIS_MAX_VALUES, refused before it is parsed).
The scaler records every change of a node group in the state table
(`nodegroup/<account>/<region>/<cluster>/<group>`) with its `previous` and `new` sizes; a node
group had, in any hour, the desired size of the last change before it, or before the first
change in the window, that change's previous size (in a window without a change, the size the
last change before it set; the stack file's desired size when the scaler never changed it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from fleet_shared.exceptions import (
    ObjectReadTimeoutError,
    ObjectTooLargeError,
    PagesCutShortError,
)
from fleet_shared.inventory import Cluster
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.object_bodies import bounded_body
from fleet_shared.performance_documents import (
    MAX_MEASURED_UTILISATION,
    MIN_UTILISATION,
    PerformanceAnalysis,
    analyses_start_after,
    analysis_time_of,
    cluster_prefix,
)
from fleet_shared.s3_listings import listed_objects
from fleet_shared.state_table import StateChange, StateTable
from fleet_shared.timestamps import iso_z
from fleet_shared.validation_errors import first_error, shown_value
from handlers.scaling_optimizer.document_bounds import json_values_bound

ANALYSIS_MAX_BYTES = 1024 * 1024
"""The largest analysis read. performance_analyzer writes a few kB per cluster and run (4 hours,
its metrics, one entry per load balancer of the cluster): one of 1,000 load balancers and 14
days of hours is under 200 kB."""
ANALYSIS_MAX_VALUES = 20_000
"""The most JSON values an analysis read may hold (`document_bounds`): that analysis holds about
7,000. The model's refusal grows with them: 20,000 values of empty hours took 49 MiB to parse
and refuse (six errors each), 80,000 took 183 MiB."""


@dataclass
class ClusterHistory:
    """The cluster's CPU and memory utilisation per hour from the analyses read, what was
    skipped, how many analyses could not be read (S3 failed on them), and whether the reading
    stopped before the window's last analysis for lack of time (`cut_short`)."""

    utilisation_by_hour: dict[datetime, tuple[float, float | None]] = field(default_factory=dict)
    """(CPU, memory or None when not measured) percent per hour, in UTC."""
    analyses_read: int = 0
    skipped: list[str] = field(default_factory=list)
    unread: int = 0
    cut_short: bool = False


def _until_cut_short(
    listing: Iterator[dict[str, Any]], history: ClusterHistory
) -> Iterator[dict[str, Any]]:
    """The objects `listing` lists until it is cut short for lack of time (pages of no analyses,
    one after another, are asked only while an analysis could still be read): the history is
    then `cut_short`, as when its analyses are."""
    try:
        yield from listing
    except PagesCutShortError:
        history.cut_short = True


def read_cluster_history(
    s3: Any,
    bucket: str,
    account_id: str,
    cluster: Cluster,
    since: datetime,
    *,
    until: datetime,
    more_allowed: Callable[[], bool],
    body_seconds: Callable[[], float],
) -> ClusterHistory:
    """Every hour of CPU utilisation the cluster's analyses from `since` to `until` (the run)
    measured, each
    analysis listed, and each next page of the listing, read only while `more_allowed()` (else
    the history is `cut_short`): a
    cluster analysed far more often than every 4 hours (performance_analyzer's requests) must
    not keep the run until Lambda ends it with no recommendations written; each analysis's bytes
    only within `body_seconds()`, asked once its GetObject answered (else it is not read, as
    one whose read failed: a body that trickles held the run likewise). Raises one of
    AWS_CALL_ERRORS when the analyses cannot be listed."""
    history = ClusterHistory()
    prefix = cluster_prefix(account_id, cluster.region, cluster.name)
    # Listed from the window's start, not from the cluster's first analysis: listing every
    # analysis ever written (6 a day, 1,000 keys a page) grew the run's listing without end.
    start_after = analyses_start_after(account_id, cluster.region, cluster.name, since)
    listing = listed_objects(
        s3, bucket, prefix, start_after=start_after, next_page_allowed=more_allowed
    )
    for item in _until_cut_short(listing, history):
        if not more_allowed():
            history.cut_short = True
            break
        analysed_at = analysis_time_of(item["Key"])
        if analysed_at is None or analysed_at < since:
            continue
        if analysed_at > until:
            # Its key keeps it in every later run's listing until 14 days after its date, where
            # it would size the cluster's node groups on hours no one has measured yet.
            history.skipped.append(
                f"{item['Key']}: not an analysis (dated {iso_z(analysed_at)}, after this run)"
            )
            continue
        try:
            answer = s3.get_object(Bucket=bucket, Key=item["Key"])
            body = bounded_body(
                answer, item["Key"], ANALYSIS_MAX_BYTES, within_seconds=body_seconds()
            )
        except (ClientError, BotoCoreError, ObjectReadTimeoutError) as error:
            history.skipped.append(f"{item['Key']}: not read ({error})")
            history.unread += 1
            continue
        except ObjectTooLargeError as error:
            # Left out as one that does not validate: reading it again will not shrink it.
            history.skipped.append(f"{error}; not read")
            continue
        values = json_values_bound(body)
        if values > ANALYSIS_MAX_VALUES:
            history.skipped.append(
                f"{item['Key']}: about {values:,} JSON values, more than the "
                f"{ANALYSIS_MAX_VALUES:,} an analysis may have; not read"
            )
            continue
        try:
            analysis = PerformanceAnalysis.model_validate_json(body)
        except ValidationError as error:
            field, problem = first_error(error, root="document")
            history.skipped.append(f"{item['Key']}: not an analysis ({field}: {problem})")
            continue
        refusal = _utilisation_refusal(analysis) or _unmeasured_hour(analysis, analysed_at)
        if refusal is not None:
            history.skipped.append(f"{item['Key']}: not an analysis ({refusal})")
            continue
        stranger = _other_cluster_field(analysis, account_id, cluster)
        if stranger is not None:
            history.skipped.append(f"{item['Key']}: not this cluster's analysis ({stranger})")
            continue
        history.analyses_read += 1
        for hour in analysis.hourly:
            if hour.cpu_percent is not None and hour.hour >= since:
                # In UTC, as the evidence names it: an hour written with another offset is the
                # same instant, not a time of day to read as UTC.
                history.utilisation_by_hour[hour.hour.astimezone(UTC)] = (
                    hour.cpu_percent,
                    hour.memory_percent,
                )
    return history


def _utilisation_refusal(analysis: PerformanceAnalysis) -> str | None:
    """What makes `analysis` unfit to size on: an hour's CPU or memory utilisation below 0 % or
    above MAX_MEASURED_UTILISATION. One such hour (an agent's or a hand's error) would decide the
    busiest hour, and so max_size and the off-hours size, alone: 10**6 % recommended the largest
    node group the settings accept, and 1e308 % on a node group of several nodes ended the run
    with an OverflowError."""
    for index, hour in enumerate(analysis.hourly):
        for name, percent in (
            ("cpu_percent", hour.cpu_percent),
            ("memory_percent", hour.memory_percent),
        ):
            if percent is not None and not MIN_UTILISATION <= percent <= MAX_MEASURED_UTILISATION:
                return f"hourly[{index}].{name}: {percent:.6g} is not a utilisation (0-105 %)"
    return None


def _unmeasured_hour(analysis: PerformanceAnalysis, analysed_at: datetime) -> str | None:
    """The first hour of `analysis` dated after `analysed_at`, when its key says it was made
    (a clock gone wrong, a metric answered past the window, a hand edit), as `field: value`;
    None when it has none. The analyzer measures hours before it runs only: a later one is no
    measured hour, and as the busiest it would decide max_size alone."""
    for index, hour in enumerate(analysis.hourly):
        if hour.hour > analysed_at:
            return f"hourly[{index}].hour: {iso_z(hour.hour)} is after the analysis"
    return None


def _other_cluster_field(
    analysis: PerformanceAnalysis, account_id: str, cluster: Cluster
) -> str | None:
    """The field by which `analysis` is another cluster's than the one its key names (one
    copied under this cluster's prefix by hand, after a rename or a move to another region),
    as `field: value`; None when it is this cluster's. Another cluster's load would size this
    cluster's node groups."""
    for field_name, expected in (
        ("account_id", account_id),
        ("region", cluster.region),
        ("cluster", cluster.name),
    ):
        written = getattr(analysis, field_name)
        if written != expected:
            return f"{field_name}: {shown_value(written)}"
    return None


def desired_size_timeline(
    state: StateTable,
    account_id: str,
    cluster: Cluster,
    *,
    node_group: str,
    since: datetime,
    configured_desired: int,
) -> Callable[[datetime], int]:
    """The node group's desired size at any moment since `since`."""
    key = node_group_key(account_id, cluster.region, cluster.name, node_group)
    changes = state.query_history(key, since)
    if not changes:
        # Unchanged in the window: the size of the last change before it stands (the latest
        # change is kept without expiry), not the stack file's.
        latest = state.latest_change(key)
        changes = [latest] if latest is not None else []
    initial = configured_desired
    if changes:
        recorded = _recorded_size(changes[0], "previous", required=False)
        initial = configured_desired if recorded is None else recorded
    steps = [
        (change.changed_at, size)
        for change in changes
        if (size := _recorded_size(change, "new", required=True)) is not None
    ]

    def desired_at(moment: datetime) -> int:
        size = initial
        for changed_at, desired in steps:
            if changed_at > moment:
                break
            size = desired
        return size

    return desired_at


class UnreadableScalerChangeError(Exception):
    """A change of the scaler's history without the desired size the optimizer reads from it."""


def _recorded_size(change: StateChange, side: str, *, required: bool) -> int | None:
    """The `desired_size` of `side` (`previous` or `new`) of the change's record: None when that
    side is no mapping of sizes or, unless `required`, has no desired size. Anything else is no
    node count, and raises UnreadableScalerChangeError: the state table is written by other
    functions (and by hand), and one bad record must leave out its node group alone."""
    when = iso_z(change.changed_at)
    sizes = change.record.get(side)
    if not isinstance(sizes, dict) or ("desired_size" not in sizes and not required):
        return None
    size = sizes.get("desired_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise UnreadableScalerChangeError(
            f"the change at {when}: {side}.desired_size {shown_value(size)} is not a node count"
        )
    return size
