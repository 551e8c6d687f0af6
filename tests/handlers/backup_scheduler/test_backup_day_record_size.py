"""A target whose day's record is past DynamoDB's 400 KB item: thousands of copies in one region.

Member A's EC2 is answered in its client (`ManyVolumesEc2`), the state table by moto, which
refuses an item past 400 KB as DynamoDB does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from fleet_shared.clock import ManualClock
from handlers.backup_scheduler.backup import BACKUP_TAG, BackupServices
from tests.handlers.member_accounts import MEMBER_A

Invoke = Callable[..., dict[str, Any]]
VOLUMES = 3_100
"""Daily volumes whose copies (about 130 bytes each in the target's summary) take its list past
400 KB."""


@dataclass
class ManyVolumesEc2:
    """EC2 of one region with `volume_ids` tagged for daily copies, and the snapshots made of
    them, answered before the call is sent (`before-call`).

    moto looks up each listed resource's tags among every tag of the region, so listing 3,100
    volumes and their copies through it took about a minute. Every snapshot here is a copy made
    by the run, with the tags both of the handler's listings filter on, so no filter is applied.
    """

    volume_ids: list[str]
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, Any]:
        if model.name == "DescribeVolumes":
            tags = [{"Key": BACKUP_TAG, "Value": "daily"}]
            parsed: dict[str, Any] = {
                "Volumes": [{"VolumeId": volume, "Tags": tags} for volume in self.volume_ids]
            }
        elif model.name == "CreateSnapshot":
            parsed = self._create_snapshot(params["body"])
        elif model.name == "DescribeSnapshots":
            parsed = {"Snapshots": self.snapshots}
        elif model.name == "CreateTags":
            parsed = self._create_tags(params["body"])
        else:
            raise AssertionError(f"the backup of many volumes called EC2 {model.name}")
        return AWSResponse(params["url"], 200, {}, None), parsed

    def _create_snapshot(self, body: dict[str, str]) -> dict[str, Any]:
        tags = []
        while f"TagSpecification.1.Tag.{len(tags) + 1}.Key" in body:
            number = len(tags) + 1
            tags.append(
                {
                    "Key": body[f"TagSpecification.1.Tag.{number}.Key"],
                    "Value": body[f"TagSpecification.1.Tag.{number}.Value"],
                }
            )
        snapshot = {
            "SnapshotId": f"snap-{len(self.snapshots):017x}",
            "VolumeId": body["VolumeId"],
            "State": "pending",
            "Tags": tags,
        }
        self.snapshots.append(snapshot)
        return snapshot

    def _create_tags(self, body: dict[str, str]) -> dict[str, Any]:
        """Tag one snapshot with one tag, as the run tags each new one with its id."""
        snapshot = self.snapshots[int(body["ResourceId.1"].removeprefix("snap-"), 16)]
        snapshot["Tags"].append({"Key": body["Tag.1.Key"], "Value": body["Tag.1.Value"]})
        return {}


@pytest.fixture
def member_a_ec2(monkeypatch: pytest.MonkeyPatch) -> ManyVolumesEc2:
    """Member A's EC2 with VOLUMES daily volumes, in every member client the handler builds."""
    ec2 = ManyVolumesEc2([f"vol-{number:017x}" for number in range(VOLUMES)])
    member_client = BackupServices.member_client

    def client_of_member_a_with_many_volumes(
        services: BackupServices, service: str, account_id: str, region: str
    ) -> Any:
        client = member_client(services, service, account_id, region)
        if (service, account_id) == ("ec2", MEMBER_A):
            client.meta.events.register(
                "before-call.ec2", ec2.answer, unique_id="member-a-many-volumes"
            )
        return client

    monkeypatch.setattr(BackupServices, "member_client", client_of_member_a_with_many_volumes)
    return ec2


def test_a_target_with_more_copies_than_one_state_item_holds_is_recorded_and_answered_whole(
    backup: Invoke, fake_clock: ManualClock, member_a_ec2: ManyVolumesEc2
) -> None:
    # GIVEN member A with 3,100 daily volumes (member_a_ec2)
    # WHEN the schedule runs
    first = backup({"action": "backup"})
    # THEN every volume is copied and the target's day recorded: it is not reported failed
    target = next(t for t in first["targets"] if t["account_id"] == MEMBER_A)
    assert target["status"] == "ok", target.get("error")
    assert target["created"] == VOLUMES
    assert sorted(copy["source"] for copy in target["copies"]) == member_a_ec2.volume_ids
    # WHEN the schedule is retried the same day
    fake_clock.advance(3600)
    retried = backup({"action": "backup"})
    # THEN it answers the first run's whole result as a repeat, and copies nothing again
    assert next(t for t in retried["targets"] if t["account_id"] == MEMBER_A) == {
        **target,
        "repeat": True,
    }
    assert len(member_a_ec2.snapshots) == VOLUMES
