"""Fixtures of the scaler tests: a member account with a real (moto) EKS cluster reached through
the assumed member role, a same-named cluster in the hub, and the function's services on the fake
clock, injected into the declared function as a warm container would hold them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from scaler_helpers import (
    HUB_ACCOUNT_ID,
    MEMBER_ACCOUNT_ID,
    REGION,
    Scaler,
    create_cluster,
    declared_spot_node_group,
    member_session,
)
from scaling_harness import Scaling, count_scaling_calls

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.handler import Invocation
from fleet_shared.http_api import is_http_api_event
from fleet_shared.http_api_alias import HTTP_API_ALIAS
from fleet_shared.state_table import StateTable
from handlers.eks_scaler import app
from handlers.eks_scaler.environment import ScalerEnvironment
from handlers.eks_scaler.services import ScalerServices


@pytest.fixture
def inventory_document(inventory_document: dict[str, Any]) -> dict[str, Any]:
    """The shared inventory plus the member cluster's `web` group, with a floor of 2, and its
    `batch-spot` group, with SPOT's floor of 0: the scaler changes declared node groups only."""
    inventory_document["members"][0]["clusters"][0]["node_groups"].extend(
        [
            {
                "name": "web",
                "capacity_type": "ON_DEMAND",
                "instance_types": ["m7g.large"],
                "min_size": 2,
                "desired_size": 3,
                "max_size": 6,
                "floor": 2,
            },
            declared_spot_node_group("batch-spot"),
        ]
    )
    return inventory_document


@pytest.fixture
def member_eks(state_table: Any, alert_inbox: Any, inventory_in_s3: Any) -> Any:
    """EKS in the member account, where the cluster and its node groups are created."""
    eks = member_session().client("eks")
    create_cluster(eks, MEMBER_ACCOUNT_ID)
    return eks


@pytest.fixture
def hub_eks(member_eks: Any) -> Any:
    """EKS in the hub account with a same-named cluster and system group that must never change."""
    eks = boto3.client("eks", region_name=REGION)
    create_cluster(eks, HUB_ACCOUNT_ID, only="system")
    return eks


class ScalerServicesOnTheFakeClock(ScalerServices):
    """The scaler's services, whose waits for a cooldown move the fake clock instead of taking
    the test's time."""

    def pause(self, seconds: float) -> None:
        cast(ManualClock, self.clock).advance(seconds)


@pytest.fixture
def services(member_eks: Any, fake_clock: ManualClock) -> ScalerServices:
    """The scaler's services on the fake clock."""
    return ScalerServicesOnTheFakeClock.create(
        app.FUNCTION.name, load_environment(ScalerEnvironment), clock=fake_clock
    )


SCALER_FUNCTION_ARN = (
    f"arn:aws:lambda:{REGION}:{HUB_ACCOUNT_ID}:function:lambda-fleet-test-eks-scaler"
)


@pytest.fixture
def scaler(services: ScalerServices) -> Scaler:
    """Invoke the declared function (parsing, handling, error results) with `services`; a test
    may put other services in place with `app.FUNCTION.use_services`. An HTTP API request comes
    through the function's http-api alias, as API Gateway invokes it, any other event through
    the function's own ARN."""
    app.FUNCTION.use_services(services)

    def invoke(payload: object, invocation_id: str | None = None) -> dict[str, Any]:
        invoked = f"{SCALER_FUNCTION_ARN}:{HTTP_API_ALIAS}" if is_http_api_event(payload) else None
        invocation = Invocation.local(invocation_id, invoked_function_arn=invoked)
        result: dict[str, Any] = app.FUNCTION.invoke(payload, invocation)
        return result

    return invoke


@pytest.fixture(autouse=True)
def fresh_container() -> Iterator[None]:
    """The function keeps its services per container; each test is a new container."""
    app.FUNCTION.use_services(None)
    yield
    app.FUNCTION.use_services(None)


@pytest.fixture(autouse=True)
def no_default_amis(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's EKS node groups touch the EC2 backend, which otherwise loads thousands of AMIs per
    account and region; none of these tests needs them."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def scaling(  # noqa: PLR0917 - pytest passes fixtures positionally
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> Scaling:
    """The scaler with what it did and the notices it sent, counting its scaling calls."""
    return Scaling(
        scaler,
        services,
        member_eks,
        alert_inbox,
        state_table,
        fake_clock,
        count_scaling_calls(services),
    )
