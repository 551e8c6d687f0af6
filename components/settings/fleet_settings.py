"""The whole stack file: alerts, layers, the cost report, the functions and their switches, the
checks that span them, and the fleet inventory built from it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from datetime import time
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from catalog.functions import FUNCTIONS_BY_NAME
from catalog.model import FunctionSpec
from components.bytecode import BYTECODE_MODES, BytecodeMode
from components.exceptions import FieldValueError
from components.settings.account_settings import HubSettings, MemberSettings
from components.settings.cluster_settings import (
    CLUSTER_SETTING_NOTES,
    CLUSTER_SETTING_READERS,
    PREDICTIVE_MODE_FUNCTIONS,
    SCHEDULE_MODE_UTILIZATION_READER,
    CalendarSettings,
    ClusterSettings,
    calendar_problem,
)
from components.settings.value_checks import (
    DEFAULT_TIME_ZONE,
    AccountId,
    BucketName,
    Email,
    GlueName,
    KeyPrefix,
    LayerArn,
    Region,
    SecretName,
    StrictModel,
    TimeZoneName,
    shown_key,
    unique_values,
    unknown_name_problem,
)
from fleet_shared.cleanup_policy import (
    LAMBDA_VERSIONS,
    SNAPSHOTS,
    VOLUMES,
    CleanupPolicy,
    ResourceKind,
)
from fleet_shared.inventory import (
    Cluster,
    ClusterCalendar,
    ClusterScaling,
    FleetInventory,
    HubAccount,
    MaintenanceWindow,
    MemberAccount,
    NodeGroup,
    ScalingSchedule,
)
from fleet_shared.inventory import HealthEndpoint as InventoryHealthEndpoint
from fleet_shared.validation_errors import shown_value


def email_resource_suffix(address: str) -> str:
    """The suffix of an address's subscription resource name: stable per address, so reordering
    the list changes nothing."""
    return re.sub(r"[^a-z0-9]+", "-", address.lower()).strip("-")


class AlertSettings(StrictModel):
    emails: list[Email] = Field(default_factory=list)
    slack_webhook_secret_name: SecretName | None = None
    pagerduty_routing_key_secret_name: SecretName | None = None

    @field_validator("emails")
    @classmethod
    def _emails_unique(cls, emails: list[str]) -> list[str]:
        unique_values(emails, "email address")
        # Two addresses that differ only in case or punctuation would name one resource.
        named: dict[str, str] = {}
        for email in emails:
            earlier = named.setdefault(email_resource_suffix(email), email)
            if earlier != email:
                raise ValueError(
                    f"email addresses {shown_value(earlier)} and {shown_value(email)} differ only "
                    "in case or punctuation, which gives both one subscription name; list one of "
                    "them"
                )
        return emails


class ManagedLayerSettings(StrictModel):
    """ARNs of the AWS-managed layers per region; third-party libraries are never bundled."""

    powertools: dict[Region, LayerArn] = Field(min_length=1)
    aws_sdk_pandas: dict[Region, LayerArn] = Field(min_length=1)

    @model_validator(mode="after")
    def _each_layer_in_its_region(self) -> Self:
        # Lambda attaches only layers of the function's own region: an ARN copied from another
        # region's list would fail `pulumi up` after much else was created.
        for layer_name in ("powertools", "aws_sdk_pandas"):
            for region, arn in getattr(self, layer_name).items():
                layer_region = arn.split(":")[3]
                if layer_region != region:
                    raise FieldValueError(
                        f"{layer_name}.{region}",
                        f"the layer is in region {shown_value(layer_region)}, not {region}; "
                        "Lambda attaches only layers of the function's own region",
                    )
        return self


DATA_BUCKET_CUR_FOLDER = "cur/"
"""The data bucket's folder for the CUR, when the stack leaves `cost_report.cur_bucket` to it."""


class CostReportSettings(StrictModel):
    """Where the cost analyzer reads the Cost and Usage Report, and with which engine."""

    query_engine: Literal["pandas", "athena"] = "pandas"
    cur_bucket: BucketName | None = None  # None: the fleet's data bucket
    cur_prefix: KeyPrefix = DATA_BUCKET_CUR_FOLDER
    # Accounts whose Data Exports export delivers into the data bucket; None: the hub account.
    export_account_ids: list[AccountId] | None = Field(default=None, min_length=1)
    athena_database: GlueName | None = None
    athena_table: GlueName | None = None

    @field_validator("export_account_ids")
    @classmethod
    def _export_accounts_unique(cls, accounts: list[str] | None) -> list[str] | None:
        if accounts is not None:
            unique_values(accounts, "account id")
        return accounts

    @model_validator(mode="after")
    def _export_accounts_only_for_the_data_bucket(self) -> Self:
        # The program writes the policy of its own data bucket only: with a bucket of the
        # user's, the accounts would grant nothing, silently.
        if self.cur_bucket is not None and self.export_account_ids is not None:
            raise FieldValueError(
                "export_account_ids",
                "only the default CUR location, the fleet's data bucket, reads "
                f"export_account_ids, and cur_bucket is {shown_value(self.cur_bucket)}: let "
                "the exports write there in that bucket's own policy, or leave "
                "export_account_ids out",
            )
        return self

    @model_validator(mode="after")
    def _cur_in_its_own_folder_of_the_data_bucket(self) -> Self:
        # The data bucket lets Data Exports write under cur_prefix; its other folders are the
        # fleet's own (raw/ starts the report chain, cache/ and tmp/ expire within days), and an
        # empty prefix would let the service write over any of them.
        if self.cur_bucket is None and not self.cur_prefix.startswith(DATA_BUCKET_CUR_FOLDER):
            raise FieldValueError(
                "cur_prefix",
                f"{shown_value(self.cur_prefix)} is outside {DATA_BUCKET_CUR_FOLDER}: in the "
                f"fleet's data bucket the CUR has {DATA_BUCKET_CUR_FOLDER} and the folders under "
                "it, the others being the fleet's own; write a prefix starting with "
                f"{DATA_BUCKET_CUR_FOLDER}, or name your own cur_bucket",
            )
        return self

    def export_delivery_account_ids(self, hub_account_id: str) -> tuple[str, ...]:
        """The accounts whose export the data bucket admits, sorted (reordering the list
        changes no policy); none when the CUR is in a bucket of the user's."""
        if self.cur_bucket is not None:
            return ()
        return tuple(sorted(self.export_account_ids or [hub_account_id]))

    @model_validator(mode="after")
    def _athena_names_the_table(self) -> Self:
        for field in ("athena_database", "athena_table"):
            if self.query_engine == "athena" and getattr(self, field) is None:
                raise FieldValueError(
                    field, f"query_engine athena needs {field} (the Glue name of the CUR)"
                )
            # The pandas engine reads the CUR's files: a Glue name written without
            # `query_engine: athena` would change nothing, silently.
            if self.query_engine != "athena" and getattr(self, field) is not None:
                raise FieldValueError(
                    field,
                    f"only query_engine athena reads {field}, and query_engine is "
                    f"{self.query_engine}: set query_engine: athena, or leave {field} out",
                )
        return self


# The one function that takes a policy: what it may clean and whether it deletes.
CLEANUP_FUNCTION = "cleanup_manager"
# Policy keys that only the cleaning of these kinds reads (`require_tags`, `keep_tag`,
# `notice_days` and `mode` apply to every kind): written beside a `resources` list without one of
# those kinds, the key would change nothing, silently. (Checked here, on what the stack file
# wrote: the function receives the whole policy, every key filled in.)
CLEANUP_POLICY_KEYS_OF_KINDS: dict[str, tuple[ResourceKind, ...]] = {
    "snapshot_max_age_days": (SNAPSHOTS,),
    "volume_min_age_days": (VOLUMES,),
    "keep_lambda_versions": (LAMBDA_VERSIONS,),
}

# How functions are traced (docs/tracing.md): `active` is Lambda's own active tracing with no
# X-Ray SDK in the function; `detailed` adds the Powertools Tracer and the X-Ray SDK (subsegments
# for every AWS call, at a cold-start cost); `off` records nothing of its own.
TracingMode = Literal["active", "detailed", "off"]
TRACING_MODES: tuple[str, ...] = get_args(TracingMode)
_MODES_OF_SETTING = {"tracing": TRACING_MODES, "bytecode": BYTECODE_MODES}


# The one function that takes validation settings: how long it bakes, whether it restores.
VALIDATION_FUNCTION = "change_validator"
# The function whose own changes the validator may restore.
SCALER_FUNCTION = "eks_scaler"

# Stack-wide blocks that one function alone reads: `cost_report` the cost analyzer's environment
# and permissions, `alerts` the router's (and the e-mail topic, which only the router publishes
# to). Written while that function is switched off, a key of one would change nothing.
BLOCKS_READ_ONLY_BY_FUNCTION = {"alerts": "notification_router", "cost_report": "cost_analyzer"}


class ChangeValidationSettings(StrictModel):
    """How the change validator judges a change: the bake after EKS reports the update finished,
    and whether a regression after the scaler's own change restores the previous sizes."""

    bake_minutes: int = Field(default=15, ge=1, le=24 * 60)
    restore_scaler_changes: bool = False


class FunctionSettings(StrictModel):
    """Per-stack settings of one catalog function."""

    enabled: bool = True
    policy: CleanupPolicy | None = None
    # Lambda's limits; the scaling optimizer recommends it from the cost analyzer's rightsizing.
    memory_mb: int | None = Field(default=None, ge=128, le=10240)
    validation: ChangeValidationSettings | None = None

    @model_validator(mode="after")
    def _policy_keys_of_cleaned_kinds(self) -> Self:
        policy = self.policy
        if policy is None:
            return self
        for key, kinds in CLEANUP_POLICY_KEYS_OF_KINDS.items():
            if key in policy.model_fields_set and not any(policy.cleans(kind) for kind in kinds):
                raise FieldValueError(
                    f"policy.{key}",
                    f"only the cleaning of {' and '.join(kinds)} reads {key}, and resources "
                    f"lists {', '.join(policy.resources)}: add {' or '.join(kinds)} to "
                    f"resources, or leave {key} out",
                )
        return self


TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TagValue = Annotated[str, StringConstraints(max_length=256)]
RESERVED_TAG_KEYS = ("project", "stack", "account", "managed-by")
# AWS takes 50 tags on a resource. Every resource gets the stack's tags and RESERVED_TAG_KEYS,
# and some two more of their own (a subnet its `Name` and Kubernetes load balancer role).
AWS_TAGS_PER_RESOURCE = 50
MOST_OWN_TAGS_OF_A_RESOURCE = 2
MAX_STACK_TAGS = AWS_TAGS_PER_RESOURCE - len(RESERVED_TAG_KEYS) - MOST_OWN_TAGS_OF_A_RESOURCE
AWS_RESERVED_TAG_PREFIX = "aws:"
# What IAM takes in a tag key or value (`[\p{L}\p{Z}\p{N}_.:/=+\-@]*`): the stack's tags go on
# every resource, roles included, so anything else would fail `pulumi up` at the first role.
TAG_PUNCTUATION = "_.:/=+-@"
TAG_CHARACTER_CATEGORIES = ("L", "Z", "N")


def _listed(names: Iterable[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _tag_character_refused(text: str) -> str | None:
    """The first character of a tag key or value that IAM refuses, or None."""
    for character in text:
        if character not in TAG_PUNCTUATION and not unicodedata.category(character).startswith(
            TAG_CHARACTER_CATEGORIES
        ):
            return character
    return None


class FleetSettings(StrictModel):
    """Everything a stack says about the fleet; built once by `load_settings`."""

    hub: HubSettings
    members: list[MemberSettings] = Field(min_length=1)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    dry_run: bool = False
    managed_layers: ManagedLayerSettings
    schedule_time_zone: TimeZoneName = DEFAULT_TIME_ZONE
    cost_report: CostReportSettings = Field(default_factory=CostReportSettings)
    functions: dict[str, FunctionSettings] = Field(default_factory=dict)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    tracing: TracingMode = "active"
    # Whether the archives carry bytecode of the runtime's Python (components/bytecode.py):
    # `auto` when that interpreter is found, `required` or the program stops, `off` never.
    bytecode: BytecodeMode = "auto"

    @field_validator("tracing", "bytecode", mode="before")
    @classmethod
    def _known_mode(cls, value: Any, info: ValidationInfo) -> Any:
        # A near miss (`detail`, `requird`) is named with the mode it resembles.
        modes = _MODES_OF_SETTING[info.field_name]
        if isinstance(value, str) and value not in modes:
            raise ValueError(unknown_name_problem(f"{info.field_name} mode", value, modes))
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_STACK_TAGS:
            raise ValueError(
                f"{len(tags)} tags, but at most {MAX_STACK_TAGS} fit: AWS takes "
                f"{AWS_TAGS_PER_RESOURCE} on a resource, and the program adds "
                f"{len(RESERVED_TAG_KEYS)} to every one ({', '.join(RESERVED_TAG_KEYS)}) and "
                f"{MOST_OWN_TAGS_OF_A_RESOURCE} more to some"
            )
        for key, value in tags.items():
            if key in RESERVED_TAG_KEYS:
                raise ValueError(
                    f"tag key {shown_value(key)} is set by the program and cannot be configured"
                )
            for what, text in (("key", key), ("value", value)):
                refused = _tag_character_refused(text)
                if refused is not None:
                    raise FieldValueError(
                        shown_key(key),
                        f"tag {what} {shown_value(text)} holds {shown_value(refused)}, which AWS "
                        f"refuses in tags: use letters, digits, spaces and {TAG_PUNCTUATION}",
                    )
                # AWS refuses `aws:` in any mix of cases at the start of a tag key or value.
                if text.lower().startswith(AWS_RESERVED_TAG_PREFIX):
                    raise ValueError(
                        f"tag {what} {shown_value(text)} starts with {text[:4]!r}, which AWS "
                        "reserves (in any case) for its own tags"
                    )
        return tags

    @field_validator("functions")
    @classmethod
    def _catalog_functions(
        cls, functions: dict[str, FunctionSettings]
    ) -> dict[str, FunctionSettings]:
        for name, function in functions.items():
            if name not in FUNCTIONS_BY_NAME:
                raise FieldValueError(
                    shown_key(name),
                    unknown_name_problem("function", name, list(FUNCTIONS_BY_NAME)),
                )
            if function.policy is not None and name != CLEANUP_FUNCTION:
                raise FieldValueError(
                    f"{name}.policy", f"only {CLEANUP_FUNCTION} takes a policy, {name} has none"
                )
            if function.validation is not None and name != VALIDATION_FUNCTION:
                raise FieldValueError(
                    f"{name}.validation",
                    f"only {VALIDATION_FUNCTION} takes validation settings, {name} has none",
                )
            minimum = FUNCTIONS_BY_NAME[name].minimum_memory_mb or 0
            if function.memory_mb is not None and function.memory_mb < minimum:
                raise FieldValueError(
                    f"{name}.memory_mb",
                    f"{function.memory_mb} MB is below {name}'s minimum of {minimum} MB, what it "
                    f"needs at its input bounds (docs/benchmarks.md): set at least {minimum}, or "
                    "leave memory_mb out",
                )
            if not function.enabled:
                # A switched-off function is not deployed: its other settings would change
                # nothing, silently.
                for key in FunctionSettings.model_fields:
                    if key != "enabled" and key in function.model_fields_set:
                        raise FieldValueError(
                            f"{name}.{key}",
                            f"{name} is switched off (enabled: false), so nothing reads its "
                            f"{key}: leave {key} out, or switch {name} on",
                        )
        return functions

    @model_validator(mode="after")
    def _inputs_of_enabled_functions_enabled(self) -> Self:
        for spec in FUNCTIONS_BY_NAME.values():
            if not self.function_enabled(spec.name):
                continue
            for producer in spec.reads_output_of:
                if not self.function_enabled(producer):
                    raise FieldValueError(
                        f"functions.{producer}",
                        f"{spec.name} needs {producer} (it reads what {producer} writes); "
                        f"switch both off or keep {producer} on",
                    )
        return self

    @model_validator(mode="after")
    def _stack_calendar_dates_with_a_schedule(self) -> Self:
        # As on a cluster (ClusterSettings): exception dates only change what schedules do.
        clusters = [cluster for member in self.members for cluster in member.clusters]
        if any(cluster.schedule is not None for cluster in clusters):
            return self
        for field in ("holidays", "working_days"):
            if getattr(self.calendar, field):
                raise FieldValueError(
                    f"calendar.{field}",
                    f"only the clusters' schedules read {field}, and no cluster has a schedule: "
                    f"add one, or leave {field} out (maintenance windows apply without one)",
                )
        return self

    @model_validator(mode="after")
    def _merged_calendars_consistent(self) -> Self:
        for at, _, cluster in self._placed_clusters():
            problem = calendar_problem(self.cluster_calendar(cluster))
            if problem is None:
                continue
            field, message = problem
            # Indexes of the merged lists are not the user's: name the list, not the entry.
            raise FieldValueError(
                f"{at}.calendar.{field.split('[', 1)[0]}",
                f"together with the stack-wide calendar: {message}",
            )
        return self

    @model_validator(mode="after")
    def _blocks_of_switched_off_functions_unwritten(self) -> Self:
        for block_name, reader in BLOCKS_READ_ONLY_BY_FUNCTION.items():
            if self.function_enabled(reader):
                continue
            block = getattr(self, block_name)
            for key in type(block).model_fields:
                if key in block.model_fields_set:
                    raise FieldValueError(
                        f"{block_name}.{key}",
                        f"only {reader} reads {block_name}, and functions.{reader}.enabled is "
                        f"false: leave {block_name}.{key} out, or switch {reader} on",
                    )
        return self

    @model_validator(mode="after")
    def _scaler_changes_restored_only_with_a_scaler(self) -> Self:
        # Without the scaler no change is the scaler's own, and nothing could restore one.
        validation = self.change_validation()
        if "restore_scaler_changes" in validation.model_fields_set and not self.function_enabled(
            SCALER_FUNCTION
        ):
            raise FieldValueError(
                f"functions.{VALIDATION_FUNCTION}.validation.restore_scaler_changes",
                f"only changes of {SCALER_FUNCTION} are restored, and "
                f"functions.{SCALER_FUNCTION}.enabled is false: leave restore_scaler_changes "
                f"out, or switch {SCALER_FUNCTION} on",
            )
        return self

    @model_validator(mode="after")
    def _cluster_settings_have_readers(self) -> Self:
        for setting, readers in CLUSTER_SETTING_READERS.items():
            if any(self.function_enabled(reader) for reader in readers):
                continue
            for at, _, cluster in self._placed_clusters():
                if setting in cluster.model_fields_set:
                    switches = _listed(f"functions.{name}.enabled" for name in readers)
                    read, are = ("reads", "is") if len(readers) == 1 else ("read", "are")
                    note = CLUSTER_SETTING_NOTES.get(setting)
                    raise FieldValueError(
                        f"{at}.{setting}",
                        f"only {_listed(readers)} {read} {setting}"
                        f"{f' ({note})' if note else ''}, and {switches} "
                        f"{are} false: leave {setting} out, or switch {readers[0]} on",
                    )
        return self

    @model_validator(mode="after")
    def _schedule_mode_utilization_has_its_reader(self) -> Self:
        reader = SCHEDULE_MODE_UTILIZATION_READER
        if self.function_enabled(reader):
            return self
        for at, _, cluster in self._placed_clusters():
            scaling = cluster.scaling
            if scaling.mode == "schedule" and "target_utilization" in scaling.model_fields_set:
                raise FieldValueError(
                    f"{at}.scaling.target_utilization",
                    f"in schedule mode only {reader} reads target_utilization, and "
                    f"functions.{reader}.enabled is false: leave target_utilization out, "
                    f"or switch {reader} on",
                )
        return self

    @model_validator(mode="after")
    def _predictive_clusters_have_their_functions(self) -> Self:
        switched_off = [
            name for name in PREDICTIVE_MODE_FUNCTIONS if not self.function_enabled(name)
        ]
        if not switched_off:
            return self
        for at, _, cluster in self._placed_clusters():
            if cluster.scaling.mode != "predictive":
                continue
            off = switched_off[0]
            raise FieldValueError(
                f"{at}.scaling.mode",
                f"predictive mode needs {' and '.join(PREDICTIVE_MODE_FUNCTIONS)}, and "
                f"functions.{off}.enabled is false: nothing would ask for this cluster's "
                f"predictive sizes; set mode: schedule, or switch {off} on",
            )
        return self

    def _placed_clusters(self) -> Iterator[tuple[str, MemberSettings, ClusterSettings]]:
        """Each cluster with its member and its place in the stack file
        (`members[i].clusters[j]`), for messages that name the field."""
        for member_index, member in enumerate(self.members):
            for cluster_index, cluster in enumerate(member.clusters):
                yield f"members[{member_index}].clusters[{cluster_index}]", member, cluster

    def cluster_calendar(self, cluster: ClusterSettings) -> CalendarSettings:
        """The stack-wide calendar merged with the cluster's own."""
        return self.calendar.merged_with(cluster.calendar)

    def calendar_time_zone(self, cluster: ClusterSettings) -> str:
        """The zone of a cluster's calendar: its schedule's, else the stack's schedule zone."""
        return (
            cluster.schedule.time_zone if cluster.schedule is not None else self.schedule_time_zone
        )

    def function_enabled(self, name: str) -> bool:
        """Functions are on unless the stack switches them off."""
        switch = self.functions.get(name)
        return switch is None or switch.enabled

    def function_memory_mb(self, name: str) -> int | None:
        """The stack's memory size for function `name`, when it sets one."""
        switch = self.functions.get(name)
        return None if switch is None else switch.memory_mb

    def cleanup_policy(self) -> CleanupPolicy:
        """The stack's cleanup policy; a stack that writes none gets the defaults (notify only)."""
        switch = self.functions.get(CLEANUP_FUNCTION)
        if switch is None or switch.policy is None:
            return CleanupPolicy()
        return switch.policy

    def cleanup_policy_variable(self) -> str:
        """The cleanup policy as the cleanup function's environment carries it (JSON)."""
        return self.cleanup_policy().model_dump_json()

    def change_validation(self) -> ChangeValidationSettings:
        """The stack's change validation settings; the defaults when it writes none."""
        switch = self.functions.get(VALIDATION_FUNCTION)
        if switch is None or switch.validation is None:
            return ChangeValidationSettings()
        return switch.validation

    def enabled_functions(self, functions: Sequence[FunctionSpec]) -> tuple[FunctionSpec, ...]:
        """The catalog entries this stack deploys, in catalog order."""
        return tuple(spec for spec in functions if self.function_enabled(spec.name))

    @model_validator(mode="after")
    def _accounts_consistent(self) -> Self:
        unique_values(
            [self.hub.account_id, *(member.account_id for member in self.members)],
            "account id",
            "members",
        )
        unique_values(
            [self.hub.name, *(member.name for member in self.members)], "account name", "members"
        )
        for layer_name, arns in (
            ("powertools", self.managed_layers.powertools),
            ("aws_sdk_pandas", self.managed_layers.aws_sdk_pandas),
        ):
            if self.hub.region not in arns:
                raise FieldValueError(
                    f"managed_layers.{layer_name}", f"no ARN for the hub region {self.hub.region}"
                )
        return self

    @model_validator(mode="after")
    def _joined_names_distinct(self) -> Self:
        # A cluster's resources and schedules are named `<account>-<cluster>`, a created node
        # group `<account>-<cluster>-<group>`; names hold dashes too, so two entries can join
        # into one name, which the engine refuses as a duplicate URN.
        clusters: dict[str, str] = {}
        groups: dict[str, str] = {}
        for at, member, cluster in self._placed_clusters():
            parts = f"account {member.name!r} and cluster {cluster.name!r}"
            _first_to_name(clusters, f"{member.name}-{cluster.name}", at, parts)
            if cluster.existing:
                continue
            for group_index, group in enumerate(cluster.node_groups):
                _first_to_name(
                    groups,
                    f"{member.name}-{cluster.name}-{group.name}",
                    f"{at}.node_groups[{group_index}]",
                    f"account {member.name!r}, cluster {cluster.name!r} and node group "
                    f"{group.name!r}",
                )
        return self

    def inventory(self, stack: str) -> FleetInventory:
        """The fleet inventory that handlers read from the data bucket, built with their models."""
        # Imported here: naming reads this module's PROJECT.
        from components.naming import function_name  # noqa: PLC0415

        return FleetInventory(
            stack=stack,
            hub=HubAccount(account_id=self.hub.account_id, region=self.hub.region),
            dry_run=self.dry_run,
            functions={
                spec.name: function_name(stack, spec.name)
                for spec in self.enabled_functions(list(FUNCTIONS_BY_NAME.values()))
            },
            minimum_memory_mb={
                spec.name: spec.minimum_memory_mb
                for spec in self.enabled_functions(list(FUNCTIONS_BY_NAME.values()))
                if spec.minimum_memory_mb is not None
            },
            members=tuple(
                MemberAccount(
                    account_id=member.account_id,
                    name=member.name,
                    regions=tuple(member.regions),
                    clusters=tuple(
                        _inventory_cluster(
                            member.cluster_region(cluster),
                            cluster,
                            _inventory_calendar(
                                self.cluster_calendar(cluster), self.calendar_time_zone(cluster)
                            ),
                        )
                        for cluster in member.clusters
                    ),
                )
                for member in self.members
            ),
        )


def _first_to_name(named: dict[str, str], joined: str, at: str, parts: str) -> None:
    """Record that the entry at `at` names its resources `joined`; refuse it, at its `name`,
    when an earlier entry already does."""
    earlier = named.setdefault(joined, at)
    if earlier != at:
        raise FieldValueError(
            f"{at}.name",
            f"{parts} join into {joined!r}, the name the resources of {earlier} already have; "
            "rename one of the two",
        )


def _inventory_calendar(calendar: CalendarSettings, time_zone: str) -> ClusterCalendar:
    return ClusterCalendar(
        time_zone=time_zone,
        holidays=tuple(calendar.holidays),
        working_days=tuple(calendar.working_days),
        maintenance_windows=tuple(
            MaintenanceWindow(start=window.start, end=window.end, reason=window.reason)
            for window in calendar.maintenance_windows
        ),
    )


def _inventory_cluster(region: str, cluster: ClusterSettings, calendar: ClusterCalendar) -> Cluster:
    schedule = cluster.schedule
    return Cluster(
        name=cluster.name,
        region=region,
        existing=cluster.existing,
        autoscaler=cluster.autoscaler,
        kubernetes_version=cluster.kubernetes_version,
        node_groups=tuple(
            NodeGroup(
                name=group.name,
                capacity_type=group.capacity_type,
                instance_types=tuple(group.instance_types),
                min_size=group.min_size,
                desired_size=group.desired_size,
                max_size=group.max_size,
                floor=group.effective_floor,
            )
            for group in cluster.node_groups
        ),
        schedule=(
            None
            if schedule is None
            else ScalingSchedule(
                time_zone=schedule.time_zone,
                scale_up_time=time.fromisoformat(schedule.scale_up_time),
                scale_down_time=time.fromisoformat(schedule.scale_down_time),
                days=tuple(schedule.days),
                off_hours_desired=dict(schedule.off_hours_desired),
                exclude_node_groups=tuple(schedule.exclude_node_groups),
            )
        ),
        calendar=calendar,
        health_endpoints=tuple(
            InventoryHealthEndpoint(**endpoint.model_dump())
            for endpoint in cluster.health_endpoints
        ),
        scaling=ClusterScaling(**cluster.scaling.model_dump()),
    )
