"""S3 ObjectCreated notifications: the example events, moto's real notifications and URL-encoded
keys all parse into the objects the report functions handle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from fleet_shared.s3_events import CreatedObject, parse_object_created
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
