"""A read answered with HTTP 200 and a page that is not the call's (a proxy's) fails its target,
rather than passing for a series or a cost with nothing in it: the scan says so and goes on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config

from fleet_shared.clock import ManualClock
from fleet_shared.sessions import CLIENT_CONFIG
from handlers.anomaly_detector import app
from tests.handlers.analytics_accounts import add_member_copy, member_session
from tests.handlers.anomaly_detector.test_anomaly_detector_app import (
    cpu_series,
    put_cpu_history,
    queue_daily_cost,
)
from tests.handlers.anomaly_detector.test_anomaly_target_call_faults import SECOND_MEMBER_ID
from tests.handlers.conftest import HUB_ACCOUNT_ID, MEMBER_ACCOUNT_ID
from tests.handlers.faults import MalformedAnswer


def answer_with_a_proxy_page(
    service: str, account_id: str, monkeypatch: pytest.MonkeyPatch
) -> MalformedAnswer:
    """Answer every call of `service` in `account_id` with a proxy's page (HTTP 200), whichever
    config the handler builds that client with."""
    return answer_every_call(
        service, account_id, monkeypatch, MalformedAnswer(b"<html>gateway</html>", url_part="")
    )


def answer_every_call(
    service: str, account_id: str, monkeypatch: pytest.MonkeyPatch, page: MalformedAnswer
) -> MalformedAnswer:
    """Answer every call of `service` in `account_id` with `page` (HTTP 200), whichever config
    the handler builds that client with."""
    sessions = app.FUNCTION.services().sessions
    build_client = sessions.client

    def client(name: str, account: str, region: str, config: Config = CLIENT_CONFIG) -> Any:
        built = build_client(name, account, region, config)
        if name == service and account == account_id:
            built.meta.events.register_first(f"before-send.{service}", page, unique_id="page")
        return built

    monkeypatch.setattr(sessions, "client", client)
    return page


def both_members_with_a_cpu_spike(
    clock: ManualClock,
    inventory_document: dict[str, Any],
    cost_answered_as: dict[int, object] | None = None,
    cost_starts: dict[int, str] | None = None,
) -> None:
    """The same CPU spike in two members' clusters, and 28 days of flat daily cost (the days
    `cost_answered_as` indexes answered with its JSON value instead, those `cost_starts`
    indexes stamped with its day)."""
    add_member_copy(inventory_document, SECOND_MEMBER_ID)
    values = cpu_series(5, clock)
    values[-2] -= 30.0
    for account_id in (MEMBER_ACCOUNT_ID, SECOND_MEMBER_ID):
        put_cpu_history(member_session(account_id), clock, values)
    queue_daily_cost(clock, [100.0] * 28, answered_as=cost_answered_as, starts=cost_starts)


def test_a_member_whose_cloudwatch_answers_with_a_proxy_page_is_an_error_not_a_quiet_series(
    detector: ManualClock,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    # GIVEN two members with the same CPU spike, the first one's CloudWatch answering
    # GetMetricData with a proxy's page
    both_members_with_a_cpu_spike(detector, inventory_document)
    page = answer_with_a_proxy_page("cloudwatch", MEMBER_ACCOUNT_ID, monkeypatch)
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, lambda_context)
    # THEN the first member is an error naming what the answer lacked, not a member whose
    # metrics stopped reporting, and the second member's spike is found
    assert page.answered >= 1
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["account_id"] == MEMBER_ACCOUNT_ID
    assert "GetMetricData answered without MetricDataResults" in error["error"]
    assert [item["account_id"] for item in result["anomalies"]] == [SECOND_MEMBER_ID]


@pytest.mark.parametrize(
    ("answered", "error_says"),
    [
        pytest.param(
            {"Timestamps": ["not-a-date"], "Values": [1.0]},
            "GetMetricData answered a value botocore cannot read: ValueError",
            id="a-timestamp-botocore-cannot-parse",
        ),
        pytest.param(
            {"Timestamps": [1_700_000_000, 1_700_003_600], "Values": [1.0]},
            "GetMetricData answered without a value for each timestamp of m0",
            id="fewer-values-than-timestamps",
        ),
        pytest.param(
            {"StatusCode": ["Complete"]},
            "GetMetricData answered without a text StatusCode of m0",
            id="a-status-that-is-no-text",
        ),
        pytest.param(
            {"StatusCode": "<html>\nPartialData \x1b[31m\u2028" + "x" * 5000},
            "GetMetricData answered <html>\\nPartialData \\x1b[31m\\u2028xxx",
            id="a-status-over-lines-with-escapes",
        ),
    ],
)
def test_a_member_whose_metrics_cloudwatch_would_not_send_is_an_error_alone(  # noqa: PLR0917 - pytest passes fixtures positionally
    detector: ManualClock,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    answered: dict[str, object],
    error_says: str,
) -> None:
    # GIVEN two members with the same CPU spike, the first one's CloudWatch answering
    # GetMetricData with its JSON holding a timestamp that is no timestamp (on which botocore's
    # parser raises a bare ValueError), fewer values than timestamps, a StatusCode that is no
    # text, or one that is a page over lines with a terminal escape
    both_members_with_a_cpu_spike(detector, inventory_document)
    series = {"Id": "m0", "Timestamps": [], "Values": [], "StatusCode": "Complete", **answered}
    body = json.dumps({"MetricDataResults": [series]}).encode()
    answer = answer_every_call(
        "cloudwatch",
        MEMBER_ACCOUNT_ID,
        monkeypatch,
        MalformedAnswer(body, url_part="", content_type="application/x-amz-json-1.0"),
    )
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, lambda_context)
    # THEN the first member is an error naming the call and what it could not read, quoted on
    # one line and cut, and the second member's spike is found
    assert answer.answered >= 1
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["account_id"] == MEMBER_ACCOUNT_ID
    assert error_says in error["error"]
    assert error["error"].isprintable()
    assert len(error["error"]) < 600
    assert [item["account_id"] for item in result["anomalies"]] == [SECOND_MEMBER_ID]


def test_a_cost_explorer_answering_with_a_proxy_page_is_an_error_not_a_fleet_without_cost(
    detector: ManualClock,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    # GIVEN two members with a CPU spike, and the hub's Cost Explorer answering GetCostAndUsage
    # with a proxy's page
    both_members_with_a_cpu_spike(detector, inventory_document)
    page = answer_with_a_proxy_page("ce", HUB_ACCOUNT_ID, monkeypatch)
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, lambda_context)
    # THEN the cost is an error naming what the answer lacked, and both members' spikes are
    # found
    assert page.answered >= 1
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["target"] == "cost"
    assert "GetCostAndUsage answered without ResultsByTime" in error["error"]
    assert sorted(item["account_id"] for item in result["anomalies"]) == [
        MEMBER_ACCOUNT_ID,
        SECOND_MEMBER_ID,
    ]


@pytest.mark.parametrize(
    ("amount", "error_says"),
    [
        pytest.param(
            "lots", "ValueError: could not convert string to float: 'lots'", id="no-number"
        ),
        pytest.param(None, "KeyError: 'Amount'", id="no-amount"),
        pytest.param(["12.5"], "TypeError: float() argument must be", id="a-list"),
    ],
)
def test_a_cost_explorer_day_shaped_otherwise_is_an_error_and_the_metrics_are_alerted(
    detector: ManualClock,
    inventory_document: dict[str, Any],
    lambda_context: Any,
    amount: object,
    error_says: str,
) -> None:
    # GIVEN two members with a CPU spike, and the hub's Cost Explorer answering the amount of
    # one day as text that is no number, as null, or as a list (botocore hands a JSON answer's
    # values on unchecked)
    both_members_with_a_cpu_spike(detector, inventory_document, cost_answered_as={9: amount})
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, lambda_context)
    # THEN the cost is an error naming the day Cost Explorer would not send, instead of the
    # bare error that ended the scan unalerted, and both members' spikes are found
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["target"] == "cost"
    assert error["error"].startswith(
        f"GetCostAndUsage answered without a readable ResultsByTime[9] ({error_says}"
    )
    assert sorted(item["account_id"] for item in result["anomalies"]) == [
        MEMBER_ACCOUNT_ID,
        SECOND_MEMBER_ID,
    ]


def test_a_cost_explorer_day_outside_the_period_asked_is_an_error_and_the_metrics_are_alerted(
    detector: ManualClock, inventory_document: dict[str, Any], lambda_context: Any
) -> None:
    # GIVEN two members with a CPU spike, and the hub's Cost Explorer answering its last day as
    # one past 2262, where pandas' time index ends
    both_members_with_a_cpu_spike(detector, inventory_document, cost_starts={27: "2300-01-01"})
    # WHEN the schedule invokes the scan
    result = app.lambda_handler({"action": "scan"}, lambda_context)
    # THEN the cost is an error naming that day, instead of the OverflowError that ended the
    # scan unalerted, and both members' spikes are found
    [error] = result["errors"]
    assert error["target"] == "cost"
    assert "TimePeriod.Start 2300-01-01 is outside" in error["error"]
    assert sorted(item["account_id"] for item in result["anomalies"]) == [
        MEMBER_ACCOUNT_ID,
        SECOND_MEMBER_ID,
    ]
