"""The router's event: a batch of SNS records (the alert topics) or SQS records (its queue).

Checked here rather than with Powertools' `SnsModel`/`SqsModel`: those require every field AWS
sends (SNS signatures and UnsubscribeUrl, SQS attributes), which the example events, the local
demo and redriven messages do not all carry, while the router reads only the fields below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet_shared.event_parsing import EVENT_FIELD
from fleet_shared.exceptions import EventValidationError

SNS = "aws:sns"
SQS = "aws:sqs"


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
