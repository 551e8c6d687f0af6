"""Reading raw documents, rejecting invalid ones, and finding the previous processed run.

A raw document is read in the version its event names (the data bucket is versioned), and only
while its key still holds that version: an older version's event, late or redelivered, must not
process (or reject) the newer version's bytes, which its own event processes.

The previous run is found by listing `processed/`, not through a "latest" pointer: run ids sort
in time order, so the previous run of any run is the processed run with the greatest run id
before its own (not the greatest key: a key's day is the report day, which can go back a day
when the stack's schedule time zone changes).
That stays right when an older raw document is processed again (a pointer would name a newer
run) and needs no second write that could go missing. A year of daily runs is one list page.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.exceptions import ObjectTooLargeError
from fleet_shared.handler import Invocation
from fleet_shared.object_bodies import bounded_body
from fleet_shared.processed_documents import PROCESSED_DOCUMENT_BYTES_MAX, ProcessedDocument
from fleet_shared.report_documents import PROCESSED_PREFIX, RAW_PREFIX, REJECTED_PREFIX, run_id_of
from fleet_shared.s3_events import (
    CreatedObject,
    body_seconds,
    key_holds_version,
    next_page_allowed,
)
from fleet_shared.s3_listings import listed_objects
from fleet_shared.timestamps import iso_z

REASON_BYTES_MAX = 1024 * 1024
"""The largest rejection reason object read; a larger one is not read. The processor writes a few
hundred bytes (the reason is a field and its problem): a larger object is none of its own, and
read whole, as every object was, one of any size took the function past its memory."""


def read_object(
    s3: Any, bucket: str, key: str, max_bytes: int, *, deadline: Invocation | None = None
) -> tuple[bytes, str]:
    """The object's bytes and ETag (quotes removed). Raises ObjectTooLargeError, reading no
    further, for an object over `max_bytes` (`bounded_body`), and ObjectReadTimeoutError for one
    whose bytes have not all come in `deadline`'s time left but for recording the object's
    outcome (`s3_events.body_seconds`)."""
    response = s3.get_object(Bucket=bucket, Key=key)
    etag = str(response["ETag"]).strip('"')
    seconds = body_seconds(deadline)
    return bounded_body(response, key, max_bytes, etag, within_seconds=seconds), etag


def still_current(s3: Any, bucket: str, obj: CreatedObject, etag: str) -> bool:
    """Whether the key still holds the version `obj` names, read with `etag`
    (`key_holds_version`): False when a newer version replaced it or the key was deleted since
    (rejected by an earlier attempt)."""
    try:
        return key_holds_version(s3, bucket, obj, etag)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return False
        raise


def rejected_keys(key: str) -> tuple[str, str]:
    """Where a rejected `raw/...` document goes, and its reason object."""
    relative = key[len(RAW_PREFIX) :]
    rejected = f"{REJECTED_PREFIX}{relative}"
    stem = rejected.removesuffix(".json")
    return rejected, f"{stem}.reason.json"


def reject(
    s3: Any,
    bucket: str,
    key: str,
    *,
    etag: str,
    version_id: str | None,
    reason: str,
    rejected_at: datetime,
    deadline: Invocation | None = None,
) -> tuple[str, str]:
    """Move `key` (its version `version_id`, when the bucket is versioned) to `raw/rejected/`
    and write the reason next to it; only that version leaves `raw/`.

    Order matters: copy, then the reason, then delete the original. A failure part-way leaves
    the original in place (a retry rejects it again); it never leaves the document nowhere. A
    retry that finds this version's reason already written (so its copy too) keeps both as the
    first attempt wrote them and only deletes the original. The reason already written is read
    in `deadline`'s time (`read_object`).
    """
    rejected_key, reason_key = rejected_keys(key)
    if _recorded_rejection(s3, bucket, reason_key, key, etag, deadline=deadline) is not None:
        _delete_rejected(s3, bucket, key, version_id)
        return rejected_key, reason_key
    s3.copy_object(
        Bucket=bucket,
        Key=rejected_key,
        CopySource={"Bucket": bucket, "Key": key}
        | ({} if version_id is None else {"VersionId": version_id}),
        CopySourceIfMatch=f'"{etag}"',
    )
    reason_document = {
        "key": key,
        "etag": etag,
        "rejected_key": rejected_key,
        "rejected_at": iso_z(rejected_at),
        "reason": reason,
    }
    s3.put_object(
        Bucket=bucket,
        Key=reason_key,
        Body=json.dumps(reason_document, indent=1).encode("utf-8"),
        ContentType="application/json",
    )
    _delete_rejected(s3, bucket, key, version_id)
    return rejected_key, reason_key


def _delete_rejected(s3: Any, bucket: str, key: str, version_id: str | None) -> None:
    """Delete the rejected version `version_id` of `key` (the key itself when the bucket is not
    versioned and the event named none).

    A plain delete in the versioned bucket would put a delete marker on the key: a newer version
    that landed since the version was checked would be hidden by it, and its own event would then
    find it gone (`superseded`), so it would never be processed. Deleting only the rejected
    version leaves a newer one current for its own event.
    """
    if version_id is None:
        s3.delete_object(Bucket=bucket, Key=key)
    else:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)


def _recorded_rejection(
    s3: Any, bucket: str, reason_key: str, key: str, etag: str, *, deadline: Invocation | None
) -> dict[str, Any] | None:
    """The reason document at `reason_key` when it records the rejection of `key` at `etag`
    (read in `deadline`'s time, `read_object`)."""
    try:
        body, _ = read_object(s3, bucket, reason_key, REASON_BYTES_MAX, deadline=deadline)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchKey":
            raise
        return None
    except ObjectTooLargeError:
        # Not one this function wrote: the rejection is written again, over it.
        return None
    try:
        written = json.loads(body)
    except ValueError:
        return None
    if isinstance(written, dict) and (written.get("key"), written.get("etag")) == (key, etag):
        return written
    return None


def rejection_recorded(
    s3: Any, bucket: str, key: str, etag: str, *, deadline: Invocation | None = None
) -> tuple[str, str] | None:
    """Where the version of `key` at `etag` was moved and why, when a rejection of it was
    written (its copy, then its reason, read in `deadline`'s time); else None."""
    rejected_key, reason_key = rejected_keys(key)
    written = _recorded_rejection(s3, bucket, reason_key, key, etag, deadline=deadline)
    if written is None:
        return None
    return rejected_key, str(written.get("reason"))


def previous_processed_keys(
    s3: Any, bucket: str, run_id: str, limit: int, *, deadline: Invocation | None = None
) -> list[str]:
    """The `processed/<day>/<run-id>.json` keys of the runs before `run_id`, newest first, at
    most `limit`. A next page of the listing is asked only while `deadline` leaves time for one
    and for recording the object's outcome, else PagesCutShortError (`s3_events`).

    By run id, not by key: the key's day is the report day in the schedule time zone, and after
    the stack's zone changed a later run can be dated a day before an earlier one."""
    earlier: list[tuple[str, str]] = []
    more = None if deadline is None else next_page_allowed(deadline)
    for item in listed_objects(s3, bucket, PROCESSED_PREFIX, next_page_allowed=more):
        key = item["Key"]
        listed_run_id = run_id_of(key, PROCESSED_PREFIX)
        if listed_run_id is not None and listed_run_id < run_id:
            earlier.append((listed_run_id, key))
    return [key for _, key in sorted(earlier, reverse=True)[:limit]]


def read_processed(
    s3: Any, bucket: str, key: str, *, deadline: Invocation | None = None
) -> ProcessedDocument:
    """A processed document, validated. Raises ObjectTooLargeError, reading no further, for an
    object over PROCESSED_DOCUMENT_BYTES_MAX, the most report_generator reads of one, and
    ObjectReadTimeoutError for one that trickles past `deadline`'s time (`read_object`)."""
    body, _ = read_object(s3, bucket, key, PROCESSED_DOCUMENT_BYTES_MAX, deadline=deadline)
    return ProcessedDocument.model_validate_json(body)
