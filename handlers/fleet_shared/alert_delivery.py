"""Alerts that go out exactly once: the dedup claim is completed only after SNS took the alert.

A function that guards an alert with a dedup key (a CloudTrail event id, an interruption's
instance, an incident) must never answer "duplicate" for an alert that was never delivered. So
the claim is an idempotent request in the state table: taken while publishing, completed with the
SNS message id once the publish succeeded, and released when it failed. A failed publish then
raises `AlertNotDeliveredError`, which is deliberately not a `FleetError`: the skeleton lets it
fail the invocation, the platform retries the event, and the dead-letter queue keeps it after the
last retry. The retry finds no completed claim and publishes again. Every caller passes its
invocation as the claim's deadline, so a claim whose invocation Lambda killed while SNS hung
is free for the platform's retry a minute later, instead of turning it away for PUBLISH_SECONDS.

Exactly once is end to end, at the channels: the notification router sends an alert of one id and
kind once per ROUTER_DEDUP_WINDOW_SECONDS (15 minutes), so a copy SNS took twice within that
window reaches each channel once, and a copy past it reaches them all again
(tests/handlers/notification_router/test_alert_copies_end_to_end.py). An alert SNS took
therefore counts as delivered even when the state table then refuses to complete its claim: the
message id is returned and the claim kept until it expires, where failing would have the retry,
or a function's next run hours later, publish it again. SNS still takes an alert twice when a
copy of its event comes after such a claim expired, or after a claim expired during its publish
(SNS slower than the claim): the router absorbs the copies that come within its window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import RequestInProgressError
from fleet_shared.state_table import ClaimDeadline, StateTable

_logger = logging.getLogger(__name__)

SCOPE = "alert_delivery"
"""The idempotency scope of delivery claims in the state table."""

PUBLISH_SECONDS = 120
"""How long a claim blocks a concurrent copy while its publish runs (botocore's retries
included); a crashed invocation's claim is taken over after it."""


class AlertNotDeliveredError(Exception):
    """SNS did not take an alert after botocore's retries (or a concurrent copy is still
    publishing it): the invocation fails so the event is retried."""

    def __init__(self, alert: Alert, cause: str) -> None:
        self.alert = alert
        self.cause = cause
        super().__init__(f"alert {alert.id} ({alert.title[:80]}) not delivered: {cause}")


def deliver_once(
    state: StateTable,
    publisher: AlertPublisher,
    key: str,
    alert: Alert,
    ttl_seconds: int,
    *,
    deadline: ClaimDeadline | None,
) -> str | None:
    """Publish `alert` unless an alert with `key` was delivered within `ttl_seconds`.

    Returns the SNS message id, or None for a duplicate of a delivered alert. Raises
    `AlertNotDeliveredError` when the publish failed (the claim is released) or another
    invocation is publishing the same key right now. An alert SNS took whose claim the state
    table then refused to complete is delivered: its message id is returned (and logged) and the
    claim is kept until it expires. `deadline` is the invocation (None only outside one): the
    claim blocks no longer than until Lambda ends it, so the platform's retry of an invocation
    killed while publishing (SNS not answering) publishes the alert. It is required so that no
    caller forgets it: without it a killed invocation's claim holds for PUBLISH_SECONDS, and the
    retry fails on it.
    """
    try:
        with state.idempotent(
            SCOPE, key, ttl_seconds, PUBLISH_SECONDS, deadline=deadline
        ) as request:
            if request.is_repeat:
                return None
            try:
                message_id = publisher.publish(alert)
            except AWS_CALL_ERRORS as error:
                raise AlertNotDeliveredError(alert, call_error_text(error)) from error
            try:
                request.complete({"message_id": message_id, "alert_id": alert.id})
            except (ClientError, BotoCoreError, RequestInProgressError) as error:
                # SNS has the alert: failing now would have the retry (or the next run) publish
                # it again, possibly past the router's dedup window.
                request.hold()
                _logger.warning(
                    "alert %s delivered (SNS message %s) but its claim %s not completed (%s)",
                    alert.id,
                    message_id,
                    key,
                    error,
                )
            return message_id
    except RequestInProgressError as error:
        raise AlertNotDeliveredError(alert, str(error)) from error


def deliver_all(
    state: StateTable,
    publisher: AlertPublisher,
    deliveries: Iterable[tuple[str, Alert]],
    ttl_seconds: int,
    *,
    deadline: ClaimDeadline | None,
) -> list[str]:
    """`deliver_once` for every (key, alert), each tried even when an earlier one failed.

    For notices of work already done (a scaling change, a cleanup mark): the work's idempotency
    record keeps the notices, and every run of the same request, first or repeat, calls this, so
    a notice that failed is sent by the retry and one that went out is not sent again. Returns
    the message ids of the alerts sent now; raises the first `AlertNotDeliveredError` after
    trying them all. `deadline` bounds every claim, as for `deliver_once`.
    """
    sent: list[str] = []
    failures: list[AlertNotDeliveredError] = []
    for key, alert in deliveries:
        try:
            message_id = deliver_once(state, publisher, key, alert, ttl_seconds, deadline=deadline)
        except AlertNotDeliveredError as error:
            failures.append(error)
            continue
        if message_id is not None:
            sent.append(message_id)
    if failures:
        raise failures[0]
    return sent
