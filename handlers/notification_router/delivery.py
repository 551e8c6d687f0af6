"""Deliver one message to the channels that still need it, in rounds, within the time left.

Channels are independent: round 1 tries each channel once; each later round (up to
ROUTER_MAX_ATTEMPTS) waits ROUTER_BACKOFF_SECONDS, then twice that, ..., and tries again only the
channels that failed. A channel that already took this alert (on an earlier delivery of the same
message) is not sent again. Before every wait and every attempt the invocation must have the time
that step may take left (`DeliveryPolicy.attempt_seconds`: the HTTP timeout, then the longest
state table call recording what the channel took, and a margin); otherwise the remaining channels
are left for the retry of the message, as they are once a send can no longer be recorded (the
state table stopped answering: a channel sent to then would get the alert again on the retry).
A channel that answers
429 or 503 with a Retry-After is waited for, instead of the backoff, when that is short; a longer
one is not called again before it (nor by the next messages: `ChannelHolds`), and the message's
retry waits for it. A refusal the same request would get again (a redirect, or a 4xx other than
408, 425 and 429: Slack's `invalid_payload`, `channel_is_archived`, a revoked webhook), and a
secret whose content gives no usable value, are not retried within the invocation: the message's
retry tries once more (a corrected secret is read by then), and the queue's receive limit or
Lambda's retries then take it to a dead-letter queue.
So is any other error a channel raises: channels are independent, so one failing in a way it does
not foresee leaves the others to be tried. A deployment error (a variable, or the settings of the
channel's AWS client: `bounded_http.SenderSettingsError`) is reported in its own words, which name
what to fix; any other only by its type, as its text may quote the secret the channel read.
`sleep` is injected so tests do not wait.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet_shared.exceptions import DeploymentError
from fleet_shared.handler import Invocation
from fleet_shared.validation_errors import escaped_echo
from handlers.notification_router.channels import Channel
from handlers.notification_router.delivery_policy import DeliveryPolicy
from handlers.notification_router.exceptions import ChannelError, RateLimitedError
from handlers.notification_router.formatting import OutgoingMessage
from handlers.notification_router.rate_limits import ChannelHolds

_logger = logging.getLogger(__name__)

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
    retry_after_seconds: float | None = None
    """The wait the channel asked for (Retry-After) before it is tried again, when it did."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in the handler's result."""
        result: dict[str, Any] = {
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
        }
        if self.error:
            result["error"] = self.error
        if self.retry_after_seconds is not None:
            result["retry_after_seconds"] = self.retry_after_seconds
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
    record_unconfirmed: Callable[[str], None],
    unrecordable: Callable[[], str | None],
    holds: ChannelHolds,
) -> list[ChannelOutcome]:
    """One outcome per channel, in route order; `record_sent(name)` is called as soon as a
    channel took the message, so a crash later does not make the retry send it again, and
    `record_unconfirmed(name)` when an attempt failed without saying it was not taken.
    `unrecordable()` says why a send could no longer be recorded in this invocation (the state
    table stopped answering), or None: from then on no channel is started, since the retry
    would send it again; the ones left are for the retry.

    A channel that answers with a Retry-After (or is still held by one an earlier message got) is
    waited for when that is short (`policy.longest_wait_seconds`) and fits the time left;
    otherwise it is not tried again here, and its outcome carries the wait for the retry."""
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
    # The wait each rate-limited channel asked for in its latest answer.
    retry_after: dict[str, float] = {}
    # Channels not tried again in this invocation: a long Retry-After, or a refusal that the same
    # request would get again.
    stopped: list[Channel] = []

    def can_wait(seconds: float) -> bool:
        return seconds <= policy.longest_wait_seconds and invocation.allows(
            seconds + policy.attempt_seconds
        )

    # Channels not tried (again) because a send could no longer be recorded.
    unrecorded: list[Channel] = []

    def leave_unrecordable(left: list[Channel]) -> bool:
        reason = unrecordable()
        if reason is None:
            return False
        for channel in left:
            errors[channel.name] = _not_tried(errors.get(channel.name), reason)
            unrecorded.append(channel)
        return True

    for attempt in range(1, policy.max_attempts + 1):
        if not pending:
            break
        if leave_unrecordable(pending):
            pending = []
            break
        if attempt > 1:
            asked = [retry_after[c.name] for c in pending if c.name in retry_after]
            wait = max([policy.backoff_before(attempt), *asked])
            if not invocation.allows(wait + policy.attempt_seconds):
                break
            sleep(wait)
        failing: list[Channel] = []
        for channel in pending:
            if leave_unrecordable([channel]):
                continue
            held = holds.remaining_seconds(channel.name) if attempts[channel.name] == 0 else 0.0
            if held and not can_wait(held):
                retry_after[channel.name] = held
                errors[channel.name] = f"not tried: rate limited for another {held:g} s"
                stopped.append(channel)
                continue
            if not invocation.allows(held + policy.attempt_seconds):
                failing.append(channel)
                continue
            if held:
                sleep(held)
            attempts[channel.name] += 1
            try:
                channel.send(message)
            except RateLimitedError as error:
                errors[channel.name] = str(error)
                retry_after[channel.name] = error.retry_after_seconds
                holds.hold(channel.name, error.retry_after_seconds)
                if can_wait(error.retry_after_seconds):
                    failing.append(channel)
                else:
                    stopped.append(channel)
            except ChannelError as error:
                errors[channel.name] = str(error)
                retry_after.pop(channel.name, None)
                (stopped if error.permanent else failing).append(channel)
                if error.unconfirmed:
                    record_unconfirmed(channel.name)
            except DeploymentError as error:
                # The same at every attempt, until the deployment is fixed; its text is the
                # fleet's own, naming the setting, and quotes no secret.
                _logger.error("channel %s cannot be sent to: %s", channel.name, error)
                errors[channel.name] = escaped_echo(str(error))
                retry_after.pop(channel.name, None)
                stopped.append(channel)
            except Exception as error:
                # A channel raises ChannelError on every failure it foresees; one it does not (a
                # hostile secret, a library's own error) must not end the delivery with the
                # channels after it on the route untried. Tried once per delivery, as a refusal
                # the same request meets again. Only the type is shown and logged, with the
                # traceback's frames: the error's text may quote the secret the channel read.
                _logger.error(
                    "channel %s failed unexpectedly: %s\n%s",
                    channel.name,
                    type(error).__name__,
                    "".join(traceback.format_tb(error.__traceback__)),
                )
                errors[channel.name] = (
                    f"failed unexpectedly: {type(error).__name__} (traceback in the log)"
                )
                retry_after.pop(channel.name, None)
                stopped.append(channel)
            else:
                record_sent(channel.name)
                outcomes[channel.name] = ChannelOutcome(channel.name, SENT, attempts[channel.name])
        pending = failing
    for channel in unrecorded:
        outcomes[channel.name] = ChannelOutcome(
            channel.name,
            FAILED if attempts[channel.name] else NOT_STARTED,
            attempts[channel.name],
            errors[channel.name],
            retry_after.get(channel.name),
        )
    for channel in [*pending, *stopped]:
        outcomes[channel.name] = _unfinished(
            channel.name,
            attempts[channel.name],
            errors,
            retry_after.get(channel.name),
            policy,
            out_of_time=channel in pending,
        )
    return [outcomes[channel.name] for channel in channels]


def _not_tried(error: str | None, reason: str) -> str:
    """The error of a channel not tried (again) because its send could not be recorded."""
    not_tried = f"not tried: {reason}"
    return f"{error} ({not_tried})" if error else not_tried


def _unfinished(
    name: str,
    attempts: int,
    errors: dict[str, str],
    retry_after_seconds: float | None,
    policy: DeliveryPolicy,
    *,
    out_of_time: bool,
) -> ChannelOutcome:
    if retry_after_seconds is not None:
        status = FAILED if attempts else NOT_STARTED
        return ChannelOutcome(name, status, attempts, errors[name], retry_after_seconds)
    if not out_of_time:
        return ChannelOutcome(name, FAILED, attempts, errors[name])
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
