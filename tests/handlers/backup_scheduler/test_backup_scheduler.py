"""The scheduled backup across member accounts: copies, retention, once a day, failures, input."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from moto.ec2.models import ec2_backends

from catalog.functions import function_spec
from catalog.model import FixedSchedule
from fleet_shared.access_episodes import SETTLE_ACCOUNT_SECONDS
from fleet_shared.backup_tags import SNAPSHOT_ID_TAG, STACK_TAG
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import ConfigurationError, InventoryUnreadableError
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from fleetctl.schedule_replay import scheduler_input
from handlers.backup_scheduler import app
from handlers.backup_scheduler import backup as backup_module
from handlers.backup_scheduler.backup import (
    COPY_TAG,
    EXPIRES_TAG,
    EXPIRY_VALUE,
    IDEMPOTENCY_TTL_SECONDS,
    RUN_DAY_TAG,
    SOURCE_VOLUME_TAG,
    BackupServices,
    day_record_key,
    expiry_key,
    named_expiry_key,
)
from handlers.backup_scheduler.environment import BackupEnvironment
from tests.handlers.conftest import STATE_TABLE_NAME, create_state_table
from tests.handlers.deadlines import (
    THREAD_REACHED_SECONDS,
    ContextRunningOutOfTime,
    HungOperation,
    LambdaTime,
    draw_longest_botocore_waits,
    hang_every_attempt,
)
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    InjectedHang,
    InvocationKilledError,
    MalformedAnswer,
    answer_malformed,
    fail_every_attempt,
    hang_first_attempt,
    lose_first_answer,
    refuse_retry_after_lost_answer,
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
    TIME_FOR_MEMBER_A_WITH_ITS_ENDPOINTS_HUNG,
    assert_member_a_started_only_with_time_for_its_hung_calls,
    dry_run_event,
    hang_member_a_endpoints,
    inventory_unreadable,
    invoke_for_members_a_b_and_denied,
    target_of,
)
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

Invoke = Callable[..., dict[str, Any]]
DAY = timedelta(days=1).total_seconds()


def _table(dynamodb: Any, name: str, **tags: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def _snapshots(ec2: Any) -> list[dict[str, Any]]:
    return ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]


def _snapshots_of(ec2: Any, volume_id: str) -> list[dict[str, str]]:
    """The tags of `volume_id`'s snapshots, the one naming the snapshot's own id as `<own id>`."""
    return [
        {
            tag["Key"]: "<own id>" if tag["Value"] == snapshot["SnapshotId"] else tag["Value"]
            for tag in snapshot.get("Tags", [])
        }
        for snapshot in _snapshots(ec2)
        if snapshot["VolumeId"] == volume_id
    ]


def _backup_names(dynamodb: Any) -> list[str]:
    return sorted(b["BackupName"] for b in dynamodb.list_backups()["BackupSummaries"])


@pytest.fixture
def member_a(mocked_aws: None) -> dict[str, Any]:
    """Member A: a daily and a weekly volume, an untagged volume, a daily table."""
    session = member_session(MEMBER_A)
    ec2, dynamodb = session.client("ec2"), session.client("dynamodb")
    _table(dynamodb, "orders", backup="daily")
    _table(dynamodb, "scratch")
    return {
        "ec2": ec2,
        "dynamodb": dynamodb,
        "daily": create_volume(ec2, backup="daily"),
        "weekly": create_volume(ec2, backup="weekly"),
        "untagged": create_volume(ec2),
    }


@pytest.fixture
def one_target_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUP_MAX_WORKERS", "1")


@pytest.fixture
def daily_volume_in_member_b(mocked_aws: None) -> tuple[Any, str]:
    """Member B's EC2 client and a volume tagged for daily backups in member B, second in the
    inventory."""
    ec2_b = member_session(MEMBER_B).client("ec2")
    return ec2_b, create_volume(ec2_b, backup="daily")


def todays_orders_backup_name(clock: ManualClock) -> str:
    """The name of the backup a run makes today of member A's table `orders`."""
    return f"lambda-fleet.dev.orders-{clock.now():%Y%m%d}"


def run_after_the_retention(backup: Invoke, clock: ManualClock) -> dict[str, Any]:
    """The result of the run 8 days later, past the daily copies' retention of 7 days."""
    clock.advance(8 * DAY)
    return backup({"action": "backup"})


def member_a_run(backup: Invoke) -> dict[str, Any]:
    """What the schedule's run reports of member A."""
    return target_of(backup({"action": "backup"}), MEMBER_A)


def member_a_client_after_a_dry_run(
    backup: Invoke, built_services: list[BackupServices], service: str
) -> Any:
    """Member A's `service` client of the handler's services, which a dry run built: a fault
    injected there reaches the next run."""
    backup({"action": "backup", "dry_run": True})
    return built_services[0].member_client(service, MEMBER_A, REGION)


@contextmanager
def night_run_held_until_killed(backup: Invoke, hang: InjectedHang) -> Iterator[None]:
    """The night's run in another invocation with the function's whole 600 s, held by `hang`
    while the block runs; on leaving it, Lambda kills that invocation (it ends with
    InvocationKilledError)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(
            backup, {"action": "backup"}, ContextRunningOutOfTime(millis_left=[600_000])
        )
        assert hang.entered.wait(THREAD_REACHED_SECONDS)
        try:
            yield
        finally:
            hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)


def test_daily_run_copies_tagged_resources_in_each_member_only_and_isolates_denied(
    backup: Invoke,
    member_a: dict[str, Any],
    state_table: StateTable,
    fake_clock: ManualClock,
    daily_volume_in_member_b: tuple[Any, str],
) -> None:
    # GIVEN member A's tagged resources, member B with one daily volume, a daily volume in the
    # hub (not a member) and a member that denies AssumeRole; today is a Monday
    ec2_b, daily_b = daily_volume_in_member_b
    hub_ec2 = boto3.client("ec2", region_name=REGION)
    create_volume(hub_ec2, backup="daily")
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN daily resources are copied with their source, expiry and own id, weekly ones wait for
    # Sunday
    expires = (fake_clock.now() + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    ec2 = member_a["ec2"]
    assert _snapshots_of(ec2, member_a["daily"]) == [
        {
            SOURCE_VOLUME_TAG: member_a["daily"],
            COPY_TAG: "daily",
            EXPIRES_TAG: expires,
            RUN_DAY_TAG: "2025-06-02",
            STACK_TAG: "dev",
            SNAPSHOT_ID_TAG: "<own id>",
        }
    ]
    assert _snapshots_of(ec2, member_a["weekly"]) == []
    assert _snapshots_of(ec2, member_a["untagged"]) == []
    assert len(_snapshots_of(ec2_b, daily_b)) == 1
    assert _snapshots(hub_ec2) == []
    # AND the tagged table is backed up under a dated name, its expiry kept in the state table
    backups = member_a["dynamodb"].list_backups()["BackupSummaries"]
    assert [b["BackupName"] for b in backups] == ["lambda-fleet.dev.orders-20250602"]
    key = named_expiry_key(MEMBER_A, REGION, "lambda-fleet.dev.orders-20250602")
    record = state_table.get_value(key, EXPIRY_VALUE)
    assert record is not None and record["expires_at"] == expires
    # AND the counts are per target, the denied account reported and the others done
    assert result["status"] == "partial"
    assert target_of(result, DENIED_MEMBER)["status"] == "denied"
    assert target_of(result, MEMBER_A)["created"] == 2
    assert target_of(result, MEMBER_A)["skipped"] == 1
    assert target_of(result, MEMBER_B)["created"] == 1


def test_weekly_copies_are_made_on_the_weekly_day_with_the_weekly_retention(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the default weekly day (Sunday, UTC) has come
    fake_clock.advance(6 * DAY)
    assert fake_clock.now().strftime("%a") == "Sun"
    # WHEN the schedule runs
    backup({"action": "backup"})
    # THEN the weekly volume is copied, expiring after 35 days
    expires = (fake_clock.now() + timedelta(days=35)).isoformat().replace("+00:00", "Z")
    copies = _snapshots_of(member_a["ec2"], member_a["weekly"])
    assert copies == [
        {
            SOURCE_VOLUME_TAG: member_a["weekly"],
            COPY_TAG: "weekly",
            EXPIRES_TAG: expires,
            RUN_DAY_TAG: "2025-06-08",
            STACK_TAG: "dev",
            SNAPSHOT_ID_TAG: "<own id>",
        }
    ]


def test_a_retried_schedule_on_the_same_day_does_not_copy_twice(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN a completed backup today
    first = backup({"action": "backup"})
    # WHEN the schedule is retried later the same UTC day
    fake_clock.advance(3600)
    second = backup({"action": "backup"})
    # THEN the first run's result is returned and no second copy is made
    assert target_of(second, MEMBER_A)["repeat"] is True
    assert target_of(second, MEMBER_A)["created"] == target_of(first, MEMBER_A)["created"]
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
    assert len(_backup_names(member_a["dynamodb"])) == 1
    # WHEN the next day's schedule runs
    fake_clock.advance(DAY)
    backup({"action": "backup"})
    # THEN it makes that day's copies
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 2
    assert _backup_names(member_a["dynamodb"]) == [
        "lambda-fleet.dev.orders-20250602",
        "lambda-fleet.dev.orders-20250603",
    ]


def scheduled_backup_attempt(scheduled_at: datetime, attempt: int) -> dict[str, Any]:
    """The backup schedule's payload as the catalog declares it, as Scheduler delivers one
    attempt of the run scheduled for `scheduled_at`."""
    [schedule] = [
        t for t in function_spec("backup_scheduler").triggers if isinstance(t, FixedSchedule)
    ]
    return scheduler_input(
        schedule.payload,
        scheduled_at=scheduled_at,
        execution_id=f"backup-attempt-{attempt}",
        attempt=attempt,
    )


def test_a_scheduler_retry_after_utc_midnight_does_not_copy_the_run_twice(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the 02:30 run of a stack in UTC+3, scheduled for 23:30 UTC, that copied member A's
    # resources but whose answer to Scheduler was lost
    scheduled_at = datetime(2025, 6, 2, 23, 30, tzinfo=UTC)
    fake_clock.set(scheduled_at)
    first = backup(scheduled_backup_attempt(scheduled_at, attempt=1))
    assert target_of(first, MEMBER_A)["created"] == 2
    # WHEN Scheduler retries that run 40 minutes later, on the next UTC day
    fake_clock.advance(40 * 60)
    retried = backup(scheduled_backup_attempt(scheduled_at, attempt=2))
    # THEN the retry answers the run's first result and copies nothing again
    assert target_of(retried, MEMBER_A)["repeat"] is True
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
    assert _backup_names(member_a["dynamodb"]) == ["lambda-fleet.dev.orders-20250602"]
    # WHEN the next night's run comes
    next_run = scheduled_at + timedelta(days=1)
    fake_clock.set(next_run)
    backup(scheduled_backup_attempt(next_run, attempt=1))
    # THEN it makes that run's copies
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 2
    assert _backup_names(member_a["dynamodb"]) == [
        "lambda-fleet.dev.orders-20250602",
        "lambda-fleet.dev.orders-20250603",
    ]


def spend_on_each_create_snapshot(ec2: Any, runs: list[LambdaTime], seconds: float) -> None:
    """Make each CreateSnapshot that `ec2` sends spend `seconds` of the time of the last of
    `runs` (the invocation running) before EC2 answers it: a slow endpoint."""
    ec2.meta.events.register(
        "before-send.ec2.CreateSnapshot", lambda **_: runs[-1].spend(seconds), unique_id="slow"
    )


@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_target_out_of_time_stops_between_copies_and_the_next_run_does_the_rest(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A with sixteen daily volumes and a daily table, its CreateSnapshot taking
    # 20 s: 320 s of copies, each started only with more than 135 s left
    ec2, dynamodb = member_a["ec2"], member_a["dynamodb"]
    daily = [member_a["daily"], *(create_volume(ec2, backup="daily") for _ in range(15))]
    member_ec2 = member_a_client_after_a_dry_run(backup, built_services, "ec2")
    runs = [LambdaTime(300)]
    spend_on_each_create_snapshot(member_ec2, runs, 20)
    # WHEN the night's run has 300 s: time for member A to start, not for all its copies
    result = backup({"action": "backup"}, runs[-1].context())
    # THEN Lambda did not end it: member A stopped between two copies, each copy it made whole,
    # and named the steps it left, from the volume it did not reach
    target = target_of(result, MEMBER_A)
    copied = {copy["source"] for copy in target["copies"]}
    assert target["status"] == "partial" and len(copied) == 9
    left_volumes = set(daily) - copied
    assert target["left"][0]["step"] == "ec2:DescribeVolumes"
    assert target["left"][0]["from"] in left_volumes
    assert target["left"][1:] == [
        {"step": "dynamodb:ListTables"},
        {"step": "ec2:DescribeSnapshots"},
        {"step": "dynamodb:ListBackups"},
    ]
    assert all(len(_snapshots_of(ec2, volume)) == 1 for volume in copied)
    assert _backup_names(dynamodb) == []
    assert result["status"] == "partial"
    # WHEN the schedule is retried the same day with the function's whole 600 s
    fake_clock.advance(600)
    runs.append(LambdaTime(600))
    retried = target_of(backup({"action": "backup"}, runs[-1].context()), MEMBER_A)
    # THEN it does what was left, and copies nothing twice
    assert {copy["source"] for copy in retried["copies"]} == {*left_volumes, "orders"}
    assert all(len(_snapshots_of(ec2, volume)) == 1 for volume in daily)
    assert _backup_names(dynamodb) == [todays_orders_backup_name(fake_clock)]
    assert "left" not in retried


@pytest.fixture
def time_for_one_target(monkeypatch: pytest.MonkeyPatch) -> Callable[[], ContextRunningOutOfTime]:
    """Make Lambda contexts of runs with time for one target: each target takes 100 s of its
    run's 300 s, so after the first, 200 s are left, less than a target needs to start (30 s,
    2 x 92 s and 28 s), where the first has time for each of its items (92 s, 15 s and 28 s)."""
    runs: list[ContextRunningOutOfTime] = []
    run_target = backup_module._run_target

    def taking_100_seconds(*arguments: Any, **keywords: Any) -> Any:
        result = run_target(*arguments, **keywords)
        if runs:
            runs[-1].millis_left[0] -= 100_000
        return result

    monkeypatch.setattr(backup_module, "_run_target", taking_100_seconds)

    def run_context() -> ContextRunningOutOfTime:
        runs.append(ContextRunningOutOfTime(millis_left=[300_000]))
        return runs[-1]

    return run_context


@pytest.mark.usefixtures("one_target_at_a_time")
def test_targets_left_without_time_are_not_started_and_backed_up_by_the_next_run(
    backup: Invoke,
    time_for_one_target: Callable[[], ContextRunningOutOfTime],
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    daily_volume_in_member_b: tuple[Any, str],
) -> None:
    # GIVEN one target at a time, and an invocation with time for the first target only
    ec2_b, daily_b = daily_volume_in_member_b
    running_out = time_for_one_target()
    # WHEN the schedule runs
    result = backup({"action": "backup"}, running_out)
    # THEN member A is backed up, the others are not started and the run is partial, naming them
    assert target_of(result, MEMBER_A)["created"] == 2
    assert result["status"] == "partial"
    assert result["not_started"] == [
        {"account_id": MEMBER_B, "region": REGION},
        {"account_id": DENIED_MEMBER, "region": REGION},
    ]
    assert target_of(result, MEMBER_B)["status"] == "not_started"
    assert _snapshots_of(ec2_b, daily_b) == []
    # WHEN the schedule is retried the same day with time enough
    fake_clock.advance(600)
    retried = backup({"action": "backup"})
    # THEN member B is backed up now, and member A is not copied twice
    assert len(_snapshots_of(ec2_b, daily_b)) == 1
    assert target_of(retried, MEMBER_A)["repeat"] is True
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
    assert retried["not_started"] == []


@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_dry_run_leaves_the_targets_left_for_the_next_run_as_they_are(
    backup: Invoke,
    time_for_one_target: Callable[[], ContextRunningOutOfTime],
    member_a: dict[str, Any],
    state_table: StateTable,
) -> None:
    # GIVEN one target at a time, and a run that had time for member A only
    backup({"action": "backup"}, time_for_one_target())
    left = state_table.get_value("backup_scheduler/targets-not-started", "not_started")
    assert left is not None
    # WHEN a dry run with time for every target comes
    dry = backup({"action": "backup", "dry_run": True})
    # THEN it goes through every target but does not change what the next run starts with
    assert dry["not_started"] == []
    assert state_table.get_value("backup_scheduler/targets-not-started", "not_started") == left


@pytest.mark.usefixtures("one_target_at_a_time")
def test_targets_a_run_left_without_time_go_first_in_the_next_nights_run(
    backup: Invoke,
    time_for_one_target: Callable[[], ContextRunningOutOfTime],
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    daily_volume_in_member_b: tuple[Any, str],
) -> None:
    # GIVEN one target at a time, a fleet whose nightly runs have time for one target only,
    # and a daily volume in member B, second in the inventory
    ec2_b, daily_b = daily_volume_in_member_b
    first_night = backup({"action": "backup"}, time_for_one_target())
    assert target_of(first_night, MEMBER_B)["status"] == "not_started"
    # WHEN the next night's run has time for one target again
    fake_clock.advance(DAY)
    second_night = backup({"action": "backup"}, time_for_one_target())
    # THEN it starts with member B, left by the first night, and backs it up; member A, backed
    # up the night before, waits for the next run, and the targets are reported in inventory order
    assert target_of(second_night, MEMBER_B)["status"] == "ok", second_night
    assert len(_snapshots_of(ec2_b, daily_b)) == 1
    assert second_night["not_started"] == [
        {"account_id": MEMBER_A, "region": REGION},
        {"account_id": DENIED_MEMBER, "region": REGION},
    ]
    assert [t["account_id"] for t in second_night["targets"]] == [MEMBER_A, MEMBER_B, DENIED_MEMBER]


@pytest.mark.usefixtures("one_target_at_a_time")
def test_the_targets_left_as_saved_before_a_deploy_still_go_first_after_it(
    backup: Invoke,
    time_for_one_target: Callable[[], ContextRunningOutOfTime],
    member_a: dict[str, Any],
    state_table: StateTable,
    daily_volume_in_member_b: tuple[Any, str],
) -> None:
    # GIVEN one target at a time, a daily volume in member B, and member B left by a run of the
    # code deployed before, under its key and in its shape (account and region under `targets`)
    ec2_b, daily_b = daily_volume_in_member_b
    state_table.put_value(
        "backup_scheduler/targets-not-started",
        "not_started",
        {"targets": [{"account_id": MEMBER_B, "region": REGION}]},
        ttl_seconds=3 * 86400,
    )
    # WHEN the night's run has time for one target only
    result = backup({"action": "backup"}, time_for_one_target())
    # THEN it backs member B up first, and saves the others in the same shape
    assert target_of(result, MEMBER_B)["status"] == "ok", result
    assert len(_snapshots_of(ec2_b, daily_b)) == 1
    assert state_table.get_value("backup_scheduler/targets-not-started", "not_started") == {
        "targets": [
            {"account_id": MEMBER_A, "region": REGION},
            {"account_id": DENIED_MEMBER, "region": REGION},
        ]
    }


@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_run_killed_at_its_deadline_is_backed_up_by_the_platforms_retry(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN one target at a time, and member A's first CreateSnapshot never answered, so the
    # invocation (600 s, the function's timeout) hangs holding member A's claim for the day
    member_ec2 = member_a_client_after_a_dry_run(backup, built_services, "ec2")
    hang = hang_first_attempt(member_ec2, "ec2", "CreateSnapshot")
    with night_run_held_until_killed(backup, hang):
        # WHEN Lambda kills it at its deadline and the platform retries a minute later
        fake_clock.advance(600 + 60)
        retried = backup({"action": "backup"})
    # THEN the retry backed member A up (the dead invocation's claim did not answer "in
    # progress", which would leave the day without copies)
    assert target_of(retried, MEMBER_A)["status"] == "ok", target_of(retried, MEMBER_A)
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
    assert len(_backup_names(member_a["dynamodb"])) == 1


@pytest.mark.parametrize(
    ("hung_call", "failed_steps"),
    [
        pytest.param(
            "DescribeSnapshots", ["ec2:DescribeVolumes", "ec2:DescribeSnapshots"], id="listing"
        ),
        pytest.param(
            "CreateSnapshot", ["ec2:DescribeVolumes", "ec2:DescribeSnapshots"], id="each-copy"
        ),
    ],
)
@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_member_whose_ec2_endpoint_never_answers_costs_the_run_bounded_calls(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    monkeypatch: pytest.MonkeyPatch,
    hung_call: str,
    failed_steps: list[str],
    daily_volume_in_member_b: tuple[Any, str],
) -> None:
    # GIVEN one target at a time, member A with fifteen daily volumes and its EC2 endpoint
    # accepting `hung_call` but never answering, member B with a daily volume, and a run with
    # the function's whole 600 s
    for _ in range(14):
        create_volume(member_a["ec2"], backup="daily")
    ec2_b, daily_b = daily_volume_in_member_b
    backup({"action": "backup", "dry_run": True})
    time = LambdaTime(600).spend_botocore_waits(monkeypatch)
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    hung = hang_every_attempt(member_ec2, "ec2", hung_call, time)
    # WHEN the night's run comes
    result = backup({"action": "backup"}, time.context())
    # THEN Lambda did not end the run: member A's EC2 endpoint was given up after one call's few
    # short attempts (not one call per volume, nor one per step), its table was still backed up,
    # and member B was too
    assert hung.attempts == 6
    assert time.spent < 200, time.spent
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    assert [error["resource"] for error in target_a["errors"]] == failed_steps
    assert "Read timeout" in target_a["errors"][0]["error"]
    assert target_a["errors"][1]["error"].startswith("not tried: Read timeout")
    assert _backup_names(member_a["dynamodb"]) == ["lambda-fleet.dev.orders-20250602"]
    assert target_of(result, MEMBER_B)["status"] == "ok"
    assert len(_snapshots_of(ec2_b, daily_b)) == 1


def test_a_state_table_that_did_not_answer_leaves_the_members_dynamodb_asked(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a dry run over member A, whose daily table `orders` is due, and the hub's state table
    # never answering the read of a backup's saved expiry (member A's DynamoDB answers)
    monkeypatch.setenv("BACKUP_MAX_WORKERS", "1")
    backup({"action": "backup", "dry_run": True})
    time = LambdaTime(600).spend_botocore_waits(monkeypatch)
    state_dynamodb = built_services[0].hub_client("dynamodb")
    hung = HungOperation(time, read_timeout=state_dynamodb.meta.config.read_timeout)

    def hang_expiry_reads(request: Any, **kwargs: Any) -> None:
        if b"backup_scheduler/backup/" in request.body:
            hung.hang(request, **kwargs)

    state_dynamodb.meta.events.register_first("before-send.dynamodb.GetItem", hang_expiry_reads)
    member_listings: list[str] = []
    built_services[0].member_client("dynamodb", MEMBER_A, REGION).meta.events.register_first(
        "before-send.dynamodb.ListBackups",
        lambda request, **_: member_listings.append(request.url),
    )
    # WHEN the run comes
    result = backup({"action": "backup", "dry_run": True}, time.context())
    # THEN the tables step ended at the state table's timeout, but the pruning of backups still
    # asked member A's DynamoDB, the endpoint that answered: only the state table is given up
    errors = target_of(result, MEMBER_A)["errors"]
    assert hung.attempts > 0
    assert [error["resource"] for error in errors] == ["dynamodb:ListTables"], errors
    assert "Read timeout" in errors[0]["error"]
    assert len(member_listings) == 1


@pytest.mark.parametrize(
    ("seconds_left", "member_a_started"), TIME_FOR_MEMBER_A_WITH_ITS_ENDPOINTS_HUNG
)
@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_target_starts_only_with_time_for_its_budget_and_its_endpoints_hanging(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    monkeypatch: pytest.MonkeyPatch,
    seconds_left: int,
    member_a_started: bool,
) -> None:
    # GIVEN one target at a time, member A's EC2 and DynamoDB endpoints accepting calls but never
    # answering, and an invocation with `seconds_left`, more than BACKUP_TARGET_SECONDS (30 s)
    backup({"action": "backup", "dry_run": True})
    time = LambdaTime(seconds_left).spend_botocore_waits(monkeypatch)
    hang_member_a_endpoints(
        built_services[0], time, ("ec2", "DescribeSnapshots"), ("dynamodb", "ListTables")
    )
    # WHEN the night's run comes
    result = backup({"action": "backup"}, time.context())
    # THEN Lambda did not end the invocation: member A was started only with time for its hung
    # calls, and otherwise left for the next run
    assert_member_a_started_only_with_time_for_its_hung_calls(
        result, time, member_a_started=member_a_started
    )


@pytest.mark.parametrize(
    ("seconds_left", "member_b_started"),
    [
        pytest.param(30 + 2 * 92 + SETTLE_ACCOUNT_SECONDS + 1, False, id="time-for-member-a-only"),
        pytest.param(
            2 * (30 + 2 * 92) + SETTLE_ACCOUNT_SECONDS + 1, True, id="time-for-both-members"
        ),
    ],
)
@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_member_whose_ec2_throttles_each_attempt_as_it_times_out_costs_the_run_bounded_calls(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    monkeypatch: pytest.MonkeyPatch,
    daily_volume_in_member_b: tuple[Any, str],
    seconds_left: int,
    member_b_started: bool,
) -> None:
    # GIVEN one target at a time, member A's EC2 endpoint answering each attempt of its snapshot
    # listings (two a run) with throttling as the attempt's 15 s of timeouts run out, botocore's
    # throttling waits drawn at their longest (121 s a call, where the bound is 92 s), member B
    # with a daily volume, and a run with time for member A's budget and hung calls (30 s and
    # 2 x 92 s) and the 28 s of settling after them, or for both members'
    draw_longest_botocore_waits(monkeypatch)
    ec2_b, daily_b = daily_volume_in_member_b
    backup({"action": "backup", "dry_run": True})
    time = LambdaTime(seconds_left).spend_botocore_waits(monkeypatch)
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    throttling = throttle_just_before_timeout(member_ec2, "ec2", "DescribeSnapshots", time.spend)
    # WHEN the night's run comes
    result = backup({"action": "backup"}, time.context())
    # THEN Lambda did not end the run: the first listing ended within the 92 s bound, naming
    # why it was not retried, and gave the endpoint up, so the pruning's listing was not tried,
    # member A's table was still backed up, and member B was backed up when the run had time
    # for it, else left for the next run
    assert throttling.attempts == 5
    assert time.spent <= 92, time.spent
    target_a = target_of(result, MEMBER_A)
    assert [error["resource"] for error in target_a["errors"]] == [
        "ec2:DescribeVolumes",
        "ec2:DescribeSnapshots",
    ]
    assert all("not retried after 90.0 s" in error["error"] for error in target_a["errors"])
    assert target_a["errors"][1]["error"].startswith("not tried: ")
    assert _backup_names(member_a["dynamodb"]) == ["lambda-fleet.dev.orders-20250602"]
    assert (target_of(result, MEMBER_B)["status"] == "ok") is member_b_started
    assert len(_snapshots_of(ec2_b, daily_b)) == int(member_b_started)


@pytest.mark.parametrize(
    ("seconds_left", "member_b_started"),
    [
        pytest.param(30 + 2 * 92 + SETTLE_ACCOUNT_SECONDS + 1, False, id="time-for-member-a-only"),
        pytest.param(
            2 * (30 + 2 * 92) + SETTLE_ACCOUNT_SECONDS + 1, True, id="time-for-both-members"
        ),
    ],
)
@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_member_whose_dynamodb_throttles_every_call_to_its_bound_is_given_up_after_one(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    monkeypatch: pytest.MonkeyPatch,
    daily_volume_in_member_b: tuple[Any, str],
    seconds_left: int,
    member_b_started: bool,
) -> None:
    # GIVEN one target at a time, member A with a third table (three DescribeTable calls a run)
    # and a DynamoDB endpoint answering each attempt of DescribeTable with throttling as the
    # attempt's 15 s of timeouts run out, so each call runs to its 92 s bound (90 s), botocore's
    # throttling waits drawn at their longest, member B with a daily volume, and a run with time
    # for member A's budget and hung calls (30 s and 2 x 92 s) and the 28 s of settling after
    # them, or for both members'
    _table(member_a["dynamodb"], "carts", backup="daily")
    draw_longest_botocore_waits(monkeypatch)
    ec2_b, daily_b = daily_volume_in_member_b
    backup({"action": "backup", "dry_run": True})
    time = LambdaTime(seconds_left).spend_botocore_waits(monkeypatch)
    member_dynamodb = built_services[0].member_client("dynamodb", MEMBER_A, REGION)
    throttling = throttle_just_before_timeout(
        member_dynamodb, "dynamodb", "DescribeTable", time.spend
    )
    # WHEN the night's run comes
    result = backup({"action": "backup"}, time.context())
    # THEN Lambda did not end the run: the first DescribeTable ran to its bound and gave the
    # endpoint up as a call left unanswered would (MEMBER_ENDPOINT_GIVEN_UP_AFTER is one), so
    # the other tables and the backups' pruning failed at once naming the endpoint, member A's
    # volumes were still copied, and member B was backed up when the run had time for it
    assert throttling.attempts == 5
    assert time.spent <= 92, time.spent
    errors = {error["resource"]: error["error"] for error in target_of(result, MEMBER_A)["errors"]}
    first_table, *later_tables = member_a["dynamodb"].list_tables()["TableNames"]
    assert sorted(errors) == sorted(["dynamodb:ListBackups", first_table, *later_tables])
    assert "not retried after 90.0 s" in errors[first_table]
    given_up = f"dynamodb in account {MEMBER_A} region {REGION} did not answer earlier"
    assert all(given_up in errors[table] for table in later_tables)
    assert errors["dynamodb:ListBackups"].startswith("not tried: ")
    assert _backup_names(member_a["dynamodb"]) == []
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
    assert (target_of(result, MEMBER_B)["status"] == "ok") is member_b_started
    assert len(_snapshots_of(ec2_b, daily_b)) == int(member_b_started)


@pytest.mark.parametrize(
    "hung_call",
    [
        pytest.param("CreateBackup", id="before-the-table-is-copied"),
        pytest.param("ListBackups", id="after-both-are-copied"),
    ],
)
@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_run_killed_after_some_copies_does_not_copy_them_again_on_the_platforms_retry(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    hung_call: str,
) -> None:
    # GIVEN one target at a time, and member A's first `hung_call` to DynamoDB never answered,
    # so the invocation (600 s, the function's timeout) hangs after member A's volume was copied
    member_dynamodb = member_a_client_after_a_dry_run(backup, built_services, "dynamodb")
    hang = hang_first_attempt(member_dynamodb, "dynamodb", hung_call)
    with night_run_held_until_killed(backup, hang):
        assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
        # WHEN Lambda kills it at its deadline and the platform retries a minute later
        fake_clock.advance(600 + 60)
        retried = backup({"action": "backup"})
    # THEN the retry made only the copies the dead invocation had not made
    assert target_of(retried, MEMBER_A)["status"] == "ok", target_of(retried, MEMBER_A)
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
    assert len(_backup_names(member_a["dynamodb"])) == 1


@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_snapshot_whose_run_was_killed_before_its_own_id_tag_is_tagged_by_the_retry(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A's first CreateTags never answered, so the invocation hangs after member A's
    # daily volume was snapshotted, before the snapshot is tagged with its own id
    ec2, daily = member_a["ec2"], member_a["daily"]
    member_ec2 = member_a_client_after_a_dry_run(backup, built_services, "ec2")
    hang = hang_first_attempt(member_ec2, "ec2", "CreateTags")
    with night_run_held_until_killed(backup, hang):
        [snapshot] = [s["SnapshotId"] for s in _snapshots(ec2) if s["VolumeId"] == daily]
        assert own_id_tag(ec2, snapshot) is None
        # WHEN Lambda kills it at its deadline and the platform retries a minute later
        fake_clock.advance(600 + 60)
        backup({"action": "backup"})
    # THEN the retry tagged the snapshot the killed invocation made with its own id, copying
    # nothing again
    assert own_id_tag(ec2, snapshot) == snapshot
    assert len(_snapshots_of(ec2, daily)) == 1
    # AND once expired, it is pruned, not kept as unproven
    target = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    assert snapshot in {entry["id"] for entry in target["expired"]}
    assert target["unproven"] == 0


def test_tables_whose_long_names_begin_alike_get_backup_names_of_their_own_and_expire(
    backup: Invoke, member_a: dict[str, Any], state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN two daily tables in member A whose 250-character names differ only past the 233
    # characters of a table name a backup name holds
    dynamodb = member_a["dynamodb"]
    long_tables = [f"{'t' * 240}-{suffix}" for suffix in ("aaaaaaaa", "bbbbbbbb")]
    for table in long_tables:
        _table(dynamodb, table, backup="daily")
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN each table's backup has a name of its own, within DynamoDB's 255 characters, and its
    # own saved expiry
    names = {c["source"]: c["name"] for c in target["copies"] if c["source"] in long_tables}
    assert len(set(names.values())) == 2
    assert all(len(name) <= 255 for name in names.values())
    for table, name in names.items():
        record = state_table.get_value(named_expiry_key(MEMBER_A, REGION, name), EXPIRY_VALUE)
        assert record is not None and record["table"] == table
    # WHEN the schedule runs after the 7-day retention
    run_after_the_retention(backup, fake_clock)
    # THEN both first backups were deleted: none is left behind for ever
    assert set(names.values()).isdisjoint(_backup_names(dynamodb))


def answer_table_backups_without_summaries(dynamodb: Any) -> MalformedAnswer:
    """Make `dynamodb` answer every listing of one table's backups with a ListBackups page
    without BackupSummaries (a proxy's JSON `{}`): botocore's model leaves the field optional;
    moto sends it, empty or not."""
    return answer_malformed(dynamodb, "dynamodb", "ListBackups", b"{}", body_with=b'"TableName"')


@pytest.mark.usefixtures("one_target_at_a_time")
def test_a_retry_told_the_tables_backups_without_their_list_makes_no_second_backup(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN a night's run killed at its deadline after member A's table was backed up (its
    # pruning's ListBackups never answered)
    member_dynamodb = member_a_client_after_a_dry_run(backup, built_services, "dynamodb")
    hang = hang_first_attempt(member_dynamodb, "dynamodb", "ListBackups")
    with night_run_held_until_killed(backup, hang):
        fake_clock.advance(600 + 60)
    # AND member A answering the listing of the table's backups with a page without
    # BackupSummaries
    page = answer_table_backups_without_summaries(member_dynamodb)
    # WHEN the platform retries the run
    retried = member_a_run(backup)
    # THEN the table is an error naming the call and what its answer lacked, and no second
    # backup is made beside the first (whose expiry it would take over, leaving it for ever)
    assert page.answered >= 1
    [error] = retried["errors"]
    assert error["resource"] == "orders"
    assert "ListBackups answered without BackupSummaries" in error["error"]
    assert _backup_names(member_a["dynamodb"]) == [todays_orders_backup_name(fake_clock)]


def test_expired_copies_made_by_the_scheduler_are_deleted_and_others_are_kept(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN today's copies, plus a hand-made snapshot and a hand-made backup with our prefix
    ec2, dynamodb = member_a["ec2"], member_a["dynamodb"]
    backup({"action": "backup"})
    manual_snapshot = ec2.create_snapshot(VolumeId=member_a["untagged"])["SnapshotId"]
    dynamodb.create_backup(TableName="scratch", BackupName="lambda-fleet-scratch-manual")
    first_copies = {s["SnapshotId"] for s in _snapshots(ec2)} - {manual_snapshot}
    # WHEN the schedule runs after the 7-day retention
    result = run_after_the_retention(backup, fake_clock)
    # THEN the first day's snapshot and backup are deleted, the hand-made ones kept
    remaining = {s["SnapshotId"] for s in _snapshots(ec2)}
    assert first_copies.isdisjoint(remaining)
    assert manual_snapshot in remaining
    assert _backup_names(dynamodb) == [
        "lambda-fleet-scratch-manual",
        "lambda-fleet.dev.orders-20250610",
    ]
    assert target_of(result, MEMBER_A)["deleted"] == 2


def test_a_copy_expires_at_exactly_its_retention_not_a_second_before(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the first day's copies of member A's daily volume and table, kept 7 days, and the
    # next day's
    first_copies = {copy["id"] for copy in member_a_run(backup)["copies"]}
    first_run = fake_clock.now()
    fake_clock.advance(DAY)
    member_a_run(backup)
    # WHEN dry runs come a second before the 7 days are up, and as they are
    fake_clock.set(first_run + timedelta(days=7, seconds=-1))
    before = member_a_run_dry(backup)
    fake_clock.set(first_run + timedelta(days=7))
    at = member_a_run_dry(backup)
    # THEN the copies would be deleted at exactly their expiry, not a second before
    assert first_copies.isdisjoint(entry["id"] for entry in before["expired"] + before["kept"])
    assert {entry["id"] for entry in at["expired"]} == first_copies


def member_a_run_dry(backup: Invoke) -> dict[str, Any]:
    """What a dry run reports of member A: what it would copy and delete, nothing done."""
    return target_of(backup({"action": "backup", "dry_run": True}), MEMBER_A)


def copy_with_its_tags(ec2: Any, snapshot_id: str) -> str:
    """Copy `snapshot_id` as an engineer does to keep it, or to another region: with every tag
    of the source (the console's "copy tags"); the copy's id."""
    [source] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    return ec2.copy_snapshot(
        SourceSnapshotId=snapshot_id,
        SourceRegion=REGION,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": source["Tags"]}],
    )["SnapshotId"]


def test_a_copy_someone_made_of_a_fleet_snapshot_with_its_tags_is_not_pruned_with_it(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the first day's snapshot of member A's daily volume
    ec2 = member_a["ec2"]
    [first_snapshot] = [c["id"] for c in member_a_run(backup)["copies"] if c["kind"] == "snapshot"]
    # AND an engineer's copy of it, carrying all its tags (its expiry among them)
    kept_copy = copy_with_its_tags(ec2, first_snapshot)
    # WHEN the schedule runs after the 7-day retention
    target = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    # THEN the fleet's snapshot is deleted and the engineer's copy kept, neither deleted nor
    # kept as a last good copy
    remaining = {s["SnapshotId"] for s in _snapshots(ec2)}
    assert first_snapshot not in remaining
    assert kept_copy in remaining
    assert {entry["id"] for entry in target["expired"]} >= {first_snapshot}
    assert kept_copy not in {entry["id"] for entry in target["expired"] + target["kept"]}


def snapshot_made_before_the_upgrade(
    ec2: Any, volume_id: str, clock: ManualClock, retention: timedelta = timedelta(days=7)
) -> str:
    """A daily copy of `volume_id` as the version before own-id tags made it on the clock's day,
    kept for `retention`: the fleet's tags and description, no tag naming its own id; its id."""
    tags = {
        SOURCE_VOLUME_TAG: volume_id,
        COPY_TAG: "daily",
        EXPIRES_TAG: (clock.now() + retention).isoformat().replace("+00:00", "Z"),
        RUN_DAY_TAG: clock.now().date().isoformat(),
    }
    return str(
        ec2.create_snapshot(
            VolumeId=volume_id,
            Description=f"lambda-fleet daily backup of {volume_id}",
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
                }
            ],
        )["SnapshotId"]
    )


def day_recorded_before_the_upgrade(
    state_table: StateTable, clock: ManualClock, volume_id: str, snapshot_id: str
) -> None:
    """Member A's day of the clock completed by the version before, as it recorded it: its lists
    in the record, for IDEMPOTENCY_TTL_SECONDS."""
    summary = {
        "account_id": MEMBER_A,
        "region": REGION,
        "status": "ok",
        "created": 1,
        "deleted": 0,
        "skipped": 0,
        "failed": 0,
        "copies": [
            {"kind": "snapshot", "source": volume_id, "frequency": "daily", "id": snapshot_id}
        ],
        "expired": [],
        "kept": [],
    }
    request_id = f"{MEMBER_A}/{REGION}/{clock.now().date().isoformat()}"
    with state_table.idempotent("backup_scheduler", request_id, IDEMPOTENCY_TTL_SECONDS) as day:
        day.complete(summary)


def own_id_tag(ec2: Any, snapshot_id: str) -> str | None:
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    return {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}.get(SNAPSHOT_ID_TAG)


def stack_tag(ec2: Any, snapshot_id: str) -> str | None:
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    return {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}.get(STACK_TAG)


PROD_STATE_TABLE_NAME = "lambda-fleet-prod-state"


@pytest.fixture
def backup_as_prod(
    backup: Invoke,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Invoke:
    """Invoke the handler as a second stack, `prod`, backing up the members `backup` (stack
    `dev`) does: its own state table and services, on the same clock."""
    create_state_table(dynamodb_client, PROD_STATE_TABLE_NAME)
    invoke = invoke_for_members_a_b_and_denied(
        app.FUNCTION,
        lambda environment: BackupServices.create(app.FUNCTION.name, environment, clock=fake_clock),
        BackupEnvironment,
        [],
        monkeypatch,
    )

    def invoke_as_prod(event: Any) -> dict[str, Any]:
        with monkeypatch.context() as prod:
            prod.setenv("STACK_NAME", "prod")
            prod.setenv("STATE_TABLE_NAME", PROD_STATE_TABLE_NAME)
            return invoke(event)

    return invoke_as_prod


def daily_copy_of(target: dict[str, Any], volume_id: str) -> str:
    [copy] = [c["id"] for c in target["copies"] if c["source"] == volume_id]
    return str(copy)


def test_stacks_sharing_a_member_each_copy_its_volumes_and_prune_only_their_own_copies(
    backup: Invoke, backup_as_prod: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN stacks dev and prod both backing up member A, dev's run of the day before prod's
    ec2, daily = member_a["ec2"], member_a["daily"]
    dev_copy = daily_copy_of(member_a_run(backup), daily)
    # WHEN prod's run of the same day comes
    prod_copy = daily_copy_of(target_of(backup_as_prod({"action": "backup"}), MEMBER_A), daily)
    # THEN prod made its own copy of the daily volume (dev's is not its copy of the day), each
    # tagged with its stack
    assert dev_copy != prod_copy
    assert (stack_tag(ec2, dev_copy), stack_tag(ec2, prod_copy)) == ("dev", "prod")
    # WHEN dev runs after the 7-day retention, before prod's run of that day
    dev_target = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    # THEN dev pruned its own expired copy and left prod's, neither deleted nor reported
    remaining = {snapshot["SnapshotId"] for snapshot in _snapshots(ec2)}
    assert dev_copy not in remaining and prod_copy in remaining
    dev_listed = {entry["id"] for entry in dev_target["expired"] + dev_target["kept"]}
    assert dev_copy in dev_listed and prod_copy not in dev_listed
    assert dev_target["unproven"] == 0
    # WHEN prod's run of that day comes
    prod_target = target_of(backup_as_prod({"action": "backup"}), MEMBER_A)
    # THEN prod pruned its own, and dev's new copy stays
    dev_new_copy = daily_copy_of(dev_target, daily)
    remaining = {snapshot["SnapshotId"] for snapshot in _snapshots(ec2)}
    assert prod_copy not in remaining and dev_new_copy in remaining
    assert prod_copy in {entry["id"] for entry in prod_target["expired"]}
    assert prod_target["unproven"] == 0


def test_stacks_sharing_a_member_name_their_table_backups_apart_and_hunt_only_their_own(
    backup: Invoke,
    backup_as_prod: Invoke,
    member_a: dict[str, Any],
    member_a_dynamodb_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a run today (moto dates a backup by the real clock): prod's backup of member A's
    # daily table made, then dev's first CreateBackup applied but its answer lost, so botocore's
    # retry makes a second backup, whose hunt looks for the other backups of its name
    dynamodb = member_a["dynamodb"]
    fake_clock.set(datetime.now(UTC))
    day = f"{fake_clock.now():%Y%m%d}"
    backup_as_prod({"action": "backup"})
    lost = lose_first_answer(member_a_dynamodb_of_the_handler, "dynamodb", "CreateBackup")
    # WHEN dev's run of the same day comes
    member_a_run(backup)
    # THEN dev's first answer was lost, and each stack has one backup of the day, named for its
    # stack: dev's hunt left prod's
    assert lost.lost == 1
    assert _backup_names(dynamodb) == [
        f"lambda-fleet.dev.orders-{day}",
        f"lambda-fleet.prod.orders-{day}",
    ]
    # WHEN dev runs after the retention
    run_after_the_retention(backup, fake_clock)
    # THEN it pruned its own expired backup and left prod's
    names = _backup_names(dynamodb)
    assert f"lambda-fleet.prod.orders-{day}" in names
    assert f"lambda-fleet.dev.orders-{day}" not in names


def test_an_earlier_versions_backup_is_pruned_by_its_saved_arn_and_kept_unproven_without(
    backup: Invoke, member_a: dict[str, Any], state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN two backups named as earlier versions named them, any stack sharing the account may
    # have made, made today (moto dates a backup by the real clock), their saved expiries past:
    # one naming its ARN, the other (its ARN never saved) only its table
    dynamodb = member_a["dynamodb"]
    fake_clock.set(datetime.now(UTC))
    expired = {"expires_at": iso_z(fake_clock.now() - timedelta(hours=1)), "table": "scratch"}
    arns = {}
    for name in ("lambda-fleet-scratch-proven", f"lambda-fleet-scratch-{fake_clock.now():%Y%m%d}"):
        arns[name] = dynamodb.create_backup(TableName="scratch", BackupName=name)["BackupDetails"][
            "BackupArn"
        ]
    proven, unproven = arns
    state_table.put_value(
        named_expiry_key(MEMBER_A, REGION, proven),
        EXPIRY_VALUE,
        {**expired, "backup_arn": arns[proven]},
    )
    state_table.put_value(named_expiry_key(MEMBER_A, REGION, unproven), EXPIRY_VALUE, expired)
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN the one its ARN shows to be this stack's is deleted; the other is kept and reported
    assert _backup_names(dynamodb) == sorted(
        [unproven, f"lambda-fleet.dev.orders-{fake_clock.now():%Y%m%d}"]
    )
    assert (target["unproven"], target["unproven_ids"]) == (1, [arns[unproven]])


def test_a_copy_made_before_the_stack_tag_is_pruned_by_no_stack_but_kept_and_reported(
    backup: Invoke, backup_as_prod: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN a copy of member A's daily volume the version before the stack tag made and tagged
    # with its own id, in a member dev and prod share, with no day's record naming it
    ec2, daily = member_a["ec2"], member_a["daily"]
    before = snapshot_made_before_the_upgrade(ec2, daily, fake_clock)
    ec2.create_tags(Resources=[before], Tags=[{"Key": SNAPSHOT_ID_TAG, "Value": before}])
    # WHEN each stack runs after its 7-day retention
    fake_clock.advance(8 * DAY)
    dev_target = member_a_run(backup)
    prod_target = target_of(backup_as_prod({"action": "backup"}), MEMBER_A)
    # THEN neither pruned it (either could have made it), and each reports it, for a person to
    # delete it or hand it to its stack
    assert before in {snapshot["SnapshotId"] for snapshot in _snapshots(ec2)}
    for target in (dev_target, prod_target):
        assert before not in {entry["id"] for entry in target["expired"] + target["kept"]}
        assert (target["unproven"], target["unproven_ids"]) == (1, [before])
    assert stack_tag(ec2, before) is None


def test_a_pre_upgrade_snapshot_its_day_record_names_is_pruned_but_a_copy_of_it_never(
    backup: Invoke,
    member_a: dict[str, Any],
    state_table: StateTable,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN yesterday's copy of member A's daily volume as the version before the upgrade made
    # it (no own-id tag) and recorded it in its day's record
    ec2, daily = member_a["ec2"], member_a["daily"]
    fake_clock.advance(-DAY)
    original = snapshot_made_before_the_upgrade(ec2, daily, fake_clock)
    day_recorded_before_the_upgrade(state_table, fake_clock, daily, original)
    fake_clock.advance(DAY)
    # AND an engineer's copy of it with all its tags, made before the upgrade
    copy = copy_with_its_tags(ec2, original)
    # WHEN a dry run comes after the upgrade
    monkeypatch.setenv("FLEET_DRY_RUN", "true")
    member_a_run(backup)
    monkeypatch.setenv("FLEET_DRY_RUN", "false")
    # THEN it tags nothing
    assert (own_id_tag(ec2, original), own_id_tag(ec2, copy)) == (None, None)
    # WHEN the first run after the upgrade comes, while that day's record lasts
    member_a_run(backup)
    # THEN the original, which the record names, is tagged with its own id and the stack; the
    # copy is not
    assert (own_id_tag(ec2, original), own_id_tag(ec2, copy)) == (original, None)
    assert (stack_tag(ec2, original), stack_tag(ec2, copy)) == ("dev", None)
    # WHEN the schedule runs after the 7-day retention, the day's record long gone
    result = run_after_the_retention(backup, fake_clock)
    # THEN the original is pruned, and the copy kept and reported as not shown to be the fleet's
    target = target_of(result, MEMBER_A)
    remaining = {snapshot["SnapshotId"] for snapshot in _snapshots(ec2)}
    assert original not in remaining and copy in remaining
    assert original in {entry["id"] for entry in target["expired"]}
    assert copy not in {entry["id"] for entry in target["expired"] + target["kept"]}
    assert (target["unproven"], target["unproven_ids"]) == (1, [copy])
    assert result["unproven"] == 1


def test_a_pre_upgrade_snapshot_whose_day_record_is_gone_is_kept_and_reported_not_pruned(
    backup: Invoke,
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a copy of member A's daily volume the version before the upgrade made (no own-id
    # tag) on a day whose record is gone, and an engineer's copy of it with all its tags
    ec2, daily = member_a["ec2"], member_a["daily"]
    original = snapshot_made_before_the_upgrade(ec2, daily, fake_clock)
    copy = copy_with_its_tags(ec2, original)
    # WHEN the schedule runs after their 7-day retention
    result = run_after_the_retention(backup, fake_clock)
    # THEN neither is pruned: nothing shows which is the fleet's (same tags, same description)
    target = target_of(result, MEMBER_A)
    remaining = {snapshot["SnapshotId"] for snapshot in _snapshots(ec2)}
    assert {original, copy} <= remaining
    assert target["deleted"] == 0
    assert (own_id_tag(ec2, original), own_id_tag(ec2, copy)) == (None, None)
    # AND both are reported, counted and named, in the result and the log, for a person to decide
    assert (target["unproven"], target["unproven_ids"]) == (2, sorted([original, copy]))
    [logged] = [r for r in caplog.records if r.getMessage().startswith("expired copies kept")]
    assert (logged.count, logged.copy_ids) == (2, sorted([original, copy]))


def test_a_snapshot_whose_own_id_tagging_failed_is_tagged_by_the_next_run_and_pruned(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN a run whose CreateTags of its new snapshots' own ids fails
    ec2 = member_a["ec2"]
    member_ec2 = member_a_client_after_a_dry_run(backup, built_services, "ec2")
    tagging = fail_every_attempt(member_ec2, "ec2", "CreateTags")
    [first] = [c["id"] for c in member_a_run(backup)["copies"] if c["kind"] == "snapshot"]
    assert own_id_tag(ec2, first) is None
    # WHEN the next day's run tags again
    tagging.healed = True
    fake_clock.advance(DAY)
    member_a_run(backup)
    # THEN it tags the first day's snapshot from that day's record
    assert own_id_tag(ec2, first) == first
    # AND once expired, the snapshot is pruned
    target = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    assert first in {entry["id"] for entry in target["expired"]}
    assert target["unproven"] == 0


def test_a_pre_upgrade_snapshot_is_not_pruned_while_the_day_records_cannot_be_read(
    backup: Invoke,
    member_a: dict[str, Any],
    state_table: StateTable,
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN an expired copy made by this version, and one the version before the upgrade made
    # two days ago with a retention of one day, its day's record still there
    ec2, daily = member_a["ec2"], member_a["daily"]
    fake_clock.advance(-8 * DAY)
    [since] = [copy["id"] for copy in member_a_run(backup)["copies"] if copy["source"] == daily]
    fake_clock.advance(6 * DAY)
    before = snapshot_made_before_the_upgrade(ec2, daily, fake_clock, timedelta(days=1))
    day_recorded_before_the_upgrade(state_table, fake_clock, daily, before)
    fake_clock.advance(2 * DAY)
    # AND the state table's reads of the day records failing
    hub_dynamodb = built_services[0].sessions.hub_client("dynamodb")
    fail_every_attempt(hub_dynamodb, "dynamodb", "GetItem")
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN the copy tagged with its own id is pruned, the other kept, and the failure reported
    remaining = {snapshot["SnapshotId"] for snapshot in _snapshots(ec2)}
    assert since not in remaining and before in remaining
    assert {entry["resource"] for entry in target["errors"]} >= {"state table: day records"}
    assert target["unproven"] == 0


DAY_RECORD_OF_NOTHING = {"account_id": MEMBER_A, "region": REGION, "status": "ok", "copies": []}
"""A completed day of member A that made no copy, as its record holds it."""
ONE_PART = {"id": "0" * 32, "count": 1}
"""The `parts` of a day record whose lists are saved in one part."""


@pytest.mark.parametrize(
    ("record", "part", "problem"),
    [
        pytest.param(
            {**DAY_RECORD_OF_NOTHING, "parts": ONE_PART},
            None,
            "part 0 of its lists is missing",
            id="part-missing",
        ),
        pytest.param(
            {**DAY_RECORD_OF_NOTHING, "parts": ONE_PART},
            {SECRET: []},
            "part 0 of its lists holds other than copies, expired, kept, errors",
            id="part-of-other-lists",
        ),
        pytest.param(
            {**DAY_RECORD_OF_NOTHING, "parts": SECRET},
            None,
            "its parts are not a text id and a count",
            id="parts-not-named",
        ),
        pytest.param(
            {**DAY_RECORD_OF_NOTHING, "copies": [SECRET]},
            None,
            "its copies are not a list of objects",
            id="copies-not-objects",
        ),
    ],
)
def test_a_day_record_not_as_saved_fails_its_target_alone_on_a_retry_and_when_pruning(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    state_table: StateTable,
    fake_clock: ManualClock,
    daily_volume_in_member_b: tuple[Any, str],
    record: dict[str, Any],
    part: dict[str, Any] | None,
    problem: str,
) -> None:
    # GIVEN member A's copy of its daily volume as the version before own-id tags made it, kept
    # a day, and member A's record of the day (and its `part`) changed by a hand edit
    ec2 = member_a["ec2"]
    if part is not None:
        key = day_record_key(MEMBER_A, REGION, fake_clock.now().date())
        state_table.put_value(key, f"{ONE_PART['id']}#000000", part)
    original = snapshot_made_before_the_upgrade(
        ec2, member_a["daily"], fake_clock, timedelta(days=1)
    )
    request_id = f"{MEMBER_A}/{REGION}/{fake_clock.now().date().isoformat()}"
    with state_table.idempotent("backup_scheduler", request_id, IDEMPOTENCY_TTL_SECONDS) as day:
        day.complete(record)
    # WHEN the schedule is retried that day
    retried = backup({"action": "backup"})
    # THEN member A alone fails, naming its day and what is wrong, never a value, and is not
    # backed up again; member B is backed up
    assert problem in target_of(retried, MEMBER_A)["error"]
    assert request_id in target_of(retried, MEMBER_A)["error"]
    assert SECRET not in str(retried)
    assert [s["SnapshotId"] for s in _snapshots(ec2)] == [original]
    assert target_of(retried, MEMBER_B)["status"] == "ok"
    # WHEN the next day's run prunes, the copy expired and that record still read as a proof
    fake_clock.advance(DAY)
    target = target_of(backup({"action": "backup"}), MEMBER_A)
    # THEN the copy no record proves the fleet's is kept, and the record is member A's error
    assert original in {s["SnapshotId"] for s in _snapshots(ec2)}
    [failure] = [e for e in target["errors"] if e["resource"] == "state table: day records"]
    assert problem in failure["error"]
    assert target["created"] == 2


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize(
    ("service", "operation"),
    [
        pytest.param("ec2", "DeleteSnapshot", id="snapshot"),
        pytest.param("dynamodb", "DeleteBackup", id="dynamodb-backup"),
    ],
)
def test_an_expired_copy_deleted_whose_answer_was_lost_counts_as_deleted_on_botocores_retry(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    service: str,
    operation: str,
) -> None:
    # GIVEN member A's copies of the first day, past their 7-day retention a week later
    first_copies = {c["id"] for c in member_a_run(backup)["copies"]}
    fake_clock.advance(8 * DAY)
    # AND member A applying the first deletion of one kind but its answer lost, so botocore
    # sends it again and is told the copy does not exist
    member_client = built_services[0].member_client(service, MEMBER_A, REGION)
    lost = lose_first_answer(member_client, service, operation)
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN every expired copy is reported deleted, none as failed
    assert lost.lost == 1
    assert {entry["id"] for entry in target["expired"]} == first_copies
    assert target["failed"] == 0, target.get("errors")
    assert target["status"] == "ok"


def test_pruning_keeps_the_last_good_copy_of_a_resource_whose_new_copies_fail(
    backup: Invoke,
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    built_services: list[BackupServices],
) -> None:
    # GIVEN the first day's copies of member A's daily volume and table
    ec2, dynamodb = member_a["ec2"], member_a["dynamodb"]
    backup({"action": "backup"})
    [first_snapshot] = [
        s["SnapshotId"] for s in _snapshots(ec2) if s["VolumeId"] == member_a["daily"]
    ]
    # AND from then on every CreateSnapshot and CreateBackup in member A failing
    services = built_services[0]
    snapshots_down = fail_every_attempt(
        services.member_client("ec2", MEMBER_A, REGION), "ec2", "CreateSnapshot"
    )
    backups_down = fail_every_attempt(
        services.member_client("dynamodb", MEMBER_A, REGION), "dynamodb", "CreateBackup"
    )
    # WHEN the schedule runs after the 7-day retention
    result = run_after_the_retention(backup, fake_clock)
    # THEN the expired first copies are kept, being the last good copies of their sources,
    # and the run says so
    assert first_snapshot in {s["SnapshotId"] for s in _snapshots(ec2)}
    assert _backup_names(dynamodb) == ["lambda-fleet.dev.orders-20250602"]
    target = target_of(result, MEMBER_A)
    assert target["deleted"] == 0
    kept = target["kept"]
    assert sorted(entry["kind"] for entry in kept) == ["dynamodb_backup", "snapshot"]
    assert first_snapshot in {entry["id"] for entry in kept}
    assert all("last good copy" in entry["reason"] for entry in kept)
    # WHEN the copies succeed again the next day
    snapshots_down.healed = backups_down.healed = True
    fake_clock.advance(DAY)
    backup({"action": "backup"})
    # THEN the new copies replace the expired ones
    assert first_snapshot not in {s["SnapshotId"] for s in _snapshots(ec2)}
    assert _backup_names(dynamodb) == ["lambda-fleet.dev.orders-20250611"]


def test_pruning_keeps_the_copy_that_expires_last_of_a_resource_whose_new_copies_fail(
    backup: Invoke,
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    built_services: list[BackupServices],
) -> None:
    # GIVEN two days' copies of member A's daily volume
    ec2 = member_a["ec2"]
    backup({"action": "backup"})
    fake_clock.advance(DAY)
    backup({"action": "backup"})
    first, second = (
        s["SnapshotId"]
        for s in sorted(_snapshots(ec2), key=lambda s: s["StartTime"])
        if s["VolumeId"] == member_a["daily"]
    )
    # AND from then on every CreateSnapshot in member A failing
    fail_every_attempt(
        built_services[0].member_client("ec2", MEMBER_A, REGION), "ec2", "CreateSnapshot"
    )
    # WHEN the schedule runs after both copies' retention
    result = run_after_the_retention(backup, fake_clock)
    # THEN the copy that expires last is kept, and the older one deleted
    snapshot_ids = {s["SnapshotId"] for s in _snapshots(ec2)}
    assert second in snapshot_ids
    assert first not in snapshot_ids
    kept = target_of(result, MEMBER_A)["kept"]
    assert second in {entry["id"] for entry in kept}


def test_pruning_keeps_the_last_good_copy_while_the_new_copy_is_not_complete(
    backup: Invoke,
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    built_services: list[BackupServices],
) -> None:
    # GIVEN the first day's copy of member A's daily volume
    ec2 = member_a["ec2"]
    backup({"action": "backup"})
    [first_snapshot] = [
        s["SnapshotId"] for s in _snapshots(ec2) if s["VolumeId"] == member_a["daily"]
    ]

    # AND from then on each new snapshot still pending (EC2 copying it) when the run prunes
    def still_pending(parsed: dict[str, Any], **_: Any) -> None:
        snapshots = ec2_backends[MEMBER_A][REGION].snapshots
        snapshots[parsed["SnapshotId"]].status = "pending"

    built_services[0].member_client("ec2", MEMBER_A, REGION).meta.events.register(
        "after-call.ec2.CreateSnapshot", still_pending
    )
    # WHEN the schedule runs after the first copy's retention
    result = run_after_the_retention(backup, fake_clock)
    # THEN the expired first copy is kept, the new one not being good yet
    assert first_snapshot in {s["SnapshotId"] for s in _snapshots(ec2)}
    kept = target_of(result, MEMBER_A)["kept"]
    assert first_snapshot in {entry["id"] for entry in kept}


def test_a_last_good_backup_kept_past_its_expiry_records_life_is_still_deleted_once_replaced(
    backup: Invoke,
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    built_services: list[BackupServices],
) -> None:
    # GIVEN the first day's backup of member A's daily table, its expiry saved for 7 days and
    # EXPIRY_RECORD_MARGIN (90) more
    dynamodb = member_a["dynamodb"]
    first_run = fake_clock.now()
    backup({"action": "backup"})
    first_day = todays_orders_backup_name(fake_clock)
    # AND from then on every CreateBackup in member A failing, for more than those 97 days
    backups_down = fail_every_attempt(
        built_services[0].member_client("dynamodb", MEMBER_A, REGION), "dynamodb", "CreateBackup"
    )
    for day in (60, 100):
        fake_clock.set(first_run + timedelta(days=day))
        kept = target_of(backup({"action": "backup"}), MEMBER_A)["kept"]
        assert [entry["kind"] for entry in kept] == ["dynamodb_backup"], (day, kept)
    # WHEN the backups succeed again the next day
    backups_down.healed = True
    fake_clock.set(first_run + timedelta(days=101))
    backup({"action": "backup"})
    # THEN the new backup replaces the first, which its saved expiry still marks as ours: kept as
    # the last good copy, it was not left to outlive its expiry record and stay for ever
    assert _backup_names(dynamodb) == [todays_orders_backup_name(fake_clock)]
    assert first_day not in _backup_names(dynamodb)


MISTYPED_FREQUENCY = "dialy " + "x" * 250
"""A `backup` tag value that is neither daily nor weekly, longer than any result may repeat."""


def test_a_mistyped_backup_tag_is_an_error_naming_it_and_keeps_the_last_copies(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the first day's copies of member A's daily volume and table `orders`
    ec2, dynamodb = member_a["ec2"], member_a["dynamodb"]
    backup({"action": "backup"})
    [first_snapshot] = [
        s["SnapshotId"] for s in _snapshots(ec2) if s["VolumeId"] == member_a["daily"]
    ]
    first_backup = todays_orders_backup_name(fake_clock)
    # AND both then tagged `backup` with a value that is neither daily nor weekly, a typo
    typo = [{"Key": "backup", "Value": MISTYPED_FREQUENCY}]
    ec2.create_tags(Resources=[member_a["daily"]], Tags=typo)
    orders_arn = dynamodb.describe_table(TableName="orders")["Table"]["TableArn"]
    dynamodb.tag_resource(ResourceArn=orders_arn, Tags=typo)
    # WHEN the schedule runs after the 7-day retention
    target = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    # THEN each is an error naming the tag and the start of its value, in a short line
    errors = {entry["resource"]: entry["error"] for entry in target["errors"]}
    assert sorted(errors) == sorted([member_a["daily"], "orders"])
    for error in errors.values():
        assert "backup tag 'dialy xxx" in error
        assert len(error) <= 200
    assert target["status"] == "partial"
    # AND their expired copies, the last ones, are kept: a typo does not stop their backups
    # and then delete the copies they had
    assert first_snapshot in {s["SnapshotId"] for s in _snapshots(ec2)}
    assert first_backup in _backup_names(dynamodb)
    assert {entry["kind"] for entry in target["kept"]} == {"snapshot", "dynamodb_backup"}


@pytest.mark.parametrize("key", ["Backup", "backups"])
def test_a_backup_tag_key_written_otherwise_is_an_error_naming_it_and_keeps_the_last_copies(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock, key: str
) -> None:
    # GIVEN the first day's copies of member A's daily volume and table `orders`
    ec2, dynamodb = member_a["ec2"], member_a["dynamodb"]
    backup({"action": "backup"})
    [first_snapshot] = [
        s["SnapshotId"] for s in _snapshots(ec2) if s["VolumeId"] == member_a["daily"]
    ]
    first_backup = todays_orders_backup_name(fake_clock)
    # AND both then tagged `Backup=daily` (the console's capitalised style) or `backups=daily`
    # instead, their `backup` tag removed
    ec2.delete_tags(Resources=[member_a["daily"]], Tags=[{"Key": "backup"}])
    ec2.create_tags(Resources=[member_a["daily"]], Tags=[{"Key": key, "Value": "daily"}])
    orders_arn = dynamodb.describe_table(TableName="orders")["Table"]["TableArn"]
    dynamodb.untag_resource(ResourceArn=orders_arn, TagKeys=["backup"])
    dynamodb.tag_resource(ResourceArn=orders_arn, Tags=[{"Key": key, "Value": "daily"}])
    # WHEN the schedule runs after the 7-day retention
    target = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    # THEN each is an error naming the tag as written
    errors = {entry["resource"]: entry["error"] for entry in target["errors"]}
    assert sorted(errors) == sorted([member_a["daily"], "orders"])
    for error in errors.values():
        assert f"tag {key}='daily'" in error
    # AND their expired copies, the last ones, are kept: a key written otherwise does not stop
    # their backups and then delete the copies they had
    assert first_snapshot in {s["SnapshotId"] for s in _snapshots(ec2)}
    assert first_backup in _backup_names(dynamodb)
    assert {entry["kind"] for entry in target["kept"]} == {"snapshot", "dynamodb_backup"}


def test_a_failing_snapshot_is_reported_and_the_other_resources_are_still_copied(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
) -> None:
    # GIVEN a second daily volume whose CreateSnapshot the EC2 API refuses
    broken = create_volume(member_a["ec2"], backup="daily")
    member_ec2 = member_a_client_after_a_dry_run(backup, built_services, "ec2")

    def refuse(params: dict[str, Any], **_: Any) -> Any:
        if params.get("body", {}).get("VolumeId") == broken:
            error = {"Code": "IncorrectState", "Message": f"{broken} is not ready"}
            return _Response(), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    member_ec2.meta.events.register("before-call.ec2.CreateSnapshot", refuse)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN the broken volume is reported, the other volume and the table are copied
    target = target_of(result, MEMBER_A)
    assert target["status"] == "partial"
    assert target["failed"] == 1
    assert target["errors"][0]["resource"] == broken
    assert target["created"] == 2
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1
    assert _snapshots_of(member_a["ec2"], broken) == []


class _Response:
    status_code = 400
    headers: dict[str, str] = {}


@pytest.mark.parametrize("switch", DRY_RUN_SWITCHES)
def test_dry_run_reports_copies_and_deletions_and_changes_nothing(
    backup: Invoke,
    member_a: dict[str, Any],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    switch: str,
) -> None:
    # GIVEN copies made 8 days ago, past their 7-day retention now, and newer ones within it
    ec2, dynamodb = member_a["ec2"], member_a["dynamodb"]
    backup({"action": "backup"})
    fake_clock.advance(3 * DAY)
    backup({"action": "backup"})
    fake_clock.advance(5 * DAY)
    before = ({s["SnapshotId"] for s in _snapshots(ec2)}, _backup_names(dynamodb))
    # WHEN a dry run happens
    result = backup(dry_run_event("backup", switch, monkeypatch))
    # THEN it reports what it would create and delete, and nothing changed
    target = target_of(result, MEMBER_A)
    assert result["dry_run"] is True
    assert (target["created"], target["deleted"]) == (2, 2)
    assert ({s["SnapshotId"] for s in _snapshots(ec2)}, _backup_names(dynamodb)) == before
    # AND the day is not claimed: the real run afterwards still copies
    monkeypatch.setenv("FLEET_DRY_RUN", "false")
    assert member_a_run(backup)["created"] == 2


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"action": "snapshot"}, "action"),
        ({"action": "backup", "dry_run": 1}, "dry_run"),
        ({"action": "backup", "tables": ["x"]}, "tables"),
        ({"action": "backup", "run": "last night"}, "run"),
        ({"action": "backup", "run": "2025-06-02T02:00:00"}, "run"),
        ({"action": "backup", "run": "2025-06-03T02:00:00Z"}, "run"),
        ({"action": "backup", "run": "2025-05-30T02:00:00Z"}, "run"),
        ({"action": "backup", "run": "0001-01-01T00:00:00+14:00"}, "run"),
        ({"action": "backup", "run": "9999-12-31T23:59:59-14:00"}, "run"),
        ("backup", "event"),
    ],
)
def test_bad_input_is_an_error_naming_the_field_and_copies_nothing(
    backup: Invoke, member_a: dict[str, Any], event: Any, field: str
) -> None:
    # GIVEN member A's tagged resources
    # WHEN the handler gets an invalid event
    result = backup(event)
    # THEN the result names the field and no copy was made
    assert result["status"] == "error"
    assert field in result["error"]
    assert _snapshots(member_a["ec2"]) == []


def test_a_run_whose_inventory_cannot_be_read_fails_so_the_platform_retries_it(
    backup: Invoke, member_a: dict[str, Any], built_services: list[BackupServices]
) -> None:
    # GIVEN the data bucket answering every attempt to read the fleet inventory with an error
    failing_s3 = inventory_unreadable(backup, "backup", built_services)
    # WHEN the night's run comes
    # THEN the invocation fails (an error result would end the run as a success: no retry, no
    # dead-letter queue, no error alarm, and a night without copies), after botocore's retries
    with pytest.raises(InventoryUnreadableError, match="InternalError"):
        backup({"action": "backup"})
    assert failing_s3.attempts > 1
    assert _snapshots(member_a["ec2"]) == []
    # WHEN S3 answers again and Lambda retries the run
    failing_s3.healed = True
    retried = backup({"action": "backup"})
    # THEN the night's copies are made
    assert target_of(retried, MEMBER_A)["created"] == 2
    assert len(_snapshots_of(member_a["ec2"], member_a["daily"])) == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # A day name the function does not know.
        ("BACKUP_WEEKLY_DAY", "SUNDAY"),
        # A dot would make the stack's backup names read as another stack's.
        ("STACK_NAME", "dev.eu"),
    ],
)
def test_an_invalid_setting_fails_the_run_naming_the_variable(
    backup: Invoke,
    member_a: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    # GIVEN the variable set to a value the function does not take
    monkeypatch.setenv(variable, value)
    # WHEN the schedule runs
    with pytest.raises(ConfigurationError) as raised:
        backup({"action": "backup"})
    # THEN the invocation fails naming the variable, and nothing was copied
    assert str(raised.value).startswith(f"environment variable {variable}: ")
    assert _snapshots(member_a["ec2"]) == []


@pytest.mark.parametrize(
    "variable", ["BACKUP_DAILY_RETENTION_DAYS", "BACKUP_WEEKLY_RETENTION_DAYS"]
)
def test_a_retention_past_the_calendar_fails_the_run_naming_the_variable(
    backup: Invoke, member_a: dict[str, Any], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # GIVEN a retention mistyped with extra zeros: copies made now would expire after year 9999
    monkeypatch.setenv(variable, "3650000")
    # WHEN the schedule runs on the weekly day
    with pytest.raises(ConfigurationError) as raised:
        backup({"action": "backup", "run": "2025-06-01T23:59:00Z"})
    # THEN the invocation fails naming the variable (not an OverflowError deep in a run), and
    # nothing was copied
    assert str(raised.value).startswith(f"environment variable {variable}: ")
    assert _snapshots(member_a["ec2"]) == []


def test_a_backup_whose_expiry_cannot_be_saved_is_not_left_behind_for_ever(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A's daily table, and the state table refusing every save of a backup's expiry
    # with a proxy's page of many lines
    dynamodb = member_a["dynamodb"]
    backup({"action": "backup", "dry_run": True})
    refused = fail_every_attempt(
        built_services[0].hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        body_with=(b"VALUE#expiry",),
        server_error=MULTI_LINE_PAGE,
    )
    first_day = f"{fake_clock.now():%Y%m%d}"
    # WHEN the schedule runs
    first = member_a_run(backup)
    # THEN the table is reported as failed
    assert refused.attempts > 0
    assert [error["resource"] for error in first["errors"]] == ["orders"]
    # AND its error is one line, what the page said cut
    [error] = first["errors"]
    assert "\n" not in error["error"] and len(error["error"]) < len(MULTI_LINE_PAGE)
    # AND once the state table works again and the retention has run out, no copy of that day
    # is left: a copy without a saved expiry would never be deleted
    refused.healed = True
    run_after_the_retention(backup, fake_clock)
    assert [name for name in _backup_names(dynamodb) if name.endswith(first_day)] == []


@pytest.fixture
def member_a_ec2_of_the_handler(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    no_retry_waits: None,
) -> Any:
    """Member A's EC2 client of the handler's services (after a dry run), botocore sending its
    retries at once: a lost answer injected there reaches the next run."""
    return member_a_client_after_a_dry_run(backup, built_services, "ec2")


@pytest.fixture
def member_a_dynamodb_of_the_handler(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    no_retry_waits: None,
) -> Any:
    """Member A's DynamoDB client of the handler's services (after a dry run), botocore sending
    its retries at once: a lost answer injected there reaches the next run."""
    return member_a_client_after_a_dry_run(backup, built_services, "dynamodb")


def assert_the_volumes_copy_is_its_new_snapshot(
    target: dict[str, Any], ec2: Any, volume_id: str, *, older: tuple[str, ...] = ()
) -> None:
    """The run made one snapshot of `volume_id` besides the `older` ones, reports it as the
    volume's copy, and failed nothing."""
    [made] = [
        s["SnapshotId"]
        for s in _snapshots(ec2)
        if s["VolumeId"] == volume_id and s["SnapshotId"] not in older
    ]
    assert [c.get("id") for c in target["copies"] if c["source"] == volume_id] == [made]
    assert target["failed"] == 0, target.get("errors")


def assert_the_tables_copy_is(target: dict[str, Any], made: dict[str, Any]) -> None:
    """The run reports the backup `made` (a BackupSummary) as the table's copy, and failed
    nothing."""
    [copy] = [c for c in target["copies"] if c["kind"] == "dynamodb_backup"]
    assert copy["id"] == made["BackupArn"]
    assert target["failed"] == 0, target.get("errors")


def test_a_snapshot_created_whose_answer_was_lost_is_made_once(
    backup: Invoke, member_a: dict[str, Any], member_a_ec2_of_the_handler: Any
) -> None:
    # GIVEN member A's daily volume, and member A applying the first CreateSnapshot of it but its
    # answer lost, so botocore sends it again
    ec2, daily = member_a["ec2"], member_a["daily"]
    lost = lose_first_answer(
        member_a_ec2_of_the_handler, "ec2", "CreateSnapshot", body_with=(daily.encode(),)
    )
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN the volume has one snapshot, the one the result reports
    assert lost.lost == 1
    assert_the_volumes_copy_is_its_new_snapshot(target, ec2, daily)


def test_a_second_snapshot_of_a_lost_answer_that_cannot_be_deleted_expires_with_the_copy(
    backup: Invoke,
    member_a: dict[str, Any],
    member_a_ec2_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A applying the first CreateSnapshot of its daily volume but its answer lost,
    # so botocore's retry makes a second snapshot, and refusing every DeleteSnapshot
    ec2, daily = member_a["ec2"], member_a["daily"]
    lose_first_answer(
        member_a_ec2_of_the_handler, "ec2", "CreateSnapshot", body_with=(daily.encode(),)
    )
    deletes = fail_every_attempt(member_a_ec2_of_the_handler, "ec2", "DeleteSnapshot")
    # WHEN the schedule runs
    [copy] = [c["id"] for c in member_a_run(backup)["copies"] if c["source"] == daily]
    # THEN the snapshot of the lost attempt, left beside the copy, is tagged with its own id too
    [left] = [s["SnapshotId"] for s in _snapshots(ec2) if s["SnapshotId"] != copy]
    assert (own_id_tag(ec2, copy), own_id_tag(ec2, left)) == (copy, left)
    # AND once both expired (deletions answered again), both are pruned, none left unproven
    deletes.healed = True
    target = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    assert {copy, left} <= {entry["id"] for entry in target["expired"]}
    assert target["unproven"] == 0


def test_a_snapshot_whose_retry_ec2_refused_is_the_copy_the_lost_attempt_made(
    backup: Invoke, member_a: dict[str, Any], member_a_ec2_of_the_handler: Any
) -> None:
    # GIVEN member A's daily volume, and member A applying the first CreateSnapshot of it but its
    # answer lost, then refusing botocore's retry (a second snapshot of a volume within 15 s)
    ec2, daily = member_a["ec2"], member_a["daily"]
    fault = refuse_retry_after_lost_answer(
        member_a_ec2_of_the_handler,
        "ec2",
        "CreateSnapshot",
        "SnapshotCreationPerVolumeRateExceeded",
    )
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN the snapshot the first attempt made is reported as the volume's copy, not a failure
    assert (fault.lost, fault.refused) == (1, 1)
    assert_the_volumes_copy_is_its_new_snapshot(target, ec2, daily)


@pytest.mark.parametrize("expiry", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_copy_whose_expiry_tag_is_past_the_calendar_in_utc_stops_neither_the_run_nor_pruning(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock, expiry: str
) -> None:
    # GIVEN member A's daily volume with a copy of ours (tagged with its own id and stack) whose
    # expires-at tag someone set to a time whose offset carries it past the calendar once in
    # UTC, and an older copy that expired
    ec2, daily = member_a["ec2"], member_a["daily"]

    def copy_expiring(expires_at: str) -> str:
        tags = {SOURCE_VOLUME_TAG: daily, COPY_TAG: "daily", EXPIRES_TAG: expires_at}
        snapshot_id = ec2.create_snapshot(
            VolumeId=daily,
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
                }
            ],
        )["SnapshotId"]
        ec2.create_tags(
            Resources=[snapshot_id],
            Tags=[
                {"Key": SNAPSHOT_ID_TAG, "Value": snapshot_id},
                {"Key": STACK_TAG, "Value": "dev"},
            ],
        )
        return str(snapshot_id)

    odd = copy_expiring(expiry)
    expired = copy_expiring((fake_clock.now() - timedelta(days=1)).isoformat())
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN the run goes on: the volume gets its copy of the day, the expired copy is deleted and
    # the one without a readable expiry is left alone, as any copy without one is
    target = target_of(result, MEMBER_A)
    assert target["created"] == 2, target
    assert [entry["id"] for entry in target["expired"]] == [expired]
    remaining = {snapshot["SnapshotId"] for snapshot in _snapshots(ec2)}
    assert odd in remaining and expired not in remaining


def test_a_snapshot_whose_retry_ec2_refused_is_not_taken_for_a_failed_snapshot_of_the_day(
    backup: Invoke,
    member_a: dict[str, Any],
    member_a_ec2_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A's daily volume with a snapshot of the run's day that EC2 failed (state
    # error: the volume is copied again), and member A applying the first CreateSnapshot of it
    # but its answer lost, then refusing botocore's retry (a second snapshot within 15 s)
    ec2, daily = member_a["ec2"], member_a["daily"]
    failed = ec2.create_snapshot(
        VolumeId=daily,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": [
                    {"Key": SOURCE_VOLUME_TAG, "Value": daily},
                    {"Key": RUN_DAY_TAG, "Value": fake_clock.now().date().isoformat()},
                ],
            }
        ],
    )["SnapshotId"]
    ec2_backends[MEMBER_A][REGION].snapshots[failed].status = "error"
    fault = refuse_retry_after_lost_answer(
        member_a_ec2_of_the_handler,
        "ec2",
        "CreateSnapshot",
        "SnapshotCreationPerVolumeRateExceeded",
    )
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN the volume's copy is the snapshot the lost attempt made, not the failed one
    assert (fault.lost, fault.refused) == (1, 1)
    assert_the_volumes_copy_is_its_new_snapshot(target, ec2, daily, older=(failed,))


@dataclass
class _TimesOutAfter:
    """Lets the first `let_through` attempts of an operation go, then times every later one out
    (an endpoint that stopped answering)."""

    let_through: int

    def __call__(self, request: Any, **_: Any) -> None:
        if self.let_through > 0:
            self.let_through -= 1
            return
        raise ReadTimeoutError(endpoint_url=request.url)


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize(
    ("service", "create", "listing", "listed_before", "kind"),
    [
        pytest.param("ec2", "CreateSnapshot", "DescribeSnapshots", 1, "snapshot", id="snapshot"),
        pytest.param(
            "dynamodb", "CreateBackup", "ListBackups", 0, "dynamodb_backup", id="dynamodb-backup"
        ),
    ],
)
def test_a_copy_made_after_a_lost_answer_is_reported_when_its_duplicate_hunt_times_out(
    backup: Invoke,
    member_a: dict[str, Any],
    built_services: list[BackupServices],
    *,
    service: str,
    create: str,
    listing: str,
    listed_before: int,
    kind: str,
) -> None:
    # GIVEN member A applying the first create of a daily copy but its answer lost, so
    # botocore's retry makes the copy, and then not answering the listing that hunts the lost
    # attempt's duplicate (the step's own listing, before it, is answered)
    member_client = member_a_client_after_a_dry_run(backup, built_services, service)
    lost = lose_first_answer(member_client, service, create)
    member_client.meta.events.register_first(
        f"before-send.{service}.{listing}", _TimesOutAfter(listed_before)
    )
    # WHEN the schedule runs
    target = member_a_run(backup)
    # THEN the copy botocore's retry made is reported, though the step ended at the timeout
    assert lost.lost == 1
    assert "Read timeout" in str(target.get("errors"))
    [copy] = [c for c in target["copies"] if c["kind"] == kind]
    assert copy["id"]


def test_a_lost_answers_hunt_leaves_a_backup_of_its_name_made_before_the_attempt(
    backup: Invoke,
    member_a: dict[str, Any],
    member_a_dynamodb_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a backup of member A's daily table made by hand an hour before the run, with the
    # name the run gives its copy, and member A applying the run's first CreateBackup but its
    # answer lost, so botocore's retry makes a second backup
    dynamodb = member_a["dynamodb"]
    name = todays_orders_backup_name(fake_clock)
    by_hand = dynamodb.create_backup(TableName="orders", BackupName=name)["BackupDetails"]

    def made_an_hour_before(parsed: dict[str, Any], **_: Any) -> None:
        for summary in parsed.get("BackupSummaries", []):
            if summary["BackupArn"] == by_hand["BackupArn"]:
                summary["BackupCreationDateTime"] -= timedelta(hours=1)

    member_a_dynamodb_of_the_handler.meta.events.register(
        "after-call.dynamodb.ListBackups", made_an_hour_before
    )
    lost = lose_first_answer(member_a_dynamodb_of_the_handler, "dynamodb", "CreateBackup")
    # WHEN the schedule runs
    first = member_a_run(backup)
    # THEN the lost attempt's backup is deleted as the retry's duplicate, and the hand-made
    # one, made before the attempt, is kept beside the copy
    assert lost.lost == 1
    [made] = [
        b
        for b in dynamodb.list_backups()["BackupSummaries"]
        if b["BackupName"] == name and b["BackupArn"] != by_hand["BackupArn"]
    ]
    assert_the_tables_copy_is(first, made)
    assert _backup_names(dynamodb).count(name) == 2


def test_a_backup_created_whose_answer_was_lost_is_made_once_and_expires(
    backup: Invoke,
    member_a: dict[str, Any],
    member_a_dynamodb_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A's daily table, and member A applying the first CreateBackup but its answer
    # lost, so botocore sends it again
    dynamodb = member_a["dynamodb"]
    lost = lose_first_answer(member_a_dynamodb_of_the_handler, "dynamodb", "CreateBackup")
    first_day = todays_orders_backup_name(fake_clock)
    # WHEN the schedule runs
    first = member_a_run(backup)
    # THEN the table has one backup of the day, the one the result reports
    assert lost.lost == 1
    [made] = [b for b in dynamodb.list_backups()["BackupSummaries"] if b["BackupName"] == first_day]
    assert_the_tables_copy_is(first, made)
    # AND once its retention has run out, no backup of that day is left
    run_after_the_retention(backup, fake_clock)
    assert first_day not in _backup_names(dynamodb)


def test_a_second_backup_a_lost_answer_made_that_cannot_be_deleted_expires_with_the_first(
    backup: Invoke,
    member_a: dict[str, Any],
    member_a_dynamodb_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a run today (moto dates a backup by the real clock), member A applying the first
    # CreateBackup but its answer lost, so botocore's retry makes a second backup, and member A
    # refusing to delete either
    dynamodb = member_a["dynamodb"]
    fake_clock.set(datetime.now(UTC))
    lose_first_answer(member_a_dynamodb_of_the_handler, "dynamodb", "CreateBackup")
    refused = fail_every_attempt(member_a_dynamodb_of_the_handler, "dynamodb", "DeleteBackup")
    first_day = todays_orders_backup_name(fake_clock)
    # WHEN the schedule runs
    backup({"action": "backup"})
    # THEN both backups of the day are left
    assert _backup_names(dynamodb).count(first_day) == 2
    # AND once the deletions work again and the retention has run out, neither is left
    refused.healed = True
    run_after_the_retention(backup, fake_clock)
    assert first_day not in _backup_names(dynamodb)


def test_a_second_backup_a_lost_answer_made_expires_when_its_hunt_is_told_no_list(
    backup: Invoke,
    member_a: dict[str, Any],
    member_a_dynamodb_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a run today (moto dates a backup by the real clock), member A applying the first
    # CreateBackup but its answer lost, so botocore's retry makes a second backup, and member A
    # answering the listing of the table's backups, the hunt for that duplicate, with a page
    # without BackupSummaries
    dynamodb = member_a["dynamodb"]
    fake_clock.set(datetime.now(UTC))
    lose_first_answer(member_a_dynamodb_of_the_handler, "dynamodb", "CreateBackup")
    page = answer_table_backups_without_summaries(member_a_dynamodb_of_the_handler)
    first_day = todays_orders_backup_name(fake_clock)
    # WHEN the schedule runs
    first = member_a_run(backup)
    # THEN the table is an error naming the call and what its answer lacked, and both backups
    # of the day are left
    assert page.answered >= 1
    [error] = first["errors"]
    assert error["resource"] == "orders"
    assert "ListBackups answered without BackupSummaries" in error["error"]
    assert _backup_names(dynamodb).count(first_day) == 2
    # AND once the retention has run out, neither is left: the page was not taken for a hunt
    # that found no duplicate
    run_after_the_retention(backup, fake_clock)
    assert first_day not in _backup_names(dynamodb)


def test_a_backup_whose_retry_is_refused_as_in_use_is_the_copy_the_lost_attempt_made(
    backup: Invoke,
    member_a: dict[str, Any],
    member_a_dynamodb_of_the_handler: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A's daily table, member A applying the first CreateBackup but its answer
    # lost, and refusing the retry with BackupInUseException (the first backup being created)
    dynamodb = member_a["dynamodb"]
    fault = refuse_retry_after_lost_answer(
        member_a_dynamodb_of_the_handler, "dynamodb", "CreateBackup", "BackupInUseException"
    )
    first_day = todays_orders_backup_name(fake_clock)
    # WHEN the schedule runs
    first = member_a_run(backup)
    # THEN the backup the first attempt made is reported as the table's copy, not a failure
    assert fault.lost == 1
    assert fault.refused >= 1
    [made] = dynamodb.list_backups()["BackupSummaries"]
    assert_the_tables_copy_is(first, made)
    # AND once its retention has run out, it is deleted
    member_a_dynamodb_of_the_handler.meta.events.unregister(
        "before-send.dynamodb.CreateBackup", fault
    )
    later = target_of(run_after_the_retention(backup, fake_clock), MEMBER_A)
    assert later["failed"] == 0, later.get("errors")
    assert first_day not in _backup_names(dynamodb)


def test_a_backup_whose_expiry_an_earlier_version_saved_under_its_arn_is_still_deleted(
    backup: Invoke, member_a: dict[str, Any], state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a backup made by an earlier version, its expiry saved under its ARN, now passed
    dynamodb = member_a["dynamodb"]
    details = dynamodb.create_backup(TableName="scratch", BackupName="lambda-fleet-scratch-old")
    arn = details["BackupDetails"]["BackupArn"]
    state_table.put_value(expiry_key(arn), EXPIRY_VALUE, {"expires_at": "2025-06-01T00:00:00Z"})
    # WHEN the schedule runs
    backup({"action": "backup"})
    # THEN that backup is deleted
    assert "lambda-fleet-scratch-old" not in _backup_names(dynamodb)


def test_a_backup_someone_else_gave_our_name_is_not_deleted_with_ours(
    backup: Invoke, member_a: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN today's copy of the daily table, and a hand-made backup given the same name
    dynamodb = member_a["dynamodb"]
    backup({"action": "backup"})
    [ours] = dynamodb.list_backups()["BackupSummaries"]
    dynamodb.create_backup(TableName="orders", BackupName=ours["BackupName"])
    # WHEN the schedule runs after the retention
    run_after_the_retention(backup, fake_clock)
    # THEN our copy is deleted and the hand-made one kept
    arns = {b["BackupArn"] for b in dynamodb.list_backups()["BackupSummaries"]}
    assert ours["BackupArn"] not in arns
    assert ours["BackupName"] in _backup_names(dynamodb)


def test_a_day_recorded_before_its_lists_were_saved_in_parts_is_still_answered_whole(
    backup: Invoke, member_a: dict[str, Any], state_table: StateTable
) -> None:
    # GIVEN member A's day completed by the version deployed before, its lists in the record
    earlier_summary = {
        "account_id": MEMBER_A,
        "region": REGION,
        "status": "ok",
        "created": 1,
        "deleted": 0,
        "skipped": 1,
        "failed": 0,
        "copies": [{"kind": "snapshot", "source": member_a["daily"], "id": "snap-0earlier"}],
        "expired": [],
        "kept": [],
    }
    with state_table.idempotent("backup_scheduler", f"{MEMBER_A}/{REGION}/2025-06-02", 3600) as day:
        day.complete(earlier_summary)
    # WHEN the schedule is retried the same day after the deploy
    result = backup({"action": "backup"})
    # THEN it answers that record as it is, and copies nothing
    assert target_of(result, MEMBER_A) == {**earlier_summary, "repeat": True}
    assert _snapshots_of(member_a["ec2"], member_a["daily"]) == []


NO_TIME_IN_EXPIRES_AT = "its expires_at is not an ISO 8601 time with a time zone"


@pytest.mark.parametrize(
    ("saved", "problem"),
    [
        pytest.param(lambda arn: f"{{{SECRET}", "its data is not JSON", id="no-json"),
        pytest.param(
            lambda arn: json.dumps({"backup_arn": arn}), NO_TIME_IN_EXPIRES_AT, id="no-expires-at"
        ),
        pytest.param(
            lambda arn: json.dumps({"backup_arn": arn, "expires_at": 1749440000}),
            NO_TIME_IN_EXPIRES_AT,
            id="expires-at-a-number",
        ),
        pytest.param(
            lambda arn: json.dumps({"backup_arn": arn, "expires_at": f"soon {SECRET}"}),
            NO_TIME_IN_EXPIRES_AT,
            id="expires-at-no-time",
        ),
    ],
)
def test_a_backup_whose_saved_expiry_cannot_be_read_is_kept_and_named_and_the_run_goes_on(
    backup: Invoke,
    *,
    member_a: dict[str, Any],
    dynamodb_client: Any,
    fake_clock: ManualClock,
    daily_volume_in_member_b: tuple[Any, str],
    saved: Callable[[str], str],
    problem: str,
) -> None:
    # GIVEN the first day's copies in members A and B, then the saved expiry of member A's table
    # backup changed by a hand edit: no JSON, or an object without a readable expires_at
    dynamodb, (ec2_b, daily_b) = member_a["dynamodb"], daily_volume_in_member_b
    [arn] = [c["id"] for c in member_a_run(backup)["copies"] if c["kind"] == "dynamodb_backup"]
    first_name = todays_orders_backup_name(fake_clock)
    key = named_expiry_key(MEMBER_A, REGION, first_name)
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME,
        Item=unreadable_value(key, EXPIRY_VALUE, {"S": saved(arn)}),
    )
    # WHEN the schedule runs after the retention
    result = run_after_the_retention(backup, fake_clock)
    # THEN that backup alone is kept, not known to be ours, and named with its key and value
    # name, never the value; member A's other copies and member B's are made and pruned
    assert _backup_names(dynamodb) == [first_name, todays_orders_backup_name(fake_clock)]
    member_a_result = target_of(result, MEMBER_A)
    assert member_a_result["status"] == "partial"
    [failure] = member_a_result["errors"]
    assert failure["error"] == f"saved value {EXPIRY_VALUE} of {key}: {problem}"
    assert SECRET not in str(result)
    assert member_a_result["created"] == 2
    assert member_a_result["deleted"] == 1
    assert target_of(result, MEMBER_B)["status"] == "ok"
    assert len(_snapshots_of(ec2_b, daily_b)) == 1
