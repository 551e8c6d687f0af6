"""Two stacks may share a hub account (and member accounts), and AWS keeps one IAM role, one
schedule group, one queue... per name there. Every name the fleet gives is the stack's prefix
(`lf-<stack>`, `lambda-fleet-<stack>`) and a tail, so two stacks can only want one name when one
stack's name is the other's followed by the first part of a tail whose rest is another tail:
`lf-x` + `-backup-scheduler` is `lf-x-backup` + `-scheduler`. These tests find every such stack
name from the names the program registers, and run the program under it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catalog.functions import FUNCTIONS
from components.naming import function_name, scheduler_role_name
from components.settings import PROJECT
from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

STACK = "dev"
# The inputs that carry a resource's own name, unique per account (or account and region).
NAME_INPUTS = ("name", "bucket", "layerName", "dashboardName")


def _stack_prefixes(stack: str) -> tuple[str, ...]:
    return (f"lf-{stack}", f"{PROJECT}-{stack}")


def _names_by_kind(run: ProgramRun, stack: str) -> dict[tuple[str, str], set[str]]:
    """(resource type, everything up to the stack's prefix) -> the tails after it, of each name
    the run registers that carries the stack's prefix."""
    tails: dict[tuple[str, str], set[str]] = defaultdict(set)
    for resource in run.resources:
        if not resource.custom:
            continue
        for key in NAME_INPUTS:
            name = resource.inputs.get(key)
            if not isinstance(name, str):
                continue
            for prefix in _stack_prefixes(stack):
                start = name.find(prefix)
                if start >= 0:
                    head = name[: start + len(prefix)]
                    tails[(resource.type, head.removesuffix(stack))].add(name[len(head) :])
                    break
    return tails


def _full_names(tails: dict[tuple[str, str], set[str]], stack: str) -> set[tuple[str, str]]:
    return {
        (kind, f"{head}{stack}{tail}") for (kind, head), found in tails.items() for tail in found
    }


def _stack_names_that_could_meet(tails: dict[tuple[str, str], set[str]], stack: str) -> set[str]:
    """Each `<stack><part>` whose prefix plus a tail `b` is `stack`'s prefix plus a tail `a` of
    the same kind: `a` is `<part>` followed by `b`."""
    return {
        f"{stack}{longer[: len(longer) - len(shorter)]}"
        for found in tails.values()
        for longer in found
        for shorter in found
        if longer != shorter and longer.endswith(shorter)
    }


def test_no_stack_name_gives_a_name_another_stack_gives(
    program_runs: dict[str, ProgramRun],
    project_with_stack: Callable[[str, dict[str, Any]], Path],
) -> None:
    # GIVEN the names the dev stack registers, and every stack name that could give one of them
    # with its own prefix and tails (`dev-backup`: `-backup-scheduler` ends in `-scheduler`)
    # (the dev stack deploys every catalog function, so the names of each are among them)
    deployed = {
        function.inputs["name"]
        for function in program_runs[STACK].of_type("aws:lambda/function:Function")
    }
    assert deployed == {function_name(STACK, spec.name) for spec in FUNCTIONS}
    tails = _names_by_kind(program_runs[STACK], STACK)
    candidates = _stack_names_that_could_meet(tails, STACK)
    assert f"{STACK}-backup" in candidates
    dev_names = _full_names(tails, STACK)
    config = read_stack_file(REPO_ROOT / f"Pulumi.{STACK}.yaml")
    for candidate in sorted(candidates):
        # WHEN the program runs for that stack name with the dev stack file
        try:
            run = run_program(candidate, project_with_stack(candidate, config))
        except ProgramFailedError as refused:
            # THEN it is refused before anything is registered, naming the stack's name
            # (`dev-change-validator-callbacks` is too long for the hub's bucket names)
            assert f"Pulumi.{candidate}.yaml: stack name:" in str(refused)
            continue
        # OR none of its names is one the dev stack gives a resource of the same kind
        shared = _full_names(_names_by_kind(run, candidate), candidate) & dev_names
        assert shared == set(), candidate


def test_a_stack_that_no_other_can_meet_keeps_its_scheduler_role_name(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the dev and prod stacks, whose names end in no part of a function's name
    for stack in ("dev", "prod"):
        # WHEN their roles are registered
        roles = {
            role.inputs.get("name") for role in program_runs[stack].of_type("aws:iam/role:Role")
        }
        # THEN the scheduler role keeps the name it always had: renaming a role replaces it
        assert f"lf-{stack}-scheduler" in roles
        assert scheduler_role_name(stack) == f"lf-{stack}-scheduler"


def test_the_scheduler_role_of_a_stack_named_after_a_function_prefix_is_its_own() -> None:
    # GIVEN stack `x`, whose backup_scheduler role is `lf-x-backup-scheduler`, and stack
    # `x-backup` in the same hub account WHEN the scheduler role of `x-backup` is named
    name = scheduler_role_name("x-backup")
    # THEN it is not `x`'s function role, and says what it is
    assert name == "lf-x-backup-scheduler-role"
