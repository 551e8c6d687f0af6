"""Deliver one message to its route's channels, each with retries and exponential backoff.

Channels are independent: a failing one is retried (ROUTER_MAX_ATTEMPTS attempts, waiting
ROUTER_BACKOFF_SECONDS, then twice that, ...) and reported, and the others still get the alert.
`sleep` is injected so tests do not wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.notification_router.channels import Channel
from handlers.notification_router.exceptions import ChannelError
from handlers.notification_router.formatting import OutgoingMessage

SENT = "sent"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass(frozen=True)
class ChannelOutcome:
    """What happened on one channel."""

    channel: str
    status: str
    attempts: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in the handler's result."""
        result: dict[str, Any] = {
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
        }
        if self.error:
            result["error"] = self.error
        return result


def deliver(
    message: OutgoingMessage,
    channels: list[Channel],
    *,
    max_attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
) -> list[ChannelOutcome]:
    """One outcome per channel, in route order."""
    return [
        _deliver_one(message, channel, max_attempts, backoff_seconds, sleep) for channel in channels
    ]


def _deliver_one(
    message: OutgoingMessage,
    channel: Channel,
    max_attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
) -> ChannelOutcome:
    reason = channel.disabled_reason()
    if reason is not None:
        return ChannelOutcome(channel.name, SKIPPED, error=reason)
    last_error = ""
    for attempt in range(1, max_attempts + 1):
        try:
            channel.send(message)
        except ChannelError as error:
            last_error = str(error)
            if attempt < max_attempts:
                sleep(backoff_seconds * 2 ** (attempt - 1))
        else:
            return ChannelOutcome(channel.name, SENT, attempt)
    return ChannelOutcome(channel.name, FAILED, max_attempts, last_error)
