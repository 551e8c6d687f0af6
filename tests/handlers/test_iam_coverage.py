"""The check that every AWS call handler code makes is granted by its function's catalog entry."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

import catalog.functions
from fleet_shared.state_table import StateTable
from handlers.security_scanner.scan import write_report
from tests.handlers.conftest import DATA_BUCKET_NAME, REGION
from tests.handlers.iam_coverage import (
    condition_holds,
    dynamodb_condition_keys,
    iam_actions,
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
