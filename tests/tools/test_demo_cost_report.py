"""The demo's CUR export: what the cost analyzer's own reader finds in it is the cost the demo's
Cost Explorer answers, day by day, by service, account and cluster tag."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import boto3
import pandas as pd
from moto import mock_aws

from fleetctl.demo_cost_report import (
    COMPUTE,
    CUR_DAYS,
    PRODUCT_CODES,
    node_hours,
    put_seeded_cost_report,
)
from fleetctl.demo_world import SeededCosts
from fleetctl.local_world import stack_settings
from handlers.cost_analyzer.cur import aggregate_line_items, cluster_tags, summarise
from handlers.cost_analyzer.cur_reader import read_cur

# A world day early in a month, so the lookback spans two billing periods.
WORLD_DAY = date(2026, 11, 3)
BUCKET = "demo-data"


def _seeded_lines(costs: SeededCosts, prefix: str) -> tuple[list[str], pd.DataFrame]:
    """The keys written and the line items the function's reader reads back from them, for the
    lookback of a run on WORLD_DAY."""
    s3 = boto3.client("s3", region_name="ap-south-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    settings = stack_settings("dev")
    keys = put_seeded_cost_report(s3, costs, settings, WORLD_DAY, bucket=BUCKET, cur_prefix=prefix)
    end = datetime.combine(WORLD_DAY, datetime.min.time(), UTC)
    return keys, read_cur(s3, BUCKET, prefix, period=(end - timedelta(days=CUR_DAYS), end))


def _dev_costs() -> SeededCosts:
    settings = stack_settings("dev")
    return SeededCosts(
        spike_day=WORLD_DAY - timedelta(days=1),
        hub_account_id=settings.hub.account_id,
        member_account_id=settings.members[0].account_id,
        cluster_names=tuple(c.name for m in settings.members for c in m.clusters),
    )


@mock_aws
def test_the_cur_read_back_has_the_seeded_cost_of_each_day_by_service_account_and_cluster():
    # GIVEN the demo's seeded cost of the dev stack, its spike on the day before the world's day
    costs = _dev_costs()
    prefix = stack_settings("dev").cost_report.cur_prefix

    # WHEN its CUR export is written to S3 and read back by the cost analyzer's reader
    keys, lines = _seeded_lines(costs, prefix)

    # THEN there is one Parquet file per billing period, where Data Exports writes CUR 2.0,
    # each listed by its period's manifest
    data_keys = [key for key in keys if "/data/" in key]
    manifest_keys = [key for key in keys if "/metadata/" in key]
    assert [key.split("/BILLING_PERIOD=")[1][:7] for key in data_keys] == ["2026-10", "2026-11"]
    assert all(key.startswith(prefix) and key.endswith(".snappy.parquet") for key in data_keys)
    assert [key.split("/BILLING_PERIOD=")[1][:7] for key in manifest_keys] == [
        "2026-10",
        "2026-11",
    ]
    assert all(key.endswith("-Manifest.json") for key in manifest_keys)
    # AND a few hundred line items, every day of the lookback
    days = lines["line_item_usage_start_date"].map(lambda stamp: stamp.date())
    expected_days = [WORLD_DAY - timedelta(days=back) for back in range(CUR_DAYS, 0, -1)]
    assert sorted(set(days)) == expected_days
    assert 100 <= len(lines) <= 2000
    cost = lines["line_item_unblended_cost"].astype(float)
    by_service = cost.groupby([days, lines["line_item_product_code"].astype(str)]).sum()
    by_account = cost.groupby([days, lines["line_item_usage_account_id"].astype(str)]).sum()
    tags = pd.Series(cluster_tags(lines).to_pylist(), index=lines.index)
    by_cluster = cost.groupby([days, tags]).sum()
    for day in expected_days:
        # AND each day's cost by service, account and cluster tag is Cost Explorer's
        for service, amount in costs.daily_cost(day).items():
            assert abs(by_service[day, PRODUCT_CODES[service]] - amount) < 1e-6, (day, service)
        for account, amount in costs.daily_by_account(day).items():
            assert abs(by_account[day, account] - amount) <= 0.011, (day, account)
        for cluster, amount in costs.daily_by_cluster(day).items():
            assert abs(by_cluster[day, cluster] - amount) < 1e-6, (day, cluster)
    # AND the spike day is the most expensive day of compute
    compute = by_service.xs(PRODUCT_CODES[COMPUTE], level=1)
    assert compute.idxmax() == costs.spike_day


@mock_aws
def test_the_analyzers_cur_detail_of_the_seeded_export_shows_the_clusters_nodes():
    # GIVEN the demo's CUR export read back by the cost analyzer's reader
    costs = _dev_costs()
    _, lines = _seeded_lines(costs, "cur/")
    end = datetime.combine(WORLD_DAY, datetime.min.time(), UTC)

    # WHEN the analyzer aggregates and summarises it
    summary = summarise(aggregate_line_items(lines, end - timedelta(days=CUR_DAYS), end), 20)

    # THEN its total is Cost Explorer's for the lookback
    expected = sum(
        sum(costs.daily_cost(end.date() - timedelta(days=back)).values())
        for back in range(1, CUR_DAYS + 1)
    )
    assert abs(summary["total_cost"] - expected) < 0.01
    # AND the dev cluster's nodes are in its account and region, spot and on-demand, with the
    # node hours the node groups' schedule gives them
    settings = stack_settings("dev")
    member = settings.members[0]
    cluster = member.clusters[0]
    [nodes] = summary["eks_nodes"]["clusters"]
    assert (nodes["account_id"], nodes["region"], nodes["cluster"]) == (
        member.account_id,
        member.cluster_region(cluster),
        cluster.name,
    )
    assert 0 < nodes["spot_cost_share"] < 1
    scheduled_hours = sum(
        sum(node_hours(cluster, group, end.date() - timedelta(days=back), costs.spike_day))
        for group in cluster.node_groups
        for back in range(1, CUR_DAYS + 1)
    )
    assert nodes["node_hours"] == scheduled_hours


def test_node_groups_run_their_scheduled_sizes_and_stay_at_full_size_the_spike_night():
    # GIVEN the dev cluster: on weekdays 08:00-18:00 IST system 2 and batch-spot 2 nodes, else 1
    # and 0
    cluster = stack_settings("dev").members[0].clusters[0]
    system, batch = cluster.node_groups
    wednesday, spike = date(2026, 11, 4), date(2026, 11, 2)

    # WHEN the node hours of a working day and of the spike day (a Monday) are asked
    # THEN a working day has one node all day and the rest for the 10 working hours
    assert node_hours(cluster, system, wednesday, spike) == [24.0, 10.0]
    assert node_hours(cluster, batch, wednesday, spike) == [10.0, 10.0]
    # AND on the spike day every node group stayed at its max size outside working hours
    assert node_hours(cluster, system, spike, spike) == [24.0, 24.0, 14.0, 14.0]
    assert node_hours(cluster, batch, spike, spike) == [24.0, 24.0, 14.0, 14.0, 14.0, 14.0]
