"""report_fetcher: the AWS region/service availability from SSM public parameters, daily.

Reads every region (long name, partition, geolocation, availability zones) and every service
(long name, marketing URL, the regions it is offered in) from the global-infrastructure public
parameters, adds region launch dates from an RSS feed, and writes one raw document to
`raw/<yyyy-mm-dd>/<run-id>.json` in the data bucket; that write triggers report_processor.
Sources are cached under `cache/` for REPORT_CACHE_TTL_SECONDS (see `cache.py`).

Event: the schedule's `{"action": "fetch"}`; `"refresh": true` ignores the cache for this run.
Result: `{"status": "ok", "run_id", "key", "counts", "ssm_from_cache", "feed_status",
"warnings"}`; bad input or a failed SSM read gives `{"status": "error", "error": ...}` and writes
nothing (a failed SSM read also raises a warning alert).

Environment variables:
- DATA_BUCKET_NAME (required): the data bucket (cache, raw documents).
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_INFO_ARN, ALERT_TOPIC_CRITICAL_ARN: alert topics.
- REPORT_FEED_URL: the RSS feed of region launches (http or https); default
  https://aws.amazon.com/about-aws/whats-new/recent/feed/.
- REPORT_FEED_TIMEOUT_SECONDS: timeout of the feed request; default 10.
- REPORT_CACHE_TTL_SECONDS: how long a cached source is reused; default 86400, 0 disables.
- REPORT_MAX_WORKERS: concurrent SSM calls; default 8 (at most 64).
- AWS_REGION: the region whose SSM endpoint is read (the function's own).
The other common fleet variables are accepted and unused. FLEET_DRY_RUN does not apply: the
function only writes its own data under `cache/` and `raw/`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fleet_shared.alerts import Alert, AlertPublisher, Severity
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import FleetError
from fleet_shared.field_types import Arn
from fleet_shared.observability import observability_for
from fleet_shared.report_documents import new_run_id
from fleet_shared.sessions import CLIENT_CONFIG, AccountSessions
from handlers.report_fetcher.cache import SourceCache
from handlers.report_fetcher.fetch import FetchSettings, run_fetch

FUNCTION_NAME = "report_fetcher"
DEFAULT_FEED_URL = "https://aws.amazon.com/about-aws/whats-new/recent/feed/"

OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


class FetcherEnvironment(FunctionEnvironment):
    """The variables report_fetcher reads."""

    data_bucket_name: str
    alert_topic_arn: Arn
    report_feed_url: Annotated[str, AfterValidator(_http_url)] = DEFAULT_FEED_URL
    report_feed_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    report_cache_ttl_seconds: int = Field(default=86400, ge=0)
    report_max_workers: int = Field(default=8, ge=1, le=64)


class FetchEvent(BaseModel):
    """The schedule's payload."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["fetch"]
    refresh: bool = False


def random_run_id(started_at: datetime) -> str:
    """A new run id: the start time and 8 random hex digits."""
    return new_run_id(started_at, uuid.uuid4().hex[:8])


@dataclass(frozen=True)
class FetcherDependencies:
    """Everything a run uses from outside; tests build their own with a manual clock."""

    environment: FetcherEnvironment
    s3: Any
    ssm: Any
    alerts: AlertPublisher
    ssm_region: str
    clock: Clock
    new_run_id: Callable[[datetime], str]


def build_dependencies(
    environment: FetcherEnvironment,
    *,
    clock: Clock | None = None,
    run_ids: Callable[[datetime], str] = random_run_id,
) -> FetcherDependencies:
    """Hub clients with the fleet's retry configuration; the SSM client's connection pool is as
    large as the worker pool, so concurrent calls never wait for a connection."""
    sessions = AccountSessions.from_environment(environment, FUNCTION_NAME, clock=clock)
    region = sessions.home_region
    ssm_config = CLIENT_CONFIG.merge(
        Config(max_pool_connections=max(10, environment.report_max_workers))
    )
    ssm = sessions.session(sessions.hub_account_id, region).client("ssm", config=ssm_config)
    return FetcherDependencies(
        environment=environment,
        s3=sessions.hub_client("s3"),
        ssm=ssm,
        alerts=AlertPublisher(sessions.hub_client("sns"), environment),
        ssm_region=region,
        clock=clock or SystemClock(),
        new_run_id=run_ids,
    )


@functools.cache
def dependencies() -> FetcherDependencies:
    """The dependencies of this container, built on first use."""
    return build_dependencies(load_environment(FetcherEnvironment))


def handle(event: object, deps: FetcherDependencies) -> dict[str, Any]:
    """Validate the event and run one fetch."""
    try:
        request = parse_event(FetchEvent, event)
    except FleetError as error:
        return error_result(error)
    environment = deps.environment
    settings = FetchSettings(
        bucket=environment.data_bucket_name,
        ssm_region=deps.ssm_region,
        feed_url=environment.report_feed_url,
        feed_timeout_seconds=environment.report_feed_timeout_seconds,
        max_workers=environment.report_max_workers,
    )
    cache = SourceCache(
        deps.s3, environment.data_bucket_name, environment.report_cache_ttl_seconds, deps.clock
    )
    try:
        result = run_fetch(
            s3=deps.s3,
            ssm=deps.ssm,
            cache=cache,
            clock=deps.clock,
            new_run_id=deps.new_run_id,
            settings=settings,
            refresh=request.refresh,
        )
    except (ClientError, BotoCoreError) as error:
        logger.exception("fetch failed")
        deps.alerts.publish(
            Alert.create(
                severity=Severity.WARNING,
                source=FUNCTION_NAME,
                title="Availability fetch failed",
                detail=f"No raw document was written: {error}",
                resource=f"s3://{environment.data_bucket_name}/raw/",
                timestamp=deps.clock.now(),
            )
        )
        return error_result(error)
    metadata = result.metadata
    for warning in metadata.warnings:
        logger.warning(warning)
    OBSERVABILITY.metrics.add_metric(
        name="ReportPairsFetched", unit="Count", value=metadata.counts.pairs
    )
    return {
        "status": "ok",
        "run_id": metadata.run_id,
        "key": result.key,
        "counts": metadata.counts.model_dump(),
        "ssm_from_cache": metadata.ssm.from_cache,
        "ssm_api_calls": metadata.ssm.api_calls,
        "feed_status": metadata.feed.status,
        "warnings": metadata.warnings,
    }


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: a scheduled fetch."""
    try:
        deps = dependencies()
    except FleetError as error:
        return error_result(error)
    return handle(event, deps)
