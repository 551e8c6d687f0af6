"""The CUR's default location is one AWS Data Exports can deliver to: the data bucket's policy and
the fleet key let the Data Exports service write the export accounts' CUR under `cur_prefix`, and
nothing else; a bucket of the user's is left to the user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hub_view import HubView, as_list

from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

DATA_EXPORTS = "bcm-data-exports.amazonaws.com"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KEY = "aws:kms/key:Key"
CHECK_OBJECT = "aws-programmatic-access-test-object"
# A management (payer) account beside the dev hub's 111111111111, listed after it on purpose.
MANAGEMENT_ACCOUNT = "999999999999"


def _run_with_cost_report(
    tmp_path_factory: pytest.TempPathFactory, name: str, changes: dict[str, Any]
) -> HubView:
    """The dev stack with these `lambda-fleet:` settings changed, run from its own project."""
    project = tmp_path_factory.mktemp(name)
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    for key, value in changes.items():
        config[f"lambda-fleet:{key}"] = value
    (project / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (project / "Pulumi.dev.yaml").write_text(json.dumps({"config": config}))
    return HubView(run_program("dev", project), project_dir=Path(project))


@pytest.fixture(scope="module")
def payer_hub(tmp_path_factory: pytest.TempPathFactory) -> HubView:
    return _run_with_cost_report(
        tmp_path_factory,
        "payer",
        {
            "cost_report": {
                "cur_prefix": "cur/billing/cur2/",
                "export_account_ids": [MANAGEMENT_ACCOUNT, "111111111111"],
            }
        },
    )


@pytest.fixture(scope="module")
def payer_hub_reordered(tmp_path_factory: pytest.TempPathFactory) -> HubView:
    return _run_with_cost_report(
        tmp_path_factory,
        "payer-reordered",
        {
            "cost_report": {
                "cur_prefix": "cur/billing/cur2/",
                "export_account_ids": ["111111111111", MANAGEMENT_ACCOUNT],
            }
        },
    )


@pytest.fixture(scope="module")
def own_bucket_hub(tmp_path_factory: pytest.TempPathFactory) -> HubView:
    return _run_with_cost_report(
        tmp_path_factory, "own-bucket", {"cost_report": {"cur_bucket": "acme-billing-cur"}}
    )


@pytest.fixture(scope="module")
def without_cost_analyzer_hub(tmp_path_factory: pytest.TempPathFactory) -> HubView:
    functions = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml").get("lambda-fleet:functions", {})
    return _run_with_cost_report(
        tmp_path_factory,
        "no-cost-analyzer",
        {"functions": {**functions, "cost_analyzer": {"enabled": False}}},
    )


def _data_bucket(hub: HubView) -> str:
    (name,) = [
        bucket.inputs["bucket"]
        for bucket in hub.of_type("aws:s3/bucket:Bucket")
        if bucket.inputs["bucket"].endswith("-data")
    ]
    return name


def _data_bucket_policy(hub: HubView) -> dict[str, Any]:
    return json.loads(hub.one(BUCKET_POLICY, bucket=_data_bucket(hub)).inputs["policy"])


def _fleet_key_policy(hub: HubView) -> dict[str, Any]:
    (key,) = [key for key in hub.of_type(KEY) if "policy" in key.inputs]
    return json.loads(key.inputs["policy"])


def _names_data_exports(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    return isinstance(principal, dict) and DATA_EXPORTS in as_list(principal.get("Service", []))


def _data_exports_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for statement in policy["Statement"] if _names_data_exports(statement)]


def _source_condition(accounts: list[str]) -> dict[str, Any]:
    return {
        "StringEquals": {"aws:SourceAccount": accounts},
        "ArnLike": {
            "aws:SourceArn": [
                f"arn:aws:bcm-data-exports:us-east-1:{account}:export/*" for account in accounts
            ]
        },
    }


def test_defaulted_cur_location_lets_the_hubs_export_deliver_under_cur_prefix_only(
    stack_run: ProgramRun,
):
    # GIVEN a stack that leaves `cost_report.cur_bucket` to the data bucket
    hub = HubView(stack_run)
    assert hub.settings.cost_report.cur_bucket is None
    bucket_arn = f"arn:aws:s3:::{_data_bucket(hub)}"
    # WHEN the data bucket's policy is read
    (statement,) = _data_exports_statements(_data_bucket_policy(hub))
    # THEN Data Exports may check the policy and put objects under cur/ and its delivery check
    # object, for exports of the hub account only: not the inventory, reports or anything else
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["s3:GetBucketPolicy", "s3:PutObject"]
    assert statement["Resource"] == [
        bucket_arn,
        f"{bucket_arn}/cur/*",
        f"{bucket_arn}/{CHECK_OBJECT}",
    ]
    assert statement["Condition"] == _source_condition([hub.settings.hub.account_id])


def test_defaulted_cur_location_lets_data_exports_encrypt_with_the_fleet_key(
    stack_run: ProgramRun,
):
    # GIVEN a stack that leaves the CUR to the data bucket, whose default encryption is the
    # fleet key WHEN the key's policy is read
    hub = HubView(stack_run)
    (statement,) = _data_exports_statements(_fleet_key_policy(hub))
    # THEN Data Exports may have S3 encrypt what it puts (a data key; Decrypt for the parts of a
    # multipart upload), for the hub account's exports only, and may do nothing else with the key
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"] == _source_condition([hub.settings.hub.account_id])


def test_export_accounts_other_than_the_hub_are_admitted_by_bucket_and_key(payer_hub: HubView):
    # GIVEN `export_account_ids` naming the management account and the hub, and a prefix of
    # the user's WHEN the program runs
    bucket_arn = f"arn:aws:s3:::{_data_bucket(payer_hub)}"
    (bucket_statement,) = _data_exports_statements(_data_bucket_policy(payer_hub))
    (key_statement,) = _data_exports_statements(_fleet_key_policy(payer_hub))
    # THEN both policies admit the exports of exactly those accounts, and the bucket only under
    # that prefix
    both = sorted([MANAGEMENT_ACCOUNT, "111111111111"])
    assert bucket_statement["Condition"] == key_statement["Condition"] == _source_condition(both)
    assert f"{bucket_arn}/cur/billing/cur2/*" in bucket_statement["Resource"]
    assert f"{bucket_arn}/cur/*" not in bucket_statement["Resource"]


def test_reordering_the_export_accounts_changes_no_policy(
    payer_hub: HubView, payer_hub_reordered: HubView
):
    # GIVEN the same export accounts listed in two orders WHEN the program runs for each
    # THEN the data bucket's and the key's policies are the same, byte for byte
    assert (
        payer_hub.one(BUCKET_POLICY, bucket=_data_bucket(payer_hub)).inputs["policy"]
        == payer_hub_reordered.one(BUCKET_POLICY, bucket=_data_bucket(payer_hub_reordered)).inputs[
            "policy"
        ]
    )
    first_keys = [key.inputs.get("policy") for key in payer_hub.of_type(KEY)]
    second_keys = [key.inputs.get("policy") for key in payer_hub_reordered.of_type(KEY)]
    assert first_keys == second_keys


def test_a_bucket_of_the_users_gets_no_grant_in_the_fleets_policies(own_bucket_hub: HubView):
    # GIVEN `cost_report.cur_bucket` naming a bucket of the user's (its policy is theirs)
    # WHEN the program runs
    # THEN neither the data bucket nor the fleet key admits Data Exports
    assert _data_exports_statements(_data_bucket_policy(own_bucket_hub)) == []
    assert _data_exports_statements(_fleet_key_policy(own_bucket_hub)) == []


def test_without_the_cost_analyzer_nothing_admits_data_exports(
    without_cost_analyzer_hub: HubView,
):
    # GIVEN a stack with cost_analyzer switched off: nothing reads the CUR
    # WHEN the program runs THEN no policy of the hub names Data Exports
    for resource, statement in without_cost_analyzer_hub.statements():
        assert not _names_data_exports(statement), resource.name
