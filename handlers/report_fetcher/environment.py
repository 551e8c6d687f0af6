"""The environment report_fetcher reads, validated once per container."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from fleet_shared.bounded_http import is_http_url
from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, S3BucketName, TimeZoneName
from fleet_shared.validation_errors import shown_value

DEFAULT_FEED_URL = "https://aws.amazon.com/about-aws/whats-new/recent/feed/"
SSM_CALLS_PER_SECOND_LEAST = 5.0
"""The slowest SSM pace accepted. Slower, a fetch's ~1,100 calls (1,131 on moto's data) cannot
end within the 240 s its 300 s timeout leaves it, so it fails every day; far slower, a worker
waiting for its token outlasts the invocation, and Lambda ends it with nothing reported. At
this pace the 64th worker in line waits under 13 s."""


def _http_url(value: str) -> str:
    # Checked here, not at the first fetch: http.client refuses a URL with a space or a control
    # character only when the request is made, and the feed would then fail every day.
    if not is_http_url(value):
        raise ValueError(
            "must be an http:// or https:// URL with a host, in printable ASCII without spaces,"
            f" got {shown_value(value)}"
        )
    return value


class FetcherEnvironment(FunctionEnvironment):
    """What the fetcher needs: the data bucket and the alert topic; the rest has defaults.

    The SSM endpoint read is the function's own region (AWS_REGION). FLEET_DRY_RUN does not
    apply: the function only writes its own data under `cache/` and `raw/`.
    """

    data_bucket_name: S3BucketName = Field(
        description="The data bucket: the source cache under `cache/`, raw documents under `raw/`."
    )
    alert_topic_arn: Arn = Field(
        description="The topic of the warning raised when SSM cannot be read."
    )
    state_table_name: DynamoDbTableName | None = Field(
        default=None,
        description="The claims of scheduled runs, so each is fetched once (required for an "
        "event with `run`).",
    )
    report_feed_url: Annotated[str, AfterValidator(_http_url)] = Field(
        default=DEFAULT_FEED_URL,
        description="The RSS feed of region launches (http or https), read for launch dates.",
    )
    report_feed_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="The timeout of the feed request (seconds)."
    )
    report_cache_ttl_seconds: int = Field(
        default=86400,
        ge=0,
        # Longer serves nothing more (an entry never outlives its report day); far longer does
        # not fit a timedelta, and the fetch failed building the cache.
        le=7 * 86400,
        description=(
            "How long a cached source is reused (seconds, at most a week), never past its report"
            " day; 0 disables the cache."
        ),
    )
    schedule_time_zone: TimeZoneName = Field(
        default="UTC",
        description="The stack's schedule time zone: reports are dated by the day in it of the "
        "time the run was scheduled for (of the start, for a fetch started by hand).",
    )
    report_max_workers: int = Field(
        default=8, ge=1, le=64, description="Concurrent SSM calls (at most 64)."
    )
    report_ssm_calls_per_second: float = Field(
        default=35.0,
        ge=SSM_CALLS_PER_SECOND_LEAST,
        le=10000,
        description=(
            "Client-side limit on SSM requests per second, retries included (SSM allows 40 by"
            " default, shared by every caller in the account and region); at least 5, as a"
            " fetch's ~1,100 calls must end within the function's timeout."
        ),
    )
