"""UpdateNodegroupConfig that EKS applies but whose answer is lost (a read timeout) or cannot be
read: botocore's retries, the scaler's result and the retry of the request must make, record and
announce the change once, also when another request changes the node group before that retry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.core.models import botocore_stubber
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, event
from scaling_harness import Scaling

from fleet_shared.node_group_locks import SAVED_SIZES_NAME, node_group_key
from fleet_shared.timestamps import iso_z
from handlers.eks_scaler.app import callers_request_id
from handlers.eks_scaler.change_intents import INTENT_NAME
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from tests.handlers.faults import (
    answer_malformed,
    fail_after_applying_then_refuse,
    fail_every_attempt,
)

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
    made_at = scaling.clock.now()
    # WHEN the scaler is invoked
    evening = scaling.scaler(request, "inv-1")
    # THEN system is an error saying the change may have been made, and EKS did make it
    assert_failed_saying_the_change_may_have_been_made(evening, scaling)
    assert "Read timeout" in evening["results"][0]["reason"]
    # WHEN the platform retries the request a minute later, EKS answering
    retried = retry_a_minute_later(scaling, request)
    # THEN the retry finds system at its target and sends no update, and the change is recorded
    # and announced once, dated when it was made (its cooldown counts from then)
    assert len(fault.tokens) == 2
    [found] = retried["results"]
    assert found["status"] == "no_change_needed"
    assert_scale_down_recorded_and_announced_once(scaling)
    assert scaling.changes("system")[0].changed_at == made_at
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


SYSTEM_RAISED_BY_A = f"{CLUSTER}/system scaled (scale_up): desired 2 -> 3"
SYSTEM_RAISED_BY_B = f"{CLUSTER}/system scaled (scale_up): desired 3 -> 4"
EVENTS = Path(__file__).resolve().parents[3] / "events" / "eks_scaler"
OPS_1 = callers_request_id("ops-1", "arn:aws:iam::111111111111:user/platform-oncall")
"""`ops-1` of the example request's caller, as the scaler keeps it."""


def http_scale_up(desired_size: int, request_id: str) -> dict[str, Any]:
    """`POST /scale` raising system to `desired_size`, as API Gateway sends it."""
    request: dict[str, Any] = json.loads((EVENTS / "http_api_scale_up.json").read_text())
    body = event(
        "scale_up", {"name": "system", "desired_size": desired_size}, request_id=request_id
    )
    request["body"] = json.dumps(body)
    return request


def changes_by_request(scaling: Scaling) -> list[tuple[str, int, int]]:
    """system's recorded changes, oldest first: (request id, previous desired, new desired)."""
    return [
        (
            change.record["request_id"],
            change.record["previous"]["desired_size"],
            change.record["new"]["desired_size"],
        )
        for change in scaling.changes("system")
    ]


def scale_up_made_but_unanswered(scaling: Scaling) -> dict[str, Any]:
    """Request A, a function's scale-up of system (2 -> 3), every attempt of whose update EKS
    applies and whose answer is lost: system is an error, its change made but not recorded."""
    lose_update_answers(scaling, lost=2)
    request_a = event("scale_up", {"name": "system", "desired_size": 3}, request_id="a-1")
    [failed] = scaling.scaler(request_a, "inv-a-1")["results"]
    assert failed["status"] == "error"
    assert scaling.desired_size("system") == 3
    assert scaling.history("system") == 0
    return request_a


def test_a_change_whose_answer_was_lost_is_recorded_and_announced_by_the_next_request(
    scaling: Scaling,
) -> None:
    # GIVEN request A's scale-up of system (2 -> 3), made but its every answer lost
    made_at = scaling.clock.now()
    request_a = scale_up_made_but_unanswered(scaling)
    # WHEN, before A's retry, an engineer raises system to 4 over HTTP (a scale-up waits for no
    # cooldown), EKS answering again
    scaling.clock.advance(30)
    answer = scaling.scaler(http_scale_up(4, "ops-1"))
    # THEN the engineer's change is made, and A's change, found made, is recorded before it:
    # each once, each announced once
    assert answer["statusCode"] == 200
    [raised] = json.loads(answer["body"])["results"]
    assert raised["status"] == "scaling_initiated", raised["reason"]
    assert scaling.desired_size("system") == 4
    assert changes_by_request(scaling) == [("a-1", 2, 3), (OPS_1, 3, 4)]
    assert scaling.changes("system")[0].changed_at == made_at
    assert scaling.changes("system")[0].record["recorded_by_request"] == OPS_1
    assert scaling.notice_titles() == [SYSTEM_RAISED_BY_A, SYSTEM_RAISED_BY_B]
    # WHEN A is retried a minute later, and the engineer repeats the request
    retried = retry_a_minute_later(scaling, request_a)
    repeated = scaling.scaler(http_scale_up(4, "ops-1"))
    # THEN A's retry leaves system at 4, its change already made; nothing more is changed,
    # recorded or announced
    [found] = retried["results"]
    assert found["status"] == "no_change_needed", found["reason"]
    assert json.loads(repeated["body"])["repeated_request"] is True
    assert scaling.desired_size("system") == 4
    assert scaling.calls == ["system", "system"]
    assert changes_by_request(scaling) == [("a-1", 2, 3), (OPS_1, 3, 4)]
    assert scaling.notice_titles() == []


def test_an_evening_scale_down_whose_answer_was_lost_is_not_made_again_over_a_later_scale_up(
    scaling: Scaling,
) -> None:
    # GIVEN the schedule's evening scale-down of system (2 -> 1), every attempt of whose update
    # EKS applies and whose answer is lost: the run fails for Lambda's retry
    scaling.clock.advance(9 * 3600)
    lose_update_answers(scaling, lost=2)
    run = iso_z(scaling.clock.now())
    evening = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        scheduled=True,
        request_id=f"schedule-scale_down-{run}",
        run=run,
    )
    with pytest.raises(ScheduledRunUnfinishedError):
        scaling.scaler(evening, "evening-1")
    assert scaling.desired_size("system") == 1
    # WHEN, before the retry, the on-call engineer raises system to 3 over HTTP, EKS answering
    scaling.clock.advance(30)
    assert scaling.scaler(http_scale_up(3, "ops-1"))["statusCode"] == 200
    # THEN the evening's change is recorded before the engineer's, and each is announced once
    assert changes_by_request(scaling) == [(evening["request_id"], 2, 1), (OPS_1, 1, 3)]
    assert scaling.notice_titles() == [
        SYSTEM_SCALED_DOWN,
        f"{CLUSTER}/system scaled (scale_up): desired 1 -> 3",
    ]
    # WHEN Lambda retries the run
    retried_at = scaling.clock.advance(30)
    retried = scaling.scaler(evening, "evening-2")
    # THEN the run is done at once, waiting for no cooldown: it made its change already, and the
    # engineer's 3 stands, with nothing more recorded or announced
    [found] = retried["results"]
    assert found["status"] == "no_change_needed", found["reason"]
    assert scaling.clock.now() == retried_at
    assert scaling.desired_size("system") == 3
    assert scaling.calls == ["system", "system"]
    assert len(changes_by_request(scaling)) == 2
    assert scaling.notice_titles() == []


def test_a_dry_run_after_a_change_whose_answer_was_lost_records_and_announces_nothing(
    scaling: Scaling,
) -> None:
    # GIVEN request A's scale-up of system (2 -> 3), made but its every answer lost
    scale_up_made_but_unanswered(scaling)
    # WHEN an engineer asks over HTTP what raising system to 4 would do (a dry run)
    scaling.clock.advance(30)
    dry = http_scale_up(4, "ops-dry")
    dry["body"] = json.dumps({**json.loads(dry["body"]), "dry_run": True})
    [reported] = json.loads(scaling.scaler(dry)["body"])["results"]
    # THEN nothing is changed, recorded or announced, and A's intent stays
    assert reported["status"] == "dry_run"
    assert scaling.desired_size("system") == 3
    assert scaling.history("system") == 0
    assert scaling.notice_titles() == []
    assert scaling.state_table.get_value(SYSTEM_KEY, INTENT_NAME) is not None
    # WHEN the engineer then raises system to 4 for real
    assert scaling.scaler(http_scale_up(4, "ops-1"))["statusCode"] == 200
    # THEN A's change and the engineer's are each recorded and announced once
    assert changes_by_request(scaling) == [("a-1", 2, 3), (OPS_1, 3, 4)]
    assert scaling.notice_titles() == [SYSTEM_RAISED_BY_A, SYSTEM_RAISED_BY_B]


def test_a_request_whose_record_of_a_found_change_is_refused_changes_nothing_until_its_retry(
    scaling: Scaling,
) -> None:
    # GIVEN request A's scale-up of system (2 -> 3), made but its every answer lost, and the
    # state table then failing every attempt to record a change
    request_a = scale_up_made_but_unanswered(scaling)
    refused = fail_every_attempt(
        scaling.services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems"
    )
    # WHEN an engineer raises system to 4 over HTTP
    scaling.clock.advance(30)
    answer = scaling.scaler(http_scale_up(4, "ops-1"))
    # THEN system is an error and keeps A's 3: the engineer's change would replace A's intent,
    # the one trace of A's change, so it is not made before A's is recorded; nothing announced
    [failed] = json.loads(answer["body"])["results"]
    assert failed["status"] == "error", failed
    assert refused.attempts > 0
    assert scaling.desired_size("system") == 3
    assert scaling.notice_titles() == []
    # WHEN the state table answers again and the engineer repeats the request, then A's retry
    refused.healed = True
    scaling.clock.advance(30)
    assert scaling.scaler(http_scale_up(4, "ops-1"))["statusCode"] == 200
    retried = retry_a_minute_later(scaling, request_a)
    # THEN A's change and the engineer's are each recorded and announced once, and A's retry
    # changes nothing
    assert changes_by_request(scaling) == [("a-1", 2, 3), (OPS_1, 3, 4)]
    assert scaling.notice_titles() == [SYSTEM_RAISED_BY_A, SYSTEM_RAISED_BY_B]
    assert [item["status"] for item in retried["results"]] == ["no_change_needed"]
    assert scaling.desired_size("system") == 4


def time_out_unapplied(request: Any, **_: Any) -> None:
    """An UpdateNodegroupConfig attempt that reaches EKS, which times out without making it."""
    raise ReadTimeoutError(endpoint_url=request.url)


def test_a_change_whose_answer_was_lost_but_not_made_is_not_recorded_by_the_next_request(
    scaling: Scaling,
) -> None:
    # GIVEN request A's scale-up of system (2 -> 3), every attempt of which timed out at EKS
    # without being made
    scalers_member_eks(scaling).meta.events.register_first(
        "before-send.eks.UpdateNodegroupConfig", time_out_unapplied
    )
    request_a = event("scale_up", {"name": "system", "desired_size": 3}, request_id="a-1")
    [failed] = scaling.scaler(request_a, "inv-a-1")["results"]
    assert failed["status"] == "error"
    assert scaling.desired_size("system") == 2
    answer_updates_normally(scaling, time_out_unapplied)
    # WHEN an engineer raises system to 4 over HTTP
    scaling.clock.advance(30)
    assert scaling.scaler(http_scale_up(4, "ops-1"))["statusCode"] == 200
    # THEN only the engineer's change is recorded and announced: A's was not made
    assert changes_by_request(scaling) == [(OPS_1, 2, 4)]
    assert scaling.notice_titles() == [f"{CLUSTER}/system scaled (scale_up): desired 2 -> 4"]
