"""A member's `regions` reordered or extended: what moves in the plan, and why nothing is replaced.

A member's IAM (its member roles, their policies and the event-forwarding role) is created
through the provider of its first region. Reordering `regions` therefore hands those resources to
another provider of the same account. Their URNs stay; only the provider reference changes, and
the Pulumi engine (3.151.0 and later) asks the new provider's DiffConfig whether that requires a
replacement. pulumi-aws v7 replaces nothing for a changed `region`, and IAM resources have no
region of their own, so the move is a state update, not a replacement, as long as the two
providers of an account differ in `region` only: what these tests hold the program to.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet

from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program
from fleetctl.plan import plan_document
from fleetctl.plan_diff import diff_plans

STACK = "prod"
INVENTORY_TYPE = "aws:s3/bucketObjectv2:BucketObjectv2"
PROVIDER_TYPE = "pulumi:providers:aws"


def _prod_with_regions(regions: list[str]) -> dict[str, Any]:
    """The prod stack file with its first member (two regions) managed in `regions`."""
    config = copy.deepcopy(read_stack_file(REPO_ROOT / f"Pulumi.{STACK}.yaml"))
    config["lambda-fleet:members"][0]["regions"] = regions
    return config


def _first_member(config: dict[str, Any]) -> dict[str, Any]:
    return config["lambda-fleet:members"][0]


def _plan_with(
    config: dict[str, Any], project_with_stack: Callable[[str, dict[str, Any]], Path]
) -> tuple[ProgramRun, dict[str, Any]]:
    run = run_program(STACK, project_with_stack(STACK, config))
    return run, plan_document(run)


def test_reordering_a_members_regions_moves_only_its_iam_to_a_provider_differing_in_region(
    program_runs, project_with_stack
):
    # GIVEN prod, whose first member is managed in two regions, and the same stack with that
    # member's regions in the other order
    base_run = program_runs[STACK]
    member = _first_member(read_stack_file(REPO_ROOT / f"Pulumi.{STACK}.yaml"))
    assert len(member["regions"]) == 2, "the test needs a member with two regions"
    head_run, head = _plan_with(
        _prod_with_regions(list(reversed(member["regions"]))), project_with_stack
    )
    # WHEN the two plans are compared
    difference = diff_plans(plan_document(base_run), head)
    # THEN no resource is added or removed: every URN stays
    assert difference.added == [] and difference.removed == []
    # AND besides the inventory's list of regions, only IAM resources change, in placement only
    moved = [resource for resource, _ in difference.changed if resource["type"] != INVENTORY_TYPE]
    assert moved, "the member's IAM no longer follows its first region: revisit this module"
    for resource, changes in difference.changed:
        if resource["type"] == INVENTORY_TYPE:
            assert [c.path for c in changes] == [
                f"inputs.content.members[name={member['name']}].regions"
            ]
            continue
        assert resource["type"].startswith("aws:iam/"), resource["urn"]
        assert resource["account_id"] == member["account_id"], resource["urn"]
        assert {c.path for c in changes} == {"placement.provider", "placement.region"}
    # AND each moved resource's old and new providers differ in `region` only, the one provider
    # setting whose change pulumi-aws v7 does not answer with a replacement
    base_resources, head_resources = base_run.by_urn(), head_run.by_urn()
    for resource in moved:
        old_provider = base_run.provider_of(base_resources[resource["urn"]])
        new_provider = head_run.provider_of(head_resources[resource["urn"]])
        assert old_provider is not None and new_provider is not None
        assert old_provider.urn != new_provider.urn
        differing = {
            key
            for key in old_provider.inputs.keys() | new_provider.inputs.keys()
            if old_provider.inputs.get(key) != new_provider.inputs.get(key)
        }
        assert differing == {"region"}, (resource["urn"], differing)


def test_adding_a_region_after_a_members_regions_only_adds_that_regions_resources(
    program_runs, project_with_stack
):
    # GIVEN prod, and the same stack with one more region after its first member's regions
    member = _first_member(read_stack_file(REPO_ROOT / f"Pulumi.{STACK}.yaml"))
    added_region = "us-east-1"
    assert added_region not in member["regions"]
    _, head = _plan_with(_prod_with_regions([*member["regions"], added_region]), project_with_stack)
    # WHEN the two plans are compared
    difference = diff_plans(plan_document(program_runs[STACK]), head)
    # THEN nothing is removed, and nothing changes but the inventory's list of regions
    assert difference.removed == []
    assert [(r["type"], [c.path for c in cs]) for r, cs in difference.changed] == [
        (INVENTORY_TYPE, [f"inputs.content.members[name={member['name']}].regions"])
    ]
    # AND what is added is the new region's provider and forwarding, all in that account and
    # region
    assert {r["type"] for r in difference.added} == {
        PROVIDER_TYPE,
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
    }
    assert {(r["account_id"], r["region"]) for r in difference.added} == {
        (member["account_id"], added_region)
    }


def test_a_region_added_in_front_moves_no_cluster_without_one_it_is_refused_until_they_name_it(
    program_runs, project_with_stack
):
    # GIVEN prod, whose member analytics is in one region with clusters that name none, and the
    # same stack with a region added in front of it
    config = copy.deepcopy(read_stack_file(REPO_ROOT / f"Pulumi.{STACK}.yaml"))
    member = config["lambda-fleet:members"][1]
    (home,) = member["regions"]
    assert all("region" not in cluster for cluster in member["clusters"])
    member["regions"] = ["us-east-1", home]
    # WHEN the program runs
    try:
        run_program(STACK, project_with_stack(STACK, config))
    except ProgramFailedError as failure:
        refusal = failure
    else:
        raise AssertionError("a cluster without a region was moved to the new first region")
    # THEN it stops before registering anything, naming the first cluster's region: without one
    # the cluster would follow the first region, and be created again there
    assert "members[1].clusters[0].region: required for cluster" in str(refusal)
    assert [urn for urn in refusal.registered if "pulumi:pulumi:Stack" not in urn] == []
    # AND once each cluster names the region it is in, nothing moves but the member's IAM
    # (handed to the new first region's provider, see above) and the inventory's regions, and
    # all that is added is in the new region
    for cluster in member["clusters"]:
        cluster["region"] = home
    _, head = _plan_with(config, project_with_stack)
    difference = diff_plans(plan_document(program_runs[STACK]), head)
    assert difference.removed == []
    for resource, changes in difference.changed:
        if resource["type"] == INVENTORY_TYPE:
            continue
        assert resource["type"].startswith("aws:iam/"), resource["urn"]
        assert {c.path for c in changes} == {"placement.provider", "placement.region"}
    assert {(r["account_id"], r["region"]) for r in difference.added} == {
        (member["account_id"], "us-east-1")
    }


def test_the_program_refuses_a_pulumi_cli_that_would_replace_iam_handed_to_another_provider(
    program_runs,
):
    # GIVEN the dev stack's program run offline (no CLI: the mock engine admits every range)
    run = program_runs["dev"]
    # WHEN the CLI versions it required of the engine are read
    [requirement] = run.cli_version_requirements
    # THEN it required them before registering any resource
    assert requirement.registered_before == 0
    # AND the range admits the first engine that asks DiffConfig before replacing a resource
    # handed to another explicit provider (3.151.0), and refuses the older ones, which replace it
    required = SpecifierSet(requirement.version_range)
    assert "3.151.0" in required and "3.272.0" in required
    assert "3.150.0" not in required and "3.99.0" not in required
