"""S3 object-created notifications, validated into (bucket, key, ETag) records, and handled
object by object, once per object version.

The notification is validated with Powertools' `S3Model`, narrowed to what these functions rely
on: `ObjectCreated:*` records, each with the object's key, size and ETag. S3 URL-encodes object
keys in its notifications (`raw/2025-06-02/a+b.json` for `a b.json`), so the key is decoded here
once, with `unquote_plus`, and every caller works with the real key. The ETag is kept (without
quotes) because it identifies the object version for idempotency: the same key written twice
with different bytes gets a different ETag and is a different request. The version id S3 sends
for a versioned bucket (the data bucket is one) is kept too, so a function reads the version the
event names, not whatever the key holds when the event arrives.

S3 invokes the functions asynchronously: an invocation that returns is done, whatever its result
says. So an object that failed for a reason that may pass (the network, an answer that is not
its call's, a body that trickles past the invocation's time left, throttling, a busy service,
another invocation's lock) fails the invocation once every object was tried, and Lambda retries
the event (twice, then the function's dead-letter queue, whose alarm tells people); the objects
already done answer `repeat` to the retry. An object another invocation's claim holds
(`in_progress`) fails the invocation too: the holder may be an attempt that failed without
releasing the claim (DynamoDB failing as well), which nothing else would retry. An object that
cannot succeed however often it is tried (a document that does not validate, access denied)
stays an `error` result, with a warning alert: the invocation succeeds, so nothing else would
tell anyone that the object's output is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3Model, S3RecordModel
from aws_lambda_powertools.utilities.parser.models.s3 import (
    S3Bucket,
    S3Identity,
    S3Message,
    S3Object,
    S3OwnerIdentify,
    S3RequestParameters,
    S3ResponseElements,
)
from pydantic import ConfigDict, Field, NonNegativeFloat, ValidationError, model_validator

from fleet_shared.alerts import Alert, Severity
from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError, answer_field
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import (
    ObjectReadTimeoutError,
    ObjectsToRetryError,
    PagesCutShortError,
    RequestInProgressError,
)
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.later_answers import may_pass_on_retry
from fleet_shared.object_bodies import bounded_body
from fleet_shared.sessions import HUB_CALL_SECONDS, STATE_TABLE_CALL_SECONDS
from fleet_shared.state_table import ClaimDeadline, StateTable

OBJECT_FAILURES: tuple[type[Exception], ...] = (
    *AWS_CALL_ERRORS,
    ObjectReadTimeoutError,
    PagesCutShortError,
    ValidationError,
)
"""What fails one object and not the others: AWS calls (an answer that is not the call's
included, a body that did not all come or a listing that did not end in the time left) and
documents that do not validate."""
OUTCOME_SECONDS = 2 * STATE_TABLE_CALL_SECONDS
"""The time an object needs once its read is given up, to record its outcome: its claim and its
run's lock released (a state table call each, every attempt timing out at worst), so the
platform's retry finds both free and the invocation fails in time to be retried."""


class CreatedObjectModel(S3Object):
    """The object of an ObjectCreated record: S3 always sends its key, size and ETag."""

    model_config = ConfigDict(defer_build=True)

    key: str = Field(min_length=1)
    size: NonNegativeFloat
    eTag: str = Field(min_length=1)  # noqa: N815 - the field name S3 uses


class DataBucketModel(S3Bucket):
    """The bucket of a record."""

    model_config = ConfigDict(defer_build=True)

    # moto's notifications (the demo's and the tests' S3) leave the owner out; it is never read.
    ownerIdentity: S3OwnerIdentify | None = None  # noqa: N815 - the field name S3 uses


class CreatedObjectMessage(S3Message):
    """The `s3` part of an ObjectCreated record: the bucket and the created object."""

    model_config = ConfigDict(defer_build=True)

    bucket: DataBucketModel
    object: CreatedObjectModel


class CreatedObjectRecord(S3RecordModel):
    """One `ObjectCreated:*` record."""

    model_config = ConfigDict(defer_build=True)

    eventName: str = Field(pattern=r"^ObjectCreated:")  # noqa: N815 - the field name S3 uses
    # moto's notifications leave these three out; nothing here reads them.
    userIdentity: S3Identity | None = None  # noqa: N815 - the field name S3 uses
    requestParameters: S3RequestParameters | None = None  # noqa: N815 - the field name S3 uses
    responseElements: S3ResponseElements | None = None  # noqa: N815 - the field name S3 uses
    s3: CreatedObjectMessage

    @model_validator(mode="before")
    @classmethod
    def validate_s3_object(cls, values: Any) -> Any:
        """Replaces Powertools' check of the same name, which raises AttributeError (not a
        validation error) on a record without `s3` or `object`; the typed fields above require
        the size and ETag instead, and name the field that is missing."""
        return values


class ObjectCreatedNotification(S3Model):
    """An S3 notification of one or more created objects."""

    model_config = ConfigDict(defer_build=True)

    Records: list[CreatedObjectRecord] = Field(min_length=1)


@dataclass(frozen=True)
class CreatedObject:
    """One created object: its bucket, decoded key, ETag (quotes removed) and the version S3
    created (None when the bucket is not versioned: the notification then names none)."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None

    @property
    def request_id(self) -> str:
        """The idempotency id of this object version: `<key>#<etag>`."""
        return f"{self.key}#{self.etag}"


def parse_object_created(event: object) -> list[CreatedObject]:
    """The objects of an S3 ObjectCreated notification, in record order.

    Raises `EventValidationError` naming the field (e.g. `Records[0].s3.object.key`) when the
    event is not such a notification.
    """
    notification = parse_event(ObjectCreatedNotification, event)
    return [
        CreatedObject(
            bucket=record.s3.bucket.name,
            key=unquote_plus(record.s3.object.key),
            etag=record.s3.object.eTag.strip('"'),
            version_id=record.s3.object.versionId or None,
        )
        for record in notification.Records
    ]


def ignored(obj: CreatedObject, reason: str) -> dict[str, Any]:
    """The result of an object the function does not handle."""
    return {"status": "ignored", "key": obj.key, "reason": reason}


def handle_each_object(
    objects: Sequence[CreatedObject],
    work: Callable[[CreatedObject], dict[str, Any]],
    *,
    services: FunctionServices[Any],
    skip_reason: Callable[[str], str | None],
    ttl_seconds: int,
    deadline: ClaimDeadline,
    logger: Any,
    failures: tuple[type[Exception], ...] = OBJECT_FAILURES,
) -> dict[str, Any]:
    """Run `work` on every object of the data bucket, in turn, once per object version.

    Objects of other buckets, and keys `skip_reason` gives a reason for, are ignored. An object
    whose work raises one of `failures` gets an error result (logged with its key) and the
    others go on; the run is then `partial`, and a warning alert names the object and the error.
    When one of those failures may pass on a retry (`may_pass_on_retry`), or an object is
    `in_progress` under another invocation's claim, the invocation fails instead, once every
    object was tried, with `ObjectsToRetryError`: Lambda retries the event, whose objects already
    done are repeats (and whose objects failed for good are warned about by the last attempt
    only). An object's claim blocks another copy no longer than the invocation (`deadline`) can
    run, so the platform's retry of an invocation killed at its deadline does the work.
    """
    results = []
    to_retry: list[tuple[str, str]] = []
    failed_for_good: list[tuple[CreatedObject, dict[str, Any]]] = []
    for obj in objects:
        reason = (
            f"bucket {obj.bucket} is not ours"
            if obj.bucket != services.environment.data_bucket_name
            else skip_reason(obj.key)
        )
        if reason is not None:
            results.append(ignored(obj, reason))
            continue
        try:
            result = once_per_object_version(
                services.state,
                services.function_name,
                obj,
                ttl_seconds,
                partial(work, obj),
                deadline=deadline,
            )
            results.append(result)
            if result["status"] == "in_progress":
                # The claim's holder may be an attempt that failed and could not release it:
                # ending here would leave the object undone, with nothing left to retry it.
                to_retry.append((obj.key, result["detail"]))
        except failures as error:
            logger.exception("object failed", extra={"key": obj.key})
            result = error_result(error, key=obj.key)
            results.append(result)
            if may_pass_on_retry(error):
                to_retry.append((obj.key, result["error"]))
            else:
                failed_for_good.append((obj, result))
    if to_retry:
        raise ObjectsToRetryError(to_retry)
    for obj, result in failed_for_good:
        result["alert_published"] = _warn_not_handled(services, obj, result["error"], logger)
    failed = any(result["status"] == "error" for result in results)
    return {"status": "partial" if failed else "ok", "objects": results}


def _warn_not_handled(
    services: FunctionServices[Any], obj: CreatedObject, error: str, logger: Any
) -> bool:
    """Warn that `obj` failed for good: its invocation succeeds (no retry would mend it), so
    without this nothing but a log line would say that the object's output is missing. Whether
    the warning went out (SNS refusing it is logged on `logger`)."""
    location = f"s3://{obj.bucket}/{obj.key}"
    alert = Alert.create(
        severity=Severity.WARNING,
        source=services.function_name,
        title="S3 object not handled",
        detail=(
            f"{location}: {error}. Not retried, since the same calls would fail again; once the "
            "cause is fixed, writing the object again handles it."
        ),
        resource=location,
        timestamp=services.clock.now(),
    )
    return services.alerts.publish_or_log(alert, logger) is not None


def once_per_object_version(
    state: StateTable,
    scope: str,
    obj: CreatedObject,
    ttl_seconds: int,
    work: Callable[[], dict[str, Any]],
    *,
    deadline: ClaimDeadline,
) -> dict[str, Any]:
    """Run `work` once per (key, ETag): a redelivered notification gets the first result back,
    and one arriving while another copy holds the claim (at most until `deadline`) answers
    `in_progress`."""
    try:
        with state.idempotent(scope, obj.request_id, ttl_seconds, deadline=deadline) as request:
            if request.is_repeat:
                first = request.result or {}
                return {**first, "status": "repeat", "first_status": first.get("status")}
            result = work()
            request.complete(result)
            return result
    except RequestInProgressError as error:
        return {"status": "in_progress", "key": obj.key, "detail": str(error)}


def read_named_version(
    s3: Any,
    bucket: str,
    obj: CreatedObject,
    max_bytes: int,
    *,
    deadline: Invocation | None = None,
) -> tuple[bytes, str]:
    """The bytes and ETag (quotes removed) of the version `obj`'s event names (the key's only
    object when the bucket is not versioned and the event names none).

    Raises UnreadableAnswerError, which a retry may mend, for an answer that is not the
    object's: one without an ETag (S3 sends it with every object), or, for a named version,
    with another ETag than the event's. A proxy's page passes for the object's bytes
    otherwise, and a valid document would be judged, and rejected, by that page.
    Raises ObjectTooLargeError, without reading the body, for an object over `max_bytes` (by
    its length, or by the bytes it sends when the length understates them): read whole, such an
    object would take the function past its memory.
    Raises ObjectReadTimeoutError, naming the key, for a body whose bytes have not all come
    within the time `deadline` leaves once GetObject answered, less OUTCOME_SECONDS: a body that
    trickles held the invocation until Lambda ended it, and the platform, not the function,
    decided the object's outcome."""
    version = {} if obj.version_id is None else {"VersionId": obj.version_id}
    response = s3.get_object(Bucket=bucket, Key=obj.key, **version)
    etag = str(response.get("ETag") or "").strip('"')
    if not etag:
        raise UnreadableAnswerError("GetObject", "the object's ETag", response)
    if obj.version_id is not None and etag != obj.etag:
        raise UnreadableAnswerError(
            "GetObject", f"the ETag {obj.etag} the event gives version {obj.version_id}", response
        )
    seconds = body_seconds(deadline)
    return bounded_body(response, obj.key, max_bytes, etag, within_seconds=seconds), etag


def key_holds_version(s3: Any, bucket: str, obj: CreatedObject, etag: str) -> bool:
    """Whether `obj`'s key still holds the version its event names, read with `etag`: False when
    a newer version replaced it. Raises S3's ClientError (404) when the key is gone, and
    UnreadableAnswerError, which a retry may mend, for a HeadObject answer without the ETag S3
    sends with every object: a proxy's HTTP 200 has no version header either, and read as a
    newer version it would end the object `superseded`, recorded done, never handled."""
    if obj.version_id is None:
        # Without versions the key holds only its latest write: the event's when the ETags agree.
        return etag == obj.etag
    head = s3.head_object(Bucket=bucket, Key=obj.key)
    answer_field(head, "HeadObject", "ETag")
    return head.get("VersionId") == obj.version_id


def next_page_allowed(deadline: Invocation, after: float = 0.0) -> Callable[[], bool]:
    """Whether a listing in an invocation with `deadline` may ask its next page: while one hub
    call (every attempt timing out at worst), OUTCOME_SECONDS and `after` (what the caller
    still does when the listing fails) fit in its time left."""
    return lambda: deadline.allows(HUB_CALL_SECONDS + OUTCOME_SECONDS + after)


def body_seconds(deadline: Invocation | None, after: float = 0.0) -> float | None:
    """The time an object's bytes get, asked once its GetObject answered, in an invocation with
    `deadline`: its time left but for OUTCOME_SECONDS and `after` (what the caller still does
    when the read fails); None, no limit, without a deadline."""
    if deadline is None:
        return None
    return max(0.0, deadline.remaining_seconds() - OUTCOME_SECONDS - after)
