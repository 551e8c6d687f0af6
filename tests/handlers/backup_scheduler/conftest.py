"""Fixtures of the backup scheduler tests: members A and B plus a denied one, a manual clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.state_table import StateTable
from handlers.backup_scheduler import app
from handlers.backup_scheduler.backup import BackupServices
from handlers.backup_scheduler.environment import BackupEnvironment
from tests.handlers.conftest import AlertInbox
from tests.handlers.member_accounts import share_botocore_models
from tests.handlers.member_targets import invoke_for_members_a_b_and_denied


@pytest.fixture(autouse=True)
def _fast_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No default AMI catalogue (never read here) and shared botocore models."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    share_botocore_models(monkeypatch)


@pytest.fixture
def built_services() -> list[BackupServices]:
    """The services of each invocation, so a test can reach the clients the handler uses."""
    return []


@pytest.fixture
def backup(
    state_table: StateTable,
    inventory_in_s3: dict[str, Any],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    built_services: list[BackupServices],
    *,
    alert_inbox: AlertInbox,
) -> Callable[..., dict[str, Any]]:
    """Invoke the handler for members A, B and a member whose AssumeRole is denied, its alerts
    delivered to `alert_inbox` (the denied member's alert goes out in every test).

    Services are built once per test (on the first call) and keep the manual clock, so a hook
    a test registers on a member client stays in place for later calls; the environment is
    read per call, so a test can flip FLEET_DRY_RUN between invocations.
    """
    return invoke_for_members_a_b_and_denied(
        app.FUNCTION,
        lambda environment: BackupServices.create(app.FUNCTION.name, environment, clock=fake_clock),
        BackupEnvironment,
        built_services,
        monkeypatch,
    )
