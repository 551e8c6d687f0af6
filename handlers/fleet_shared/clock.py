"""Time as a dependency: everything that compares with "now" takes a `Clock`.

Leases, cooldowns, TTLs and credential expiry all depend on the current time; injecting it lets
tests move time forward instead of sleeping, and lets local replays run "as of" a given moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

CLOCK_SKEW_SECONDS = 60
"""How far ahead of this clock another writer's may run. Lambda's hosts keep time by the Amazon
Time Sync Service, well under a second apart, so a time written more than this after now came
from no clock: a hand edit (a local time written as UTC), corruption or a bad restore."""


def written_after(moment: datetime, now: datetime) -> bool:
    """Whether `moment`, read from the state table, lies more than CLOCK_SKEW_SECONDS after
    `now`: no writer's clock could have written it."""
    return moment - now > timedelta(seconds=CLOCK_SKEW_SECONDS)


class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        ...


class SystemClock:
    """The real time of the machine."""

    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests and for replaying a past moment."""

    def __init__(self, start: datetime) -> None:
        """Start at `start`, which must be timezone-aware (it is converted to UTC)."""
        self._now = _as_utc(start)

    def now(self) -> datetime:
        """The time the clock was set or advanced to."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by `seconds` and return the new time."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (timezone-aware), forwards or backwards."""
        self._now = _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment.isoformat()}")
    return moment.astimezone(UTC)
