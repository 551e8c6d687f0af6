"""Each managed node group: its EKS status and `health.issues`, and the inventory's groups exist."""

from __future__ import annotations

from typing import Any

from fleet_shared.alerts import Severity
from handlers.health_monitor.checks.base import ClusterContext, health_issues
from handlers.health_monitor.report import CheckResult, raise_severity

NAME = "node_group"

CRITICAL_STATUSES = frozenset({"DEGRADED", "CREATE_FAILED", "DELETE_FAILED"})
"""States in which the group no longer provides (or cannot provide) its capacity."""


def run(context: ClusterContext) -> list[CheckResult]:
    """One result per node group in EKS, plus one per inventory node group missing from EKS;
    nothing when the cluster itself is missing (the cluster check reports it)."""
    if context.cluster is None:
        return []
    results: list[CheckResult] = []
    seen: set[str] = set()
    for group in context.node_groups:
        seen.add(group.name)
        if group.description is None:
            results.append(
                CheckResult.failed(
                    NAME, group.name, Severity.WARNING, f"cannot be described: {group.error}"
                )
            )
        else:
            results.append(_judge(group.name, group.description))
    for expected in context.target.cluster.node_groups:
        if expected.name not in seen:
            results.append(
                CheckResult.failed(
                    NAME,
                    expected.name,
                    Severity.CRITICAL,
                    "node group of the inventory does not exist in the cluster",
                    status="MISSING",
                )
            )
    return results


def _judge(name: str, description: dict[str, Any]) -> CheckResult:
    status = str(description.get("status", "UNKNOWN"))
    issues = [
        f"{issue.get('code', 'Unknown')}: {issue.get('message', '')}".strip()
        + (f" ({', '.join(issue['resourceIds'])})" if issue.get("resourceIds") else "")
        # Read when the node group was described: a malformed issue made it undescribed.
        for issue in health_issues(description, f"DescribeNodegroup of {name}")
    ]
    if status == "ACTIVE" and not issues:
        return CheckResult.ok(NAME, name, "ACTIVE", status=status)
    severity = Severity.CRITICAL if status in CRITICAL_STATUSES else Severity.WARNING
    if issues:
        severity = raise_severity(severity, Severity.WARNING)
    detail = f"status {status}" + (f"; issues: {'; '.join(issues)}" if issues else "")
    return CheckResult.failed(NAME, name, severity, detail, status=status, issues=issues)
