"""The values a stack file holds, checked one at a time: regions, ARNs, times, time zones,
instance types, dates and labels, and the strict base model every settings model builds on."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from functools import cache
from ipaddress import IPv4Network
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from components.exceptions import FieldValueError
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


# AWS's commercial regions, as botocore's partitions data lists them (a test compares the two):
# a region of the right shape that AWS does not have (`ap-sout-1`) would reach the providers and
# fail only at `pulumi up`. Add a region here when AWS opens one.
COMMERCIAL_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "me-west-1",
    "mx-central-1",
    "sa-east-1",
    "sa-west-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)


def _commercial_region(value: str) -> str:
    if value.startswith("cn-") or "-gov-" in value:
        raise ValueError(
            f"{shown_value(value)} is not in the commercial partition, the only one the fleet "
            "supports"
        )
    return value


def _known_region(value: str) -> str:
    if value in COMMERCIAL_REGIONS:
        return value
    suggestions = difflib.get_close_matches(value, COMMERCIAL_REGIONS, n=1)
    if suggestions:
        raise ValueError(f"unknown region {shown_value(value)}; did you mean {suggestions[0]!r}?")
    raise ValueError(
        f"unknown region {shown_value(value)}: not one of AWS's commercial regions (such as "
        "ap-south-1)"
    )


def _commercial_arn(value: str) -> str:
    partition = value.split(":", 2)[1]
    if partition != COMMERCIAL_PARTITION:
        raise ValueError(
            f"the ARN is in partition {partition!r}; the fleet supports the commercial partition "
            "(arn:aws:) only"
        )
    return value


# Patterns spell digits `[0-9]` and word characters `[A-Za-z0-9_]`: `\d` and `\w` (pydantic's and
# Python's) take the digits and letters of any script (Arabic-Indic, fullwidth, `ö`), which AWS
# and Pulumi refuse in ids, ARNs and names, and `time.fromisoformat` fails on with a traceback.
ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"
AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")]
Region = Annotated[
    str,
    StringConstraints(pattern=REGION_PATTERN),
    AfterValidator(_commercial_region),
    AfterValidator(_known_region),
]
CLOCK_TIME_PATTERN = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"


def _two_digit_hour(value: str) -> str:
    """`8:00` as `08:00`: the Pulumi CLI reads either unquoted as text, and both mean 08:00."""
    return value.zfill(5)


ClockTime = Annotated[
    str, StringConstraints(pattern=CLOCK_TIME_PATTERN), AfterValidator(_two_digit_hour)
]
RoleArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$",
        max_length=2048,
    ),
    AfterValidator(_commercial_arn),
]
LayerArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws(-cn|-us-gov)?:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$"
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
# The length is checked before the characters: after a validator pydantic counts "items".
OutputKey = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(_printable)
]
STACK_NAME_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.{}-]+$"
StackName = Annotated[str, StringConstraints(pattern=STACK_NAME_PATTERN)]
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


_GRAVITON_FAMILY = re.compile(r"^[a-z]+[0-9]+g[a-z]*$")
# Every EC2 family has a generation digit (m7g, c6gn, u-6tb1, m7i-flex, mac2-m2pro), and every
# size is one of a few words: a typo in either would otherwise surface at `pulumi up`, when EKS
# refuses the node group after the cluster was created.
_INSTANCE_FAMILY = re.compile(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*$")
_INSTANCE_SIZE = re.compile(
    r"^(nano|micro|small|medium|large|xlarge|[0-9]+xlarge|metal(-[0-9]+xl)?)$"
)


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


_CALENDAR_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_LOCAL_MINUTE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$")


# How an unquoted date reaches the program under the Pulumi CLI: its YAML reads `2026-01-26` as
# a timestamp, which its config turns into Go's text of it, midnight UTC.
_CLI_UNQUOTED_DATE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}) 00:00:00 \+0000 UTC$")


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


def _takes_a_flag(annotation: Any) -> bool:
    """Whether a field of this annotation holds a flag (`bool`, or a flag or None)."""
    if get_origin(annotation) in (Union, UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        return bool(members) and all(_takes_a_flag(member) for member in members)
    return annotation is bool


FLAG_TEXTS = ("true", "false")


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
                        shown_key(key), f"expected a number, got {shown_value(item)} (bool)"
                    )
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _only_true_or_false_for_a_flag(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads 1, `yes`, `on`, `y` and `t` as true (0, `no`, `off` as false), which the
        # CLI's YAML 1.2 passes as they are: a typo as likely as intent, in `dry_run` above all,
        # so only true and false (in any case) are flags, as for the functions' own flags.
        annotation = cls.model_fields[info.field_name].annotation
        if not _takes_a_flag(annotation) or isinstance(value, bool) or value is None:
            return value
        if isinstance(value, str) and value.strip().lower() in FLAG_TEXTS:
            return value.strip().lower() == "true"
        raise ValueError(f"expected true or false, got {shown_value(value)}")


def unique_values(values: list[str], what: str, field: str | None = None) -> None:
    """Raise for the first value written twice, naming `field` when given."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            message = f"duplicate {what} {shown_value(value)}"
            raise FieldValueError(field, message) if field else ValueError(message)
        seen.add(value)


def ipv4_network(cidr: str) -> IPv4Network:
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


def shown_key(key: Any) -> str:
    """A key of the stack file as a field path shows it: as written when it is short and
    printable, else quoted and cut like a value."""
    text = str(key)
    return text if len(text) <= SHOWN_VALUE_LENGTH and text.isprintable() else shown_value(text)


def unknown_name_problem(what: str, name: str, known: Sequence[str]) -> str:
    """The message for a name that is none of `known`: the closest one, else all of them."""
    suggestions = difflib.get_close_matches(name, known, n=1)
    if suggestions:
        return f"unknown {what} {shown_value(name)}; did you mean {suggestions[0]!r}?"
    return f"unknown {what} {shown_value(name)}; known: {', '.join(sorted(known))}"
