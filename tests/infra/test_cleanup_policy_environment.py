"""The stack file's cleanup policy reaches the cleanup function's environment, under mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import pytest
import yaml

from catalog import function_spec
from components.aws_limits import FIXED_VARIABLES_MOST_BYTES, LAMBDA_ENVIRONMENT_BYTES
from components.naming import BUCKET_NAME_MAX_LENGTH, member_role_name, stack_name_problem
from components.settings.value_checks import COMMERCIAL_REGIONS
from fleet_shared.cleanup_policy import CleanupPolicy
from fleetctl.exceptions import ProgramFailedError
from fleetctl.invoke import deployed_environment
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

STACK = "policied"


def _deployed_policy(run: ProgramRun) -> dict[str, Any]:
    variables = deployed_environment(run, function_spec("cleanup_manager"))
    return json.loads(variables["CLEANUP_POLICY"])


def test_the_dev_stack_files_policy_is_in_the_functions_environment(
    program_runs: dict[str, ProgramRun], stack_settings_document: Any
) -> None:
    # GIVEN Pulumi.dev.yaml's cleanup policy WHEN the program runs under mocks
    written = stack_settings_document("dev")["functions"]["cleanup_manager"]["policy"]
    deployed = _deployed_policy(program_runs["dev"])
    # THEN the function's CLEANUP_POLICY carries every key the stack file wrote, as written
    assert {key: deployed[key] for key in written} == written


def test_a_policy_written_in_the_stack_file_reaches_the_function_and_the_member_role(
    project_with_stack: Any,
) -> None:
    # GIVEN the dev stack with a policy that names volumes only, a tag filter, its own keep tag
    # and mode delete
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:functions"] = {
        "cleanup_manager": {
            "policy": {
                "resources": ["volumes"],
                "require_tags": {"cleanup": "allowed"},
                "keep_tag": "retain",
                "mode": "delete",
            }
        }
    }
    # WHEN the program runs under mocks
    run = run_program(STACK, project_with_stack(STACK, config))
    # THEN the function is told exactly that policy, the rest at its defaults
    assert _deployed_policy(run) == {
        "resources": ["volumes"],
        "snapshot_max_age_days": 30,
        "volume_min_age_days": 7,
        "keep_lambda_versions": 3,
        "notice_days": 7,
        "require_tags": {"cleanup": "allowed"},
        "keep_tag": "retain",
        "mode": "delete",
    }
    # AND the cleanup's member role deletes volumes only (the one kind the policy names), and
    # none that keep tag keeps, in every member account
    role = member_role_name(STACK, "cleanup_manager")
    policies = [
        json.loads(policy.inputs["policy"])
        for policy in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if policy.inputs["role"] == role
    ]
    assert policies
    deletions = {"ec2:DeleteSnapshot", "ec2:DeleteVolume", "lambda:DeleteFunction"}
    for policy in policies:
        held = [s for s in policy["Statement"] if deletions & set(s["Action"])]
        assert {action for s in held for action in s["Action"]} == {"ec2:DeleteVolume"}
        for statement in held:
            assert statement["Condition"]["StringEqualsIgnoreCaseIfExists"] == {
                "aws:ResourceTag/retain": "false"
            }, statement["Sid"]


def test_a_stack_without_a_policy_deploys_a_cleanup_that_only_notifies(
    project_with_stack: Any,
) -> None:
    # GIVEN the dev stack with no cleanup policy WHEN the program runs under mocks
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    del config["lambda-fleet:functions"]
    run = run_program(STACK, project_with_stack(STACK, config))
    # THEN the function's policy is notify on every kind
    deployed = _deployed_policy(run)
    assert deployed["mode"] == "notify"
    assert deployed["resources"] == ["snapshots", "volumes", "lambda_versions"]


def test_a_policy_past_lambdas_environment_limit_stops_the_program_before_registering(
    project_with_stack: Any,
) -> None:
    # GIVEN the dev stack with a policy requiring 16 tags of 256-character values: the policy
    # alone passes the 4 KB Lambda takes for all of a function's variables
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    tags = {f"team-{index}": "x" * 256 for index in range(16)}
    config["lambda-fleet:functions"] = {"cleanup_manager": {"policy": {"require_tags": tags}}}
    # WHEN the program runs under mocks
    with pytest.raises(ProgramFailedError) as failure:
        run_program(STACK, project_with_stack(STACK, config))
    raised = failure.value
    # THEN it stops with one line naming the policy, its size and the room it has, before
    # anything is registered (found at the function, the rest of the hub was registered first,
    # and created by a `pulumi up`)
    assert str(raised).startswith(
        f"Pulumi.{STACK}.yaml: functions.cleanup_manager.policy: the policy would take 4,"
    ), str(raised)
    assert (
        "bytes of the function's environment as CLEANUP_POLICY, over the 3,072 that AWS's limit "
        "of 4,096 leaves beside its other variables; require fewer or shorter tags"
    ) in str(raised)
    assert [urn.split("::")[2] for urn in raised.registered] == ["pulumi:pulumi:Stack"]


def _longest_stack_name(account_id: str, region: str) -> str:
    return max(
        (f"s{'x' * length}" for length in range(BUCKET_NAME_MAX_LENGTH)),
        key=lambda stack: (stack_name_problem(stack, account_id, region) is None, len(stack)),
    )


def _policy_of_size(room: int, variable: str) -> dict[str, Any]:
    """A policy whose variable takes exactly `room` bytes: tags of 256-character values, the
    last one cut to fit."""
    tags: dict[str, str] = {}

    def size() -> int:
        rendered = CleanupPolicy(require_tags=tags).model_dump_json()
        return len(variable) + len(rendered.encode())

    index = 0
    while size() < room:
        tags[f"t{index}"] = ""
        tags[f"t{index}"] = "v" * min(256, room - size())
        index += 1
    assert size() == room
    return {"require_tags": tags}


def test_the_policys_room_is_left_beside_the_longest_names_and_time_zone(
    tmp_path: Path,
) -> None:
    # GIVEN the dev stack under the longest stack name the buckets allow in the shortest hub
    # region (the stack name is in most variables, the region in fewer), the longest time zone,
    # and a policy that takes exactly the room the program leaves it
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    hub = config["lambda-fleet:hub"]
    region = min(COMMERCIAL_REGIONS, key=len)
    hub["region"] = region
    for layer, arns in config["lambda-fleet:managed_layers"].items():
        arn = arns["ap-south-1"].replace(":ap-south-1:", f":{region}:")
        config["lambda-fleet:managed_layers"][layer] = {region: arn}
    config["lambda-fleet:schedule_time_zone"] = max(available_timezones(), key=len)
    room = LAMBDA_ENVIRONMENT_BYTES - FIXED_VARIABLES_MOST_BYTES
    policy = _policy_of_size(room, "CLEANUP_POLICY")
    config["lambda-fleet:functions"] = {"cleanup_manager": {"policy": policy}}
    stack = _longest_stack_name(hub["account_id"], region)
    (tmp_path / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    # WHEN the program runs under mocks
    run = run_program(stack, tmp_path)
    # THEN the function's other variables take at most what the program keeps for them, so
    # every policy the settings accept fits Lambda's 4 KB
    variables = deployed_environment(run, function_spec("cleanup_manager"))
    others = sum(
        len(name.encode()) + len(value.encode())
        for name, value in variables.items()
        if name != "CLEANUP_POLICY"
    )
    assert others <= FIXED_VARIABLES_MOST_BYTES, others
    assert len(variables["CLEANUP_POLICY"]) + len("CLEANUP_POLICY") == room
