"""notification_router: dedupes fleet alerts and routes them by severity to PagerDuty, Slack and
e-mail.

Events (see README `### notification_router` and `events/notification_router/`):
- SNS (the fleet's alert topics): `Records[].Sns.Message` is a fleet alert (JSON of
  `fleet_shared.alerts.Alert`) or a native CloudWatch alarm notification.
- SQS (the router's queue): `Records[].body` is the SNS envelope of such a message, or the alert
  or alarm JSON itself (raw delivery).
CloudWatch alarms become alerts: ALARM is critical when the alarm name matches
ROUTER_CRITICAL_ALARM_PATTERNS, else a warning; OK is info and resolves; INSUFFICIENT_DATA is info.

Environment variables:
- STATE_TABLE_NAME (required): dedup claims and suppressed-duplicate counters.
- EMAIL_TOPIC_ARN: the e-mail topic; unset disables the `email` channel.
- SLACK_WEBHOOK_SECRET: Secrets Manager name or ARN of the Slack incoming-webhook URL (the secret
  string is the URL or JSON `{"url": ...}`); unset disables the `slack` channel.
- PAGERDUTY_ROUTING_KEY_SECRET: name or ARN of the PagerDuty Events v2 routing key (plain, or
  JSON `{"routing_key": ...}`); unset disables the `pagerduty` channel.
- PAGERDUTY_EVENTS_URL (default `https://events.pagerduty.com/v2/enqueue`).
- ROUTER_ROUTES (default `critical=pagerduty+slack+email,warning=slack+email,info=email,
  resolved=pagerduty+slack+email`): channels per severity and for resolutions.
- ROUTER_CRITICAL_ALARM_PATTERNS (default `*-critical,*-Errors`): fnmatch patterns of critical
  CloudWatch alarm names.
- ROUTER_DEDUP_WINDOW_SECONDS (900): the same alert is sent once in this window.
- ROUTER_MAX_ATTEMPTS (3), ROUTER_BACKOFF_SECONDS (0.5, doubled per retry): per channel.
- ROUTER_HTTP_TIMEOUT_SECONDS (5): Slack and PagerDuty requests.
- ROUTER_SECRET_TTL_SECONDS (300): how long a secret value is cached in the container.
- ROUTER_IN_PROGRESS_SECONDS (120): how long a claim blocks a concurrent copy of the same alert
  (longer than the function's timeout, so a crashed invocation's claim expires).

Result: `{"status", "results": [{"message_id", "alert_id", "severity", "kind", "title", "status":
sent|duplicate|skipped|failed|in_progress|error, "channels": [{"channel", "status":
sent|failed|skipped, "attempts", "error"}], "suppressed_duplicates"}]}`; for SQS also
`batchItemFailures` with the messageId of every message to retry (failed, in_progress, or
unreadable: it then reaches the queue's DLQ). For SNS a message that was not delivered anywhere
raises `UndeliveredAlertError` after the batch, so Lambda retries it and then sends it to the
DLQ; an unreadable SNS message is an error result (a retry cannot fix it).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from fleet_shared.clock import SystemClock
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import EventValidationError, FleetError
from fleet_shared.observability import observability_for
from fleet_shared.sessions import CLIENT_CONFIG
from fleet_shared.state_table import StateTable
from handlers.notification_router.channels import ChannelContext
from handlers.notification_router.messages import parse_message
from handlers.notification_router.router import RETRY_STATUSES, Runtime, route
from handlers.notification_router.secrets import SecretCache
from handlers.notification_router.settings import RouterEnvironment

FUNCTION_NAME = "notification_router"
OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger

ERROR = "error"


class UndeliveredAlertError(FleetError):
    """Raised for SNS deliveries so that Lambda retries them and then uses the DLQ."""

    def __init__(self, message_ids: list[str]) -> None:
        self.message_ids = message_ids
        super().__init__(f"alerts not delivered to any channel: {', '.join(message_ids)}")


@functools.cache
def _runtime() -> Runtime:
    """Settings, clients and the secret cache, kept for the container."""
    settings = load_environment(RouterEnvironment)
    clock = SystemClock()

    @functools.cache
    def client(service: str, region: str | None) -> Any:
        return boto3.client(service, region_name=region, config=CLIENT_CONFIG)

    return Runtime(
        settings=settings,
        state=StateTable(settings.state_table_name, client("dynamodb", None), clock),
        clock=clock,
        sleep=time.sleep,
        channel_context=ChannelContext(
            settings=settings,
            secrets=SecretCache(
                lambda region: client("secretsmanager", region),
                clock,
                settings.router_secret_ttl_seconds,
            ),
            sns_client=lambda region: client("sns", region),
        ),
    )


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: SNS or SQS records; see the module docstring for the result."""
    return handle(event, _runtime())


def handle(event: object, runtime: Runtime) -> dict[str, Any]:
    """Route every record; bad events get an error result and change nothing."""
    try:
        records, source = _records(event)
    except EventValidationError as error:
        logger.warning("event refused", extra={"error": str(error)})
        return error_result(error)
    if source == "aws:sqs":
        return _handle_sqs(records, runtime)
    return _handle_sns(records, runtime)


def _handle_sns(records: list[Mapping[str, Any]], runtime: Runtime) -> dict[str, Any]:
    results = []
    for index, record in enumerate(records):
        sns = record.get("Sns")
        if not isinstance(sns, Mapping):
            results.append(
                error_result(EventValidationError(f"Records[{index}].Sns", "expected an object"))
            )
            continue
        results.append(
            _route_text(
                sns.get("Message"), f"Records[{index}].Sns.Message", sns.get("MessageId"), runtime
            )
        )
    _count(results)
    undelivered = [str(r.get("message_id")) for r in results if r["status"] in RETRY_STATUSES]
    if undelivered:
        raise UndeliveredAlertError(undelivered)
    return {"status": _overall(results), "results": results}


def _handle_sqs(records: list[Mapping[str, Any]], runtime: Runtime) -> dict[str, Any]:
    results = []
    failures = []
    for index, record in enumerate(records):
        message_id = record["messageId"]
        result = _route_text(record.get("body"), f"Records[{index}].body", message_id, runtime)
        results.append(result)
        if result["status"] in RETRY_STATUSES or result["status"] == ERROR:
            failures.append({"itemIdentifier": message_id})
    _count(results)
    return {"batchItemFailures": failures, "status": _overall(results), "results": results}


def _route_text(text: object, field: str, message_id: object, runtime: Runtime) -> dict[str, Any]:
    try:
        notification = parse_message(text, field, runtime.settings.router_critical_alarm_patterns)
    except EventValidationError as error:
        logger.warning("message refused", extra={"error": str(error), "message_id": message_id})
        return error_result(error, message_id=message_id)
    result = route(notification, runtime)
    logger.info("alert routed", extra={**result, "message_id": message_id})
    return {"message_id": message_id, **result}


def _records(event: object) -> tuple[list[Mapping[str, Any]], str]:
    if not isinstance(event, Mapping):
        raise EventValidationError("event", f"expected a JSON object, got {type(event).__name__}")
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise EventValidationError("Records", "expected a non-empty list of SNS or SQS records")
    sources = set()
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise EventValidationError(f"Records[{index}]", "expected an object")
        source = record.get("EventSource") or record.get("eventSource")
        if source not in ("aws:sns", "aws:sqs"):
            raise EventValidationError(
                f"Records[{index}].eventSource", f"expected aws:sns or aws:sqs, got {source!r}"
            )
        if source == "aws:sqs" and not (
            isinstance(record.get("messageId"), str) and record["messageId"]
        ):
            raise EventValidationError(f"Records[{index}].messageId", "is required for SQS")
        sources.add(source)
    if len(sources) > 1:
        raise EventValidationError("Records", "mixes SNS and SQS records")
    return list(records), sources.pop()


def _overall(results: list[dict[str, Any]]) -> str:
    statuses = {result["status"] for result in results}
    if statuses & RETRY_STATUSES:
        return "failed"
    if ERROR in statuses:
        return "partial" if statuses - {ERROR} else ERROR
    return "ok"


def _count(results: list[dict[str, Any]]) -> None:
    for status in ("sent", "duplicate", "failed", "error"):
        count = sum(1 for result in results if result["status"] == status)
        if count:
            OBSERVABILITY.metrics.add_metric(
                name=f"Alerts{status.capitalize()}", unit="Count", value=count
            )
