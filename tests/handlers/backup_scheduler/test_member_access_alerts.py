"""A member denying the backup role: one alert per episode, one resolution, none lost to SNS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_shared.access_episodes import SETTLE_ACCOUNT_SECONDS
from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.earlier_values import SEARCHED
from fleet_shared.sessions import HUB_CALL_SECONDS
from fleet_shared.state_table import StateTable
from handlers.backup_scheduler import backup as backup_module
from handlers.backup_scheduler.backup import TARGET_START_RESERVE_SECONDS, BackupServices
from handlers.backup_scheduler.member_access import BACKUP_ACCESS
from tests.handlers.conftest import AlertInbox
from tests.handlers.deadlines import LambdaTime
from tests.handlers.faults import fail_every_attempt, refuse_every_attempt
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_A,
    MEMBER_B,
    REGION,
    deny_assume_role,
)
from tests.handlers.member_targets import target_of, write_inventory

Invoke = Callable[..., dict[str, Any]]
DAY = 86400


def member_b_alerts(inbox: AlertInbox) -> list[dict[str, Any]]:
    """The alerts about member B delivered since the last look (the fixture's denied member
    has its own)."""
    return [
        received.alert for received in inbox.receive() if received.alert["account_id"] == MEMBER_B
    ]


def deny_member_b(backup: Invoke, built_services: list[BackupServices]) -> Callable[[], None]:
    """Build the handler's services with an event it refuses (no member session made yet),
    then refuse member B's AssumeRole; the result grants it again."""
    assert backup({})["status"] == "error"
    return deny_assume_role(built_services[0].sessions.hub_client("sts"), MEMBER_B)


def nightly_run(backup: Invoke, clock: ManualClock) -> dict[str, Any]:
    clock.advance(DAY)
    return backup({"action": "backup"})


def test_a_member_denying_the_role_for_three_nights_alerts_once_and_its_recovery_once(
    backup: Invoke,
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN member B's AssumeRole refused
    grant_again = deny_member_b(backup, built_services)
    # WHEN three nightly runs find it denied
    results = [nightly_run(backup, fake_clock) for _ in range(3)]
    # THEN each run reports it denied, and one warning went out, naming the refused call
    assert [target_of(r, MEMBER_B)["access_denied"] for r in results] == [["sts:AssumeRole"]] * 3
    [alert] = member_b_alerts(alert_inbox)
    assert (alert["severity"], alert["resolved"]) == ("warning", False)
    assert MEMBER_B in alert["title"] and "sts:AssumeRole" in alert["detail"]
    assert [MEMBER_B in r["access_alerts"]["alerted"] for r in results] == [True, False, False]
    # WHEN the member grants the role again and the next run backs it up
    grant_again()
    recovered = nightly_run(backup, fake_clock)
    # THEN one resolution of the same alert went out
    [resolution] = member_b_alerts(alert_inbox)
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    assert recovered["access_alerts"]["resolved"] == [MEMBER_B]
    # AND a further night sends nothing
    nightly_run(backup, fake_clock)
    assert member_b_alerts(alert_inbox) == []


def test_a_member_refusing_the_backup_calls_alerts_as_one_refusing_the_role(
    backup: Invoke,
    built_services: list[BackupServices],
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN member B's role assumed, but its DynamoDB refusing ListTables
    backup({"action": "backup", "dry_run": True})
    dynamodb_b = built_services[0].member_client("dynamodb", MEMBER_B, REGION)
    refuse_every_attempt(dynamodb_b, "dynamodb", "ListTables")
    # WHEN the run comes
    result = backup({"action": "backup"})
    # THEN the refused step is reported and alerted once
    assert target_of(result, MEMBER_B)["access_denied"] == ["dynamodb:ListTables"]
    [alert] = member_b_alerts(alert_inbox)
    assert "dynamodb:ListTables" in alert["detail"]


@pytest.mark.usefixtures("no_retry_waits")
def test_an_access_alert_or_resolution_sns_refused_goes_out_with_a_later_run(
    backup: Invoke,
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN member B's AssumeRole refused and SNS failing every publish
    grant_again = deny_member_b(backup, built_services)
    sns = fail_every_attempt(built_services[0].hub_client("sns"), "sns", "Publish")
    # WHEN the night's run comes
    # THEN it fails once every target is done, so the platform retries it, and nothing went out
    with pytest.raises(AlertNotDeliveredError):
        nightly_run(backup, fake_clock)
    assert member_b_alerts(alert_inbox) == []
    # WHEN SNS answers again and the platform retries the run
    sns.healed = True
    retried = backup({"action": "backup"})
    # THEN the alert goes out, once
    assert retried["access_alerts"]["alerted"] != []
    [alert] = member_b_alerts(alert_inbox)
    assert alert["resolved"] is False
    # WHEN the member recovers on a night SNS fails again
    grant_again()
    sns.healed = False
    with pytest.raises(AlertNotDeliveredError):
        nightly_run(backup, fake_clock)
    assert member_b_alerts(alert_inbox) == []
    # THEN the next night's run sends the resolution, once
    sns.healed = True
    nightly_run(backup, fake_clock)
    [resolution] = member_b_alerts(alert_inbox)
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)


def test_a_member_removed_from_the_inventory_while_denied_gets_one_resolution(
    backup: Invoke,
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN member B's AssumeRole refused, alerted by a nightly run
    deny_member_b(backup, built_services)
    nightly_run(backup, fake_clock)
    [alert] = member_b_alerts(alert_inbox)
    # WHEN member B is removed from the stack file (the inventory no longer lists it) and the
    # next night's run comes
    write_inventory(MEMBER_A, DENIED_MEMBER)
    left = nightly_run(backup, fake_clock)
    # THEN its episode is closed: one resolution of the same alert, saying why
    [resolution] = member_b_alerts(alert_inbox)
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    assert "no longer in the fleet inventory" in resolution["detail"]
    assert left["access_alerts"]["resolved"] == [MEMBER_B]
    # AND a further night sends nothing about it
    later = nightly_run(backup, fake_clock)
    assert member_b_alerts(alert_inbox) == []
    assert later["access_alerts"] == {"alerted": [], "resolved": []}


def test_an_episode_saved_before_the_index_of_a_member_that_left_gets_one_resolution(
    backup: Invoke,
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
    state_table: StateTable,
) -> None:
    # GIVEN member B's AssumeRole refused, alerted by a nightly run, its episode then left as
    # the versions before the index saved it: not in the index, and never searched for
    deny_member_b(backup, built_services)
    nightly_run(backup, fake_clock)
    [alert] = member_b_alerts(alert_inbox)
    state_table.delete_value(BACKUP_ACCESS.open_episodes_key, f"open#{MEMBER_B}")
    state_table.delete_value(BACKUP_ACCESS.earlier_search_key, SEARCHED)
    # WHEN member B is removed from the stack file and the next night's run comes
    write_inventory(MEMBER_A, DENIED_MEMBER)
    left = nightly_run(backup, fake_clock)
    # THEN its episode is found and closed: one resolution of the same alert
    [resolution] = member_b_alerts(alert_inbox)
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    assert left["access_alerts"]["resolved"] == [MEMBER_B]
    # AND the search is marked done, and a further night sends nothing about it
    assert state_table.get_value(BACKUP_ACCESS.earlier_search_key, SEARCHED) is not None
    later = nightly_run(backup, fake_clock)
    assert member_b_alerts(alert_inbox) == []
    assert later["access_alerts"] == {"alerted": [], "resolved": []}


def test_a_run_short_of_time_settles_no_account_half_way_and_the_next_run_the_rest_once(
    backup: Invoke,
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN member B's AssumeRole refused beside the denied member's, one target at a time, the
    # night's last target (the denied member's) leaving the run time for one account's
    # settlement and 2 s, and SNS answering each publish at its bound, once it took the alert
    deny_member_b(backup, built_services)
    monkeypatch.setenv("BACKUP_MAX_WORKERS", "1")
    time = LambdaTime(250)
    run_target = backup_module._run_target

    def the_last_taking_the_time(services: Any, account_id: str, *rest: Any, **named: Any) -> Any:
        if account_id == DENIED_MEMBER:
            time.spend(time.seconds_left - SETTLE_ACCOUNT_SECONDS - 2)
        return run_target(services, account_id, *rest, **named)

    def answered_at_the_bound(**_: Any) -> None:
        time.spend(HUB_CALL_SECONDS)

    monkeypatch.setattr(backup_module, "_run_target", the_last_taking_the_time)
    sns_events = built_services[0].hub_client("sns").meta.events
    sns_events.register("after-call.sns.Publish", answered_at_the_bound)
    # WHEN the night's run comes with that time (the faults then gone)
    fake_clock.advance(DAY)
    cut = backup({"action": "backup"}, time.context())
    sns_events.unregister("after-call.sns.Publish", answered_at_the_bound)
    monkeypatch.setattr(backup_module, "_run_target", run_target)
    # THEN Lambda did not end it: member B's alert went out whole, and the denied member's
    # account, whose turn came with too little time for a publish and its record, is named and
    # left as it was
    assert cut["access_alerts"] == {
        "alerted": [MEMBER_B],
        "resolved": [],
        "not_settled": [DENIED_MEMBER],
    }
    assert [r.alert["account_id"] for r in alert_inbox.receive()] == [MEMBER_B]
    # WHEN the next night's run has its whole time
    nightly = nightly_run(backup, fake_clock)
    # THEN it sends the denied member's alert, and neither goes out twice
    assert nightly["access_alerts"] == {"alerted": [DENIED_MEMBER], "resolved": []}
    assert [r.alert["account_id"] for r in alert_inbox.receive()] == [DENIED_MEMBER]


TARGET_BUDGET_SECONDS = 30
"""BACKUP_TARGET_SECONDS' default: the time a target's own work is allowed."""


@pytest.mark.parametrize(
    ("seconds_left", "member_a_started"),
    [
        pytest.param(
            TARGET_BUDGET_SECONDS + backup_module.HUNG_ENDPOINTS_SECONDS + 14,
            False,
            id="time-for-the-target-not-its-settling",
        ),
        pytest.param(
            TARGET_BUDGET_SECONDS + TARGET_START_RESERVE_SECONDS + 1,
            True,
            id="time-for-the-target-and-its-settling",
        ),
    ],
)
def test_a_night_whose_target_takes_its_whole_budget_still_settles_its_access_episode(
    backup: Invoke,
    built_services: list[BackupServices],
    alert_inbox: AlertInbox,
    monkeypatch: pytest.MonkeyPatch,
    *,
    seconds_left: int,
    member_a_started: bool,
) -> None:
    # GIVEN one target at a time, member A's DynamoDB refusing ListTables, and member A's target
    # (the night's first) taking its whole budget: its own 30 s and both endpoints' hung calls
    backup({"action": "backup", "dry_run": True})
    dynamodb_a = built_services[0].member_client("dynamodb", MEMBER_A, REGION)
    refuse_every_attempt(dynamodb_a, "dynamodb", "ListTables")
    monkeypatch.setenv("BACKUP_MAX_WORKERS", "1")
    time = LambdaTime(seconds_left)
    run_target = backup_module._run_target

    def taking_its_whole_budget(services: Any, account_id: str, *rest: Any, **named: Any) -> Any:
        result = run_target(services, account_id, *rest, **named)
        if account_id == MEMBER_A:
            time.spend(TARGET_BUDGET_SECONDS + backup_module.HUNG_ENDPOINTS_SECONDS)
        return result

    monkeypatch.setattr(backup_module, "_run_target", taking_its_whole_budget)
    # WHEN the night's run comes with `seconds_left`
    result = backup({"action": "backup"}, time.context())
    # THEN no account is left unsettled for lack of time: member A was started only with time
    # to settle its episode after it, and then alerted; else it is left whole for the next run
    assert result["access_alerts"] == {"alerted": [MEMBER_A] * member_a_started, "resolved": []}
    assert (target_of(result, MEMBER_A)["status"] != "not_started") is member_a_started
    assert [r.alert["account_id"] for r in alert_inbox.receive()] == [MEMBER_A] * member_a_started
