"""An aware time an event carries, read in UTC: a schedule's `run` (EventBridge Scheduler's
scheduled time of the run, the same for every attempt of it, which names what one run does
once: a backup day, a summary alert, a request to the scaler), an EventBridge event's `time`.

Any ISO 8601 time with an offset passes as an aware datetime, and an offset can carry one past
the calendar once in UTC (`9999-12-31T23:59:59-14:00`, `0001-01-01T00:00:00+14:00`): such a time
is refused naming the field when the event is parsed, before any work, not left to fail the
invocation with an OverflowError where it is first read in UTC.

The events and records carry these times as ISO 8601 text. pydantic also reads a number, or text
that is one, as Unix seconds: a `run` of `1717200000` passed for a time nobody wrote as one (and
milliseconds for a date thousands of years ahead). A number is refused naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from fleet_shared.validation_errors import shown_value


def in_utc(moment: datetime) -> datetime:
    """`moment` (aware) in UTC; ValueError, naming the start of the value, when its offset
    carries it outside the years 1-9999 there."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{shown_value(moment.isoformat())} is outside the years 1-9999 in UTC"
        ) from None


def iso_text_or_time(value: object) -> object:
    """`value` when it is text that is not a number, or a datetime; ValueError otherwise (see the
    module docstring), showing the start of the value."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be an ISO 8601 time as text, not {type(value).__name__}")
    raise ValueError(f"must be an ISO 8601 time as text, not a number: {shown_value(value)}")


UtcTime = Annotated[AwareDatetime, BeforeValidator(iso_text_or_time), AfterValidator(in_utc)]
"""An aware time, given as ISO 8601 text (or a datetime), converted to UTC."""
