"""The cluster itself: EKS status and the health issues EKS reports for the control plane."""

from __future__ import annotations

from fleet_shared.alerts import Severity
from handlers.health_monitor.checks.base import ClusterContext, health_issues
from handlers.health_monitor.report import CheckResult

NAME = "cluster_status"

CRITICAL_STATUSES = frozenset({"FAILED", "DELETING"})
"""A cluster in these states is not serving workloads, or soon will not be."""


def run(context: ClusterContext) -> list[CheckResult]:
    """One result: ACTIVE without health issues passes; FAILED/DELETING or a missing cluster is
    critical; CREATING/UPDATING/PENDING or reported issues are warnings."""
    name = context.target.name
    cluster = context.cluster
    if cluster is None:
        return [
            CheckResult.failed(
                NAME, name, Severity.CRITICAL, "cluster does not exist in EKS", status="MISSING"
            )
        ]
    status = str(cluster.get("status", "UNKNOWN"))
    issues = [
        f"{issue.get('code', 'Unknown')}: {issue.get('message', '')}".strip()
        for issue in health_issues(cluster, f"DescribeCluster of {name}")
    ]
    if status == "ACTIVE" and not issues:
        return [CheckResult.ok(NAME, name, "ACTIVE", status=status)]
    severity = Severity.CRITICAL if status in CRITICAL_STATUSES else Severity.WARNING
    detail = f"status {status}" + (f"; issues: {'; '.join(issues)}" if issues else "")
    return [CheckResult.failed(NAME, name, severity, detail, status=status, issues=issues)]
