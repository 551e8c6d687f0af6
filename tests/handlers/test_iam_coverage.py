"""The check that every AWS call handler code makes is granted by its function's catalog entry."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

import catalog.functions
import fleet_shared.state_keys
from catalog.model import Condition
from fleet_shared.state_table import StateTable
from handlers.change_validator.open_validations import note_open
from handlers.security_scanner.scan import write_report
from tests.handlers.conftest import DATA_BUCKET_NAME, REGION
from tests.handlers.iam_coverage import (
    condition_holds,
    dynamodb_condition_keys,
    iam_actions,
    leading_keys,
    recording,
    ungranted_calls,
)


def _without_action(function: str, action: str) -> catalog.functions.FunctionSpec:
    spec = catalog.functions.FUNCTIONS_BY_NAME[function]
    permissions = tuple(
        dataclasses.replace(
            statement, actions=tuple(name for name in statement.actions if name != action)
        )
        for statement in spec.permissions
    )
    return dataclasses.replace(spec, permissions=permissions)


def test_a_handler_call_its_catalog_entry_does_not_grant_is_named_with_function_and_action(
    state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a backup_scheduler catalog entry without dynamodb:PutItem
    monkeypatch.setitem(
        catalog.functions.FUNCTIONS_BY_NAME,
        "backup_scheduler",
        _without_action("backup_scheduler", "dynamodb:PutItem"),
    )

    # WHEN handler code (the shared layer's state table) saves a value for it
    with recording("backup_scheduler") as recorder:
        state_table.put_value("backup", "last-run", {"at": "2025-06-02"})

    # THEN the check names the function, the operation and the missing action
    assert ungranted_calls(recorder.calls) == [
        "backup_scheduler calls dynamodb PutItem, but its catalog entry does not grant "
        "dynamodb:PutItem"
    ]


def test_a_handler_call_its_catalog_entry_grants_passes(state_table: StateTable) -> None:
    # GIVEN the real catalog, which grants every function dynamodb:PutItem on the state table
    # WHEN handler code saves a value
    with recording("backup_scheduler") as recorder:
        state_table.put_value("backup", "last-run", {"at": "2025-06-02"})

    # THEN the call was seen and nothing is missing
    assert {call.operation for call in recorder.calls} == {"dynamodb PutItem"}
    assert ungranted_calls(recorder.calls) == []


@pytest.mark.parametrize(
    ("key", "problems"),
    [
        ("reports/security/2025-06-02/findings.json", []),
        (
            "config/fleet-inventory.json",
            [
                "security_scanner calls s3 PutObject on config/fleet-inventory.json, but its "
                "catalog entry grants s3:PutObject in the data bucket only under reports/security/"
            ],
        ),
    ],
)
def test_a_handler_write_in_the_data_bucket_is_checked_against_the_folders_its_entry_grants(
    inventory_in_s3: dict[str, Any], key: str, problems: list[str]
) -> None:
    # GIVEN the security scanner, whose catalog entry grants s3:PutObject under its reports only
    services = SimpleNamespace(
        s3=boto3.client("s3", region_name=REGION),
        environment=SimpleNamespace(data_bucket_name=DATA_BUCKET_NAME),
    )

    # WHEN its handler code writes a report at `key` of the data bucket
    with recording("security_scanner") as recorder:
        write_report(services, key, {"targets": []})  # type: ignore[arg-type]

    # THEN a key under its folder passes, and the inventory is named as out of its reach
    assert ungranted_calls(recorder.calls) == problems


def test_the_state_tables_scan_meets_the_conditions_its_grant_is_under(
    state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a value saved under a target's key
    state_table.put_value("target/111111111111/eu-west-1", "state", {"findings": 1})
    # WHEN handler code (the shared layer's search for values saved before their index) scans
    # the table for the security scanner, whose Scan is granted under conditions
    with recording("security_scanner") as recorder:
        keys, _ = state_table.keys_holding_value("state", "target/")
    # THEN it finds the key, and its Scan names only the key and the expiry, saying Select
    assert keys == ["target/111111111111/eu-west-1"]
    [scan] = [call for call in recorder.calls if call.operation == "dynamodb Scan"]
    assert scan.condition_keys == (
        ("dynamodb:Attributes", ("expires_at", "pk", "sk")),
        ("dynamodb:Select", ("SPECIFIC_ATTRIBUTES",)),
    )
    assert ungranted_calls(recorder.calls) == []
    # WHEN the grant allowed the key alone
    narrowed = dataclasses.replace(
        catalog.functions.STATE_TABLE_KEYS_SCAN,
        conditions=(
            dataclasses.replace(
                catalog.functions.STATE_TABLE_KEYS_SCAN.conditions[0], values=("pk", "sk")
            ),
            *catalog.functions.STATE_TABLE_KEYS_SCAN.conditions[1:],
        ),
    )
    spec = catalog.functions.FUNCTIONS_BY_NAME["security_scanner"]
    permissions = tuple(
        narrowed if statement == catalog.functions.STATE_TABLE_KEYS_SCAN else statement
        for statement in spec.permissions
    )
    monkeypatch.setitem(
        catalog.functions.FUNCTIONS_BY_NAME,
        "security_scanner",
        dataclasses.replace(spec, permissions=permissions),
    )
    # THEN the same Scan is named as refused
    assert ungranted_calls(recorder.calls) == [
        "security_scanner calls dynamodb Scan with dynamodb:Attributes ['expires_at', 'pk', "
        "'sk'], dynamodb:Select ['SPECIFIC_ATTRIBUTES'], but its catalog entry grants "
        "dynamodb:Scan only under conditions it does not meet"
    ]


@pytest.mark.parametrize(
    ("params", "granted"),
    [
        ({"ProjectionExpression": "pk, expires_at", "Select": "SPECIFIC_ATTRIBUTES"}, True),
        # Select left to DynamoDB: the key is missing, and StringEquals refuses that
        ({"ProjectionExpression": "pk, expires_at"}, False),
        # Every attribute: nothing named, which ForAllValues alone would let through
        ({}, False),
        ({"Select": "ALL_ATTRIBUTES"}, False),
        ({"ProjectionExpression": "pk, #data", "ExpressionAttributeNames": {"#data": "data"},
          "Select": "SPECIFIC_ATTRIBUTES"}, False),
        # A value's data named in the filter, not the projection
        ({"ProjectionExpression": "pk", "FilterExpression": "contains(#d, :v) AND sk = :s",
          "ExpressionAttributeNames": {"#d": "data"}, "Select": "SPECIFIC_ATTRIBUTES"}, False),
        # A nested name is not a top-level attribute; a function is not one
        ({"ProjectionExpression": "pk, expires_at.day",
          "FilterExpression": "begins_with(pk, :p) AND size(sk) > :n",
          "Select": "SPECIFIC_ATTRIBUTES"}, True),
    ],
)  # fmt: skip
def test_a_scan_is_granted_under_the_state_tables_conditions_only_naming_its_keys_and_expiry(
    params: dict[str, Any], granted: bool
) -> None:
    # GIVEN a Scan of the state table with these parameters
    keys = dynamodb_condition_keys("Scan", params)
    # WHEN the conditions of the catalog's Scan grant are evaluated on its condition keys
    held = all(
        condition_holds(condition, keys)
        for condition in catalog.functions.STATE_TABLE_KEYS_SCAN.conditions
    )
    # THEN only a Scan that says Select SPECIFIC_ATTRIBUTES and names the key and expiry passes
    assert held is granted


def test_calls_test_code_makes_itself_are_not_counted(mocked_aws: None) -> None:
    # GIVEN a client used directly by the test, as set-up code does
    sqs = boto3.client("sqs", region_name=REGION)

    # WHEN the test calls an operation no function is granted
    with recording("report_fetcher") as recorder:
        sqs.create_queue(QueueName="set-up")

    # THEN the call is not the handler's
    assert recorder.calls == frozenset()


@pytest.mark.parametrize(
    ("signing_name", "operation", "params", "actions"),
    [
        ("s3", "ListObjectsV2", {}, ("s3:ListBucket",)),
        ("s3", "HeadObject", {}, ("s3:GetObject",)),
        ("s3", "GetObject", {"VersionId": "v1"}, ("s3:GetObjectVersion",)),
        ("s3", "DeleteObject", {"VersionId": "v1"}, ("s3:DeleteObjectVersion",)),
        ("s3", "CopyObject", {"CopySource": "bucket/key"}, ("s3:GetObject", "s3:PutObject")),
        (
            "s3",
            "DeleteObjects",
            {"Delete": {"Objects": [{"Key": "a"}, {"Key": "b"}]}},
            ("s3:DeleteObject",),
        ),
        (
            "s3",
            "DeleteObjects",
            {"Delete": {"Objects": [{"Key": "a"}, {"Key": "b", "VersionId": "v1"}]}},
            ("s3:DeleteObject", "s3:DeleteObjectVersion"),
        ),
        ("lambda", "Invoke", {}, ("lambda:InvokeFunction",)),
        ("monitoring", "GetMetricData", {}, ("cloudwatch:GetMetricData",)),
        ("sts", "GetCallerIdentity", {}, ()),
        (
            "dynamodb",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {}}, {"Update": {}}]},
            ("dynamodb:PutItem", "dynamodb:UpdateItem"),
        ),
        (
            "ec2",
            "CreateSnapshot",
            {"TagSpecifications": [{"ResourceType": "snapshot"}]},
            ("ec2:CreateSnapshot", "ec2:CreateTags"),
        ),
        ("eks", "DescribeNodegroup", {}, ("eks:DescribeNodegroup",)),
    ],
)
def test_an_operation_maps_to_the_iam_actions_aws_authorises_it_with(
    signing_name: str, operation: str, params: dict[str, Any], actions: tuple[str, ...]
) -> None:
    # GIVEN an operation and its parameters
    # WHEN its IAM actions are looked up
    # THEN they are the ones the Service Authorization Reference names
    assert iam_actions(signing_name, operation, params) == actions


def test_a_handler_key_outside_its_functions_partitions_is_named_with_the_key(
    state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN change_validator's handler code noting an open validation, under its own key
    with recording("change_validator") as recorder:
        note_open(state_table, "update-1", ttl_seconds=60)
    # THEN its role's partitions allow it
    assert ungranted_calls(recorder.calls) == []
    # WHEN the declared partitions no longer held its state keys
    own = f"{fleet_shared.state_keys.STATE}change_validator/*"
    narrowed = tuple(p for p in fleet_shared.state_keys.READ_WRITE["change_validator"] if p != own)
    monkeypatch.setitem(fleet_shared.state_keys.READ_WRITE, "change_validator", narrowed)
    # THEN the same write is named as refused, with the partition key it built
    assert ungranted_calls(recorder.calls) == [
        "change_validator calls dynamodb PutItem with dynamodb:LeadingKeys "
        "['STATE#change_validator/open'], but its catalog entry grants dynamodb:PutItem only "
        "under conditions it does not meet"
    ]


def test_the_shared_layer_called_by_a_test_alone_is_held_to_no_functions_partitions(
    state_table: StateTable,
) -> None:
    # GIVEN a test seeding the scaler's state through the shared layer, recorded for the
    # change validator's test folder (no function's own code on the stack)
    with recording("change_validator") as recorder:
        state_table.put_value("nodegroup/111111111111/eu-west-1/apps/general", "saved", {})
    # THEN the write is not held to the validator's partitions (it reads node groups only)
    (call,) = recorder.calls
    assert call.condition_keys == ()
    assert ungranted_calls(recorder.calls) == []


@pytest.mark.parametrize(
    ("operation", "params", "keys"),
    [
        ("GetItem", {"Key": {"pk": {"S": "LOCK#a"}, "sk": {"S": "LOCK"}}}, ("LOCK#a",)),
        ("PutItem", {"Item": {"pk": {"S": "ONCE#b"}, "sk": {"S": "ONCE"}}}, ("ONCE#b",)),
        ("UpdateItem", {"Key": {"pk": {"S": "STATE#c"}}}, ("STATE#c",)),
        ("DeleteItem", {"Key": {"pk": {"S": "STATE#d"}}}, ("STATE#d",)),
        ("Query", {"KeyConditionExpression": "#p = :pk AND begins_with(sk, :s)",
                   "ExpressionAttributeNames": {"#p": "pk"},
                   "ExpressionAttributeValues": {":pk": {"S": "STATE#e"}, ":s": {"S": "V"}}},
         ("STATE#e",)),
        ("TransactWriteItems", {"TransactItems": [
            {"Put": {"Item": {"pk": {"S": "STATE#f"}}}},
            {"Delete": {"Key": {"pk": {"S": "LOCK#g"}}}}]}, ("LOCK#g", "STATE#f")),
        # A Scan carries none: IAM leaves the key out, and ForAllValues passes without it
        ("Scan", {"Select": "SPECIFIC_ATTRIBUTES"}, None),
    ],
)  # fmt: skip
def test_the_leading_keys_of_a_request_are_the_partition_keys_of_its_items(
    operation: str, params: dict[str, Any], keys: tuple[str, ...] | None
) -> None:
    # GIVEN a request of the state table WHEN its dynamodb:LeadingKeys are read
    # THEN they are the partition key of each item it reads or writes
    assert leading_keys(operation, params) == keys


@pytest.mark.parametrize(
    ("keys", "held"),
    [
        (("STATE#nodegroup/1/eu-west-1/apps/general",), True),
        (("STATE#nodegroup/1/x", "LOCK#nodegroup/1/x"), True),
        # One item outside the patterns refuses the whole request
        (("STATE#nodegroup/1/x", "STATE#cluster/1/x"), False),
        # `*` spans slashes, but the prefix is whole: no partial family or key
        (("STATE#nodegroupX",), False),
        (("STATE#nodegroup",), False),
    ],
)
def test_leading_keys_are_held_to_the_partition_patterns_as_iam_matches_them(
    keys: tuple[str, ...], held: bool
) -> None:
    # GIVEN a grant on the node groups' state and locks
    condition = Condition(
        "ForAllValues:StringLike",
        "dynamodb:LeadingKeys",
        ("STATE#nodegroup/*", "LOCK#nodegroup/*"),
    )
    # WHEN a request with these partition keys is evaluated THEN only one within them passes
    assert condition_holds(condition, (("dynamodb:LeadingKeys", keys),)) is held
