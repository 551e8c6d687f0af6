"""Deliver one message to the channels that still need it, in rounds, within the time left.

Channels are independent: round 1 tries each channel once; each later round (up to
ROUTER_MAX_ATTEMPTS) waits ROUTER_BACKOFF_SECONDS, then twice that, ..., and tries again only the
channels that failed. A channel that already took this alert (on an earlier delivery of the same
message) is not sent again. Before every wait and every attempt the invocation must have the time
that step may take left (`DeliveryPolicy.attempt_seconds`, the HTTP timeout plus a margin);
otherwise the remaining channels are left for the retry of the message. `sleep` is injected so
tests do not wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet_shared.handler import Invocation
from handlers.notification_router.channels import Channel
from handlers.notification_router.delivery_policy import DeliveryPolicy
from handlers.notification_router.exceptions import ChannelError
from handlers.notification_router.formatting import OutgoingMessage

SENT = "sent"
FAILED = "failed"
SKIPPED = "skipped"
ALREADY_SENT = "already_sent"
NOT_STARTED = "not_started"
UNFINISHED = frozenset({FAILED, NOT_STARTED})
"""Channel outcomes that the message's retry must try again."""


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
    already_sent: frozenset[str],
    policy: DeliveryPolicy,
    invocation: Invocation,
    sleep: Callable[[float], None],
    record_sent: Callable[[str], None],
) -> list[ChannelOutcome]:
    """One outcome per channel, in route order; `record_sent(name)` is called as soon as a
    channel took the message, so a crash later does not make the retry send it again."""
    outcomes: dict[str, ChannelOutcome] = {}
    pending: list[Channel] = []
    for channel in channels:
        reason = channel.disabled_reason()
        if reason is not None:
            outcomes[channel.name] = ChannelOutcome(channel.name, SKIPPED, error=reason)
        elif channel.name in already_sent:
            outcomes[channel.name] = ChannelOutcome(channel.name, ALREADY_SENT)
        else:
            pending.append(channel)
    attempts = dict.fromkeys((channel.name for channel in pending), 0)
    errors: dict[str, str] = {}
    for attempt in range(1, policy.max_attempts + 1):
        if not pending:
            break
        if attempt > 1:
            wait = policy.backoff_seconds * 2 ** (attempt - 2)
            if not invocation.allows(wait + policy.attempt_seconds):
                break
            sleep(wait)
        failing: list[Channel] = []
        for channel in pending:
            if not invocation.allows(policy.attempt_seconds):
                failing.append(channel)
                continue
            attempts[channel.name] += 1
            try:
                channel.send(message)
            except ChannelError as error:
                errors[channel.name] = str(error)
                failing.append(channel)
            else:
                record_sent(channel.name)
                outcomes[channel.name] = ChannelOutcome(channel.name, SENT, attempts[channel.name])
        pending = failing
    for channel in pending:
        outcomes[channel.name] = _unfinished(channel.name, attempts[channel.name], errors, policy)
    return [outcomes[channel.name] for channel in channels]


def _unfinished(
    name: str, attempts: int, errors: dict[str, str], policy: DeliveryPolicy
) -> ChannelOutcome:
    if attempts == 0:
        return ChannelOutcome(
            name,
            NOT_STARTED,
            error=f"not tried: less than {policy.attempt_seconds:g} s left in the invocation",
        )
    error = errors[name]
    if attempts < policy.max_attempts:
        error += f" (attempt {attempts + 1} not tried: too little time left in the invocation)"
    return ChannelOutcome(name, FAILED, attempts, error)
