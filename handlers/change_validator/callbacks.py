"""One-time EventBridge Scheduler schedules that invoke this function back: waiting costs no
Lambda time.

Each schedule fires once (`at(...)`, UTC), invokes this function with
`{"action": "follow_up", "validation_id": ...}` through the scheduler role the program made for
it (which may invoke only this function), retries, dead-letters into the function's queue, and
deletes itself after completion. Its name is the validation id plus the step, so creating the same
step twice (a retried invocation) finds the schedule already there, changes nothing and answers the
time it was booked for: the retry's record then waits for that callback, not for a later one that
was never booked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from handlers.change_validator.environment import ValidatorEnvironment

_logger = logging.getLogger(__name__)

MAXIMUM_RETRY_ATTEMPTS = 3
MAXIMUM_EVENT_AGE_SECONDS = 3600
_AT_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class BookedCallback:
    """A callback schedule: its name and the moment (UTC) it fires."""

    name: str
    at: datetime


def callback_payload(validation_id: str) -> dict[str, str]:
    """What a callback schedule sends."""
    return {"action": "follow_up", "validation_id": validation_id}


def schedule_callback(
    scheduler: Any, environment: ValidatorEnvironment, validation_id: str, step: str, at: datetime
) -> BookedCallback:
    """Create the schedule of `step` (e.g. `follow-3`, `bake`) firing at `at`; the schedule, or,
    when an earlier attempt of the invocation booked `step` already, that one and its time.

    `at(...)` takes whole seconds: the time is rounded up, never down, so a callback never
    arrives before the moment it waits for (a bake callback that came early would find the bake
    unfinished and leave the validation waiting with no callback booked).
    """
    name = f"{validation_id}-{step}"
    at = _whole_second_at_or_after(at)
    try:
        scheduler.create_schedule(
            Name=name,
            GroupName=environment.validation_schedule_group,
            ScheduleExpression=f"at({at.strftime(_AT_FORMAT)})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": environment.validation_function_arn,
                "RoleArn": environment.validation_scheduler_role_arn,
                "Input": json.dumps(callback_payload(validation_id)),
                "RetryPolicy": {
                    "MaximumRetryAttempts": MAXIMUM_RETRY_ATTEMPTS,
                    "MaximumEventAgeInSeconds": MAXIMUM_EVENT_AGE_SECONDS,
                },
                "DeadLetterConfig": {"Arn": environment.validation_dead_letter_arn},
            },
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConflictException":
            raise
        booked = scheduler.get_schedule(Name=name, GroupName=environment.validation_schedule_group)
        return BookedCallback(name, _booked_at(booked["ScheduleExpression"]))
    return BookedCallback(name, at)


def cancel_callback(scheduler: Any, environment: ValidatorEnvironment, name: str) -> None:
    """Delete the callback schedule `name`, booked for a check the validation no longer needs
    (it was judged). Gone already, or not deleted (Scheduler failing), it is left: it calls back a
    validation that is done, which changes nothing."""
    try:
        scheduler.delete_schedule(Name=name, GroupName=environment.validation_schedule_group)
    except AWS_CALL_ERRORS as error:
        if not _is_gone(error):
            _logger.warning("callback schedule %s left to fire: %s", name, call_error_text(error))


def callback_fate(scheduler: Any, environment: ValidatorEnvironment, name: str | None) -> str:
    """What became of the callback schedule `name` that never called back, for the verdict's
    reason: gone (deleted by hand before it fired, or fired with every delivery failed, after
    which it deletes itself), still there past its time, or unknown (Scheduler not answering)."""
    if name is None:
        return "no callback was booked"
    try:
        scheduler.get_schedule(Name=name, GroupName=environment.validation_schedule_group)
    except AWS_CALL_ERRORS as error:
        if _is_gone(error):
            return (
                "its schedule is gone: deleted before it fired, or its every delivery failed "
                "(the function's dead-letter queue keeps such a callback)"
            )
        return f"whether its schedule is still there could not be read: {call_error_text(error)}"
    return "its schedule is still there, past its time"


def _is_gone(error: Exception) -> bool:
    """Whether Scheduler's `error` says the schedule does not exist."""
    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
    )


def _booked_at(expression: str) -> datetime:
    """The moment of an `at(...)` expression in UTC, as schedule_callback writes it."""
    inside = expression.removeprefix("at(").removesuffix(")")
    return datetime.strptime(inside, _AT_FORMAT).replace(tzinfo=UTC)


def _whole_second_at_or_after(moment: datetime) -> datetime:
    truncated = moment.replace(microsecond=0)
    return truncated if truncated == moment else truncated + timedelta(seconds=1)
