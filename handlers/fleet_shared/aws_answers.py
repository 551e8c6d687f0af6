"""Reading an AWS answer that may not be the call's own.

A proxy or gateway on the way can answer a call with HTTP 200 and a page of its own. A page
sent as `text/html` to a JSON or rest-JSON service, and any page to a query-protocol one (Auto
Scaling, ELBv2, SNS, IAM, STS) or to an S3 operation whose XML answer the fleet reads, is refused
before it is parsed (`foreign_answers.py`: `ForeignAnswerError`, both a `ResponseParserError`
and a `BotoCoreError`). Otherwise botocore
raises nothing for a JSON or CBOR service (EKS, DynamoDB, Lambda, CloudWatch: the page becomes a
bare `message`, or nothing); for EC2 it parses a well-formed page into an answer without the
call's fields and raises `ResponseParserError`, which is not a `BotoCoreError`, for one it
cannot parse; S3 alone turns such an answer into a 500 it retries. Either way one target's
answer must fail that target alone, as a refused call does: a `KeyError` or a
`ResponseParserError` would end the whole run, the other targets
unhandled, and an answer read as empty would pass for a listing with nothing in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from fleet_shared.exceptions import FleetError
from fleet_shared.validation_errors import escaped_echo, shown_value


class UnreadableAnswerError(FleetError):
    """An AWS call succeeded with an answer that is not that call's: `missing` names what it
    lacks; the message shows the start of the answer at most."""

    def __init__(self, call: str, missing: str, answer: object) -> None:
        self.call = call
        self.missing = missing
        content = (
            {key: value for key, value in answer.items() if key != "ResponseMetadata"}
            if isinstance(answer, Mapping)
            else answer
        )
        super().__init__(
            f"{call} answered without {missing}, not its answer: {shown_value(content)}"
        )


AWS_CALL_ERRORS: tuple[type[Exception], ...] = (
    ClientError,
    BotoCoreError,
    ResponseParserError,
    UnreadableAnswerError,
)
"""Every way one AWS call fails for its target alone: refused, not sent or not answered
(botocore's errors), answered with a body botocore cannot parse or a value it cannot convert
(`malformed_answers.MalformedAnswerError`), or with one that lacks the call's fields."""


def answer_field(answer: object, call: str, *path: str) -> Any:
    """`answer[path[0]][path[1]]...`; raises UnreadableAnswerError naming the first part of
    `path` that is missing (or whose holder is not a mapping)."""
    value = answer
    for depth, key in enumerate(path):
        if not isinstance(value, Mapping) or key not in value:
            raise UnreadableAnswerError(call, ".".join(path[: depth + 1]), answer)
        value = value[key]
    return value


def call_error_text(error: BaseException) -> str:
    """A failed call's error as an error message or a report quotes it: botocore's and the
    fleet's own wording whole (`EndpointNotAnsweringError`'s "not asked again" included), the
    text the answer brought (a `ClientError`'s code and message, which a proxy's 4xx page fills
    with its whole body; the body botocore's parser could not read) cut to `ECHO_LIMIT`
    characters each, its line breaks and other control characters escaped."""
    if isinstance(error, ResponseParserError):
        return escaped_echo(str(error))
    if not isinstance(error, ClientError):
        return str(error)
    refusal = error.response.get("Error", {})
    shown = refusal_text(error)
    return str(ClientError({**error.response, "Error": {**refusal, **shown}}, error.operation_name))


def refusal_text(error: ClientError) -> dict[str, str]:
    """The `Code` and the `Message` of the answer that refused `error`'s call (those it has),
    each cut to `ECHO_LIMIT` characters with its control characters escaped: for a message of
    the fleet's own wording around them (`call_error_text` keeps botocore's)."""
    refusal = error.response.get("Error", {})
    return {key: escaped_echo(str(refusal[key])) for key in ("Code", "Message") if key in refusal}
