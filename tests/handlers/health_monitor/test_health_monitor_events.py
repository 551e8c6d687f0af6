"""health_monitor: the scheduled fleet run, the alarm state change event, isolation of a failing
account, alert deduplication, metrics and bad events."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError, InventoryUnreadableError
from handlers.health_monitor import app
from handlers.health_monitor.environment import HealthEnvironment
from handlers.health_monitor.services import HealthServices
from tests.handlers.faults import MalformedAnswer, s3_error_every_attempt
from tests.handlers.fresh_interpreter import REPOSITORY, probe_output

REGION = "ap-south-1"
MEMBER = "222222222222"
UNREACHABLE = "333333333333"
CLUSTER_EVENT = {
    "action": "check_cluster",
    "account_id": MEMBER,
    "region": REGION,
    "cluster": "dev-apps",
}

Invoke = Callable[[Any], dict[str, Any]]


def alarm_event(
    name: str, state: str, arn: str, cluster: str | None = "dev-apps", at: datetime | None = None
) -> dict:
    """The EventBridge event CloudWatch emits, as forwarded from the member to the hub bus, for
    the state change at `at` (default now, as the alarm changed state just before)."""
    dimensions = {"ClusterName": cluster} if cluster else {}
    changed_at = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": MEMBER,
        "time": "2025-06-02T03:30:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 1 datapoint [93.0] > 80.0",
                "timestamp": changed_at,
            },
            "previousState": {"value": "OK", "reason": "", "timestamp": "2025-06-02T03:00:00Z"},
            "configuration": {
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": "ContainerInsights",
                                "name": "node_cpu_utilization",
                                "dimensions": dimensions,
                            },
                            "period": 60,
                            "stat": "Average",
                        },
                        "returnData": True,
                    }
                ]
            },
        },
    }


def test_scheduled_fleet_run_isolates_an_unreachable_account(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    alert_inbox: Any,
) -> None:
    # GIVEN a second member account whose role cannot be assumed (STS denies it)
    unreachable = json.loads(json.dumps(inventory["members"][0]))
    unreachable.update(account_id=UNREACHABLE, name="dev-locked")
    inventory["members"].append(unreachable)
    write_inventory(inventory)
    invoke(CLUSTER_EVENT)  # the reachable member's role is assumed and cached by this first run
    alert_inbox.receive()
    sessions = app.FUNCTION.services().sessions
    # WHEN the scheduled payload of the catalog runs with STS refusing the other account
    with Stubber(sessions.hub_client("sts")) as stubber:
        stubber.add_client_error("assume_role", "AccessDenied", "not authorized to assume")
        result = invoke({"action": "check_fleet"})
    # THEN the reachable cluster is fully checked and healthy
    reports = {report["account_id"]: report for report in result["clusters"]}
    assert reports[MEMBER]["status"] == "healthy"
    assert len(reports[MEMBER]["checks"]) == 5
    # AND the unreachable one is one critical member_access failure, and alerted
    [access] = reports[UNREACHABLE]["checks"]
    assert (access["name"], access["status"], access["severity"]) == (
        "member_access",
        "failed",
        "critical",
    )
    assert "AccessDenied" in access["detail"]
    assert result["status"] == "critical"
    [received] = alert_inbox.receive()
    assert received.alert["account_id"] == UNREACHABLE


def test_failing_check_alerts_once_per_incident_and_again_on_escalation(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    alert_inbox: Any,
    fake_clock: Any,
) -> None:
    # GIVEN a node group with 1 of 2 instances unhealthy (warning)
    member_cluster.mark_unhealthy(1)
    # WHEN checked every 5 minutes for 2 hours
    alerts = []
    for _ in range(24):
        result = invoke(CLUSTER_EVENT)
        alerts.append(result["clusters"][0]["alerts"])
        fake_clock.advance(300)
    # THEN one warning opened the incident and the 23 repeats were suppressed: no reminders
    received = alert_inbox.receive()
    assert [(r.alert["severity"], r.alert["resource"]) for r in received] == [
        ("warning", f"{MEMBER}/{REGION}/dev-apps/capacity/system")
    ]
    assert alerts[0] == {"sent": 1, "resolved": 0, "suppressed": 0}
    assert all(counts == {"sent": 0, "resolved": 0, "suppressed": 1} for counts in alerts[1:])
    # WHEN it escalates to critical (both instances unhealthy) THEN it is alerted at once, as
    # a new alert of the same incident (same id)
    member_cluster.mark_unhealthy(2)
    invoke(CLUSTER_EVENT)
    [escalated] = alert_inbox.receive()
    assert escalated.alert["severity"] == "critical"
    assert escalated.alert["id"] == received[0].alert["id"]
    # WHEN it falls back to a warning THEN nothing is alerted: the incident was announced higher
    member_cluster.session.client("autoscaling").set_instance_health(
        InstanceId=member_cluster.instance_ids()[0], HealthStatus="Healthy"
    )
    fake_clock.advance(300)
    assert invoke(CLUSTER_EVENT)["clusters"][0]["alerts"]["suppressed"] == 1
    assert alert_inbox.receive() == []


def test_alarm_back_to_ok_resolves_the_incident_its_alarm_opened(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    alert_inbox: Any,
    fake_clock: Any,
) -> None:
    # GIVEN an alarm that entered ALARM and was alerted
    arn = member_cluster.put_alarm("dev-apps-nodes-critical", "ALARM")
    invoke(alarm_event("dev-apps-nodes-critical", "ALARM", arn))
    [raised] = alert_inbox.receive()
    # WHEN it returns to OK
    fake_clock.advance(600)
    member_cluster.put_alarm("dev-apps-nodes-critical", "OK")
    result = invoke(alarm_event("dev-apps-nodes-critical", "OK", arn))
    # THEN one resolution with the alert's id goes out, and a repeat of the event sends nothing
    [resolution] = alert_inbox.receive()
    assert resolution.alert["resolved"] is True
    assert resolution.alert["id"] == raised.alert["id"]
    assert resolution.subject.startswith("[RESOLVED] CloudWatch alarm dev-apps-nodes-critical")
    assert result["alerts"] == {"sent": 0, "resolved": 1, "suppressed": 0}
    invoke(alarm_event("dev-apps-nodes-critical", "OK", arn))
    assert alert_inbox.receive() == []


def test_alarm_entering_alarm_alerts_once_and_checks_its_cluster(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], alert_inbox: Any
) -> None:
    # GIVEN a member alarm in ALARM whose metric names the cluster
    arn = member_cluster.put_alarm("dev-apps-nodes-critical", "ALARM")
    # WHEN its state change event arrives
    result = invoke(alarm_event("dev-apps-nodes-critical", "ALARM", arn))
    # THEN the alarm is a critical failed check, the cluster was checked right away
    assert result["action"] == "alarm_state_change"
    assert (result["alarm"]["status"], result["alarm"]["severity"]) == ("failed", "critical")
    [report] = result["clusters"]
    assert report["cluster"] == "dev-apps"
    assert any(check["target"] == "dev-apps-nodes-critical" for check in report["checks"])
    assert result["status"] == "critical"
    # AND the alarm (seen by the event and again by the cluster's alarm check) is alerted once
    [received] = alert_inbox.receive()
    assert received.alert["resource"] == arn
    assert received.alert["account_id"] == MEMBER
    assert report["alerts"]["suppressed"] == 1


@pytest.mark.parametrize(
    "metrics",
    [[{"id": "m1", "metricStat": "m1"}], [{"id": "m1", "metricStat": {"metric": "m1"}}], 7],
    ids=["metric-stat-not-an-object", "metric-not-an-object", "metrics-not-a-list"],
)
def test_an_alarm_with_unreadable_metrics_is_alerted_and_its_regions_clusters_checked(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], alert_inbox: Any, metrics: Any
) -> None:
    # GIVEN a member alarm in ALARM whose state change event describes its metrics in a shape
    # that names no cluster (the configuration only chooses the clusters to check)
    arn = member_cluster.put_alarm("dev-apps-nodes-critical", "ALARM")
    event = alarm_event("dev-apps-nodes-critical", "ALARM", arn)
    event["detail"]["configuration"]["metrics"] = metrics
    # WHEN the event arrives
    result = invoke(event)
    # THEN the alarm is judged and alerted once, and the clusters of its account and region are
    # checked, as for an alarm whose metrics name no cluster
    assert (result["alarm"]["status"], result["alarm"]["severity"]) == ("failed", "critical")
    assert [report["cluster"] for report in result["clusters"]] == ["dev-apps"]
    assert [received.alert["resource"] for received in alert_inbox.receive()] == [arn]


def test_alarm_back_to_ok_passes_without_alert_or_cluster_run(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], alert_inbox: Any
) -> None:
    # GIVEN an alarm that returned to OK WHEN its event arrives
    arn = member_cluster.put_alarm("dev-apps-nodes-critical", "OK")
    result = invoke(alarm_event("dev-apps-nodes-critical", "OK", arn))
    # THEN it is a passed check, no cluster is re-checked and nothing is alerted
    assert (result["status"], result["alarm"]["status"]) == ("healthy", "passed")
    assert result["clusters"] == []
    assert alert_inbox.receive() == []


def test_check_run_publishes_passed_and_failed_counts_per_cluster(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN one failing check (capacity) among five
    member_cluster.mark_unhealthy(1)
    capsys.readouterr()
    # WHEN checked
    invoke(CLUSTER_EVENT)
    # THEN EMF metrics for the cluster say 4 passed and 1 failed, with the cluster dimension
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {}
    for line in lines:
        for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            if metric["Name"].startswith("HealthChecks"):
                assert line["cluster"] == "dev-apps"
                assert "cluster" in line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LambdaFleet"
                value = line[metric["Name"]]
                values[metric["Name"]] = value[0] if isinstance(value, list) else value
    assert values == {"HealthChecksPassed": 4.0, "HealthChecksFailed": 1.0}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("not an object", "event"),
        ({}, "action"),
        ({"action": "reboot_everything"}, "action"),
        ({"action": "check_cluster", "region": REGION, "cluster": "dev-apps"}, "account_id"),
        ({**CLUSTER_EVENT, "account_id": "12345"}, "account_id"),
        ({**CLUSTER_EVENT, "region": "Mumbai"}, "region"),
        ({**CLUSTER_EVENT, "cluster": "not-in-the-fleet"}, "cluster"),
        ({"action": "check_fleet", "dry_run": "yes"}, "dry_run"),
        ({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change"}, "account"),
    ],
)
def test_bad_events_get_an_error_naming_the_field_and_touch_nothing(
    invoke: Invoke,
    inventory: dict[str, Any],
    *,
    alert_inbox: Any,
    event: Any,
    field: str,
) -> None:
    # GIVEN a bad event WHEN invoked
    result = invoke(event)
    # THEN an error result names the field, and no alert and no endpoint history were written
    assert result["status"] == "error"
    assert f": {field}" in result["error"] or f"invalid event: {field}" in result["error"]
    assert alert_inbox.receive() == []
    table = boto3.client("dynamodb", region_name=REGION)
    assert table.scan(TableName="lambda-fleet-state")["Items"] == []


def test_missing_inventory_fails_the_fleet_check_naming_it(
    invoke: Invoke, mocked_aws: None, fleet_environment: dict[str, str]
) -> None:
    # GIVEN no inventory in the data bucket WHEN the fleet is checked
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="lambda-fleet-data", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    # THEN the invocation fails naming it, so the Errors alarm tells people
    with pytest.raises(
        InventoryUnreadableError, match=r"s3://lambda-fleet-data/config/fleet-inventory\.json"
    ):
        invoke({"action": "check_fleet"})


def test_a_fleet_check_whose_inventory_s3_fails_to_serve_fails_so_the_platform_retries_it(
    invoke: Invoke,
    inventory: dict[str, Any],
    health_services: Callable[[], HealthServices],
    no_retry_waits: None,
) -> None:
    # GIVEN S3 answering every attempt to read the fleet inventory with InternalError (500)
    failing_s3 = s3_error_every_attempt(health_services().sessions.hub_client("s3"), "GetObject")
    # WHEN the scheduled fleet check runs
    # THEN the invocation fails after botocore's retries: an error result would end the run as a
    # success, with no retry and no Errors alarm
    with pytest.raises(InventoryUnreadableError, match="InternalError"):
        invoke({"action": "check_fleet"})
    assert failing_s3.attempts > 1
    # WHEN S3 answers again and Lambda retries the run THEN the fleet is checked
    failing_s3.healed = True
    result = invoke({"action": "check_fleet"})
    assert [cluster["cluster"] for cluster in result["clusters"]] == ["dev-apps"]


def test_missing_variable_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, fleet_environment: dict[str, str]
) -> None:
    # GIVEN no STATE_TABLE_NAME, then inverted latency thresholds
    monkeypatch.delenv("STATE_TABLE_NAME")
    with pytest.raises(ConfigurationError, match="STATE_TABLE_NAME"):
        load_environment(HealthEnvironment)
    monkeypatch.setenv("STATE_TABLE_NAME", "lambda-fleet-state")
    monkeypatch.setenv("HEALTH_LATENCY_CRITICAL_MS", "3000")
    monkeypatch.setenv("HEALTH_LATENCY_WARNING_MS", "5000")
    with pytest.raises(ConfigurationError, match="HEALTH_LATENCY_WARNING_MS"):
        load_environment(HealthEnvironment)


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[3] / "events/health_monitor").glob("*.json")),
    ids=lambda p: p.name,
)
def test_example_events_are_accepted(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], path: Path
) -> None:
    # GIVEN an example event of the README WHEN invoked THEN it is run, not refused
    result = invoke(json.loads(path.read_text()))
    assert result.get("status") != "error", result
    assert result["action"] in {"check_fleet", "check_cluster", "alarm_state_change"}


ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{MEMBER}:alarm:dev-apps-nodes-critical"


LEFT_OUT = object()
"""The value `_hostile` gives a field the event leaves out."""


def _hostile(path: tuple[str, ...], value: object) -> dict[str, Any]:
    event = alarm_event("dev-apps-nodes-critical", "ALARM", ALARM_ARN)
    *parents, name = path
    holder: Any = event
    for parent in parents:
        holder = holder[int(parent)] if isinstance(holder, list) else holder[parent]
    if value is LEFT_OUT:
        del holder[name]
    elif isinstance(holder, list):
        holder[int(name)] = value
    else:
        holder[name] = value
    return event


@pytest.mark.parametrize(
    ("event", "field", "shown"),
    [
        (_hostile(("detail", "alarmName"), "nodes\x1b[31m\x00"), "detail.alarmName", "nodes"),
        (_hostile(("detail", "alarmName"), "n" * 100_000), "detail.alarmName", "nnnn"),
        (
            _hostile(("detail", "state", "reason"), "Threshold \x01" * 20_000),
            "detail.state.reason",
            "Threshold",
        ),
        (
            _hostile(("resources", "0"), f"{ALARM_ARN}\x00" + "x" * 100_000),
            "resources[0]",
            "arn:aws:cloudwatch",
        ),
        (
            _hostile(("detail", "state", "timestamp"), "9999-12-31T23:59:59.000-1400"),
            "detail.state.timestamp",
            "9999-12-31T23:59:59-14:00",
        ),
        (
            _hostile(("detail", "state", "timestamp"), "0001-01-01T00:00:00.000+1400"),
            "detail.state.timestamp",
            "0001-01-01T00:00:00+14:00",
        ),
        (
            _hostile(("resources", "0"), ALARM_ARN.replace(MEMBER, "999999999999")),
            "resources",
            "arn:aws:cloudwatch",
        ),
        (
            _hostile(("resources", "0"), ALARM_ARN.replace(REGION, "eu-west-1")),
            "resources",
            "arn:aws:cloudwatch",
        ),
        (
            _hostile(("detail", "alarmName"), "dev-apps-nodes-warning"),
            "detail",
            "dev-apps-nodes-warning",
        ),
        (
            _hostile(("detail", "state", "timestamp"), LEFT_OUT),
            "detail.state.timestamp",
            "",
        ),
    ],
    ids=[
        "control-characters-in-name",
        "huge-name",
        "huge-reason",
        "huge-arn",
        "time-past-the-calendar-in-utc",
        "time-before-the-calendar-in-utc",
        "arn-of-another-account",
        "arn-of-another-region",
        "name-of-another-alarm-than-the-arn",
        "no-time-of-the-state",
    ],
)
def test_alarm_event_no_cloudwatch_alarm_could_send_is_refused_naming_the_field(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    *,
    alert_inbox: Any,
    event: dict[str, Any],
    field: str,
    shown: str,
) -> None:
    # GIVEN an alarm state change whose name, reason, ARN or time CloudWatch never sends (control
    # characters, beyond its 255-character names or 1023-character reasons, an offset that
    # carries the time past the calendar once in UTC, an ARN of another account or region than
    # the event's or of another alarm than its name, no time of the state entered)
    # WHEN invoked
    result = invoke(event)
    # THEN one short error names the field and quotes the start of the value
    assert result["status"] == "error"
    assert result["error"].startswith(f"invalid event: {field}: "), result["error"][:300]
    assert shown in result["error"]
    assert len(result["error"]) < 300
    # AND nothing was alerted or written
    assert alert_inbox.receive() == []
    table = boto3.client("dynamodb", region_name=REGION)
    assert table.scan(TableName="lambda-fleet-state")["Items"] == []


def test_an_alarm_check_that_could_not_run_resolves_when_it_lists_an_alarm_named_as_its_cluster(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    health_services: Callable[[], Any],
    alert_inbox: Any,
) -> None:
    # GIVEN an alarm of the member named like its cluster, dev-apps, in ALARM, and a run in
    # which the alarm check could not run (DescribeAlarms answered with a proxy's page)
    member_cluster.put_alarm("dev-apps", "ALARM", "queue depth above 1000")
    session = health_services().sessions.session(MEMBER, REGION)
    page = MalformedAnswer(b"<html>gateway</html>", url_part="")
    session.events.register_first("before-send.cloudwatch.DescribeAlarms", page)
    invoke(CLUSTER_EVENT)
    [could_not_run] = alert_inbox.receive()
    assert could_not_run.alert["resource"] == f"{MEMBER}/{REGION}/dev-apps/alarm/dev-apps"
    # The member's clients copied the session's handlers: the page stops matching instead.
    page.url_part = "a URL no request has"
    # WHEN the next run's alarm check runs and reports the alarm dev-apps failing
    report = invoke(CLUSTER_EVENT)["clusters"][0]
    # THEN the alarm's own failure is alerted under its ARN, and the check's "could not run"
    # incident is resolved: the check ran, whatever its alarms are named
    [alarm] = [check for check in report["checks"] if check["name"] == "alarm"]
    assert (alarm["target"], alarm["status"]) == ("dev-apps", "failed")
    alerts = {
        (received.alert["resource"], received.alert["resolved"])
        for received in alert_inbox.receive()
    }
    assert alerts == {
        (f"arn:aws:cloudwatch:{REGION}:{MEMBER}:alarm:dev-apps", False),
        (f"{MEMBER}/{REGION}/dev-apps/alarm/dev-apps", True),
    }


_IMPORT_PROBE = """
import json, sys
import handlers.health_monitor.app as app
imported = [name in sys.modules for name in ("handlers.health_monitor.alarm_events",
                                             "fleet_shared.event_bridge")]
print(*imported, type(app.parse_request(json.loads(sys.argv[1]))).__name__)
"""


def test_alarm_event_models_are_imported_only_when_an_alarm_event_comes() -> None:
    # GIVEN a fresh interpreter with health_monitor imported (the alarm event's models are
    # about 12 M instructions of its import, unused by a scheduled check)
    alarm = (REPOSITORY / "events" / "health_monitor" / "alarm_state_change.json").read_text()
    # WHEN the function is imported, then the example alarm state change parsed
    printed = probe_output(_IMPORT_PROBE, alarm)
    # THEN the import left them out, and the event is still read as an alarm state change
    assert printed == ["False", "False", "AlarmStateChangeEvent"]
