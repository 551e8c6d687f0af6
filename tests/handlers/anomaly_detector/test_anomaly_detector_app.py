"""anomaly_detector handler against moto: scans, dedup, alarm events, detection, bad input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import numpy as np
import pytest
import requests
from botocore.exceptions import EndpointConnectionError

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.cost_explorer import CE_REGION
from fleet_shared.exceptions import ConfigurationError, MetricReadCutShortError
from fleet_shared.handler import Invocation
from fleet_shared.inventory import FleetInventory
from fleet_shared.listed_members import LISTED_MEMBERS, ListedMembers
from fleet_shared.metric_data import MetricQuery
from fleet_shared.state_table import VersionedValue
from fleet_shared.timestamps import iso_z
from handlers.anomaly_detector import alarm, app
from handlers.anomaly_detector.app import lambda_handler
from handlers.anomaly_detector.environment import MetricSpec
from handlers.anomaly_detector.episodes import OPEN_SERIES_KEY
from handlers.anomaly_detector.followed import FollowedSeries
from handlers.anomaly_detector.scan import (
    COST_RESOURCE,
    LISTED_MEMBERS_KEY,
    MetricScan,
    metric_label,
    read_targets,
    series_of_left_members,
)
from handlers.anomaly_detector.target_calls import (
    HUNG_TARGET_CALL_SECONDS,
    member_cloudwatch,
)
from handlers.anomaly_detector.target_calls import TARGET_CALL_CONFIG as TARGET_CONFIG
from tests.handlers.analytics_accounts import deny_assume_role, member_session
from tests.handlers.analytics_services import inject_services
from tests.handlers.anomaly_detector.anomaly_series import seasonal_series
from tests.handlers.conftest import (
    DATA_BUCKET_NAME,
    HUB_ACCOUNT_ID,
    MEMBER_ACCOUNT_ID,
    REGION,
    START_TIME,
)
from tests.handlers.deadlines import (
    KILLED_WITH_SECONDS_LEFT,
    ContextRunningOutOfTime,
    LambdaTime,
    killed_while_publishing_then_retried,
)
from tests.handlers.endless_listings import EndlessSlowPages as EndlessTokenPages
from tests.handlers.faults import MULTI_LINE_PAGE, fail_every_attempt

DENIED_ACCOUNT_ID = "333333333333"
SECOND_MEMBER_ACCOUNT_ID = "444444444444"
CLUSTER_ZONE = ZoneInfo("Asia/Kolkata")
CE_QUEUE_URL = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"
EPISODE_OVER_SECONDS = 50 * 3600
"""Past the default recent window (48 hours) of a spike two hours old."""


def last_hour(clock: ManualClock) -> datetime:
    """The start of the last complete hour: the newest value a scan reads."""
    return clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def put_cpu_history(
    session: boto3.Session, clock: ManualClock, values: np.ndarray, cluster: str = "dev-apps"
) -> list[datetime]:
    """Hourly node_cpu_utilization of `cluster`, the last value at the last complete hour."""
    end = last_hour(clock)
    times = [end - timedelta(hours=len(values) - 1 - i) for i in range(len(values))]
    data = [
        {"MetricName": "node_cpu_utilization",
         "Dimensions": [{"Name": "ClusterName", "Value": cluster}],
         "Timestamp": moment, "Value": float(value)}
        for moment, value in zip(times, values, strict=True)
    ]  # fmt: skip
    cloudwatch = session.client("cloudwatch")
    for offset in range(0, len(data), 1000):
        cloudwatch.put_metric_data(
            Namespace="ContainerInsights", MetricData=data[offset : offset + 1000]
        )
    return times


def queue_daily_cost(
    clock: ManualClock,
    amounts: list[float],
    answered_as: dict[int, object] | None = None,
    units: dict[int, str] | None = None,
    starts: dict[int, str] | None = None,
) -> None:
    """Queue one Cost Explorer answer: `amounts` for the days before the clock's date, the days
    `answered_as` indexes answered with its JSON value (text, else what Cost Explorer never
    sends) instead, in USD but on the days `units` indexes, and stamped with the day `starts`
    gives where it indexes."""
    today = clock.now().date()
    texts: list[object] = [f"{amount:.4f}" for amount in amounts]
    for day_index, text in (answered_as or {}).items():
        texts[day_index] = text
    results = [
        {
            "TimePeriod": {
                "Start": (starts or {}).get(
                    i, (today - timedelta(days=len(amounts) - i)).isoformat()
                ),
                "End": (today - timedelta(days=len(amounts) - i - 1)).isoformat(),
            },
            "Total": {"UnblendedCost": {"Amount": text, "Unit": (units or {}).get(i, "USD")}},
            "Groups": [],
            "Estimated": False,
        }
        for i, text in enumerate(texts)
    ]
    response = requests.post(CE_QUEUE_URL, json={"results": [{"ResultsByTime": results}]})
    assert response.status_code == 201


def cpu_series(seed: int, clock: ManualClock) -> np.ndarray:
    """Four weeks of clean hourly CPU utilisation up to the last complete hour, following the
    calendar of the cluster's users (its schedule's time zone, Asia/Kolkata)."""
    return seasonal_series(
        np.random.default_rng(seed), days=28, end=last_hour(clock), zone=CLUSTER_ZONE
    )[1]


def put_member_cpu_spike(
    clock: ManualClock, *, seed: int, at: int, rise: float, cluster: str = "dev-apps"
) -> list[datetime]:
    """`cpu_series(seed)` of `cluster` in the member account, `rise` added to its value at index
    `at` (-1: the last complete hour); the values' times."""
    values = cpu_series(seed, clock)
    values[at] += rise
    return put_cpu_history(member_session(MEMBER_ACCOUNT_ID), clock, values, cluster=cluster)


def daily_cost_with_a_jump() -> list[float]:
    """A month of daily cost around 100 whose last day is 310."""
    amounts = list(100.0 + np.random.default_rng(4).normal(0.0, 2.0, 28))
    amounts[-1] = 310.0
    return amounts


def scan(context: Any) -> dict[str, Any]:
    """The handler's result for the scheduled scan."""
    result: dict[str, Any] = lambda_handler({"action": "scan"}, context)
    return result


def scan_killed_while_publishing_then_retried(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A scan whose Publish SNS never answers, so Lambda kills it at its deadline, retried a
    minute later: the retry's result. ANOMALY_TARGET_SECONDS is lowered so that the member is
    still started with the killed scan's KILLED_WITH_SECONDS_LEFT, and it gets as far as its
    alerts."""
    monkeypatch.setenv(
        "ANOMALY_TARGET_SECONDS", str(KILLED_WITH_SECONDS_LEFT - HUNG_TARGET_CALL_SECONDS - 1)
    )
    return killed_while_publishing_then_retried(
        app.FUNCTION.services().hub_client("sns"), clock, scan
    )


def test_scan_alerts_a_member_spike_once(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN four weeks of node CPU in the member account, with a spike two hours ago
    times = put_member_cpu_spike(detector, seed=1, at=-3, rise=25.0)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN that spike is reported and alerted, in the member account's name
    assert result["status"] == "ok", result
    [finding] = result["anomalies"]
    assert finding["start"] == times[-3].isoformat().replace("+00:00", "Z")
    assert finding["kind"] == "point"
    assert finding["account_id"] == MEMBER_ACCOUNT_ID
    assert finding["alerted"] is True
    [alert] = alert_inbox.receive()
    assert alert.alert["source"] == "anomaly_detector"
    assert alert.alert["severity"] in ("warning", "critical")
    assert "ContainerInsights/node_cpu_utilization ClusterName=dev-apps" in alert.alert["title"]
    # WHEN the next scan runs 15 minutes later THEN the same anomaly is not raised again
    detector.advance(900)
    again = scan(lambda_context)
    assert [item["alerted"] for item in again["anomalies"]] == [False]
    assert alert_inbox.receive() == []


def test_with_a_one_hour_window_the_last_complete_hours_spike_is_resolved_after_two_usual_hours(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a recent window of one hour and, at 03:30, hourly node CPU whose last complete hour
    # (02:00 to 03:00, stamped 02:00) spiked, ended half an hour ago; the next hours are usual
    monkeypatch.setenv("ANOMALY_RECENT_HOURS", "1")
    two_hours_later = ManualClock(detector.now() + timedelta(hours=2))
    values = cpu_series(1, two_hours_later)
    values[-3] += 25.0
    times = put_cpu_history(member_session(MEMBER_ACCOUNT_ID), two_hours_later, values)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the spike is within the window, and alerted
    assert result["status"] == "ok", result
    [finding] = result["anomalies"]
    assert finding["start"] == times[-3].isoformat().replace("+00:00", "Z")
    assert finding["alerted"] is True
    [alert] = alert_inbox.receive()
    # WHEN the scan an hour later reads one usual hour after it (03:00 to 04:00)
    detector.advance(3600)
    later = scan(lambda_context)
    # THEN the episode is not over yet: one usual sample is a gap an episode may have
    assert (later["anomalies"], later["resolved"]) == ([], 0), later
    assert alert_inbox.receive() == []
    # WHEN the scan an hour after that reads a second usual hour (04:00 to 05:00)
    detector.advance(3600)
    over = scan(lambda_context)
    # THEN the metric has been within its band for the whole window and longer than a gap: the
    # episode is resolved
    assert (over["anomalies"], over["resolved"]) == ([], 1), over
    [resolution] = alert_inbox.receive()
    assert (resolution.alert["id"], resolution.alert["resolved"]) == (alert.alert["id"], True)


def test_clean_series_and_cost_give_no_alert(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN clean CPU history and a usual month of daily cost
    put_cpu_history(member_session(MEMBER_ACCOUNT_ID), detector, cpu_series(2, detector))
    rng = np.random.default_rng(3)
    queue_daily_cost(detector, list(100.0 + rng.normal(0.0, 2.0, 28)))
    # WHEN the scan runs THEN two series are evaluated and nothing is raised
    result = scan(lambda_context)
    assert result == {
        "status": "ok",
        "evaluated": 2,
        "anomalies": [],
        "alerts": 0,
        "resolved": 0,
        "errors": [],
        "not_started": [],
    }
    assert alert_inbox.receive() == []


def test_daily_cost_jump_is_alerted(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a month of daily cost whose last day is three times the usual
    amounts = daily_cost_with_a_jump()
    queue_daily_cost(detector, amounts)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the cost anomaly is raised as a critical alert about the fleet's cost
    [finding] = result["anomalies"]
    assert finding["resource"] == "cost/daily/UnblendedCost"
    assert finding["severity"] == "critical"
    [alert] = alert_inbox.receive()
    assert alert.alert["account_id"] is None
    assert alert.topic_arn.endswith("fleet-alerts-critical")


@pytest.mark.parametrize("recent_days", [1, 3])
def test_a_cost_jump_on_the_oldest_day_of_the_recent_window_is_alerted(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    recent_days: int,
) -> None:
    # GIVEN a recent window of `recent_days` days for the daily cost, a scan at 03:30 UTC (not
    # midnight), and a month of daily cost whose jump is on the window's oldest full day
    monkeypatch.setenv("ANOMALY_COST_RECENT_DAYS", str(recent_days))
    amounts = list(100.0 + np.random.default_rng(4).normal(0.0, 2.0, 28))
    amounts[-recent_days] = 310.0
    queue_daily_cost(detector, amounts)
    jump_day = detector.now().date() - timedelta(days=recent_days)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN that day is within the window (it ended at most `recent_days` days ago) and alerted
    assert result["status"] == "ok", result
    [finding] = result["anomalies"]
    assert finding["resource"] == "cost/daily/UnblendedCost"
    assert finding["start"] == f"{jump_day.isoformat()}T00:00:00Z"
    assert finding["alerted"] is True
    assert len(alert_inbox.receive()) == 1


def test_denied_account_is_reported_and_the_others_are_scanned(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a second member whose role cannot be assumed, before the working one
    denied = copy.deepcopy(inventory_document["members"][0])
    denied["account_id"] = DENIED_ACCOUNT_ID
    inventory_document["members"].insert(0, denied)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME, Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode(),
    )  # fmt: skip
    deny_assume_role(monkeypatch, DENIED_ACCOUNT_ID)
    put_member_cpu_spike(detector, seed=5, at=-2, rise=-30.0)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the denied account is an error and the other account's anomaly is still raised
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["account_id"] == DENIED_ACCOUNT_ID
    assert "AccessDenied" in error["error"]
    assert [f["account_id"] for f in result["anomalies"]] == [MEMBER_ACCOUNT_ID]


def test_configured_metric_list_is_scanned_instead_of_the_default(
    detector: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN ANOMALY_METRICS names one fixed metric (not per cluster) with a spike
    monkeypatch.setenv("ANOMALY_METRICS", json.dumps([
        {"namespace": "Custom/App", "metric": "latency", "dimensions": {"Api": "orders"},
         "stat": "Average", "period": 3600}
    ]))  # fmt: skip
    monkeypatch.setenv("ANOMALY_COST_ENABLED", "false")
    values = seasonal_series(np.random.default_rng(6), days=28, end=last_hour(detector))[1]
    values[-1] += 40.0
    end = last_hour(detector)
    member_session(MEMBER_ACCOUNT_ID).client("cloudwatch").put_metric_data(
        Namespace="Custom/App",
        MetricData=[
            {"MetricName": "latency", "Dimensions": [{"Name": "Api", "Value": "orders"}],
             "Timestamp": end - timedelta(hours=len(values) - 1 - i), "Value": float(v)}
            for i, v in enumerate(values)
        ],
    )  # fmt: skip
    # WHEN the scan runs THEN only that metric is evaluated, and its spike is found
    result = scan(lambda_context)
    assert result["evaluated"] == 1
    assert [f["label"] for f in result["anomalies"]] == [
        "Custom/App/latency Api=orders (Average, 3600 s)"
    ]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(("A/B", "C", {}), ("A", "B/C", {}), id="namespace-and-metric"),
        pytest.param(("N", "m", {"X": "1,Y=2"}), ("N", "m", {"X": "1", "Y": "2"}), id="values"),
        pytest.param(("N", "m", {"X=1,Y": "2"}), ("N", "m", {"X": "1,Y=2"}), id="names"),
        pytest.param(("N", "m X=1", {}), ("N", "m", {"X": "1"}), id="metric-and-dimensions"),
        pytest.param(("N/m X=1", "q", {}), ("N", "m", {"X": "1/q"}), id="namespace-and-value"),
    ],
)
def test_series_whose_names_join_alike_have_labels_of_their_own(
    one: tuple[str, str, dict[str, str]], other: tuple[str, str, dict[str, str]]
) -> None:
    # GIVEN two series whose namespace, metric and dimensions read alike once joined with the
    # label's separators (`/`, space, `,`, `=`) held in their names or values
    first, second = (MetricQuery("m0", *series, "Average", 3600) for series in (one, other))
    # WHEN each is labelled (its resource: its record, episodes and alerts are named after it)
    # THEN the labels differ, so one series' episodes are never taken for the other's
    assert metric_label(first) != metric_label(second)


def alarm_event(alarm_time: datetime) -> dict[str, Any]:
    """An EventBridge alarm state change for the member's node CPU alarm."""
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": MEMBER_ACCOUNT_ID,
        "time": alarm_time.isoformat().replace("+00:00", "Z"),
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{MEMBER_ACCOUNT_ID}:alarm:dev-apps-cpu"],
        "detail": {
            "alarmName": "dev-apps-cpu",
            "state": {"value": "ALARM", "reason": "Threshold Crossed",
                      "timestamp": alarm_time.isoformat().replace("+00:00", "Z")},
            "previousState": {"value": "OK"},
            "configuration": {
                "metrics": [{
                    "id": "m1",
                    "metricStat": {
                        "metric": {"namespace": "ContainerInsights",
                                   "name": "node_cpu_utilization",
                                   "dimensions": {"ClusterName": "dev-apps"}},
                        "period": 3600,
                        "stat": "Average",
                    },
                    "returnData": True,
                }]
            },
        },
    }  # fmt: skip


def alarm_event_with_period(period: int) -> dict[str, Any]:
    """`alarm_event` whose metric has `period` seconds."""
    event = alarm_event(datetime(2025, 6, 2, tzinfo=UTC))
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["period"] = period
    return event


def alarm_event_with_metrics(count: int, *, metric_stat: bool = True) -> dict[str, Any]:
    """`alarm_event` with `count` copies of its metric query (expressions when not
    `metric_stat`)."""
    event = alarm_event(datetime(2025, 6, 2, tzinfo=UTC))
    [query] = event["detail"]["configuration"]["metrics"]
    if not metric_stat:
        query = {"id": "e1", "expression": "m1 * 2", "returnData": False}
    event["detail"]["configuration"]["metrics"] = [{**query, "id": f"q{i}"} for i in range(count)]
    return event


def alarm_event_with_metric(**changes: Any) -> dict[str, Any]:
    """`alarm_event` whose metricStat's metric (namespace, name, dimensions) or statistic
    (`stat`) is changed as `changes` say."""
    event = alarm_event(datetime(2025, 6, 2, tzinfo=UTC))
    metric_stat = event["detail"]["configuration"]["metrics"][0]["metricStat"]
    if "stat" in changes:
        metric_stat["stat"] = changes.pop("stat")
    metric_stat["metric"].update(changes)
    return event


def alarm_event_changed_at(timestamp: str) -> dict[str, Any]:
    """`alarm_event` whose state changed at `timestamp`, as written."""
    event = alarm_event(datetime(2025, 6, 2, tzinfo=UTC))
    event["detail"]["state"]["timestamp"] = timestamp
    return event


def test_alarm_on_an_anomalous_value_is_confirmed_and_alerted(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the member's CPU jumped in the last hour and its alarm fired
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0)
    # WHEN the alarm event arrives
    result = lambda_handler(alarm_event(times[-1] + timedelta(minutes=5)), lambda_context)
    # THEN the anomaly is confirmed and alerted
    assert result["status"] == "ok", result
    assert result["anomalous"] is True
    [alert] = alert_inbox.receive()
    assert alert.alert["title"].startswith("Alarm dev-apps-cpu confirmed")


def test_an_alarm_on_another_statistic_of_a_scanned_metric_is_its_own_episode(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the member's CPU jumped in the last hour, alerted by a scan of its hourly average
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0)
    assert scan(lambda_context)["alerts"] == 1
    [scanned] = alert_inbox.receive()
    # WHEN an alarm on the metric's hourly maximum fires
    event = alarm_event(times[-1] + timedelta(minutes=5))
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["stat"] = "Maximum"
    result = lambda_handler(event, lambda_context)
    # THEN the maximum is its own series: its spike is alerted in its own name, not taken for
    # the average's episode, whose alert is out
    assert (result["status"], result["alerts"]) == ("ok", 1), result
    [confirmed] = alert_inbox.receive()
    assert confirmed.alert["id"] != scanned.alert["id"]
    assert confirmed.alert["resource"].endswith("ClusterName=dev-apps (Maximum, 3600 s)")
    assert scanned.alert["resource"].endswith("ClusterName=dev-apps (Average, 3600 s)")


def alarm_on_dead_letters(
    unit: str, *, as_query: bool = False, metric: str = "dead_letters"
) -> dict[str, Any]:
    """PutMetricAlarm's arguments for `dev-apps-cpu` on the member's hourly `metric` of the
    `jobs` queue in `unit`: on the metric itself, or (`as_query`) as its metric query `m1`."""
    metric_of = {"Namespace": "Custom/App", "MetricName": metric,
                 "Dimensions": [{"Name": "Queue", "Value": "jobs"}]}  # fmt: skip
    alarm = {"AlarmName": "dev-apps-cpu", "EvaluationPeriods": 1, "Threshold": 1.0,
             "ComparisonOperator": "GreaterThanThreshold"}  # fmt: skip
    if as_query:
        stat = {"Metric": metric_of, "Period": 3600, "Stat": "Average", "Unit": unit}
        return {**alarm, "Metrics": [{"Id": "m1", "MetricStat": stat, "ReturnData": True}]}
    return {**alarm, **metric_of, "Period": 3600, "Statistic": "Average", "Unit": unit}


@pytest.mark.parametrize(
    ("event_unit", "alarm", "alarm_read_fails", "anomalous", "without_unit"),
    [
        (None, None, False, True, "DescribeAlarms found no such alarm"),
        ("Bytes", None, False, False, None),
        ("Count", None, False, True, None),
        (None, alarm_on_dead_letters("Bytes"), False, False, None),
        (None, alarm_on_dead_letters("Bytes", as_query=True), False, False, None),
        (None, alarm_on_dead_letters("Bytes", metric="retries"), False, True, "no longer reads"),
        (None, alarm_on_dead_letters("Bytes"), True, True, "the alarm could not be read"),
    ],
    ids=["without-a-unit", "in-bytes", "in-counts", "in-bytes-on-the-alarm",
         "in-bytes-on-the-alarms-query", "alarm-on-another-metric", "alarm-unreadable"],
)  # fmt: skip
def test_an_alarms_unit_chooses_the_noise_floor_of_its_series(  # noqa: PLR0917
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    event_unit: str | None,
    alarm: dict[str, Any] | None,
    alarm_read_fails: bool,
    anomalous: bool,
    without_unit: str | None,
) -> None:
    # GIVEN two days of a member's hourly metric flat at 0 whose last hour reads 3, and an
    # alarm on it whose event names its unit (or none), the alarm itself in the member naming
    # its unit (or no alarm, or one now on another metric), and its read failing (or not): its
    # CloudWatch answering with a proxy's page of many lines
    end = last_hour(detector)
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace="Custom/App",
        MetricData=[
            {"MetricName": "dead_letters", "Dimensions": [{"Name": "Queue", "Value": "jobs"}],
             "Timestamp": end - timedelta(hours=47 - i), "Value": 3.0 if i == 47 else 0.0}
            for i in range(48)
        ],
    )  # fmt: skip
    if alarm is not None:
        cloudwatch.put_metric_alarm(**alarm)
    if alarm_read_fails:
        handlers_cloudwatch = member_cloudwatch(
            app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION
        )
        fail_every_attempt(
            handlers_cloudwatch, "cloudwatch", "DescribeAlarms", server_error=MULTI_LINE_PAGE
        )
    event = alarm_event(end + timedelta(minutes=5))
    metric_stat = event["detail"]["configuration"]["metrics"][0]["metricStat"]
    metric_stat["metric"] = {
        "namespace": "Custom/App",
        "name": "dead_letters",
        "dimensions": {"Queue": "jobs"},
    }
    if event_unit is not None:
        metric_stat["unit"] = event_unit
    # WHEN the alarm event arrives
    result = lambda_handler(event, lambda_context)
    # THEN 3 from a flat 0 is judged in the alarm's unit, the event's or else the alarm's own:
    # three events are anomalous, three bytes are not; without a unit from either, a thousandth
    # of it is the floor, as before, and the result says why the metric has no unit
    assert result["status"] == "ok", result
    assert result["anomalous"] is anomalous
    assert len(alert_inbox.receive()) == int(anomalous)
    if without_unit is None:
        assert result["without_unit"] == []
    else:
        [note] = result["without_unit"]
        assert note.startswith("Custom/App/dead_letters Queue=jobs (Average, 3600 s): no unit")
        assert without_unit in note
        assert note.endswith("noise floor 0.001 of its own unit")
        # AND why is one line, what CloudWatch answered cut
        assert "\n" not in note and len(note) < len(MULTI_LINE_PAGE)


def test_a_followed_series_keeps_its_unit_and_reads_an_entry_recorded_without_one() -> None:
    # GIVEN a followed series in bytes, and an index entry recorded before entries held a unit
    series = FollowedSeries("111111111111", REGION, "Custom/App", "size", {}, "Sum", 60, None,
                            unit="Bytes")  # fmt: skip
    older = series.to_value("2025-06-01T00:00:00Z")
    del older["unit"]
    # WHEN the entries are read back
    # THEN the series keeps its unit, and the older entry is a series without one
    assert FollowedSeries.from_value(series.to_value("2025-06-01T00:00:00Z")) == series
    assert FollowedSeries.from_value(older).unit is None


def test_alarm_on_a_usual_value_is_not_anomalous(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN clean CPU history WHEN its alarm fires anyway
    times = put_cpu_history(member_session(MEMBER_ACCOUNT_ID), detector, cpu_series(8, detector))
    result = lambda_handler(alarm_event(times[-1] + timedelta(minutes=5)), lambda_context)
    # THEN nothing is anomalous and nothing is raised
    assert result["anomalous"] is False
    assert alert_inbox.receive() == []


def test_an_alarm_that_went_to_another_state_than_alarm_is_skipped_and_alerts_nothing(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the member's CPU jumped in the last hour, and its alarm's change back to OK
    # (invoked by hand, or by a rule without the state filter), its state a long text
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0)
    event = alarm_event(times[-1] + timedelta(minutes=5))
    event["detail"]["state"]["value"] = "OK" + "K" * 1000
    # WHEN the event arrives
    result = lambda_handler(event, lambda_context)
    # THEN it is skipped, saying why with the state's start only, and nothing is alerted
    assert result["status"] == "skipped", result
    assert result["reason"].endswith("..., not ALARM")
    assert len(result["reason"]) < 120
    assert len(result["state"]) <= 250
    assert alert_inbox.receive() == []


def test_an_alarm_episode_confirmed_again_after_a_short_dedup_is_not_alerted_twice(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN claims kept one day (the shortest the recent windows allow), four weeks of member
    # CPU whose last day ran 30 points above usual, and an alarm on its daily average: its
    # confirmation window is 3 periods, 3 days, longer than the claim
    for name, value in {
        "ANOMALY_DEDUP_DAYS": "1",
        "ANOMALY_RECENT_HOURS": "24",
        "ANOMALY_COST_RECENT_DAYS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    values = cpu_series(7, detector)
    end = last_hour(detector)
    last_day = end.replace(hour=0)
    values[len(values) - 1 - int((end - last_day) / timedelta(hours=1)) :] += 30.0
    times = put_cpu_history(member_session(MEMBER_ACCOUNT_ID), detector, values)
    event = alarm_event(times[-1] + timedelta(minutes=5))
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["period"] = 86_400
    first = lambda_handler(event, lambda_context)
    assert (first["status"], first["alerts"]) == ("ok", 1), first
    assert len(alert_inbox.receive()) == 1
    # WHEN the alarm fires again two days later, the claim of the first alert lapsed, the
    # episode still within the new alarm's confirmation window
    detector.advance(2 * 86_400)
    again = alarm_event(detector.now())
    again["detail"]["configuration"]["metrics"][0]["metricStat"]["period"] = 86_400
    second = lambda_handler(again, lambda_context)
    # THEN the same episode is confirmed and not alerted a second time
    assert second["status"] == "ok", second
    assert [anomaly["start"] for anomaly in second["anomalies"]] == [
        anomaly["start"] for anomaly in first["anomalies"]
    ]
    assert second["alerts"] == 0
    assert alert_inbox.receive() == []


def test_detect_returns_anomalies_of_the_given_series(lambda_context: Any) -> None:
    # GIVEN a series with one spike, given directly (no AWS needed)
    timestamps, values = seasonal_series(np.random.default_rng(9), days=28)
    values[500] += 20.0
    event = {
        "action": "detect",
        "series": [float(v) for v in values],
        "timestamps": [t.isoformat() for t in timestamps],
    }
    # WHEN detected THEN the spike is returned with its timestamp
    result = lambda_handler(event, lambda_context)
    assert result["status"] == "ok"
    assert [a["timestamp"] for a in result["anomalies"]] == [
        timestamps[500].isoformat().replace("+00:00", "Z")
    ]
    assert result["seasonality"] == ["hour_of_day", "day_of_week"]


NOW = datetime(2025, 6, 2, tzinfo=UTC).isoformat()


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([1, 2], "event"),
        ({"action": "explode"}, "action"),
        ({"action": "scan", "extra": 1}, "extra"),
        ({"action": "detect", "series": [1.0, 2.0], "timestamps": [NOW]}, "event"),
        (
            {"action": "detect", "series": [1.0], "timestamps": ["2025-06-02T00:00:00"]},
            "timestamps",
        ),
        ({"action": "detect", "series": ["high"], "timestamps": [NOW]}, "series[0]"),
        # Past what the detector's time index holds (pandas: 1677-09-21 to 2262-04-11).
        (
            {"action": "detect", "series": [1.0], "timestamps": ["2300-01-01T00:00:00Z"]},
            "timestamps",
        ),
        (
            {"action": "detect", "series": [1.0], "timestamps": ["1600-01-01T00:00:00Z"]},
            "timestamps",
        ),
        ({"action": "detect", "series": [], "timestamps": []}, "series"),
        # One instant twice, in two offsets: one of its values would be dropped unsaid.
        (
            {
                "action": "detect",
                "series": [1.0, 2.0],
                "timestamps": [NOW, "2025-06-02T05:30:00+05:30"],
            },
            "timestamps",
        ),
        # More than a scan reads: the detector's time grows with the square of the length.
        ({"action": "detect", "series": [1.0] * 20_001, "timestamps": [NOW] * 20_001}, "series"),
        (
            {"action": "detect", "series": [1.7e308, -1.7e308], "timestamps": [NOW, NOW]},
            "series",
        ),
        ({**alarm_event(datetime(2025, 6, 2, tzinfo=UTC)), "account": "123"}, "account"),
        ({**alarm_event(datetime(2025, 6, 2, tzinfo=UTC)), "detail": {}}, "detail.alarmName"),
        (
            alarm_event_with_period(10**15),
            "detail.configuration.metrics[0].metricStat.period",
        ),
        # More metrics than CloudWatch lets an alarm have: each would be one read.
        (alarm_event_with_metrics(11), "detail.configuration.metrics"),
        (alarm_event_with_metrics(21, metric_stat=False), "detail.configuration.metrics"),
        # Beyond CloudWatch's limits for a metric: its names reach the series' name, and so the
        # alert's title, the records and the index parts other series share.
        (
            alarm_event_with_metric(dimensions={"ClusterName": "c" * 2_000}),
            "detail.configuration.metrics[0].metricStat.metric.dimensions.ClusterName",
        ),
        (
            alarm_event_with_metric(dimensions={f"d{i}": "v" for i in range(31)}),
            "detail.configuration.metrics[0].metricStat.metric.dimensions",
        ),
        (
            alarm_event_with_metric(namespace="N" * 256),
            "detail.configuration.metrics[0].metricStat.metric.namespace",
        ),
        (
            alarm_event_with_metric(stat="Average<script>"),
            "detail.configuration.metrics[0].metricStat.stat",
        ),
        # Past the calendar's ends in UTC, too near them to read the history, or without a zone.
        (alarm_event_changed_at("9999-12-31T23:59:59-14:00"), "detail.state.timestamp"),
        (alarm_event_changed_at("0001-01-01T00:00:00+14:00"), "detail.state.timestamp"),
        (alarm_event_changed_at("0001-01-01T00:00:00Z"), "detail.state.timestamp"),
        (alarm_event_changed_at("9999-12-31T23:30:00Z"), "detail.state.timestamp"),
        (alarm_event_changed_at("2025-06-02T03:05:00"), "detail.state.timestamp"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any, event: Any, field: str
) -> None:
    # GIVEN a malformed event WHEN handled THEN the error names the field and nothing is raised
    result = lambda_handler(event, lambda_context)
    assert result["status"] == "error"
    assert f"invalid event: {field}:" in result["error"]
    assert alert_inbox.receive() == []


def test_detect_near_cloudwatch_value_limit_returns_only_finite_numbers(
    lambda_context: Any,
) -> None:
    # GIVEN a seasonal series scaled to values near 2**356, CloudWatch's range being +-2**360,
    # with one spike
    timestamps, values = seasonal_series(np.random.default_rng(10), days=28)
    values[400] += 20.0
    event = {
        "action": "detect",
        "series": [float(v) * 2.0**350 for v in values],
        "timestamps": [t.isoformat() for t in timestamps],
    }
    # WHEN detected
    result = lambda_handler(event, lambda_context)
    # THEN the result is standard JSON with a real noise level, and the spike is found
    json.dumps(result, allow_nan=False)
    assert 0 < result["noise_sigma"] < 2.0**360
    assert [a["timestamp"] for a in result["anomalies"]] == [
        timestamps[400].isoformat().replace("+00:00", "Z")
    ]


@pytest.mark.parametrize(
    ("metrics", "named"),
    [
        ('[{"namespace": "X"}]', "metric"),
        # CloudWatch refuses the whole GetMetricData request of a query it refuses: every metric
        # of every account and region went unread, each place reporting CloudWatch's error.
        ('[{"namespace": "X", "metric": "m", "stat": "avg" }]', "'avg' is no CloudWatch statistic"),
        ('[{"namespace": "X", "metric": "m", "dimensions": {"Api": ""}}]', "dimensions.Api"),
        ('[{"namespace": "X", "metric": "' + "m" * 256 + '"}]', "metric"),
        ('[{"namespace": "X", "metric": "m", "unit": "bytes"}]', "unit"),
    ],
    ids=[
        "no-metric",
        "unknown-statistic",
        "empty-dimension-value",
        "metric-name-too-long",
        "unknown-unit",
    ],
)
def test_invalid_metric_list_is_a_configuration_error(
    detector: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    metrics: str,
    named: str,
) -> None:
    # GIVEN ANOMALY_METRICS that is not a JSON list of metrics CloudWatch can read WHEN scanning
    monkeypatch.setenv("ANOMALY_METRICS", metrics)
    # THEN the invocation fails naming the variable and what is wrong
    with pytest.raises(ConfigurationError) as raised:
        scan(lambda_context)
    assert str(raised.value).startswith("environment variable ANOMALY_METRICS")
    assert named in str(raised.value)


def test_every_form_of_a_cloudwatch_statistic_is_taken_in_anomaly_metrics() -> None:
    # GIVEN the statistics CloudWatch documents, in the forms its examples use
    stats = ["SampleCount", "p99.9", "tm90", "TM(2%:98%)", "TM(150:1000)", "PR(:300)", "IQM"]
    # WHEN each is read as a metric's statistic
    specs = [MetricSpec(namespace="X", metric="m", stat=stat) for stat in stats]
    # THEN each is taken as written
    assert [spec.stat for spec in specs] == stats


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"ANOMALY_DEDUP_DAYS": "1"}, "ANOMALY_RECENT_HOURS=48"),
        (
            {"ANOMALY_DEDUP_DAYS": "2", "ANOMALY_COST_RECENT_DAYS": "3"},
            "ANOMALY_COST_RECENT_DAYS=3",
        ),
    ],
)
def test_a_claim_shorter_than_a_recent_window_is_refused_naming_both_variables(  # noqa: PLR0917
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    named: str,
) -> None:
    # GIVEN a member spike, and ANOMALY_DEDUP_DAYS shorter than a recent window: the claim of
    # the spike's alert would lapse while the spike is still reported, and the scan of the next
    # day would alert it again
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    put_spike_then_quiet(detector)
    # WHEN the scan runs
    with pytest.raises(ConfigurationError) as raised:
        scan(lambda_context)
    # THEN the invocation fails, naming both variables, and nothing is alerted
    assert str(raised.value).startswith("environment variable ANOMALY_DEDUP_DAYS")
    assert named in str(raised.value)
    assert alert_inbox.receive() == []


def test_example_detect_event_finds_its_spike(lambda_context: Any) -> None:
    # GIVEN the example event under events/ (a week of hourly load, one spike)
    with open("events/anomaly_detector/detect.json", encoding="utf-8") as file:
        event = json.load(file)
    # WHEN handled THEN only the spike at 2025-06-07T12:00Z is reported
    result = lambda_handler(event, lambda_context)
    assert [a["timestamp"] for a in result["anomalies"]] == ["2025-06-07T12:00:00Z"]


def put_spike_then_quiet(clock: ManualClock, account_id: str = MEMBER_ACCOUNT_ID) -> None:
    """Node CPU of dev-apps in `account_id` with a spike two hours before the clock's last
    complete hour, and clean values from then until EPISODE_OVER_SECONDS later (read only by
    later scans)."""
    later = ManualClock(clock.now() + timedelta(seconds=EPISODE_OVER_SECONDS))
    values = seasonal_series(
        np.random.default_rng(1), days=31, end=last_hour(later), zone=CLUSTER_ZONE
    )[1]
    values[-3 - EPISODE_OVER_SECONDS // 3600] += 25.0
    put_cpu_history(member_session(account_id), later, values)


def spike_alerted_by_a_scan(clock: ManualClock, alert_inbox: Any, context: Any) -> Any:
    """`put_spike_then_quiet`, and a scan that alerted the spike: the alert received."""
    put_spike_then_quiet(clock)
    scan(context)
    [alert] = alert_inbox.receive()
    return alert


def silent_spike_alerted_by_a_scan(
    clock: ManualClock, alert_inbox: Any, context: Any
) -> tuple[Any, list[datetime]]:
    """A member spike at the last complete hour, the series' last value (the metric stopped
    reporting), and a scan that alerted it: the alert received and the series' times."""
    times = put_member_cpu_spike(clock, seed=1, at=-1, rise=25.0)
    scan(context)
    [alert] = alert_inbox.receive()
    return alert, times


def the_one_resolution_of(alert: Any, alert_inbox: Any) -> Any:
    """The one message received since, a resolution of `alert` (its id, marked resolved)."""
    [resolution] = alert_inbox.receive()
    assert (resolution.alert["id"], resolution.alert["resolved"]) == (alert.alert["id"], True)
    return resolution


def assert_a_scan_after_resolves_nothing(
    clock: ManualClock, alert_inbox: Any, context: Any, seconds: int
) -> None:
    """A scan `seconds` later resolves nothing and nothing goes out."""
    clock.advance(seconds)
    assert scan(context)["resolved"] == 0
    assert alert_inbox.receive() == []


@dataclass
class IncompleteMetricData:
    """Answers each series of the member's GetMetricData with InternalError and only its last day
    of values (CloudWatch's answer when it failed to read the rest), until `stop`; `answered`
    holds the ids of the series it answered so."""

    clock: ManualClock
    cloudwatch: Any
    answered: list[str] = field(default_factory=list)

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        since = self.clock.now() - timedelta(days=1)
        for result in parsed.get("MetricDataResults", []):
            kept = [
                (moment, value)
                for moment, value in zip(result["Timestamps"], result["Values"], strict=True)
                if moment >= since
            ]
            result["Timestamps"] = [moment for moment, _ in kept]
            result["Values"] = [value for _, value in kept]
            result["StatusCode"] = "InternalError"
            self.answered.append(result["Id"])

    def stop(self) -> None:
        self.cloudwatch.meta.events.unregister("after-call.cloudwatch.GetMetricData", self)


def answer_member_metric_data_incomplete(clock: ManualClock) -> IncompleteMetricData:
    """Make the handler's member CloudWatch answer every series incomplete, until stopped."""
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    incomplete = IncompleteMetricData(clock, cloudwatch)
    cloudwatch.meta.events.register("after-call.cloudwatch.GetMetricData", incomplete)
    return incomplete


def test_alert_sns_refuses_fails_the_scan_and_the_retry_sends_it_exactly_once(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike two hours ago, and the hub's SNS failing on every attempt
    put_spike_then_quiet(detector)
    fault = fail_every_attempt(app.FUNCTION.services().hub_client("sns"), "sns", "Publish")
    # WHEN the scan runs
    with pytest.raises(AlertNotDeliveredError):
        scan(lambda_context)
    # THEN nothing reached the alert topics
    assert fault.attempts > 1
    assert alert_inbox.receive() == []
    # WHEN the scan is retried with SNS healthy again
    fault.healed = True
    detector.advance(60)
    retried = scan(lambda_context)
    # THEN the anomaly is alerted now (not answered as a duplicate), exactly once
    assert [item["alerted"] for item in retried["anomalies"]] == [True]
    [alert] = alert_inbox.receive()
    assert alert.alert["resolved"] is False
    # WHEN the next scan runs THEN it is not raised again
    detector.advance(900)
    assert scan(lambda_context)["alerts"] == 0
    assert alert_inbox.receive() == []


def test_a_scan_killed_while_sns_hangs_is_alerted_once_by_the_platforms_retry(
    detector: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a member spike two hours ago
    put_spike_then_quiet(detector)
    # WHEN SNS never answers the scan's Publish, so Lambda kills the scan at its deadline, and
    # retries it a minute later
    retried = scan_killed_while_publishing_then_retried(detector, monkeypatch)
    # THEN the retry is not refused by the killed scan's claim: the anomaly is alerted once
    assert [item["alerted"] for item in retried["anomalies"]] == [True]
    [alert] = alert_inbox.receive()
    assert alert.alert["resolved"] is False


def test_an_episode_that_is_over_is_resolved_once_with_the_alerts_id(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike alerted by a scan
    alert = spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    # WHEN scans go on while the spike is still in the recent window
    detector.advance(24 * 3600)
    ongoing = scan(lambda_context)
    # THEN nothing is resolved yet
    assert (ongoing["alerts"], ongoing["resolved"]) == (0, 0)
    assert alert_inbox.receive() == []
    # WHEN the metric has been back within its band for the whole window
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    over = scan(lambda_context)
    # THEN one resolution goes out, with the alert's id, as a resolution
    assert (over["anomalies"], over["resolved"]) == ([], 1)
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert resolution.subject.startswith("[RESOLVED]")
    # WHEN the next scan runs THEN the episode is not resolved again
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)


def test_an_episode_whose_alert_never_went_out_is_not_resolved(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike whose alert SNS refused every time while it was recent
    put_spike_then_quiet(detector)
    fault = fail_every_attempt(app.FUNCTION.services().hub_client("sns"), "sns", "Publish")
    with pytest.raises(AlertNotDeliveredError):
        scan(lambda_context)
    # WHEN SNS is healthy again only after the episode is over
    fault.healed = True
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    result = scan(lambda_context)
    # THEN neither an alert nor a resolution goes out
    assert (result["alerts"], result["resolved"]) == (0, 0)
    assert alert_inbox.receive() == []


def test_an_episode_an_alarm_confirmed_is_not_resolved_under_an_id_never_alerted(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike whose CPU alarm fired and was confirmed as anomalous
    put_spike_then_quiet(detector)
    confirmed = lambda_handler(alarm_event(detector.now() - timedelta(hours=1)), lambda_context)
    assert confirmed["alerts"] == 1, confirmed
    announced = {received.alert["id"] for received in alert_inbox.receive()}
    # WHEN the scans read the same episode while it is recent, and after it is over
    scanned = scan(lambda_context)
    assert [item["alerted"] for item in scanned["anomalies"]] == [False]
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    scan(lambda_context)
    # THEN no resolution goes out for an alert id that was never announced
    resolutions = [received.alert for received in alert_inbox.receive()]
    assert [alert["id"] for alert in resolutions if alert["id"] not in announced] == []


def scans_reading_another_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scans whose ANOMALY_METRICS names a metric other than the member's node CPU, its alarm's
    (so no scan reads the alarm's series of its own accord), without the cost part."""
    monkeypatch.setenv("ANOMALY_METRICS", json.dumps([
        {"namespace": "Custom/App", "metric": "latency", "dimensions": {"Api": "orders"}}
    ]))  # fmt: skip
    monkeypatch.setenv("ANOMALY_COST_ENABLED", "false")


def alarm_alerted_on_a_series_no_scan_reads(
    clock: ManualClock, alert_inbox: Any, context: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """`put_spike_then_quiet`, scans that do not read node CPU, and the CPU alarm that fired on
    the spike and alerted it: the alert received."""
    scans_reading_another_metric(monkeypatch)
    put_spike_then_quiet(clock)
    confirmed = lambda_handler(alarm_event(clock.now() - timedelta(hours=1)), context)
    assert confirmed["alerts"] == 1, confirmed
    [alert] = alert_inbox.receive()
    return alert


def label_before_the_statistic_and_period(query: MetricQuery) -> str:
    """A series' label as the detector wrote it before it held the statistic and period."""
    dims = ",".join(f"{name}={value}" for name, value in sorted(query.dimensions.items()))
    return f"{query.namespace}/{query.metric_name}" + (f" {dims}" if dims else "")


@pytest.mark.parametrize(
    "alarm_label",
    [metric_label, label_before_the_statistic_and_period],
    ids=["named-as-now", "named-before-the-upgrade"],
)
def test_an_episode_an_alarm_alerted_on_a_series_no_scan_reads_is_resolved_once_it_is_over(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    alarm_label: Callable[[MetricQuery], str],
) -> None:
    # GIVEN a member spike an alarm alerted, on a series outside the scans' ANOMALY_METRICS,
    # recorded and followed under the series' name, or under its name before the upgrade that
    # added the statistic and period (the scans name it with them)
    monkeypatch.setattr(alarm, "metric_label", alarm_label)
    alert = alarm_alerted_on_a_series_no_scan_reads(
        detector, alert_inbox, lambda_context, monkeypatch
    )
    monkeypatch.setattr(alarm, "metric_label", metric_label)
    # WHEN scans run while the spike is still in the recent window
    ongoing = scan(lambda_context)
    # THEN it is followed under that name: nothing is alerted again or resolved
    assert (ongoing["alerts"], ongoing["resolved"]) == (0, 0), ongoing
    assert alert_inbox.receive() == []
    # WHEN the metric has been back within its band for the whole window (the alarm went OK)
    # and the next scheduled scan runs
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    over = scan(lambda_context)
    # THEN one resolution goes out, with the alarm's alert id
    assert over["resolved"] == 1, over
    the_one_resolution_of(alert, alert_inbox)
    # AND the scans after it resolve nothing more, nor read the series any more
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)
    assert scan(lambda_context)["evaluated"] == 1


def test_a_scan_following_an_alarms_series_alerts_no_other_spike_of_it(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN node CPU with a spike two hours ago and another 20 hours later, on a series outside
    # the scans' ANOMALY_METRICS, and the alarm that fired on the first and alerted it
    scans_reading_another_metric(monkeypatch)
    later = ManualClock(detector.now() + timedelta(seconds=EPISODE_OVER_SECONDS))
    values = seasonal_series(
        np.random.default_rng(1), days=31, end=last_hour(later), zone=CLUSTER_ZONE
    )[1]
    first_spike = len(values) - 3 - EPISODE_OVER_SECONDS // 3600
    values[first_spike] += 25.0
    values[first_spike + 20] += 25.0
    put_cpu_history(member_session(MEMBER_ACCOUNT_ID), later, values)
    confirmed = lambda_handler(alarm_event(detector.now() - timedelta(hours=1)), lambda_context)
    assert confirmed["alerts"] == 1, confirmed
    [alert] = alert_inbox.receive()
    # WHEN scans read the series after the second spike, and once the first is over
    detector.advance(22 * 3600)
    after_second = scan(lambda_context)
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    first_over = scan(lambda_context)
    # THEN the second spike is not alerted (the scans only follow the alarm's episode), and the
    # first is resolved once
    assert after_second["alerts"] == 0, after_second
    assert (first_over["alerts"], first_over["resolved"]) == (0, 1), first_over
    the_one_resolution_of(alert, alert_inbox)


def test_an_alarm_episode_recorded_while_a_scan_drops_the_followed_series_is_resolved_once(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN node CPU, outside the scans' ANOMALY_METRICS, with a spike two hours ago that its
    # alarm alerted, and a second spike 50 hours later
    scans_reading_another_metric(monkeypatch)
    over_twice = START_TIME + 2 * timedelta(seconds=EPISODE_OVER_SECONDS)
    values = seasonal_series(
        np.random.default_rng(1), days=33, end=last_hour(ManualClock(over_twice)), zone=CLUSTER_ZONE
    )[1]
    values[-3 - 2 * EPISODE_OVER_SECONDS // 3600] += 25.0
    values[-1 - EPISODE_OVER_SECONDS // 3600] += 25.0
    put_cpu_history(member_session(MEMBER_ACCOUNT_ID), ManualClock(over_twice), values)
    first = lambda_handler(alarm_event(detector.now() - timedelta(hours=1)), lambda_context)
    assert first["alerts"] == 1, first
    alert_inbox.receive()
    # WHEN the scan that finds the first spike over and resolves it saves the index, the alarm
    # of the second spike runs whole, after that scan read the index and the series' record
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    alarms: list[dict[str, Any]] = []

    def alarm_of_the_second_spike(params: dict[str, Any], **_: Any) -> None:
        if not alarms and params["Item"]["pk"]["S"] == f"STATE#{OPEN_SERIES_KEY}":
            alarms.append({})
            alarms.append(app.FUNCTION.invoke(alarm_event(detector.now()), Invocation.local()))

    dynamodb = app.FUNCTION.services().hub_client("dynamodb")
    dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.PutItem", alarm_of_the_second_spike
    )
    assert scan(lambda_context)["resolved"] == 1
    dynamodb.meta.events.unregister(
        "before-parameter-build.dynamodb.PutItem", alarm_of_the_second_spike
    )
    assert alarms[1]["alerts"] == 1, alarms
    [_, second] = [received.alert for received in alert_inbox.receive()]
    # AND the scans go on until the second spike is over
    detector.advance(900)
    assert scan(lambda_context)["resolved"] == 0
    detector.set(over_twice)
    over = scan(lambda_context)
    # THEN the second spike's episode is resolved too, once
    assert over["resolved"] == 1, over
    [resolution] = alert_inbox.receive()
    assert (resolution.alert["id"], resolution.alert["resolved"]) == (second["id"], True)


def test_an_alarm_episode_on_a_series_no_scan_reads_is_not_resolved_by_a_failed_read(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike an alarm alerted, on a series outside the scans' ANOMALY_METRICS,
    # that is over
    alert = alarm_alerted_on_a_series_no_scan_reads(
        detector, alert_inbox, lambda_context, monkeypatch
    )
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    # AND the member's GetMetricData failing every attempt
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    fault = fail_every_attempt(cloudwatch, "cloudwatch", "GetMetricData")
    # WHEN the scheduled scan runs
    failed = scan(lambda_context)
    # THEN nothing is resolved, and the scan names the account and region it could not read
    assert failed["resolved"] == 0, failed
    assert [(error["account_id"], error["region"]) for error in failed["errors"]] == [
        (MEMBER_ACCOUNT_ID, REGION)
    ]
    assert alert_inbox.receive() == []
    # AND once CloudWatch answers again, the next scan resolves it once
    fault.healed = True
    detector.advance(900)
    assert scan(lambda_context)["resolved"] == 1
    the_one_resolution_of(alert, alert_inbox)


def scan_after_a_member_left(
    account_id: str,
    detector: ManualClock,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """The result of the scheduled scan 15 minutes after `account_id` left the inventory, its
    role with it, run in a new container (an old one's member credentials expire within the
    hour)."""
    inventory_document["members"] = [
        member for member in inventory_document["members"] if member["account_id"] != account_id
    ]
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME, Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode(),
    )  # fmt: skip
    deny_assume_role(monkeypatch, account_id)
    inject_services(monkeypatch, app.FUNCTION, detector)
    detector.advance(900)
    return scan(lambda_context)


def test_an_alarm_episode_followed_on_a_member_that_left_is_resolved_once_without_reading_it(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike an alarm alerted, on a series outside the scans' ANOMALY_METRICS
    alert = alarm_alerted_on_a_series_no_scan_reads(
        detector, alert_inbox, lambda_context, monkeypatch
    )
    # AND the member then removed from the inventory, its role with it
    # WHEN the next scheduled scans run, in a new container (an old one's member credentials
    # expire within the hour)
    first = scan_after_a_member_left(
        MEMBER_ACCOUNT_ID, detector, lambda_context, inventory_document, monkeypatch
    )
    # THEN the first resolves the episode once, saying the account left the fleet, and neither
    # reads the member nor reports it as an error
    assert (first["status"], first["errors"], first["resolved"]) == ("ok", [], 1), first
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert f"account {MEMBER_ACCOUNT_ID}, which left the fleet" in resolution.alert["detail"]
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)
    assert scan(lambda_context)["errors"] == []


def test_a_scan_episode_of_a_member_that_left_is_resolved_once_without_reading_it(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two members, each with a spike on a metric of the scans' ANOMALY_METRICS that a
    # scan alerted
    with_a_second_member_first(inventory_document)
    put_spike_then_quiet(detector)
    put_spike_then_quiet(detector, SECOND_MEMBER_ACCOUNT_ID)
    assert scan(lambda_context)["alerts"] == 2
    alerts = {received.alert["account_id"]: received for received in alert_inbox.receive()}
    # AND the second member then removed from the inventory, its role with it
    # WHEN the next scheduled scan runs, in a new container (an old one's member credentials
    # expire within the hour), while both spikes' episodes are still going on
    first = scan_after_a_member_left(
        SECOND_MEMBER_ACCOUNT_ID, detector, lambda_context, inventory_document, monkeypatch
    )
    # THEN it resolves the second member's episode once, saying the account left the fleet,
    # without reading that member or reporting it as an error
    assert (first["status"], first["errors"], first["resolved"]) == ("ok", [], 1), first
    detail = the_one_resolution_of(alerts[SECOND_MEMBER_ACCOUNT_ID], alert_inbox).alert["detail"]
    assert f"account {SECOND_MEMBER_ACCOUNT_ID}, which left the fleet" in detail
    # AND the scan after sends nothing: the remaining member's episode is left open
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)
    # AND that episode is resolved once it is over, as ever
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    assert scan(lambda_context)["resolved"] == 1
    the_one_resolution_of(alerts[MEMBER_ACCOUNT_ID], alert_inbox)


def alarm_from_a_member_not_listed_yet(
    clock: ManualClock, alert_inbox: Any, context: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A spike in SECOND_MEMBER_ACCOUNT_ID, which the inventory does not list yet (its rule
    forwarded the alarm first), on a series outside the scans' ANOMALY_METRICS, and its CPU
    alarm that alerted it: the alert received."""
    scans_reading_another_metric(monkeypatch)
    put_spike_then_quiet(clock, SECOND_MEMBER_ACCOUNT_ID)
    event = alarm_event(clock.now() - timedelta(hours=1))
    event["account"] = SECOND_MEMBER_ACCOUNT_ID
    confirmed = lambda_handler(event, context)
    assert confirmed["alerts"] == 1, confirmed
    [alert] = alert_inbox.receive()
    return alert


def scan_before_the_member_is_listed(
    clock: ManualClock, context: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The scheduled scan 15 minutes later, in a new container, while the inventory does not
    list SECOND_MEMBER_ACCOUNT_ID and its member role refuses to be assumed (it may not exist
    yet): a read of it would be an error of the scan."""
    clock.advance(900)
    with pytest.MonkeyPatch.context() as not_yet:
        deny_assume_role(not_yet, SECOND_MEMBER_ACCOUNT_ID)
        inject_services(not_yet, app.FUNCTION, clock)
        return scan(context)


def test_an_alarm_from_a_member_not_listed_yet_is_not_resolved_as_left_and_goes_on_once_listed(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an alarm of a member the inventory does not list yet, which alerted its spike
    alert = alarm_from_a_member_not_listed_yet(detector, alert_inbox, lambda_context, monkeypatch)
    # WHEN the next scheduled scans run before the inventory lists it
    before = scan_before_the_member_is_listed(detector, lambda_context, monkeypatch)
    # THEN neither closes the episode nor sends anything, nor tries to read the member
    assert (before["status"], before["errors"], before["resolved"]) == ("ok", [], 0), before
    assert alert_inbox.receive() == []
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)
    # WHEN the inventory then lists it, and scans run while its spike goes on
    with_a_second_member_first(inventory_document)
    ongoing = scan(lambda_context)
    # THEN they read it and the episode goes on: nothing alerted again, nothing resolved
    assert (ongoing["errors"], ongoing["alerts"], ongoing["resolved"]) == ([], 0, 0), ongoing
    assert alert_inbox.receive() == []
    # AND once the metric has been back within its band for the whole window, the episode is
    # resolved once, as over, not as of an account that left
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    assert scan(lambda_context)["resolved"] == 1
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert "back within its expected band" in resolution.alert["detail"]
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)


def test_a_member_that_leaves_after_it_was_listed_is_resolved_once_as_left(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an alarm of a member the inventory did not list yet, which alerted its spike, and
    # a scan before the inventory listed it
    alert = alarm_from_a_member_not_listed_yet(detector, alert_inbox, lambda_context, monkeypatch)
    assert scan_before_the_member_is_listed(detector, lambda_context, monkeypatch)["resolved"] == 0
    # AND the inventory then listing it, and a scan while its spike goes on
    with_a_second_member_first(inventory_document)
    assert scan(lambda_context)["resolved"] == 0
    assert alert_inbox.receive() == []
    # WHEN the member is then removed from the inventory, its role with it, and the next
    # scheduled scan runs
    left = scan_after_a_member_left(
        SECOND_MEMBER_ACCOUNT_ID, detector, lambda_context, inventory_document, monkeypatch
    )
    # THEN it resolves the episode once, saying the account left the fleet, without reading it
    assert (left["status"], left["errors"], left["resolved"]) == ("ok", [], 1), left
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert f"account {SECOND_MEMBER_ACCOUNT_ID}, which left the fleet" in resolution.alert["detail"]
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)


def test_a_member_that_left_in_the_upgrade_to_the_note_of_listed_members_is_resolved_once(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike an alarm alerted, by a version that noted no listed members
    alert = alarm_alerted_on_a_series_no_scan_reads(
        detector, alert_inbox, lambda_context, monkeypatch
    )
    app.FUNCTION.services().state.delete_value(LISTED_MEMBERS_KEY, LISTED_MEMBERS)
    # WHEN the member leaves in the deployment that upgrades it, and the next scan runs
    first = scan_after_a_member_left(
        MEMBER_ACCOUNT_ID, detector, lambda_context, inventory_document, monkeypatch
    )
    # THEN it judges as that version did: the episode is resolved once, the account having left
    assert (first["errors"], first["resolved"]) == ([], 1), first
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert f"account {MEMBER_ACCOUNT_ID}, which left the fleet" in resolution.alert["detail"]
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)


def test_only_the_series_whose_resource_names_an_account_the_inventory_lacks_count_as_left(
    inventory_document: dict[str, Any],
) -> None:
    # GIVEN an index with the daily cost, a series of the member, and one of an account the
    # inventory does not have, whose label has an account id's digits in it too
    present = f"{MEMBER_ACCOUNT_ID}/{REGION}/ContainerInsights/node_cpu_utilization"
    gone = f"{SECOND_MEMBER_ACCOUNT_ID}/{REGION}/Custom/errors Account={MEMBER_ACCOUNT_ID}"
    index = {
        "open_series#00": VersionedValue.saved(
            {"series": {COST_RESOURCE: None, present: None, gone: "2026-01-01T00:00:00Z"}}
        )
    }
    # WHEN the scan picks the series of members that left the fleet
    listed = ListedMembers({MEMBER_ACCOUNT_ID: None, SECOND_MEMBER_ACCOUNT_ID: None})
    inventory = FleetInventory.model_validate(inventory_document)
    left = series_of_left_members(index, inventory, listed)
    # THEN only the other account's series is closed, naming that account
    assert left == {gone: f"is of account {SECOND_MEMBER_ACCOUNT_ID}, which left the fleet"}


def test_an_alarm_whose_series_could_not_be_followed_is_alerted_once_and_resolved_once(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike its CPU alarm fired on, on a series outside the scans'
    # ANOMALY_METRICS, and DynamoDB failing every write of the index of open series
    scans_reading_another_metric(monkeypatch)
    put_spike_then_quiet(detector)
    entered = alarm_event(detector.now() - timedelta(hours=1))
    unwritable = fail_every_attempt(
        app.FUNCTION.services().hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        body_with=(OPEN_SERIES_KEY.encode(),),
    )
    # WHEN the alarm's event is handled
    with pytest.raises(EndpointConnectionError):
        lambda_handler(entered, lambda_context)
    # THEN its alert went out, and the invocation failed so EventBridge retries it
    assert unwritable.attempts > 1
    [alert] = alert_inbox.receive()
    # WHEN the retry comes a minute later with DynamoDB back, and the scans go on while the
    # spike is recent
    unwritable.healed = True
    detector.advance(60)
    retried = lambda_handler(entered, lambda_context)
    ongoing = scan(lambda_context)
    # THEN the retry and the scans alert nothing more
    assert retried["alerts"] == 0, retried
    assert (ongoing["alerts"], ongoing["resolved"]) == (0, 0), ongoing
    assert alert_inbox.receive() == []
    # AND the retry put the series in the index: once the spike is over, a scan resolves it once
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    assert scan(lambda_context)["resolved"] == 1
    the_one_resolution_of(alert, alert_inbox)
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)


def put_latency_spike(clock: ManualClock) -> None:
    """Four weeks of hourly `Custom/App/latency Api=orders` in the member account (the metric
    `scans_reading_another_metric` names), with a spike at the clock's last complete hour."""
    end = last_hour(clock)
    times, values = seasonal_series(np.random.default_rng(7), days=28, end=end)
    values[-1] += 25.0
    data = [
        {"MetricName": "latency", "Dimensions": [{"Name": "Api", "Value": "orders"}],
         "Timestamp": moment, "Value": float(value)}
        for moment, value in zip(times, values, strict=True)
    ]  # fmt: skip
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    for offset in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace="Custom/App", MetricData=data[offset : offset + 1000])


def test_a_followed_series_a_scan_could_not_read_resolves_nothing_and_loses_no_other_series(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike an alarm alerted, on a series outside the scans' ANOMALY_METRICS,
    # that is over, and a spike of the metric the scans do read, in the same account and region
    alert = alarm_alerted_on_a_series_no_scan_reads(
        detector, alert_inbox, lambda_context, monkeypatch
    )
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    put_latency_spike(detector)
    # AND the member's GetMetricData failing every attempt of the read of the followed series
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    fault = fail_every_attempt(
        cloudwatch, "cloudwatch", "GetMetricData", body_with=(b"node_cpu_utilization",)
    )
    # WHEN the scheduled scan runs
    failed = scan(lambda_context)
    # THEN the followed episode is not resolved, the scan names the account and region it could
    # not read, and the series it could read is scanned: its spike alerted once
    assert fault.attempts > 1
    assert (failed["status"], failed["resolved"], failed["alerts"]) == ("partial", 0, 1), failed
    assert [(error["account_id"], error["region"]) for error in failed["errors"]] == [
        (MEMBER_ACCOUNT_ID, REGION)
    ]
    [spike] = [received.alert for received in alert_inbox.receive()]
    assert (spike["resource"], spike["resolved"]) == (
        f"{MEMBER_ACCOUNT_ID}/{REGION}/Custom/App/latency Api=orders (Average, 3600 s)",
        False,
    )
    # AND once CloudWatch answers again, the next scan resolves the followed episode once and
    # alerts nothing again
    fault.healed = True
    detector.advance(900)
    healed = scan(lambda_context)
    assert (healed["resolved"], healed["alerts"]) == (1, 0), healed
    the_one_resolution_of(alert, alert_inbox)


def test_a_followed_series_a_scan_had_no_time_for_is_read_first_by_the_next_scan(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike an alarm alerted, on a series outside the scans' ANOMALY_METRICS,
    # that is over
    alert = alarm_alerted_on_a_series_no_scan_reads(
        detector, alert_inbox, lambda_context, monkeypatch
    )
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    # WHEN two scans run, each with time for one read of an account and region only
    results = []
    for _ in range(2):
        detector.advance(900)
        results.append(scan(ContextRunningOutOfTime(millis_left=[60_000, 5_000])))
    # THEN the first reads the scans' own metric and leaves the followed series for the next
    # scan, which reads it first and resolves the episode once
    assert results[0]["not_started"] == [{"account_id": MEMBER_ACCOUNT_ID, "region": REGION}]
    assert (results[0]["resolved"], results[1]["resolved"]) == (0, 1), results
    the_one_resolution_of(alert, alert_inbox)


@dataclass
class EndlessSlowPages:
    """Every GetMetricData answer to a read of the member's node CPU (the followed series) names
    a next page, and each page spends `page_seconds` of the invocation's `time`: a read of
    hundreds of 1-minute series, page after page, while `endless` holds."""

    time: LambdaTime
    page_seconds: float
    endless: bool = True
    reads_cpu: bool = False
    pages: int = 0

    def note_request(self, params: dict[str, Any], **_: Any) -> None:
        self.reads_cpu = any(
            query["MetricStat"]["Metric"]["MetricName"] == "node_cpu_utilization"
            for query in params["MetricDataQueries"]
        )

    def answer(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.endless and self.reads_cpu:
            self.pages += 1
            self.time.spend(self.page_seconds)
            parsed["NextToken"] = f"page-{self.pages + 1}"


def test_a_followed_read_of_many_pages_stops_in_time_and_is_read_first_by_the_next_scan(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike an alarm alerted, on a series outside the scans' ANOMALY_METRICS,
    # that is over
    alert = alarm_alerted_on_a_series_no_scan_reads(
        detector, alert_inbox, lambda_context, monkeypatch
    )
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    # AND the read of the followed series taking page after page, 10 s each, in an invocation
    # with 100 s left (time to start the place: ANOMALY_TARGET_SECONDS, 20 s, and one hung read)
    time = LambdaTime(100)
    slow = EndlessSlowPages(time, page_seconds=10)
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    cloudwatch.meta.events.register_first(
        "before-parameter-build.cloudwatch.GetMetricData", slow.note_request
    )
    cloudwatch.meta.events.register_first("after-call.cloudwatch.GetMetricData", slow.answer)
    # WHEN the scheduled scan runs
    cut_short = scan(time.context())
    # THEN it stops asking pages while a place could still start, before Lambda ends it, and
    # the place counts as not started: nothing is resolved from its partial series
    assert slow.pages == 6
    assert time.seconds_left - time.spent < 20 + HUNG_TARGET_CALL_SECONDS
    assert cut_short["not_started"] == [{"account_id": MEMBER_ACCOUNT_ID, "region": REGION}]
    assert (cut_short["status"], cut_short["resolved"]) == ("partial", 0), cut_short
    assert alert_inbox.receive() == []
    # WHEN the pages end again and the next scan runs, with time for one place only
    slow.endless = False
    detector.advance(900)
    read = scan(ContextRunningOutOfTime(millis_left=[60_000, 5_000]))
    # THEN it reads the place first and resolves the episode once
    assert read["resolved"] == 1, read
    the_one_resolution_of(alert, alert_inbox)


def with_a_second_member_first(inventory_document: dict[str, Any]) -> None:
    """Write the fleet inventory with a copy of the member, as SECOND_MEMBER_ACCOUNT_ID, before
    it: two accounts and regions of the scans' own metrics, the second member's without data."""
    second = copy.deepcopy(inventory_document["members"][0])
    second["account_id"] = SECOND_MEMBER_ACCOUNT_ID
    inventory_document["members"].insert(0, second)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME, Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode(),
    )  # fmt: skip


def test_an_own_metric_read_of_many_pages_stops_in_time_and_is_read_first_by_the_next_scan(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
) -> None:
    # GIVEN a member spike a scan alerted (node CPU, the scans' own ANOMALY_METRICS), that is
    # over, and a second member before it in the inventory
    alert = spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    with_a_second_member_first(inventory_document)
    # AND the read of the member's own metrics taking page after page, 10 s each, in an
    # invocation with 100 s left (time to start a place: ANOMALY_TARGET_SECONDS, 20 s, and one
    # hung read)
    time = LambdaTime(100)
    slow = EndlessSlowPages(time, page_seconds=10)
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    cloudwatch.meta.events.register_first(
        "before-parameter-build.cloudwatch.GetMetricData", slow.note_request
    )
    cloudwatch.meta.events.register_first("after-call.cloudwatch.GetMetricData", slow.answer)
    # WHEN the scheduled scan runs
    cut_short = scan(time.context())
    # THEN it stops asking pages while a place could still start, before Lambda ends it, and
    # the member counts as not started: nothing is resolved from its partial series
    assert slow.pages == 6
    assert time.seconds_left - time.spent < 20 + HUNG_TARGET_CALL_SECONDS
    assert cut_short["not_started"] == [
        {"account_id": MEMBER_ACCOUNT_ID, "region": REGION},
        {"target": "cost"},
    ]
    assert (cut_short["status"], cut_short["resolved"]) == ("partial", 0), cut_short
    assert alert_inbox.receive() == []
    # WHEN the pages end again and the next scan runs, with time for one place only
    slow.endless = False
    detector.advance(900)
    read = scan(ContextRunningOutOfTime(millis_left=[60_000, 5_000]))
    # THEN it reads the member first and resolves the episode once; the second member waits
    assert read["not_started"] == [
        {"account_id": SECOND_MEMBER_ACCOUNT_ID, "region": REGION},
        {"target": "cost"},
    ]
    assert read["resolved"] == 1, read
    the_one_resolution_of(alert, alert_inbox)


def test_own_metric_places_a_scan_had_no_time_for_are_read_first_by_the_next_scan(
    detector: ManualClock, inventory_document: dict[str, Any]
) -> None:
    # GIVEN two accounts and regions of the scans' own metrics
    with_a_second_member_first(inventory_document)
    # WHEN three scans run, each with time for one of them only
    left = [
        scan(ContextRunningOutOfTime(millis_left=[60_000, 5_000]))["not_started"] for _ in range(3)
    ]
    # THEN the place one scan left is the one the next scan reads: they take turns
    second, member = (
        {"account_id": account_id, "region": REGION}
        for account_id in (SECOND_MEMBER_ACCOUNT_ID, MEMBER_ACCOUNT_ID)
    )
    assert left == [[member, {"target": "cost"}], [second, {"target": "cost"}],
                    [member, {"target": "cost"}]]  # fmt: skip


def test_a_read_of_a_place_at_two_periods_stops_before_the_second_when_time_runs_out(
    detector: ManualClock,
) -> None:
    # GIVEN followed series of one place at two periods (one GetMetricData request each), and a
    # scan with no time left for a request after the first
    services = app.FUNCTION.services()
    targets = [
        (MetricQuery(f"f{period}", "ContainerInsights", "node_cpu_utilization",
                     {"ClusterName": "dev-apps"}, "Average", period), f"cpu/{period}", None)
        for period in (60, 300)
    ]  # fmt: skip
    sent: list[str] = []
    cloudwatch = member_cloudwatch(services.sessions, MEMBER_ACCOUNT_ID, REGION)
    cloudwatch.meta.events.register(
        "before-call.cloudwatch.GetMetricData", lambda **_: sent.append("GetMetricData")
    )
    read = MetricScan()
    # WHEN the place is read
    with pytest.raises(MetricReadCutShortError):
        read_targets(
            services.sessions,
            services.environment,
            (MEMBER_ACCOUNT_ID, REGION),
            targets,
            now=detector.now(),
            scan=read,
            next_page_allowed=lambda: False,
        )
    # THEN the second request is not sent, and nothing of the first is taken for a reading
    assert sent == ["GetMetricData"]
    assert (read.evaluated, read.findings, read.errors) == ([], [], [])


def test_an_episode_whose_metric_stopped_reporting_is_not_resolved(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike alerted by a scan, after which the metric stopped reporting (the
    # spike is the series' last value)
    alert, _ = silent_spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    assert alert.alert["resolved"] is False
    # WHEN scans run after the spike has left the recent window, still without a value
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    result = scan(lambda_context)
    # THEN nothing says the metric is back within its band: no resolution goes out
    assert result["resolved"] == 0
    assert alert_inbox.receive() == []


def test_an_episode_whose_metric_stayed_silent_for_the_dedup_days_is_closed_once(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike alerted by a scan, after which the metric stopped reporting (the
    # spike is the series' last value)
    alert, times = silent_spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    # WHEN scans go on while it stays silent, for less than ANOMALY_DEDUP_DAYS (7)
    for hours in (50, 6 * 24):
        detector.set(START_TIME + timedelta(hours=hours))
        assert scan(lambda_context)["resolved"] == 0
    # THEN silence is not taken for recovery: nothing is resolved
    assert alert_inbox.receive() == []
    # WHEN a scan runs ANOMALY_DEDUP_DAYS after the series' last value, still without a value
    detector.set(times[-1] + timedelta(days=7, minutes=15))
    closed = scan(lambda_context)
    # THEN one resolution closes the alert's episode, saying the metric stopped reporting
    assert closed["resolved"] == 1
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert "no value since" in resolution.alert["detail"]
    # WHEN the metric reports again, within its band, THEN that episode is not resolved again
    put_cpu_history(member_session(MEMBER_ACCOUNT_ID), detector, cpu_series(2, detector))
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)


def spike_alerted_then_its_cluster_left(
    clock: ManualClock, alert_inbox: Any, context: Any, inventory_document: dict[str, Any]
) -> tuple[Any, datetime]:
    """`spike_alerted_by_a_scan`, after which the fleet inventory is written with the member's
    cluster gone, so no scan reads its series: the alert, and when the first scan misses it."""
    alert = spike_alerted_by_a_scan(clock, alert_inbox, context)
    without_cluster = copy.deepcopy(inventory_document)
    without_cluster["members"][0]["clusters"] = []
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(without_cluster).encode("utf-8"),
    )
    return alert, clock.now() + timedelta(minutes=15)


def test_an_episode_of_a_cluster_that_left_the_inventory_is_closed_once_after_the_dedup_days(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
) -> None:
    # GIVEN a member spike alerted by a scan, after which the cluster left the fleet inventory,
    # so no scan reads its series any more
    alert, first_missed = spike_alerted_then_its_cluster_left(
        detector, alert_inbox, lambda_context, inventory_document
    )
    # WHEN scans go on, for less than ANOMALY_DEDUP_DAYS (7) after the first that missed it
    for hours in (0, 6 * 24):
        detector.set(first_missed + timedelta(hours=hours))
        assert scan(lambda_context)["resolved"] == 0
    # THEN nothing is resolved
    assert alert_inbox.receive() == []
    # WHEN a scan runs ANOMALY_DEDUP_DAYS after the first that missed the series
    detector.set(first_missed + timedelta(days=7))
    closed = scan(lambda_context)
    # THEN one resolution closes the alert's episode, saying the series is no longer read
    assert closed["resolved"] == 1
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert "no longer read" in resolution.alert["detail"]
    # AND the next scan sends nothing more
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 900)


def test_a_silent_series_close_killed_while_sns_hangs_is_sent_once_by_the_platforms_retry(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike alerted by a scan, after which the metric stopped reporting, and a
    # scan ANOMALY_DEDUP_DAYS after its last value, when the episode is to be closed
    alert, times = silent_spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    detector.set(times[-1] + timedelta(days=7, minutes=15))
    # WHEN SNS never answers that scan's Publish of the closing resolution, so Lambda kills the
    # scan at its deadline, and retries it a minute later
    retried = scan_killed_while_publishing_then_retried(detector, monkeypatch)
    # THEN the retry is not refused by the killed scan's claim: it closes the episode, once
    assert retried["resolved"] == 1, retried
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert "no value since" in resolution.alert["detail"]


def test_an_unread_series_close_killed_while_sns_hangs_is_sent_once_by_the_platforms_retry(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a member spike alerted by a scan, after which the cluster left the fleet inventory,
    # and a scan ANOMALY_DEDUP_DAYS after the first that missed it, when the episode is closed
    alert, first_missed = spike_alerted_then_its_cluster_left(
        detector, alert_inbox, lambda_context, inventory_document
    )
    detector.set(first_missed)
    scan(lambda_context)
    detector.set(first_missed + timedelta(days=7))
    # WHEN SNS never answers that scan's Publish of the closing resolution, so Lambda kills the
    # scan at its deadline, and retries it a minute later
    retried = scan_killed_while_publishing_then_retried(detector, monkeypatch)
    # THEN the retry is not refused by the killed scan's claim: it closes the episode, once
    assert retried["resolved"] == 1, retried
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert "no longer read" in resolution.alert["detail"]


def test_a_scan_short_of_time_leaves_the_rest_not_started(
    detector: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN a member spike, and an invocation with time for the member's metrics only
    put_spike_then_quiet(detector)
    running_out = ContextRunningOutOfTime(millis_left=[60_000, 5_000])
    # WHEN the scan runs
    result = lambda_handler({"action": "scan"}, running_out)
    # THEN the member is scanned and alerted, the cost is not started, and the scan is partial
    assert result["status"] == "partial"
    assert result["not_started"] == [{"target": "cost"}]
    assert result["evaluated"] == 1
    assert len(alert_inbox.receive()) == 1


def test_an_episode_whose_series_came_back_incomplete_is_not_resolved_by_it(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike alerted by a scan
    alert = spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    # WHEN, once the episode is over, GetMetricData answers the series with InternalError and
    # only its last day of values (CloudWatch's answer when it failed to read the rest)
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    incomplete = answer_member_metric_data_incomplete(detector)
    result = scan(lambda_context)
    # THEN the series is reported as not read, the scan is partial and nothing is resolved
    assert incomplete.answered
    assert (result["status"], result["resolved"]) == ("partial", 0)
    [error] = result["errors"]
    assert error["account_id"] == MEMBER_ACCOUNT_ID
    assert "node_cpu_utilization" in error["error"]
    assert "InternalError" in error["error"]
    assert alert_inbox.receive() == []
    # WHEN the next scan reads the whole series again
    incomplete.stop()
    detector.advance(900)
    healed = scan(lambda_context)
    # THEN the episode is resolved then, once, under the alert's id
    assert healed["resolved"] == 1
    the_one_resolution_of(alert, alert_inbox)


@pytest.mark.parametrize(
    ("alarm_name", "shown"),
    [
        ("<!channel> *deploy*" + "y" * 10_000, "'<!channel> *deploy*yyyy"),
        ("dev-apps-cpu\x00\x1b[2J", "'dev-apps-cpu\\x00\\x1b[2J'"),
    ],
)
def test_an_alarm_name_cloudwatch_would_refuse_is_refused_showing_its_start(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any, alarm_name: str, shown: str
) -> None:
    # GIVEN a member spike, and an alarm event for it whose name is 10,000 characters of markup
    # or holds control characters (CloudWatch names have 1-255 characters, no control ones)
    put_spike_then_quiet(detector)
    event = alarm_event(detector.now() - timedelta(hours=1))
    event["detail"]["alarmName"] = alarm_name
    # WHEN it is handled
    result = lambda_handler(event, lambda_context)
    # THEN it is refused in one short line naming the field and quoting the name's start
    assert result["status"] == "error"
    assert result["error"].startswith("invalid event: detail.alarmName: ")
    assert shown in result["error"]
    assert len(result["error"]) < 200
    # AND nothing was alerted
    assert alert_inbox.receive() == []


def test_an_eventbridge_event_of_another_detail_type_is_refused_naming_it(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN an EventBridge event that is not an alarm state change (a misrouted rule)
    event = alarm_event(detector.now() - timedelta(hours=1))
    event["detail-type"] = "EC2 Instance State-change Notification" + "!" * 10_000
    # WHEN it is handled
    result = lambda_handler(event, lambda_context)
    # THEN the error names `detail-type` and quotes its start, not a missing `action`
    assert result["status"] == "error"
    assert result["error"].startswith("invalid event: detail-type: ")
    assert "'EC2 Instance State-change" in result["error"]
    assert len(result["error"]) < 200
    assert alert_inbox.receive() == []


def test_an_alarm_on_a_metric_with_a_long_dimension_value_is_alerted_once(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a spike of a metric whose dimension value has 1,000 characters (CloudWatch takes up
    # to 1,024), too long for a state table key as it is, and its alarm fired
    cluster = "c" * 1000
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0, cluster=cluster)
    event = alarm_event(times[-1] + timedelta(minutes=5))
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "ClusterName": cluster
    }
    # WHEN the alarm event arrives
    result = lambda_handler(event, lambda_context)
    # THEN the anomaly is confirmed and alerted, naming the whole metric
    assert (result["status"], result["alerts"]) == ("ok", 1), result
    [alert] = alert_inbox.receive()
    assert alert.alert["resource"].endswith(f"ClusterName={cluster} (Average, 3600 s)")
    # WHEN the event is delivered again THEN it is not alerted twice
    assert lambda_handler(event, lambda_context)["alerts"] == 0
    assert alert_inbox.receive() == []


def test_sns_failing_after_a_scans_first_alert_records_and_repeats_only_what_went_out(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any, state_table: Any
) -> None:
    # GIVEN a member CPU spike and a jump of the daily cost, and SNS failing after the first
    # alert of the scan went out
    put_spike_then_quiet(detector)
    amounts = daily_cost_with_a_jump()
    queue_daily_cost(detector, amounts)
    fault = fail_every_attempt(app.FUNCTION.services().hub_client("sns"), "sns", "Publish", after=1)
    # WHEN the scan runs THEN it fails after the CPU spike's alert went out
    with pytest.raises(AlertNotDeliveredError):
        scan(lambda_context)
    assert fault.attempts > 1
    [cpu_alert] = alert_inbox.receive()
    # AND only that episode is recorded as open, the one a later scan may resolve
    cpu_open = state_table.get_value(f"anomaly/{cpu_alert.alert['resource']}", "open_episodes")
    assert [alert["id"] for alert in cpu_open["episodes"].values()] == [cpu_alert.alert["id"]]
    cost_record = state_table.get_value("anomaly/cost/daily/UnblendedCost", "open_episodes")
    assert cost_record["episodes"] == {}
    # WHEN the scan is retried with SNS healthy again
    fault.healed = True
    queue_daily_cost(detector, amounts)
    detector.advance(60)
    retried = scan(lambda_context)
    # THEN only the cost alert goes out now, and both episodes are open
    assert retried["alerts"] == 1
    [cost_alert] = alert_inbox.receive()
    assert cost_alert.alert["resource"] == "cost/daily/UnblendedCost"
    cost_open = state_table.get_value("anomaly/cost/daily/UnblendedCost", "open_episodes")
    assert [alert["id"] for alert in cost_open["episodes"].values()] == [cost_alert.alert["id"]]


def test_a_resolution_whose_record_failed_is_not_sent_again(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike alerted by a scan
    alert = spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    # WHEN the episode is over and the state table fails to record it closed once its
    # resolution went out
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    fault = fail_every_attempt(
        app.FUNCTION.services().hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        body_with=(b"VALUE#open_episodes",),
    )
    with pytest.raises(EndpointConnectionError):
        scan(lambda_context)
    assert fault.attempts > 1
    the_one_resolution_of(alert, alert_inbox)
    # WHEN the retry runs with the table healthy THEN no second resolution goes out
    fault.healed = True
    assert_a_scan_after_resolves_nothing(detector, alert_inbox, lambda_context, 60)


def test_an_alarm_handled_while_a_scan_publishes_the_same_episode_alerts_it_once(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike, and its alarm event handled while the scan publishes its alert
    put_spike_then_quiet(detector)
    event = alarm_event(detector.now() - timedelta(hours=1))
    alarm_outcomes: list[str] = []

    def handle_alarm_meanwhile(**_: Any) -> None:
        if alarm_outcomes:
            return
        try:
            alarm_outcomes.append(str(lambda_handler(event, lambda_context)["alerts"]))
        except AlertNotDeliveredError as error:
            alarm_outcomes.append(type(error).__name__)

    app.FUNCTION.services().hub_client("sns").meta.events.register_first(
        "before-send.sns.Publish", handle_alarm_meanwhile
    )
    # WHEN the scan runs
    scanned = scan(lambda_context)
    # THEN the scan alerted the episode and the alarm's invocation failed, to be retried
    assert scanned["alerts"] == 1
    assert alarm_outcomes == ["AlertNotDeliveredError"]
    # AND the platform's retry of the alarm finds it alerted: one alert in all
    assert lambda_handler(event, lambda_context)["alerts"] == 0
    assert len(alert_inbox.receive()) == 1


def test_an_alarm_whose_series_came_back_incomplete_is_an_error_not_a_usual_value(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the member's CPU jumped in the last hour and its alarm fired, but GetMetricData
    # answers the series with InternalError and only its last day of values
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0)
    answer_member_metric_data_incomplete(detector)
    # WHEN the alarm event arrives
    result = lambda_handler(alarm_event(times[-1] + timedelta(minutes=5)), lambda_context)
    # THEN it is an error naming the metric and the status, not an answer that the value is usual
    assert result["status"] == "error", result
    assert "anomalous" not in result
    assert "ContainerInsights/node_cpu_utilization ClusterName=dev-apps" in result["error"]
    assert "InternalError" in result["error"]
    assert result["alarm"] == "dev-apps-cpu"
    assert alert_inbox.receive() == []


@dataclass
class MetricValueReplaced:
    """Answers the value at `position` of every series of the member's GetMetricData with
    `value` (what CloudWatch's CBOR answer can carry, and moto's store cannot)."""

    cloudwatch: Any
    position: int
    value: float
    replaced: list[str] = field(default_factory=list)

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if len(result["Values"]) > abs(self.position):
                result["Values"][self.position] = self.value
                self.replaced.append(result["Id"])

    def stop(self) -> None:
        self.cloudwatch.meta.events.unregister("after-call.cloudwatch.GetMetricData", self)


def answer_member_metric_value(position: int, value: float) -> MetricValueReplaced:
    """Make the handler's member CloudWatch answer `value` at `position` of every series, until
    stopped."""
    cloudwatch = member_cloudwatch(app.FUNCTION.services().sessions, MEMBER_ACCOUNT_ID, REGION)
    replaced = MetricValueReplaced(cloudwatch, position, value)
    cloudwatch.meta.events.register("after-call.cloudwatch.GetMetricData", replaced)
    return replaced


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 2.0**400])
def test_a_metric_value_that_is_not_a_number_is_left_out_and_named_and_the_scan_goes_on(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any, value: float
) -> None:
    # GIVEN four weeks of member CPU with a spike two hours ago, a month of daily cost, and
    # GetMetricData answering one value of a week ago as `value`
    times = put_member_cpu_spike(detector, seed=1, at=-3, rise=25.0)
    queue_daily_cost(detector, list(100.0 + np.random.default_rng(3).normal(0.0, 2.0, 28)))
    replaced = answer_member_metric_value(-168, value)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the value is left out and named with the metric, and the scan is partial
    assert replaced.replaced
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["account_id"] == MEMBER_ACCOUNT_ID
    assert error["metric"] == (
        "ContainerInsights/node_cpu_utilization ClusterName=dev-apps (Average, 3600 s)"
    )
    assert "1 value left out" in error["error"]
    assert repr(value) in error["error"]
    assert iso_z(times[-168]) in error["error"]
    # AND the spike is alerted from the rest of the series, and the cost was scanned
    assert [finding["start"] for finding in result["anomalies"]] == [iso_z(times[-3])]
    assert result["evaluated"] == 2
    assert len(alert_inbox.receive()) == 1


@pytest.mark.parametrize("amount", ["Infinity", "NaN", "1e400"])
def test_a_daily_cost_that_is_not_a_number_is_left_out_and_named_and_the_scan_goes_on(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any, amount: str
) -> None:
    # GIVEN a member CPU spike two hours ago, and a month of daily cost whose last day is three
    # times the usual and whose tenth day Cost Explorer answers as `amount`
    put_member_cpu_spike(detector, seed=1, at=-3, rise=25.0)
    queue_daily_cost(detector, daily_cost_with_a_jump(), answered_as={9: amount})
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the day is left out and named, and the scan is partial
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["target"] == "cost"
    assert error["error"].startswith("Total.UnblendedCost.Amount: 1 value left out")
    assert f"the first {float(amount)!r} on " in error["error"]
    # AND the metric spike and the cost jump are both alerted
    resources = sorted(finding["resource"] for finding in result["anomalies"])
    assert resources == [
        f"{MEMBER_ACCOUNT_ID}/{REGION}/ContainerInsights/node_cpu_utilization "
        "ClusterName=dev-apps (Average, 3600 s)",
        "cost/daily/UnblendedCost",
    ]
    assert len(alert_inbox.receive()) == 2


def test_a_daily_cost_in_another_currency_is_left_out_and_named_and_the_alert_says_usd(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a month of daily cost in USD whose last day is three times the usual, and whose
    # tenth day Cost Explorer answers in EUR
    queue_daily_cost(detector, daily_cost_with_a_jump(), units={9: "EUR"})
    tenth_day = detector.now().date() - timedelta(days=28 - 9)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the EUR day is left out with one error naming the field, the count and its currency
    assert result["status"] == "partial"
    assert result["errors"] == [
        {
            "target": "cost",
            "error": "Total.UnblendedCost.Unit: 1 value left out, not in USD as the others; "
            f"the first 'EUR' on {tenth_day.isoformat()}",
        }
    ]
    # AND the jump is alerted from the USD days, saying it is in USD
    [finding] = result["anomalies"]
    assert finding["resource"] == "cost/daily/UnblendedCost"
    [alert] = alert_inbox.receive()
    assert "daily cost (UnblendedCost, USD)" in alert.alert["title"]


def test_the_daily_cost_is_read_without_the_charges_posted_once_a_month(
    detector: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a month of daily cost, and the request the scan sends Cost Explorer noted as
    # botocore sends it
    queue_daily_cost(detector, list(100.0 + np.random.default_rng(3).normal(0.0, 2.0, 28)))
    ce = app.FUNCTION.services().sessions.client("ce", HUB_ACCOUNT_ID, CE_REGION, TARGET_CONFIG)
    bodies: list[dict[str, Any]] = []
    ce.meta.events.register(
        "before-call.ce.GetCostAndUsage",
        lambda params, **_: bodies.append(json.loads(params["body"])),
    )
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the one request leaves out tax, support, the reservation and Savings Plans fees,
    # credits and refunds (each would spike on its day), and keeps every usage record
    assert result["status"] == "ok", result
    [body] = bodies
    excluded = body["Filter"]["Not"]["Dimensions"]
    assert excluded["Key"] == "RECORD_TYPE"
    assert {"Tax", "Support", "Recurring reservation fee", "SavingsPlanRecurringFee"} <= set(
        excluded["Values"]
    )
    assert not {"Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"} & set(excluded["Values"])


def test_cost_explorer_paging_on_under_new_tokens_fails_the_cost_alone_and_the_scan_ends(
    detector: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN a member CPU spike two hours ago, and Cost Explorer (or a proxy) answering every
    # GetCostAndUsage with a next page under a token never sent before, each page taking 10 s
    # of an invocation with 100 s left
    put_member_cpu_spike(detector, seed=1, at=-3, rise=25.0)
    queue_daily_cost(detector, daily_cost_with_a_jump())
    time = LambdaTime(100.0)
    endless = EndlessTokenPages(time, 10.0, "NextPageToken")
    ce = app.FUNCTION.services().sessions.client("ce", HUB_ACCOUNT_ID, CE_REGION, TARGET_CONFIG)
    endless.register(ce.meta.events, "ce.GetCostAndUsage", "NextPageToken")
    # WHEN the scan runs
    result = scan(time.context())
    # THEN the pages are followed only while a target could still start, instead of until
    # Lambda ended the scan: the cost's one error
    assert time.seconds_left - time.spent <= 20 + HUNG_TARGET_CALL_SECONDS
    assert result["errors"] == [
        {
            "target": "cost",
            "error": "GetCostAndUsage read cut short before its next page, for lack of time",
        }
    ]
    # AND the member's spike is still alerted
    [finding] = result["anomalies"]
    assert finding["account_id"] == MEMBER_ACCOUNT_ID
    assert len(alert_inbox.receive()) == 1


def test_an_alarm_whose_series_has_a_value_that_is_not_a_number_is_confirmed_naming_it(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the member's CPU jumped in the last hour and its alarm fired, and GetMetricData
    # answers the value of a week ago as Infinity
    times = put_member_cpu_spike(detector, seed=7, at=-1, rise=30.0)
    answer_member_metric_value(-168, float("inf"))
    # WHEN the alarm event arrives
    result = lambda_handler(alarm_event(times[-1] + timedelta(minutes=5)), lambda_context)
    # THEN the anomaly is confirmed from the rest of the series and alerted
    assert result["status"] == "ok", result
    assert result["anomalous"] is True
    assert len(alert_inbox.receive()) == 1
    # AND the result names the value left out
    [left_out] = result["left_out"]
    assert left_out.startswith(
        "ContainerInsights/node_cpu_utilization ClusterName=dev-apps (Average, 3600 s): "
    )
    assert left_out.endswith(
        "1 value left out, not a number within +-2**360 (CloudWatch's limit); the first inf at "
        f"{iso_z(times[-168])}"
    )


def test_an_episode_whose_series_has_a_recent_value_left_out_is_not_resolved_by_it(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a member spike alerted by a scan
    alert = spike_alerted_by_a_scan(detector, alert_inbox, lambda_context)
    # WHEN, once the episode is over, GetMetricData answers the last hour's value as NaN
    detector.set(START_TIME + timedelta(seconds=EPISODE_OVER_SECONDS))
    replaced = answer_member_metric_value(-1, float("nan"))
    result = scan(lambda_context)
    # THEN the value is named, the scan is partial and nothing is resolved
    assert replaced.replaced
    assert (result["status"], result["resolved"]) == ("partial", 0)
    assert "1 value left out" in result["errors"][0]["error"]
    assert alert_inbox.receive() == []
    # WHEN the next scan reads every value as a number again
    replaced.stop()
    detector.advance(900)
    healed = scan(lambda_context)
    # THEN the episode is resolved then, once, under the alert's id
    assert healed["resolved"] == 1
    the_one_resolution_of(alert, alert_inbox)
