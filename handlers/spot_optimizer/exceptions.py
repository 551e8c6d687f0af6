"""Errors of the spot optimizer."""

from __future__ import annotations


class InterruptionInProgressError(Exception):
    """Another invocation holds the claim of the same interruption warning (or died holding it).

    Deliberately not a `FleetError`: the invocation fails, so the platform retries the warning
    once the claim's lease has passed, instead of answering an error and dropping its alert.
    """

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(
            f"the interruption of {instance_id} is being handled by another invocation"
        )


class UnreadablePriceListError(ValueError):
    """A Pricing API PriceList entry that is not JSON, not shaped like a product, or whose price
    is not a finite number: the on-demand price then comes from the bundled table."""


class NoticesNotDeliveredError(Exception):
    """The state table did not take the delivery claim of a handled warning's alert (after
    botocore's retries), so the alert was not sent.

    Deliberately not a `FleetError`: the invocation fails, so the platform retries the warning;
    the retry is a repeat of the stored outcome and sends only what did not go out.
    """

    def __init__(self, cause: str) -> None:
        self.cause = cause
        super().__init__(f"interruption alerts not delivered: {cause}")


class InterruptionNotRecordedError(Exception):
    """A warning could not be recorded: its instance was not described in the member account
    (the member role or DescribeInstances failed), or the state table did not take its claim or
    an interruption record (after botocore's retries).

    Deliberately not a `FleetError`: an error result is not retried, so the warning would never
    be announced; the invocation fails instead, and the platform's retry records what is missing
    (each record once) and announces it.
    """

    def __init__(self, instance_id: str, cause: str) -> None:
        self.instance_id = instance_id
        self.cause = cause
        super().__init__(f"the interruption of {instance_id} was not recorded: {cause}")
