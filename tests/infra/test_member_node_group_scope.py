"""Member roles change node groups only on the clusters the stack file declares in their account
(components/member_permissions.py): another team's cluster in a member account stays out of reach
of a bug or a crafted `/scale` request."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.functions import function_spec
from components import member_access
from components.member_permissions import ACTION_SCOPES, DeclaredCluster
from fleet_shared.cleanup_policy import CleanupPolicy
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

UPDATE_NODEGROUP_CONFIG = "eks:UpdateNodegroupConfig"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# The functions whose member roles change node groups (catalog `member_actions`).
NODE_GROUP_CHANGERS = ("eks_scaler", "spot_optimizer")
# prod: one account with a cluster in each of its two regions.
TWO_REGION_ACCOUNT = "200000000002"
# prod: an account with a created and an existing cluster, in one region.
CREATED_AND_EXISTING_ACCOUNT = "300000000003"
# prod: the account whose only cluster the "no clusters" stack leaves out.
SHARED_SERVICES_ACCOUNT = "400000000004"
NO_CLUSTERS_STACK = "noclusters"
REORDERED_STACK = "reordered"


def _member_policies(run: ProgramRun, account_id: str) -> dict[str, str]:
    """The member-actions policy JSON of each member role in `account_id`, by role name."""
    return {
        policy.inputs["role"]: policy.inputs["policy"]
        for policy in run.of_type(ROLE_POLICY)
        if policy.inputs.get("name") == "member-actions"
        and policy.placement is not None
        and policy.placement.account_id == account_id
    }


def _changer_policy(run: ProgramRun, account_id: str, function: str) -> dict[str, Any]:
    role = f"lambda-fleet-{run.stack}-member-{function.replace('_', '-')}"
    return json.loads(_member_policies(run, account_id)[role])


def _update_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if UPDATE_NODEGROUP_CONFIG in s["Action"]]


def _granted_update_patterns(run: ProgramRun) -> list[str]:
    """Every Resource pattern under which any member role of the run may update a node group."""
    return [
        pattern
        for policy in run.of_type(ROLE_POLICY)
        if policy.inputs.get("name") == "member-actions"
        for statement in _update_statements(json.loads(policy.inputs["policy"]))
        for pattern in statement["Resource"]
    ]


def _iam_matches(pattern: str, arn: str) -> bool:
    """IAM's Resource matching: `*` any run of characters (slashes too), `?` one; the fleet's
    patterns hold no `[`, which fnmatch alone would read as a set."""
    assert "[" not in pattern, pattern
    return fnmatchcase(arn, pattern)


def _run_prod_variant(tmp_path: Path, stack: str, change: Any) -> ProgramRun:
    config = read_stack_file(REPO_ROOT / "Pulumi.prod.yaml")
    change(config["lambda-fleet:members"])
    (tmp_path / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return run_program(stack, tmp_path)


def _member(members: list[dict[str, Any]], account_id: str) -> dict[str, Any]:
    (member,) = [m for m in members if m["account_id"] == account_id]
    return member


def test_node_group_updates_list_exactly_the_node_groups_of_the_accounts_declared_clusters(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the prod stack: one account with payments-in (ap-south-1) and payments-eu
    # (eu-west-1), another with analytics (created) and analytics-legacy (existing)
    run = program_runs["prod"]
    expected = {
        TWO_REGION_ACCOUNT: [
            "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in/api/*",
            "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in/system/*",
            "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in/workers-spot/*",
            "arn:aws:eks:eu-west-1:200000000002:nodegroup/payments-eu/system/*",
            "arn:aws:eks:eu-west-1:200000000002:nodegroup/payments-eu/workers-spot/*",
        ],
        CREATED_AND_EXISTING_ACCOUNT: [
            "arn:aws:eks:eu-west-1:300000000003:nodegroup/analytics-legacy/etl-spot/*",
            "arn:aws:eks:eu-west-1:300000000003:nodegroup/analytics-legacy/system/*",
            "arn:aws:eks:eu-west-1:300000000003:nodegroup/analytics/spark-spot/*",
            "arn:aws:eks:eu-west-1:300000000003:nodegroup/analytics/system/*",
        ],
    }
    for account_id, arns in expected.items():
        for function in NODE_GROUP_CHANGERS:
            # WHEN the function's member role policy in that account is read
            statements = _update_statements(_changer_policy(run, account_id, function))
            # THEN one statement grants the update, on exactly those clusters' declared node
            # groups (the ARN ends in the id EKS gives each), in their own regions, sorted, and
            # on nothing else
            assert len(statements) == 1, (account_id, function)
            (statement,) = statements
            assert statement["Action"] == [UPDATE_NODEGROUP_CONFIG]
            assert statement["Resource"] == arns, (account_id, function)
            assert "Condition" not in statement


def test_a_node_group_of_an_undeclared_cluster_matches_no_granted_update_pattern(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN every pattern under which a prod member role may update a node group
    patterns = _granted_update_patterns(program_runs["prod"])
    declared = "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in/api/0ac7-11ee"
    undeclared = [
        # a node group another tool added to a declared cluster
        "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in/general/0ac7-11ee",
        # a name that only starts with a declared node group's
        "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in/api-canary/0ac7-11ee",
        # another team's cluster in the same account and region
        "arn:aws:eks:ap-south-1:200000000002:nodegroup/team-batch/workers/0ac7-11ee",
        # a name that only starts with a declared one
        "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in-shadow/general/0ac7-11ee",
        # a declared cluster's name in the account's other region
        "arn:aws:eks:eu-west-1:200000000002:nodegroup/payments-in/general/0ac7-11ee",
        # a declared cluster's name in a region the account does not use
        "arn:aws:eks:us-east-1:200000000002:nodegroup/payments-in/general/0ac7-11ee",
        # another member's cluster name, in this account
        "arn:aws:eks:ap-south-1:200000000002:nodegroup/tooling/general/0ac7-11ee",
        # a declared cluster's name in an account that is no member
        "arn:aws:eks:ap-south-1:999999999999:nodegroup/payments-in/general/0ac7-11ee",
    ]
    # WHEN each node group ARN is matched as IAM matches a statement's Resource
    # THEN a declared cluster's node group is reachable (the matcher can say yes)
    assert any(_iam_matches(pattern, declared) for pattern in patterns)
    # AND no node group the stack file does not declare is
    for arn in undeclared:
        assert [p for p in patterns if _iam_matches(p, arn)] == [], arn


@pytest.fixture(scope="module")
def no_clusters_run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    """prod, with the shared-services account declaring no cluster."""

    def drop_clusters(members: list[dict[str, Any]]) -> None:
        _member(members, SHARED_SERVICES_ACCOUNT)["clusters"] = []

    return _run_prod_variant(
        tmp_path_factory.mktemp("noclusters"), NO_CLUSTERS_STACK, drop_clusters
    )


def test_an_account_without_declared_clusters_gets_no_node_group_update_statement(
    no_clusters_run: ProgramRun,
) -> None:
    for function in NODE_GROUP_CHANGERS:
        # GIVEN an account that declares no cluster WHEN its member role policies are read
        policy = _changer_policy(no_clusters_run, SHARED_SERVICES_ACCOUNT, function)
        # THEN no statement grants the update (IAM refuses an empty Resource list)
        assert _update_statements(policy) == [], function
        assert all(statement["Resource"] for statement in policy["Statement"]), function
        # AND the role keeps its read-only actions
        granted = {action for s in policy["Statement"] for action in s["Action"]}
        assert "eks:DescribeNodegroup" in granted, function
    # AND the other accounts keep theirs
    policy = _changer_policy(no_clusters_run, TWO_REGION_ACCOUNT, "eks_scaler")
    assert len(_update_statements(policy)) == 1


def test_the_same_clusters_in_another_order_give_byte_identical_member_policies(
    program_runs: dict[str, ProgramRun], tmp_path: Path
) -> None:
    # GIVEN the prod stack, and the same stack with each account's clusters in reverse order
    def reverse_clusters(members: list[dict[str, Any]]) -> None:
        for member in members:
            member["clusters"].reverse()

    original = program_runs["prod"]
    reordered = _run_prod_variant(tmp_path, REORDERED_STACK, reverse_clusters)
    for account_id in (TWO_REGION_ACCOUNT, CREATED_AND_EXISTING_ACCOUNT, SHARED_SERVICES_ACCOUNT):
        # WHEN both are synthesised THEN every member role policy is the same, byte for byte
        # (the role names, and the stack tag backup_scheduler's conditions name, differ only by
        # the stack name)
        before = _member_policies(original, account_id)
        after = {
            role.replace(f"-{REORDERED_STACK}-", "-prod-"): text.replace(
                f'"{REORDERED_STACK}"', '"prod"'
            )
            for role, text in _member_policies(reordered, account_id).items()
        }
        assert after == before, account_id
        # AND the node group updates name the account's node groups, not every one
        for function in NODE_GROUP_CHANGERS:
            (statement,) = _update_statements(_changer_policy(original, account_id, function))
            assert all("/*/*" not in arn for arn in statement["Resource"])


def test_an_account_whose_node_groups_pass_iams_limit_is_reached_by_whole_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN prod's two-region account, its node groups, and a limit between its member role
    # policies reached by cluster (about 700 characters) and by node group (about 900)
    monkeypatch.setattr(member_access, "ROLE_INLINE_POLICY_CHARACTERS", 800)
    warned: list[str] = []
    monkeypatch.setattr(
        member_access.pulumi.log, "warn", lambda message, *_, **__: warned.append(message)
    )
    args = member_access.MemberAccessArgs(
        stack="prod",
        partition="aws",
        member_account_id=TWO_REGION_ACCOUNT,
        hub_account_id="100000000001",
        functions=[],
        clusters=[
            DeclaredCluster("ap-south-1", "payments-in", ("system", "api", "workers-spot")),
            DeclaredCluster("eu-west-1", "payments-eu", ("system", "workers-spot")),
        ],
        cleanup_policy=CleanupPolicy(),
        provider=None,  # type: ignore[arg-type]
    )
    for function in NODE_GROUP_CHANGERS:
        # WHEN the function's member role policy there is built
        policy = json.loads(member_access.member_role_policy(args, function_spec(function)))
        # THEN its node group updates name the account's clusters as a whole
        (statement,) = _update_statements(policy)
        assert statement["Resource"] == [
            "arn:aws:eks:ap-south-1:200000000002:nodegroup/payments-in/*/*",
            "arn:aws:eks:eu-west-1:200000000002:nodegroup/payments-eu/*/*",
        ], function
    # AND a warning names each function, the account, the size by node group and the limit
    assert len(warned) == len(NODE_GROUP_CHANGERS)
    assert all(
        f"in account {TWO_REGION_ACCOUNT} would be " in message
        and "over IAM's limit of 800" in message
        for message in warned
    ), warned


def test_every_eks_member_action_that_is_not_a_read_reaches_only_the_declared_clusters() -> None:
    # GIVEN every EKS member action the scope table declares
    eks_actions = [action for action in ACTION_SCOPES if action.startswith("eks:")]
    # WHEN those that are not reads (Describe, List) are picked out
    changing = [
        action
        for action in eks_actions
        if not action.split(":", 1)[1].startswith(("Describe", "List"))
    ]
    # THEN there is at least the node group update, and each is scoped per declared cluster
    assert UPDATE_NODEGROUP_CONFIG in changing
    for action in changing:
        assert ACTION_SCOPES[action].per_declared_cluster, action
