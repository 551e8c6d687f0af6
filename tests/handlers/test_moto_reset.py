"""Every test's moto starts empty, whatever the test before it used (tests/conftest.py)."""

from __future__ import annotations

import pytest
from moto import mock_aws

from tests.handlers.member_accounts import MEMBER_A, member_session


def test_a_mock_starts_without_the_ec2_that_auto_scaling_rebuilt_while_the_last_one_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a test in which member A used EC2 and then Auto Scaling, with moto's public AMIs on
    monkeypatch.delenv("MOTO_EC2_LOAD_DEFAULT_AMIS", raising=False)
    with mock_aws():
        earlier = member_session(MEMBER_A)
        earlier.client("ec2").describe_volumes()
        earlier.client("autoscaling").describe_auto_scaling_groups()
    # WHEN the next test's mock starts, with the public AMIs off
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        ec2 = member_session(MEMBER_A).client("ec2")
        snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    # THEN member A's region holds none of the earlier test's snapshots (the AMIs' 1,284)
    assert [snapshot["SnapshotId"] for snapshot in snapshots] == []
