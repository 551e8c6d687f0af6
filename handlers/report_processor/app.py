"""report_processor: raw availability document -> matrix, statistics, quality and changes.

Triggered by S3 ObjectCreated on `raw/` (suffix .json). For each `raw/<yyyy-mm-dd>/<run-id>.json`
named in the event (URL-decoded key) it validates the document, builds the region x service
matrix with pandas, per-region and per-service statistics, the data-quality score and the
changes since the previous processed run, and writes `processed/<yyyy-mm-dd>/<run-id>.json`
(JSON, one PUT, so it is there whole or not at all); that write triggers report_generator.

A document that fails validation (not JSON, wrong shape, counts that do not add up, a key that
does not follow the naming) is moved to `raw/rejected/` with a `.reason.json` next to it and a
warning alert is raised; nothing is written to `processed/`. Keys outside `raw/`, and
`raw/rejected/` itself (its writes trigger this function too), are ignored.

Idempotent on (object key, ETag) through the state table: the same event delivered twice
processes the object once and the repeat returns the first result.

Result: `{"status": "ok" | "partial", "objects": [...]}` with, per object, `status`
(`processed`, `rejected`, `ignored`, `repeat`, `in_progress` or `error`) and its details; an
event that is not an S3 notification gives `{"status": "error", "error": ...}`.

Environment variables:
- DATA_BUCKET_NAME (required): the data bucket; records of other buckets are ignored.
- STATE_TABLE_NAME (required): idempotency records.
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_INFO_ARN, ALERT_TOPIC_CRITICAL_ARN: alert topics.
- REPORT_COUNT_TOLERANCE_PERCENT: allowed change of the region, service and pair counts against
  the previous run before the `counts_vs_previous` rule fails; default 10.
- REPORT_IDEMPOTENCY_TTL_SECONDS: how long a processed (key, ETag) is remembered; default 604800.
FLEET_DRY_RUN does not apply: the function only writes its own data under `processed/` and
`raw/rejected/`.
"""

from __future__ import annotations

import functools
import json
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
from fleet_shared.report_documents import (
    RAW_PREFIX,
    REJECTED_PREFIX,
    SCHEMA_VERSION,
    ProcessedDocument,
    ProcessedMetadata,
    ProcessedTotals,
    RawDocument,
    processed_key,
    run_id_of,
)
from fleet_shared.s3_events import (
    CreatedObject,
    handle_created_objects,
    once_per_object_version,
)
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from fleet_shared.validation_errors import first_error
from handlers.report_processor.analysis import analyse
from handlers.report_processor.changes import changes_since
from handlers.report_processor.quality import check_quality
from handlers.report_processor.storage import (
    previous_processed_key,
    read_object,
    read_processed,
    reject,
)

FUNCTION_NAME = "report_processor"

OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger


class ProcessorEnvironment(FunctionEnvironment):
    """The variables report_processor reads."""

    data_bucket_name: str
    state_table_name: str
    alert_topic_arn: Arn
    report_count_tolerance_percent: float = Field(default=10.0, ge=0)
    report_idempotency_ttl_seconds: int = Field(default=604800, gt=0)


@dataclass(frozen=True)
class ProcessorDependencies:
    """Everything a run uses from outside; tests build their own with a manual clock."""

    environment: ProcessorEnvironment
    s3: Any
    state: StateTable
    alerts: AlertPublisher
    clock: Clock


def build_dependencies(
    environment: ProcessorEnvironment, *, clock: Clock | None = None
) -> ProcessorDependencies:
    """Hub clients with the fleet's retry configuration."""
    clock = clock or SystemClock()
    sessions = AccountSessions.from_environment(environment, FUNCTION_NAME, clock=clock)
    return ProcessorDependencies(
        environment=environment,
        s3=sessions.hub_client("s3"),
        state=StateTable(environment.state_table_name, sessions.hub_client("dynamodb"), clock),
        alerts=AlertPublisher(sessions.hub_client("sns"), environment),
        clock=clock,
    )


@functools.cache
def dependencies() -> ProcessorDependencies:
    """The dependencies of this container, built on first use."""
    return build_dependencies(load_environment(ProcessorEnvironment))


class RejectedDocumentError(Exception):
    """The raw document cannot be processed; the message is the reason recorded with it."""


def _validate(body: bytes, key: str) -> RawDocument:
    run_id = run_id_of(key, RAW_PREFIX)
    if run_id is None:
        raise RejectedDocumentError("key does not follow raw/<yyyy-mm-dd>/<run-id>.json")
    try:
        document = RawDocument.model_validate_json(body)
    except ValidationError as error:
        field, problem = first_error(error, root="document")
        raise RejectedDocumentError(f"{field}: {problem}") from None
    if document.metadata.run_id != run_id:
        raise RejectedDocumentError(
            f"metadata.run_id {document.metadata.run_id} does not match the key's run id {run_id}"
        )
    return document


def _process(obj: CreatedObject, deps: ProcessorDependencies) -> dict[str, Any]:
    environment = deps.environment
    bucket = environment.data_bucket_name
    body, etag = read_object(deps.s3, bucket, obj.key)
    try:
        raw = _validate(body, obj.key)
    except RejectedDocumentError as error:
        reason = str(error)
        rejected_key, reason_key = reject(
            deps.s3, bucket, obj.key, etag=etag, reason=reason, rejected_at=deps.clock.now()
        )
        deps.alerts.publish(
            Alert.create(
                severity=Severity.WARNING,
                source=FUNCTION_NAME,
                title="Raw availability document rejected",
                detail=f"s3://{bucket}/{obj.key} was moved to {rejected_key}: {reason}",
                resource=f"s3://{bucket}/{obj.key}",
                timestamp=deps.clock.now(),
            )
        )
        return {
            "status": "rejected",
            "key": obj.key,
            "rejected_key": rejected_key,
            "reason_key": reason_key,
            "reason": reason,
        }

    output_key = processed_key(raw.metadata.run_id)
    previous_key = previous_processed_key(deps.s3, bucket, output_key)
    previous = read_processed(deps.s3, bucket, previous_key) if previous_key else None
    analysis = analyse(raw)
    totals = ProcessedTotals(
        regions=len(raw.regions),
        services=len(raw.services),
        pairs=len(analysis.pairs),
        partitions=analysis.partitions,
    )
    quality = check_quality(
        raw,
        analysis,
        totals,
        previous.totals if previous else None,
        environment.report_count_tolerance_percent,
    )
    changes = changes_since(raw, previous)
    document = ProcessedDocument(
        schema_version=SCHEMA_VERSION,
        metadata=ProcessedMetadata(
            run_id=raw.metadata.run_id,
            raw_key=obj.key,
            raw_etag=etag,
            processed_at=deps.clock.now(),
            fetch=raw.metadata,
        ),
        totals=totals,
        regions=analysis.regions,
        services=analysis.services,
        availability=analysis.availability,
        quality=quality,
        changes=changes,
    )
    deps.s3.put_object(
        Bucket=bucket,
        Key=output_key,
        Body=json.dumps(document.model_dump(mode="json"), indent=1).encode("utf-8"),
        ContentType="application/json",
    )
    OBSERVABILITY.metrics.add_metric(name="ReportQualityScore", unit="None", value=quality.score)
    return {
        "status": "processed",
        "key": obj.key,
        "run_id": raw.metadata.run_id,
        "processed_key": output_key,
        "quality_score": quality.score,
        "failing_rules": quality.failing_rules,
        "previous_run_id": changes.previous_run_id,
        "changes": {
            "services_added": len(changes.services_added),
            "services_removed": len(changes.services_removed),
            "regions_added": len(changes.regions_added),
            "regions_removed": len(changes.regions_removed),
        },
    }


def _handle_object(obj: CreatedObject, deps: ProcessorDependencies) -> dict[str, Any]:
    environment = deps.environment
    if obj.bucket != environment.data_bucket_name:
        return {"status": "ignored", "key": obj.key, "reason": f"bucket {obj.bucket} is not ours"}
    if not obj.key.startswith(RAW_PREFIX) or obj.key.startswith(REJECTED_PREFIX):
        return {"status": "ignored", "key": obj.key, "reason": "not a raw document key"}
    try:
        return once_per_object_version(
            deps.state,
            FUNCTION_NAME,
            obj,
            environment.report_idempotency_ttl_seconds,
            lambda: _process(obj, deps),
        )
    except (ClientError, BotoCoreError, ValidationError) as error:
        logger.exception("processing failed", extra={"key": obj.key})
        return error_result(error, key=obj.key)


def handle(event: object, deps: ProcessorDependencies) -> dict[str, Any]:
    """Process every object of the notification; one failing object does not stop the others."""
    return handle_created_objects(event, lambda obj: _handle_object(obj, deps))


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: an S3 ObjectCreated notification on raw/."""
    try:
        deps = dependencies()
    except FleetError as error:
        return error_result(error)
    return handle(event, deps)
