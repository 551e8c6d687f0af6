"""Errors of the health monitor."""

from __future__ import annotations

from fleet_shared.exceptions import FleetError


class HistoryNotStoredError(FleetError):
    """Other runs kept replacing an endpoint's history while this run added its result."""

    def __init__(self, key: str, attempts: int) -> None:
        self.key = key
        self.attempts = attempts
        super().__init__(f"the history under {key} changed under each of {attempts} attempts")
