"""lambda-fleet: load and validate the stack's settings, build the fleet, export its outputs."""

from __future__ import annotations

import pulumi

from catalog.functions import FUNCTIONS
from components.exceptions import StackSettingsError
from components.fleet import Fleet, FleetArgs
from components.naming import FLEET_COMPONENT, member_role_name
from components.providers import REQUIRED_PULUMI_CLI
from components.stack_config import archive_runtime_python, load_stack_settings

# Before anything is registered: an older CLI would replace IAM that changes provider.
pulumi.require_pulumi_version(REQUIRED_PULUMI_CLI)

try:
    settings = load_stack_settings()
    runtime_python = archive_runtime_python(settings, pulumi.get_stack())
except StackSettingsError as error:
    # RunError ends the program with this one message instead of a traceback.
    raise pulumi.RunError(str(error)) from None

fleet = Fleet(
    FLEET_COMPONENT,
    FleetArgs(settings=settings, stack=pulumi.get_stack(), runtime_python=runtime_python),
)

pulumi.export("hub_account_id", settings.hub.account_id)
pulumi.export("hub_region", settings.hub.region)
pulumi.export(
    "networks",
    {
        f"{account_id}/{region}": {
            "vpc_id": network.vpc_id,
            "private_subnet_ids": network.private_subnet_ids,
        }
        for (account_id, region), network in sorted(fleet.networks.items())
    },
)
pulumi.export(
    "member_role_names",
    {
        spec.name: member_role_name(pulumi.get_stack(), spec.name)
        for spec in settings.enabled_functions(FUNCTIONS)
        if spec.acts_in_members
    },
)
pulumi.export(
    "clusters",
    {
        member.account_id: {
            cluster.name: {
                "region": member.cluster_region(cluster),
                "existing": cluster.existing,
                "node_groups": [group.name for group in cluster.node_groups],
            }
            for cluster in member.clusters
        }
        for member in settings.members
    },
)

hub = fleet.hub
pulumi.export("data_bucket", hub.buckets.data_bucket.bucket)
pulumi.export("state_table", hub.state_table.table.name)
pulumi.export(
    "alert_topic_arns", {severity: topic.arn for severity, topic in hub.alerts.topics.items()}
)
pulumi.export("email_topic_arn", hub.alerts.email_topic.arn)
pulumi.export(
    "functions",
    {
        spec_name: {"name": function.function.name, "arn": function.function.arn}
        for spec_name, function in sorted(hub.functions.items())
    },
)
pulumi.export(
    "http_api_endpoint", hub.triggers.http_api.api_endpoint if hub.triggers.http_api else None
)
pulumi.export("shared_layer_arn", hub.layer.arn)
pulumi.export("dashboard_name", hub.dashboard.dashboard.dashboard_name)
