"""Fixtures of the notification_router tests: a webhook receiver on 127.0.0.1 standing in for
Slack and PagerDuty (able to fail or to hang), the secrets pointing at it in moto's Secrets
Manager, the e-mail topic with a queue reading it, the dead-letter queue of the router's queue,
and the handler's services on the fake clock with a recording `sleep`."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.state_table import StateTable
from handlers.notification_router import app
from handlers.notification_router.environment import RouterEnvironment
from handlers.notification_router.services import RouterServices
from tests.handlers.local_peers import LocalPeer, PeerReply, PeerRequest, http_answer

REGION = "ap-south-1"
SLACK_SECRET = "lambda-fleet/slack-webhook"
PAGERDUTY_SECRET = "lambda-fleet/pagerduty-routing-key"
ROUTING_KEY = "R0UT1NGKEYFORTESTS0000000000000"


Answer = int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]
"""A status, or a status with headers (and a body: else `ok`, or `internal error` for an error)."""


@dataclass
class Receiver:
    """Records every POST per path; answers each path with its queued answers, then 200 (after
    the path's `slow` wait, if any), or never (until the client hangs up or the test ends) while
    the path hangs."""

    base_url: str = ""
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sizes: dict[str, list[int]] = field(default_factory=dict)
    """The bytes of each request recorded in `requests`, per path."""
    statuses: dict[str, list[Answer]] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    hung: dict[str, int] = field(default_factory=dict)
    slow: dict[str, Callable[[], None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def fail(self, path: str, status: int, times: int) -> None:
        """Answer the next `times` requests on `path` with `status`."""
        self.statuses[path] = [status] * times

    def answer(self, path: str, *answers: Answer) -> None:
        """Answer the next requests on `path` with `answers`, in order (e.g. `(429,
        {"Retry-After": "120"})`, then `202`)."""
        self.statuses[path] = list(answers)

    def hang(self, path: str) -> None:
        """Leave every request on `path` unanswered: counted in `hung`, not in `requests` (the
        sender gave up, so nothing was delivered)."""
        self.hanging.add(path)

    def answer_slowly(self, path: str, wait: Callable[[], None]) -> None:
        """Call `wait` before answering each request on `path`: a peer slow to answer, whose
        wait a test spends in simulated time."""
        self.slow[path] = wait

    def heal(self, path: str) -> None:
        """Answer `path` again."""
        self.hanging.discard(path)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """What reached `path` and was answered (a hung request was never delivered)."""
        return list(self.requests.get(path, []))

    def reply(self, request: PeerRequest) -> PeerReply:
        """The receiver's reply to a POST: what its path is set to answer."""
        path = request.path
        if path in self.hanging:
            with self.lock:
                self.hung[path] = self.hung.get(path, 0) + 1
            return PeerReply(hang=True)
        wait = self.slow.get(path)
        if wait is not None:
            wait()
        with self.lock:
            self.requests.setdefault(path, []).append(json.loads(request.body or b"null"))
            self.sizes.setdefault(path, []).append(len(request.body))
            queued = self.statuses.get(path, [])
            answer = queued.pop(0) if queued else 200
        status, headers, *body = answer if isinstance(answer, tuple) else (answer, {})
        default_body = b"ok" if status < 300 else b"internal error"
        return PeerReply(http_answer(status, headers, body[0] if body else default_body))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The HTTP peer standing in for Slack (`/slack`) and PagerDuty (`/pagerduty`)."""
    state = Receiver()
    with LocalPeer.responding(state.reply) as peer:
        state.base_url = peer.url("")
        yield state


@dataclass
class EmailInbox:
    """A queue subscribed to the e-mail topic."""

    sqs: Any
    queue_url: str
    topic_arn: str

    def receive(self) -> list[dict[str, Any]]:
        received = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def email_inbox(mocked_aws: None) -> EmailInbox:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="lambda-fleet-email")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="email-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return EmailInbox(sqs, queue_url, topic_arn)


@dataclass
class DeadLetterQueue:
    """The dead-letter queue of the router's queue (ROUTER_DEAD_LETTER_QUEUE_URL)."""

    sqs: Any
    queue_url: str

    def receive(self) -> list[dict[str, Any]]:
        """Every message in it (removed), as SQS answers it, attributes included."""
        received = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(message)
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def dead_letter_queue(mocked_aws: None) -> DeadLetterQueue:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="lambda-fleet-dev-notification-router-queue-dlq")[
        "QueueUrl"
    ]
    return DeadLetterQueue(sqs, queue_url)


@pytest.fixture
def router_environment(
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
    email_inbox: EmailInbox,
    dead_letter_queue: DeadLetterQueue,
) -> dict[str, str]:
    """Every channel on: secrets in Secrets Manager, PagerDuty's URL on the local receiver."""
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=SLACK_SECRET, SecretString=receiver.url("/slack"))
    secrets.create_secret(Name=PAGERDUTY_SECRET, SecretString=ROUTING_KEY)
    environment = {
        "STATE_TABLE_NAME": "lambda-fleet-state",
        "EMAIL_TOPIC_ARN": email_inbox.topic_arn,
        "SLACK_WEBHOOK_SECRET": SLACK_SECRET,
        "PAGERDUTY_ROUTING_KEY_SECRET": PAGERDUTY_SECRET,
        "PAGERDUTY_EVENTS_URL": receiver.url("/pagerduty"),
        "ROUTER_DEAD_LETTER_QUEUE_URL": dead_letter_queue.queue_url,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every backoff the router waited, in order (nothing really waits)."""
    waited: list[float] = []
    monkeypatch.setattr(RouterServices, "sleep", lambda _services, seconds: waited.append(seconds))
    return waited


@pytest.fixture
def invoke(
    router_environment: dict[str, str],
    state_table: StateTable,
    fake_clock: ManualClock,
    sleeps: list[float],
    *,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., dict[str, Any]]:
    """Call `lambda_handler(event, context)` (the default context has 60 s left). The services
    are those of one container per environment: a changed variable gets a new container, as a
    configuration change does in Lambda, and the secret cache lives as long as its container."""
    containers: dict[tuple[tuple[str, str], ...], RouterServices] = {}

    def services() -> RouterServices:
        key = tuple(sorted(os.environ.items()))
        if key not in containers:
            containers[key] = RouterServices.create(
                app.FUNCTION.name, load_environment(RouterEnvironment), clock=fake_clock
            )
        return containers[key]

    def call(event: Any, context: Any = lambda_context) -> dict[str, Any]:
        monkeypatch.setattr(app.FUNCTION, "services", services)
        return app.lambda_handler(event, context)

    return call
