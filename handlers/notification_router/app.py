"""notification_router: dedupes fleet alerts and routes them by severity to PagerDuty, Slack and
e-mail. Reference: docs/functions/notification_router.md.

Records come from the alert topics (SNS) or the router's queue (SQS); each message is a fleet
alert, a native CloudWatch alarm notification, or (in SQS) an SNS envelope around either
(messages.py), or the record of the router's own invocation by an alert topic that failed past
Lambda's retries, whose SNS messages are routed as that invocation would have (records.py).
Each is deduplicated and delivered on its route's channels (router.py). A message is not started
when the invocation has less time left than one channel attempt may take: it is handed back for
a retry, as is every message that a channel has not taken yet (from the queue, after the
Retry-After a rate-limited channel asked for, when it did).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.event_parsing import error_result, json_or_problem
from fleet_shared.exceptions import DeploymentError, EventValidationError
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.sqs_batch import QueueMessage, process_partial_batch
from fleet_shared.validation_errors import escaped_echo
from handlers.notification_router.dead_letters import keep
from handlers.notification_router.environment import RouterEnvironment
from handlers.notification_router.exceptions import (
    MessageNotDeliveredError,
    UndeliveredAlertError,
)
from handlers.notification_router.messages import Notification, parse_message
from handlers.notification_router.records import (
    SNS,
    SQS,
    AlertRecords,
    failed_sns_records,
    is_failure_record,
    parse_records,
)
from handlers.notification_router.router import (
    NOT_STARTED,
    REDELIVERED,
    RETRY_STATUSES,
    UNDELIVERED,
    message_key,
    route,
)
from handlers.notification_router.services import RouterServices

FUNCTION = FleetFunction("notification_router", RouterEnvironment, services=RouterServices.create)

ERROR = "error"
METRIC_NAMES = {
    "sent": "AlertsSent",
    "duplicate": "AlertsDuplicate",
    REDELIVERED: "AlertsRedelivered",
    "failed": "AlertsFailed",
    NOT_STARTED: "AlertsNotStarted",
    ERROR: "AlertsError",
}
"""The metric counting the messages of each status."""


@FUNCTION.handler(parse_records)
def handle(
    request: AlertRecords, services: RouterServices, invocation: Invocation
) -> dict[str, Any]:
    """Route every record: `{"status", "results": [one per message]}`.

    For SQS the result adds `batchItemFailures`: every message not delivered on every channel,
    not started for lack of time, in progress, unreadable or whose routing raised goes back to
    the queue (and, unreadable, on to its DLQ). For SNS such a message raises
    `UndeliveredAlertError` after the batch, so Lambda retries it and then uses the DLQ; an
    unreadable SNS message is an error result (a retry cannot fix it), kept in the queue's DLQ
    (`dead_letters`), and raises only when it could not be kept there.
    """
    if request.source == SQS:
        return _route_queue(request.records, services, invocation)
    return _route_topic(request.records, services, invocation)


def _route_topic(
    records: list[Mapping[str, Any]], services: RouterServices, invocation: Invocation
) -> dict[str, Any]:
    results = []
    for index, record in enumerate(records):
        sns = record.get("Sns")
        message_id = sns.get("MessageId") if isinstance(sns, Mapping) else None
        # Repeated in results, logs and the error that fails the invocation: a direct invocation
        # may send any text, and only the start of it is needed to find it.
        echoed_id = escaped_echo(message_id) if isinstance(message_id, str) else None
        try:
            result = _route_topic_record(index, record, echoed_id, services, invocation)
        except DeploymentError:
            # The deployment, not this message: the skeleton fails the invocation naming it.
            raise
        except Exception as error:
            # Any failure of one message, bug or not, is its own: the rest of the batch is
            # routed, then the invocation fails for it, so Lambda retries the event (its messages
            # delivered already are duplicates then) and, its retries spent, keeps it in the
            # function's dead-letter queue. Answered as a refused request, as the skeleton
            # answers a FleetError, every alert of the batch was dropped unseen.
            failure = error_result(error, message_id=echoed_id)
            result = {**failure, "error": escaped_echo(failure["error"]), "status": UNDELIVERED}
            FUNCTION.logger.warning(
                "routing the message failed; the invocation fails for it after the batch",
                extra={"message_id": echoed_id or f"Records[{index}]", "error": result["error"]},
                exc_info=True,
            )
        results.append(result)
    _count(results)
    named = [
        (result.get("message_id") or f"Records[{i}]", result) for i, result in enumerate(results)
    ]
    undelivered = [name for name, result in named if result["status"] in RETRY_STATUSES]
    unkept = {
        name: result["dead_letter"]["not_kept"]
        for name, result in named
        if "not_kept" in result.get("dead_letter", {})
    }
    if undelivered or unkept:
        raise UndeliveredAlertError(undelivered, unkept)
    return {"status": _overall(results), "results": results}


def _route_topic_record(
    index: int,
    record: Mapping[str, Any],
    echoed_id: str | None,
    services: RouterServices,
    invocation: Invocation,
) -> dict[str, Any]:
    """The result of the SNS record at `index`; one that cannot be read is kept in the
    dead-letter queue (`dead_letters.keep`), its result's `dead_letter` saying so or why not."""
    sns = record.get("Sns")
    message_id = sns.get("MessageId") if isinstance(sns, Mapping) else None
    if not isinstance(sns, Mapping):
        refusal = EventValidationError(f"Records[{index}].Sns", "expected an object")
        result = error_result(refusal)
    elif message_id is not None and not isinstance(message_id, str):
        refusal = EventValidationError(
            f"Records[{index}].Sns.MessageId",
            f"expected a string, got {type(message_id).__name__}",
        )
        result = error_result(refusal)
    else:
        field = f"Records[{index}].Sns.Message"
        result, refusal = _route_text(
            sns.get("Message"),
            field,
            echoed_id,
            services,
            invocation,
            source=SNS,
            sns_message_id=message_id,
        )
    if refusal is not None:
        # Nobody reads the result of an asynchronous invocation: the message is kept where an
        # unreadable queue message ends up, whose alarm tells people.
        keeping = keep(record, refusal, services, invocation)
        result["dead_letter"] = keeping.outcome
        if not keeping.kept:
            FUNCTION.logger.error(
                "unreadable message not kept in the dead-letter queue",
                extra={"message_id": echoed_id or f"Records[{index}]", **keeping.outcome},
            )
    return result


def _route_queue(
    records: list[Mapping[str, Any]], services: RouterServices, invocation: Invocation
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    # The messages come in order, one at a time; counted apart from the results so that a
    # message whose routing raised does not shift the records the next ones name.
    positions = iter(range(len(records)))

    def route_record(message: QueueMessage) -> None:
        position = next(positions)
        try:
            routed = _route_body(
                message,
                f"Records[{position}].body",
                services,
                invocation,
                receive_count=_receive_count(records[position]),
            )
        except Exception as error:
            # Reported here; the batch processor logs it and hands the message back.
            results.append(
                {**error_result(error, message_id=message.message_id), "status": UNDELIVERED}
            )
            raise
        results.extend(routed)
        waiting = [
            r for r in routed if r["status"] in RETRY_STATUSES and "retry_after_seconds" in r
        ]
        if waiting:
            longest = max(waiting, key=lambda result: int(result["retry_after_seconds"]))
            _delay(records[position], longest, services, invocation)
        unfinished = [r["status"] for r in routed if r["status"] in RETRY_STATUSES | {ERROR}]
        if unfinished:
            raise MessageNotDeliveredError(message.message_id, unfinished[0])

    response = process_partial_batch(records, route_record, FUNCTION.logger)
    _count(results)
    return {**response, "status": _overall(results), "results": results}


def _route_body(
    message: QueueMessage,
    field: str,
    services: RouterServices,
    invocation: Invocation,
    *,
    receive_count: int,
) -> list[dict[str, Any]]:
    """The results of a queue message (its body at `field`): one for an alert, an alarm or an SNS
    envelope, or one per SNS message of the router's own failed invocation whose record it is,
    each routed as that invocation would have routed it (keyed by its MessageId and text, so the
    channels that took it then are not sent it again). A record that is no such failure is one
    error result, naming the field: the queue hands it out again, then keeps it in its
    dead-letter queue."""
    document, _ = json_or_problem(message.body) if isinstance(message.body, str) else (None, None)
    if not is_failure_record(document):
        result, _ = _route_text(
            message.body,
            field,
            message.message_id,
            services,
            invocation,
            source=SQS,
            receive_count=receive_count,
        )
        return [result]
    try:
        sns_messages = failed_sns_records(
            document,
            field,
            invocation.invoked_function_arn,
            services.environment.alert_topics(),
        )
    except EventValidationError as error:
        FUNCTION.logger.warning(
            "failed invocation's record refused",
            extra={"error": str(error), "message_id": message.message_id},
        )
        return [error_result(error, message_id=message.message_id)]
    results = []
    for index, sns in enumerate(sns_messages):
        result, _ = _route_text(
            sns.get("Message"),
            f"{field}.requestPayload.Records[{index}].Sns.Message",
            message.message_id,
            services,
            invocation,
            source=SNS,
            sns_message_id=sns["MessageId"],
            receive_count=receive_count,
        )
        results.append({**result, "sns_message_id": escaped_echo(sns["MessageId"])})
    return results


def _delay(
    record: Mapping[str, Any],
    result: dict[str, Any],
    services: RouterServices,
    invocation: Invocation,
) -> None:
    """Hand the message back only after the Retry-After its channels asked for: the queue's
    visibility timeout would call them too early, or keep the message waiting much longer.
    When that cannot be done, the message comes back after the visibility timeout (logged)."""
    seconds = int(result["retry_after_seconds"])
    receipt_handle = record.get("receiptHandle")
    reason = None
    if not services.environment.router_queue_url:
        reason = "ROUTER_QUEUE_URL is not set"
    elif not isinstance(receipt_handle, str) or not receipt_handle:
        reason = "the record has no receiptHandle"
    elif not invocation.allows(services.environment.router_http_timeout_seconds):
        reason = "too little time left in the invocation"
    else:
        try:
            services.delay_queue_message(receipt_handle, seconds)
        except (ClientError, BotoCoreError) as error:
            reason = f"ChangeMessageVisibility failed: {error}"
    if reason is None:
        result["visible_again_in_seconds"] = seconds
    else:
        FUNCTION.logger.warning(
            "message not delayed for its Retry-After; it comes back after the visibility timeout",
            extra={"message_id": result.get("message_id"), "reason": reason},
        )


def _receive_count(record: Mapping[str, Any]) -> int:
    """How many times the queue has handed this message out, this time included (its
    `ApproximateReceiveCount` attribute); 1 when the record carries none that reads as one."""
    attributes = record.get("attributes")
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
    if isinstance(count, str) and count.isascii() and count.isdigit() and len(count) <= 9:
        return max(int(count), 1)
    return 1


def _route_text(
    text: object,
    field: str,
    message_id: object,
    services: RouterServices,
    invocation: Invocation,
    *,
    source: str,
    sns_message_id: str | None = None,
    receive_count: int = 1,
) -> tuple[dict[str, Any], EventValidationError | None]:
    """The message's result, and why it was refused when it could not be read; `source` is
    the event source of its record and `sns_message_id` the MessageId of an SNS record, by
    which with its text a redelivery or a redrive of it is recognised (`_message_key`), and
    `receive_count` the how-many-th delivery of it this is (`router.route`)."""
    if not invocation.allows(services.delivery_policy.attempt_seconds):
        FUNCTION.logger.warning(
            "message not started: too little time left",
            extra={"message_id": message_id, "remaining_seconds": invocation.remaining_seconds()},
        )
        return {"message_id": message_id, "status": NOT_STARTED}, None
    try:
        notification = parse_message(
            text, field, services.environment.router_critical_alarm_patterns, services.clock.now()
        )
    except EventValidationError as error:
        FUNCTION.logger.warning(
            "message refused", extra={"error": str(error), "message_id": message_id}
        )
        return error_result(error, message_id=message_id), error
    message = _message_key(notification, str(text), source, sns_message_id)
    result = route(notification, services, invocation, message=message, receive_count=receive_count)
    FUNCTION.logger.info("alert routed", extra={**result, "message_id": message_id})
    return {"message_id": message_id, **result}, None


def _message_key(
    notification: Notification, text: str, source: str, sns_message_id: str | None
) -> str | None:
    """The key of the message `text` (`router.message_key`): the SNS message an alert topic's
    record carried, or that a queue body's SNS envelope holds; else the queue body itself. None
    for an SNS record without a MessageId: judged by the dedup claims alone."""
    if source == SNS:
        return None if sns_message_id is None else message_key(text, sns_message_id)
    if notification.published is not None:
        published_id, published_text = notification.published
        return message_key(published_text, published_id)
    return message_key(text)


def _overall(results: list[dict[str, Any]]) -> str:
    statuses = {result["status"] for result in results}
    if statuses & RETRY_STATUSES:
        return "failed"
    if ERROR in statuses:
        return "partial" if statuses - {ERROR} else ERROR
    return "ok"


def _count(results: list[dict[str, Any]]) -> None:
    for status, metric_name in METRIC_NAMES.items():
        count = sum(1 for result in results if result["status"] == status)
        if count:
            FUNCTION.observability.metrics.add_metric(name=metric_name, unit="Count", value=count)


lambda_handler = FUNCTION.lambda_handler
