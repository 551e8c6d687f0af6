"""The README's "Teardown" lists what `pulumi destroy` leaves behind because the program never
created it: a plan that creates one of them makes that list false (destroy would delete it). It
also says how to turn off the deletion protection that makes destroy fail on a created cluster."""

from __future__ import annotations

import re

import botocore.session

from components.settings import ClusterSettings
from fleetctl.mocked_program import REPO_ROOT, ProgramRun


def _teardown_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    return " ".join(readme.split("\n## Teardown\n", 1)[1].split("\n## ", 1)[0].split())


def test_eks_creates_the_control_plane_log_group_the_readme_says_destroy_leaves(
    stack_run: ProgramRun,
) -> None:
    # GIVEN the README's word that EKS, not the program, creates each cluster's control-plane
    # log group
    assert "the EKS control-plane log group `/aws/eks/<cluster>/cluster` (EKS creates it)" in (
        _teardown_section()
    )
    # WHEN the stack's plan is read
    clusters = stack_run.of_type("eks:index:Cluster")
    log_groups = [
        group.inputs.get("name", "")
        for group in stack_run.of_type("aws:cloudwatch/logGroup:LogGroup")
    ]
    # THEN every created cluster sends control-plane logs, and the program creates no log group
    # under /aws/eks/ for them to go to
    assert clusters
    assert all(cluster.inputs["enabledClusterLogTypes"] for cluster in clusters)
    assert [name for name in log_groups if name.startswith("/aws/eks/")] == []


def test_the_program_creates_no_secret_the_readme_says_destroy_leaves(
    stack_run: ProgramRun,
) -> None:
    # GIVEN the README's word that the Slack and PagerDuty secrets are not the program's
    assert "the Slack and PagerDuty secrets;" in _teardown_section()
    # WHEN the stack's plan is read THEN it creates no Secrets Manager resource
    created = [
        resource.name
        for resource in stack_run.resources
        if resource.type.startswith("aws:secretsmanager/")
    ]
    assert created == []


def test_the_readmes_teardown_turns_off_the_deletion_protection_created_clusters_get(
    stack_run: ProgramRun,
) -> None:
    # GIVEN the README's word that created clusters have deletion protection by default, and its
    # two ways to turn it off
    section = _teardown_section()
    assert "deletion protection (a cluster's by default) makes `pulumi destroy` fail" in section
    assert "for a cluster, `deletion_protection: false` and `pulumi up`" in section
    command = re.search(r"`aws eks update-cluster-config --name <cluster> --no-([a-z-]+)`", section)
    assert command, "the README's teardown no longer turns a cluster's protection off"
    # WHEN the stack's plan, the settings model and EKS's UpdateClusterConfig are read
    clusters = stack_run.of_type("eks:index:Cluster")
    option = (
        botocore.session.get_session()
        .get_service_model("eks")
        .operation_model("UpdateClusterConfig")
    )
    member = "".join(
        word if index == 0 else word.title() for index, word in enumerate(command[1].split("-"))
    )
    # THEN every created cluster of the stack is protected, as the setting's default is
    assert clusters
    assert all(cluster.inputs["deletionProtection"] is True for cluster in clusters)
    assert ClusterSettings.model_fields["deletion_protection"].default is True
    # AND the CLI's `--no-` option is the negation of UpdateClusterConfig's boolean member
    assert option.input_shape.members[member].type_name == "boolean"
