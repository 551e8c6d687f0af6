"""settle_member_access: a member's access episode is resolved only on evidence that the member
lets the function's role in again."""

from __future__ import annotations

import math
from typing import Any

import boto3

from fleet_shared.access_episodes import (
    EPISODE_VALUE,
    AccessEpisodes,
    MemberAccessSettlement,
    settle_member_access,
)
from fleet_shared.alerts import AlertPublisher
from fleet_shared.clock import ManualClock
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.handler import Invocation
from fleet_shared.state_table import StateTable
from tests.handlers.conftest import AlertInbox
from tests.handlers.member_accounts import MEMBER_B, REGION

EPISODES = AccessEpisodes(
    source="backup_scheduler",
    role="backup role",
    consequence="the account is not backed up.",
    recovered="Backed up again without a denial.",
    served="backed up",
)


def settle(
    state: StateTable,
    clock: ManualClock,
    target: dict[str, Any],
    *,
    member_answered: bool,
) -> MemberAccessSettlement:
    """Settle a run whose one target of member B is `target`, a call of the member answered in
    it or not."""
    return settle_member_access(
        EPISODES,
        state,
        AlertPublisher(
            boto3.client("sns", region_name=REGION), load_environment(FunctionEnvironment)
        ),
        [{"account_id": MEMBER_B, "region": REGION, **target}],
        now=clock.now(),
        deadline=Invocation.local(),
        seconds_left=lambda: math.inf,
        answered=lambda account_id: member_answered and account_id == MEMBER_B,
    )


def test_an_open_episode_is_resolved_only_by_a_run_in_which_the_member_answered_a_call(
    state_table: StateTable, fake_clock: ManualClock, alert_inbox: AlertInbox
) -> None:
    # GIVEN member B's episode opened by a run whose AssumeRole it refused
    refused = {"status": "denied", "access_denied": ["sts:AssumeRole"]}
    settle(state_table, fake_clock, refused, member_answered=False)
    [alert] = [received.alert for received in alert_inbox.receive()]
    # WHEN a later run ends its target without a refusal but calls nothing of the member (a
    # repeat of a target done, its kinds turned off, its endpoints given up)
    fake_clock.advance(86400)
    quiet = settle(state_table, fake_clock, {"status": "ok"}, member_answered=False)
    # THEN the episode stays open and no resolution goes out: nothing proved the grant back
    assert quiet.summary() == {"alerted": [], "resolved": []}
    assert alert_inbox.receive() == []
    episode = state_table.get_value(EPISODES.episode_key(MEMBER_B), EPISODE_VALUE)
    assert episode is not None and episode["open"] is True
    # WHEN the next run's call of the member is answered
    fake_clock.advance(86400)
    answered = settle(state_table, fake_clock, {"status": "ok"}, member_answered=True)
    # THEN the alert is resolved (same id), once
    assert answered.resolved == [MEMBER_B]
    [resolution] = [received.alert for received in alert_inbox.receive()]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    settle(state_table, fake_clock, {"status": "ok"}, member_answered=True)
    assert alert_inbox.receive() == []
