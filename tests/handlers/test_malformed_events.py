"""Every fleet function, sent malformed events through its Lambda entry point, answers with a
small error result naming the field: no exception, no AWS side effect, strict JSON under 2 KB.

The events come from `malformed_events.py` (seeded). The functions run against moto with the
fleet's environment, the state table, the data bucket holding the inventory and the alert topics,
so a handler that went past its parsing would find everything it needs to act. Every AWS call is
recorded by a botocore `before-call` hook; only reads are allowed, except the notification
router's keeping of an SNS message it cannot read in its queue's dead-letter queue: nobody reads
the result of an asynchronous invocation, so that message is kept where an unreadable queue
message ends up, whose alarm tells people.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws

from catalog.functions import FUNCTIONS
from fleet_shared.cleanup_policy import CleanupPolicy
from fleet_shared.handler import FleetFunction
from tests.handlers.conftest import (
    CHANGE_VALIDATOR_ENVIRONMENT,
    DATA_BUCKET_NAME,
    FLEET_ENVIRONMENT,
    HUB_ACCOUNT_ID,
    INVENTORY_DOCUMENT,
    REGION,
    FakeLambdaContext,
    create_state_table,
)
from tests.handlers.malformed_events import malformed_events

MINIMUM_CASES_PER_FUNCTION = 25
ANSWER_LIMIT_BYTES = 2048
READ_OPERATION_PREFIXES = ("Get", "List", "Describe", "Head", "Query", "Scan", "BatchGet")
FIELD_ERROR_PREFIX = "invalid event: "
ROUTER_DEAD_LETTER_QUEUE = "lambda-fleet-handlers-notification-router-queue-dlq"
ROUTER_DEAD_LETTER_QUEUE_URL = (
    f"https://sqs.{REGION}.amazonaws.com/{HUB_ACCOUNT_ID}/{ROUTER_DEAD_LETTER_QUEUE}"
)
KEEPING_WRITES = frozenset({"dynamodb.PutItem", "sqs.SendMessage"})
"""The writes of keeping an unreadable SNS message: its claim and completion in the state table,
and the message sent to the router queue's dead-letter queue."""

FUNCTION_NAMES = tuple(spec.name for spec in FUNCTIONS)
CASES = [
    pytest.param(function_name, event, id=f"{function_name}: {case}")
    for function_name in FUNCTION_NAMES
    for case, event in malformed_events(function_name)
]


@dataclass
class ApiCallLog:
    """The AWS operations called since the last `clear`, as `service.Operation`."""

    calls: list[str] = field(default_factory=list)

    def record(self, model: Any, **_: Any) -> None:
        """The botocore `before-call` hook."""
        self.calls.append(f"{model.service_model.service_name}.{model.name}")

    def writes(self) -> list[str]:
        """The calls that may change something (everything but reads)."""
        return [
            call
            for call in self.calls
            if not call.split(".", 1)[1].startswith(READ_OPERATION_PREFIXES)
        ]


@pytest.fixture(scope="module")
def api_call_log() -> Iterator[ApiCallLog]:
    """moto with the fleet's hub resources; every client built meanwhile logs its calls."""
    log = ApiCallLog()
    create_client = botocore.session.Session.create_client

    def create_logging_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, *args, **kwargs)
        client.meta.events.register("before-call", log.record)
        return client

    with pytest.MonkeyPatch.context() as patch, mock_aws():
        _create_hub_resources()
        patch.setattr(botocore.session.Session, "create_client", create_logging_client)
        yield log


def _create_hub_resources() -> None:
    create_state_table(boto3.client("dynamodb", region_name=REGION))
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=DATA_BUCKET_NAME, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=FLEET_ENVIRONMENT["FLEET_INVENTORY_KEY"],
        Body=json.dumps(INVENTORY_DOCUMENT).encode("utf-8"),
    )
    sns = boto3.client("sns", region_name=REGION)
    for variable in ("ALERT_TOPIC_ARN", "ALERT_TOPIC_CRITICAL_ARN", "ALERT_TOPIC_INFO_ARN"):
        sns.create_topic(Name=FLEET_ENVIRONMENT[variable].rsplit(":", 1)[1])
    boto3.client("sqs", region_name=REGION).create_queue(QueueName=ROUTER_DEAD_LETTER_QUEUE)


@pytest.fixture
def fleet_function(
    request: pytest.FixtureRequest,
    api_call_log: ApiCallLog,
    fleet_environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """The FUNCTION of the parametrized catalog function in the fleet's environment, with
    services built afresh (so their clients log their calls) and an empty call log."""
    # cleanup_manager's policy, as the program writes it for a stack that sets none.
    monkeypatch.setenv("CLEANUP_POLICY", CleanupPolicy().model_dump_json())
    # change_validator's callback schedules, as the program resolves them.
    for variable, value in CHANGE_VALIDATOR_ENVIRONMENT.items():
        monkeypatch.setenv(variable, value)
    # notification_router's dead-letter queue, for the SNS messages it cannot read.
    monkeypatch.setenv("ROUTER_DEAD_LETTER_QUEUE_URL", ROUTER_DEAD_LETTER_QUEUE_URL)
    function: FleetFunction[Any, Any] = importlib.import_module(
        f"handlers.{request.node.callspec.params['function_name']}.app"
    ).FUNCTION
    function.use_services(None)
    api_call_log.calls.clear()
    yield function
    function.use_services(None)


def _message_ids(event: object) -> set[str]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        return set()
    return {
        str(record["messageId"])
        for record in records
        if isinstance(record, Mapping) and "messageId" in record
    }


IGNORED = "ignored"
"""The answer to an EventBridge event from a source or of a type the function does not handle."""


def refusal_messages(answer: Any, event: object) -> list[str]:
    """The error messages of `answer`, after checking that it refuses `event` as a whole: an
    error result, a 4xx HTTP response, or a batch answer with every message failed (retried)
    or refused (dropped as unreadable)."""
    assert isinstance(answer, dict), f"answer is not an object: {answer!r:.200}"
    if "statusCode" in answer:
        assert 400 <= answer["statusCode"] < 500, f"HTTP answer {answer['statusCode']}"
        return refusal_messages(json.loads(answer["body"]), event)
    if "batchItemFailures" in answer:
        failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        refused = answer.get("refused", [])
        reported = failed | {str(result["message_id"]) for result in refused}
        assert reported == _message_ids(event), f"messages not reported as failed: {answer}"
        return [result["error"] for result in [*answer.get("results", []), *refused]]
    assert answer.get("status") == "error", f"not an error result: {answer}"
    if "error" in answer:
        return [answer["error"]]
    return [result["error"] for result in answer["results"]]


def test_every_catalog_function_gets_enough_malformed_events() -> None:
    # GIVEN the catalog functions and the malformed events generated for each
    # WHEN they are counted
    counts = {name: len(malformed_events(name)) for name in FUNCTION_NAMES}
    # THEN each catalog function gets at least 25
    assert len(counts) == len(FUNCTIONS)
    assert min(counts.values()) >= MINIMUM_CASES_PER_FUNCTION, counts


def test_malformed_events_are_the_same_on_every_run() -> None:
    # GIVEN the generator of malformed events, seeded per function
    # WHEN it runs twice
    first, second = malformed_events("eks_scaler"), malformed_events("eks_scaler")
    # THEN it sends the same events in the same order
    assert [name for name, _ in first] == [name for name, _ in second]
    assert repr(first[-1][1])[:10_000] == repr(second[-1][1])[:10_000]


@pytest.mark.parametrize(("function_name", "event"), CASES)
def test_malformed_event_is_refused_naming_the_field_or_ignored_and_changes_nothing(
    function_name: str, event: object, fleet_function: Any, api_call_log: ApiCallLog
) -> None:
    # GIVEN a fleet function in moto with everything it needs to act, and a malformed event
    # WHEN the event reaches its Lambda entry point
    answer = fleet_function.lambda_handler(event, FakeLambdaContext())
    # THEN it answers (no exception) with a refusal whose every message names the field, or,
    # for an event that is not the AWS event the function handles (another source or detail
    # type), `ignored` with the reason
    if isinstance(answer, dict) and answer.get("status") == IGNORED:
        assert isinstance(answer.get("reason"), str) and answer["reason"], answer
    else:
        messages = refusal_messages(answer, event)
        assert messages, f"no error message in {answer}"
        for message in messages:
            assert message.startswith(FIELD_ERROR_PREFIX), message[:300]
    # AND the answer is strict JSON under 2 KB
    assert len(json.dumps(answer, allow_nan=False).encode("utf-8")) < ANSWER_LIMIT_BYTES
    # AND nothing was changed in AWS, but for an SNS message the router cannot read, which is
    # kept in its queue's dead-letter queue (or was, by an earlier delivery of its MessageId)
    kept = _dead_letters(answer)
    if kept:
        assert all("queue_message_id" in outcome for outcome in kept), kept
        assert set(api_call_log.writes()) <= KEEPING_WRITES, api_call_log.writes()
    else:
        assert api_call_log.writes() == []


def _dead_letters(answer: Any) -> list[dict[str, Any]]:
    """The `dead_letter` outcome of each message of `answer` the router kept, or tried to."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        return []
    return [result["dead_letter"] for result in results if "dead_letter" in result]
