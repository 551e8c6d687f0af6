"""fleet_shared.load_balancers against moto at the size of a cluster with one application load
balancer per ingress, in a region shared with other workloads: the requests a reading takes,
counted per operation as botocore sends them, with its targets asked DescribeTargetHealth (the
change validator's reading) or counted from ELB's HealthyHostCount and UnHealthyHostCount (the
health monitor's), and the finding of a cluster's few load balancers among the region's many. The
load balancers are created once for the module (1.6 s of moto at a light load)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fleet_shared.exceptions import MetricReadCutShortError
from fleet_shared.load_balancers import (
    CLUSTER_TAG,
    DESCRIBE_BY_ARN_BATCH,
    DESCRIBE_TAGS_BATCH,
    GET_RESOURCES_PAGE_SIZE,
    TAG_FILTER_VALUES,
    TAGGING_GRANT,
    cluster_load_balancer_health,
    cluster_load_balancers,
    load_balancers_by_cluster,
    metric_dimension,
    target_group_dimension,
)
from fleet_shared.metric_data import MAX_QUERIES_PER_CALL
from tests.handlers.faults import answer_malformed, refuse_every_attempt
from tests.handlers.member_accounts import load_balancer_network

REGION = "ap-south-1"
CLUSTER = "big-apps"
LOAD_BALANCERS = 170
"""510 traffic queries (3 a load balancer): more than one GetMetricData takes."""
OTHER_CLUSTER = "small-apps"
"""The cluster with one load balancer in the region."""
OTHER_WORKLOADS = 40
"""The region's load balancers of other workloads, tagged for no cluster."""
REGION_LOAD_BALANCERS = LOAD_BALANCERS + 1 + OTHER_WORKLOADS
TAGGING_SERVICE = "resource-groups-tagging-api"
STRADDLING = 166
"""The load balancer whose queries are the 499th to the 501st: its figures come from two calls."""
END = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
START = END - timedelta(minutes=15)
COUNTS_END = END + timedelta(minutes=15)
"""The end of the window the targets are counted over, after the traffic's: moto's GetMetricData
scans every value of its window for each query and minute, and the traffic readings' would scan
the counts too."""
COUNTS_START = COUNTS_END - timedelta(minutes=5)
"""The health monitor's default window."""
COUNTED_AT = COUNTS_END - timedelta(minutes=3)
"""The latest minute of ELB's target counts in the window: they are published a minute or two
late."""
NO_TARGET_COUNTED = 2
"""The load balancer whose target group ELB's counts show with no target, healthy or not."""
NOT_COUNTED = 3
"""The load balancer whose target group has no counts in the window (created minutes ago)."""
COUNTED_OVER_A_MINUTE = 50
"""The load balancer whose counts changed within their latest minute, and differ before it."""


@dataclass(frozen=True)
class BigCluster:
    """The module's moto world: the cluster's load balancers (by index) and its sessions' region."""

    arns: list[str]
    session: boto3.Session


@pytest.fixture(scope="module")
def big_cluster() -> Iterator[BigCluster]:
    """LOAD_BALANCERS application load balancers tagged for CLUSTER, each forwarding to its own
    target group with one healthy target, the first target group also forwarded to by the second
    load balancer; STRADDLING's group has a second, stopped target; OTHER_CLUSTER's load
    balancer and group beside them, and OTHER_WORKLOADS load balancers tagged for no cluster;
    one minute of traffic for the first, STRADDLING and the last; ELB's target counts after the
    traffic's window (`put_target_counts`)."""
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        ec2, elbv2 = session.client("ec2"), session.client("elbv2")
        vpc, subnets = load_balancer_network(ec2)
        healthy, stopped = (
            instance["InstanceId"]
            for instance in ec2.run_instances(
                ImageId="ami-0abcdef1234567890", MinCount=2, MaxCount=2, SubnetId=subnets[0]
            )["Instances"]
        )

        def load_balancer(name: str, cluster: str) -> tuple[str, str]:
            arn = elbv2.create_load_balancer(
                Name=name,
                Subnets=subnets,
                Type="application",
                Tags=[{"Key": CLUSTER_TAG, "Value": cluster}],
            )["LoadBalancers"][0]["LoadBalancerArn"]
            group = elbv2.create_target_group(
                Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance"
            )["TargetGroups"][0]["TargetGroupArn"]
            forward(arn, group, 80)
            elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": healthy}])
            return arn, group

        def forward(arn: str, group: str, port: int) -> None:
            elbv2.create_listener(
                LoadBalancerArn=arn,
                Protocol="HTTP",
                Port=port,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
            )

        built = [load_balancer(f"k8s-{index:03d}", CLUSTER) for index in range(LOAD_BALANCERS)]
        load_balancer("k8s-other", OTHER_CLUSTER)
        for index in range(OTHER_WORKLOADS):
            elbv2.create_load_balancer(
                Name=f"shop-{index:02d}", Subnets=subnets, Tags=[{"Key": "team", "Value": "shop"}]
            )
        forward(built[1][0], built[0][1], 81)
        elbv2.register_targets(TargetGroupArn=built[STRADDLING][1], Targets=[{"Id": stopped}])
        ec2.stop_instances(InstanceIds=[stopped])
        arns = [arn for arn, _ in built]
        for index in (0, STRADDLING, LOAD_BALANCERS - 1):
            put_traffic(session, arns[index], requests=100 + index, errors=index % 7)
        put_target_counts(session, built)
        yield BigCluster(arns, session)


def put_target_counts(session: boto3.Session, built: list[tuple[str, str]]) -> None:
    """ELB's HealthyHostCount and UnHealthyHostCount of each load balancer's own target group
    at COUNTED_AT: one healthy target (STRADDLING's one of two); the first target group has none
    at the second load balancer, NOT_COUNTED's none at all, NO_TARGET_COUNTED's counts none;
    COUNTED_OVER_A_MINUTE's were 3 then 2 healthy and 1 then 2 unhealthy in that minute, 4
    healthy the minute after with no unhealthy count, and 4 healthy of 4 the minute before."""
    counts: dict[int, list[tuple[timedelta, float, float | None]]] = {
        index: [(timedelta(0), 1, 0)] for index in range(LOAD_BALANCERS)
    }
    counts[STRADDLING] = [(timedelta(0), 1, 1)]
    counts[NO_TARGET_COUNTED] = [(timedelta(0), 0, 0)]
    del counts[NOT_COUNTED]
    counts[COUNTED_OVER_A_MINUTE] = [
        (timedelta(minutes=-1), 4, 0),
        (timedelta(0), 3, 1),
        (timedelta(seconds=30), 2, 2),
        (timedelta(minutes=1), 4, None),
    ]
    data: list[dict[str, Any]] = []
    for index, moments in counts.items():
        arn, group = built[index]
        dimensions = [
            {"Name": "LoadBalancer", "Value": metric_dimension(arn)},
            {"Name": "TargetGroup", "Value": target_group_dimension(group)},
        ]
        for after, healthy, unhealthy in moments:
            at = COUNTED_AT + after
            for name, value in (("HealthyHostCount", healthy), ("UnHealthyHostCount", unhealthy)):
                if value is not None:
                    data.append(
                        {
                            "MetricName": name,
                            "Dimensions": dimensions,
                            "Timestamp": at,
                            "Value": value,
                        }
                    )
    cloudwatch = session.client("cloudwatch")
    for offset in range(0, len(data), 500):
        cloudwatch.put_metric_data(
            Namespace="AWS/ApplicationELB", MetricData=data[offset : offset + 500]
        )


def put_traffic(session: boto3.Session, arn: str, *, requests: int, errors: int) -> None:
    """One minute of the load balancer's traffic in the window: 250 ms, `requests`, `errors`."""
    dimensions = [{"Name": "LoadBalancer", "Value": metric_dimension(arn)}]
    at = END - timedelta(minutes=5)
    values = {"TargetResponseTime": 0.25, "RequestCount": requests}
    values["HTTPCode_Target_5XX_Count"] = errors
    session.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": value}
            for name, value in values.items()
        ],
    )


@dataclass(frozen=True)
class CountedClients:
    """ELBv2, Resource Groups Tagging API and CloudWatch clients, and the requests they sent by
    operation (counted as botocore sends them, its retries included)."""

    elbv2: Any
    tagging: Any
    cloudwatch: Any
    sent: Counter[str]


def counted_clients(session: boto3.Session) -> CountedClients:
    """`CountedClients` of `session`."""
    sent: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] += 1

    clients = CountedClients(
        session.client("elbv2"),
        session.client("resourcegroupstaggingapi"),
        session.client("cloudwatch"),
        sent,
    )
    for client in (clients.elbv2, clients.tagging, clients.cloudwatch):
        client.meta.events.register("before-send", count)
    return clients


def test_a_cluster_of_many_load_balancers_is_read_with_one_request_per_page_batch_and_group(
    big_cluster: BigCluster,
) -> None:
    # GIVEN the cluster's 170 application load balancers, each with its target group, and
    # another cluster's load balancer and 40 of other workloads in the region
    clients = counted_clients(big_cluster.session)
    sent = clients.sent
    # WHEN the cluster's load balancers are read over the window
    found = cluster_load_balancer_health(
        clients.elbv2, clients.cloudwatch, CLUSTER, START, END, tagging=clients.tagging
    )
    # THEN they were found by their tag in pages of 100 and described 20 a call, the region's
    # target groups took one page, the health one call per target group (none for the other
    # cluster's, one for the group two load balancers share), and the 510 traffic queries the
    # fewest GetMetricData calls that hold them: 2, not one per load balancer
    assert sent == {
        "GetResources": math.ceil(LOAD_BALANCERS / GET_RESOURCES_PAGE_SIZE),
        "DescribeLoadBalancers": math.ceil(LOAD_BALANCERS / DESCRIBE_BY_ARN_BATCH),
        "DescribeTargetGroups": 1,
        "DescribeTargetHealth": LOAD_BALANCERS,
        "GetMetricData": math.ceil(3 * LOAD_BALANCERS / MAX_QUERIES_PER_CALL),
    }
    assert sent["GetMetricData"] == 2
    # AND every load balancer of the cluster, only those, has its own target groups and traffic,
    # the one whose queries two calls answered included
    by_name = {balancer.name: balancer for balancer in found}
    assert sorted(by_name) == [f"k8s-{index:03d}" for index in range(LOAD_BALANCERS)]
    assert [group.name for group in by_name["k8s-001"].target_groups] == [
        "k8s-000-tg",
        "k8s-001-tg",
    ]
    assert by_name["k8s-000"].figures() == {
        "registered": 1,
        "healthy": 1,
        "healthy_ratio": 1.0,
        "response_time_ms": 250.0,
        "requests": 100.0,
        "error_rate_5xx": 0.0,
    }
    assert by_name[f"k8s-{STRADDLING}"].figures() == {
        "registered": 2,
        "healthy": 1,
        "healthy_ratio": 0.5,
        "response_time_ms": 250.0,
        "requests": 266.0,
        "error_rate_5xx": round(STRADDLING % 7 / 266, 4),
    }
    assert by_name[f"k8s-{LOAD_BALANCERS - 1}"].figures()["requests"] == 269.0
    assert by_name["k8s-050"].figures()["requests"] == 0
    assert by_name["k8s-050"].traffic is not None and by_name["k8s-050"].traffic.left_out == ()


def test_a_reading_cut_short_before_its_second_get_metric_data_fails_whole(
    big_cluster: BigCluster,
) -> None:
    # GIVEN the cluster's 170 load balancers, whose traffic takes two GetMetricData calls, and a
    # reading allowed no request after its first GetMetricData
    clients = counted_clients(big_cluster.session)
    sent = clients.sent

    def before_the_second_metric_read() -> bool:
        return sent["GetMetricData"] < 1

    # WHEN the cluster's load balancers are read
    with pytest.raises(MetricReadCutShortError):
        cluster_load_balancer_health(
            clients.elbv2,
            clients.cloudwatch,
            CLUSTER,
            START,
            END,
            tagging=clients.tagging,
            next_page_allowed=before_the_second_metric_read,
        )
    # THEN the reading failed as a whole, no figures from half the queries, and asked nothing
    # after the call it was refused
    assert sent["GetMetricData"] == 1
    assert "DescribeTargetHealth" not in sent


def test_a_cluster_of_many_load_balancers_is_counted_from_elbs_target_counts_in_its_metric_read(
    big_cluster: BigCluster,
) -> None:
    # GIVEN the cluster's 170 application load balancers, whose target groups ELB counted a few
    # minutes ago, but for the first group at the second load balancer, one group counted with
    # no target and one not counted at all
    clients = counted_clients(big_cluster.session)
    sent = clients.sent
    # WHEN the cluster's load balancers are read, their targets counted from the metrics
    found = cluster_load_balancer_health(
        clients.elbv2,
        clients.cloudwatch,
        CLUSTER,
        COUNTS_START,
        COUNTS_END,
        tagging=clients.tagging,
        target_counts_from_metrics=True,
    )
    # THEN the counts of the 171 pairs of target group and load balancer came in the traffic's
    # GetMetricData calls (510 + 342 queries: 2 calls, as for the traffic alone), and only the
    # three target groups the counts left unsettled were asked their health, not 170
    pairs = LOAD_BALANCERS + 1
    assert sent == {
        "GetResources": math.ceil(LOAD_BALANCERS / GET_RESOURCES_PAGE_SIZE),
        "DescribeLoadBalancers": math.ceil(LOAD_BALANCERS / DESCRIBE_BY_ARN_BATCH),
        "DescribeTargetGroups": 1,
        "DescribeTargetHealth": 3,
        "GetMetricData": math.ceil((3 * LOAD_BALANCERS + 2 * pairs) / MAX_QUERIES_PER_CALL),
    }
    assert sent["GetMetricData"] == 2
    # AND every load balancer has its target groups' targets: the counts of the latest minute
    # both metrics have, its fewest healthy and most unhealthy targets; those of the groups not
    # counted, or counted with no target, as DescribeTargetHealth answers them now
    by_name = {balancer.name: balancer for balancer in found}
    assert sorted(by_name) == [f"k8s-{index:03d}" for index in range(LOAD_BALANCERS)]
    counted = by_name[f"k8s-{COUNTED_OVER_A_MINUTE:03d}"]
    assert (counted.registered, counted.healthy) == (4, 2)
    assert [
        (group.name, group.registered, group.healthy) for group in by_name["k8s-001"].target_groups
    ] == [
        ("k8s-000-tg", 1, 1),
        ("k8s-001-tg", 1, 1),
    ]
    for index in (NO_TARGET_COUNTED, NOT_COUNTED):
        balancer = by_name[f"k8s-{index:03d}"]
        assert (balancer.registered, balancer.healthy) == (1, 1)
    straddling = by_name[f"k8s-{STRADDLING}"]
    assert (straddling.registered, straddling.healthy) == (2, 1)


def test_a_clusters_few_load_balancers_are_found_without_reading_the_regions_many(
    big_cluster: BigCluster,
) -> None:
    # GIVEN a cluster with one load balancer in a region of 211
    clients = counted_clients(big_cluster.session)
    # WHEN its load balancers are found
    found = cluster_load_balancers(clients.elbv2, OTHER_CLUSTER, tagging=clients.tagging)
    # THEN one GetResources and one DescribeLoadBalancers found and described it, and no tag of
    # the region's other 210 load balancers was read
    assert [balancer["LoadBalancerName"] for balancer in found] == ["k8s-other"]
    assert found[0]["Type"] == "application"
    assert clients.sent == {"GetResources": 1, "DescribeLoadBalancers": 1}


def test_a_member_refusing_the_tagging_grant_has_its_load_balancers_found_from_elbs_tags(
    big_cluster: BigCluster, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a member role without tag:GetResources (a member stack not updated since the grant)
    clients = counted_clients(big_cluster.session)
    refusal = refuse_every_attempt(clients.tagging, TAGGING_SERVICE, "GetResources")
    # WHEN a cluster's load balancers are found
    found = cluster_load_balancers(clients.elbv2, OTHER_CLUSTER, tagging=clients.tagging)
    # THEN the same load balancer is found, from the region's listing and ELB's tags of all of
    # its 211 load balancers, as before the grant
    assert [balancer["LoadBalancerName"] for balancer in found] == ["k8s-other"]
    assert refusal.refused == 1
    assert clients.sent == {
        "GetResources": 1,
        "DescribeLoadBalancers": 1,
        "DescribeTags": math.ceil(REGION_LOAD_BALANCERS / DESCRIBE_TAGS_BATCH),
    }
    # AND the log names the grant refused
    assert any(TAGGING_GRANT in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("indexed_too", "described", "asked_of_elbv2"),
    [
        # ELBv2 refuses the call naming a deleted one; the region is listed instead
        ("app/a-deleted/0123456789abcdef", 2, True),
        # a classic load balancer, which ELBv2 does not describe, is never asked
        ("k8s-classic", 1, False),
    ],
)
def test_a_load_balancer_the_tagging_index_answers_but_elbv2_does_not_have_is_left_out(
    big_cluster: BigCluster, indexed_too: str, described: int, asked_of_elbv2: bool
) -> None:
    # GIVEN GetResources answering, beside the cluster's load balancer, one tagged for it that
    # ELBv2 does not have: deleted since it was indexed (ELBv2 refuses a DescribeLoadBalancers
    # naming it, the whole call), or a classic load balancer
    clients = counted_clients(big_cluster.session)
    [existing] = cluster_load_balancers(clients.elbv2, OTHER_CLUSTER, tagging=clients.tagging)
    clients.sent.clear()
    arn = existing["LoadBalancerArn"]
    other = f"{arn.split(':loadbalancer/', 1)[0]}:loadbalancer/{indexed_too}"
    indexed = {
        "PaginationToken": "",
        "ResourceTagMappingList": [
            {"ResourceARN": found, "Tags": [{"Key": CLUSTER_TAG, "Value": OTHER_CLUSTER}]}
            for found in (arn, other)
        ],
    }
    answer_malformed(
        clients.tagging,
        TAGGING_SERVICE,
        "GetResources",
        json.dumps(indexed).encode(),
        content_type="application/x-amz-json-1.1",
    )
    asked: list[str] = []

    def note_asked(params: dict[str, Any], **_: Any) -> None:
        asked.extend(params.get("LoadBalancerArns", []))

    clients.elbv2.meta.events.register(
        "before-parameter-build.elastic-load-balancing-v2.DescribeLoadBalancers", note_asked
    )
    # WHEN the cluster's load balancers are found
    found = cluster_load_balancers(clients.elbv2, OTHER_CLUSTER, tagging=clients.tagging)
    # THEN the one that exists is found and the other left out, rather than failing the
    # reading: after a refusal from one listing of the region
    assert [balancer["LoadBalancerArn"] for balancer in found] == [arn]
    assert clients.sent == {"GetResources": 1, "DescribeLoadBalancers": described}
    assert (other in asked) is asked_of_elbv2


def test_the_load_balancers_of_more_clusters_than_a_tag_filter_takes_are_found_in_turn(
    big_cluster: BigCluster,
) -> None:
    # GIVEN a region's 21 clusters of a run (a GetResources tag filter takes 20 values), one of
    # them with a load balancer
    clients = counted_clients(big_cluster.session)
    clusters = [f"absent-{index:02d}" for index in range(TAG_FILTER_VALUES)] + [OTHER_CLUSTER]
    # WHEN their load balancers are found
    found = load_balancers_by_cluster(clients.elbv2, clusters, tagging=clients.tagging)
    # THEN one GetResources asked for 20 of them, one for the last, and its load balancer was
    # found
    assert {cluster: [b["LoadBalancerName"] for b in found[cluster]] for cluster in found} == {
        OTHER_CLUSTER: ["k8s-other"]
    }
    assert clients.sent == {"GetResources": 2, "DescribeLoadBalancers": 1}
