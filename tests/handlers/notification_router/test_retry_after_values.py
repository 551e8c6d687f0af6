"""A Retry-After a channel answers, however large it is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.notification_router.rate_limits import LONGEST_RETRY_AFTER_SECONDS, parse_retry_after
from tests.handlers.notification_router.test_notification_router import (
    channels_of,
    fleet_alert,
    sqs_event,
)

Invoke = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("delay", ["9999999999", "99999999999999999999", "1" * 5000])
def test_a_retry_after_of_more_seconds_than_an_hour_in_any_number_of_digits_holds_an_hour(
    delay: str,
) -> None:
    # GIVEN a Retry-After in seconds, of ten digits or more (past what `int` converts, too)
    # WHEN it is read THEN it is the longest wait honoured, an hour, as a shorter huge one is
    now = datetime(2026, 11, 27, 5, 0, 0, tzinfo=UTC)
    assert parse_retry_after(delay, now) == LONGEST_RETRY_AFTER_SECONDS
    # AND leading zeros make no wait longer
    assert parse_retry_after("0" * 20 + "30", now) == 30.0


def test_pagerduty_asking_to_retry_after_ten_digits_of_seconds_is_left_alone_for_an_hour(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN PagerDuty answering 429 with a Retry-After of 10^10 seconds, then 202
    receiver.answer("/pagerduty", (429, {"Retry-After": "9999999999"}), 202)
    # WHEN a critical alert is routed from the queue
    result = invoke(sqs_event(("m-1", fleet_alert("critical"))))
    # THEN PagerDuty was called once, not again within the invocation (where an unread
    # Retry-After was a plain 429, retried at once), and the message waits the hour for it
    pagerduty = channels_of(result["results"][0])["pagerduty"]
    assert (pagerduty["status"], pagerduty["attempts"]) == ("failed", 1)
    assert pagerduty["retry_after_seconds"] == LONGEST_RETRY_AFTER_SECONDS
    assert len(receiver.bodies("/pagerduty")) == 1
