"""The cost estimate (docs/costs.md, linked from the README's "What a stack costs to run") counts
the clusters, keys and alarms the dev and prod plans create: a count that drifts from the plan
prices resources the stack does not have, or leaves out some it has."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from fleetctl.local_world import stack_settings
from fleetctl.mocked_program import REPO_ROOT, ProgramRun

# (what the estimate's table counts, the resource type the plan registers it as)
COUNTED = [
    (r"EKS control planes \((\d+) / (\d+) clusters", "eks:index:Cluster"),
    (r"KMS keys \((\d+) / (\d+)\)", "aws:kms/key:Key"),
    (r"function alarms \((\d+) / (\d+)", "aws:cloudwatch/metricAlarm:MetricAlarm"),
    (r"NAT gateways and their addresses \((\d+) / (\d+)", "aws:ec2/natGateway:NatGateway"),
]


@pytest.mark.parametrize(
    ("counted", "resource_type"), COUNTED, ids=["clusters", "keys", "alarms", "nat-gateways"]
)
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


def _cost_table_rows() -> list[tuple[str, int, int]]:
    """(what, dev, prod) of each row of docs/costs.md's table, the total's row included."""
    rows = re.findall(
        r"^\| (.+?) \| \**(?:about )?([\d,]+)\** \| \**(?:about )?([\d,]+)\** \|$",
        (REPO_ROOT / "docs" / "costs.md").read_text(),
        flags=re.MULTILINE,
    )
    return [
        (what, int(dev.replace(",", "")), int(prod.replace(",", ""))) for what, dev, prod in rows
    ]


def test_the_readmes_monthly_costs_are_the_estimates_totals_and_add_up_from_its_rows() -> None:
    # GIVEN the README's figures for dev and prod
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    stated = re.search(r"about \$([\d,]+) a month for dev and \$([\d,]+) for prod", readme)
    assert stated, "the README no longer states a monthly cost for dev and prod"
    readme_costs = [int(figure.replace(",", "")) for figure in stated.groups()]
    # WHEN the estimate's table is read
    *items, (total, dev_total, prod_total) = _cost_table_rows()
    assert "total" in total and len(items) >= 5
    # THEN the README gives its totals, and each total is its column's sum (to the 1% its
    # "about" rounds to)
    assert readme_costs == [dev_total, prod_total]
    for column, stated_total in ((1, dev_total), (2, prod_total)):
        summed = sum(row[column] for row in items)
        assert abs(stated_total - summed) <= summed / 100, (stated_total, summed)
    # AND, as the README says, control planes and nodes are most of each total
    for column, stated_total in ((1, dev_total), (2, prod_total)):
        clusters_and_nodes = sum(
            row[column] for row in items if "control planes" in row[0] or "node groups" in row[0]
        )
        assert clusters_and_nodes > stated_total / 2


HOURS_A_MONTH = 730
WEEKS_A_MONTH = 52 / 12


def _node_hours_a_month(stack: str) -> float:
    """The node-hours of the clusters the program creates, as docs/costs.md counts them:
    `desired_size` in the schedule's working hours (52/12 weeks a month), `off_hours_desired`
    (else `desired_size`) for the rest of a 730-hour month."""
    total = 0.0
    for member in stack_settings(stack).members:
        for cluster in member.clusters:
            if cluster.existing:
                continue
            schedule = cluster.schedule
            working = float(HOURS_A_MONTH)
            if schedule is not None:
                up = datetime.strptime(schedule.scale_up_time, "%H:%M")
                down = datetime.strptime(schedule.scale_down_time, "%H:%M")
                working = (down - up).seconds / 3600 * len(schedule.days) * WEEKS_A_MONTH
            for group in cluster.node_groups:
                off_hours = (
                    schedule.off_hours_desired.get(group.name, group.desired_size)
                    if schedule is not None
                    else group.desired_size
                )
                total += group.desired_size * working + off_hours * (HOURS_A_MONTH - working)
    return total


def test_the_node_hours_the_estimate_prices_follow_the_stack_files_schedules() -> None:
    # GIVEN the estimate's node-hours a month for dev and prod
    text = " ".join((REPO_ROOT / "docs" / "costs.md").read_text().split())
    found = re.search(r"([\d,]+) node-hours a month in dev, ([\d,]+) in prod", text)
    assert found, "docs/costs.md no longer gives the node-hours it prices"
    stated = [int(figure.replace(",", "")) for figure in found.groups()]
    # WHEN they are counted from the stack files' sizes and schedules
    counted = [_node_hours_a_month(stack) for stack in ("dev", "prod")]
    # THEN they are the estimate's, to the node-hour
    assert [round(hours) for hours in counted] == stated
