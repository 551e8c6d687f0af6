"""Errors of the notification router."""

from __future__ import annotations


class ChannelError(Exception):
    """A delivery attempt failed; the message says why, without secrets. `unconfirmed` when the
    request may have reached the channel and no answer said it was not taken (a timeout, a
    connection lost): the channel may show the alert. `permanent` when the channel refused it
    for a reason the same request meets again (a redirect, an HTTP 4xx other than 408, 425 and
    429)."""

    def __init__(self, message: str, *, unconfirmed: bool = False, permanent: bool = False) -> None:
        self.unconfirmed = unconfirmed
        self.permanent = permanent
        super().__init__(message)


class UnusableSecretError(Exception):
    """A channel's secret, read, gives no value to send with; the message says what is wrong with
    it (`is empty`, `has "url" as a JSON number, not a string`), never the value."""


class UnreadableSecretAnswerError(Exception):
    """Secrets Manager's answer to GetSecretValue holds no secret the router can read (a
    SecretString that is no text, or neither field); the message names the field and the JSON
    type it held, never the value."""


class RateLimitedError(ChannelError):
    """The channel answered 429 or 503 with a Retry-After: it takes nothing before that."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)


class MessageNotDeliveredError(Exception):
    """An SQS message must be delivered again (a channel did not take it, not started, in
    progress, or unreadable): raised
    to the batch processor, which reports it in `batchItemFailures`."""

    def __init__(self, message_id: str, status: str) -> None:
        self.message_id = message_id
        self.status = status
        super().__init__(f"message {message_id} is {status}")


# Not a FleetError: the skeleton turns those into a result, and this one must fail the invocation.
class UndeliveredAlertError(Exception):
    """Raised after an SNS batch for the messages not delivered on every channel (or not started
    for lack of time), and the unreadable ones that could not be kept in the dead-letter queue,
    so that Lambda retries them and then uses its own DLQ. `unkept` maps each of the latter (its
    SNS MessageId, or `Records[i]`) to why."""

    def __init__(self, message_ids: list[str], unkept: dict[str, str] | None = None) -> None:
        self.message_ids = message_ids
        self.unkept = dict(unkept or {})
        parts = []
        if message_ids:
            parts.append(f"alerts not delivered on every channel: {', '.join(message_ids)}")
        if self.unkept:
            reasons = "; ".join(f"{name}: {reason}" for name, reason in self.unkept.items())
            parts.append(f"unreadable messages not kept in the dead-letter queue: {reasons}")
        super().__init__("; ".join(parts))
