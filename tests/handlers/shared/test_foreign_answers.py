"""fleet_shared.foreign_answers: a JSON-protocol answer is refused as a gateway's page only when
its body is markup, whatever its Content-Type says; an S3 answer the fleet reads is refused
without the root element S3 sends, and the others (an object's stream) are never read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.model import OperationModel

from fleet_shared.foreign_answers import (
    S3_ANSWER_ROOTS,
    S3_BODILESS_ANSWERS,
    ForeignAnswerError,
    refuse_foreign_answer,
)
from fleet_shared.sessions import AccountSessions

REGION = "ap-south-1"
MOTO_ACCOUNT = "123456789012"


def create_schedule() -> OperationModel:
    client = boto3.client("scheduler", region_name="ap-south-1")
    return client.meta.service_model.operation_model("CreateSchedule")


def answer(body: bytes, content_type: str) -> dict[str, object]:
    return {"status_code": 200, "headers": {"Content-Type": content_type}, "body": body}


def test_a_json_answer_labelled_text_html_is_read_as_json() -> None:
    # GIVEN Scheduler's CreateSchedule answered with its JSON, labelled text/html as moto's
    # server labels it
    response = answer(
        b'{"ScheduleArn": "arn:aws:scheduler:ap-south-1:1:schedule/d/s"}', "text/html"
    )
    # WHEN the answer is checked before parsing
    # THEN it is left to botocore's parser
    assert refuse_foreign_answer(response, create_schedule()) is None


def test_a_gateway_page_labelled_text_html_is_refused_naming_the_operation() -> None:
    # GIVEN the same call answered with a gateway's own page
    response = answer(b"  <html><body>502 Bad Gateway</body></html>", "text/html; charset=utf-8")
    # WHEN the answer is checked before parsing
    # THEN it is refused, naming the operation and showing the start of the page
    with pytest.raises(ForeignAnswerError, match=r"CreateSchedule answered with text/html.*502"):
        refuse_foreign_answer(response, create_schedule())


def s3_operation(name: str) -> OperationModel:
    client = boto3.client("s3", region_name="ap-south-1")
    return client.meta.service_model.operation_model(name)


def s3_answer(body: object) -> dict[str, object]:
    return {"status_code": 200, "headers": {"Content-Type": "application/xml"}, "body": body}


@pytest.mark.parametrize(("operation", "roots"), sorted(S3_ANSWER_ROOTS.items()))
def test_an_s3_answer_with_another_root_is_refused_naming_the_operation_and_its_root(
    operation: str, roots: tuple[str, ...]
) -> None:
    # GIVEN an S3 call the fleet reads answered with a proxy's well-formed XHTML page (HTTP 200)
    page = s3_answer(b'<?xml version="1.0"?>\n<html><body>Bad gateway</body></html>')
    # WHEN the answer is checked before parsing
    # THEN it is refused, naming the operation, the root S3 sends and the start of the page
    with pytest.raises(
        ForeignAnswerError,
        match=rf"^Unable to parse response: {operation} answered without "
        rf"<{roots[0]}>, not its answer: .*<html>",
    ):
        refuse_foreign_answer(page, s3_operation(operation))


def test_an_empty_versioning_answer_is_refused_as_no_answer_of_s3() -> None:
    # GIVEN GetBucketVersioning answered with HTTP 200 and no body, where S3 sends at least an
    # empty <VersioningConfiguration/> (a bucket never versioned)
    # WHEN the answer is checked before parsing
    # THEN it is refused, not read as versioning never enabled
    with pytest.raises(ForeignAnswerError, match=r"without <VersioningConfiguration>"):
        refuse_foreign_answer(s3_answer(b""), s3_operation("GetBucketVersioning"))


def test_a_never_versioned_buckets_answer_as_s3_sends_it_passes() -> None:
    # GIVEN GetBucketVersioning answered as S3 answers for a bucket never versioned
    answer = s3_answer(
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    )
    # WHEN the answer is checked before parsing
    # THEN it is left to botocore's parser
    assert refuse_foreign_answer(answer, s3_operation("GetBucketVersioning")) is None


@pytest.mark.parametrize("operation", sorted(S3_BODILESS_ANSWERS))
def test_an_s3_write_answered_with_a_page_is_refused_as_not_made(operation: str) -> None:
    # GIVEN an S3 write whose success has no body, answered with a proxy's well-formed page
    page = s3_answer(b"<html><body>Bad gateway</body></html>")
    # WHEN the answer is checked before parsing
    # THEN it is refused, naming the operation, instead of read as the write made
    with pytest.raises(ForeignAnswerError, match=rf"^Unable to parse response: {operation} "):
        refuse_foreign_answer(page, s3_operation(operation))


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("PutObject", b""),
        ("HeadObject", b""),
        ("DeleteObject", b""),
        ("GetBucketPolicy", b'{"Version":"2012-10-17","Statement":[]}'),
    ],
)
def test_an_s3_answer_without_an_xml_body_of_its_own_is_left_to_botocore(
    operation: str, body: bytes
) -> None:
    # GIVEN an S3 call whose success has no XML body (no body, or the bucket policy's JSON)
    # WHEN its answer is checked before parsing
    # THEN it is left to botocore's parser
    assert refuse_foreign_answer(s3_answer(body), s3_operation(operation)) is None


class UnreadableStream:
    """An object's stream that fails the test when anything reads or tests it."""

    def __bool__(self) -> bool:
        raise AssertionError("the object's stream was tested")

    def __getitem__(self, _: object) -> bytes:
        raise AssertionError("the object's stream was sliced")

    def read(self, *_: object) -> bytes:
        raise AssertionError("the object's stream was read")


def test_an_objects_stream_is_never_read_by_the_check() -> None:
    # GIVEN GetObject answered with the object's stream
    answer = s3_answer(UnreadableStream())
    # WHEN the answer is checked before parsing
    # THEN the stream is left untouched for the caller
    assert refuse_foreign_answer(answer, s3_operation("GetObject")) is None
    assert not any(s3_operation(operation).has_streaming_output for operation in S3_ANSWER_ROOTS)


class SentBody:
    """The raw body of an injected answer, streamed as urllib3's."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class ErrorInSuccess:
    """Answers the first attempt of the call it is registered for with `body` and HTTP 200;
    later attempts go through."""

    body: bytes
    answered: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.answered:
            return None
        self.answered += 1
        return AWSResponse(
            request.url, 200, {"Content-Type": "application/xml"}, SentBody(self.body)
        )


@pytest.fixture
def checked_s3(mocked_aws: None) -> Any:
    """An S3 client of a fleet session (its answers checked), in moto."""
    sessions = AccountSessions("report_generator", "lambda-fleet-member", MOTO_ACCOUNT)
    return sessions.hub_client("s3", REGION)


def test_moto_s3_answers_to_every_operation_of_the_table_pass_the_check(checked_s3: Any) -> None:
    # GIVEN moto's S3 (the demo's and the tests'), and a record of the operations answered
    checked: set[str] = set()
    checked_s3.meta.events.register("after-call.s3", lambda model, **_: checked.add(model.name))
    bucket = "answers-checked"
    # WHEN every operation of the table is called, a never-versioned bucket's versioning first
    checked_s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    never_versioned = checked_s3.get_bucket_versioning(Bucket=bucket)
    checked_s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    checked_s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
            True,
        ),
    )
    checked_s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    checked_s3.put_object(Bucket=bucket, Key="raw/a.json", Body=b"{}")
    answers = {
        "GetBucketVersioning": checked_s3.get_bucket_versioning(Bucket=bucket),
        "GetPublicAccessBlock": checked_s3.get_public_access_block(Bucket=bucket),
        "GetBucketEncryption": checked_s3.get_bucket_encryption(Bucket=bucket),
        "CopyObject": checked_s3.copy_object(
            Bucket=bucket, Key="raw/b.json", CopySource={"Bucket": bucket, "Key": "raw/a.json"}
        ),
        "ListObjectsV2": checked_s3.list_objects_v2(Bucket=bucket, Prefix="raw/"),
        "ListBuckets": checked_s3.list_buckets(BucketRegion=REGION, MaxBuckets=10_000),
        "DeleteObjects": checked_s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": "raw/b.json"}], "Quiet": True}
        ),
    }
    streamed = checked_s3.get_object(Bucket=bucket, Key="raw/a.json")["Body"].read()
    # THEN each was read as its answer, and the object's stream reached the caller whole
    assert checked >= set(S3_ANSWER_ROOTS)
    assert "Status" not in never_versioned
    assert answers["GetBucketVersioning"]["Status"] == "Enabled"
    assert answers["GetPublicAccessBlock"]["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    assert answers["CopyObject"]["CopyObjectResult"]["ETag"]
    assert answers["ListObjectsV2"]["IsTruncated"] is False
    assert [bucket["Name"] for bucket in answers["ListBuckets"]["Buckets"]] == [bucket]
    assert streamed == b"{}"


def test_an_s3_error_sent_with_http_200_is_still_retried_as_s3s_own(
    checked_s3: Any, no_retry_waits: None
) -> None:
    # GIVEN S3 answering a CopyObject's first attempt with an error inside HTTP 200, as S3 may
    # answer a copy that failed while copying
    bucket = "copied-again"
    checked_s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    checked_s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    error_in_200 = ErrorInSuccess(
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>"
        b"</Error>"
    )
    checked_s3.meta.events.register_first("before-send.s3.CopyObject", error_in_200)
    # WHEN the object is copied
    answer = checked_s3.copy_object(
        Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "a"}
    )
    # THEN botocore retried it as S3's 500 (the error is not refused as another's page) and the
    # second attempt copied the object
    assert error_in_200.answered == 1
    assert answer["CopyObjectResult"]["ETag"]
    assert checked_s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"a"
