"""Created clusters carry EKS deletion protection unless the stack file turns it off: DeleteCluster
then fails, whatever asks for it (a renamed or removed entry, a replacement, `pulumi destroy` on
the wrong stack). Nothing in the fleet may turn it off or delete a cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from components.exceptions import StackSettingsError
from components.settings import load_settings
from fleet_shared.validation_errors import SHOWN_VALUE_LENGTH
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program
from fleetctl.plan import render_tree

CLUSTER = "eks:index:Cluster"
FIELD = "members[0].clusters[0].deletion_protection"
# The EKS actions that remove a cluster's protection or the cluster itself.
UNPROTECTING_ACTIONS = ("eks:UpdateClusterConfig", "eks:DeleteCluster")


def _dev_config_with(deletion_protection: Any) -> dict[str, Any]:
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:members"][0]["clusters"][0]["deletion_protection"] = deletion_protection
    return config


def _settings_document(config: dict[str, Any]) -> dict[str, Any]:
    return {
        key.split(":", 1)[1]: value
        for key, value in config.items()
        if key.startswith("lambda-fleet:")
    }


def test_a_created_cluster_is_protected_from_deletion_by_default(stack_run: ProgramRun) -> None:
    # GIVEN the dev and prod stack files, which leave deletion_protection unwritten
    clusters = stack_run.of_type(CLUSTER)
    assert clusters
    # WHEN the program registers their created clusters THEN each has deletion protection on
    assert all(cluster.inputs["deletionProtection"] is True for cluster in clusters)


def test_a_cluster_with_deletion_protection_false_is_created_unprotected(
    project_with_stack: Callable[[str, dict[str, Any]], Path],
) -> None:
    # GIVEN the dev stack with its cluster's deletion_protection turned off
    project = project_with_stack("unprotected", _dev_config_with(False))
    # WHEN the program runs
    run = run_program("unprotected", project)
    # THEN the cluster is created without deletion protection
    (cluster,) = run.of_type(CLUSTER)
    assert cluster.inputs["deletionProtection"] is False
    # AND the text plan's note on it says so, for the reviewer
    (line,) = [line for line in render_tree(run).splitlines() if f"{CLUSTER}  " in line]
    assert line.endswith("[Kubernetes 1.33, deletion protection OFF]")


def test_the_text_plan_notes_a_protected_clusters_version_and_protection(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the dev stack's plan as text WHEN its cluster's line is read
    lines = render_tree(program_runs["dev"]).splitlines()
    (line,) = [line for line in lines if f"{CLUSTER}  " in line]
    # THEN it shows the cluster's version and that deletion protection is on
    assert line.endswith("[Kubernetes 1.33, deletion protection on]")


def test_the_settings_default_a_created_cluster_to_deletion_protection(
    stack_settings_document: Callable[[str], dict[str, Any]],
) -> None:
    # GIVEN the dev stack, which does not write deletion_protection WHEN its settings load
    settings = load_settings("dev", stack_settings_document("dev"))
    # THEN its created cluster is protected
    assert settings.members[0].clusters[0].deletion_protection is True


@pytest.mark.parametrize(
    ("written", "shown"),
    [("yes", "'yes'"), (1, "1"), ("x" * 300, "'xxxxxxxxxx")],
    ids=["yes", "one", "long"],
)
def test_a_deletion_protection_other_than_true_or_false_is_refused_naming_the_field(
    written: Any, shown: str
) -> None:
    # GIVEN the dev stack with deletion_protection written as `yes`, 1 or a long text, which
    # pydantic alone would read as true (or refuse quoting all of it)
    document = _settings_document(_dev_config_with(written))
    # WHEN the settings load
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", document)
    # THEN one line names the field and shows at most a short prefix of the value
    line = str(raised.value)
    assert line.startswith(f"Pulumi.broken.yaml: {FIELD}: expected true or false, got {shown}")
    assert "x" * (SHOWN_VALUE_LENGTH + 1) not in line


def test_no_role_of_the_fleet_may_unprotect_or_delete_a_cluster(stack_run: ProgramRun) -> None:
    # GIVEN every IAM policy the stack's program creates (hub and member roles)
    granted = [
        action
        for policy in stack_run.of_type("aws:iam/rolePolicy:RolePolicy")
        for statement in json.loads(policy.inputs["policy"])["Statement"]
        if statement["Effect"] == "Allow"
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    ]
    assert granted
    # WHEN they are matched against the actions that turn protection off or delete a cluster
    unprotecting = sorted(
        {
            action
            for action in granted
            for target in UNPROTECTING_ACTIONS
            if fnmatchcase(target.lower(), action.lower())
        }
    )
    # THEN none grants them, wildcards included: nothing in the fleet deletes a cluster
    assert unprotecting == []
