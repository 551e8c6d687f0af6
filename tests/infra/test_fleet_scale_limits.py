"""AWS's size limits on inputs that grow with the member accounts, which Pulumi mocks never enforce.

The synthesis benchmark's fleet (benchmarks/synthesis.py, 100 members) must fit every limit;
past the limits the program stops naming `members` before it registers anything AWS would refuse.
Planning 100 members takes seconds, so sizes at 100 are extrapolated from stacks of one and two
members: each input grows by the same entry per member.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.synthesis import generated_stack
from components import fleet_function, triggers
from components.aws_limits import (
    EVENT_BUS_POLICY_CHARACTERS,
    EVENT_PATTERN_CHARACTERS,
    ROLE_INLINE_POLICY_CHARACTERS,
    characters_without_whitespace,
)
from components.settings.cluster_settings import CREATION_ONLY_NODE_GROUP_FIELDS
from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, run_program

BENCHMARK_MEMBERS = 100
STACK = "scale"
BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"


@pytest.fixture(scope="module")
def runs_of_one_and_two_members(tmp_path_factory: pytest.TempPathFactory) -> list[ProgramRun]:
    runs = []
    for count in (1, 2):
        project = tmp_path_factory.mktemp(f"members-{count}")
        _write_project(project, generated_stack(count))
        runs.append(run_program(STACK, project))
    return runs


def _write_project(project: Path, config: dict[str, Any]) -> None:
    (project / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (project / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}))


def _size_at_benchmark_scale(
    runs: list[ProgramRun], size_of: Callable[[ProgramRun], int]
) -> tuple[int, int]:
    """(size at 100 members, growth per member) of one input, from the runs of 1 and 2."""
    one, two = (size_of(run) for run in runs)
    return one + (BENCHMARK_MEMBERS - 1) * (two - one), two - one


def test_the_member_events_bus_policy_of_the_benchmark_fleet_fits_eventbridges_limit(
    runs_of_one_and_two_members: list[ProgramRun],
) -> None:
    # GIVEN the hub bus policy of stacks of one and two members
    def policy_size(run: ProgramRun) -> int:
        (policy,) = run.of_type(BUS_POLICY)
        return len(policy.inputs["policy"])

    # WHEN its size is taken at the benchmark's 100 members
    size, per_member = _size_at_benchmark_scale(runs_of_one_and_two_members, policy_size)
    # THEN it is within EventBridge's 10,240 characters, with room for more members
    assert size <= EVENT_BUS_POLICY_CHARACTERS, (size, per_member)
    assert per_member <= 40, per_member


def test_a_member_events_bus_policy_past_eventbridges_limit_stops_the_program_naming_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit below the policy of two members (each adds 33 characters: past 10,240 from
    # about 300 members)
    monkeypatch.setattr(triggers, "EVENT_BUS_POLICY_CHARACTERS", 300)
    _write_project(tmp_path, generated_stack(2))
    # WHEN the program runs
    with pytest.raises(ProgramFailedError) as failure:
        run_program(STACK, tmp_path)
    raised = failure.value
    # THEN it stops with one line naming `members`, the size and the limit, and no bus policy
    message = str(raised)
    assert f"Pulumi.{STACK}.yaml: members: the member-events bus policy would be " in message
    assert "characters with these member accounts, over AWS's limit of 300;" in message
    assert not any(BUS_POLICY in urn for urn in raised.registered)


def _largest_function_policy(run: ProgramRun) -> int:
    return max(
        characters_without_whitespace(policy.inputs["policy"])
        for policy in run.of_type(ROLE_POLICY)
        if policy.inputs["name"] == "least-privilege"
    )


def test_the_function_policies_of_the_benchmark_fleet_fit_iams_role_policy_limit(
    runs_of_one_and_two_members: list[ProgramRun],
) -> None:
    # GIVEN the hub functions' role policies in stacks of one and two members
    # WHEN the largest one's size is taken at the benchmark's 100 members
    size, per_member = _size_at_benchmark_scale(
        runs_of_one_and_two_members, _largest_function_policy
    )
    # THEN it is within IAM's 10,240 characters (white space not counted), with room for more
    assert size <= ROLE_INLINE_POLICY_CHARACTERS, (size, per_member)
    assert per_member <= 20, per_member


def test_a_function_policy_past_iams_limit_stops_the_program_naming_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit below the policy of the cost analyzer's role with two members (each adds 15
    # characters: past 10,240 from about 390 members)
    monkeypatch.setattr(fleet_function, "ROLE_INLINE_POLICY_CHARACTERS", 3_000)
    _write_project(tmp_path, generated_stack(2))
    # WHEN the program runs
    with pytest.raises(ProgramFailedError) as failure:
        run_program(STACK, tmp_path)
    raised = failure.value
    # THEN it stops with one line naming `members`, the function, the size and the limit
    message = str(raised)
    assert f"Pulumi.{STACK}.yaml: members: the policy of cost_analyzer's role would be " in message
    assert "characters with these member accounts, over AWS's limit of 3,000;" in message
    assert "\n" not in message.strip()


def _event_pattern_sizes(run: ProgramRun) -> dict[str, int]:
    return {rule.name: len(rule.inputs["eventPattern"]) for rule in run.of_type(EVENT_RULE)}


def test_the_event_patterns_of_the_benchmark_fleet_fit_eventbridges_limit(
    runs_of_one_and_two_members: list[ProgramRun],
) -> None:
    # GIVEN the event rules of stacks of one and two members (the hub's, in both)
    one, two = (_event_pattern_sizes(run) for run in runs_of_one_and_two_members)
    # WHEN each pattern's size is taken at the benchmark's 100 members
    at_benchmark_scale = {
        rule: one[rule] + (BENCHMARK_MEMBERS - 1) * (two[rule] - one[rule])
        for rule in one.keys() & two.keys()
    }
    # THEN each is within EventBridge's 2,048 characters
    assert at_benchmark_scale
    assert max(at_benchmark_scale.values()) <= EVENT_PATTERN_CHARACTERS, at_benchmark_scale


def test_an_event_pattern_past_eventbridges_limit_stops_the_program_naming_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit below the pattern of change_validator's rule with two members (each member
    # adds 16 characters: past 2,048 from 114 members), above the hub's other patterns
    monkeypatch.setattr(triggers, "EVENT_PATTERN_CHARACTERS", 200)
    _write_project(tmp_path, generated_stack(2))
    # WHEN the program runs
    with pytest.raises(ProgramFailedError) as failure:
        run_program(STACK, tmp_path)
    raised = failure.value
    # THEN it stops with one line naming `members`, the rule, the size and the limit
    message = str(raised)
    assert (
        f"Pulumi.{STACK}.yaml: members: the event pattern of change_validator's eks-change rule "
        "would be "
    ) in message
    assert "characters with these member accounts, over AWS's limit of 200;" in message
    assert not any(EVENT_RULE in urn and "eks-change" in urn for urn in raised.registered)


def _member_with_existing_clusters(count: int) -> dict[str, Any]:
    """The dev stack with its member declaring `count` existing clusters of the longest names."""
    config = generated_stack(1)
    (member,) = config["lambda-fleet:members"]
    (template,) = member["clusters"]
    node_groups = [
        {key: value for key, value in group.items() if key not in CREATION_ONLY_NODE_GROUP_FIELDS}
        for group in template["node_groups"]
    ]
    member["clusters"] = [
        {
            "name": f"existing-cluster-of-another-stack-{index:05d}",
            "region": template["region"],
            "existing": True,
            "node_groups": node_groups,
        }
        for index in range(count)
    ]
    return config


def test_a_member_role_policy_past_iams_limit_stops_the_program_naming_members(
    tmp_path: Path,
) -> None:
    # GIVEN a member account declaring 120 clusters of 40-character names: the node group
    # updates of its scaler's member role name each cluster (about 90 characters each)
    _write_project(tmp_path, _member_with_existing_clusters(120))
    # WHEN the program runs
    with pytest.raises(ProgramFailedError) as failure:
        run_program(STACK, tmp_path)
    raised = failure.value
    # THEN it stops with one line naming `members`, the function, the account, size and limit,
    # before any member role policy is registered
    message = str(raised)
    assert (
        f"Pulumi.{STACK}.yaml: members: the member role policy of eks_scaler in account "
        "500000000000 would be "
    ) in message
    assert "characters with the clusters declared there, over AWS's limit of 10,240;" in message
    assert "\n" not in message.strip()
    assert not any(ROLE_POLICY in urn and "member" in urn for urn in raised.registered)
