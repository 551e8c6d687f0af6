"""The scheduled cleanup across member accounts: notice, deletion, sparing, dry run, bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import BotoCoreError

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import InventoryUnreadableError
from fleet_shared.state_table import StateTable
from handlers.cleanup_manager import cleanup
from handlers.cleanup_manager.candidates import MARK_TAG_PREFIX, mark_tag
from handlers.cleanup_manager.cleanup import (
    AFTER_TARGETS_SECONDS,
    ANNOUNCED,
    DELETING,
    EARLIER_NOTICE,
    CleanupServices,
    TargetResult,
    announce_marks,
    announced_key,
    state_key,
)
from handlers.cleanup_manager.lambda_marks import LAMBDA_MARKS, read_marks, save_marks
from tests.handlers.cleanup_manager.conftest import on_every_session
from tests.handlers.cleanup_manager.support import (
    LONG_FUNCTION_NAME,
    MARK_TAG,
    actions_of,
    create_function_with_versions,
    create_lambda_function,
    create_snapshot,
    function_with_thousands_of_versions,
    notices_received,
    published_versions,
    snapshots_in,
    tags_of,
    unlisted_kinds,
    volumes_in,
)
from tests.handlers.conftest import STATE_TABLE_NAME, FakeLambdaContext
from tests.handlers.deadlines import (
    LambdaTime,
    draw_longest_botocore_waits,
    hang_every_attempt,
    killed_while_publishing_then_retried,
)
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    InjectedFault,
    fail_every_attempt,
    lose_first_answer,
    refuse_every_ec2_attempt,
    throttle_just_before_timeout,
)
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_A,
    MEMBER_B,
    REGION,
    create_volume,
    member_session,
)
from tests.handlers.member_targets import (
    DRY_RUN_SWITCHES,
    dry_run_event,
    hang_member_a_endpoints,
    inventory_unreadable,
    target_of,
    time_for_member_a_with_its_endpoints_hung,
)
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def member_a(mocked_aws: None) -> dict[str, Any]:
    """Member A: one stale snapshot of each sort, an unattached and an attached volume.

    Every snapshot is created from a throw-away volume, which is itself unattached.
    """
    ec2 = member_session(MEMBER_A).client("ec2")
    instance_id = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    image_id = ec2.create_image(InstanceId=instance_id, Name="golden")["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    attached = create_volume(ec2)
    ec2.attach_volume(VolumeId=attached, InstanceId=instance_id, Device="/dev/sdf")
    return {
        "ec2": ec2,
        "stale": create_snapshot(ec2),
        "later_kept": create_snapshot(ec2),
        "kept": create_snapshot(ec2, keep="true"),
        "ami": image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"],
        "unattached": create_volume(ec2),
        "attached": attached,
    }


def test_first_run_marks_candidates_in_each_member_alerts_per_account_and_isolates_denied(
    cleaner: Invoke, member_a: dict[str, Any], alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN member A with stale, kept, AMI-backed snapshots and volumes, member B with one stale
    # snapshot, a stale snapshot in the hub (not a member) and a member that denies AssumeRole
    ec2_a = member_a["ec2"]
    ec2_b = member_session(MEMBER_B).client("ec2")
    stale_b = create_snapshot(ec2_b)
    hub_ec2 = boto3.client("ec2", region_name=REGION)
    hub_snapshot = create_snapshot(hub_ec2)
    # WHEN the schedule runs 40 days later
    result = cleaner({"action": "cleanup"})
    # THEN candidates are marked with today + 7 days, in their own account only
    delete_after = (future_clock.now().date() + timedelta(days=7)).isoformat()
    assert result["status"] == "partial"
    assert target_of(result, DENIED_MEMBER)["status"] == "denied"
    actions_a = actions_of(target_of(result, MEMBER_A))
    assert actions_a[member_a["stale"]] == "mark"
    assert actions_a[member_a["unattached"]] == "mark"
    for skipped in ("kept", "ami", "attached"):
        assert member_a[skipped] not in actions_a
    assert tags_of(ec2_a, member_a["stale"])[MARK_TAG] == delete_after
    assert tags_of(ec2_a, member_a["unattached"])[MARK_TAG] == delete_after
    assert MARK_TAG not in tags_of(ec2_a, member_a["kept"])
    assert MARK_TAG not in tags_of(ec2_a, member_a["ami"])
    assert tags_of(ec2_b, stale_b)[MARK_TAG] == delete_after
    assert MARK_TAG not in tags_of(hub_ec2, hub_snapshot)
    assert snapshots_in(ec2_a) >= {member_a["stale"], member_a["kept"]}
    # AND one warning alert per member account with new marks
    alerts = notices_received(alert_inbox)
    assert sorted(a.alert["account_id"] for a in alerts) == [MEMBER_A, MEMBER_B]
    assert {a.alert["severity"] for a in alerts} == {"warning"}
    assert (
        member_a["stale"]
        in next(a for a in alerts if a.alert["account_id"] == MEMBER_A).alert["detail"]
    )


def test_later_run_deletes_what_is_still_a_candidate_and_spares_what_no_longer_is(
    cleaner: Invoke, member_a: dict[str, Any], alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN a first run that marked A's stale snapshots and unattached volume
    ec2 = member_a["ec2"]
    cleaner({"action": "cleanup"})
    notices_received(alert_inbox)
    # WHEN, before the date, one snapshot is tagged keep and the volume gets attached
    ec2.create_tags(Resources=[member_a["later_kept"]], Tags=[{"Key": "keep", "Value": "true"}])
    instance_id = ec2.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
    ec2.attach_volume(VolumeId=member_a["unattached"], InstanceId=instance_id, Device="/dev/sdg")
    # AND a run happens before the notice has passed
    future_clock.advance(timedelta(days=3).total_seconds())
    early = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN nothing marked is deleted yet, and the resources no longer candidates are spared
    assert early["deleted"] == 0
    assert actions_of(early)[member_a["stale"]] == "pending"
    assert actions_of(early)[member_a["later_kept"]] == "spare"
    assert actions_of(early)[member_a["unattached"]] == "spare"
    assert MARK_TAG not in tags_of(ec2, member_a["later_kept"])
    assert MARK_TAG not in tags_of(ec2, member_a["unattached"])
    # WHEN the schedule runs once the notice has passed
    future_clock.advance(timedelta(days=5).total_seconds())
    late = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the snapshot still a candidate is deleted, the spared ones remain
    assert actions_of(late)[member_a["stale"]] == "delete"
    remaining = snapshots_in(ec2)
    assert member_a["stale"] not in remaining
    assert {member_a["later_kept"], member_a["kept"], member_a["ami"]} <= remaining
    assert member_a["unattached"] in volumes_in(ec2)
    assert late["failed"] == 0


def test_an_unreadable_mark_on_a_resource_that_is_no_candidate_is_removed(
    cleaner: Invoke, member_a: dict[str, Any], alert_inbox: Any
) -> None:
    # GIVEN a kept snapshot and the attached volume, both carrying a mark that is not a date
    # (edited by hand, or written by another tool)
    ec2 = member_a["ec2"]
    for resource_id in (member_a["kept"], member_a["attached"]):
        ec2.create_tags(Resources=[resource_id], Tags=[{"Key": MARK_TAG, "Value": "soon"}])
    # WHEN the cleanup runs
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN neither is a candidate, so their marks are removed, as any mark on a non-candidate is
    assert actions_of(target)[member_a["kept"]] == "spare"
    assert actions_of(target)[member_a["attached"]] == "spare"
    assert MARK_TAG not in tags_of(ec2, member_a["kept"])
    assert MARK_TAG not in tags_of(ec2, member_a["attached"])


def test_one_stacks_cleanup_never_counts_lifts_or_deletes_on_another_stacks_mark(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the prod stack's cleanup, sharing member A with dev, marked A's stale snapshot and
    # unattached volume and announced their deletion
    ec2 = member_a["ec2"]
    monkeypatch.setenv("STACK_NAME", "prod")
    cleaner({"action": "cleanup"})
    prod_marks = {
        resource: tags_of(ec2, member_a[resource])[mark_tag("prod")]
        for resource in ("stale", "unattached")
    }
    # AND prod's mark, and an earlier version's mark naming no stack, on the kept snapshot
    ec2.create_tags(
        Resources=[member_a["kept"]],
        Tags=[
            {"Key": mark_tag("prod"), "Value": "2020-01-01"},
            {"Key": MARK_TAG_PREFIX, "Value": "2020-01-01"},
        ],
    )
    # WHEN dev's cleanup runs on prod's date
    monkeypatch.setenv("STACK_NAME", "dev")
    future_clock.advance(timedelta(days=7).total_seconds())
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN it deletes nothing: it marks the candidates with its own mark, for its own notice
    assert target["deleted"] == 0
    assert member_a["stale"] in snapshots_in(ec2)
    assert member_a["unattached"] in volumes_in(ec2)
    for resource, prod_mark in prod_marks.items():
        assert actions_of(target)[member_a[resource]] == "mark"
        tags = tags_of(ec2, member_a[resource])
        assert MARK_TAG in tags
        # AND leaves prod's marks as prod made them
        assert tags[mark_tag("prod")] == prod_mark
    # AND neither lifts nor reports the marks on the kept snapshot that are not its own
    assert member_a["kept"] not in actions_of(target)
    assert {mark_tag("prod"), MARK_TAG_PREFIX} <= set(tags_of(ec2, member_a["kept"]))


def test_notice_sns_refuses_fails_the_run_and_its_retry_sends_it_once_without_marking_again(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    built_services: list[CleanupServices],
    future_clock: ManualClock,
) -> None:
    # GIVEN candidates in member A and the hub's SNS failing on every attempt (a dry run first
    # builds the services whose SNS client the fault is injected into; it changes nothing)
    cleaner({"action": "cleanup", "dry_run": True})
    fault = fail_every_attempt(built_services[0].hub_client("sns"), "sns", "Publish")
    # WHEN the schedule runs
    with pytest.raises(AlertNotDeliveredError):
        cleaner({"action": "cleanup"})
    # THEN the candidates are marked all the same, and no notice reached the topics
    delete_after = (future_clock.now().date() + timedelta(days=7)).isoformat()
    assert tags_of(member_a["ec2"], member_a["stale"])[MARK_TAG] == delete_after
    assert fault.attempts > 1
    assert notices_received(alert_inbox) == []
    # WHEN the platform retries the run a minute later, SNS healthy again
    fault.healed = True
    future_clock.advance(60)
    retried = cleaner({"action": "cleanup"})
    # THEN the marks are found pending (not marked again) and the notice goes out once
    assert actions_of(target_of(retried, MEMBER_A))[member_a["stale"]] == "pending"
    assert retried["marked"] == 0
    [notice] = notices_received(alert_inbox)
    assert notice.alert["account_id"] == MEMBER_A
    assert member_a["stale"] in notice.alert["detail"]
    assert delete_after in notice.alert["title"]
    # WHEN the next day's run finds the same marks pending
    future_clock.advance(timedelta(days=1).total_seconds())
    next_day = cleaner({"action": "cleanup"})
    # THEN the notice is not sent again
    assert next_day["alerts"] == 0
    assert notices_received(alert_inbox) == []


def test_a_notice_that_went_out_late_still_gives_its_whole_notice_before_the_deletion(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    built_services: list[CleanupServices],
    future_clock: ManualClock,
) -> None:
    # GIVEN candidates in member A (snapshots, a volume, an old Lambda version) marked for
    # deletion 7 days on, and the hub's SNS failing on every attempt for the first 3 days (a dry
    # run first builds the services whose SNS client the fault is injected into)
    ec2 = member_a["ec2"]
    functions = create_lambda_function(member_session(MEMBER_A), "orders", versions=4)
    marked_on = future_clock.now().date()
    cleaner({"action": "cleanup", "dry_run": True})
    fault = fail_every_attempt(built_services[0].hub_client("sns"), "sns", "Publish")
    for _ in range(3):
        with pytest.raises(AlertNotDeliveredError):
            cleaner({"action": "cleanup"})
        future_clock.advance(timedelta(days=1).total_seconds())
    assert notices_received(alert_inbox) == []
    # WHEN SNS is healthy again on day 3, so the notice goes out 4 days before the mark's date
    fault.healed = True
    cleaner({"action": "cleanup"})
    [late_notice] = notices_received(alert_inbox)
    assert (marked_on + timedelta(days=7)).isoformat() in late_notice.alert["title"]
    # AND a dry run happens on the mark's date, day 7
    future_clock.advance(timedelta(days=4).total_seconds())
    postponed_to = (marked_on + timedelta(days=10)).isoformat()
    dry_run = target_of(cleaner({"action": "cleanup", "dry_run": True}), MEMBER_A)
    # THEN it reports the postponement and changes nothing: no tag, no alert, no record of when
    # the postponed deletion was first announced
    assert dry_run["deleted"] == 0
    assert {entry.get("delete_after") for entry in dry_run["actions"]} == {postponed_to}
    assert tags_of(ec2, member_a["stale"])[MARK_TAG] == (marked_on + timedelta(days=7)).isoformat()
    assert notices_received(alert_inbox) == []
    earlier_notices = built_services[0].state.values_named(
        announced_key(MEMBER_A, postponed_to), f"{ANNOUNCED}#{EARLIER_NOTICE}"
    )
    assert earlier_notices == {}
    # WHEN the schedule runs on day 7
    day_7 = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN nothing is deleted: the deletion is postponed to 7 days after the notice went out,
    # the mark carries that date, and a notice gives it
    assert day_7["deleted"] == 0
    assert member_a["stale"] in snapshots_in(ec2)
    assert member_a["unattached"] in volumes_in(ec2)
    assert "1" in published_versions(functions, "orders")
    [stale_entry] = [entry for entry in day_7["actions"] if entry["id"] == member_a["stale"]]
    assert stale_entry["delete_after"] == postponed_to
    assert tags_of(ec2, member_a["stale"])[MARK_TAG] == postponed_to
    [postponement_notice] = notices_received(alert_inbox)
    assert postponed_to in postponement_notice.alert["title"]
    assert member_a["stale"] in postponement_notice.alert["detail"]
    # WHEN the schedule runs on day 9
    future_clock.advance(timedelta(days=2).total_seconds())
    day_9 = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the resources are still pending, and the notice is not sent again
    assert actions_of(day_9)[member_a["stale"]] == "pending"
    assert member_a["stale"] in snapshots_in(ec2)
    assert notices_received(alert_inbox) == []
    # WHEN the schedule runs on day 10, 7 days after the notice went out
    future_clock.advance(timedelta(days=1).total_seconds())
    day_10 = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the resources are deleted
    assert actions_of(day_10)[member_a["stale"]] == "delete"
    assert actions_of(day_10)[member_a["unattached"]] == "delete"
    assert actions_of(day_10)["orders:1"] == "delete"
    assert member_a["stale"] not in snapshots_in(ec2)
    assert member_a["unattached"] not in volumes_in(ec2)


def test_a_resource_whose_notice_never_went_out_is_never_deleted(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    built_services: list[CleanupServices],
    future_clock: ManualClock,
) -> None:
    # GIVEN candidates in member A marked, and the hub's SNS failing on every attempt
    ec2 = member_a["ec2"]
    cleaner({"action": "cleanup", "dry_run": True})
    fail_every_attempt(built_services[0].hub_client("sns"), "sns", "Publish")
    with pytest.raises(AlertNotDeliveredError):
        cleaner({"action": "cleanup"})
    # WHEN the schedule runs on the mark's date and after it, SNS still failing
    for _ in range(2):
        future_clock.advance(timedelta(days=7).total_seconds())
        with pytest.raises(AlertNotDeliveredError):
            cleaner({"action": "cleanup"})
    # THEN nothing was deleted and no notice went out
    assert member_a["stale"] in snapshots_in(ec2)
    assert member_a["unattached"] in volumes_in(ec2)
    assert notices_received(alert_inbox) == []


def test_a_deletion_an_earlier_version_announced_without_its_date_gets_a_whole_notice_more(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    future_clock: ManualClock,
    state_table: StateTable,
) -> None:
    # GIVEN member A's stale snapshot marked for today, its deletion announced by an earlier
    # version, whose record does not say when the notice went out
    ec2 = member_a["ec2"]
    today = future_clock.now().date()
    ec2.create_tags(
        Resources=[member_a["stale"]], Tags=[{"Key": MARK_TAG, "Value": today.isoformat()}]
    )
    entry = f"{REGION} snapshot {member_a['stale']}"
    state_table.put_value(
        announced_key(MEMBER_A, today.isoformat()),
        ANNOUNCED,
        {"resources": [entry], DELETING: [entry]},
    )
    # WHEN the schedule runs today
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the snapshot is not deleted: its mark moves a whole notice on, and a notice says so
    week_on = (today + timedelta(days=7)).isoformat()
    assert actions_of(first)[member_a["stale"]] == "mark"
    assert member_a["stale"] in snapshots_in(ec2)
    assert tags_of(ec2, member_a["stale"])[MARK_TAG] == week_on
    [notice] = notices_received(alert_inbox)
    assert member_a["stale"] in notice.alert["detail"]
    assert week_on in notice.alert["title"]
    # WHEN the schedule runs on that date
    future_clock.advance(timedelta(days=7).total_seconds())
    later = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the snapshot is deleted
    assert actions_of(later)[member_a["stale"]] == "delete"
    assert member_a["stale"] not in snapshots_in(ec2)


def test_a_run_killed_while_sns_hangs_is_announced_once_by_the_platforms_retry(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    alert_inbox: Any,
    built_services: list[CleanupServices],
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN candidates in member A (a dry run first builds the services whose SNS client the
    # hang is injected into; it changes nothing), and targets that start with the killed run's
    # 45 s, its member endpoints answering (their bound when they hang, and the time they keep
    # for the notices, are not at stake here)
    monkeypatch.setattr(cleanup, "TARGET_RESERVE_SECONDS", 0)
    cleaner({"action": "cleanup", "dry_run": True})
    # WHEN SNS never answers the run's notice, so Lambda kills the run at its deadline after
    # marking, and retries it a minute later
    retried = killed_while_publishing_then_retried(
        built_services[0].hub_client("sns"),
        future_clock,
        lambda context: cleaner({"action": "cleanup"}, context),
    )
    # THEN the retry is not refused by the killed run's claim: the marks are found pending and
    # the notice goes out once
    assert actions_of(target_of(retried, MEMBER_A))[member_a["stale"]] == "pending"
    [notice] = notices_received(alert_inbox)
    assert member_a["stale"] in notice.alert["detail"]


@pytest.fixture
def one_target_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")


@dataclass(frozen=True)
class TimeForOneTarget(FakeLambdaContext):
    """A Lambda context with time for the first target only: 400 s left until a target of the
    invocation finished, then what a target leaves at the least, the time for settling and
    the notices (a target asks the time left before each step, not once)."""

    finished: list[str] = field(default_factory=list)

    def get_remaining_time_in_millis(self) -> int:
        return (AFTER_TARGETS_SECONDS + 1) * 1000 if self.finished else 400_000


@pytest.fixture
def time_for_one_target(monkeypatch: pytest.MonkeyPatch) -> Callable[[], TimeForOneTarget]:
    """A new TimeForOneTarget per call, for the invocation given it (the targets that finish are
    counted for the latest one)."""
    finished: list[str] = []
    clean_target = cleanup.clean_target

    def counted(*arguments: Any, **keywords: Any) -> Any:
        result = clean_target(*arguments, **keywords)
        finished.append(result.account_id)
        return result

    monkeypatch.setattr(cleanup, "clean_target", counted)

    def context() -> TimeForOneTarget:
        finished.clear()
        return TimeForOneTarget(finished=finished)

    return context


@pytest.fixture
def stale_in_member_b(mocked_aws: None) -> tuple[Any, str]:
    """Member B's EC2 client and a stale snapshot in member B, second in the inventory."""
    ec2_b = member_session(MEMBER_B).client("ec2")
    return ec2_b, create_snapshot(ec2_b)


@pytest.mark.usefixtures("one_target_at_a_time")
def test_targets_left_without_time_are_not_started_and_the_run_is_partial(
    cleaner: Invoke,
    time_for_one_target: Callable[[], TimeForOneTarget],
    member_a: dict[str, Any],
    alert_inbox: Any,
    stale_in_member_b: tuple[Any, str],
) -> None:
    # GIVEN one target at a time, and an invocation with time for the first target only
    ec2_b, stale_b = stale_in_member_b
    # WHEN the schedule runs
    result = cleaner({"action": "cleanup"}, time_for_one_target())
    # THEN member A is cleaned, the others are not started, and the run is partial, naming them
    assert actions_of(target_of(result, MEMBER_A))[member_a["stale"]] == "mark"
    assert result["status"] == "partial"
    assert result["not_started"] == [
        {"account_id": MEMBER_B, "region": REGION},
        {"account_id": DENIED_MEMBER, "region": REGION},
    ]
    assert target_of(result, MEMBER_B)["status"] == "not_started"
    assert MARK_TAG not in tags_of(ec2_b, stale_b)
    # AND only the cleaned account's notice went out
    assert [a.alert["account_id"] for a in notices_received(alert_inbox)] == [MEMBER_A]


@pytest.mark.usefixtures("one_target_at_a_time")
def test_targets_a_run_left_without_time_go_first_in_the_next_days_run(
    cleaner: Invoke,
    time_for_one_target: Callable[[], TimeForOneTarget],
    *,
    member_a: dict[str, Any],
    future_clock: ManualClock,
    state_table: StateTable,
    stale_in_member_b: tuple[Any, str],
) -> None:
    # GIVEN one target at a time, a fleet whose daily runs have time for one target only, and a
    # stale snapshot in member B, second in the inventory
    ec2_b, stale_b = stale_in_member_b
    first_day = cleaner({"action": "cleanup"}, time_for_one_target())
    assert target_of(first_day, MEMBER_B)["status"] == "not_started"
    # WHEN the next day's run has time for one target again
    future_clock.advance(timedelta(days=1).total_seconds())
    second_day = cleaner({"action": "cleanup"}, time_for_one_target())
    # THEN it starts with member B, left by the first day's run, and marks its stale snapshot;
    # member A, cleaned the day before, waits for the next run, and the targets are reported in
    # inventory order
    assert target_of(second_day, MEMBER_B)["status"] == "ok", second_day
    assert MARK_TAG in tags_of(ec2_b, stale_b)
    assert second_day["not_started"] == [
        {"account_id": MEMBER_A, "region": REGION},
        {"account_id": DENIED_MEMBER, "region": REGION},
    ]
    assert [t["account_id"] for t in second_day["targets"]] == [MEMBER_A, MEMBER_B, DENIED_MEMBER]
    # AND the next run starts with those two, in the order this run came to them
    assert state_table.get_value("cleanup_manager/targets-not-started", "not_started") == {
        "targets": [
            {"account_id": DENIED_MEMBER, "region": REGION},
            {"account_id": MEMBER_A, "region": REGION},
        ]
    }


@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_dry_run_leaves_the_targets_left_for_the_next_run_as_they_are(
    cleaner: Invoke,
    time_for_one_target: Callable[[], TimeForOneTarget],
    member_a: dict[str, Any],
    state_table: StateTable,
) -> None:
    # GIVEN one target at a time, and a run that had time for member A only
    cleaner({"action": "cleanup"}, time_for_one_target())
    left = state_table.get_value("cleanup_manager/targets-not-started", "not_started")
    # WHEN a dry run with time for every target comes
    dry = cleaner({"action": "cleanup", "dry_run": True})
    # THEN it cleans every target but does not change what the next run starts with
    assert dry["not_started"] == []
    assert [t["account_id"] for t in dry["targets"]] == [MEMBER_A, MEMBER_B, DENIED_MEMBER]
    assert left == {
        "targets": [
            {"account_id": MEMBER_B, "region": REGION},
            {"account_id": DENIED_MEMBER, "region": REGION},
        ]
    }
    assert state_table.get_value("cleanup_manager/targets-not-started", "not_started") == left


def fail_every_state_write_holding(services: CleanupServices, part: bytes) -> InjectedFault:
    """The state table failing every attempt of the writes whose body holds `part`, until
    healed; the other writes go through."""
    return fail_every_attempt(
        services.hub_client("dynamodb"), "dynamodb", "PutItem", body_with=(part,)
    )


@pytest.mark.usefixtures("no_retry_waits")
def test_a_moved_mark_whose_first_notice_date_is_not_saved_is_deleted_later_never_sooner(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    built_services: list[CleanupServices],
    future_clock: ManualClock,
) -> None:
    # GIVEN member A's stale snapshot marked for day 7, its notice gone out late on day 1
    ec2 = member_a["ec2"]
    marked_on = future_clock.now().date()
    cleaner({"action": "cleanup", "dry_run": True})
    sns_fault = fail_every_attempt(built_services[0].hub_client("sns"), "sns", "Publish")
    with pytest.raises(AlertNotDeliveredError):
        cleaner({"action": "cleanup"})
    sns_fault.healed = True
    future_clock.advance(timedelta(days=1).total_seconds())
    cleaner({"action": "cleanup"})
    notices_received(alert_inbox)
    # AND the state table failing, on day 7, the write of when its deletion was first announced
    state_fault = fail_every_state_write_holding(built_services[0], EARLIER_NOTICE.encode())
    future_clock.advance(timedelta(days=6).total_seconds())
    # WHEN the schedule runs on day 7
    day_7 = cleaner({"action": "cleanup"})
    # THEN the mark is moved to day 8 all the same, and the failed write is reported
    assert tags_of(ec2, member_a["stale"])[MARK_TAG] == (marked_on + timedelta(days=8)).isoformat()
    assert state_fault.attempts > 0
    assert ANNOUNCED in {error["kind"] for error in target_of(day_7, MEMBER_A)["errors"]}
    # WHEN the state table is healthy again and the schedule runs on day 8
    state_fault.healed = True
    future_clock.advance(timedelta(days=1).total_seconds())
    day_8 = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the snapshot is not deleted before a whole notice after day 7's notice, day 14
    assert day_8["deleted"] == 0
    assert member_a["stale"] in snapshots_in(ec2)
    assert tags_of(ec2, member_a["stale"])[MARK_TAG] == (marked_on + timedelta(days=14)).isoformat()
    # WHEN the schedule runs on day 14
    future_clock.advance(timedelta(days=6).total_seconds())
    day_14 = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN it is deleted
    assert actions_of(day_14)[member_a["stale"]] == "delete"
    assert member_a["stale"] not in snapshots_in(ec2)


def orders_actions(target: dict[str, Any]) -> dict[str, str]:
    """What the cleanup did to the versions of function `orders`, in a target's result."""
    return {i: a for i, a in actions_of(target).items() if i.startswith("orders:")}


def orders_marked_a_week_ago(cleaner: Invoke, alert_inbox: Any, clock: ManualClock) -> Any:
    """Function `orders` in member A with 6 published versions, its old ones marked and announced
    by a run 7 days ago: their notice has run out. Member A's Lambda client."""
    client = create_lambda_function(member_session(MEMBER_A), "orders", versions=6)
    cleaner({"action": "cleanup"})
    notices_received(alert_inbox)
    clock.advance(timedelta(days=7).total_seconds())
    return client


def test_marks_of_a_function_deleted_and_created_again_are_not_taken_for_its_new_versions(
    cleaner: Invoke, alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN function orders of member A, its old versions marked and announced a notice ago,
    # then deleted and created again under its name with 6 new versions, numbered from 1 again
    client = orders_marked_a_week_ago(cleaner, alert_inbox, future_clock)
    role_arn = client.get_function(FunctionName="orders")["Configuration"]["Role"]
    client.delete_function(FunctionName="orders")
    create_function_with_versions(client, "orders", role_arn, versions=6)
    # WHEN the schedule runs on the marks' date
    target_a = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the new function's old versions are marked afresh, with a notice of their own, not
    # deleted on the marks and notice of the versions deleted with the old function
    assert orders_actions(target_a) == {
        "orders:1": "mark",
        "orders:2": "mark",
        "orders:3": "mark",
    }
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5", "6"}
    [notice] = notices_received(alert_inbox)
    assert "orders:1" in notice.alert["detail"]


def test_marks_an_earlier_version_saved_as_dates_alone_still_count(
    cleaner: Invoke, alert_inbox: Any, future_clock: ManualClock, state_table: StateTable
) -> None:
    # GIVEN function orders of member A, its old versions marked and announced a notice ago,
    # their marks saved as an earlier version of the function saved them: the date alone
    client = orders_marked_a_week_ago(cleaner, alert_inbox, future_clock)
    key = state_key(MEMBER_A, REGION)
    saved = read_marks(state_table, key)
    dates_alone = {version: mark.partition("@")[0] for version, mark in saved.marks.items()}
    save_marks(state_table, key, dates_alone, saved)
    # WHEN the schedule runs on the marks' date
    target_a = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the versions are deleted as announced, not marked afresh
    assert orders_actions(target_a) == {
        "orders:1": "delete",
        "orders:2": "delete",
        "orders:3": "delete",
    }
    assert published_versions(client, "orders") == {"4", "5", "6"}


def test_old_lambda_versions_get_notice_in_state_then_are_deleted_unless_aliased(
    cleaner: Invoke, alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN a function in member A with 6 published versions, version 2 behind an alias
    client = create_lambda_function(member_session(MEMBER_A), "orders", versions=6)
    client.create_alias(FunctionName="orders", Name="stable", FunctionVersion="2")
    # WHEN the first run happens
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the versions beyond the newest 3, except the aliased one, are marked, not deleted
    assert orders_actions(first) == {
        "orders:1": "mark",
        "orders:3": "mark",
    }
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5", "6"}
    # WHEN the alias moves to version 3 and the schedule runs after the notice
    client.update_alias(FunctionName="orders", Name="stable", FunctionVersion="3")
    future_clock.advance(timedelta(days=7).total_seconds())
    second = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN version 1 is deleted, version 3 (aliased since) is spared, version 2 is newly marked
    assert orders_actions(second) == {
        "orders:1": "delete",
        "orders:2": "mark",
        "orders:3": "spare",
    }
    assert published_versions(client, "orders") == {"2", "3", "4", "5", "6"}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param({"S": SECRET}, "its data is not JSON", id="no-json"),
        # A part count no run reaches the end of: it read parts until Lambda ended the run.
        pytest.param(
            {"S": '{"digest": "0", "parts": 1000000000}'},
            "it is no Lambda marks record",
            id="parts-never-saved",
        ),
        pytest.param(
            {"S": '{"digest": "0", "parts": "3"}'}, "it is no Lambda marks record", id="parts-text"
        ),
        pytest.param(
            {"S": f'{{"marks": {{"orders:1": ["{SECRET}"]}}}}'},
            "it is no Lambda marks record",
            id="a-mark-no-text",
        ),
    ],
)
def test_saved_lambda_marks_that_cannot_be_read_fail_that_kind_alone_and_the_run_goes_on(
    cleaner: Invoke,
    dynamodb_client: Any,
    future_clock: ManualClock,
    data: dict[str, str],
    problem: str,
) -> None:
    # GIVEN a function with old versions in member A, whose saved Lambda marks a hand edit made
    # no JSON, or JSON of another shape, and a stale snapshot in members A and B
    client = create_lambda_function(member_session(MEMBER_A), "orders", versions=6)
    key = state_key(MEMBER_A, REGION)
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME, Item=unreadable_value(key, LAMBDA_MARKS, data)
    )
    ec2_a, ec2_b = member_session(MEMBER_A).client("ec2"), member_session(MEMBER_B).client("ec2")
    stale_a, stale_b = create_snapshot(ec2_a), create_snapshot(ec2_b)
    # WHEN the schedule runs
    result = cleaner({"action": "cleanup"})
    # THEN member A's Lambda versions alone fail, naming the value, never its data, and nothing
    # of them changes
    member_a_result = target_of(result, MEMBER_A)
    assert member_a_result["status"] == "partial"
    assert unlisted_kinds(member_a_result) == {
        "lambda_versions": f"saved value {LAMBDA_MARKS} of {key}: {problem}"
    }
    assert SECRET not in str(result)
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5", "6"}
    saved = {"pk": {"S": f"STATE#{key}"}, "sk": {"S": f"VALUE#{LAMBDA_MARKS}"}}
    assert dynamodb_client.get_item(TableName=STATE_TABLE_NAME, Key=saved)["Item"]["data"] == data
    # AND member A's stale snapshot and member B's are marked
    assert MARK_TAG in tags_of(ec2_a, stale_a)
    assert MARK_TAG in tags_of(ec2_b, stale_b)


HAND_EDITED = f"{ANNOUNCED}#hand-edit"
"""An item of an announced-marks record a hand edit made no JSON."""


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param({"S": SECRET}, "its data is not JSON", id="no-json"),
        pytest.param(
            {"S": f'{{"resources": ["{SECRET}"], "published_on": "soon"}}'},
            "it is no announced-marks record (ValueError)",
            id="no-date",
        ),
    ],
)
def test_an_account_whose_notice_record_cannot_be_read_does_not_hold_back_the_others_notices(
    cleaner: Invoke, dynamodb_client: Any, alert_inbox: Any, data: dict[str, str], problem: str
) -> None:
    # GIVEN stale snapshots in members A and B, and member A's record of what was announced
    # for the date its marks will carry holding an item a hand edit made no JSON, or JSON
    # whose date is no date
    ec2_a = member_session(MEMBER_A).client("ec2")
    ec2_b = member_session(MEMBER_B).client("ec2")
    stale_a, stale_b = create_snapshot(ec2_a), create_snapshot(ec2_b)
    planned = target_of(cleaner({"action": "cleanup", "dry_run": True}), MEMBER_A)
    delete_after = next(e["delete_after"] for e in planned["actions"] if e["id"] == stale_a)
    key = announced_key(MEMBER_A, delete_after)
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME, Item=unreadable_value(key, HAND_EDITED, data)
    )
    # WHEN the schedule runs
    result = cleaner({"action": "cleanup"})
    # THEN member B's notice goes out; member A's is not sent, its target saying why without
    # the value, its snapshot marked all the same (the next run announces it once mended)
    assert [notice.alert["account_id"] for notice in notices_received(alert_inbox)] == [MEMBER_B]
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    assert {
        "kind": "notice",
        "id": f"{MEMBER_A}/{delete_after}",
        "error": f"saved value {HAND_EDITED} of {key}: {problem}",
    } in target_a["errors"]
    assert SECRET not in str(result)
    assert MARK_TAG in tags_of(ec2_a, stale_a)
    assert MARK_TAG in tags_of(ec2_b, stale_b)
    assert result["status"] == "partial"


def test_a_due_snapshot_whose_notice_record_cannot_be_read_is_kept_and_its_target_goes_on(
    cleaner: Invoke,
    dynamodb_client: Any,
    future_clock: ManualClock,
    cleanup_policy: Callable[[dict[str, Any]], None],
) -> None:
    # GIVEN member A's stale snapshot marked and announced a notice ago, whose record of what
    # was announced then holds an item a hand edit made no JSON, and a snapshot gone stale since
    cleanup_policy({"resources": ["snapshots"], "mode": "delete"})
    ec2 = member_session(MEMBER_A).client("ec2")
    due = create_snapshot(ec2)
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    delete_after = next(e["delete_after"] for e in first["actions"] if e["id"] == due)
    key = announced_key(MEMBER_A, delete_after)
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME, Item=unreadable_value(key, HAND_EDITED, {"S": SECRET})
    )
    fresh = create_snapshot(ec2)
    future_clock.advance(timedelta(days=7).total_seconds())
    # WHEN the schedule runs on the marks' date
    target_a = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the due snapshot is not deleted on doubt, listed under errors naming the record, and
    # the target goes on: the new stale snapshot is marked
    assert due in snapshots_in(ec2)
    assert {
        "kind": "snapshot",
        "id": due,
        "error": f"saved value {HAND_EDITED} of {key}: its data is not JSON",
    } in target_a["errors"]
    assert actions_of(target_a)[fresh] == "mark"
    assert target_a["status"] == "partial"


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize(
    ("service", "operation", "resource"),
    [
        pytest.param("ec2", "DeleteSnapshot", "stale", id="snapshot"),
        pytest.param("ec2", "DeleteVolume", "unattached", id="volume"),
        pytest.param("lambda", "DeleteFunction", "orders:1", id="lambda-version"),
    ],
)
def test_a_deletion_applied_whose_answer_was_lost_counts_as_deleted_on_botocores_retry(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[CleanupServices],
    future_clock: ManualClock,
    state_table: StateTable,
    service: str,
    operation: str,
    resource: str,
) -> None:
    # GIVEN member A's stale snapshot, unattached volume and an old version of `orders`, marked
    # and announced by a run a notice ago
    create_lambda_function(member_session(MEMBER_A), "orders", versions=4)
    cleaner({"action": "cleanup"})
    future_clock.advance(timedelta(days=7).total_seconds())
    # AND member A applying the first attempt of one deletion but its answer lost, so botocore
    # sends it again and is told the resource does not exist
    resource_id = member_a.get(resource, resource)
    member_client = built_services[0].member_client(service, MEMBER_A, REGION)
    # EC2 names the resource in the body; Lambda in the URL, and A has one function.
    in_body = (resource_id.encode(),) if service == "ec2" else ()
    lost = lose_first_answer(member_client, service, operation, body_with=in_body)
    # WHEN the run after the notice deletes it
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the deletion is reported as done, not as a failure, and no mark of it is kept
    assert lost.lost == 1
    assert actions_of(target)[resource_id] == "delete"
    assert target["failed"] == 0, target.get("errors")
    assert target["status"] == "ok"
    assert resource_id not in read_marks(state_table, state_key(MEMBER_A, REGION)).marks


def test_a_deletion_iam_refuses_keeps_its_mark_and_a_short_error_and_the_rest_goes_on(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[CleanupServices],
    future_clock: ManualClock,
) -> None:
    # GIVEN member A's stale snapshot and unattached volume, marked and announced a notice ago
    ec2 = member_a["ec2"]
    cleaner({"action": "cleanup"})
    future_clock.advance(timedelta(days=7).total_seconds())
    # AND member A refusing every DeleteSnapshot (a service control policy), its message a
    # proxy's page of 5,000 characters over several lines
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    refusal = refuse_every_ec2_attempt(member_ec2, "DeleteSnapshot", message=MULTI_LINE_PAGE)
    # WHEN the run after the notice acts
    result = cleaner({"action": "cleanup"})
    target = target_of(result, MEMBER_A)
    # THEN the snapshot is not deleted, keeps its mark for the next run, and its error is one
    # line, the page cut
    assert refusal.refused > 0
    assert member_a["stale"] not in actions_of(target)
    assert MARK_TAG in tags_of(ec2, member_a["stale"])
    [error] = [entry for entry in target["errors"] if entry["id"] == member_a["stale"]]
    assert "UnauthorizedOperation" in error["error"]
    assert "\n" not in error["error"] and len(error["error"]) < len(MULTI_LINE_PAGE)
    # AND the target's volume is deleted all the same, and member B is cleaned as usual
    assert actions_of(target)[member_a["unattached"]] == "delete"
    assert target_of(result, MEMBER_B)["status"] == "ok"


def test_a_lambda_version_an_event_source_mapping_invokes_is_never_marked(
    cleaner: Invoke, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function in member A with 6 published versions and an SQS event source mapping
    # that invokes version 2 (moto maps only unqualified functions, so its answer to
    # ListEventSourceMappings is qualified with version 2 on the way back, as Lambda answers for
    # a mapping created on `orders:2`)
    session = member_session(MEMBER_A)
    client = create_lambda_function(session, "orders", versions=6)
    sqs = session.client("sqs")
    queue = sqs.create_queue(QueueName="orders-in")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="orders")

    def on_version_2(parsed: dict[str, Any], **_: Any) -> None:
        for mapping in parsed.get("EventSourceMappings", []):
            mapping["FunctionArn"] = f"{mapping['FunctionArn']}:2"

    on_every_session(monkeypatch, "after-call.lambda.ListEventSourceMappings", on_version_2)
    # WHEN the cleanup runs
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN of the versions beyond the newest 3 only version 1 is marked: version 2 is invoked by
    # the mapping
    assert orders_actions(first) == {
        "orders:1": "mark",
        "orders:3": "mark",
    }


def test_a_lambda_version_holding_provisioned_concurrency_is_never_marked(
    cleaner: Invoke, alert_inbox: Any, provisioned_concurrency: dict[str, list[str]]
) -> None:
    # GIVEN a function in member A with 6 published versions, provisioned concurrency configured
    # on version 2 and on an alias (which keeps its own version through the alias)
    create_lambda_function(member_session(MEMBER_A), "orders", versions=6)
    provisioned_concurrency["orders"] = ["2", "live"]
    # WHEN the cleanup runs
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN of the versions beyond the newest 3 only versions 1 and 3 are marked: version 2 keeps
    # its provisioned concurrency
    assert orders_actions(first) == {
        "orders:1": "mark",
        "orders:3": "mark",
    }


def test_a_run_whose_version_marks_are_not_saved_still_reports_what_it_did(
    cleaner: Invoke,
    alert_inbox: Any,
    future_clock: ManualClock,
    built_services: list[CleanupServices],
) -> None:
    # GIVEN a function in member A with 6 published versions, its old ones marked a week ago
    client = orders_marked_a_week_ago(cleaner, alert_inbox, future_clock)
    # AND the state table refusing every attempt to save the version marks
    refused = fail_every_state_write_holding(built_services[0], b"lambda_marks")
    # WHEN the run deletes the versions whose notice ran out
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the deletions it made are in its result, which is partial, naming what was not saved
    assert published_versions(client, "orders") == {"4", "5", "6"}
    orders = orders_actions(target)
    assert orders == {"orders:1": "delete", "orders:2": "delete", "orders:3": "delete"}
    assert target["status"] == "partial"
    assert [error["kind"] for error in target["errors"]] == ["lambda_marks"]
    assert refused.attempts > 0


def test_a_run_whose_inventory_cannot_be_read_fails_so_the_platform_retries_it(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    built_services: list[CleanupServices],
) -> None:
    # GIVEN the data bucket answering every attempt to read the fleet inventory with an error
    failing_s3 = inventory_unreadable(cleaner, "cleanup", built_services)
    # WHEN the day's run comes
    # THEN the invocation fails (an error result would end the run as a success: no retry, no
    # dead-letter queue, no error alarm, and a day without cleanup), after botocore's retries
    with pytest.raises(InventoryUnreadableError, match="InternalError"):
        cleaner({"action": "cleanup"})
    assert failing_s3.attempts > 1
    assert MARK_TAG not in tags_of(member_a["ec2"], member_a["stale"])
    assert notices_received(alert_inbox) == []
    # WHEN S3 answers again and Lambda retries the run
    failing_s3.healed = True
    retried = cleaner({"action": "cleanup"})
    # THEN the day's cleanup is done
    assert actions_of(target_of(retried, MEMBER_A))[member_a["stale"]] == "mark"
    assert MARK_TAG in tags_of(member_a["ec2"], member_a["stale"])


@pytest.mark.parametrize("switch", DRY_RUN_SWITCHES)
def test_dry_run_reports_what_it_would_do_and_changes_nothing(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    switch: str,
) -> None:
    # GIVEN member A with candidates, and dry run asked by the event or by FLEET_DRY_RUN
    ec2 = member_a["ec2"]
    # WHEN the cleanup runs
    result = cleaner(dry_run_event("cleanup", switch, monkeypatch))
    # THEN it reports the marks it would set, but sets none and alerts nobody
    target = target_of(result, MEMBER_A)
    assert result["dry_run"] is True
    assert actions_of(target)[member_a["stale"]] == "mark"
    assert target["marked"] >= 2
    assert MARK_TAG not in tags_of(ec2, member_a["stale"])
    assert MARK_TAG not in tags_of(ec2, member_a["unattached"])
    assert notices_received(alert_inbox) == []


def test_dry_run_after_the_notice_deletes_nothing(
    cleaner: Invoke, member_a: dict[str, Any], alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN candidates marked by a real run, and the notice period over
    ec2 = member_a["ec2"]
    cleaner({"action": "cleanup"})
    future_clock.advance(timedelta(days=8).total_seconds())
    # WHEN a dry run happens
    target = target_of(cleaner({"action": "cleanup", "dry_run": True}), MEMBER_A)
    # THEN it reports the deletions it would make and the resources are still there
    assert actions_of(target)[member_a["stale"]] == "delete"
    assert member_a["stale"] in snapshots_in(ec2)
    assert member_a["unattached"] in volumes_in(ec2)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"action": "purge"}, "action"),
        ({"action": "cleanup", "dry_run": "yes"}, "dry_run"),
        ({"action": "cleanup", "force": True}, "force"),
        (["cleanup"], "event"),
    ],
)
def test_bad_input_is_an_error_naming_the_field_and_marks_nothing(
    cleaner: Invoke, member_a: dict[str, Any], alert_inbox: Any, event: Any, field: str
) -> None:
    # GIVEN member A with candidates
    # WHEN the handler gets an invalid event
    result = cleaner(event)
    # THEN the result names the field, and nothing was marked or alerted
    assert result["status"] == "error"
    assert field in result["error"]
    assert MARK_TAG not in tags_of(member_a["ec2"], member_a["stale"])
    assert notices_received(alert_inbox) == []


def test_a_resource_marked_later_the_same_day_in_the_same_region_gets_its_notice(
    cleaner: Invoke, member_a: dict[str, Any], alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN a run in the morning that marked A's candidates and announced them
    ec2 = member_a["ec2"]
    morning = future_clock.now().replace(hour=8, minute=0, second=0) + timedelta(days=1)
    future_clock.set(morning)
    cleaner({"action": "cleanup"})
    [first] = [a for a in notices_received(alert_inbox) if a.alert["account_id"] == MEMBER_A]
    assert member_a["kept"] not in first.alert["detail"]
    # WHEN, later the same day, the keep tag comes off a snapshot and the cleanup runs again
    ec2.delete_tags(Resources=[member_a["kept"]], Tags=[{"Key": "keep"}])
    future_clock.advance(timedelta(hours=2).total_seconds())
    second = cleaner({"action": "cleanup"})
    # THEN the snapshot is marked with the same date as the others
    delete_after = (future_clock.now().date() + timedelta(days=7)).isoformat()
    assert actions_of(target_of(second, MEMBER_A))[member_a["kept"]] == "mark"
    assert tags_of(ec2, member_a["kept"])[MARK_TAG] == delete_after
    # AND a notice names it before it can be deleted
    notices = [a for a in notices_received(alert_inbox) if a.alert["account_id"] == MEMBER_A]
    assert len(notices) == 1
    assert member_a["kept"] in notices[0].alert["detail"]


def test_a_mark_made_before_the_clocks_go_back_gets_its_whole_notice(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the daily cleanup at 19:00 in America/New_York, the stack's schedule time zone:
    # 23:00 UTC while daylight saving lasts, 00:00 UTC of the next day after 7 November 2027
    monkeypatch.setenv("SCHEDULE_TIME_ZONE", "America/New_York")
    new_york = ZoneInfo("America/New_York")
    # AND the Monday run before the change marked A's stale snapshot and announced it
    future_clock.set(datetime(2027, 11, 1, 19, 0, tzinfo=new_york))
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert actions_of(first)[member_a["stale"]] == "mark"
    assert tags_of(member_a["ec2"], member_a["stale"])[MARK_TAG] == "2027-11-08"
    notices_received(alert_inbox)
    # WHEN the run of the sixth day after, Sunday 7 November, comes
    future_clock.set(datetime(2027, 11, 7, 19, 0, tzinfo=new_york))
    sixth = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the snapshot is still pending: six days of the seven days' notice have passed (its
    # mark's UTC date was reached by that run's UTC date, and it was deleted a day early)
    assert actions_of(sixth)[member_a["stale"]] == "pending"
    assert member_a["stale"] in snapshots_in(member_a["ec2"])
    # AND the run of the seventh day deletes it
    future_clock.set(datetime(2027, 11, 8, 19, 0, tzinfo=new_york))
    seventh = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert actions_of(seventh)[member_a["stale"]] == "delete"
    assert member_a["stale"] not in snapshots_in(member_a["ec2"])


def test_a_notice_that_went_out_is_not_sent_again_when_a_region_drops_out(
    notices: Notices, alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN marks of member A with one date in two regions, announced by one notice
    first = [
        notices.snapshot_marks(["snap-1"], "mark"),
        notices.snapshot_marks(["snap-2"], "mark", region="eu-west-1"),
    ]
    assert notices.announce(*first) == 1
    notices_received(alert_inbox)
    # WHEN the next day's run finds the marks of one region only (the other one denied)
    future_clock.advance(timedelta(days=1).total_seconds())
    sent = notices.announce(notices.snapshot_marks(["snap-1"], "pending"))
    # THEN nothing is sent again
    assert sent == 0
    assert notices_received(alert_inbox) == []


def test_a_lambda_function_that_cannot_be_read_does_not_stop_the_rest_of_its_target(
    cleaner: Invoke,
    member_a: dict[str, Any],
    alert_inbox: Any,
    future_clock: ManualClock,
    built_services: list[CleanupServices],
) -> None:
    # GIVEN member A's stale snapshot and a function with 6 published versions, the old ones of
    # both marked by a run a week ago, their notice run out
    client = orders_marked_a_week_ago(cleaner, alert_inbox, future_clock)
    # AND listing the versions of "orders" failing on every attempt
    member_lambda = built_services[0].member_client("lambda", MEMBER_A, REGION)
    refused = fail_every_attempt(member_lambda, "lambda", "ListVersionsByFunction")

    def refuse_orders_only(request: Any, **kwargs: Any) -> None:
        if "/functions/orders/" in request.url:
            refused(request, **kwargs)

    member_lambda.meta.events.unregister("before-send.lambda.ListVersionsByFunction", refused)
    member_lambda.meta.events.register_first(
        "before-send.lambda.ListVersionsByFunction", refuse_orders_only
    )
    # WHEN the schedule runs
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the target's snapshots and volumes are still cleaned, the failure is named, partial
    assert target["status"] == "partial"
    assert actions_of(target)[member_a["stale"]] == "delete"
    assert member_a["stale"] not in snapshots_in(member_a["ec2"])
    assert [(e["kind"], e["id"]) for e in target["errors"]] == [("lambda_function", "orders")]
    # AND the versions of "orders" were neither deleted nor unmarked: the next run deletes them
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5", "6"}
    refused.healed = True
    retried = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert orders_actions(retried) == {
        "orders:1": "delete",
        "orders:2": "delete",
        "orders:3": "delete",
    }


def _functions_with_old_versions(session: boto3.Session, names: list[str]) -> None:
    """Functions `names` in the member of `session`, each with 5 published versions (2 beyond
    the 3 kept)."""
    for name in names:
        create_lambda_function(session, name, versions=5)


@pytest.mark.parametrize(
    ("service", "hung_call"),
    [
        pytest.param("ec2", "CreateTags", id="each-mark"),
        pytest.param("lambda", "ListVersionsByFunction", id="each-function"),
    ],
)
def test_a_member_whose_endpoint_never_answers_costs_the_run_one_bounded_call(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[CleanupServices],
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    hung_call: str,
) -> None:
    # GIVEN one target at a time, member A with stale snapshots, unattached volumes and three
    # functions with old versions, its `service` endpoint accepting `hung_call` but never
    # answering, member B with a stale snapshot, and a run with the function's whole 600 s
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    _functions_with_old_versions(member_session(MEMBER_A), ["orders", "billing", "search"])
    ec2_b = member_session(MEMBER_B).client("ec2")
    stale_b = create_snapshot(ec2_b)
    cleaner({"action": "cleanup", "dry_run": True})
    time = LambdaTime(600).spend_botocore_waits(monkeypatch)
    member_client = built_services[0].member_client(service, MEMBER_A, REGION)
    hung = hang_every_attempt(member_client, service, hung_call, time)
    # WHEN the day's run comes
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN Lambda did not end the run: member A's hung endpoint cost one call's few short
    # attempts (not one call per resource or function), each later call to it was not made and is
    # named, and member B was cleaned
    assert time.spent < 200, time.spent
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    first, *later = target_a["errors"]
    assert "Read timeout" in first["error"], first
    assert later
    assert all(error["error"].startswith(("not tried: ", "not read: ")) for error in later), later
    assert hung.attempts <= 6
    assert actions_of(target_of(result, MEMBER_B))[stale_b] == "mark"
    assert MARK_TAG in tags_of(ec2_b, stale_b)
    # AND the resources of member A's other service were still cleaned
    if service == "lambda":
        assert MARK_TAG in tags_of(member_a["ec2"], member_a["stale"])
    else:
        assert actions_of(target_a)["orders:1"] == "mark"


@pytest.mark.parametrize(
    ("service", "throttled_call"),
    [
        pytest.param("ec2", "CreateTags", id="each-mark"),
        pytest.param("lambda", "ListVersionsByFunction", id="each-function"),
    ],
)
def test_a_member_whose_endpoint_throttles_each_call_to_its_bound_costs_the_run_one_call(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[CleanupServices],
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    throttled_call: str,
) -> None:
    # GIVEN one target at a time, member A with stale snapshots, unattached volumes and three
    # functions with old versions, its `service` endpoint answering each attempt of
    # `throttled_call` with throttling as the attempt's 15 s of timeouts run out (a call ends at
    # its bound, 90 s of 92), botocore's waits drawn at their longest, member B with a stale
    # snapshot, and a run with the function's whole 600 s
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    draw_longest_botocore_waits(monkeypatch)
    _functions_with_old_versions(member_session(MEMBER_A), ["orders", "billing", "search"])
    ec2_b = member_session(MEMBER_B).client("ec2")
    stale_b = create_snapshot(ec2_b)
    cleaner({"action": "cleanup", "dry_run": True})
    time = LambdaTime(600).spend_botocore_waits(monkeypatch)
    member_client = built_services[0].member_client(service, MEMBER_A, REGION)
    throttling = throttle_just_before_timeout(member_client, service, throttled_call, time.spend)
    # WHEN the day's run comes
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN Lambda did not end the run: member A's endpoint cost one call run to its bound (not
    # one per resource or function), which gave it up as an unanswered call does, each later
    # call to it was not made and is named, and member B was cleaned
    assert (throttling.attempts, time.spent) == (5, 90)
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    first, *later = target_a["errors"]
    assert "not retried after 90.0 s" in first["error"], first
    assert later
    assert all(error["error"].startswith(("not tried: ", "not read: ")) for error in later), later
    assert actions_of(target_of(result, MEMBER_B))[stale_b] == "mark"
    assert MARK_TAG in tags_of(ec2_b, stale_b)


def test_a_lambda_endpoint_that_did_not_answer_a_listing_is_not_called_for_deletions(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[CleanupServices],
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN functions `orders` and `search` in member A whose old versions were marked and
    # announced a notice ago, and member A's Lambda endpoint now never answering the listing of
    # `search`'s versions, nor any DeleteFunction
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    _functions_with_old_versions(member_session(MEMBER_A), ["orders", "search"])
    cleaner({"action": "cleanup"})
    future_clock.advance(timedelta(days=7).total_seconds())
    time = LambdaTime(600).spend_botocore_waits(monkeypatch)
    member_lambda = built_services[0].member_client("lambda", MEMBER_A, REGION)
    hung = hang_every_attempt(member_lambda, "lambda", "DeleteFunction", time)

    def hang_listing_of_search(request: Any, **kwargs: Any) -> None:
        if "/functions/search/" in request.url:
            hung.hang(request, **kwargs)

    member_lambda.meta.events.register_first(
        "before-send.lambda.ListVersionsByFunction", hang_listing_of_search
    )
    # WHEN the run after the notice comes
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN the endpoint cost the target one call's attempts: `orders`' due versions, read before
    # it stopped answering, are reported as not tried instead of waiting as long again
    assert hung.attempts == 6, hung.attempts
    errors = {error["id"]: error["error"] for error in target_of(result, MEMBER_A)["errors"]}
    assert errors["orders:1"].startswith("not tried: Read timeout"), errors


def test_a_lambda_endpoint_that_did_not_answer_is_not_asked_for_the_listings_next_page(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[CleanupServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN member A's function listing in two pages, its Lambda endpoint answering the first page
    # and then no call
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    _functions_with_old_versions(member_session(MEMBER_A), ["orders", "search"])
    cleaner({"action": "cleanup", "dry_run": True})
    time = LambdaTime(600).spend_botocore_waits(monkeypatch)
    member_lambda = built_services[0].member_client("lambda", MEMBER_A, REGION)
    hung = hang_every_attempt(member_lambda, "lambda", "ListVersionsByFunction", time)
    pages: list[str] = []

    def second_page_hangs(request: Any, **kwargs: Any) -> None:
        pages.append(request.url)
        if len(pages) > 1:
            hung.hang(request, **kwargs)

    def one_more_page(parsed: dict[str, Any], **_: Any) -> None:
        parsed["NextMarker"] = "page-2"

    member_lambda.meta.events.register_first("before-send.lambda.ListFunctions", second_page_hangs)
    member_lambda.meta.events.register("after-call.lambda.ListFunctions", one_more_page)
    # WHEN the day's run comes
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN the endpoint cost the run one call's attempts: the second page was refused unsent and
    # the target's Lambda versions failed at once, naming the endpoint that did not answer
    assert hung.attempts == 6, hung.attempts
    assert len(pages) == 1, pages
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    assert "did not answer" in unlisted_kinds(target_a)["lambda_versions"], target_a


@pytest.mark.parametrize(
    ("seconds_left", "member_a_started"),
    # EC2, Auto Scaling and Lambda, and the settling and notices after the last target.
    time_for_member_a_with_its_endpoints_hung(3, AFTER_TARGETS_SECONDS),
)
def test_a_target_starts_only_with_time_for_its_budget_and_its_endpoints_hanging(
    cleaner: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[CleanupServices],
    monkeypatch: pytest.MonkeyPatch,
    seconds_left: int,
    member_a_started: bool,
) -> None:
    # GIVEN one target at a time, member A with stale snapshots and functions with old versions,
    # its EC2 and Lambda endpoints accepting CreateTags and ListVersionsByFunction but never
    # answering, and an invocation with `seconds_left`, more than CLEANUP_TARGET_SECONDS (30 s)
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    _functions_with_old_versions(member_session(MEMBER_A), ["orders", "billing"])
    cleaner({"action": "cleanup", "dry_run": True})
    time = LambdaTime(seconds_left).spend_botocore_waits(monkeypatch)
    hang_member_a_endpoints(
        built_services[0], time, ("ec2", "CreateTags"), ("lambda", "ListVersionsByFunction")
    )
    # WHEN the day's run comes
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN Lambda did not end the invocation: member A was started only with time for its hung
    # calls, and otherwise left for the next run untouched, the denied member last
    target_a = target_of(result, MEMBER_A)
    if member_a_started:
        # AND once its Lambda listing hung (its read timeouts spent), too little time was left
        # to act on the rest: its stale snapshot is listed as not tried
        assert target_a["status"] == "partial", target_a
        assert time.spent > 60, time.spent
        errors = {entry["id"]: entry["error"] for entry in target_a["errors"]}
        assert errors[member_a["stale"]] == "not tried: no time left in the invocation"
        assert MARK_TAG not in tags_of(member_a["ec2"], member_a["stale"])
    else:
        assert target_a["status"] == "not_started", target_a
        assert time.spent == 0
    assert result["not_started"][-1] == {"account_id": DENIED_MEMBER, "region": REGION}


def _describe_images_as_aws_does(ec2: Any) -> None:
    """DescribeImages leaves disabled AMIs out unless asked for them (`IncludeDisabled`), as
    EC2 documents; moto lists them all."""
    asked: dict[str, bool] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        asked["disabled"] = bool(params.get("IncludeDisabled"))

    def leave_out_disabled(parsed: dict[str, Any], **_: Any) -> None:
        if not asked.get("disabled"):
            parsed["Images"] = [i for i in parsed.get("Images", []) if i["State"] != "disabled"]

    ec2.meta.events.register("before-parameter-build.ec2.DescribeImages", remember)
    ec2.meta.events.register("after-call.ec2.DescribeImages", leave_out_disabled)


def test_a_snapshot_of_a_disabled_ami_is_never_a_candidate(
    cleaner: Invoke, member_a: dict[str, Any], built_services: list[CleanupServices]
) -> None:
    # GIVEN member A's AMI disabled (still registered, its snapshot still in use by it)
    ec2 = member_a["ec2"]
    [image] = ec2.describe_images(Owners=["self"])["Images"]
    ec2.disable_image(ImageId=image["ImageId"])
    cleaner({"action": "cleanup", "dry_run": True})
    _describe_images_as_aws_does(built_services[0].member_client("ec2", MEMBER_A, REGION))
    # WHEN the schedule runs
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the AMI's snapshot is neither marked nor announced
    assert member_a["ami"] not in actions_of(target)
    assert MARK_TAG not in tags_of(ec2, member_a["ami"])


@dataclass
class Notices:
    """Mark notices announced through `announce_marks` with the services a dry run of the cleanup
    built, marks dated a week from the test's clock."""

    services: CleanupServices
    delete_after: str

    def snapshot_marks(
        self,
        snapshot_ids: list[str],
        action: str,
        *,
        account_id: str = MEMBER_A,
        region: str = REGION,
    ) -> TargetResult:
        """The result of the target of `account_id` and `region` for `snapshot_ids`, each with
        `action` (`mark`, `pending`) for the notices' date."""
        return TargetResult(
            account_id,
            region,
            actions=[
                {
                    "kind": "snapshot",
                    "id": snapshot_id,
                    "action": action,
                    "reason": "45 days old",
                    "delete_after": self.delete_after,
                }
                for snapshot_id in snapshot_ids
            ],
        )

    def announce(self, *results: TargetResult) -> int:
        """`announce_marks` of `results`, with no deadline: how many notices went out."""
        return announce_marks(
            list(results), self.services, deadline=None, seconds_left=lambda: math.inf
        )

    def mark_stale_among_thousands(self, member_a: dict[str, Any]) -> list[str]:
        """Member A's stale snapshot tagged with the notices' date, and its id followed by those
        of 11999 others of the account: more digests than DynamoDB's 400 KB item holds."""
        member_a["ec2"].create_tags(
            Resources=[member_a["stale"]], Tags=[{"Key": MARK_TAG, "Value": self.delete_after}]
        )
        return [member_a["stale"], *(f"snap-{number:017x}" for number in range(11_999))]


@pytest.fixture
def notices(
    cleaner: Invoke, future_clock: ManualClock, built_services: list[CleanupServices]
) -> Notices:
    """Notices of marks dated a week from now, after a dry run built the services."""
    cleaner({"action": "cleanup", "dry_run": True})
    delete_after = (future_clock.now().date() + timedelta(days=7)).isoformat()
    return Notices(built_services[0], delete_after)


def assert_the_next_days_run_sends_nothing_again(
    notices: Notices, snapshot_ids: list[str], alert_inbox: Any, clock: ManualClock
) -> None:
    """The next day's run, finding the marks of `snapshot_ids` pending, sends no notice."""
    clock.advance(timedelta(days=1).total_seconds())
    assert notices.announce(notices.snapshot_marks(snapshot_ids, "pending")) == 0
    assert notices_received(alert_inbox) == []


def test_a_notice_of_thousands_of_marks_goes_out_once_and_is_recorded(
    notices: Notices, alert_inbox: Any, future_clock: ManualClock
) -> None:
    # GIVEN a run (delete mode) that marked 6000 stale snapshots of member A in one region
    snapshot_ids = [f"snap-{number:017x}" for number in range(6000)]
    # WHEN its notice is announced
    sent = notices.announce(notices.snapshot_marks(snapshot_ids, "mark"))
    # THEN the one notice went out (SNS takes at most 256 KB), with the count, the first
    # resources and how many more, and what it announced was recorded
    assert sent == 1
    [notice] = notices_received(alert_inbox)
    assert "6000 resources" in notice.alert["title"]
    assert snapshot_ids[0] in notice.alert["detail"]
    assert snapshot_ids[-1] not in notice.alert["detail"]
    assert "and 5900 more" in notice.alert["detail"]
    # WHEN the next day's run finds the same marks pending THEN nothing is sent again
    assert_the_next_days_run_sends_nothing_again(notices, snapshot_ids, alert_inbox, future_clock)


def test_marks_an_earlier_version_recorded_in_full_count_as_announced(
    notices: Notices, alert_inbox: Any
) -> None:
    # GIVEN a mark of member A announced for deletion by an earlier version, which recorded the
    # notice's entries in full
    entry = f"{REGION} snapshot snap-1"
    notices.services.state.put_value(
        announced_key(MEMBER_A, notices.delete_after),
        ANNOUNCED,
        {"resources": [entry], DELETING: [entry]},
    )
    # WHEN a run finds that mark pending
    sent = notices.announce(notices.snapshot_marks(["snap-1"], "pending"))
    # THEN it is not announced again
    assert sent == 0
    assert notices_received(alert_inbox) == []


def test_a_deletion_announced_among_more_marks_than_one_item_holds_is_carried_out(
    cleaner: Invoke,
    notices: Notices,
    member_a: dict[str, Any],
    alert_inbox: Any,
    future_clock: ManualClock,
) -> None:
    # GIVEN member A's stale snapshot marked in delete mode together with 11999 others of one
    # account and date: more digests than DynamoDB's 400 KB item holds
    snapshot_ids = notices.mark_stale_among_thousands(member_a)
    # WHEN their notice is announced
    sent = notices.announce(notices.snapshot_marks(snapshot_ids, "mark"))
    # THEN it goes out once, and the next day's run of the same marks sends nothing again
    assert sent == 1
    assert "12000 resources" in notices_received(alert_inbox)[0].alert["title"]
    assert_the_next_days_run_sends_nothing_again(notices, snapshot_ids, alert_inbox, future_clock)
    # WHEN the run on the mark's date comes
    future_clock.advance(timedelta(days=6).total_seconds())
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the announced snapshot is deleted
    assert actions_of(target)[member_a["stale"]] == "delete"
    assert member_a["stale"] not in snapshots_in(member_a["ec2"])


def test_a_notice_whose_record_was_written_in_part_is_not_sent_again_by_the_retry(
    cleaner: Invoke,
    notices: Notices,
    member_a: dict[str, Any],
    alert_inbox: Any,
    future_clock: ManualClock,
) -> None:
    # GIVEN member A's stale snapshot marked in delete mode with 11999 others (a record of
    # several items), and the state table refusing every attempt to write its second item
    marks = notices.snapshot_marks(notices.mark_stale_among_thousands(member_a), "mark")
    refused = fail_every_state_write_holding(notices.services, b'#000001"')
    # WHEN the notice is announced
    with pytest.raises(BotoCoreError):
        notices.announce(marks)
    # THEN it went out once, and the run failed for its retry
    assert len(notices_received(alert_inbox)) == 1
    assert refused.attempts > 0
    # WHEN the platform retries the run a minute later, the state table healthy again
    refused.healed = True
    future_clock.advance(60)
    # THEN the notice is not sent again
    assert notices.announce(marks) == 0
    assert notices_received(alert_inbox) == []
    # AND on the mark's date the announced snapshot is deleted
    future_clock.advance(timedelta(days=7).total_seconds())
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert actions_of(target)[member_a["stale"]] == "delete"
    assert member_a["stale"] not in snapshots_in(member_a["ec2"])


def test_more_marked_lambda_versions_than_one_item_holds_keep_their_marks_to_the_next_run(
    cleaner: Invoke,
    alert_inbox: Any,
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a function of member A with a 64-character name and 6000 published versions (as
    # ListVersionsByFunction answers): their marks take more than DynamoDB's 400 KB item
    function_with_thousands_of_versions(monkeypatch)
    # WHEN a first run marks the 5997 beyond the newest 3, and the next day's run comes
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    notices_received(alert_inbox)
    future_clock.advance(timedelta(days=1).total_seconds())
    next_day = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the first run saved the marks, and the next day finds each one pending, with the date
    # the notice announced
    assert "errors" not in first, first["errors"]
    versions = [entry for entry in next_day["actions"] if entry["kind"] == "lambda_version"]
    assert len(versions) == 5997
    assert {entry["action"] for entry in versions} == {"pending"}
    marked = {
        entry["delete_after"] for entry in first["actions"] if entry["kind"] == "lambda_version"
    }
    assert {entry["delete_after"] for entry in versions} == marked
    assert notices_received(alert_inbox) == []


def test_lambda_version_marks_an_earlier_version_saved_in_one_item_stay_in_force(
    cleaner: Invoke, future_clock: ManualClock, built_services: list[CleanupServices]
) -> None:
    # GIVEN a function of member A with 6 published versions, versions 1 and 2 marked by an
    # earlier version, which kept the marks themselves in the one value `lambda_marks`
    create_lambda_function(member_session(MEMBER_A), "orders", versions=6)
    cleaner({"action": "cleanup", "dry_run": True})
    earlier = (future_clock.now().date() + timedelta(days=3)).isoformat()
    built_services[0].state.put_value(
        f"cleanup_manager/{MEMBER_A}/{REGION}",
        "lambda_marks",
        {"marks": {"orders:1": earlier, "orders:2": earlier}},
    )
    # WHEN the schedule runs (marking version 3, so the marks are saved), and again the next day
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    future_clock.advance(timedelta(days=1).total_seconds())
    next_day = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the earlier marks stay in force with their date, beside the new one
    marked = (future_clock.now().date() + timedelta(days=6)).isoformat()

    def versions(target: dict[str, Any]) -> dict[str, tuple[str, str]]:
        return {
            entry["id"]: (entry["action"], entry["delete_after"])
            for entry in target["actions"]
            if entry["kind"] == "lambda_version"
        }

    assert versions(first) == {
        "orders:1": ("pending", earlier),
        "orders:2": ("pending", earlier),
        "orders:3": ("mark", marked),
    }
    assert versions(next_day) == {
        "orders:1": ("pending", earlier),
        "orders:2": ("pending", earlier),
        "orders:3": ("pending", marked),
    }


def test_lambda_version_marks_whose_save_fails_midway_leave_the_marks_read_before_in_force(
    cleaner: Invoke,
    alert_inbox: Any,
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    built_services: list[CleanupServices],
) -> None:
    # GIVEN 6000 published versions of a function of member A, the 5997 old ones marked and
    # their marks saved (in several items)
    published = function_with_thousands_of_versions(monkeypatch)
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    marked = {e["delete_after"] for e in first["actions"] if e["kind"] == "lambda_version"}
    # AND the next day a new version, which makes version 5998 a candidate, and the state table
    # refusing the save's last write (the value naming the new items)
    published.append({"Version": "6001"})
    future_clock.advance(timedelta(days=1).total_seconds())
    refused = fail_every_state_write_holding(built_services[0], b'"VALUE#lambda_marks"')
    # WHEN that day's run marks version 5998 and fails to save, and the run after it comes
    failed = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert [error["kind"] for error in failed["errors"]] == ["lambda_marks"]
    refused.healed = True
    future_clock.advance(timedelta(days=1).total_seconds())
    after = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the marks saved before are in force with their date, and version 5998, whose mark was
    # not saved, is marked again (later: nothing is deleted sooner than announced)
    versions = {e["id"]: e for e in after["actions"] if e["kind"] == "lambda_version"}
    assert versions.pop(f"{LONG_FUNCTION_NAME}:5998")["action"] == "mark"
    assert len(versions) == 5997
    assert {(e["action"], e["delete_after"]) for e in versions.values()} == {
        ("pending", marked.pop())
    }


def test_an_account_whose_announced_marks_cannot_be_read_does_not_hold_back_the_others(
    notices: Notices, alert_inbox: Any
) -> None:
    # GIVEN marks of members A and B, and the state table failing every attempt to read what
    # was announced for A
    marks = [
        notices.snapshot_marks([f"snap-{account_id}"], "mark", account_id=account_id)
        for account_id in (MEMBER_A, MEMBER_B)
    ]
    refused = fail_every_attempt(
        notices.services.hub_client("dynamodb"),
        "dynamodb",
        "Query",
        body_with=(f"notices/{MEMBER_A}/".encode(),),
    )
    # WHEN the marks are announced
    with pytest.raises(BotoCoreError):
        notices.announce(*marks)
    # THEN B's notice went out all the same, and the run failed for its retry
    assert [notice.alert["account_id"] for notice in notices_received(alert_inbox)] == [MEMBER_B]
    assert refused.attempts > 0
    # WHEN the retry comes, the state table healthy again
    refused.healed = True
    assert notices.announce(*marks) == 1
    # THEN A's notice goes out, and B's is not sent again
    assert [notice.alert["account_id"] for notice in notices_received(alert_inbox)] == [MEMBER_A]
