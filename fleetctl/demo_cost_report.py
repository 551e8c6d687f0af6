"""The demo's Cost and Usage Report: a small CUR 2.0 export of the cost the demo's Cost Explorer
answers (`SeededCosts`), so that the cost analyzer's CUR detail tells the same story.

Each day has the seeded cost of each service, account and cluster tag, spread over daily line
items (Data Exports' daily granularity): the hub's Lambda and one hub instance; in the member
account one instance without the cluster tag, and per cluster its EKS control plane and one line
per node of each node group, tagged with the cluster. A node group runs its schedule's sizes
(day size in working hours, `off_hours_desired` otherwise) and, on the spike day, its
`max_size` overnight: the spike's node group left at full size. A node's cost is its share of
its cluster's node cost by hours, spot hours at the family's spot price ratio. One Parquet file
per billing period, where Data Exports writes CUR 2.0:
`<cur_prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.snappy.parquet`, and the
period's manifest listing it (`<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`),
from which the cost analyzer takes the files to read.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from components.settings import (
    ClusterSettings,
    FleetSettings,
    NodeGroupSettings,
    ScheduleSettings,
)
from fleetctl.demo_world import (
    COST_SERVICES,
    DEFAULT_DISCOUNT,
    SPOT_DISCOUNTS,
    DemoWorld,
    SeededCosts,
    aws_client,
)

CUR_EXPORT_NAME = "fleet-cur"
CUR_DAYS = 30
"""Days of line items before the world's day: the cost analyzer's default COST_LOOKBACK_DAYS."""
COMPUTE, EKS, LAMBDA = (service for service, _ in COST_SERVICES)
PRODUCT_CODES = {COMPUTE: "AmazonEC2", EKS: "AmazonEKS", LAMBDA: "AWSLambda"}
"""The CUR's `line_item_product_code` of each Cost Explorer service the world bills."""
USAGE_TYPE_PREFIXES = {
    "us-east-1": "",
    "us-west-2": "USW2-",
    "eu-west-1": "EU-",
    "eu-central-1": "EUC1-",
    "ap-south-1": "APS3-",
    "ap-southeast-1": "APS1-",
}
"""How a region's usage types begin (`APS3-BoxUsage:m7g.large`); others get none, as us-east-1."""
EKS_USAGE_TYPE = "AmazonEKS-Hours:perCluster"
LAMBDA_GB_SECOND_USD = 0.0000133334
"""Lambda's arm64 price per GB-second, to give the Lambda line a plausible usage amount."""
HUB_INSTANCE_TYPE = "t4g.large"
UNTAGGED_INSTANCE_TYPE = "m7g.xlarge"
_SCHEMA = pa.schema(
    [
        ("bill_billing_period_start_date", pa.timestamp("ms")),
        ("line_item_line_item_type", pa.string()),
        ("line_item_usage_start_date", pa.timestamp("ms")),
        ("line_item_usage_end_date", pa.timestamp("ms")),
        ("line_item_usage_account_id", pa.string()),
        ("line_item_product_code", pa.string()),
        ("line_item_resource_id", pa.string()),
        ("line_item_usage_type", pa.string()),
        ("line_item_usage_amount", pa.float64()),
        ("line_item_unblended_rate", pa.float64()),
        ("line_item_unblended_cost", pa.float64()),
        ("product_instance_type", pa.string()),
        ("product_region_code", pa.string()),
        ("resource_tags", pa.map_(pa.string(), pa.string())),
    ]
)


def billed_days(world_day: date) -> list[date]:
    """The days the export has delivered by `world_day`: the CUR_DAYS before it."""
    return [world_day - timedelta(days=back) for back in range(CUR_DAYS, 0, -1)]


def cur_line_items(costs: SeededCosts, settings: FleetSettings, days: Sequence[date]) -> pa.Table:
    """The line items of `days`: per day, per service, account and cluster tag, the cost
    `costs` answers (to float rounding; an account's to 0.01, Cost Explorer rounding each
    account's share on its own)."""
    clusters = [
        (member.account_id, member.cluster_region(cluster), cluster)
        for member in settings.members
        for cluster in member.clusters
    ]
    hub, hub_region = costs.hub_account_id, settings.hub.region
    member_account, member_region = costs.member_account_id, settings.members[0].regions[0]
    rows: list[dict[str, Any]] = []
    for day in days:
        services = costs.daily_cost(day)
        hub_cost = costs.daily_by_account(day)[hub]
        # The member's cost without the cluster tag; with no cluster, EKS's is in it too.
        untagged = costs.daily_by_cluster(day)[""] - hub_cost
        rows.append(
            _line(day, LAMBDA, services[LAMBDA], account_id=hub, region=hub_region,
                  resource_id="", usage_type="Lambda-GB-Second-ARM",
                  usage=round(services[LAMBDA] / LAMBDA_GB_SECOND_USD, 2))
        )  # fmt: skip
        rows.append(
            _line(day, COMPUTE, hub_cost - services[LAMBDA], account_id=hub, region=hub_region,
                  resource_id=_instance_id("hub"), usage_type=f"BoxUsage:{HUB_INSTANCE_TYPE}",
                  usage=24.0, instance_type=HUB_INSTANCE_TYPE)
        )  # fmt: skip
        if not clusters:
            rows.append(
                _line(day, EKS, services[EKS], account_id=member_account, region=member_region,
                      resource_id="", usage_type=EKS_USAGE_TYPE, usage=24.0)
            )  # fmt: skip
            untagged -= services[EKS]
        rows.append(
            _line(day, COMPUTE, untagged, account_id=member_account, region=member_region,
                  resource_id=_instance_id("untagged"),
                  usage_type=f"BoxUsage:{UNTAGGED_INSTANCE_TYPE}", usage=24.0,
                  instance_type=UNTAGGED_INSTANCE_TYPE)
        )  # fmt: skip
        for account_id, region, cluster in clusters:
            rows.extend(
                _cluster_lines(day, cluster, costs, account_id=account_id, region=region,
                               cluster_count=len(clusters))
            )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=_SCHEMA)


def _line(
    day: date,
    service: str,
    cost: float,
    *,
    account_id: str,
    region: str,
    resource_id: str,
    usage_type: str,
    usage: float,
    instance_type: str = "",
    cluster: str = "",
) -> dict[str, Any]:
    """One line item of `day`: usage from its 00:00 UTC to the next day's."""
    start = datetime.combine(day, time(0, 0))
    return {
        "bill_billing_period_start_date": start.replace(day=1),
        "line_item_line_item_type": "Usage",
        "line_item_usage_start_date": start,
        "line_item_usage_end_date": start + timedelta(days=1),
        "line_item_usage_account_id": account_id,
        "line_item_product_code": PRODUCT_CODES[service],
        "line_item_resource_id": resource_id,
        "line_item_usage_type": f"{USAGE_TYPE_PREFIXES.get(region, '')}{usage_type}",
        "line_item_usage_amount": usage,
        "line_item_unblended_rate": round(cost / usage, 10) if usage else 0.0,
        "line_item_unblended_cost": round(cost, 10),
        "product_instance_type": instance_type,
        "product_region_code": region,
        "resource_tags": [("user_cluster", cluster)] if cluster else [],
    }


def _cluster_lines(
    day: date,
    cluster: ClusterSettings,
    costs: SeededCosts,
    *,
    account_id: str,
    region: str,
    cluster_count: int,
) -> list[dict[str, Any]]:
    """The cluster's EKS control plane and its nodes of `day`, together its tagged cost."""
    nodes = [
        (group, index, hours)
        for group in cluster.node_groups
        for index, hours in enumerate(node_hours(cluster, group, day, costs.spike_day))
    ]
    weights = [hours * _price_ratio(group, index) for group, index, hours in nodes]
    # With no node running that day, the cluster's whole tagged cost is its control plane's.
    eks_cost = costs.daily_cost(day)[EKS] / cluster_count if nodes else costs.cluster_cost(day)
    node_cost = costs.cluster_cost(day) - eks_cost
    arn = f"arn:aws:eks:{region}:{account_id}:cluster/{cluster.name}"
    lines = [
        _line(day, EKS, eks_cost, account_id=account_id, region=region, resource_id=arn,
              usage_type=EKS_USAGE_TYPE, usage=24.0, cluster=cluster.name)
    ]  # fmt: skip
    for (group, index, hours), weight in zip(nodes, weights, strict=True):
        instance_type = group.instance_types[index % len(group.instance_types)]
        usage_type = "SpotUsage" if group.capacity_type == "SPOT" else "BoxUsage"
        node = f"{account_id}/{region}/{cluster.name}/{group.name}/{index}"
        lines.append(
            _line(day, COMPUTE, node_cost * weight / sum(weights), account_id=account_id,
                  region=region, resource_id=_instance_id(node),
                  usage_type=f"{usage_type}:{instance_type}", usage=hours,
                  instance_type=instance_type, cluster=cluster.name)
        )  # fmt: skip
    return lines


def node_hours(
    cluster: ClusterSettings, group: NodeGroupSettings, day: date, spike_day: date
) -> list[float]:
    """Hours each node of `group` ran on `day` (UTC), node 0 first, those that ran only: the
    schedule's day size in its working hours, its off-hours size otherwise (`desired_size`
    without a schedule or for a group it excludes), and `max_size` outside working hours on the
    spike day (all day without a schedule)."""
    schedule = cluster.schedule
    night_size = group.desired_size
    if schedule is not None and group.name not in schedule.exclude_node_groups:
        night_size = schedule.off_hours_desired.get(group.name, group.desired_size)
    if day == spike_day:
        night_size = group.max_size
    counts = [night_size] * 24
    if schedule is not None:
        zone = ZoneInfo(schedule.time_zone)
        for hour in range(24):
            if _in_working_hours(schedule, datetime.combine(day, time(hour), UTC).astimezone(zone)):
                counts[hour] = group.desired_size
    return [float(sum(count > index for count in counts)) for index in range(max(counts))]


def _in_working_hours(schedule: ScheduleSettings, moment: datetime) -> bool:
    """Whether `moment` (in the schedule's zone) is between a scheduled day's scale-up and its
    scale-down (which may be after midnight, on the next day)."""
    up = time.fromisoformat(schedule.scale_up_time)
    down = time.fromisoformat(schedule.scale_down_time)
    weekday = moment.strftime("%a").upper()
    previous = (moment - timedelta(days=1)).strftime("%a").upper()
    if up < down:
        return weekday in schedule.days and up <= moment.time() < down
    return (weekday in schedule.days and moment.time() >= up) or (
        previous in schedule.days and moment.time() < down
    )


def _price_ratio(group: NodeGroupSettings, index: int) -> float:
    """A node's price per hour relative to on-demand: spot at its family's usual discount."""
    if group.capacity_type != "SPOT":
        return 1.0
    family = group.instance_types[index % len(group.instance_types)].split(".", 1)[0]
    return SPOT_DISCOUNTS.get(family, DEFAULT_DISCOUNT)


def _instance_id(seed: str) -> str:
    """A stable EC2 instance id for `seed`."""
    return f"i-{hashlib.sha256(seed.encode()).hexdigest()[:17]}"


def cur_files(bucket: str, cur_prefix: str, line_items: pa.Table) -> dict[str, bytes]:
    """The export's files by key: per billing period of `line_items` one Parquet file and the
    manifest that lists it, as Data Exports delivers them."""
    export = f"{cur_prefix.rstrip('/')}/{CUR_EXPORT_NAME}" if cur_prefix else CUR_EXPORT_NAME
    periods = line_items.column("bill_billing_period_start_date").to_pylist()
    files = {}
    for period in sorted(set(periods)):
        rows = [index for index, value in enumerate(periods) if value == period]
        buffer = io.BytesIO()
        pq.write_table(line_items.take(rows), buffer, compression="snappy")
        partition = f"BILLING_PERIOD={period:%Y-%m}"
        data_key = f"{export}/data/{partition}/{CUR_EXPORT_NAME}-00001.snappy.parquet"
        files[data_key] = buffer.getvalue()
        manifest = {
            "executionId": f"{CUR_EXPORT_NAME}-{period:%Y-%m}",
            "dataFiles": [f"s3://{bucket}/{data_key}"],
        }
        manifest_key = f"{export}/metadata/{partition}/{CUR_EXPORT_NAME}-Manifest.json"
        files[manifest_key] = json.dumps(manifest, indent=2).encode()
    return files


def put_seeded_cost_report(
    s3: Any,
    costs: SeededCosts,
    settings: FleetSettings,
    world_day: date,
    *,
    bucket: str,
    cur_prefix: str,
) -> list[str]:
    """Write the export of the CUR_DAYS before `world_day` to `bucket`; the keys written."""
    files = cur_files(bucket, cur_prefix, cur_line_items(costs, settings, billed_days(world_day)))
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return list(files)


def put_cost_report(
    world: DemoWorld,
    settings: FleetSettings,
    costs: SeededCosts,
    world_day: date,
    environment: dict[str, str],
) -> None:
    """The CUR export of `costs` where the cost analyzer reads it (COST_CUR_BUCKET, created
    unless it is the data bucket, and COST_CUR_PREFIX)."""
    s3 = aws_client("s3", world.endpoint_url, world.region, **world.hub_credentials)
    bucket = environment["COST_CUR_BUCKET"]
    if bucket != world.data_bucket:
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": world.region}
        )
    put_seeded_cost_report(
        s3, costs, settings, world_day, bucket=bucket, cur_prefix=environment["COST_CUR_PREFIX"]
    )
