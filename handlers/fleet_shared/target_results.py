"""The outcome of one (account, region) in a fleet-wide run, in one shape for every function.

Functions that walk the inventory (backup, cleanup, security scan) record per target what they
did and what failed; one failing resource never stops the target, one failing target never stops
the run. A subclass adds its own fields and names its counts in `details()`; `summary()` is then
the same everywhere: account, region, status, the details, and `errors`/`error` when present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.fan_out import NOT_STARTED
from fleet_shared.validation_errors import cut_echo

OK = "ok"
PARTIAL = "partial"
DENIED = "denied"
FAILED = "failed"
IN_PROGRESS = "in_progress"

UNSUCCESSFUL = frozenset({PARTIAL, DENIED, FAILED, NOT_STARTED})
"""Statuses that make the run as a whole `partial`."""


@dataclass
class TargetResult:
    """What happened in one (account, region); subclass it to add the function's own fields."""

    account_id: str
    region: str
    status: str = OK
    errors: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None

    def details(self) -> dict[str, Any]:
        """The function's own counts and lists, between the status and the errors."""
        return {}

    def summary(self) -> dict[str, Any]:
        """The target as the handler returns it (and stores it for repeats)."""
        summary: dict[str, Any] = {
            "account_id": self.account_id,
            "region": self.region,
            "status": self.status,
            **self.details(),
        }
        if self.errors:
            summary["errors"] = self.errors
        if self.error:
            summary["error"] = self.error
        return summary

    def fail(self, resource: str, error: Exception | str) -> None:
        """Record a failure on one resource; the target goes on with the others. A failed AWS
        call's error is quoted by `call_error_text` (what the answer brought cut and escaped: a
        proxy's page keeps no line breaks); any other is cut to `ECHO_LIMIT` characters."""
        shown = (
            call_error_text(error) if isinstance(error, AWS_CALL_ERRORS) else cut_echo(str(error))
        )
        self.errors.append({"resource": resource, "error": shown})


def run_status(statuses: list[str]) -> str:
    """`ok` when every target succeeded (or is a repeat), else `partial` (a target failed, was
    denied, or was left for the next run)."""
    return PARTIAL if any(status in UNSUCCESSFUL for status in statuses) else OK
