"""One fetch run: SSM data and feed (each through the cache), then the raw document to S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fleet_shared.clock import Clock
from fleet_shared.report_documents import (
    SCHEMA_VERSION,
    FeedSource,
    RawCounts,
    RawDocument,
    RawMetadata,
    RawRegion,
    RawService,
    SsmSource,
    raw_key,
)
from handlers.report_fetcher.cache import (
    FEED_ENTRY,
    SSM_ENTRY,
    CacheEntry,
    SourceCache,
    fingerprint,
)
from handlers.report_fetcher.feed import (
    FeedItem,
    FeedUnavailableError,
    fetch_feed,
    launch_dates,
    parse_items,
)
from handlers.report_fetcher.ssm_source import PARAMETER_ROOT, fetch_global_infrastructure


@dataclass(frozen=True)
class FetchSettings:
    """What a run needs besides its clients."""

    bucket: str
    ssm_region: str
    feed_url: str
    feed_timeout_seconds: float
    max_workers: int


@dataclass(frozen=True)
class FetchResult:
    """The key written and the document's metadata."""

    key: str
    metadata: RawMetadata


def _ssm_data(
    ssm: Any, cache: SourceCache, settings: FetchSettings, refresh: bool, clock: Clock
) -> tuple[dict[str, Any], SsmSource]:
    entry = None if refresh else cache.read(SSM_ENTRY)
    if entry is not None and cache.is_fresh(entry):
        return entry.data, _ssm_source(settings, entry, from_cache=True, api_calls=0)
    fetched = fetch_global_infrastructure(ssm, settings.max_workers)
    data = {"regions": fetched.regions, "services": fetched.services}
    entry = CacheEntry(fetched_at=clock.now(), fingerprint=fingerprint(data), data=data)
    cache.write(SSM_ENTRY, entry)
    return data, _ssm_source(settings, entry, from_cache=False, api_calls=fetched.api_calls)


def _ssm_source(
    settings: FetchSettings, entry: CacheEntry, *, from_cache: bool, api_calls: int
) -> SsmSource:
    return SsmSource(
        parameter_root=PARAMETER_ROOT,
        region=settings.ssm_region,
        fetched_at=entry.fetched_at,
        fingerprint=entry.fingerprint,
        from_cache=from_cache,
        api_calls=api_calls,
    )


def _feed_items(
    cache: SourceCache, settings: FetchSettings, refresh: bool, clock: Clock, warnings: list[str]
) -> tuple[list[FeedItem], FeedSource]:
    url = settings.feed_url
    entry = None if refresh else cache.read(FEED_ENTRY)
    if entry is not None and cache.is_fresh(entry):
        items = _items_from(entry)
        return items, FeedSource(
            url=url, status="cached", fetched_at=entry.fetched_at, items=len(items)
        )
    try:
        response = fetch_feed(
            url,
            settings.feed_timeout_seconds,
            etag=entry.etag if entry else None,
            last_modified=entry.last_modified if entry else None,
        )
        if response.body is None and entry is not None:
            status = "not_modified"
            items = _items_from(entry)
        else:
            status = "fetched"
            items = parse_items(response.body or b"")
    except FeedUnavailableError as error:
        warnings.append(f"launch-date feed {url} unreachable ({error}): no launch dates this run")
        return [], FeedSource(url=url, status="unreachable", fetched_at=None, items=0)
    data = [{"title": item.title, "published": item.published.isoformat()} for item in items]
    now = clock.now()
    cache.write(
        FEED_ENTRY,
        CacheEntry(
            fetched_at=now,
            fingerprint=fingerprint(data),
            data=data,
            etag=response.etag,
            last_modified=response.last_modified,
        ),
    )
    return items, FeedSource(url=url, status=status, fetched_at=now, items=len(items))


def _items_from(entry: CacheEntry) -> list[FeedItem]:
    return [
        FeedItem(title=item["title"], published=date.fromisoformat(item["published"]))
        for item in entry.data
    ]


def run_fetch(
    *,
    s3: Any,
    ssm: Any,
    cache: SourceCache,
    clock: Clock,
    new_run_id: Callable[[datetime], str],
    settings: FetchSettings,
    refresh: bool,
) -> FetchResult:
    """Fetch (or reuse) the sources and write `raw/<day>/<run-id>.json`; the write triggers the
    processor. Raises the botocore error when SSM cannot be read: no document is written then."""
    started_at = clock.now()
    run_id = new_run_id(started_at)
    warnings: list[str] = []
    data, ssm_source = _ssm_data(ssm, cache, settings, refresh, clock)
    items, feed_source = _feed_items(cache, settings, refresh, clock, warnings)
    dates = launch_dates(items, {region["code"]: region["long_name"] for region in data["regions"]})
    regions = [
        RawRegion(**region, launch_date=dates.get(region["code"])) for region in data["regions"]
    ]
    services = [RawService(**service) for service in data["services"]]
    metadata = RawMetadata(
        run_id=run_id,
        started_at=started_at,
        finished_at=clock.now(),
        counts=RawCounts(
            regions=len(regions),
            services=len(services),
            pairs=sum(len(service.regions) for service in services),
            launch_dates=len(dates),
        ),
        ssm=ssm_source,
        feed=feed_source,
        warnings=warnings,
    )
    document = RawDocument(
        schema_version=SCHEMA_VERSION, metadata=metadata, regions=regions, services=services
    )
    key = raw_key(run_id)
    s3.put_object(
        Bucket=settings.bucket,
        Key=key,
        Body=json.dumps(document.model_dump(mode="json"), indent=1).encode("utf-8"),
        ContentType="application/json",
    )
    return FetchResult(key=key, metadata=metadata)
