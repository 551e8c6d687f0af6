"""What the dev stack would have in AWS, created in a moto server for the demo.

Names come from the functions' environment in the offline plan (table, bucket, topics, secrets,
inventory key), so the handlers find exactly what they would find after `pulumi up`. The member
account gets the clusters and node groups of the stack file, two weeks of Container Insights
history, some stale snapshots and a security group open to the world, so that every function
has real work to do.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import botocore.config

from components.eks_cluster import CONTROL_PLANE_LOG_TYPES
from components.settings import ClusterSettings, FleetSettings
from fleetctl.local_state_table import create_state_table

# moto accepts any keys; these only ask STS for the roles the demo's callers act as.
BOOTSTRAP_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
HISTORY_DAYS = 14
STALE_AGE_DAYS = 45
CONTAINER_INSIGHTS = "ContainerInsights"
ALERT_SEVERITIES = ("critical", "warning", "info")
# The CPU demand of a cluster in predictive mode, in vCPU: shaped for the forecaster to be
# confident (out-of-sample errors within 15%) in most hours. A load test the day before the
# replayed day made the load erratic for that whole day: while it is most of the last day the
# forecaster scored itself on (the small hours and the morning of the replayed day, whatever
# its weekday), the confidence is capped at that day's low hit rate, under 0.85, and the
# schedule is kept; later in the day the forecast sizes the cluster. A stretch two weeks back
# gave a kept hour on only some days, by the luck of the noise.
NIGHT_VCPU = 0.8
PEAK_EXTRA_VCPU = 5.5
WEEKEND_SHARE = 0.85
DEMAND_NOISE = 0.03
LOAD_TEST_FROM = timedelta(days=-1)
LOAD_TEST_UNTIL = timedelta(0)
LOAD_TEST_FACTORS = (0.3, 2.5)
NODE_VCPUS = 2
"""vCPUs of the dev stack's Graviton `large` nodes."""


@dataclass(frozen=True)
class DemoQueues:
    """Queues the demo reads to play the parts of SNS -> router and S3 -> Lambda."""

    alerts_url: str
    bucket_events_url: str


@dataclass(frozen=True)
class DemoWorld:
    endpoint_url: str
    hub_account_id: str
    region: str
    data_bucket: str
    queues: DemoQueues
    hub_credentials: dict[str, str]


def aws_client(service: str, endpoint_url: str, region: str, **credentials: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        config=botocore.config.Config(retries={"mode": "standard"}),
        **credentials,
    )


def role_credentials(endpoint_url: str, region: str, role_arn: str) -> dict[str, str]:
    """Credentials of a role; moto places whatever they create in the role's account."""
    sts = aws_client("sts", endpoint_url, region, **BOOTSTRAP_CREDENTIALS)
    issued = sts.assume_role(RoleArn=role_arn, RoleSessionName="lambda-fleet-demo")["Credentials"]
    return {
        "aws_access_key_id": issued["AccessKeyId"],
        "aws_secret_access_key": issued["SecretAccessKey"],
        "aws_session_token": issued["SessionToken"],
    }


def _name_of(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def create_hub(
    endpoint_url: str,
    settings: FleetSettings,
    environment: dict[str, str],
    inventory: dict[str, Any],
    receiver_url: str,
) -> DemoWorld:
    """The hub's bucket, table, topics, secrets and inventory, named as the plan names them.

    The functions act in the hub as a role of the hub account, as they do in Lambda.
    """
    region = settings.hub.region
    credentials = role_credentials(
        endpoint_url,
        region,
        f"arn:aws:iam::{settings.hub.account_id}:role/lambda-fleet-demo-functions",
    )
    s3 = aws_client("s3", endpoint_url, region, **credentials)
    bucket = environment["DATA_BUCKET_NAME"]
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_object(
        Bucket=bucket,
        Key=environment["FLEET_INVENTORY_KEY"],
        Body=json.dumps(inventory, sort_keys=True, indent=2).encode(),
        ContentType="application/json",
    )
    dynamodb = aws_client("dynamodb", endpoint_url, region, **credentials)
    create_state_table(dynamodb, environment["STATE_TABLE_NAME"])
    sns = aws_client("sns", endpoint_url, region, **credentials)
    sqs = aws_client("sqs", endpoint_url, region, **credentials)
    alerts_url = sqs.create_queue(QueueName="demo-alerts")["QueueUrl"]
    alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    topic_variables = {
        "critical": "ALERT_TOPIC_CRITICAL_ARN",
        "warning": "ALERT_TOPIC_ARN",
        "info": "ALERT_TOPIC_INFO_ARN",
    }
    for variable in topic_variables.values():
        topic_arn = sns.create_topic(Name=_name_of(environment[variable]))["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=alerts_arn)
    if environment.get("EMAIL_TOPIC_ARN"):
        sns.create_topic(Name=_name_of(environment["EMAIL_TOPIC_ARN"]))
    secrets = aws_client("secretsmanager", endpoint_url, region, **credentials)
    if environment.get("SLACK_WEBHOOK_SECRET"):
        secrets.create_secret(
            Name=environment["SLACK_WEBHOOK_SECRET"], SecretString=f"{receiver_url}/slack"
        )
    if environment.get("PAGERDUTY_ROUTING_KEY_SECRET"):
        secrets.create_secret(
            Name=environment["PAGERDUTY_ROUTING_KEY_SECRET"], SecretString="demo-routing-key"
        )
    if environment.get("VALIDATION_SCHEDULE_GROUP"):
        # The program creates the group that change_validator's callback schedules go in.
        aws_client("scheduler", endpoint_url, region, **credentials).create_schedule_group(
            Name=environment["VALIDATION_SCHEDULE_GROUP"]
        )
    events_url = sqs.create_queue(QueueName="demo-bucket-events")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": events_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
                for prefix in ("raw/", "processed/")
            ]
        },
    )
    return DemoWorld(
        endpoint_url=endpoint_url,
        hub_account_id=settings.hub.account_id,
        region=region,
        data_bucket=bucket,
        queues=DemoQueues(alerts_url=alerts_url, bucket_events_url=events_url),
        hub_credentials=credentials,
    )


def _utilisation(hour: datetime, base: float) -> float:
    """Busy weekday office hours in India, quiet nights and weekends: a shape to forecast."""
    local = hour + timedelta(hours=5, minutes=30)
    daily = math.sin(math.pi * max(0.0, min(1.0, (local.hour - 7) / 12)))
    weekday = 1.0 if local.weekday() < 5 else 0.45
    wobble = 3.0 * math.sin(hour.timestamp() / 3600 * 1.7)
    return round(max(2.0, base + 45.0 * daily * weekday + wobble), 2)


def create_member(
    endpoint_url: str, settings: FleetSettings, member_role_name: str, now: datetime
) -> None:
    """Clusters, node groups, metric history, stale snapshots and an open security group."""
    for member in settings.members:
        role_arn = f"arn:aws:iam::{member.account_id}:role/{member_role_name}"
        for region in member.regions:
            credentials = role_credentials(endpoint_url, region, role_arn)
            eks = aws_client("eks", endpoint_url, region, **credentials)
            ec2 = aws_client("ec2", endpoint_url, region, **credentials)
            cloudwatch = aws_client("cloudwatch", endpoint_url, region, **credentials)
            vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
            subnets = [
                ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{index}.0/24")["Subnet"][
                    "SubnetId"
                ]
                for index in range(2)
            ]
            node_role = f"arn:aws:iam::{member.account_id}:role/demo-node-role"
            for cluster in member.clusters:
                if member.cluster_region(cluster) != region:
                    continue
                secrets_key = aws_client("kms", endpoint_url, region, **credentials).create_key(
                    Description=f"Encrypts Kubernetes secrets of EKS cluster {cluster.name}"
                )["KeyMetadata"]["Arn"]
                # An existing cluster's version is its owner's: moto then picks its default.
                version = (
                    {}
                    if cluster.kubernetes_version is None
                    else {"version": cluster.kubernetes_version}
                )
                eks.create_cluster(
                    name=cluster.name,
                    roleArn=f"arn:aws:iam::{member.account_id}:role/demo-cluster-role",
                    **version,
                    **planned_cluster_settings(cluster, subnets, secrets_key),
                )
                for group in cluster.node_groups:
                    eks.create_nodegroup(
                        clusterName=cluster.name,
                        nodegroupName=group.name,
                        nodeRole=node_role,
                        subnets=subnets,
                        capacityType=group.capacity_type,
                        instanceTypes=list(group.instance_types),
                        scalingConfig={
                            "minSize": group.min_size,
                            "maxSize": group.max_size,
                            "desiredSize": group.desired_size,
                        },
                        labels=dict(group.labels),
                        tags={"eks:cluster-name": cluster.name, "eks:nodegroup-name": group.name},
                    )
                    create_node_group_instances(
                        eks,
                        aws_client("autoscaling", endpoint_url, region, **credentials),
                        ec2=ec2,
                        cluster=cluster.name,
                        node_group=group.name,
                        desired=group.desired_size,
                        maximum=group.max_size,
                        subnets=subnets,
                    )
                _put_history(cloudwatch, cluster, now)
            _put_stale_resources(ec2, vpc_id, member.account_id)


def planned_cluster_settings(
    cluster: ClusterSettings, subnets: list[str], secrets_key_arn: str
) -> dict[str, Any]:
    """CreateCluster settings that the program gives a cluster (components/eks_cluster.py):
    private endpoint, public only from the stack file's CIDRs, secrets encrypted with a KMS key,
    every control-plane log type; so the security scanner finds what it would find in AWS."""
    public_cidrs = list(cluster.endpoint_public_access_cidrs)
    vpc_config: dict[str, Any] = {
        "subnetIds": subnets,
        "endpointPrivateAccess": True,
        "endpointPublicAccess": bool(public_cidrs),
    }
    if public_cidrs:
        vpc_config["publicAccessCidrs"] = public_cidrs
    return {
        "resourcesVpcConfig": vpc_config,
        "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": secrets_key_arn}}],
        "logging": {"clusterLogging": [{"types": list(CONTROL_PLANE_LOG_TYPES), "enabled": True}]},
    }


def create_node_group_instances(
    eks: Any,
    autoscaling: Any,
    *,
    ec2: Any,
    cluster: str,
    node_group: str,
    desired: int,
    maximum: int,
    subnets: list[str],
) -> None:
    """The Auto Scaling group EKS names for the node group, with its nodes running.

    moto's EKS names an Auto Scaling group for each node group but does not create it.
    """
    described = eks.describe_nodegroup(clusterName=cluster, nodegroupName=node_group)
    for group in described["nodegroup"]["resources"]["autoScalingGroups"]:
        template = f"{group['name']}-template"
        ec2.create_launch_template(
            LaunchTemplateName=template,
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m7g.large"},
        )
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group["name"],
            LaunchTemplate={"LaunchTemplateName": template},
            MinSize=0,
            MaxSize=maximum,
            DesiredCapacity=desired,
            VPCZoneIdentifier=",".join(subnets),
        )


def follow_node_group_scaling(eks: Any, autoscaling: Any, cluster: str, node_group: str) -> None:
    """Bring the node group's Auto Scaling groups to its EKS scaling config, as EKS does.

    UpdateNodegroupConfig in AWS sets the min, max and desired capacity of the node group's Auto
    Scaling groups, which then launch or terminate nodes; moto's EKS only records the new config.
    """
    described = eks.describe_nodegroup(clusterName=cluster, nodegroupName=node_group)["nodegroup"]
    scaling = described["scalingConfig"]
    for group in described["resources"]["autoScalingGroups"]:
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=group["name"],
            MinSize=scaling["minSize"],
            MaxSize=scaling["maxSize"],
            DesiredCapacity=scaling["desiredSize"],
        )


def cpu_demand(
    cluster: str, hour: datetime, zone: ZoneInfo, load_test: tuple[datetime, datetime]
) -> float:
    """vCPUs a predictive cluster's pods use in `hour`: busy working hours, quiet nights,
    quieter weekends, a little noise, and erratic load during `load_test` (from, until).
    Deterministic: the noise is seeded by the cluster and the hour."""
    local = hour.astimezone(zone)
    daily = math.sin(math.pi * max(0.0, min(1.0, (local.hour + 0.5 - 7) / 12)))
    weekday = 1.0 if local.weekday() < 5 else WEEKEND_SHARE
    randomness = random.Random(f"{cluster}/{hour.isoformat()}")
    demand = (NIGHT_VCPU + PEAK_EXTRA_VCPU * daily * weekday) * math.exp(
        randomness.gauss(0, DEMAND_NOISE)
    )
    if load_test[0] <= hour < load_test[1]:
        demand *= randomness.uniform(*LOAD_TEST_FACTORS)
    return demand


def _put_history(cloudwatch: Any, cluster: ClusterSettings, now: datetime) -> None:
    start = (now - timedelta(days=HISTORY_DAYS)).replace(minute=0, second=0, microsecond=0)
    hours = [start + timedelta(hours=index) for index in range(HISTORY_DAYS * 24)]
    if cluster.scaling.mode == "predictive":
        series = predictive_history(cluster, hours, now)
    else:
        series = {
            "node_cpu_utilization": [_utilisation(hour, 20.0) for hour in hours],
            "node_memory_utilization": [_utilisation(hour, 35.0) for hour in hours],
            "cluster_node_count": [
                max(2.0, round(_utilisation(hour, 20.0) / 12)) for hour in hours
            ],
            "pod_number_of_running_pods": [round(_utilisation(hour, 20.0) * 2) for hour in hours],
        }
    for metric, values in series.items():
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "ClusterName", "Value": cluster.name}],
                "Timestamp": hour,
                "Value": value,
                "Unit": "Percent" if "utilization" in metric else "Count",
            }
            for hour, value in zip(hours, values, strict=True)
        ]
        for offset in range(0, len(data), 500):
            cloudwatch.put_metric_data(
                Namespace=CONTAINER_INSIGHTS, MetricData=data[offset : offset + 500]
            )


def load_test_window(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """When the load test ran: LOAD_TEST_FROM to LOAD_TEST_UNTIL after the local midnight that
    starts the day of `now` (the replayed day)."""
    midnight = datetime.combine(now.astimezone(zone).date(), time(0, 0), zone)
    return midnight + LOAD_TEST_FROM, midnight + LOAD_TEST_UNTIL


def predictive_history(
    cluster: ClusterSettings, hours: list[datetime], now: datetime
) -> dict[str, list[float]]:
    """Container Insights series whose CPU demand (utilisation x nodes x 2 vCPU, as the
    forecaster derives it) is `cpu_demand`, on nodes sized to run it at about 70%."""
    zone = ZoneInfo(cluster.schedule.time_zone if cluster.schedule else "UTC")
    demand = [cpu_demand(cluster.name, hour, zone, load_test_window(now, zone)) for hour in hours]
    nodes = [float(max(1, math.ceil(vcpus / (NODE_VCPUS * 0.7)))) for vcpus in demand]
    cpu = [
        round(100 * vcpus / (count * NODE_VCPUS), 3)
        for vcpus, count in zip(demand, nodes, strict=True)
    ]
    return {
        "node_cpu_utilization": cpu,
        "node_memory_utilization": [round(20 + 0.5 * value, 3) for value in cpu],
        "cluster_node_count": nodes,
        "pod_number_of_running_pods": [round(8 + 4 * vcpus) for vcpus in demand],
    }


def _put_stale_resources(ec2: Any, vpc_id: str, account_id: str) -> None:
    """Old snapshots and a forgotten volume for cleanup, a tagged volume for backup, port 22."""
    zone = f"{ec2.meta.region_name}a"
    ec2.create_volume(
        AvailabilityZone=zone,
        Size=100,
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "backup", "Value": "daily"}]}
        ],
    )
    volume = ec2.create_volume(AvailabilityZone=zone, Size=20)
    snapshots = [
        ec2.create_snapshot(VolumeId=volume["VolumeId"], Description=f"nightly copy {index}")
        for index in range(3)
    ]
    forgotten = ec2.create_volume(AvailabilityZone=zone, Size=50)
    _age_in_moto(
        ec2,
        account_id,
        snapshot_ids=[snapshot["SnapshotId"] for snapshot in snapshots],
        volume_ids=[forgotten["VolumeId"]],
    )
    group = ec2.create_security_group(
        GroupName="legacy-bastion", Description="left open by hand", VpcId=vpc_id
    )
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )


def _age_in_moto(
    ec2: Any, account_id: str, *, snapshot_ids: list[str], volume_ids: list[str]
) -> None:
    """Make the stale resources as old as stale resources are (the server runs in this process).

    EC2 has no API to set a creation time, so the demo's world is aged in moto's own records.
    """
    from moto.ec2.models import ec2_backends  # noqa: PLC0415 - only once the server runs

    backend = ec2_backends[account_id][ec2.meta.region_name]
    for snapshot_id in snapshot_ids:
        backend.snapshots[snapshot_id].start_time -= timedelta(days=STALE_AGE_DAYS)
    for volume_id in volume_ids:
        backend.volumes[volume_id].create_time -= timedelta(days=STALE_AGE_DAYS)


COST_SERVICES = (
    ("Amazon Elastic Compute Cloud - Compute", 410.0),
    ("Amazon Elastic Container Service for Kubernetes", 73.0),
    ("AWS Lambda", 4.2),
)
COMPUTE_SPIKE = 380.0
"""Extra compute cost on the spike day: a node group left at full size overnight and more."""
MEMBER_SHARE = 0.92
"""Share of each day's cost in the member account; the rest is the hub's."""
TAGGED_SHARE = 0.85
"""Share of each day's cost that carries a cluster tag, the same for each cluster."""


@dataclass(frozen=True)
class SeededCosts:
    """The organisation's daily cost by service, a weekly rhythm with one compute spike, as
    Cost Explorer would answer it for any period and grouping the functions ask for."""

    spike_day: date
    hub_account_id: str
    member_account_id: str
    cluster_names: tuple[str, ...]

    def daily_cost(self, day: date) -> dict[str, float]:
        """Cost by service of `day`."""
        spike = COMPUTE_SPIKE if day == self.spike_day else 0.0
        rhythm = 25.0 * math.sin(2 * math.pi * (day.toordinal() % 7) / 7)
        return {
            service: round(amount + (rhythm + spike if "Compute" in service else 0.0), 2)
            for service, amount in COST_SERVICES
        }

    def daily_by_account(self, day: date) -> dict[str, float]:
        """Cost by linked account of `day`."""
        total = sum(self.daily_cost(day).values())
        return {
            self.member_account_id: round(total * MEMBER_SHARE, 2),
            self.hub_account_id: round(total * (1 - MEMBER_SHARE), 2),
        }

    def cluster_cost(self, day: date) -> float:
        """The cost of `day` that carries one cluster's tag (each cluster's is the same)."""
        total = sum(self.daily_cost(day).values())
        return round(total * TAGGED_SHARE / max(1, len(self.cluster_names)), 2)

    def daily_by_cluster(self, day: date) -> dict[str, float]:
        """Cost by cluster tag value of `day` ("" for the cost without the tag); two clusters
        of one name share their tag value, so their costs add up under it."""
        each = self.cluster_cost(day)
        tagged: dict[str, float] = {}
        for name in self.cluster_names:
            tagged[name] = round(tagged.get(name, 0.0) + each, 2)
        untagged = sum(self.daily_cost(day).values()) - each * len(self.cluster_names)
        return {**tagged, "": round(untagged, 2)}

    def _split(self, group_by: dict[str, str], day: date) -> dict[str, float]:
        if group_by == {"Type": "DIMENSION", "Key": "SERVICE"}:
            return self.daily_cost(day)
        if group_by == {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}:
            return self.daily_by_account(day)
        if group_by.get("Type") == "TAG":
            # Most cost carries the cluster tag; what does not comes back as `<key>$`.
            key = group_by["Key"]
            return {f"{key}${name}": cost for name, cost in self.daily_by_cluster(day).items()}
        return {}

    def answer(self, body: str) -> dict[str, Any]:
        """GetCostAndUsage for `body`: one period per day (DAILY) or month (MONTHLY) of its
        TimePeriod, the total or the groups of its first GroupBy, in its first metric. Every
        cost is usage: a second GroupBy by RECORD_TYPE adds the key `Usage` to each group."""
        request = json.loads(body or "{}")
        first = date.fromisoformat(request["TimePeriod"]["Start"])
        last = date.fromisoformat(request["TimePeriod"]["End"])
        metric = (request.get("Metrics") or ["UnblendedCost"])[0]
        group_by = (request.get("GroupBy") or [None])[0]
        record_types = (request.get("GroupBy") or [{}])[-1].get("Key") == "RECORD_TYPE"
        monthly = request.get("Granularity") == "MONTHLY"
        periods: dict[date, dict[str, float]] = {}
        ends: dict[date, date] = {}
        day = first
        while day < last:
            period_start = day.replace(day=1) if monthly else day
            split = (
                self._split(group_by, day) if group_by else {"": sum(self.daily_cost(day).values())}
            )
            totals = periods.setdefault(period_start, {})
            for key, amount in split.items():
                totals[key] = totals.get(key, 0.0) + amount
            day += timedelta(days=1)
            ends[period_start] = day
        return {
            "ResultsByTime": [
                _period(
                    start,
                    ends[start],
                    totals,
                    metric,
                    grouped=group_by is not None,
                    record_types=record_types,
                )
                for start, totals in periods.items()
            ],
            "DimensionValueAttributes": [],
        }


def _period(
    start: date,
    end: date,
    totals: dict[str, float],
    metric: str,
    *,
    grouped: bool,
    record_types: bool,
) -> dict[str, Any]:
    def amount(value: float) -> dict[str, dict[str, str]]:
        return {metric: {"Amount": f"{value:.2f}", "Unit": "USD"}}

    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Total": {} if grouped else amount(sum(totals.values())),
        "Groups": (
            [
                {"Keys": [key, "Usage"] if record_types else [key], "Metrics": amount(value)}
                for key, value in totals.items()
            ]
            if grouped
            else []
        ),
        "Estimated": False,
    }


def serve_seeded_costs(costs: SeededCosts) -> None:
    """Make the hub's Cost Explorer answer from `costs` (the server runs in this process).

    moto answers GetCostAndUsage from a queue of canned results, one per distinct request body,
    reused for the same body: answers would follow the order of calls, not what each asks. The
    hub's backend (the account the functions' role acts in) answers each request instead.
    """
    from moto.ce.models import ce_backends  # noqa: PLC0415 - only once the server runs

    ce_backends[costs.hub_account_id]["global"].get_cost_and_usage = costs.answer


SPOT_DISCOUNTS = {"m7g": 0.58, "m6g": 0.66, "c7g": 0.61, "c6g": 0.69, "r7g": 0.55, "r6g": 0.63}
"""Typical spot discount off on-demand by instance family; other families get DEFAULT_DISCOUNT."""
DEFAULT_DISCOUNT = 0.6
ZONE_PRICE_FACTORS = {"a": 1.0, "b": 1.07, "c": 0.94}
"""How much dearer each zone's spot pool runs than zone a (zone b is the busy one)."""
ZONE_VOLATILITY = {"a": 0.015, "b": 0.06, "c": 0.03}
"""Standard deviation of each price change, as a share of the price."""
SPOT_ON_DEMAND_BASE = {"m7g": 0.0858, "m6g": 0.0808, "c7g": 0.0722, "c6g": 0.068, "r7g": 0.1079}
"""On-demand USD/hour of the `large` size in ap-south-1 (the bundled price table's figures)."""
SPOT_PRICE_CHANGE_HOURS = 6
SPOT_HISTORY_DAYS = 30
SPOT_REVERSION = 0.85
"""Share of a pool's deviation from its level that is left after each price change."""


@dataclass(frozen=True)
class SeededSpotPrices:
    """Spot price history by instance type and zone, as EC2 publishes it: a price per pool that
    changes every few hours by a small step, each pool at its own level, drift and volatility.

    The figures are deterministic (seeded by type and zone) and plausible, not real prices.
    """

    places: frozenset[tuple[str, str]]
    """(account id, region) pairs whose EC2 answers from this history."""
    end: datetime

    def history(self, instance_type: str, zone: str) -> list[tuple[datetime, float]]:
        """(published at, USD/hour) of one pool, oldest first, up to `end`."""
        family, _, size = instance_type.partition(".")
        # A `large` costs the table's price; each size up doubles it, as EC2 prices do.
        steps = {"medium": -1, "large": 0, "xlarge": 1}.get(size, 2)
        on_demand = SPOT_ON_DEMAND_BASE.get(family, 0.09) * 2.0**steps
        letter = zone[-1]
        level = on_demand * SPOT_DISCOUNTS.get(family, DEFAULT_DISCOUNT)
        level *= ZONE_PRICE_FACTORS.get(letter, 1.0)
        volatility = ZONE_VOLATILITY.get(letter, 0.03)
        randomness = random.Random(f"{instance_type}/{zone}")
        drift_per_day = randomness.uniform(-0.004, 0.006)
        first = self.end - timedelta(days=SPOT_HISTORY_DAYS)
        changes = SPOT_HISTORY_DAYS * 24 // SPOT_PRICE_CHANGE_HOURS
        # Deviations from the pool's level fade (mean reversion), as spot prices around supply.
        deviation = 0.0
        points = []
        for index in range(changes + 1):
            deviation = SPOT_REVERSION * deviation + randomness.gauss(0, volatility)
            days = index * SPOT_PRICE_CHANGE_HOURS / 24
            price = level * (1 + drift_per_day * days) * math.exp(deviation)
            price = min(max(price, on_demand * 0.25), on_demand * 0.95)
            published = first + timedelta(hours=index * SPOT_PRICE_CHANGE_HOURS)
            points.append((published, round(price, 4)))
        return points

    def answer(
        self, instance_types: list[str], zones: list[str], start: datetime, end: datetime
    ) -> list[dict[str, str]]:
        """DescribeSpotPriceHistory entries from `start` to `end`, with the price in effect at
        `start` (dated before it) as EC2 returns it, newest first."""
        entries = []
        for instance_type in instance_types:
            for zone in zones:
                points = self.history(instance_type, zone)
                earlier = [point for point in points if point[0] < start]
                inside = [point for point in points if start <= point[0] <= end]
                for published, price in [*earlier[-1:], *inside]:
                    entries.append(
                        {
                            "InstanceType": instance_type,
                            "ProductDescription": "Linux/UNIX",
                            "SpotPrice": f"{price:.6f}",
                            "AvailabilityZone": zone,
                            "Timestamp": published.astimezone(UTC).strftime(
                                "%Y-%m-%dT%H:%M:%S.000Z"
                            ),
                        }
                    )
        return sorted(entries, key=lambda entry: entry["Timestamp"], reverse=True)


@contextmanager
def serve_spot_prices(prices: SeededSpotPrices) -> Iterator[None]:
    """Make EC2 in `prices.places` answer DescribeSpotPriceHistory from `prices` (the server
    runs in this process); every other account and region is answered by moto.

    moto answers every pool with the same price (0.00001, dated 2006), so every spot score
    would be the same. The patch is removed on exit.
    """
    from moto.core.responses import ActionResult  # noqa: PLC0415 - only once the server runs
    from moto.ec2.responses import EC2Response  # noqa: PLC0415

    moto_answer = EC2Response.describe_spot_price_history

    def describe_spot_price_history(response: Any) -> Any:
        if (response.current_account, response.region) not in prices.places:
            return moto_answer(response)
        zone_filter = response._filters_from_querystring().get("availability-zone")
        zones = zone_filter or [f"{response.region}{letter}" for letter in ZONE_PRICE_FACTORS]
        start = response._get_param("StartTime")
        end = response._get_param("EndTime")
        history = prices.answer(
            response._get_param("InstanceTypes", []),
            zones,
            _utc(start) if start else prices.end - timedelta(days=1),
            _utc(end) if end else prices.end,
        )
        return ActionResult({"SpotPriceHistory": history})

    EC2Response.describe_spot_price_history = describe_spot_price_history
    try:
        yield
    finally:
        EC2Response.describe_spot_price_history = moto_answer


DESCRIBE_UPDATE_PATH = "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$"
"""EKS DescribeUpdate's route, which moto's EKS does not register."""


@contextmanager
def serve_eks_updates() -> Iterator[None]:
    """Make EKS answer DescribeUpdate (the server runs in this process): `Successful` for an
    update that UpdateNodegroupConfig started in the world, ResourceNotFoundException otherwise.

    moto's EKS starts every node group update as `Successful` (it changes the config at once)
    but keeps no record of it and has no DescribeUpdate, so change_validator could never learn
    that the update finished. Enter before the first EKS request: the server reads EKS's routes
    then. The patch is removed on exit.
    """
    from moto.core.responses import ActionResult  # noqa: PLC0415 - only once the server runs
    from moto.eks import urls  # noqa: PLC0415
    from moto.eks.exceptions import ResourceNotFoundException  # noqa: PLC0415
    from moto.eks.responses import EKSResponse  # noqa: PLC0415

    moto_update = EKSResponse.update_nodegroup_config
    started: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    def update_nodegroup_config(response: Any) -> Any:
        answer = moto_update(response)
        update = answer.result["update"]
        cluster = response._get_param("name")
        started[response.current_account, response.region, cluster, update["id"]] = update
        return answer

    def describe_update(response: Any) -> Any:
        key = (
            response.current_account,
            response.region,
            response._get_param("name"),
            response._get_param("updateId"),
        )
        if key not in started:
            raise ResourceNotFoundException(
                clusterName=key[2], message=f"No update found for ID: {key[3]}"
            )
        return ActionResult({"update": started[key]})

    urls.url_paths[DESCRIBE_UPDATE_PATH] = urls.response.dispatch
    EKSResponse.update_nodegroup_config = update_nodegroup_config
    EKSResponse.describe_update = describe_update
    try:
        yield
    finally:
        EKSResponse.update_nodegroup_config = moto_update
        del EKSResponse.describe_update
        del urls.url_paths[DESCRIBE_UPDATE_PATH]


def _utc(timestamp: str | datetime) -> datetime:
    """A request's timestamp (moto parses them into naive UTC datetimes) as an aware one."""
    moment = timestamp if isinstance(timestamp, datetime) else datetime.fromisoformat(timestamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def demo_now() -> datetime:
    return datetime.now(UTC)
