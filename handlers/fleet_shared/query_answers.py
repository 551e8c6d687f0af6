"""Refusing a query-protocol answer that is not its call's, before botocore parses it.

AWS answers a call of a query-protocol service (Auto Scaling, ELBv2, SNS, IAM, STS) with XML
whose root element is `<{Operation}Response>`. A proxy or gateway answering HTTP 200 with a
well-formed page of its own (`<html><body>Bad gateway</body></html>`) makes botocore's query
parser raise a bare `KeyError` for the missing `{Operation}Result`, which no caller takes for one
call's failure: it ended whole runs. Registered on every session the fleet builds
(`sessions.AccountSessions`), `refuse_foreign_query_answer` raises `ResponseParserError` (one of
`aws_answers.AWS_CALL_ERRORS`) for such an answer instead: botocore emits `before-parse` after
its send step, outside the errors it retries, so the error reaches the caller as the call's own.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.model import OperationModel
from botocore.parsers import ResponseParserError

from fleet_shared.validation_errors import shown_value

QUERY_PROTOCOL = "query"

HEAD_BYTES = 512
"""How much of a body is searched for its root element: AWS's answers open with it, after at
most an XML declaration."""

_ELEMENT_NAME = re.compile(rb"[A-Za-z_][\w.:-]*")


def refuse_foreign_query_answer(
    response_dict: dict[str, Any], operation_model: OperationModel, **_: Any
) -> None:
    """A `before-parse` handler: raises `ResponseParserError`, naming the operation and showing
    the start of the body, for a query-protocol success (status below 300) whose root element is
    not `<{Operation}Response>`; any other answer is left to botocore's parser."""
    if operation_model.service_model.resolved_protocol != QUERY_PROTOCOL:
        return
    if response_dict["status_code"] >= 300:
        return
    head = (response_dict.get("body") or b"")[:HEAD_BYTES]
    expected = f"{operation_model.name}Response"
    if _root_element(head) == expected:
        return
    shown = shown_value(head.decode("utf-8", errors="replace").strip())
    # Worded as botocore's own parser errors begin, so every unreadable answer reads alike.
    raise ResponseParserError(
        f"Unable to parse response: {operation_model.name} answered without <{expected}>, "
        f"not its answer: {shown}"
    )


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
