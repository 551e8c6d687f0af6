"""Every AWS call a handler makes must be allowed by its catalog entry.

moto does not enforce IAM, so an action missing from a function's role would surface only as an
AccessDenied in production. This module records, through botocore's own event system, every
operation handler code calls while a test runs, maps it to the IAM action(s) AWS authorises it
with, and lists those the calling function's catalog entry (hub permissions, member actions; any
resource) does not grant.

The recorder is one of botocore's builtin handlers, as moto's own stub is, so every session
created after this module is imported, and every client of it, runs it. It listens on
`before-parameter-build`: emitted once per call (not per retry) like `before-call`, but with the
caller's parameters, which decide some actions (S3 GetObject with a VersionId is
s3:GetObjectVersion). A call belongs to handler code when the nearest caller frame outside the
AWS libraries is a file under `handlers/`; the function is the innermost `handlers/<function>/`
frame of the stack, or the test directory's function when only the shared layer is on it.

A write or delete in the data bucket (the bucket `DATA_BUCKET_NAME` names when the call is made)
is checked by its keys too: the catalog grants each writer its own folders only
(`PermissionStatement.object_prefixes`), and a key outside them is refused in AWS. So is a
DynamoDB Query or Scan against the catalog's conditions on `dynamodb:Attributes` and
`dynamodb:Select` (`STATE_TABLE_KEYS_SCAN`), and every read or write of the state table's items
against the partitions `fleet_shared.state_keys` gives the function (`dynamodb:LeadingKeys`, the
condition the program adds: `components.function_wiring.state_table_conditions`), with the
values AWS takes from its parameters (`dynamodb_condition_keys`); other condition keys are not
modelled and taken as met. The partition keys are held only where the function's own code is on
the stack: the shared layer called by a test alone (a fixture seeding another function's
state) acts for no function.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import botocore.handlers

import catalog.functions
from catalog.model import Condition, ResourceRef
from components.function_wiring import state_table_conditions

HANDLERS_DIR = str(Path(__file__).resolve().parents[2] / "handlers") + os.sep


def _package_dirs(name: str) -> tuple[str, ...]:
    """The package's directory as its modules' frames name it, and resolved (a symlinked venv
    gives two spellings)."""
    # find_spec does not import the package: awswrangler (pandas) would cost seconds.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return ()
    location = Path(next(iter(spec.submodule_search_locations)))
    return tuple({str(location) + os.sep, str(location.resolve()) + os.sep})


# Libraries that make AWS calls on the caller's behalf: their frames are skipped to find who
# asked. Powertools' parameter providers call Secrets Manager with the function's own role.
LIBRARY_DIRS: tuple[str, ...] = tuple(
    directory
    for package in ("botocore", "boto3", "s3transfer", "awswrangler", "aws_lambda_powertools")
    for directory in _package_dirs(package)
)

# IAM prefixes that differ from the signing name.
_IAM_PREFIX_BY_SIGNING_NAME = {"monitoring": "cloudwatch", "tagging": "tag"}

# Operations authorised by an action of another name (Service Authorization Reference); an empty
# tuple is an operation that needs no permission. Operations whose action depends on their
# parameters are in `iam_actions`.
_ACTIONS_BY_OPERATION: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "AbortMultipartUpload"): ("s3:AbortMultipartUpload",),
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    ("sns", "PublishBatch"): ("sns:Publish",),
    ("dynamodb", "TransactGetItems"): ("dynamodb:GetItem",),
    ("sts", "GetCallerIdentity"): (),
}

# A DynamoDB transaction is authorised item by item, by the single-item actions.
_TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def iam_actions(signing_name: str, operation: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The IAM actions AWS checks for `operation` of the service signed as `signing_name`."""
    prefix = _IAM_PREFIX_BY_SIGNING_NAME.get(signing_name, signing_name)
    if prefix == "s3":
        versioned = "VersionId" in params
        if operation in ("GetObject", "HeadObject"):
            return ("s3:GetObjectVersion",) if versioned else ("s3:GetObject",)
        if operation == "DeleteObject":
            return ("s3:DeleteObjectVersion",) if versioned else ("s3:DeleteObject",)
        if operation == "DeleteObjects":
            objects = params.get("Delete", {}).get("Objects", [])
            return tuple(
                sorted(
                    {
                        "s3:DeleteObjectVersion" if "VersionId" in item else "s3:DeleteObject"
                        for item in objects
                    }
                )
                or ("s3:DeleteObject",)
            )
        if operation in ("CopyObject", "UploadPartCopy"):
            source = params.get("CopySource", "")
            versioned_source = (
                "VersionId" in source if isinstance(source, Mapping) else "versionId=" in source
            )
            read = "s3:GetObjectVersion" if versioned_source else "s3:GetObject"
            return (read, "s3:PutObject")
    if prefix == "ec2" and params.get("TagSpecifications"):
        # Tagging on create is authorised as ec2:CreateTags too (its conditions see the create
        # action).
        return (f"ec2:{operation}", "ec2:CreateTags")
    if (prefix, operation) == ("dynamodb", "TransactWriteItems"):
        return tuple(
            sorted(
                {
                    _TRANSACTION_ITEM_ACTIONS[kind]
                    for item in params.get("TransactItems", [])
                    for kind in item
                    if kind in _TRANSACTION_ITEM_ACTIONS
                }
            )
        )
    return _ACTIONS_BY_OPERATION.get((prefix, operation), (f"{prefix}:{operation}",))


# The actions on the data bucket's objects that the catalog may narrow to folders, and the
# operations that write or delete the object their `Key` names.
OBJECT_WRITE_ACTIONS = frozenset({"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"})
_KEY_WRITES = frozenset(
    {
        "PutObject",
        "CopyObject",
        "DeleteObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
    }
)


def written_keys(operation: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys an S3 call writes or deletes (a copy's target), or none for a read."""
    if operation == "DeleteObjects":
        return tuple(item["Key"] for item in params.get("Delete", {}).get("Objects", []))
    if operation in _KEY_WRITES and "Key" in params:
        return (params["Key"],)
    return ()


_EXPRESSION_NAME = re.compile(r"(?<![\w.#:\]])(#\w+|[A-Za-z]\w*)(?!\w)(?!\s*\()")
"""A top-level attribute name in a DynamoDB expression, or a word: not a value (`:v`), a
function (`begins_with(`) or a nested name (`a.b`, `a[0].b`)."""
_EXPRESSION_WORDS = frozenset({"and", "or", "not", "between", "in"})
_NAMING_EXPRESSIONS = ("ProjectionExpression", "FilterExpression", "KeyConditionExpression")
_READS_WITH_SELECT = frozenset({"Query", "Scan"})
ConditionKeys = tuple[tuple[str, tuple[str, ...]], ...]
"""A request's condition keys: (key, values) pairs."""


LEADING_KEYS = "dynamodb:LeadingKeys"
_PARTITION_KEY = "pk"
_KEY_CONDITION_PARTITION = re.compile(r"(?:^|\s|\()(#?\w+)\s*=\s*(:\w+)")
"""`<name> = :value` in a KeyConditionExpression: the partition key's equality is one."""
_ITEM_KEY_FIELDS = {"GetItem": "Key", "DeleteItem": "Key", "UpdateItem": "Key", "PutItem": "Item"}
_TRANSACTION_ITEM_KEY_FIELDS = {"Put": "Item", "Update": "Key", "Delete": "Key"}
_TRANSACTION_ITEM_KEY_FIELDS["ConditionCheck"] = "Key"


def leading_keys(operation: str, params: Mapping[str, Any]) -> tuple[str, ...] | None:
    """`dynamodb:LeadingKeys` of a request: the partition key values of the items it reads or
    writes (each item's of a transaction), the one a Query's key condition names; None for a
    request that carries none (a Scan), which IAM leaves the key out of."""
    if operation in _ITEM_KEY_FIELDS:
        values = [params.get(_ITEM_KEY_FIELDS[operation], {}).get(_PARTITION_KEY, {}).get("S")]
    elif operation == "TransactWriteItems":
        values = [
            item[kind].get(field, {}).get(_PARTITION_KEY, {}).get("S")
            for item in params.get("TransactItems", [])
            for kind, field in _TRANSACTION_ITEM_KEY_FIELDS.items()
            if kind in item
        ]
    elif operation == "Query":
        names = params.get("ExpressionAttributeNames", {})
        values = [
            params.get("ExpressionAttributeValues", {}).get(value, {}).get("S")
            for name, value in _KEY_CONDITION_PARTITION.findall(
                params.get("KeyConditionExpression", "")
            )
            if names.get(name, name) == _PARTITION_KEY
        ]
    else:
        return None
    return tuple(sorted({value for value in values if isinstance(value, str)}))


def dynamodb_condition_keys(operation: str, params: Mapping[str, Any]) -> ConditionKeys:
    """`dynamodb:LeadingKeys` of a request on items, and `dynamodb:Attributes` (the top-level
    attribute names the request carries, in its expressions, placeholders resolved, and in
    AttributesToGet) and `dynamodb:Select` of a Query or Scan; each left out when the request
    gives it none, as AWS leaves it out."""
    partitions = leading_keys(operation, params)
    leading = () if partitions is None else ((LEADING_KEYS, partitions),)
    if operation not in _READS_WITH_SELECT:
        return leading
    placeholders = params.get("ExpressionAttributeNames", {})
    attributes = set(params.get("AttributesToGet", ()))
    for field in _NAMING_EXPRESSIONS:
        for name in _EXPRESSION_NAME.findall(params.get(field, "")):
            if name.lower() not in _EXPRESSION_WORDS:
                attributes.add(placeholders.get(name, name))
    keys: list[tuple[str, tuple[str, ...]]] = []
    if attributes:
        keys.append(("dynamodb:Attributes", tuple(sorted(attributes))))
    if "Select" in params:
        keys.append(("dynamodb:Select", (params["Select"],)))
    return (*leading, *keys)


_MODELLED_CONDITION_KEYS = frozenset({"dynamodb:Attributes", "dynamodb:Select", LEADING_KEYS})


def _iam_like(value: str, pattern: str) -> bool:
    """IAM's StringLike: `*` any run of characters, `?` one, everything else itself."""
    return (
        re.fullmatch(
            "".join(
                ".*" if part == "*" else "." if part == "?" else re.escape(part)
                for part in re.split(r"([*?])", pattern)
            ),
            value,
            re.DOTALL,
        )
        is not None
    )


def condition_holds(condition: Condition, request: ConditionKeys) -> bool:
    """Whether `condition` holds for a request with these condition keys, as IAM decides it: a
    key the request lacks fails StringEquals and passes ForAllValues. A key not modelled here
    is taken as met."""
    if condition.key not in _MODELLED_CONDITION_KEYS:
        return True
    values = dict(request).get(condition.key)
    if condition.operator == "StringEquals":
        return values is not None and all(value in condition.values for value in values)
    if condition.operator == "ForAllValues:StringEquals":
        return values is None or set(values) <= set(condition.values)
    if condition.operator == "ForAllValues:StringLike":
        return values is None or all(
            any(_iam_like(value, pattern) for pattern in condition.values) for value in values
        )
    raise ValueError(f"{condition.operator} on {condition.key} is not modelled here")


@dataclass(frozen=True)
class HandlerCall:
    """One AWS operation handler code of `function` called, the actions it needs and, for a
    write or delete in the data bucket, the keys it reaches, and its condition keys the catalog
    may condition a grant on."""

    function: str
    operation: str
    actions: tuple[str, ...]
    data_bucket_keys: tuple[str, ...] = ()
    condition_keys: ConditionKeys = ()


class CallRecorder:
    """The handler calls of one test (threads included: fan-outs call from worker threads)."""

    def __init__(self, default_function: str | None) -> None:
        self.default_function = default_function
        self._calls: set[HandlerCall] = set()
        self._lock = threading.Lock()

    def record(self, call: HandlerCall) -> None:
        with self._lock:
            self._calls.add(call)

    @property
    def calls(self) -> frozenset[HandlerCall]:
        with self._lock:
            return frozenset(self._calls)


_active_recorder: CallRecorder | None = None


def _function_of_stack(
    frame: FrameType | None, default: str | None
) -> tuple[bool, str | None, bool]:
    """(whether handler code made the call, the catalog function it belongs to, whether a frame
    of that function's code is on the stack rather than the shared layer's alone)."""
    while frame is not None and frame.f_code.co_filename.startswith(LIBRARY_DIRS):
        frame = frame.f_back
    if frame is None or not frame.f_code.co_filename.startswith(HANDLERS_DIR):
        return False, None, False
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(HANDLERS_DIR):
            directory = filename[len(HANDLERS_DIR) :].split(os.sep, 1)[0]
            if directory in catalog.functions.FUNCTIONS_BY_NAME:
                return True, directory, True
        frame = frame.f_back
    return True, default, False


def _record_call(params: Mapping[str, Any], model: Any, **_: Any) -> None:
    recorder = _active_recorder
    if recorder is None:
        return
    by_handler, function, in_its_code = _function_of_stack(
        sys._getframe(1), recorder.default_function
    )
    if not by_handler or function is None:
        return
    signing_name = model.service_model.signing_name
    condition_keys = (
        dynamodb_condition_keys(model.name, params) if signing_name == "dynamodb" else ()
    )
    if not in_its_code:
        # The shared layer called by the test itself (seeding another function's state, as a
        # fixture does) acts for no function: its keys are held to none's partitions.
        condition_keys = tuple(key for key in condition_keys if key[0] != LEADING_KEYS)
    in_data_bucket = signing_name == "s3" and params.get("Bucket") == os.environ.get(
        "DATA_BUCKET_NAME"
    )
    recorder.record(
        HandlerCall(
            function=function,
            operation=f"{signing_name} {model.name}",
            actions=iam_actions(signing_name, model.name, params),
            data_bucket_keys=written_keys(model.name, params) if in_data_bucket else (),
            condition_keys=condition_keys,
        )
    )


@contextmanager
def recording(default_function: str | None) -> Iterator[CallRecorder]:
    """Record the handler calls made inside the block (instead of any enclosing recorder)."""
    global _active_recorder  # noqa: PLW0603 - botocore's builtin handler reads it
    enclosing = _active_recorder
    recorder = CallRecorder(default_function)
    _active_recorder = recorder
    try:
        yield recorder
    finally:
        _active_recorder = enclosing


def granted_actions(function: str) -> frozenset[str]:
    """Every action the catalog grants `function`, hub and member, on any resource (lower case:
    IAM matches action names case-insensitively)."""
    spec = catalog.functions.FUNCTIONS_BY_NAME[function]
    actions = [action for statement in spec.permissions for action in statement.actions]
    return frozenset(action.lower() for action in (*actions, *spec.member_actions))


def granted_object_prefixes(function: str, action: str) -> tuple[str, ...]:
    """The key patterns of the data bucket (IAM's, a `*` implied at the end) under which the
    catalog grants `function` the object action `action`."""
    spec = catalog.functions.FUNCTIONS_BY_NAME[function]
    return tuple(
        prefix
        for statement in spec.permissions
        if action in statement.actions and ResourceRef.DATA_BUCKET_OBJECTS in statement.resources
        for prefix in statement.object_prefixes or ("",)
    )


def _outside_granted_folders(call: HandlerCall) -> set[str]:
    problems = set()
    for action in OBJECT_WRITE_ACTIONS.intersection(call.actions):
        prefixes = granted_object_prefixes(call.function, action)
        if not prefixes:
            continue  # not granted at all: reported as such
        for key in call.data_bucket_keys:
            if not any(fnmatch.fnmatchcase(key, f"{prefix}*") for prefix in prefixes):
                problems.add(
                    f"{call.function} calls {call.operation} on {key}, but its catalog entry "
                    f"grants {action} in the data bucket only under {', '.join(prefixes)}"
                )
    return problems


def _outside_granted_conditions(call: HandlerCall) -> set[str]:
    """A line per action of `call` that each hub statement granting it grants under conditions
    the call does not meet (a member action is granted without them here)."""
    spec = catalog.functions.FUNCTIONS_BY_NAME[call.function]
    problems = set()
    for action in call.actions:
        statements = [s for s in spec.permissions if action in s.actions]
        if not statements or action in spec.member_actions:
            continue  # not granted at all: reported as such
        if any(
            all(
                condition_holds(condition, call.condition_keys)
                for condition in (*s.conditions, *state_table_conditions(call.function, s))
            )
            for s in statements
        ):
            continue
        asked = ", ".join(f"{key} {list(values)}" for key, values in call.condition_keys)
        problems.add(
            f"{call.function} calls {call.operation} with {asked or 'no condition keys'}, but "
            f"its catalog entry grants {action} only under conditions it does not meet"
        )
    return problems


def ungranted_calls(calls: frozenset[HandlerCall]) -> list[str]:
    """One line per (function, operation, action) the catalog does not grant, per data bucket
    key a write or delete reaches outside the folders the catalog grants it, and per action
    granted only under conditions the call does not meet."""
    problems = {
        f"{call.function} calls {call.operation}, but its catalog entry does not grant {action}"
        for call in calls
        for action in call.actions
        if action.lower() not in granted_actions(call.function)
    }
    for call in calls:
        problems |= _outside_granted_folders(call)
        problems |= _outside_granted_conditions(call)
    return sorted(problems)


def _install() -> None:
    handler = ("before-parameter-build", _record_call)
    if handler not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(handler)
    # A default session built before this module was imported would not run the builtin.
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(*handler)


_install()
