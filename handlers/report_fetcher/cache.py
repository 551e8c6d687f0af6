"""The fetcher's source cache under `cache/` in the data bucket, valid for one report day.

Design: one object per source (`cache/ssm-global-infrastructure.json`, `cache/region-feed.json`)
holding the dataset as fetched, the report day of the run that fetched it, when it was fetched,
its fingerprint (sha256 of the canonical JSON of the data), what was asked (the feed's URL, SSM's
parameter root and region) and, for the feed, the HTTP validators (ETag, Last-Modified). An
entry is fresh for runs of the same report day while it is younger than
REPORT_CACHE_TTL_SECONDS: such a run does not ask the source again, it reuses the dataset and
the raw document says `from_cache`/`cached` with the original fetch time and fingerprint.
Keying on the day, not only on age, is what keeps the daily run from serving the previous day's
data when it starts a little earlier than the previous fetch finished. Otherwise the SSM data is
fetched again; the feed is asked with a conditional GET, so an unchanged feed answers 304 and is
not downloaded. The fingerprint lets anyone see whether two runs read the same source data.

The cache lives in S3, not in the Lambda container, because containers are recycled and the
chain may run in any of them. An entry larger than ENTRY_BYTES_MAX is not read, nor one whose bytes
do not all come within ENTRY_READ_SECONDS_MAX or half the invocation's time left (a miss the
run warns of). An entry that cannot be trusted counts as a miss: unreadable (one
written before entries carried their report day included), a fetch time without a time zone or
later than now, data whose fingerprint is not the one recorded (half-written or altered), an
HTTP validator that cannot be sent back as a header (a control character, over 1,024
characters), or an entry of another source (the feed URL or the SSM region changed). The cache
never decides what the data is, only whether the source needs asking; its reader refuses data
of another shape than its own version writes (`fetch.py`), whose fingerprint holds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)

from fleet_shared.clock import Clock
from fleet_shared.object_bodies import bounded_body
from fleet_shared.report_documents import CACHE_PREFIX

SSM_ENTRY = "ssm-global-infrastructure"
FEED_ENTRY = "region-feed"
VALIDATOR_CHARACTERS_MAX = 1024
"""The longest ETag or Last-Modified sent back: real ones are tens of characters."""
ENTRY_BYTES_MAX = 4 * 1024 * 1024
"""The largest cache entry read; a larger one is refused unread (`SourceCache.read`). An entry
holds SSM's dataset (about 250 kB) or the feed's launch titles and dates (a few kB). Parsed, a
JSON document of small objects takes about 19 times its size (8 MiB of them took 154 MB more,
2026-11-29), and the function has 512 MB: read whole, an entry that grew or was replaced took
it past its memory, failing every run of the report day."""
ENTRY_READ_SECONDS_MAX = 10.0
"""The longest an entry's bytes are waited for, once S3 answered its GetObject (and at most half
the invocation's time left, `fetch._read_cache`): a healthy read of ENTRY_BYTES_MAX takes well
under a second, and a body that trickled, each part within the client's read timeout, held the
run until Lambda ended it, with the source it spares asking a call away."""


def fingerprint(data: Any) -> str:
    """sha256 of the canonical JSON of `data` (sorted keys, no whitespace)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CacheEntry(BaseModel):
    """One cached source dataset."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    report_day: date
    fetched_at: AwareDatetime
    fingerprint: str
    data: Any
    source: str | None = None
    """What was asked: the feed's URL, or SSM's parameter root and region (None in an entry
    written before entries carried it)."""
    etag: str | None = None
    last_modified: str | None = None

    @field_validator("etag", "last_modified")
    @classmethod
    def _sendable_validator(cls, value: str | None) -> str | None:
        # A validator is sent back as a request header: with a line break or another control
        # character (a hand edit) http.client refuses the request, and a long one a server may
        # refuse, so the feed would fail every day while the entry, never replaced, survived.
        if value is not None and (len(value) > VALIDATOR_CHARACTERS_MAX or not value.isprintable()):
            raise ValueError("not a header value the feed can be sent")
        return value

    @model_validator(mode="after")
    def _data_matches_fingerprint(self) -> CacheEntry:
        # A cut or altered entry would otherwise be reused as the source's whole dataset.
        if fingerprint(self.data) != self.fingerprint:
            raise ValueError("data does not match its fingerprint")
        return self


class SourceCache:
    """Reads and writes cache entries in the data bucket; decides freshness with the clock."""

    def __init__(self, s3: Any, bucket: str, ttl_seconds: int, clock: Clock) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    @staticmethod
    def key(name: str) -> str:
        """The object key of entry `name`."""
        return f"{CACHE_PREFIX}{name}.json"

    def read(
        self, name: str, source: str, *, within_seconds: float | None = None
    ) -> CacheEntry | None:
        """The stored entry of `source`, fresh or not; None when absent, unreadable or of
        another source (the feed URL or SSM region changed: its data is not this source's, its
        validators not this server's). Raises ObjectTooLargeError, reading no further, for an
        entry over ENTRY_BYTES_MAX, and ObjectReadTimeoutError when its bytes have not all come
        within `within_seconds`."""
        key = self.key(name)
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body = bounded_body(response, key, ENTRY_BYTES_MAX, within_seconds=within_seconds)
        try:
            entry = CacheEntry.model_validate_json(body)
        except ValidationError:
            return None
        return entry if entry.source == source else None

    def is_fresh(self, entry: CacheEntry, report_day: date) -> bool:
        """Whether `entry` was fetched for `report_day` and is younger than the TTL (a TTL of 0
        disables the cache); one fetched "later than now" was dated by a wrong clock, so its
        report day cannot be trusted either."""
        age = self._clock.now() - entry.fetched_at
        return entry.report_day == report_day and timedelta(0) <= age < self._ttl

    def write(self, name: str, entry: CacheEntry) -> None:
        """Store `entry`, replacing the previous one."""
        self._s3.put_object(
            Bucket=self._bucket,
            Key=self.key(name),
            Body=entry.model_dump_json().encode("utf-8"),
            ContentType="application/json",
        )
