"""Check results and the per-cluster report built from them.

A check result says what was checked (`name`, `target`), whether it passed, how bad a failure is
(`severity`) and why (`detail`). A cluster's overall status is the worst severity among its failed
checks, or `healthy` when none failed, so a report can be sorted and filtered by one field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleet_shared.alerts import Severity

HEALTHY = "healthy"
NOT_CHECKED = "not_checked"
"""The status of a check there was no time left to call a member endpoint for, and of a cluster
none of whose checks failed but some were not checked: not known to be healthy."""
ERROR = "error"

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class CheckResult:
    """One check of one target. Passed checks carry severity `info`.

    `resource` and `title` name what an alert is about; when empty the runner derives them from
    the cluster, the check and the target. A check sets them when the same thing can be seen from
    several clusters (an alarm of the account), so that it makes one alert id, not one per
    cluster. `data` holds the measured numbers. `since` is when the observed state began, by the
    clock of what reports it (an alarm's last state change): runs and events that observed the
    same target at different times can then tell which observation is the later one.
    `resolution` is what the resolution of a passed result says, when not `passed again:
    <detail>` (an alarm that was deleted).
    """

    name: str
    target: str
    passed: bool
    severity: Severity
    detail: str
    resource: str = ""
    title: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    since: datetime | None = None
    resolution: str = ""

    @classmethod
    def ok(cls, name: str, target: str, detail: str, **data: Any) -> CheckResult:
        """A passed check."""
        return cls(name, target, True, Severity.INFO, detail, data=data)

    @classmethod
    def failed(
        cls,
        name: str,
        target: str,
        severity: Severity,
        detail: str,
        *,
        resource: str = "",
        title: str = "",
        since: datetime | None = None,
        **data: Any,
    ) -> CheckResult:
        """A failed check of the given severity."""
        return cls(
            name,
            target,
            False,
            severity,
            detail,
            resource=resource,
            title=title,
            data=data,
            since=since,
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in the handler's result."""
        result: dict[str, Any] = {
            "name": self.name,
            "target": self.target,
            "status": "passed" if self.passed else "failed",
            "severity": self.severity.value,
            "detail": self.detail,
        }
        if self.data:
            result["data"] = self.data
        return result


def worst_status(results: Iterable[CheckResult]) -> str:
    """The highest severity among failed results, or `healthy` when none failed."""
    failed = [result.severity for result in results if not result.passed]
    if not failed:
        return HEALTHY
    return max(failed, key=SEVERITY_RANK.__getitem__).value


def worst_of_statuses(statuses: Iterable[str]) -> str:
    """The worst of several overall statuses (`error` > critical > warning > info >
    not_checked > healthy)."""
    order = [
        HEALTHY,
        NOT_CHECKED,
        Severity.INFO.value,
        Severity.WARNING.value,
        Severity.CRITICAL.value,
        ERROR,
    ]
    return max(statuses, key=order.index, default=HEALTHY)


def raise_severity(current: Severity, candidate: Severity) -> Severity:
    """The higher of two severities."""
    return max(current, candidate, key=SEVERITY_RANK.__getitem__)


def threshold_severity(value: float | None, warning: float, critical: float) -> Severity | None:
    """CRITICAL at or above `critical`, WARNING at or above `warning`, None below them or
    without a value."""
    if value is None or value < min(warning, critical):
        return None
    return Severity.CRITICAL if value >= critical else Severity.WARNING
