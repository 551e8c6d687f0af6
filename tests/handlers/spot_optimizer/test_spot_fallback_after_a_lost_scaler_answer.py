"""The spot fallback's +1 after an eks_scaler change whose answer was lost: the scaler's change,
made but not recorded (its intent kept for its retry), is recorded and announced once, before
the +1 (whose record would otherwise spend the intent), and the scaler's retry changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from fleet_shared.change_intents import INTENT_NAME
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.handler import Invocation
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.state_table import StateChange
from handlers.eks_scaler import app as scaler_app
from handlers.eks_scaler.environment import ScalerEnvironment
from handlers.eks_scaler.services import ScalerServices
from handlers.spot_optimizer.services import SpotServices
from tests.handlers.faults import LostAnswer, fail_every_attempt, lose_first_answer
from tests.handlers.member_accounts import MEMBER_A, REGION
from tests.handlers.spot_optimizer.conftest import (
    CLUSTER,
    at_the_fallback_threshold,
    desired_size,
    interrupt_batch_spot,
    next_batch_spot_warning,
)

MakeServices = Callable[..., SpotServices]
Invoke = Callable[..., dict[str, Any]]

SYSTEM_KEY = node_group_key(MEMBER_A, REGION, CLUSTER, "system")
SCALED_UP_BY_A = f"{CLUSTER}/system scaled (scale_up): desired 2 -> 3"
PLUS_ONE_OVER_A = f"{CLUSTER}/system scaled (spot fallback): desired 3 -> 4"
FUTURE = "2099-01-01T00:00:00Z"
"""A time no clock writes: a hand edit or corruption put it in the state table."""
REQUEST_A = {
    "action": "scale_up",
    "account_id": MEMBER_A,
    "region": REGION,
    "cluster": CLUSTER,
    "nodegroups": [{"name": "system", "desired_size": 3}],
    "request_id": "a-1",
}


@dataclass
class Scaler:
    """eks_scaler of the member's cluster, with its container's services, the faults injected
    into its UpdateNodegroupConfig and the node groups it sent one for."""

    services: ScalerServices
    updates: list[str]

    def invoke(self, event: dict[str, Any], invocation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = scaler_app.FUNCTION.invoke(event, Invocation.local(invocation_id))
        return result

    def member_eks(self) -> Any:
        return self.services.member_client("eks", MEMBER_A, REGION)


@pytest.fixture
def scaler(member_eks: Any, fake_clock: ManualClock) -> Iterator[Scaler]:
    """eks_scaler's container on the spot tests' clock, counting its scaling calls."""
    services = ScalerServices.create(
        scaler_app.FUNCTION.name, load_environment(ScalerEnvironment), clock=fake_clock
    )
    scaler_app.FUNCTION.use_services(services)
    updates: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        updates.append(params["nodegroupName"])

    services.member_client("eks", MEMBER_A, REGION).meta.events.register(
        "provide-client-params.eks.UpdateNodegroupConfig", count
    )
    yield Scaler(services, updates)
    scaler_app.FUNCTION.use_services(None)


def scale_up_made_but_unanswered(scaler: Scaler, member_eks: Any) -> LostAnswer:
    """Request A, eks_scaler's scale-up of system (2 -> 3), whose update EKS applies but whose
    answer is lost, botocore's retries failing to connect: system is an error, its change made
    but not recorded. The fault, to heal (`unreachable_after = False`) for A's retry."""
    fault = lose_first_answer(
        scaler.member_eks(), "eks", "UpdateNodegroupConfig", then_unreachable=True
    )
    [failed] = scaler.invoke(REQUEST_A, "inv-a-1")["results"]
    assert failed["status"] == "error", failed
    assert desired_size(member_eks, "system") == 3
    return fault


def lost_scale_up_at_the_threshold(
    make_services: MakeServices, invoke: Invoke, scaler: Scaler, member_eks: Any, alert_inbox: Any
) -> tuple[SpotServices, LostAnswer]:
    """Auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    request A made but its answer lost (`scale_up_made_but_unanswered`), the alerts so far
    received: the spot optimizer's services and the fault."""
    services = at_the_fallback_threshold(make_services, invoke)
    fault = scale_up_made_but_unanswered(scaler, member_eks)
    alert_inbox.receive()
    return services, fault


def system_changes(services: SpotServices) -> list[StateChange]:
    """system's recorded changes, oldest first."""
    return services.state.query_history(SYSTEM_KEY, services.clock.now().replace(year=2000))


def changes_made(services: SpotServices) -> list[tuple[str, int, int]]:
    """system's recorded changes, oldest first: (action, previous desired, new desired)."""
    return [
        (
            change.record["action"],
            change.record["previous"]["desired_size"],
            change.record["new"]["desired_size"],
        )
        for change in system_changes(services)
    ]


def scaling_notices(alert_inbox: Any) -> list[str]:
    """The titles of the scaling notices received since the last call (not the warnings)."""
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    return [title for title in titles if " scaled (" in title]


def retry_a_a_minute_later(scaler: Scaler, fault: LostAnswer, clock: ManualClock) -> str:
    """The platform's retry of request A a minute later, EKS answering again: system's status."""
    fault.unreachable_after = False
    clock.advance(60)
    [result] = scaler.invoke(REQUEST_A, "inv-a-2")["results"]
    return str(result["status"])


@pytest.mark.usefixtures("no_retry_waits")
def test_a_plus_one_after_a_scalers_lost_answer_records_and_announces_that_change_first(
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    scaler: Scaler,
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # eks_scaler's request A raising system 2 -> 3, made but its answer lost
    services = at_the_fallback_threshold(make_services, invoke)
    made_at = services.clock.now()
    fault = scale_up_made_but_unanswered(scaler, member_eks)
    alert_inbox.receive()
    # WHEN, before A's retry, a fourth interruption's fallback makes its +1
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN A's change is recorded first, dated when it was made, then the +1 over it; each is
    # announced once
    assert result["fallback"]["status"] == "scaling_initiated", result["fallback"]
    assert desired_size(member_eks, "system") == 4
    assert changes_made(services) == [("scale_up", 2, 3), ("spot_fallback", 3, 4)]
    found = system_changes(services)[0]
    assert found.changed_at == made_at
    assert found.record["request_id"] == "a-1"
    assert found.record["recorded_by"] == "spot_optimizer"
    assert sorted(scaling_notices(alert_inbox)) == [SCALED_UP_BY_A, PLUS_ONE_OVER_A]
    # WHEN the platform retries A a minute later
    status = retry_a_a_minute_later(scaler, fault, services.clock)
    # THEN A's retry changes, records and announces nothing: the +1 stands
    assert status == "no_change_needed"
    assert scaler.updates == ["system"]
    assert desired_size(member_eks, "system") == 4
    assert len(system_changes(services)) == 2
    assert scaling_notices(alert_inbox) == []


@pytest.mark.usefixtures("no_retry_waits")
def test_a_plus_one_dates_a_scalers_intent_from_the_future_now_before_recording_it(
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    scaler: Scaler,
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # eks_scaler's request A raising system 2 -> 3, made but its answer lost, its kept intent
    # then dated 2099 (a hand edit, corruption)
    services = at_the_fallback_threshold(make_services, invoke)
    scale_up_made_but_unanswered(scaler, member_eks)
    intent = services.state.get_value(SYSTEM_KEY, INTENT_NAME)
    assert intent is not None
    services.state.put_value(SYSTEM_KEY, INTENT_NAME, {**intent, "prepared_at": FUTURE})
    alert_inbox.receive()

    def take_a_second(**_: Any) -> None:
        """The +1's update takes a second, as a call to EKS does."""
        services.clock.advance(1)

    services.member_client("eks", MEMBER_A, REGION).meta.events.register(
        "before-send.eks.UpdateNodegroupConfig", take_a_second
    )
    # WHEN a fourth interruption's fallback makes its +1
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    now = services.clock.now()
    # THEN A's change is recorded as of when the fallback found it (it cannot have been made
    # later), before the +1, and its intent is saved again as of then, keeping the time it had
    assert result["fallback"]["status"] == "scaling_initiated", result["fallback"]
    assert changes_made(services) == [("scale_up", 2, 3), ("spot_fallback", 3, 4)]
    found, plus_one = system_changes(services)
    assert found.changed_at < plus_one.changed_at == now
    redated = services.state.get_value(SYSTEM_KEY, INTENT_NAME)
    assert redated is not None
    assert datetime.fromisoformat(redated["prepared_at"]) == found.changed_at
    assert redated["redated_from"] == FUTURE
    assert sorted(scaling_notices(alert_inbox)) == [SCALED_UP_BY_A, PLUS_ONE_OVER_A]


@pytest.mark.usefixtures("no_retry_waits")
@pytest.mark.parametrize("proposed_by", ["dry_run_warning", "auto_apply_off"])
def test_a_proposed_plus_one_after_a_scalers_lost_answer_records_nothing(  # noqa: PLR0917 - pytest passes fixtures positionally
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    scaler: Scaler,
    proposed_by: str,
) -> None:
    # GIVEN three interruptions of batch-spot in the last hour (threshold 3), and eks_scaler's
    # request A raising system 2 -> 3, made but its answer lost
    proposing = make_services(SPOT_AUTO_APPLY=str(proposed_by == "dry_run_warning").lower())
    interrupt_batch_spot(invoke, proposing)
    scale_up_made_but_unanswered(scaler, member_eks)
    alert_inbox.receive()
    # WHEN a fourth interruption's fallback is only proposed (a dry-run warning, or auto-apply
    # off)
    warning = next_batch_spot_warning(proposing)
    if proposed_by == "dry_run_warning":
        warning["dry_run"] = True
    result = invoke(warning, proposing, "inv-4")
    # THEN nothing is changed, recorded or announced, and A's intent stays
    assert result["fallback"]["status"] == "proposed", result["fallback"]
    assert desired_size(member_eks, "system") == 3
    assert system_changes(proposing) == []
    assert scaling_notices(alert_inbox) == []
    assert proposing.state.get_value(SYSTEM_KEY, INTENT_NAME) is not None
    # WHEN the next interruption's fallback is applied
    applying = make_services(SPOT_AUTO_APPLY="true")
    applied = invoke(next_batch_spot_warning(applying), applying, "inv-5")
    # THEN A's change and the +1 are each recorded and announced once
    assert applied["fallback"]["status"] == "scaling_initiated", applied["fallback"]
    assert changes_made(applying) == [("scale_up", 2, 3), ("spot_fallback", 3, 4)]
    assert sorted(scaling_notices(alert_inbox)) == [SCALED_UP_BY_A, PLUS_ONE_OVER_A]


@pytest.mark.usefixtures("no_retry_waits")
def test_a_plus_one_whose_record_of_a_scalers_unrecorded_change_is_refused_changes_nothing(
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    scaler: Scaler,
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3),
    # eks_scaler's request A raising system 2 -> 3, made but its answer lost, and the state
    # table then failing every attempt to record A's change
    services, fault = lost_scale_up_at_the_threshold(
        make_services, invoke, scaler, member_eks, alert_inbox
    )
    refused = fail_every_attempt(
        services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems", body_with=(b"scale_up",)
    )
    # WHEN a fourth interruption's fallback comes
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the fallback fails and system keeps A's 3: the +1's record would spend A's intent,
    # the one trace of A's change; nothing is recorded or announced, and A's intent stays
    assert result["fallback"]["status"] == "error", result["fallback"]
    assert refused.attempts > 0
    assert desired_size(member_eks, "system") == 3
    assert system_changes(services) == []
    assert scaling_notices(alert_inbox) == []
    assert services.state.get_value(SYSTEM_KEY, INTENT_NAME) is not None
    # WHEN the state table answers again and the next interruption's fallback comes (the
    # failed one did not use up the hour's +1), then A is retried
    refused.healed = True
    applied = invoke(next_batch_spot_warning(services), services, "inv-5")
    status = retry_a_a_minute_later(scaler, fault, services.clock)
    # THEN A's change and the +1 are each recorded and announced once, and A's retry changes
    # nothing
    assert applied["fallback"]["status"] == "scaling_initiated", applied["fallback"]
    assert changes_made(services) == [("scale_up", 2, 3), ("spot_fallback", 3, 4)]
    assert sorted(scaling_notices(alert_inbox)) == [SCALED_UP_BY_A, PLUS_ONE_OVER_A]
    assert status == "no_change_needed"
    assert desired_size(member_eks, "system") == 4


@pytest.mark.usefixtures("no_retry_waits")
def test_a_scalers_change_announced_by_the_fallback_is_not_announced_again_by_the_scalers_retry(
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    scaler: Scaler,
) -> None:
    # GIVEN A's scale-up made but its answer lost at the fallback's threshold, and EKS failing
    # every attempt of the fallback's +1
    services, fault = lost_scale_up_at_the_threshold(
        make_services, invoke, scaler, member_eks, alert_inbox
    )
    fail_every_attempt(
        services.member_client("eks", MEMBER_A, REGION), "eks", "UpdateNodegroupConfig"
    )
    # WHEN a fourth interruption's fallback comes: it records A's change and announces it, under
    # its own delivery claims, and its +1 fails
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    assert result["fallback"]["status"] == "error", result["fallback"]
    assert changes_made(services) == [("scale_up", 2, 3)]
    assert scaling_notices(alert_inbox) == [SCALED_UP_BY_A]
    # WHEN the platform retries A a minute later, which finds its change recorded and delivers
    # its notice under the scaler's delivery claims
    status = retry_a_a_minute_later(scaler, fault, services.clock)
    # THEN A's notice, which the fallback delivered, does not go out a second time
    assert status == "no_change_needed"
    assert scaling_notices(alert_inbox) == []
