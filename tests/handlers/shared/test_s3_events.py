"""S3 ObjectCreated notifications: the example events, moto's real notifications and URL-encoded
keys all parse into the objects the report functions handle; which failures of an object are
worth Lambda's retry of the event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    IncompleteReadError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.parsers import ResponseParserError

from fleet_shared.aws_answers import UnreadableAnswerError
from fleet_shared.exceptions import ObjectTooLargeError
from fleet_shared.foreign_answers import ForeignAnswerError
from fleet_shared.later_answers import may_pass_on_retry
from fleet_shared.s3_events import (
    CreatedObject,
    key_holds_version,
    parse_object_created,
    read_named_version,
)
from tests.handlers.faults import answer_malformed
from tests.handlers.report_pipeline.support import BUCKET, REGION, create_bucket, s3_event

EXAMPLES = sorted(
    path
    for function in ("report_processor", "report_generator")
    for path in (Path(__file__).parents[3] / "events" / function).glob("*.json")
)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_example_events_are_complete_s3_notifications(path: Path) -> None:
    # GIVEN an example event under events/
    event = json.loads(path.read_text())
    # WHEN it is parsed THEN Powertools' own S3Model accepts it as it stands
    S3Model.model_validate(event)
    # AND it names one created object of the data bucket, with its ETag
    [created] = parse_object_created(event)
    assert created.bucket == "lambda-fleet-data"
    assert created.key.endswith(".json") and len(created.etag) == 32


def test_a_notification_moto_sends_for_a_written_object_is_parsed(mocked_aws: None) -> None:
    # GIVEN the data bucket notifying a queue of created objects, as the demo configures it
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    create_bucket(s3)
    queue_url = sqs.create_queue(QueueName="bucket-events")["QueueUrl"]
    queue = {"QueueArn": f"arn:aws:sqs:{REGION}:123456789012:bucket-events"}
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [queue | {"Events": ["s3:ObjectCreated:*"]}]
        },
    )
    # WHEN an object with a space in its key is written
    key = "raw/2025-06-02/a b.json"
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")["ETag"]
    bodies = [
        json.loads(message["Body"])
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    notification: Any = next(body for body in bodies if "Records" in body)
    # THEN the notification moto sent parses into the real key and the unquoted ETag
    assert parse_object_created(notification) == [
        CreatedObject(bucket=BUCKET, key=key, etag=etag.strip('"'))
    ]


def test_event_keys_are_url_decoded_and_etags_unquoted() -> None:
    # GIVEN a key S3 encoded (space as +, = as %3D) and a quoted ETag
    event = s3_event(BUCKET, "raw/a b=c.json", '"abc"')
    assert event["Records"][0]["s3"]["object"]["key"] == "raw/a+b%3Dc.json"
    event["Records"][0]["s3"]["object"]["eTag"] = '"abc"'
    # WHEN parsed THEN the real key and the bare ETag come back
    [created] = parse_object_created(event)
    assert (created.key, created.etag) == ("raw/a b=c.json", "abc")


def client_error(code: str, status: int) -> ClientError:
    """The error botocore raises for an AWS answer `code` with HTTP `status`."""
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def failure_name(error: Exception) -> str:
    """The AWS error code of `error`, or its type's name."""
    code = error.response["Error"]["Code"] if isinstance(error, ClientError) else None
    return str(code or type(error).__name__)


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://s3"),
        ConnectionClosedError(endpoint_url="https://s3"),
        ReadTimeoutError(endpoint_url="https://s3"),
        ResponseStreamingError(error="connection reset"),
        IncompleteReadError(actual_bytes=10, expected_bytes=20),
        ForeignAnswerError(operation="GetObject", how="an HTML page", shown="'<html>'"),
        ResponseParserError("Unable to parse response, invalid XML received"),
        UnreadableAnswerError("ListObjectsV2", "IsTruncated", {"html": "gateway"}),
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
        client_error("RequestTimeout", 400),
        client_error("ThrottlingException", 400),
    ],
    ids=failure_name,
)
def test_a_failure_of_the_network_throttling_or_the_service_may_pass_on_retry(
    error: Exception,
) -> None:
    # GIVEN a failure botocore's own retries did not get past (no answer, a cut or short body, an
    # answer that is not the call's, a throttled or 5xx answer) WHEN classified THEN Lambda's
    # retry of the event may get through
    assert may_pass_on_retry(error)


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDenied", 403),
        client_error("NoSuchKey", 404),
        client_error("NoSuchVersion", 404),
        client_error("PreconditionFailed", 412),
        ParamValidationError(report="bad parameter"),
        ValueError("metadata.run_id does not match the key"),
    ],
    ids=failure_name,
)
def test_a_refusal_or_a_bad_document_does_not_pass_on_retry(error: Exception) -> None:
    # GIVEN a failure the same calls would meet again (refused, missing, invalid) WHEN classified
    # THEN no retry is asked for: the object stays an error with a warning
    assert not may_pass_on_retry(error)


def _created(s3: Any, key: str, body: bytes) -> CreatedObject:
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
    return CreatedObject(bucket=BUCKET, key=key, etag=etag)


def test_an_object_at_the_size_limit_is_read_whole(mocked_aws: None) -> None:
    # GIVEN an object of exactly the reader's limit
    s3 = boto3.client("s3", region_name=REGION)
    create_bucket(s3)
    created = _created(s3, "raw/a.json", b"x" * 100)
    # WHEN it is read THEN its bytes and ETag come back
    assert read_named_version(s3, BUCKET, created, 100) == (b"x" * 100, created.etag)


def test_an_object_over_the_size_limit_is_refused_by_its_length_unread(mocked_aws: None) -> None:
    # GIVEN an object one byte over the reader's limit
    s3 = boto3.client("s3", region_name=REGION)
    create_bucket(s3)
    created = _created(s3, "raw/a.json", b"x" * 101)
    # WHEN it is read
    # THEN it is refused naming its size and the limit, with the ETag read (to reject it by)
    with pytest.raises(ObjectTooLargeError, match="101 bytes or more, more than the 100") as error:
        read_named_version(s3, BUCKET, created, 100)
    assert (error.value.size, error.value.etag) == (101, created.etag)


def test_an_answer_without_a_length_is_refused_once_its_bytes_pass_the_limit(
    mocked_aws: None,
) -> None:
    # GIVEN an answer with the object's ETag but no Content-Length (a proxy streaming chunked)
    # whose body is far over the reader's limit
    s3 = boto3.client("s3", region_name=REGION)
    create_bucket(s3)
    created = _created(s3, "raw/a.json", b"{}")
    answer_malformed(s3, "s3", "GetObject", b"y" * 10_000, etag=f'"{created.etag}"')
    # WHEN it is read
    # THEN it is refused once one byte past the limit came in, the rest left unread
    with pytest.raises(ObjectTooLargeError) as error:
        read_named_version(s3, BUCKET, created, 100)
    assert error.value.size == 101


def test_an_answer_cut_short_of_its_length_fails_as_a_read_a_retry_may_mend(
    mocked_aws: None,
) -> None:
    # GIVEN an answer with the object's ETag whose body stops before the length it announced
    s3 = boto3.client("s3", region_name=REGION)
    create_bucket(s3)
    created = _created(s3, "raw/a.json", b"x" * 20)
    answer_malformed(s3, "s3", "GetObject", b"x" * 10, etag=f'"{created.etag}"', content_length=20)
    # WHEN it is read THEN botocore's check of the length fails it, as one worth a retry
    with pytest.raises(IncompleteReadError) as error:
        read_named_version(s3, BUCKET, created, 100)
    assert may_pass_on_retry(error.value)


def test_a_version_check_answered_without_s3s_etag_is_a_failure_worth_a_retry(
    mocked_aws: None,
) -> None:
    # GIVEN an object of a versioned bucket, the version its event names still the key's
    s3 = boto3.client("s3", region_name=REGION)
    create_bucket(s3)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    written = s3.put_object(Bucket=BUCKET, Key="processed/a.json", Body=b"{}")
    etag = written["ETag"].strip('"')
    created = CreatedObject(BUCKET, "processed/a.json", etag, written["VersionId"])
    assert key_holds_version(s3, BUCKET, created, etag)
    # WHEN its check (a HEAD) is answered by a proxy: HTTP 200 without S3's ETag and version
    answer_malformed(s3, "s3", "HeadObject", b"")
    # THEN it is refused as an answer that is not S3's, a failure worth Lambda's retry, not read
    # as a newer version (which ended the object `superseded`, done, never handled)
    with pytest.raises(UnreadableAnswerError, match="HeadObject answered without ETag") as error:
        key_holds_version(s3, BUCKET, created, etag)
    assert may_pass_on_retry(error.value)
