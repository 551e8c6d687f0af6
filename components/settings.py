"""Stack settings: the validated model of `Pulumi.<stack>.yaml`.

Every rule a platform engineer can break in a stack file is checked here, before any resource is
registered, and reported as one `StackSettingsError` that names the stack and the field path.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from functools import cache
from ipaddress import IPv4Network, collapse_addresses
from itertools import pairwise
from types import UnionType
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from catalog.functions import FUNCTIONS_BY_NAME
from catalog.model import FunctionSpec
from components.bytecode import BYTECODE_MODES, BytecodeMode
from components.exceptions import FieldValueError, StackSettingsError
from fleet_shared.cleanup_policy import (
    LAMBDA_VERSIONS,
    SNAPSHOTS,
    VOLUMES,
    CleanupPolicy,
    ResourceKind,
)
from fleet_shared.inventory import (
    HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS,
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
from fleet_shared.validation_errors import SHOWN_VALUE_LENGTH, shown_value

PROJECT = "lambda-fleet"

# EKS versions in standard or extended support; update as AWS releases and retires versions
# (1.30 left extended support on 2026-07-23 and 1.31 on 2026-11-26, when AWS stopped creating
# clusters of each and upgraded the existing ones).
SUPPORTED_KUBERNETES_VERSIONS = ("1.32", "1.33", "1.34", "1.35")

DEFAULT_TIME_ZONE = "Asia/Kolkata"
# The public API endpoint may be open to at most a /8 in total, whatever the CIDRs' split.
MAX_PUBLIC_ACCESS_ADDRESSES = IPv4Network("10.0.0.0/8").num_addresses
# The private ranges of RFC 1918, which a created VPC's range must lie in. (`is_private` of the
# ipaddress module also admits loopback, link-local and reserved ranges that no VPC can hold.)
PRIVATE_RANGES = tuple(
    IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
# Values echoed in an error are cut to this many characters.
ACCOUNT_ID_DIGITS = 12
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
# The program writes `arn:aws:` ARNs and commercial service principals; China and GovCloud
# (`aws-cn`, `aws-us-gov`) would need both, so their regions and ARNs are refused here, not at
# the first call that AWS denies.
COMMERCIAL_PARTITION = "aws"


def _commercial_region(value: str) -> str:
    if value.startswith("cn-") or "-gov-" in value:
        raise ValueError(
            f"{value} is not in the commercial partition, the only one the fleet supports"
        )
    return value


def _commercial_arn(value: str) -> str:
    partition = value.split(":", 2)[1]
    if partition != COMMERCIAL_PARTITION:
        raise ValueError(
            f"the ARN is in partition {partition!r}; the fleet supports the commercial partition "
            "(arn:aws:) only"
        )
    return value


AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")]
Region = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$"),
    AfterValidator(_commercial_region),
]
CLOCK_TIME_PATTERN = r"^([01]?\d|2[0-3]):[0-5]\d$"


def _two_digit_hour(value: str) -> str:
    """`8:00` as `08:00`: the Pulumi CLI reads either unquoted as text, and both mean 08:00."""
    return value.zfill(5)


ClockTime = Annotated[
    str, StringConstraints(pattern=CLOCK_TIME_PATTERN), AfterValidator(_two_digit_hour)
]
RoleArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]+$", max_length=2048
    ),
    AfterValidator(_commercial_arn),
]
LayerArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws(-cn|-us-gov)?:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$"
    ),
    AfterValidator(_commercial_arn),
]


def _printable(value: str) -> str:
    """Text without control characters (a terminal escape, a line break): AWS refuses them in an
    address or URL at `pulumi up`, and a reason would carry them into alerts and logs."""
    for character in value:
        if not character.isprintable():
            raise ValueError(
                f"{shown_value(value)} holds the control character {shown_value(character)}"
            )
    return value


PrintableText = Annotated[str, AfterValidator(_printable)]
Email = Annotated[PrintableText, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")]
OutputKey = Annotated[PrintableText, StringConstraints(min_length=1, max_length=256)]
StackName = Annotated[str, StringConstraints(pattern=r"^[\w.-]+/[\w.-]+/[\w.{}-]+$")]
# EKS takes label and taint keys of at most 63 characters, prefix included.
LabelKey = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9_.-]{1,63}$", max_length=63),
]
# Kubernetes label values (and EKS taint values): at most 63 letters, digits, `-`, `_` and `.`,
# beginning and ending with a letter or digit; a taint's value may be empty.
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$"
TAINT_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)]
TaintValue = Annotated[str, StringConstraints(pattern=TAINT_VALUE_PATTERN)]
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
# A key prefix that cannot widen an ARN: no wildcards, no leading slash; empty is the whole bucket.
KeyPrefix = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9!_.'()=-][A-Za-z0-9!_.'()/=-]{0,1023})?$")
]
GlueName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,255}$")]


# Names a machine's zone database may hold that are no IANA time zone: `localtime` links to
# the machine's own zone, `posixrules` is a rule template, `Factory` means "zone not yet set".
NOT_TIME_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_TIME_ZONES


def _existing_time_zone(value: str) -> str:
    if value not in _known_time_zones():
        raise ValueError(
            f"unknown time zone {shown_value(value)} (use an IANA name such as Asia/Kolkata)"
        )
    return value


TimeZoneName = Annotated[str, AfterValidator(_existing_time_zone)]


_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*$")
# Every EC2 family has a generation digit (m7g, c6gn, u-6tb1, m7i-flex, mac2-m2pro), and every
# size is one of a few words: a typo in either would otherwise surface at `pulumi up`, when EKS
# refuses the node group after the cluster was created.
_INSTANCE_FAMILY = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*$")
_INSTANCE_SIZE = re.compile(r"^(nano|micro|small|medium|large|xlarge|\d+xlarge|metal(-\d+xl)?)$")


def _instance_type(value: str) -> str:
    family, dot, size = value.partition(".")
    if not dot or not _INSTANCE_FAMILY.match(family):
        raise ValueError(
            f"{shown_value(value)} is not an EC2 instance type: expected <family>.<size>, "
            "such as m7g.large"
        )
    if not _INSTANCE_SIZE.match(size):
        raise ValueError(
            f"{shown_value(value)} is not an EC2 instance type: its size {shown_value(size)} is "
            "not nano, micro, small, medium, large, xlarge, <n>xlarge, metal or metal-<n>xl"
        )
    return value


InstanceType = Annotated[str, AfterValidator(_instance_type)]


def instance_architecture(instance_type: str) -> str:
    """`arm64` for Graviton families (m7g, c6gn, r7gd, t4g, x2gd...), else `x86_64`."""
    family = instance_type.split(".", 1)[0]
    return "arm64" if _GRAVITON_FAMILY.match(family) else "x86_64"


_CALENDAR_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")


# How an unquoted date reaches the program under the Pulumi CLI: its YAML reads `2026-01-26` as
# a timestamp, which its config turns into Go's text of it, midnight UTC.
_CLI_UNQUOTED_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}) 00:00:00 \+0000 UTC$")


def _calendar_date(value: Any) -> date:
    # YAML may already have read an unquoted date; a number is never a date here.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    unquoted = _CLI_UNQUOTED_DATE.match(value) if isinstance(value, str) else None
    if unquoted is not None:
        value = unquoted.group(1)
    if isinstance(value, str) and _CALENDAR_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{shown_value(value)} is not a date of the calendar") from None
    raise ValueError(f"expected a date as YYYY-MM-DD, got {shown_value(value)}")


def _local_minute(value: Any) -> datetime:
    if isinstance(value, str) and _LOCAL_MINUTE.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{shown_value(value)} is not a date and time of the calendar"
            ) from None
    raise ValueError(
        f"expected a local date and time as YYYY-MM-DDTHH:MM (no offset), got {shown_value(value)}"
    )


CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]
LocalMinute = Annotated[datetime, BeforeValidator(_local_minute)]


def _takes_a_number(annotation: Any) -> bool:
    """Whether a field of this annotation holds a number (`int`, `float`, or either or None)."""
    if get_origin(annotation) in (Union, UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        return bool(members) and all(_takes_a_number(member) for member in members)
    return annotation in (int, float)


class StrictModel(BaseModel):
    """Unknown keys are errors: a misspelt setting must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_flag_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads `true` as 1 where a number is meant (`max_step: true`, a size in
        # `off_hours_desired`): a flag written for a number is a mistake, never a count.
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, bool) and _takes_a_number(annotation):
            raise ValueError(f"expected a number, got {shown_value(value)} (bool)")
        numbers_by_key = get_origin(annotation) is dict and _takes_a_number(get_args(annotation)[1])
        if numbers_by_key and isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(item, bool):
                    raise FieldValueError(
                        _shown_key(key), f"expected a number, got {shown_value(item)} (bool)"
                    )
        return value


def _unique(values: list[str], what: str, field: str | None = None) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            message = f"duplicate {what} {shown_value(value)}"
            raise FieldValueError(field, message) if field else ValueError(message)
        seen.add(value)


class Taint(StrictModel):
    key: LabelKey
    value: TaintValue = ""
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"]


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
        # A managed node group runs one AMI type, so its types must share one architecture.
        architectures = {instance_architecture(name) for name in instance_types}
        if len(architectures) > 1:
            raise ValueError(
                f"mixes arm64 (Graviton) and x86_64 instance types {instance_types}; "
                "a node group runs one architecture"
            )
        return instance_types

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
        _unique(names, "node group")
        return names

    @field_validator("days")
    @classmethod
    def _days_unique(cls, days: list[str]) -> list[str]:
        _unique(days, "day")
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
# groups to leave alone; the health monitor checks the endpoints, the change validator measures
# them around a change.)
CLUSTER_SETTING_READERS = {
    "autoscaler": ("eks_scaler",),
    "health_endpoints": ("health_monitor", "change_validator"),
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
    kubernetes_version: str
    node_groups: list[NodeGroupSettings] = Field(min_length=1)
    schedule: ScheduleSettings | None = None
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    endpoint_public_access_cidrs: list[str] = Field(default_factory=list)
    health_endpoints: list[HealthEndpoint] = Field(default_factory=list)
    scaling: ScalingSettings = Field(default_factory=ScalingSettings)

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, version: str) -> str:
        if version not in SUPPORTED_KUBERNETES_VERSIONS:
            supported = ", ".join(SUPPORTED_KUBERNETES_VERSIONS)
            raise ValueError(
                f"Kubernetes version {shown_value(version)} is not supported ({supported})"
            )
        return version

    @field_validator("endpoint_public_access_cidrs")
    @classmethod
    def _valid_cidrs(cls, cidrs: list[str]) -> list[str]:
        networks = [_ipv4_network(cidr) for cidr in cidrs]
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
    def _existing_sets_no_creation_settings(self) -> Self:
        # What only shapes a cluster the program creates would be silently ignored otherwise.
        if not self.existing:
            return self
        if self.endpoint_public_access_cidrs:
            raise FieldValueError(
                "endpoint_public_access_cidrs",
                "an existing cluster's endpoint is managed where the cluster was created",
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
        _unique([group.name for group in self.node_groups], "node group name", "node_groups")
        # The health monitor keeps an endpoint's history and incident by its name.
        _unique(
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
                        f"names unknown node group {group_name!r}",
                    )
            for index, group_name in enumerate(self.schedule.exclude_node_groups):
                if group_name not in known:
                    raise FieldValueError(
                        f"schedule.exclude_node_groups[{index}]",
                        _unknown_name_problem("node group", group_name, sorted(known)),
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


# Written in a network's stack reference where each region's stack name differs.
REGION_PLACEHOLDER = "{region}"


class StackReferenceNetwork(StrictModel):
    """VPC and subnets exported by another project's stack; `{region}` is filled per region."""

    stack_reference: StackName
    vpc_id_output: OutputKey = "vpcId"
    private_subnet_ids_output: OutputKey = "privateSubnetIds"

    @field_validator("stack_reference")
    @classmethod
    def _only_the_region_placeholder(cls, reference: str) -> str:
        # Braces are no characters of a stack name: any other than `{region}` is a misspelling
        # that would reach `pulumi up` as written.
        rest = reference.replace(REGION_PLACEHOLDER, "")
        if "{" in rest or "}" in rest:
            raise ValueError(
                f"{shown_value(reference)} has braces other than {REGION_PLACEHOLDER}, the only "
                "placeholder (replaced by each of the account's regions)"
            )
        return reference


class CreatedNetwork(StrictModel):
    """A VPC that this program creates, for accounts that have no network project."""

    create: Literal[True]
    cidr: str
    availability_zones: int = Field(default=3, ge=2, le=6)

    @field_validator("cidr")
    @classmethod
    def _usable_cidr(cls, cidr: str) -> str:
        network = _ipv4_network(cidr)
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"VPC CIDR {cidr} must be between /16 and /24")
        if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
            raise ValueError(
                f"VPC CIDR {cidr} is not a private range (10.0.0.0/8, 172.16.0.0/12 or "
                "192.168.0.0/16)"
            )
        return cidr


def _network_kind(value: Any) -> str:
    # Pick the variant by its keys so that errors talk about the variant the user meant.
    if (isinstance(value, Mapping) and "create" in value) or isinstance(value, CreatedNetwork):
        return "CreatedNetwork"
    return "StackReferenceNetwork"


NetworkSettings = Annotated[
    Annotated[CreatedNetwork, Tag("CreatedNetwork")]
    | Annotated[StackReferenceNetwork, Tag("StackReferenceNetwork")],
    Discriminator(_network_kind),
]


class AccountBase(StrictModel):
    account_id: AccountId
    name: Name
    deploy_role_arn: RoleArn

    @model_validator(mode="after")
    def _role_in_account(self) -> Self:
        role_account = self.deploy_role_arn.split(":")[4]
        if role_account != self.account_id:
            raise FieldValueError(
                "deploy_role_arn",
                f"the role is in account {role_account}, not in account {self.account_id}",
            )
        return self


class HubSettings(AccountBase):
    region: Region


class MemberSettings(AccountBase):
    regions: list[Region] = Field(min_length=1)
    network: NetworkSettings | None = None
    """Where the VPC of the clusters the program creates comes from; an account that creates
    none (its clusters all `existing`) needs none."""
    clusters: list[ClusterSettings] = Field(default_factory=list)

    @field_validator("regions")
    @classmethod
    def _regions_unique(cls, regions: list[str]) -> list[str]:
        _unique(regions, "region")
        return regions

    @model_validator(mode="after")
    def _a_network_stack_per_region(self) -> Self:
        # A VPC is in one region: one stack cannot give the networks of two.
        network = self.network
        regions = self.network_regions()
        if (
            isinstance(network, StackReferenceNetwork)
            and len(regions) > 1
            and REGION_PLACEHOLDER not in network.stack_reference
        ):
            raise FieldValueError(
                "network.stack_reference",
                f"the account creates clusters in {len(regions)} regions, but this names one "
                f"stack, whose VPC is in one region; write {REGION_PLACEHOLDER} where each "
                "region's stack name differs",
            )
        return self

    @model_validator(mode="after")
    def _clusters_placed(self) -> Self:
        _unique([cluster.name for cluster in self.clusters], "cluster name", "clusters")
        for index, cluster in enumerate(self.clusters):
            if cluster.region is None and len(self.regions) > 1:
                raise FieldValueError(
                    f"clusters[{index}].region",
                    f"required for cluster {cluster.name!r}: the account has "
                    f"{len(self.regions)} regions, and a cluster without one would follow the "
                    "first of them, moving to another region (a new cluster, the old one "
                    "deleted) when they are reordered or one is added in front",
                )
            if cluster.region is not None and cluster.region not in self.regions:
                raise FieldValueError(
                    f"clusters[{index}].region",
                    f"cluster {cluster.name!r} is in region {cluster.region}, "
                    f"which is not one of the account's regions {self.regions}",
                )
        if self.network is None and self.network_regions():
            raise FieldValueError(
                "network",
                "required: the account creates clusters, whose VPC comes from a stack reference "
                "or `create: true`",
            )
        return self

    def cluster_region(self, cluster: ClusterSettings) -> str:
        """A cluster without a region lives in the account's one region."""
        return cluster.region or self.regions[0]

    def network_regions(self) -> list[str]:
        """The account's regions where the program creates a cluster, in the account's order:
        the only ones that need a network (an existing cluster keeps its own VPC)."""
        created = {self.cluster_region(c) for c in self.clusters if not c.existing}
        return [region for region in self.regions if region in created]


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
        _unique(emails, "email address")
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
                        f"the layer is in region {layer_region}, not {region}; Lambda attaches "
                        "only layers of the function's own region",
                    )
        return self


class CostReportSettings(StrictModel):
    """Where the cost analyzer reads the Cost and Usage Report, and with which engine."""

    query_engine: Literal["pandas", "athena"] = "pandas"
    cur_bucket: BucketName | None = None  # None: the fleet's data bucket
    cur_prefix: KeyPrefix = "cur/"
    athena_database: GlueName | None = None
    athena_table: GlueName | None = None

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
# Policy keys that only the cleaning of these kinds reads (`require_tags`, `notice_days` and
# `mode` apply to every kind): written beside a `resources` list without one of those kinds, the
# key would change nothing, silently. (Checked here, on what the stack file wrote: the function
# receives the whole policy, every key filled in.)
CLEANUP_POLICY_KEYS_OF_KINDS: dict[str, tuple[ResourceKind, ...]] = {
    "snapshot_max_age_days": (SNAPSHOTS,),
    "volume_min_age_days": (VOLUMES,),
    "keep_lambda_versions": (LAMBDA_VERSIONS,),
    "keep_tag": (SNAPSHOTS, VOLUMES),
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


def _unknown_name_problem(what: str, name: str, known: Sequence[str]) -> str:
    suggestions = difflib.get_close_matches(name, known, n=1)
    if suggestions:
        return f"unknown {what} {shown_value(name)}; did you mean {suggestions[0]!r}?"
    return f"unknown {what} {shown_value(name)}; known: {', '.join(sorted(known))}"


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
            raise ValueError(_unknown_name_problem(f"{info.field_name} mode", value, modes))
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
                        _shown_key(key),
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
                    _shown_key(name),
                    _unknown_name_problem("function", name, list(FUNCTIONS_BY_NAME)),
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
                    switches = " and ".join(f"functions.{name}.enabled" for name in readers)
                    read, are = ("reads", "is") if len(readers) == 1 else ("read", "are")
                    raise FieldValueError(
                        f"{at}.{setting}",
                        f"only {' and '.join(readers)} {read} {setting}, and {switches} "
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
        _unique(
            [self.hub.account_id, *(member.account_id for member in self.members)],
            "account id",
            "members",
        )
        _unique(
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


_INTERNAL_LOCATION = re.compile(r"[A-Z]\w*|(function|tagged)-\w+\[.*\]|\[key\]")


def _field_path(location: tuple[int | str, ...], document: Mapping[str, Any]) -> str:
    """Render a pydantic error location as `members[1].clusters[0].node_groups[2].min_size`.

    pydantic adds validator and union-member names to locations (`CreatedNetwork`), and `[key]`
    after a mapping key that breaks the key's rule; those are dropped because they are not keys
    the user wrote.
    """
    parts: list[str] = []
    node: Any = document
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        is_key = isinstance(node, Mapping) and part in node
        if not is_key and _INTERNAL_LOCATION.fullmatch(part):
            continue
        parts.append(f".{_shown_key(part)}")
        node = node.get(part) if is_key else None
    return "".join(parts).lstrip(".")


def _shown_key(key: Any) -> str:
    """A key of the stack file as a field path shows it: as written when it is short and
    printable, else quoted and cut like a value."""
    text = str(key)
    return text if len(text) <= SHOWN_VALUE_LENGTH and text.isprintable() else shown_value(text)


def _ipv4_network(cidr: str) -> IPv4Network:
    """An IPv4 network in CIDR notation with no host bits set; the error shows at most a short
    prefix of what was written (ipaddress's own message repeats all of it)."""
    try:
        return IPv4Network(cidr, strict=True)
    except ValueError as error:
        reason = f": {error}" if len(cidr) <= SHOWN_VALUE_LENGTH else ""
        raise ValueError(
            f"{shown_value(cidr)} is not an IPv4 network in CIDR notation "
            f"(such as 10.0.0.0/16){reason}"
        ) from None


def _whole_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or value.is_integer()


def _quote_hint(key: str, value: Any) -> str:
    """What to write instead of a number or flag where the setting is text.

    YAML reads an unquoted account id as a number and `1.30` as 1.3, so the fix is to quote;
    the hint shows the quoted form. (`8:00` unquoted is text in the Pulumi CLI's YAML 1.2.)
    """
    if key.endswith("account_id") and _whole_number(value):
        # The CLI reads `012345678901` (a leading 0, then an 8 or 9) as a number that is no
        # integer; it reaches the program as the integer, the local tools as the float.
        value = int(value)
        hint = (
            f"expected a 12-digit account id as text, got the number {shown_value(value)}; "
            f'quote it in YAML: "{str(value).zfill(ACCOUNT_ID_DIGITS)}"'
        )
        as_octal = f"0{value:o}"
        if value >= 0 and len(as_octal) <= ACCOUNT_ID_DIGITS:
            # YAML reads digits 0-7 after a leading 0 as an octal number: the id as written
            # may have been this one.
            hint += (
                f', or "{as_octal.zfill(ACCOUNT_ID_DIGITS)}" if it was written with a leading 0 '
                "(YAML reads 0 and digits 0-7 as an octal number)"
            )
        return hint
    if key.endswith("_time") and isinstance(value, int | float) and not isinstance(value, bool):
        return f'expected HH:MM as text, got the number {shown_value(value)}; write it like "08:00"'
    if key == "kubernetes_version" and isinstance(value, float):
        return (
            f"expected a version as text, got the number {value} (YAML reads {value:.2f} as "
            f'{value}); quote it in YAML: "{value:.2f}"'
        )
    return f"expected text, got {shown_value(value)} ({type(value).__name__}); quote it in YAML"


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    value = error.get("input")
    location = error["loc"]
    key = str(location[-1]) if location else ""
    if kind == "missing":
        return "required setting is missing"
    if kind == "string_pattern_mismatch":
        return (
            f"{shown_value(value)} is not valid here: {_pattern_hint(str(error['ctx']['pattern']))}"
        )
    if kind == "string_type" and isinstance(value, int | float):
        return _quote_hint(key, value)
    message = str(error["msg"])
    if kind in ("value_error", "assertion_error"):
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        return message
    return f"{message}, got {shown_value(value)}"


def _pattern_hint(pattern: str) -> str:
    hints = {
        r"^\d{12}$": "an AWS account id is 12 digits, quoted in YAML",
        CLOCK_TIME_PATTERN: "times are HH:MM on a 24-hour clock",
        r"^[a-z]{2}(-gov)?-[a-z]+-\d$": "expected an AWS region such as ap-south-1",
        r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$": "expected an S3 bucket name",
        r"^[a-z0-9_]{1,255}$": "Glue names are lower-case letters, digits and underscores",
        LABEL_VALUE_PATTERN: (
            "Kubernetes label values are 1-63 letters, digits, '-', '_' and '.', beginning and "
            "ending with a letter or digit"
        ),
        TAINT_VALUE_PATTERN: (
            "taint values follow Kubernetes label values: at most 63 letters, digits, '-', '_' "
            "and '.', beginning and ending with a letter or digit"
        ),
    }
    if pattern in hints:
        return hints[pattern]
    if ":iam::" in pattern:
        return "expected an IAM role ARN such as arn:aws:iam::123456789012:role/name"
    if ":layer:" in pattern:
        return "expected a Lambda layer version ARN"
    if "a-z0-9-]{0,38}" in pattern:
        return "names are lower-case letters, digits and dashes, starting with a letter"
    return f"must match {pattern}"


def settings_document(config: Mapping[str, Any]) -> dict[str, Any]:
    """The `lambda-fleet:` settings of a stack file's `config:` mapping, keyed without the
    namespace; other namespaces (`pulumi:`, `aws:`) are not the fleet's."""
    namespace = f"{PROJECT}:"
    return {
        key.removeprefix(namespace): value
        for key, value in config.items()
        if key.startswith(namespace)
    }


# Pulumi's own settings (`pulumi:tags`, `pulumi:disable-default-providers`) share names with ours.
PULUMI_NAMESPACE = "pulumi"
# How close a config namespace must be to the project's to be taken for its misspelling;
# Pulumi's and the providers' namespaces (`pulumi`, `aws`, `eks`) are nowhere near it.
NAMESPACE_RESEMBLANCE = 0.8


def misspelt_namespace(config: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first key (in file order) of a stack file's `config:` whose namespace is a
    misspelling of `lambda-fleet:`, or that names one of its settings in another namespace than
    Pulumi's own, as (key, problem): nothing would ever read its setting.

    Other keys belong to Pulumi and the providers, which judge their own.
    """
    for key in config:
        namespace, _, setting = str(key).partition(":")
        if namespace in (PROJECT, PULUMI_NAMESPACE):
            continue
        # `lambda:dry_run` or `fleet:members` is no provider's key, only ours misplaced.
        if setting in FleetSettings.model_fields or difflib.get_close_matches(
            namespace, [PROJECT], n=1, cutoff=NAMESPACE_RESEMBLANCE
        ):
            return (
                _shown_key(key),
                f"unknown namespace {shown_value(namespace)}; did you mean "
                f"{shown_value(f'{PROJECT}:{setting}')}?",
            )
    return None


def _model_of(annotation: Any, value: Any) -> type[BaseModel] | None:
    """The settings model that `value` is checked against, for an annotation naming models.

    Of a union of models (the two network forms) the one sharing most keys with `value` is
    taken (counting near misspellings), so an unknown key is reported against the form the
    user meant.
    """
    models = [
        candidate
        for candidate in _models_in(annotation)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel)
    ]
    if not models or not isinstance(value, Mapping):
        return None
    return max(models, key=lambda model: _resemblance(model, value))


def _resemblance(model: type[BaseModel], value: Mapping[str, Any]) -> int:
    """How many of the keys are the model's fields, or near misspellings of them."""
    fields = list(model.model_fields)
    return sum(
        1 for key in value if key in fields or difflib.get_close_matches(str(key), fields, n=1)
    )


def _models_in(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Annotated:
        return _models_in(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [model for member in get_args(annotation) for model in _models_in(member)]
    return [annotation]


def _unknown_key(annotation: Any, value: Any, path: str) -> tuple[str, str] | None:
    """The first key (in file order) that no settings model declares: (field path, problem)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unknown_key(get_args(annotation)[0], value, path)
    if origin is list and isinstance(value, list):
        for index, item in enumerate(value):
            found = _unknown_key(get_args(annotation)[0], item, f"{path}[{index}]")
            if found:
                return found
        return None
    if origin is dict and isinstance(value, Mapping):
        for key, item in value.items():
            found = _unknown_key(
                get_args(annotation)[1], item, f"{path}.{_shown_key(key)}".lstrip(".")
            )
            if found:
                return found
        return None
    model = _model_of(annotation, value)
    if model is None:
        return None
    for key, item in value.items():
        field_path = f"{path}.{_shown_key(key)}".lstrip(".")
        field = model.model_fields.get(key)
        if field is None:
            return field_path, _unknown_name_problem("setting", str(key), list(model.model_fields))
        found = _unknown_key(field.annotation, item, field_path)
        if found:
            return found
    return None


def load_settings(stack: str, document: Mapping[str, Any]) -> FleetSettings:
    """Validate the stack's settings; raise one StackSettingsError naming stack and field.

    Unknown keys are looked for first, so that a misspelt required key is reported as the
    misspelling (with the key it resembles) rather than as a missing setting.
    """
    unknown = _unknown_key(FleetSettings, document, "")
    if unknown is not None:
        field, problem = unknown
        raise StackSettingsError(stack=stack, field=field, problem=problem)
    try:
        return FleetSettings.model_validate(dict(document))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = _field_path(tuple(first["loc"]), document)
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, FieldValueError):
            field = f"{field}.{cause.field}" if field else cause.field
        raise StackSettingsError(stack=stack, field=field, problem=_problem(first)) from None
