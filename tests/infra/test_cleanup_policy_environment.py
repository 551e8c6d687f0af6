"""The stack file's cleanup policy reaches the cleanup function's environment, under mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalog import function_spec
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


def test_a_policy_written_in_the_stack_file_reaches_the_function_with_defaults_filled_in(
    project_with_stack: Any,
) -> None:
    # GIVEN the dev stack with a policy that names volumes only, a tag filter and mode delete
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:functions"] = {
        "cleanup_manager": {
            "policy": {
                "resources": ["volumes"],
                "require_tags": {"cleanup": "allowed"},
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
        "keep_tag": "keep",
        "mode": "delete",
    }


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


def test_a_policy_past_lambdas_environment_limit_stops_the_program_naming_the_function(
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
    # THEN it stops with one line naming the function's settings, the size, the limit and the
    # variable that takes most, instead of a preview that passes and a `pulumi up` that fails
    message = str(raised)
    assert message.startswith(
        f"Pulumi.{STACK}.yaml: functions.cleanup_manager: the environment of cleanup_manager "
        "would be "
    ), message
    assert "bytes, over AWS's limit of 4,096; its largest variable, CLEANUP_POLICY, takes " in (
        message
    )
