"""performance_analyzer and scaling_optimizer under Pulumi mocks: their least-privilege roles,
their schedules, and the stack file's per-function `memory_mb` (which the optimizer recommends)
used instead of the catalog's."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from catalog.functions import function_spec
from components.exceptions import StackSettingsError
from components.naming import function_name, member_role_name
from components.settings import load_settings
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
SCHEDULE = "aws:scheduler/schedule:Schedule"


def _policy_actions(run: ProgramRun, role: str, name: str) -> set[str]:
    return {
        action
        for resource in run.of_type(ROLE_POLICY)
        if resource.inputs.get("role") == role and resource.inputs.get("name") == name
        for statement in json.loads(resource.inputs["policy"])["Statement"]
        for action in statement["Action"]
    }


def _memory_size(run: ProgramRun, name: str) -> int:
    [function] = [
        resource
        for resource in run.of_type(FUNCTION)
        if resource.inputs.get("name") == function_name(run.stack, name)
    ]
    return int(function.inputs["memorySize"])


def test_the_analyzer_reads_metrics_and_load_balancers_in_members_and_nothing_else(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the dev stack run under mocks
    run = program_runs["dev"]
    # WHEN the analyzer's member role policy is read
    actions = _policy_actions(
        run, member_role_name("dev", "performance_analyzer"), "member-actions"
    )
    # THEN it may read metrics and find load balancers by tag, and change nothing
    assert actions == {
        "cloudwatch:GetMetricData",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTags",
        "tag:GetResources",
    }


def test_the_optimizer_acts_in_the_hub_only_and_may_not_assume_member_roles(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the dev stack run under mocks
    run = program_runs["dev"]
    # WHEN the optimizer's role policy is read
    actions = _policy_actions(run, function_name("dev", "scaling_optimizer"), "least-privilege")
    # THEN it may add to and list the data bucket, delete nothing, and assume no member role
    assert {"s3:PutObject", "s3:ListBucket", "dynamodb:Query"} <= actions
    assert not actions & {"sts:AssumeRole", "s3:DeleteObject"}
    assert not function_spec("scaling_optimizer").acts_in_members


@pytest.mark.parametrize(
    ("name", "expression", "payload"),
    [
        ("performance_analyzer", "rate(4 hours)", {"action": "analyze_fleet"}),
        ("scaling_optimizer", "cron(0 7 * * ? *)", {"action": "optimize"}),
    ],
)
def test_each_new_function_has_its_schedule(
    program_runs: dict[str, ProgramRun], name: str, expression: str, payload: dict[str, Any]
) -> None:
    # GIVEN the dev stack run under mocks
    run = program_runs["dev"]
    # WHEN the function's schedules are listed
    schedules = [
        resource.inputs
        for resource in run.of_type(SCHEDULE)
        if resource.inputs["name"].startswith(function_name("dev", name))
    ]
    # THEN it has one, with the catalog's expression and payload
    assert [(s["scheduleExpression"], json.loads(s["target"]["input"])) for s in schedules] == [
        (expression, payload)
    ]


def test_a_memory_size_in_the_stack_file_replaces_the_catalogs(project_with_stack: Any) -> None:
    # GIVEN the dev stack file with memory_mb set for one function
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:functions"] = {"health_monitor": {"memory_mb": 192}}
    # WHEN the program runs under mocks
    run = run_program("memory", project_with_stack("memory", config))
    # THEN that function gets it and the others keep the catalog's
    assert _memory_size(run, "health_monitor") == 192
    assert _memory_size(run, "eks_scaler") == function_spec("eks_scaler").memory_mb


@pytest.mark.parametrize("memory_mb", [64, 127, 10241])
def test_a_memory_size_outside_lambdas_limits_is_refused_naming_the_field(
    stack_settings_document: Any, memory_mb: int
) -> None:
    # GIVEN the dev settings with a memory size Lambda does not accept
    document = stack_settings_document("dev")
    document["functions"] = {"health_monitor": {"memory_mb": memory_mb}}
    # WHEN they are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the field
    assert raised.value.field == "functions.health_monitor.memory_mb"
    assert "\n" not in str(raised.value)


def test_a_memory_size_below_the_functions_measured_minimum_is_refused_naming_the_field(
    stack_settings_document: Any,
) -> None:
    # GIVEN the dev settings giving report_processor 1 MB less than the minimum the catalog
    # declares from what it needs at its input bounds
    minimum = function_spec("report_processor").minimum_memory_mb
    assert minimum is not None
    document = stack_settings_document("dev")
    document["functions"] = {"report_processor": {"memory_mb": minimum - 1}}
    # WHEN they are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the field and the minimum
    assert raised.value.field == "functions.report_processor.memory_mb"
    assert f"below report_processor's minimum of {minimum} MB" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_catalog_entry_below_its_own_minimum_memory_is_refused() -> None:
    # GIVEN report_processor's catalog entry WHEN its memory is set below its minimum
    spec = function_spec("report_processor")
    assert spec.minimum_memory_mb is not None
    # THEN the entry is refused, so no stack is deployed below the minimum by default
    with pytest.raises(ValueError, match="memory_mb is below its own minimum_memory_mb"):
        replace(spec, memory_mb=spec.minimum_memory_mb - 1)


@pytest.mark.parametrize(
    ("function", "memory_mb"),
    [("health_monitor", 128), ("health_monitor", 10240), ("report_processor", 4032)],
)
def test_the_ends_of_the_readmes_memory_range_are_accepted(
    stack_settings_document: Any, function: str, memory_mb: int
) -> None:
    # GIVEN the dev settings with a memory size at an end of the README's range, 128-10240 MB,
    # or report_processor's minimum
    document = stack_settings_document("dev")
    document["functions"] = {function: {"memory_mb": memory_mb}}
    # WHEN they are validated THEN the function is given that size
    assert load_settings("dev", document).function_memory_mb(function) == memory_mb
