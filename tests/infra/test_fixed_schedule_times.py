"""The catalog's fixed schedules run in the stack's `schedule_time_zone`, whichever zone that is:
EventBridge Scheduler skips a run whose local time the clocks jump over (the spring-forward gap),
so no fixed time may fall in a gap of any time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from catalog import FUNCTIONS
from catalog.model import FixedSchedule
from fleetctl.schedule_replay import cron_times

YEARS = (2026, 2027)


def _days_with_a_change(zone: ZoneInfo) -> list[date]:
    """The local days of `YEARS` on which `zone`'s UTC offset changes (checked at UTC noons,
    so each change is found on the day it happens or the day after; both are returned)."""
    first = datetime(YEARS[0], 1, 1, 12, tzinfo=UTC)
    days = (datetime(YEARS[-1] + 1, 1, 1, tzinfo=UTC) - first).days
    offsets = [(first + timedelta(days=n)).astimezone(zone).utcoffset() for n in range(days)]
    changed = [n for n in range(1, days) if offsets[n] != offsets[n - 1]]
    return sorted({(first + timedelta(days=n + step)).date() for n in changed for step in (-1, 0)})


def _skipped(moment: time, day: date, zone: ZoneInfo) -> bool:
    """Whether `moment` does not exist on `day` in `zone`: it does not come back from UTC."""
    local = datetime.combine(day, moment, tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None)


def _fixed_times() -> dict[str, set[time]]:
    """`<function>/<schedule>` -> the local times of day its cron fires at (over one week)."""
    monday = date(2026, 1, 5)
    return {
        f"{spec.name}/{trigger.name}": {
            moment
            for offset in range(7)
            for moment in cron_times(trigger.expression, monday + timedelta(days=offset))
        }
        for spec in FUNCTIONS
        for trigger in spec.triggers
        if isinstance(trigger, FixedSchedule) and trigger.expression.startswith("cron(")
    }


def test_no_fixed_schedule_falls_in_a_time_zones_spring_forward_gap():
    # GIVEN every fixed cron schedule of the catalog and every time zone a stack may name
    times = _fixed_times()
    assert times, "the catalog has no fixed cron schedule"

    # WHEN each schedule's times are placed on the days the zone's clocks change in two years
    skipped = sorted(
        f"{schedule} at {moment:%H:%M} in {name} on {day}"
        for name in available_timezones()
        for day in _days_with_a_change(ZoneInfo(name))
        for schedule, moments in times.items()
        for moment in moments
        if _skipped(moment, day, ZoneInfo(name))
    )

    # THEN none of them is a time the clocks skip, so no zone loses a run a year
    assert not skipped, f"{len(skipped)} skipped runs, e.g. {skipped[:3]}"


def test_a_time_in_a_gap_is_found():
    # GIVEN 02:30 on the day Europe/Berlin moves its clocks from 02:00 to 03:00
    berlin = ZoneInfo("Europe/Berlin")

    # WHEN the days with a change are listed and the time is checked on them
    days = _days_with_a_change(berlin)

    # THEN that day is among them, 02:30 is skipped on it and 04:00 is not
    assert date(2026, 3, 29) in days
    assert _skipped(time(2, 30), date(2026, 3, 29), berlin)
    assert not _skipped(time(4, 0), date(2026, 3, 29), berlin)
