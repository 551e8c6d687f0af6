"""Stack settings: the validated model of `Pulumi.<stack>.yaml`.

Every rule a platform engineer can break in a stack file is checked here, before any resource is
registered, and reported as one `StackSettingsError` that names the stack and the field path:
values one at a time (`value_checks`), a cluster (`cluster_settings`), the accounts
(`account_settings`), the whole file and the checks across its parts (`fleet_settings`), and
loading it with one message per problem (`loading`).
"""

from __future__ import annotations

from components.settings.account_settings import (
    REGION_PLACEHOLDER,
    CreatedNetwork,
    HubSettings,
    MemberSettings,
    NetworkSettings,
    StackReferenceNetwork,
)
from components.settings.cluster_settings import (
    CLUSTER_SETTING_READERS,
    CREATION_ONLY_NODE_GROUP_FIELDS,
    PREDICTIVE_MODE_FUNCTIONS,
    CalendarSettings,
    ClusterSettings,
    NodeGroupSettings,
    ScheduleSettings,
)
from components.settings.fleet_settings import (
    BLOCKS_READ_ONLY_BY_FUNCTION,
    CLEANUP_FUNCTION,
    FleetSettings,
    email_resource_suffix,
)
from components.settings.loading import load_settings, misspelt_namespace, settings_document
from components.settings.value_checks import PROJECT, WEEKDAYS, instance_architecture

__all__ = [
    "BLOCKS_READ_ONLY_BY_FUNCTION",
    "CLEANUP_FUNCTION",
    "CLUSTER_SETTING_READERS",
    "CREATION_ONLY_NODE_GROUP_FIELDS",
    "PREDICTIVE_MODE_FUNCTIONS",
    "PROJECT",
    "REGION_PLACEHOLDER",
    "WEEKDAYS",
    "CalendarSettings",
    "ClusterSettings",
    "CreatedNetwork",
    "FleetSettings",
    "HubSettings",
    "MemberSettings",
    "NetworkSettings",
    "NodeGroupSettings",
    "ScheduleSettings",
    "StackReferenceNetwork",
    "email_resource_suffix",
    "instance_architecture",
    "load_settings",
    "misspelt_namespace",
    "settings_document",
]
