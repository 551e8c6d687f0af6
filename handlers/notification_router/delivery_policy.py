"""How hard and how long a channel is tried: a leaf module, so the services (which build it from
the environment) and the delivery loop (which follows it) both import it and not each other."""

from __future__ import annotations

from dataclasses import dataclass

from fleet_shared.sessions import STATE_TABLE_CALL_SECONDS
from handlers.notification_router.rate_limits import LONGEST_RETRY_AFTER_SECONDS

RECORDING_SECONDS = STATE_TABLE_CALL_SECONDS
"""Time kept, after a channel took the alert, for the state table call that records it: the
longest a call takes when DynamoDB answers only its last attempt, or none (13 s; the table is
then given up for the invocation, so its later calls fail at once). With less, Lambda could end
the invocation before the record is written, and the message's retry would send to that channel
again."""
DEADLINE_MARGIN_SECONDS = 2.0
"""Time kept beyond that for the state table's other calls (each answered in milliseconds) and
for returning."""
_LONGEST_DOUBLING = 32
"""Doublings past which the backoff is at its bound whatever ROUTER_BACKOFF_SECONDS is (and a
float does not overflow)."""


def attempt_seconds(http_timeout_seconds: float) -> float:
    """The time left a channel attempt needs to start: the attempt itself (at most the HTTP
    timeout), the recording of what the channel took, and the margin."""
    return http_timeout_seconds + RECORDING_SECONDS + DEADLINE_MARGIN_SECONDS


@dataclass(frozen=True)
class DeliveryPolicy:
    """Attempts per channel, the first backoff, what one attempt and its recording may take at
    most (a channel is not tried when less than that is left in the invocation), and the longest
    Retry-After waited for."""

    max_attempts: int
    backoff_seconds: float
    attempt_seconds: float
    longest_wait_seconds: float
    """The longest Retry-After waited for within the invocation; a longer one is left to the
    message's retry."""

    def backoff_before(self, attempt: int) -> float:
        """The router's wait before a channel's `attempt` (counted from 1 over every delivery of
        the message): none before the first, `backoff_seconds` before the second, doubled for
        each one after, an hour at most (`LONGEST_RETRY_AFTER_SECONDS`)."""
        if attempt < 2:
            return 0.0
        doublings = min(attempt - 2, _LONGEST_DOUBLING)
        return min(self.backoff_seconds * 2**doublings, LONGEST_RETRY_AFTER_SECONDS)
