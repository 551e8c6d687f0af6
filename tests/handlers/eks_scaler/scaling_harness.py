"""The scaling harness of the scaler tests: the scaler with its container's services, what it did
to the node groups and the notices that reached the alert topics (the `scaling` fixture)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, Scaler, sizes

from fleet_shared.clock import ManualClock
from fleet_shared.handler import Invocation
from fleet_shared.node_group_locks import node_group_key, node_group_lock_name
from fleet_shared.state_table import StateChange, StateTable
from handlers.eks_scaler import app
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.deadlines import THREAD_REACHED_SECONDS, ContextRunningOutOfTime
from tests.handlers.faults import (
    InjectedFault,
    InjectedHang,
    InvocationKilledError,
    fail_every_attempt,
)


def count_scaling_calls(services: ScalerServices) -> list[str]:
    """The node groups of every UpdateNodegroupConfig the scaler sends to the member account."""
    calls: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["nodegroupName"])

    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register("provide-client-params.eks.UpdateNodegroupConfig", count)
    return calls


@dataclass
class Scaling:
    """The scaler of the member's cluster with the services of its container, what it did to
    the node groups (their sizes, the scaling calls it sent, the changes it recorded) and the
    notices that reached the alert topics."""

    scaler: Scaler
    services: ScalerServices
    member_eks: Any
    alert_inbox: Any
    state_table: StateTable
    clock: ManualClock
    calls: list[str]

    def desired_size(self, name: str) -> int:
        return sizes(self.member_eks, name)["desired_size"]

    def changes(self, name: str) -> list[StateChange]:
        """The changes of node group `name` the state table recorded, oldest first."""
        key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, name)
        return self.state_table.query_history(key, self.clock.now().replace(year=2000))

    def history(self, name: str) -> int:
        """How many changes of node group `name` the state table recorded."""
        return len(self.changes(name))

    def notice_titles(self) -> list[str]:
        """The titles of the notices received since the last call, sorted."""
        return sorted(item.alert["title"] for item in self.alert_inbox.receive())

    def fail_every_publish(self) -> InjectedFault:
        """The hub's SNS failing every attempt of Publish, until healed."""
        return fail_every_attempt(self.services.hub_client("sns"), "sns", "Publish")

    def fail_every_completion_of_a_record(self, server_error: str | None = None) -> InjectedFault:
        """DynamoDB failing every attempt to write a request's completed record (with
        `server_error`, answering a server error with that message); the request's other writes
        go through."""
        return fail_every_attempt(
            self.services.hub_client("dynamodb"),
            "dynamodb",
            "PutItem",
            body_with=(b"COMPLETED", b"IDEMPOTENCY#eks_scaler"),
            server_error=server_error,
        )

    def lock_system_for_the_spot_optimizer(self) -> str:
        """system's lock, held by the spot optimizer for 120 s."""
        lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
        assert self.state_table.acquire_lock(lock, "spot_optimizer:other", 120)
        return lock

    def killed_then_retried(
        self,
        request: dict[str, Any],
        hang: InjectedHang,
        *,
        scaled_before_the_hang: tuple[str, int],
        context: ContextRunningOutOfTime,
        retry_invocation: str,
    ) -> dict[str, Any]:
        """Invoke `request` with `context` (its time left the same at every question) until
        `hang` holds it, the node group `scaled_before_the_hang` names at its new desired size by
        then; then, as Lambda kills it at its deadline, retry the event a minute later as
        invocation `retry_invocation`: the retry's result. The killed invocation ends with
        InvocationKilledError once let go."""
        name, size = scaled_before_the_hang
        with ThreadPoolExecutor(max_workers=1) as pool:
            killed = pool.submit(app.FUNCTION.invoke, request, Invocation.from_context(context))
            assert hang.entered.wait(THREAD_REACHED_SECONDS)
            assert self.desired_size(name) == size
            self.clock.advance(context.get_remaining_time_in_millis() / 1000 + 60)
            retried = self.scaler(request, retry_invocation)
            hang.release()
            with pytest.raises(InvocationKilledError):
                killed.result(10)
        return retried
