"""performance_analyzer on generated Container Insights data (moto put_metric_data): the planted
bottleneck is named with its evidence, a regression alerts once and resolves when it clears."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.alert_delivery import claim_scope
from fleet_shared.alerts import alert_id
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError, LockNotAcquiredError
from fleet_shared.load_balancers import CLUSTER_TAG
from fleet_shared.performance_documents import PerformanceAnalysis
from fleet_shared.sessions import HUB_CALL_SECONDS
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from fleet_shared.wall_clocks import hour_start
from handlers.performance_analyzer import app
from handlers.performance_analyzer.bottlenecks import find_bottlenecks, measured_rules
from handlers.performance_analyzer.environment import PerformanceEnvironment
from handlers.performance_analyzer.measurements import WindowMeasurements
from handlers.performance_analyzer.regressions import (
    OPEN_REGRESSIONS_KEY,
    MeasuredWindow,
    regressions,
    settle_regression_alerts,
    trends,
)
from handlers.performance_analyzer.services import PerformanceServices
from tests.handlers.conftest import (
    DATA_BUCKET_NAME,
    INVENTORY_DOCUMENT,
    MEMBER_ACCOUNT_ID,
    REGION,
    AlertInbox,
)
from tests.handlers.deadlines import (
    ContextRunningOutOfTime,
    HungOperation,
    LambdaTime,
    hang_every_attempt,
    killed_while_publishing_then_retried,
)
from tests.handlers.endless_listings import EndlessSlowPages
from tests.handlers.faults import (
    InjectedFault,
    MalformedAnswer,
    fail_every_attempt,
    refuse_completions,
)
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_B,
    deny_assume_role,
    load_balancer_network,
    member_session,
)
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

CLUSTER = "dev-apps"
CLUSTER_ZONE = ZoneInfo("Asia/Kolkata")
"""The time zone of the cluster's schedule in the handlers' stack file."""
Analyze = Callable[..., dict[str, Any]]


def put_cluster_hours(cloudwatch: Any, end: datetime, hours: int, values: dict[str, float]) -> None:
    """One value per metric and hour (ClusterName dimension) for the `hours` before `end`."""
    for hour in range(hours):
        moment = end - timedelta(hours=hour + 1) + timedelta(minutes=5)
        cloudwatch.put_metric_data(
            Namespace="ContainerInsights",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "ClusterName", "Value": CLUSTER}],
                    "Timestamp": moment,
                    "Value": value,
                }
                for name, value in values.items()
            ],
        )


HEALTHY = {
    "node_cpu_utilization": 45.0,
    "node_memory_utilization": 50.0,
    "node_network_total_bytes": 1000.0,
    "cluster_node_count": 2.0,
    "cluster_failed_node_count": 0.0,
    "pod_status_pending": 0.0,
    "pod_cpu_utilization_over_pod_limit": 0.0,
}


SATURATED = {**HEALTHY, "node_cpu_utilization": 90.0}


def put_week_over_week(cloudwatch: Any, end: datetime, hours: int, now: dict[str, float]) -> None:
    """`now` in the `hours` before `end`, and a healthy cluster in the same hours a week earlier."""
    put_cluster_hours(cloudwatch, end - timedelta(days=7), hours, HEALTHY)
    put_cluster_hours(cloudwatch, end, hours, now)


def put_the_next_four_hours(clock: ManualClock, cloudwatch: Any, now: dict[str, float]) -> None:
    """Four hours on: `now` in the four hours before the clock's hour, and a healthy cluster in
    the same hours a week earlier."""
    clock.advance(4 * 3600)
    put_week_over_week(cloudwatch, the_hour(clock), 4, now)


def the_hour(clock: ManualClock) -> datetime:
    """The start of the clock's hour in the cluster's time zone (Asia/Kolkata, UTC+5:30, so on
    the half hour of UTC): the end of the analyzer's window."""
    return hour_start(CLUSTER_ZONE, clock.now())


def put_saturated_window(clock: ManualClock, hours: int) -> tuple[Any, datetime]:
    """CPU saturated in the `hours` before the clock's hour and healthy a week earlier; the
    member's CloudWatch client and the window's end."""
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    end = the_hour(clock)
    put_week_over_week(cloudwatch, end, hours, SATURATED)
    return cloudwatch, end


@pytest.fixture
def analyze(  # noqa: PLR0917 - pytest passes fixtures positionally
    state_table: StateTable,
    inventory_in_s3: dict[str, Any],
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Analyze:
    """Invoke the handler with services on the manual clock (and a Lambda context with 60 s left,
    unless one is given)."""
    services = PerformanceServices.create(
        app.FUNCTION.name, load_environment(PerformanceEnvironment), clock=fake_clock
    )
    monkeypatch.setattr(app.FUNCTION, "services", lambda: services)

    def invoke(event: dict[str, Any], context: Any = lambda_context) -> dict[str, Any]:
        return app.lambda_handler(event, context)

    return invoke


def the_one_resolution_of(alert: Any, alert_inbox: AlertInbox) -> Any:
    """The one message received since, a resolution (under `alert`'s id)."""
    [resolution] = alert_inbox.receive()
    assert resolution.alert["resolved"] is True
    assert resolution.alert["id"] == alert.alert["id"]
    return resolution


def latest_analysis() -> PerformanceAnalysis:
    s3 = boto3.client("s3", region_name=REGION)
    keys = sorted(
        item["Key"]
        for item in s3.list_objects_v2(Bucket=DATA_BUCKET_NAME, Prefix="analyses/")["Contents"]
    )
    body = s3.get_object(Bucket=DATA_BUCKET_NAME, Key=keys[-1])["Body"].read()
    return PerformanceAnalysis.model_validate(json.loads(body))


def test_planted_cpu_bottleneck_is_named_with_its_evidence_and_trend(
    analyze: Analyze, fake_clock: ManualClock
) -> None:
    # GIVEN a week ago the cluster ran at 45 % CPU, and in the last 4 hours at 92 % with pods
    # pending
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    end = the_hour(fake_clock)
    put_cluster_hours(cloudwatch, end - timedelta(days=7), 4, HEALTHY)
    put_cluster_hours(
        cloudwatch, end, 4, {**HEALTHY, "node_cpu_utilization": 92.0, "pod_status_pending": 3.0}
    )

    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})

    # THEN the saturated CPU and the pending pods are named, with the figures as evidence
    assert result["status"] == "ok", result
    [cluster] = result["clusters"]
    assert cluster["bottlenecks"] == ["cpu_saturation", "unschedulable_pods"]
    analysis = latest_analysis()
    cpu = next(b for b in analysis.bottlenecks if b.rule == "cpu_saturation")
    assert cpu.value == pytest.approx(92.0)
    assert cpu.unit == "Percent"
    assert "92" in cpu.evidence and "threshold 80" in cpu.evidence
    # AND the week-over-week trend shows the rise
    trend = next(t for t in analysis.metrics if t.name == "cpu")
    assert trend.week_earlier == pytest.approx(45.0)
    assert trend.change_percent == pytest.approx((92 - 45) / 45 * 100, abs=0.01)
    assert analysis.scope == "cluster"
    assert len(analysis.hourly) == 4


def test_a_regression_alerts_once_and_resolves_when_it_clears(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN CPU saturated now but not a week ago
    cloudwatch, _ = put_saturated_window(fake_clock, 8)

    # WHEN the analyzer runs twice within the saturated hours
    first = analyze({"action": "analyze_fleet"})
    first_alerts = alert_inbox.receive()
    fake_clock.advance(600)
    second = analyze({"action": "analyze_fleet"})

    # THEN one alert was sent, none the second time
    assert first["clusters"][0]["regressions"] == ["cpu_saturation"]
    assert [a.alert["resolved"] for a in first_alerts] == [False]
    assert "cpu saturated" in first_alerts[0].alert["title"].lower()
    assert second["clusters"][0]["alerts"]["sent"] == 0
    assert alert_inbox.receive() == []

    # WHEN the CPU is back to normal in the next window
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    analyze({"action": "analyze_fleet"})

    # THEN the same alert is resolved, stamped with the run's time: newer than the alert, as
    # the notification router needs to tell it from a late copy
    resolution = the_one_resolution_of(first_alerts[0], alert_inbox)
    assert resolution.alert["timestamp"] == iso_z(fake_clock.now())


def cpu_at(percent: float) -> dict[str, float]:
    """A healthy cluster but for its node CPU, at `percent`."""
    return {**HEALTHY, "node_cpu_utilization": percent}


def test_a_cpu_figure_wandering_around_its_threshold_alerts_once_and_resolves_below_clear_level(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a cluster at 81 % CPU now and 45 % a week earlier: a regression, announced
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    put_week_over_week(cloudwatch, the_hour(fake_clock), 4, cpu_at(81.0))
    analyze({"action": "analyze_fleet"})
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False
    # WHEN the CPU wanders around the rule's 80 % threshold for the next runs, above its 75 %
    # clear level, with the week earlier at 45 % each time
    wandering = []
    for percent in (79.0, 82.0, 79.0, 76.0, 81.0):
        put_the_next_four_hours(fake_clock, cloudwatch, cpu_at(percent))
        wandering.append(analyze({"action": "analyze_fleet"})["clusters"][0]["alerts"])
    # THEN nothing more is sent: neither a resolution nor a new warning, and the regression is
    # open all along
    assert alert_inbox.receive() == []
    assert wandering == [{"sent": 0, "resolved": 0, "open": 1}] * 5
    # WHEN the CPU falls to 74 %, below the clear level, then stays there
    put_the_next_four_hours(fake_clock, cloudwatch, cpu_at(74.0))
    cleared = analyze({"action": "analyze_fleet"})
    # THEN the warning is resolved once, the resolution saying the figure and the clear level
    assert cleared["clusters"][0]["alerts"] == {"sent": 0, "resolved": 1, "open": 0}
    resolution = the_one_resolution_of(warning, alert_inbox)
    assert resolution.alert["detail"] == (
        "Node CPU saturated cleared: mean node_cpu_utilization of the cluster was 74 Percent "
        "over the last 4 h, at or below its clear level of 75 Percent (threshold 80 Percent)"
    )
    put_the_next_four_hours(fake_clock, cloudwatch, cpu_at(74.0))
    analyze({"action": "analyze_fleet"})
    assert alert_inbox.receive() == []


def failed_nodes_window(token: str) -> dict[str, float]:
    """A healthy cluster with `token` failed nodes, or without the figure for "-"."""
    if token == "-":
        return {
            name: value for name, value in HEALTHY.items() if name != "cluster_failed_node_count"
        }
    return {**HEALTHY, "cluster_failed_node_count": float(token)}


@pytest.mark.parametrize(
    ("series", "resolved_by_run"),
    [("1 0 0 0", 4), ("1 0 1 0 0 0", 6), ("1 0 - 0 = 0", 6)],
    ids=["three clean", "flapping then three clean", "gaps and repeats do not count"],
)
def test_a_count_rule_resolves_only_after_three_clean_runs_in_a_row(
    analyze: Analyze,
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
    series: str,
    resolved_by_run: int | None,
) -> None:
    # GIVEN a run every 4 hours measuring the failed nodes of `series`, one run per value ("-":
    # no figure, "=": the same window again, as the platform's retry does), none a week earlier
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    notices = []
    for token in series.split():
        if token == "=":
            fake_clock.advance(600)
        else:
            put_the_next_four_hours(fake_clock, cloudwatch, failed_nodes_window(token))
        # WHEN the fleet is analysed
        analyze({"action": "analyze_fleet"})
        notices.append([notice.alert["resolved"] for notice in alert_inbox.receive()])
    # THEN the first failed node is announced once, and the regression resolved once, only by
    # the third run in a row at 0 (a run without the figure or over a window counted is none)
    expected: list[list[bool]] = [[False]] + [[] for _ in series.split()[1:]]
    if resolved_by_run is not None:
        expected[resolved_by_run - 1] = [True]
    assert notices == expected


@pytest.mark.parametrize("week_earlier_percent", [85.0, 90.0])
def test_an_open_regression_stays_open_when_the_week_earlier_catches_up_with_now(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox, week_earlier_percent: float
) -> None:
    # GIVEN a CPU regression announced by a run: 90 % now, 45 % a week earlier
    cloudwatch, _ = put_saturated_window(fake_clock, 4)
    analyze({"action": "analyze_fleet"})
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False
    # WHEN 4 hours later the CPU is still at 90 %, and the same hours a week earlier were at
    # `week_earlier_percent`: the rule fired then too, and the figure rose by less than
    # PERFORMANCE_REGRESSION_PERCENT, so it no longer regresses week over week
    fake_clock.advance(4 * 3600)
    end = the_hour(fake_clock)
    put_cluster_hours(cloudwatch, end - timedelta(days=7), 4, cpu_at(week_earlier_percent))
    put_cluster_hours(cloudwatch, end, 4, SATURATED)
    result = analyze({"action": "analyze_fleet"})
    # THEN the regression stays open, as the figure of now has not moved: nothing is resolved
    [cluster] = result["clusters"]
    assert cluster["regressions"] == []
    assert cluster["alerts"] == {"sent": 0, "resolved": 0, "open": 1}
    assert alert_inbox.receive() == []


@pytest.mark.parametrize(
    ("week_earlier_cpu", "regressing"),
    [(82.5, ["cpu_saturation"]), (82.6, [])],
    ids=["risen-by-the-regression-percent", "risen-by-less"],
)
def test_a_rule_firing_both_weeks_regresses_once_its_figure_rose_by_the_regression_percent(
    week_earlier_cpu: float, regressing: list[str]
) -> None:
    # GIVEN CPU at 99 % now and above the rule's 80 % threshold a week earlier too
    now = WindowMeasurements(figures={"cpu": 99.0}, load_balancers=[], hourly=[])
    earlier = WindowMeasurements(figures={"cpu": week_earlier_cpu}, load_balancers=[], hourly=[])
    # WHEN the regressions are read with PERFORMANCE_REGRESSION_PERCENT at 20
    found = regressions(
        find_bottlenecks(now, 4),
        find_bottlenecks(earlier, 4),
        trends(now, earlier),
        20.0,
        measured_rules(earlier),
    )
    # THEN a rise of exactly 20 % (82.5 -> 99) is a regression, and one of 19.85 % is not
    assert found == regressing


def test_an_open_record_written_before_clear_levels_were_kept_is_held_and_resolved_by_them(
    analyze: Analyze,
    state_table: StateTable,
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN the CPU rule's open record and the cluster's index entry as the analyzer wrote them
    # before the upgrade, its warning's id the one the rule's alerts are sent under
    resource = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}"
    warning_id = alert_id(
        "performance_analyzer",
        resource,
        f"Performance regression on {resource}: node cpu saturated",
    )
    state_table.put_value(
        f"performance/{resource}",
        "cpu_saturation",
        {"open": True, "alert_id": warning_id, "started_after": "first"},
    )
    state_table.put_value(OPEN_REGRESSIONS_KEY, resource, {})
    # WHEN the CPU is at 79 % now, below the rule's threshold and above its clear level
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    put_week_over_week(cloudwatch, the_hour(fake_clock), 4, cpu_at(79.0))
    held = analyze({"action": "analyze_fleet"})
    # THEN the regression stays open: nothing is sent
    assert held["clusters"][0]["alerts"] == {"sent": 0, "resolved": 0, "open": 1}
    assert alert_inbox.receive() == []
    # WHEN the CPU falls to 70 %
    put_the_next_four_hours(fake_clock, cloudwatch, cpu_at(70.0))
    analyze({"action": "analyze_fleet"})
    # THEN the warning is resolved once, under its id, the record closed and the index emptied
    [resolution] = alert_inbox.receive()
    assert (resolution.alert["id"], resolution.alert["resolved"]) == (warning_id, True)
    record = state_table.get_value(f"performance/{resource}", "cpu_saturation")
    assert record is not None and record["open"] is False
    assert state_table.values_named(OPEN_REGRESSIONS_KEY, "") == {}


def test_a_run_killed_while_sns_hangs_is_alerted_once_by_the_platforms_retry(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN CPU saturated now but not a week ago
    put_saturated_window(fake_clock, 8)
    # WHEN SNS never answers the regression's Publish, so Lambda kills the run at its deadline,
    # and retries it a minute later
    retried = killed_while_publishing_then_retried(
        app.FUNCTION.services().hub_client("sns"),
        fake_clock,
        lambda context: analyze({"action": "analyze_fleet"}, context),
    )
    # THEN the retry is not refused by the killed run's claim (which would leave the alert to
    # the next run, 4 hours later): it sends the regression's alert, once
    assert retried["clusters"][0]["alerts"]["sent"] == 1, retried
    assert [a.alert["resolved"] for a in alert_inbox.receive()] == [False]


def test_a_regression_and_a_resolution_sns_refused_are_published_by_the_next_run(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN CPU saturated now but not a week ago, and the hub's SNS failing every attempt
    cloudwatch, _ = put_saturated_window(fake_clock, 8)
    sns = app.FUNCTION.services().hub_client("sns")
    refused = fail_every_attempt(sns, "sns", "Publish")
    # WHEN the analyzer runs, then runs again 4 hours later with SNS healed and the CPU still
    # saturated
    first = analyze({"action": "analyze_fleet"})
    first_alerts = alert_inbox.receive()
    refused.healed = True
    put_the_next_four_hours(fake_clock, cloudwatch, SATURATED)
    later = analyze({"action": "analyze_fleet"})
    # THEN the first run found the regression but nothing reached the topics, and the next run
    # published its warning, once (README, Alerts: "a failed publish is tried again by the next
    # run")
    assert refused.attempts > 1
    assert first["clusters"][0]["regressions"] == ["cpu_saturation"]
    assert first_alerts == []
    assert later["clusters"][0]["alerts"]["sent"] == 1
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False

    # GIVEN the CPU back to normal, and SNS failing every attempt again
    refused = fail_every_attempt(sns, "sns", "Publish")
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    # WHEN the analyzer runs, then again an hour later with SNS healed
    analyze({"action": "analyze_fleet"})
    unresolved = alert_inbox.receive()
    refused.healed = True
    fake_clock.advance(3600)
    put_week_over_week(cloudwatch, the_hour(fake_clock), 1, HEALTHY)
    analyze({"action": "analyze_fleet"})
    # THEN the refused resolution went out with the later run, under the warning's id
    assert refused.attempts > 1
    assert unresolved == []
    the_one_resolution_of(warning, alert_inbox)


def test_a_regression_whose_delivery_claim_was_not_completed_is_not_alerted_again(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN CPU saturated now but not a week ago, and the state table refusing (every attempt)
    # to complete the delivery claim of the regression's alert once SNS took it
    cloudwatch, _ = put_saturated_window(fake_clock, 8)
    dynamodb = app.FUNCTION.services().hub_client("dynamodb")
    refused = refuse_completions(dynamodb, claim_scope("performance_analyzer"))
    # WHEN the analyzer runs, then the state table answers again, and the next run comes
    # 4 hours later with the CPU still saturated
    first = analyze({"action": "analyze_fleet"})
    refused.healed = True
    put_the_next_four_hours(fake_clock, cloudwatch, SATURATED)
    later = analyze({"action": "analyze_fleet"})
    # THEN the first run counted the alert SNS took as sent, and the next run sends nothing: one
    # copy reached the topic (a second one, 4 hours on, would be past the notification router's
    # dedup window and reach every channel again)
    assert refused.attempts > 1
    assert [a.alert["resolved"] for a in alert_inbox.receive()] == [False]
    assert first["clusters"][0]["status"] == "ok", first
    assert first["clusters"][0]["alerts"]["sent"] == 1
    assert later["clusters"][0]["alerts"]["sent"] == 0


def refuse_record_writes(services: PerformanceServices, rule: str) -> InjectedFault:
    """Fail every attempt to save `rule`'s record in the state table (its delivery claims, and
    everything else, still go through)."""
    dynamodb = services.hub_client("dynamodb")
    return fail_every_attempt(
        dynamodb, "dynamodb", "PutItem", body_with=(f"VALUE#{rule}".encode(),)
    )


def test_a_notice_whose_record_was_lost_after_sns_took_it_is_not_sent_again(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN CPU saturated now but not a week ago, and the state table refusing every write of
    # the rule's record, after SNS took the warning
    cloudwatch, end = put_saturated_window(fake_clock, 8)
    refused = refuse_record_writes(app.FUNCTION.services(), "cpu_saturation")
    # WHEN the analyzer runs, then runs again an hour later with the state table healed
    first = analyze({"action": "analyze_fleet"})
    refused.healed = True
    fake_clock.advance(3600)
    put_week_over_week(cloudwatch, end + timedelta(hours=1), 1, SATURATED)
    analyze({"action": "analyze_fleet"})
    # THEN the first run's cluster failed on the lost record, and the warning went out once
    assert refused.attempts > 0
    assert first["clusters"][0]["status"] == "error"
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False

    # GIVEN the CPU back to normal, and the record of the resolution lost the same way
    refused = refuse_record_writes(app.FUNCTION.services(), "cpu_saturation")
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    # WHEN the analyzer runs, then again an hour later with the state table healed
    analyze({"action": "analyze_fleet"})
    refused.healed = True
    fake_clock.advance(3600)
    put_week_over_week(cloudwatch, the_hour(fake_clock), 1, HEALTHY)
    analyze({"action": "analyze_fleet"})
    # THEN one resolution went out, with the warning's id
    the_one_resolution_of(warning, alert_inbox)

    # WHEN the CPU saturates again later THEN that is a new regression, announced once more
    put_the_next_four_hours(fake_clock, cloudwatch, SATURATED)
    analyze({"action": "analyze_fleet"})
    assert [a.alert["resolved"] for a in alert_inbox.receive()] == [False]


def test_two_runs_settling_one_clusters_alerts_at_once_send_the_regression_once(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN CPU saturated now but not a week ago, and a second run (an `analyze_cluster` sent
    # by hand during the schedule's run) settling the same cluster's alerts while the first
    # run's warning is on its way to SNS, before the first run has recorded it
    put_saturated_window(fake_clock, 8)
    services = app.FUNCTION.services()
    resource = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}"
    overlapped: list[dict[str, int] | str] = []
    started: list[bool] = []

    def second_run_settles_meanwhile(**_: Any) -> None:
        if started:
            return
        started.append(True)
        try:
            overlapped.append(
                settle_regression_alerts(
                    services,
                    app.FUNCTION.logger,
                    resource=resource,
                    account_id=MEMBER_ACCOUNT_ID,
                    region=REGION,
                    regressing=["cpu_saturation"],
                    bottlenecks=[],
                    cleared={},
                    measured=MeasuredWindow(frozenset({"cpu_saturation"}), the_hour(fake_clock)),
                    deadline=None,
                )
            )
        except LockNotAcquiredError:
            overlapped.append("waited for the first run")

    services.hub_client("sns").meta.events.register(
        "before-call.sns.Publish", second_run_settles_meanwhile
    )
    # WHEN the first run analyses the fleet
    analyze({"action": "analyze_fleet"})
    # THEN the regression's warning went out once, not once per run
    assert overlapped
    assert [a.alert["resolved"] for a in alert_inbox.receive()] == [False]


def test_a_cluster_outside_the_inventory_is_refused_naming_the_field(
    analyze: Analyze,
) -> None:
    # GIVEN a request for a cluster the inventory does not list
    event = {
        "action": "analyze_cluster",
        "account_id": MEMBER_ACCOUNT_ID,
        "region": REGION,
        "cluster": "unknown",
    }

    # WHEN it is handled
    result = analyze(event)

    # THEN the answer names the field and nothing was written
    assert result["status"] == "error"
    assert result["error"].startswith("invalid event: cluster:")
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="analyses/"
    )
    assert listed.get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PERFORMANCE_WINDOW_HOURS", "25"), ("PERFORMANCE_REGRESSION_PERCENT", "-5")],
)
def test_a_bad_setting_fails_the_invocation_naming_the_variable(
    inventory_in_s3: dict[str, Any],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    # GIVEN the analyzer deployed with an invalid setting
    monkeypatch.setenv(variable, value)
    app.FUNCTION.use_services(None)

    # WHEN the schedule invokes it
    with pytest.raises(ConfigurationError) as raised:
        app.lambda_handler({"action": "analyze_fleet"}, lambda_context)
    app.FUNCTION.use_services(None)

    # THEN the invocation fails with the one short message naming the variable, and no analysis
    # was written
    assert str(raised.value).startswith(f"environment variable {variable}: ")
    assert len(str(raised.value)) < 200
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="analyses/"
    )
    assert listed.get("KeyCount", 0) == 0


def test_a_cluster_whose_account_is_denied_is_its_own_error_and_the_others_are_analysed(
    analyze: Analyze, inventory_in_s3: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the member's cluster with healthy history and a second member whose role cannot be
    # assumed, with a cluster of its own
    document = json.loads(json.dumps(inventory_in_s3))
    denied_cluster = {**document["members"][0]["clusters"][0], "name": "denied-apps"}
    document["members"].append(
        {**document["members"][0], "account_id": DENIED_MEMBER, "name": "denied",
         "clusters": [denied_cluster]}
    )  # fmt: skip
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(document).encode("utf-8"),
    )
    end = the_hour(fake_clock)
    put_cluster_hours(member_session(MEMBER_ACCOUNT_ID).client("cloudwatch"), end, 4, HEALTHY)
    deny_assume_role(app.FUNCTION.services().sessions.hub_client("sts"), DENIED_MEMBER)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the denied cluster is an error naming the access failure, the other one is analysed,
    # and the run is partial
    assert result["status"] == "partial"
    by_cluster = {cluster["cluster"]: cluster for cluster in result["clusters"]}
    assert by_cluster["denied-apps"]["status"] == "error"
    assert "AccessDenied" in by_cluster["denied-apps"]["error"]
    assert by_cluster[CLUSTER]["status"] == "ok"
    assert latest_analysis().cluster == CLUSTER


def test_a_cluster_whose_cloudwatch_hangs_is_its_error_within_its_budget_and_the_run_returns(
    analyze: Analyze, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run with 120 s left, and the cluster's CloudWatch endpoint that accepts the
    # connection and never answers
    time = LambdaTime(120).spend_botocore_waits(monkeypatch)
    fault = HungOperation(time)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register_first("before-parameter-build.cloudwatch.GetMetricData",
                                  fault.note_config)  # fmt: skip
    session.events.register_first("before-send.cloudwatch.GetMetricData", fault.hang)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"}, time.context())
    # THEN the cluster is its error well inside its 30 s budget (CLUSTER_SECONDS), instead of
    # botocore's default timeouts and attempts using up the run before it could answer
    [cluster] = result["clusters"]
    assert (cluster["cluster"], cluster["status"]) == (CLUSTER, "error")
    assert "Read timeout" in cluster["error"]
    assert time.spent <= 20
    assert result["status"] == "partial"


@pytest.mark.parametrize(
    ("operation", "request_token", "answer_token"),
    [
        ("cloudwatch.GetMetricData", "NextToken", "NextToken"),
        ("resource-groups-tagging-api.GetResources", "PaginationToken", "PaginationToken"),
    ],
)
def test_a_cluster_whose_reads_page_on_are_its_error_before_the_invocation_ends(
    analyze: Analyze,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
    request_token: str,
    answer_token: str,
) -> None:
    # GIVEN a run with 60 s left, and the cluster's CloudWatch (or load balancer API) answering
    # each request with a new next page, 5 s a page
    time = LambdaTime(60).spend_botocore_waits(monkeypatch)
    pages = EndlessSlowPages(time, 5, answer_token)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    pages.register(session.events, operation, request_token)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"}, time.context())
    # THEN the read stops while the invocation still has the time of a hung page and the
    # analysis's write (32 s), and the cluster is its error: the run returns
    [cluster] = result["clusters"]
    assert (cluster["cluster"], cluster["status"]) == (CLUSTER, "error")
    assert "cut short before its next page" in cluster["error"]
    assert 60 - time.spent >= 32 - 5
    assert result["status"] == "partial"


def test_a_cluster_whose_analysis_s3_does_not_take_is_its_error_and_the_run_returns(
    analyze: Callable[..., dict[str, Any]], fake_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run with the function's whole timeout, a cluster measured, and the data bucket's
    # endpoint accepting the analysis's PutObject and never answering
    put_saturated_window(fake_clock, 4)
    time = LambdaTime(
        FUNCTIONS_BY_NAME["performance_analyzer"].timeout_seconds
    ).spend_botocore_waits(monkeypatch)
    fault = hang_every_attempt(app.FUNCTION.services().hub_client("s3"), "s3", "PutObject", time)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"}, time.context())
    # THEN the write was given up after its bounded attempts, within the cluster's 30 s budget
    # (CLUSTER_SECONDS), and the run returned with the cluster as its error
    assert fault.attempts == 2
    assert time.spent <= HUB_CALL_SECONDS
    [cluster] = result["clusters"]
    assert (cluster["cluster"], cluster["status"]) == (CLUSTER, "error")
    assert "Read timeout" in cluster["error"]
    assert result["status"] == "partial"


def test_an_open_regression_is_not_resolved_while_its_metric_is_missing(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a CPU regression announced by an earlier run
    cloudwatch, _ = put_saturated_window(fake_clock, 4)
    analyze({"action": "analyze_fleet"})
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False

    # WHEN the next run finds no Container Insights data for the cluster's window (the agent
    # stopped reporting)
    fake_clock.advance(8 * 3600)
    unmeasured = analyze({"action": "analyze_fleet"})

    # THEN nothing is resolved: the rule was not measured, so it did not clear
    assert unmeasured["clusters"][0]["alerts"]["resolved"] == 0
    assert alert_inbox.receive() == []

    # WHEN the metrics come back healthy
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    analyze({"action": "analyze_fleet"})

    # THEN the regression is resolved, once, under the warning's id
    the_one_resolution_of(warning, alert_inbox)


def test_a_bottleneck_without_a_figure_a_week_earlier_is_no_regression(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a cluster at 90 % CPU in the last 4 hours, and no Container Insights data in the same
    # hours a week earlier (a cluster created since, or the agent not reporting then)
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    put_cluster_hours(cloudwatch, the_hour(fake_clock), 4, SATURATED)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the saturation is named as a bottleneck, but not as a regression week over week,
    # and nothing is alerted
    [cluster] = result["clusters"]
    assert cluster["bottlenecks"] == ["cpu_saturation"]
    assert cluster["regressions"] == []
    assert alert_inbox.receive() == []


def test_an_open_regression_is_not_resolved_by_a_window_whose_week_earlier_has_no_figure(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a CPU regression announced by an earlier run
    cloudwatch, _ = put_saturated_window(fake_clock, 4)
    analyze({"action": "analyze_fleet"})
    [warning] = alert_inbox.receive()
    # WHEN 4 hours later the CPU is still saturated, and the same hours a week earlier have no
    # Container Insights data
    fake_clock.advance(4 * 3600)
    put_cluster_hours(cloudwatch, the_hour(fake_clock), 4, SATURATED)
    uncompared = analyze({"action": "analyze_fleet"})
    # THEN the regression is neither resolved nor announced again: it could not be compared
    assert uncompared["clusters"][0]["alerts"]["resolved"] == 0
    assert alert_inbox.receive() == []
    # WHEN the CPU is back to normal in the next window
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    analyze({"action": "analyze_fleet"})
    # THEN the regression is resolved, once, under the warning's id
    the_one_resolution_of(warning, alert_inbox)


def inventory_in_zone(time_zone: str, **schedule: Any) -> dict[str, Any]:
    """The shared inventory with the cluster's schedule (and calendar) in `time_zone`, and the
    schedule's other fields `schedule` names."""
    document = copy.deepcopy(INVENTORY_DOCUMENT)
    cluster = document["members"][0]["clusters"][0]
    cluster["schedule"].update(time_zone=time_zone, **schedule)
    cluster["calendar"]["time_zone"] = time_zone
    return document


@pytest.mark.parametrize("inventory_document", [inventory_in_zone("America/New_York")])
def test_the_week_before_a_daylight_saving_change_is_compared_at_the_same_local_hours(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a cluster in New York at 75 % CPU, and 99 % from 09:00 to 17:00 local time, on the
    # Monday before and the Monday after the clocks went forward (Sunday 8 March 2026)
    new_york = ZoneInfo("America/New_York")
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    for day in (2, 9):
        for hour in range(4, 12):
            start = datetime(2026, 3, day, hour, tzinfo=new_york)
            busy = 9 <= hour < 17
            put_cluster_hours(
                cloudwatch,
                start + timedelta(hours=1),
                1,
                {**HEALTHY, "node_cpu_utilization": 99.0 if busy else 75.0},
            )
    # WHEN the analyzer runs at 10:10 on the Monday after: its window is 06:00 to 10:00
    fake_clock.set(datetime(2026, 3, 9, 10, 10, tzinfo=new_york))
    result = analyze({"action": "analyze_fleet"})
    # THEN it compares with 06:00 to 10:00 the Monday before (a mean of 81 % both times): CPU
    # saturation fires, but it is no regression and nothing is alerted (168 hours earlier was
    # 05:00 to 09:00 that day, 75 %, and the same load read as a new regression)
    assert result["status"] == "ok", result
    [cluster] = result["clusters"]
    assert cluster["bottlenecks"] == ["cpu_saturation"]
    assert cluster["regressions"] == []
    trend = next(t for t in latest_analysis().metrics if t.name == "cpu")
    assert trend.week_earlier == pytest.approx(81.0)
    assert alert_inbox.receive() == []


# Australia/Lord_Howe's clocks go forward by 30 minutes.
@pytest.mark.parametrize("inventory_document", [inventory_in_zone("Australia/Lord_Howe")])
def test_the_week_before_a_half_hour_clock_change_is_compared_at_the_same_local_hours(
    analyze: Analyze, fake_clock: ManualClock
) -> None:
    # GIVEN a cluster on Lord Howe Island at 75 % CPU, and 99 % from 09:00 to 17:00 local time,
    # measured every half hour, on the Monday before and the Monday after the clocks went
    # forward by 30 minutes (Sunday 4 October 2026)
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    for day in (datetime(2026, 9, 28, tzinfo=lord_howe), datetime(2026, 10, 5, tzinfo=lord_howe)):
        for hour in range(4, 12):
            values = {**HEALTHY, "node_cpu_utilization": 99.0 if 9 <= hour < 17 else 75.0}
            end = day.replace(hour=hour) + timedelta(hours=1)
            put_cluster_hours(cloudwatch, end, 1, values)
            put_cluster_hours(cloudwatch, end + timedelta(minutes=30), 1, values)
    # WHEN the analyzer runs at 10:10 on the Monday after: its window is 06:00 to 10:00
    fake_clock.set(datetime(2026, 10, 5, 10, 10, tzinfo=lord_howe))
    result = analyze({"action": "analyze_fleet"})
    # THEN it compares with 06:00 to 10:00 the Monday before, 168.5 hours earlier (a mean of
    # 81 % both times): no regression (put back on the hour, the window was 05:30 to 09:30,
    # half of its busy hour missing: 78 %)
    assert result["status"] == "ok", result
    [cluster] = result["clusters"]
    assert cluster["regressions"] == []
    trend = next(t for t in latest_analysis().metrics if t.name == "cpu")
    assert (trend.value, trend.week_earlier) == (pytest.approx(81.0), pytest.approx(81.0))


@dataclass(frozen=True)
class LocalHourCase:
    """A cluster's schedule, a run's time, and the hours the run's window holds (their local
    starts), of which `split` are left out (each with the text naming it)."""

    zone: str
    now: datetime
    hours: list[str]
    schedule: dict[str, Any] = field(default_factory=dict)
    split: dict[str, str] = field(default_factory=dict)


LOCAL_HOUR_CASES = {
    # Monday 09:10 in India (UTC+5:30) and 09:25 in Nepal (UTC+5:45): the window is 05:00-09:00
    "Asia/Kolkata": LocalHourCase(
        "Asia/Kolkata",
        datetime(2025, 6, 2, 3, 40, tzinfo=UTC),
        ["05:00+0530", "06:00+0530", "07:00+0530", "08:00+0530"],
    ),
    "Asia/Kathmandu": LocalHourCase(
        "Asia/Kathmandu",
        datetime(2025, 6, 2, 3, 40, tzinfo=UTC),
        ["05:00+0545", "06:00+0545", "07:00+0545", "08:00+0545"],
    ),
    # 04:10 in Adelaide (UTC+9:30, +10:30 in summer) the night its clocks went back from 03:00
    # to 02:00 (a day of 25 hours), and 05:10 the night they went forward from 02:00 to 03:00
    # (a day of 23)
    "clocks-back": LocalHourCase(
        "Australia/Adelaide",
        datetime(2025, 4, 5, 18, 40, tzinfo=UTC),
        ["01:00+1030", "02:00+1030", "02:00+0930", "03:00+0930"],
    ),
    "clocks-forward": LocalHourCase(
        "Australia/Adelaide",
        datetime(2025, 10, 4, 18, 40, tzinfo=UTC),
        ["00:00+0930", "01:00+0930", "03:00+1030", "04:00+1030"],
    ),
    # A scale-up at 08:30 in India, Monday 09:40: hours start on the half hour (the UTC hour),
    # the last at the scale-up, where a whole hour from 08:00 held half the night's load
    "Asia/Kolkata-08:30": LocalHourCase(
        "Asia/Kolkata",
        datetime(2025, 6, 2, 4, 10, tzinfo=UTC),
        ["05:30+0530", "06:30+0530", "07:30+0530", "08:30+0530"],
        schedule={"scale_up_time": "08:30:00"},
    ),
    # The same schedule's 18:00 scale-down, Monday 19:40, falls within the hour from 17:30
    "Asia/Kolkata-08:30-18:00": LocalHourCase(
        "Asia/Kolkata",
        datetime(2025, 6, 2, 14, 10, tzinfo=UTC),
        ["15:30+0530", "16:30+0530", "17:30+0530", "18:30+0530"],
        schedule={"scale_up_time": "08:30:00"},
        split={
            "17:30+0530": "hourly 2025-06-02T17:30+05:30: left out, the scale-down at 18:00 "
            "falls within it"
        },
    ),
    # Saturday's 08:30 window in New York closes at 01:00 the night the clocks go back from
    # 02:00 to 01:00, run at 02:40: the first reading of 01:00 falls within the hour from 00:30
    # (left out); the second, in the hour from 01:30 EDT, closes nothing (kept, off-hours)
    "clocks-back-08:30": LocalHourCase(
        "America/New_York",
        datetime(2025, 11, 2, 7, 40, tzinfo=UTC),
        ["23:30-0400", "00:30-0400", "01:30-0400", "01:30-0500"],
        schedule={"scale_up_time": "08:30:00", "scale_down_time": "01:00:00", "days": ["SAT"]},
        split={
            "00:30-0400": "hourly 2025-11-02T00:30-04:00: left out, the scale-down at 01:00 "
            "falls within it"
        },
    ),
}


@pytest.mark.parametrize(
    ("inventory_document", "case"),
    [(inventory_in_zone(case.zone, **case.schedule), case) for case in LOCAL_HOUR_CASES.values()],
    ids=list(LOCAL_HOUR_CASES),
)
def test_each_hour_of_the_analysis_is_a_local_hour_of_the_clusters_schedule(
    analyze: Analyze, fake_clock: ManualClock, case: LocalHourCase
) -> None:
    # GIVEN a cluster whose schedule's time zone is not on the UTC hour, or whose scale-up is
    # off the hour (and, in Adelaide and New York, whose clocks change in the window), measured
    # a quarter and three quarters into each hour from the scale-up's minute of that zone's
    # clock, the four hours before the run's at 10 %, 20 %, 30 % and 40 % CPU
    zone = ZoneInfo(case.zone)
    minute = int(case.schedule.get("scale_up_time", "08:00")[3:5])
    fake_clock.set(case.now)
    end = hour_start(zone, case.now, minute)
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    for index in range(4):
        local_hour = end - timedelta(hours=4 - index)
        for minutes in (15, 45):
            # put_cluster_hours puts one value 5 minutes into the hour before the time it is given
            put_cluster_hours(
                cloudwatch,
                local_hour + timedelta(hours=1, minutes=minutes - 5),
                1,
                {**HEALTHY, "node_cpu_utilization": 10.0 * (index + 1)},
            )
    # WHEN the analyzer runs
    result = analyze({"action": "analyze_fleet"})
    # THEN each hour of the analysis starts on the scale-up's minute of the zone's clock and
    # holds that hour's values alone (on the UTC hour, half of one local hour and half of the
    # next); across a change of the clocks they are hours of elapsed time: the repeated hour is
    # there twice, each with its offset, and the skipped hour not at all; an hour within which
    # the schedule opens or closes its working hours is left out and named
    assert result["status"] == "ok", result
    analysis = latest_analysis()
    assert [
        (hour.hour.astimezone(zone).strftime("%H:%M%z"), hour.cpu_percent)
        for hour in analysis.hourly
    ] == [
        (start, 10.0 * (index + 1))
        for index, start in enumerate(case.hours)
        if start not in case.split
    ]
    assert result["clusters"][0]["split_hours"] == list(case.split.values())
    assert analysis.window_end.astimezone(zone).minute == minute
    assert analysis.window_end - analysis.window_start == timedelta(hours=4)


def test_metrics_the_window_lacks_are_named_in_the_clusters_result(
    analyze: Analyze, fake_clock: ManualClock
) -> None:
    # GIVEN a cluster whose Container Insights reported only CPU and memory in the window
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    end = the_hour(fake_clock)
    put_cluster_hours(
        cloudwatch, end, 4, {"node_cpu_utilization": 40.0, "node_memory_utilization": 50.0}
    )

    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})

    # THEN the cluster's result names the five metrics it could not measure
    [cluster] = result["clusters"]
    assert cluster["status"] == "ok"
    assert cluster["unmeasured"] == [
        "network", "node_count", "failed_nodes", "pending_pods", "throttled_cpu"
    ]  # fmt: skip


def test_a_regression_whose_record_was_lost_is_resolved_when_it_clears_before_the_next_run(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a CPU regression whose warning SNS took while the state table refused the rule's
    # record
    cloudwatch, _ = put_saturated_window(fake_clock, 4)
    refused = refuse_record_writes(app.FUNCTION.services(), "cpu_saturation")
    analyze({"action": "analyze_fleet"})
    refused.healed = True
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False

    # WHEN the next run finds the CPU back to normal
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    result = analyze({"action": "analyze_fleet"})

    # THEN the warning that went out is resolved, once, under its id
    assert result["clusters"][0]["alerts"]["resolved"] == 1
    the_one_resolution_of(warning, alert_inbox)
    # AND a later run sends nothing more
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    analyze({"action": "analyze_fleet"})
    assert alert_inbox.receive() == []


def test_a_resolution_whose_record_was_lost_leaves_the_next_regression_announced_and_resolved(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a CPU regression announced, then resolved by a run whose record of the resolution
    # the state table refused on every attempt (botocore's retries included) after SNS took it
    cloudwatch, _ = put_saturated_window(fake_clock, 4)
    analyze({"action": "analyze_fleet"})
    [warning] = alert_inbox.receive()
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    refused = refuse_record_writes(app.FUNCTION.services(), "cpu_saturation")
    analyze({"action": "analyze_fleet"})
    refused.healed = True
    assert refused.attempts > 1
    the_one_resolution_of(warning, alert_inbox)

    # WHEN the next run finds the CPU at 78 %, between the rule's clear level and threshold
    put_the_next_four_hours(fake_clock, cloudwatch, cpu_at(78.0))
    between = analyze({"action": "analyze_fleet"})
    # THEN the regression is over, as its resolution said: nothing is open, nothing sent
    assert between["clusters"][0]["alerts"] == {"sent": 0, "resolved": 0, "open": 0}
    assert alert_inbox.receive() == []

    # WHEN the CPU saturates again, then is back to normal
    put_the_next_four_hours(fake_clock, cloudwatch, SATURATED)
    analyze({"action": "analyze_fleet"})
    [second_warning] = alert_inbox.receive()
    put_the_next_four_hours(fake_clock, cloudwatch, HEALTHY)
    analyze({"action": "analyze_fleet"})
    # THEN that new regression was announced once and is resolved once, under its id
    assert second_warning.alert["resolved"] is False
    the_one_resolution_of(second_warning, alert_inbox)


def remove_the_cluster_from_the_inventory(inventory: dict[str, Any]) -> None:
    """The fleet inventory without the member's cluster."""
    document = json.loads(json.dumps(inventory))
    document["members"][0]["clusters"] = []
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(document).encode("utf-8"),
    )


def test_a_warning_whose_record_was_lost_stays_open_above_clear_level_and_resolves_once_removed(
    analyze: Analyze,
    inventory_in_s3: dict[str, Any],
    state_table: StateTable,
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN a CPU regression whose warning SNS took while the state table refused every attempt
    # (botocore's retries included) to write the rule's record
    cloudwatch, _ = put_saturated_window(fake_clock, 4)
    refused = refuse_record_writes(app.FUNCTION.services(), "cpu_saturation")
    first = analyze({"action": "analyze_fleet"})
    refused.healed = True
    assert refused.attempts > 1
    assert first["clusters"][0]["status"] == "error"
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False

    # WHEN the next run finds the CPU at 78 %: under the rule's 80 % threshold, so it no longer
    # fires, but above its 75 % clear level
    put_the_next_four_hours(fake_clock, cloudwatch, cpu_at(78.0))
    held = analyze({"action": "analyze_fleet"})

    # THEN the regression is open: nothing is sent, its record says open and the cluster stays
    # in the open-regressions index
    resource = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}"
    assert held["clusters"][0]["alerts"] == {"sent": 0, "resolved": 0, "open": 1}
    assert alert_inbox.receive() == []
    record = state_table.get_value(f"performance/{resource}", "cpu_saturation")
    assert record is not None and record["open"] is True
    assert list(state_table.values_named(OPEN_REGRESSIONS_KEY, "")) == [resource]

    # WHEN the cluster leaves the inventory, and the fleet is analysed twice
    remove_the_cluster_from_the_inventory(inventory_in_s3)
    fake_clock.advance(4 * 3600)
    removed = analyze({"action": "analyze_fleet"})
    fake_clock.advance(4 * 3600)
    analyze({"action": "analyze_fleet"})

    # THEN the warning is resolved exactly once, under its id
    assert removed["removed_clusters"] == [
        {"resource": resource, "status": "ok", "alerts": {"sent": 0, "resolved": 1, "open": 0}}
    ]
    resolution = the_one_resolution_of(warning, alert_inbox)
    assert "no longer in the fleet inventory" in resolution.alert["detail"]
    assert alert_inbox.receive() == []


def load_balancers_listed_with(
    body: bytes, inventory: dict[str, Any], fake_clock: ManualClock
) -> MalformedAnswer:
    """A second member with cluster `b-apps` and healthy history beside the member's cluster, and
    the member's load balancer API answering DescribeLoadBalancers of the cluster's load balancer
    with `body` (HTTP 200)."""
    document = json.loads(json.dumps(inventory))
    other_cluster = {**document["members"][0]["clusters"][0], "name": "b-apps"}
    document["members"].append(
        {**document["members"][0], "account_id": MEMBER_B, "name": "b",
         "clusters": [other_cluster]}
    )  # fmt: skip
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(document).encode("utf-8"),
    )
    end = the_hour(fake_clock)
    put_cluster_hours(member_session(MEMBER_B).client("cloudwatch"), end, 4, HEALTHY)
    member = member_session(MEMBER_ACCOUNT_ID)
    _, subnets = load_balancer_network(member.client("ec2"))
    member.client("elbv2").create_load_balancer(
        Name="k8s-apps", Subnets=subnets, Tags=[{"Key": CLUSTER_TAG, "Value": CLUSTER}]
    )
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    page = MalformedAnswer(body, url_part="")
    session.events.register_first(
        "before-send.elastic-load-balancing-v2.DescribeLoadBalancers", page
    )
    return page


UNPARSABLE_PROXY_PAGE = b"<html><body>Bad gateway<br></body></html>" + b"x" * 2000
"""A page that is not well-formed XML (the load balancer API's parser raises
ResponseParserError), longer than any result may repeat."""


def test_a_cluster_whose_load_balancers_are_listed_with_a_proxy_page_fails_alone(
    analyze: Analyze, inventory_in_s3: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the member's cluster and a second member's cluster `b-apps`, both with healthy
    # history, and the first member's load balancer API answering DescribeLoadBalancers with a
    # proxy's page (HTTP 200)
    page = load_balancers_listed_with(UNPARSABLE_PROXY_PAGE, inventory_in_s3, fake_clock)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the member's cluster is an error saying its answer could not be parsed, in a short
    # line, and the second member's cluster is analysed
    assert page.answered >= 1
    assert result["status"] == "partial"
    by_cluster = {cluster["cluster"]: cluster for cluster in result["clusters"]}
    assert by_cluster[CLUSTER]["status"] == "error"
    assert "Unable to parse response" in by_cluster[CLUSTER]["error"]
    assert len(by_cluster[CLUSTER]["error"]) <= 200
    assert by_cluster["b-apps"]["status"] == "ok"
    assert latest_analysis().cluster == "b-apps"


WELL_FORMED_PROXY_PAGE = b"<html><body>Bad gateway</body></html>"
"""A gateway's page that is well-formed XML: the load balancer API's parser reads it without
error, and finds no answer in it."""


def test_a_cluster_whose_load_balancers_are_listed_with_a_well_formed_proxy_page_fails_alone(
    analyze: Analyze, inventory_in_s3: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the member's cluster and a second member's cluster `b-apps`, both with healthy
    # history, and the first member's load balancer API answering DescribeLoadBalancers with a
    # gateway's well-formed HTML page (HTTP 200)
    page = load_balancers_listed_with(WELL_FORMED_PROXY_PAGE, inventory_in_s3, fake_clock)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the member's cluster is an error naming the call and the start of the page, and the
    # second member's cluster is analysed
    assert page.answered >= 1
    assert result["status"] == "partial"
    by_cluster = {cluster["cluster"]: cluster for cluster in result["clusters"]}
    assert by_cluster[CLUSTER]["status"] == "error"
    assert "DescribeLoadBalancers" in by_cluster[CLUSTER]["error"]
    assert "Bad gateway" in by_cluster[CLUSTER]["error"]
    assert by_cluster["b-apps"]["status"] == "ok"
    assert latest_analysis().cluster == "b-apps"


LOAD_BALANCER_WITHOUT_ITS_ARN = (
    b'<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/'
    b'2015-12-01/"><DescribeLoadBalancersResult><LoadBalancers><member>'
    b"<LoadBalancerName>k8s-apps</LoadBalancerName><Type>application</Type></member>"
    b"</LoadBalancers></DescribeLoadBalancersResult></DescribeLoadBalancersResponse>"
)
"""DescribeLoadBalancers' own answer listing a load balancer without its ARN."""


def test_a_cluster_whose_load_balancer_is_listed_without_its_arn_fails_alone(
    analyze: Analyze, inventory_in_s3: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the member's cluster and a second member's cluster `b-apps`, both with healthy
    # history, and the first member's load balancer API answering DescribeLoadBalancers with a
    # load balancer that has no ARN
    page = load_balancers_listed_with(LOAD_BALANCER_WITHOUT_ITS_ARN, inventory_in_s3, fake_clock)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the member's cluster is an error naming the call and what it lacked, not the whole
    # run's, and the second member's cluster is analysed
    assert page.answered >= 1
    assert result["status"] == "partial"
    by_cluster = {cluster["cluster"]: cluster for cluster in result["clusters"]}
    assert by_cluster[CLUSTER]["status"] == "error"
    assert "DescribeLoadBalancers answered without LoadBalancerArn" in by_cluster[CLUSTER]["error"]
    assert by_cluster["b-apps"]["status"] == "ok"
    assert latest_analysis().cluster == "b-apps"


class SlowP99Answered:
    """Counts the GetMetricData requests of the member's CloudWatch, and answers the p99 of the
    load balancer named `name` as `seconds` (moto computes no percentiles), in the last hour
    asked."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        self.requests = 0
        self.queries: list[dict[str, Any]] = []
        self.last_hour = datetime.min

    def register(self, events: Any) -> None:
        events.register("before-parameter-build.cloudwatch.GetMetricData", self.asked)
        events.register("after-call.cloudwatch.GetMetricData", self.answered)

    def asked(self, params: dict[str, Any], **_: Any) -> None:
        self.requests += 1
        self.queries = params["MetricDataQueries"]
        self.last_hour = params["EndTime"] - timedelta(hours=1)

    def answered(self, parsed: dict[str, Any], **_: Any) -> None:
        ids = {
            query["Id"]
            for query in self.queries
            if query["MetricStat"]["Stat"] == "p99"
            and f"/{self.name}/" in query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        }
        for result in parsed["MetricDataResults"]:
            if result["Id"] in ids:
                result.update(Timestamps=[self.last_hour], Values=[self.seconds])


def test_a_cluster_of_many_load_balancers_reads_their_latency_in_one_call_a_window(
    analyze: Analyze, fake_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # GIVEN a healthy cluster with 12 load balancers of its own (hundreds take as many reads),
    # one of them answering 2.5 s at p99
    put_week_over_week(
        member_session(MEMBER_ACCOUNT_ID).client("cloudwatch"), the_hour(fake_clock), 4, HEALTHY
    )
    default_subnets = member_session(MEMBER_ACCOUNT_ID).client("ec2").describe_subnets()
    subnets = [subnet["SubnetId"] for subnet in default_subnets["Subnets"]][:2]
    elbv2 = member_session(MEMBER_ACCOUNT_ID).client("elbv2")
    for index in range(12):
        elbv2.create_load_balancer(
            Name=f"k8s-apps-{index:02}",
            Subnets=subnets,
            Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": CLUSTER}],
        )
    answered = SlowP99Answered("k8s-apps-07", 2.5)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    answered.register(session.events)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN each window is one GetMetricData read, not one per load balancer
    [cluster] = result["clusters"]
    assert cluster["status"] == "ok", cluster
    assert answered.requests == 2
    # AND every load balancer is in the analysis, the slow one named with its own p99
    analysis = latest_analysis()
    assert len(analysis.load_balancers) == 12
    assert cluster["bottlenecks"] == ["slow_load_balancer"]
    [slow] = analysis.bottlenecks
    assert "of k8s-apps-07 was 2.5 Seconds" in slow.evidence


def two_clusters_inventory() -> dict[str, Any]:
    """The shared inventory with a second cluster, `dev-web`, in the same account and region."""
    document = copy.deepcopy(INVENTORY_DOCUMENT)
    clusters = document["members"][0]["clusters"]
    clusters.append({**copy.deepcopy(clusters[0]), "name": "dev-web"})
    return document


@pytest.mark.parametrize("inventory_document", [two_clusters_inventory()])
def test_a_regions_load_balancers_are_listed_once_a_run_and_each_cluster_gets_only_its_own(
    analyze: Analyze, fake_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # GIVEN two clusters of the fleet in one account and region, an ALB tagged for each, and
    # ALBs of another team's cluster and of no cluster beside them
    default_subnets = member_session(MEMBER_ACCOUNT_ID).client("ec2").describe_subnets()
    subnets = [subnet["SubnetId"] for subnet in default_subnets["Subnets"]][:2]
    elbv2 = member_session(MEMBER_ACCOUNT_ID).client("elbv2")
    for name, tags in (
        ("k8s-apps-web", [{"Key": "elbv2.k8s.aws/cluster", "Value": CLUSTER}]),
        ("k8s-web-web", [{"Key": "elbv2.k8s.aws/cluster", "Value": "dev-web"}]),
        ("k8s-other-web", [{"Key": "elbv2.k8s.aws/cluster", "Value": "other-team"}]),
        ("plain", [{"Key": "team", "Value": "x"}]),
    ):
        elbv2.create_load_balancer(Name=name, Subnets=subnets, Tags=tags)
    listings: list[str] = []
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register(
        "before-call.elastic-load-balancing-v2.DescribeLoadBalancers",
        lambda **_: listings.append("DescribeLoadBalancers"),
    )
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the region's load balancers were listed once, and each cluster's analysis holds its
    # own load balancer only
    assert [cluster["status"] for cluster in result["clusters"]] == ["ok", "ok"], result
    assert listings == ["DescribeLoadBalancers"]
    s3 = boto3.client("s3", region_name=REGION)
    for cluster, balancer in ((CLUSTER, "k8s-apps-web"), ("dev-web", "k8s-web-web")):
        [key] = [
            item["Key"]
            for item in s3.list_objects_v2(
                Bucket=DATA_BUCKET_NAME, Prefix=f"analyses/{MEMBER_ACCOUNT_ID}/{REGION}/{cluster}/"
            )["Contents"]
        ]
        analysis = PerformanceAnalysis.model_validate_json(
            s3.get_object(Bucket=DATA_BUCKET_NAME, Key=key)["Body"].read()
        )
        assert [latency.name for latency in analysis.load_balancers] == [balancer]


class NodeCpuAnsweredAs:
    """Answers the newest `node_cpu_utilization` value of every GetMetricData of the cluster's
    member CloudWatch as `value` (what CloudWatch's CBOR answer can carry, and moto's store
    cannot)."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.replaced = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if result["Id"] == "cpu" and result["Values"]:
                result["Values"][-1] = self.value
                self.replaced += 1


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_utilisation_that_is_not_a_number_is_left_out_named_and_never_written(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox, value: float
) -> None:
    # GIVEN a cluster saturated in the last 4 hours and healthy a week earlier, and CloudWatch
    # answering the newest node CPU value of each window as `value`
    put_saturated_window(fake_clock, 4)
    answered_as = NodeCpuAnsweredAs(value)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register("after-call.cloudwatch.GetMetricData", answered_as)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the cluster's result names the value left out in each window
    assert answered_as.replaced == 2
    [cluster] = result["clusters"]
    assert cluster["status"] == "ok", cluster
    now, earlier = cluster["left_out"]
    assert now.startswith(f"cpu: 1 value left out, not a number within +-2**360 (CloudWatch's "
                          f"limit); the first {value!r} at ")  # fmt: skip
    assert earlier.startswith("cpu a week earlier: 1 value left out")
    # AND the analysis the optimizer reads is whole and strict JSON, its figures from the rest
    body = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=DATA_BUCKET_NAME, Key=cluster["analysis"])["Body"]
        .read()
    )
    analysis = PerformanceAnalysis.model_validate(json.loads(body, parse_constant=refuse_constant))
    cpu = next(b for b in analysis.bottlenecks if b.rule == "cpu_saturation")
    assert cpu.value == pytest.approx(90.0)
    assert [hour.cpu_percent for hour in analysis.hourly] == [90.0, 90.0, 90.0, None]
    # AND the regression's alert shows the measured figure, not `inf` or `nan`
    [alert] = alert_inbox.receive()
    assert "was 90 Percent" in alert.alert["detail"]
    assert "inf" not in alert.alert["detail"] and "nan" not in alert.alert["detail"]


@pytest.mark.parametrize("value", [-5.0, 140.0])
def test_a_utilisation_no_node_can_have_is_left_out_named_and_never_written(
    analyze: Analyze, fake_clock: ManualClock, value: float
) -> None:
    # GIVEN a cluster saturated (90 % CPU) in the last 4 hours and healthy a week earlier, and
    # CloudWatch answering the newest node CPU value of each window as `value`, below 0 % or
    # above the 105 % the optimizer reads
    put_saturated_window(fake_clock, 4)
    answered_as = NodeCpuAnsweredAs(value)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register("after-call.cloudwatch.GetMetricData", answered_as)
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the cluster's result names the value left out in each window
    assert answered_as.replaced == 2
    [cluster] = result["clusters"]
    assert cluster["status"] == "ok", cluster
    now, earlier = cluster["left_out"]
    assert now.startswith(f"cpu: 1 value left out, outside 0-105 Percent; the first {value!r} at ")
    assert earlier.startswith("cpu a week earlier: 1 value left out, outside 0-105 Percent")
    # AND the analysis holds only the hours the optimizer reads, its figure from them
    analysis = latest_analysis()
    assert [hour.cpu_percent for hour in analysis.hourly] == [90.0, 90.0, 90.0, None]
    cpu = next(b for b in analysis.bottlenecks if b.rule == "cpu_saturation")
    assert cpu.value == pytest.approx(90.0)


def refuse_constant(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")


def test_a_week_over_week_change_too_large_for_a_number_is_no_change_percent() -> None:
    # GIVEN a figure near CloudWatch's limit of 2**360 now and one near 0 a week earlier
    now = WindowMeasurements(figures={"network": 1e108}, load_balancers=[], hourly=[])
    earlier = WindowMeasurements(figures={"network": 1e-300}, load_balancers=[], hourly=[])
    # WHEN the trends are computed
    network = next(trend for trend in trends(now, earlier) if trend.name == "network")
    # THEN the change, beyond the largest float, is None as for a missing figure, not infinity
    assert (network.value, network.week_earlier) == (1e108, 0.0)
    assert network.change_percent is None


def test_an_open_regression_of_a_cluster_removed_from_the_inventory_is_resolved_once(
    analyze: Analyze,
    inventory_in_s3: dict[str, Any],
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN a regression alerted on the cluster
    put_saturated_window(fake_clock, 4)
    analyze({"action": "analyze_fleet"})
    [alert] = alert_inbox.receive()
    # WHEN the cluster is removed from the fleet inventory, and the fleet is analysed twice
    remove_the_cluster_from_the_inventory(inventory_in_s3)
    fake_clock.advance(4 * 3600)
    first = analyze({"action": "analyze_fleet"})
    fake_clock.advance(4 * 3600)
    second = analyze({"action": "analyze_fleet"})
    # THEN its regression is resolved once, saying why, and the first run names the cluster
    resolution = the_one_resolution_of(alert, alert_inbox)
    assert "no longer in the fleet inventory" in resolution.alert["detail"]
    assert alert_inbox.receive() == []
    resource = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}"
    assert first["removed_clusters"] == [
        {"resource": resource, "status": "ok", "alerts": {"sent": 0, "resolved": 1, "open": 0}}
    ]
    assert second["removed_clusters"] == []


@pytest.mark.parametrize(
    ("entry", "data", "error"),
    [
        (
            "dev-apps",
            {"S": "{}"},
            f"'dev-apps' in {OPEN_REGRESSIONS_KEY} is not <account>/<region>/<cluster>",
        ),
        (
            "a/b/c",
            {"S": SECRET},
            f"saved value a/b/c of {OPEN_REGRESSIONS_KEY}: its data is not JSON",
        ),
    ],
    ids=["names-no-cluster", "not-json"],
)
def test_an_index_entry_that_names_no_cluster_is_its_own_error_and_the_others_are_resolved(
    entry: str,
    data: dict[str, str],
    error: str,
    *,
    analyze: Analyze,
    inventory_in_s3: dict[str, Any],
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN a regression alerted on the cluster, then the cluster removed from the inventory
    put_saturated_window(fake_clock, 4)
    analyze({"action": "analyze_fleet"})
    [alert] = alert_inbox.receive()
    remove_the_cluster_from_the_inventory(inventory_in_s3)
    # AND an entry of the open-regressions index that is no `<account>/<region>/<cluster>`, or
    # no JSON (the index is a state table record, which a hand can edit)
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item=unreadable_value(OPEN_REGRESSIONS_KEY, entry, data)
    )
    # WHEN the fleet is analysed
    fake_clock.advance(4 * 3600)
    result = analyze({"action": "analyze_fleet"})
    # THEN that entry is its own error, naming it, never its data, the run is partial, and the
    # removed cluster's regression is resolved all the same
    by_resource = {report["resource"]: report for report in result["removed_clusters"]}
    assert by_resource[entry]["status"] == "error"
    assert by_resource[entry]["error"].startswith(error)
    assert by_resource[f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}"]["status"] == "ok"
    assert result["status"] == "partial"
    assert SECRET not in str(result)
    the_one_resolution_of(alert, alert_inbox)


def test_an_open_regressions_index_that_cannot_be_read_is_one_error_and_clusters_are_analysed(
    analyze: Analyze, state_table: StateTable, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a cluster saturated now, and an entry of the open-regressions index a hand edit made
    # no JSON
    put_saturated_window(fake_clock, 4)
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_value(OPEN_REGRESSIONS_KEY, "a/b/c", {"S": SECRET}),
    )
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the index is one error naming the value, never its data, the run is partial, and the
    # cluster is analysed all the same
    [index_error] = result["removed_clusters"]
    assert index_error["status"] == "error"
    assert (
        f"saved value a/b/c of {OPEN_REGRESSIONS_KEY}: its data is not JSON"
        in (index_error["error"])
    )
    assert SECRET not in str(result)
    assert result["status"] == "partial"
    [cluster] = result["clusters"]
    assert (cluster["cluster"], cluster["status"]) == (CLUSTER, "ok")


@pytest.mark.parametrize(("seconds_left", "status"), [(29, "not_started"), (31, "ok")])
def test_a_cluster_is_started_only_while_the_invocation_has_30_seconds_for_it(
    analyze: Analyze, fake_clock: ManualClock, seconds_left: int, status: str
) -> None:
    # GIVEN a cluster saturated now and healthy a week earlier, and an invocation with
    # `seconds_left` left
    put_saturated_window(fake_clock, 4)
    # WHEN the fleet is analysed
    result = analyze(
        {"action": "analyze_fleet"}, ContextRunningOutOfTime(millis_left=[seconds_left * 1000])
    )
    # THEN the cluster is analysed with 30 s left for it, and otherwise left `not_started`, the
    # run `partial` (docs/functions/performance_analyzer.md)
    [cluster] = result["clusters"]
    assert (cluster["cluster"], cluster["status"]) == (CLUSTER, status)
    assert result["status"] == ("ok" if status == "ok" else "partial")


def test_a_week_earlier_measured_in_one_hour_of_four_compares_nothing(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN a cluster at 90 % CPU in the last 4 hours, and a week earlier Container Insights
    # reporting only the first hour of the same window, a quiet one (60 %): the agent was down
    # the rest of it
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    end = the_hour(fake_clock)
    put_cluster_hours(cloudwatch, end, 4, SATURATED)
    put_cluster_hours(
        cloudwatch, end - timedelta(days=7, hours=3), 1, {**HEALTHY, "node_cpu_utilization": 60.0}
    )
    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})
    # THEN the saturation is named as a bottleneck, but one hour of four is no figure of the
    # week earlier: no regression, nothing alerted
    [cluster] = result["clusters"]
    assert cluster["bottlenecks"] == ["cpu_saturation"]
    assert cluster["regressions"] == []
    assert alert_inbox.receive() == []
    cpu = next(trend for trend in latest_analysis().metrics if trend.name == "cpu")
    assert (cpu.value, cpu.week_earlier) == (pytest.approx(90.0), None)


class CpuAnsweredIncomplete:
    """Answers the `node_cpu_utilization` series of the window from `start` on with StatusCode
    `status`, holding only its values below `below` (CloudWatch's InternalError answer with some
    of the hours; moto always answers `Complete`)."""

    def __init__(self, start: datetime, status: str, below: float) -> None:
        self.start, self.status, self.below = start, status, below
        self.answered = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            moments = result.get("Timestamps", [])
            if result["Id"] != "cpu" or not moments or min(moments) < self.start:
                continue
            kept = [
                (moment, value)
                for moment, value in zip(moments, result["Values"], strict=True)
                if value < self.below
            ]
            result["Timestamps"] = [moment for moment, _ in kept]
            result["Values"] = [value for _, value in kept]
            result["StatusCode"] = self.status
            self.answered += 1


@pytest.mark.parametrize("status", ["InternalError", "PartialData", "Forbidden"])
def test_an_open_regression_is_not_resolved_by_a_series_cloudwatch_answered_incomplete(
    analyze: Analyze, fake_clock: ManualClock, alert_inbox: AlertInbox, status: str
) -> None:
    # GIVEN CloudWatch answering the CPU series of the window four hours on with StatusCode
    # `status` and only its hours below 60 %
    end = the_hour(fake_clock) + timedelta(hours=4)
    incomplete = CpuAnsweredIncomplete(end - timedelta(hours=4), status, below=60.0)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register("after-call.cloudwatch.GetMetricData", incomplete)
    # AND a CPU regression announced by a run now
    cloudwatch, _ = put_saturated_window(fake_clock, 4)
    analyze({"action": "analyze_fleet"})
    [warning] = alert_inbox.receive()
    assert warning.alert["resolved"] is False
    # AND four hours on, the CPU saturated in the window's last three hours (95 %) and not in
    # its first (50 %): 83.75 % on average, above the rule's 80 %; healthy a week earlier
    fake_clock.advance(4 * 3600)
    put_cluster_hours(cloudwatch, end - timedelta(days=7), 4, HEALTHY)
    put_cluster_hours(cloudwatch, end, 3, {**HEALTHY, "node_cpu_utilization": 95.0})
    put_cluster_hours(cloudwatch, end - timedelta(hours=3), 1, HEALTHY | {
        "node_cpu_utilization": 50.0
    })  # fmt: skip

    # WHEN the fleet is analysed
    result = analyze({"action": "analyze_fleet"})

    # THEN the CPU is named unmeasured, not measured at 50 % from the hour answered: nothing is
    # resolved (the rule was not measured, so it did not clear)
    assert incomplete.answered == 1
    [cluster] = result["clusters"]
    assert cluster["status"] == "ok", cluster
    assert "cpu" in cluster["unmeasured"]
    assert cluster["alerts"]["resolved"] == 0
    assert alert_inbox.receive() == []
    cpu = next(trend for trend in latest_analysis().metrics if trend.name == "cpu")
    assert cpu.value is None
