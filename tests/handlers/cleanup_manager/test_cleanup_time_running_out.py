"""A target that outlasts its estimate (CLEANUP_TARGET_SECONDS): listing pages that never end, or
more candidates than the invocation has time to mark. The run stops acting in time to answer,
lists what it left, and sends the notices of what it did; Lambda never ends it mid-target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from handlers.cleanup_manager import cleanup
from handlers.cleanup_manager.cleanup import (
    HUNG_ENDPOINTS_SECONDS,
    TARGET_RESERVE_SECONDS,
    CleanupServices,
)
from tests.handlers.cleanup_manager.support import (
    MARK_TAG,
    actions_of,
    create_snapshot,
    notices_received,
    tags_of,
    unlisted_kinds,
)
from tests.handlers.conftest import AlertInbox
from tests.handlers.deadlines import LambdaTime
from tests.handlers.faults import (
    REPEATED_TOKEN_PAGE_LIMIT,
    EndlessPagesError,
    refuse_every_ec2_attempt,
)
from tests.handlers.member_accounts import (
    MEMBER_A,
    MEMBER_B,
    REGION,
    create_volume,
    member_session,
)
from tests.handlers.member_targets import target_of

Invoke = Callable[..., dict[str, Any]]

NOT_TRIED = "not tried: no time left in the invocation"
TARGET_BUDGET_SECONDS = 30
"""CLEANUP_TARGET_SECONDS' default: the time a target's own work is allowed."""


@pytest.fixture(autouse=True)
def _snapshots_only(cleanup_policy: Callable[[dict[str, Any]], None]) -> None:
    """Snapshots alone are cleaned (a snapshot's throw-away volume is then no candidate)."""
    cleanup_policy({"resources": ["snapshots"], "mode": "delete"})


def member_a_ec2_taking_time(
    services: CleanupServices, operation: str, time: LambdaTime, seconds: float
) -> list[int]:
    """Make every answer of `operation` to member A's EC2 take `seconds` of `time`; the answers'
    count, which grows by one per answer."""
    answered: list[int] = []

    def take_time(**_: Any) -> None:
        answered.append(len(answered) + 1)
        time.spend(seconds)

    client = services.member_client("ec2", MEMBER_A, REGION)
    client.meta.events.register(f"after-call.ec2.{operation}", take_time)
    return answered


def test_a_snapshot_listing_whose_pages_never_end_is_cut_short_and_the_run_answers(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN member A with a stale snapshot, its EC2 answering every DescribeSnapshots page with
    # a new next-page token (a proxy or a broken endpoint), each page taking 5 s of an
    # invocation of 600 s, and member B, cleaned after A (one target at a time: with several,
    # whether B's turn came before A's pages used the time would be the threads' race), with a
    # stale snapshot
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    ec2_a = member_session(MEMBER_A).client("ec2")
    ec2_b = member_session(MEMBER_B).client("ec2")
    stale_a, stale_b = create_snapshot(ec2_a), create_snapshot(ec2_b)
    cleaner({"action": "cleanup", "dry_run": True})
    time = LambdaTime(600)
    pages = member_a_ec2_taking_time(built_services[0], "DescribeSnapshots", time, 5)

    def endless(parsed: dict[str, Any], **_: Any) -> None:
        parsed["NextToken"] = f"page-{len(pages) + 1}"

    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    member_ec2.meta.events.register("after-call.ec2.DescribeSnapshots", endless)
    # WHEN the schedule runs
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN the run answers: member A's listing was cut short before Lambda's end, named in its
    # errors, and none of its snapshots was acted on
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    assert target_a["errors"] == [
        {
            "kind": "snapshots",
            "id": f"{MEMBER_A}/{REGION}",
            "error": "DescribeSnapshots read cut short before its next page, for lack of time",
        }
    ]
    assert target_a["actions"] == []
    assert MARK_TAG not in tags_of(ec2_a, stale_a)
    assert time.spent < time.seconds_left
    # AND member B, whose turn came with less than a target's time left, is not started but
    # named, for the next run to start with; its snapshot is left unmarked
    assert target_of(result, MEMBER_B)["status"] == "not_started"
    assert {"account_id": MEMBER_B, "region": REGION} in result["not_started"]
    assert MARK_TAG not in tags_of(ec2_b, stale_b)
    assert alert_inbox.receive() == []


def test_a_target_with_more_candidates_than_time_marks_what_it_can_and_lists_the_rest(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    alert_inbox: Any,
) -> None:
    # GIVEN member A with 10 stale snapshots, each mark taking 60 s of an invocation of 600 s
    ec2_a = member_session(MEMBER_A).client("ec2")
    stale = [create_snapshot(ec2_a) for _ in range(10)]
    cleaner({"action": "cleanup", "dry_run": True})
    time = LambdaTime(600)
    marks = member_a_ec2_taking_time(built_services[0], "CreateTags", time, 60)
    # WHEN the schedule runs
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN member A marks snapshots while its hung endpoints, the settling and the notices still
    # fit (5, down to 360 s left), lists the others as not tried, unmarked, and the run answers
    target_a = target_of(result, MEMBER_A)
    marked = [id_ for id_, action in actions_of(target_a).items() if action == "mark"]
    assert len(marked) == len(marks) == 5
    assert all(MARK_TAG in tags_of(ec2_a, snapshot) for snapshot in marked)
    left = sorted(set(stale) - set(marked))
    assert sorted(target_a["errors"], key=lambda entry: entry["id"]) == [
        {"kind": "snapshot", "id": snapshot, "error": NOT_TRIED} for snapshot in left
    ]
    assert all(MARK_TAG not in tags_of(ec2_a, snapshot) for snapshot in left)
    assert target_a["status"] == "partial"
    assert time.spent < time.seconds_left
    # AND member A's notice lists the marked snapshots, not the others
    [notice] = [n for n in alert_inbox.receive() if n.alert["account_id"] == MEMBER_A]
    assert all(snapshot in notice.alert["detail"] for snapshot in marked)
    assert not [snapshot for snapshot in left if snapshot in notice.alert["detail"]]


def test_a_volume_listing_answering_two_tokens_in_turn_fails_its_kind_alone(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    cleanup_policy: Callable[[dict[str, Any]], None],
) -> None:
    # GIVEN member A's EC2 answering DescribeVolumes with the tokens a and b in turn, which
    # boto3's paginator followed forever (it refuses only a token answered twice in a row), and
    # member B with an unattached volume
    cleanup_policy({"resources": ["volumes"], "mode": "delete"})
    stale_b = create_volume(member_session(MEMBER_B).client("ec2"))
    cleaner({"action": "cleanup", "dry_run": True})
    answered: list[str] = []

    def in_turn(parsed: dict[str, Any], **_: Any) -> None:
        if len(answered) > REPEATED_TOKEN_PAGE_LIMIT:
            raise EndlessPagesError(f"DescribeVolumes asked for {len(answered)} pages")
        answered.append("a" if len(answered) % 2 == 0 else "b")
        parsed["NextToken"] = answered[-1]

    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    member_ec2.meta.events.register("after-call.ec2.DescribeVolumes", in_turn)
    # WHEN the schedule runs
    result = cleaner({"action": "cleanup"})
    # THEN member A's volumes fail at the token it already followed, and member B's volume is
    # marked
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    assert unlisted_kinds(target_a) == {
        "volumes": "DescribeVolumes answered the NextToken 'a' again: its pages would repeat "
        "forever"
    }
    assert answered == ["a", "b", "a"]
    assert actions_of(target_of(result, MEMBER_B))[stale_b] == "mark"


def taking_its_whole_budget(
    monkeypatch: pytest.MonkeyPatch, time: LambdaTime, account_id: str
) -> None:
    """Make the target of `account_id` take its whole budget of `time` once it is done: its own
    TARGET_BUDGET_SECONDS and its three endpoints' hung calls."""
    clean_target = cleanup.clean_target

    def whole_budget(services: Any, target_account: str, *rest: Any, **named: Any) -> Any:
        result = clean_target(services, target_account, *rest, **named)
        if target_account == account_id:
            time.spend(TARGET_BUDGET_SECONDS + HUNG_ENDPOINTS_SECONDS)
        return result

    monkeypatch.setattr(cleanup, "clean_target", whole_budget)


@pytest.mark.parametrize(
    ("seconds_left", "member_a_started"),
    [
        pytest.param(
            TARGET_BUDGET_SECONDS + HUNG_ENDPOINTS_SECONDS + 14,
            False,
            id="time-for-the-target-not-what-follows-it",
        ),
        pytest.param(
            TARGET_BUDGET_SECONDS + TARGET_RESERVE_SECONDS + 1,
            True,
            id="time-for-the-target-and-what-follows-it",
        ),
    ],
)
def test_a_night_whose_target_takes_its_whole_budget_still_settles_and_sends_its_notice(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    cleanup_policy: Callable[[dict[str, Any]], None],
    alert_inbox: AlertInbox,
    monkeypatch: pytest.MonkeyPatch,
    *,
    seconds_left: int,
    member_a_started: bool,
) -> None:
    # GIVEN one target at a time, member A with a stale snapshot and its DescribeVolumes refused
    # by IAM, and member A's target (the night's first) taking its whole budget: its own 30 s
    # and its three endpoints' hung calls
    cleanup_policy({"resources": ["snapshots", "volumes"], "mode": "delete"})
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    stale = create_snapshot(member_session(MEMBER_A).client("ec2"))
    cleaner({"action": "cleanup", "dry_run": True})
    refuse_every_ec2_attempt(
        built_services[0].member_client("ec2", MEMBER_A, REGION), "DescribeVolumes"
    )
    time = LambdaTime(seconds_left)
    taking_its_whole_budget(monkeypatch, time, MEMBER_A)
    # WHEN the night's run comes with `seconds_left`
    result = cleaner({"action": "cleanup"}, time.context())
    # THEN no account is left unsettled and no notice unsent for lack of time: member A was
    # started only with time for its access alert and its notice after it, and then sent both;
    # else it is left whole for the next run
    assert result["access_alerts"] == {"alerted": [MEMBER_A] * member_a_started, "resolved": []}
    target_a = target_of(result, MEMBER_A)
    assert (target_a["status"] != "not_started") is member_a_started
    received = notices_received(alert_inbox)
    assert [r.alert["account_id"] for r in received] == [MEMBER_A, MEMBER_A] * member_a_started
    if member_a_started:
        [notice] = [r.alert for r in received if "denies" not in r.alert["title"]]
        assert stale in notice["detail"]
        assert not [e for e in target_a["errors"] if e["kind"] == "notice"]
    assert time.spent < time.seconds_left


def test_a_notice_left_without_time_is_not_tried_and_the_next_run_sends_it(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    alert_inbox: AlertInbox,
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN one target at a time, members A and B each with a stale snapshot, member B's target
    # taking its whole budget, so the run has the settling's and the notices' time left after
    # it, and SNS taking 30 s of the invocation over each Publish, so the time left after member
    # A's notice is too little for member B's
    monkeypatch.setenv("CLEANUP_MAX_WORKERS", "1")
    stale_a = create_snapshot(member_session(MEMBER_A).client("ec2"))
    stale_b = create_snapshot(member_session(MEMBER_B).client("ec2"))
    cleaner({"action": "cleanup", "dry_run": True})
    time = LambdaTime(TARGET_BUDGET_SECONDS + TARGET_RESERVE_SECONDS + 1)
    sns = built_services[0].hub_client("sns")

    def slow_publish(**_: Any) -> None:
        time.spend(30)

    sns.meta.events.register("after-call.sns.Publish", slow_publish)
    # WHEN the night's run comes
    with monkeypatch.context() as this_night:
        taking_its_whole_budget(this_night, time, MEMBER_B)
        night = cleaner({"action": "cleanup"}, time.context())
    # THEN both snapshots are marked and member A's notice went out, but member B's was not
    # tried: its account's target names it, and the run answered before Lambda's end
    assert actions_of(target_of(night, MEMBER_A))[stale_a] == "mark"
    assert actions_of(target_of(night, MEMBER_B))[stale_b] == "mark"
    assert [r.alert["account_id"] for r in notices_received(alert_inbox)] == [MEMBER_A]
    target_b = target_of(night, MEMBER_B)
    [unsent] = [entry for entry in target_b["errors"] if entry["kind"] == "notice"]
    assert unsent["id"].startswith(f"{MEMBER_B}/") and unsent["error"] == NOT_TRIED
    assert target_b["status"] == "partial"
    assert time.spent < time.seconds_left
    # WHEN the next day's run comes, with SNS answering at once and member B's target its
    # usual self
    sns.meta.events.unregister("after-call.sns.Publish", slow_publish)
    future_clock.advance(86400)
    next_day = cleaner({"action": "cleanup"})
    # THEN it finds member B's mark pending and sends its notice, and member A's is not sent
    # again
    assert actions_of(target_of(next_day, MEMBER_B))[stale_b] == "pending"
    [notice] = notices_received(alert_inbox)
    assert notice.alert["account_id"] == MEMBER_B and stale_b in notice.alert["detail"]
