"""UpdateNodegroupConfig that EKS applies but whose answer is lost (a read timeout) or cannot be
read: botocore's retries, the scaler's result and the retry of the request must make, record and
announce the change once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.core.models import botocore_stubber
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, event
from scaling_harness import Scaling

from fleet_shared.node_group_locks import SAVED_SIZES_NAME, node_group_key
from tests.handlers.faults import answer_malformed, fail_after_applying_then_refuse

SYSTEM_KEY = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
SYSTEM_SCALED_DOWN = f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"


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


def scalers_member_eks(scaling: Scaling) -> Any:
    """The EKS client the scaler sends UpdateNodegroupConfig through, where faults are injected."""
    return scaling.services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)


def lose_update_answers(scaling: Scaling, lost: int, *, unreachable: bool = False) -> AnswersLost:
    """Lose the answers of the first `lost` UpdateNodegroupConfig attempts of the scaler (the
    later ones failing to connect while `unreachable`)."""
    fault = AnswersLost(lost, unreachable)
    scalers_member_eks(scaling).meta.events.register_first(
        "before-send.eks.UpdateNodegroupConfig", fault
    )
    return fault


def answer_updates_normally(scaling: Scaling, fault: object) -> None:
    """Take `fault` off the scaler's UpdateNodegroupConfig: EKS answers normally again."""
    scalers_member_eks(scaling).meta.events.unregister(
        "before-send.eks.UpdateNodegroupConfig", fault
    )


def retry_a_minute_later(scaling: Scaling, request: dict[str, Any]) -> dict[str, Any]:
    """The platform's retry of `request` a minute after its first invocation: its result."""
    scaling.clock.advance(60)
    return scaling.scaler(request, "inv-2")


def evening_scale_down() -> dict[str, Any]:
    """The evening scale-down of system, 2 -> 1."""
    return event("scale_down", {"name": "system", "desired_size": 1}, request_id="eve-1")


def assert_failed_saying_the_change_may_have_been_made(
    result: dict[str, Any], scaling: Scaling
) -> None:
    """system, the only node group of `result`, is an error saying its change may have been
    made, and EKS did make it (desired 1)."""
    [failed] = result["results"]
    assert failed["status"] == "error"
    assert "may have been made" in failed["reason"]
    assert scaling.desired_size("system") == 1


def assert_scale_down_recorded_and_announced_once(scaling: Scaling) -> None:
    """The state table holds one change of system and the topics got its one notice."""
    assert scaling.history("system") == 1
    assert scaling.notice_titles() == [SYSTEM_SCALED_DOWN]


def test_an_update_whose_first_answer_is_lost_is_retried_with_its_token_and_recorded_once(
    scaling: Scaling,
) -> None:
    # GIVEN a scale-down of system (2 -> 1) whose first UpdateNodegroupConfig EKS applies but
    # whose answer is lost
    fault = lose_update_answers(scaling, lost=1)
    request = evening_scale_down()
    # WHEN the scaler is invoked
    result = scaling.scaler(request, "inv-1")
    # THEN botocore sent the update again with the same idempotency token, the change is made
    # and recorded once, and announced once
    assert fault.tokens[0] == fault.tokens[1]
    assert [item["status"] for item in result["results"]] == ["scaling_initiated"]
    assert scaling.desired_size("system") == 1
    assert_scale_down_recorded_and_announced_once(scaling)
    # WHEN the platform retries the invocation
    repeated = scaling.scaler(request, "inv-2")
    # THEN it is answered from the stored result, with no update sent and nothing recorded again
    assert repeated["repeated_request"] is True
    assert len(fault.tokens) == 2
    assert scaling.history("system") == 1
    assert scaling.alert_inbox.receive() == []


def test_an_update_whose_every_answer_is_lost_is_recorded_and_announced_once_by_the_retry(
    scaling: Scaling,
) -> None:
    # GIVEN the evening scale-down of system (2 -> 1), every attempt of whose update EKS applies
    # and whose answer is lost
    fault = lose_update_answers(scaling, lost=2)
    request = evening_scale_down()
    # WHEN the scaler is invoked
    evening = scaling.scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    assert_failed_saying_the_change_may_have_been_made(evening, scaling)
    assert "Read timeout" in evening["results"][0]["reason"]
    # WHEN the platform retries the request a minute later, EKS answering
    retried = retry_a_minute_later(scaling, request)
    # THEN the retry finds system at its target and sends no update, and the change is recorded
    # and announced once
    assert len(fault.tokens) == 2
    [found] = retried["results"]
    assert found["status"] == "no_change_needed"
    assert_scale_down_recorded_and_announced_once(scaling)
    # WHEN the morning's size-less scale_up comes
    scaling.clock.advance(10 * 3600)
    morning = scaling.scaler(event("scale_up", {"name": "system"}, request_id="morning-1"), "inv-3")
    # THEN the sizes saved by the scale-down EKS made are restored
    assert [item["status"] for item in morning["results"]] == ["scaling_initiated"]
    assert scaling.desired_size("system") == 2
    saved = scaling.state_table.get_value(SYSTEM_KEY, SAVED_SIZES_NAME)
    assert saved is not None
    assert saved["restored_by"] == "morning-1"


def test_a_restore_whose_every_answer_is_lost_keeps_its_mark_and_the_retry_records_it(
    scaling: Scaling,
) -> None:
    # GIVEN system scaled down in the evening (2 -> 1, its sizes saved), and the morning restore
    # every attempt of whose update EKS applies and whose answer is lost
    scaling.scaler(evening_scale_down())
    scaling.alert_inbox.receive()
    scaling.clock.advance(10 * 3600)
    fault = lose_update_answers(scaling, lost=2)
    request = event("restore", {"name": "system"}, request_id="morning-1")
    # WHEN the restore runs, then is retried a minute later with EKS answering
    first = scaling.scaler(request, "inv-1")
    retried = retry_a_minute_later(scaling, request)
    # THEN the first run failed saying the change may have been made (EKS made it), and the
    # retry sent no update, found system restored and recorded and announced the restore once
    assert [item["status"] for item in first["results"]] == ["error"]
    assert scaling.desired_size("system") == 2
    assert len(fault.tokens) == 2
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert [change.record["action"] for change in scaling.changes("system")] == [
        "scale_down",
        "restore",
    ]
    assert scaling.notice_titles() == [f"{CLUSTER}/system scaled (restore): desired 1 -> 2"]


def test_an_update_whose_answer_was_lost_before_a_failed_connection_is_recorded_by_the_retry(
    scaling: Scaling,
) -> None:
    # GIVEN a scale-down of system (2 -> 1) whose first update attempt EKS applies, its answer
    # lost, and whose second attempt cannot connect
    fault = lose_update_answers(scaling, lost=1, unreachable=True)
    request = evening_scale_down()
    # WHEN the scaler is invoked
    evening = scaling.scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    assert_failed_saying_the_change_may_have_been_made(evening, scaling)
    # WHEN the platform retries the request a minute later, EKS answering
    fault.unreachable = False
    retried = retry_a_minute_later(scaling, request)
    # THEN the retry sends no update, and the change is recorded and announced once
    assert len(fault.tokens) == 2
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert_scale_down_recorded_and_announced_once(scaling)


@pytest.mark.parametrize("content_type", [None, "text/html"], ids=["untyped", "html-page"])
def test_an_update_whose_answer_cannot_be_read_is_recorded_and_announced_once_by_the_retry(
    scaling: Scaling, content_type: str | None
) -> None:
    # GIVEN the evening scale-down of system (2 -> 1), whose UpdateNodegroupConfig EKS applies
    # but whose answer cannot be read: a body that is not EKS's, sent without a Content-Type or
    # as a gateway's own page (text/html, refused before it is parsed)
    malformed = answer_malformed(
        scalers_member_eks(scaling),
        "eks",
        "UpdateNodegroupConfig",
        b"<html>gateway</html>",
        content_type=content_type,
    )
    request = evening_scale_down()
    # WHEN the scaler is invoked
    evening = scaling.scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    assert_failed_saying_the_change_may_have_been_made(evening, scaling)
    # WHEN the platform retries the request a minute later, EKS answering normally
    answer_updates_normally(scaling, malformed)
    retried = retry_a_minute_later(scaling, request)
    # THEN the retry finds system at its target, and the change is recorded and announced once
    assert malformed.answered == 1
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert_scale_down_recorded_and_announced_once(scaling)


def test_an_update_answered_with_a_timestamp_botocore_cannot_parse_is_recorded_once_by_the_retry(
    scaling: Scaling,
) -> None:
    # GIVEN the evening scale-down of system (2 -> 1), whose UpdateNodegroupConfig EKS applies
    # but answers with its JSON whose update's `createdAt` is no timestamp, on which botocore's
    # parser raises a bare ValueError
    malformed = answer_malformed(
        scalers_member_eks(scaling),
        "eks",
        "UpdateNodegroupConfig",
        json.dumps(
            {"update": {"id": "u-1", "status": "InProgress", "createdAt": "not-a-date"}}
        ).encode(),
        content_type="application/json",
    )
    request = evening_scale_down()
    # WHEN the scaler is invoked
    evening = scaling.scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    assert_failed_saying_the_change_may_have_been_made(evening, scaling)
    assert "Invalid timestamp" in evening["results"][0]["reason"]
    # WHEN the platform retries the request a minute later, EKS answering normally
    answer_updates_normally(scaling, malformed)
    retried = retry_a_minute_later(scaling, request)
    # THEN the retry finds system at its target, and the change is recorded and announced once
    assert malformed.answered == 1
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert_scale_down_recorded_and_announced_once(scaling)


def test_an_update_eks_made_then_answered_with_a_server_error_is_recorded_once_by_the_retry(
    scaling: Scaling,
) -> None:
    # GIVEN the evening scale-down of system (2 -> 1), whose first UpdateNodegroupConfig EKS
    # applies but answers with a server error (HTTP 500, which botocore retries), then refuses the
    # retry with ResourceInUseException (the node group is updating)
    fault = fail_after_applying_then_refuse(
        scalers_member_eks(scaling),
        "eks",
        "UpdateNodegroupConfig",
        "ServerException",
        "ResourceInUseException",
    )
    request = evening_scale_down()
    # WHEN the scaler is invoked
    evening = scaling.scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    assert (fault.applied, fault.refused) == (1, 1)
    assert_failed_saying_the_change_may_have_been_made(evening, scaling)
    # WHEN the platform retries the request a minute later, EKS answering
    answer_updates_normally(scaling, fault)
    retry_a_minute_later(scaling, request)
    # THEN the change is recorded and announced once, with the sizes it replaced saved
    assert_scale_down_recorded_and_announced_once(scaling)
    assert scaling.state_table.get_value(SYSTEM_KEY, SAVED_SIZES_NAME) is not None
