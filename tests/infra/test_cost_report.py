"""The cost analyzer's CUR settings: environment, Glue and S3 permissions, for both engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hub_view import ROLE_POLICY, HubView, as_list

from catalog import FUNCTIONS
from components.naming import function_name
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

COST_ANALYZER = next(spec for spec in FUNCTIONS if spec.name == "cost_analyzer")
GLUE_ACTIONS = {"glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"}
ATHENA_REPORT = {"query_engine": "athena", "athena_database": "cur", "athena_table": "cur_v2"}


@pytest.fixture(scope="module")
def athena_hub(tmp_path_factory: pytest.TempPathFactory) -> HubView:
    """The dev stack with `cost_report` set to the athena engine, run from a temporary project."""
    project = tmp_path_factory.mktemp("athena-project")
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:cost_report"] = ATHENA_REPORT
    (project / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (project / "Pulumi.athena.yaml").write_text(yaml.safe_dump({"config": config}))
    return HubView(run_program("athena", project), project_dir=Path(project))


@pytest.fixture
def hub(stack_run: ProgramRun) -> HubView:
    return HubView(stack_run)


def _variables(hub: HubView) -> dict[str, str]:
    return hub.function(COST_ANALYZER).inputs["environment"]["variables"]


def _statements(hub: HubView) -> list[dict]:
    role = function_name(hub.stack, COST_ANALYZER.name)
    return json.loads(hub.one(ROLE_POLICY, role=role).inputs["policy"])["Statement"]


def _resources_of(statements: list[dict], action: str) -> list[str]:
    return sorted(
        resource
        for statement in statements
        if action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    )


def _data_bucket_arn(hub: HubView, variables: dict[str, str]) -> str:
    (bucket,) = [
        bucket
        for bucket in hub.of_type("aws:s3/bucket:Bucket")
        if bucket.inputs["bucket"] == variables["DATA_BUCKET_NAME"]
    ]
    return hub.arn(bucket)


def test_cost_analyzer_gets_the_engine_and_the_cur_location_on_every_stack(hub: HubView):
    # GIVEN a stack without `cost_report` WHEN the program runs
    variables = _variables(hub)
    # THEN the analyzer uses pandas over the data bucket's cur/, and has no Athena table names
    assert variables["COST_QUERY_ENGINE"] == "pandas"
    assert variables["COST_CUR_BUCKET"] == variables["DATA_BUCKET_NAME"]
    assert variables["COST_CUR_PREFIX"] == "cur/"
    assert "COST_ATHENA_DATABASE" not in variables
    assert "COST_ATHENA_TABLE" not in variables


def test_pandas_engine_leaves_the_glue_statement_out_and_reads_only_the_cur_prefix(hub: HubView):
    statements = _statements(hub)
    data_bucket_arn = _data_bucket_arn(hub, _variables(hub))
    # No Glue names are configured: the statement resolves to nothing and is omitted, never `*`.
    assert not {action for s in statements for action in as_list(s["Action"])} & GLUE_ACTIONS
    assert f"{data_bucket_arn}/cur/*" in _resources_of(statements, "s3:GetObject")
    assert _resources_of(statements, "s3:GetBucketLocation") == [data_bucket_arn] * 2


def test_athena_engine_passes_the_table_names_to_the_function(athena_hub: HubView):
    variables = _variables(athena_hub)
    assert variables["COST_QUERY_ENGINE"] == "athena"
    assert variables["COST_ATHENA_DATABASE"] == "cur"
    assert variables["COST_ATHENA_TABLE"] == "cur_v2"
    assert variables["COST_CUR_BUCKET"] == variables["DATA_BUCKET_NAME"]
    assert variables["COST_CUR_PREFIX"] == "cur/"
    assert variables["ATHENA_WORKGROUP"]


def test_athena_engine_grants_glue_on_exactly_the_catalog_database_and_table(
    athena_hub: HubView,
):
    region, account = athena_hub.settings.hub.region, athena_hub.settings.hub.account_id
    glue = [s for s in _statements(athena_hub) if set(as_list(s["Action"])) & GLUE_ACTIONS]
    assert len(glue) == 1
    assert set(as_list(glue[0]["Action"])) == GLUE_ACTIONS
    assert sorted(as_list(glue[0]["Resource"])) == sorted(
        [
            f"arn:aws:glue:{region}:{account}:catalog",
            f"arn:aws:glue:{region}:{account}:database/cur",
            f"arn:aws:glue:{region}:{account}:table/cur/cur_v2",
        ]
    )


def test_athena_engine_reads_the_cur_and_locates_both_buckets(athena_hub: HubView):
    statements = _statements(athena_hub)
    data_bucket_arn = _data_bucket_arn(athena_hub, _variables(athena_hub))
    assert f"{data_bucket_arn}/cur/*" in _resources_of(statements, "s3:GetObject")
    assert data_bucket_arn in _resources_of(statements, "s3:ListBucket")
    assert set(_resources_of(statements, "s3:GetBucketLocation")) == {data_bucket_arn}
    for statement in statements:
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), action
        if set(as_list(statement["Action"])) & GLUE_ACTIONS:
            assert "*" not in as_list(statement["Resource"])


def test_athena_workgroup_can_be_destroyed_after_it_ran_queries(athena_hub: HubView):
    # GIVEN the athena engine's workgroup WHEN the stack is destroyed after the cost analyzer
    # ran queries in it THEN Athena deletes it with its query history (without the option it
    # refuses, and `pulumi destroy` stops there)
    workgroup = athena_hub.one("aws:athena/workgroup:Workgroup")
    assert workgroup.inputs["forceDestroy"] is True
