"""One raw availability document -> one processed document, or a rejected one.

For each `raw/<yyyy-mm-dd>/<run-id>.json` it validates the document, builds the region x service
matrix with pandas, per-region and per-service statistics (`analysis.py`), the data-quality score
(`quality.py`) and the changes since the previous processed run (`changes.py`), and writes
`processed/<yyyy-mm-dd>/<run-id>.json` (JSON, one PUT, so it is there whole or not at all); that
write triggers report_generator. A processed document already written from the same raw version
(by an invocation killed before it recorded its work done) is kept, not written again.

A document that fails validation (not JSON, wrong shape, counts that do not add up, a key that
does not follow the naming, a run id or report day that is not the key's, more regions or
region x service cells than its report can be rendered with, a processed document larger than
report_generator reads) is moved to `raw/rejected/` with a `.reason.json` next to it and a
warning alert is raised; nothing is written to `processed/`. Keys outside `raw/`, and
`raw/rejected/` itself (its writes trigger this function too), are not raw documents.

The document is read in the version its event names (`VersionId`), and only while its key still
holds that version; an older version (two versions in one notification, an event S3 delivers late
or again) is `superseded` and writes nothing: the newer version's own event processes the run.
One version of a run at a time is read, checked and written (a lock per run), so an older version
checked just before a newer one landed cannot write its document over the newer one's.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from fleet_shared.alerts import Severity
from fleet_shared.exceptions import ObjectTooLargeError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.processed_documents import (
    MATRIX_REGIONS_MAX,
    PROCESSED_DOCUMENT_BYTES_MAX,
    ProcessedDocument,
    ProcessedMetadata,
    ProcessedTotals,
    matrix_too_large,
)
from fleet_shared.report_alerts import publish_report_alert
from fleet_shared.report_documents import (
    RAW_DOCUMENT_BYTES_MAX,
    RAW_PREFIX,
    REJECTED_PREFIX,
    SCHEMA_VERSION,
    RawDocument,
    processed_key,
    run_id_of,
)
from fleet_shared.s3_events import CreatedObject, read_named_version
from fleet_shared.validation_errors import first_error
from handlers.report_processor.analysis import analyse
from handlers.report_processor.changes import changes_since
from handlers.report_processor.environment import ProcessorEnvironment
from handlers.report_processor.exceptions import RejectedDocumentError
from handlers.report_processor.quality import check_quality
from handlers.report_processor.storage import (
    previous_processed_keys,
    read_processed,
    reject,
    rejected_keys,
    rejection_recorded,
    still_current,
)

ProcessorServices = FunctionServices[ProcessorEnvironment]
PREVIOUS_RUNS_TRIED = 10
"""Earlier processed runs tried, newest first, for one that can be read: one bad object must not
stop every later run, and a prefix full of them must not make a run slow."""
RUN_LOCK_PREFIX = "report_processor/run/"
"""The lock of one run's raw document, followed by the run id (the key when it names none)."""
RUN_LOCK_SECONDS = 900
"""The lease of a run's lock: Lambda's longest invocation, so capped by the invocation's deadline
(see `process_raw_document`) it lasts until the holder ends at most."""
RUN_LOCK_WAIT_SECONDS = 60.0
"""How long a version waits for another version of its run being processed (seconds of work);
then the invocation fails and Lambda retries the event."""
GONE_CODES = frozenset({"NoSuchVersion", "NoSuchKey"})
"""What S3 answers for a version (or, without versioning, a key) no longer there."""


def not_a_raw_document(key: str) -> str | None:
    """Why `key` is not processed (outside `raw/`, or under `raw/rejected/`), or None."""
    if key.startswith(RAW_PREFIX) and not key.startswith(REJECTED_PREFIX):
        return None
    return "not a raw document key"


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
    if len(document.regions) > MATRIX_REGIONS_MAX:
        raise RejectedDocumentError(
            f"regions: {len(document.regions)} listed, more than the {MATRIX_REGIONS_MAX} the "
            "report's workbook has columns for"
        )
    too_large = matrix_too_large(len(document.regions), len(document.services))
    if too_large is not None:
        raise RejectedDocumentError(f"services: {too_large}")
    # The processed document and the report are filed under the document's day: another day
    # than the key's parts the run's artefacts, or files them where no run is looked for.
    key_day = key[len(RAW_PREFIX) :].split("/", 1)[0]
    if document.metadata.dated.isoformat() != key_day:
        raise RejectedDocumentError(
            f"metadata.report_day {document.metadata.dated} does not match the key's day {key_day}"
        )
    return document


def _previous_run(
    s3: Any, bucket: str, run_id: str, logger: Any, deadline: Invocation
) -> tuple[ProcessedDocument | None, list[dict[str, str]]]:
    """The newest processed run before `run_id` that can be read (None: none among the
    PREVIOUS_RUNS_TRIED newest), and the newer ones skipped, each with why. One whose bytes
    trickle past `deadline`'s time raises ObjectReadTimeoutError (and a listing whose pages do
    not end in it PagesCutShortError): skipped, it would compare the run with an older run than
    its previous one, where a retry compares it with that one."""
    skipped: list[dict[str, str]] = []
    for key in previous_processed_keys(s3, bucket, run_id, PREVIOUS_RUNS_TRIED, deadline=deadline):
        try:
            return read_processed(s3, bucket, key, deadline=deadline), skipped
        except ValidationError as error:
            field, problem = first_error(error, root="document")
            reason = f"{field}: {problem}"
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchKey":
                raise
            reason = "deleted since it was listed"
        except ObjectTooLargeError as error:
            reason = (
                f"{error.size:,} bytes or more, more than the {error.limit:,} a processed "
                "document may have; not read"
            )
        skipped.append({"key": key, "reason": reason})
        logger.warning("previous processed run skipped", extra={"key": key, "reason": reason})
    return None, skipped


def _written_from_this_version(
    s3: Any, bucket: str, output_key: str, raw_key: str, raw_etag: str, *, deadline: Invocation
) -> ProcessedDocument | None:
    """The processed document already at `output_key` when it was made from this very raw
    version, else None.

    An invocation killed after its write but before its idempotency record was completed is
    retried by the platform: writing again would make a second version of the processed
    document, a second notification, and the report generated (and announced) again.
    """
    try:
        written = read_processed(s3, bucket, output_key, deadline=deadline)
    except (ValidationError, ObjectTooLargeError):
        return None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchKey":
            raise
        return None
    metadata = written.metadata
    return written if (metadata.raw_key, metadata.raw_etag) == (raw_key, raw_etag) else None


def _reject(
    obj: CreatedObject,
    etag: str,
    reason: str,
    *,
    services: ProcessorServices,
    logger: Any,
    deadline: Invocation,
) -> dict[str, Any]:
    rejected_key, _ = reject(
        services.hub_client("s3"),
        services.environment.data_bucket_name,
        obj.key,
        etag=etag,
        version_id=obj.version_id,
        reason=reason,
        rejected_at=services.clock.now(),
        deadline=deadline,
    )
    return _rejected(obj, rejected_key, reason, services=services, logger=logger)


def _rejected(
    obj: CreatedObject,
    rejected_key: str,
    reason: str,
    *,
    services: ProcessorServices,
    logger: Any,
) -> dict[str, Any]:
    """The result of `obj` moved to `rejected_key`, with its warning (the same alert id from
    every attempt: the router drops a copy a retry sends again)."""
    bucket = services.environment.data_bucket_name
    published = publish_report_alert(
        services,
        logger,
        severity=Severity.WARNING,
        title="Raw availability document rejected",
        detail=f"s3://{bucket}/{obj.key} was moved to {rejected_key}: {reason}",
        resource=f"s3://{bucket}/{obj.key}",
    )
    return {
        "status": "rejected",
        "key": obj.key,
        "rejected_key": rejected_key,
        "reason_key": rejected_keys(obj.key)[1],
        "reason": reason,
        "alert_published": published,
    }


def _rejected_before(
    obj: CreatedObject, services: ProcessorServices, logger: Any, deadline: Invocation
) -> dict[str, Any] | None:
    """The result of the version `obj` names when an earlier attempt rejected it (the reason
    next to the rejected copy names this key and ETag), else None: that attempt moved it out of
    raw/ and then failed (its done record refused, say), and its retry finds the version gone."""
    recorded = rejection_recorded(
        services.hub_client("s3"),
        services.environment.data_bucket_name,
        obj.key,
        obj.etag,
        deadline=deadline,
    )
    if recorded is None:
        return None
    rejected_key, reason = recorded
    return _rejected(obj, rejected_key, reason, services=services, logger=logger)


def process_raw_document(
    obj: CreatedObject, services: ProcessorServices, logger: Any, deadline: Invocation
) -> dict[str, Any]:
    """Process (or reject) the raw document `obj` in the version its event names, unless its key
    no longer holds that version (`superseded`, nothing written); `logger` records an alert SNS
    refused. The run's lock is leased no longer than the invocation (`deadline`) can run, counted
    when it is taken after waiting for another version, so the platform's retry of an invocation
    killed holding it is not refused; the document's bytes are given up once they have not all
    come in the time left but for recording the outcome (`read_named_version`)."""
    with services.state.lock(
        f"{RUN_LOCK_PREFIX}{run_id_of(obj.key, RAW_PREFIX) or obj.key}",
        uuid.uuid4().hex,
        RUN_LOCK_SECONDS,
        wait_seconds=RUN_LOCK_WAIT_SECONDS,
        deadline=deadline,
    ):
        return _process_named_version(obj, services, logger, deadline)


def _process_named_version(
    obj: CreatedObject, services: ProcessorServices, logger: Any, deadline: Invocation
) -> dict[str, Any]:
    environment = services.environment
    bucket = environment.data_bucket_name
    s3 = services.hub_client("s3")
    too_large: ObjectTooLargeError | None = None
    try:
        body, etag = read_named_version(s3, bucket, obj, RAW_DOCUMENT_BYTES_MAX, deadline=deadline)
    except ClientError as error:
        rejected = None
        if error.response.get("Error", {}).get("Code") in GONE_CODES:
            rejected = _rejected_before(obj, services, logger, deadline)
        if rejected is None:
            raise
        return rejected
    except ObjectTooLargeError as error:
        body, etag, too_large = b"", error.etag, error
    if not still_current(s3, bucket, obj, etag):
        return {
            "status": "superseded",
            "key": obj.key,
            "version_id": obj.version_id,
            "reason": "the key no longer holds this version; a newer one is processed by its event",
        }
    if too_large is not None:
        reason = (
            f"document: {too_large.size:,} bytes or more, more than the {too_large.limit:,} a "
            "raw document may have"
        )
        return _reject(obj, etag, reason, services=services, logger=logger, deadline=deadline)
    try:
        raw = _validate(body, obj.key)
    except RejectedDocumentError as error:
        return _reject(obj, etag, str(error), services=services, logger=logger, deadline=deadline)

    output_key = processed_key(raw.metadata.run_id, raw.metadata.dated)
    previous, skipped_previous = _previous_run(s3, bucket, raw.metadata.run_id, logger, deadline)
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
            processed_at=services.clock.now(),
            fetch=raw.metadata,
        ),
        totals=totals,
        regions=analysis.regions,
        services=analysis.services,
        availability=analysis.availability,
        quality=quality,
        changes=changes,
    )
    written = _written_from_this_version(s3, bucket, output_key, obj.key, etag, deadline=deadline)
    if written is None:
        processed_bytes = json.dumps(document.model_dump(mode="json"), indent=1).encode("utf-8")
        if len(processed_bytes) > PROCESSED_DOCUMENT_BYTES_MAX:
            # report_generator would fail on it unread, at every retry: the raw document is
            # refused here instead, where its rejection says why.
            reason = (
                f"processed document: {len(processed_bytes):,} bytes, more than the "
                f"{PROCESSED_DOCUMENT_BYTES_MAX:,} report_generator reads of one"
            )
            return _reject(obj, etag, reason, services=services, logger=logger, deadline=deadline)
        s3.put_object(
            Bucket=bucket, Key=output_key, Body=processed_bytes, ContentType="application/json"
        )
    else:
        document = written
    quality, changes = document.quality, document.changes
    return {
        "status": "processed",
        "key": obj.key,
        "run_id": raw.metadata.run_id,
        "processed_key": output_key,
        "quality_score": quality.score,
        "failing_rules": quality.failing_rules,
        "previous_run_id": changes.previous_run_id,
        "skipped_previous_runs": skipped_previous,
        "changes": {
            "services_added": len(changes.services_added),
            "services_removed": len(changes.services_removed),
            "regions_added": len(changes.regions_added),
            "regions_removed": len(changes.regions_removed),
        },
    }
