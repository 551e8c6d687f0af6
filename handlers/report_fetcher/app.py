"""report_fetcher: the AWS region/service availability from SSM public parameters, daily.

fetch.py says what is read and written, run_claims.py how a scheduled run is fetched once.
Reference: docs/functions/report_fetcher.md.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Severity
from fleet_shared.aws_answers import call_error_text
from fleet_shared.event_parsing import error_result
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.report_alerts import publish_report_alert
from handlers.report_fetcher.environment import FetcherEnvironment
from handlers.report_fetcher.exceptions import SsmReadError
from handlers.report_fetcher.fetch import FetcherServices, run_fetch
from handlers.report_fetcher.models import FetchRequest
from handlers.report_fetcher.run_claims import fetch_run_once

FUNCTION = FleetFunction("report_fetcher", FetcherEnvironment, services=FetcherServices.create)


@FUNCTION.handler(FetchRequest)
def handle(
    request: FetchRequest, services: FetcherServices, invocation: Invocation
) -> dict[str, Any]:
    """Run one fetch, once per scheduled run (`run_claims.py`): a request without `run` fetches
    every time."""
    if request.run is None:
        return _fetch(request, services, invocation)
    return fetch_run_once(
        services,
        request.run,
        invocation,
        lambda: _fetch(request, services, invocation),
        FUNCTION.logger,
    )


def _fetch(
    request: FetchRequest, services: FetcherServices, invocation: Invocation
) -> dict[str, Any]:
    """Fetch and write the raw document; a failed SSM read (a call that fails, answers something
    that is not its answer, or would start too close to the invocation's end) writes nothing and
    raises a warning alert."""
    try:
        result = run_fetch(
            services,
            refresh=request.refresh,
            seconds_left=invocation.remaining_seconds,
            run=request.run,
        )
    except (ClientError, BotoCoreError, SsmReadError) as error:
        FUNCTION.logger.exception("fetch failed")
        published = publish_report_alert(
            services,
            FUNCTION.logger,
            severity=Severity.WARNING,
            title="Availability fetch failed",
            # Cut: a refusal's message can repeat what the endpoint was sent or answered, and
            # SNS takes no message over 256 KB.
            detail=f"No raw document was written: {call_error_text(error)}",
            resource=f"s3://{services.environment.data_bucket_name}/raw/",
        )
        return error_result(error, alert_published=published)
    metadata = result.metadata
    for warning in metadata.warnings:
        FUNCTION.logger.warning(warning)
    FUNCTION.observability.metrics.add_metric(
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


lambda_handler = FUNCTION.lambda_handler
