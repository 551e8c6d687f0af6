"""The cost estimate (docs/costs.md, linked from the README's "What a stack costs to run") counts
the clusters, keys and alarms the dev and prod plans create: a count that drifts from the plan
prices resources the stack does not have, or leaves out some it has."""

from __future__ import annotations

import re

import pytest

from fleetctl.mocked_program import REPO_ROOT, ProgramRun

# (what the estimate's table counts, the resource type the plan registers it as)
COUNTED = [
    (r"EKS control planes \((\d+) / (\d+) clusters", "eks:index:Cluster"),
    (r"KMS keys \((\d+) / (\d+)\)", "aws:kms/key:Key"),
    (r"function alarms \((\d+) / (\d+)", "aws:cloudwatch/metricAlarm:MetricAlarm"),
]


@pytest.mark.parametrize(("counted", "resource_type"), COUNTED, ids=["clusters", "keys", "alarms"])
def test_the_cost_estimate_counts_what_the_dev_and_prod_plans_create(
    program_runs: dict[str, ProgramRun], counted: str, resource_type: str
) -> None:
    # GIVEN the estimate's count for dev and for prod
    found = re.search(counted, (REPO_ROOT / "docs" / "costs.md").read_text())
    assert found, f"docs/costs.md no longer counts {resource_type}"
    estimated = {"dev": int(found[1]), "prod": int(found[2])}
    # WHEN each stack's plan is read
    planned = {stack: len(program_runs[stack].of_type(resource_type)) for stack in estimated}
    # THEN the estimate priced exactly what the plan creates
    assert estimated == planned
