"""Answers that come to botocore's retry of a mutation whose first answer may have been lost.

botocore's standard retry mode sends a request again after a read timeout or a closed
connection, when AWS may already have applied the attempt whose answer never arrived. The retry
of a delete so applied is answered "not found"; the retry of a create makes a second resource.
`RetryAttempts` in the answer's metadata (an error's too) says whether botocore sent the request
more than once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from botocore.exceptions import ClientError


def answered_to_a_retry(response: Mapping[str, Any]) -> bool:
    """Whether `response` (a parsed answer or a ClientError's `response`) came to a request
    botocore sent more than once."""
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) > 0


def gone_on_retry(error: ClientError, not_found_codes: Collection[str]) -> bool:
    """Whether `error` answers a delete's retry with one of `not_found_codes`: an earlier
    attempt, whose answer was lost, deleted the resource. A "not found" to the first attempt is
    not one: something else deleted the resource before this call."""
    return error.response.get("Error", {}).get("Code") in not_found_codes and answered_to_a_retry(
        error.response
    )
