"""A target that outlasts its estimate (CLEANUP_TARGET_SECONDS): listing pages that never end, or
more candidates than the invocation has time to mark. The run stops acting in time to answer,
lists what it left, and sends the notices of what it did; Lambda never ends it mid-target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from handlers.cleanup_manager.cleanup import CleanupServices
from tests.handlers.cleanup_manager.support import (
    MARK_TAG,
    actions_of,
    create_snapshot,
    tags_of,
    unlisted_kinds,
)
from tests.handlers.deadlines import LambdaTime
from tests.handlers.faults import REPEATED_TOKEN_PAGE_LIMIT, EndlessPagesError
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
    # THEN member A marks snapshots while a hung call and the notices still fit (6, down to
    # 240 s left), lists the others as not tried, unmarked, and the run answers
    target_a = target_of(result, MEMBER_A)
    marked = [id_ for id_, action in actions_of(target_a).items() if action == "mark"]
    assert len(marked) == len(marks) == 6
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
