"""anomaly_detector's index of series with open episodes, at the size of a fleet-wide incident.

The scans' CloudWatch reads are replaced by a given list of series and findings (`scan_metrics`
is the only part left out); alerting, recording, resolving and the index run as deployed, against
the state table and topics in moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from fleet_shared.alerts import Severity
from fleet_shared.clock import ManualClock
from fleet_shared.handler import Invocation
from fleet_shared.numeric.robust_anomalies import Anomaly
from handlers.anomaly_detector import app, scan
from handlers.anomaly_detector.app import lambda_handler
from handlers.anomaly_detector.episodes import (
    OPEN_EPISODES,
    OPEN_SERIES_KEY,
    EvaluatedSeries,
    index_part,
    state_key,
)
from handlers.anomaly_detector.findings import Finding
from handlers.anomaly_detector.scan import INDEX_TARGET, MetricScan
from tests.handlers.conftest import MEMBER_ACCOUNT_ID, REGION, STATE_TABLE_NAME
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

INCIDENT_ROUTES = 450
"""Series with an open episode at once: with their ~1,000-byte names, more than DynamoDB's 400 KB
item holds (as a few thousand series of ordinary names do)."""
DEDUP_DAYS = 7


def route_resource(index: int) -> str:
    """A latency series as the scan names it, with a long dimension value (CloudWatch allows
    1,024 characters)."""
    route = f"/checkout/{'a' * 900}/{index:05d}"
    return f"{MEMBER_ACCOUNT_ID}/{REGION}/Checkout/latency_p99 ClusterName=dev-apps,Route={route}"


def spike_of(resource: str, at: datetime) -> Finding:
    """One point anomaly of `resource` at `at`."""
    peak = Anomaly(0, at, "point", 95.0, 40.0, 12.0, Severity.CRITICAL)
    label = resource.split("/", 2)[2]
    hour = timedelta(hours=1)
    return Finding(label, resource, MEMBER_ACCOUNT_ID, REGION, "point", at, at, 1, peak, hour)


def scans_reading(monkeypatch: pytest.MonkeyPatch, read: Callable[[datetime], MetricScan]) -> None:
    """Make each scan's metric part `read(now)` instead of reading CloudWatch; no cost part."""

    def scan_metrics(
        sessions: object,
        environment: object,
        inventory: object,
        now: datetime,
        deadline: object,
        *,
        left_before: object,
    ) -> MetricScan:
        return read(now)

    monkeypatch.setenv("ANOMALY_COST_ENABLED", "false")
    monkeypatch.setattr(scan, "scan_metrics", scan_metrics)


def test_a_fleet_wide_incident_past_one_items_size_is_indexed_and_closed_once_unread(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a scan that finds a spike in each of INCIDENT_ROUTES series at once (their names
    # alone are more than one DynamoDB item holds)
    resources = [route_resource(index) for index in range(INCIDENT_ROUTES)]
    spike_at = detector.now() - timedelta(hours=2)
    incident = incident_scan(resources, spike_at)
    first_missed = detector.now() + timedelta(minutes=15)
    scans_reading(monkeypatch, lambda now: incident if now < first_missed else MetricScan())
    # WHEN it runs
    alerted = lambda_handler({"action": "scan"}, lambda_context)
    # THEN every spike is alerted and the scan succeeds
    assert alerted["alerts"] == INCIDENT_ROUTES, alerted["status"]
    assert len(alert_inbox.receive()) == INCIDENT_ROUTES
    # WHEN the routes are gone, so no scan reads their series, for ANOMALY_DEDUP_DAYS after the
    # first scan that missed them
    detector.set(first_missed)
    assert lambda_handler({"action": "scan"}, lambda_context)["resolved"] == 0
    detector.set(first_missed + timedelta(days=DEDUP_DAYS))
    closed = lambda_handler({"action": "scan"}, lambda_context)
    # THEN every episode is closed, once, saying its series is no longer read
    assert closed["resolved"] == INCIDENT_ROUTES
    resolutions = alert_inbox.receive()
    assert sorted(received.alert["resource"] for received in resolutions) == sorted(resources)
    assert all("no longer read" in received.alert["detail"] for received in resolutions)
    # AND the next scan sends nothing more
    detector.advance(900)
    assert lambda_handler({"action": "scan"}, lambda_context)["resolved"] == 0
    assert alert_inbox.receive() == []


def incident_scan(resources: list[str], spike_at: datetime) -> MetricScan:
    """A scan's metric part that finds a spike at `spike_at` in each of `resources`."""
    return MetricScan(
        findings=[spike_of(resource, spike_at) for resource in resources],
        evaluated=[EvaluatedSeries(resource, "48 hour(s)") for resource in resources],
    )


def run_before_first_index_write(dynamodb: Any, other_scan: Callable[[], object]) -> None:
    """Run `other_scan` whole just before the next write to the index: after the running scan
    read the index, before it saved its changes (two scans at once)."""
    pending = [other_scan]

    def interleave(params: dict[str, Any], **_: Any) -> None:
        if pending and params["Item"]["pk"]["S"] == f"STATE#{OPEN_SERIES_KEY}":
            pending.pop()()

    dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", interleave)


def test_two_scans_at_once_keep_each_others_open_series_in_the_index(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two scans that each find spikes in their own 40 series (enough to share parts of
    # the index), the second running whole between the first's read of the index and its save
    spike_at = detector.now() - timedelta(hours=2)
    first = [route_resource(index) for index in range(40)]
    second = [route_resource(index) for index in range(40, 80)]
    reads = [incident_scan(first, spike_at), incident_scan(second, spike_at)]
    scans_reading(monkeypatch, lambda now: reads.pop(0) if reads else MetricScan())
    run_before_first_index_write(
        app.FUNCTION.services().hub_client("dynamodb"),
        lambda: app.FUNCTION.invoke({"action": "scan"}, Invocation.local()),
    )
    # WHEN the first scan runs
    assert lambda_handler({"action": "scan"}, lambda_context)["alerts"] == len(first)
    assert len(alert_inbox.receive()) == len(first) + len(second)
    # AND no scan reads either's series any more, for ANOMALY_DEDUP_DAYS after the first that
    # missed them
    first_missed = detector.now() + timedelta(minutes=15)
    detector.set(first_missed)
    assert lambda_handler({"action": "scan"}, lambda_context)["resolved"] == 0
    detector.set(first_missed + timedelta(days=DEDUP_DAYS))
    closed = lambda_handler({"action": "scan"}, lambda_context)
    # THEN the episodes of both scans' series are closed: neither lost the other's entries
    assert closed["resolved"] == len(first) + len(second)
    resolved = sorted(received.alert["resource"] for received in alert_inbox.receive())
    assert resolved == sorted(first + second)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"S": f"[{SECRET}"}, "its data is not JSON"),
        (
            {"S": json.dumps({"series": [SECRET]})},
            "not a part of the index (`series`: text or null by resource; `followed`: an object "
            "by resource)",
        ),
        (
            {"S": json.dumps({"series": {}, "followed": {SECRET: {"region": SECRET}}})},
            "not a part of the index (`series`: text or null by resource; `followed`: an object "
            "by resource)",
        ),
    ],
    ids=["not-json", "not-a-part", "a-followed-entry-without-its-query"],
)
@pytest.mark.parametrize("made_unreadable", ["before-the-scan", "while-the-scan-saves"])
def test_a_part_of_the_index_that_cannot_be_read_is_one_error_and_the_others_are_closed(
    data: dict[str, str],
    problem: str,
    made_unreadable: str,
    *,
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    dynamodb_client: Any,
) -> None:
    # GIVEN two series alerted at once, each in its own part of the index, then the part of the
    # first made unreadable by a hand edit (no JSON, JSON that is no part of the index, or a
    # followed series' entry without its query):
    # before the next scan, or while it saves (after it read the index, so its save is refused
    # and it reads the part again)
    kept, closed = (route_resource(index) for index in (0, 1))
    assert index_part(kept) != index_part(closed)
    spike_at = detector.now() - timedelta(hours=2)
    first_missed = detector.now() + timedelta(minutes=15)
    scans_reading(
        monkeypatch,
        lambda now: incident_scan([kept, closed], spike_at) if now < first_missed else MetricScan(),
    )
    assert lambda_handler({"action": "scan"}, lambda_context)["alerts"] == 2
    alert_inbox.receive()
    bad_part = unreadable_value(OPEN_SERIES_KEY, index_part(kept), data)

    def hand_edit() -> None:
        dynamodb_client.put_item(TableName=STATE_TABLE_NAME, Item=bad_part)

    if made_unreadable == "before-the-scan":
        hand_edit()
    else:
        run_before_first_index_write(app.FUNCTION.services().hub_client("dynamodb"), hand_edit)
    # WHEN no scan reads either series for ANOMALY_DEDUP_DAYS after the first that missed them
    detector.set(first_missed)
    missed = lambda_handler({"action": "scan"}, lambda_context)
    detector.set(first_missed + timedelta(days=DEDUP_DAYS))
    result = lambda_handler({"action": "scan"}, lambda_context)
    # THEN each scan is partial, naming the part and never its data, and the episode of the
    # series in the readable part is closed, once; the unreadable part is left as it was
    error = f"saved value {index_part(kept)} of {OPEN_SERIES_KEY}: {problem}"
    for scanned in (missed, result):
        assert scanned["status"] == "partial"
        assert scanned["errors"] == [{"target": INDEX_TARGET, "error": error}]
        assert SECRET not in str(scanned)
    assert result["resolved"] == 1
    assert [received.alert["resource"] for received in alert_inbox.receive()] == [closed]
    saved = dynamodb_client.get_item(
        TableName=STATE_TABLE_NAME, Key={key: bad_part[key] for key in ("pk", "sk")}
    )
    assert saved["Item"]["data"] == bad_part["data"]


@pytest.mark.parametrize("broken_spikes", [True, False], ids=["spiking", "quiet"])
@pytest.mark.parametrize(
    "data",
    [{"S": f"[{SECRET}"},
     {"S": json.dumps({"episodes": {}, "spans": SECRET})},
     {"S": json.dumps({"episodes": {"anomaly/x": {}}, "spans": {"anomaly/x": {"start": SECRET}}})}],
    ids=["not-json", "spans-not-an-object", "span-misshapen"],
)  # fmt: skip
def test_a_series_whose_episode_record_cannot_be_read_is_one_error_and_the_others_alerted(
    data: dict[str, str],
    broken_spikes: bool,
    *,
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    dynamodb_client: Any,
) -> None:
    # GIVEN a scan that reads two series and finds a spike in the second (and in the first, or
    # not), the first's record of open episodes made unreadable by a hand edit (no JSON, or
    # JSON that is no record of episodes)
    broken, fine = (f"{MEMBER_ACCOUNT_ID}/{REGION}/Checkout/errors Route=/r{n}" for n in (0, 1))

    def read(now: datetime) -> MetricScan:
        found = incident_scan([broken, fine], now - timedelta(hours=2))
        found.findings = found.findings[0 if broken_spikes else 1 :]
        return found

    scans_reading(monkeypatch, read)
    bad_record = unreadable_value(state_key(broken), OPEN_EPISODES, data)
    dynamodb_client.put_item(TableName=STATE_TABLE_NAME, Item=bad_record)
    # WHEN it runs
    result = lambda_handler({"action": "scan"}, lambda_context)
    # THEN the other series' spike is alerted, once, and the scan is partial with one error
    # naming the unreadable record, never its data
    assert [received.alert["resource"] for received in alert_inbox.receive()] == [fine]
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert error["target"] == state_key(broken)
    assert SECRET not in str(result)
    # AND the record is left as it was
    saved = dynamodb_client.get_item(
        TableName=STATE_TABLE_NAME, Key={key: bad_record[key] for key in ("pk", "sk")}
    )
    assert saved["Item"]["data"] == bad_record["data"]
