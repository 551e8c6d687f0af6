"""The router's event: a batch of SNS records (the alert topics) or SQS records (its queue), and
in its queue the record of its own invocation by an alert topic that failed past Lambda's retries.

Checked here rather than with Powertools' `SnsModel`/`SqsModel`: those require every field AWS
sends (SNS signatures and UnsubscribeUrl, SQS attributes), which the example events, the local
demo and redriven messages do not all carry, while the router reads only the fields below.

A failed invocation's record is what Lambda sends to the router's queue, its on-failure
destination (`components/fleet_function.py`): `{"version": "1.0", "timestamp", "requestContext":
{"requestId", "functionArn", "condition", "approximateInvokeCount"}, "requestPayload": <the SNS
event>, "responseContext", "responsePayload"}`. Anyone who may send to the queue can write that
shape, so it is taken only as the router's own (`requestContext.functionArn` names the function
Lambda runs this invocation as, any qualifier aside), failed (`condition`), and holding SNS records
of the alert topics the router is subscribed to; anything else is refused, naming the field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from fleet_shared.event_parsing import EVENT_FIELD
from fleet_shared.exceptions import EventValidationError
from fleet_shared.validation_errors import shown_value

SNS = "aws:sns"
SQS = "aws:sqs"
FAILURE_RECORD_VERSION = "1.0"
FAILURE_CONDITIONS = ("RetriesExhausted", "EventAgeExceeded")
"""The `condition` of an invocation that failed: its retries spent, or too old to be tried again
(`Success` is an on-success destination's; Lambda documents no other)."""
UNQUALIFIED_FUNCTION_ARN_PARTS = 7
"""`arn:aws:lambda:<region>:<account>:function:<name>`: a qualifier (`$LATEST`, a version or an
alias) is an eighth part."""


@dataclass(frozen=True)
class AlertRecords:
    """The records of one invocation, all from one source (`aws:sns` or `aws:sqs`)."""

    source: str
    records: list[Mapping[str, Any]]


def parse_records(event: object) -> AlertRecords:
    """The records of `event`; raises `EventValidationError` naming the first wrong field.

    A record's message is checked later, on its own: one unreadable alert must not stop the
    others of the batch.
    """
    if not isinstance(event, Mapping):
        raise EventValidationError(
            EVENT_FIELD, f"expected a JSON object, got {type(event).__name__}"
        )
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise EventValidationError("Records", "expected a non-empty list of SNS or SQS records")
    sources = set()
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise EventValidationError(f"Records[{index}]", "expected an object")
        source = record.get("EventSource") or record.get("eventSource")
        if source not in (SNS, SQS):
            raise EventValidationError(
                f"Records[{index}].eventSource", f"expected {SNS} or {SQS}, got {source!r}"
            )
        if source == SQS and not (isinstance(record.get("messageId"), str) and record["messageId"]):
            raise EventValidationError(f"Records[{index}].messageId", "is required for SQS")
        sources.add(source)
    if len(sources) > 1:
        raise EventValidationError("Records", "mixes SNS and SQS records")
    return AlertRecords(sources.pop(), list(records))


def is_failure_record(document: object) -> bool:
    """Whether a queue body's JSON document is shaped as a Lambda invocation record (it has a
    `requestContext` or a `requestPayload`, which no alert, alarm or SNS envelope has): it is
    then checked as one (`failed_sns_records`), not read as an alert."""
    return isinstance(document, Mapping) and (
        "requestContext" in document or "requestPayload" in document
    )


def failed_sns_records(
    record: Mapping[str, Any],
    field: str,
    function_arn: str | None,
    alert_topics: Collection[str],
) -> list[Mapping[str, Any]]:
    """The `Sns` objects of the SNS event the failed invocation `record` (a queue body, at
    `field`) was given, each with a MessageId and one of `alert_topics` as its TopicArn. Raises
    `EventValidationError` naming the first field that makes it no failed invocation of the
    function `function_arn` (the ARN Lambda runs the router as: None refuses every record)."""
    _expect(record.get("version"), FAILURE_RECORD_VERSION, f"{field}.version")
    context = _object_at(record, "requestContext", field)
    condition = context.get("condition")
    if condition not in FAILURE_CONDITIONS:
        raise EventValidationError(
            f"{field}.requestContext.condition",
            f"expected one of {', '.join(FAILURE_CONDITIONS)}, got {shown_value(condition)}",
        )
    named = context.get("functionArn")
    own = _unqualified(function_arn)
    if own is None:
        raise EventValidationError(
            f"{field}.requestContext.functionArn",
            "cannot be checked: the invocation names no function ARN",
        )
    unqualified = _unqualified(named)
    if unqualified != own:
        shown = named if unqualified is None else _last_part(unqualified)
        raise EventValidationError(
            f"{field}.requestContext.functionArn",
            f"names {shown_value(shown)}, not this function ({_last_part(own)})",
        )
    payload = record.get("requestPayload")
    records = payload.get("Records") if isinstance(payload, Mapping) else None
    if not isinstance(records, list) or not records:
        raise EventValidationError(
            f"{field}.requestPayload.Records", "expected a non-empty list of SNS records"
        )
    return [
        _alert_topic_message(entry, f"{field}.requestPayload.Records[{index}]", alert_topics)
        for index, entry in enumerate(records)
    ]


def _alert_topic_message(
    entry: object, field: str, alert_topics: Collection[str]
) -> Mapping[str, Any]:
    """The `Sns` object of one record of a failed invocation's SNS event (at `field`)."""
    if not isinstance(entry, Mapping):
        raise EventValidationError(field, "expected an object")
    _expect(entry.get("EventSource"), SNS, f"{field}.EventSource")
    sns = _object_at(entry, "Sns", field)
    topic = sns.get("TopicArn")
    if not isinstance(topic, str) or topic not in alert_topics:
        raise EventValidationError(
            f"{field}.Sns.TopicArn",
            f"names {shown_value(_last_part(topic))}, not one of the alert topics",
        )
    message_id = sns.get("MessageId")
    if not isinstance(message_id, str) or not message_id:
        raise EventValidationError(f"{field}.Sns.MessageId", "expected a non-empty string")
    return sns


def _expect(found: object, expected: str, field: str) -> None:
    """Raise `EventValidationError` naming `field` unless `found` is `expected`."""
    if found != expected:
        raise EventValidationError(field, f"expected {expected!r}, got {shown_value(found)}")


def _object_at(container: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any]:
    """The object under `key` of `container` (at `field`); raises `EventValidationError`
    naming it when it is none."""
    value = container.get(key)
    if not isinstance(value, Mapping):
        raise EventValidationError(f"{field}.{key}", "expected an object")
    return value


def _last_part(arn: object) -> object:
    """What tells one ARN of a kind from another (a topic's or an unqualified function's name):
    its last part, shown where the start of the ARN would show only its account."""
    return arn.rsplit(":", 1)[-1] if isinstance(arn, str) else arn


def _unqualified(arn: object) -> str | None:
    """A Lambda function's ARN without its qualifier, None for anything else."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":")
    if (
        len(parts) not in (UNQUALIFIED_FUNCTION_ARN_PARTS, UNQUALIFIED_FUNCTION_ARN_PARTS + 1)
        or parts[0] != "arn"
        or parts[2] != "lambda"
        or parts[5] != "function"
    ):
        return None
    return ":".join(parts[:UNQUALIFIED_FUNCTION_ARN_PARTS])
