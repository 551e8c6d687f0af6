"""Errors of the demand forecaster."""

from __future__ import annotations

from fleet_shared.exceptions import FleetError


class InsufficientHistoryError(FleetError):
    """Too few hourly values to fit the model and measure its out-of-sample error."""

    def __init__(
        self,
        needed_hours: int,
        history_hours: int,
        observed_hours: int,
        *,
        problem: str | None = None,
    ) -> None:
        self.needed_hours = needed_hours
        self.history_hours = history_hours
        self.observed_hours = observed_hours
        problem = problem or (
            f"need at least {needed_hours} hours of history to fit the model and measure its "
            "out-of-sample error"
        )
        super().__init__(f"{problem}, got {history_hours} hours ({observed_hours} with data)")


class NodeGroupReadsCutShortError(FleetError):
    """A cluster's node groups were not all described: the invocation had no time left for the
    next one and the rest of the cluster's work (an EKS endpoint answering each call slowly)."""

    def __init__(self, cluster: str, described: int, declared: int) -> None:
        super().__init__(
            f"cluster {cluster}: node groups read cut short after {described} of {declared}, "
            "for lack of time (EKS answering slowly)"
        )
