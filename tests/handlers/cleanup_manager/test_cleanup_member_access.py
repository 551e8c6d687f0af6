"""A member denying the cleanup role, or one of its calls: one alert per episode, one
resolution, as backup_scheduler's (fleet_shared.access_episodes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from handlers.cleanup_manager.cleanup import CleanupServices
from tests.handlers.cleanup_manager.support import create_snapshot
from tests.handlers.conftest import AlertInbox
from tests.handlers.faults import refuse_every_ec2_attempt
from tests.handlers.member_accounts import (
    MEMBER_B,
    REGION,
    deny_assume_role,
    member_session,
)
from tests.handlers.member_targets import target_of

Invoke = Callable[..., dict[str, Any]]
DAY = 86400


def member_b_alerts(inbox: AlertInbox) -> list[dict[str, Any]]:
    """The alerts about member B delivered since the last look that are no mark notices."""
    return [
        received.alert
        for received in inbox.receive()
        if received.alert["account_id"] == MEMBER_B and "denies" in received.alert["title"]
    ]


def refuse_member_b(
    cleaner: Invoke, built_services: list[CleanupServices], refused: str
) -> Callable[[], None]:
    """Refuse member B's AssumeRole (`refused` `sts:AssumeRole`), or its EC2's `refused` call;
    the result grants it again. The handler's services are built with an event it refuses, so
    no member session is made before the refusal."""
    assert cleaner({})["status"] == "error"
    services = built_services[0]
    if refused == "sts:AssumeRole":
        return deny_assume_role(services.sessions.hub_client("sts"), MEMBER_B)
    ec2_b = services.member_client("ec2", MEMBER_B, REGION)
    fault = refuse_every_ec2_attempt(ec2_b, refused)
    return lambda: ec2_b.meta.events.unregister(f"before-send.ec2.{refused}", fault)


@pytest.mark.parametrize(
    "refused", ["sts:AssumeRole", "DescribeVolumes", "DescribeSnapshotAttribute"]
)
def test_a_member_denying_the_cleanup_role_alerts_once_and_its_recovery_once(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    future_clock: ManualClock,
    alert_inbox: AlertInbox,
    refused: str,
) -> None:
    # GIVEN member B with a stale snapshot of an unattached volume, its role's AssumeRole, its
    # DescribeVolumes or the DescribeSnapshotAttribute of its snapshot refused by IAM
    create_snapshot(member_session(MEMBER_B).client("ec2"))
    grant_again = refuse_member_b(cleaner, built_services, refused)
    # WHEN a dry run, then three daily runs find it denied
    dry = cleaner({"action": "cleanup", "dry_run": True})
    results = []
    for _ in range(3):
        results.append(cleaner({"action": "cleanup"}))
        future_clock.advance(DAY)
    # THEN each run names the refused call (with the resource it read), and one warning went
    # out, naming it, from the first run that was not a dry run
    assert "access_alerts" not in dry
    assert [
        [call.split()[0] for call in target_of(r, MEMBER_B)["access_denied"]] for r in results
    ] == [[refused]] * 3
    [alert] = member_b_alerts(alert_inbox)
    assert (alert["source"], alert["severity"], alert["resolved"]) == (
        "cleanup_manager",
        "warning",
        False,
    )
    assert "cleanup role" in alert["title"] and refused in alert["detail"]
    assert [MEMBER_B in r["access_alerts"]["alerted"] for r in results] == [True, False, False]
    # WHEN the member grants it again and the next run cleans the account
    grant_again()
    recovered = cleaner({"action": "cleanup"})
    # THEN the account is cleaned whole, and one resolution of the same alert went out
    assert target_of(recovered, MEMBER_B)["status"] == "ok"
    [resolution] = member_b_alerts(alert_inbox)
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    assert recovered["access_alerts"]["resolved"] == [MEMBER_B]
