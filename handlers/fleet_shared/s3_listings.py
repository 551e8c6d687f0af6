"""The objects under a prefix of an S3 bucket, listed so that a page not S3's fails the listing.

S3 leaves `Contents` out of a ListObjectsV2 page that lists no object, but sends `IsTruncated`
in every one (`false` on the last page; botocore's paginator stops on it), as it does `KeyCount`,
`MaxKeys` and `Name`. A proxy's well-formed page answered with HTTP 200 is refused on a fleet
session's client for its root element (`foreign_answers.S3_ANSWER_ROOTS`; one that is not XML is
retried as S3's own 500); on any other client, or with S3's root but without them, botocore
parses it into an answer with none of them: read leniently it passed for a prefix without
objects, or, as a later page, ended the listing there, its remaining objects silently left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fleet_shared.aws_answers import answer_field
from fleet_shared.exceptions import PagesCutShortError

LISTING_CALL = "ListObjectsV2"
ALWAYS_SENT = "IsTruncated"
"""The field of every ListObjectsV2 answer that the paginator's end of listing is read from."""


def listed_objects(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    start_after: str | None = None,
    next_page_allowed: Callable[[], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every object (a `Contents` item) under `prefix` in `bucket`, page by page, or only those
    whose key sorts after `start_after` (S3 lists keys in UTF-8 binary order); a page without
    `IsTruncated` raises UnreadableAnswerError. With `next_page_allowed`, a next page is asked
    only while it answers True, else PagesCutShortError: botocore's paginator refuses only a
    token answered twice in a row, so an endpoint (or a proxy) answering page after page, new
    tokens and no objects, was listed until Lambda ended the run."""
    arguments = {"Bucket": bucket, "Prefix": prefix}
    if start_after is not None:
        arguments["StartAfter"] = start_after
    for page in s3.get_paginator("list_objects_v2").paginate(**arguments):
        truncated = answer_field(page, LISTING_CALL, ALWAYS_SENT)
        yield from page.get("Contents", [])
        if truncated and next_page_allowed is not None and not next_page_allowed():
            raise PagesCutShortError(LISTING_CALL)
