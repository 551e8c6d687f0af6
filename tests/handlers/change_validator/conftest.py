"""Fixtures of the change_validator tests: the validator and the scaler on the fake clock in
moto, with a member cluster, the validator's schedule group and DescribeUpdate answered by the
test (change_validator_helpers.py says why)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from change_validator_helpers import (
    SCHEDULE_GROUP,
    EksUpdates,
    ScalerThroughItsHandler,
    Validator,
    create_member_cluster,
)

from fleet_shared.clock import ManualClock
from fleet_shared.state_table import StateTable
from handlers.change_validator import app
from handlers.change_validator.services import ValidatorServices
from handlers.eks_scaler import app as scaler_app
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.analytics_services import inject_services
from tests.handlers.conftest import (
    CHANGE_VALIDATOR_ENVIRONMENT,
    MEMBER_ACCOUNT_ID,
    REGION,
    AlertInbox,
)


@pytest.fixture
def validator_environment(
    fleet_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The fleet's variables plus the validator's own, as the program sets them."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("SCALER_FUNCTION_NAME", "lf-handlers-eks-scaler")
    for variable, value in CHANGE_VALIDATOR_ENVIRONMENT.items():
        monkeypatch.setenv(variable, value)
    return {**fleet_environment, **CHANGE_VALIDATOR_ENVIRONMENT}


@pytest.fixture
def eks_updates() -> EksUpdates:
    return EksUpdates()


@pytest.fixture
def scaler_client() -> ScalerThroughItsHandler:
    return ScalerThroughItsHandler()


@pytest.fixture
def validator(
    *,
    validator_environment: dict[str, str],
    state_table: StateTable,
    alert_inbox: AlertInbox,
    inventory_in_s3: dict[str, Any],
    fake_clock: ManualClock,
    eks_updates: EksUpdates,
    scaler_client: ScalerThroughItsHandler,
    monkeypatch: pytest.MonkeyPatch,
) -> Validator:
    """The validator and the scaler on the fake clock, a member cluster with 2 of 2 nodes ready,
    the validator's schedule group, and DescribeUpdate answered by `eks_updates`."""
    create_member_cluster()
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=SCHEDULE_GROUP)
    built = inject_services(monkeypatch, app.FUNCTION, fake_clock, ValidatorServices)
    inject_services(monkeypatch, scaler_app.FUNCTION, fake_clock, ScalerServices)
    monkeypatch.setattr(ValidatorServices, "scaler_client", lambda _self, _seconds: scaler_client)
    services = app.FUNCTION.services()
    member_eks = services.member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    member_eks.meta.events.register("before-call.eks.DescribeUpdate", eks_updates.answer)
    return Validator(fake_clock, built, state_table, eks_updates, scaler_client, alert_inbox)
