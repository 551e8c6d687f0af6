"""The README's "Teardown" lists what `pulumi destroy` leaves behind because the program never
created it: a plan that creates one of them makes that list false (destroy would delete it)."""

from __future__ import annotations

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
