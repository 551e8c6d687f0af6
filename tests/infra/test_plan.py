"""`fleetctl plan`: the tree for people, and JSON that is byte-identical run after run; the
functions the plan deploys, whose environments the local tools build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from catalog import FUNCTIONS
from fleetctl.exceptions import ProgramFailedError
from fleetctl.handler_environment import deployed_environment, deployed_functions
from fleetctl.mocked_program import REPO_ROOT, run_program
from fleetctl.plan import render_json, render_tree


def _plan(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetctl", "plan", *arguments],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
    )


def _with_hash_seed(seed: str) -> dict[str, str]:
    """This environment with a set hash seed: a set's order follows string hashes, and a seed
    inherited by both runs (one exported in the shell or by CI) would give both one order."""
    return {**os.environ, "PYTHONHASHSEED": seed}


def test_plan_json_is_byte_identical_across_two_runs():
    # GIVEN the same source WHEN the plan is printed twice, in two fresh processes whose string
    # hashes differ
    first = _plan("--stack", "prod", "--json", env=_with_hash_seed("1")).stdout
    second = _plan("--stack", "prod", "--json", env=_with_hash_seed("2")).stdout
    # THEN the bytes are the same, and the document is sorted JSON
    assert first == second
    # and it names no path of this checkout, so base and head plans from two checkouts compare
    assert str(REPO_ROOT) not in first
    document = json.loads(first)
    urns = [resource["urn"] for resource in document["resources"]]
    assert urns == sorted(urns)
    assert document["resource_count"] == len(urns)


def test_plan_json_groups_counts_by_account_and_region(program_runs):
    # GIVEN the dev stack's program run WHEN its plan is rendered as `plan --json` renders it
    # (its bytes from a process of their own: test_plan_json_is_byte_identical_across_two_runs)
    document = json.loads(render_json(program_runs["dev"]))
    # THEN each account and region has its counts, by type, adding up to its total
    assert set(document["summary"]) >= {"111111111111/ap-south-1", "222222222222/ap-south-1"}
    for group in document["summary"].values():
        assert group["total"] == sum(group["by_type"].values())


def test_plan_tree_names_each_account_and_region_with_counts(program_runs):
    text = render_tree(program_runs["prod"])
    assert text.startswith("Stack prod: ")
    for header in (
        "account 100000000001 (platform-hub) in ap-south-1",
        "account 200000000002 (payments) in ap-south-1",
        "account 200000000002 (payments) in eu-west-1",
        "account 300000000003 (analytics) in eu-west-1",
        "account 400000000004 (shared-services) in ap-south-1",
    ):
        assert header in text
    assert "  counts: " in text


def test_text_plan_shows_what_a_reviewer_checks(program_runs):
    # GIVEN the dev stack's plan as text
    text = render_tree(program_runs["dev"])
    lines = text.splitlines()

    def line_of(name: str) -> str:
        return next(line for line in lines if f"  {name}  " in line or line.endswith(f"  {name}"))

    # THEN schedules show their expression and time zone, node groups their sizes,
    # functions their memory and timeout, and roles who may assume them
    assert "[cron(0 8 ? * MON,TUE,WED,THU,FRI *) Asia/Kolkata, action scale_up]" in line_of(
        "fleet-hub-triggers-eks-scaler-scale-up-dev-workloads-dev-apps"
    )
    assert "min/desired/max 0/2/6" in line_of("fleet-dev-workloads-dev-apps-batch-spot")
    assert "[256 MB, 120 s, python3.12 arm64" in line_of("fleet-hub-eks-scaler-function")
    assert "[assumed by lambda.amazonaws.com]" in line_of("fleet-hub-eks-scaler-role")


def test_the_plan_says_when_the_archives_carry_sources_only():
    # GIVEN a machine where no Python 3.12 can be found (no variable, nothing on PATH or in pyenv)
    shell = {
        name: value for name, value in os.environ.items() if name != "LAMBDA_FLEET_RUNTIME_PYTHON"
    }
    shell.update({"PATH": "", "PYENV_ROOT": "/nonexistent"})
    # WHEN the dev stack, whose `bytecode` is `auto`, is planned
    completed = _plan("--stack", "dev", env=shell)
    # THEN the plan is made, and says that the archives carry sources Lambda compiles at every
    # cold start (README, Two commands)
    assert completed.stdout.startswith("Stack dev: ")
    assert "the archives carry Python sources only" in completed.stderr
    assert "compiles at every cold start" in completed.stderr


DUPLICATE_URN_PROGRAM = """
import pulumi


class Part(pulumi.ComponentResource):
    def __init__(self, name, parent=None):
        super().__init__("test:index:Part", name, None, pulumi.ResourceOptions(parent=parent))


class Whole(pulumi.ComponentResource):
    def __init__(self, name, parent=None):
        super().__init__("test:index:Whole", name, None, pulumi.ResourceOptions(parent=parent))
        Part("part", parent=self)


Whole("first")
Part("part", parent=Whole("second"))
"""

DISTINCT_CHAINS_PROGRAM = """
import pulumi


class Part(pulumi.ComponentResource):
    def __init__(self, name, parent=None):
        super().__init__("test:index:Part", name, None, pulumi.ResourceOptions(parent=parent))


class Whole(pulumi.ComponentResource):
    def __init__(self, name, parent=None):
        super().__init__("test:index:Whole", name, None, pulumi.ResourceOptions(parent=parent))


class Outer(pulumi.ComponentResource):
    def __init__(self, name):
        super().__init__("test:index:Outer", name, None, None)


# One Part under Whole, one under Outer's Whole: the engine's URNs carry the whole chain of
# parent types, so the two differ.
Part("part", parent=Whole("alone"))
Part("part", parent=Whole("inner", parent=Outer("outer")))
"""


def _project(tmp_path: Path, program: str) -> Path:
    (tmp_path / "__main__.py").write_text(program)
    (tmp_path / "Pulumi.urns.yaml").write_text("config: {}\n")
    return tmp_path


def test_the_plan_refuses_two_resources_the_engine_would_give_one_urn(tmp_path: Path) -> None:
    # GIVEN a program that registers a second `test:index:Part` named `part` under a second
    # component of the same type: the engine's URN names the parent's type, not its name, so
    # both have one URN and `pulumi preview` stops at the second
    project = _project(tmp_path, DUPLICATE_URN_PROGRAM)
    # WHEN its plan is made
    with pytest.raises(ProgramFailedError) as failure:
        run_program("urns", project)
    # THEN it fails as the engine does, naming the URN, instead of listing both resources
    assert str(failure.value) == (
        "duplicate resource URN "
        "'urn:pulumi:urns::lambda-fleet::test:index:Whole$test:index:Part::part': the engine "
        "refuses a second resource of one type and name under parents of one type"
    )


def test_the_plan_takes_one_name_under_parents_of_other_types(tmp_path: Path) -> None:
    # GIVEN a program with a `part` under a Whole, and another under a Whole inside an Outer
    project = _project(tmp_path, DISTINCT_CHAINS_PROGRAM)
    # WHEN its plan is made
    run = run_program("urns", project)
    # THEN both are registered: their URNs differ by the chain of their parents' types
    assert [resource.name for resource in run.of_type("test:index:Part")] == ["part", "part"]


def test_the_local_tools_build_only_the_functions_a_stack_deploys(program_runs) -> None:
    # GIVEN prod, whose stack file switches cleanup_manager off
    run = program_runs["prod"]
    # WHEN the local tools list the functions whose environments the demo's world builds
    deployed = deployed_functions(run)
    # THEN they are every other catalog function, each with the plan's variables (building
    # prod's world, for `invoke`'s default mode and the demo, asked cleanup_manager's variables
    # too and stopped: "the prod stack deploys no function with handler ...")
    assert [spec.name for spec in deployed] == [
        spec.name for spec in FUNCTIONS if spec.name != "cleanup_manager"
    ]
    assert all(deployed_environment(run, spec) for spec in deployed)
