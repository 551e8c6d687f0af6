"""Fan-out of the scheduled scan to the SQS queue, and the queue consumer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from catalog.functions import function_spec
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import ConfigurationError
from handlers.security_scanner import scan_requests
from handlers.security_scanner.exceptions import FanOutIncompleteError
from handlers.security_scanner.scan import FAN_OUT_CALL_SECONDS, ScanServices
from tests.handlers.deadlines import PLATFORM_RETRY_SECONDS, HungOperation, LambdaTime
from tests.handlers.faults import answer_malformed
from tests.handlers.member_accounts import DENIED_MEMBER, MEMBER_A, MEMBER_B, REGION, member_session

TIMEOUT_SECONDS = function_spec("security_scanner").timeout_seconds


@pytest.fixture
def scan_queue(monkeypatch: pytest.MonkeyPatch, mocked_aws: None) -> str:
    """The scanner's own queue in the hub, with fan-out beyond one target per invocation."""
    url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="security-scan")[
        "QueueUrl"
    ]
    monkeypatch.setenv("SCAN_QUEUE_URL", url)
    monkeypatch.setenv("SCAN_MAX_TARGETS_PER_INVOCATION", "2")
    return url


def _sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m-{index}", "body": body, "eventSource": "aws:sqs"}
            for index, body in enumerate(bodies)
        ]
    }


def test_schedule_fans_out_one_message_per_target_and_the_queue_scans_them(
    scanner: Callable[[Any], dict[str, Any]],
    scan_queue: str,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    # GIVEN three targets, more than the two one invocation may scan, and a finding in B
    member_session(MEMBER_B).client("sns").create_topic(Name="plain-topic")
    # WHEN the schedule runs
    result = scanner({"action": "scan"})
    # THEN it scans nothing itself and sends one message per (account, region)
    assert result["status"] == "fanned_out"
    assert result["messages_sent"] == 3
    assert hub_findings() == {}
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=scan_queue, MaxNumberOfMessages=10)["Messages"]
    bodies = sorted((json.loads(m["Body"]) for m in messages), key=lambda b: b["account_id"])
    assert [(b["account_id"], b["region"]) for b in bodies] == [
        (MEMBER_A, REGION),
        (MEMBER_B, REGION),
        (DENIED_MEMBER, REGION),
    ]
    # WHEN the queue delivers those messages to the function
    outcome = scanner(_sqs_event(*(m["Body"] for m in messages)))
    # THEN every target was handled, B's finding reached Security Hub, and no message is retried
    # (the denied account is reported, not retried: a retry would be denied the same way)
    assert outcome == {"batchItemFailures": [], "refused": []}
    controls = {
        (
            f["ProductFields"]["lambda-fleet/MemberAccountId"],
            f["ProductFields"]["lambda-fleet/ControlId"],
        )
        for f in hub_findings().values()
    }
    assert (MEMBER_B, "SNS.1") in controls
    listing = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket="lambda-fleet-data", Prefix="reports/security/2025-06-02/targets/"
    )
    # AND each target has its report, the denied one saying so
    assert {o["Key"].rsplit("/", 1)[1] for o in listing["Contents"]} == {
        f"{MEMBER_A}-{REGION}.json",
        f"{MEMBER_B}-{REGION}.json",
        f"{DENIED_MEMBER}-{REGION}.json",
    }
    denied = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(
            Bucket="lambda-fleet-data",
            Key=f"reports/security/2025-06-02/targets/{DENIED_MEMBER}-{REGION}.json",
        )["Body"]
        .read()
    )
    assert denied["targets"][0]["status"] == "denied"


def test_a_dry_run_schedule_fans_out_dry_run_messages(
    scanner: Callable[[Any], dict[str, Any]], scan_queue: str
) -> None:
    # GIVEN three targets, more than one invocation may scan
    # WHEN the schedule runs a dry run
    result = scanner({"action": "scan", "dry_run": True})
    # THEN each target's message asks for a dry run too: the queue's scans write nothing either
    assert result["messages_sent"] == 3
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=scan_queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(message["Body"])["dry_run"] for message in messages] == [True] * 3


def test_queue_drops_malformed_messages_and_retries_only_failed_ones(
    scanner: Callable[[Any], dict[str, Any]],
    scan_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a batch with a malformed body, a target outside the fleet and a valid target whose
    # Security Hub import fails
    valid = json.dumps({"action": "scan_target", "account_id": MEMBER_B, "region": REGION})
    outside = json.dumps({"action": "scan_target", "account_id": "999999999999", "region": REGION})
    member_session(MEMBER_B).client("sns").create_topic(Name="plain-topic")
    from handlers.security_scanner import scan  # noqa: PLC0415

    def refuse(*_: Any, **__: Any) -> int:
        raise scan.SecurityHubImportError("1 findings refused: throttled")

    monkeypatch.setattr(scan, "import_findings", refuse)
    # WHEN the batch is consumed
    outcome = scanner(_sqs_event("not json", outside, valid))
    # THEN only the failed import goes back to the queue; the others would never succeed
    assert outcome["batchItemFailures"] == [{"itemIdentifier": "m-2"}]
    # AND the two that can never succeed are reported as refused, naming the field
    assert [(r["message_id"], r["error"].split(":")[1]) for r in outcome["refused"]] == [
        ("m-0", " body"),
        ("m-1", " account_id"),
    ]


def test_fan_out_without_a_queue_is_a_configuration_error(
    scanner: Callable[[Any], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN more targets than one invocation scans and no SCAN_QUEUE_URL
    monkeypatch.setenv("SCAN_MAX_TARGETS_PER_INVOCATION", "1")
    # WHEN the schedule runs THEN the invocation fails naming the missing variable, and nothing
    # is scanned
    with pytest.raises(ConfigurationError, match="SCAN_QUEUE_URL"):
        scanner({"action": "scan"})


@dataclass
class QueueHungAfterFirstSend:
    """SQS takes the first SendMessageBatch, then accepts the connection of every later attempt
    and never answers it, each spending the client's read timeout of the invocation's time,
    until `healed`."""

    hung: HungOperation
    sends: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> None:
        self.sends += 1
        if self.sends > 1 and not self.healed:
            self.hung.hang(request)


def hang_every_send_after_the_first(sqs: Any, time: LambdaTime) -> QueueHungAfterFirstSend:
    """Make `sqs` take its first SendMessageBatch and hang every attempt after it, spending
    `time`."""
    fault = QueueHungAfterFirstSend(HungOperation(time, read_timeout=sqs.meta.config.read_timeout))
    sqs.meta.events.register_first("before-send.sqs.SendMessageBatch", fault)
    return fault


def queued_targets(queue_url: str) -> list[tuple[str, str]]:
    """The (account, region) of every message waiting in the queue, in account order."""
    sqs = boto3.client("sqs", region_name=REGION)
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
    return sorted((body["account_id"], body["region"]) for body in bodies)


def test_a_hung_queue_ends_the_fan_out_in_time_naming_what_was_not_sent_and_the_retry_sends_it_once(
    scanner: Callable[..., dict[str, Any]],
    scan_queue: str,
    build_scanner_services: Callable[[], ScanServices],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN three targets fanned out two to a batch, and SQS taking the first batch (A and B)
    # and then never answering
    monkeypatch.setattr(scan_requests, "SQS_BATCH_LIMIT", 2)
    services = build_scanner_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    hung = hang_every_send_after_the_first(services.sqs, time)
    # WHEN the schedule runs
    with pytest.raises(FanOutIncompleteError) as failed:
        scanner({"action": "scan"}, services, time.context())
    # THEN Lambda did not end the run: the hung send was given up after one bounded call, and the
    # run failed (so the platform retries it) naming the target it did not send
    assert hung.hung.attempts > 0
    assert time.spent <= FAN_OUT_CALL_SECONDS, time.spent
    assert f"{DENIED_MEMBER}/{REGION}" in str(failed.value)
    assert f"{MEMBER_A}/{REGION}" not in str(failed.value)
    # WHEN SQS answers again and the platform retries the run (the same request id)
    fake_clock.advance(PLATFORM_RETRY_SECONDS)
    hung.healed = True
    retried = scanner({"action": "scan"}, build_scanner_services())
    # THEN the retry sends only the target left, and the queue holds each target once
    assert retried["status"] == "fanned_out"
    assert retried["messages_sent"] == 1
    assert queued_targets(scan_queue) == sorted(
        [(MEMBER_A, REGION), (MEMBER_B, REGION), (DENIED_MEMBER, REGION)]
    )


class _AnswerBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class SecondBatchRefused:
    """SQS answers the second SendMessageBatch with every entry failed on its side, queuing none
    of them (moto never sees that request), until `healed`."""

    sends: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sends += 1
        if self.healed or self.sends != 2:
            return None
        failed = [
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "busy"}
            for entry in json.loads(request.body)["Entries"]
        ]
        # moto acts on every request another handler answered, except one outside AWS's domains.
        request.url = "https://refused-batch.invalid/"
        body = json.dumps({"Successful": [], "Failed": failed}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 200, headers, _AnswerBody(body))


def test_a_batch_sqs_refuses_fails_the_fan_out_naming_its_targets_and_the_retry_sends_them_once(
    scanner: Callable[..., dict[str, Any]],
    scan_queue: str,
    build_scanner_services: Callable[[], ScanServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN three targets fanned out two to a batch, and SQS queuing the first batch (A and B)
    # and answering that it failed every entry of the second
    monkeypatch.setattr(scan_requests, "SQS_BATCH_LIMIT", 2)
    services = build_scanner_services()
    refused = SecondBatchRefused()
    services.sqs.meta.events.register_first("before-send.sqs.SendMessageBatch", refused)
    # WHEN the schedule runs
    with pytest.raises(FanOutIncompleteError) as failed:
        scanner({"action": "scan"}, services)
    # THEN the run failed (so the platform retries it) naming the target SQS did not take
    assert str(failed.value).startswith(
        f"1 of 3 targets not sent to the scan queue: {DENIED_MEMBER}/"
    )
    # WHEN SQS takes every entry again and the platform retries the run (the same request id)
    refused.healed = True
    retried = scanner({"action": "scan"}, services)
    # THEN the retry sends only that target, and the queue holds each target once
    assert (retried["messages_sent"], retried["sent_before"]) == (1, 2)
    assert queued_targets(scan_queue) == sorted(
        [(MEMBER_A, REGION), (MEMBER_B, REGION), (DENIED_MEMBER, REGION)]
    )


def test_a_batch_answered_with_a_page_that_is_not_sqss_fails_the_fan_out_naming_its_targets(
    scanner: Callable[..., dict[str, Any]],
    scan_queue: str,
    build_scanner_services: Callable[[], ScanServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN three targets fanned out two to a batch, and SQS answering the batch of the denied
    # member with a proxy's page (HTTP 200), which botocore reads as an answer without
    # Successful or Failed
    monkeypatch.setattr(scan_requests, "SQS_BATCH_LIMIT", 2)
    services = build_scanner_services()
    page = answer_malformed(
        services.sqs,
        "sqs",
        "SendMessageBatch",
        b"<html>gateway</html>",
        body_with=DENIED_MEMBER.encode(),
    )
    # WHEN the schedule runs
    with pytest.raises(FanOutIncompleteError) as failed:
        scanner({"action": "scan"}, services)
    # THEN the run failed (so the platform retries it) naming the targets of that batch and
    # what its answer lacked, rather than passing them over as neither sent nor failed
    assert page.answered >= 1
    message = str(failed.value)
    assert message.startswith("1 of 3 targets not sent to the scan queue: ")
    assert f"{DENIED_MEMBER}/{REGION}" in message
    assert "SendMessageBatch answered without entry" in message


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param({"Successful": [None], "Failed": []}, id="a-null-entry"),
        pytest.param({"Successful": [{"Id": "first"}], "Failed": []}, id="an-id-that-is-no-index"),
        pytest.param({"Successful": [], "Failed": [{"Id": 0}]}, id="a-number-as-a-failed-id"),
    ],
)
def test_a_batch_answered_with_an_entry_of_the_wrong_kind_fails_the_fan_out_naming_its_target(
    scanner: Callable[..., dict[str, Any]],
    scan_queue: str,
    build_scanner_services: Callable[[], ScanServices],
    monkeypatch: pytest.MonkeyPatch,
    entries: dict[str, Any],
) -> None:
    # GIVEN three targets fanned out two to a batch, and SQS answering the batch of the denied
    # member (its one entry) with an entry that is null or gives no index as its Id (botocore
    # hands a JSON answer's list items and text on unchecked)
    monkeypatch.setattr(scan_requests, "SQS_BATCH_LIMIT", 2)
    services = build_scanner_services()
    answer = answer_malformed(
        services.sqs,
        "sqs",
        "SendMessageBatch",
        json.dumps(entries).encode(),
        body_with=DENIED_MEMBER.encode(),
        content_type="application/x-amz-json-1.0",
    )
    # WHEN the schedule runs
    with pytest.raises(FanOutIncompleteError) as failed:
        scanner({"action": "scan"}, services)
    # THEN the run failed (so the platform retries it) naming that target as one SQS's answer
    # left out, instead of the bare TypeError or ValueError that ended the fan-out before it
    # recorded the batch SQS took
    assert answer.answered >= 1
    message = str(failed.value)
    assert message.startswith(f"1 of 3 targets not sent to the scan queue: {DENIED_MEMBER}/")
    assert "SendMessageBatch answered without entry 0" in message
    # WHEN SQS answers again and the platform retries the run (the same request id)
    services.sqs.meta.events.unregister("before-send.sqs.SendMessageBatch", answer)
    retried = scanner({"action": "scan"}, services)
    # THEN the retry sends only that target: the batch SQS took was recorded
    assert (retried["messages_sent"], retried["sent_before"]) == (1, 2)
