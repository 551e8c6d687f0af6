"""Properties of an event's time (`fleet_shared.utc_times.UtcTime`) read through the event parser:
any ISO 8601 time with an offset either becomes the same instant in UTC, or, when the offset
carries it past the years 1-9999 in UTC, is refused naming the field; never an OverflowError
where it is first read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from fleet_shared.event_parsing import parse_event
from fleet_shared.exceptions import EventValidationError
from fleet_shared.utc_times import UtcTime


class _Timed(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    run: UtcTime


OFFSETS = st.integers(min_value=-(14 * 60 - 1), max_value=14 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
EDGE_TIMES = st.sampled_from(
    (
        datetime(1, 1, 1),
        datetime(1, 1, 1, 13, 59),
        datetime(9999, 12, 31, 23, 59, 59),
        datetime(9999, 12, 31, 10, 1),
    )
)


@given(
    wall=EDGE_TIMES | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    offset=OFFSETS,
)
def test_an_event_time_is_the_same_instant_in_utc_or_refused_naming_its_field(
    wall: datetime, offset: timezone
) -> None:
    # GIVEN an event time written with any offset, near the ends of the calendar or not
    text = wall.replace(tzinfo=offset).isoformat()
    utc_offset = offset.utcoffset(None)
    try:
        expected = wall - utc_offset
    except OverflowError:
        # WHEN one past the calendar in UTC is parsed THEN it is refused naming the field
        with pytest.raises(EventValidationError) as refused:
            parse_event(_Timed, {"run": text})
        assert refused.value.field == "run"
        assert "outside the years 1-9999 in UTC" in refused.value.problem
        return
    # WHEN any other is parsed THEN it is the same instant, in UTC
    run = parse_event(_Timed, {"run": text}).run
    assert run.tzinfo == UTC
    assert run.replace(tzinfo=None) == expected
