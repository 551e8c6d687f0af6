"""A target whose day's record is past DynamoDB's 400 KB item: thousands of copies in one region.

Its own file, in `FIRST` of tests/conftest.py: the thousands of CreateSnapshot calls take moto
about a minute."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.models import ec2_backends

from fleet_shared.clock import ManualClock
from tests.handlers.member_accounts import MEMBER_A, REGION, member_session

Invoke = Callable[..., dict[str, Any]]
VOLUMES = 3_100
"""Daily volumes whose copies (about 130 bytes each in the target's summary) take its list past
400 KB."""


def test_a_target_with_more_copies_than_one_state_item_holds_is_recorded_and_answered_whole(
    backup: Invoke, fake_clock: ManualClock
) -> None:
    # GIVEN member A with 3,100 daily volumes (made in moto's backend: through the API they
    # would take a minute more)
    ec2_backend = ec2_backends[MEMBER_A][REGION]
    volume_ids = [
        ec2_backend.create_volume(size=1, zone_name=f"{REGION}a").id for _ in range(VOLUMES)
    ]
    ec2_backend.create_tags(volume_ids, {"backup": "daily"})
    # WHEN the schedule runs
    first = backup({"action": "backup"})
    # THEN every volume is copied and the target's day recorded: it is not reported failed
    target = next(t for t in first["targets"] if t["account_id"] == MEMBER_A)
    assert target["status"] == "ok", target.get("error")
    assert target["created"] == VOLUMES
    assert sorted(copy["source"] for copy in target["copies"]) == sorted(volume_ids)
    # WHEN the schedule is retried the same day
    fake_clock.advance(3600)
    retried = backup({"action": "backup"})
    # THEN it answers the first run's whole result as a repeat, and copies nothing again
    assert next(t for t in retried["targets"] if t["account_id"] == MEMBER_A) == {
        **target,
        "repeat": True,
    }
    ec2 = member_session(MEMBER_A).client("ec2")
    snapshots = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
    assert sum(len(page["Snapshots"]) for page in snapshots) == VOLUMES
