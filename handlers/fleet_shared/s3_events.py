"""S3 object-created notifications, validated into (bucket, key, ETag) records.

S3 URL-encodes object keys in its notifications (`raw/2025-06-02/a+b.json` for `a b.json`), so
the key is decoded here once, with `unquote_plus`, and every caller works with the real key.
The ETag is kept (without quotes) because it identifies the object version for idempotency: the
same key written twice with different bytes gets a different ETag and is a different request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import FleetError, RequestInProgressError
from fleet_shared.state_table import StateTable


class _S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)


class _S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str = Field(min_length=1)
    eTag: str = Field(min_length=1)  # noqa: N815 - the field name S3 uses


class _S3Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    eventSource: str = Field(pattern=r"^aws:s3$")  # noqa: N815 - the field name S3 uses
    eventName: str = Field(pattern=r"^ObjectCreated:")  # noqa: N815 - the field name S3 uses
    s3: _S3Entity


class _S3Notification(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Records: list[_S3Record] = Field(min_length=1)


@dataclass(frozen=True)
class CreatedObject:
    """One created object: its bucket, decoded key and ETag (quotes removed)."""

    bucket: str
    key: str
    etag: str

    @property
    def request_id(self) -> str:
        """The idempotency id of this object version: `<key>#<etag>`."""
        return f"{self.key}#{self.etag}"


def parse_object_created(event: object) -> list[CreatedObject]:
    """The objects of an S3 ObjectCreated notification, in record order.

    Raises `EventValidationError` naming the field (e.g. `event.Records[0].s3.object.key`) when
    the event is not such a notification.
    """
    notification = parse_event(_S3Notification, event)
    return [
        CreatedObject(
            bucket=record.s3.bucket.name,
            key=unquote_plus(record.s3.object.key),
            etag=record.s3.object.eTag.strip('"'),
        )
        for record in notification.Records
    ]


def handle_created_objects(
    event: object, handle_object: Callable[[CreatedObject], dict[str, Any]]
) -> dict[str, Any]:
    """Handle every object of a notification; one failing object does not stop the others."""
    try:
        objects = parse_object_created(event)
    except FleetError as error:
        return error_result(error)
    results = [handle_object(obj) for obj in objects]
    failed = any(result["status"] == "error" for result in results)
    return {"status": "partial" if failed else "ok", "objects": results}


def once_per_object_version(
    state: StateTable,
    scope: str,
    obj: CreatedObject,
    ttl_seconds: int,
    work: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run `work` once per (key, ETag): a redelivered notification gets the first result back."""
    try:
        with state.idempotent(scope, obj.request_id, ttl_seconds) as request:
            if request.is_repeat:
                first = request.result or {}
                return {**first, "status": "repeat", "first_status": first.get("status")}
            result = work()
            request.complete(result)
            return result
    except RequestInProgressError as error:
        return {"status": "in_progress", "key": obj.key, "detail": str(error)}
