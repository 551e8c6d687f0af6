"""An S3 (or a proxy on the way) answering a listing page after page, truncated, each under a
new token and with no object: botocore's paginator refuses only a token answered twice in a
row, so a reader without a time limit lists until Lambda ends the invocation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.awsrequest import AWSResponse

from tests.handlers.conftest import DATA_BUCKET_NAME
from tests.handlers.deadlines import LambdaTime
from tests.handlers.faults import answer_of


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
