"""settle_member_access: a member's access episode is resolved only on evidence that the member
lets the function's role in again: each call it refused answered."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import boto3
import pytest

from fleet_shared.access_episodes import (
    EPISODE_VALUE,
    REFUSED_CALLS,
    AccessEpisodes,
    MemberAccessSettlement,
    settle_member_access,
)
from fleet_shared.alerts import AlertPublisher
from fleet_shared.clock import ManualClock
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.handler import Invocation
from fleet_shared.member_calls import MemberCalls
from fleet_shared.state_table import StateTable
from tests.handlers.conftest import AlertInbox
from tests.handlers.faults import MULTI_LINE_PAGE, fail_every_attempt
from tests.handlers.member_accounts import MEMBER_B, REGION

EPISODES = AccessEpisodes(
    source="backup_scheduler",
    role="backup role",
    consequence="the account is not backed up.",
    recovered="Backed up again without a denial.",
    served="backed up",
)


CREATE_SNAPSHOT = "ec2:CreateSnapshot"
LIST_TABLES = "dynamodb:ListTables"
DESCRIBE_VOLUMES = "ec2:DescribeVolumes"
DENIED = {"status": "partial", "access_denied": ["vol-0123"]}
REACHED = {"status": "ok"}


def settle(
    state: StateTable,
    clock: ManualClock,
    target: dict[str, Any],
    *,
    answered: Collection[str] = (),
    refused: Collection[str] = (),
) -> MemberAccessSettlement:
    """Settle a run whose one target of member B is `target`, in which the member answered the
    calls `answered` with success and IAM refused its calls `refused`."""
    calls = MemberCalls()
    for call in answered:
        calls.note_answered(MEMBER_B, call)
    for call in refused:
        calls.note_refused(MEMBER_B, call)
    return settle_member_access(
        EPISODES,
        state,
        AlertPublisher(
            boto3.client("sns", region_name=REGION),
            load_environment(FunctionEnvironment),
            "backup_scheduler",
        ),
        [{"account_id": MEMBER_B, "region": REGION, **target}],
        now=clock.now(),
        deadline=Invocation.local(),
        seconds_left=lambda: math.inf,
        calls=calls,
    )


def episode(state: StateTable) -> dict[str, Any]:
    """Member B's episode as saved."""
    saved = state.get_value(EPISODES.episode_key(MEMBER_B), EPISODE_VALUE)
    assert saved is not None
    return saved


def test_an_open_episode_is_resolved_only_by_a_run_in_which_the_member_answered_a_call(
    state_table: StateTable, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN member B's episode opened by a run whose AssumeRole it refused
    refused = {"status": "denied", "access_denied": ["sts:AssumeRole"]}
    settle(state_table, fake_clock, refused, refused=["sts:AssumeRole"])
    [alert] = [received.alert for received in alert_inbox.receive()]
    # WHEN a later run ends its target without a refusal but calls nothing of the member (a
    # repeat of a target done, its kinds turned off, its endpoints given up)
    fake_clock.advance(86400)
    quiet = settle(state_table, fake_clock, REACHED)
    # THEN the episode stays open and no resolution goes out: nothing proved the grant back
    assert quiet.summary() == {"alerted": [], "resolved": []}
    assert alert_inbox.receive() == []
    assert episode(state_table)["open"] is True
    # WHEN the next run's call of the member is answered (made with the role: its AssumeRole
    # worked)
    fake_clock.advance(86400)
    answered = settle(state_table, fake_clock, REACHED, answered=[DESCRIBE_VOLUMES])
    # THEN the alert is resolved (same id), once
    assert answered.resolved == [MEMBER_B]
    [resolution] = [received.alert for received in alert_inbox.receive()]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    settle(state_table, fake_clock, REACHED, answered=[DESCRIBE_VOLUMES])
    assert alert_inbox.receive() == []


@pytest.mark.parametrize(
    ("answered", "resolved"),
    [
        pytest.param([DESCRIBE_VOLUMES], False, id="another-call-answered"),
        pytest.param([DESCRIBE_VOLUMES, CREATE_SNAPSHOT], True, id="the-refused-call-answered"),
    ],
)
def test_an_episode_is_resolved_only_by_the_refused_call_answered(
    state_table: StateTable,
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
    *,
    answered: list[str],
    resolved: bool,
) -> None:
    # GIVEN member B's episode opened by a run whose CreateSnapshot IAM refused
    settle(state_table, fake_clock, DENIED, answered=[DESCRIBE_VOLUMES], refused=[CREATE_SNAPSHOT])
    [alert] = [received.alert for received in alert_inbox.receive()]
    assert episode(state_table)[REFUSED_CALLS] == [CREATE_SNAPSHOT]
    # WHEN the next run's target ends without a refusal, the member answering `answered` (a
    # run with no volume due copies nothing)
    fake_clock.advance(86400)
    settlement = settle(state_table, fake_clock, REACHED, answered=answered)
    # THEN the alert is resolved only when the refused call was answered; another call proves
    # nothing of it, and the episode stays open, so the next refusal alerts nothing new
    assert settlement.resolved == ([MEMBER_B] if resolved else [])
    resolutions = [received.alert for received in alert_inbox.receive()]
    assert [(r["id"], r["resolved"]) for r in resolutions] == [(alert["id"], True)] * resolved
    assert episode(state_table)["open"] is not resolved


def test_an_episode_refusing_several_calls_is_resolved_once_each_was_answered(
    state_table: StateTable, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN member B's episode opened by a run whose CreateSnapshot IAM refused
    settle(state_table, fake_clock, DENIED, refused=[CREATE_SNAPSHOT])
    alert_inbox.receive()
    # WHEN a later run answers CreateSnapshot but IAM refuses ListTables
    fake_clock.advance(86400)
    settle(state_table, fake_clock, DENIED, answered=[CREATE_SNAPSHOT], refused=[LIST_TABLES])
    # THEN the episode stays open, waiting for ListTables alone, and nothing goes out
    assert episode(state_table)[REFUSED_CALLS] == [LIST_TABLES]
    assert alert_inbox.receive() == []
    # WHEN the next run reaches the member, ListTables answered
    fake_clock.advance(86400)
    settlement = settle(state_table, fake_clock, REACHED, answered=[LIST_TABLES])
    # THEN the episode is resolved
    assert settlement.resolved == [MEMBER_B]
    assert episode(state_table)["open"] is False


def test_an_episode_saved_before_its_refused_calls_were_recorded_resolves_as_it_did(
    state_table: StateTable, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN member B's open episode as earlier versions saved it, naming no refused call
    settle(state_table, fake_clock, DENIED, refused=[CREATE_SNAPSHOT])
    [alert] = [received.alert for received in alert_inbox.receive()]
    earlier = {name: value for name, value in episode(state_table).items() if name != REFUSED_CALLS}
    state_table.put_value(EPISODES.episode_key(MEMBER_B), EPISODE_VALUE, earlier)
    # WHEN a later run reaches the member, any call of it answered
    fake_clock.advance(86400)
    settlement = settle(state_table, fake_clock, REACHED, answered=[DESCRIBE_VOLUMES])
    # THEN it is resolved, as it was before: what it waits for is not known
    assert settlement.resolved == [MEMBER_B]
    [resolution] = [received.alert for received in alert_inbox.receive()]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)


def test_an_index_read_answered_with_a_proxys_page_is_one_short_line_of_the_settlement(
    state_table: StateTable,
    dynamodb_client: Any,
    fake_clock: ManualClock,
    alert_inbox: AlertInbox,
) -> None:
    # GIVEN the state table answering the read of the index of open episodes with a proxy's
    # page of many lines
    fail_every_attempt(dynamodb_client, "dynamodb", "Query", server_error=MULTI_LINE_PAGE)
    # WHEN a run is settled
    settlement = settle(state_table, fake_clock, REACHED, answered=[DESCRIBE_VOLUMES])
    # THEN the index is reported as not read, on one line, what the page said cut, and no
    # alert goes out
    assert alert_inbox.receive() == []
    [error] = settlement.errors
    assert error["account_id"] == EPISODES.open_episodes_key
    assert "\n" not in error["error"] and len(error["error"]) < len(MULTI_LINE_PAGE)
