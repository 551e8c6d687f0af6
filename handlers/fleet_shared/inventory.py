"""The fleet inventory: which accounts, regions, clusters, node groups and schedules exist.

These models are the one contract between the Pulumi program and the functions: the program
builds the inventory with them (`FleetSettings.inventory()`) and writes it as JSON to
s3://$DATA_BUCKET_NAME/$FLEET_INVENTORY_KEY on every `pulumi up`; the functions read it back with
`parse_inventory` (through `fleet_shared.inventory_store.load_inventory`). The module is pure
pydantic, no boto3, so the program may import it.

The models are frozen and reject unknown fields: a program writing a shape the functions do not
understand fails loudly instead of being half read. In a `pulumi up` the functions of a release
read the inventory the release before wrote, until the program writes the new one after them:
so a field is added only with a default and never removed (`RELEASED_FIELDS` in
`tests/handlers/shared/test_inventory.py`).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from fleet_shared.event_parsing import json_or_problem
from fleet_shared.exceptions import InventoryError
from fleet_shared.field_types import AccountId, AwsRegion, PositiveInt, is_time_zone
from fleet_shared.validation_errors import first_error, shown_value

Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


def _known_time_zone(value: str) -> str:
    if not is_time_zone(value):
        raise ValueError(f"unknown time zone {shown_value(value)}")
    return value


KnownTimeZone = Annotated[str, AfterValidator(_known_time_zone)]
"""The time zone of a schedule or a calendar: a name the zone database holds."""


class _Frozen(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class NodeGroup(_Frozen):
    """A managed node group as deployed; `floor` is the smallest size a scaler may set."""

    name: str
    capacity_type: Literal["ON_DEMAND", "SPOT"]
    instance_types: tuple[str, ...] = Field(min_length=1)
    min_size: int = Field(ge=0)
    desired_size: int = Field(ge=0)
    max_size: PositiveInt
    floor: int = Field(ge=0)

    @model_validator(mode="after")
    def _sizes_are_ordered(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"node group {self.name}: expected min_size <= desired_size <= max_size, got "
                f"{self.min_size}, {self.desired_size}, {self.max_size}"
            )
        if self.floor > self.max_size:
            raise ValueError(f"node group {self.name}: floor {self.floor} exceeds max_size")
        return self


class ScalingSchedule(_Frozen):
    """When a cluster scales up and down, in its own time zone, on which days.

    `off_hours_desired` maps node group names to their desired size outside working hours.
    """

    time_zone: KnownTimeZone
    scale_up_time: time
    scale_down_time: time
    days: tuple[Weekday, ...] = Field(min_length=1)
    off_hours_desired: dict[str, int] = Field(default_factory=dict)
    exclude_node_groups: tuple[str, ...] = ()
    """Node groups no scheduled change may touch (a requested change still may)."""

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The schedule's time zone."""
        return zoneinfo.ZoneInfo(self.time_zone)


class MaintenanceWindow(_Frozen):
    """A stretch of local time (the calendar's time zone, no offset) when nothing is changed."""

    start: datetime
    end: datetime
    reason: str

    @model_validator(mode="after")
    def _ends_after_start(self) -> MaintenanceWindow:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("maintenance window times are local times without an offset")
        if self.end <= self.start:
            raise ValueError(f"maintenance window ends at {self.end}, not after {self.start}")
        return self


class ClusterCalendar(_Frozen):
    """A cluster's exception dates and maintenance windows, stack-wide and its own merged, in
    `time_zone` (the cluster schedule's, else the stack's schedule time zone).

    `holidays`: no scheduled scale-up. `working_days`: the schedule acts although the weekday is
    not one of its `days`. `maintenance_windows`: no function changes the cluster.
    """

    time_zone: KnownTimeZone
    holidays: tuple[date, ...] = ()
    working_days: tuple[date, ...] = ()
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()

    def local_time(self, moment: datetime) -> datetime:
        """`moment` (aware) as the calendar's wall-clock time, without an offset."""
        return moment.astimezone(zoneinfo.ZoneInfo(self.time_zone)).replace(tzinfo=None)

    def maintenance_window_at(self, moment: datetime) -> MaintenanceWindow | None:
        """The window `moment` (aware) falls in, if any (start included, end excluded).

        A window lasts from the first time the clock reads its start to the last time it reads
        its end: on the night the clocks go back, the wall clock alone would leave the window
        between two readings of an end (or start) in the repeated hour, and let changes through
        in the middle of it. A start or end in the hour the clocks skip begins or ends the window
        when the clocks jump."""
        local = self.local_time(moment)
        zone = zoneinfo.ZoneInfo(self.time_zone)
        return next(
            (
                window
                for window in self.maintenance_windows
                if window.start <= local < window.end
                or window.start.replace(tzinfo=zone, fold=0)
                <= moment
                < window.end.replace(tzinfo=zone, fold=1)
            ),
            None,
        )


class ClusterScaling(_Frozen):
    """How a cluster's node groups are sized between the schedule's changes.

    `schedule`: the schedule alone. `predictive`: the hourly forecast sets the desired size when
    its confidence reaches `confidence_threshold` (the schedule rules otherwise); the node count
    keeps the forecast's upper quantile plus `headroom_percent` at `target_utilization` percent
    of the nodes' allocatable CPU, changes by at most `max_step` nodes per decision and, with
    `working_hours_floor`, never goes below the stack file's desired size in working hours.
    """

    mode: Literal["schedule", "predictive"] = "schedule"
    confidence_threshold: float = Field(default=0.85, ge=0, le=1)
    target_utilization: float = Field(default=70, gt=0, le=100)
    headroom_percent: float = Field(default=10, ge=0, le=200)
    max_step: PositiveInt = 2
    working_hours_floor: bool = True


HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS = 30.0
"""The longest probe timeout the stack file allows. The inventory keeps a longer one (a
hand-edited or older document): refusing it here would make the whole document unreadable to
every function; the health monitor refuses that endpoint alone, since with the cluster's AWS
calls its probe may not fit in an invocation."""


class HealthEndpoint(_Frozen):
    """An HTTP endpoint the health monitor probes."""

    name: str
    url: str = Field(pattern=r"^https?://")
    timeout_seconds: float = Field(default=5.0, gt=0)
    expected_status: int = Field(default=200, ge=100, le=599)


class Cluster(_Frozen):
    """An EKS cluster in a member account; `existing` ones were created outside the program,
    which manages neither them nor their node groups (the functions treat both kinds alike)."""

    name: str
    region: AwsRegion
    existing: bool = False
    autoscaler: Literal["none", "cluster-autoscaler"] = "none"
    """`cluster-autoscaler` when the owner runs Cluster Autoscaler on the cluster (it cannot be
    told from AWS: EKS tags every managed node group for its auto-discovery)."""
    kubernetes_version: str | None = None
    """The version the program created the cluster at; None for an existing cluster, which its
    owner upgrades."""
    node_groups: tuple[NodeGroup, ...]
    schedule: ScalingSchedule | None = None
    calendar: ClusterCalendar | None = None
    health_endpoints: tuple[HealthEndpoint, ...] = ()
    scaling: ClusterScaling = Field(default_factory=ClusterScaling)

    @model_validator(mode="after")
    def _schedule_names_node_groups(self) -> Cluster:
        if self.schedule is not None:
            named = {*self.schedule.off_hours_desired, *self.schedule.exclude_node_groups}
            unknown = named - {ng.name for ng in self.node_groups}
            if unknown:
                raise ValueError(
                    f"cluster {self.name}: the schedule names unknown node groups {sorted(unknown)}"
                )
        return self

    def node_group(self, name: str) -> NodeGroup | None:
        """The node group called `name`, if the cluster has one."""
        return next((group for group in self.node_groups if group.name == name), None)


class MemberAccount(_Frozen):
    """A member account, the regions the fleet works in there, and its clusters."""

    account_id: AccountId
    name: str
    regions: tuple[AwsRegion, ...] = Field(min_length=1)
    clusters: tuple[Cluster, ...] = ()

    @model_validator(mode="after")
    def _clusters_in_listed_regions(self) -> MemberAccount:
        for cluster in self.clusters:
            if cluster.region not in self.regions:
                raise ValueError(
                    f"cluster {cluster.name} is in {cluster.region}, which is not among the "
                    f"regions of account {self.account_id}"
                )
        return self


class HubAccount(_Frozen):
    """The account and region where the fleet runs."""

    account_id: AccountId
    region: AwsRegion


class FleetInventory(_Frozen):
    """The whole fleet of one stack."""

    stack: str
    hub: HubAccount
    dry_run: bool
    members: tuple[MemberAccount, ...]
    functions: dict[str, str] = Field(default_factory=dict)
    """The Lambda function name of each function the stack deploys, by its catalog name: the
    only way to tell this stack's functions from those of a stack whose name starts with its
    own (`dev` and `dev-eu` both name theirs `lf-dev-...`)."""
    minimum_memory_mb: dict[str, PositiveInt] = Field(default_factory=dict)
    """The catalog's minimum memory (MB) of each function the stack deploys that has one, by its
    catalog name: what it needs at its input bounds, which the stack file's `memory_mb` may not go
    below, so scaling_optimizer recommends no less."""

    def function_named(self, deployed_name: str) -> str | None:
        """The catalog name of this stack's function `deployed_name`, or None if it is not one."""
        return next(
            (name for name, deployed in self.functions.items() if deployed == deployed_name), None
        )

    def account_regions(self) -> Iterator[tuple[str, str]]:
        """Every (account_id, region) pair of the member accounts, in inventory order."""
        for member in self.members:
            for region in member.regions:
                yield member.account_id, region

    def clusters(self) -> Iterator[tuple[MemberAccount, Cluster]]:
        """Every cluster with the member account it belongs to."""
        for member in self.members:
            for cluster in member.clusters:
                yield member, cluster

    def member(self, account_id: str) -> MemberAccount | None:
        """The member account `account_id`, if the fleet has it."""
        return next((m for m in self.members if m.account_id == account_id), None)

    def find_cluster(self, account_id: str, region: str, name: str) -> Cluster | None:
        """The cluster `name` in `account_id` and `region`, if the fleet has it."""
        member = self.member(account_id)
        if member is None:
            return None
        return next(
            (c for c in member.clusters if c.region == region and c.name == name),
            None,
        )

    def find_node_group(
        self, account_id: str, region: str, cluster_name: str, node_group_name: str
    ) -> NodeGroup | None:
        """The node group `node_group_name` of that cluster, if both exist."""
        cluster = self.find_cluster(account_id, region, cluster_name)
        return None if cluster is None else cluster.node_group(node_group_name)


def parse_inventory(document: bytes | str, location: str) -> FleetInventory:
    """Parse an inventory document; `location` names it in the `InventoryError` it may raise."""
    content, problem = json_or_problem(document)
    if problem is not None:
        raise InventoryError(location, problem)
    try:
        return FleetInventory.model_validate(content)
    except ValidationError as error:
        field, problem = first_error(error, root="inventory")
        raise InventoryError(location, f"{field}: {problem}") from None
