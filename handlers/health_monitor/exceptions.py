"""Errors of the health monitor."""

from __future__ import annotations

from fleet_shared.exceptions import FleetError
from handlers.health_monitor.cluster_time import MEMBER_CALL_SECONDS_LEFT


class HistoryNotStoredError(FleetError):
    """Other runs kept replacing an endpoint's history while this run added its result."""

    def __init__(self, key: str, attempts: int) -> None:
        self.key = key
        self.attempts = attempts
        super().__init__(f"the history under {key} changed under each of {attempts} attempts")


class TooLittleTimeError(FleetError):
    """A member call not started: the invocation has less time left than one hung call and the
    report after it (`cluster_time.MEMBER_CALL_SECONDS_LEFT`). Not an AWS error: the check that
    needed the call was not checked, which neither passes nor fails it."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        super().__init__(f"{operation} not started: less than {MEMBER_CALL_SECONDS_LEFT:g} s left")
