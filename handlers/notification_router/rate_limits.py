"""A channel's "come back later": the Retry-After of a 429 or 503 answer, and how long each
channel of the container is held after one.

PagerDuty's Events API (and Slack's webhooks) answer a burst with 429 and `Retry-After`; calling
again sooner is refused again and counts against the same limit. The hold is per container, on
the services' clock, so the next messages of a batch (and of later invocations of the container)
do not call a channel that asked to be left alone.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from fleet_shared.clock import Clock

RATE_LIMIT_STATUSES = frozenset({429, 503})
"""Statuses whose Retry-After says when to call again (RFC 6585, RFC 9110)."""
LONGEST_RETRY_AFTER_SECONDS = 3600.0
"""The longest wait a Retry-After is honoured for: one answer (a misconfigured proxy's, or a
date far off) must not hold an alert channel back for hours; asked for longer, the channel is
called again after an hour."""
_DELAY_SECONDS = re.compile(r"^\s*(\d+)\s*$")
"""Delay-seconds of any length: ten digits or more is a wait of centuries, an hour here, not a
header no one reads, which had the channel called again at once (a float of any digits is a
number, `inf` at worst, where `int` refuses more than 4300)."""


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date; a date in the
    past is 0; at most LONGEST_RETRY_AFTER_SECONDS), or None when there is none or it reads as
    neither."""
    if value is None:
        return None
    match = _DELAY_SECONDS.match(value)
    if match:
        return min(float(match.group(1)), LONGEST_RETRY_AFTER_SECONDS)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return min(max(0.0, (moment - now).total_seconds()), LONGEST_RETRY_AFTER_SECONDS)


class ChannelHolds:
    """Until when each channel asked not to be called."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until: dict[str, datetime] = {}

    def hold(self, channel: str, seconds: float) -> None:
        """Keep `channel` uncalled for `seconds` from now (a later hold is never shortened)."""
        until = self._clock.now() + timedelta(seconds=seconds)
        self._until[channel] = max(until, self._until.get(channel, until))

    def remaining_seconds(self, channel: str) -> float:
        """How long `channel` is still held (0 when it may be called)."""
        until = self._until.get(channel)
        if until is None:
            return 0.0
        left = (until - self._clock.now()).total_seconds()
        if left <= 0:
            del self._until[channel]
            return 0.0
        return left
