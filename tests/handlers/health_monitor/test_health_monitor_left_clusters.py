"""The check incidents of a cluster that left the fleet (removed from the inventory, or its member
with it) are resolved once by the next fleet run, not forgotten open a week later."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.listed_members import LISTED_MEMBERS
from fleet_shared.state_table import StateTable
from handlers.health_monitor.actions import LISTED_MEMBERS_KEY
from handlers.health_monitor.incidents import CHECK_INCIDENT_CLUSTERS, check_incidents_key
from tests.handlers.analytics_accounts import deny_assume_role
from tests.handlers.conftest import STATE_TABLE_NAME
from tests.handlers.deadlines import ContextRunningOutOfTime
from tests.handlers.faults import InjectedRefusal, fail_every_attempt
from tests.handlers.health_monitor.bad_incident_entries import put_bad_incident_entries
from tests.handlers.health_monitor.conftest import CLUSTER, MEMBER, REGION, MemberCluster
from tests.handlers.health_monitor.fleet_runs import (
    CADENCE_SECONDS,
    FLEET_EVENT,
    Invoke,
    run_refused_by_sns_then_retried,
    scheduled_runs,
)
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

SECONDS_SHORT_OF_A_CLUSTER = 10
"""Less than a cluster's AWS time (`cluster_time.CLUSTER_AWS_SECONDS`, 20 s)."""
CLUSTER_STATUS_RESOURCE = f"{MEMBER}/{REGION}/{CLUSTER}/cluster_status/{CLUSTER}"
CLUSTER_LEFT = f"cluster {CLUSTER} left the fleet: it is no longer checked"
MEMBER_LEFT = f"account {MEMBER} left the fleet: cluster {CLUSTER} is no longer checked"


@dataclass
class IndexUnreadable:
    """Refuses (AccessDenied) every read of the clusters with check incidents until healed."""

    refusal: InjectedRefusal = field(default_factory=lambda: InjectedRefusal("AccessDenied"))
    healed: bool = False

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        if self.healed or CHECK_INCIDENT_CLUSTERS.encode() not in request.body:
            return None
        return self.refusal(request, **kwargs)


def cluster_status_notices(alert_inbox: Any) -> list[tuple[bool, str]]:
    """(resolved, detail) of the cluster_status alerts received since the last call."""
    return [
        (received.alert["resolved"], received.alert["detail"])
        for received in alert_inbox.receive()
        if received.alert["resource"] == CLUSTER_STATUS_RESOURCE
    ]


@pytest.fixture
def failed_cluster_alerted(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    member_cluster: MemberCluster,
    inventory: dict[str, Any],
) -> None:
    """The sample cluster FAILED, its cluster_status incident opened by a fleet run."""
    member_cluster.set_cluster_status("FAILED")
    scheduled_runs(invoke, fake_clock, 1)
    assert [resolved for resolved, _ in cluster_status_notices(alert_inbox)] == [False]


@pytest.fixture
def remove(
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], str]:
    """Take the sample cluster out of the inventory, alone (`cluster`) or with its member
    (`member`, whose role goes with it); the resolution detail expected."""

    def take_out(what: str) -> str:
        if what == "member":
            inventory["members"] = []
            deny_assume_role(monkeypatch, MEMBER)
            write_inventory(inventory)
            return MEMBER_LEFT
        inventory["members"][0]["clusters"] = []
        write_inventory(inventory)
        return CLUSTER_LEFT

    return take_out


@pytest.mark.parametrize(
    ("what_leaves", "status"), [("cluster", "cluster_left"), ("member", "member_left")]
)
def test_the_check_incidents_of_a_cluster_that_left_are_resolved_once_then_forgotten(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    remove: Callable[[str], str],
    what_leaves: str,
    status: str,
) -> None:
    # GIVEN an open check incident of the cluster
    # WHEN the cluster (or its member) is removed from the inventory and the fleet runs go on
    detail = remove(what_leaves)
    results = scheduled_runs(invoke, fake_clock, 3)
    # THEN the first run resolves the incident once, saying the cluster (or member) left
    assert cluster_status_notices(alert_inbox) == [(True, detail)]
    assert results[0]["left_clusters"] == [
        {
            "account_id": MEMBER,
            "region": REGION,
            "cluster": CLUSTER,
            "status": status,
            "alerts": {"sent": 0, "resolved": 1, "suppressed": 0},
        }
    ]
    # AND the next run forgets the settled incident, and the runs after it skip the cluster
    assert results[1]["left_clusters"][0]["alerts"] == {"sent": 0, "resolved": 0, "suppressed": 0}
    assert "left_clusters" not in results[2]


def test_a_left_cluster_resolution_sns_did_not_take_is_sent_once_by_the_retry(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    remove: Callable[[str], str],
    health_services: Callable[[], Any],
) -> None:
    # GIVEN an open check incident of a cluster removed from the inventory
    detail = remove("cluster")
    # AND SNS failing every attempt of Publish
    # WHEN the scheduled run happens
    # THEN it fails, so the platform retries it, and nothing went out
    # WHEN SNS answers again, the platform retries the run twice and the next runs happen
    run_refused_by_sns_then_retried(
        invoke,
        fake_clock,
        health_services().hub_client("sns"),
        lambda: cluster_status_notices(alert_inbox),
        retries=2,
    )
    # THEN the resolution went out once
    assert cluster_status_notices(alert_inbox) == [(True, detail)]


def test_the_check_incidents_of_a_cluster_still_in_the_inventory_are_not_resolved_as_left(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    failed_cluster_alerted: None,
    state_table: StateTable,
) -> None:
    # GIVEN an open check incident of a cluster still in the inventory, and noted as having some
    assert f"{MEMBER}/{REGION}/{CLUSTER}" in state_table.values_named(CHECK_INCIDENT_CLUSTERS, "")
    # WHEN the next fleet runs happen
    results = scheduled_runs(invoke, fake_clock, 2)
    # THEN nothing is resolved and no cluster is reported as left
    assert cluster_status_notices(alert_inbox) == []
    assert all("left_clusters" not in result for result in results)


def test_a_left_cluster_is_not_resolved_by_a_run_that_could_not_read_the_index(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    remove: Callable[[str], str],
    health_services: Callable[[], Any],
) -> None:
    # GIVEN an open check incident of a cluster removed from the inventory
    detail = remove("cluster")
    # AND DynamoDB refusing every read of the clusters with check incidents
    fault = IndexUnreadable()
    health_services().hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb.Query", fault
    )
    # WHEN the scheduled run happens
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN it resolves nothing and reports the index it could not read
    assert cluster_status_notices(alert_inbox) == []
    assert [report["status"] for report in result["left_clusters"]] == ["error"]
    # WHEN DynamoDB answers again and the next run happens
    fault.healed = True
    scheduled_runs(invoke, fake_clock, 1)
    # THEN the incident is resolved once
    assert cluster_status_notices(alert_inbox) == [(True, detail)]


def test_a_left_cluster_the_run_has_no_time_for_is_not_checked_and_resolved_by_the_next_run(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    remove: Callable[[str], str],
) -> None:
    # GIVEN an open check incident of a cluster removed from the inventory
    detail = remove("cluster")
    # WHEN the scheduled run starts with less than a cluster's AWS time left
    fake_clock.advance(CADENCE_SECONDS)
    short = invoke(
        FLEET_EVENT, ContextRunningOutOfTime(millis_left=[SECONDS_SHORT_OF_A_CLUSTER * 1000])
    )
    # THEN it resolves nothing, reports the cluster not checked and the run partial
    assert cluster_status_notices(alert_inbox) == []
    assert short["left_clusters"] == [
        {"account_id": MEMBER, "region": REGION, "cluster": CLUSTER, "status": "not_checked"}
    ]
    assert short["status"] == "partial"
    assert short["not_checked"] == [f"{MEMBER}/{REGION}/{CLUSTER}/left_fleet"]
    # WHEN the next scheduled run has its whole time
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN it resolves the incident once
    assert cluster_status_notices(alert_inbox) == [(True, detail)]
    assert result["left_clusters"][0]["status"] == "cluster_left"


def test_a_left_cluster_a_run_had_no_time_for_is_resolved_before_the_clusters_next_run(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
) -> None:
    # GIVEN an open check incident of a cluster replaced in the inventory by another one
    [left_cluster] = inventory["members"][0]["clusters"]
    inventory["members"][0]["clusters"] = [{**left_cluster, "name": f"{CLUSTER}-next"}]
    write_inventory(inventory)
    # AND a run that had no time left for the cluster that left
    fake_clock.advance(CADENCE_SECONDS)
    short = invoke(
        FLEET_EVENT, ContextRunningOutOfTime(millis_left=[SECONDS_SHORT_OF_A_CLUSTER * 1000])
    )
    assert [report["status"] for report in short["left_clusters"]] == ["not_checked"]
    # WHEN the next run has a cluster's time for its first step only (the clusters of the
    # inventory use the rest of it)
    fake_clock.advance(CADENCE_SECONDS)
    result = invoke(
        FLEET_EVENT,
        ContextRunningOutOfTime(millis_left=[60_000, SECONDS_SHORT_OF_A_CLUSTER * 1000]),
    )
    # THEN the cluster that left went first: its incident is resolved, once
    assert cluster_status_notices(alert_inbox) == [(True, CLUSTER_LEFT)]
    assert [report["status"] for report in result["left_clusters"]] == ["cluster_left"]
    # AND the cluster of the inventory is left for the run after
    assert result["not_started"] == [f"{MEMBER}/{REGION}/{CLUSTER}-next"]


def test_a_left_cluster_is_resolved_while_another_clusters_alert_is_refused_every_run(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    health_services: Callable[[], Any],
) -> None:
    # GIVEN an open check incident of a cluster replaced in the inventory by another one, which
    # EKS does not have (its checks fail, and alert)
    [left_cluster] = inventory["members"][0]["clusters"]
    inventory["members"][0]["clusters"] = [{**left_cluster, "name": f"{CLUSTER}-next"}]
    write_inventory(inventory)
    # AND SNS refusing every attempt to publish an alert of the cluster of the inventory (its
    # topic's key disabled, say), and taking the others
    fail_every_attempt(
        health_services().hub_client("sns"),
        "sns",
        "Publish",
        body_with=(f"{CLUSTER}-next".encode(),),
    )
    # WHEN the scheduled run happens, and the platform retries it twice
    for _ in range(3):
        fake_clock.advance(60)
        with pytest.raises(AlertNotDeliveredError):
            invoke(FLEET_EVENT)
    # THEN each fails, for the alert SNS refused, but the cluster that left had its incident
    # resolved, once: one cluster's alert does not keep the others' from going out
    assert cluster_status_notices(alert_inbox) == [(True, CLUSTER_LEFT)]


def test_a_fleet_run_goes_on_past_saved_values_it_cannot_read_naming_them(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    remove: Callable[[str], str],
    health_services: Callable[[], Any],
    dynamodb_client: Any,
) -> None:
    # GIVEN an open check incident of a cluster removed from the inventory, and beside its entry
    # in the cluster's list one entry of each bad shape (hand edits: no JSON, no object, no
    # check, a check that is no text)
    detail = remove("cluster")
    errors = put_bad_incident_entries(
        dynamodb_client, check_incidents_key(f"{MEMBER}/{REGION}/{CLUSTER}"), ("check", "target")
    )
    # AND another cluster that left, noted with an incident list whose entry is no JSON, and the
    # note of the member accounts listed no JSON either (hand edits, corruption)
    gone = f"{MEMBER}/{REGION}/gone-cluster"
    health_services().state.put_value(
        CHECK_INCIDENT_CLUSTERS,
        gone,
        {"account_id": MEMBER, "region": REGION, "cluster": "gone-cluster"},
    )
    for key, name in [
        (check_incidents_key(gone), "some-alert"),
        (LISTED_MEMBERS_KEY, LISTED_MEMBERS),
    ]:
        dynamodb_client.put_item(
            TableName=STATE_TABLE_NAME, Item=unreadable_value(key, name, {"S": f"[{SECRET}"})
        )
    # WHEN the scheduled run happens
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN each unreadable entry is one error of its cluster naming the value, never its data,
    # and the cluster that left has its incident resolved once
    assert cluster_status_notices(alert_inbox) == [(True, detail)]
    reports = [
        (report["cluster"], report["status"], report.get("error"))
        for report in result["left_clusters"]
    ]
    assert reports == [
        (CLUSTER, "cluster_left", None),
        *((CLUSTER, "error", f"check incidents could not be read: {error}") for error in errors),
        (
            "gone-cluster",
            "error",
            f"check incidents could not be read: saved value some-alert of "
            f"{check_incidents_key(gone)}: its data is not JSON",
        ),
    ]
    assert SECRET not in str(result)


def test_a_note_of_the_clusters_with_incidents_that_cannot_be_read_fails_alone(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    failed_cluster_alerted: None,
    remove: Callable[[str], str],
    health_services: Callable[[], Any],
    dynamodb_client: Any,
) -> None:
    # GIVEN an open check incident of a cluster removed from the inventory
    detail = remove("cluster")
    # AND two more notes in the index of clusters with incidents: one no JSON, one naming no
    # cluster (hand edits, corruption)
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME,
        Item=unreadable_value(CHECK_INCIDENT_CLUSTERS, "a-corrupt-note", {"S": f"[{SECRET}"}),
    )
    health_services().state.put_value(
        CHECK_INCIDENT_CLUSTERS, "a-note-without-cluster", {"account_id": MEMBER, "region": REGION}
    )
    # WHEN the scheduled run happens
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN each bad note is one error naming it, never its data, and the cluster that left has
    # its incident resolved once
    assert cluster_status_notices(alert_inbox) == [(True, detail)]
    errors = [report["error"] for report in result["left_clusters"] if "cluster" not in report]
    assert len(errors) == 2
    assert any("a-corrupt-note" in error for error in errors)
    assert any("'a-note-without-cluster' names no cluster" in error for error in errors)
    reports = {
        report["cluster"]: report for report in result["left_clusters"] if "cluster" in report
    }
    assert reports[CLUSTER]["status"] == "cluster_left"
    assert SECRET not in str(result)
