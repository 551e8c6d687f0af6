"""The detector's reads (a member's CloudWatch) when their endpoint hangs, against the function's
300 s timeout.

Time is simulated (tests/handlers/deadlines.py): a hung attempt spends its client's read timeout
of the invocation's time, botocore's waits between attempts spend theirs, and once the time is up
the invocation ends as Lambda ends it, from wherever it is."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.clock import ManualClock
from fleet_shared.sessions import CLIENT_CONFIG, HUB_CALL_SECONDS
from handlers.anomaly_detector import app
from handlers.anomaly_detector.exceptions import AlarmReadsToRetryError
from handlers.anomaly_detector.target_calls import HUNG_TARGET_CALL_SECONDS, member_cloudwatch
from tests.handlers.analytics_accounts import add_member_copy, member_session
from tests.handlers.anomaly_detector.test_anomaly_detector_app import (
    alarm_event,
    cpu_series,
    put_cpu_history,
    put_member_cpu_spike,
    queue_daily_cost,
)
from tests.handlers.conftest import HUB_ACCOUNT_ID, MEMBER_ACCOUNT_ID, REGION
from tests.handlers.deadlines import LambdaTime
from tests.handlers.faults import MULTI_LINE_PAGE, InjectedFault, answer_of, fail_every_attempt

TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["anomaly_detector"].timeout_seconds
SECOND_MEMBER_ID = "444444444444"


@dataclass
class HungService:
    """Every attempt whose body holds `body_part` (any, by default) goes to an endpoint that
    accepts the connection at the last moment of the client's connect timeout and never answers,
    until healed: each spends both timeouts of the invocation's time and fails as botocore fails
    it."""

    time: LambdaTime
    body_part: bytes = b""
    attempts: int = 0
    attempt_seconds: float = 0.0
    healed: bool = False

    def note_config(self, context: dict[str, Any], **_: Any) -> None:
        config = context["client_config"]
        self.attempt_seconds = config.connect_timeout + config.read_timeout

    def hang(self, request: Any, **_: Any) -> None:
        # A query-protocol service (STS) sends its form as text, the others bytes.
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        if self.healed or self.body_part not in body:
            return
        self.attempts += 1
        self.time.spend(self.attempt_seconds)
        raise ReadTimeoutError(endpoint_url=request.url)

    def hang_calls_of(self, client: Any, calls: str) -> None:
        """Hang the `calls` of `client` (a service's, or `service.Operation`)."""
        events = client.meta.events
        events.register_first(
            f"before-parameter-build.{calls}", self.note_config, unique_id="hung-config"
        )
        events.register_first(f"before-send.{calls}", self.hang, unique_id="hung-send")


@dataclass
class ErrorAnsweredReads:
    """Answers every attempt whose body holds `body_part` with CloudWatch's error `code` and HTTP
    `status` (its query-compatible error code in the header, as CloudWatch sends it over CBOR):
    throttling, by default, until healed; the others go through."""

    body_part: bytes
    code: str = "Throttling"
    status: int = 400
    attempts: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.healed or self.body_part not in (request.body or b""):
            return None
        self.attempts += 1
        headers = {
            "Content-Type": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "x-amzn-query-error": f"{self.code};Sender",
        }
        return AWSResponse(request.url, self.status, headers, _EmptyBody())


class _EmptyBody:
    """The raw body of an error answer without content."""

    def stream(self, **_: Any) -> Any:
        yield b""

    def read(self, amt: int | None = None) -> bytes:
        return b""


def answer_member_reads_of(
    fault: ErrorAnsweredReads, monkeypatch: pytest.MonkeyPatch
) -> ErrorAnsweredReads:
    """Answer every attempt of the member's CloudWatch reads whose request holds the
    `fault`'s body part with its error, whichever config the handler builds that client with."""
    sessions = app.FUNCTION.services().sessions
    build_client = sessions.client

    def client(name: str, account: str, region: str, config: Config = CLIENT_CONFIG) -> Any:
        built = build_client(name, account, region, config)
        if name == "cloudwatch" and account == MEMBER_ACCOUNT_ID:
            events = built.meta.events
            events.register_first("before-send.cloudwatch", fault, unique_id="error-answer")
        return built

    monkeypatch.setattr(sessions, "client", client)
    return fault


def hang_member_cloudwatch(time: LambdaTime, monkeypatch: pytest.MonkeyPatch) -> HungService:
    """Make every attempt of every CloudWatch call in MEMBER_ACCOUNT_ID hang for its client's
    timeouts of `time`, whichever config the handler builds that client with."""
    return hang_service(time, "cloudwatch", MEMBER_ACCOUNT_ID, monkeypatch)


def hang_member_reads_of(
    body_part: bytes, time: LambdaTime, monkeypatch: pytest.MonkeyPatch
) -> HungService:
    """Make every attempt of the member's CloudWatch reads whose request holds `body_part` hang
    for its client's timeouts of `time`; the others go through."""
    return hang_service(time, "cloudwatch", MEMBER_ACCOUNT_ID, monkeypatch, body_part=body_part)


def hang_service(
    time: LambdaTime,
    service: str,
    account_id: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    body_part: bytes = b"",
) -> HungService:
    """Make every attempt of every call of `service` in `account_id` (whose request holds
    `body_part`, if given) hang for its client's timeouts of `time`, whichever config the
    handler builds that client with."""
    fault = HungService(time, body_part)
    sessions = app.FUNCTION.services().sessions
    build_client = sessions.client

    def client(name: str, account: str, region: str, config: Config = CLIENT_CONFIG) -> Any:
        built = build_client(name, account, region, config)
        if name == service and account == account_id:
            fault.hang_calls_of(built, service)
        return built

    monkeypatch.setattr(sessions, "client", client)
    return fault


def test_a_scan_whose_member_cloudwatch_hangs_fails_that_account_and_scans_the_rest_in_time(
    detector: ManualClock,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two members, the second with a CPU spike, the daily cost, the function's whole
    # timeout, and the first member's CloudWatch endpoint answering no call
    add_member_copy(inventory_document, SECOND_MEMBER_ID)
    values = cpu_series(5, detector)
    values[-2] -= 30.0
    put_cpu_history(member_session(SECOND_MEMBER_ID), detector, values)
    queue_daily_cost(detector, [100.0] * 28)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_cloudwatch(time, monkeypatch)
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, time.context())
    # THEN the first member failed after one bounded read, naming the timeout, and the second
    # member's spike and the cost were read: the scan answered in time (Lambda did not end it)
    assert fault.attempts > 1
    assert time.spent <= HUNG_TARGET_CALL_SECONDS
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["account_id"] == MEMBER_ACCOUNT_ID
    assert "Read timeout" in error["error"]
    assert [item["account_id"] for item in result["anomalies"]] == [SECOND_MEMBER_ID]
    assert result["evaluated"] == 2
    assert result["not_started"] == []


def test_a_scan_whose_member_cloudwatch_fails_with_a_page_names_it_on_one_line(
    detector: ManualClock, inventory_document: dict[str, Any]
) -> None:
    # GIVEN a member whose CloudWatch (or a proxy) answers every GetMetricData with a server
    # error whose message is a page over several lines, with a terminal escape
    page = "<html>\nNo anomalies \x1b[31m\u2028" + "x" * 5000
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    fault = fail_every_attempt(cloudwatch, "cloudwatch", "GetMetricData", server_error=page)
    queue_daily_cost(detector, [100.0] * 28)
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, LambdaTime(TIMEOUT_SECONDS).context())
    # THEN the member failed, its error quoting the page on one line, cut, escaped
    assert fault.attempts > 1
    [error] = result["errors"]
    assert error["account_id"] == MEMBER_ACCOUNT_ID
    assert "<html>\\nNo anomalies \\x1b[31m\\u2028xxx" in error["error"]
    assert error["error"].isprintable()
    assert len(error["error"]) < 500


def test_a_scan_without_time_for_a_hung_read_does_not_start_a_member(
    detector: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an invocation with more than ANOMALY_TARGET_SECONDS (20 s) left, but less than that
    # and one read that never answers, and the member's CloudWatch endpoint answering no call
    time = LambdaTime(20 + HUNG_TARGET_CALL_SECONDS - 1).spend_botocore_waits(monkeypatch)
    fault = hang_member_cloudwatch(time, monkeypatch)
    # WHEN the scan runs
    result = app.lambda_handler({"action": "scan"}, time.context())
    # THEN neither the member nor the cost is started, so the scan answers before Lambda ends it
    assert fault.attempts == 0
    assert result["status"] == "partial"
    assert result["not_started"] == [
        {"account_id": MEMBER_ACCOUNT_ID, "region": REGION},
        {"target": "cost"},
    ]


def test_a_scan_whose_cost_explorer_hangs_fails_the_cost_and_alerts_the_metrics_in_time(
    detector: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a member CPU spike, the function's whole timeout, and the hub's Cost Explorer
    # answering no call
    put_member_cpu_spike(detector, seed=5, at=-2, rise=-30.0)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_service(time, "ce", HUB_ACCOUNT_ID, monkeypatch)
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, time.context())
    # THEN the cost failed after one bounded read, naming the timeout, and the member's spike
    # was alerted: the scan answered in time (Lambda did not end it)
    assert fault.attempts > 1
    assert time.spent <= HUNG_TARGET_CALL_SECONDS
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["target"] == "cost"
    assert "Read timeout" in error["error"]
    assert [item["account_id"] for item in result["anomalies"]] == [MEMBER_ACCOUNT_ID]
    assert len(alert_inbox.receive()) == 1


def throttle_maximum_reads(_: LambdaTime, monkeypatch: pytest.MonkeyPatch) -> ErrorAnsweredReads:
    """CloudWatch throttling every attempt of the member's reads of a maximum."""
    return answer_member_reads_of(ErrorAnsweredReads(b"Maximum"), monkeypatch)


def hang_maximum_reads(time: LambdaTime, monkeypatch: pytest.MonkeyPatch) -> HungService:
    """CloudWatch answering no attempt of the member's reads of a maximum."""
    return hang_member_reads_of(b"Maximum", time, monkeypatch)


def refuse_maximum_reads_connections(_: LambdaTime, __: pytest.MonkeyPatch) -> InjectedFault:
    """CloudWatch's endpoint refusing the connection of every attempt of the member's reads of a
    maximum."""
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    return fail_every_attempt(cloudwatch, "cloudwatch", "GetMetricData", body_with=(b"Maximum",))


def page_maximum_reads(_: LambdaTime, __: pytest.MonkeyPatch) -> InjectedFault:
    """CloudWatch answering every attempt of the member's reads of a maximum with a server error
    whose message is a proxy's page of many lines."""
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    return fail_every_attempt(
        cloudwatch,
        "cloudwatch",
        "GetMetricData",
        body_with=(b"Maximum",),
        server_error=MULTI_LINE_PAGE,
    )


def alarm_on_spiking_average_and_maximum(detector: ManualClock) -> dict[str, Any]:
    """The state change of an alarm on both the hourly average and the hourly maximum of the
    member's CPU, which jumped in the last hour."""
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0)
    event = alarm_event(times[-1] + timedelta(minutes=5))
    [average] = event["detail"]["configuration"]["metrics"]
    maximum = copy.deepcopy(average)
    maximum["id"], maximum["metricStat"]["stat"] = "m2", "Maximum"
    event["detail"]["configuration"]["metrics"].append(maximum)
    return event


@pytest.mark.parametrize(
    ("fault_of", "error_text"),
    [
        (throttle_maximum_reads, "Throttling"),
        (hang_maximum_reads, "Read timeout"),
        (refuse_maximum_reads_connections, "Could not connect"),
        (page_maximum_reads, "InternalServerError"),
    ],
    ids=["throttled", "hung", "unreachable", "a-proxy-page-answered"],
)
def test_an_alarm_whose_metric_read_stays_throttled_or_unanswered_is_retried_and_alerted_once(
    detector: ManualClock,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    fault_of: Callable[
        [LambdaTime, pytest.MonkeyPatch], ErrorAnsweredReads | HungService | InjectedFault
    ],
    error_text: str,
) -> None:
    # GIVEN the member's CPU jumped, an alarm on both its hourly average and its hourly maximum,
    # the function's whole timeout, and CloudWatch throttling (or not answering, or not reached)
    # on every attempt of the maximum's read
    event = alarm_on_spiking_average_and_maximum(detector)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = fault_of(time, monkeypatch)
    # WHEN the alarm event arrives
    with pytest.raises(AlarmReadsToRetryError) as failed:
        app.lambda_handler(event, time.context())
    # THEN the invocation fails naming the maximum, after botocore's retries and within one
    # bounded read, so Lambda retries the event; the average's anomaly, read, is alerted now
    assert fault.attempts > 1
    assert time.spent <= HUNG_TARGET_CALL_SECONDS
    [(label, error)] = failed.value.failures
    assert "(Maximum, 3600 s)" in label
    assert error_text in error
    # AND the error quotes what CloudWatch answered on one line
    assert "\n" not in str(failed.value)
    [first] = alert_inbox.receive()
    assert first.alert["resource"].endswith("(Average, 3600 s)")
    # WHEN Lambda retries the event and CloudWatch answers
    fault.healed = True
    retried = app.lambda_handler(event, LambdaTime(TIMEOUT_SECONDS).context())
    # THEN the maximum's anomaly is alerted, and the average's is not alerted a second time
    assert retried["status"] == "ok", retried
    assert retried["alerts"] == 1
    [second] = alert_inbox.receive()
    assert second.alert["resource"].endswith("(Maximum, 3600 s)")
    assert alert_inbox.receive() == []


def test_an_alarm_whose_metric_read_is_refused_alerts_the_others_and_names_it_unretried(
    detector: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the member's CPU jumped, an alarm on both its hourly average and its hourly maximum,
    # and CloudWatch refusing the maximum's read (AccessDenied), which a retry does not change
    event = alarm_on_spiking_average_and_maximum(detector)
    refusal = ErrorAnsweredReads(b"Maximum", code="AccessDenied", status=403)
    answer_member_reads_of(refusal, monkeypatch)
    # WHEN the alarm event arrives
    result = app.lambda_handler(event, LambdaTime(TIMEOUT_SECONDS).context())
    # THEN the invocation does not fail (no retry): its result is partial, naming the maximum
    # and the refusal, and the average's anomaly, read, is alerted once
    assert refusal.attempts == 1
    assert (result["status"], result["alerts"]) == ("partial", 1), result
    [not_read] = result["not_read"]
    assert "(Maximum, 3600 s): " in not_read
    assert "AccessDenied" in not_read
    [alert] = alert_inbox.receive()
    assert alert.alert["resource"].endswith("(Average, 3600 s)")
    assert alert_inbox.receive() == []


@dataclass
class ThrottledAssumeRole:
    """Answers every AssumeRole attempt with STS's throttling (HTTP 400, query-protocol XML)
    until healed."""

    attempts: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.healed:
            return None
        self.attempts += 1
        body = (
            b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>throttled</RequestId></ErrorResponse>"
        )
        return answer_of(request.url, 400, {"Content-Type": "text/xml"}, body)


def throttle_assume_role(_: LambdaTime) -> ThrottledAssumeRole:
    """STS throttling every attempt of the AssumeRole into the member."""
    fault = ThrottledAssumeRole()
    sts = app.FUNCTION.services().sessions.hub_client("sts")
    sts.meta.events.register_first("before-send.sts.AssumeRole", fault, unique_id="throttle")
    return fault


def hang_assume_role(time: LambdaTime) -> HungService:
    """STS answering no attempt of the AssumeRole into the member, each spending its client's
    timeouts of `time`."""
    fault = HungService(time)
    fault.hang_calls_of(app.FUNCTION.services().sessions.hub_client("sts"), "sts.AssumeRole")
    return fault


@pytest.mark.parametrize(
    ("fault_of", "error_text"),
    [(throttle_assume_role, "Throttling"), (hang_assume_role, "Read timeout")],
    ids=["throttled", "hung"],
)
def test_an_alarm_whose_member_role_sts_throttles_or_hangs_is_retried_and_alerted_once(
    detector: ManualClock,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    fault_of: Callable[[LambdaTime], ThrottledAssumeRole | HungService],
    error_text: str,
) -> None:
    # GIVEN the member's CPU jumped and its alarm fired, and STS throttling (or not answering)
    # every attempt of the AssumeRole into the member
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0)
    event = alarm_event(times[-1] + timedelta(minutes=5))
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = fault_of(time)
    # WHEN the alarm event arrives
    with pytest.raises(AlarmReadsToRetryError) as failed:
        app.lambda_handler(event, time.context())
    # THEN the invocation fails naming the account and STS's throttling (or the timeout), after
    # botocore's retries and within one bounded AssumeRole, so Lambda retries the event; nothing
    # was read or alerted
    assert fault.attempts > 1
    assert time.spent <= HUB_CALL_SECONDS
    [(place, error)] = failed.value.failures
    assert place == f"{MEMBER_ACCOUNT_ID}/{REGION}"
    assert error_text in error
    assert alert_inbox.receive() == []
    # WHEN Lambda retries the event and STS answers
    fault.healed = True
    retried = app.lambda_handler(event, LambdaTime(TIMEOUT_SECONDS).context())
    # THEN the anomaly is alerted, once
    assert (retried["status"], retried["alerts"]) == ("ok", 1), retried
    assert len(alert_inbox.receive()) == 1
