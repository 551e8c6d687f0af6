"""anomaly_detector: one anomalous period is one episode, one alert and one resolution.

A marginal spike (about 6 noise sigmas on 5-minute data) scores around the point threshold:
some of its samples fall below it, and each scan's detection, on data a little longer, draws its
runs a little differently. The scans, every 15 minutes as scheduled, must still alert it once and
resolve it once, after it is over.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.alerts import Alert, AlertPublisher, Severity
from fleet_shared.clock import ManualClock
from fleet_shared.metric_data import MetricQuery, MetricSeries, align
from fleet_shared.numeric.robust_anomalies import Anomaly
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from handlers.anomaly_detector import alarm, scan
from handlers.anomaly_detector.app import lambda_handler
from handlers.anomaly_detector.episodes import OPEN_EPISODES, EvaluatedSeries, state_key
from handlers.anomaly_detector.exceptions import OpenEpisodesNotSavedError
from handlers.anomaly_detector.findings import EPISODE_GAP, Finding
from handlers.anomaly_detector.scan import MetricScan
from tests.handlers.conftest import MEMBER_ACCOUNT_ID, REGION, STATE_TABLE_NAME
from tests.handlers.unreadable_state_entries import unreadable_value

PERIOD = timedelta(minutes=5)
SCAN_EVERY = timedelta(minutes=15)
SPIKE = timedelta(hours=2)
SPIKE_RISE = 12.0
NOISE = 2.0
SEED = 3
LOOKBACK_DAYS = 7
SCANNED_FOR = timedelta(hours=6)
"""From the first spike's start: past the second spike and the one-hour recent window after it."""


def metric_with_spikes(clock: ManualClock, monkeypatch: pytest.MonkeyPatch, *starts: int) -> None:
    """One 5-minute metric scanned with a one-hour recent window and seven days of history: a
    daily cycle with Gaussian noise (seeded), `SPIKE_RISE` added for `SPIKE` from each of `starts`
    (hours after the clock's time), its values written up to `SCANNED_FOR` ahead of the clock
    (each scan reads those before its time)."""
    monkeypatch.setenv("ANOMALY_METRICS", json.dumps([
        {"namespace": "Custom/App", "metric": "latency", "dimensions": {"Api": "orders"},
         "stat": "Average", "period": int(PERIOD.total_seconds())}
    ]))  # fmt: skip
    monkeypatch.setenv("ANOMALY_LOOKBACK_DAYS", str(LOOKBACK_DAYS))
    monkeypatch.setenv("ANOMALY_RECENT_HOURS", "1")
    monkeypatch.setenv("ANOMALY_COST_ENABLED", "false")
    first = clock.now() - timedelta(days=LOOKBACK_DAYS)
    count = (timedelta(days=LOOKBACK_DAYS) + SCANNED_FOR) // PERIOD
    times = [first + index * PERIOD for index in range(count)]
    hours = np.array([moment.hour + moment.minute / 60 for moment in times])
    values = 50.0 + 15.0 * np.sin(2 * np.pi * (hours - 6) / 24)
    values += np.random.default_rng(SEED).normal(0.0, NOISE, count)
    for start in starts:
        spike_from = clock.now() + timedelta(hours=start)
        values[[spike_from <= moment < spike_from + SPIKE for moment in times]] += SPIKE_RISE
    monkeypatch.setattr(scan, "get_metric_series", StoredMetric(times, [float(v) for v in values]))


@dataclass(frozen=True)
class StoredMetric:
    """GetMetricData of the one metric, answered from its values (CloudWatch in moto takes half
    a second per scan to answer 2,000 values, and the test runs dozens of scans)."""

    times: list[datetime]
    values: list[float]

    def __call__(
        self,
        cloudwatch: object,
        queries: list[MetricQuery],
        start: datetime,
        end: datetime,
        *,
        next_page_allowed: Callable[[], bool] | None = None,
    ) -> dict[str, MetricSeries]:
        """The values between `start` and `end`, in one page (so `next_page_allowed` is never
        asked)."""
        first, last = bisect_left(self.times, start), bisect_left(self.times, end)
        series = MetricSeries(self.times[first:last], self.values[first:last])
        return {query.id: series for query in queries}


def scans_until(clock: ManualClock, end: datetime, alert_inbox: Any, context: Any) -> list[Any]:
    """A scan every SCAN_EVERY until `end`: every message the alert topics received."""
    received: list[Any] = []
    while clock.now() <= end:
        result = lambda_handler({"action": "scan"}, context)
        assert result["status"] == "ok", result
        received += alert_inbox.receive()
        clock.advance(int(SCAN_EVERY.total_seconds()))
    return received


def test_a_marginal_spike_over_successive_scans_is_alerted_once_and_resolved_once(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a 5-minute metric with a two-hour spike of about 6 noise sigmas, starting now
    start = detector.now()
    metric_with_spikes(detector, monkeypatch, 0)
    # WHEN a scan runs every 15 minutes, through the spike and well past its end
    received = scans_until(detector, start + SCANNED_FOR, alert_inbox, lambda_context)
    # THEN one alert went out, and one resolution of it, after the spike ended
    alerts = [message.alert for message in received if not message.alert["resolved"]]
    resolutions = [message.alert for message in received if message.alert["resolved"]]
    assert len(alerts) == 1, [alert["title"] for alert in alerts]
    assert [resolution["id"] for resolution in resolutions] == [alerts[0]["id"]]
    assert datetime.fromisoformat(resolutions[0]["timestamp"]) > start + SPIKE


def test_a_second_spike_an_hour_after_the_first_is_alerted_again(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the same metric with a second spike like the first, an hour after the first ended
    start = detector.now()
    metric_with_spikes(detector, monkeypatch, 0, 3)
    # WHEN a scan runs every 15 minutes, through both spikes and past the second's end
    received = scans_until(detector, start + SCANNED_FOR, alert_inbox, lambda_context)
    # THEN each spike was alerted once and resolved once
    alerts = [message.alert for message in received if not message.alert["resolved"]]
    resolutions = [message.alert for message in received if message.alert["resolved"]]
    assert len(alerts) == 2, [alert["title"] for alert in alerts]
    assert sorted(resolution["id"] for resolution in resolutions) == sorted(
        alert["id"] for alert in alerts
    )


RESOURCE = f"{MEMBER_ACCOUNT_ID}/{REGION}/Custom/App/latency Api=orders (Average, 300 s)"


def spike_run(start: datetime, end: datetime) -> Finding:
    """The run of a spike up from `start` to `end` (5-minute values) as one scan drew it."""
    peak = Anomaly(0, start, "point", 74.0, 50.0, 6.2, Severity.WARNING)
    samples = (end - start) // PERIOD + 1
    label = RESOURCE.split("/", 2)[2]
    return Finding(label, RESOURCE, MEMBER_ACCOUNT_ID, REGION, "point", start, end, samples, peak,
                   PERIOD)  # fmt: skip


def scans_drawing(monkeypatch: pytest.MonkeyPatch, runs: dict[datetime, Finding]) -> None:
    """Make the scan at each time of `runs` find that run (and the scans at other times none), its
    series read up to its last complete 5 minutes; no cost part."""

    def scan_metrics(
        sessions: object,
        environment: object,
        inventory: object,
        now: datetime,
        deadline: object,
        *,
        left_before: object,
    ) -> MetricScan:
        newest = align(now, int(PERIOD.total_seconds())) - PERIOD
        series = EvaluatedSeries(RESOURCE, "1 hour(s)", last_value_at=newest)
        found = [runs[now]] if now in runs else []
        return MetricScan(findings=found, evaluated=[series])

    monkeypatch.setenv("ANOMALY_COST_ENABLED", "false")
    monkeypatch.setattr(scan, "scan_metrics", scan_metrics)


def test_a_spike_whose_start_moves_between_scans_is_one_episode_with_one_alert(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike from 03:00 that three scans draw from 03:00, then from 03:05 (its first value
    # scored just below the threshold on the longer data), then from 03:00 again, and that the
    # scans after them no longer find
    at = detector.now()
    spike_from = at - timedelta(minutes=30)
    runs = {
        at: spike_run(spike_from, at - PERIOD),
        at + SCAN_EVERY: spike_run(spike_from + PERIOD, at + SCAN_EVERY - PERIOD),
        at + 2 * SCAN_EVERY: spike_run(spike_from, at + 2 * SCAN_EVERY - PERIOD),
    }
    scans_drawing(monkeypatch, runs)
    # WHEN the three scans run
    while_on = scans_until(detector, at + 2 * SCAN_EVERY, alert_inbox, lambda_context)
    # THEN the spike is alerted once and not resolved while it goes on
    [alert] = [message.alert for message in while_on]
    assert alert["resolved"] is False
    # WHEN the scans go on after the spike, its values back within their band
    after = scans_until(detector, at + 6 * SCAN_EVERY, alert_inbox, lambda_context)
    # THEN its one alert is resolved once, once the metric was back for longer than the gap an
    # episode may have (30 minutes)
    [resolution] = [message.alert for message in after]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    spike_end = at + 2 * SCAN_EVERY
    assert datetime.fromisoformat(resolution["timestamp"]) > spike_end + EPISODE_GAP


def latency_alarm(alarm_time: datetime) -> dict[str, Any]:
    """An EventBridge alarm state change of the member's alarm on the scanned latency metric."""
    stamp = iso_z(alarm_time)
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": MEMBER_ACCOUNT_ID,
        "time": stamp,
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{MEMBER_ACCOUNT_ID}:alarm:orders-latency"],
        "detail": {
            "alarmName": "orders-latency",
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": stamp},
            "previousState": {"value": "OK"},
            "configuration": {"metrics": [{
                "id": "m1",
                "metricStat": {
                    "metric": {"namespace": "Custom/App", "name": "latency",
                               "dimensions": {"Api": "orders"}},
                    "period": int(PERIOD.total_seconds()),
                    "stat": "Average",
                },
                "returnData": True,
            }]},
        },
    }  # fmt: skip


def alarm_drawing(monkeypatch: pytest.MonkeyPatch, run: Finding) -> None:
    """Make the alarm's reading of its metric find `run` (one metric, no value left out, none
    to read again)."""

    def evaluate_alarm(
        sessions: object, environment: object, event: object, inventory: object, units: object
    ) -> alarm.AlarmReads:
        return alarm.AlarmReads(metrics=1, findings=[run])

    monkeypatch.setattr(alarm, "evaluate_alarm", evaluate_alarm)


def test_an_alarm_that_draws_a_scanned_spike_a_sample_later_confirms_its_one_alert(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike from 03:00 that a scan alerted
    at = detector.now()
    spike_from = at - timedelta(minutes=30)
    scans_drawing(monkeypatch, {at: spike_run(spike_from, at - PERIOD)})
    [alert] = [message.alert for message in scans_until(detector, at, alert_inbox, lambda_context)]
    # WHEN the metric's alarm fires and its reading (history up to the alarm) draws the spike
    # from 03:05, its first value scoring just below the threshold there
    alarm_drawing(monkeypatch, spike_run(spike_from + PERIOD, at + PERIOD))
    confirmed = lambda_handler(latency_alarm(at + 2 * PERIOD), lambda_context)
    # THEN the alarm is confirmed by the spike's episode, whose alert is already out: no second
    # alert goes out
    assert (confirmed["anomalous"], confirmed["alerts"]) == (True, 0), confirmed
    assert alert_inbox.receive() == []
    assert alert["resolved"] is False


def test_a_spike_an_alarm_alerted_first_is_one_alert_when_a_scan_draws_it_from_another_start(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike from 03:00 that the metric's alarm confirmed first, its reading drawing it
    # from 03:05 (its first value just below the threshold there)
    at = detector.now()
    spike_from = at - timedelta(minutes=30)
    alarm_drawing(monkeypatch, spike_run(spike_from + PERIOD, at - PERIOD))
    confirmed = lambda_handler(latency_alarm(at), lambda_context)
    [alert] = [message.alert for message in alert_inbox.receive()]
    assert (confirmed["anomalous"], confirmed["alerts"]) == (True, 1), confirmed
    # WHEN the scans then draw the same spike from 03:00, and go on after it ended
    scans_drawing(monkeypatch, {at: spike_run(spike_from, at - PERIOD)})
    received = scans_until(detector, at + 6 * SCAN_EVERY, alert_inbox, lambda_context)
    # THEN no second alert goes out: the scans resolve the alarm's one alert, once it is over
    assert [(message.alert["id"], message.alert["resolved"]) for message in received] == [
        (alert["id"], True)
    ]


def test_a_spike_an_hour_after_the_one_an_alarm_alerted_is_alerted_again(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike the metric's alarm alerted, which ended at 03:25
    at = detector.now()
    alarm_drawing(monkeypatch, spike_run(at - timedelta(minutes=30), at - PERIOD))
    lambda_handler(latency_alarm(at), lambda_context)
    [first] = [message.alert for message in alert_inbox.receive()]
    # WHEN a scan an hour later finds another spike, from 04:25
    later = at + timedelta(hours=1)
    scans_drawing(monkeypatch, {later: spike_run(later - timedelta(minutes=5), later - PERIOD)})
    detector.set(later)
    result = lambda_handler({"action": "scan"}, lambda_context)
    # THEN that spike is alerted on its own, and the alarm's episode, over, is resolved
    received = [message.alert for message in alert_inbox.receive()]
    assert result["alerts"] == 1, result
    [second] = [alert for alert in received if not alert["resolved"]]
    assert second["id"] != first["id"]
    assert [alert["id"] for alert in received if alert["resolved"]] == [first["id"]]


def test_an_alarm_event_delivered_twice_drawing_the_spike_differently_alerts_once(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an alarm event whose reading draws a spike from 03:05
    at = detector.now()
    spike_from = at - timedelta(minutes=30)
    event = latency_alarm(at)
    alarm_drawing(monkeypatch, spike_run(spike_from + PERIOD, at - PERIOD))
    lambda_handler(event, lambda_context)
    # WHEN EventBridge delivers the same event again, its reading (a value more filled in since)
    # drawing the spike from 03:00
    alarm_drawing(monkeypatch, spike_run(spike_from, at - PERIOD))
    again = lambda_handler(event, lambda_context)
    # THEN the spike has one alert
    assert (again["anomalous"], again["alerts"]) == (True, 0), again
    assert len(alert_inbox.receive()) == 1


def test_an_alarm_recording_its_episode_while_a_scan_saves_the_series_keeps_one_alert(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike a scan alerted at 01:30, over since
    at = detector.now()
    earlier = at - timedelta(hours=2)
    first_spike = spike_run(earlier - timedelta(minutes=15), earlier - PERIOD)
    second_spike_from = at - timedelta(minutes=30)
    scans_drawing(monkeypatch, {earlier: first_spike, at + SCAN_EVERY: spike_run(
        second_spike_from, at + SCAN_EVERY - PERIOD)})  # fmt: skip
    detector.set(earlier)
    [first] = [message.alert for message in scans_until(detector, earlier, alert_inbox,
                                                           lambda_context)]  # fmt: skip
    # WHEN the 03:30 scan resolves it and, while it sends that resolution (after reading the
    # series' record, before saving it), the metric's alarm confirms a second spike it draws
    # from 03:05
    alarm_drawing(monkeypatch, spike_run(second_spike_from + PERIOD, at - PERIOD))
    publish = AlertPublisher.publish
    confirmed: list[dict[str, Any]] = []

    def publish_then_alarm(publisher: AlertPublisher, alert: Alert) -> str:
        message_id = publish(publisher, alert)
        if alert.resolved and not confirmed:
            confirmed.append(lambda_handler(latency_alarm(at), lambda_context))
        return message_id

    monkeypatch.setattr(AlertPublisher, "publish", publish_then_alarm)
    detector.set(at)
    received = scans_until(detector, at + SCAN_EVERY, alert_inbox, lambda_context)
    # THEN the scan at 03:45, drawing the second spike from 03:00, continues the alarm's
    # episode: the first spike is resolved once, the second alerted once, by the alarm
    assert confirmed[0]["alerts"] == 1, confirmed
    alerts = [(message.alert["id"], message.alert["resolved"]) for message in received]
    assert alerts.count((first["id"], True)) == 1
    assert [resolved for _, resolved in alerts] == [True, False], alerts


def test_an_alarm_whose_record_changes_under_every_save_fails_so_its_retry_records_it(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an alarm confirming a spike, while, once its alert went out, other writers change
    # the series' record between each of its reads and saves
    at = detector.now()
    event = latency_alarm(at)
    alarm_drawing(monkeypatch, spike_run(at - timedelta(minutes=30), at - PERIOD))
    replace_value, publish = StateTable.replace_value, AlertPublisher.publish
    published: list[str] = []

    def publish_then_contend(publisher: AlertPublisher, alert: Alert) -> str:
        published.append(alert.id)
        return publish(publisher, alert)

    def contended(table: StateTable, *args: Any, **kwargs: Any) -> bool:
        return not published and replace_value(table, *args, **kwargs)

    monkeypatch.setattr(AlertPublisher, "publish", publish_then_contend)
    monkeypatch.setattr(StateTable, "replace_value", contended)
    # WHEN the alarm is handled
    # THEN the invocation fails after its alert went out, rather than leave the episode
    # unrecorded
    with pytest.raises(OpenEpisodesNotSavedError):
        lambda_handler(event, lambda_context)
    [alert] = [message.alert for message in alert_inbox.receive()]
    # WHEN EventBridge retries the event, the record no longer contended
    monkeypatch.setattr(StateTable, "replace_value", replace_value)
    again = lambda_handler(event, lambda_context)
    # THEN the retry records the episode without a second alert: a scan drawing the spike from
    # another start continues it
    assert again["alerts"] == 0, again
    scans_drawing(monkeypatch, {at: spike_run(at - timedelta(minutes=25), at - PERIOD)})
    assert lambda_handler({"action": "scan"}, lambda_context)["alerts"] == 0
    assert alert_inbox.receive() == []
    assert alert["resolved"] is False


def test_an_alarm_confirming_a_spike_while_a_scan_alerts_it_from_another_start_alerts_once(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike from 03:00 that the scan draws from 03:00 and the metric's alarm from 03:05
    at = detector.now()
    spike_from = at - timedelta(minutes=30)
    scans_drawing(monkeypatch, {at: spike_run(spike_from, at - PERIOD)})
    alarm_drawing(monkeypatch, spike_run(spike_from + PERIOD, at - PERIOD))
    # WHEN the alarm is handled while the scan publishes its alert (both read the series' record
    # before either delivered)
    publish = AlertPublisher.publish
    alarm_runs: list[str] = []
    confirmed: list[dict[str, Any]] = []

    def publish_and_alarm(publisher: AlertPublisher, alert: Alert) -> str:
        if not alarm_runs:
            alarm_runs.append(alert.id)
            try:
                confirmed.append(lambda_handler(latency_alarm(at), lambda_context))
            except AlertNotDeliveredError as refused:
                confirmed.append({"error": str(refused)})
        return publish(publisher, alert)

    monkeypatch.setattr(AlertPublisher, "publish", publish_and_alarm)
    scanned = lambda_handler({"action": "scan"}, lambda_context)
    # THEN one alert goes out: the alarm, finding the scan's episode being delivered, does not
    # send its own (it fails, so EventBridge retries it; the retry confirms the delivered one)
    assert scanned["alerts"] == 1, scanned
    assert "already in progress" in confirmed[0].get("error", ""), confirmed
    retried = lambda_handler(latency_alarm(at), lambda_context)
    assert (retried["anomalous"], retried["alerts"]) == (True, 0), retried
    assert len(alert_inbox.receive()) == 1


def test_a_series_reporting_again_while_an_alarm_saves_its_record_is_no_longer_silent(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    state_table: StateTable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike a scan alerted at 03:30, whose series then reported nothing at 03:45
    at = detector.now()
    spike_from = at - timedelta(minutes=30)
    reading_again = at + 2 * SCAN_EVERY
    runs = {at: spike_run(spike_from, at - PERIOD),
            reading_again: spike_run(spike_from, reading_again - PERIOD)}  # fmt: skip

    def scan_metrics(
        sessions: object,
        environment: object,
        inventory: object,
        now: datetime,
        deadline: object,
        *,
        left_before: object,
    ) -> MetricScan:
        silent = now == at + SCAN_EVERY
        newest = at - 2 * PERIOD if silent else align(now, int(PERIOD.total_seconds())) - PERIOD
        series = EvaluatedSeries(RESOURCE, "1 hour(s)", resolves=not silent, last_value_at=newest)
        return MetricScan(findings=[runs[now]] if now in runs else [], evaluated=[series])

    monkeypatch.setattr(scan, "scan_metrics", scan_metrics)
    scans_until(detector, at + SCAN_EVERY, alert_inbox, lambda_context)
    key = f"anomaly/{RESOURCE}"
    assert "silent_since" in state_table.get_value(key, "open_episodes")
    # WHEN the series reports again at 04:00, the spike going on, and the metric's alarm saves
    # the series' record (the spike grown) after that scan read it, before it saved it
    alarm_drawing(monkeypatch, spike_run(spike_from, reading_again))
    read = StateTable.get_versioned_value
    alarm_runs: list[dict[str, Any]] = []

    def read_then_alarm(table: StateTable, *args: Any) -> Any:
        value = read(table, *args)
        if args[0] == key and not alarm_runs:
            alarm_runs.append({})
            alarm_runs.append(lambda_handler(latency_alarm(reading_again), lambda_context))
        return value

    monkeypatch.setattr(StateTable, "get_versioned_value", read_then_alarm)
    scans_until(detector, reading_again, alert_inbox, lambda_context)
    # THEN the record no longer says the series is silent: when it next stops reporting, its
    # silence is counted from then, not from 03:45
    assert alarm_runs[1]["anomalous"] is True, alarm_runs
    assert "silent_since" not in state_table.get_value(key, "open_episodes")


def test_an_alarm_episode_recorded_while_a_scan_closes_the_series_is_closed_once_unread(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a spike a scan alerted at 01:30, over by 03:30
    at = detector.now()
    earlier = at - timedelta(hours=2)
    reads = {earlier: [spike_run(earlier - timedelta(minutes=15), earlier - PERIOD)], at: []}

    def scan_metrics(
        sessions: object,
        environment: object,
        inventory: object,
        now: datetime,
        deadline: object,
        *,
        left_before: object,
    ) -> MetricScan:
        if now not in reads:
            return MetricScan()
        newest = align(now, int(PERIOD.total_seconds())) - PERIOD
        series = EvaluatedSeries(RESOURCE, "1 hour(s)", last_value_at=newest)
        return MetricScan(findings=reads[now], evaluated=[series])

    monkeypatch.setenv("ANOMALY_COST_ENABLED", "false")
    monkeypatch.setattr(scan, "scan_metrics", scan_metrics)
    detector.set(earlier)
    scans_until(detector, earlier, alert_inbox, lambda_context)
    # WHEN the 03:30 scan resolves it while the metric's alarm records a second spike (during
    # that resolution's delivery), and no scan finds a value of the series after that (the
    # scans' own reads leave it out, and it has none in CloudWatch)
    alarm_drawing(monkeypatch, spike_run(at - timedelta(minutes=25), at - PERIOD))
    publish = AlertPublisher.publish
    alarm_runs: list[str] = []

    def publish_then_alarm(publisher: AlertPublisher, alert: Alert) -> str:
        message_id = publish(publisher, alert)
        if alert.resolved and not alarm_runs:
            alarm_runs.append(alert.id)
            lambda_handler(latency_alarm(at), lambda_context)
        return message_id

    monkeypatch.setattr(AlertPublisher, "publish", publish_then_alarm)
    detector.set(at)
    resolving = scans_until(detector, at, alert_inbox, lambda_context)
    [second] = [message.alert for message in resolving if not message.alert["resolved"]]
    detector.advance(int(SCAN_EVERY.total_seconds()))
    scans_until(detector, detector.now(), alert_inbox, lambda_context)
    detector.advance(7 * 86_400)
    closed = scans_until(detector, detector.now(), alert_inbox, lambda_context)
    # THEN the alarm's episode is closed once, ANOMALY_DEDUP_DAYS after its series was last seen
    assert [(message.alert["id"], message.alert["resolved"]) for message in closed] == [
        (second["id"], True)
    ]
    assert "can no longer be followed" in closed[0].alert["detail"]


def test_an_alarm_on_a_series_whose_record_cannot_be_read_fails_naming_the_record(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    dynamodb_client: Any,
) -> None:
    # GIVEN the series' record of open episodes, whose one episode's span a hand edit left
    # without its end, and an alarm that draws a spike on that series
    at = detector.now()
    alarm_drawing(monkeypatch, spike_run(at - timedelta(minutes=30), at - PERIOD))
    record = {"episodes": {"anomaly/x": {}}, "spans": {"anomaly/x": {"start": iso_z(at)}}}
    bad_record = unreadable_value(state_key(RESOURCE), OPEN_EPISODES, {"S": json.dumps(record)})
    dynamodb_client.put_item(TableName=STATE_TABLE_NAME, Item=bad_record)
    # WHEN the alarm is handled
    result = lambda_handler(latency_alarm(at), lambda_context)
    # THEN it is an error result naming the record, nothing is alerted and the record is kept
    assert result["status"] == "error"
    assert f"saved value {OPEN_EPISODES} of {state_key(RESOURCE)}: not a record" in str(result)
    assert alert_inbox.receive() == []
    saved = dynamodb_client.get_item(
        TableName=STATE_TABLE_NAME, Key={key: bad_record[key] for key in ("pk", "sk")}
    )
    assert saved["Item"]["data"] == bad_record["data"]
