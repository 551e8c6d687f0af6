"""ISO 8601 timestamps in UTC with a `Z`, as every fleet document and result writes them.

One writer and one reader, so a timestamp one function writes is read back the same way by every
other (and sorts as text where the precision is fixed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fleet_shared.exceptions import OutsideCalendarError

Precision = Literal["auto", "seconds", "milliseconds", "microseconds"]


def iso_z(moment: datetime, precision: Precision = "auto") -> str:
    """`moment` in UTC as ISO 8601 ending in `Z`, e.g. `2025-06-02T03:30:00Z`.

    `precision` is `datetime.isoformat`'s `timespec`: "auto" drops a zero fraction; a fixed one
    ("microseconds") keeps every value the same length, so the text sorts in time order.
    """
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment.isoformat()}")
    return moment.astimezone(UTC).isoformat(timespec=precision).replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """The timezone-aware UTC datetime of an ISO 8601 text written by `iso_z` (or with an offset).

    Raises ValueError for text that is not ISO 8601 or has no time zone, and its subclass
    OutsideCalendarError for a time whose offset carries it past the calendar once in UTC, where
    converting it raised OverflowError past every caller's handling of an unreadable time.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"expected a timestamp with a time zone, got {text[:40]!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise OutsideCalendarError(text) from None
