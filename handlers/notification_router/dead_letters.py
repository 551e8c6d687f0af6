"""Keep an SNS message the router cannot read in the dead-letter queue of its own queue.

An unreadable message from the router's queue goes back to it and, after its receive limit, to
that dead-letter queue, whose alarm tells people. One from an alert topic has nowhere to go
back to: SNS invokes the router asynchronously and nobody reads its error result, so an alert
with one field wrong (a critical one too) would be dropped unseen. It is sent, as received, to
the same dead-letter queue, with message attributes naming the field (`field`) and the problem
(`problem`, both at most `validation_errors.ECHO_LIMIT` characters), what was kept (`kept`) and
its SNS `sns_message_id` and `topic_arn`: the same alarm fires, and the message can be inspected
and redriven to the router's queue, which reads an SNS envelope as the alert it carries.

What is kept, within SQS's 256 KiB for the body and the attributes together: the record's `Sns`
object as JSON (an SNS envelope); when that does not fit, its `Sns.Message` text alone, as
received; a record whose `Sns` is no object is kept whole (`record`). What fits in none of those
ways is cut to its first bytes, and `kept` says so: a message SNS took is at most 256 KiB, so only
one within a few hundred bytes of that limit, or one that did not come from SNS, is cut.

Once per delivery: keeping a message is an idempotent request on its SNS MessageId in the state
table, completed once SQS took it and remembered as long as a message stays in a dead-letter
queue, so a second delivery of the message by SNS, or Lambda's retry of an invocation that
failed for another message, does not keep it twice. A message without a usable MessageId, or
met while the state table fails, is kept without that claim: a second copy is then possible, a
lost message is not.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import (
    ConfigurationError,
    EventValidationError,
    RequestInProgressError,
    UnreadableRequestRecordError,
)
from fleet_shared.handler import Invocation
from fleet_shared.sessions import HUB_CALL_SECONDS
from fleet_shared.state_table import IdempotentRequest
from fleet_shared.validation_errors import cut_echo, error_echo
from handlers.notification_router.delivery_policy import DEADLINE_MARGIN_SECONDS, RECORDING_SECONDS
from handlers.notification_router.services import RouterServices

_logger = logging.getLogger(__name__)

SCOPE = "notification_router/dead_letters"
SQS_MESSAGE_BYTES = 256 * 1024
"""SQS's limit on a message: its body and every attribute's name, type and value together."""
KEPT_SECONDS = 14 * 24 * 3600
"""How long a kept message's claim is remembered: as long as a message stays in a dead-letter
queue (14 days, `components/fleet_function.py`)."""
KEEP_SECONDS = 2 * RECORDING_SECONDS + HUB_CALL_SECONDS + DEADLINE_MARGIN_SECONDS
"""The time left that keeping a message needs to start: the claim and its completion in the
state table, the SendMessage between them, and the margin to return (43 s)."""
LONGEST_MESSAGE_ID = 128
"""The longest SNS MessageId claimed (SNS's are 36 characters): a longer one is not SNS's, and
would not fit DynamoDB's sort key."""
ATTRIBUTE_TYPE = "String"
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""A character SQS refuses in a body or an attribute value (it carries XML 1.0 characters)."""


@dataclass(frozen=True)
class KeptMessage:
    """The dead-letter queue message of an unreadable record: its body and text attributes."""

    body: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Keeping:
    """What happened to an unreadable message: `outcome` is the `dead_letter` of its result;
    `kept` is False when it is in no dead-letter queue (the invocation must fail)."""

    outcome: dict[str, Any]
    kept: bool


def kept_message(record: Mapping[str, Any], error: EventValidationError) -> KeptMessage:
    """The message keeping `record`, refused for `error`."""
    attributes = {"field": error.field, "problem": error.problem}
    sns = record.get("Sns")
    if isinstance(sns, Mapping):
        for name, value in (
            ("sns_message_id", sns.get("MessageId")),
            ("topic_arn", sns.get("TopicArn")),
        ):
            if isinstance(value, str) and value:
                attributes[name] = cut_echo(value)
        message = sns.get("Message")
        candidates = [("Sns", _json_text(sns))]
        if isinstance(message, str) and message and not _NOT_SQS_TEXT.search(message):
            candidates.append(("Sns.Message", message))
    else:
        candidates = [("record", _json_text(record))]
    attributes = {name: _attribute_text(value) for name, value in attributes.items()}
    for kept, body in candidates:
        if _size({**attributes, "kept": kept}, body) <= SQS_MESSAGE_BYTES:
            return KeptMessage(body, {**attributes, "kept": kept})
    kept, body = candidates[-1]
    whole = len(body.encode("utf-8"))
    # The description is written with the whole size as the size kept, its longest form.
    described = {**attributes, "kept": f"{kept}, its first {whole} of {whole} bytes"}
    room = SQS_MESSAGE_BYTES - _size(described, "")
    cut = body.encode("utf-8")[:room].decode("utf-8", "ignore")
    size = len(cut.encode("utf-8"))
    return KeptMessage(cut, {**attributes, "kept": f"{kept}, its first {size} of {whole} bytes"})


def keep(
    record: Mapping[str, Any],
    error: EventValidationError,
    services: RouterServices,
    invocation: Invocation,
) -> Keeping:
    """Keep `record`, refused for `error`, in the dead-letter queue, once per SNS MessageId;
    what happened."""
    if not invocation.allows(KEEP_SECONDS):
        return Keeping({"not_kept": "too little time left in the invocation"}, kept=False)
    message = kept_message(record, error)
    sns = record.get("Sns")
    message_id = sns.get("MessageId") if isinstance(sns, Mapping) else None
    if not (isinstance(message_id, str) and 0 < len(message_id) <= LONGEST_MESSAGE_ID):
        return _send(message, services)
    try:
        with services.state.idempotent(
            SCOPE,
            message_id,
            ttl_seconds=KEPT_SECONDS,
            in_progress_seconds=math.ceil(KEEP_SECONDS),
            # Ends with the invocation: Lambda's retry of one it ended must keep the message.
            deadline=invocation,
        ) as request:
            if request.is_repeat:
                return Keeping({**_earlier_outcome(request), "earlier": True}, kept=True)
            keeping = _send(message, services)
            if keeping.kept:
                _complete(request, keeping.outcome, message_id)
            return keeping
    except RequestInProgressError:
        # Another invocation is keeping this delivery right now; if it fails, it fails its
        # invocation, and Lambda's retry of it keeps the message.
        return Keeping({"in_progress": True}, kept=True)
    except AWS_CALL_ERRORS as table_error:
        _logger.warning(
            "dead-letter claim of %s not taken (%s); kept without it",
            message_id,
            call_error_text(table_error),
        )
        return _send(message, services)


def _send(message: KeptMessage, services: RouterServices) -> Keeping:
    try:
        queue_message_id = services.keep_in_dead_letter_queue(message.body, message.attributes)
    except (*AWS_CALL_ERRORS, ConfigurationError) as error:
        return Keeping({"not_kept": error_echo(error)}, kept=False)
    return Keeping(
        {"kept": message.attributes["kept"], "queue_message_id": queue_message_id}, kept=True
    )


def _earlier_outcome(request: IdempotentRequest) -> dict[str, Any]:
    """What the delivery that kept the message recorded of it; nothing, logged, when its record
    cannot be read (a hand edit, corruption). Its claim was completed, so the message is in the
    queue: raised, the error failed the invocation, and SNS's retries of it too, each a retry
    of every alert of its batch."""
    try:
        return request.result or {}
    except UnreadableRequestRecordError as error:
        _logger.warning("%s; taken as kept by that delivery", error)
        return {}


def _complete(request: Any, outcome: dict[str, Any], message_id: str) -> None:
    """Record that the message was kept; when the table refuses, the claim is held until it
    expires (the message is in the queue: a retry meanwhile is answered `in_progress`)."""
    try:
        request.complete(outcome)
    except (*AWS_CALL_ERRORS, RequestInProgressError) as error:
        _logger.warning(
            "dead-letter claim of %s not completed (%s); a later delivery may keep it again",
            message_id,
            call_error_text(error),
        )
        request.hold()


def _json_text(value: object) -> str:
    """`value` as compact JSON that SQS takes: its characters as they are, or escaped as
    JSON's `\\u` and four hex digits when one of them is not one SQS carries (a lone surrogate,
    U+FFFE)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if _NOT_SQS_TEXT.search(text):
        return json.dumps(value, separators=(",", ":"))
    return text


def _attribute_text(value: str) -> str:
    """`value` as an attribute value SQS takes: never empty, no character it refuses."""
    return _NOT_SQS_TEXT.sub("\N{REPLACEMENT CHARACTER}", value) or "-"


def _size(attributes: dict[str, str], body: str) -> int:
    """The bytes SQS counts for a message of `body` and `attributes`."""
    return len(body.encode("utf-8")) + sum(
        len(name.encode("utf-8")) + len(ATTRIBUTE_TYPE) + len(value.encode("utf-8"))
        for name, value in attributes.items()
    )
