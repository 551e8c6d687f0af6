"""When the wall clock of a time zone reads a time of day: the one rule by which the scaler opens
and closes a schedule's working hours, and by which the scaling optimizer classes its measured
hours as the scaler ran them.

A schedule's window lasts from the first time the clock reads its scale-up time to the first
time it reads its scale-down time. The wall clock alone is wrong twice a year: on the night the
clocks go back it reads a time of the repeated hour twice, and would reopen a window that closed
at the first reading (the schedule's one scale-down run has been); a time the clocks skip is
never read, so it counts as read from the jump on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo


def first_reading(zone: ZoneInfo, day: date, clock: time) -> datetime:
    """The instant the clock of `zone` first reads `clock` on `day` (of a time the clocks skip,
    an instant after the jump), in UTC: aware times of one zone compare by their wall clocks
    alone."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def clock_has_read(zone: ZoneInfo, day: date, clock: time, now: datetime) -> bool:
    """Whether by `now` (aware) the clock of `zone` has read `clock` on `day`: from its first
    reading on, so that a time the clocks repeat stays read; from the jump for a time the clocks
    skip."""
    local = now.astimezone(zone)
    wall_clock_past = (local.date(), local.time()) >= (day, clock)
    return wall_clock_past or now.astimezone(UTC) >= first_reading(zone, day, clock)


def read_from(zone: ZoneInfo, day: date, clock: time) -> datetime:
    """The instant from which the clock of `zone` has read `clock` on `day` (`clock_has_read`),
    in UTC: its first reading, or for a time the clocks skip, the jump, which `first_reading`
    puts after (Australia/Lord_Howe's 02:15, skipped from 02:00 to 02:30, is read from the jump
    at 02:00, where `first_reading` names 02:45)."""
    after = first_reading(zone, day, clock)
    # Of a time the clocks skip, the reading before the jump (`fold` 1) comes first.
    before = datetime.combine(day, clock.replace(fold=1), tzinfo=zone).astimezone(UTC)
    if before >= after:
        return after
    # The jump lies between the two; the clock has read `clock` from it on.
    while after - before > timedelta(microseconds=1):
        middle = before + (after - before) / 2
        if clock_has_read(zone, day, clock, middle):
            after = middle
        else:
            before = middle
    return after


def hour_start(zone: tzinfo, moment: datetime, minute: int = 0) -> datetime:
    """The instant the clock of `zone` last read minute `minute` of an hour at or before
    `moment` (aware), in UTC: the start of the hour `moment` is in, of hours that start on that
    minute of the zone's clock (on the whole hour by default). In a zone whose offset is not
    whole hours (Asia/Kolkata's 5:30, Asia/Kathmandu's 5:45) a whole hour is not on the UTC
    hour. Of an hour the clocks repeat, the start of the reading `moment` is in; of a start the
    clocks skip (Australia/Lord_Howe's clocks move from 02:00 to 02:30), the jump."""
    local = moment.astimezone(zone)
    # The reading (`fold`) of `moment` is kept, and a time the clocks skip is read before the
    # jump (`fold` 0), which is the jump's instant.
    start = local.replace(minute=minute, second=0, microsecond=0).astimezone(UTC)
    if start <= moment:
        return start
    # The clock has not read `minute` yet in this hour: its last reading is in the hour of the
    # instant an hour earlier (of elapsed time, so a repeated hour is the reading before).
    earlier = (moment - timedelta(hours=1)).astimezone(zone)
    return earlier.replace(minute=minute, second=0, microsecond=0).astimezone(UTC)
