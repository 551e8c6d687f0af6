"""change_validator under Pulumi mocks: the function, its least-privilege role, its EKS change rule,
and the waiting mechanism (its callback schedule group and a scheduler role for it alone)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hub_view import FUNCTION, ROLE, ROLE_POLICY, HubView

from catalog import function_spec
from components.exceptions import StackSettingsError
from components.naming import (
    callback_schedule_group_name,
    callback_scheduler_role_name,
    function_name,
    member_role_name,
)
from components.settings import load_settings
from fleetctl.handler_environment import deployed_environment
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

SPEC = function_spec("change_validator")


@pytest.fixture
def hub(stack_run: ProgramRun) -> HubView:
    return HubView(stack_run)


def _own_policy(hub: HubView) -> dict[str, Any]:
    role = hub.one(ROLE, name=function_name(hub.stack, SPEC.name))
    return json.loads(hub.one(ROLE_POLICY, role=role.inputs["name"]).inputs["policy"])


def _statement_with(policy: dict[str, Any], action: str) -> dict[str, Any]:
    [statement] = [s for s in policy["Statement"] if action in s["Action"]]
    return statement


def test_the_function_is_told_its_group_role_queue_and_the_scalers_role(hub: HubView) -> None:
    # GIVEN the program run of a stack WHEN the function's environment is read
    variables = deployed_environment(hub.run, SPEC)
    hub_account, region = hub.settings.hub.account_id, hub.settings.hub.region
    # THEN it names its own schedule group, scheduler role, ARN and dead-letter queue
    assert variables["VALIDATION_SCHEDULE_GROUP"] == callback_schedule_group_name(
        hub.stack, SPEC.name
    )
    assert variables["VALIDATION_SCHEDULER_ROLE_ARN"] == (
        f"arn:aws:iam::{hub_account}:role/{callback_scheduler_role_name(hub.stack, SPEC.name)}"
    )
    assert variables["VALIDATION_FUNCTION_ARN"] == (
        f"arn:aws:lambda:{region}:{hub_account}:function:{function_name(hub.stack, SPEC.name)}"
    )
    assert variables["VALIDATION_DEAD_LETTER_ARN"] == hub.dead_letter_queue_arn(SPEC)
    # AND the scaler's member role and function, and the default bake of 15 minutes
    assert variables["SCALER_MEMBER_ROLE_NAME"] == member_role_name(hub.stack, "eks_scaler")
    assert variables["SCALER_FUNCTION_NAME"] == function_name(hub.stack, "eks_scaler")
    assert variables["VALIDATION_BAKE_MINUTES"] == "15"
    assert variables["VALIDATION_RESTORE_SCALER_CHANGES"] == "false"


def test_the_functions_role_creates_schedules_only_in_its_group_and_passes_only_its_role(
    hub: HubView,
) -> None:
    # GIVEN the function's own policy
    policy = _own_policy(hub)
    hub_account, region = hub.settings.hub.account_id, hub.settings.hub.region
    group = callback_schedule_group_name(hub.stack, SPEC.name)
    # THEN CreateSchedule (and GetSchedule, to find a step a retry booked already, and
    # DeleteSchedule, for a bake check's successor once the change is judged) is allowed only on
    # schedules of its own group
    create = _statement_with(policy, "scheduler:CreateSchedule")
    assert create["Action"] == [
        "scheduler:CreateSchedule",
        "scheduler:GetSchedule",
        "scheduler:DeleteSchedule",
    ]
    assert create["Resource"] == [f"arn:aws:scheduler:{region}:{hub_account}:schedule/{group}/*"]
    # AND PassRole only of its scheduler role, only to EventBridge Scheduler
    pass_role = _statement_with(policy, "iam:PassRole")
    assert pass_role["Resource"] == [
        f"arn:aws:iam::{hub_account}:role/{callback_scheduler_role_name(hub.stack, SPEC.name)}"
    ]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    # AND it may invoke the scaler and no other function
    invoke = _statement_with(policy, "lambda:InvokeFunction")
    assert [arn.rsplit(":", 1)[1] for arn in invoke["Resource"]] == [
        function_name(hub.stack, "eks_scaler")
    ]
    # AND no statement of its own is on "*" except the ones every function has
    broad = {
        action
        for statement in policy["Statement"]
        if statement["Resource"] == ["*"]
        for action in statement["Action"]
    }
    assert broad <= {
        "cloudwatch:PutMetricData",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_the_scheduler_role_of_its_callbacks_may_invoke_only_this_function(hub: HubView) -> None:
    # GIVEN the callback schedule group and scheduler role the program made
    group = hub.one(
        "aws:scheduler/scheduleGroup:ScheduleGroup",
        name=callback_schedule_group_name(hub.stack, SPEC.name),
    )
    role = hub.one(ROLE, name=callback_scheduler_role_name(hub.stack, SPEC.name))
    # THEN the role is trusted by EventBridge Scheduler for the schedules of that group only,
    # outside the function-role path that member accounts trust
    assert group.inputs["name"].endswith("-change-validator-callbacks")
    assert role.inputs["path"] == "/"
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    region, account = hub.settings.hub.region, hub.settings.hub.account_id
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnEquals": {
            "aws:SourceArn": (
                f"arn:aws:scheduler:{region}:{account}:schedule-group/{group.inputs['name']}"
            )
        },
    }
    # AND it may invoke this function and nothing else, and dead-letter only into its queue
    policy = json.loads(hub.one(ROLE_POLICY, role=role.inputs["name"]).inputs["policy"])
    invoke = _statement_with(policy, "lambda:InvokeFunction")
    assert invoke["Resource"] == [hub.arn(hub.function(SPEC))]
    dead_letters = _statement_with(policy, "sqs:SendMessage")
    assert dead_letters["Resource"] == [hub.dead_letter_queue_arn(SPEC)]


def test_eks_changes_of_the_members_reach_the_function(hub: HubView) -> None:
    # GIVEN the function's rule on the hub bus
    rule = hub.one(
        "aws:cloudwatch/eventRule:EventRule",
        name=f"{function_name(hub.stack, SPEC.name)}-eks-change",
    )
    pattern = json.loads(rule.inputs["eventPattern"])
    # THEN it matches CloudTrail's records of the validated EKS calls, from member accounts only
    assert pattern["source"] == ["aws.eks"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert pattern["detail"]["eventName"] == [
        "UpdateClusterVersion",
        "UpdateNodegroupVersion",
        "UpdateNodegroupConfig",
    ]
    assert pattern["account"] == sorted(member.account_id for member in hub.settings.members)
    target = hub.one("aws:cloudwatch/eventTarget:EventTarget", rule=rule.inputs["name"])
    assert target.inputs["arn"] == hub.arn(hub.function(SPEC))
    hub.one(FUNCTION, name=function_name(hub.stack, SPEC.name))


def test_the_stack_files_validation_settings_reach_the_function(project_with_stack: Any) -> None:
    # GIVEN the dev stack with a 30-minute bake and automatic restore of the scaler's changes
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:functions"] = {
        "change_validator": {"validation": {"bake_minutes": 30, "restore_scaler_changes": True}}
    }
    # WHEN the program runs under mocks
    run = run_program("validated", project_with_stack("validated", config))
    variables = deployed_environment(run, SPEC)
    # THEN the function bakes 30 minutes and may restore
    assert variables["VALIDATION_BAKE_MINUTES"] == "30"
    assert variables["VALIDATION_RESTORE_SCALER_CHANGES"] == "true"


@pytest.mark.parametrize(
    ("functions", "line"),
    [
        (
            "{health_monitor: {validation: {bake_minutes: 30}}}",
            "functions.health_monitor.validation: only change_validator takes validation "
            "settings, health_monitor has none",
        ),
        (
            "{change_validator: {validation: {bake_minutes: 0}}}",
            "functions.change_validator.validation.bake_minutes: Input should be greater than "
            "or equal to 1, got 0",
        ),
        (
            "{change_validator: {validation: {bake_minutes: 1441}}}",
            "functions.change_validator.validation.bake_minutes: Input should be less than "
            "or equal to 1440, got 1441",
        ),
    ],
)
def test_bad_validation_settings_print_one_line_naming_the_field(functions: str, line: str) -> None:
    # GIVEN a stack file with one mistake in the validation settings WHEN its settings are loaded
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    document = {
        key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("lambda-")
    }
    document["functions"] = yaml.safe_load(functions)
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", document)
    # THEN the one line names the field and what is wrong with it
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


@pytest.mark.parametrize("bake_minutes", [1, 1440])
def test_the_ends_of_the_readmes_bake_range_are_accepted(bake_minutes: int) -> None:
    # GIVEN the dev stack file with a bake at an end of the README's range, 1-1440 minutes
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    document = {
        key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("lambda-")
    }
    document["functions"] = {"change_validator": {"validation": {"bake_minutes": bake_minutes}}}
    # WHEN its settings are loaded THEN the bake is taken as written
    assert load_settings("dev", document).change_validation().bake_minutes == bake_minutes
