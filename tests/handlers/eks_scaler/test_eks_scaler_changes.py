"""scale_down / scale_up / restore in a member account through the assumed role (moto EKS):
desiredSize only, within floors and the stack file's max_size."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.eks.models import eks_backends
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, Scaler, event, sizes
from scaling_harness import Scaling

from components.schedule_payloads import cluster_schedule_payload
from components.settings import load_settings, settings_document
from fleet_shared.change_intents import INTENT_NAME
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.handler import Invocation
from fleet_shared.node_group_locks import (
    NODE_GROUP_LOCK_LEASE_SECONDS,
    SAVED_SIZES_NAME,
    SPOT_FALLBACK_ACTION,
    TEMPORARY_CHANGE_FIELD,
    node_group_key,
    node_group_lock_name,
)
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from fleetctl.schedule_replay import scheduler_input
from handlers.eks_scaler import app
from handlers.eks_scaler.environment import ScalerEnvironment
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.deadlines import THREAD_REACHED_SECONDS, ContextRunningOutOfTime
from tests.handlers.faults import (
    InvocationKilledError,
    fail_every_attempt,
    hang_first_attempt,
    throttle_then_refuse,
)
from tests.handlers.unreadable_state_entries import SECRET, UNREADABLE_SHAPES, unreadable_entry

KEY_SYSTEM = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")


def results_by_group(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["nodegroup"]: item for item in result["results"]}


def _scale_down_system_and_batch_spot(scaler: Scaler) -> dict[str, Any]:
    """The answer to an evening request scaling system and batch-spot down to 1."""
    return scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "batch-spot", "desired_size": 1},
            request_id="evening",
        ),
        "evening",
    )


def test_scale_down_changes_the_member_node_group_not_the_hubs(
    scaler: Scaler, member_eks: Any, hub_eks: Any, alert_inbox: Any, state_table: StateTable
) -> None:
    # GIVEN the same cluster in the member and the hub, system at 1/2/4
    # WHEN the member's system group is scaled down to 1
    result = scaler(event("scale_down", {"name": "system", "desired_size": 1}), "inv-1")
    # THEN the member's node group changed, the hub's did not
    item = results_by_group(result)["system"]
    assert item["status"] == "scaling_initiated"
    assert item["previous"] == {"min_size": 1, "desired_size": 2, "max_size": 4}
    assert sizes(member_eks, "system") == {"min_size": 1, "desired_size": 1, "max_size": 4}
    assert sizes(hub_eks, "system") == {"min_size": 1, "desired_size": 2, "max_size": 4}
    # AND the previous sizes were saved, the change recorded and announced at info level
    saved = state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME)
    assert saved is not None
    assert saved["sizes"] == {"min_size": 1, "desired_size": 2, "max_size": 4}
    change = state_table.latest_change(KEY_SYSTEM)
    assert change is not None
    assert change.record["new"]["desired_size"] == 1
    alerts = alert_inbox.receive()
    assert [a.alert["severity"] for a in alerts] == ["info"]
    assert alerts[0].alert["resource"] == f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/system"
    assert result["results"][0]["reason"].startswith("previous sizes saved")


def test_each_node_group_stops_at_its_floor_from_the_inventory(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN web with a configured floor of 2, system (floor 1) and batch-spot (SPOT, floor 0)
    # WHEN all are asked to go to zero
    result = scaler(
        event(
            "scale_down",
            {"name": "web", "desired_size": 0},
            {"name": "system", "desired_size": 0},
            {"name": "batch-spot", "desired_size": 0},
        ),
        "inv-1",
    )
    # THEN each stops at its floor
    assert sizes(member_eks, "web")["desired_size"] == 2
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert sizes(member_eks, "batch-spot") == {"min_size": 0, "desired_size": 0, "max_size": 6}
    assert "below the floor 2" in results_by_group(result)["web"]["reason"]


def test_only_node_groups_the_stack_file_declares_are_scaled(
    scaler: Scaler, services: ScalerServices, member_eks: Any
) -> None:
    # GIVEN system, which the stack file declares, and in the same member account and region a
    # node group `foreign` of its cluster and a cluster `other-apps` that it does not declare
    for cluster in (CLUSTER, "other-apps"):
        if cluster != CLUSTER:
            member_eks.create_cluster(
                name=cluster,
                roleArn=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/eks-cluster",
                resourcesVpcConfig={"subnetIds": ["subnet-1"]},
            )
        member_eks.create_nodegroup(
            clusterName=cluster,
            nodegroupName="foreign",
            nodeRole=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/eks-node",
            subnets=["subnet-1"],
            scalingConfig={"minSize": 0, "desiredSize": 3, "maxSize": 6},
        )
    # AND every member EKS call the scaler makes about either, and every state table call about
    # their node groups (their key, and lock: the request's own idempotency record is no
    # node group's)
    undeclared = (
        f"/clusters/{CLUSTER}/node-groups/foreign",
        "/clusters/other-apps/",
        node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "foreign"),
        node_group_key(MEMBER_ACCOUNT_ID, REGION, "other-apps", "foreign"),
    )
    naming: list[str] = []

    def note_naming(request: Any, **_: Any) -> None:
        sent = f"{request.url} {request.body!r}"
        if any(name in sent for name in undeclared):
            naming.append(sent)

    services.member_client("eks", MEMBER_ACCOUNT_ID, REGION).meta.events.register(
        "before-send.eks", note_naming
    )
    services.hub_client("dynamodb").meta.events.register("before-send.dynamodb", note_naming)
    # WHEN a scale-down asks for system and foreign, and another for other-apps' foreign
    both = {"name": "system", "desired_size": 1}, {"name": "foreign", "desired_size": 0}
    result = results_by_group(scaler(event("scale_down", *both), "inv-1"))
    other = scaler({**event("scale_down", both[1]), "cluster": "other-apps"}, "inv-2")
    # THEN system is scaled down, and neither foreign is: each is an error naming it as not
    # declared in the stack file, and nothing was read, locked, written or updated for it
    assert result["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert result["foreign"]["status"] == "error"
    assert result["foreign"]["reason"].startswith(
        f"node group foreign is not declared in the stack file for cluster {CLUSTER} "
    )
    [refused] = other["results"]
    assert refused["nodegroup"] == "foreign"
    assert refused["status"] == "error"
    assert refused["reason"].startswith(
        "node group foreign is not scaled: cluster other-apps is not declared in the stack file"
    )
    for cluster in (CLUSTER, "other-apps"):
        config = member_eks.describe_nodegroup(clusterName=cluster, nodegroupName="foreign")
        assert config["nodegroup"]["scalingConfig"]["desiredSize"] == 3
    assert naming == []


def test_scale_down_at_the_floor_is_blocked(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN web already at its floor of 2
    scaler(event("scale_down", {"name": "web", "desired_size": 2}), "inv-1")
    fake_clock.advance(600)
    # WHEN it is asked to go lower
    result = scaler(event("scale_down", {"name": "web", "desired_size": 1}), "inv-2")
    # THEN the scale-down is blocked by the floor and nothing changes
    item = results_by_group(result)["web"]
    assert item["status"] == "scale_down_blocked"
    assert "already at the floor 2" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 2


@pytest.mark.parametrize("flag", ["event", "environment"])
def test_dry_run_reports_and_changes_nothing(
    flag: str,
    *,
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    alert_inbox: Any,
    state_table: StateTable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN dry run from the event or from FLEET_DRY_RUN
    if flag == "environment":
        monkeypatch.setenv("FLEET_DRY_RUN", "true")
    app.FUNCTION.use_services(
        ScalerServices.create(
            app.FUNCTION.name, load_environment(ScalerEnvironment), clock=fake_clock
        )
    )
    extra = {"dry_run": True} if flag == "event" else {}
    # WHEN a scale-down with a request id is asked
    result = scaler(
        event("scale_down", {"name": "system", "desired_size": 1}, request_id="r-1", **extra),
        "inv-1",
    )
    # THEN it says what it would do, and nothing changed: sizes, saved values, history, alerts
    assert result["dry_run"] is True
    item = results_by_group(result)["system"]
    assert item["status"] == "dry_run"
    assert item["new"]["desired_size"] == 1
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME) is None
    assert state_table.latest_change(KEY_SYSTEM) is None
    assert alert_inbox.receive() == []


def test_a_dry_run_does_not_answer_the_real_request_of_its_request_id(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN a dry run of a scale-down with request id r-1
    scaler(
        event("scale_down", {"name": "system", "desired_size": 1}, request_id="r-1", dry_run=True),
        "inv-1",
    )
    # WHEN the same request comes without dry run
    result = scaler(
        event("scale_down", {"name": "system", "desired_size": 1}, request_id="r-1"), "inv-2"
    )
    # THEN it acts: the dry run recorded nothing that makes it a repeat
    assert result["dry_run"] is False
    assert "repeated_request" not in result
    assert results_by_group(result)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1


def test_cooldown_blocks_a_second_decrease_until_it_passes(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN batch-spot just scaled down from 2 to 1
    scaler(event("scale_down", {"name": "batch-spot", "desired_size": 1}), "inv-1")
    # WHEN another decrease comes 100 s later
    fake_clock.advance(100)
    blocked = scaler(event("scale_down", {"name": "batch-spot", "desired_size": 0}), "i2")
    # THEN it is blocked with the time left, and nothing changed
    item = results_by_group(blocked)["batch-spot"]
    assert item["status"] == "scale_down_blocked"
    assert item["cooldown_remaining_seconds"] == 200
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1
    # AND an increase is not held by the cooldown
    fake_clock.advance(1)
    raised = scaler(event("scale_up", {"name": "batch-spot", "desired_size": 3}), "i3")
    assert results_by_group(raised)["batch-spot"]["status"] == "scaling_initiated"
    # AND after the cooldown the decrease goes through
    fake_clock.advance(300)
    done = scaler(event("scale_down", {"name": "batch-spot", "desired_size": 0}), "i4")
    assert results_by_group(done)["batch-spot"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "batch-spot")["desired_size"] == 0


FUTURE = datetime.fromisoformat("2099-01-01T00:00:00+00:00")
"""A time no clock writes: a hand edit or corruption put it in the state table."""


def record_a_change_in_the_future(state_table: StateTable, key: str) -> None:
    """The node group's last change, recorded as of FUTURE."""
    state_table.record_change(key, {"action": "scale_up"}, 86400, changed_at=FUTURE)


def keep_an_intent_from_the_future(state_table: StateTable, key: str) -> None:
    """Another request's intent, saved as of FUTURE, of a change not made (to 5)."""
    record = {"action": "scale_up", "new": {"desired_size": 5}, "request_id": "other", "notice": {}}
    state_table.put_value(key, INTENT_NAME, {"prepared_at": iso_z(FUTURE), "record": record})


def intent_time(state_table: StateTable, key: str) -> datetime:
    """When the node group's kept intent says it was saved."""
    intent = state_table.get_value(key, INTENT_NAME)
    assert intent is not None
    return datetime.fromisoformat(intent["prepared_at"])


EACH_CHANGE_TIME_FROM_THE_FUTURE = pytest.mark.parametrize(
    ("what", "write", "read"),
    [
        ("last change", record_a_change_in_the_future, StateTable.last_change_at),
        ("change intent", keep_an_intent_from_the_future, intent_time),
    ],
    ids=["last-change", "change-intent"],
)
"""The node group's last change, or another request's intent (which counts as one until a
change is recorded), dated FUTURE: `what` the reason calls it, how to `write` it and `read` its
time."""


@EACH_CHANGE_TIME_FROM_THE_FUTURE
def test_a_change_time_after_now_is_dated_now_once_and_holds_decreases_one_cooldown(  # noqa: PLR0917
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    state_table: StateTable,
    what: str,
    write: Callable[[StateTable, str], None],
    read: Callable[[StateTable, str], datetime | None],
) -> None:
    # GIVEN batch-spot's last change (or another request's intent, which counts as one until
    # a change is recorded) dated 2099 (a hand edit, corruption), which read as it is held
    # every decrease until then
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "batch-spot")
    write(state_table, key)
    # WHEN a decrease comes
    blocked = scaler(event("scale_down", {"name": "batch-spot", "desired_size": 1}), "i1")
    # THEN it waits one cooldown from now (the change cannot have been made later), says why,
    # and its time is now
    item = results_by_group(blocked)["batch-spot"]
    assert item["status"] == "scale_down_blocked"
    assert item["cooldown_remaining_seconds"] == 300
    assert f"its {what} was recorded as of 2099-01-01T00:00:00Z, after now" in item["reason"]
    assert read(state_table, key) == fake_clock.now()
    # WHEN another decrease comes once that cooldown passed
    fake_clock.advance(301)
    done = scaler(event("scale_down", {"name": "batch-spot", "desired_size": 1}), "i2")
    # THEN it goes through, and the future time is not reported again
    item = results_by_group(done)["batch-spot"]
    assert item["status"] == "scaling_initiated"
    assert "after now" not in item["reason"]
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1


@EACH_CHANGE_TIME_FROM_THE_FUTURE
def test_a_dry_run_counts_a_change_time_after_now_as_now_and_writes_nothing(  # noqa: PLR0917
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    what: str,
    write: Callable[[StateTable, str], None],
    read: Callable[[StateTable, str], datetime | None],
) -> None:
    # GIVEN batch-spot's last change (or another request's intent) dated 2099 (a hand edit,
    # corruption)
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "batch-spot")
    write(state_table, key)
    # WHEN a dry run of a decrease comes
    answer = scaler(
        event("scale_down", {"name": "batch-spot", "desired_size": 1}, dry_run=True), "dry"
    )
    # THEN it counts the time as now (one cooldown from now) and says so, a dry run's way
    item = results_by_group(answer)["batch-spot"]
    assert item["status"] == "scale_down_blocked"
    assert item["cooldown_remaining_seconds"] == 300
    assert f"its {what} was recorded as of 2099-01-01T00:00:00Z, after now" in item["reason"]
    assert "a dry run counts it as of now, and leaves it dated so" in item["reason"]
    # AND nothing was written: the time is still the one recorded, the node group unchanged
    assert read(state_table, key) == FUTURE
    assert sizes(member_eks, "batch-spot")["desired_size"] == 2


def test_a_held_lock_reports_locked_and_changes_nothing(
    scaler: Scaler, member_eks: Any, state_table: StateTable
) -> None:
    # GIVEN the spot optimizer holds the system group's lock
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    assert state_table.acquire_lock(lock, "spot_optimizer:other", 120)
    # WHEN the scaler scales system and web down
    result = scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "web", "desired_size": 2},
        ),
        "inv-1",
    )
    # THEN system is reported locked and unchanged, while web goes on
    by_group = results_by_group(result)
    assert by_group["system"]["status"] == "locked"
    assert "spot_optimizer:other" in by_group["system"]["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert by_group["web"]["status"] == "scaling_initiated"
    # AND the scaler did not steal or release the other owner's lock
    assert not state_table.acquire_lock(lock, "third", 120)


@pytest.mark.parametrize("other_done", [False, True], ids=["other-holding", "other-done"])
def test_a_change_whose_lock_lease_ran_out_while_reading_is_not_made(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    other_done: bool,
) -> None:
    # GIVEN EKS answering the scaler's read of system only after the lock's lease ran out, by
    # when the spot optimizer took the lock and raised system to 3 (and, when done, released it)
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    reads: list[str] = []

    def other_owner_acts_while_the_read_is_slow(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("nodegroup", {}).get("nodegroupName") != "system" or reads:
            return
        reads.append("system")
        fake_clock.advance(NODE_GROUP_LOCK_LEASE_SECONDS + 10)
        assert state_table.acquire_lock(lock, "spot_optimizer:fallback", 600)
        member_eks.update_nodegroup_config(
            clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": 3}
        )
        if other_done:
            assert state_table.release_lock(lock, "spot_optimizer:fallback")

    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register(
        "after-call.eks.DescribeNodegroup", other_owner_acts_while_the_read_is_slow
    )
    # WHEN the scaler scales system and web down
    result = scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "web", "desired_size": 2},
            request_id="eve-1",
        ),
        "inv-1",
    )
    # THEN system is locked and keeps the other owner's 3, with no sizes saved from the stale
    # read, while web goes on
    by_group = results_by_group(result)
    assert reads == ["system"]
    assert by_group["system"]["status"] == "locked"
    assert "lease ran out" in by_group["system"]["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 3
    assert state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME) is None
    assert state_table.latest_change(KEY_SYSTEM) is None
    assert by_group["web"]["status"] == "scaling_initiated"


def test_the_same_request_id_makes_one_change(
    scaler: Scaler,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a scale-down with a request id, done once
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-42")
    first = scaler(request, "inv-1")
    # WHEN the same request arrives again (a schedule retry), after the cooldown
    fake_clock.advance(3600)
    second = scaler(request, "inv-2")
    # THEN the stored result is returned and nothing else changed or was announced
    assert second["repeated_request"] is True
    assert second["results"] == first["results"]
    since = fake_clock.now().replace(year=2000)
    assert len(state_table.query_history(KEY_SYSTEM, since)) == 1
    assert len(alert_inbox.receive()) == 1
    # WHEN a different request comes under the same id (web, not system)
    other = event("scale_down", {"name": "web", "desired_size": 2}, request_id="exec-42")
    refused = scaler(other, "inv-3")
    # THEN it is refused naming request_id, rather than answered with the first one's result as
    # if done, and web is unchanged
    assert refused["status"] == "error"
    assert refused["error"].startswith("invalid event: request_id: already used")
    assert sizes(member_eks, "web")["desired_size"] == 3


def test_another_request_under_the_id_of_one_left_open_is_refused_where_that_one_changed(
    scaling: Scaling,
) -> None:
    # GIVEN request exec-7 scaled web down to 2 and was left open: system was locked
    lock = scaling.lock_system_for_the_spot_optimizer()
    both = ({"name": "web", "desired_size": 2}, {"name": "system", "desired_size": 1})
    opened = scaling.scaler(event("scale_down", *both, request_id="exec-7"), "inv-1")
    assert results_by_group(opened)["system"]["status"] == "locked"
    # WHEN a different request comes under exec-7 (web alone, to 4)
    scale_up = event("scale_up", {"name": "web", "desired_size": 4}, request_id="exec-7")
    other = scaling.scaler(scale_up, "inv-2")
    # THEN web is refused naming request_id, not taken for the node group that request already
    # changed (left at 2 and answered as done), and keeps its size
    item = results_by_group(other)["web"]
    assert item["status"] == "error"
    assert item["reason"].startswith("invalid event: request_id: already used")
    assert scaling.desired_size("web") == 2
    # AND the first request's retry, once system is free, finishes it
    scaling.state_table.release_lock(lock, "spot_optimizer:other")
    retried = scaling.scaler(event("scale_down", *both, request_id="exec-7"), "inv-3")
    assert results_by_group(retried)["system"]["status"] == "scaling_initiated"
    assert results_by_group(retried)["web"]["status"] == "no_change_needed"


def test_a_request_whose_idempotency_record_cannot_be_read_is_refused_not_run_again(
    scaler: Scaler,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    *,
    fake_clock: ManualClock,
    dynamodb_client: Any,
) -> None:
    # GIVEN a scale-down with a request id, done once, then the node group set back by hand and
    # the request's stored result made no JSON (a hand edit, corruption)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-42")
    scaler(request, "inv-1")
    alert_inbox.receive()
    member_eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": 2}
    )
    request_key = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/exec-42"
    record = dynamodb_client.get_item(
        TableName=state_table.table_name,
        Key={"pk": {"S": "IDEMPOTENCY#eks_scaler"}, "sk": {"S": request_key}},
    )["Item"]
    record["data"] = {"S": f"{{{SECRET}"}
    dynamodb_client.put_item(TableName=state_table.table_name, Item=record)
    # WHEN the same request arrives again, after the cooldown
    fake_clock.advance(3600)
    repeated = scaler(request, "inv-2")
    # THEN it is refused naming the request and what is wrong, never the data, and nothing is
    # changed or announced again: it is not run as if it had no record
    assert repeated["status"] == "error"
    assert repeated["error"] == (
        f"request {request_key} of eks_scaler completed, but its recorded result cannot be "
        "read: its data is not JSON; it is not run again under this request id"
    )
    assert SECRET not in str(repeated)
    assert sizes(member_eks, "system")["desired_size"] == 2
    since = fake_clock.now().replace(year=2000)
    assert len(state_table.query_history(KEY_SYSTEM, since)) == 1
    assert alert_inbox.receive() == []


def scheduled_attempt(action: str, scheduled_time: str, attempt: int) -> dict[str, Any]:
    """One attempt of one run of the cluster's `action` schedule, with the payload the program
    writes for the test stack file and its context attributes filled in as EventBridge
    Scheduler does: the execution id is assigned "for each attempted invocation of a target"
    (Scheduler User Guide, "Adding context attributes"), the scheduled time is the run's."""
    stack_file = Path(__file__).parents[1] / "Pulumi.handlers.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    member = load_settings("handlers", settings_document(config)).members[0]
    cluster = next(item for item in member.clusters if item.name == CLUSTER)
    return scheduler_input(
        cluster_schedule_payload(
            action, member.account_id, member.cluster_region(cluster), cluster
        ),
        scheduled_at=datetime.fromisoformat(scheduled_time),
        execution_id=uuid.uuid4().hex[:16],
        attempt=attempt,
    )


def test_a_scheduler_retry_of_a_scale_down_run_does_not_undo_a_later_raise(
    scaler: Scaler,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN the evening scale-down run done by its first attempt (system 2 -> 1)
    run_at = fake_clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    first = scaler(scheduled_attempt("scale_down", run_at, attempt=1), "inv-1")
    assert results_by_group(first)["system"]["status"] == "scaling_initiated"
    # AND an operator raising system to 3 two minutes later
    fake_clock.advance(120)
    scaler(event("scale_up", {"name": "system", "desired_size": 3}, request_id="ops-1"), "inv-2")
    assert sizes(member_eks, "system")["desired_size"] == 3
    # WHEN Scheduler's retry of the same run (its Invoke answer was lost) arrives after the
    # cooldown, with the execution id of its own attempt
    fake_clock.advance(600)
    retried = scaler(scheduled_attempt("scale_down", run_at, attempt=2), "inv-3")
    # THEN it is the run's repeat: the operator's size stands, nothing is recorded or announced
    assert sizes(member_eks, "system")["desired_size"] == 3
    assert retried["repeated_request"] is True
    since = fake_clock.now().replace(year=2000)
    assert len(state_table.query_history(KEY_SYSTEM, since)) == 2
    assert len(alert_inbox.receive()) == 2


def test_scale_up_without_sizes_restores_what_the_scale_down_saved(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN an evening scale-down of system (1/2/4 -> 1/1/4) and batch-spot (0/2/6 -> 0/0/6)
    scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "batch-spot", "desired_size": 0},
        ),
        "evening",
    )
    assert sizes(member_eks, "batch-spot")["desired_size"] == 0
    # WHEN the morning schedule sends a size-less scale_up
    fake_clock.advance(14 * 3600)
    morning = scaler(
        event("scale_up", {"name": "system"}, {"name": "batch-spot"}, request_id="m-1"),
        "morning",
    )
    # THEN the saved sizes are back
    assert {item["status"] for item in morning["results"]} == {"scaling_initiated"}
    assert sizes(member_eks, "system") == {"min_size": 1, "desired_size": 2, "max_size": 4}
    assert sizes(member_eks, "batch-spot") == {"min_size": 0, "desired_size": 2, "max_size": 6}
    # AND a second size-less scale_up does not restore the same sizes again
    again = scaler(event("scale_up", {"name": "system"}), "later")
    item = results_by_group(again)["system"]
    assert item["status"] == "no_change_needed"
    assert "already restored" in item["reason"]


def test_scale_up_without_saved_sizes_needs_no_change(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN no scale-down happened WHEN a size-less scale_up comes THEN it says why nothing changes
    result = scaler(event("scale_up", {"name": "system"}), "inv-1")
    item = results_by_group(result)["system"]
    assert item["status"] == "no_change_needed"
    assert "no sizes were saved" in item["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 2


def test_scale_up_raises_a_node_group_found_at_night_to_its_stack_file_size(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN system lowered from its stack file's 2 to 1 outside the scaler (by hand, at night),
    # so the evening scale-down found nothing to change and saved nothing
    member_eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": 1}
    )
    evening = scaler(event("scale_down", {"name": "system", "desired_size": 1}), "evening")
    assert results_by_group(evening)["system"]["status"] == "no_change_needed"
    # WHEN the morning schedule sends a size-less scale_up
    morning = scaler(event("scale_up", {"name": "system"}), "morning")
    # THEN system is back at the stack file's size, and the result says why
    item = results_by_group(morning)["system"]
    assert item["status"] == "scaling_initiated"
    assert "scaling up to the stack file's desired size 2" in item["reason"]
    assert sizes(member_eks, "system") == {"min_size": 1, "desired_size": 2, "max_size": 4}


def test_a_scheduled_scale_down_below_its_size_needs_no_change_and_completes(
    scaler: Scaler, member_eks: Any, state_table: StateTable
) -> None:
    # GIVEN system lowered to 1 during the day, below the size its evening schedule names (2)
    member_eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": 1}
    )
    scheduled = event(
        "scale_down", {"name": "system", "desired_size": 2}, scheduled=True, request_id="eve-1"
    )
    # WHEN the schedule's scale_down comes, and comes again (a redelivery)
    first = scaler(scheduled, "evening")
    second = scaler(scheduled, "evening-again")
    # THEN system stays at 1 with no error, and the request is complete: the repeat gets the
    # stored result
    item = results_by_group(first)["system"]
    assert item["status"] == "no_change_needed"
    assert "a scheduled scale-down never raises" in item["reason"]
    assert second["repeated_request"] is True
    assert second["results"] == first["results"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    # AND nothing was saved for a restore: the morning finds no sizes of 1 to put back
    assert state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME) is None
    # AND the same request made by hand is still refused: asking to raise with scale_down is a
    # mistake worth saying
    by_hand = scaler(event("scale_down", {"name": "system", "desired_size": 2}), "by-hand")
    assert results_by_group(by_hand)["system"]["status"] == "error"


def test_restore_puts_back_the_saved_sizes_even_after_a_manual_change(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN web scaled down from 2/3/6 to 2/2/6 and later raised by hand to 2/5/6
    scaler(event("scale_down", {"name": "web", "desired_size": 2}), "inv-1")
    fake_clock.advance(600)
    scaler(event("scale_up", {"name": "web", "desired_size": 5}), "inv-2")
    fake_clock.advance(600)
    # WHEN restore is asked
    result = scaler(event("restore", {"name": "web"}), "inv-3")
    # THEN the sizes before the scale-down are back (a decrease, allowed after the cooldown)
    assert results_by_group(result)["web"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "web") == {"min_size": 2, "desired_size": 3, "max_size": 6}


def test_a_second_restore_does_not_put_back_sizes_already_restored(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN web scaled down from 2/3/6 to 2/2/6, restored to 2/3/6, then raised by hand to 2/5/6
    scaler(event("scale_down", {"name": "web", "desired_size": 2}), "inv-1")
    fake_clock.advance(600)
    scaler(event("restore", {"name": "web"}), "inv-2")
    fake_clock.advance(600)
    scaler(event("scale_up", {"name": "web", "desired_size": 5}), "inv-3")
    fake_clock.advance(600)
    # WHEN restore is asked again
    result = scaler(event("restore", {"name": "web"}), "inv-4")
    # THEN nothing is restored twice: web keeps 5, the answer says why
    web = results_by_group(result)["web"]
    assert web["status"] == "no_change_needed"
    assert "already restored" in web["reason"]
    assert "nothing to restore" in web["reason"]
    assert sizes(member_eks, "web") == {"min_size": 2, "desired_size": 5, "max_size": 6}


def test_a_scale_down_that_says_save_sizes_false_leaves_the_saved_sizes_as_they_were(
    scaler: Scaler, member_eks: Any, state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN web scaled down from 2/3/6 to 2/2/6 and restored to 2/3/6, then raised to 2/5/6
    scaler(event("scale_down", {"name": "web", "desired_size": 2}), "inv-1")
    fake_clock.advance(600)
    scaler(event("restore", {"name": "web"}), "inv-2")
    fake_clock.advance(600)
    scaler(event("scale_up", {"name": "web", "desired_size": 5}), "inv-3")
    fake_clock.advance(600)
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    restored = state_table.get_value(web_key, SAVED_SIZES_NAME)
    # WHEN the raise is undone by a scale-down to 3 that says save_sizes false
    result = scaler(
        event("scale_down", {"name": "web", "desired_size": 3}, save_sizes=False), "inv-4"
    )
    # THEN web is at 3, the 5 it undid is not saved, and the restored sizes stay as they were
    web = results_by_group(result)["web"]
    assert web["status"] == "scaling_initiated", web
    assert "no sizes saved for the next restore" in web["reason"]
    assert sizes(member_eks, "web") == {"min_size": 2, "desired_size": 3, "max_size": 6}
    assert state_table.get_value(web_key, SAVED_SIZES_NAME) == restored


def test_a_missing_node_group_does_not_stop_the_others(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN one unknown node group among known ones WHEN they are scaled down
    result = scaler(
        event(
            "scale_down",
            {"name": "ghost", "desired_size": 1},
            {"name": "batch-spot", "desired_size": 1},
        ),
        "inv-1",
    )
    # THEN the unknown one is an error and the known one changed
    by_group = results_by_group(result)
    assert by_group["ghost"]["status"] == "error"
    assert "ghost" in by_group["ghost"]["reason"]
    assert by_group["batch-spot"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1


def test_scale_down_that_would_raise_is_refused(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN system at desired 2 WHEN a scale_down asks for 3 THEN it is refused, nothing changes
    result = scaler(event("scale_down", {"name": "system", "desired_size": 3}), "i")
    assert results_by_group(result)["system"]["status"] == "error"
    assert sizes(member_eks, "system")["desired_size"] == 2


def test_a_request_far_above_max_size_never_leaves_the_node_group_above_it(
    scaler: Scaler, member_eks: Any, state_table: StateTable
) -> None:
    # GIVEN web with max_size 6 in the stack file (inventory) and in EKS, at desired 3
    # WHEN a caller asks for a billion nodes
    result = scaler(event("scale_up", {"name": "web", "desired_size": 1_000_000_000}))
    # THEN desired is clamped to max_size, the reason says so, and min/max are untouched
    item = results_by_group(result)["web"]
    assert item["status"] == "scaling_initiated"
    assert item["new"] == {"min_size": 2, "desired_size": 6, "max_size": 6}
    assert "desired_size 1000000000 clamped to max_size 6" in item["reason"]
    assert sizes(member_eks, "web") == {"min_size": 2, "desired_size": 6, "max_size": 6}
    # AND a second such request changes nothing: the node group is already at its ceiling
    again = results_by_group(scaler(event("scale_up", {"name": "web", "desired_size": 7})))
    assert again["web"]["status"] == "no_change_needed"
    assert sizes(member_eks, "web")["desired_size"] == 6


def test_without_the_inventory_a_request_above_the_current_max_size_is_refused(
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a scaler deployed without DATA_BUCKET_NAME (no inventory: default floors, no
    # configured max_size) and system at 1/2/4 in EKS
    monkeypatch.delenv("DATA_BUCKET_NAME")
    app.FUNCTION.use_services(
        ScalerServices.create(
            app.FUNCTION.name, load_environment(ScalerEnvironment), clock=fake_clock
        )
    )
    # WHEN desired 5 is asked
    result = scaler(event("scale_up", {"name": "system", "desired_size": 5}))
    # THEN it is refused naming maxSize, and nothing changed
    item = results_by_group(result)["system"]
    assert item["status"] == "error"
    assert "above the node group's maxSize 4" in item["reason"]
    assert sizes(member_eks, "system") == {"min_size": 1, "desired_size": 2, "max_size": 4}
    # AND the default floor still holds
    lowered = results_by_group(scaler(event("scale_down", {"name": "system", "desired_size": 0})))
    assert lowered["system"]["new"]["desired_size"] == 1


def test_a_scale_down_sends_desired_size_only(
    scaler: Scaler, services: ScalerServices, member_eks: Any
) -> None:
    # GIVEN the parameters of every UpdateNodegroupConfig call the scaler makes
    sent: list[dict[str, Any]] = []
    member_client = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    member_client.meta.events.register(
        "before-parameter-build.eks.UpdateNodegroupConfig",
        lambda params, **_: sent.append(params),
    )
    # WHEN the evening schedule scales system and batch-spot down
    scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "batch-spot", "desired_size": 0},
        )
    )
    # THEN each call carried desiredSize alone: minSize and maxSize stay the stack file's
    assert [call["scalingConfig"] for call in sent] == [{"desiredSize": 1}, {"desiredSize": 0}]
    assert sizes(member_eks, "system") == {"min_size": 1, "desired_size": 1, "max_size": 4}
    assert sizes(member_eks, "batch-spot") == {"min_size": 0, "desired_size": 0, "max_size": 6}


def test_a_scale_down_eks_refuses_leaves_no_saved_sizes_for_the_morning_to_restore(
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN the evening scale-down of web (2/3/6 -> 2/2/6) with EKS failing every attempt of the
    # update, so web stays at 3
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    fault = fail_every_attempt(eks, "eks", "UpdateNodegroupConfig")
    evening = scaler(event("scale_down", {"name": "web", "desired_size": 2}, request_id="eve-1"))
    assert results_by_group(evening)["web"]["status"] == "error"
    assert sizes(member_eks, "web")["desired_size"] == 3
    # AND an operator raising web to 5 during the night, EKS healthy again
    fault.healed = True
    fake_clock.advance(3600)
    scaler(event("scale_up", {"name": "web", "desired_size": 5}, request_id="ops-1"))
    # WHEN the morning schedule sends a size-less scale_up
    fake_clock.advance(10 * 3600)
    morning = scaler(event("scale_up", {"name": "web"}, request_id="morning-1"))
    # THEN nothing was saved by the scale-down that did not happen, so the morning has nothing
    # to restore and the operator's 5 stands (above the stack file's 3)
    assert results_by_group(morning)["web"]["status"] == "no_change_needed"
    assert sizes(member_eks, "web")["desired_size"] == 5
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    assert state_table.get_value(web_key, SAVED_SIZES_NAME) is None


def test_a_scheduled_run_that_finds_a_node_group_locked_fails_so_its_retry_scales_it(
    scaling: Scaling,
) -> None:
    # GIVEN an operator's request on system whose lock release DynamoDB refused (every attempt),
    # so system's lock stays held for its lease
    dynamodb = scaling.services.hub_client("dynamodb")
    fault = fail_every_attempt(dynamodb, "dynamodb", "DeleteItem")
    scaling.scaler(
        event("scale_up", {"name": "system", "desired_size": 2}, request_id="ops-2"), "ops"
    )
    fault.healed = True
    # WHEN the evening schedule's run comes 30 s later, within the lease
    scaling.clock.advance(30)
    evening = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": 2},
        scheduled=True,
        request_id="schedule-scale_down-2025-06-02T03:30:30Z",
    )
    # THEN web is scaled and announced, and the run fails naming system's lock, so the
    # platform retries it rather than leaving system at its daytime size all night unnoticed
    with pytest.raises(ScheduledRunUnfinishedError, match="system: locked"):
        scaling.scaler(evening, "inv-1")
    assert scaling.desired_size("web") == 2
    assert scaling.desired_size("system") == 2
    assert len(scaling.alert_inbox.receive()) == 1
    # WHEN the platform's retry comes after the lease
    scaling.clock.advance(180)
    retried = scaling.scaler(evening, "inv-2")
    # THEN system is scaled, web is found at its target, and the run is complete
    by_group = results_by_group(retried)
    assert by_group["system"]["status"] == "scaling_initiated"
    assert by_group["web"]["status"] == "no_change_needed"
    assert scaling.desired_size("system") == 1
    assert [a.alert["title"] for a in scaling.alert_inbox.receive()] == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    ]
    assert scaling.scaler(evening, "inv-3")["repeated_request"] is True


def test_a_restore_whose_saved_sizes_cannot_be_marked_restored_changes_nothing(
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN web scaled down in the evening (2/3/6 -> 2/2/6, sizes saved), and DynamoDB refusing
    # (every attempt) the write that marks saved sizes restored
    scaler(event("scale_down", {"name": "web", "desired_size": 2}, request_id="eve-1"))
    fake_clock.advance(10 * 3600)
    dynamodb = services.hub_client("dynamodb")
    fault = fail_every_attempt(dynamodb, "dynamodb", "PutItem")
    marking = fault

    def fail_marking_restored_only(request: Any, **kwargs: Any) -> None:
        # The saved sizes' JSON inside the request's JSON: a restored_at that is a time, not null.
        if 'restored_at\\":\\"' in request.body.decode():
            marking(request, **kwargs)

    dynamodb.meta.events.unregister("before-send.dynamodb.PutItem", fault)
    dynamodb.meta.events.register_first("before-send.dynamodb.PutItem", fail_marking_restored_only)
    # WHEN the morning's size-less scale_up comes
    morning = scaler(event("scale_up", {"name": "web"}, request_id="morning-1"))
    # THEN it fails for web before changing it, so no restore stands with its sizes still
    # waiting to be restored again
    assert fault.attempts > 1
    assert results_by_group(morning)["web"]["status"] == "error"
    assert sizes(member_eks, "web")["desired_size"] == 2
    # WHEN its retry comes with DynamoDB healthy, an operator raises web to 5 during the day, and
    # the evening scale-down and the next morning follow
    fault.healed = True
    retried = scaler(event("scale_up", {"name": "web"}, request_id="morning-1"))
    assert results_by_group(retried)["web"]["status"] == "scaling_initiated"
    fake_clock.advance(3600)
    scaler(event("scale_up", {"name": "web", "desired_size": 5}, request_id="ops-1"))
    fake_clock.advance(8 * 3600)
    scaler(event("scale_down", {"name": "web", "desired_size": 2}, request_id="eve-2"))
    fake_clock.advance(10 * 3600)
    scaler(event("scale_up", {"name": "web"}, request_id="morning-2"))
    # THEN the second morning restores the 5 web had before the second evening
    assert sizes(member_eks, "web")["desired_size"] == 5


def test_a_restore_killed_in_its_update_is_finished_by_its_retry_with_the_saved_sizes(
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN web raised to 4 by an operator and scaled down to 2 in the evening (4 saved), and
    # EKS never answering the morning's update, so that invocation hangs until Lambda kills it
    scaler(event("scale_up", {"name": "web", "desired_size": 4}, request_id="ops-1"))
    fake_clock.advance(3600)
    scaler(event("scale_down", {"name": "web", "desired_size": 2}, request_id="eve-1"))
    fake_clock.advance(10 * 3600)
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    hang = hang_first_attempt(eks, "eks", "UpdateNodegroupConfig")
    morning = event("scale_up", {"name": "web"}, request_id="morning-1")
    deadline = Invocation.from_context(ContextRunningOutOfTime(millis_left=[120_000]))
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(app.FUNCTION.invoke, morning, deadline)
        assert hang.entered.wait(THREAD_REACHED_SECONDS)
        # WHEN Lambda kills it at its deadline and retries the event a minute later
        fake_clock.advance(120 + 60)
        retried = scaler(morning, "inv-2")
        hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)
    # THEN the retry restores the saved 4, not the stack file's 3
    assert results_by_group(retried)["web"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == 4


def test_a_scheduled_run_that_finds_a_node_group_being_upgraded_fails_so_its_retry_scales_it(
    scaler: Scaler, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN system UPDATING (an EKS version upgrade) when the evening schedule's run comes
    group = eks_backends[MEMBER_ACCOUNT_ID][REGION].clusters[CLUSTER].nodegroups["system"]
    group.status = "UPDATING"
    evening = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": 2},
        scheduled=True,
        request_id="schedule-scale_down-2025-06-02T03:30:00Z",
    )
    # WHEN the run is invoked
    # THEN web is scaled, and the run fails naming system as updating, as for a locked node
    # group, so the platform retries it rather than leaving system at its daytime size all night
    with pytest.raises(ScheduledRunUnfinishedError, match=r"system: updating \(node group is "):
        scaler(evening, "inv-1")
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert sizes(member_eks, "web")["desired_size"] == 2
    # WHEN the upgrade is over and the platform retries the run
    group.status = "ACTIVE"
    retried = scaler(evening, "inv-2")
    # THEN system is scaled then, and the run is complete
    assert results_by_group(retried)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert scaler(evening, "inv-3")["repeated_request"] is True


def _spot_fallback_raises_system(
    member_eks: Any, state_table: StateTable, previous: int, fake_clock: ManualClock
) -> None:
    """The spot optimizer's on-demand fallback, as it changes and records system: +1, marked
    temporary, then an hour passes (its one +1 per hour)."""
    system = sizes(member_eks, "system")
    assert system["desired_size"] == previous
    member_eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": previous + 1}
    )
    state_table.record_change(
        KEY_SYSTEM,
        {
            "source": "spot_optimizer",
            "action": SPOT_FALLBACK_ACTION,
            "previous": system,
            "new": {**system, "desired_size": previous + 1},
            TEMPORARY_CHANGE_FIELD: True,
            "update_id": f"fallback-{previous}",
        },
        history_ttl_seconds=90 * 86400,
    )
    fake_clock.advance(3600)


def test_the_spot_fallbacks_daytime_nodes_are_not_restored_the_next_morning(
    scaler: Scaler, member_eks: Any, state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN system at its daytime 2, raised by the spot optimizer's temporary +1 twice in the
    # afternoon (2 -> 3 -> 4)
    _spot_fallback_raises_system(member_eks, state_table, 2, fake_clock)
    _spot_fallback_raises_system(member_eks, state_table, 3, fake_clock)
    # WHEN the evening schedule scales it down to 1, and the morning schedule scales it up
    evening = scaler(
        event("scale_down", {"name": "system", "desired_size": 1}, request_id="e"),
        "evening",
    )
    assert results_by_group(evening)["system"]["status"] == "scaling_initiated"
    fake_clock.advance(12 * 3600)
    morning = scaler(event("scale_up", {"name": "system"}, request_id="m"), "m")
    # THEN the morning brings back the daytime 2, not the temporary nodes: saved with them, they
    # would come back every morning after, each evening saving them again
    assert results_by_group(morning)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 2
    saved = state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME)
    assert saved is not None
    assert saved["sizes"] == {"min_size": 1, "desired_size": 2, "max_size": 4}
    assert "the spot optimizer's temporary +2" in results_by_group(evening)["system"]["reason"]


def test_a_size_set_after_the_spot_fallback_is_restored_the_next_morning(
    scaler: Scaler, member_eks: Any, state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN system raised by the spot optimizer's temporary +1 (2 -> 3), then set to 4 by a
    # person's request
    _spot_fallback_raises_system(member_eks, state_table, 2, fake_clock)
    raised = scaler(event("scale_up", {"name": "system", "desired_size": 4}), "person")
    assert results_by_group(raised)["system"]["status"] == "scaling_initiated"
    fake_clock.advance(3600)
    # WHEN the evening schedule scales it down to 1, and the morning schedule scales it up
    scaler(
        event("scale_down", {"name": "system", "desired_size": 1}, request_id="e"),
        "evening",
    )
    fake_clock.advance(12 * 3600)
    scaler(event("scale_up", {"name": "system"}, request_id="m"), "morning")
    # THEN the person's 4 comes back: only a size the fallback's +1 still holds is temporary
    assert sizes(member_eks, "system")["desired_size"] == 4


@pytest.mark.parametrize(
    ("recorded", "problem"),
    [
        pytest.param(
            {"previous": {"desired_size": "two"}},
            "previous.desired_size 'two' is not a node count",
            id="a-size-that-is-text",
        ),
        pytest.param(
            {"previous": None}, "previous.desired_size None is not a node count", id="no-previous"
        ),
        pytest.param(
            {"new": {"min_size": 1}}, "new.desired_size None is not a node count", id="no-new-size"
        ),
    ],
)
def test_a_malformed_spot_fallback_record_fails_its_node_group_alone_naming_the_field(  # noqa: PLR0917 - pytest passes fixtures positionally
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    recorded: dict[str, Any],
    problem: str,
) -> None:
    # GIVEN system raised by the spot optimizer's temporary +1 (2 -> 3), its record in the state
    # table's history without a desired size that is a node count on one side (corruption, or
    # an older format: the table is the fleet's own)
    system = sizes(member_eks, "system")
    member_eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": 3}
    )
    state_table.record_change(
        KEY_SYSTEM,
        {
            "source": "spot_optimizer",
            "action": SPOT_FALLBACK_ACTION,
            "previous": system,
            "new": {**system, "desired_size": 3},
            TEMPORARY_CHANGE_FIELD: True,
            **recorded,
        },
        history_ttl_seconds=90 * 86400,
    )
    changed_at = fake_clock.now()
    fake_clock.advance(3600)
    # WHEN the evening schedule scales system and batch-spot down to 1
    result = scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "batch-spot", "desired_size": 1},
        ),
        "evening",
    )
    # THEN system alone is an error naming the change and the field, and left as it was
    # (instead of a KeyError failing the whole request, or text taken for its daytime size);
    # batch-spot is scaled down
    by_group = results_by_group(result)
    assert by_group["system"]["status"] == "error"
    assert by_group["system"]["reason"] == (
        f"the node group's scaler history change at {iso_z(changed_at)}: {problem}"
    )
    assert sizes(member_eks, "system")["desired_size"] == 3
    assert state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME) is None
    assert by_group["batch-spot"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1


@pytest.mark.parametrize(
    ("shape", "problem"), UNREADABLE_SHAPES.values(), ids=UNREADABLE_SHAPES.keys()
)
def test_a_latest_change_entry_of_no_readable_time_or_record_fails_its_node_group_alone(  # noqa: PLR0917 - pytest passes fixtures positionally
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    shape: Any,
    problem: str,
) -> None:
    # GIVEN system's latest change entry written straight into the table with no readable
    # time or record (a hand edit, corruption, an older format)
    written_at = iso_z(fake_clock.now(), "microseconds")
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_entry(KEY_SYSTEM, "LATEST", written_at, shape),
    )
    fake_clock.advance(3600)
    # WHEN a request scales system and batch-spot down to 1
    result = _scale_down_system_and_batch_spot(scaler)
    # THEN system alone is an error naming the entry's key, its time where that can be read,
    # and what is wrong, never the value, and is left as it was (instead of a KeyError or
    # ValueError failing the whole request); batch-spot is scaled down
    by_group = results_by_group(result)
    where = KEY_SYSTEM if "changed_at" in shape else f"{KEY_SYSTEM} at {written_at}"
    assert by_group["system"]["status"] == "error"
    assert by_group["system"]["reason"] == f"state record of {where}: {problem}"
    assert SECRET not in str(result)
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert by_group["batch-spot"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1


@pytest.mark.parametrize(
    ("shape", "problem"),
    [
        UNREADABLE_SHAPES["no-changed-at"],
        UNREADABLE_SHAPES["data-binary"],
        UNREADABLE_SHAPES["data-a-list"],
    ],
    ids=["no-changed-at", "data-binary", "data-a-list"],
)
def test_a_history_entry_of_no_readable_time_or_record_under_a_spot_raise_fails_its_group_alone(  # noqa: PLR0917 - pytest passes fixtures positionally
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    shape: Any,
    problem: str,
) -> None:
    # GIVEN system's history holding an entry with no readable time or record, then the spot
    # optimizer's temporary +1 (2 -> 3) over it
    written_at = iso_z(fake_clock.now(), "microseconds")
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_entry(KEY_SYSTEM, f"HISTORY#{written_at}", written_at, shape),
    )
    fake_clock.advance(60)
    _spot_fallback_raises_system(member_eks, state_table, 2, fake_clock)
    # WHEN the evening schedule scales system and batch-spot down to 1
    result = scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "batch-spot", "desired_size": 1},
        ),
        "evening",
    )
    # THEN system alone is an error naming the entry by key and sort-key time, left at 3;
    # batch-spot is scaled down
    by_group = results_by_group(result)
    assert by_group["system"]["reason"] == (
        f"state record of {KEY_SYSTEM} at {written_at}: {problem}"
    )
    assert sizes(member_eks, "system")["desired_size"] == 3
    assert by_group["batch-spot"]["status"] == "scaling_initiated"


@pytest.mark.parametrize(
    ("saved", "problem"),
    [
        ({"sizes": None}, "sizes: is a NoneType, not an object of sizes"),
        (
            {"sizes": {"min_size": 1, "desired_size": "four", "max_size": 4}},
            "sizes: desired_size 'four' is not a node count",
        ),
        (
            {"sizes": {"min_size": 1, "desired_size": True, "max_size": 4}},
            "sizes: desired_size True is not a node count",
        ),
        (
            {"sizes": {"min_size": 1, "desired_size": 3.7, "max_size": 4}},
            "sizes: desired_size 3.7 is not a node count",
        ),
        (
            {"sizes": {"min_size": 1, "desired_size": -3, "max_size": 4}},
            "sizes: desired_size -3 is not a node count",
        ),
        (
            {"sizes": {"min_size": 1, "desired_size": 3, "max_size": 4}, "saved_at": None},
            "saved_at None is not a string",
        ),
    ],
    ids=["no-sizes", "size-text", "size-a-flag", "size-a-fraction", "size-negative", "no-saved-at"],
)
def test_saved_sizes_that_are_no_node_counts_fail_their_node_group_alone(
    scaler: Scaler, member_eks: Any, state_table: StateTable, saved: Any, problem: str
) -> None:
    # GIVEN system's saved sizes written with a field that is no node count or time (a hand
    # edit, corruption), and web's saved sizes (desired 5) waiting for the restore
    record = {"sizes": {"min_size": 1, "desired_size": 3, "max_size": 4}}
    record |= {"saved_at": "2025-06-01T15:30:00Z", "restored_at": None, "restored_by": None}
    state_table.put_value(KEY_SYSTEM, SAVED_SIZES_NAME, record | saved)
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    web_sizes = {"min_size": 2, "desired_size": 5, "max_size": 6}
    state_table.put_value(web_key, SAVED_SIZES_NAME, record | {"sizes": web_sizes})
    # WHEN the morning restore runs for both
    result = scaler(event("restore", {"name": "system"}, {"name": "web"}), "morning")
    # THEN system alone is an error naming the saved value and its bad field, is left as it was
    # (instead of a KeyError failing the whole request, or a flag restoring desired 1), and its
    # saved sizes are left for a person to mend; web is restored
    by_group = results_by_group(result)
    assert by_group["system"]["status"] == "error"
    assert by_group["system"]["reason"] == f"saved value previous_sizes of {KEY_SYSTEM}: {problem}"
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME) == record | saved
    assert by_group["web"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == 5


def test_a_node_group_eks_refuses_as_in_use_is_updating_and_its_retry_scales_it(
    scaler: Scaler, services: ScalerServices, member_eks: Any, state_table: StateTable
) -> None:
    # GIVEN system ACTIVE when read, but an update started meanwhile (an upgrade, or `pulumi up`
    # applying its min and max), so EKS refuses the scaler's UpdateNodegroupConfig with
    # ResourceInUseException after botocore's retry of a throttled first attempt
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    refusal = throttle_then_refuse(eks, "eks", "UpdateNodegroupConfig", "ResourceInUseException")
    evening = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        scheduled=True,
        request_id="schedule-scale_down-2025-06-02T03:30:00Z",
    )
    # WHEN the evening schedule's run is invoked
    # THEN system is `updating`, as when EKS is seen updating it, not an `error`: nothing
    # changed, nothing is saved for a restore, and the run fails for its retry
    with pytest.raises(ScheduledRunUnfinishedError, match=r"system: updating \(EKS refused"):
        scaler(evening, "inv-1")
    assert refusal.answered == 2
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert state_table.get_value(KEY_SYSTEM, SAVED_SIZES_NAME) is None
    assert state_table.latest_change(KEY_SYSTEM) is None
    # WHEN the update is over and the platform retries the run
    refusal.healed = True
    retried = scaler(evening, "inv-2")
    # THEN system is scaled then
    assert results_by_group(retried)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1


def test_a_friday_evening_run_delivered_after_midnight_is_judged_by_friday(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN Friday's 18:00 scale-down run (Asia/Kolkata, MON-FRI), delivered late: Lambda keeps
    # a throttled or failed asynchronous event for up to 6 hours, so it runs at 00:05 Saturday
    run = scheduled_attempt("scale_down", "2025-06-06T12:30:00Z", attempt=1)
    fake_clock.set(datetime.fromisoformat("2025-06-06T18:35:00+00:00"))
    # WHEN the scaler handles it
    result = scaler(run, "inv-late")
    # THEN it is Friday's run, which scales down, not a Saturday one the schedule never sends:
    # skipped, the cluster would keep its daytime size all weekend
    assert results_by_group(result)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1


def test_the_retry_of_a_run_left_open_does_not_undo_a_change_made_after_its_own(
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    alert_inbox: Any,
) -> None:
    # GIVEN the evening scale-down run lowering system (2 -> 1) while the spot optimizer holds
    # web's lock: web is `locked`, and the run stays open for its retry
    web_lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    assert state_table.acquire_lock(web_lock, "spot_optimizer:other", NODE_GROUP_LOCK_LEASE_SECONDS)
    run = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": 2},
        request_id="schedule-scale_down-2025-06-02T12:30:00Z",
    )
    first = results_by_group(scaler(run, "evening-1"))
    assert first["system"]["status"] == "scaling_initiated"
    assert first["web"]["status"] == "locked"
    assert len(alert_inbox.receive()) == 1
    # AND an operator raising system to 3 a minute later
    fake_clock.advance(60)
    scaler(event("scale_up", {"name": "system", "desired_size": 3}, request_id="ops-1"), "ops")
    assert len(alert_inbox.receive()) == 1
    # WHEN the run is retried once the lock is free and the operator's cooldown is over
    assert state_table.release_lock(web_lock, "spot_optimizer:other")
    fake_clock.advance(600)
    retried = results_by_group(scaler(run, "evening-2"))
    # THEN web is scaled down, but the operator's 3 stands, as it does against a repeat of a
    # completed run: lowered again, it would be a second change of the run whose notice, keyed
    # by the run, never goes out
    assert retried["web"]["status"] == "scaling_initiated"
    assert retried["system"]["status"] == "no_change_needed", retried["system"]
    assert "this request already changed it" in retried["system"]["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 3
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    assert titles == [f"{CLUSTER}/web scaled (scale_down): desired 3 -> 2"]


def test_a_request_id_used_again_after_it_is_forgotten_is_a_new_request_that_changes(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN system raised to 3 by request ops-1, then to 4 by request ops-2
    scaler(event("scale_up", {"name": "system", "desired_size": 3}, request_id="ops-1"), "a")
    fake_clock.advance(600)
    scaler(event("scale_up", {"name": "system", "desired_size": 4}, request_id="ops-2"), "b")
    # WHEN, three days later (the scaler remembers a request id for 48 hours), an operator uses
    # ops-1 again to lower system to 2
    fake_clock.advance(72 * 3600)
    result = scaler(event("scale_down", {"name": "system", "desired_size": 2}, request_id="ops-1"))
    # THEN it is a request of its own, not the retry of the first ops-1: system goes to 2
    assert results_by_group(result)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 2


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"prepared_at": "yesterday"}, "prepared_at 'yesterday' is not a time with a time zone"),
        ({"record": ["scale_down"]}, "record ['scale_down'] is not an object"),
        ({"new": {"desired_size": True}}, "record.new.desired_size True is not a node count"),
        ({"new": {"desired_size": 1.5}}, "record.new.desired_size 1.5 is not a node count"),
        ({"action": None}, "record.action None is not a string"),
        ({"notice": None}, "record.notice is not an object"),
    ],
    ids=["no-time", "record-a-list", "size-a-flag", "size-a-fraction", "no-action", "no-notice"],
)
def test_an_unreadable_change_intent_fails_its_node_group_alone(  # noqa: PLR0917 - pytest passes fixtures positionally
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    change: dict[str, Any],
    problem: str,
) -> None:
    # GIVEN system's change intent (another request's, saved before an update) that a hand
    # edit or corruption left with a field no intent has
    record = {
        "action": "scale_up",
        "previous": {"min_size": 1, "desired_size": 2, "max_size": 4},
        "new": {"min_size": 1, "desired_size": 3, "max_size": 4},
        "request_id": "other",
        "notice": {"key": "k", "alert": {}},
    }
    record |= {field: value for field, value in change.items() if field in record}
    intent = {"prepared_at": iso_z(fake_clock.now(), "microseconds"), "record": record}
    intent |= {field: value for field, value in change.items() if field in intent}
    state_table.put_value(KEY_SYSTEM, INTENT_NAME, intent)
    fake_clock.advance(3600)
    # WHEN a request scales system and batch-spot down to 1
    result = _scale_down_system_and_batch_spot(scaler)
    # THEN system alone is an error naming the intent and its bad field, left as it was
    # (instead of a KeyError or ValueError failing the whole request); batch-spot is scaled down
    by_group = results_by_group(result)
    assert by_group["system"]["status"] == "error"
    assert by_group["system"]["reason"] == f"saved value change_intent of {KEY_SYSTEM}: {problem}"
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert by_group["batch-spot"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1
