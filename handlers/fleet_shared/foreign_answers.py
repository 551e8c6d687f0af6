"""Refusing an answer that is not its call's, before botocore parses it.

A proxy or gateway on the way can answer a call with HTTP 200 and a page of its own. AWS answers
a call of a query-protocol service (Auto Scaling, ELBv2, SNS, IAM, STS) with XML whose root
element is `<{Operation}Response>`; a well-formed page there (`<html><body>Bad
gateway</body></html>`) makes botocore's query parser raise a bare `KeyError` for the missing
`{Operation}Result`, which no caller takes for one call's failure: it ended whole runs. A JSON or
rest-JSON service (DynamoDB, EKS, Lambda, CloudWatch, Cost Explorer, Security Hub) gets the page
parsed into an answer without fields, so a write whose real answer is empty (a conditional
PutItem: the state table's locks and claims) reads as made when it was not. AWS never answers
those with a `text/html` page; the Content-Type is not required to be JSON, as moto's Lambda and
some services send none, and a body that opens with JSON is read as JSON whatever its label (moto's
server labels some JSON answers `text/html`). botocore's S3 parser reads a well-formed page
into an answer without the call's fields, whatever its root (one that is not XML, and S3's own
`<Error>` sent with HTTP 200, botocore's S3 handler turns into a 500 it retries, before this
check runs): a GetBucketVersioning so answered read as a bucket never versioned, whose real
answer is an empty `<VersioningConfiguration/>`, so no field can be required of it. botocore's
model does not name the root of every S3 answer, so `S3_ANSWER_ROOTS` declares it for each S3
operation the fleet reads an XML answer of. A write S3 answers with no body (PutObject,
DeleteObject: `S3_BODILESS_ANSWERS`, their fields are headers) answered with a page read as
made; a body opening with markup is refused there. The others answer with the object itself
(GetObject, whose stream is never read here), with the bucket policy's JSON (GetBucketPolicy) or
to a HEAD request, which has no body, and are left to botocore.

Registered on every session the fleet builds (`sessions.AccountSessions`),
`refuse_foreign_answer` raises `ForeignAnswerError` for such an answer instead: botocore emits
`before-parse` after its send step, outside the errors it retries, so the error reaches the
caller as the call's own.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError
from botocore.model import OperationModel
from botocore.parsers import ResponseParserError

from fleet_shared.validation_errors import shown_value

QUERY_PROTOCOL = "query"
JSON_PROTOCOLS = frozenset({"json", "rest-json"})
S3_SERVICE = "s3"

S3_ANSWER_ROOTS: dict[str, tuple[str, ...]] = {
    "CopyObject": ("CopyObjectResult",),
    "DeleteObjects": ("DeleteResult",),
    "GetBucketEncryption": ("ServerSideEncryptionConfiguration",),
    # moto answers <GetBucketVersioningResponse> (its serializer's wrapper of an answer without a
    # payload member), in the demo and the tests; no proxy's page has that root.
    "GetBucketVersioning": ("VersioningConfiguration", "GetBucketVersioningResponse"),
    "GetPublicAccessBlock": ("PublicAccessBlockConfiguration",),
    "ListBuckets": ("ListAllMyBucketsResult",),
    "ListObjectsV2": ("ListBucketResult",),
}
"""The root element of the success answer of each S3 operation the fleet reads an XML answer of
(S3 API Reference, "Response Syntax"), S3's own first. Each one always has its root, an empty
body being no answer of the operation."""

S3_BODILESS_ANSWERS = frozenset({"PutObject", "DeleteObject"})
"""The S3 writes the fleet makes whose success has an empty body (S3 API Reference: every field
of the answer is a header)."""

PAGE_MEDIA_TYPE = "text/html"
"""The Content-Type of a gateway's or proxy's own page, which no JSON answer of AWS carries."""

HEAD_BYTES = 512
"""How much of a body is searched for its root element: AWS's answers open with it, after at
most an XML declaration."""

_ELEMENT_NAME = re.compile(rb"[A-Za-z_][\w.:-]*")


class ForeignAnswerError(ResponseParserError, BotoCoreError):
    """A success answer refused as not its call's: a `ResponseParserError`, as botocore's own
    unreadable answers (one of `aws_answers.AWS_CALL_ERRORS`), and a `BotoCoreError`, as a call
    that got no answer of its own, whose request may have reached AWS all the same. A caller
    handling either (a state table write it logs and goes on from, a JSON call that used to read
    such a page as an empty answer) handles this one."""

    # Worded as botocore's own parser errors begin, so every unreadable answer reads alike.
    fmt = "Unable to parse response: {operation} answered {how}, not its answer: {shown}"


def refuse_foreign_answer(
    response_dict: dict[str, Any], operation_model: OperationModel, **_: Any
) -> None:
    """A `before-parse` handler: raises `ForeignAnswerError`, naming the operation and showing
    the start of the body, for a success (status below 300) that is not the call's: a
    query-protocol one whose root element is not `<{Operation}Response>`, a JSON or rest-JSON
    one sent as a `text/html` page, its body opening with markup (unless the body is the
    operation's own payload), an S3 one of `S3_ANSWER_ROOTS` without its root or of
    `S3_BODILESS_ANSWERS` with markup. Any other answer is left to botocore's parser."""
    if response_dict["status_code"] >= 300:
        return
    service_model = operation_model.service_model
    protocol = service_model.resolved_protocol
    if protocol == QUERY_PROTOCOL:
        _refuse_foreign_query_answer(response_dict, operation_model)
    elif protocol in JSON_PROTOCOLS and not _body_is_payload(operation_model):
        _refuse_page_as_json_answer(response_dict, operation_model)
    elif service_model.service_name == S3_SERVICE:
        _refuse_foreign_s3_answer(response_dict, operation_model)


def _refuse_foreign_query_answer(
    response_dict: dict[str, Any], operation_model: OperationModel
) -> None:
    head = (response_dict.get("body") or b"")[:HEAD_BYTES]
    expected = f"{operation_model.name}Response"
    if _root_element(head) != expected:
        raise _unreadable(operation_model, f"without <{expected}>", head)


def _refuse_foreign_s3_answer(
    response_dict: dict[str, Any], operation_model: OperationModel
) -> None:
    name = operation_model.name
    # Decided before the body is touched: another operation may answer with a stream
    # (GetObject's), which reading here would consume.
    if name not in S3_ANSWER_ROOTS and name not in S3_BODILESS_ANSWERS:
        return
    head = (response_dict.get("body") or b"")[:HEAD_BYTES]
    roots = S3_ANSWER_ROOTS.get(name)
    if roots is None:
        if head.lstrip().startswith(b"<"):
            raise _unreadable(operation_model, "with markup", head)
    elif _root_element(head) not in roots:
        raise _unreadable(operation_model, f"without <{roots[0]}>", head)


def _refuse_page_as_json_answer(
    response_dict: dict[str, Any], operation_model: OperationModel
) -> None:
    content_type = _header(response_dict.get("headers") or {}, "content-type")
    media_type = content_type.split(";", 1)[0].strip().lower()
    head = (response_dict.get("body") or b"")[:HEAD_BYTES]
    # The label alone is not enough: moto's server sends some JSON answers (Scheduler's
    # CreateSchedule) as text/html. A page opens with markup, which no JSON document does.
    if media_type == PAGE_MEDIA_TYPE and head.lstrip().startswith(b"<"):
        raise _unreadable(operation_model, f"with {PAGE_MEDIA_TYPE}", head)


def _unreadable(operation_model: OperationModel, how: str, head: bytes) -> ForeignAnswerError:
    shown = shown_value(head.decode("utf-8", errors="replace").strip())
    return ForeignAnswerError(operation=operation_model.name, how=how, shown=shown)


def _body_is_payload(operation_model: OperationModel) -> bool:
    """Whether the answer's body is one member's bytes or text, or an event stream (Lambda's
    Invoke, an object read): its Content-Type is that content's own, any media type."""
    output = operation_model.output_shape
    if output is None:
        return False
    if operation_model.has_event_stream_output:
        return True
    payload = output.serialization.get("payload")
    return payload is not None and output.members[payload].type_name in {"blob", "string"}


def _header(headers: Any, name: str) -> str:
    """The value of header `name`, matched without regard to case; empty when absent."""
    return next((value for key, value in headers.items() if key.lower() == name), "")


def _root_element(head: bytes) -> str:
    """The name of the first element opened in `head`, past the `<?...?>` and `<!...>` ahead
    of it (an XML declaration, a doctype); empty when none opens there."""
    position = head.find(b"<")
    while position >= 0 and head.startswith((b"<?", b"<!"), position):
        position = head.find(b"<", position + 2)
    if position < 0:
        return ""
    name = _ELEMENT_NAME.match(head, position + 1)
    return name.group().decode("ascii") if name else ""
