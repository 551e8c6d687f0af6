"""Fixtures of the security scanner tests: hub resources in moto and services on a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from catalog.functions import function_spec
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.state_table import StateTable
from handlers.security_scanner import app
from handlers.security_scanner.environment import ScannerEnvironment
from handlers.security_scanner.scan import ScanServices
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
TIMEOUT_SECONDS = function_spec("security_scanner").timeout_seconds


@pytest.fixture(autouse=True)
def _fast_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No default AMI catalogue per (account, region) (never read here), and botocore models
    parsed once per process rather than once per member session."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    share_botocore_models(monkeypatch)


@pytest.fixture
def write_inventory(inventory_in_s3: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """Replace the inventory with one listing the given member accounts."""

    def write(*account_ids: str) -> dict[str, Any]:
        document = fleet_inventory(*account_ids)
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=DATA_BUCKET,
            Key="config/fleet-inventory.json",
            Body=json.dumps(document).encode("utf-8"),
        )
        return document

    return write


@pytest.fixture
def build_scanner_services(
    state_table: StateTable,
    alert_inbox: Any,
    write_inventory: Callable[..., dict[str, Any]],
    fake_clock: ManualClock,
) -> Callable[[], ScanServices]:
    """Builds the scanner's services with members A and B plus a member that denies AssumeRole,
    on the fake clock; the denied member's AssumeRole fails as in real AWS."""
    write_inventory(MEMBER_A, MEMBER_B, DENIED_MEMBER)

    def build() -> ScanServices:
        services = ScanServices.create(
            app.FUNCTION.name, load_environment(ScannerEnvironment), clock=fake_clock
        )
        deny_assume_role(services.sessions.hub_client("sts"), DENIED_MEMBER)
        return services

    return build


@pytest.fixture
def scanner(
    build_scanner_services: Callable[[], ScanServices], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, Any]]:
    """`scanner(event, services=None, context=None)`: invoke the handler.

    Without `services` they are rebuilt per call (the environment may change between calls in a
    test) but keep the fake clock; a test that injects faults into a client passes its own.
    Without `context` the invocation has the function's whole timeout left, as a scheduled one
    starts.
    """

    def invoke(
        event: Any, services: ScanServices | None = None, context: Any = None
    ) -> dict[str, Any]:
        monkeypatch.setattr(
            app.FUNCTION,
            "services",
            build_scanner_services if services is None else (lambda: services),
        )
        return app.lambda_handler(
            event, context or ContextRunningOutOfTime(millis_left=[TIMEOUT_SECONDS * 1000])
        )

    return invoke


@pytest.fixture
def hub_findings() -> Callable[[], dict[str, dict[str, Any]]]:
    """The findings stored in the hub's Security Hub, by id."""

    def read() -> dict[str, dict[str, Any]]:
        client = boto3.client("securityhub", region_name=REGION)
        return {f["Id"]: f for f in client.get_findings(MaxResults=100)["Findings"]}

    return read
