"""Malformed events for the fuzz test of every handler: seeded, so every run sends the same ones.

`malformed_events(function_name)` returns (case name, event) pairs: events that are not objects,
envelopes (HTTP API, SQS, SNS, S3, EventBridge) with broken parts, unknown actions, and the
example events of `events/<function>/` with each top-level field replaced by a wrong value.
None of them is a request any fleet function may act on.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path
from typing import Any

EVENTS_DIRECTORY = Path(__file__).resolve().parents[2] / "events"
HUGE_LENGTH = 1_000_000
NESTING_DEPTH = 900  # below the depth at which Lambda's own JSON decoding gives up
HTTP_NESTING_DEPTH = 50_000
MESSAGE_ID = "059f36b4-87a3-44ab-83d2-661975830a7d"
DATA_BUCKET_NAME = "lambda-fleet-data"
MEMBER_ACCOUNT_ID = "222222222222"
REGION = "ap-south-1"

MalformedEvent = tuple[str, object]


def example_events(function_name: str) -> list[tuple[str, dict[str, Any]]]:
    """The example events of `events/<function_name>/`, by file stem."""
    directory = EVENTS_DIRECTORY / function_name
    return [(path.stem, json.loads(path.read_text())) for path in sorted(directory.glob("*.json"))]


def malformed_events(function_name: str) -> list[MalformedEvent]:
    """Every malformed event sent to `function_name`, in a fixed order."""
    generator = random.Random(f"malformed-events:{function_name}")
    huge = _huge_string(generator)
    return [
        *_not_objects(huge),
        *_bad_actions(huge),
        *_http_events(generator),
        *_queue_and_topic_envelopes(huge),
        *_object_created_envelopes(),
        *_eventbridge_envelopes(),
        *_broken_examples(function_name, generator, huge),
    ]


def _huge_string(generator: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + " {}[]\"'\\:,"
    return "".join(generator.choices(alphabet, k=HUGE_LENGTH))


def _nested_list(depth: int) -> list[Any]:
    nested: list[Any] = []
    for _ in range(depth - 1):
        nested = [nested]
    return nested


def _not_objects(huge: str) -> list[MalformedEvent]:
    return [
        ("null", None),
        ("empty list", []),
        ("list of objects", [{"action": "scan"}, {"action": "backup"}]),
        ("string", "scan"),
        ("huge string", huge),
        ("integer", 42),
        ("nan", float("nan")),
        ("infinity", float("inf")),
        ("boolean", True),
        ("deeply nested list", _nested_list(NESTING_DEPTH)),
    ]


def _bad_actions(huge: str) -> list[MalformedEvent]:
    return [
        ("empty object", {}),
        ("unknown action", {"action": "self_destruct"}),
        ("action list", {"action": []}),
        ("action null", {"action": None}),
        ("action object", {"action": {"$ne": ""}}),
        ("action number as string", {"action": "1"}),
        ("action nan", {"action": float("nan")}),
        ("action huge", {"action": huge}),
        ("huge field name", {huge: "scan"}),
        ("action deeply nested", {"action": _nested_list(NESTING_DEPTH)}),
    ]


def _http_event(body: object, *, base64_encoded: bool = False) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /scale",
        "rawPath": "/scale",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "111111111111",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.ap-south-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": "POST",
                "path": "/scale",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "curl/8.0",
            },
            "requestId": "a1b2c3d4",
            "routeKey": "POST /scale",
            "stage": "$default",
            "time": "02/Jun/2025:03:30:00 +0000",
            "timeEpoch": 1748835000000,
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def _http_events(generator: random.Random) -> list[MalformedEvent]:
    garbage = bytes(generator.getrandbits(8) for _ in range(512))
    scale_up_with_nan = (
        '{"action": "scale_up", "account_id": "222222222222", "region": "ap-south-1",'
        ' "cluster": "dev-apps", "nodegroups": [{"name": "system", "desired_size": NaN}]}'
    )
    return [
        ("http body deeply nested", _http_event("[" * HTTP_NESTING_DEPTH)),
        ("http body base64 garbage", _http_event("%%not base64%%", base64_encoded=True)),
        (
            "http body base64 of random bytes",
            _http_event(base64.b64encode(garbage).decode("ascii"), base64_encoded=True),
        ),
        ("http body list", _http_event("[1, 2, 3]")),
        ("http body number", _http_event(12)),
        ("http body nan constant", _http_event(scale_up_with_nan)),
        ("http body infinity constant", _http_event('{"action": Infinity}')),
        ("http request context null", {**_http_event("{}"), "requestContext": None}),
    ]


def _sqs_record(body: object) -> dict[str, Any]:
    return {
        "messageId": MESSAGE_ID,
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1748835000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1748835000001",
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:lambda-fleet-queue",
        "awsRegion": REGION,
    }


def _sns_record(message: object) -> dict[str, Any]:
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"arn:aws:sns:{REGION}:123456789012:fleet-alerts-warning:sub",
        "Sns": {
            "Type": "Notification",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": f"arn:aws:sns:{REGION}:123456789012:fleet-alerts-warning",
            "Subject": "forged",
            "Message": message,
            "Timestamp": "2025-06-02T03:30:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.ap-south-1.amazonaws.com/cert.pem",
            "UnsubscribeUrl": "https://sns.ap-south-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {},
        },
    }


def _queue_and_topic_envelopes(huge: str) -> list[MalformedEvent]:
    return [
        ("records not a list", {"Records": "not a list"}),
        ("records empty", {"Records": []}),
        ("records not objects", {"Records": [None, 1, "record"]}),
        ("sqs body not json", {"Records": [_sqs_record("{not json")]}),
        ("sqs body json null", {"Records": [_sqs_record("null")]}),
        ("sqs body deeply nested", {"Records": [_sqs_record("[" * HTTP_NESTING_DEPTH)]}),
        ("sqs body not a string", {"Records": [_sqs_record({"action": "scan_target"})]}),
        ("sqs body huge", {"Records": [_sqs_record(huge)]}),
        ("sns message not json", {"Records": [_sns_record("{not json")]}),
        ("sns message huge", {"Records": [_sns_record(huge)]}),
        ("sns message null", {"Records": [_sns_record(None)]}),
        ("sns without message", {"Records": [{"EventSource": "aws:sns", "Sns": None}]}),
    ]


def _s3_record(event_name: str, key: object, bucket: object = DATA_BUCKET_NAME) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-06-02T05:00:12.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "report-pipeline",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 10, "eTag": "0123456789abcdef", "sequencer": "00"},
        },
    }


def _object_created_envelopes() -> list[MalformedEvent]:
    return [
        ("s3 object removed", {"Records": [_s3_record("ObjectRemoved:Delete", "raw/x.json")]}),
        ("s3 key empty", {"Records": [_s3_record("ObjectCreated:Put", "")]}),
        ("s3 key not a string", {"Records": [_s3_record("ObjectCreated:Put", ["raw"])]}),
        ("s3 bucket null", {"Records": [_s3_record("ObjectCreated:Put", "raw/x.json", None)]}),
        (
            "s3 without s3",
            {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]},
        ),
    ]


def _eventbridge(source: str, detail_type: str, detail: object) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": detail_type,
        "source": source,
        "account": MEMBER_ACCOUNT_ID,
        "time": "2025-06-02T03:30:00Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{MEMBER_ACCOUNT_ID}:alarm:forged"],
        "detail": detail,
    }


def _eventbridge_envelopes() -> list[MalformedEvent]:
    alarm_detail = {"alarmName": "forged", "state": {"value": "ALARM", "reason": "forged"}}
    return [
        (
            "eventbridge forged source",
            _eventbridge("fleet.forged", "CloudWatch Alarm State Change", alarm_detail),
        ),
        ("eventbridge detail null", _eventbridge("aws.guardduty", "GuardDuty Finding", None)),
        (
            "eventbridge unknown detail type",
            _eventbridge("aws.ec2", "EC2 Instance Rebooted", {"instance-id": "i-0"}),
        ),
        (
            "eventbridge detail type not a string",
            _eventbridge("aws.cloudwatch", ["CloudWatch Alarm State Change"], alarm_detail),  # type: ignore[arg-type]
        ),
        (
            "cloudtrail user identity null",
            _eventbridge(
                "aws.signin",
                "AWS Console Sign In via CloudTrail",
                {"eventName": "ConsoleLogin", "userIdentity": None},
            ),
        ),
        (
            "spot warning without instance",
            _eventbridge("aws.ec2", "EC2 Spot Instance Interruption Warning", {"x": 1}),
        ),
    ]


def _wrong_type(value: object, generator: random.Random) -> tuple[str, object]:
    """A value of another JSON type than `value` (null is left out: optional fields take it)."""
    other_types: list[tuple[str, object]] = [
        ("list", [value]),
        ("object", {"value": value}),
        ("boolean", False),
        ("number too big for any field", 10**20),
        ("infinity", float("inf")),
        ("nan", float("nan")),
        ("string", "seven"),
        ("nested list", _nested_list(NESTING_DEPTH)),
    ]
    same_type = type(value)
    return generator.choice([item for item in other_types if type(item[1]) is not same_type])


def _broken_examples(
    function_name: str, generator: random.Random, huge: str
) -> list[MalformedEvent]:
    """Each example with one top-level field of a wrong type; integers also as strings of a
    fraction (pydantic takes "180" for 180 on purpose, not "180.5"); identifying texts (action,
    account, region, cluster) as 1 MB strings; an AWS `source` forged."""
    broken: list[MalformedEvent] = []
    for stem, example in example_events(function_name):
        for field, value in example.items():
            changes = [_wrong_type(value, generator)]
            if isinstance(value, int) and not isinstance(value, bool):
                changes.append(("number as string", f"{value}.5"))
            if field in _IDENTIFYING_FIELDS:
                changes.append(("huge string", huge))
            for label, wrong in changes:
                broken.append((f"{stem}: {field} {label}", {**example, field: wrong}))
        if "source" in example:
            broken.append((f"{stem}: forged source", {**example, "source": "fleet.forged"}))
    return broken


_IDENTIFYING_FIELDS = ("action", "account", "account_id", "region", "cluster")
