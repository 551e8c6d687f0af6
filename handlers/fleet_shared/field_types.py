"""Pydantic field types shared by the environment, event, alert and inventory models.

Each type validates strings as they arrive from environment variables and JSON, with a problem
message that says what a valid value looks like, so the error a user sees is actionable.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from fleet_shared.validation_errors import shown_value

# [0-9], not \d: \d takes the digits of every script, which AWS refuses in ids and regions.
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12})?:\S+")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_EKS_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]*")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ROLE_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
STACK_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
"""A stack name the program accepts (it goes into the hub's S3 bucket names)."""


def _parse_flag(value: object) -> object:
    """Accept only `true`/`false` (any case): `1`, `yes` or `on` are likelier typos than intent."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"must be true or false, got {shown_value(value)}")


def _check_account_id(value: str) -> str:
    if not _ACCOUNT_ID.fullmatch(value):
        raise ValueError(f"must be a 12-digit AWS account id, got {shown_value(value)}")
    return value


def _check_arn(value: str) -> str:
    if not _ARN.fullmatch(value):
        raise ValueError(
            f"must be an ARN like arn:aws:sns:<region>:<account>:<name>: {shown_value(value)}"
        )
    return value


def _check_region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError(f"must be an AWS region like ap-south-1, got {shown_value(value)}")
    return value


EKS_CLUSTER_NAME_LONGEST = 100
EKS_NODE_GROUP_NAME_LONGEST = 63
NODE_GROUPS_PER_CLUSTER_MOST = 100
"""The most node groups a cluster of the stack file, and so a scaler request, may name: EKS allows
30 managed node groups per cluster unless the quota is raised. A request naming more is refused
before its entries are read, rather than read and worked through one by one."""


def eks_name_problem(value: str, longest: int) -> str | None:
    """Why `value` is no EKS cluster or node group name of at most `longest` characters (EKS's
    own rule), showing its start; None when it is one."""
    if len(value) > longest or not _EKS_NAME.fullmatch(value):
        return (
            "must be an EKS name: letters, digits, '-' and '_', starting with a letter or "
            f"digit, at most {longest} characters; got {shown_value(value)}"
        )
    return None


def _eks_name_check(longest: int) -> AfterValidator:
    """EKS's own rule for cluster and node group names, checked before any call, so a name
    with markup or control characters is refused naming the field instead of reaching EKS,
    the state table's keys and the alerts."""

    def check(value: str) -> str:
        problem = eks_name_problem(value, longest)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _resource_name_check(pattern: re.Pattern[str], what_it_is: str) -> AfterValidator:
    """AWS's own rule for a resource name, checked when the environment is read: a name it
    refuses otherwise failed the function's first call, naming the API's parameter (`TableName`,
    `Bucket`, `RoleArn`), not the variable that holds it."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what_it_is}, got {shown_value(value)}")
        return value

    return AfterValidator(check)


def is_time_zone(value: str) -> bool:
    """Whether the zone database holds a time zone named `value`. A name it cannot open is none:
    a folder of it (`US`, for `US/Eastern`) or a name longer than a file name raises an OSError,
    which a validator would let escape as a bug instead of the field's error."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _check_time_zone(value: str) -> str:
    if not is_time_zone(value):
        raise ValueError(f"must be an IANA time zone like Asia/Kolkata, got {shown_value(value)}")
    return value


BoolFlag = Annotated[bool, BeforeValidator(_parse_flag)]
"""A boolean written as `true` or `false` (case-insensitive); anything else is an error."""

AccountId = Annotated[str, AfterValidator(_check_account_id)]
"""A 12-digit AWS account id, kept as a string (leading zeros are significant)."""

Arn = Annotated[str, AfterValidator(_check_arn)]
"""An Amazon Resource Name in any partition."""

AwsRegion = Annotated[str, AfterValidator(_check_region)]
"""An AWS region code such as `ap-south-1`."""

EksClusterName = Annotated[str, _eks_name_check(EKS_CLUSTER_NAME_LONGEST)]
"""An EKS cluster name (1-100 characters)."""

EksNodeGroupName = Annotated[str, _eks_name_check(EKS_NODE_GROUP_NAME_LONGEST)]
"""An EKS managed node group name (1-63 characters)."""

DynamoDbTableName = Annotated[
    str,
    _resource_name_check(
        _TABLE_NAME, "a DynamoDB table name: 3 to 255 letters, digits, '_', '-' and '.'"
    ),
]
"""A DynamoDB table name, as DynamoDB accepts one."""

S3BucketName = Annotated[
    str,
    _resource_name_check(
        _BUCKET_NAME,
        "an S3 bucket name: 3 to 63 of a-z, 0-9, '-' and '.', a letter or digit at each end",
    ),
]
"""An S3 bucket name (general purpose), as S3 accepts one."""

IamRoleName = Annotated[
    str,
    _resource_name_check(
        _ROLE_NAME, "an IAM role name without a path: 1 to 64 letters, digits and '+=,.@_-'"
    ),
]
"""An IAM role name, without a path: the role assumed is `arn:aws:iam::<account>:role/<name>`."""

StackName = Annotated[
    str,
    _resource_name_check(
        STACK_NAME, "a stack name: 1 to 63 lower-case letters, digits and '-', a letter first"
    ),
]
"""The name of the stack a function belongs to, as the program accepts one: it goes into the
marks and backups the function leaves in member accounts, which other stacks must tell apart."""

TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]
"""An IANA time zone name such as `Asia/Kolkata` or `UTC`."""

PositiveInt = Annotated[int, Field(gt=0)]
"""An integer greater than zero (sizes, seconds, counts)."""
