"""The availability report of one processed run: rendered, published, announced.

For each `processed/<yyyy-mm-dd>/<run-id>.json` it renders `report.xlsx`, `report.json`,
`availability.json`, `pairs.csv`, `regions.csv`, `services.csv` and `matrix.csv` (`tables.py`,
`workbook.py`), puts them under `reports/<yyyy-mm-dd>/<run-id>/` with their content types and
`_manifest.json` written last, copies them to `reports/latest/` (only forward in time), and
raises an info alert listing the keys written. See `publish.py` for why no reader ever sees half
a report. Other keys (not a processed run) are not reports to generate. The alert goes out once
per run (a claim in the state table), however many versions of its processed document arrive.

The report is keyed by run, not by version: it is rendered from the version the event names
(`VersionId`), and only while the key still holds that version. An older version (two versions in
one notification, or an event S3 delivers late or again) is `superseded`: the newer version's own
event renders the run, so an older one never replaces its report.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fleet_shared.alerts import Severity
from fleet_shared.exceptions import LockNotAcquiredError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.processed_documents import PROCESSED_DOCUMENT_BYTES_MAX, ProcessedDocument
from fleet_shared.report_alerts import publish_report_alert
from fleet_shared.report_documents import PROCESSED_PREFIX, run_id_of
from fleet_shared.s3_events import CreatedObject, key_holds_version, read_named_version
from fleet_shared.state_table import ClaimDeadline
from handlers.report_generator.environment import GeneratorEnvironment
from handlers.report_generator.publish import Published, publish_report
from handlers.report_generator.tables import render_files

GeneratorServices = FunctionServices[GeneratorEnvironment]

LATEST_LOCK_NAME = "report_generator/latest"
LATEST_LOCK_SECONDS = 120
"""The lease of the latest/ lock: far longer than replacing latest/'s files takes, and never
past the invocation's end (see `generate_report`)."""
LATEST_LOCK_WAIT_SECONDS = 30.0
"""How long a report waits for another report's update of latest/; then the invocation fails (its
own report stands, complete) and Lambda's retry updates latest/."""
RUN_LOCK_PREFIX = "report_generator/run/"
"""The lock of one run's report, followed by the run id: one version of a run at a time is read,
checked and published."""
RUN_LOCK_SECONDS = 900
"""The lease of a run's lock: Lambda's longest invocation, so capped by the invocation's deadline
(see `generate_report`) it lasts until the holder ends at most."""
RUN_LOCK_WAIT_SECONDS = 60.0
"""How long a version waits for another version of its run being published (rendering and
copying take seconds); then the invocation fails and Lambda retries the event."""
ANNOUNCED_CLAIM_PREFIX = "report_generator/announced/"
"""The once-only claim of a run's report-ready alert, followed by the run id."""


def _announce(
    document: ProcessedDocument, published: Published, services: GeneratorServices, logger: Any
) -> bool:
    """Publish the run's report-ready alert unless one was already sent for this run: another
    version of its processed document (a reprocessing, or two versions in one notification) is
    generated again but not announced again. Whether an alert went out."""
    if not services.state.claim_once(
        f"{ANNOUNCED_CLAIM_PREFIX}{document.metadata.run_id}",
        services.environment.report_idempotency_ttl_seconds,
    ):
        return False
    quality = document.quality
    totals = document.totals
    failing = f" (failing: {', '.join(quality.failing_rules)})" if quality.failing_rules else ""
    latest = "; reports/latest/ updated" if published.latest_updated else ""
    return publish_report_alert(
        services,
        logger,
        severity=Severity.INFO,
        title=f"Availability report {document.metadata.run_id} ready",
        detail=(
            f"{totals.regions} regions, {totals.services} services, {totals.pairs} pairs; "
            f"quality score {quality.score}{failing}. "
            f"Keys written: {', '.join(published.keys)}{latest}"
        ),
        resource=f"s3://{services.environment.data_bucket_name}/{published.prefix}",
    )


@contextmanager
def _latest_lock(
    services: GeneratorServices, deadline: ClaimDeadline
) -> Iterator[Callable[[], None]]:
    """Hold the latest/ lock, leased no longer than the invocation can run; gives what extends
    the lease (as long again, within the invocation), raising `LockNotAcquiredError` once another
    report took the lock."""
    owner = uuid.uuid4().hex
    with services.state.lock(
        LATEST_LOCK_NAME,
        owner,
        LATEST_LOCK_SECONDS,
        wait_seconds=LATEST_LOCK_WAIT_SECONDS,
        deadline=deadline,
    ):

        def keep_lock() -> None:
            lease = deadline.claim_seconds(LATEST_LOCK_SECONDS)
            if not services.state.renew_lock(LATEST_LOCK_NAME, owner, lease):
                raise LockNotAcquiredError(LATEST_LOCK_NAME, None, None)

        yield keep_lock


def not_a_processed_run(key: str) -> str | None:
    """Why `key` gets no report (not `processed/<yyyy-mm-dd>/<run-id>.json`), or None."""
    return None if run_id_of(key, PROCESSED_PREFIX) else "not a processed run key"


def generate_report(
    obj: CreatedObject, services: GeneratorServices, logger: Any, deadline: Invocation
) -> dict[str, Any]:
    """Render and publish the report of the processed run `obj` from the version its event
    names, unless the key holds a newer one (`superseded`, nothing written).

    One version of a run at a time is read, checked and published (a lock per run): two
    versions published at once would mix their files under one manifest, or put the older one
    back after the newer one was checked and published. The run's lock and the latest/ lock are
    leased no longer than the invocation (`deadline`) can run: one killed at its deadline while
    replacing latest/ (its manifest already deleted) leaves both free for the platform's retry,
    which then completes latest/, instead of failing on a dead lease. The document's bytes are
    given up once they have not all come in the time left but for recording the outcome
    (`read_named_version`).
    Raises ValueError when the document's run id is not the key's, ObjectTooLargeError for a
    document over `PROCESSED_DOCUMENT_BYTES_MAX`; `logger` records an alert SNS refused.
    """
    bucket = services.environment.data_bucket_name
    s3 = services.hub_client("s3")
    key_run_id = run_id_of(obj.key, PROCESSED_PREFIX)
    with services.state.lock(
        f"{RUN_LOCK_PREFIX}{key_run_id}",
        uuid.uuid4().hex,
        RUN_LOCK_SECONDS,
        wait_seconds=RUN_LOCK_WAIT_SECONDS,
        deadline=deadline,
    ):
        body, etag = read_named_version(
            s3, bucket, obj, PROCESSED_DOCUMENT_BYTES_MAX, deadline=deadline
        )
        if not key_holds_version(s3, bucket, obj, etag):
            return {
                "status": "superseded",
                "key": obj.key,
                "run_id": key_run_id,
                "version_id": obj.version_id,
                "reason": "the key holds a newer version, which its own event renders",
            }
        document = ProcessedDocument.model_validate_json(body)
        run_id = document.metadata.run_id
        if run_id != key_run_id:
            raise ValueError(
                f"metadata.run_id {run_id} does not match the key's run id {key_run_id}"
            )
        published = publish_report(
            s3,
            bucket,
            run_id=run_id,
            report_day=document.metadata.fetch.dated,
            processed_key=obj.key,
            processed_etag=etag,
            files=render_files(document, obj.key),
            attempt=uuid.uuid4().hex,
            generated_at=services.clock.now(),
            latest_lock=lambda: _latest_lock(services, deadline),
            deadline=deadline,
        )
    return {
        "status": "generated",
        "key": obj.key,
        "run_id": run_id,
        "prefix": published.prefix,
        "keys": published.keys,
        "manifest_key": published.manifest_key,
        "latest_updated": published.latest_updated,
        "alert_published": _announce(document, published, services, logger),
    }
