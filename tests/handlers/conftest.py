"""Fixtures for every handler test: fake AWS credentials, moto, the state table, a manual clock,
the fleet's environment variables, an alert inbox, a Lambda context and the inventory of the
test stack file `Pulumi.handlers.yaml`.

No test may reach real AWS. The fake credentials are set when this file is imported (handler
modules build clients at import time) and again around every test, and every variable that could
point boto3 at a real account, profile or endpoint is removed.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import pytest
import yaml
from moto import mock_aws

from catalog.functions import COMMON_ENVIRONMENT, FUNCTIONS_BY_NAME
from components.settings import load_settings, settings_document
from fleet_shared.clock import ManualClock
from fleet_shared.state_table import StateTable
from fleet_shared.unanswered_endpoints import UnansweredEndpoints
from fleetctl.local_state_table import create_state_table as create_local_state_table
from tests.handlers.iam_coverage import recording, ungranted_calls

REGION = "ap-south-1"
HUB_ACCOUNT_ID = "123456789012"  # moto's default account: the fake credentials belong to it
MEMBER_ACCOUNT_ID = "222222222222"
STATE_TABLE_NAME = "lambda-fleet-state"
DATA_BUCKET_NAME = "lambda-fleet-data"
START_TIME = datetime(2025, 6, 2, 3, 30, tzinfo=UTC)  # Monday 09:00 in Asia/Kolkata

FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "POWERTOOLS_TRACE_DISABLED": "true",
}
_UNSAFE_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "POWERTOOLS_SERVICE_NAME",
    *COMMON_ENVIRONMENT,
)

FLEET_ENVIRONMENT = {
    "STATE_TABLE_NAME": STATE_TABLE_NAME,
    "MEMBER_ROLE_NAME": "lambda-fleet-member",
    "STACK_NAME": "dev",
    "HUB_ACCOUNT_ID": HUB_ACCOUNT_ID,
    "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{HUB_ACCOUNT_ID}:fleet-alerts-warning",
    "ALERT_TOPIC_CRITICAL_ARN": f"arn:aws:sns:{REGION}:{HUB_ACCOUNT_ID}:fleet-alerts-critical",
    "ALERT_TOPIC_INFO_ARN": f"arn:aws:sns:{REGION}:{HUB_ACCOUNT_ID}:fleet-alerts-info",
    "FLEET_DRY_RUN": "false",
    "DATA_BUCKET_NAME": DATA_BUCKET_NAME,
    "FLEET_INVENTORY_KEY": "config/fleet-inventory.json",
}

CHANGE_VALIDATOR_ENVIRONMENT = {
    "VALIDATION_FUNCTION_ARN": (
        f"arn:aws:lambda:{REGION}:{HUB_ACCOUNT_ID}:function:lf-handlers-change-validator"
    ),
    "VALIDATION_DEAD_LETTER_ARN": f"arn:aws:sqs:{REGION}:{HUB_ACCOUNT_ID}:change-validator-dlq",
    "VALIDATION_SCHEDULE_GROUP": "lf-handlers-change-validator-callbacks",
    "VALIDATION_SCHEDULER_ROLE_ARN": (
        f"arn:aws:iam::{HUB_ACCOUNT_ID}:role/lf-handlers-change-validator-callbacks"
    ),
    "SCALER_MEMBER_ROLE_NAME": "lambda-fleet-handlers-member-eks-scaler",
}
"""The variables the program gives change_validator besides the fleet's (its callback schedules
and the scaler's member role)."""

HANDLER_STACK_FILE = Path(__file__).with_name("Pulumi.handlers.yaml")


def read_stack_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a test stack file."""
    return dict(yaml.safe_load(path.read_text())["config"])


def stack_inventory(stack: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The inventory document the program writes for a stack file's `config:` mapping.

    It goes through the program's own settings loader and inventory builder, so the handler tests
    read what `pulumi up` would write and not a hand-written copy of it.
    """
    settings = load_settings(stack, settings_document(config))
    return settings.inventory(stack).model_dump(mode="json")


INVENTORY_DOCUMENT: dict[str, Any] = stack_inventory(
    "handlers", read_stack_config(HANDLER_STACK_FILE)
)


def _make_environment_safe(environ: Any) -> None:
    for name in list(environ):
        if name in _UNSAFE_VARIABLES or name.startswith("AWS_ENDPOINT_URL"):
            del environ[name]
    environ.update(FAKE_AWS_ENVIRONMENT)


_make_environment_safe(os.environ)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake credentials and region for every test; no profile, no endpoint override."""
    for name in list(os.environ):
        if name in _UNSAFE_VARIABLES or name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    for name, value in FAKE_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return dict(FAKE_AWS_ENVIRONMENT)


@pytest.fixture(autouse=True)
def handler_calls_granted_by_catalog(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test whose handler code called an AWS operation its function's catalog entry does
    not grant (moto does not enforce IAM): per test, so it holds under xdist."""
    directory = request.node.path.relative_to(Path(__file__).parent).parts[0]
    default_function = directory if directory in FUNCTIONS_BY_NAME else None
    with recording(default_function) as recorder:
        yield
    problems = ungranted_calls(recorder.calls)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def mocked_aws() -> Iterator[None]:
    """moto in process for the duration of the test."""
    with mock_aws():
        yield


@pytest.fixture
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sends its retries at once: the test's time is not spent on their jittered waits."""
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _seconds: None))


@pytest.fixture
def fake_clock() -> ManualClock:
    """A clock at START_TIME that moves only with `advance` or `set`."""
    return ManualClock(START_TIME)


@pytest.fixture
def fleet_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The common fleet variables, set as a deployed function gets them."""
    for name, value in FLEET_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return dict(FLEET_ENVIRONMENT)


@pytest.fixture
def dynamodb_client(mocked_aws: None) -> Any:
    """A DynamoDB client of the hub account."""
    return boto3.client("dynamodb", region_name=REGION)


def create_state_table(dynamodb_client: Any, table_name: str = STATE_TABLE_NAME) -> None:
    """The state table as the program defines it: `pk`/`sk` strings, on demand."""
    create_local_state_table(dynamodb_client, table_name)


@pytest.fixture
def unanswered_endpoints() -> UnansweredEndpoints:
    """The record of endpoints that did not answer, of the test's one invocation."""
    return UnansweredEndpoints()


@pytest.fixture
def state_table(
    dynamodb_client: Any, fake_clock: ManualClock, unanswered_endpoints: UnansweredEndpoints
) -> StateTable:
    """The state table, created in moto as the program defines it, driven by `fake_clock`."""
    create_state_table(dynamodb_client)
    dynamodb_client.update_time_to_live(
        TableName=STATE_TABLE_NAME,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    return StateTable(
        STATE_TABLE_NAME, dynamodb_client, fake_clock, unanswered=unanswered_endpoints
    )


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert as it reached a subscriber of an alert topic."""

    topic_arn: str
    subject: str
    attributes: dict[str, str]
    alert: dict[str, Any]


class AlertInbox:
    """An SQS queue subscribed to the three alert topics, read back by tests."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def receive(self) -> list[ReceivedAlert]:
        """Every alert delivered so far, removed from the queue."""
        received: list[ReceivedAlert] = []
        while True:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = response.get("Messages", [])
            if not messages:
                return received
            for message in messages:
                envelope = json.loads(message["Body"])
                received.append(
                    ReceivedAlert(
                        topic_arn=envelope["TopicArn"],
                        subject=envelope.get("Subject", ""),
                        attributes={
                            name: attribute["Value"]
                            for name, attribute in envelope.get("MessageAttributes", {}).items()
                        },
                        alert=json.loads(envelope["Message"]),
                    )
                )
                self._sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def alert_inbox(mocked_aws: None, fleet_environment: dict[str, str]) -> AlertInbox:
    """The alert topics of `fleet_environment`, created in moto, all delivering to one queue."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    for variable in ("ALERT_TOPIC_ARN", "ALERT_TOPIC_CRITICAL_ARN", "ALERT_TOPIC_INFO_ARN"):
        topic_name = fleet_environment[variable].rsplit(":", 1)[1]
        topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return AlertInbox(sqs, queue_url)


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str = "lambda-fleet-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        f"arn:aws:lambda:{REGION}:{HUB_ACCOUNT_ID}:function:lambda-fleet-test"
    )
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        """Plenty of time left."""
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A Lambda context for calling `lambda_handler(event, context)` directly."""
    return FakeLambdaContext()


@pytest.fixture
def inventory_document() -> dict[str, Any]:
    """The inventory of `Pulumi.handlers.yaml` (one member, one cluster, one node group); a copy
    per test."""
    return copy.deepcopy(INVENTORY_DOCUMENT)


@pytest.fixture
def inventory_in_s3(
    mocked_aws: None, fleet_environment: dict[str, str], inventory_document: dict[str, Any]
) -> dict[str, Any]:
    """The data bucket with `inventory_document` stored at FLEET_INVENTORY_KEY."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=DATA_BUCKET_NAME, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=fleet_environment["FLEET_INVENTORY_KEY"],
        Body=json.dumps(inventory_document).encode("utf-8"),
    )
    return inventory_document
