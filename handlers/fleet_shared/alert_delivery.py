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

Each function's claims are its own, under `claim_scope` (`alert_delivery/<function>`), the
function being its publisher's (`AlertPublisher.function`: the handler's declared name, never
anything an event says), and each role may write only its own function's
(`fleet_shared.state_keys`): a bug or a crafted event in one function cannot claim, answer or
block another's alert. Before they were, every function claimed under one scope, `SCOPE`. A
claim made there before the upgrade still holds after it: before claiming under its own scope,
`deliver_once` reads its key under `SCOPE` (which every alerting role may read, none write), and
a claim completed there is a delivered alert, so an event retried across the deploy, or a dedup
key met again within its window, publishes nothing; a claim in progress there (an invocation of
the release before publishing right now) fails the delivery as a concurrent copy's does, for the
platform's retry. Only an invocation of the release before that claims under `SCOPE` after this
read, both running while the deploy switches over, publishes the same alert within seconds of
this one: the router drops that copy as one SNS took twice. The read (and its grant) can go once
every stack has run this release longer than its longest claim lives, the longest `ttl_seconds`
below: 30 days for the security scanner's findings, up to 90 for ANOMALY_DEDUP_DAYS, the
cleanup policy's `notice_days` plus one, SCALER_IDEMPOTENCY_TTL_HOURS for the scaler's notices.

One alert may be another function's to deliver too: a node group change's notice, which
eks_scaler delivers and spot_optimizer too when it finds the change made but not recorded
(`fleet_shared.change_intents`), each under the notice's one key. The caller names those
functions (`also_claimed_by`, from its code), and a claim of the key completed under one of their
scopes is a delivered alert as the shared scope's is (their roles read each other's claims,
never write them). Should both publish it at once, each having read the other's scope before the
other claimed, the router drops the second copy as one SNS took twice.
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
"""The idempotency scope every function's delivery claims shared before each function had its
own (`claim_scope`): read, never written, so a claim made there before the upgrade holds."""

PUBLISH_SECONDS = 120
"""How long a claim blocks a concurrent copy while its publish runs (botocore's retries
included); a crashed invocation's claim is taken over after it."""


def claim_scope(function: str) -> str:
    """The idempotency scope of `function`'s delivery claims (`state_keys.alert_delivery_claims`
    is its partition)."""
    return f"{SCOPE}/{function}"


def delivered(state: StateTable, function: str, key: str) -> bool:
    """Whether `function`'s alert under `key` went out, without claiming it: its claim is
    completed, under the function's own scope or, before the upgrade, the shared `SCOPE`. Raises
    `RequestInProgressError` while a claim of it is held (it is being published)."""
    return _delivered_elsewhere(state, function, key, ()) or state.request_completed(
        claim_scope(function), key
    )


def _delivered_elsewhere(
    state: StateTable, function: str, key: str, also_claimed_by: Iterable[str]
) -> bool:
    """Whether the alert under `key` went out under a scope that counts as `function`'s own: the
    shared `SCOPE` of before the upgrade, or a function of `also_claimed_by`'s. Raises
    `RequestInProgressError` while one of them holds a claim of it."""
    others = (claim_scope(other) for other in also_claimed_by if other != function)
    return any(state.request_completed(scope, key) for scope in (SCOPE, *others))


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
    also_claimed_by: tuple[str, ...] = (),
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
    retry fails on it. A claim of `key` completed under the shared `SCOPE` before the upgrade
    makes the alert a duplicate too, and one in progress there raises `AlertNotDeliveredError`;
    so does a claim of `key` under the scope of a function of `also_claimed_by` (the publisher's
    own skipped), the functions that deliver the same alert too.
    """
    try:
        if _delivered_elsewhere(state, publisher.function, key, also_claimed_by):
            return None
        with state.idempotent(
            claim_scope(publisher.function), key, ttl_seconds, PUBLISH_SECONDS, deadline=deadline
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
    also_claimed_by: tuple[str, ...] = (),
) -> list[str]:
    """`deliver_once` for every (key, alert), each tried even when an earlier one failed.

    For notices of work already done (a scaling change, a cleanup mark): the work's idempotency
    record keeps the notices, and every run of the same request, first or repeat, calls this, so
    a notice that failed is sent by the retry and one that went out is not sent again. Returns
    the message ids of the alerts sent now; raises the first `AlertNotDeliveredError` after
    trying them all. `deadline` bounds every claim, and `also_claimed_by` names the functions
    whose claims count as its own, as for `deliver_once`.
    """
    sent: list[str] = []
    failures: list[AlertNotDeliveredError] = []
    for key, alert in deliveries:
        try:
            message_id = deliver_once(
                state,
                publisher,
                key,
                alert,
                ttl_seconds,
                deadline=deadline,
                also_claimed_by=also_claimed_by,
            )
        except AlertNotDeliveredError as error:
            failures.append(error)
            continue
        if message_id is not None:
            sent.append(message_id)
    if failures:
        raise failures[0]
    return sent
