"""notification_router when the state table stops answering right after a channel took an alert,
in simulated time (`LambdaTime`): Slack on 127.0.0.1 answering at the last moment of its HTTP
timeout, the router's own DynamoDB client failed in botocore's send step so its retries run, and
SQS delivering the message again after the queue's visibility timeout."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.alerts import Alert
from fleet_shared.clock import ManualClock
from handlers.notification_router import app
from handlers.notification_router.delivery_policy import RECORDING_SECONDS, attempt_seconds
from handlers.notification_router.environment import RouterEnvironment
from tests.handlers.conftest import START_TIME
from tests.handlers.deadlines import InvocationEndedError, LambdaTime, draw_longest_botocore_waits
from tests.handlers.faults import ThrottledAtTheLastMoment

REGION = "ap-south-1"
DOC_PAGE = Path(__file__).resolve().parents[3] / "docs/functions/notification_router.md"
TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["notification_router"].timeout_seconds
QUEUE_VISIBILITY_SECONDS = 6 * TIMEOUT_SECONDS
"""When SQS hands a message back that no invocation deleted: the program sets the queue's
visibility timeout to six times the function's timeout (`components/fleet_function.py`)."""
SLACK_ANSWER_SECONDS = 4.9
"""Slack answers just within the router's default HTTP timeout (5 s)."""
DELIVERED_RECORD = b'"VALUE#delivered"'
"""What the body of the state table write recording that a channel took an alert holds."""

Invoke = Callable[..., dict[str, Any]]


def alert(severity: str, title: str) -> dict[str, Any]:
    alert = Alert.create(
        severity=severity,
        source="health_monitor",
        title=title,
        detail="1 of 4 desired instances ready (25%)",
        resource=f"222222222222/{REGION}/dev-apps/capacity/{title}",
        account_id="222222222222",
        region=REGION,
        timestamp=START_TIME,
    )
    return json.loads(alert.model_dump_json())


def sqs_event(message_id: str, alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [{"messageId": message_id, "eventSource": "aws:sqs", "body": json.dumps(alert)}]
    }


@dataclass
class SimulatedInvocations:
    """The router's invocations in simulated time, each with its own time left: botocore's waits
    and the hooks spend it, and once it is up Lambda has ended the invocation, so nothing more
    of it reaches DynamoDB (not even the release of its claims on the way out)."""

    monkeypatch: pytest.MonkeyPatch
    time: LambdaTime | None = None

    def run(self, invoke: Invoke, event: dict[str, Any], seconds_left: float) -> dict[str, Any]:
        """The handler's result, or `{"ended_by_lambda": True}` when Lambda ended it."""
        self.time = LambdaTime(seconds_left).spend_botocore_waits(self.monkeypatch)
        try:
            return invoke(event, self.time.context())
        except InvocationEndedError:
            return {"ended_by_lambda": True}

    def spend(self, seconds: float) -> None:
        """Spend `seconds` of the running invocation's time."""
        assert self.time is not None
        self.time.spend(seconds)

    def refuse_after_the_end(self, **_: Any) -> None:
        """A `before-send` hook: a call of an invocation whose time is up is never sent."""
        self.spend(0)


@dataclass
class UnansweredRecording:
    """The first `unanswered_attempts` attempts to record a delivery (a write of its dedup key's
    delivered channels) get no answer: each connects at the last moment and waits out the read
    timeout, spending the invocation's time, and fails as botocore fails it; later attempts are
    answered."""

    invocations: SimulatedInvocations
    attempt_seconds: float
    unanswered_attempts: int
    attempts: int = 0

    def __call__(self, request: Any, **_: Any) -> None:
        if DELIVERED_RECORD not in (request.body or b""):
            return
        if self.attempts >= self.unanswered_attempts:
            return
        self.attempts += 1
        self.invocations.spend(self.attempt_seconds)
        raise ReadTimeoutError(endpoint_url=request.url)


def leave_recording_unanswered(
    invocations: SimulatedInvocations, *, answered_on_the_last_attempt: bool
) -> UnansweredRecording:
    """Leave the router's first attempts to record a delivery unanswered: every attempt of that
    call but botocore's last, or every one; and refuse every DynamoDB call of an invocation
    whose time is up. Needs the router's container (an invocation before)."""
    table_client = app.FUNCTION.services().hub_client("dynamodb")
    config = table_client.meta.config
    attempts = config.retries["total_max_attempts"]
    recording = UnansweredRecording(
        invocations,
        attempt_seconds=config.connect_timeout + config.read_timeout,
        unanswered_attempts=attempts - 1 if answered_on_the_last_attempt else attempts,
    )
    table_client.meta.events.register_first("before-send.dynamodb.PutItem", recording)
    table_client.meta.events.register_first(
        "before-send.dynamodb", invocations.refuse_after_the_end
    )
    return recording


def longest_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore draws its waits between attempts at their longest."""
    draw_longest_botocore_waits(monkeypatch)


@pytest.mark.parametrize("seconds_left", [8, 12, 25], ids=lambda seconds: f"{seconds}s-left")
def test_a_send_the_state_table_records_on_its_last_attempt_reaches_the_channel_once(
    invoke: Invoke,
    receiver: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    seconds_left: int,
) -> None:
    # GIVEN warnings routed to Slack only, Slack answering each post at the last moment of its
    # timeout, and botocore's waits between attempts drawn at their longest
    monkeypatch.setenv("ROUTER_ROUTES", "warning=slack,info=email")
    longest_retry_waits(monkeypatch)
    invoke(sqs_event("warm-up", alert("warning", "warm-up")))
    invocations = SimulatedInvocations(monkeypatch)
    receiver.answer_slowly("/slack", partial(invocations.spend, SLACK_ANSWER_SECONDS))
    # AND a state table that answers the write recording Slack's delivery only on the last of
    # botocore's attempts
    recording = leave_recording_unanswered(invocations, answered_on_the_last_attempt=True)
    event = sqs_event("m-1", alert("warning", "disk pressure"))

    # WHEN the message comes from the queue to an invocation with `seconds_left`
    first = invocations.run(invoke, event, seconds_left)
    # AND SQS delivers it again after the queue's visibility timeout, to an invocation with the
    # function's whole timeout
    fake_clock.advance(QUEUE_VISIBILITY_SECONDS)
    again = invocations.run(invoke, event, TIMEOUT_SECONDS)

    # THEN the router ended both invocations itself, and Slack got the warning exactly once
    posts = [body for body in receiver.bodies("/slack") if "disk pressure" in body["text"]]
    assert ("ended_by_lambda" in first, "ended_by_lambda" in again, len(posts)) == (False, False, 1)
    # AND the state table's slow answer was met on the way
    assert recording.attempts == recording.unanswered_attempts


def test_a_table_silent_after_pagerduty_took_a_critical_alert_costs_only_pagerduty_a_repeat(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the default routes (critical: PagerDuty, then Slack and e-mail), botocore's waits
    # between attempts drawn at their longest
    longest_retry_waits(monkeypatch)
    invoke(sqs_event("warm-up", alert("info", "warm-up")))
    email_inbox.receive()
    invocations = SimulatedInvocations(monkeypatch)
    # AND a state table that answers no attempt of the write recording PagerDuty's delivery
    recording = leave_recording_unanswered(invocations, answered_on_the_last_attempt=False)
    event = sqs_event("m-1", alert("critical", "node group unready"))

    # WHEN the message comes from the queue with the function's whole timeout
    first = invocations.run(invoke, event, TIMEOUT_SECONDS)
    # AND SQS delivers it again after the queue's visibility timeout, the table answering
    fake_clock.advance(QUEUE_VISIBILITY_SECONDS)
    again = invocations.run(invoke, event, TIMEOUT_SECONDS)

    # THEN the first invocation handed the message back itself, and the second sent it
    assert first.get("batchItemFailures") == [{"itemIdentifier": "m-1"}]
    assert again.get("batchItemFailures") == []
    # AND only PagerDuty, whose delivery no call could record, got the alert twice (under one
    # dedup key: one incident); Slack and e-mail, not sent once the table was silent, got it once
    pages = receiver.bodies("/pagerduty")
    sent = (len(pages), len(receiver.bodies("/slack")), len(email_inbox.receive()))
    assert sent == (2, 1, 1)
    assert len({page["dedup_key"] for page in pages}) == 1
    assert recording.attempts == recording.unanswered_attempts


@dataclass
class ThrottledRecording:
    """Every attempt to record a delivery is throttled as its timeouts run out (`throttling`),
    until `healed`; other calls go through."""

    throttling: ThrottledAtTheLastMoment
    healed: bool = False

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        if self.healed or DELIVERED_RECORD not in (request.body or b""):
            return None
        return self.throttling(request, **kwargs)


@pytest.mark.parametrize("resolution", [False, True], ids=["alert", "resolution"])
def test_a_table_throttling_a_record_to_its_bound_costs_only_pagerduty_a_repeat(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    *,
    resolution: bool,
) -> None:
    # GIVEN the default routes (critical: PagerDuty, then Slack and e-mail), botocore's waits
    # between attempts drawn at their longest, and a critical alert, or the resolution of one
    # every channel took (whose delivery is recorded by one write, no channel record after it)
    longest_retry_waits(monkeypatch)
    notice = alert("critical", "node group unready")
    if resolution:
        invoke(sqs_event("m-0", notice))
        paged = Alert.model_validate(notice)
        resolved = paged.resolution("ok", paged.timestamp + timedelta(minutes=5))
        notice = json.loads(resolved.model_dump_json())
    else:
        invoke(sqs_event("warm-up", alert("info", "warm-up")))
    receiver.requests.clear()
    email_inbox.receive()
    invocations = SimulatedInvocations(monkeypatch)
    # AND a state table that throttles each attempt of a write recording a delivery as the
    # attempt's timeouts run out, so that the call runs to its bound (12 s of 13)
    table_client = app.FUNCTION.services().hub_client("dynamodb")
    config = table_client.meta.config
    recording = ThrottledRecording(
        ThrottledAtTheLastMoment(
            invocations.spend, attempt_seconds=config.connect_timeout + config.read_timeout
        )
    )
    table_client.meta.events.register_first("before-send.dynamodb.PutItem", recording)
    event = sqs_event("m-1", notice)

    # WHEN the message comes from the queue with the function's whole timeout
    first = invocations.run(invoke, event, TIMEOUT_SECONDS)
    # AND SQS delivers it again after the queue's visibility timeout, the table answering
    recording.healed = True
    fake_clock.advance(QUEUE_VISIBILITY_SECONDS)
    again = invocations.run(invoke, event, TIMEOUT_SECONDS)

    # THEN the first invocation handed the message back itself, and the second sent it
    assert first.get("batchItemFailures") == [{"itemIdentifier": "m-1"}]
    assert again.get("batchItemFailures") == []
    # AND the table was given up after PagerDuty's record ran to its bound, as after one it
    # did not answer, so no channel was started after it: only PagerDuty got the notice twice
    pages = receiver.bodies("/pagerduty")
    sent = (len(pages), len(receiver.bodies("/slack")), len(email_inbox.receive()))
    assert sent == (2, 1, 1)
    assert recording.throttling.attempts == 3


def test_the_doc_page_states_the_time_an_attempt_needs_and_how_many_fit_one_invocation() -> None:
    # GIVEN the function's timeout, the default HTTP timeout, and the time left an attempt needs
    http_timeout = RouterEnvironment.model_fields["router_http_timeout_seconds"].default
    needed = attempt_seconds(http_timeout)
    # WHEN attempts whose peers each take the whole timeout are started while that is left
    started, left = 0, float(TIMEOUT_SECONDS)
    while left > needed:
        started += 1
        left -= http_timeout
    # THEN the page states the state table's share and that count, as the code computes them
    text = " ".join(DOC_PAGE.read_text().split())
    assert f"then {RECORDING_SECONDS} s for the state table call that records" in text
    assert (
        f"an invocation starts at most {started} channel attempts whose peers each take the whole"
        f" {http_timeout:g} s" in text
    )
