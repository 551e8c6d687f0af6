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


class OpenEpisodesNotSavedError(Exception):
    """A series' record of open episodes changed under every attempt to save it (other scans or
    alarms saving it at the same time). Deliberately not a `FleetError`: the invocation fails, so
    the retry records the episodes whose alerts went out, or a later scan would alert them again
    and never resolve them."""

    def __init__(self, resource: str, attempts: int) -> None:
        self.resource = resource
        super().__init__(
            f"open episodes of {resource[:200]} not saved: changed by another writer on each of "
            f"{attempts} attempts"
        )
