"""Stack settings: both stack files load, and every rule rejects bad input naming the field."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.loaders
import pytest

from catalog import FUNCTIONS
from components.exceptions import StackSettingsError
from components.settings import FleetSettings, instance_architecture, load_settings
from components.settings.value_checks import COMMERCIAL_REGIONS
from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import REPO_ROOT, read_stack_file, run_program


def test_dev_stack_loads_with_one_hub_one_member_and_one_cluster(stack_settings_document):
    # GIVEN the dev stack file WHEN it is validated
    settings = load_settings("dev", stack_settings_document("dev"))
    # THEN it describes one member with one cluster that has an on-demand group
    assert isinstance(settings, FleetSettings)
    assert len(settings.members) == 1
    assert [cluster.name for cluster in settings.members[0].clusters] == ["dev-apps"]
    assert settings.members[0].clusters[0].schedule.time_zone == "Asia/Kolkata"


def test_prod_stack_spans_three_members_and_two_regions(stack_settings_document):
    settings = load_settings("prod", stack_settings_document("prod"))
    regions = {region for member in settings.members for region in member.regions}
    assert len(settings.members) == 3
    assert regions == {"ap-south-1", "eu-west-1"}
    spot_groups = [
        group
        for member in settings.members
        for cluster in member.clusters
        for group in cluster.node_groups
        if group.capacity_type == "SPOT"
    ]
    assert all(len(group.instance_types) >= 3 for group in spot_groups)


def test_floors_default_to_one_for_on_demand_and_zero_for_spot(stack_settings_document):
    settings = load_settings("dev", stack_settings_document("dev"))
    floors = {
        group.name: group.effective_floor for group in settings.members[0].clusters[0].node_groups
    }
    assert floors == {"system": 1, "batch-spot": 0}


def test_a_minimal_stack_file_takes_the_defaults_the_readme_documents():
    # GIVEN a stack file with only what the README's settings table marks required (and a
    # schedule that names only its off-hours size, a health endpoint only its name and url)
    document = {
        "hub": {
            "account_id": "111111111111",
            "name": "hub",
            "deploy_role_arn": "arn:aws:iam::111111111111:role/deploy",
            "region": "ap-south-1",
        },
        "members": [
            {
                "account_id": "222222222222",
                "name": "apps",
                "deploy_role_arn": "arn:aws:iam::222222222222:role/deploy",
                "regions": ["ap-south-1"],
                "network": {"stack_reference": "acme/network/apps-{region}"},
                "clusters": [
                    {
                        "name": "apps",
                        "kubernetes_version": "1.33",
                        "node_groups": [
                            {
                                "name": "system",
                                "capacity_type": "ON_DEMAND",
                                "instance_types": ["m7g.large"],
                                "min_size": 1,
                                "desired_size": 2,
                                "max_size": 4,
                            }
                        ],
                        "schedule": {"off_hours_desired": {"system": 1}},
                        "health_endpoints": [{"name": "api", "url": "https://api.example.com"}],
                    }
                ],
            }
        ],
        "managed_layers": {
            "powertools": {"ap-south-1": "arn:aws:lambda:ap-south-1:017000801446:layer:P:1"},
            "aws_sdk_pandas": {"ap-south-1": "arn:aws:lambda:ap-south-1:336392948345:layer:S:1"},
        },
    }
    # WHEN it is validated
    settings = load_settings("minimal", document)
    # THEN every setting left out has the default in the README's settings table
    member = settings.members[0]
    (cluster,) = member.clusters
    (group,) = cluster.node_groups
    assert (member.network.vpc_id_output, member.network.private_subnet_ids_output) == (
        "vpcId",
        "privateSubnetIds",
    )
    assert member.cluster_region(cluster) == "ap-south-1"
    assert (cluster.existing, cluster.autoscaler, cluster.endpoint_public_access_cidrs) == (
        False,
        "none",
        [],
    )
    assert (group.effective_floor, group.disk_size_gb, group.labels, group.taints) == (
        1,
        50,
        {},
        [],
    )
    schedule = cluster.schedule
    assert (schedule.time_zone, schedule.scale_up_time, schedule.scale_down_time) == (
        "Asia/Kolkata",
        "08:00",
        "18:00",
    )
    assert schedule.days == ["MON", "TUE", "WED", "THU", "FRI"]
    assert schedule.exclude_node_groups == []
    (endpoint,) = cluster.health_endpoints
    assert (endpoint.timeout_seconds, endpoint.expected_status) == (5, 200)
    assert cluster.scaling.mode == "schedule"
    assert settings.calendar.holidays == settings.calendar.working_days == []
    assert settings.calendar.maintenance_windows == []
    alerts = settings.alerts
    assert (alerts.emails, alerts.slack_webhook_secret_name) == ([], None)
    assert alerts.pagerduty_routing_key_secret_name is None
    assert (settings.tags, settings.dry_run, settings.schedule_time_zone) == (
        {},
        False,
        "Asia/Kolkata",
    )
    assert settings.enabled_functions(FUNCTIONS) == FUNCTIONS
    assert settings.cleanup_policy().mode == "notify"
    assert len(settings.cleanup_policy().resources) == 3
    assert settings.function_memory_mb("eks_scaler") is None
    validation = settings.change_validation()
    assert (validation.bake_minutes, validation.restore_scaler_changes) == (15, False)
    cost = settings.cost_report
    assert (cost.query_engine, cost.cur_bucket, cost.cur_prefix) == ("pandas", None, "cur/")
    assert cost.export_account_ids is None
    assert cost.export_delivery_account_ids(settings.hub.account_id) == (settings.hub.account_id,)
    assert (cost.athena_database, cost.athena_table) == (None, None)
    assert (settings.bytecode, settings.tracing) == ("auto", "active")


def test_a_created_network_spans_three_zones_unless_told(stack_settings_document):
    # GIVEN the dev stack file with a created network that names only its range
    document = stack_settings_document("dev")
    document["members"][0]["network"] = {"create": True, "cidr": "10.40.0.0/16"}
    # WHEN it is validated THEN the network spans the README's default of three zones
    settings = load_settings("dev", document)
    assert settings.members[0].network.availability_zones == 3


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    """Set `members.0.clusters.0.name`-style paths; a value of DELETE removes the key."""
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value


DELETE = object()
GROUP = "members.0.clusters.0.node_groups.0"

INVALID_SETTINGS = [
    # (id, path to change, new value, expected field path, expected words in the problem)
    ("short-account-id", "hub.account_id", "12345", "hub.account_id", "12 digits"),
    (
        "account-id-not-digits",
        "members.0.account_id",
        "22222222222x",
        "members[0].account_id",
        "12 digits",
    ),
    (
        "bad-role-arn",
        "hub.deploy_role_arn",
        "lambda-fleet-deploy",
        "hub.deploy_role_arn",
        "IAM role ARN",
    ),
    (
        "role-in-china-partition",
        "hub.deploy_role_arn",
        "arn:aws-cn:iam::111111111111:role/lambda-fleet-deploy",
        "hub.deploy_role_arn",
        "partition 'aws-cn'; the fleet supports the commercial partition",
    ),
    (
        "govcloud-region",
        "members.0.regions.0",
        "us-gov-west-1",
        "members[0].regions[0]",
        "'us-gov-west-1' is not in the commercial partition",
    ),
    (
        "china-region",
        "hub.region",
        "cn-north-1",
        "hub.region",
        "'cn-north-1' is not in the commercial partition",
    ),
    (
        # A region of the right shape that AWS does not have passed, to fail at the providers.
        "region-not-known",
        "members.0.regions.0",
        "eu-wset-1",
        "members[0].regions[0]",
        "unknown region 'eu-wset-1'; did you mean 'eu-west-1'?",
    ),
    (
        # A misspelt hub region was blamed on the managed layers, which have no ARN for it.
        "hub-region-misspelt",
        "hub.region",
        "ap-sout-1",
        "hub.region",
        "unknown region 'ap-sout-1'; did you mean 'ap-south-1'?",
    ),
    (
        "region-unlike-any-region",
        "hub.region",
        "xx-nowhere-1",
        "hub.region",
        "unknown region 'xx-nowhere-1': not one of AWS's commercial regions (such as ap-south-1)",
    ),
    (
        # pydantic's patterns take any script's digits for `\d`: Arabic-Indic digits passed as
        # an account id (and its role, in the same digits) until AWS refused the ARNs.
        "account-id-in-arabic-indic-digits",
        "members.0.account_id",
        "\u0662" * 12,
        "members[0].account_id",
        "an AWS account id is 12 digits",
    ),
    (
        "layer-version-in-fullwidth-digits",
        "managed_layers.powertools.ap-south-1",
        "arn:aws:lambda:ap-south-1:017000801446:layer:Powertools:\uff12\uff17",
        "managed_layers.powertools.ap-south-1",
        "expected a Lambda layer version ARN",
    ),
    (
        # Accepted by the pattern, then a traceback where the inventory reads the time.
        "clock-time-in-arabic-indic-digits",
        "members.0.clusters.0.schedule.scale_up_time",
        "0\u0668:00",
        "members[0].clusters[0].schedule.scale_up_time",
        "times are HH:MM on a 24-hour clock",
    ),
    (
        "instance-type-in-arabic-indic-digits",
        f"{GROUP}.instance_types.0",
        "m\u0667g.large",
        "members[0].clusters[0].node_groups[0].instance_types[0]",
        "is not an EC2 instance type",
    ),
    (
        # Pulumi's stack names are ASCII letters, digits, `_`, `.` and `-`.
        "stack-reference-with-a-non-ascii-letter",
        "members.0.network.stack_reference",
        "acme/netw\u00f6rk/dev-{region}",
        "members[0].network.stack_reference",
        "expected a Pulumi stack reference such as acme/network/dev",
    ),
    (
        # YAML reads an unquoted id as a number; quoting one of 13 digits would not make it one.
        "account-id-number-of-thirteen-digits",
        "members.0.account_id",
        2222222222222,
        "members[0].account_id",
        "expected a 12-digit account id as text, got the number 2222222222222, which has 13 digits",
    ),
    (
        # pydantic's message for a length checked after a validator spoke of "items".
        "empty-network-output-name",
        "members.0.network.vpc_id_output",
        "",
        "members[0].network.vpc_id_output",
        "String should have at least 1 character, got ''",
    ),
    (
        # Kubernetes keeps one taint per key and effect: a node registering with both is refused,
        # so the node group's nodes would never join the cluster.
        "taint-written-twice",
        f"{GROUP}.taints",
        [{"key": "dedicated", "value": "gpu", "effect": "NO_SCHEDULE"}] * 2,
        "members[0].clusters[0].node_groups[0].taints[1]",
        "duplicate taint 'dedicated' with effect NO_SCHEDULE",
    ),
    (
        "taint-written-twice-after-one-of-another-effect",
        f"{GROUP}.taints",
        [
            {"key": "dedicated", "effect": "NO_SCHEDULE"},
            {"key": "dedicated", "effect": "NO_EXECUTE"},
            {"key": "dedicated", "value": "x", "effect": "NO_EXECUTE"},
        ],
        "members[0].clusters[0].node_groups[0].taints[2]",
        "duplicate taint 'dedicated' with effect NO_EXECUTE",
    ),
    (
        # Most likely a second type meant (m7g.xlarge), which the node group would never get.
        "instance-type-twice",
        f"{GROUP}.instance_types",
        ["m7g.large", "m6g.large", "m7g.large"],
        "members[0].clusters[0].node_groups[0].instance_types",
        "duplicate instance type 'm7g.large'",
    ),
    (
        # The kubelet refuses a node label in the kubernetes.io or k8s.io domains but for its
        # own prefixes: the group's nodes would never join the cluster.
        "label-in-the-kubernetes-domain",
        f"{GROUP}.labels",
        {"workload": "system", "node-role.kubernetes.io/worker": "true"},
        "members[0].clusters[0].node_groups[0].labels.node-role.kubernetes.io/worker",
        "label key 'node-role.kubernetes.io/worker' is in the kubernetes.io domain, which "
        "Kubernetes reserves",
    ),
    (
        "label-in-the-k8s-domain",
        f"{GROUP}.labels",
        {"k8s.io/team": "platform"},
        "members[0].clusters[0].node_groups[0].labels.k8s.io/team",
        "label key 'k8s.io/team' is in the k8s.io domain, which Kubernetes reserves",
    ),
    (
        # EKS refuses the node group (InvalidParameterException) after the cluster is created.
        "label-in-the-eks-domain",
        f"{GROUP}.labels",
        {"eks.amazonaws.com/capacityType": "SPOT"},
        "members[0].clusters[0].node_groups[0].labels.eks.amazonaws.com/capacityType",
        "label key 'eks.amazonaws.com/capacityType' is in the eks.amazonaws.com domain, which EKS "
        "reserves",
    ),
    (
        # YAML changes nothing in 1.33 written unquoted: the hint said "YAML reads 1.33 as 1.33".
        "unquoted-version-yaml-reads-as-written",
        "members.0.clusters.0.kubernetes_version",
        1.33,
        "members[0].clusters[0].kubernetes_version",
        'expected a version as text, got the number 1.33; quote it in YAML: "1.33"',
    ),
    (
        "role-in-other-account",
        "members.0.deploy_role_arn",
        "arn:aws:iam::999999999999:role/deploy",
        "members[0].deploy_role_arn",
        "not in account 222222222222",
    ),
    (
        "min-above-desired",
        f"{GROUP}.min_size",
        3,
        "members[0].clusters[0].node_groups[0].min_size",
        "above desired_size",
    ),
    (
        "desired-above-max",
        f"{GROUP}.desired_size",
        9,
        "members[0].clusters[0].node_groups[0].desired_size",
        "above max_size",
    ),
    (
        "negative-min",
        f"{GROUP}.min_size",
        -1,
        "members[0].clusters[0].node_groups[0].min_size",
        "greater than or equal to 0",
    ),
    (
        "unknown-time-zone",
        "members.0.clusters.0.schedule.time_zone",
        "Asia/Bombay-ish",
        "members[0].clusters[0].schedule.time_zone",
        "unknown time zone",
    ),
    (
        # GIVEN `localtime`, a file of this machine's zone database (a link to its own zone), not
        # an IANA time zone: EventBridge Scheduler and the functions would not read it as meant
        "machine-local-time-zone",
        "schedule_time_zone",
        "localtime",
        "schedule_time_zone",
        "unknown time zone",
    ),
    (
        # GIVEN `Factory`, the zone database's placeholder for "zone not yet set"
        "placeholder-time-zone",
        "members.0.clusters.0.schedule.time_zone",
        "Factory",
        "members[0].clusters[0].schedule.time_zone",
        "unknown time zone",
    ),
    (
        "time-not-hh-mm",
        "members.0.clusters.0.schedule.scale_down_time",
        "6pm",
        "members[0].clusters[0].schedule.scale_down_time",
        "HH:MM",
    ),
    (
        "time-out-of-range",
        "members.0.clusters.0.schedule.scale_up_time",
        "24:00",
        "members[0].clusters[0].schedule.scale_up_time",
        "HH:MM",
    ),
    (
        "no-on-demand-group",
        f"{GROUP}.capacity_type",
        "SPOT",
        "members[0].clusters[0].node_groups",
        "at least one ON_DEMAND",
    ),
    (
        "unsupported-kubernetes",
        "members.0.clusters.0.kubernetes_version",
        "1.21",
        "members[0].clusters[0].kubernetes_version",
        "not supported",
    ),
    (
        "kubernetes-below-the-supported-range",
        "members.0.clusters.0.kubernetes_version",
        "1.30",
        "members[0].clusters[0].kubernetes_version",
        "Kubernetes version '1.30' is not supported",
    ),
    (
        # EKS extended support of 1.31 ended on 2026-11-26: no cluster of it can be created.
        "kubernetes-past-its-extended-support",
        "members.0.clusters.0.kubernetes_version",
        "1.31",
        "members[0].clusters[0].kubernetes_version",
        "Kubernetes version '1.31' is not supported (1.32, 1.33, 1.34, 1.35)",
    ),
    (
        "kubernetes-above-the-supported-range",
        "members.0.clusters.0.kubernetes_version",
        "1.36",
        "members[0].clusters[0].kubernetes_version",
        "Kubernetes version '1.36' is not supported",
    ),
    (
        "unknown-key",
        f"{GROUP}.min",
        1,
        "members[0].clusters[0].node_groups[0].min",
        "unknown setting",
    ),
    ("unknown-top-level-key", "colour", "blue", "colour", "unknown setting"),
    (
        # The scaler takes no request naming more: the schedules' payloads name them all.
        "more-node-groups-than-a-scaler-request-takes",
        "members.0.clusters.0.node_groups",
        [
            {
                "name": f"group-{index}",
                "capacity_type": "ON_DEMAND",
                "instance_types": ["m7g.large"],
                "min_size": 1,
                "desired_size": 1,
                "max_size": 2,
            }
            for index in range(101)
        ],
        "members[0].clusters[0].node_groups",
        "at most 100 items",
    ),
    (
        "duplicate-node-group",
        "members.0.clusters.0.node_groups.1.name",
        "system",
        "members[0].clusters[0].node_groups",
        "duplicate node group name 'system'",
    ),
    (
        "duplicate-account",
        "hub",
        {
            "account_id": "222222222222",
            "name": "platform-hub",
            "deploy_role_arn": "arn:aws:iam::222222222222:role/lambda-fleet-deploy",
            "region": "ap-south-1",
        },
        "members",
        "duplicate account id '222222222222'",
    ),
    (
        "duplicate-account-name",
        "members.0.name",
        "platform-hub",
        "members",
        "duplicate account name",
    ),
    (
        "bad-capacity-type",
        f"{GROUP}.capacity_type",
        "RESERVED",
        "members[0].clusters[0].node_groups[0].capacity_type",
        "ON_DEMAND",
    ),
    ("no-regions", "members.0.regions", [], "members[0].regions", "at least 1 item"),
    (
        "duplicate-region",
        "members.0.regions",
        ["ap-south-1", "ap-south-1"],
        "members[0].regions",
        "duplicate region 'ap-south-1'",
    ),
    (
        "cluster-outside-regions",
        "members.0.clusters.0.region",
        "eu-west-1",
        "members[0].clusters[0].region",
        "not one of the account's regions",
    ),
    (
        "cluster-without-region-in-two-regions",
        "members.0.regions",
        ["ap-south-1", "eu-west-1"],
        "members[0].clusters[0].region",
        "required for cluster 'dev-apps': the account has 2 regions",
    ),
    (
        # As in exclude_node_groups: the group a misspelt name resembles is named.
        "off-hours-misspelt-group",
        "members.0.clusters.0.schedule.off_hours_desired",
        {"system": 1, "bach-spot": 0},
        "members[0].clusters[0].schedule.off_hours_desired.bach-spot",
        "unknown node group 'bach-spot'; did you mean 'batch-spot'?",
    ),
    (
        "off-hours-unknown-group",
        "members.0.clusters.0.schedule.off_hours_desired",
        {"gpu": 0},
        "members[0].clusters[0].schedule.off_hours_desired.gpu",
        "unknown node group",
    ),
    (
        "public-vpc-cidr",
        "members.0.network",
        {"create": True, "cidr": "8.8.0.0/16"},
        "members[0].network.cidr",
        "not a private range",
    ),
    (
        # GIVEN the link-local range, which Python calls private but is no RFC 1918 range a VPC
        # can hold (AWS keeps 169.254.0.0/16 for instance metadata)
        "link-local-vpc-cidr",
        "members.0.network",
        {"create": True, "cidr": "169.254.0.0/16"},
        "members[0].network.cidr",
        "not a private range",
    ),
    (
        "loopback-vpc-cidr",
        "members.0.network",
        {"create": True, "cidr": "127.0.0.0/16"},
        "members[0].network.cidr",
        "not a private range",
    ),
    (
        "vpc-cidr-wider-than-a-16",
        "members.0.network",
        {"create": True, "cidr": "10.0.0.0/12"},
        "members[0].network.cidr",
        "must be between /16 and /24",
    ),
    (
        "more-zones-than-a-created-network-may-span",
        "members.0.network",
        {"create": True, "cidr": "10.40.0.0/24", "availability_zones": 7},
        "members[0].network.availability_zones",
        "less than or equal to 6",
    ),
    (
        "mixed-architectures",
        f"{GROUP}.instance_types",
        ["m7g.large", "m6i.large"],
        "members[0].clusters[0].node_groups[0].instance_types",
        "a node group runs one architecture",
    ),
    (
        "no-instance-types",
        f"{GROUP}.instance_types",
        [],
        "members[0].clusters[0].node_groups[0].instance_types",
        "at least 1 item",
    ),
    (
        "too-many-instance-types",
        f"{GROUP}.instance_types",
        [f"m6i.{size}" for size in range(1, 22)],
        "members[0].clusters[0].node_groups[0].instance_types",
        "at most 20 items",
    ),
    (
        "world-open-endpoint",
        "members.0.clusters.0.endpoint_public_access_cidrs",
        ["0.0.0.0/0"],
        "members[0].clusters[0].endpoint_public_access_cidrs",
        "open the API endpoint",
    ),
    ("missing-hub", "hub", DELETE, "hub", "required setting is missing"),
    (
        "layer-missing-hub-region",
        "managed_layers.powertools",
        {"eu-west-1": "arn:aws:lambda:eu-west-1:017000801446:layer:P:1"},
        "managed_layers.powertools",
        "no ARN for the hub region",
    ),
    (
        # GIVEN the hub region's Powertools ARN copied from another region's list: Lambda
        # attaches only layers of the function's own region, so `pulumi up` would fail late
        "layer-of-another-region",
        "managed_layers.powertools.ap-south-1",
        "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:27",
        "managed_layers.powertools.ap-south-1",
        "eu-west-1",
    ),
    (
        # GIVEN a tag key with AWS's reserved prefix in capitals, which AWS refuses in any case
        "reserved-aws-tag-prefix-in-capitals",
        "tags",
        {"AWS:team": "x"},
        "tags",
        "which AWS reserves",
    ),
    (
        # GIVEN a label value longer than the 63 characters EKS and Kubernetes allow, which
        # CreateNodegroup would refuse after the cluster was created
        "label-value-too-long",
        f"{GROUP}.labels",
        {"workload": "w" * 64},
        "members[0].clusters[0].node_groups[0].labels.workload",
        "Kubernetes label values",
    ),
    (
        "label-value-with-a-space",
        f"{GROUP}.labels",
        {"workload": "batch jobs"},
        "members[0].clusters[0].node_groups[0].labels.workload",
        "Kubernetes label values",
    ),
    (
        "taint-value-too-long",
        "members.0.clusters.0.node_groups.1.taints",
        [{"key": "lifecycle", "value": "s" * 64, "effect": "NO_SCHEDULE"}],
        "members[0].clusters[0].node_groups[1].taints[0].value",
        "Kubernetes label values",
    ),
    (
        # GIVEN a label key whose prefix and name together pass EKS's 63 characters
        "label-key-longer-than-eks-allows",
        f"{GROUP}.labels",
        {"example.com/" + "k" * 60: "x"},
        # (a key longer than 40 characters is shown quoted and cut)
        "members[0].clusters[0].node_groups[0].labels."
        + repr("example.com/" + "k" * 60)[:37]
        + "...",
        "at most 63 characters",
    ),
    (
        # GIVEN the placeholder misspelt: `{regoin}` is never filled in, and braces are no
        # characters of a stack name, so every region's reference would fail at `pulumi up`
        "misspelt-region-placeholder",
        "members.0.network",
        {"stack_reference": "acme/network/dev-{regoin}"},
        "members[0].network.stack_reference",
        "{region}",
    ),
    (
        # GIVEN two health endpoints of one cluster under one name: the health monitor keeps an
        # endpoint's history and incident by its name, so one's success would resolve the
        # other's failure
        "health-endpoint-names-twice",
        "members.0.clusters.0.health_endpoints",
        [
            {"name": "api", "url": "https://api.dev.example.com/healthz"},
            {"name": "api", "url": "https://admin.dev.example.com/healthz"},
        ],
        "members[0].clusters[0].health_endpoints",
        "duplicate health endpoint name 'api'",
    ),
    ("reserved-tag", "tags", {"stack": "x"}, "tags", "set by the program"),
    ("bad-email", "alerts.emails", ["not-an-address"], "alerts.emails[0]", "not valid"),
    (
        "athena-without-table",
        "cost_report",
        {"query_engine": "athena", "athena_database": "cur"},
        "cost_report.athena_table",
        "query_engine athena needs athena_table",
    ),
    (
        # The pandas engine reads the CUR's files; nothing would read the Glue names.
        "athena-table-with-the-pandas-engine",
        "cost_report",
        {"athena_database": "cur", "athena_table": "cur_v2"},
        "cost_report.athena_database",
        "only query_engine athena reads athena_database, and query_engine is pandas: set "
        "query_engine: athena, or leave athena_database out",
    ),
    (
        # GIVEN the CUR left to the data bucket under a folder of the fleet's own: Data Exports
        # would write into raw/, which starts the report chain
        "cur-prefix-in-a-fleet-folder-of-the-data-bucket",
        "cost_report",
        {"cur_prefix": "raw/"},
        "cost_report.cur_prefix",
        "'raw/' is outside cur/",
    ),
    (
        # GIVEN an empty prefix: the service could write over every folder of the data bucket
        "cur-prefix-empty-in-the-data-bucket",
        "cost_report",
        {"cur_prefix": ""},
        "cost_report.cur_prefix",
        "name your own cur_bucket",
    ),
    (
        "cur-prefix-wildcard",
        "cost_report",
        {"cur_prefix": "cur/*"},
        "cost_report.cur_prefix",
        "not valid here",
    ),
    (
        # GIVEN an export account id one digit short: the data bucket and the fleet key would
        # admit no export of the account meant
        "export-account-id-eleven-digits",
        "cost_report",
        {"export_account_ids": ["12345678901"]},
        "cost_report.export_account_ids[0]",
        "12 digits",
    ),
    (
        "export-account-id-twice",
        "cost_report",
        {"export_account_ids": ["999999999999", "999999999999"]},
        "cost_report.export_account_ids",
        "duplicate account id '999999999999'",
    ),
    (
        # GIVEN an empty list: no export could deliver to the default location
        "export-accounts-empty",
        "cost_report",
        {"export_account_ids": []},
        "cost_report.export_account_ids",
        "at least 1",
    ),
    (
        # GIVEN export accounts beside a bucket of the user's: the program writes only its data
        # bucket's policy, so they would grant nothing, silently
        "export-accounts-with-the-users-bucket",
        "cost_report",
        {"cur_bucket": "acme-billing-cur", "export_account_ids": ["999999999999"]},
        "cost_report.export_account_ids",
        "only the default CUR location, the fleet's data bucket, reads export_account_ids",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [case[1:] for case in INVALID_SETTINGS],
    ids=[case[0] for case in INVALID_SETTINGS],
)
def test_invalid_setting_is_rejected_with_its_field_path(
    stack_settings_document: Callable[[str], dict[str, Any]],
    path: str,
    value: Any,
    field: str,
    problem: str,
) -> None:
    # GIVEN the dev settings with one rule broken
    document = copy.deepcopy(stack_settings_document("dev"))
    _set(document, path, value)
    # WHEN they are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the stack, the field path and the problem
    message = str(raised.value)
    assert raised.value.field == field, message
    assert message.startswith(f"Pulumi.dev.yaml: {field}: ")
    assert problem in message
    assert "\n" not in message


@pytest.mark.parametrize("prefix", ["", "raw/", "billing/cur2/"])
def test_a_cur_in_a_bucket_of_the_users_may_have_any_prefix(
    stack_settings_document: Callable[[str], dict[str, Any]], prefix: str
) -> None:
    # GIVEN the CUR in a bucket of the user's, under a prefix outside cur/ (the data bucket's
    # folders mean nothing there)
    document = copy.deepcopy(stack_settings_document("dev"))
    _set(document, "cost_report", {"cur_bucket": "acme-billing-cur", "cur_prefix": prefix})
    # WHEN they are validated THEN the prefix is kept
    assert load_settings("dev", document).cost_report.cur_prefix == prefix


def test_node_labels_of_the_kubelets_own_prefixes_and_other_domains_are_accepted(
    stack_settings_document: Callable[[str], dict[str, Any]],
) -> None:
    # GIVEN the dev settings with labels under node.kubernetes.io/ and kubelet.kubernetes.io/
    # (which the kubelet lets a node set on itself) and under another domain
    document = copy.deepcopy(stack_settings_document("dev"))
    labels = {
        "node.kubernetes.io/role": "system",
        "kubelet.kubernetes.io/pool": "a",
        "example.com/team": "platform",
    }
    _set(document, f"{GROUP}.labels", labels)
    # WHEN they are validated THEN the group keeps them
    group = load_settings("dev", document).members[0].clusters[0].node_groups[0]
    assert group.labels == labels


def test_a_node_group_of_twenty_instance_types_is_accepted(
    stack_settings_document: Callable[[str], dict[str, Any]],
) -> None:
    # GIVEN the dev settings with a node group of 20 x86 instance types, the README's most
    document = copy.deepcopy(stack_settings_document("dev"))
    types = [
        f"{family}.{size}"
        for family in ("m6i", "c6i", "r6i", "m5")
        for size in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge")
    ]
    _set(document, f"{GROUP}.instance_types", types)
    # WHEN they are validated THEN the group keeps all of them
    group = load_settings("dev", document).members[0].clusters[0].node_groups[0]
    assert group.instance_types == types


@pytest.mark.parametrize(("second_cluster_existing", "refused"), [(False, True), (True, False)])
def test_one_network_stack_is_refused_only_for_clusters_created_in_two_regions(
    stack_settings_document: Callable[[str], dict[str, Any]],
    second_cluster_existing: bool,
    refused: bool,
) -> None:
    # GIVEN an account in two regions whose network reference names one stack (a VPC is in one
    # region), with a second cluster in the other region, created or existing
    document = copy.deepcopy(stack_settings_document("dev"))
    member = document["members"][0]
    member["regions"] = ["ap-south-1", "eu-west-1"]
    member["network"] = {"stack_reference": "acme/network/dev"}
    member["clusters"][0]["region"] = "ap-south-1"
    second = copy.deepcopy(member["clusters"][0])
    second.update(name="dev-apps-eu", region="eu-west-1")
    if second_cluster_existing:
        second["existing"] = True
        second.pop("endpoint_public_access_cidrs", None)
        second.pop("kubernetes_version")
        for group in second["node_groups"]:
            for field in ("labels", "taints", "disk_size_gb"):
                group.pop(field, None)
    member["clusters"].append(second)
    # WHEN they are validated THEN one stack is refused when clusters are created in both
    # regions (the other's would get subnets they cannot use), and accepted when the second
    # region's cluster is existing (its region needs no network)
    if not refused:
        assert load_settings("dev", document).members[0].network_regions() == ["ap-south-1"]
        return
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    assert raised.value.field == "members[0].network.stack_reference"
    assert "{region}" in raised.value.problem


@pytest.mark.parametrize(
    ("path", "keys", "field"),
    [
        ("managed_layers.powertools", ["ap-south-x"], "managed_layers.powertools.ap-south-x"),
        (f"{GROUP}.labels", ["Bad Key"], "members[0].clusters[0].node_groups[0].labels.Bad Key"),
    ],
    ids=["layer-region-key", "node-label-key"],
)
def test_an_invalid_mapping_key_is_named_by_the_path_the_stack_file_has(
    stack_settings_document: Callable[[str], dict[str, Any]],
    path: str,
    keys: list[str],
    field: str,
) -> None:
    """GIVEN the dev settings with a mapping whose key breaks the key's rule (a region that is
    not one, a label key with a space)
    WHEN they are validated
    THEN the message names the key by its path in the stack file, without pydantic's `[key]`
    marker, which is no key of the file"""
    document = copy.deepcopy(stack_settings_document("dev"))
    node: Any = document
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    for key in keys:
        node[key] = next(iter(node.values()), "value")
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    assert raised.value.field == field, str(raised.value)
    assert "[key]" not in str(raised.value)


LONG = 5000
HOSTILE_SETTINGS = [
    # (id, path to change, new value, field the message names first)
    ("top-level-key-with-a-line-break", "dry\nrun", True, "'dry\\nrun'"),
    ("long-top-level-key", "x" * LONG, True, "'xxxxxxxx"),
    (
        "long-time-zone",
        "members.0.clusters.0.schedule.time_zone",
        "Asia/" + "K" * LONG,
        "members[0]",
    ),
    (
        "long-kubernetes-version",
        "members.0.clusters.0.kubernetes_version",
        "1." + "3" * LONG,
        "members[0]",
    ),
    ("long-cidr", "members.0.clusters.0.endpoint_public_access_cidrs", ["1" * LONG], "members[0]"),
    ("long-tracing-mode", "tracing", "detailed" * (LONG // 8), "tracing"),
    ("long-holiday", "calendar", {"holidays": ["2026-01-01" * (LONG // 10)]}, "calendar"),
    ("duplicate-long-email", "alerts.emails", ["a" * LONG + "@example.com"] * 2, "alerts"),
    # Refused for their partition, in a message that repeated all of them.
    ("long-china-region", "hub.region", "cn-" + "x" * LONG + "-1", "hub.region"),
    ("long-govcloud-region", "members.0.regions.0", "us-gov-" + "x" * LONG + "-1", "members[0]"),
    (
        "layer-arn-with-a-long-region",
        "managed_layers.powertools.ap-south-1",
        "arn:aws:lambda:ap-" + "x" * LONG + ":017000801446:layer:Powertools:27",
        "managed_layers.powertools.ap-south-1",
    ),
    (
        "long-instance-type-beside-another-architecture",
        "members.0.clusters.0.node_groups.0.instance_types",
        ["m7g.large", "m6i" + "x" * LONG + ".large"],
        "members[0]",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [case[1:] for case in HOSTILE_SETTINGS],
    ids=[case[0] for case in HOSTILE_SETTINGS],
)
def test_a_long_or_multi_line_key_or_value_is_echoed_as_a_short_prefix_on_one_line(
    stack_settings_document: Callable[[str], dict[str, Any]], path: str, value: Any, field: str
) -> None:
    # GIVEN the dev settings with a key or value of thousands of characters, or a line break
    document = copy.deepcopy(stack_settings_document("dev"))
    _set(document, path, value)
    # WHEN they are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one short line names the field and repeats at most a short prefix of what was written
    message = str(raised.value)
    assert message.startswith(f"Pulumi.dev.yaml: {field}"), message[:300]
    assert "\n" not in message, message[:300]
    assert len(message) <= 300, message[:300]


def test_a_functions_key_of_any_length_is_echoed_as_a_short_prefix_on_one_line(
    stack_settings_document: Callable[[str], dict[str, Any]],
) -> None:
    # GIVEN a `functions` entry whose name is thousands of characters with a line break
    document = copy.deepcopy(stack_settings_document("dev"))
    document["functions"]["eks_scaler\n" + "x" * LONG] = {"enabled": False}
    # WHEN the settings are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one short line names it under `functions`
    message = str(raised.value)
    assert message.startswith("Pulumi.dev.yaml: functions."), message[:300]
    assert "\n" not in message, message[:300]
    assert len(message) <= 600, message[:300]  # the known functions are listed


@pytest.mark.parametrize("version", ["1.32", "1.35"])
def test_the_ends_of_the_readmes_supported_kubernetes_range_are_accepted(
    stack_settings_document: Callable[[str], dict[str, Any]], version: str
) -> None:
    """GIVEN the dev settings with the cluster on the oldest or the newest version of the
    README's supported range (1.32-1.35; one beyond either end is refused in INVALID_SETTINGS)
    WHEN they are validated
    THEN they load with that version"""
    document = copy.deepcopy(stack_settings_document("dev"))
    document["members"][0]["clusters"][0]["kubernetes_version"] = version
    settings = load_settings("dev", document)
    assert settings.members[0].clusters[0].kubernetes_version == version


def test_node_groups_whose_joined_names_meet_are_refused_naming_the_second(
    stack_settings_document: Callable[[str], dict[str, Any]],
) -> None:
    """GIVEN the dev settings, whose cluster `dev-apps` has a node group `batch-spot`, and a
    second created cluster `dev-apps-batch` with a node group `spot`
    WHEN they are validated
    THEN they are refused naming the second group: `dev-apps` + `batch-spot` and
    `dev-apps-batch` + `spot` join into one resource name (a duplicate URN the engine would stop
    at, with no word about the stack file)"""
    document = copy.deepcopy(stack_settings_document("dev"))
    clusters = document["members"][0]["clusters"]
    first = clusters[0]
    assert [group["name"] for group in first["node_groups"]] == ["system", "batch-spot"]
    second = {key: value for key, value in first.items() if key != "schedule"}
    second["name"] = "dev-apps-batch"
    second["node_groups"] = [{**first["node_groups"][0], "name": "spot"}]
    clusters.append(second)
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    assert raised.value.field == "members[0].clusters[1].node_groups[0].name"
    assert "the resources of members[0].clusters[0].node_groups[1]" in raised.value.problem


def test_node_groups_of_existing_clusters_may_join_into_one_name(
    stack_settings_document: Callable[[str], dict[str, Any]],
) -> None:
    """GIVEN the same two clusters, the second one existing
    WHEN they are validated
    THEN they load: the program creates no node group of an existing cluster"""
    document = copy.deepcopy(stack_settings_document("dev"))
    clusters = document["members"][0]["clusters"]
    first = clusters[0]
    second = {
        key: value
        for key, value in first.items()
        if key not in ("schedule", "endpoint_public_access_cidrs", "kubernetes_version")
    }
    second.update(name="dev-apps-batch", existing=True)
    second["node_groups"] = [
        {
            key: value
            for key, value in {**first["node_groups"][0], "name": "spot"}.items()
            if key not in ("labels", "taints", "disk_size_gb")
        }
    ]
    clusters.append(second)
    assert len(load_settings("dev", document).members[0].clusters) == 2


def test_clusters_whose_joined_names_with_their_accounts_meet_are_refused(
    stack_settings_document: Callable[[str], dict[str, Any]],
) -> None:
    """GIVEN the dev settings, whose account `dev-workloads` has cluster `dev-apps`, and a second
    account `dev` with a cluster `workloads-dev-apps`
    WHEN they are validated
    THEN they are refused naming the second cluster: both join into `dev-workloads-dev-apps`,
    the name of the cluster's resources and schedules"""
    document = copy.deepcopy(stack_settings_document("dev"))
    first = document["members"][0]
    cluster = {**first["clusters"][0], "name": "workloads-dev-apps"}
    document["members"].append(
        {
            **first,
            "account_id": "333333333333",
            "name": "dev",
            "deploy_role_arn": "arn:aws:iam::333333333333:role/lambda-fleet-deploy",
            "clusters": [cluster],
        }
    )
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    assert raised.value.field == "members[1].clusters[0].name"
    assert "members[0].clusters[0]" in raised.value.problem


@pytest.mark.parametrize(
    "emails",
    [["ops@example.com", "Ops@Example.com"], ["ops.team@example.com", "ops-team@example.com"]],
    ids=["case", "punctuation"],
)
def test_alert_emails_that_would_share_one_subscription_name_are_refused(
    stack_settings_document: Callable[[str], dict[str, Any]], emails: list[str]
) -> None:
    """GIVEN the dev settings with two alert addresses that differ only in case or punctuation
    WHEN they are validated
    THEN they are refused at `alerts.emails`, naming both: each address's subscription is named
    after it in lower case with dashes, so both would get one URN and the engine would stop at
    the duplicate with no word about the stack file"""
    document = copy.deepcopy(stack_settings_document("dev"))
    document["alerts"] = {**document.get("alerts", {}), "emails": emails}
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    assert raised.value.field == "alerts.emails"
    assert all(repr(email) in raised.value.problem for email in emails)


def _broken_dev_config() -> dict[str, Any]:
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:members"][0]["clusters"][0]["node_groups"][1]["min_size"] = 5
    return config


def test_invalid_stack_file_fails_before_any_resource_is_registered(project_with_stack):
    # GIVEN a stack file whose spot group has min_size above desired_size
    project = project_with_stack("broken", _broken_dev_config())
    # WHEN the program runs
    with pytest.raises(ProgramFailedError) as raised:
        run_program("broken", project)
    # THEN it stops with the settings message and nothing but the stack was registered
    assert "members[0].clusters[0].node_groups[1].min_size" in str(raised.value)
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


def test_required_bytecode_without_the_runtimes_python_stops_before_any_resource_is_registered(
    project_with_stack, monkeypatch: pytest.MonkeyPatch
):
    """GIVEN the dev stack file with `bytecode: required`, on a machine where no Python 3.12 is
    found: LAMBDA_FLEET_RUNTIME_PYTHON unset, nothing on PATH, no pyenv versions
    WHEN the program runs
    THEN it stops with one line naming the setting, and nothing but the stack was registered
    (a URN's type is qualified by its parents' types: every resource's starts with the stack's)"""
    monkeypatch.delenv("LAMBDA_FLEET_RUNTIME_PYTHON", raising=False)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("PYENV_ROOT", "/nonexistent")
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:bytecode"] = "required"
    project = project_with_stack("required", config)
    with pytest.raises(ProgramFailedError) as raised:
        run_program("required", project)
    assert str(raised.value) == (
        "Pulumi.required.yaml: bytecode: no Python 3.12 found (LAMBDA_FLEET_RUNTIME_PYTHON, "
        "python3.12 on PATH, pyenv): install it or name it in LAMBDA_FLEET_RUNTIME_PYTHON"
    )
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


def test_fleetctl_reports_a_bad_stack_file_in_one_line_without_traceback(project_with_stack):
    project = project_with_stack("broken", _broken_dev_config())
    (project / "Pulumi.yaml").write_text("name: lambda-fleet\nruntime: python\n")
    completed = subprocess.run(
        [sys.executable, "-c", _CLI_IN_PROJECT, str(project), "broken"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "fleetctl: Pulumi.broken.yaml: members[0].clusters[0].node_groups[1].min_size: "
        "min_size 5 is above desired_size 2 (need min_size <= desired_size <= max_size)"
    ]


# fleetctl reads stack files from the repository; point it at the test's project instead.
_CLI_IN_PROJECT = """
import sys
from pathlib import Path
import fleetctl.cli as cli
cli.REPO_ROOT = Path(sys.argv[1])
sys.exit(cli.main(["plan", "--stack", sys.argv[2]]))
"""


def test_missing_stack_file_is_reported_by_name(tmp_path: Path):
    with pytest.raises(Exception, match=r"no stack file Pulumi\.qa\.yaml"):
        run_program("qa", tmp_path)


@pytest.mark.parametrize(
    ("instance_type", "architecture"),
    [
        ("m7g.large", "arm64"),
        ("c6gn.xlarge", "arm64"),
        ("r7gd.2xlarge", "arm64"),
        ("t4g.large", "arm64"),
        ("m6i.large", "x86_64"),
        ("c7a.xlarge", "x86_64"),
        ("g5.xlarge", "x86_64"),
    ],
)
def test_graviton_families_are_told_apart_from_x86(instance_type: str, architecture: str):
    assert instance_architecture(instance_type) == architecture


def test_the_regions_a_stack_file_may_name_are_botocores_commercial_regions() -> None:
    # GIVEN the regions of the commercial partition in botocore's partitions data (the SDK's own
    # list; `aws-global` is an endpoint, no region)
    partitions = botocore.loaders.create_loader().load_data("partitions")["partitions"]
    commercial = next(partition for partition in partitions if partition["id"] == "aws")
    botocore_regions = sorted(set(commercial["regions"]) - {"aws-global"})
    # WHEN they are compared with the regions the settings accept
    # THEN they are the same: a region AWS opened (with a newer botocore) is added here
    assert sorted(COMMERCIAL_REGIONS) == botocore_regions
