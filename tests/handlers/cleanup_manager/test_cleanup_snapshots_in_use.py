"""Snapshots another account, an AMI or a launch uses are never deleted: a snapshot shared with
another account or made public (its `createVolumePermission`), asked of each candidate alone, a
snapshot an AMI has come to use during its notice, and one any version of a launch template or
an Auto Scaling launch configuration names. A sharing that cannot be read keeps its
snapshot and is reported, and the other snapshots go on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from handlers.cleanup_manager.cleanup import CleanupServices
from tests.handlers.cleanup_manager.conftest import on_every_session
from tests.handlers.cleanup_manager.support import (
    MARK_TAG,
    actions_of,
    create_snapshot,
    register_image_from,
    share_snapshot,
    snapshots_in,
    tags_of,
    unlisted_kinds,
    volumes_in,
)
from tests.handlers.faults import answer_malformed, fail_every_attempt, refuse_every_ec2_attempt
from tests.handlers.member_accounts import MEMBER_A, REGION, member_session
from tests.handlers.member_targets import DRY_RUN_SWITCHES, dry_run_event, target_of

Invoke = Callable[..., dict[str, Any]]
SHARINGS = ["shared", "public"]


@pytest.fixture
def member_a_ec2(mocked_aws: None, alert_inbox: Any) -> Any:
    """Member A's EC2 client, as its engineers use it (the cleanup's alert topics in place)."""
    return member_session(MEMBER_A).client("ec2")


@pytest.fixture
def sharing_asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The snapshot of every DescribeSnapshotAttribute the cleanup sends, in order."""
    asked: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        asked.append(params["SnapshotId"])

    on_every_session(monkeypatch, "before-parameter-build.ec2.DescribeSnapshotAttribute", record)
    return asked


def _run_after(
    cleaner: Invoke, clock: ManualClock, days: int, event: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Member A's result of the cleanup run `days` after the clock's time (with `event`, else
    the schedule's)."""
    clock.advance(timedelta(days=days).total_seconds())
    return target_of(cleaner(event or {"action": "cleanup"}), MEMBER_A)


def test_a_shared_or_public_snapshot_is_never_marked_nor_deleted_and_is_counted_as_kept(
    cleaner: Invoke, future_clock: ManualClock, member_a_ec2: Any, sharing_asked: list[str]
) -> None:
    # GIVEN member A with a stale snapshot, one shared with another account, one public and one
    # tagged keep, under a deleting policy
    ec2 = member_a_ec2
    stale, shared, public = create_snapshot(ec2), create_snapshot(ec2), create_snapshot(ec2)
    kept = create_snapshot(ec2, keep="true")
    share_snapshot(ec2, shared, "shared")
    share_snapshot(ec2, public, "public")
    # WHEN the cleanup runs past the snapshot age, and again past the notice
    first = _run_after(cleaner, future_clock, 0)
    asked_first = Counter(sharing_asked)
    second = _run_after(cleaner, future_clock, 7)
    asked_second = Counter(sharing_asked) - asked_first
    # THEN the stale snapshot is marked, then deleted; the shared and the public one are never
    # marked nor deleted, and each run counts them as kept, saying why
    assert (actions_of(first)[stale], actions_of(second)[stale]) == ("mark", "delete")
    for target in (first, second):
        assert shared not in actions_of(target) and public not in actions_of(target)
        assert target["kept"] == {"shared": 1, "public": 1}
        assert target["status"] == "ok", target.get("errors")
    assert {shared, public, kept} <= snapshots_in(ec2)
    assert stale not in snapshots_in(ec2)
    assert MARK_TAG not in tags_of(ec2, shared) and MARK_TAG not in tags_of(ec2, public)
    # AND only candidates were asked for their sharing, once each: not the kept snapshot, and
    # the marked one not again until just before its deletion
    assert asked_first == {stale: 1, shared: 1, public: 1}
    assert asked_second == {stale: 1, shared: 1, public: 1}


@pytest.mark.parametrize("how", SHARINGS)
@pytest.mark.parametrize("switch", DRY_RUN_SWITCHES)
def test_a_snapshot_shared_during_its_notice_is_spared_and_a_dry_run_says_so_changing_nothing(
    cleaner: Invoke,
    future_clock: ManualClock,
    member_a_ec2: Any,
    *,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    switch: str,
) -> None:
    # GIVEN member A's stale snapshot, marked and announced by a run a notice ago, which an
    # engineer has since shared (another team's restore reads it)
    ec2 = member_a_ec2
    snapshot = create_snapshot(ec2)
    assert actions_of(_run_after(cleaner, future_clock, 0))[snapshot] == "mark"
    mark = tags_of(ec2, snapshot)[MARK_TAG]
    share_snapshot(ec2, snapshot, how)
    # WHEN a dry run goes past the notice
    with monkeypatch.context() as scoped:
        dry = _run_after(cleaner, future_clock, 7, dry_run_event("cleanup", switch, scoped))
    # THEN it reports the snapshot spared and kept, and changes nothing
    assert actions_of(dry)[snapshot] == "spare"
    assert dry["kept"] == {how: 1}
    assert tags_of(ec2, snapshot)[MARK_TAG] == mark
    # WHEN the real run follows
    real = _run_after(cleaner, future_clock, 0)
    # THEN it decides the same: the snapshot is spared, its mark lifted, and it is not deleted
    assert actions_of(real)[snapshot] == "spare"
    assert real["kept"] == {how: 1}
    assert MARK_TAG not in tags_of(ec2, snapshot)
    assert snapshot in snapshots_in(ec2)
    assert real["deleted"] == dry["deleted"]


def _sharing_unreadable(member_ec2: Any, unreadable: str, other: str, fault: str | bytes) -> None:
    """Make member A's EC2 fail, or answer what is not its answer, to every
    DescribeSnapshotAttribute of snapshot `unreadable` (`fault`: `refused`, `another` for
    snapshot `other`'s answer, else the permission list its answer holds)."""
    if fault == "refused":
        fail_every_attempt(
            member_ec2, "ec2", "DescribeSnapshotAttribute", body_with=(unreadable.encode(),)
        )
        return
    named = other if fault == "another" else unreadable
    permissions = b"<createVolumePermission/>" if fault == "another" else fault
    assert isinstance(permissions, bytes)
    body = (
        b'<DescribeSnapshotAttributeResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        b"<requestId>proxy</requestId><snapshotId>"
        + named.encode()
        + b"</snapshotId>"
        + permissions
        + b"</DescribeSnapshotAttributeResponse>"
    )
    answer_malformed(
        member_ec2, "ec2", "DescribeSnapshotAttribute", body, body_with=unreadable.encode()
    )


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize("stage", ["before-its-mark", "before-its-deletion"])
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("refused", id="every-attempt-failing"),
        pytest.param(b"", id="an-answer-without-its-permissions"),
        pytest.param(
            b"<createVolumePermission><item></item></createVolumePermission>",
            id="a-permission-naming-no-one",
        ),
        pytest.param("another", id="another-snapshots-answer"),
    ],
)
def test_a_snapshot_whose_sharing_cannot_be_read_is_kept_and_reported_and_the_others_go_on(
    cleaner: Invoke,
    future_clock: ManualClock,
    member_a_ec2: Any,
    built_services: list[CleanupServices],
    *,
    stage: str,
    fault: str | bytes,
) -> None:
    # GIVEN member A's two stale snapshots, about to be marked, or marked and announced by a
    # run a notice ago
    ec2 = member_a_ec2
    notice_days = 0
    if stage == "before-its-mark":
        _run_after(cleaner, future_clock, 0)
    unreadable, other = create_snapshot(ec2), create_snapshot(ec2)
    if stage == "before-its-deletion":
        first = _run_after(cleaner, future_clock, 0)
        assert (actions_of(first)[unreadable], actions_of(first)[other]) == ("mark", "mark")
        notice_days = 7
    tags_before = tags_of(ec2, unreadable)
    # AND member A's EC2 failing, or answering what is not its answer, to every
    # DescribeSnapshotAttribute of the first one
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    _sharing_unreadable(member_ec2, unreadable, other, fault)
    # WHEN the cleanup runs
    target = _run_after(cleaner, future_clock, notice_days)
    # THEN that snapshot is left as it was: neither marked, deleted nor spared
    assert unreadable in snapshots_in(ec2)
    assert unreadable not in actions_of(target)
    assert tags_of(ec2, unreadable) == tags_before
    # AND it is reported, in a short line (before its mark, as kept for its sharing not read)
    (error,) = [entry for entry in target["errors"] if entry["id"] == unreadable]
    assert error["kind"] == "snapshot"
    if stage == "before-its-mark":
        assert error["error"].startswith("sharing not read, kept: ")
    assert len(error["error"]) < 300
    assert target["status"] == "partial"
    # AND the other snapshot is marked, or deleted, all the same
    expected = "mark" if stage == "before-its-mark" else "delete"
    assert actions_of(target)[other] == expected


def test_a_snapshot_an_ami_was_registered_from_during_its_notice_is_spared_not_deleted(
    cleaner: Invoke, future_clock: ManualClock, member_a_ec2: Any
) -> None:
    # GIVEN member A's two stale snapshots, marked and announced by a run a notice ago, from
    # which an engineer has since registered an AMI (the first as its root device, the second
    # as a data volume, whose snapshot EC2 itself would let be deleted)
    ec2 = member_a_ec2
    root, data = create_snapshot(ec2), create_snapshot(ec2)
    first = _run_after(cleaner, future_clock, 0)
    assert (actions_of(first)[root], actions_of(first)[data]) == ("mark", "mark")
    register_image_from(ec2, root, data)
    # WHEN the run after the notice acts
    second = _run_after(cleaner, future_clock, 7)
    # THEN both are spared, their marks lifted, and neither is deleted nor failed
    assert (actions_of(second)[root], actions_of(second)[data]) == ("spare", "spare")
    assert {root, data} <= snapshots_in(ec2)
    assert MARK_TAG not in tags_of(ec2, root) and MARK_TAG not in tags_of(ec2, data)
    assert second["failed"] == 0, second.get("errors")


def _block_devices(snapshot_id: str) -> dict[str, Any]:
    """Launch template data whose second disk is restored from `snapshot_id`."""
    return {"BlockDeviceMappings": [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snapshot_id}}]}


def test_a_snapshot_a_launch_template_version_or_configuration_names_is_never_deleted(
    cleaner: Invoke, future_clock: ManualClock, member_a_ec2: Any
) -> None:
    # GIVEN member A's stale snapshots: one named by version 1 of a launch template (an Auto
    # Scaling group may still launch it) but not by its later version 2, one named by an Auto
    # Scaling launch configuration, one no template names yet, and a plain one
    ec2 = member_a_ec2
    in_old_version, in_configuration, named_later, plain = (create_snapshot(ec2) for _ in range(4))
    template_id = ec2.create_launch_template(
        LaunchTemplateName="workers", LaunchTemplateData=_block_devices(in_old_version)
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(
        LaunchTemplateId=template_id, LaunchTemplateData={"InstanceType": "m5.large"}
    )
    member_session(MEMBER_A).client("autoscaling").create_launch_configuration(
        LaunchConfigurationName="legacy-workers",
        ImageId="ami-12c6146b",
        InstanceType="m5.large",
        **_block_devices(in_configuration),
    )
    # WHEN the cleanup runs past the snapshot age
    first = _run_after(cleaner, future_clock, 0)
    # THEN the snapshots the template and the configuration name are not marked; the others are
    assert in_old_version not in actions_of(first)
    assert in_configuration not in actions_of(first)
    assert (actions_of(first)[named_later], actions_of(first)[plain]) == ("mark", "mark")
    # WHEN an engineer adds a template version naming the second one, and the run after the
    # notice acts
    ec2.create_launch_template_version(
        LaunchTemplateId=template_id, LaunchTemplateData=_block_devices(named_later)
    )
    second = _run_after(cleaner, future_clock, 7)
    # THEN it is spared for that template, its mark lifted, and only the plain one is deleted
    assert actions_of(second)[named_later] == "spare"
    reasons = {entry["id"]: entry["reason"] for entry in second["actions"]}
    assert reasons[named_later] == f"used by launch template {template_id}"
    assert MARK_TAG not in tags_of(ec2, named_later)
    assert actions_of(second)[plain] == "delete"
    assert {in_old_version, in_configuration, named_later} <= snapshots_in(ec2)
    assert second["failed"] == 0, second.get("errors")


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize(
    ("listing", "refused"),
    [
        pytest.param("DescribeSnapshots", False, id="snapshots-failing-every-attempt"),
        pytest.param("DescribeSnapshots", True, id="snapshots-refused"),
        pytest.param("DescribeLaunchTemplates", False, id="launch-templates-failing"),
        pytest.param("DescribeImages", True, id="images-refused"),
    ],
)
def test_a_failed_snapshot_listing_or_guard_deletes_no_snapshot_and_volumes_are_cleaned(
    cleaner: Invoke,
    future_clock: ManualClock,
    member_a_ec2: Any,
    built_services: list[CleanupServices],
    *,
    listing: str,
    refused: bool,
) -> None:
    # GIVEN member A's stale snapshot and its unattached throw-away volume, both marked and
    # announced by a run a notice ago
    ec2 = member_a_ec2
    snapshot = create_snapshot(ec2)
    [volume] = volumes_in(ec2)
    first = _run_after(cleaner, future_clock, 0)
    assert (actions_of(first)[snapshot], actions_of(first)[volume]) == ("mark", "mark")
    # AND member A's EC2 failing every attempt of a listing the snapshots' deletion rests on,
    # or refusing it (its role's policy)
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    if refused:
        refuse_every_ec2_attempt(member_ec2, listing)
    else:
        fail_every_attempt(member_ec2, "ec2", listing)
    # WHEN the run past the notice comes
    target = _run_after(cleaner, future_clock, 7)
    # THEN the snapshot is neither deleted nor unmarked, and its kind is reported for the target
    assert snapshot in snapshots_in(ec2)
    assert MARK_TAG in tags_of(ec2, snapshot)
    assert snapshot not in actions_of(target)
    assert list(unlisted_kinds(target)) == ["snapshots"]
    assert target["status"] == "partial"
    # AND the volume, another kind, is deleted all the same
    assert actions_of(target)[volume] == "delete"
    assert volume not in volumes_in(ec2)


@pytest.mark.parametrize("how", SHARINGS)
def test_in_notify_mode_a_due_snapshot_shared_since_its_mark_is_reported_spared_not_due(
    cleaner: Invoke,
    future_clock: ManualClock,
    member_a_ec2: Any,
    cleanup_policy: Callable[[dict[str, Any]], None],
    *,
    how: str,
) -> None:
    # GIVEN member A's two stale snapshots marked by a notify-mode run, of which an engineer
    # has since shared one and registered an AMI from the other
    cleanup_policy({"resources": ["snapshots"], "mode": "notify"})
    ec2 = member_a_ec2
    shared, used, stale = create_snapshot(ec2), create_snapshot(ec2), create_snapshot(ec2)
    first = _run_after(cleaner, future_clock, 0)
    assert {actions_of(first)[s] for s in (shared, used, stale)} == {"mark"}
    share_snapshot(ec2, shared, how)
    register_image_from(ec2, used)
    # WHEN a notify-mode run comes after the mark's date
    second = _run_after(cleaner, future_clock, 7)
    # THEN it reports what a delete run would do: the shared and the used snapshot spared,
    # their marks lifted, and only the stale one due, its mark kept
    actions = actions_of(second)
    assert (actions[shared], actions[used], actions[stale]) == ("spare", "spare", "due")
    assert second["kept"] == {how: 1}
    assert (second["due"], second["candidates"]) == (1, 1)
    assert MARK_TAG not in tags_of(ec2, shared) and MARK_TAG not in tags_of(ec2, used)
    assert MARK_TAG in tags_of(ec2, stale)
    assert {shared, used, stale} <= snapshots_in(ec2)
    assert second["status"] == "ok", second.get("errors")


def test_the_fleet_result_totals_the_snapshots_each_target_kept_for_their_sharing(
    cleaner: Invoke, member_a_ec2: Any
) -> None:
    # GIVEN member A with a stale snapshot shared with another account, another shared and one
    # public
    ec2 = member_a_ec2
    for how in ("shared", "shared", "public"):
        share_snapshot(ec2, create_snapshot(ec2), how)
    # WHEN the cleanup runs past the snapshot age
    result = cleaner({"action": "cleanup"})
    # THEN the fleet's result totals the kept counts of its targets, by how
    assert target_of(result, MEMBER_A)["kept"] == {"shared": 2, "public": 1}
    assert result["kept"] == {"shared": 2, "public": 1}
