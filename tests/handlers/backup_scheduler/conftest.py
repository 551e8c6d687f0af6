"""Fixtures of the backup scheduler tests: members A and B plus a denied one, a manual clock."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from catalog.functions import function_spec
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.state_table import StateTable
from handlers.backup_scheduler import app
from handlers.backup_scheduler.backup import BackupServices
from handlers.backup_scheduler.environment import BackupEnvironment
from tests.handlers.deadlines import ContextRunningOutOfTime
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_A,
    MEMBER_B,
    REGION,
    deny_assume_role,
    fleet_inventory,
    share_botocore_models,
)

DATA_BUCKET = "lambda-fleet-data"


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
) -> Callable[..., dict[str, Any]]:
    """Invoke the handler for members A, B and a member whose AssumeRole is denied.

    Services are built once per test (on the first call) and keep the manual clock, so a hook
    a test registers on a member client stays in place for later calls.
    """
    document = fleet_inventory(MEMBER_A, MEMBER_B, DENIED_MEMBER)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET,
        Key="config/fleet-inventory.json",
        Body=json.dumps(document).encode("utf-8"),
    )

    def services() -> BackupServices:
        if not built_services:
            built = BackupServices.create(
                app.FUNCTION.name, load_environment(BackupEnvironment), clock=fake_clock
            )
            deny_assume_role(built.sessions.hub_client("sts"), DENIED_MEMBER)
            built_services.append(built)
        # The environment is read per call, as a new container would, so a test can flip
        # FLEET_DRY_RUN between invocations; sessions and clients stay.
        return dataclasses.replace(
            built_services[0], environment=load_environment(BackupEnvironment)
        )

    def invoke(event: Any, context: Any = None) -> dict[str, Any]:
        monkeypatch.setattr(app.FUNCTION, "services", services)
        # By default the whole of the function's timeout, as the schedule's invocation starts:
        # a target starts only with time for its endpoints hanging (HUNG_ENDPOINTS_SECONDS).
        whole_invocation = ContextRunningOutOfTime(
            millis_left=[function_spec("backup_scheduler").timeout_seconds * 1000]
        )
        return app.lambda_handler(event, context or whole_invocation)

    return invoke
