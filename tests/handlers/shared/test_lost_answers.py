"""fleet_shared.lost_answers against moto: which attempts of a call are noted as unanswered
(botocore's retries running), also when the call is ended at its bound, and that two threads
calling through one client note their own."""

from __future__ import annotations

import math
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import AnswerLostError
from fleet_shared.lost_answers import Attempts, watched_attempts
from fleet_shared.node_group_updates import update_desired_size
from fleet_shared.sessions import MEMBER_CALL_CONFIG, MEMBER_CALL_SECONDS, AccountSessions
from tests.handlers.conftest import STATE_TABLE_NAME, create_state_table
from tests.handlers.deadlines import THREAD_REACHED_SECONDS, LambdaTime, draw_longest_botocore_waits
from tests.handlers.faults import (
    fail_after_applying_then_refuse,
    fail_every_attempt,
    hold_first_attempt,
    lose_first_answer,
    throttle_attempts,
)

ACCOUNT_ID = "123456789012"
REGION = "eu-west-1"


def create_node_group(eks: Any, *, desired: int) -> None:
    """Cluster `prod` with the managed node group `web` of `desired` nodes."""
    eks.create_cluster(
        name="prod",
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-0a"]},
    )
    eks.create_nodegroup(
        clusterName="prod",
        nodegroupName="web",
        nodeRole=f"arn:aws:iam::{ACCOUNT_ID}:role/eks-node",
        subnets=["subnet-0a"],
        scalingConfig={"minSize": 1, "desiredSize": desired, "maxSize": 6},
    )


def put(dynamodb_client: Any, pk: str) -> None:
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME, Item={"pk": {"S": pk}, "sk": {"S": "item"}}
    )


@pytest.mark.usefixtures("no_retry_waits")
def test_an_attempt_whose_answer_was_lost_is_noted_though_the_retry_is_answered(
    dynamodb_client: Any,
) -> None:
    # GIVEN a PutItem whose first attempt DynamoDB applies, its answer lost
    create_state_table(dynamodb_client)
    lose_first_answer(dynamodb_client, "dynamodb", "PutItem")
    # WHEN it is made under watch
    with watched_attempts(dynamodb_client) as attempts:
        put(dynamodb_client, "lost")
    # THEN the call succeeded on botocore's retry, and the lost attempt is noted
    assert attempts.answer_lost
    assert "Read timeout" in str(attempts.unanswered[0])


@pytest.mark.usefixtures("no_retry_waits")
def test_an_attempt_answered_with_a_server_error_after_acting_is_noted_as_maybe_applied(
    dynamodb_client: Any,
) -> None:
    # GIVEN a PutItem whose first attempt DynamoDB applies and answers with a server error (HTTP
    # 500, which botocore retries), and whose retry it refuses
    create_state_table(dynamodb_client)
    fault = fail_after_applying_then_refuse(
        dynamodb_client, "dynamodb", "PutItem", "InternalServerError", "ValidationException"
    )
    # WHEN it is made under watch
    with watched_attempts(dynamodb_client) as attempts, pytest.raises(ClientError):
        put(dynamodb_client, "failed-after-acting")
    # THEN the server error's attempt is noted, as one AWS may have applied
    assert (fault.applied, fault.refused) == (1, 1)
    assert attempts.answer_lost
    assert "InternalServerError" in str(attempts.unanswered[0])


@pytest.mark.usefixtures("mocked_aws")
def test_an_update_ended_at_its_bound_after_a_server_failure_is_still_reported_as_maybe_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a node group, and the member EKS client eks_scaler builds (2 attempts of 2 s to
    # connect and 6 s to read: 17 s), botocore's waits drawn at their longest in simulated time;
    # EKS applies the first UpdateNodegroupConfig and answers it as its timeouts run out with a
    # server failure asking for a 5 s wait, and would refuse a retry as late
    draw_longest_botocore_waits(monkeypatch)
    time = LambdaTime(seconds_left=math.inf).spend_botocore_waits(monkeypatch)
    sessions = AccountSessions("eks_scaler", None, ACCOUNT_ID, home_region=REGION)
    eks = sessions.client("eks", ACCOUNT_ID, REGION, MEMBER_CALL_CONFIG)
    create_node_group(eks, desired=2)
    fault = fail_after_applying_then_refuse(
        eks,
        "eks",
        "UpdateNodegroupConfig",
        "ServerException",
        "ResourceInUseException",
        spend=time.spend,
        retry_after_ms=5000,
    )

    # WHEN the scaler's update is made
    with pytest.raises(AnswerLostError) as lost:
        update_desired_size(eks, "prod", "web", 3)

    # THEN the call ended within its bound, without the retry that could have ended past it
    assert time.spent <= MEMBER_CALL_SECONDS
    assert (fault.applied, fault.refused) == (1, 0)
    # AND the update is reported as one EKS may have applied, as it did
    assert "ServerException" in str(lost.value)
    group = eks.describe_nodegroup(clusterName="prod", nodegroupName="web")["nodegroup"]
    assert group["scalingConfig"]["desiredSize"] == 3


@pytest.mark.usefixtures("mocked_aws", "no_retry_waits")
def test_a_lost_update_quotes_the_server_failure_escaped_and_cut() -> None:
    # GIVEN an EKS (or a proxy) answering every UpdateNodegroupConfig with a server failure whose
    # message runs over lines, with a terminal escape and a line separator, thousands long
    eks = boto3.client("eks", region_name=REGION)
    page = "failed\nAll checks passed \x1b[31mred\u2028next " + "x" * 5000
    fail_every_attempt(eks, "eks", "UpdateNodegroupConfig", server_error=page)

    # WHEN the update is made
    with pytest.raises(AnswerLostError) as lost:
        update_desired_size(eks, "prod", "web", 3)

    # THEN it is lost, its error quoted on one line, the control characters escaped, cut
    message = str(lost.value)
    assert message.startswith(
        "UpdateNodegroupConfig of web: An error occurred (InternalServerError) when calling the "
        "UpdateNodegroupConfig operation: failed\\nAll checks passed "
        "\\x1b[31mred\\u2028next xxx"
    )
    assert message.isprintable()
    assert len(message) < 300
    # AND the result naming it keeps the quote as it is, with no second backslash
    assert error_result(lost.value)["error"] == message


@pytest.mark.usefixtures("no_retry_waits")
def test_a_throttled_attempt_is_answered_and_not_noted_as_lost(dynamodb_client: Any) -> None:
    # GIVEN a PutItem whose first attempt is answered with throttling
    create_state_table(dynamodb_client)
    throttling = throttle_attempts(dynamodb_client, "dynamodb", 1)
    # WHEN it is made under watch
    with watched_attempts(dynamodb_client) as attempts:
        put(dynamodb_client, "throttled")
    # THEN botocore sent it twice, and no attempt is noted as lost
    assert throttling.injected == 1
    assert not attempts.answer_lost


@pytest.mark.usefixtures("no_retry_waits")
def test_two_threads_calling_through_one_client_note_only_their_own_attempts(
    dynamodb_client: Any,
) -> None:
    # GIVEN a PutItem of "answered" held in flight in one thread, and a PutItem of "lost" whose
    # first attempt is applied, its answer lost, made meanwhile in another
    create_state_table(dynamodb_client)
    held = hold_first_attempt(dynamodb_client, "dynamodb", "PutItem")
    lose_first_answer(dynamodb_client, "dynamodb", "PutItem", body_with=(b'"lost"',))
    noted: dict[str, Attempts] = {}

    def put_answered() -> None:
        with watched_attempts(dynamodb_client) as attempts:
            put(dynamodb_client, "answered")
        noted["answered"] = attempts

    answered = threading.Thread(target=put_answered)
    answered.start()
    assert held.entered.wait(THREAD_REACHED_SECONDS)
    # WHEN the "lost" call ends while "answered" is still in flight, which then ends too
    with watched_attempts(dynamodb_client) as lost:
        put(dynamodb_client, "lost")
    held.release()
    answered.join(5)
    # THEN each call noted its own attempts: only "lost" met a lost answer
    assert lost.answer_lost
    assert not noted["answered"].answer_lost
