"""UpdateNodegroupConfig that EKS applies but whose answer is lost (a read timeout) or cannot be
read: botocore's retries, the scaler's result and the retry of the request must make, record and
announce the change once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.core.models import botocore_stubber
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, Scaler, event, sizes

from fleet_shared.clock import ManualClock
from fleet_shared.node_group_locks import SAVED_SIZES_NAME, node_group_key
from fleet_shared.state_table import StateChange, StateTable
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.faults import answer_malformed, fail_after_applying_then_refuse

SYSTEM_KEY = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")


@dataclass
class AnswersLost:
    """Lets moto apply the first `lost` attempts of UpdateNodegroupConfig, then discards moto's
    answer and fails the attempt with a read timeout, as an answer lost on its way back; later
    attempts are answered, or, while `unreachable`, fail to connect (never reaching moto). Notes
    the `clientRequestToken` of every attempt."""

    lost: int
    unreachable: bool = False
    tokens: list[str] = field(default_factory=list)

    def __call__(self, event_name: str, request: Any, **kwargs: Any) -> None:
        self.tokens.append(json.loads(request.body)["clientRequestToken"])
        if self.lost == 0:
            if self.unreachable:
                raise EndpointConnectionError(endpoint_url=request.url)
            return
        self.lost -= 1
        botocore_stubber(event_name=event_name, request=request, **kwargs)
        raise ReadTimeoutError(endpoint_url=request.url)


def lose_update_answers(
    services: ScalerServices, lost: int, *, unreachable: bool = False
) -> AnswersLost:
    """Lose the answers of the first `lost` UpdateNodegroupConfig attempts of the scaler (the
    later ones failing to connect while `unreachable`)."""
    fault = AnswersLost(lost, unreachable)
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register_first("before-send.eks.UpdateNodegroupConfig", fault)
    return fault


def history(state_table: StateTable, clock: ManualClock) -> list[StateChange]:
    return state_table.query_history(SYSTEM_KEY, clock.now().replace(year=2000))


def test_an_update_whose_first_answer_is_lost_is_retried_with_its_token_and_recorded_once(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a scale-down of system (2 -> 1) whose first UpdateNodegroupConfig EKS applies but
    # whose answer is lost
    fault = lose_update_answers(services, lost=1)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="eve-1")
    # WHEN the scaler is invoked
    result = scaler(request, "inv-1")
    # THEN botocore sent the update again with the same idempotency token, the change is made
    # and recorded once, and announced once
    assert fault.tokens[0] == fault.tokens[1]
    assert [item["status"] for item in result["results"]] == ["scaling_initiated"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert len(history(state_table, fake_clock)) == 1
    assert [notice.alert["title"] for notice in alert_inbox.receive()] == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    ]
    # WHEN the platform retries the invocation
    repeated = scaler(request, "inv-2")
    # THEN it is answered from the stored result, with no update sent and nothing recorded again
    assert repeated["repeated_request"] is True
    assert len(fault.tokens) == 2
    assert len(history(state_table, fake_clock)) == 1
    assert alert_inbox.receive() == []


def test_an_update_whose_every_answer_is_lost_is_recorded_and_announced_once_by_the_retry(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN the evening scale-down of system (2 -> 1), every attempt of whose update EKS applies
    # and whose answer is lost
    fault = lose_update_answers(services, lost=2)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="eve-1")
    # WHEN the scaler is invoked
    evening = scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    [failed] = evening["results"]
    assert failed["status"] == "error"
    assert "Read timeout" in failed["reason"]
    assert "may have been made" in failed["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    # WHEN the platform retries the request a minute later, EKS answering
    fake_clock.advance(60)
    retried = scaler(request, "inv-2")
    # THEN the retry finds system at its target and sends no update, and the change is recorded
    # and announced once
    assert len(fault.tokens) == 2
    [found] = retried["results"]
    assert found["status"] == "no_change_needed"
    assert len(history(state_table, fake_clock)) == 1
    assert [notice.alert["title"] for notice in alert_inbox.receive()] == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    ]
    # WHEN the morning's size-less scale_up comes
    fake_clock.advance(10 * 3600)
    morning = scaler(event("scale_up", {"name": "system"}, request_id="morning-1"), "inv-3")
    # THEN the sizes saved by the scale-down EKS made are restored
    assert [item["status"] for item in morning["results"]] == ["scaling_initiated"]
    assert sizes(member_eks, "system")["desired_size"] == 2
    saved = state_table.get_value(SYSTEM_KEY, SAVED_SIZES_NAME)
    assert saved is not None
    assert saved["restored_by"] == "morning-1"


def test_a_restore_whose_every_answer_is_lost_keeps_its_mark_and_the_retry_records_it(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN system scaled down in the evening (2 -> 1, its sizes saved), and the morning restore
    # every attempt of whose update EKS applies and whose answer is lost
    scaler(event("scale_down", {"name": "system", "desired_size": 1}, request_id="eve-1"))
    alert_inbox.receive()
    fake_clock.advance(10 * 3600)
    fault = lose_update_answers(services, lost=2)
    request = event("restore", {"name": "system"}, request_id="morning-1")
    # WHEN the restore runs, then is retried a minute later with EKS answering
    first = scaler(request, "inv-1")
    fake_clock.advance(60)
    retried = scaler(request, "inv-2")
    # THEN the first run failed saying the change may have been made (EKS made it), and the
    # retry sent no update, found system restored and recorded and announced the restore once
    assert [item["status"] for item in first["results"]] == ["error"]
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert len(fault.tokens) == 2
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert [change.record["action"] for change in history(state_table, fake_clock)] == [
        "scale_down",
        "restore",
    ]
    assert [notice.alert["title"] for notice in alert_inbox.receive()] == [
        f"{CLUSTER}/system scaled (restore): desired 1 -> 2"
    ]


def test_an_update_whose_answer_was_lost_before_a_failed_connection_is_recorded_by_the_retry(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a scale-down of system (2 -> 1) whose first update attempt EKS applies, its answer
    # lost, and whose second attempt cannot connect
    fault = lose_update_answers(services, lost=1, unreachable=True)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="eve-1")
    # WHEN the scaler is invoked
    evening = scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    [failed] = evening["results"]
    assert failed["status"] == "error"
    assert "may have been made" in failed["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    # WHEN the platform retries the request a minute later, EKS answering
    fault.unreachable = False
    fake_clock.advance(60)
    retried = scaler(request, "inv-2")
    # THEN the retry sends no update, and the change is recorded and announced once
    assert len(fault.tokens) == 2
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert len(history(state_table, fake_clock)) == 1
    assert [notice.alert["title"] for notice in alert_inbox.receive()] == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    ]


def test_an_update_whose_answer_cannot_be_read_is_recorded_and_announced_once_by_the_retry(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN the evening scale-down of system (2 -> 1), whose UpdateNodegroupConfig EKS applies
    # but answers with a body that cannot be read
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    malformed = answer_malformed(eks, "eks", "UpdateNodegroupConfig", b"<html>gateway</html>")
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="eve-1")
    # WHEN the scaler is invoked
    evening = scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    [failed] = evening["results"]
    assert failed["status"] == "error"
    assert "may have been made" in failed["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    # WHEN the platform retries the request a minute later, EKS answering normally
    eks.meta.events.unregister("before-send.eks.UpdateNodegroupConfig", malformed)
    fake_clock.advance(60)
    retried = scaler(request, "inv-2")
    # THEN the retry finds system at its target, and the change is recorded and announced once
    assert malformed.answered == 1
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert len(history(state_table, fake_clock)) == 1
    assert [notice.alert["title"] for notice in alert_inbox.receive()] == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    ]


def test_an_update_eks_made_then_answered_with_a_server_error_is_recorded_once_by_the_retry(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN the evening scale-down of system (2 -> 1), whose first UpdateNodegroupConfig EKS
    # applies but answers with a server error (HTTP 500, which botocore retries), then refuses the
    # retry with ResourceInUseException (the node group is updating)
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    fault = fail_after_applying_then_refuse(
        eks, "eks", "UpdateNodegroupConfig", "ServerException", "ResourceInUseException"
    )
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="eve-1")
    # WHEN the scaler is invoked
    evening = scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    assert (fault.applied, fault.refused) == (1, 1)
    [failed] = evening["results"]
    assert failed["status"] == "error"
    assert "may have been made" in failed["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    # WHEN the platform retries the request a minute later, EKS answering
    eks.meta.events.unregister("before-send.eks.UpdateNodegroupConfig", fault)
    fake_clock.advance(60)
    scaler(request, "inv-2")
    # THEN the change is recorded and announced once, with the sizes it replaced saved
    assert len(history(state_table, fake_clock)) == 1
    assert [notice.alert["title"] for notice in alert_inbox.receive()] == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    ]
    assert state_table.get_value(SYSTEM_KEY, SAVED_SIZES_NAME) is not None
