"""A cluster's settings: its node groups, schedule, calendar, scaling and health endpoints."""

from __future__ import annotations

from datetime import date
from ipaddress import collapse_addresses
from itertools import pairwise
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.exceptions import FieldValueError
from components.settings.value_checks import (
    DEFAULT_TIME_ZONE,
    MAX_PUBLIC_ACCESS_ADDRESSES,
    SUPPORTED_KUBERNETES_VERSIONS,
    WEEKDAYS,
    CalendarDate,
    ClockTime,
    InstanceType,
    LabelKey,
    LabelValue,
    LocalMinute,
    Name,
    PrintableText,
    Region,
    StrictModel,
    TaintValue,
    TimeZoneName,
    instance_architecture,
    ipv4_network,
    shown_key,
    unique_values,
    unknown_name_problem,
)
from fleet_shared.field_types import NODE_GROUPS_PER_CLUSTER_MOST
from fleet_shared.inventory import (
    HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS,
)
from fleet_shared.validation_errors import shown_value


class Taint(StrictModel):
    key: LabelKey
    value: TaintValue = ""
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"]


# Label domains a node group's labels may not use, and who reserves them: the kubelet refuses to
# start with a label in Kubernetes' domains (so the group's nodes never join the cluster) but for
# the prefixes it lets a node set on itself, and EKS refuses a node group with one in its own.
RESERVED_LABEL_DOMAINS = {
    "kubernetes.io": "Kubernetes",
    "k8s.io": "Kubernetes",
    "eks.amazonaws.com": "EKS",
}
KUBELET_LABEL_PREFIXES = ("node.kubernetes.io", "kubelet.kubernetes.io")


def reserved_label_problem(key: str) -> str | None:
    """Why a node label key is in a domain that Kubernetes or EKS reserves, or None."""
    prefix, slash, _ = key.rpartition("/")
    if not slash or prefix in KUBELET_LABEL_PREFIXES:
        return None
    for domain, owner in RESERVED_LABEL_DOMAINS.items():
        if prefix == domain or prefix.endswith(f".{domain}"):
            allowed = " or ".join(f"{allowed}/" for allowed in KUBELET_LABEL_PREFIXES)
            return (
                f"label key {shown_value(key)} is in the {domain} domain, which {owner} "
                f"reserves: the node group would fail at `pulumi up` or its nodes never join "
                f"the cluster; use a domain of your own (or {allowed})"
            )
    return None


class NodeGroupSettings(StrictModel):
    name: Name
    capacity_type: Literal["ON_DEMAND", "SPOT"]
    instance_types: list[InstanceType] = Field(min_length=1, max_length=20)
    min_size: int = Field(ge=0, le=450)
    desired_size: int = Field(ge=0, le=450)
    max_size: int = Field(ge=1, le=450)
    floor: int | None = Field(default=None, ge=0)
    disk_size_gb: int = Field(default=50, ge=20, le=16384)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)

    @field_validator("instance_types")
    @classmethod
    def _one_architecture(cls, instance_types: list[str]) -> list[str]:
        # A type written twice is most likely another one meant, which the group would never get.
        unique_values(instance_types, "instance type")
        # A managed node group runs one AMI type, so its types must share one architecture.
        first_of_architecture: dict[str, str] = {}
        for name in instance_types:
            first_of_architecture.setdefault(instance_architecture(name), name)
        if len(first_of_architecture) > 1:
            raise ValueError(
                f"mixes arm64 (Graviton) and x86_64 instance types "
                f"({shown_value(first_of_architecture['arm64'])} and "
                f"{shown_value(first_of_architecture['x86_64'])}); a node group runs one "
                "architecture"
            )
        return instance_types

    @field_validator("labels")
    @classmethod
    def _labels_in_free_domains(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            problem = reserved_label_problem(key)
            if problem is not None:
                raise FieldValueError(shown_key(key), problem)
        return labels

    @model_validator(mode="after")
    def _taints_unique(self) -> Self:
        # Kubernetes keeps one taint per key and effect: a node registering with two is refused,
        # so none of the group's nodes would join the cluster.
        seen: set[tuple[str, str]] = set()
        for index, taint in enumerate(self.taints):
            if (taint.key, taint.effect) in seen:
                raise FieldValueError(
                    f"taints[{index}]",
                    f"duplicate taint {shown_value(taint.key)} with effect {taint.effect}",
                )
            seen.add((taint.key, taint.effect))
        return self

    @model_validator(mode="after")
    def _sizes_are_ordered(self) -> Self:
        if self.min_size > self.desired_size:
            raise FieldValueError(
                "min_size",
                f"min_size {self.min_size} is above desired_size {self.desired_size} "
                "(need min_size <= desired_size <= max_size)",
            )
        if self.desired_size > self.max_size:
            raise FieldValueError(
                "desired_size",
                f"desired_size {self.desired_size} is above max_size {self.max_size} "
                "(need min_size <= desired_size <= max_size)",
            )
        if self.floor is not None and self.floor > self.max_size:
            raise FieldValueError("floor", f"floor {self.floor} is above max_size {self.max_size}")
        if self.desired_size < self.effective_floor:
            raise FieldValueError(
                "desired_size",
                f"desired_size {self.desired_size} is below {self.floor_described}: the scaler "
                "never goes below the floor",
            )
        return self

    @property
    def floor_described(self) -> str:
        """`floor <n>`, saying when it is the capacity type's default (for messages)."""
        if self.floor is not None:
            return f"floor {self.floor}"
        default = f"the {self.capacity_type} default; set floor to change it"
        return f"floor {self.effective_floor} ({default})"

    @property
    def effective_floor(self) -> int:
        """The size the scaler never goes below: 1 for on-demand, 0 for spot, unless configured."""
        default = 1 if self.capacity_type == "ON_DEMAND" else 0
        return self.floor if self.floor is not None else default


class ScheduleSettings(StrictModel):
    """A cluster's working hours; every field but `off_hours_desired` has a documented default."""

    time_zone: TimeZoneName = DEFAULT_TIME_ZONE
    scale_up_time: ClockTime = "08:00"
    scale_down_time: ClockTime = "18:00"
    days: list[Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]] = Field(
        default_factory=lambda: ["MON", "TUE", "WED", "THU", "FRI"], min_length=1
    )
    # No default: a scale-down that names no node group would change nothing.
    off_hours_desired: dict[Name, int] = Field(default_factory=dict)
    # Groups no scheduled change may touch, even a replayed or hand-written scheduled payload.
    exclude_node_groups: list[Name] = Field(default_factory=list)

    @field_validator("exclude_node_groups")
    @classmethod
    def _excluded_unique(cls, names: list[str]) -> list[str]:
        unique_values(names, "node group")
        return names

    @field_validator("days")
    @classmethod
    def _days_unique(cls, days: list[str]) -> list[str]:
        unique_values(days, "day")
        return sorted(days, key=WEEKDAYS.index)

    @field_validator("off_hours_desired")
    @classmethod
    def _sizes_not_negative(cls, sizes: dict[str, int]) -> dict[str, int]:
        for group, size in sizes.items():
            if size < 0:
                raise ValueError(f"off-hours size of {group!r} is negative")
        return sizes

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.off_hours_desired:
            raise FieldValueError(
                "off_hours_desired",
                "a schedule must name at least one node group and its size after the "
                "scale-down (leave `schedule` out for no schedule)",
            )
        if self.scale_up_time == self.scale_down_time:
            raise FieldValueError(
                "scale_down_time", "scale_up_time and scale_down_time are the same"
            )
        return self


class MaintenanceWindowSettings(StrictModel):
    """`{start, end, reason}`: local times in the cluster schedule's time zone."""

    start: LocalMinute
    end: LocalMinute
    reason: PrintableText = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end <= self.start:
            raise FieldValueError(
                "end", f"the window ends at {self.end:%Y-%m-%dT%H:%M}, not after its start"
            )
        return self


class CalendarSettings(StrictModel):
    """Exception dates and maintenance windows, stack-wide (`calendar`) or per cluster."""

    holidays: list[CalendarDate] = Field(default_factory=list)
    working_days: list[CalendarDate] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindowSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problem = calendar_problem(self)
        if problem is not None:
            raise FieldValueError(*problem)
        return self

    def merged_with(self, own: CalendarSettings) -> CalendarSettings:
        """This (stack-wide) calendar with a cluster's `own` entries; the cluster's word wins
        on a date (its working day cancels a stack-wide holiday on that date, and back)."""
        holidays = {*self.holidays, *own.holidays} - set(own.working_days)
        working_days = {*self.working_days, *own.working_days} - set(own.holidays)
        return CalendarSettings.model_construct(
            holidays=sorted(holidays),
            working_days=sorted(working_days),
            maintenance_windows=sorted(
                [*self.maintenance_windows, *own.maintenance_windows],
                key=lambda window: window.start,
            ),
        )


def calendar_problem(calendar: CalendarSettings) -> tuple[str, str] | None:
    """The first inconsistency of a calendar, as (field, problem): a date listed twice, a date
    both holiday and working day, or two maintenance windows that overlap."""
    for field, dates in (("holidays", calendar.holidays), ("working_days", calendar.working_days)):
        seen: set[date] = set()
        for index, day in enumerate(dates):
            if day in seen:
                return f"{field}[{index}]", f"{day} is listed twice"
            seen.add(day)
    for index, day in enumerate(calendar.working_days):
        if day in calendar.holidays:
            return f"working_days[{index}]", f"{day} is also a holiday"
    windows = sorted(enumerate(calendar.maintenance_windows), key=lambda indexed: indexed[1].start)
    for (_, earlier), (index, later) in pairwise(windows):
        if later.start < earlier.end:
            return (
                f"maintenance_windows[{index}]",
                f"overlaps the window {earlier.start:%Y-%m-%dT%H:%M} to "
                f"{earlier.end:%Y-%m-%dT%H:%M} ({earlier.reason})",
            )
    return None


# What only predictive mode reads (the forecaster and the scaler's predictive action);
# `target_utilization` is read in either mode, by scaling_optimizer.
PREDICTIVE_ONLY_SCALING_FIELDS = (
    "confidence_threshold",
    "headroom_percent",
    "max_step",
    "working_hours_floor",
)


# Cluster settings and the functions that read them (from the inventory): with all of these
# switched off, a setting written would change nothing. (`autoscaler` tells the scaler which
# groups to leave alone, the spot optimizer's on-demand fallback which groups not to grow, and
# the scaling optimizer which clusters not to size; the health monitor checks the endpoints.)
CLUSTER_SETTING_READERS = {
    "autoscaler": ("eks_scaler", "spot_optimizer", "scaling_optimizer"),
    "health_endpoints": ("health_monitor",),
}
# Why a function that reads a cluster setting is not among its readers: the change validator
# measures the endpoints only by the results the health monitor saves, so without the monitor
# every change of a cluster with endpoints would end `not_enough_baseline`.
CLUSTER_SETTING_NOTES = {
    "health_endpoints": "the change validator measures them by the health monitor's results",
}

# The function that reads `target_utilization` in schedule mode (predictive mode's forecaster
# reads it too).
SCHEDULE_MODE_UTILIZATION_READER = "scaling_optimizer"

# Predictive mode is the forecaster asking the scaler for each hour's sizes (the forecaster asks
# only when there is a scaler): with either switched off, nothing reads the mode.
PREDICTIVE_MODE_FUNCTIONS = ("demand_forecaster", "eks_scaler")


class ScalingSettings(StrictModel):
    """How the node groups are sized between the schedule's changes (README's settings, `scaling`).

    The defaults keep the schedule alone in charge; `predictive` lets a confident forecast set the
    desired size, within the floor, max_size and `max_step`.
    """

    mode: Literal["schedule", "predictive"] = "schedule"
    confidence_threshold: float = Field(default=0.85, ge=0, le=1)
    target_utilization: float = Field(default=70, gt=0, le=100)
    headroom_percent: float = Field(default=10, ge=0, le=200)
    max_step: int = Field(default=2, ge=1, le=450)
    working_hours_floor: bool = True

    @field_validator("target_utilization", "headroom_percent")
    @classmethod
    def _percent_not_a_fraction(cls, value: float, info: ValidationInfo) -> float:
        # Both are percentages: 0.7 for 70% would size for 0.7% use (every group at max_size)
        # or add 0.7% headroom, and nothing else would say so.
        written_as_fraction = 0 < value < 1 if info.field_name == "headroom_percent" else value <= 1
        if written_as_fraction:
            raise ValueError(
                f"{info.field_name} is a percentage: {value:g} means {value:g}%; write "
                f"{value * 100:g} for {value * 100:g}%"
            )
        return value

    @model_validator(mode="after")
    def _predictive_settings_in_predictive_mode(self) -> Self:
        # In schedule mode nothing reads them: a block that sets one without `mode: predictive`
        # would change nothing, silently.
        if self.mode == "predictive":
            return self
        for field in PREDICTIVE_ONLY_SCALING_FIELDS:
            if field in self.model_fields_set:
                raise FieldValueError(
                    field,
                    f"only predictive mode reads {field}, and the cluster is in {self.mode} "
                    f"mode: set mode: predictive, or leave {field} out",
                )
        return self


class HealthEndpoint(StrictModel):
    name: Name
    url: Annotated[PrintableText, StringConstraints(pattern=r"^https?://[^\s]+$")]
    timeout_seconds: float = Field(default=5.0, gt=0, le=HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS)
    expected_status: int = Field(default=200, ge=100, le=599)


# Node group settings that only matter when the program creates the node group.
CREATION_ONLY_NODE_GROUP_FIELDS = ("disk_size_gb", "labels", "taints")


class ClusterSettings(StrictModel):
    name: Name
    region: Region | None = None
    # An existing cluster is created and managed elsewhere; the fleet only works around it.
    existing: bool = False
    # Cluster Autoscaler cannot be recognised from AWS: EKS tags every managed node group's Auto
    # Scaling group for its auto-discovery, whether or not it runs. The owner says so here.
    autoscaler: Literal["none", "cluster-autoscaler"] = "none"
    # Required on a cluster the program creates, refused on an existing one.
    kubernetes_version: str | None = None
    # EKS refuses to delete a protected cluster, so a renamed or dropped entry, a replacing change
    # or `pulumi destroy` on the wrong stack fails instead of deleting it. Refused on an existing
    # cluster, whose configuration is its owner's.
    deletion_protection: bool = True
    # The scaler refuses a request naming more (its schedules' payloads name them all).
    node_groups: list[NodeGroupSettings] = Field(
        min_length=1, max_length=NODE_GROUPS_PER_CLUSTER_MOST
    )
    schedule: ScheduleSettings | None = None
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    endpoint_public_access_cidrs: list[str] = Field(default_factory=list)
    health_endpoints: list[HealthEndpoint] = Field(default_factory=list)
    scaling: ScalingSettings = Field(default_factory=ScalingSettings)

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, version: str | None, info: ValidationInfo) -> str | None:
        # Only the program's own clusters are created at a version; an existing one is upgraded
        # by its owner, so a version written here would be read by nothing and go stale. Refused
        # before its support is judged, so an old one is not answered with newer ones to write.
        if version is not None and info.data.get("existing"):
            raise ValueError(
                "an existing cluster is upgraded where it was created and nothing here reads its "
                "version; leave kubernetes_version out"
            )
        if version is not None and version not in SUPPORTED_KUBERNETES_VERSIONS:
            supported = ", ".join(SUPPORTED_KUBERNETES_VERSIONS)
            raise ValueError(
                f"Kubernetes version {shown_value(version)} is not supported ({supported})"
            )
        return version

    @field_validator("endpoint_public_access_cidrs")
    @classmethod
    def _valid_cidrs(cls, cidrs: list[str]) -> list[str]:
        networks = [ipv4_network(cidr) for cidr in cidrs]
        if any(network.prefixlen == 0 for network in networks):
            raise ValueError("0.0.0.0/0 would open the API endpoint to the world")
        covered = sum(network.num_addresses for network in collapse_addresses(networks))
        if covered > MAX_PUBLIC_ACCESS_ADDRESSES:
            raise ValueError(
                f"together these CIDRs open the API endpoint to {covered:,} addresses, more "
                "than a /8; list the networks that need access"
            )
        return cidrs

    @model_validator(mode="after")
    def _versioned_if_created(self) -> Self:
        # The version a created cluster is created at (on an existing one: _supported_version).
        if not self.existing and self.kubernetes_version is None:
            raise FieldValueError(
                "kubernetes_version",
                "required setting is missing (the version the program creates the cluster at)",
            )
        return self

    @model_validator(mode="after")
    def _existing_sets_no_creation_settings(self) -> Self:
        # What only shapes a cluster the program creates would be silently ignored otherwise.
        if not self.existing:
            return self
        if self.endpoint_public_access_cidrs:
            raise FieldValueError(
                "endpoint_public_access_cidrs",
                "an existing cluster's endpoint is managed where the cluster was created",
            )
        if "deletion_protection" in self.model_fields_set:
            raise FieldValueError(
                "deletion_protection",
                "an existing cluster's deletion protection is set where the cluster was created "
                "(`aws eks update-cluster-config --deletion-protection`); nothing here changes "
                "it, leave deletion_protection out",
            )
        for index, group in enumerate(self.node_groups):
            for field in CREATION_ONLY_NODE_GROUP_FIELDS:
                if field in group.model_fields_set:
                    raise FieldValueError(
                        f"node_groups[{index}].{field}",
                        f"the node groups of an existing cluster are not managed here; "
                        f"{field} has no effect (list name, capacity, instance types and sizes)",
                    )
        return self

    @model_validator(mode="after")
    def _working_hours_floor_with_a_schedule(self) -> Self:
        # The floor holds in the schedule's working hours: a cluster without one has none.
        if self.schedule is None and "working_hours_floor" in self.scaling.model_fields_set:
            raise FieldValueError(
                "scaling.working_hours_floor",
                "working_hours_floor holds in the schedule's working hours, and the cluster has "
                "no schedule: add a schedule, or leave working_hours_floor out",
            )
        return self

    @model_validator(mode="after")
    def _calendar_dates_with_a_schedule(self) -> Self:
        # Holidays and forced working days change only what the schedule does (predictive
        # mode's working hours are the schedule's too): without one, nothing reads them.
        if self.schedule is not None:
            return self
        for field in ("holidays", "working_days"):
            if getattr(self.calendar, field):
                raise FieldValueError(
                    f"calendar.{field}",
                    f"only the cluster's schedule reads {field}, and the cluster has no "
                    f"schedule: add a schedule, or leave {field} out (maintenance windows apply "
                    "without one)",
                )
        return self

    @model_validator(mode="after")
    def _groups_are_consistent(self) -> Self:
        unique_values([group.name for group in self.node_groups], "node group name", "node_groups")
        # The health monitor keeps an endpoint's history and incident by its name.
        unique_values(
            [endpoint.name for endpoint in self.health_endpoints],
            "health endpoint name",
            "health_endpoints",
        )
        if not any(group.capacity_type == "ON_DEMAND" for group in self.node_groups):
            raise FieldValueError(
                "node_groups", "a cluster needs at least one ON_DEMAND node group"
            )
        if self.schedule is not None:
            known = {group.name for group in self.node_groups}
            for group_name in self.schedule.off_hours_desired:
                if group_name not in known:
                    raise FieldValueError(
                        f"schedule.off_hours_desired.{group_name}",
                        unknown_name_problem("node group", group_name, sorted(known)),
                    )
            for index, group_name in enumerate(self.schedule.exclude_node_groups):
                if group_name not in known:
                    raise FieldValueError(
                        f"schedule.exclude_node_groups[{index}]",
                        unknown_name_problem("node group", group_name, sorted(known)),
                    )
                if group_name in self.schedule.off_hours_desired:
                    raise FieldValueError(
                        f"schedule.exclude_node_groups[{index}]",
                        f"node group {group_name!r} is excluded from the schedule but has an "
                        "off-hours size in off_hours_desired; keep it in one of the two",
                    )
            # The scaler changes desiredSize only, so every size it sets lies within the range
            # that the stack file (and so `pulumi up`) owns.
            for group in self.node_groups:
                size = self.schedule.off_hours_desired.get(group.name)
                if size is not None and not group.min_size <= size <= group.max_size:
                    raise FieldValueError(
                        f"schedule.off_hours_desired.{group.name}",
                        f"off-hours size {size} is outside [min_size, max_size] = "
                        f"[{group.min_size}, {group.max_size}] of node group {group.name!r}",
                    )
                if size is not None and size < group.effective_floor:
                    raise FieldValueError(
                        f"schedule.off_hours_desired.{group.name}",
                        f"off-hours size {size} of node group {group.name!r} is below its "
                        f"{group.floor_described}: the scaler never goes below the floor",
                    )
        return self
