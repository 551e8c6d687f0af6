"""Errors of the anomaly detector."""

from __future__ import annotations

from fleet_shared.exceptions import FleetError


class IncompleteSeriesError(FleetError):
    """GetMetricData did not return a series whole (a status other than Complete): what it did
    return may lack the anomaly, so nothing is concluded from it."""

    def __init__(self, label: str, status: str) -> None:
        self.label = label
        self.status = status
        super().__init__(f"{label}: GetMetricData answered {status}, not read")
