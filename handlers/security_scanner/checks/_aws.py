"""Small helpers the resource sources share: AWS answers, optional reads, policy documents and
the read of each listed resource, one failing alone."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import unquote

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError, answer_field
from fleet_shared.exceptions import PagesCutShortError
from fleet_shared.validation_errors import escaped_echo
from handlers.security_scanner.registry import Resource, UnreadableListingItem

_Listed = TypeVar("_Listed")


def error_code(error: ClientError) -> str:
    """The AWS error code of `error`."""
    return str(error.response.get("Error", {}).get("Code", ""))


def listed(
    client: Any,
    operation: str,
    key: str,
    *,
    always_sent: bool,
    next_page_allowed: Callable[[], bool],
    max_pages: int | None = None,
    **arguments: Any,
) -> Iterator[Any]:
    """The `key` items of every page of the listing `operation` (a client method's name), or of
    its first `max_pages` pages, each page after the first asked only while `next_page_allowed()`
    (the scope's), else PagesCutShortError: boto3's paginator refuses only a token answered twice
    in a row, and a listing answering page after page under new tokens (a proxy's) was read
    until Lambda ended the scan. The paginator asks for a next page as it is iterated, so the
    check comes after each page, whether a next one was to come or not: the time is out then,
    and the type is read in part either way.

    With `always_sent` (the service sends `key` with an empty list too), a page without it raises
    UnreadableAnswerError: a proxy's page that botocore parsed into an answer without it must not
    pass for an empty listing, which would resolve every open finding of the resource type.
    Without it (the service may leave an empty list out), such a page reads as empty.
    """
    call = client.meta.method_to_api_mapping.get(operation, operation)
    pages = client.get_paginator(operation).paginate(**arguments)
    for page in islice(pages, max_pages):
        yield from answer_field(page, call, key) if always_sent else page.get(key, [])
        if not next_page_allowed():
            raise PagesCutShortError(call)


def optional(call: Callable[[], Any], *absent_codes: str) -> Any:
    """`call()`, or None when AWS answers with one of `absent_codes` (e.g. no policy set)."""
    try:
        return call()
    except ClientError as error:
        if error_code(error) in absent_codes:
            return None
        raise


def policy_document(document: Any) -> dict[str, Any]:
    """A policy document as a dict, whether boto3 already decoded it or left it URL-encoded;
    ValueError for one that is not JSON or not shaped as the policy grammar (`_check_statement`)."""
    if isinstance(document, dict):
        parsed: Any = document
    else:
        text = str(document)
        if text.startswith("%7B"):
            text = unquote(text)
        parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("policy document is not a JSON object")
    raw = parsed.get("Statement", [])
    for index, statement in enumerate(raw if isinstance(raw, list) else [raw]):
        _check_statement(statement, f"Statement[{index}]" if isinstance(raw, list) else "Statement")
    return parsed


def _check_statement(statement: Any, where: str) -> None:
    """Raise ValueError naming `where` when a policy statement is not an object, or its
    `Condition` not an object of condition operators, each an object of keys. A policy is JSON
    text inside the answer, which botocore hands on unchecked: the controls read these as the
    policy grammar has them, and a document shaped otherwise (which IAM, S3 and Lambda refuse to
    store) must fail its resource as unreadable, not stop the scan with an AttributeError."""
    if not isinstance(statement, dict):
        raise ValueError(f"policy document's {where} is not an object")
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict):
        raise ValueError(f"policy document's {where}.Condition is not an object")
    for operator, keys in condition.items():
        if not isinstance(keys, dict):
            raise ValueError(
                f"policy document's {where}.Condition.{operator[:40]} is not an object"
            )


def answered_policy(answer: dict[str, Any] | None, call: str) -> dict[str, Any] | None:
    """The resource policy a get-policy answer holds as JSON text in `Policy` (Lambda's
    GetPolicy, S3's GetBucketPolicy), as a document; None for no answer (`optional` met the
    call's no-policy error)."""
    return policy_document(answer_field(answer, call, "Policy")) if answer else None


def statements(document: dict[str, Any] | None, effect: str) -> list[dict[str, Any]]:
    """The statements of a policy (None: no policy) whose Effect is `effect` (`Allow` or
    `Deny`): a control judges the one or the other; a single statement may be written without a
    list."""
    raw = (document or {}).get("Statement", [])
    items = raw if isinstance(raw, list) else [raw]
    return [item for item in items if isinstance(item, dict) and item.get("Effect") == effect]


def as_list(value: Any) -> list[Any]:
    """A policy field that may be a string or a list, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def is_everyone(principal: Any) -> bool:
    """Whether a statement's `Principal` is anyone: `*`, or `*` among its AWS principals."""
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in as_list(principal.get("AWS"))
    return False


RESOURCE_READ_ERRORS: tuple[type[Exception], ...] = (*AWS_CALL_ERRORS, ValueError)
"""Every way reading one resource's attributes fails for that resource alone: one of its calls
failed or was answered with what is not its answer, or its policy document is not JSON or not
shaped as a policy (`policy_document`)."""


def failed_resource(arn: str, resource_type: str, error: Exception) -> Resource:
    """A resource whose attributes could not be read: it is reported (in a short line, escaped,
    since an answer botocore could not parse, or a refusal's message a proxy filled with its
    page, is in its error's message), not evaluated."""
    reason = error_code(error) if isinstance(error, ClientError) else type(error).__name__
    return Resource(
        arn=arn,
        resource_type=resource_type,
        attributes={"error": escaped_echo(f"{reason}: {error}")},
    )


def described(
    listing: Iterable[_Listed],
    resource_type: str,
    *,
    listing_call: str,
    arn_of: Callable[[_Listed], str],
    describe: Callable[[_Listed, str], Resource | None],
    read_errors: tuple[type[Exception], ...] = RESOURCE_READ_ERRORS,
) -> Iterator[Resource | UnreadableListingItem]:
    """The resource `describe(item, arn)` reads for each listed item, `arn` being
    `arn_of(item)`; None when the item is no resource of the type (a role without inline
    policies). An item whose reading fails with one of `read_errors` is yielded as a failed
    resource under `arn`, so that one unreadable resource is reported and the others are read.
    An item without the ARN `arn_of` reads (`_listed_arn`) is yielded as an
    UnreadableListingItem of `listing_call`, the call that listed it."""
    for item in listing:
        arn = _listed_arn(item, arn_of)
        if arn is None:
            yield UnreadableListingItem(
                str(UnreadableAnswerError(listing_call, "a text ARN for each listed item", item))
            )
            continue
        try:
            resource = describe(item, arn)
        except read_errors as error:
            yield failed_resource(arn, resource_type, error)
            continue
        if resource is not None:
            yield resource


def _listed_arn(item: _Listed, arn_of: Callable[[_Listed], str]) -> str | None:
    """`arn_of(item)`, or None when the item has no text ARN there. botocore parses a query
    service's XML member without its element into an item without the key (an SNS topic
    without TopicArn, an IAM role without Arn): such an item names no resource to report it
    under, and may be one with open findings."""
    try:
        arn = arn_of(item)
    # arn_of only reads the listed item's fields: these errors are the answer's, not the code's.
    except (KeyError, TypeError, AttributeError):
        return None
    return arn if isinstance(arn, str) else None
