"""Refusing an answer botocore's parser fails on with a bare Python error.

An answer can be its call's, root and fields, and still hold a value of the wrong kind: a
timestamp that is no date (EKS's `createdAt`, IAM's `CreateDate`, S3's `CreationDate`), an XML
integer or float that is no number. botocore's parsers convert such a value as they meet it and
raise what the conversion raised: a `ValueError` (`Invalid timestamp ...`), a `TypeError`, an
`OverflowError`, none of them a `ResponseParserError`. No caller takes those for one call's
failure, so one member's answer ended the whole run, the other accounts and clusters unhandled.

Every session the fleet builds (`sessions.AccountSessions`) creates its parsers through
`MalformedAnswerRefusingParserFactory`, whose parsers raise `MalformedAnswerError` instead: a
`ResponseParserError`, one of `aws_answers.AWS_CALL_ERRORS`, so the answer fails its target
alone. Whatever the parser raises on an answer is that answer's: the parser is botocore's own,
its input the answer and the service's model, so no error of the fleet's own code is caught here.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError
from botocore.model import Shape
from botocore.parsers import ResponseParser, ResponseParserError, ResponseParserFactory

from fleet_shared.validation_errors import ECHO_LIMIT, error_echo

MIN_REASON_LENGTH = 60
"""The fewest characters of the parser's own message an error keeps, however long the
operation's name: enough for the error's kind and the start of the value."""


class MalformedAnswerError(ResponseParserError, BotoCoreError):
    """An answer botocore's parser failed on with a Python error (a timestamp that is no date):
    a `ResponseParserError`, as botocore's own unreadable answers, and a `BotoCoreError`, as
    `foreign_answers.ForeignAnswerError`, since the request it answers reached AWS."""

    # Worded as botocore's own parser errors begin, so every unreadable answer reads alike.
    fmt = "Unable to parse response: {operation} answered a value botocore cannot read: {reason}"


class _RefusingParser:
    """A botocore parser whose `parse` raises `MalformedAnswerError` for what it raised other
    than a `ResponseParserError`."""

    def __init__(self, parser: ResponseParser) -> None:
        self._parser = parser

    def parse(self, response: dict[str, Any], shape: Shape | None) -> dict[str, Any]:
        try:
            return self._parser.parse(response, shape)
        except ResponseParserError:
            raise
        # Deliberately any Exception: see the module docstring.
        except Exception as error:
            # botocore's endpoint names the operation in the response's context.
            operation = str((response.get("context") or {}).get("operation_name", "an operation"))
            # The parser's message quotes the value it could not read, the answer's, of any
            # length and any characters: it is escaped and cut so that the whole message is one
            # line of ECHO_LIMIT characters.
            room = ECHO_LIMIT - len(MalformedAnswerError.fmt.format(operation=operation, reason=""))
            raise MalformedAnswerError(
                operation=operation,
                reason=error_echo(error, max(room, MIN_REASON_LENGTH)),
            ) from error


class MalformedAnswerRefusingParserFactory(ResponseParserFactory):
    """botocore's parser factory (a session's `response_parser_factory` component), whose
    parsers refuse a malformed answer with `MalformedAnswerError`."""

    def create_parser(self, protocol_name: str) -> _RefusingParser:  # type: ignore[override]
        return _RefusingParser(super().create_parser(protocol_name))
