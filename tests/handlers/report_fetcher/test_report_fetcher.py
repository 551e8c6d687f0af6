"""report_fetcher on small datasets: pagination, the cache, the feed, bad input and failures.

SSM is a small in-memory fake with SSM's paging (moto's global-infrastructure data cannot be
reduced, and the full fetch runs once in tests/handlers/report_pipeline); S3, SNS and the feed
(an HTTP server on 127.0.0.1) are real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.report_documents import RawDocument, new_run_id
from handlers.report_fetcher import app
from handlers.report_fetcher import cache as cache_module
from handlers.report_fetcher import fetch as fetch_module
from handlers.report_fetcher.cache import FEED_ENTRY, SSM_ENTRY, SourceCache, fingerprint
from handlers.report_fetcher.environment import FetcherEnvironment
from handlers.report_fetcher.fetch import FetcherServices
from handlers.report_fetcher.ssm_source import PARAMETER_ROOT
from tests.handlers.deadlines import ContextRunningOutOfTime
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    answer_malformed,
    answer_the_same_page_token,
    refuse_every_s3_attempt,
    s3_error_every_attempt,
)
from tests.handlers.local_peers import LocalPeer, http_answer
from tests.handlers.report_pipeline.support import (
    BUCKET,
    REGION,
    FakeSsm,
    FeedServer,
    create_bucket,
    keys_under,
    rss,
    ssm_parameters,
    unreachable_url,
)
from tests.handlers.trickling_objects import trickling_get_object

REGIONS = {
    "ap-south-1": ("Asia Pacific (Mumbai)", "aws"),
    "ap-southeast-7": ("Asia Pacific (Thailand)", "aws"),
    "cn-north-1": ("China (Beijing)", "aws-cn"),
}
SERVICES = {f"svc{index:02d}": (f"Service {index}", ["ap-south-1"]) for index in range(25)}
SERVICES["ec2"] = ("Amazon EC2", sorted(REGIONS))
SSM_SOURCE = f"{PARAMETER_ROOT} in {REGION}"
"""What the SSM cache entry of these tests' fetches says was asked."""


@pytest.fixture
def s3(alert_inbox: Any) -> Any:
    client = boto3.client("s3", region_name=REGION)
    create_bucket(client)
    return client


Fetch = Callable[[object], dict[str, Any]]


@pytest.fixture
def fetcher(
    monkeypatch: pytest.MonkeyPatch,
    fake_clock: ManualClock,
    fleet_environment: dict[str, str],
    lambda_context: Any,
) -> Callable[..., Fetch]:
    """`fetcher(ssm, **variables)`: invoke the handler with `ssm` for SSM, the variables set,
    the manual clock and numbered run ids (services built once, as in one container)."""

    def build(ssm: Any, **variables: str) -> Fetch:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        run_numbers = iter(range(1, 100))

        class FakeSsmServices(FetcherServices):
            """The fetcher's services reading `ssm`, with run ids numbered from 1."""

            @cached_property
            def ssm(self) -> Any:
                return ssm

            def new_run_id(self, started_at: datetime) -> str:
                return new_run_id(started_at, f"{next(run_numbers):08x}")

        services = FakeSsmServices.create(
            app.FUNCTION.name, load_environment(FetcherEnvironment), clock=fake_clock
        )
        monkeypatch.setattr(app.FUNCTION, "services", lambda: services)
        return lambda event: app.lambda_handler(event, lambda_context)

    return build


def _raw(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_every_page_of_every_listing_is_read(s3: Any, fetcher: Callable[..., Fetch]) -> None:
    # GIVEN 26 services (three pages of ten) and a service offered in three regions
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN every service, region and pair is in the raw document, with the attributes
    assert result["status"] == "ok"
    assert result["counts"] == {"regions": 3, "services": 26, "pairs": 28, "launch_dates": 0}
    assert result["key"] == "raw/2025-06-02/20250602T033000Z-00000001.json"
    raw = _raw(s3, result["key"])
    ec2 = next(service for service in raw["services"] if service["code"] == "ec2")
    assert ec2["long_name"] == "Amazon EC2"
    assert ec2["regions"] == sorted(REGIONS)
    mumbai = next(region for region in raw["regions"] if region["code"] == "ap-south-1")
    assert mumbai["partition"] == "aws"
    assert mumbai["availability_zones"] == ["ap-south-1-az1"]
    assert raw["metadata"]["ssm"]["api_calls"] == ssm.calls


def test_a_fresh_cache_is_reused_and_a_stale_one_fetched_again(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN a first fetch, with a one-hour TTL
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetch = fetcher(
        ssm,
        REPORT_FEED_URL=unreachable_url(),
        REPORT_CACHE_TTL_SECONDS="3600",
    )
    first = fetch({"action": "fetch"})
    calls_after_first = ssm.calls
    # WHEN it runs again within the TTL THEN SSM is not called and the same data is written
    fake_clock.advance(3599)
    second = fetch({"action": "fetch"})
    assert ssm.calls == calls_after_first
    assert second["ssm_from_cache"] is True
    assert _raw(s3, second["key"])["services"] == _raw(s3, first["key"])["services"]
    assert (
        _raw(s3, second["key"])["metadata"]["ssm"]["fingerprint"]
        == _raw(s3, first["key"])["metadata"]["ssm"]["fingerprint"]
    )
    # WHEN the TTL has passed THEN SSM is read again and the cache entry renewed
    fake_clock.advance(2)
    third = fetch({"action": "fetch"})
    assert ssm.calls == 2 * calls_after_first
    assert third["ssm_from_cache"] is False
    entry = SourceCache(s3, BUCKET, 3600, fake_clock).read(SSM_ENTRY, SSM_SOURCE)
    assert entry is not None and entry.fetched_at == fake_clock.now()


def test_a_cache_from_the_previous_report_day_is_never_fresh(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN a run at 23:59 with the default TTL (24 hours, the schedule's period)
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    fake_clock.set(datetime(2025, 6, 1, 23, 59, tzinfo=UTC))
    fetch({"action": "fetch"})
    calls_per_fetch = ssm.calls
    # WHEN the next run starts a minute later, on the next day
    fake_clock.set(datetime(2025, 6, 2, 0, 0, 30, tzinfo=UTC))
    next_day = fetch({"action": "fetch"})
    # THEN SSM is read again and the cache entry is dated the new day
    assert next_day["ssm_from_cache"] is False
    assert ssm.calls == 2 * calls_per_fetch
    entry = SourceCache(s3, BUCKET, 86400, fake_clock).read(SSM_ENTRY, SSM_SOURCE)
    assert entry is not None and entry.report_day == date(2025, 6, 2)
    # AND a later run of that same day reuses it
    fake_clock.advance(3600)
    assert fetch({"action": "fetch"})["ssm_from_cache"] is True
    assert ssm.calls == 2 * calls_per_fetch


def _naive_timestamp(entry: dict[str, Any]) -> None:
    entry["fetched_at"] = entry["fetched_at"].removesuffix("Z")


def _timestamp_an_hour_ahead(entry: dict[str, Any]) -> None:
    fetched_at = datetime.fromisoformat(entry["fetched_at"]) + timedelta(hours=1)
    entry["fetched_at"] = fetched_at.isoformat()


def _half_the_services(entry: dict[str, Any]) -> None:
    entry["data"]["services"] = entry["data"]["services"][:13]


def _no_services(entry: dict[str, Any]) -> None:
    del entry["data"]["services"]


def _another_versions_fields(entry: dict[str, Any]) -> None:
    # A version writing a field this one does not know signs its own data: the fingerprint holds.
    for region in entry["data"]["regions"]:
        region["opt_in_status"] = "not-required"
    entry["fingerprint"] = fingerprint(entry["data"])


def _another_versions_layout(entry: dict[str, Any]) -> None:
    entry["data"] = {"regions": {"ap-south-1": {}}, "services": entry["data"]["services"]}
    entry["fingerprint"] = fingerprint(entry["data"])


def _fetched_once(fetcher: Callable[..., Fetch]) -> tuple[Fetch, FakeSsm, int]:
    """A fetch whose first run (feed unreachable) wrote the SSM cache entry, its SSM, and the
    calls that run made to it."""
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    fetch({"action": "fetch"})
    return fetch, ssm, ssm.calls


def _assert_ssm_read_again(result: dict[str, Any], ssm: FakeSsm, calls_per_fetch: int) -> None:
    """`result`, of the second run of `_fetched_once`, read SSM again, not the cache, and wrote
    every service."""
    assert result["status"] == "ok", result
    assert result["ssm_from_cache"] is False
    assert ssm.calls == 2 * calls_per_fetch
    assert result["counts"]["services"] == len(SERVICES)


@pytest.mark.parametrize(
    "spoil",
    [
        _naive_timestamp,
        _timestamp_an_hour_ahead,
        _half_the_services,
        _no_services,
        _another_versions_fields,
        _another_versions_layout,
    ],
    ids=[
        "timestamp-without-zone",
        "timestamp-in-the-future",
        "half-written",
        "data-missing",
        "another-versions-fields",
        "another-versions-layout",
    ],
)
def test_a_cache_entry_that_cannot_be_trusted_is_a_miss_and_ssm_is_read_again(
    s3: Any,
    fetcher: Callable[..., Fetch],
    fake_clock: ManualClock,
    spoil: Callable[[dict[str, Any]], None],
) -> None:
    # GIVEN a first run's SSM cache entry, then spoiled in place
    fetch, ssm, calls_per_fetch = _fetched_once(fetcher)
    key = SourceCache.key(SSM_ENTRY)
    entry = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    spoil(entry)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(entry).encode("utf-8"))
    # WHEN the next run of the same report day starts
    fake_clock.advance(60)
    result = fetch({"action": "fetch"})
    # THEN it does not trust the entry: SSM is read again and every service is in the document
    _assert_ssm_read_again(result, ssm, calls_per_fetch)
    # AND the entry is replaced by this run's
    renewed = SourceCache(s3, BUCKET, 86400, fake_clock).read(SSM_ENTRY, SSM_SOURCE)
    assert renewed is not None and renewed.fetched_at == fake_clock.now()


def _over_the_size_limit(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[AbstractContextManager[object], str]:
    """The fetcher's size limit lowered to one byte less than the SSM entry (an entry grown or
    replaced by a large object); the warning names its size and the limit."""
    size = s3.head_object(Bucket=BUCKET, Key=SourceCache.key(SSM_ENTRY))["ContentLength"]
    monkeypatch.setattr(cache_module, "ENTRY_BYTES_MAX", size - 1)
    return nullcontext(), f"{size:,} bytes or more, more than the {size - 1:,}"


def _trickling(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[AbstractContextManager[object], str]:
    """S3 sending the SSM entry's body a byte every 50 ms (each read well within the client's
    read timeout; 40 s for 800 bytes), an entry's read given 0.2 s; the warning says its bytes
    did not all come in time."""
    monkeypatch.setattr(fetch_module, "ENTRY_READ_SECONDS_MAX", 0.2)
    peer = trickling_get_object(app.FUNCTION.services().hub_client("s3"), SSM_ENTRY, 800)
    return peer, "did not all come within the 0.2 s"


@pytest.mark.parametrize("spoil", [_over_the_size_limit, _trickling])
def test_a_cache_entry_too_large_or_too_slow_to_read_is_a_miss_named_in_a_warning(
    s3: Any,
    fetcher: Callable[..., Fetch],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    spoil: Callable[[Any, pytest.MonkeyPatch], tuple[AbstractContextManager[object], str]],
) -> None:
    # GIVEN a first run's SSM cache entry, then larger than the fetcher reads or trickling
    fetch, ssm, calls_per_fetch = _fetched_once(fetcher)
    fault, reason = spoil(s3, monkeypatch)
    # WHEN the next run of the same report day starts
    fake_clock.advance(60)
    with fault:
        result = fetch({"action": "fetch"})
    # THEN the run does not fail: the entry is a miss, SSM is read again, and the raw document
    # warns that the entry was not read, saying why
    _assert_ssm_read_again(result, ssm, calls_per_fetch)
    key = SourceCache.key(SSM_ENTRY)
    warnings = _raw(s3, result["key"])["metadata"]["warnings"]
    assert any(
        warning.startswith(f"source cache {key} not read") and reason in warning
        for warning in warnings
    )


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize(("operation", "failed"), [("GetObject", "read"), ("PutObject", "written")])
@pytest.mark.parametrize("refused_with_a_page", [False, True], ids=["internal-error", "a-page"])
def test_a_source_cache_s3_does_not_answer_lets_the_run_write_its_document_and_says_so(
    s3: Any, fetcher: Callable[..., Fetch], operation: str, failed: str, refused_with_a_page: bool
) -> None:
    # GIVEN S3 answering every attempt to read (or write) the source cache with 500
    # InternalError, past botocore's retries (or refusing it with a proxy's page of many lines),
    # and the other keys as usual
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    hub_s3 = app.FUNCTION.services().hub_client("s3")
    if refused_with_a_page:
        refuse_every_s3_attempt(hub_s3, operation, url_with="/cache/")
    else:
        fault = s3_error_every_attempt(hub_s3, operation, url_with="/cache/")
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN SSM is read and the raw document written all the same, with a warning naming the
    # cache entry that was not read (or written), on one line
    assert refused_with_a_page or fault.attempts > 1
    assert result["status"] == "ok", result
    assert result["counts"]["services"] == len(SERVICES)
    key = SourceCache.key(SSM_ENTRY)
    warnings = _raw(s3, result["key"])["metadata"]["warnings"]
    [warning] = [w for w in warnings if w.startswith(f"source cache {key} not {failed}")]
    assert "\n" not in warning and len(warning) < len(MULTI_LINE_PAGE)


def test_a_name_holding_a_lone_surrogate_is_written_as_a_document_the_processor_can_read(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN SSM answering a service long name with a lone surrogate (JSON can escape one,
    # `"\\ud800"`, and botocore's parser hands it on; no UTF-8 document can hold it)
    services = {**SERVICES, "ec2": ("Amazon \ud800EC2", sorted(REGIONS))}
    fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, services)), REPORT_FEED_URL=unreachable_url())
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN the raw document is one the processor's model reads, the character shown as U+FFFD
    assert result["status"] == "ok"
    body = s3.get_object(Bucket=BUCKET, Key=result["key"])["Body"].read()
    document = RawDocument.model_validate_json(body)
    ec2 = next(service for service in document.services if service.code == "ec2")
    assert ec2.long_name == "Amazon \ufffdEC2"


def test_refresh_in_the_event_ignores_the_cache(s3: Any, fetcher: Callable[..., Fetch]) -> None:
    # GIVEN a fresh cache
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    fetch({"action": "fetch"})
    calls = ssm.calls
    # WHEN a run asks for a refresh THEN SSM is read again
    result = fetch({"action": "fetch", "refresh": True})
    assert result["ssm_from_cache"] is False
    assert ssm.calls == 2 * calls


def test_unreachable_feed_lets_the_run_go_on_and_says_so(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN a feed URL where nothing listens
    url = unreachable_url()
    fetch = fetcher(
        FakeSsm(ssm_parameters(REGIONS, SERVICES)),
        REPORT_FEED_URL=url,
    )
    # WHEN the fetcher runs THEN the raw document is written without launch dates
    result = fetch({"action": "fetch"})
    assert result["status"] == "ok"
    assert result["feed_status"] == "unreachable"
    metadata = _raw(s3, result["key"])["metadata"]
    assert metadata["feed"] == {
        "url": url,
        "status": "unreachable",
        "fetched_at": None,
        "fingerprint": None,
        "items": 0,
    }
    assert any(url in warning for warning in metadata["warnings"])
    assert all(region["launch_date"] is None for region in _raw(s3, result["key"])["regions"])


def test_a_feed_that_is_not_rss_is_named_in_the_warning_by_a_short_prefix_only(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN a feed whose document is XML with a 5,000-character root element instead of RSS
    feed = FeedServer(f"<{'x' * 5000}/>".encode())
    with feed.running():
        fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=feed.url)
        # WHEN the fetcher runs
        result = fetch({"action": "fetch"})
    # THEN the run goes on without launch dates, and its warning names the feed and repeats at
    # most 200 characters of what the feed sent
    assert result["status"] == "ok"
    assert result["feed_status"] == "unreachable"
    (warning,) = [w for w in _raw(s3, result["key"])["metadata"]["warnings"] if feed.url in w]
    assert "not an RSS 2.0 feed" in warning
    assert "x" * 200 not in warning
    assert len(warning) < len(feed.url) + 400


def test_a_feed_in_an_unknown_encoding_lets_the_run_go_on(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN a feed whose XML declaration names an encoding Python does not know
    feed = FeedServer(b'<?xml version="1.0" encoding="x-unknown"?><rss><channel/></rss>')
    with feed.running():
        fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=feed.url)
        # WHEN the fetcher runs
        result = fetch({"action": "fetch"})
    # THEN the feed counts as unreachable: the raw document is written without launch dates and
    # a warning names the encoding
    assert result["status"] == "ok"
    assert result["feed_status"] == "unreachable"
    (warning,) = [w for w in _raw(s3, result["key"])["metadata"]["warnings"] if feed.url in w]
    assert "x-unknown" in warning


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 503 Busy\rFeed: fine\x1b[2J\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["not-http", "a-reason-with-control-characters"],
)
def test_a_feed_url_answering_something_other_than_http_lets_the_run_go_on(
    s3: Any, fetcher: Callable[..., Fetch], answer: bytes
) -> None:
    # GIVEN a feed URL where a server answers, but not in HTTP (or a 503 whose reason phrase
    # holds a carriage return and a terminal escape)
    with LocalPeer(answer) as peer:
        url = peer.url("/feed")
        fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=url)
        # WHEN the fetcher runs
        result = fetch({"action": "fetch"})
    # THEN the feed counts as unreachable and the raw document is still written
    assert result["status"] == "ok"
    assert result["feed_status"] == "unreachable"
    metadata = _raw(s3, result["key"])["metadata"]
    [warning] = [warning for warning in metadata["warnings"] if url in warning]
    # AND its warning quotes what the peer sent with its control characters escaped
    assert len(warning.splitlines()) == 1 and "\x1b" not in warning


PIECES = 40
"""The pieces a trickling server sends: 4 s of them, eight times a half-second feed timeout."""


@pytest.mark.parametrize(
    ("start", "piece"),
    [
        (f"HTTP/1.0 200 OK\r\nContent-Length: {PIECES}\r\n\r\n".encode(), b"<"),
        (b"HTTP/1.0 200 OK\r\n", b"X-Trickle: 1\r\n"),
    ],
    ids=["body", "headers"],
)
def test_a_feed_that_keeps_trickling_is_given_up_after_its_timeout(
    s3: Any, fetcher: Callable[..., Fetch], start: bytes, piece: bytes
) -> None:
    # GIVEN a feed that answers at once but sends the rest of its body, or of its headers, a
    # piece every 0.1 s (each read is quick, the answer never ends in time), and a half-second
    # feed timeout
    with LocalPeer(start, [piece] * PIECES, pause_seconds=0.1) as trickle:
        fetch = fetcher(
            FakeSsm(ssm_parameters(REGIONS, SERVICES)),
            REPORT_FEED_URL=trickle.url("/feed"),
            REPORT_FEED_TIMEOUT_SECONDS="0.5",
        )
        # WHEN the fetcher runs
        result = fetch({"action": "fetch"})
    # THEN the feed is given up as unreachable before the trickle ended (a feed without end
    # would otherwise hold the run until Lambda's timeout), and the raw document is written
    assert result["status"] == "ok"
    assert result["feed_status"] == "unreachable"
    assert trickle.pieces_sent < PIECES
    (warning,) = [
        w for w in _raw(s3, result["key"])["metadata"]["warnings"] if trickle.url("/feed") in w
    ]
    assert "feed not read within 0.5 s" in warning


THAILAND_OPENS = rss(
    [("AWS Asia Pacific (Thailand) Region is now open", "Wed, 08 Jan 2025 17:00:00 GMT")]
)


def test_a_feed_redirecting_to_another_host_is_not_followed_and_the_run_goes_on(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN a feed URL answering a redirect to another host (standing for the instance metadata
    # address, 169.254.169.254, or a service inside the function's network), which serves RSS
    target = FeedServer(THAILAND_OPENS)
    with target.running():
        other_host = target.url.replace("127.0.0.1", "localhost")
        with LocalPeer(http_answer(302, {"Location": other_host})) as peer:
            url = peer.url("/feed")
            fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=url)
            # WHEN the fetcher runs
            result = fetch({"action": "fetch"})
    # THEN the other host is never asked: the feed is unreachable, the warning says it
    # redirected to another host, and the raw document is written without launch dates
    assert target.requests == []
    assert (result["status"], result["feed_status"]) == ("ok", "unreachable")
    (warning,) = [w for w in _raw(s3, result["key"])["metadata"]["warnings"] if url in w]
    assert "redirected to another host 'localhost'" in warning
    assert all(region["launch_date"] is None for region in _raw(s3, result["key"])["regions"])


def test_a_feed_redirecting_on_its_own_host_is_followed(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN a feed URL answering a redirect to the feed on the same host
    target = FeedServer(THAILAND_OPENS)
    with target.running(), LocalPeer(http_answer(302, {"Location": target.url})) as peer:
        url = peer.url("/feed")
        fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=url)
        # WHEN the fetcher runs
        result = fetch({"action": "fetch"})
    # THEN the feed it moved to gives the launch dates
    assert result["feed_status"] == "fetched"
    regions = {r["code"]: r for r in _raw(s3, result["key"])["regions"]}
    assert regions["ap-southeast-7"]["launch_date"] == "2025-01-08"


def test_a_feed_redirecting_to_ftp_on_its_own_host_is_not_followed_and_nothing_connects_there(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN a feed URL answering a redirect to an ftp URL on the same host (urllib follows one
    # to ftp, and ftplib connects on its own, outside the feed's time bound), here to a peer
    # that counts its connections
    with LocalPeer(hang=True) as target:
        location = f"ftp://127.0.0.1:{target.port}/feed"
        with LocalPeer(http_answer(302, {"Location": location})) as peer:
            url = peer.url("/feed")
            fetch = fetcher(
                FakeSsm(ssm_parameters(REGIONS, SERVICES)),
                REPORT_FEED_URL=url,
                REPORT_FEED_TIMEOUT_SECONDS="0.5",
            )
            # WHEN the fetcher runs
            result = fetch({"action": "fetch"})
        # THEN nothing connected to the ftp URL's address: the feed is unreachable, the warning
        # names the refused redirect, and the raw document is written without launch dates
        assert target.connections == 0
    assert (result["status"], result["feed_status"]) == ("ok", "unreachable")
    (warning,) = [w for w in _raw(s3, result["key"])["metadata"]["warnings"] if url in w]
    assert f"redirect to '{location}' refused: only http and https" in warning
    assert all(region["launch_date"] is None for region in _raw(s3, result["key"])["regions"])


def test_launch_dates_come_from_the_feed_and_an_unchanged_feed_is_not_downloaded(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN a feed announcing Thailand twice (the earliest counts) and an unrelated item
    feed = FeedServer(
        rss(
            [
                ("AWS Asia Pacific (Thailand) Region is now open", "Wed, 08 Jan 2025 17:00:00 GMT"),
                (
                    "Amazon EC2 now available in ap-southeast-7 region",
                    "Fri, 10 Jan 2025 09:00:00 GMT",
                ),
                ("Amazon S3 adds a new storage class", "Mon, 06 Jan 2025 09:00:00 GMT"),
            ]
        )
    )
    with feed.running():
        fetch = fetcher(
            FakeSsm(ssm_parameters(REGIONS, SERVICES)),
            REPORT_FEED_URL=feed.url,
            REPORT_CACHE_TTL_SECONDS="60",
        )
        first = fetch({"action": "fetch"})
        # WHEN the TTL has passed and the feed is unchanged
        fake_clock.advance(61)
        second = fetch({"action": "fetch"})
    # THEN the first run downloaded it, the second got 304 and kept the launch dates
    assert first["feed_status"] == "fetched"
    assert second["feed_status"] == "not_modified"
    assert feed.requests[1].get("If-None-Match") == FeedServer.ETAG
    for result in (first, second):
        regions = {r["code"]: r for r in _raw(s3, result["key"])["regions"]}
        assert regions["ap-southeast-7"]["launch_date"] == "2025-01-08"
        assert regions["ap-south-1"]["launch_date"] is None


@pytest.mark.parametrize(
    "mumbai_published",
    ["Fri, 31 Dec 9999 23:59:59 -1200", "Mon, 07 Jan 2030 09:00:00 GMT"],
    ids=["beyond-the-calendar-in-utc", "after-the-run"],
)
def test_a_launch_item_dated_beyond_the_calendar_or_after_the_run_gives_no_launch_date(
    s3: Any, fetcher: Callable[..., Fetch], mumbai_published: str
) -> None:
    # GIVEN a feed on 2 June 2025 whose first launch item, Mumbai's, is dated the last second
    # of year 9999 at UTC-12 (a time Python can read but not move to UTC) or in 2030 (a feed's
    # clock gone wrong, a post dated ahead), and whose second announces Thailand
    feed = FeedServer(
        rss(
            [
                ("AWS Asia Pacific (Mumbai) Region is now open", mumbai_published),
                ("AWS Asia Pacific (Thailand) Region is now open", "Wed, 08 Jan 2025 17:00:00 GMT"),
            ]
        )
    )
    with feed.running():
        fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=feed.url)
        # WHEN the fetcher runs
        result = fetch({"action": "fetch"})
    # THEN the run goes on: Mumbai's item gives no launch date, Thailand's gives its own
    assert (result["status"], result["feed_status"]) == ("ok", "fetched")
    assert result["counts"]["launch_dates"] == 1
    regions = {r["code"]: r for r in _raw(s3, result["key"])["regions"]}
    assert regions["ap-southeast-7"]["launch_date"] == "2025-01-08"
    assert regions["ap-south-1"]["launch_date"] is None


def test_the_feed_source_carries_the_fingerprint_of_its_data_fetched_or_cached(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN a feed announcing Thailand, read once and then served from the cache
    feed = FeedServer(
        rss([("AWS Asia Pacific (Thailand) Region is now open", "Wed, 08 Jan 2025 17:00:00 GMT")])
    )
    with feed.running():
        fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=feed.url)
        fetched = fetch({"action": "fetch"})
        fake_clock.advance(60)
        # WHEN the second run reuses the cached feed
        cached = fetch({"action": "fetch"})
    # THEN both raw documents name the feed data's fingerprint, as they do for SSM's: the same
    # one, that of the cache entry
    assert cached["feed_status"] == "cached"
    entry = SourceCache(s3, BUCKET, 86400, fake_clock).read(FEED_ENTRY, feed.url)
    assert entry is not None
    for result in (fetched, cached):
        assert _raw(s3, result["key"])["metadata"]["feed"]["fingerprint"] == entry.fingerprint


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "past-its-ttl"])
def test_a_feed_cache_entry_of_another_versions_layout_is_a_miss_and_the_feed_downloaded(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock, fresh: bool
) -> None:
    # GIVEN the feed's cache entry rewritten by another version (items dated by a timestamp, its
    # fingerprint its own), fresh or past its TTL (the feed then answers 304 to its ETag)
    feed = FeedServer(
        rss([("AWS Asia Pacific (Thailand) Region is now open", "Wed, 08 Jan 2025 17:00:00 GMT")])
    )
    with feed.running():
        fetch = fetcher(
            FakeSsm(ssm_parameters(REGIONS, SERVICES)),
            REPORT_FEED_URL=feed.url,
            REPORT_CACHE_TTL_SECONDS="3600",
        )
        fetch({"action": "fetch"})
        key = SourceCache.key(FEED_ENTRY)
        entry = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        entry["data"] = [
            {**item, "published": f"{item['published']}T17:00:00Z"} for item in entry["data"]
        ]
        entry["fingerprint"] = fingerprint(entry["data"])
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(entry).encode("utf-8"))
        # WHEN the next run of the report day starts
        fake_clock.advance(60 if fresh else 3601)
        result = fetch({"action": "fetch"})
    # THEN it does not use the entry: the feed is downloaded again, without the entry's
    # validators, and the launch date is in the document
    assert (result["status"], result["feed_status"]) == ("ok", "fetched")
    assert feed.requests[-1].get("If-None-Match") is None
    regions = {region["code"]: region for region in _raw(s3, result["key"])["regions"]}
    assert regions["ap-southeast-7"]["launch_date"] == "2025-01-08"


@pytest.mark.parametrize(
    ("field", "edited"),
    [
        ("etag", '"abc"\r\nX-Injected: 1'),
        ("etag", "x" * 10_000),
        ("last_modified", "Mon, 06 Jan 2025 09:00:00 GMT\n"),
    ],
)
def test_a_feed_cache_entry_with_an_unsendable_validator_is_a_miss_and_the_feed_downloaded(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock, field: str, edited: str
) -> None:
    # GIVEN the feed's cache entry with its ETag or Last-Modified edited by hand to a value
    # with a line break, or 10,000 characters long, its data and fingerprint intact
    feed = FeedServer(THAILAND_OPENS)
    with feed.running():
        fetch = fetcher(
            FakeSsm(ssm_parameters(REGIONS, SERVICES)),
            REPORT_FEED_URL=feed.url,
            REPORT_CACHE_TTL_SECONDS="3600",
        )
        fetch({"action": "fetch"})
        key = SourceCache.key(FEED_ENTRY)
        entry = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        s3.put_object(
            Bucket=BUCKET, Key=key, Body=json.dumps({**entry, field: edited}).encode("utf-8")
        )
        # WHEN a run past the entry's TTL asks the feed again
        fake_clock.advance(3601)
        result = fetch({"action": "fetch"})
    # THEN the edited validator is not sent: the feed is downloaded whole, without the entry's
    # validators, and the run has its launch date (the request did not fail on the header)
    assert (result["status"], result["feed_status"]) == ("ok", "fetched")
    assert feed.requests[-1].get("If-None-Match") is None
    assert feed.requests[-1].get("If-Modified-Since") is None
    regions = {region["code"]: region for region in _raw(s3, result["key"])["regions"]}
    assert regions["ap-southeast-7"]["launch_date"] == "2025-01-08"


def test_a_feed_cached_from_another_url_is_a_miss_and_the_new_url_downloaded(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN a run of the report day that cached the feed at one URL, then REPORT_FEED_URL set
    # to another feed (with the same ETag: validators mean nothing across servers)
    old_feed = FeedServer(
        rss([("Amazon S3 adds a storage class", "Mon, 06 Jan 2025 09:00:00 GMT")])
    )
    new_feed = FeedServer(THAILAND_OPENS)
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    with old_feed.running(), new_feed.running():
        fetcher(ssm, REPORT_FEED_URL=old_feed.url)({"action": "fetch"})
        fetch = fetcher(ssm, REPORT_FEED_URL=new_feed.url)
        # WHEN the next run of the report day starts
        fake_clock.advance(60)
        result = fetch({"action": "fetch"})
    # THEN the old feed's entry is not served as the new URL's: the new feed is downloaded,
    # without the old entry's validators, and gives its launch date
    assert (result["status"], result["feed_status"]) == ("ok", "fetched")
    assert [request.get("If-None-Match") for request in new_feed.requests] == [None]
    regions = {region["code"]: region for region in _raw(s3, result["key"])["regions"]}
    assert regions["ap-southeast-7"]["launch_date"] == "2025-01-08"


def test_an_unknown_action_is_refused_naming_the_field(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN an event with a wrong action
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    # WHEN handled THEN the error names the field and nothing is read or written
    result = fetch({"action": "scale"})
    assert result["status"] == "error"
    assert "action" in result["error"]
    assert ssm.calls == 0
    assert keys_under(s3, "") == []


def test_a_failing_ssm_read_writes_nothing_and_alerts(
    s3: Any, alert_inbox: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN SSM refusing every call
    fetch = fetcher(FakeSsm({}, fail=True), REPORT_FEED_URL=unreachable_url())
    # WHEN the fetcher runs THEN it reports the error, writes no raw document and alerts
    result = fetch({"action": "fetch"})
    assert result["status"] == "error"
    assert "AccessDeniedException" in result["error"]
    assert keys_under(s3, "raw/") == []
    alerts = alert_inbox.receive()
    assert [alert.alert["title"] for alert in alerts] == ["Availability fetch failed"]
    assert alerts[0].alert["severity"] == "warning"
    assert result["alert_published"] is True


class SsmRefusingAtLength(FakeSsm):
    """SSM refusing every call with an error message of 300,000 characters over several lines (an
    endpoint or a proxy echoing what it was sent, after its page)."""

    def _count(self) -> None:
        super()._count()
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": MULTI_LINE_PAGE + "x" * 300_000}},
            "GetParametersByPath",
        )


def test_a_failing_ssm_read_with_a_huge_error_message_alerts_quoting_its_start_only(
    s3: Any, alert_inbox: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN SSM refusing every call with a 300,000-character message, a proxy's page first
    fetch = fetcher(SsmRefusingAtLength({}), REPORT_FEED_URL=unreachable_url())
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN the warning alert goes out (SNS takes at most 256 KB) quoting the start of the
    # error only, as the result does, and nothing is written
    assert result["status"] == "error"
    assert result["alert_published"] is True
    [alert] = alert_inbox.receive()
    assert "ValidationException" in alert.alert["detail"]
    assert len(alert.alert["detail"]) < 400
    # AND the alert quotes it on one line
    assert "\n" not in alert.alert["detail"]
    assert keys_under(s3, "") == []


class ReplaceableSsm:
    """SSM whose answers change between runs: every call goes to `current`."""

    def __init__(self, current: FakeSsm) -> None:
        self.current = current

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)


def test_an_ssm_listing_nothing_fails_the_run_and_caches_nothing_for_the_next(
    s3: Any, alert_inbox: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN SSM answering its region listing with no parameters at all (a read gone wrong: the
    # public parameters always list regions)
    ssm = ReplaceableSsm(FakeSsm({}))
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN the run fails naming the empty listing, writes no raw document and no cache entry,
    # and alerts
    assert result["status"] == "error"
    assert (
        "listed no parameters under /aws/service/global-infrastructure/regions" in (result["error"])
    )
    assert keys_under(s3, "") == []
    assert [alert.alert["title"] for alert in alert_inbox.receive()] == [
        "Availability fetch failed"
    ]
    # AND the retry, SSM answering again, reads SSM and writes the whole dataset
    ssm.current = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fake_clock.advance(60)
    retry = fetch({"action": "fetch"})
    assert (retry["status"], retry["ssm_from_cache"]) == ("ok", False)
    assert retry["counts"]["services"] == len(SERVICES)


def test_an_ssm_listing_answering_its_token_again_fails_the_run_at_once_and_writes_nothing(
    s3: Any, alert_inbox: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN SSM (moto's, a botocore client) answering every listing page with the same
    # NextToken, as a proxy replaying one answer would
    ssm = boto3.client("ssm", region_name=REGION)
    operation = "GetParametersByPath"
    replayed = answer_the_same_page_token(ssm, operation, "NextToken", "10")
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url(), REPORT_MAX_WORKERS="1")
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN the run fails naming the repeated token after two pages, not when its time runs out,
    # writes nothing and raises the warning alert
    assert replayed.pages == 2
    assert result["status"] == "error"
    assert "NextToken" in result["error"] and operation in result["error"]
    assert keys_under(s3, "raw/") == []
    assert [alert.alert["title"] for alert in alert_inbox.receive()] == [
        "Availability fetch failed"
    ]


@pytest.mark.parametrize(
    "answer",
    [
        b"<html><body>502 Bad Gateway from the proxy</body></html>",
        b"{}",
        b'{"Parameters": [{"Value": "no name"}]}',
    ],
    ids=["not-json", "without-parameters", "parameter-without-name"],
)
def test_an_ssm_answer_that_cannot_be_read_fails_the_run_writes_nothing_and_alerts(
    s3: Any, alert_inbox: Any, fetcher: Callable[..., Fetch], answer: bytes
) -> None:
    # GIVEN SSM (a botocore client) answering its listings with HTTP 200 and a body that is not
    # the listing's answer, as a proxy's error page or a broken endpoint would
    ssm = boto3.client("ssm", region_name=REGION)
    operation = "GetParametersByPath"
    malformed = answer_malformed(ssm, "ssm", operation, answer)
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url(), REPORT_MAX_WORKERS="2")
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN the run fails naming the operation, writes nothing and raises the warning alert
    assert malformed.answered >= 1
    assert result["status"] == "error"
    assert operation in result["error"]
    assert len(result["error"]) < 300
    assert keys_under(s3, "") == []
    alerts = alert_inbox.receive()
    assert [alert.alert["title"] for alert in alerts] == ["Availability fetch failed"]
    assert result["alert_published"] is True


_REGIONS = "/aws/service/global-infrastructure/regions"


@pytest.mark.parametrize(
    "names",
    [
        [f"{_REGIONS}/us-east-1", f"{_REGIONS}/us-east-1"],
        [f"{_REGIONS}/us-east-1", "/aws/service/global-infrastructure/services/ec2"],
        [f"{_REGIONS}/us-east-1", f"{_REGIONS}/us-east-1/longName"],
        [f"{_REGIONS}/us-east-1", f"{_REGIONS}/"],
        [f"{_REGIONS}/us-east-1", f"{_REGIONS}/.."],
        [f"{_REGIONS}/us-east-1", f"{_REGIONS}/us east 1"],
        [f"{_REGIONS}/us-east-1", f"{_REGIONS}/{'x' * 10_000}"],
    ],
    ids=["twice", "other-path", "grandchild", "empty", "dot-dot", "spaces", "10-kB"],
)
def test_a_listing_naming_what_is_not_a_code_under_its_path_fails_the_run_and_writes_nothing(
    s3: Any, alert_inbox: Any, fetcher: Callable[..., Fetch], names: list[str]
) -> None:
    # GIVEN SSM (moto's, a botocore client) answering the region listing with a parameter
    # listed twice, or one that is not a code directly under the path asked
    ssm = boto3.client("ssm", region_name=REGION)
    operation = "GetParametersByPath"
    answer = json.dumps({"Parameters": [{"Name": name, "Value": "v"} for name in names]})
    malformed = answer_malformed(ssm, "ssm", operation, answer.encode(), body_with=b'/regions"')
    fetch = fetcher(ssm, REPORT_FEED_URL=unreachable_url(), REPORT_MAX_WORKERS="2")
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN the run fails naming the listing by a short message, writes nothing (no raw document,
    # no cache entry for the rest of the day) and raises the warning alert
    assert malformed.answered == 1
    assert result["status"] == "error"
    assert operation in result["error"] and _REGIONS in result["error"]
    assert len(result["error"]) < 300
    assert keys_under(s3, "") == []
    assert [alert.alert["title"] for alert in alert_inbox.receive()] == [
        "Availability fetch failed"
    ]


def test_a_fetch_running_out_of_time_stops_before_the_deadline_writes_nothing_and_alerts(
    s3: Any, alert_inbox: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN SSM so slow (throttled, paced down by the adaptive retries) that the invocation has
    # 300 s left for the source cache's read and the first three calls and 50 s before the fourth
    ssm = FakeSsm(ssm_parameters(REGIONS, SERVICES))
    fetcher(ssm, REPORT_FEED_URL=unreachable_url())
    context = ContextRunningOutOfTime(millis_left=[300_000, 300_000, 300_000, 300_000, 50_000])
    # WHEN the fetcher runs
    result = app.lambda_handler({"action": "fetch"}, context)
    # THEN it stops calling SSM while it still has time to say so: an error naming the reason,
    # nothing written (no raw document, no cache entry) and the warning alert
    assert result["status"] == "error"
    assert "SsmOutOfTimeError" in result["error"]
    assert "3 calls" in result["error"]
    assert ssm.calls == 3
    assert keys_under(s3, "") == []
    alerts = alert_inbox.receive()
    assert [alert.alert["title"] for alert in alerts] == ["Availability fetch failed"]
    assert result["alert_published"] is True


def test_a_missing_bucket_variable_fails_the_invocation_naming_it(
    monkeypatch: pytest.MonkeyPatch, fleet_environment: dict[str, str], lambda_context: Any
) -> None:
    # GIVEN a deployment without DATA_BUCKET_NAME
    monkeypatch.delenv("DATA_BUCKET_NAME")
    app.FUNCTION.use_services(None)
    # WHEN invoked
    with pytest.raises(ConfigurationError) as raised:
        app.lambda_handler({"action": "fetch"}, lambda_context)
    # THEN the invocation fails naming the variable
    assert str(raised.value) == "environment variable DATA_BUCKET_NAME: is required but not set"


def load_fetcher_environment(**variables: str) -> FetcherEnvironment:
    """The fetcher's environment from its required variables and `variables`."""
    return load_environment(
        FetcherEnvironment,
        {
            "DATA_BUCKET_NAME": BUCKET,
            "ALERT_TOPIC_ARN": "arn:aws:sns:ap-south-1:123456789012:alerts",
            **variables,
        },
    )


def test_a_feed_url_that_is_not_http_is_refused() -> None:
    # GIVEN a file:// feed URL WHEN the environment is loaded THEN the variable is named
    with pytest.raises(ConfigurationError) as raised:
        load_fetcher_environment(REPORT_FEED_URL="file:///etc/passwd")
    assert raised.value.variable == "REPORT_FEED_URL"


@pytest.mark.parametrize("value", ["-1", "nan", "1.5", "604801", "99999999999999999999"])
def test_a_bad_cache_ttl_is_refused_naming_the_variable(value: str) -> None:
    # GIVEN a cache TTL that is not a whole number of seconds up to a week (an entry never
    # serves past its report day; a huge one overflowed when the cache was built, at the
    # fetch, not naming the variable)
    # WHEN the environment is loaded THEN the variable is named, and the value by its start only
    with pytest.raises(ConfigurationError, match="REPORT_CACHE_TTL_SECONDS") as raised:
        load_fetcher_environment(REPORT_CACHE_TTL_SECONDS=value)
    assert len(str(raised.value)) < 200


def test_a_long_feed_url_that_is_not_http_is_refused_quoting_its_start_only() -> None:
    # GIVEN a 10,000-character feed URL that is not http (a pasted document)
    pasted = "ftp://" + "x" * 10_000
    # WHEN the environment is loaded THEN the variable is named, the value by its start only
    with pytest.raises(ConfigurationError, match="REPORT_FEED_URL") as raised:
        load_fetcher_environment(REPORT_FEED_URL=pasted)
    assert "'ftp://xxx" in str(raised.value)
    assert len(str(raised.value)) < 200


@pytest.mark.parametrize(
    "url",
    [
        "https://aws.amazon.com/about-aws/whats-new/recent/feed/ ",
        "https://aws.amazon.com/about aws/feed/",
        "https://aws.amazon.com/feed/\n",
        "https:///feed/",
        "https://aws.amazon.com:0/feed/",
        "https://aws..amazon.com/feed/",
    ],
)
def test_a_feed_url_urllib_would_refuse_at_the_request_is_refused_at_cold_start(url: str) -> None:
    # GIVEN a feed URL that starts with https:// but has a space, a control character, no host,
    # port 0 or an empty host label: http.client or the resolver refuses it only when asked
    # WHEN the environment is loaded
    # THEN the variable is named once, before any fetch runs
    with pytest.raises(ConfigurationError, match="REPORT_FEED_URL") as raised:
        load_fetcher_environment(REPORT_FEED_URL=url)
    assert "printable ASCII without spaces" in str(raised.value)


def test_a_fetch_at_2330_utc_is_dated_the_next_day_of_the_schedule_time_zone(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN a stack scheduling in Asia/Kolkata, and the 05:00 IST fetch: 23:30 UTC the day before
    fake_clock.set(datetime(2026, 11, 25, 23, 30, tzinfo=UTC))
    fetch = fetcher(
        FakeSsm(ssm_parameters(REGIONS, SERVICES)),
        REPORT_FEED_URL=unreachable_url(),
        SCHEDULE_TIME_ZONE="Asia/Kolkata",
    )
    # WHEN the fetcher runs
    result = fetch({"action": "fetch"})
    # THEN the raw document is dated 2026-11-26, the day in the schedule time zone
    assert result["key"] == "raw/2026-11-26/20261125T233000Z-00000001.json"
    assert _raw(s3, result["key"])["metadata"]["report_day"] == "2026-11-26"


def test_a_fetch_without_a_schedule_time_zone_is_dated_the_utc_day(
    s3: Any, fetcher: Callable[..., Fetch], fake_clock: ManualClock
) -> None:
    # GIVEN no SCHEDULE_TIME_ZONE and a fetch at 23:30 UTC
    fake_clock.set(datetime(2026, 11, 25, 23, 30, tzinfo=UTC))
    fetch = fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), REPORT_FEED_URL=unreachable_url())
    # WHEN the fetcher runs THEN its document is dated the UTC day
    assert fetch({"action": "fetch"})["key"].startswith("raw/2026-11-25/")


def test_an_unknown_schedule_time_zone_is_refused_naming_the_variable(
    s3: Any, fetcher: Callable[..., Fetch]
) -> None:
    # GIVEN a misspelt zone WHEN the fetcher is built THEN it refuses, naming the variable
    with pytest.raises(ConfigurationError) as raised:
        fetcher(FakeSsm(ssm_parameters(REGIONS, SERVICES)), SCHEDULE_TIME_ZONE="Asia/Kolkatta")
    assert raised.value.variable == "SCHEDULE_TIME_ZONE"
