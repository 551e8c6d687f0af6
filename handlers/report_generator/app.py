"""report_generator: the availability report as Excel, JSON and CSV from a processed run.

Triggered by S3 ObjectCreated on `processed/`. For each `processed/<yyyy-mm-dd>/<run-id>.json`
named in the event (URL-decoded key) it renders `report.xlsx`, `report.json`,
`availability.json`, `pairs.csv`, `regions.csv`, `services.csv` and `matrix.csv`, puts them
under `reports/<yyyy-mm-dd>/<run-id>/` with their content types and `_manifest.json` written
last, copies them to `reports/latest/` (only forward in time), and raises an info alert listing
the keys written. See `publish.py` for why no reader ever sees half a report.

Idempotent on (object key, ETag) through the state table: a duplicate event writes nothing and
returns the first result. Other keys (not a processed run) are ignored.

Result: `{"status": "ok" | "partial", "objects": [...]}` with, per object, `status`
(`generated`, `ignored`, `repeat`, `in_progress` or `error`), the keys written and whether
`reports/latest/` moved; an event that is not an S3 notification gives
`{"status": "error", "error": ...}`.

Environment variables:
- DATA_BUCKET_NAME (required): the data bucket; records of other buckets are ignored.
- STATE_TABLE_NAME (required): idempotency records.
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_INFO_ARN (the completion alert goes here when set),
  ALERT_TOPIC_CRITICAL_ARN: alert topics.
- REPORT_IDEMPOTENCY_TTL_SECONDS: how long a generated (key, ETag) is remembered; default 604800.
FLEET_DRY_RUN does not apply: the function only writes its own reports.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, ValidationError

from fleet_shared.alerts import Alert, AlertPublisher, Severity
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import FleetError
from fleet_shared.field_types import Arn
from fleet_shared.observability import observability_for
from fleet_shared.report_documents import PROCESSED_PREFIX, ProcessedDocument, run_id_of
from fleet_shared.s3_events import (
    CreatedObject,
    handle_created_objects,
    once_per_object_version,
)
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.report_generator.publish import publish_report
from handlers.report_generator.tables import render_files

FUNCTION_NAME = "report_generator"

OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger


class GeneratorEnvironment(FunctionEnvironment):
    """The variables report_generator reads."""

    data_bucket_name: str
    state_table_name: str
    alert_topic_arn: Arn
    report_idempotency_ttl_seconds: int = Field(default=604800, gt=0)


@dataclass(frozen=True)
class GeneratorDependencies:
    """Everything a run uses from outside; tests build their own with a manual clock."""

    environment: GeneratorEnvironment
    s3: Any
    state: StateTable
    alerts: AlertPublisher
    clock: Clock
    new_attempt_id: Callable[[], str]


def build_dependencies(
    environment: GeneratorEnvironment, *, clock: Clock | None = None
) -> GeneratorDependencies:
    """Hub clients with the fleet's retry configuration."""
    clock = clock or SystemClock()
    sessions = AccountSessions.from_environment(environment, FUNCTION_NAME, clock=clock)
    return GeneratorDependencies(
        environment=environment,
        s3=sessions.hub_client("s3"),
        state=StateTable(environment.state_table_name, sessions.hub_client("dynamodb"), clock),
        alerts=AlertPublisher(sessions.hub_client("sns"), environment),
        clock=clock,
        new_attempt_id=lambda: uuid.uuid4().hex,
    )


@functools.cache
def dependencies() -> GeneratorDependencies:
    """The dependencies of this container, built on first use."""
    return build_dependencies(load_environment(GeneratorEnvironment))


def _generate(obj: CreatedObject, run_id: str, deps: GeneratorDependencies) -> dict[str, Any]:
    bucket = deps.environment.data_bucket_name
    response = deps.s3.get_object(Bucket=bucket, Key=obj.key)
    document = ProcessedDocument.model_validate_json(response["Body"].read())
    if document.metadata.run_id != run_id:
        raise ValueError(
            f"metadata.run_id {document.metadata.run_id} does not match the key's run id {run_id}"
        )
    files = render_files(document, obj.key)
    published = publish_report(
        deps.s3,
        bucket,
        run_id=run_id,
        processed_key=obj.key,
        processed_etag=str(response["ETag"]).strip('"'),
        files=files,
        attempt=deps.new_attempt_id(),
        generated_at=deps.clock.now(),
    )
    quality = document.quality
    totals = document.totals
    failing = f" (failing: {', '.join(quality.failing_rules)})" if quality.failing_rules else ""
    latest = "; reports/latest/ updated" if published.latest_updated else ""
    deps.alerts.publish(
        Alert.create(
            severity=Severity.INFO,
            source=FUNCTION_NAME,
            title=f"Availability report {run_id} ready",
            detail=(
                f"{totals.regions} regions, {totals.services} services, {totals.pairs} pairs; "
                f"quality score {quality.score}{failing}. "
                f"Keys written: {', '.join(published.keys)}{latest}"
            ),
            resource=f"s3://{bucket}/{published.prefix}",
            timestamp=deps.clock.now(),
        )
    )
    OBSERVABILITY.metrics.add_metric(name="ReportsGenerated", unit="Count", value=1)
    return {
        "status": "generated",
        "key": obj.key,
        "run_id": run_id,
        "prefix": published.prefix,
        "keys": published.keys,
        "manifest_key": published.manifest_key,
        "latest_updated": published.latest_updated,
    }


def _handle_object(obj: CreatedObject, deps: GeneratorDependencies) -> dict[str, Any]:
    environment = deps.environment
    if obj.bucket != environment.data_bucket_name:
        return {"status": "ignored", "key": obj.key, "reason": f"bucket {obj.bucket} is not ours"}
    run_id = run_id_of(obj.key, PROCESSED_PREFIX)
    if run_id is None:
        return {"status": "ignored", "key": obj.key, "reason": "not a processed run key"}
    try:
        return once_per_object_version(
            deps.state,
            FUNCTION_NAME,
            obj,
            environment.report_idempotency_ttl_seconds,
            lambda: _generate(obj, run_id, deps),
        )
    except (ClientError, BotoCoreError, ValidationError, ValueError) as error:
        logger.exception("report generation failed", extra={"key": obj.key})
        return error_result(error, key=obj.key)


def handle(event: object, deps: GeneratorDependencies) -> dict[str, Any]:
    """Generate the report of every processed object in the notification."""
    return handle_created_objects(event, lambda obj: _handle_object(obj, deps))


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: an S3 ObjectCreated notification on processed/."""
    try:
        deps = dependencies()
    except FleetError as error:
        return error_result(error)
    return handle(event, deps)
