"""Every page of a listing read without a boto3 paginator. A service (or a proxy replaying one
answer) that answers a token the listing already followed would make a loop ask until Lambda ends
the run; boto3's paginators refuse the same token twice in a row, `pages` any token seen (a text,
or a key: the state table's Query pages end on DynamoDB's LastEvaluatedKey)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore import xform_name
from botocore.exceptions import PaginationError

from fleet_shared.exceptions import PagesCutShortError
from fleet_shared.validation_errors import shown_value


class RepeatedPageTokenError(PaginationError):
    """A `PaginationError`, as boto3's paginators raise: callers handle it as a failed call."""

    fmt = "{operation} answered the {token_field} {token} again: its pages would repeat forever"


class PageLimitError(PaginationError):
    """A `PaginationError`, as `RepeatedPageTokenError`: a listing answered more pages than its
    request can fill, each under a new token, which no check of repeated tokens stops."""

    fmt = (
        "{operation} answered a next page after {limit} pages, more than the request can "
        "fill: its pages would go on forever"
    )


def pages(
    client: Any,
    operation: str,
    request: Mapping[str, Any],
    token_field: str,
    *,
    answer_token_field: str | None = None,
    next_page_allowed: Callable[[], bool] | None = None,
    max_pages: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The pages `client` answers to `operation` (e.g. `GetMetricData`) with `request`, asking
    with each page's token until a page has none; a token seen before raises. The token is
    answered in `answer_token_field` when the answer names it otherwise than the request, which
    takes it in `token_field` (DynamoDB's ListBackups: LastEvaluatedBackupArn, then
    ExclusiveStartBackupArn). With `next_page_allowed`, a next page is asked only while it
    answers True, else PagesCutShortError: new tokens, each never seen, would otherwise be
    followed until Lambda ended the run. With `max_pages`, a page after that many raises
    `PageLimitError`, for a caller without a deadline to stop such pages by."""
    return pages_of(
        getattr(client, xform_name(operation)),
        operation,
        request,
        token_field,
        answer_token_field=answer_token_field,
        next_page_allowed=next_page_allowed,
        max_pages=max_pages,
    )


def pages_of(
    call: Callable[..., dict[str, Any]],
    operation: str,
    request: Mapping[str, Any],
    token_field: str,
    *,
    answer_token_field: str | None = None,
    next_page_allowed: Callable[[], bool] | None = None,
    max_pages: int | None = None,
) -> Iterator[dict[str, Any]]:
    """`pages`, each asked with `call(**request)`: for a caller that routes its calls through
    its own wrapper (the state table's). A token may be a key (DynamoDB's LastEvaluatedKey),
    compared by its content."""
    answered_in = answer_token_field or token_field
    asked = dict(request)
    followed: set[str] = set()
    while True:
        page = call(**asked)
        token = page.get(answered_in)
        if token and _comparable(token) in followed:
            raise RepeatedPageTokenError(
                operation=operation, token_field=answered_in, token=shown_value(token)
            )
        yield page
        if not token:
            return
        if next_page_allowed is not None and not next_page_allowed():
            raise PagesCutShortError(operation)
        if max_pages is not None and len(followed) + 1 >= max_pages:
            raise PageLimitError(operation=operation, limit=max_pages)
        followed.add(_comparable(token))
        asked[token_field] = token


def _comparable(token: object) -> str:
    """`token` as one text, the same for the same content: a key is a mapping, not hashable."""
    return json.dumps(token, sort_keys=True, default=str)
