"""A service (or a proxy on the way) answering a listing page after page, each under a new token:
botocore's paginator refuses only a token answered twice in a row, and `page_tokens.pages` any
token it followed, so a reader without a time limit lists until Lambda ends the invocation.
`EndlessListing` is S3's ListObjectsV2 with no object; `EndlessSlowPages` any operation's
answer with a next page added."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.awsrequest import AWSResponse

from tests.handlers.conftest import DATA_BUCKET_NAME
from tests.handlers.deadlines import LambdaTime
from tests.handlers.faults import REPEATED_TOKEN_PAGE_LIMIT, EndlessPagesError, answer_of


@dataclass
class EndlessListing:
    """Answers every ListObjectsV2 of `prefix` with a page of no object, truncated, under a new
    token each time (a proxy's, or a broken endpoint's), each page spending a second of `time`."""

    time: LambdaTime
    prefix: str
    pages: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if f"prefix={quote(self.prefix, safe='')}" not in request.url:
            return None
        self.pages += 1
        self.time.spend(1.0)
        # botocore keeps this answer, but moto's stub still acts on the request: without the
        # token, which moto cannot read, its own listing is a harmless read.
        request.url = re.sub(r"&continuation-token=[^&]*", "", request.url)
        page = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{DATA_BUCKET_NAME}</Name><Prefix>{self.prefix}</Prefix><KeyCount>0</KeyCount>"
            "<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
            f"<NextContinuationToken>token-{self.pages}</NextContinuationToken>"
            "</ListBucketResult>"
        )
        return answer_of(request.url, 200, {"Content-Type": "application/xml"}, page.encode())


@dataclass
class EndlessSlowPages:
    """Answers every request of an operation with a next page under a token never sent before,
    each page spending `seconds` of the invocation's time (a service, or a proxy, that pages
    on)."""

    time: LambdaTime
    seconds: float
    answer_token: str
    pages: int = 0

    def register(self, events: Any, operation: str, request_token: str) -> None:
        """On `operation` (`service.Operation`): moto's answer with a new next page, and the
        request without its token (moto reads only the tokens it gave)."""
        events.register(f"before-parameter-build.{operation}", without_param(request_token))
        events.register(f"after-call.{operation}", self.next_page)

    def next_page(self, parsed: dict[str, Any], **_: Any) -> None:
        self.pages += 1
        if self.pages > REPEATED_TOKEN_PAGE_LIMIT:
            raise EndlessPagesError(f"{self.pages} pages asked for")
        self.time.spend(self.seconds)
        parsed[self.answer_token] = f"page-{self.pages + 1}"


def without_param(name: str) -> Callable[..., None]:
    """A `before-parameter-build` handler taking the parameter `name` out of the request."""

    def pop(params: dict[str, Any], **_: Any) -> None:
        params.pop(name, None)

    return pop
