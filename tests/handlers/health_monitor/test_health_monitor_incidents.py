"""health_monitor: the incident of a failing endpoint from its first alert to its resolution,
at the real 5-minute cadence with a manual clock, the endpoint served on 127.0.0.1; alerts SNS
did not take; and the fleet run's deadline."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.alerts import alert_id
from fleet_shared.endpoint_history import HISTORY_VALUE, endpoint_history_key
from fleet_shared.sessions import MEMBER_CALL_CONFIG
from fleet_shared.state_table import StateTable
from handlers.health_monitor.incidents import (
    ALARM_INCIDENT_PLACES,
    INCIDENT_VALUE,
    alarm_incidents_key,
    incident_key,
)
from tests.handlers.analytics_accounts import deny_assume_role
from tests.handlers.conftest import STATE_TABLE_NAME
from tests.handlers.deadlines import (
    THREAD_REACHED_SECONDS,
    ContextRunningOutOfTime,
    killed_while_publishing_then_retried,
)
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    InjectedFault,
    fail_every_attempt,
)
from tests.handlers.health_monitor.bad_incident_entries import put_bad_incident_entries
from tests.handlers.health_monitor.conftest import MemberCluster, put_alarm
from tests.handlers.health_monitor.fleet_runs import (
    CADENCE_SECONDS,
    FLEET_EVENT,
    Invoke,
    run_refused_by_sns_then_retried,
    scheduled_runs,
)
from tests.handlers.health_monitor.test_health_monitor_events import alarm_event
from tests.handlers.local_peers import LocalPeer
from tests.handlers.member_accounts import member_session as member_role_session
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

REGION = "ap-south-1"
MEMBER = "222222222222"
SECOND_MEMBER = "333333333333"


def endpoint_alerts_of(alert_inbox: Any, names: list[str]) -> list[dict[str, Any]]:
    """The alerts about the endpoints `names` received since the last call, in order."""
    return [
        received.alert
        for received in alert_inbox.receive()
        if received.alert["resource"].rsplit("/endpoint/", 1)[-1] in names
    ]


@dataclass
class EndpointSchedule:
    """The member cluster's one endpoint `api`, served at `/flaky` (200 until told otherwise),
    checked by the scheduled fleet run every 5 minutes of the fake clock."""

    invoke: Invoke
    clock: Any
    server: Any
    alert_inbox: Any
    services: Callable[[], Any]
    monkeypatch: pytest.MonkeyPatch

    def endpoint_answers(self, status: int) -> None:
        self.server.routes["/flaky"] = (status, 0.0)

    def runs(self, count: int) -> list[dict[str, Any]]:
        """`count` scheduled runs, 5 minutes apart; their results."""
        return scheduled_runs(self.invoke, self.clock, count)

    def next_run(self) -> dict[str, Any]:
        """The scheduled run 5 minutes after the last one; its result."""
        self.clock.advance(CADENCE_SECONDS)
        return self.invoke(FLEET_EVENT)

    def retry(self) -> dict[str, Any]:
        """The platform's retry of the last run, at once."""
        return self.invoke(FLEET_EVENT)

    def endpoint_alerts(self) -> list[dict[str, Any]]:
        """The alerts about the endpoint received since the last call, in order."""
        return [
            received.alert
            for received in self.alert_inbox.receive()
            if received.alert["resource"].endswith("/endpoint/api")
        ]

    def fail_every_publish(self) -> InjectedFault:
        """SNS failing every attempt of Publish, until the fault is healed."""
        return fail_every_attempt(self.services().hub_client("sns"), "sns", "Publish")

    def failing_at_once(self) -> None:
        """The endpoint answering 500, rated on its first result (one sample suffices): critical
        at once."""
        self.monkeypatch.setenv("HEALTH_ERROR_RATE_MIN_SAMPLES", "1")
        self.endpoint_answers(500)

    def recovered_from_an_incident(self) -> list[dict[str, Any]]:
        """An endpoint critical at once for one run, then answering again for two runs, its
        failure still within the window of 15 minutes: the alerts received, its incident's."""
        self.failing_at_once()
        self.runs(1)
        announced = self.endpoint_alerts()
        self.endpoint_answers(200)
        self.runs(2)
        return announced


@pytest.fixture
def schedule(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    health_services: Callable[[], Any],
    alert_inbox: Any,
    fake_clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> EndpointSchedule:
    use_endpoints([{"name": "api", "url": endpoint_server.url("/flaky"), "timeout_seconds": 2}])
    scheduled = EndpointSchedule(
        invoke, fake_clock, endpoint_server, alert_inbox, health_services, monkeypatch
    )
    scheduled.endpoint_answers(200)
    return scheduled


@pytest.mark.parametrize(
    ("min_samples", "failure_severities"),
    [
        # One sample: the first failed request is a 100% error rate, critical at once.
        ("1", ["critical"]),
        # The default 3: a warning (the request failed) until the window holds 3 results,
        # then critical, an escalation within the same incident.
        ("3", ["warning", "critical"]),
    ],
)
def test_endpoint_failing_two_hours_then_recovering_is_alerted_once_and_resolved_once(
    schedule: EndpointSchedule,
    monkeypatch: pytest.MonkeyPatch,
    min_samples: str,
    failure_severities: list[str],
) -> None:
    # GIVEN an endpoint checked at the 5-minute cadence
    monkeypatch.setenv("HEALTH_ERROR_RATE_MIN_SAMPLES", min_samples)
    # WHEN it answers 503 for 2 hours
    schedule.endpoint_answers(503)
    failing = schedule.runs(24)
    # THEN the incident was announced once per severity it reached, all with one id
    raised = schedule.endpoint_alerts()
    assert [alert["severity"] for alert in raised] == failure_severities
    assert all(alert["resolved"] is False for alert in raised)
    assert len({alert["id"] for alert in raised}) == 1
    assert failing[-1]["status"] == "critical"
    # WHEN it answers again, for 1 hour
    schedule.endpoint_answers(200)
    recovering = schedule.runs(12)
    # THEN the check passes within one window (15 minutes), exactly one resolution went out
    # with the incident's id, and no failure alert after the recovery
    statuses = [result["clusters"][0]["status"] for result in recovering]
    assert statuses[:3] == ["critical", "warning", "healthy"]
    assert set(statuses[2:]) == {"healthy"}
    after = schedule.endpoint_alerts()
    assert len(after) == 1
    [resolution] = after
    assert resolution["resolved"] is True
    assert resolution["id"] == raised[0]["id"]
    assert resolution["severity"] == failure_severities[-1]
    assert [result["clusters"][0]["alerts"]["resolved"] for result in recovering] == [
        0,
        0,
        1,
        *[0] * 9,
    ]


def test_a_failure_after_a_resolution_is_a_new_incident(schedule: EndpointSchedule) -> None:
    # GIVEN an incident that was raised and resolved (one result rates the endpoint)
    schedule.failing_at_once()
    schedule.runs(2)
    schedule.endpoint_answers(200)
    schedule.runs(4)
    first = schedule.endpoint_alerts()
    assert [alert["resolved"] for alert in first] == [False, True]
    # WHEN the endpoint fails again, then recovers again
    schedule.endpoint_answers(500)
    schedule.runs(2)
    schedule.endpoint_answers(200)
    schedule.runs(4)
    # THEN a new incident was announced (a warning while the window still holds the successes,
    # then its escalation) and resolved, with the same alert id
    second = schedule.endpoint_alerts()
    assert [(alert["severity"], alert["resolved"]) for alert in second] == [
        ("warning", False),
        ("critical", False),
        ("critical", True),
    ]
    assert {alert["id"] for alert in first + second} == {first[0]["id"]}


def test_failure_alert_sns_did_not_take_fails_the_run_and_the_retry_sends_it_once(
    schedule: EndpointSchedule,
) -> None:
    # GIVEN a failing endpoint (critical at once: one result rates it) and SNS failing every
    # attempt of Publish
    schedule.failing_at_once()
    fault = schedule.fail_every_publish()
    # WHEN the scheduled run checks it
    with pytest.raises(AlertNotDeliveredError):
        schedule.next_run()
    # THEN the invocation failed (so the platform retries it), after botocore's own retries,
    # and nothing reached the alert topics
    assert fault.attempts > 1
    assert schedule.endpoint_alerts() == []
    # WHEN SNS is healthy again and the platform retries the run, then the schedule goes on
    fault.healed = True
    retried = schedule.retry()
    later = schedule.runs(3)
    # THEN exactly one failure alert went out, by the retry
    raised = schedule.endpoint_alerts()
    assert [(alert["severity"], alert["resolved"]) for alert in raised] == [("critical", False)]
    assert retried["clusters"][0]["alerts"]["sent"] == 1
    assert [result["clusters"][0]["alerts"]["sent"] for result in later] == [0, 0, 0]


def test_resolution_sns_did_not_take_fails_the_run_and_the_retry_sends_it_once(
    schedule: EndpointSchedule,
) -> None:
    # GIVEN an announced incident of an endpoint that has recovered, and SNS failing
    [raised] = schedule.recovered_from_an_incident()
    fault = schedule.fail_every_publish()
    # WHEN the run in which the check passes again cannot publish the resolution
    with pytest.raises(AlertNotDeliveredError):
        schedule.next_run()
    # THEN nothing went out; WHEN SNS is back and the run is retried, then the schedule goes on
    assert schedule.endpoint_alerts() == []
    fault.healed = True
    schedule.retry()
    schedule.runs(3)
    # THEN exactly one resolution went out, with the incident's id
    [resolution] = schedule.endpoint_alerts()
    assert (resolution["id"], resolution["resolved"]) == (raised["id"], True)


@dataclass
class IncidentWritesFailAfterResolution:
    """Every write of an incident record fails (every attempt, as DynamoDB out of reach) once a
    resolution was handed to SNS, until `healed`."""

    fault: InjectedFault = field(default_factory=lambda: InjectedFault("PutItem"))
    armed: bool = False

    def on_publish(self, params: dict[str, Any], **_: Any) -> None:
        if '"resolved":true' in str(params.get("Message")):
            self.armed = True

    def on_put(self, request: Any, **kwargs: Any) -> None:
        if self.armed and "health_monitor/incident/" in str(request.body):
            self.fault(request, **kwargs)


def test_a_failure_after_a_resolution_whose_record_was_not_written_is_a_new_incident(
    schedule: EndpointSchedule,
) -> None:
    # GIVEN an announced incident of an endpoint that has recovered (one result rates it)
    announced = schedule.recovered_from_an_incident()
    # AND DynamoDB out of reach for the incident's record once its resolution went to SNS
    services = schedule.services()
    writes = IncidentWritesFailAfterResolution()
    services.hub_client("sns").meta.events.register(
        "before-parameter-build.sns.Publish", writes.on_publish
    )
    services.hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb.PutItem", writes.on_put
    )
    # WHEN the run in which the check passes again sends the resolution (and fails, to be
    # retried, for the record it could not write), then DynamoDB is back and the endpoint fails
    # again
    with pytest.raises(EndpointConnectionError):
        schedule.next_run()
    assert writes.fault.attempts > 0
    writes.fault.healed = True
    schedule.endpoint_answers(500)
    schedule.runs(2)
    # THEN the resolution went out once, and the new failure is a new incident, announced
    raised = [
        (alert["severity"], alert["resolved"]) for alert in announced + schedule.endpoint_alerts()
    ]
    assert raised[:2] == [("critical", False), ("critical", True)]
    assert raised[2:3] == [("warning", False)]
    assert ("critical", True) not in raised[2:]


def test_an_alert_sns_did_not_take_fails_the_run_even_when_another_incident_could_not_be_read(
    schedule: EndpointSchedule,
) -> None:
    # GIVEN a failing endpoint (critical at once), SNS failing every attempt of Publish, and
    # DynamoDB failing every read of the cluster's member_access incident
    schedule.failing_at_once()
    schedule.fail_every_publish()
    member_access_id = alert_id(
        "health_monitor",
        f"{MEMBER}/{REGION}/dev-apps/member_access/{MEMBER}",
        f"dev-apps: member_access check failed for {MEMBER}",
    )
    unreadable = fail_every_attempt(
        schedule.services().hub_client("dynamodb"),
        "dynamodb",
        "GetItem",
        body_with=(f"health_monitor/incident/{member_access_id}".encode(),),
    )
    # WHEN the scheduled run checks the cluster
    # THEN the invocation fails for the alert SNS did not take, so the platform retries it
    with pytest.raises(AlertNotDeliveredError):
        schedule.next_run()
    assert unreadable.attempts > 0
    assert schedule.endpoint_alerts() == []


@pytest.fixture
def two_members_one_at_a_time(
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    make_member_cluster: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The inventory with a second member holding the same cluster, checked one at a time: each
    cluster asks for the time left as often (`QUESTIONS_OF_ONE_CLUSTER`)."""
    second = json.loads(json.dumps(inventory["members"][0]))
    second.update(account_id=SECOND_MEMBER, name="dev-second")
    inventory["members"].append(second)
    write_inventory(inventory)
    make_member_cluster(SECOND_MEMBER)
    monkeypatch.setenv("HEALTH_MAX_WORKERS", "1")


QUESTIONS_BEFORE_PROBES = 6
"""The times a run asks for its time left on the sample cluster before its probes: at its start,
and before each of its member calls (DescribeCluster, ListNodegroups, DescribeNodegroup,
DescribeAutoScalingGroups, DescribeAlarms)."""
QUESTIONS_OF_ONE_CLUSTER = QUESTIONS_BEFORE_PROBES + 2
"""Those, its batch of probes and its load-balancer check's DescribeLoadBalancers."""


def time_for_one_cluster() -> ContextRunningOutOfTime:
    """A Lambda context with time for one cluster's check (20 s of AWS calls plus its endpoint's
    2 s timeout) and no more: asked at the first cluster's start, its member calls and its
    probes, then at the second's start."""
    return ContextRunningOutOfTime(millis_left=[30_000] * QUESTIONS_OF_ONE_CLUSTER + [10_000])


def test_fleet_run_starts_no_cluster_it_could_not_finish_and_is_partial(
    invoke: Invoke,
    member_cluster: Any,
    *,
    two_members_one_at_a_time: None,
    endpoint_server: Any,
    alert_inbox: Any,
) -> None:
    # GIVEN two member clusters checked one at a time, and an invocation with time for the
    # first only
    context = time_for_one_cluster()
    # WHEN the scheduled run starts
    result = invoke(FLEET_EVENT, context)
    # THEN the first cluster was checked, the second not started, and the run is partial
    first, left = result["clusters"]
    assert (first["account_id"], first["status"]) == (MEMBER, "healthy")
    assert left == {
        "account_id": SECOND_MEMBER,
        "region": REGION,
        "cluster": "dev-apps",
        "status": "not_started",
    }
    assert (result["status"], result["health"]) == ("partial", "healthy")
    assert result["not_started"] == [f"{SECOND_MEMBER}/{REGION}/dev-apps"]
    # AND only the checked cluster's endpoint was requested, and nothing was alerted
    assert endpoint_server.hits["/healthy"] == 1
    assert alert_inbox.receive() == []


def test_a_cluster_a_fleet_run_left_goes_first_in_the_next_run(
    invoke: Invoke,
    member_cluster: Any,
    *,
    two_members_one_at_a_time: None,
    endpoint_server: Any,
) -> None:
    # GIVEN two member clusters checked one at a time, and runs with time for one cluster each
    # WHEN three scheduled runs follow one another
    checked = [
        [
            (report["account_id"], report["status"] != "not_started")
            for report in invoke(FLEET_EVENT, time_for_one_cluster())["clusters"]
        ]
        for _ in range(3)
    ]
    # THEN the clusters take turns: each run checks (True) the one the last run left, and the
    # reports stay in inventory order
    assert checked == [
        [(MEMBER, True), (SECOND_MEMBER, False)],
        [(MEMBER, False), (SECOND_MEMBER, True)],
        [(MEMBER, True), (SECOND_MEMBER, False)],
    ]


def test_the_clusters_left_as_saved_before_a_deploy_still_go_first_after_it(
    invoke: Invoke,
    member_cluster: Any,
    state_table: StateTable,
    *,
    two_members_one_at_a_time: None,
    endpoint_server: Any,
) -> None:
    # GIVEN the second member's cluster left by a run of the code deployed before, under its key
    # and in its shape (labels under `clusters`), and a run with time for one cluster
    state_table.put_value(
        "health_monitor/clusters-not-started",
        "not_started",
        {"clusters": [f"{SECOND_MEMBER}/{REGION}/dev-apps"]},
        ttl_seconds=24 * 3600,
    )
    # WHEN the scheduled run starts
    result = invoke(FLEET_EVENT, time_for_one_cluster())
    # THEN it checks that cluster first, and leaves the first member's for the next run
    assert result["not_started"] == [f"{MEMBER}/{REGION}/dev-apps"]
    assert state_table.get_value("health_monitor/clusters-not-started", "not_started") == {
        "clusters": [f"{MEMBER}/{REGION}/dev-apps"]
    }


CLUSTERS_LEFT_KEY = ("health_monitor/clusters-not-started", "not_started")
"""Where the fleet run keeps the clusters it left for the next run."""
SECOND_CLUSTER = f"{SECOND_MEMBER}/{REGION}/dev-apps"


def time_to_cut_the_second_cluster_short(last_question_millis: int) -> ContextRunningOutOfTime:
    """A Lambda context with time for the first cluster's whole check, then for the second
    cluster's start and its member calls before its probes, and `last_question_millis` from the
    second cluster's probes on."""
    return ContextRunningOutOfTime(
        millis_left=[30_000] * (QUESTIONS_OF_ONE_CLUSTER + QUESTIONS_BEFORE_PROBES)
        + [last_question_millis]
    )


SECOND_CLUSTER_CUT_SHORT = {
    # 21 s: the load balancers' call (20 s) but not the endpoint's probe (20 s and its 2 s)
    "endpoint not probed": (21_000, "not_probed", ["api"]),
    # 10 s: neither the probe nor the load balancers' call
    "checks not checked": (10_000, "not_checked", ["load_balancer"]),
}


@pytest.mark.parametrize(
    ("last_question_millis", "left_kind", "left"),
    SECOND_CLUSTER_CUT_SHORT.values(),
    ids=SECOND_CLUSTER_CUT_SHORT.keys(),
)
def test_a_cluster_a_fleet_run_left_partly_checked_goes_first_and_is_checked_whole_next_run(
    invoke: Invoke,
    member_cluster: Any,
    *,
    two_members_one_at_a_time: None,
    endpoint_server: Any,
    last_question_millis: int,
    left_kind: str,
    left: list[str],
) -> None:
    # GIVEN two member clusters checked one at a time, and a scheduled run whose time runs short
    # during the second cluster's check
    # WHEN that run checks the fleet
    cut_short = invoke(FLEET_EVENT, time_to_cut_the_second_cluster_short(last_question_millis))
    # THEN the second cluster was started, and part of its check was left for lack of time
    first, second = cut_short["clusters"]
    assert (first["status"], second["account_id"]) == ("healthy", SECOND_MEMBER)
    assert second[left_kind] == left
    assert cut_short["status"] == "partial"
    assert "not_started" not in cut_short
    # WHEN the next scheduled run has time for one cluster only
    next_run = invoke(FLEET_EVENT, time_for_one_cluster())
    # THEN it checks the second cluster first, every check and endpoint of it, and leaves the
    # first member's for the run after it
    first, second = next_run["clusters"]
    assert first["status"] == "not_started"
    assert second["status"] == "healthy"
    assert "not_probed" not in second and "not_checked" not in second
    assert [check["status"] for check in second["checks"] if check["name"] == "endpoint"] == [
        "passed"
    ]
    assert next_run["not_started"] == [f"{MEMBER}/{REGION}/dev-apps"]


def test_a_cluster_left_partly_checked_goes_before_the_clusters_its_run_did_not_start(
    invoke: Invoke,
    member_cluster: Any,
    state_table: StateTable,
    *,
    two_members_one_at_a_time: None,
    endpoint_server: Any,
) -> None:
    # GIVEN two member clusters checked one at a time, and a scheduled run whose time runs short
    # at the first cluster's load balancers: too little for that call, or to start the second
    context = ContextRunningOutOfTime(
        millis_left=[30_000] * (QUESTIONS_OF_ONE_CLUSTER - 1) + [10_000]
    )
    # WHEN that run checks the fleet
    cut_short = invoke(FLEET_EVENT, context)
    # THEN both clusters are left for the next run, in the order the run came to them
    assert cut_short["not_checked"] == [f"{MEMBER}/{REGION}/dev-apps/load_balancer"]
    assert cut_short["not_started"] == [SECOND_CLUSTER]
    assert state_table.get_value(*CLUSTERS_LEFT_KEY) == {
        "clusters": [f"{MEMBER}/{REGION}/dev-apps", SECOND_CLUSTER]
    }
    # AND the next run, with time for one cluster, checks the first one whole before the second
    next_run = invoke(FLEET_EVENT, time_for_one_cluster())
    first, second = next_run["clusters"]
    assert (first["status"], second["status"]) == ("healthy", "not_started")
    assert "not_checked" not in first


def test_a_run_that_checks_a_cluster_left_partly_checked_whole_takes_it_off_the_list(
    invoke: Invoke,
    member_cluster: Any,
    state_table: StateTable,
    *,
    two_members_one_at_a_time: None,
    endpoint_server: Any,
) -> None:
    # GIVEN a scheduled run that left the second cluster's load balancers not checked for lack
    # of time, and named that cluster for the next run
    cut_short = invoke(FLEET_EVENT, time_to_cut_the_second_cluster_short(10_000))
    assert cut_short["not_checked"] == [f"{SECOND_CLUSTER}/load_balancer"]
    assert state_table.get_value(*CLUSTERS_LEFT_KEY) == {"clusters": [SECOND_CLUSTER]}
    # WHEN the next run has time for every cluster
    whole = invoke(FLEET_EVENT, ContextRunningOutOfTime(millis_left=[120_000]))
    # THEN it checks both whole and leaves no cluster for the run after it
    assert whole["status"] == "healthy"
    assert state_table.get_value(*CLUSTERS_LEFT_KEY) == {"clusters": []}
    # AND the run after it, with time for one cluster, goes in inventory order again
    one = invoke(FLEET_EVENT, time_for_one_cluster())
    assert one["not_started"] == [SECOND_CLUSTER]


def test_a_cluster_not_started_is_not_counted_as_checked(
    invoke: Invoke,
    member_cluster: Any,
    *,
    two_members_one_at_a_time: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN two member clusters checked one at a time, and time for the first only
    capsys.readouterr()
    # WHEN the scheduled run starts
    result = invoke(FLEET_EVENT, time_for_one_cluster())
    assert result["not_started"] == [f"{SECOND_MEMBER}/{REGION}/dev-apps"]
    # THEN the ClustersChecked metric counts the one cluster checked
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    checked = [line["ClustersChecked"] for line in lines if "ClustersChecked" in line]
    assert checked in ([1.0], [[1.0]])


def test_a_cluster_with_many_endpoints_does_not_keep_the_fleet_run_from_starting(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
) -> None:
    # GIVEN a cluster with five endpoints, each allowed the stack file's longest timeout but 5 s
    # (25 s), and a scheduled run with 115 s left of its 120 s
    use_endpoints(
        [
            {"name": f"api-{index}", "url": endpoint_server.url("/healthy"), "timeout_seconds": 25}
            for index in range(5)
        ]
    )
    context = ContextRunningOutOfTime(millis_left=[115_000])
    # WHEN the scheduled run starts
    result = invoke(FLEET_EVENT, context)
    # THEN the cluster was checked, every endpoint of it
    [cluster] = result["clusters"]
    assert (result["status"], cluster["status"]) == ("healthy", "healthy")
    endpoint_checks = [check for check in cluster["checks"] if check["name"] == "endpoint"]
    assert [check["status"] for check in endpoint_checks] == ["passed"] * 5


ALARM_NAME = "dev-apps-nodes-critical"


def alarm_alerts(alert_inbox: Any, arn: str) -> list[tuple[str, bool]]:
    """(severity, resolved) of the alerts about the alarm `arn` received since the last call."""
    return [
        (received.alert["severity"], received.alert["resolved"])
        for received in alert_inbox.receive()
        if received.alert["resource"] == arn
    ]


@dataclass
class NodesAlarm:
    """The member cluster's alarm ALARM_NAME, whose state the test sets, and the handler its
    state changes are delivered to (the inventory's endpoint answers)."""

    cluster: Any
    invoke: Invoke
    services: Callable[[], Any]
    alert_inbox: Any
    arn: str = ""

    def set_state(self, state: str) -> dict[str, Any]:
        """Set the alarm's state; the event CloudWatch emits for it, not delivered yet."""
        self.arn = self.cluster.put_alarm(ALARM_NAME, state)
        return alarm_event(ALARM_NAME, state, self.arn)

    def changes_to(self, state: str) -> dict[str, Any]:
        """Set the alarm's state and deliver its event: the handler's result."""
        return self.invoke(self.set_state(state))

    def alerts(self) -> list[tuple[str, bool]]:
        """(severity, resolved) of the alerts about the alarm received since the last call."""
        return alarm_alerts(self.alert_inbox, self.arn)

    def fail_every_publish(self) -> InjectedFault:
        """SNS failing every attempt of Publish, until the fault is healed."""
        return fail_every_attempt(self.services().hub_client("sns"), "sns", "Publish")

    def returns_to_ok_while_held(self, paused: PausedRequest, event: dict[str, Any]) -> None:
        """Invoke the handler with `event` in another thread until `paused` holds it, set the
        alarm back to OK and deliver that event meanwhile, then let the held invocation end."""
        held = threading.Thread(target=self.invoke, args=(event,))
        held.start()
        assert paused.reached.wait(THREAD_REACHED_SECONDS)
        self.changes_to("OK")
        paused.resumed.set()
        held.join(30)

    def pause_first_request(self, service: str, operation: str, marker: str = "") -> PausedRequest:
        """Hold the handler's first `operation` on its hub `service` client whose body holds
        `marker`, made outside the test's own thread, until resumed."""
        paused = PausedRequest(marker)
        self.services().hub_client(service).meta.events.register_first(
            f"before-send.{service}.{operation}", paused
        )
        return paused


@pytest.fixture
def alarm(
    invoke: Invoke,
    member_cluster: Any,
    *,
    inventory: dict[str, Any],
    health_services: Callable[[], Any],
    alert_inbox: Any,
) -> NodesAlarm:
    return NodesAlarm(member_cluster, invoke, health_services, alert_inbox)


def test_an_alarm_event_retried_after_its_alarm_returned_to_ok_leaves_no_incident_open(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm that entered ALARM while SNS was failing, so its event's invocation failed
    entered = alarm.set_state("ALARM")
    fault = alarm.fail_every_publish()
    with pytest.raises(AlertNotDeliveredError):
        invoke(entered)
    fault.healed = True
    # AND the alarm returned to OK, whose event came through, before the platform retried
    fake_clock.advance(60)
    alarm.changes_to("OK")
    # WHEN the platform retries the ALARM event, and the schedule goes on
    fake_clock.advance(60)
    invoke(entered)
    scheduled_runs(invoke, fake_clock, 2)
    # THEN no incident of the alarm is left open: whatever went out ends with its resolution
    sent = alarm.alerts()
    assert sent == [] or sent[-1] == ("critical", True), sent
    # AND when the alarm enters ALARM again, that is alerted
    fake_clock.advance(60)
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]


def test_an_alarm_not_ok_for_longer_than_a_week_is_resolved_when_it_returns_to_ok(
    alarm: NodesAlarm, fake_clock: Any
) -> None:
    # GIVEN an alarm that entered ALARM, alerted, then lost its metric (INSUFFICIENT_DATA, which
    # no scheduled run lists) and stayed so for eight days: no state change, so no event
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]
    fake_clock.advance(3600)
    alarm.changes_to("INSUFFICIENT_DATA")
    fake_clock.advance(8 * 24 * 3600)
    # WHEN the alarm returns to OK
    alarm.changes_to("OK")
    # THEN the incident opened by its ALARM is resolved, rather than forgotten with its
    # PagerDuty incident left open
    assert alarm.alerts() == [("critical", True)]


def deleted(alarm: NodesAlarm) -> None:
    """Delete the alarm from the member's CloudWatch: it sends no state change for that."""
    alarm.cluster.session.client("cloudwatch").delete_alarms(AlarmNames=[ALARM_NAME])


def alarm_notices(alarm: NodesAlarm) -> list[tuple[bool, str]]:
    """(resolved, detail) of the alerts about the alarm received since the last call."""
    return [
        (received.alert["resolved"], received.alert["detail"])
        for received in alarm.alert_inbox.receive()
        if received.alert["resource"] == alarm.arn
    ]


def test_an_alarm_deleted_in_alarm_is_resolved_once_by_the_next_scheduled_run(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm that entered ALARM, alerted, then was deleted (no state change event)
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]
    deleted(alarm)
    # WHEN the next scheduled run lists the alarms of its account and region
    result = scheduled_runs(invoke, fake_clock, 1)[0]
    # THEN its incident is resolved, saying the alarm was deleted
    assert alarm_notices(alarm) == [
        (True, f"alarm {ALARM_NAME} was deleted: no state change will resolve it")
    ]
    assert result["clusters"][0]["alerts"]["resolved"] == 1
    # AND the platform's retry of that run and the runs after it resolve nothing more
    invoke(FLEET_EVENT)
    scheduled_runs(invoke, fake_clock, 2)
    assert alarm_notices(alarm) == []


def test_a_deleted_alarm_is_resolved_by_its_cluster_run_past_entries_of_its_list_it_cannot_read(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any, dynamodb_client: Any
) -> None:
    # GIVEN an alarm that entered ALARM, alerted, then was deleted
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]
    deleted(alarm)
    # AND beside its entry in the list of alarm incidents of its account and region, one entry
    # of each bad shape (hand edits: no JSON, no object, no alarm, an alarm that is no text)
    errors = put_bad_incident_entries(
        dynamodb_client, alarm_incidents_key(MEMBER, REGION), ("alarm",)
    )
    # WHEN the next scheduled run checks the cluster
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN the deleted alarm's incident is resolved once, and each bad entry is one warning of
    # the alarm check naming it, never its data
    assert alarm_notices(alarm) == [
        (True, f"alarm {ALARM_NAME} was deleted: no state change will resolve it")
    ]
    [cluster] = result["clusters"]
    assert [
        (check["severity"], check["detail"])
        for check in cluster["checks"]
        if check["name"] == "alarm" and check["status"] == "failed"
    ] == [("warning", f"an alarm incident could not be read: {error}") for error in errors]
    assert SECRET not in str(result)


def test_a_deleted_alarm_resolution_sns_did_not_take_is_sent_by_the_retry(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm that entered ALARM, alerted, then was deleted
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]
    deleted(alarm)
    # AND a scheduled run whose resolution SNS did not take, so the run failed
    fault = alarm.fail_every_publish()
    with pytest.raises(AlertNotDeliveredError):
        scheduled_runs(invoke, fake_clock, 1)
    fault.healed = True
    # WHEN the platform retries the run, and the schedule goes on
    invoke(FLEET_EVENT)
    scheduled_runs(invoke, fake_clock, 1)
    # THEN the resolution went out once
    assert alarm.alerts() == [("critical", True)]


def test_an_alarm_still_in_the_account_in_another_state_is_not_resolved_as_deleted(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm that entered ALARM, alerted, then lost its metric (INSUFFICIENT_DATA: it
    # is not in the scheduled run's listing of alarms in ALARM, but it exists)
    alarm.changes_to("ALARM")
    fake_clock.advance(60)
    alarm.changes_to("INSUFFICIENT_DATA")
    assert alarm.alerts() == [("critical", False)]
    # WHEN scheduled runs go on
    scheduled_runs(invoke, fake_clock, 2)
    # THEN its incident stays open: nothing is resolved
    assert alarm.alerts() == []


def test_an_alarm_back_to_ok_whose_state_change_was_lost_is_resolved_once_by_the_next_run(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm that entered ALARM and alerted, then returned to OK, the event of that state
    # change lost on its way (its invocation dead-lettered, a member rule missing)
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]
    alarm.set_state("OK")
    # WHEN scheduled runs go on
    scheduled_runs(invoke, fake_clock, 2)
    # THEN its incident is resolved once, by the run that found the alarm OK
    assert alarm.alerts() == [("critical", True)]
    # AND its return to ALARM is a new incident, alerted
    fake_clock.advance(60)
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]


@pytest.mark.parametrize("failing", ["every listing", "the listing by name"])
def test_an_alarm_deleted_is_not_resolved_by_a_run_whose_listing_failed(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any, failing: str
) -> None:
    # GIVEN an alarm that entered ALARM, alerted, then was deleted
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]
    deleted(alarm)
    # AND CloudWatch's DescribeAlarms failing every attempt (every call, or the one asking the
    # alarms of open incidents by name)
    cloudwatch = alarm.services().sessions.client("cloudwatch", MEMBER, REGION, MEMBER_CALL_CONFIG)
    body_with = (b"AlarmNames",) if failing == "the listing by name" else ()
    fault = fail_every_attempt(cloudwatch, "cloudwatch", "DescribeAlarms", body_with=body_with)
    # WHEN the scheduled run checks the cluster
    result = scheduled_runs(invoke, fake_clock, 1)[0]
    # THEN the alarm check could not run and nothing is resolved
    [alarm_check] = [check for check in result["clusters"][0]["checks"] if check["name"] == "alarm"]
    assert alarm_check["detail"].startswith("check could not run"), alarm_check
    assert alarm.alerts() == []
    # AND once CloudWatch answers again, the next run resolves it
    fault.healed = True
    scheduled_runs(invoke, fake_clock, 1)
    assert alarm.alerts() == [("critical", True)]


OTHER_REGION = "eu-west-1"
"""A region of the member where the inventory has no cluster: no scheduled run checks one there."""


@dataclass
class AlarmWithoutCluster:
    """The member's alarm ALARM_NAME in OTHER_REGION, where it has no cluster, and the handler
    its state changes are delivered to."""

    invoke: Invoke
    services: Callable[[], Any]
    alert_inbox: Any
    arn: str = ""

    def cloudwatch(self) -> Any:
        return member_role_session(MEMBER, OTHER_REGION).client("cloudwatch")

    def enters_alarm(self) -> dict[str, Any]:
        """Set the alarm to ALARM there and deliver its event: the handler's result."""
        self.arn = put_alarm(self.cloudwatch(), ALARM_NAME, "ALARM", "threshold crossed")
        return self.invoke({**alarm_event(ALARM_NAME, "ALARM", self.arn), "region": OTHER_REGION})

    def deleted(self) -> None:
        """Delete the alarm: it sends no state change for that."""
        self.cloudwatch().delete_alarms(AlarmNames=[ALARM_NAME])

    def notices(self) -> list[tuple[bool, str]]:
        """(resolved, detail) of the alerts about the alarm received since the last call."""
        return [
            (received.alert["resolved"], received.alert["detail"])
            for received in self.alert_inbox.receive()
            if received.alert["resource"] == self.arn
        ]


@pytest.fixture
def alarm_without_cluster(
    invoke: Invoke,
    member_cluster: Any,
    *,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    health_services: Callable[[], Any],
    alert_inbox: Any,
) -> AlarmWithoutCluster:
    inventory["members"][0]["regions"] = [REGION, OTHER_REGION]
    write_inventory(inventory)
    return AlarmWithoutCluster(invoke, health_services, alert_inbox)


def test_an_alarm_deleted_in_alarm_where_the_member_has_no_cluster_is_resolved_once(
    alarm_without_cluster: AlarmWithoutCluster, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted
    # through its event, then was deleted (no state change event)
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # WHEN the next scheduled run happens
    result = scheduled_runs(invoke, fake_clock, 1)[0]
    # THEN its incident is resolved once, saying the alarm was deleted
    assert alarm_without_cluster.notices() == [
        (True, f"alarm {ALARM_NAME} was deleted: no state change will resolve it")
    ]
    assert result["alarm_regions"] == [
        {
            "account_id": MEMBER,
            "region": OTHER_REGION,
            "status": "checked",
            "alerts": {"sent": 0, "resolved": 1, "suppressed": 0},
        }
    ]
    # AND the platform's retry of that run and the runs after it resolve nothing more
    invoke(FLEET_EVENT)
    scheduled_runs(invoke, fake_clock, 2)
    assert alarm_without_cluster.notices() == []


def test_an_alarm_deleted_where_the_member_has_no_cluster_is_resolved_past_unreadable_entries(
    alarm_without_cluster: AlarmWithoutCluster,
    invoke: Invoke,
    fake_clock: Any,
    dynamodb_client: Any,
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted,
    # then was deleted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # AND beside its entry in that region's list of alarm incidents, one entry of each bad
    # shape (hand edits: no JSON, no object, no alarm, an alarm that is no text)
    errors = put_bad_incident_entries(
        dynamodb_client, alarm_incidents_key(MEMBER, OTHER_REGION), ("alarm",)
    )
    # WHEN the next scheduled run happens
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN its incident is resolved once, and each bad entry is one error of the region naming
    # it, never its data
    assert alarm_without_cluster.notices() == [
        (True, f"alarm {ALARM_NAME} was deleted: no state change will resolve it")
    ]
    place = {"account_id": MEMBER, "region": OTHER_REGION}
    assert result["alarm_regions"] == [
        {**place, "status": "checked", "alerts": {"sent": 0, "resolved": 1, "suppressed": 0}},
        *(
            {**place, "status": "error", "error": f"alarm incidents could not be read: {error}"}
            for error in errors
        ),
    ]
    assert SECRET not in str(result)


INCIDENT_RECORDS_NO_ONE_CAN_READ = {
    "no-json": (f"{{{SECRET}", "its data is not JSON"),
    "a-json-list": (json.dumps([SECRET]), "its data is a JSON list, not an object"),
    "open-without-its-alert": (
        json.dumps(
            {"open": True, "name": "first", "opened_at": "2025-06-02T03:00:00Z",
             "severity": "critical", "note": SECRET}
        ),
        "`alert` is not an alert",
    ),
    "open-not-true-or-false": (
        json.dumps({"open": SECRET, "closed_at": "2025-06-02T03:00:00Z"}),
        "`open` is not true or false",
    ),
    "closed-without-its-time": (
        json.dumps({"open": False, "note": SECRET}), "`closed_at` is not text"
    ),
}  # fmt: skip
"""Incident records a hand edit or an older format leaves: (data, the problem named)."""


def put_incident_record(dynamodb_client: Any, incident_alert_id: str, data: str) -> None:
    """Write `data` as the record of the incident of `incident_alert_id`, straight into the
    table."""
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME,
        Item=unreadable_value(incident_key(incident_alert_id), INCIDENT_VALUE, {"S": data}),
    )


def stored_record(dynamodb_client: Any, incident_alert_id: str) -> str:
    """The data of the record of the incident of `incident_alert_id`, as stored."""
    item = dynamodb_client.get_item(
        TableName=STATE_TABLE_NAME,
        Key={
            "pk": {"S": f"STATE#{incident_key(incident_alert_id)}"},
            "sk": {"S": f"VALUE#{INCIDENT_VALUE}"},
        },
    )["Item"]
    return str(item["data"]["S"])


@pytest.mark.parametrize("shape", sorted(INCIDENT_RECORDS_NO_ONE_CAN_READ))
def test_a_listed_incident_whose_record_cannot_be_read_is_one_error_and_the_others_resolve(
    alarm_without_cluster: AlarmWithoutCluster,
    invoke: Invoke,
    fake_clock: Any,
    dynamodb_client: Any,
    shape: str,
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted,
    # then was deleted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # AND beside it in that region's list another alarm's incident, whose record a hand edit
    # left unreadable
    data, problem = INCIDENT_RECORDS_NO_ONE_CAN_READ[shape]
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME,
        Item=unreadable_value(
            alarm_incidents_key(MEMBER, OTHER_REGION),
            "edited-alert",
            {"S": json.dumps({"alarm": "edited-alarm"})},
        ),
    )
    put_incident_record(dynamodb_client, "edited-alert", data)
    # WHEN the next scheduled run happens
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN the deleted alarm's incident is resolved once, the edited one is one error of the
    # region naming its record, never its data, and that record is left as it is
    assert alarm_without_cluster.notices() == [
        (True, f"alarm {ALARM_NAME} was deleted: no state change will resolve it")
    ]
    place = {"account_id": MEMBER, "region": OTHER_REGION}
    error = (
        "alarm incidents could not be read: saved value incident of "
        f"{incident_key('edited-alert')}: {problem}"
    )
    assert result["alarm_regions"] == [
        {**place, "status": "checked", "alerts": {"sent": 0, "resolved": 1, "suppressed": 0}},
        {**place, "status": "error", "error": error},
    ]
    assert SECRET not in str(result)
    assert stored_record(dynamodb_client, "edited-alert") == data


@pytest.mark.parametrize("shape", sorted(INCIDENT_RECORDS_NO_ONE_CAN_READ))
def test_a_state_change_whose_incident_record_cannot_be_read_names_it_and_changes_nothing(
    alarm_without_cluster: AlarmWithoutCluster,
    health_services: Callable[[], Any],
    dynamodb_client: Any,
    shape: str,
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM and alerted,
    # whose incident record a hand edit then left unreadable
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    [incident_alert_id] = health_services().state.values_named(
        alarm_incidents_key(MEMBER, OTHER_REGION), ""
    )
    data, problem = INCIDENT_RECORDS_NO_ONE_CAN_READ[shape]
    put_incident_record(dynamodb_client, incident_alert_id, data)
    # WHEN the alarm's return to OK arrives
    cloudwatch = alarm_without_cluster.cloudwatch()
    put_alarm(cloudwatch, ALARM_NAME, "OK", "back to normal")
    result = alarm_without_cluster.invoke(
        {**alarm_event(ALARM_NAME, "OK", alarm_without_cluster.arn), "region": OTHER_REGION}
    )
    # THEN the invocation ends naming the record, never its data; nothing is sent and the
    # record is left as it is, for a person or its expiry
    assert result["errors"] == [
        "incident could not be read: saved value incident of "
        f"{incident_key(incident_alert_id)}: {problem}"
    ]
    assert SECRET not in str(result)
    assert alarm_without_cluster.notices() == []
    assert stored_record(dynamodb_client, incident_alert_id) == data


def test_an_alarm_still_in_alarm_where_the_member_has_no_cluster_is_not_resolved(
    alarm_without_cluster: AlarmWithoutCluster, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM and alerted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    # WHEN scheduled runs go on while it still exists
    scheduled_runs(invoke, fake_clock, 2)
    # THEN its incident stays open
    assert alarm_without_cluster.notices() == []


def test_an_alarm_deleted_where_the_member_has_no_cluster_is_not_resolved_by_a_failed_listing(
    alarm_without_cluster: AlarmWithoutCluster, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted,
    # then was deleted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # AND that region's DescribeAlarms failing every attempt with a proxy's page of many lines
    services = alarm_without_cluster.services()
    cloudwatch = services.sessions.client("cloudwatch", MEMBER, OTHER_REGION, MEMBER_CALL_CONFIG)
    fault = fail_every_attempt(
        cloudwatch, "cloudwatch", "DescribeAlarms", server_error=MULTI_LINE_PAGE
    )
    # WHEN the scheduled run happens
    result = scheduled_runs(invoke, fake_clock, 1)[0]
    # THEN nothing is resolved, and the run says why
    assert alarm_without_cluster.notices() == []
    [region_report] = result["alarm_regions"]
    assert region_report["status"] == "error"
    assert region_report["error"].startswith("alarms could not be listed: "), region_report
    # AND why is one line, what CloudWatch answered cut
    assert "\n" not in region_report["error"]
    assert len(region_report["error"]) < len(MULTI_LINE_PAGE)
    # AND once CloudWatch answers again, the next run resolves it once
    fault.healed = True
    scheduled_runs(invoke, fake_clock, 2)
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [True]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"S": f"{{{SECRET}"}, "its data is not JSON"),
        ({"S": json.dumps({"region": SECRET})}, "names no account_id and region as text"),
    ],
    ids=["not-json", "no-account"],
)
def test_a_region_whose_alarm_incident_note_cannot_be_read_is_an_error_alone(
    data: dict[str, str],
    problem: str,
    *,
    alarm_without_cluster: AlarmWithoutCluster,
    invoke: Invoke,
    fake_clock: Any,
    dynamodb_client: Any,
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted,
    # then was deleted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # AND the notes of two other regions with alarm incidents made unreadable by a hand edit (no
    # JSON, or naming no account): one without a cluster, one with the member's cluster (whose
    # run walks its alarms)
    for place in (f"{MEMBER}/us-east-2", f"{MEMBER}/{REGION}"):
        dynamodb_client.put_item(
            TableName=STATE_TABLE_NAME, Item=unreadable_value(ALARM_INCIDENT_PLACES, place, data)
        )
    # WHEN the scheduled run happens
    result = scheduled_runs(invoke, fake_clock, 1)[0]
    # THEN the deleted alarm's incident is resolved once, the region without a cluster whose
    # note cannot be read is an error naming the value, never its data, and the clusters are
    # checked
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [True]
    assert result["alarm_regions"] == [
        {
            "account_id": MEMBER,
            "region": OTHER_REGION,
            "status": "checked",
            "alerts": {"sent": 0, "resolved": 1, "suppressed": 0},
        },
        {
            "account_id": MEMBER,
            "region": "us-east-2",
            "status": "error",
            "error": "alarm incident place could not be read: saved value "
            f"{MEMBER}/us-east-2 of {ALARM_INCIDENT_PLACES}: {problem}",
        },
    ]
    [cluster] = result["clusters"]
    assert cluster["status"] != "not_started"
    assert SECRET not in str(result)


def test_an_alarm_region_without_a_cluster_the_run_had_no_time_for_is_left_for_the_next_run(
    alarm_without_cluster: AlarmWithoutCluster, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted,
    # then was deleted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # WHEN a scheduled run has time for the member's cluster and no more
    fake_clock.advance(CADENCE_SECONDS)
    result = invoke(FLEET_EVENT, time_for_one_cluster())
    # THEN that region is not checked, the run is partial and nothing is resolved
    assert result["alarm_regions"] == [
        {"account_id": MEMBER, "region": OTHER_REGION, "status": "not_checked"}
    ]
    assert result["status"] == "partial"
    assert result["not_checked"] == [f"{MEMBER}/{OTHER_REGION}/alarm"]
    assert alarm_without_cluster.notices() == []
    # AND the next run, with its time, resolves the incident
    scheduled_runs(invoke, fake_clock, 1)
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [True]


def test_an_alarm_region_without_a_cluster_is_checked_in_a_fleet_too_large_for_one_run(
    alarm_without_cluster: AlarmWithoutCluster,
    invoke: Invoke,
    fake_clock: Any,
    *,
    two_members_one_at_a_time: None,
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted,
    # then was deleted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # WHEN the fleet is too large for one run: two clusters checked one at a time, and each
    # scheduled run with time for one cluster only
    results = []
    for _ in range(2):
        fake_clock.advance(CADENCE_SECONDS)
        results.append(invoke(FLEET_EVENT, time_for_one_cluster()))
    # THEN the region the first run had no time for is checked by the next one, which resolves
    # the incident once, while the clusters still take turns
    assert [region["status"] for result in results for region in result["alarm_regions"]] == [
        "not_checked",
        "checked",
    ]
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [True]
    assert [
        [report["status"] != "not_started" for report in result["clusters"]] for result in results
    ] == [[True, False], [False, True]]


def alarm_of_a_member_that_left(
    invoke: Invoke,
    alert_inbox: Any,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The second member's alarm, in a region where it has no cluster, that entered ALARM and
    alerted through its event; then the member left the fleet: gone from the inventory, its
    role with it. The alarm's ARN."""
    cloudwatch = member_role_session(SECOND_MEMBER, OTHER_REGION).client("cloudwatch")
    arn = put_alarm(cloudwatch, ALARM_NAME, "ALARM", "threshold crossed")
    event = alarm_event(ALARM_NAME, "ALARM", arn)
    invoke({**event, "account": SECOND_MEMBER, "region": OTHER_REGION})
    assert alarm_alerts(alert_inbox, arn) == [("critical", False)]
    inventory["members"] = inventory["members"][:1]
    write_inventory(inventory)
    deny_assume_role(monkeypatch, SECOND_MEMBER)
    return arn


LEFT_THE_FLEET = f"account {SECOND_MEMBER} left the fleet: alarm {ALARM_NAME} is no longer watched"


def notices_about(alert_inbox: Any, arn: str) -> list[tuple[bool, str]]:
    """(resolved, detail) of the alerts about the alarm `arn` received since the last call."""
    return [
        (received.alert["resolved"], received.alert["detail"])
        for received in alert_inbox.receive()
        if received.alert["resource"] == arn
    ]


def test_the_alarm_incidents_of_a_member_that_left_the_fleet_are_resolved_once_then_skipped(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
    two_members_one_at_a_time: None,
) -> None:
    # GIVEN the second member's alarm that entered ALARM and alerted, then the member left
    arn = alarm_of_a_member_that_left(invoke, alert_inbox, inventory, write_inventory, monkeypatch)
    # WHEN the scheduled runs go on
    results = scheduled_runs(invoke, fake_clock, 3)
    # THEN the first resolves the alarm's incident once, saying the member left the fleet,
    # rather than reporting the place an error every run for 90 days
    assert notices_about(alert_inbox, arn) == [(True, LEFT_THE_FLEET)]
    assert results[0]["alarm_regions"] == [
        {
            "account_id": SECOND_MEMBER,
            "region": OTHER_REGION,
            "status": "member_left",
            "alerts": {"sent": 0, "resolved": 1, "suppressed": 0},
        }
    ]
    # AND the run after it forgets the settled incident, and later runs skip the place
    assert results[1]["alarm_regions"][0]["alerts"] == {"sent": 0, "resolved": 0, "suppressed": 0}
    assert "alarm_regions" not in results[2]


def test_the_entries_of_a_left_member_place_that_cannot_be_read_are_each_an_error_alone(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
    two_members_one_at_a_time: None,
    dynamodb_client: Any,
) -> None:
    # GIVEN the second member's alarm that entered ALARM and alerted, then the member left,
    # and beside its entry in that place's incident list one entry of each bad shape (hand
    # edits: no JSON, no object, no alarm, an alarm that is no text)
    arn = alarm_of_a_member_that_left(invoke, alert_inbox, inventory, write_inventory, monkeypatch)
    errors = put_bad_incident_entries(
        dynamodb_client, alarm_incidents_key(SECOND_MEMBER, OTHER_REGION), ("alarm",)
    )
    # WHEN the scheduled run happens
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN the alarm's incident is resolved once, each bad entry is one error of that place
    # naming it, never its data, and the run's clusters are checked
    assert notices_about(alert_inbox, arn) == [(True, LEFT_THE_FLEET)]
    place = {"account_id": SECOND_MEMBER, "region": OTHER_REGION}
    assert result["alarm_regions"] == [
        {**place, "status": "member_left", "alerts": {"sent": 0, "resolved": 1, "suppressed": 0}},
        *(
            {**place, "status": "error", "error": f"alarm incidents could not be read: {error}"}
            for error in errors
        ),
    ]
    [cluster] = result["clusters"]
    assert cluster["status"] != "not_started"
    assert SECRET not in str(result)


def test_the_alarm_incident_of_a_member_not_listed_yet_is_not_resolved_as_left(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the alarm of a member the inventory does not list yet (its rule forwarded the event
    # first, in the deployment that adds it), in ALARM, alerted through its event
    cloudwatch = member_role_session(SECOND_MEMBER, OTHER_REGION).client("cloudwatch")
    arn = put_alarm(cloudwatch, ALARM_NAME, "ALARM", "threshold crossed")
    event = alarm_event(ALARM_NAME, "ALARM", arn)
    invoke({**event, "account": SECOND_MEMBER, "region": OTHER_REGION})
    assert alarm_alerts(alert_inbox, arn) == [("critical", False)]
    # WHEN the scheduled runs happen before the inventory lists it
    before = scheduled_runs(invoke, fake_clock, 2)
    # THEN none resolves the incident or sends anything: the member has not left, it has not
    # arrived yet
    assert notices_about(alert_inbox, arn) == []
    # AND each reports the region as not listed yet, naming account and region, rather than
    # skipping it unsaid; the run is not partial for it
    for result in before:
        assert result["alarm_regions"] == [
            {"account_id": SECOND_MEMBER, "region": OTHER_REGION, "status": "not_listed_yet"}
        ]
        assert result["status"] == result["health"]
        assert "not_checked" not in result
    # WHEN the inventory then lists it, with no cluster in that region, and the next run happens
    inventory["members"].append(
        {"account_id": SECOND_MEMBER, "name": "dev-second", "regions": [OTHER_REGION]}
    )
    write_inventory(inventory)
    listed = scheduled_runs(invoke, fake_clock, 1)[0]
    # THEN it watches the alarm as any member's: still there, nothing resolved
    assert listed["alarm_regions"] == [
        {
            "account_id": SECOND_MEMBER,
            "region": OTHER_REGION,
            "status": "checked",
            "alerts": {"sent": 0, "resolved": 0, "suppressed": 0},
        }
    ]
    assert notices_about(alert_inbox, arn) == []
    # WHEN the member then leaves the fleet, its role with it
    inventory["members"] = inventory["members"][:1]
    write_inventory(inventory)
    deny_assume_role(monkeypatch, SECOND_MEMBER)
    scheduled_runs(invoke, fake_clock, 2)
    # THEN the incident is resolved once, saying the member left the fleet
    assert notices_about(alert_inbox, arn) == [(True, LEFT_THE_FLEET)]


def test_a_left_member_alarm_resolution_sns_did_not_take_is_sent_once_by_the_retry(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    health_services: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
    two_members_one_at_a_time: None,
) -> None:
    # GIVEN the second member's alarm that entered ALARM and alerted, then the member left
    arn = alarm_of_a_member_that_left(invoke, alert_inbox, inventory, write_inventory, monkeypatch)
    # AND SNS failing every attempt of Publish
    # WHEN the scheduled run happens
    # THEN it fails, so the platform retries it, and nothing went out
    # WHEN SNS answers again, and the platform's retry and the next runs happen
    run_refused_by_sns_then_retried(
        invoke,
        fake_clock,
        health_services().hub_client("sns"),
        lambda: notices_about(alert_inbox, arn),
        retries=1,
    )
    # THEN the resolution went out once
    assert notices_about(alert_inbox, arn) == [(True, LEFT_THE_FLEET)]


@pytest.mark.parametrize("what_the_run_sends", ["an alert", "a resolution"])
def test_a_fleet_run_failing_on_the_alarm_places_sends_each_cluster_alert_once_with_its_retry(
    schedule: EndpointSchedule, what_the_run_sends: str
) -> None:
    # GIVEN a run about to send the endpoint's alert (critical at once), or the resolution of its
    # announced incident, and DynamoDB failing every read of the alarm places, which the fleet
    # run makes after the clusters
    announced = [] if what_the_run_sends == "an alert" else schedule.recovered_from_an_incident()
    if what_the_run_sends == "an alert":
        schedule.failing_at_once()
    unreadable = fail_every_attempt(
        schedule.services().hub_client("dynamodb"),
        "dynamodb",
        "Query",
        body_with=(ALARM_INCIDENT_PLACES.encode(),),
    )
    # WHEN the scheduled run fails on that read once the clusters are done, the platform retries
    # it with DynamoDB back, and the schedule goes on
    with pytest.raises(EndpointConnectionError):
        schedule.next_run()
    assert unreadable.attempts > 1
    sent_by_the_failed_run = schedule.endpoint_alerts()
    unreadable.healed = True
    schedule.clock.advance(60)
    schedule.retry()
    schedule.runs(2)
    # THEN what the failed run sent went out once: its retry and the runs after it send nothing
    expected = [("critical", False)] if what_the_run_sends == "an alert" else [("critical", True)]
    assert [(alert["severity"], alert["resolved"]) for alert in sent_by_the_failed_run] == expected
    assert schedule.endpoint_alerts() == []
    assert {alert["id"] for alert in announced + sent_by_the_failed_run} == {
        sent_by_the_failed_run[0]["id"]
    }


def test_an_alarm_whose_place_could_not_be_noted_is_opened_and_alerted_once_by_the_retry(
    alarm_without_cluster: AlarmWithoutCluster, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, and
    # DynamoDB failing every write of the alarm places
    arn = put_alarm(alarm_without_cluster.cloudwatch(), ALARM_NAME, "ALARM", "threshold crossed")
    alarm_without_cluster.arn = arn
    entered = {**alarm_event(ALARM_NAME, "ALARM", arn), "region": OTHER_REGION}
    unwritable = fail_every_attempt(
        alarm_without_cluster.services().hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        body_with=(ALARM_INCIDENT_PLACES.encode(),),
    )
    # WHEN its state change event is handled
    with pytest.raises(EndpointConnectionError):
        invoke(entered)
    # THEN the invocation fails, so EventBridge retries it, having alerted nothing
    assert unwritable.attempts > 1
    assert alarm_without_cluster.notices() == []
    # WHEN EventBridge retries the event with DynamoDB back, and the schedule goes on
    unwritable.healed = True
    fake_clock.advance(60)
    retried = invoke(entered)
    scheduled_runs(invoke, fake_clock, 1)
    # THEN the incident is opened and alerted once, and its place noted: once the alarm is
    # deleted, the next scheduled run resolves it
    assert retried["alerts"]["sent"] == 1
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    scheduled_runs(invoke, fake_clock, 1)
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [True]


@dataclass
class PausedRequest:
    """Holds the first request whose body holds `marker` (any request, by default) made outside
    the test's own thread, until `resumed` is set: a run that read an incident record and was
    slow to write it (`health_monitor/incident/`), a run about to publish an alert another
    invocation is publishing too (`alert_delivery`), or an alert on its way to SNS."""

    marker: str
    reached: threading.Event = field(default_factory=threading.Event)
    resumed: threading.Event = field(default_factory=threading.Event)

    def __call__(self, request: Any, **_: Any) -> None:
        if threading.current_thread() is threading.main_thread() or self.reached.is_set():
            return
        if self.marker in str(request.body):
            self.reached.set()
            self.resumed.wait(30)


def test_an_alarm_resolved_while_a_fleet_run_settles_it_stays_resolved_and_alerts_again(
    alarm: NodesAlarm, fake_clock: Any
) -> None:
    # GIVEN an alarm in ALARM, alerted
    alarm.changes_to("ALARM")
    assert alarm.alerts() == [("critical", False)]
    # AND a scheduled run that saw it in ALARM and read its incident, slow to write it back
    paused = alarm.pause_first_request("dynamodb", "PutItem", "health_monitor/incident/")
    fake_clock.advance(CADENCE_SECONDS)
    # WHEN the alarm's return to OK is handled meanwhile, then the scheduled run goes on
    alarm.returns_to_ok_while_held(paused, FLEET_EVENT)
    assert alarm.alerts() == [("critical", True)]
    # THEN the incident stays resolved: the alarm entering ALARM again is a new incident, alerted
    fake_clock.advance(60)
    result = alarm.changes_to("ALARM")
    assert result["alerts"]["sent"] == 1
    assert alarm.alerts() == [("critical", False)]


def test_an_alarm_alert_published_while_its_return_to_ok_is_handled_is_resolved(
    alarm: NodesAlarm,
) -> None:
    # GIVEN an alarm's ALARM event whose alert is on its way to SNS
    entered = alarm.set_state("ALARM")
    paused = alarm.pause_first_request("sns", "Publish")
    # WHEN the alarm's return to OK is handled meanwhile, then the ALARM event's run goes on
    alarm.returns_to_ok_while_held(paused, entered)
    # THEN the alert that went out is followed by its resolution: nothing is left open
    assert alarm.alerts() == [("critical", False), ("critical", True)]


def test_an_alert_whose_publish_hung_until_the_deadline_is_sent_once_by_the_retry(
    schedule: EndpointSchedule,
) -> None:
    # GIVEN a failing endpoint (critical at once: one result rates it)
    schedule.failing_at_once()
    schedule.clock.advance(CADENCE_SECONDS)
    # WHEN SNS never answers the first Publish of a scheduled run, so Lambda kills the run at its
    # deadline, and retries the event a minute later
    retried = killed_while_publishing_then_retried(
        schedule.services().hub_client("sns"),
        schedule.clock,
        lambda context: schedule.invoke(FLEET_EVENT, context),
    )
    # THEN the retry sent the endpoint's alert, and the schedule does not send it again
    assert retried["clusters"][0]["alerts"]["sent"] == 1
    later = schedule.runs(2)
    assert [result["clusters"][0]["alerts"]["sent"] for result in later] == [0, 0]
    assert [(alert["severity"], alert["resolved"]) for alert in schedule.endpoint_alerts()] == [
        ("critical", False)
    ]


def test_a_retried_run_does_not_keep_a_recovered_endpoint_failing_past_the_third_run(
    schedule: EndpointSchedule,
) -> None:
    # GIVEN an endpoint failing for three scheduled runs, the third of which could not deliver
    # its escalation and was retried by the platform a minute later
    schedule.endpoint_answers(500)
    schedule.runs(2)
    fault = schedule.fail_every_publish()
    with pytest.raises(AlertNotDeliveredError):
        schedule.next_run()
    fault.healed = True
    schedule.clock.advance(60)
    schedule.retry()
    schedule.clock.advance(CADENCE_SECONDS - 60)
    # WHEN it answers again at the next runs
    schedule.endpoint_answers(200)
    recovering = [schedule.invoke(FLEET_EVENT)["clusters"][0]["status"]]
    recovering += [result["clusters"][0]["status"] for result in schedule.runs(2)]
    # THEN it passes by the third run after it answers again, as without the retry
    assert recovering == ["critical", "warning", "healthy"]
    assert [alert["resolved"] for alert in schedule.endpoint_alerts()][-1] is True


def test_an_alarm_alerted_by_its_event_during_a_fleet_run_counts_once_as_suppressed_there(
    alarm: NodesAlarm, invoke: Invoke, fake_clock: Any
) -> None:
    # GIVEN an alarm in ALARM, and a fleet run about to deliver its alert
    alarm.set_state("ALARM")
    paused = alarm.pause_first_request("dynamodb", "PutItem", "alert_delivery")
    fake_clock.advance(CADENCE_SECONDS)
    with ThreadPoolExecutor(max_workers=1) as pool:
        scheduled = pool.submit(invoke, FLEET_EVENT)
        assert paused.reached.wait(THREAD_REACHED_SECONDS)
        # WHEN the alarm's event delivers and records the alert meanwhile, then the run goes on
        invoke(alarm_event(ALARM_NAME, "ALARM", alarm.arn, cluster=None))
        paused.resumed.set()
        report = scheduled.result(30)["clusters"][0]
    # THEN one alert went out, and the fleet run counts the alarm once, as suppressed
    assert alarm.alerts() == [("critical", False)]
    assert report["alerts"] == {"sent": 0, "resolved": 0, "suppressed": 1}


def test_an_alarm_event_starts_no_cluster_check_it_could_not_finish(
    alarm: NodesAlarm, invoke: Invoke, endpoint_server: Any
) -> None:
    # GIVEN an alarm entering ALARM, and an invocation with 10 s left: less than a cluster's
    # check may take (20 s of AWS calls plus its endpoint's 2 s timeout)
    entered = alarm.set_state("ALARM")
    context = ContextRunningOutOfTime(millis_left=[10_000])
    # WHEN its event arrives
    result = invoke(entered, context)
    # THEN the alarm is alerted, and its cluster is left for the next scheduled run, not started
    # to be cut off by Lambda halfway through
    assert alarm.alerts() == [("critical", False)]
    assert [report["status"] for report in result["clusters"]] == ["not_started"]
    assert result["not_started"] == [f"{MEMBER}/{REGION}/dev-apps"]
    assert result["status"] == "critical"
    assert endpoint_server.hits.get("/healthy", 0) == 0


@pytest.fixture
def hanging_peer() -> Iterator[LocalPeer]:
    """A TCP peer on 127.0.0.1 that accepts every connection and never answers, as a stuck
    service behind a health endpoint does; counts the connections it accepted."""
    with LocalPeer(hang=True) as peer:
        yield peer


def test_a_cluster_check_without_time_for_its_probes_still_runs_its_other_checks(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    hanging_peer: LocalPeer,
    alert_inbox: Any,
) -> None:
    # GIVEN a cluster with nine endpoints on a peer that never answers, each allowed 1 s, and an
    # invocation with 21 s left: time for the cluster's 20 s of AWS calls, not for a batch of
    # probes on top of them
    names = [f"api-{index}" for index in range(9)]
    use_endpoints(
        [{"name": name, "url": hanging_peer.url("/health"), "timeout_seconds": 1} for name in names]
    )
    context = ContextRunningOutOfTime(millis_left=[21_000])
    # WHEN the cluster is checked on its own
    result = invoke(
        {"action": "check_cluster", "account_id": MEMBER, "region": REGION, "cluster": "dev-apps"},
        context,
    )
    # THEN its control plane, node groups, capacity and alarms were checked, no probe was started
    # (Lambda would end it before it reports), and the result names the endpoints left
    [cluster] = result["clusters"]
    assert cluster["status"] == "healthy"
    assert {"cluster_status", "node_group", "capacity", "alarm"} <= {
        check["name"] for check in cluster["checks"]
    }
    assert [check for check in cluster["checks"] if check["name"] == "endpoint"] == []
    assert cluster["not_probed"] == names
    assert result["status"] == "partial"
    assert result["not_probed"] == [f"{MEMBER}/{REGION}/dev-apps/{name}" for name in names]
    assert "not_started" not in result
    assert hanging_peer.connections == 0
    assert alert_inbox.receive() == []


def endpoint_state(state_table: StateTable, name: str) -> tuple[Any, Any]:
    """The incident record and the recent results the state table holds for endpoint `name` of
    the member's `dev-apps`."""
    incident_id = alert_id(
        "health_monitor",
        f"{MEMBER}/{REGION}/dev-apps/endpoint/{name}",
        f"dev-apps: endpoint check failed for {name}",
    )
    return (
        state_table.get_value(f"health_monitor/incident/{incident_id}", "incident"),
        state_table.get_value(
            endpoint_history_key(f"{MEMBER}/{REGION}/dev-apps", name), HISTORY_VALUE
        ),
    )


def probed_endpoints(cluster: dict[str, Any]) -> list[str]:
    """The endpoints of a cluster report that have a result, in report order."""
    return [check["target"] for check in cluster["checks"] if check["name"] == "endpoint"]


def test_a_cluster_whose_probes_outlast_the_run_is_probed_in_parts_over_the_next_runs(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    hanging_peer: LocalPeer,
    alert_inbox: Any,
    fake_clock: Any,
    state_table: StateTable,
) -> None:
    # GIVEN a cluster with 17 endpoints on a peer that never answers, each allowed 0.25 s: three
    # batches of probes (8, 8 and 1), 0.75 s on top of the 20 s of AWS calls (as 25 endpoints
    # allowed 30 s outlast the function's 120 s); every endpoint failing, its incident open since
    # a run that had the time
    names = [f"api-{index:02d}" for index in range(17)]
    use_endpoints(
        [
            {"name": name, "url": hanging_peer.url("/health"), "timeout_seconds": 0.25}
            for name in names
        ]
    )
    fake_clock.advance(CADENCE_SECONDS)
    assert invoke(FLEET_EVENT)["status"] == "warning"
    assert len(endpoint_alerts_of(alert_inbox, names)) == 17
    before = {name: endpoint_state(state_table, name) for name in names}

    def run_with_time_for_one_batch() -> dict[str, Any]:
        # 20.4 s left: time for the AWS calls and one batch of probes, which takes 0.25 s of it;
        # 20.2 s left after it, too little for another batch
        fake_clock.advance(CADENCE_SECONDS)
        millis_left = [20_400] * (QUESTIONS_BEFORE_PROBES + 1) + [20_200]
        return invoke(FLEET_EVENT, ContextRunningOutOfTime(millis_left=millis_left))

    # WHEN the next scheduled run has time for one batch only
    first = run_with_time_for_one_batch()
    # THEN the cluster is checked, its first 8 endpoints probed, and the run is partial, naming
    # the 9 left
    [cluster] = first["clusters"]
    assert cluster["status"] == "warning"
    assert "cluster_status" in {check["name"] for check in cluster["checks"]}
    assert probed_endpoints(cluster) == names[:8]
    assert cluster["not_probed"] == names[8:]
    assert first["status"] == "partial"
    assert first["not_probed"] == [f"{MEMBER}/{REGION}/dev-apps/{name}" for name in names[8:]]
    # AND the endpoints left keep their incidents and recent results as they were: no result
    # counted, nothing resolved or escalated for their absence
    assert {name: endpoint_state(state_table, name) for name in names[8:]} == {
        name: before[name] for name in names[8:]
    }
    assert endpoint_alerts_of(alert_inbox, names) == []
    # WHEN the two runs after it have as little time
    second, third = run_with_time_for_one_batch(), run_with_time_for_one_batch()
    # THEN each starts with the endpoints waiting longest: the second probes 8 of those the first
    # left, the third the last of them before those the first probed
    [cluster] = second["clusters"]
    assert probed_endpoints(cluster) == names[8:16]
    assert cluster["not_probed"] == [*names[:8], names[16]]
    assert endpoint_state(state_table, names[8])[1] != before[names[8]][1]
    [cluster] = third["clusters"]
    assert probed_endpoints(cluster) == [*names[:7], names[16]]
    assert hanging_peer.connections == 17 + 8 + 8 + 8


def test_an_endpoint_allowed_longer_than_the_stack_file_allows_is_refused_and_blocks_no_other(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    hanging_peer: LocalPeer,
    endpoint_server: Any,
) -> None:
    # GIVEN a hand-edited inventory whose first endpoint, on a peer that never answers, is
    # allowed 120 s (the stack file refuses more than 30 s): with the cluster's 20 s of AWS calls
    # it fits no invocation of the function's 120 s; the second endpoint answers
    use_endpoints(
        [
            {"name": "slow", "url": hanging_peer.url("/health"), "timeout_seconds": 120},
            {"name": "api", "url": endpoint_server.url("/healthy"), "timeout_seconds": 1},
        ]
    )
    # WHEN two scheduled runs each start with the function's whole 120 s left
    runs = [invoke(FLEET_EVENT, ContextRunningOutOfTime(millis_left=[120_000])) for _ in range(2)]
    # THEN in each, the endpoint behind it is probed, the refused one is reported as a failed
    # check naming its field and the limit, and none is left for a later run
    for result in runs:
        [cluster] = result["clusters"]
        endpoints = {
            check["target"]: check for check in cluster["checks"] if check["name"] == "endpoint"
        }
        assert endpoints["api"]["status"] == "passed"
        assert endpoints["slow"]["status"] == "failed"
        assert endpoints["slow"]["detail"] == (
            "timeout_seconds: 120.0 is over 30 s, the longest the stack file allows; not probed"
        )
        assert cluster.get("not_probed", []) == []
        assert "not_probed" not in result
    assert endpoint_server.hits["/healthy"] == 2
    assert hanging_peer.connections == 0


def test_a_cluster_with_many_slow_endpoints_keeps_no_other_cluster_of_the_fleet_unchecked(
    invoke: Invoke,
    member_cluster: Any,
    *,
    make_member_cluster: Callable[..., Any],
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    hanging_peer: LocalPeer,
) -> None:
    # GIVEN two member clusters, the first with 16 endpoints on a peer that never answers, each
    # allowed 0.25 s (0.5 s of probes on top of its 20 s of AWS calls), the second with none,
    # and a scheduled run with 20.4 s left
    make_member_cluster(SECOND_MEMBER)
    inventory["members"][0]["clusters"][0]["health_endpoints"] = [
        {"name": f"api-{index:02d}", "url": hanging_peer.url("/health"), "timeout_seconds": 0.25}
        for index in range(16)
    ]
    second = json.loads(json.dumps(inventory["members"][0]))
    second.update(account_id=SECOND_MEMBER, name="dev-second")
    second["clusters"][0]["health_endpoints"] = []
    inventory["members"].append(second)
    write_inventory(inventory)
    # WHEN the scheduled run starts
    result = invoke(FLEET_EVENT, ContextRunningOutOfTime(millis_left=[20_400]))
    # THEN both clusters are checked: the first one's endpoints do not hold the second back
    slow, other = result["clusters"]
    assert (other["account_id"], other["status"]) == (SECOND_MEMBER, "healthy")
    assert slow["status"] == "warning"
    assert "not_started" not in result


def test_endpoints_are_probed_in_inventory_order_when_the_list_of_those_left_cannot_be_read(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN a cluster with two answering endpoints, and the state table failing every attempt
    # to read the endpoints the last run left
    use_endpoints(
        [
            {"name": name, "url": endpoint_server.url("/healthy"), "timeout_seconds": 2}
            for name in ("api", "web")
        ]
    )
    unreadable = fail_every_attempt(
        health_services().hub_client("dynamodb"),
        "dynamodb",
        "GetItem",
        body_with=(b"endpoints-not-probed",),
    )
    # WHEN the scheduled run checks the cluster
    result = invoke(FLEET_EVENT)
    # THEN the list only orders the probes: both endpoints are probed and judged as usual
    assert unreadable.attempts > 0
    [cluster] = result["clusters"]
    assert probed_endpoints(cluster) == ["api", "web"]
    assert (result["status"], cluster["status"]) == ("healthy", "healthy")


def test_an_alarm_deleted_without_a_cluster_is_resolved_while_a_cluster_alert_is_refused(
    alarm_without_cluster: AlarmWithoutCluster,
    invoke: Invoke,
    fake_clock: Any,
    member_cluster: MemberCluster,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, alerted
    # through its event, then was deleted
    alarm_without_cluster.enters_alarm()
    assert [resolved for resolved, _ in alarm_without_cluster.notices()] == [False]
    alarm_without_cluster.deleted()
    # AND the member's cluster FAILED, whose alert SNS refuses at every attempt (its topic's key
    # disabled, say) while it takes the others
    member_cluster.set_cluster_status("FAILED")
    fail_every_attempt(
        health_services().hub_client("sns"), "sns", "Publish", body_with=(b"cluster_status",)
    )
    # WHEN the scheduled run happens, and the platform retries it twice
    for _ in range(3):
        fake_clock.advance(60)
        with pytest.raises(AlertNotDeliveredError):
            invoke(FLEET_EVENT)
    # THEN each fails, for the alert SNS refused, but the deleted alarm's incident was resolved,
    # once: one cluster's alert does not keep the regions without a cluster from being walked
    assert alarm_without_cluster.notices() == [
        (True, f"alarm {ALARM_NAME} was deleted: no state change will resolve it")
    ]


def test_a_cluster_a_run_left_goes_first_next_run_though_that_run_failed_on_an_alert(
    invoke: Invoke,
    member_cluster: MemberCluster,
    state_table: StateTable,
    *,
    two_members_one_at_a_time: None,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN two member clusters checked one at a time, the first FAILED, and SNS refusing every
    # attempt to publish its alert
    member_cluster.set_cluster_status("FAILED")
    fail_every_attempt(
        health_services().hub_client("sns"), "sns", "Publish", body_with=(b"cluster_status",)
    )
    # WHEN a scheduled run with time for one cluster happens
    with pytest.raises(AlertNotDeliveredError):
        invoke(FLEET_EVENT, time_for_one_cluster())
    # THEN it fails, for the alert SNS refused, but saved the second cluster, not started, to go
    # first in the next run: a run failing on one cluster's alert does not leave the same
    # clusters unchecked run after run
    assert state_table.get_value(*CLUSTERS_LEFT_KEY) == {"clusters": [SECOND_CLUSTER]}


def test_a_fleet_run_reads_the_inventory_once_for_its_clusters_and_its_places_without_one(
    alarm_without_cluster: AlarmWithoutCluster,
    invoke: Invoke,
    fake_clock: Any,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN an alarm of a region where the member has no cluster that entered ALARM, so the
    # fleet run walks that place after the member's cluster
    alarm_without_cluster.enters_alarm()
    inventory_reads: list[str] = []
    health_services().hub_client("s3").meta.events.register(
        "before-call.s3.GetObject",
        lambda params, **_: inventory_reads.append(params["url_path"]),
    )
    # WHEN the scheduled run happens
    fake_clock.advance(60)
    invoke(FLEET_EVENT)
    # THEN it read the inventory once: the clusters and the places without one are judged by
    # the same inventory, and a second read is no second chance to fail the run midway
    assert len(inventory_reads) == 1, inventory_reads


@pytest.mark.parametrize("shape", ["no-json", "open-without-its-alert"])
def test_a_cluster_check_whose_incident_record_cannot_be_read_is_an_error_and_the_others_alert(
    schedule: EndpointSchedule, dynamodb_client: Any, shape: str
) -> None:
    # GIVEN a cluster whose member_access check passes, its incident record left unreadable by
    # a hand edit, and whose endpoint fails (critical at once)
    member_access_id = alert_id(
        "health_monitor",
        f"{MEMBER}/{REGION}/dev-apps/member_access/{MEMBER}",
        f"dev-apps: member_access check failed for {MEMBER}",
    )
    data, problem = INCIDENT_RECORDS_NO_ONE_CAN_READ[shape]
    put_incident_record(dynamodb_client, member_access_id, data)
    schedule.failing_at_once()
    # WHEN the scheduled run checks the cluster
    result = schedule.next_run()
    # THEN the endpoint's incident is announced, the unreadable record is one error of the
    # cluster naming it, never its data, and that record is left as it is
    [cluster] = result["clusters"]
    assert [alert["severity"] for alert in schedule.endpoint_alerts()] == ["critical"]
    assert cluster["errors"] == [
        "incident could not be read: saved value incident of "
        f"{incident_key(member_access_id)}: {problem}"
    ]
    assert SECRET not in str(result)
    assert stored_record(dynamodb_client, member_access_id) == data
