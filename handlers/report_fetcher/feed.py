"""Region launch dates from an RSS 2.0 feed (AWS "What's New" style), standard library only.

The feed is fetched with urllib (conditional GET with the cached ETag / Last-Modified, so an
unchanged feed answers 304 and is not downloaded again) and parsed with xml.etree. An item is a
region launch when its title mentions a region and an opening ("AWS Asia Pacific (Thailand)
Region is now open"); the region is the one whose code or long name appears in the title (not
the description, which usually lists other regions too). A region's launch date is the earliest
such item's publication date.

Anything that goes wrong reading the feed raises `FeedUnavailableError`; the caller carries on
without launch dates and says so in the run's metadata.
"""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree

from fleet_shared.bounded_http import open_bounded
from fleet_shared.http_redirects import HttpRedirects
from fleet_shared.validation_errors import shown_value

_LAUNCH_WORDS = re.compile(
    r"\b(now open|now available|generally available|launch(es|ed)?|opens?)\b", re.IGNORECASE
)
_REGION_WORD = re.compile(r"\bregions?\b", re.IGNORECASE)
_MAX_FEED_BYTES = 20 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


class FeedUnavailableError(Exception):
    """The feed could not be fetched or is not RSS."""


@dataclass(frozen=True)
class FeedResponse:
    """A fetched feed (`body` set) or a 304 answer (`body` None), with its validators."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class FeedItem:
    """The parts of an RSS item the launch dates need."""

    title: str
    published: date


def fetch_feed(
    url: str, timeout_seconds: float, etag: str | None = None, last_modified: str | None = None
) -> FeedResponse:
    """GET `url`, conditionally when validators of a cached copy are given."""
    request = urllib.request.Request(url, headers={"User-Agent": "lambda-fleet-report-fetcher"})
    if etag:
        request.add_header("If-None-Match", etag)
    if last_modified:
        request.add_header("If-Modified-Since", last_modified)
    # A socket timeout bounds each read, not the answer: a feed that keeps sending a little at a
    # time (its headers or its body) is given up once the timeout has passed since the request
    # started, redirects included.
    try:
        with open_bounded(request, timeout_seconds, _SameHostRedirects()) as response:
            body = _body(response)
            return FeedResponse(
                body=body,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )
    except urllib.error.HTTPError as error:
        if error.code == 304:
            return FeedResponse(body=None, etag=etag, last_modified=last_modified)
        raise FeedUnavailableError(f"HTTP {error.code} {error.reason}") from error
    except TimeoutError as error:
        raise FeedUnavailableError(f"feed not read within {timeout_seconds:g} s") from error
    # http.client's own errors (an answer that is not HTTP, a header line too long) are neither
    # OSError nor ValueError.
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        raise FeedUnavailableError(str(getattr(error, "reason", error))) from error


class _SameHostRedirects(HttpRedirects):
    """Follows a redirect only on the feed's own host, never from https to http, and only to an
    http or https URL (`HttpRedirects`: urllib follows one to ftp too, which ftplib connects
    outside the request's time bound): the feed URL is the stack's choice, a redirect the
    answering server's, which could send the function to the instance metadata address or a
    service inside its network."""

    def redirect_request(  # noqa: PLR0917 (urllib's own signature)
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        asked = urllib.parse.urlsplit(req.full_url)
        target = urllib.parse.urlsplit(newurl)
        if target.hostname != asked.hostname:
            fp.close()
            raise FeedUnavailableError(
                f"HTTP {code}: redirected to another host {shown_value(target.hostname)}"
            )
        if asked.scheme == "https" and target.scheme != "https":
            fp.close()
            raise FeedUnavailableError(f"HTTP {code}: redirected from https to {target.scheme}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _body(response: http.client.HTTPResponse) -> bytes:
    """The answer's body, read a chunk at a time, up to _MAX_FEED_BYTES."""
    body = bytearray()
    while chunk := response.read1(_CHUNK_BYTES):
        body += chunk
        if len(body) > _MAX_FEED_BYTES:
            raise FeedUnavailableError(f"feed is larger than {_MAX_FEED_BYTES} bytes")
    return bytes(body)


def parse_items(body: bytes) -> list[FeedItem]:
    """The dated items of an RSS 2.0 document; items without a readable pubDate (one that
    names no day of the calendar in UTC) are skipped."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise FeedUnavailableError(f"not XML: {error}") from error
    except LookupError as error:
        # The XML declaration names an encoding Python does not know (expat raises, not parses).
        raise FeedUnavailableError(f"not readable XML: {error}") from error
    if root.tag != "rss" or root.find("channel") is None:
        raise FeedUnavailableError(f"not an RSS 2.0 feed (root element <{root.tag}>)")
    items: list[FeedItem] = []
    for item in root.iterfind("channel/item"):
        title = (item.findtext("title") or "").strip()
        published = (item.findtext("pubDate") or "").strip()
        try:
            moment = parsedate_to_datetime(published)
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
        # A date at the calendar's edge can be read but not moved to UTC (OverflowError).
        except (TypeError, ValueError, OverflowError):
            continue
        items.append(FeedItem(title=title, published=moment.date()))
    return items


def launch_dates(
    items: list[FeedItem], long_names: dict[str, str | None], latest: date
) -> dict[str, date]:
    """Region code -> earliest launch item date, for the regions named in launch titles; an item
    published after `latest` (a feed's clock gone wrong, a post dated ahead) announces nothing
    yet."""
    dates: dict[str, date] = {}
    for item in items:
        if item.published > latest:
            continue
        if not (_REGION_WORD.search(item.title) and _LAUNCH_WORDS.search(item.title)):
            continue
        title = item.title.casefold()
        for code, long_name in long_names.items():
            named = re.search(rf"\b{re.escape(code)}\b", title) or (
                long_name and long_name.casefold() in title
            )
            if named and (code not in dates or item.published < dates[code]):
                dates[code] = item.published
    return dates
