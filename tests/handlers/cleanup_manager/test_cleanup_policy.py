"""The stack's cleanup policy at run time: fleet backups survive, only the named kinds and tags
are touched, notify mode never deletes, and a bad policy stops the run before anything changes.

In this module the clock starts now (moto stamps resources with the real time) and a test ages
its resources by advancing the clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.ec2.models import ec2_backends

from catalog.functions import function_spec
from fleet_shared.cleanup_policy import CleanupPolicy
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.sessions import AccountSessions
from handlers.backup_scheduler import app as backup_app
from handlers.backup_scheduler.backup import COPY_TAG, BackupServices
from handlers.backup_scheduler.environment import WEEKDAYS, BackupEnvironment
from handlers.cleanup_manager.candidates import (
    KUBERNETES_SNAPSHOT_TAGS,
    KUBERNETES_VOLUME_TAGS,
    LIFECYCLE_MANAGED_SNAPSHOT_TAGS,
    MARK_TAG_PREFIX,
    volumes,
)
from tests.handlers.cleanup_manager.support import (
    MARK_TAG,
    actions_of,
    create_lambda_function,
    create_snapshot,
    published_versions,
    snapshots_in,
    tags_of,
    volumes_in,
)
from tests.handlers.deadlines import ContextRunningOutOfTime
from tests.handlers.member_accounts import MEMBER_A, REGION, create_volume, member_session
from tests.handlers.member_targets import target_of

Invoke = Callable[[Any], dict[str, Any]]
DESTRUCTIVE_OPERATIONS = {"DeleteSnapshot", "DeleteVolume", "DeleteFunction"}


@dataclasses.dataclass(frozen=True)
class AwsCall:
    service: str
    operation: str
    params: dict[str, Any]


@pytest.fixture
def future_clock() -> ManualClock:
    """Overrides the package's clock: here it starts at the resources' creation time."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[AwsCall]:
    """Every AWS call the functions make, with its parameters, recorded by a botocore hook.

    The hook is registered on each session the functions' `AccountSessions` create, so clients
    made from them later (a member session is made afresh once its credentials have expired on
    the moving clock) are recorded too.
    """
    calls: list[AwsCall] = []
    new_session = AccountSessions._new_session

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append(AwsCall(model.service_model.service_name, model.name, dict(params)))

    def recorded_session(**arguments: Any) -> Any:
        session = new_session(**arguments)
        session.events.register("before-parameter-build", record)
        return session

    monkeypatch.setattr(AccountSessions, "_new_session", staticmethod(recorded_session))
    return calls


@pytest.fixture
def backup(
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    cleaner: Invoke,
) -> Invoke:
    """Invoke backup_scheduler on the same clock and inventory as the cleanup (set by `cleaner`):
    weekly copies today, kept for 60 days, longer than the cleanup's 30-day snapshot age."""
    monkeypatch.setenv("BACKUP_WEEKLY_DAY", WEEKDAYS[future_clock.now().weekday()])
    monkeypatch.setenv("BACKUP_WEEKLY_RETENTION_DAYS", "60")
    built: list[BackupServices] = []

    def services() -> BackupServices:
        if not built:
            environment = load_environment(BackupEnvironment)
            built.append(
                BackupServices.create(backup_app.FUNCTION.name, environment, clock=future_clock)
            )
        return built[0]

    def invoke(event: Any) -> dict[str, Any]:
        with monkeypatch.context() as scoped:
            scoped.setattr(backup_app.FUNCTION, "services", services)
            # The function's whole timeout, as the schedule's invocation starts: a target starts
            # only with time for its endpoints hanging.
            whole_invocation = ContextRunningOutOfTime(
                millis_left=[function_spec("backup_scheduler").timeout_seconds * 1000]
            )
            return backup_app.lambda_handler(event, whole_invocation)

    return invoke


def _actions_in_a(result: dict[str, Any]) -> dict[str, str]:
    return actions_of(target_of(result, MEMBER_A))


@dataclass
class MemberA:
    """Member A's EC2 client, and the cleanup of the fleet run on the module's clock."""

    ec2: Any
    cleaner: Invoke
    clock: ManualClock

    def cleanup_after(self, days: int) -> dict[str, Any]:
        """The result of the cleanup run `days` after the last run (or the resources' creation)."""
        self.clock.advance(timedelta(days=days).total_seconds())
        return self.cleaner({"action": "cleanup"})

    def actions_after(self, days: int) -> dict[str, str]:
        """Resource id -> what the cleanup run `days` after the last run did in member A."""
        return _actions_in_a(self.cleanup_after(days))


@pytest.fixture
def member_a(
    cleaner: Invoke, future_clock: ManualClock, alert_inbox: Any, mocked_aws: None
) -> MemberA:
    """Member A, its cleanup's alert topics in place."""
    return MemberA(member_session(MEMBER_A).client("ec2"), cleaner, future_clock)


def test_a_weekly_backup_survives_cleanup_while_within_its_retention(
    member_a: MemberA, backup: Invoke, aws_calls: list[AwsCall]
) -> None:
    # GIVEN a weekly-backed-up volume in member A, copied today with a 60-day retention, and a
    # stale snapshot nobody made for backup, under a deleting policy
    ec2 = member_a.ec2
    volume = create_volume(ec2, backup="weekly")
    stale = create_snapshot(ec2)
    assert backup({"action": "backup"})["created"] >= 1
    (backup_copy,) = [
        s["SnapshotId"]
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if COPY_TAG in {tag["Key"] for tag in s.get("Tags", [])}
    ]
    # WHEN the cleanup runs past the 30-day snapshot age, and again past the 7-day notice
    first = member_a.actions_after(31)
    second = member_a.actions_after(8)
    # THEN the stale snapshot is marked then deleted, the backup is never marked nor deleted
    assert (first[stale], second[stale]) == ("mark", "delete")
    assert backup_copy not in first and backup_copy not in second
    assert MARK_TAG not in tags_of(ec2, backup_copy)
    assert backup_copy in snapshots_in(ec2)
    assert stale not in snapshots_in(ec2)
    deleted = {c.params.get("SnapshotId") for c in aws_calls if c.operation == "DeleteSnapshot"}
    assert deleted == {stale}
    # AND backup_scheduler, on day 39, keeps its copy, which is still within retention
    assert backup({"action": "backup"})["deleted"] == 0
    assert backup_copy in snapshots_in(ec2)
    # WHEN its retention has run out THEN the cleanup still leaves it and the volume, and
    # backup_scheduler keeps it as the volume's last good copy until a newer one completes
    assert backup_copy not in member_a.actions_after(22)
    assert volume in volumes_in(ec2)
    after_retention = backup({"action": "backup"})
    kept = {copy["id"] for target in after_retention["targets"] for copy in target["kept"]}
    assert backup_copy in kept
    assert backup_copy in snapshots_in(ec2)


def test_a_policy_naming_only_volumes_leaves_snapshots_and_lambda_versions_alone(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    aws_calls: list[AwsCall],
) -> None:
    # GIVEN member A with a stale snapshot, an unattached volume and a function with 6 versions,
    # and a deleting policy that names volumes only
    ec2 = member_a.ec2
    stale = create_snapshot(ec2)
    unattached = create_volume(ec2)
    client = create_lambda_function(member_session(MEMBER_A), "orders", versions=6)
    cleanup_policy({"resources": ["volumes"], "mode": "delete"})
    # WHEN the cleanup runs past every age and past the notice
    first = member_a.actions_after(40)
    second = member_a.actions_after(8)
    # THEN only volumes were acted on: marked, then deleted
    assert (first[unattached], second[unattached]) == ("mark", "delete")
    assert all(resource.startswith("vol-") for resource in (*first, *second))
    # AND snapshots and Lambda versions were not even listed, let alone tagged or deleted
    operations = {(c.service, c.operation) for c in aws_calls}
    assert ("ec2", "DescribeSnapshots") not in operations
    assert ("ec2", "DescribeImages") not in operations
    assert not any(service == "lambda" for service, _ in operations)
    assert MARK_TAG not in tags_of(ec2, stale)
    assert stale in snapshots_in(ec2)
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5", "6"}


@pytest.mark.parametrize("tag", KUBERNETES_VOLUME_TAGS)
def test_a_kubernetes_persistent_volume_is_never_marked_or_deleted(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    aws_calls: list[AwsCall],
    tag: str,
) -> None:
    # GIVEN member A with an unattached volume of a Kubernetes persistent volume (its
    # StatefulSet scaled to 0), one carrying an old mark from before, and a plain unattached
    # volume, under a deleting policy for volumes
    ec2 = member_a.ec2
    persistent = create_volume(ec2, **{tag: "pvc-a3ab0567"})
    marked_before = create_volume(ec2, **{tag: "pvc-b4bc1678", MARK_TAG: "2020-01-01"})
    unattached = create_volume(ec2)
    cleanup_policy({"resources": ["volumes"], "mode": "delete"})
    # WHEN the cleanup runs past the volume age, and again past the notice
    first = member_a.actions_after(40)
    second = member_a.actions_after(8)
    # THEN the plain volume is marked then deleted, the persistent volumes never: the old mark
    # is lifted, and neither is deleted
    assert (first[unattached], second[unattached]) == ("mark", "delete")
    assert persistent not in first and persistent not in second
    assert MARK_TAG not in tags_of(ec2, persistent)
    assert MARK_TAG not in tags_of(ec2, marked_before)
    assert {persistent, marked_before} <= volumes_in(ec2)
    deleted = {c.params.get("VolumeId") for c in aws_calls if c.operation == "DeleteVolume"}
    assert deleted == {unattached}


@pytest.mark.parametrize("tag", KUBERNETES_SNAPSHOT_TAGS + LIFECYCLE_MANAGED_SNAPSHOT_TAGS)
def test_a_snapshot_another_system_keeps_is_never_marked_or_deleted(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    aws_calls: list[AwsCall],
    tag: str,
) -> None:
    # GIVEN member A with a snapshot another system keeps (the EBS CSI driver's, for a
    # Kubernetes VolumeSnapshot a restore reads; or Data Lifecycle Manager's or AWS Backup's,
    # which delete it themselves by their retention), one carrying an old mark from before, and a
    # plain snapshot, under a deleting policy for snapshots 30 days old
    ec2 = member_a.ec2
    kept_elsewhere = create_snapshot(ec2, **{tag: "snapcontent-69477690"})
    marked_before = create_snapshot(ec2, **{tag: "snapcontent-7a588701", MARK_TAG: "2020-01-01"})
    stale = create_snapshot(ec2)
    cleanup_policy({"resources": ["snapshots"], "mode": "delete"})
    # WHEN the cleanup runs past the snapshot age, and again past the notice
    first = member_a.actions_after(40)
    second = member_a.actions_after(8)
    # THEN the plain snapshot is marked then deleted, the others never: the old mark is lifted,
    # and neither is deleted
    assert (first[stale], second[stale]) == ("mark", "delete")
    assert kept_elsewhere not in first and kept_elsewhere not in second
    assert first[marked_before] == "spare"
    assert MARK_TAG not in tags_of(ec2, kept_elsewhere)
    assert MARK_TAG not in tags_of(ec2, marked_before)
    assert {kept_elsewhere, marked_before} <= snapshots_in(ec2)
    deleted = {c.params.get("SnapshotId") for c in aws_calls if c.operation == "DeleteSnapshot"}
    assert deleted == {stale}


def test_a_snapshot_still_being_created_is_never_marked_or_deleted(
    member_a: MemberA, cleanup_policy: Callable[[dict[str, Any]], None], aws_calls: list[AwsCall]
) -> None:
    # GIVEN member A's snapshot still being created (`pending`: the first snapshot of a large
    # volume takes hours, a copy from another region as long), one carrying a mark from before,
    # and a plain snapshot, under a deleting policy for snapshots a day old, a day's notice
    ec2 = member_a.ec2
    pending, marked_before = create_snapshot(ec2), create_snapshot(ec2, **{MARK_TAG: "2020-01-01"})
    for snapshot_id in (pending, marked_before):
        ec2_backends[MEMBER_A][REGION].snapshots[snapshot_id].status = "pending"
    stale = create_snapshot(ec2)
    cleanup_policy(
        {
            "resources": ["snapshots"],
            "snapshot_max_age_days": 1,
            "notice_days": 1,
            "mode": "delete",
        }
    )
    # WHEN the cleanup runs past the snapshot age, and again past the notice
    first = member_a.actions_after(2)
    second = member_a.actions_after(2)
    # THEN the plain snapshot is marked then deleted, the pending ones never: the old mark is
    # lifted, and neither is deleted
    assert (first[stale], second[stale]) == ("mark", "delete")
    assert pending not in first and pending not in second
    assert first[marked_before] == "spare"
    assert MARK_TAG not in tags_of(ec2, marked_before)
    deleted = {c.params.get("SnapshotId") for c in aws_calls if c.operation == "DeleteSnapshot"}
    assert deleted == {stale}


@pytest.mark.parametrize("frequency", ["daily", "weekly", "dialy"])
def test_a_volume_backup_scheduler_copies_is_never_marked_or_deleted(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    aws_calls: list[AwsCall],
    frequency: str,
) -> None:
    # GIVEN member A with an unattached volume tagged for backup (a typo'd frequency included:
    # backup_scheduler reports it and keeps its copies), one carrying an old mark from before,
    # and a plain unattached volume, under a deleting policy for volumes
    ec2 = member_a.ec2
    backed_up = create_volume(ec2, backup=frequency)
    marked_before = create_volume(ec2, **{"backup": frequency, MARK_TAG: "2020-01-01"})
    unattached = create_volume(ec2)
    cleanup_policy({"resources": ["volumes"], "mode": "delete"})
    # WHEN the cleanup runs past the volume age, and again past the notice
    first = member_a.actions_after(40)
    second = member_a.actions_after(8)
    # THEN the plain volume is marked then deleted; the backed-up volumes never (the old mark
    # is lifted): deleted, backup_scheduler would let their last copies expire
    assert (first[unattached], second[unattached]) == ("mark", "delete")
    assert backed_up not in first and backed_up not in second
    assert MARK_TAG not in tags_of(ec2, backed_up)
    assert MARK_TAG not in tags_of(ec2, marked_before)
    assert {backed_up, marked_before} <= volumes_in(ec2)
    deleted = {c.params.get("VolumeId") for c in aws_calls if c.operation == "DeleteVolume"}
    assert deleted == {unattached}


@pytest.mark.parametrize("key", ["Backup", "backups"])
def test_a_volume_whose_backup_tag_key_is_written_otherwise_is_never_deleted_and_is_an_error(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    aws_calls: list[AwsCall],
    key: str,
) -> None:
    # GIVEN member A with an unattached volume tagged `Backup=daily` or `backups=daily` (meant
    # for backup, but backup_scheduler reads only the key `backup`, so it has no copy), and a
    # plain unattached volume, under a deleting policy for volumes
    ec2 = member_a.ec2
    meant_for_backup = create_volume(ec2, **{key: "daily"})
    unattached = create_volume(ec2)
    cleanup_policy({"resources": ["volumes"], "mode": "delete"})
    # WHEN the cleanup runs past the volume age, and again past the notice
    first_result = member_a.cleanup_after(40)
    first, second = _actions_in_a(first_result), member_a.actions_after(8)
    # THEN the plain volume is marked then deleted; the one meant for backup never: deleted, it
    # would be gone with no copy at all
    assert (first[unattached], second[unattached]) == ("mark", "delete")
    assert meant_for_backup not in first and meant_for_backup not in second
    assert meant_for_backup in volumes_in(ec2)
    deleted = {c.params.get("VolumeId") for c in aws_calls if c.operation == "DeleteVolume"}
    assert deleted == {unattached}
    # AND it is an error naming the tag, for the key to be written as backup_scheduler reads it
    errors = {e["id"]: e["error"] for e in target_of(first_result, MEMBER_A)["errors"]}
    assert f"tag {key}='daily'" in errors[meant_for_backup]


def test_a_snapshot_becomes_a_candidate_at_exactly_its_age_and_a_version_beyond_exactly_n(
    member_a: MemberA, cleanup_policy: Callable[[dict[str, Any]], None], aws_calls: list[AwsCall]
) -> None:
    # GIVEN member A's snapshot, and two functions: one with exactly keep_lambda_versions (3)
    # published versions, one with a version more, under the default ages (30 days)
    ec2 = member_a.ec2
    snapshot = create_snapshot(ec2)
    [described] = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
    session = member_session(MEMBER_A)
    create_lambda_function(session, "exactly", versions=3)
    create_lambda_function(session, "one-more", versions=4)
    cleanup_policy({"resources": ["snapshots", "lambda_versions"], "mode": "delete"})
    # WHEN the cleanup runs a second before the snapshot is 30 days old
    member_a.clock.set(described["StartTime"] + timedelta(days=30, seconds=-1))
    before = _actions_in_a(member_a.cleaner({"action": "cleanup"}))
    # THEN the snapshot is no candidate yet; of the functions, only the version beyond the
    # newest 3 of the one with 4 is
    assert snapshot not in before
    assert {resource for resource in before if ":" in resource} == {"one-more:1"}
    # AND only the function with a version beyond them had its tags and provisioned
    # concurrency read: nothing of the other could be deleted, so nothing of it may fail
    read_for = {
        str(call.params.get("Resource") or call.params.get("FunctionName")).rsplit(":", 1)[-1]
        for call in aws_calls
        if call.operation in {"ListTags", "ListProvisionedConcurrencyConfigs"}
    }
    assert read_for == {"one-more"}
    # WHEN it runs as the snapshot is exactly 30 days old
    member_a.clock.set(described["StartTime"] + timedelta(days=30))
    # THEN the snapshot is a candidate, marked
    assert _actions_in_a(member_a.cleaner({"action": "cleanup"}))[snapshot] == "mark"


def test_an_unattached_volume_becomes_a_candidate_at_exactly_its_minimum_age(
    member_a: MemberA,
) -> None:
    # GIVEN member A's unattached volume, under the default minimum age (7 days)
    volume = create_volume(member_a.ec2)
    [described] = member_a.ec2.describe_volumes(VolumeIds=[volume])["Volumes"]
    policy = CleanupPolicy()

    def candidates_at(age: timedelta) -> list[str]:
        found = volumes(
            member_a.ec2,
            policy,
            described["CreateTime"] + age,
            [],
            lambda: True,
            own_mark_tag=MARK_TAG,
        )
        return [resource.id for resource in found if resource.candidate]

    # WHEN its candidates are listed a second before it is 7 days old, and as it is
    # THEN it is no candidate yet, then one
    assert candidates_at(timedelta(days=7, seconds=-1)) == []
    assert candidates_at(timedelta(days=7)) == [volume]


MISTYPED_KEEP = "yes " + "x" * 250
"""A keep tag value that is neither true nor false, longer than any result may repeat."""


def test_a_keep_tag_neither_true_nor_false_keeps_its_resource_and_is_an_error_naming_it(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    aws_calls: list[AwsCall],
) -> None:
    # GIVEN member A with a stale snapshot tagged `keep=yes...`, an unattached volume tagged so
    # that carries a mark from before, a Lambda function tagged so with more versions than are
    # kept, and a plain stale snapshot, under a deleting policy
    ec2 = member_a.ec2
    kept_snapshot = create_snapshot(ec2, keep=MISTYPED_KEEP)
    kept_volume = create_volume(ec2, keep=MISTYPED_KEEP, **{MARK_TAG: "2020-01-01"})
    kept_function = create_lambda_function(
        member_session(MEMBER_A), "orders", versions=5, keep=MISTYPED_KEEP
    )
    stale = create_snapshot(ec2)
    cleanup_policy({"resources": ["snapshots", "volumes", "lambda_versions"], "mode": "delete"})
    # WHEN the cleanup runs past every age, and again past the notice
    first_result = member_a.cleanup_after(40)
    first, second = _actions_in_a(first_result), member_a.actions_after(8)
    # THEN the plain snapshot is marked then deleted; the keep-tagged resources are kept as with
    # `keep=true`: never marked nor deleted, the old mark lifted, and so are the function's
    # versions
    assert (first[stale], second[stale]) == ("mark", "delete")
    assert kept_snapshot not in first and kept_snapshot not in second
    assert not any(resource.startswith("orders:") for resource in {**first, **second})
    assert published_versions(kept_function, "orders") == {"1", "2", "3", "4", "5"}
    assert first[kept_volume] == "spare"
    assert MARK_TAG not in tags_of(ec2, kept_snapshot)
    assert MARK_TAG not in tags_of(ec2, kept_volume)
    deleted = {
        c.params.get("SnapshotId") or c.params.get("VolumeId")
        for c in aws_calls
        if c.operation in DESTRUCTIVE_OPERATIONS
    }
    assert stale in deleted
    assert deleted.isdisjoint({kept_snapshot, kept_volume})
    # AND each is an error naming the keep tag and the start of its value, in a short line
    target = target_of(first_result, MEMBER_A)
    assert target["status"] == "partial"
    errors = {entry["id"]: entry["error"] for entry in target["errors"]}
    assert set(errors) == {kept_snapshot, kept_volume, "orders"}
    for error in errors.values():
        assert "tag keep='yes xxx" in error
        assert len(error) <= 200


def test_a_keep_tag_whose_key_differs_in_case_or_blanks_keeps_its_resource(
    member_a: MemberA, cleanup_policy: Callable[[dict[str, Any]], None], aws_calls: list[AwsCall]
) -> None:
    # GIVEN member A's stale snapshot tagged `Keep=true` (the console's capitalised key), its
    # unattached volume tagged ` KEEP =TRUE` and marked from before, and a plain stale snapshot,
    # under a deleting policy whose keep tag is `keep`
    ec2 = member_a.ec2
    kept_snapshot = create_snapshot(ec2, Keep="true")
    kept_volume = create_volume(ec2, **{" KEEP ": "TRUE", MARK_TAG: "2020-01-01"})
    stale = create_snapshot(ec2)
    cleanup_policy({"resources": ["snapshots", "volumes"], "mode": "delete"})
    # WHEN the cleanup runs past every age, and again past the notice
    first_result = member_a.cleanup_after(40)
    first, second = _actions_in_a(first_result), member_a.actions_after(8)
    # THEN the plain snapshot is marked then deleted; the kept ones are kept as with `keep=true`:
    # never marked nor deleted, the old mark lifted, and no error
    assert (first[stale], second[stale]) == ("mark", "delete")
    assert kept_snapshot not in first and kept_snapshot not in second
    assert first[kept_volume] == "spare"
    assert MARK_TAG not in tags_of(ec2, kept_snapshot)
    assert MARK_TAG not in tags_of(ec2, kept_volume)
    deleted = {
        c.params.get("SnapshotId") or c.params.get("VolumeId")
        for c in aws_calls
        if c.operation in DESTRUCTIVE_OPERATIONS
    }
    assert deleted.isdisjoint({kept_snapshot, kept_volume})
    assert "errors" not in target_of(first_result, MEMBER_A)


def test_notify_mode_marks_and_notifies_but_never_deletes(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    alert_inbox: Any,
    aws_calls: list[AwsCall],
) -> None:
    # GIVEN a stale snapshot, an unattached volume and old Lambda versions in member A, and a
    # stack that sets no mode
    ec2 = member_a.ec2
    stale = create_snapshot(ec2)
    unattached = create_volume(ec2)
    client = create_lambda_function(member_session(MEMBER_A), "orders", versions=5)
    cleanup_policy({})
    # WHEN the cleanup runs past every age, then again well past the notice
    first = member_a.actions_after(40)
    result = member_a.cleanup_after(30)
    second = _actions_in_a(result)
    # THEN the candidates were marked and notified, and are reported due, not deleted
    assert (first[stale], first[unattached], first["orders:1"]) == ("mark", "mark", "mark")
    assert (second[stale], second[unattached], second["orders:1"]) == ("due", "due", "due")
    assert result["deleted"] == 0
    notices = alert_inbox.receive()
    assert any("notify mode" in notice.alert["title"] for notice in notices)
    # AND no deletion was ever called, and everything is still there, mark included
    assert [c.operation for c in aws_calls if c.operation in DESTRUCTIVE_OPERATIONS] == []
    assert stale in snapshots_in(ec2)
    assert unattached in volumes_in(ec2)
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5"}
    assert MARK_TAG in tags_of(ec2, stale)


def test_a_tag_filter_limits_candidates_to_resources_carrying_its_tags(
    member_a: MemberA, cleanup_policy: Callable[[dict[str, Any]], None]
) -> None:
    # GIVEN stale snapshots, volumes and functions in member A, some tagged cleanup=allowed, and
    # a policy that requires that tag
    ec2 = member_a.ec2
    allowed_snapshot = create_snapshot(ec2, cleanup="allowed")
    other_snapshot = create_snapshot(ec2, cleanup="never")
    allowed_volume = create_volume(ec2, cleanup="allowed")
    other_volume = create_volume(ec2)
    create_lambda_function(member_session(MEMBER_A), "allowed-fn", versions=4, cleanup="allowed")
    create_lambda_function(member_session(MEMBER_A), "other-fn", versions=4)
    cleanup_policy({"require_tags": {"cleanup": "allowed"}})
    # WHEN the cleanup runs past every age
    actions = member_a.actions_after(40)
    # THEN only the tagged resources (a version: its function's tags) are marked
    assert actions[allowed_snapshot] == "mark"
    assert actions[allowed_volume] == "mark"
    assert actions["allowed-fn:1"] == "mark"
    for untouched in (other_snapshot, other_volume, "other-fn:1"):
        assert untouched not in actions
    assert MARK_TAG not in tags_of(ec2, other_snapshot)
    assert MARK_TAG not in tags_of(ec2, other_volume)


def test_a_fleet_backup_marked_by_an_earlier_version_is_spared(
    member_a: MemberA, future_clock: ManualClock
) -> None:
    # GIVEN a fleet backup that carries a deletion mark already due (set before this policy)
    ec2 = member_a.ec2
    marked_backup = create_snapshot(
        ec2, **{COPY_TAG: "weekly", MARK_TAG: future_clock.now().date().isoformat()}
    )
    # WHEN the cleanup runs past the snapshot age
    actions = member_a.actions_after(40)
    # THEN the backup is spared: its mark is lifted and it is not deleted
    assert actions[marked_backup] == "spare"
    assert MARK_TAG not in tags_of(ec2, marked_backup)
    assert marked_backup in snapshots_in(ec2)


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("CLEANUP_POLICY", '{"mode": "purge"}', "CLEANUP_POLICY.mode"),
        ("CLEANUP_POLICY", '{"resources": ["snapshot"]}', "CLEANUP_POLICY.resources"),
        ("CLEANUP_POLICY", '{"notice_day": 3}', "CLEANUP_POLICY.notice_day"),
        # Past the calendar: a mark today + 3,000,000 days, an age beyond timedelta's range.
        ("CLEANUP_POLICY", '{"notice_days": 3000000}', "CLEANUP_POLICY.notice_days"),
        (
            "CLEANUP_POLICY",
            '{"snapshot_max_age_days": 1000000000}',
            "CLEANUP_POLICY.snapshot_max_age_days",
        ),
        (
            "CLEANUP_POLICY",
            '{"volume_min_age_days": 1000000000}',
            "CLEANUP_POLICY.volume_min_age_days",
        ),
        ("CLEANUP_POLICY", '{"mode": "delete"}', "resources"),
        ("CLEANUP_POLICY", "notify", "CLEANUP_POLICY"),
        # The stack names the mark's tag key: a blank or a comma would make another key.
        ("STACK_NAME", "dev, prod", "STACK_NAME"),
        ("STACK_NAME", "", "STACK_NAME"),
    ],
)
def test_a_bad_policy_or_stack_variable_fails_the_run_naming_the_field_and_changes_nothing(  # noqa: PLR0917
    member_a: MemberA,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    aws_calls: list[AwsCall],
    variable: str,
    value: str,
    field: str,
) -> None:
    # GIVEN a stale snapshot in member A and an invalid CLEANUP_POLICY or STACK_NAME
    ec2 = member_a.ec2
    stale = create_snapshot(ec2)
    monkeypatch.setenv(variable, value)
    # WHEN the schedule runs
    with pytest.raises(ConfigurationError) as raised:
        member_a.cleanup_after(40)
    # THEN the invocation fails naming the field, and nothing was listed, marked or alerted
    assert field in str(raised.value)
    assert aws_calls == []
    assert not any(key.startswith(MARK_TAG_PREFIX) for key in tags_of(ec2, stale))
    assert alert_inbox.receive() == []


def test_a_function_without_its_policy_refuses_to_run(
    cleaner: Invoke, alert_inbox: Any, mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no CLEANUP_POLICY at all
    monkeypatch.delenv("CLEANUP_POLICY")
    # WHEN the schedule runs
    with pytest.raises(ConfigurationError) as raised:
        cleaner({"action": "cleanup"})
    # THEN the invocation fails naming the variable, not a run on some default, and nothing
    # was alerted
    assert str(raised.value).startswith("environment variable CLEANUP_POLICY: ")
    assert alert_inbox.receive() == []


def test_switching_to_delete_mode_announces_the_deletion_before_deleting(
    member_a: MemberA,
    cleanup_policy: Callable[[dict[str, Any]], None],
    future_clock: ManualClock,
    alert_inbox: Any,
) -> None:
    # GIVEN a stale snapshot in member A marked long ago in notify mode, whose notice said
    # nothing would be deleted
    ec2 = member_a.ec2
    stale = create_snapshot(ec2)
    cleanup_policy({"mode": "notify"})
    assert member_a.actions_after(40)[stale] == "mark"
    [notify_notice] = [n for n in alert_inbox.receive() if n.alert["account_id"] == MEMBER_A]
    assert "nothing is deleted" in notify_notice.alert["title"]
    # WHEN the stack switches to delete mode and the cleanup runs well past the mark's date
    cleanup_policy({"resources": ["snapshots"], "mode": "delete"})
    switched = member_a.actions_after(30)
    # THEN the snapshot is not deleted yet: it is marked again and its deletion announced
    assert switched[stale] == "mark"
    assert stale in snapshots_in(ec2)
    delete_after = (future_clock.now().date() + timedelta(days=7)).isoformat()
    assert tags_of(ec2, stale)[MARK_TAG] == delete_after
    [deletion_notice] = [n for n in alert_inbox.receive() if n.alert["account_id"] == MEMBER_A]
    assert f"scheduled for deletion after {delete_after}" in deletion_notice.alert["title"]
    assert stale in deletion_notice.alert["detail"]
    # AND once that notice has run out, it is deleted
    assert member_a.actions_after(7)[stale] == "delete"
    assert stale not in snapshots_in(ec2)
