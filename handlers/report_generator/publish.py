"""Putting a rendered report in place without ever exposing half of it.

Design (two measures, because each covers a different failure):
1. Every file is uploaded under a temporary prefix outside `reports/`
   (`tmp/reports/<run-id>/<attempt>/`), so a failure while uploading leaves nothing under
   `reports/` at all.
2. Only when all uploads succeeded are the files copied (server-side) to
   `reports/<yyyy-mm-dd>/<run-id>/`, and `_manifest.json` is written LAST. A failure during the
   copies can leave some files without a manifest: readers trust only a run whose manifest
   exists, and the manifest lists every file with its size and sha256. A run generated again
   (its processed document rewritten) loses its manifest before any file is replaced, so an
   old manifest never vouches for new files.
3. `reports/latest/` gets the same treatment: its manifest is deleted first, the files are
   copied, the manifest is written last. It is only moved forward: a run older than the one
   `latest/` holds (an old processed document replayed) does not replace it. One report at a
   time reads and replaces `latest/` (a lock in the state table, its lease extended before
   each write into `latest/`, so that S3 calls slow enough to outlast it cannot let another
   report write `latest/` between them). When `latest/` has no manifest (an update
   interrupted after deleting it) or one naming no run, the run it must not fall behind is
   the newest with a complete report of its own, found by listing `reports/`; a listing page
   that is not S3's (a proxy's, without `IsTruncated`) fails the report rather than reading as
   no complete report, which would let an older run replace `latest/`.
4. The temporary objects are deleted whatever happened, one whose upload S3 answered with an
   error included (it may have stored it first).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.exceptions import ObjectTooLargeError
from fleet_shared.handler import Invocation
from fleet_shared.object_bodies import bounded_body
from fleet_shared.report_documents import (
    MANIFEST_NAME,
    REPORTS_LATEST_PREFIX,
    REPORTS_PREFIX,
    RUN_ID_PATTERN,
    report_prefix,
)
from fleet_shared.s3_events import body_seconds, next_page_allowed
from fleet_shared.s3_listings import listed_objects
from fleet_shared.sessions import HUB_CALL_SECONDS, STATE_TABLE_CALL_SECONDS
from fleet_shared.timestamps import iso_z
from handlers.report_generator.tables import JSON_TYPE, RenderedFile

TEMPORARY_PREFIX = "tmp/reports/"
MANIFEST_BYTES_MAX = 1024 * 1024
"""The largest latest/ manifest read; a larger one is not read, as one that names no run. The
generator writes a few kB (a line per file): read whole, a manifest of any size, written by hand
or by whoever may write the bucket, took the function past its memory at every report."""
LATEST_READ_AFTER_SECONDS = HUB_CALL_SECONDS + STATE_TABLE_CALL_SECONDS
"""What a report still does when its read of latest/ (the manifest, the listing of the runs)
fails, before the object's outcome is recorded: its temporary objects deleted and the latest/
lock released, each call timing out at worst."""
_RUN_ID = re.compile(RUN_ID_PATTERN)
_RUN_MANIFEST_KEY = re.compile(
    rf"{re.escape(REPORTS_PREFIX)}\d{{4}}-\d{{2}}-\d{{2}}/(?P<run_id>{RUN_ID_PATTERN})/"
    rf"{re.escape(MANIFEST_NAME)}"
)


@dataclass(frozen=True)
class Published:
    """What was written: the run's keys (manifest last) and whether latest/ moved."""

    prefix: str
    keys: list[str]
    manifest_key: str
    latest_updated: bool


def _manifest(
    run_id: str,
    *,
    processed_key: str,
    processed_etag: str,
    prefix: str,
    files: list[RenderedFile],
    generated_at: datetime,
) -> bytes:
    document = {
        "run_id": run_id,
        "generated_at": iso_z(generated_at),
        "processed_key": processed_key,
        "processed_etag": processed_etag,
        "files": [
            {
                "name": file.name,
                "key": f"{prefix}{file.name}",
                "content_type": file.content_type,
                "bytes": len(file.body),
                "sha256": hashlib.sha256(file.body).hexdigest(),
            }
            for file in files
        ],
    }
    return json.dumps(document, indent=1).encode("utf-8")


def latest_run_id(s3: Any, bucket: str, *, deadline: Invocation | None = None) -> str | None:
    """The run latest/'s manifest names; None without one, or when it names no run (not JSON,
    not the generator's layout, a run id of another form, over MANIFEST_BYTES_MAX): the newest
    complete run decides then, as after an interrupted update, rather than every later report
    failing on it, or a run id that sorts after every real one keeping latest/ where it is for
    good. Raises ObjectReadTimeoutError for a manifest whose bytes have not all come in
    `deadline`'s time left but for LATEST_READ_AFTER_SECONDS and recording the outcome."""
    key = f"{REPORTS_LATEST_PREFIX}{MANIFEST_NAME}"
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    try:
        seconds = body_seconds(deadline, LATEST_READ_AFTER_SECONDS)
        body = bounded_body(response, key, MANIFEST_BYTES_MAX, within_seconds=seconds)
        manifest = json.loads(body)
    except (ValueError, RecursionError, ObjectTooLargeError):
        return None
    run_id = manifest.get("run_id") if isinstance(manifest, dict) else None
    return run_id if isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) else None


def _newest_complete_run_id(s3: Any, bucket: str, deadline: Invocation | None) -> str | None:
    """The greatest run id with a manifest of its own under `reports/<yyyy-mm-dd>/<run-id>/`; a
    next page of the listing only while `deadline` leaves time for one, the calls after a
    failed read (LATEST_READ_AFTER_SECONDS) and the outcome, else PagesCutShortError."""
    newest: str | None = None
    more = None if deadline is None else next_page_allowed(deadline, LATEST_READ_AFTER_SECONDS)
    for item in listed_objects(s3, bucket, REPORTS_PREFIX, next_page_allowed=more):
        match = _RUN_MANIFEST_KEY.fullmatch(item["Key"])
        if match and (newest is None or match["run_id"] > newest):
            newest = match["run_id"]
    return newest


def _copy_all(
    s3: Any,
    bucket: str,
    source_prefix: str,
    target_prefix: str,
    names: list[str],
    *,
    before_each: Callable[[], None] = lambda: None,
) -> None:
    for name in names:
        before_each()
        s3.copy_object(
            Bucket=bucket,
            Key=f"{target_prefix}{name}",
            CopySource={"Bucket": bucket, "Key": f"{source_prefix}{name}"},
        )


def _put_manifest(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=JSON_TYPE)


def publish_report(
    s3: Any,
    bucket: str,
    *,
    run_id: str,
    report_day: date,
    processed_key: str,
    processed_etag: str,
    files: list[RenderedFile],
    attempt: str,
    generated_at: datetime,
    latest_lock: Callable[[], AbstractContextManager[Callable[[], None]]],
    deadline: Invocation | None = None,
) -> Published:
    """Upload `files` as the report of `run_id`, dated `report_day` (see the module docstring
    for the order); `latest_lock()` is held while latest/ is read and replaced, and what it
    gives is called before each write into latest/: it extends the lock's lease, or raises
    `LockNotAcquiredError` when another report took the lock meanwhile. latest/ is read only
    in `deadline`'s time (`latest_run_id`, `_newest_complete_run_id`)."""
    temporary = f"{TEMPORARY_PREFIX}{run_id}/{attempt}/"
    prefix = report_prefix(run_id, report_day)
    names = [file.name for file in files]
    # Every key a put was sent for, answered or not: S3 may store an object and then answer 500,
    # or its answer be lost, and that object is deleted with the others (deleting a key S3 does
    # not hold is no error).
    sent: list[str] = []
    try:
        for file in files:
            key = f"{temporary}{file.name}"
            sent.append(key)
            s3.put_object(Bucket=bucket, Key=key, Body=file.body, ContentType=file.content_type)
        manifest_key = f"{prefix}{MANIFEST_NAME}"
        s3.delete_object(Bucket=bucket, Key=manifest_key)
        _copy_all(s3, bucket, temporary, prefix, names)
        _put_manifest(
            s3,
            bucket,
            manifest_key,
            _manifest(
                run_id,
                processed_key=processed_key,
                processed_etag=processed_etag,
                prefix=prefix,
                files=files,
                generated_at=generated_at,
            ),
        )
        # One report at a time reads and replaces latest/: two at once would mix their files
        # under one manifest, or put the older back after the newer.
        with latest_lock() as keep_lock:
            latest_run = latest_run_id(s3, bucket, deadline=deadline)
            if latest_run is None or latest_run > run_id:
                # This run's own manifest is written, so the listing finds at least this run. A
                # later run latest/ names has a complete report of its own, written before
                # latest/'s, so the listing finds it (or a newer one); a run id no run has (a
                # hand edit, `99991231T235959Z-ffffffff`) is not found, where trusted it kept
                # latest/ where it was for good.
                latest_run = _newest_complete_run_id(s3, bucket, deadline)
            latest_updated = latest_run is None or latest_run <= run_id
            if latest_updated:
                # The lease is extended before each write: calls slow enough to outlast it
                # would otherwise let another report replace latest/ between them.
                keep_lock()
                s3.delete_object(Bucket=bucket, Key=f"{REPORTS_LATEST_PREFIX}{MANIFEST_NAME}")
                _copy_all(
                    s3, bucket, temporary, REPORTS_LATEST_PREFIX, names, before_each=keep_lock
                )
                keep_lock()
                _put_manifest(
                    s3,
                    bucket,
                    f"{REPORTS_LATEST_PREFIX}{MANIFEST_NAME}",
                    _manifest(
                        run_id,
                        processed_key=processed_key,
                        processed_etag=processed_etag,
                        prefix=REPORTS_LATEST_PREFIX,
                        files=files,
                        generated_at=generated_at,
                    ),
                )
    finally:
        if sent:
            s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in sent], "Quiet": True},
            )
    return Published(
        prefix=prefix,
        keys=[f"{prefix}{name}" for name in names] + [manifest_key],
        manifest_key=manifest_key,
        latest_updated=latest_updated,
    )
