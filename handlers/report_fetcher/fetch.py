"""One fetch run: SSM data and feed (each through the cache), then the raw document to S3.

Every region (long name, partition, geolocation, availability zones) and every service (long
name, marketing URL, the regions it is offered in) is read from the global-infrastructure public
parameters (`ssm_source.py`), region launch dates are added from an RSS feed (`feed.py`), and one
raw document is written to `raw/<yyyy-mm-dd>/<run-id>.json` in the data bucket (the report day:
the date in the schedule time zone of the time the run was scheduled for, `run`, else of the
start); that write triggers report_processor. Sources are cached under `cache/` (`cache.py`). A
failed SSM read writes nothing; an unreachable feed only costs the launch dates, and the
document says so.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from botocore.config import Config
from pydantic import Field, ValidationError

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import ObjectReadTimeoutError, ObjectTooLargeError
from fleet_shared.function_services import FunctionServices
from fleet_shared.report_documents import (
    SCHEMA_VERSION,
    FeedSource,
    RawCounts,
    RawDocument,
    RawMetadata,
    RawRegion,
    RawService,
    ReportDocument,
    SsmSource,
    new_run_id,
    raw_key,
)
from fleet_shared.sessions import CLIENT_CONFIG
from fleet_shared.validation_errors import escaped_echo
from handlers.report_fetcher.cache import (
    ENTRY_READ_SECONDS_MAX,
    FEED_ENTRY,
    SSM_ENTRY,
    CacheEntry,
    SourceCache,
    fingerprint,
)
from handlers.report_fetcher.environment import FetcherEnvironment
from handlers.report_fetcher.feed import (
    FeedItem,
    FeedUnavailableError,
    fetch_feed,
    launch_dates,
    parse_items,
)
from handlers.report_fetcher.rate_limit import TokenBucket
from handlers.report_fetcher.ssm_source import PARAMETER_ROOT, fetch_global_infrastructure

SSM_RETRIES: dict[str, Any] = {"mode": "adaptive", "max_attempts": 5}
"""Standard retries plus botocore's own client-side rate adjustment after a throttle."""


class FetcherServices(FunctionServices[FetcherEnvironment]):
    """The fetcher's clients, its source cache and its run ids."""

    @property
    def ssm_region(self) -> str:
        """The region whose SSM endpoint is read: the function's own."""
        return self.sessions.home_region

    @cached_property
    def ssm(self) -> Any:
        """SSM in the hub account, every request paced by `ssm_rate_limit`; adaptive retries
        slow down further when SSM throttles anyway (other callers share its quota). The
        connection pool is as large as the worker pool, so no call waits for a connection."""
        config = CLIENT_CONFIG.merge(
            Config(
                retries=SSM_RETRIES,
                max_pool_connections=max(10, self.environment.report_max_workers),
            )
        )
        session = self.sessions.session(self.sessions.hub_account_id, self.ssm_region)
        client = session.client("ssm", config=config)
        self.ssm_rate_limit.attach(client)
        return client

    @cached_property
    def ssm_rate_limit(self) -> TokenBucket:
        """The token bucket every SSM request of this container takes a token from."""
        return TokenBucket(self.environment.report_ssm_calls_per_second)

    @cached_property
    def source_cache(self) -> SourceCache:
        """The source cache under `cache/` in the data bucket."""
        environment = self.environment
        return SourceCache(
            self.hub_client("s3"),
            environment.data_bucket_name,
            environment.report_cache_ttl_seconds,
            self.clock,
        )

    def new_run_id(self, started_at: datetime) -> str:
        """A new run id: the start time and 8 random hex digits."""
        return new_run_id(started_at, uuid.uuid4().hex[:8])


class SsmDataset(ReportDocument):
    """The regions and services read from SSM, as the cache holds them (no launch dates yet)."""

    regions: list[RawRegion] = Field(min_length=1)
    services: list[RawService] = Field(min_length=1)


@dataclass(frozen=True)
class FetchResult:
    """The key written and the document's metadata."""

    key: str
    metadata: RawMetadata


def _read_cache(
    cache: SourceCache,
    name: str,
    source: str,
    seconds_left: Callable[[], float],
    warnings: list[str],
) -> CacheEntry | None:
    """The stored entry of `source` (`SourceCache.read`); None, with a warning, when S3 does not
    answer the read, the entry is too large to read or its bytes do not all come within
    ENTRY_READ_SECONDS_MAX or half the time left (the other half is for asking the source): the
    cache only spares asking the source, so the run asks it, instead of failing with the
    source's data a call away."""
    within = min(ENTRY_READ_SECONDS_MAX, max(0.0, seconds_left() / 2))
    try:
        return cache.read(name, source, within_seconds=within)
    except (ObjectTooLargeError, ObjectReadTimeoutError, *AWS_CALL_ERRORS) as error:
        warnings.append(
            f"source cache {cache.key(name)} not read ({call_error_text(error)}): "
            f"{source} asked instead"
        )
        return None


def _write_cache(cache: SourceCache, name: str, entry: CacheEntry, warnings: list[str]) -> None:
    """Store `entry` (`SourceCache.write`); a write S3 does not take is a warning: the run has the
    data it fetched, and the next run of the day asks the source again. Failing the run there
    lost what was fetched, and its retry asked every source again."""
    try:
        cache.write(name, entry)
    except AWS_CALL_ERRORS as error:
        warnings.append(
            f"source cache {cache.key(name)} not written ({call_error_text(error)}): the next "
            f"run asks {entry.source} again"
        )


def _cached_dataset(entry: CacheEntry) -> SsmDataset | None:
    """The dataset of a cache entry, None when it is not this version's: an entry written by
    another version signs its own data, so its fingerprint holds, and served it would fail every
    run of the report day."""
    try:
        dataset = SsmDataset.model_validate(entry.data)
    except ValidationError:
        return None
    if any(region.launch_date is not None for region in dataset.regions):
        return None
    return dataset


def _ssm_data(
    services: FetcherServices,
    refresh: bool,
    report_day: date,
    seconds_left: Callable[[], float],
    warnings: list[str],
) -> tuple[SsmDataset, SsmSource]:
    cache = services.source_cache
    source = f"{PARAMETER_ROOT} in {services.ssm_region}"
    entry = None if refresh else _read_cache(cache, SSM_ENTRY, source, seconds_left, warnings)
    if entry is not None and cache.is_fresh(entry, report_day):
        cached = _cached_dataset(entry)
        if cached is not None:
            return cached, _ssm_source(services, entry, from_cache=True, api_calls=0)
    fetched = fetch_global_infrastructure(
        services.ssm, services.environment.report_max_workers, seconds_left
    )
    data = {"regions": fetched.regions, "services": fetched.services}
    dataset = SsmDataset.model_validate(data)
    entry = CacheEntry(
        report_day=report_day,
        fetched_at=services.clock.now(),
        fingerprint=fingerprint(data),
        data=data,
        source=source,
    )
    _write_cache(cache, SSM_ENTRY, entry, warnings)
    return dataset, _ssm_source(services, entry, from_cache=False, api_calls=fetched.api_calls)


def _ssm_source(
    services: FetcherServices, entry: CacheEntry, *, from_cache: bool, api_calls: int
) -> SsmSource:
    return SsmSource(
        parameter_root=PARAMETER_ROOT,
        region=services.ssm_region,
        fetched_at=entry.fetched_at,
        fingerprint=entry.fingerprint,
        from_cache=from_cache,
        api_calls=api_calls,
    )


def _feed_items(
    services: FetcherServices,
    refresh: bool,
    report_day: date,
    seconds_left: Callable[[], float],
    warnings: list[str],
) -> tuple[list[FeedItem], FeedSource]:
    cache = services.source_cache
    url = services.environment.report_feed_url
    entry = None if refresh else _read_cache(cache, FEED_ENTRY, url, seconds_left, warnings)
    cached_items = None if entry is None else _items_from(entry)
    if cached_items is None:
        # Not this version's layout: neither its items nor its validators (a 304 would leave
        # the run without items) are used.
        entry = None
    if entry is not None and cached_items is not None and cache.is_fresh(entry, report_day):
        items = cached_items
        return items, FeedSource(
            url=url,
            status="cached",
            fetched_at=entry.fetched_at,
            fingerprint=entry.fingerprint,
            items=len(items),
        )
    try:
        response = fetch_feed(
            url,
            services.environment.report_feed_timeout_seconds,
            etag=entry.etag if entry else None,
            last_modified=entry.last_modified if entry else None,
        )
        if response.body is None and cached_items is not None:
            status = "not_modified"
            items = cached_items
        else:
            status = "fetched"
            items = parse_items(response.body or b"")
    except FeedUnavailableError as error:
        # The error can quote what the feed sent (its root element, the HTTP reason, a line that
        # is not HTTP): escaped and cut, one line.
        warnings.append(
            f"launch-date feed {url} unreachable ({escaped_echo(str(error))}): "
            "no launch dates this run"
        )
        return [], FeedSource(url=url, status="unreachable", fetched_at=None, items=0)
    data = [{"title": item.title, "published": item.published.isoformat()} for item in items]
    now = services.clock.now()
    entry = CacheEntry(
        report_day=report_day,
        fetched_at=now,
        fingerprint=fingerprint(data),
        data=data,
        source=url,
        etag=response.etag,
        last_modified=response.last_modified,
    )
    _write_cache(cache, FEED_ENTRY, entry, warnings)
    return items, FeedSource(
        url=url, status=status, fetched_at=now, fingerprint=entry.fingerprint, items=len(items)
    )


def _items_from(entry: CacheEntry) -> list[FeedItem] | None:
    """The feed items of a cache entry, None when its data is not this version's layout (an
    entry of another version signs its own data, so its fingerprint holds)."""
    if not isinstance(entry.data, list):
        return None
    try:
        items = [
            FeedItem(title=item["title"], published=date.fromisoformat(item["published"]))
            for item in entry.data
        ]
    except (KeyError, TypeError, ValueError):
        return None
    return items if all(isinstance(item.title, str) for item in items) else None


def report_day_of(run: datetime | None, started_at: datetime, time_zone: str) -> date:
    """The day that files a run: the date in `time_zone` of the time it was scheduled for
    (`run`), else, for a fetch started by hand, of its start.

    Every attempt of a scheduled run carries the same `run`: a retry that starts after midnight
    belongs to the day it retries, or it would take the next day's place (its cache entry would
    serve that day's run, its documents be filed with that day's)."""
    return (run or started_at).astimezone(ZoneInfo(time_zone)).date()


def run_fetch(
    services: FetcherServices,
    *,
    refresh: bool,
    seconds_left: Callable[[], float],
    run: datetime | None,
) -> FetchResult:
    """Fetch (or reuse, unless `refresh`) the sources and write `raw/<day>/<run-id>.json`; the
    write triggers the processor. `seconds_left` is the invocation's time left; `run` the time
    the run was scheduled for (None: started by hand), which dates it (`report_day_of`). Raises
    the botocore error, or an SsmReadError, when SSM cannot be read (in time): no document is
    written then."""
    clock = services.clock
    started_at = clock.now()
    run_id = services.new_run_id(started_at)
    # The report day files this run; a cache entry serves only runs of its own report day.
    report_day = report_day_of(run, started_at, services.environment.schedule_time_zone)
    warnings: list[str] = []
    dataset, ssm_source = _ssm_data(services, refresh, report_day, seconds_left, warnings)
    items, feed_source = _feed_items(services, refresh, report_day, seconds_left, warnings)
    long_names = {region.code: region.long_name for region in dataset.regions}
    # A day's leeway past the start's UTC date, for a feed whose clock runs a little ahead.
    latest = started_at.astimezone(UTC).date() + timedelta(days=1)
    dates = launch_dates(items, long_names, latest=latest)
    regions = [
        region.model_copy(update={"launch_date": dates.get(region.code)})
        for region in dataset.regions
    ]
    raw_services = dataset.services
    metadata = RawMetadata(
        run_id=run_id,
        report_day=report_day,
        started_at=started_at,
        finished_at=clock.now(),
        counts=RawCounts(
            regions=len(regions),
            services=len(raw_services),
            pairs=sum(len(service.regions) for service in raw_services),
            launch_dates=len(dates),
        ),
        ssm=ssm_source,
        feed=feed_source,
        warnings=warnings,
    )
    document = RawDocument(
        schema_version=SCHEMA_VERSION, metadata=metadata, regions=regions, services=raw_services
    )
    key = raw_key(run_id, report_day)
    services.hub_client("s3").put_object(
        Bucket=services.environment.data_bucket_name,
        Key=key,
        Body=json.dumps(document.model_dump(mode="json"), indent=1).encode("utf-8"),
        ContentType="application/json",
    )
    return FetchResult(key=key, metadata=metadata)
