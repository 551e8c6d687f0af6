"""Member endpoints given up for the rest of an invocation once they left calls unanswered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from fleet_shared.later_answers import may_pass_on_retry
from fleet_shared.sessions import (
    MEMBER_CALL_CONFIG,
    MEMBER_CALL_SECONDS,
    STATE_TABLE_CALL_CONFIG,
    STATE_TABLE_CALL_SECONDS,
    bounded_config,
)
from fleet_shared.unanswered_endpoints import (
    HUB_CALLS_GIVEN_UP_AFTER,
    MEMBER_CALLS_GIVEN_UP_AFTER,
    EndpointNotAnsweringError,
    UnansweredEndpoints,
)
from fleet_shared.validation_errors import ECHO_LIMIT
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    ThrottledAtTheLastMoment,
    refuse_every_attempt,
    throttle_just_before_timeout,
)
from tests.handlers.shared.test_hung_call_bounds import (
    bounded_client_with_longest_waits,
)

MEMBER = "222222222222"
REGION = "ap-south-1"
STATE_TABLE = "state table lambda-fleet-state"
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


@dataclass
class SentAttempts:
    """Counts the attempts that reached the send step, failing each with `error` while set."""

    error: type[Exception] | None = ReadTimeoutError
    sent: int = 0

    def __call__(self, request: Any, **_: Any) -> None:
        self.sent += 1
        if self.error is not None:
            raise self.error(endpoint_url=request.url)


def watched_client(
    endpoints: UnansweredEndpoints, service: str, region: str = REGION
) -> tuple[Any, SentAttempts]:
    client = boto3.client(service, region_name=region, config=ONE_ATTEMPT)
    attempts = SentAttempts()
    client.meta.events.register_first(f"before-send.{service}", attempts)
    return endpoints.watch(
        client, MEMBER, region, given_up_after=MEMBER_CALLS_GIVEN_UP_AFTER
    ), attempts


@pytest.mark.usefixtures("mocked_aws")
def test_an_endpoint_is_given_up_after_unanswered_calls_until_forgotten() -> None:
    # GIVEN watched EKS clients of one member in two regions and its Auto Scaling client, the
    # EKS endpoint of the first region answering no call
    endpoints = UnansweredEndpoints()
    eks, eks_attempts = watched_client(endpoints, "eks")
    other_region, other_region_attempts = watched_client(endpoints, "eks", "eu-west-1")
    autoscaling, autoscaling_attempts = watched_client(endpoints, "autoscaling")
    other_region_attempts.error = autoscaling_attempts.error = None
    # WHEN it left MEMBER_CALLS_GIVEN_UP_AFTER calls unanswered and is called once more
    for _ in range(MEMBER_CALLS_GIVEN_UP_AFTER):
        with pytest.raises(ReadTimeoutError):
            eks.list_clusters()
    with pytest.raises(EndpointNotAnsweringError) as refused:
        eks.list_clusters()
    # THEN that call was refused without being sent, naming the endpoint and the first cause,
    # while the same service in another region and another service of the member are still asked
    assert eks_attempts.sent == MEMBER_CALLS_GIVEN_UP_AFTER
    assert f"eks in account {MEMBER} region {REGION} did not answer 2 calls" in str(refused.value)
    assert "Read timeout" in str(refused.value)
    other_region.list_clusters()
    autoscaling.describe_auto_scaling_groups()
    assert (other_region_attempts.sent, autoscaling_attempts.sent) == (1, 1)
    # WHEN the next invocation starts (forget) with the endpoint answering again
    endpoints.forget()
    eks_attempts.error = None
    # THEN it is asked again
    eks.list_clusters()
    assert eks_attempts.sent == MEMBER_CALLS_GIVEN_UP_AFTER + 1


@pytest.mark.usefixtures("mocked_aws")
def test_answers_and_refused_connections_do_not_give_an_endpoint_up() -> None:
    # GIVEN a watched EKS client whose endpoint refuses connections (an answer of sorts: it
    # fails at once) and then answers with errors
    endpoints = UnansweredEndpoints()
    eks, attempts = watched_client(endpoints, "eks")
    attempts.error = EndpointConnectionError
    # WHEN it fails more than MEMBER_CALLS_GIVEN_UP_AFTER calls so, then with error answers
    for _ in range(MEMBER_CALLS_GIVEN_UP_AFTER + 1):
        with pytest.raises(EndpointConnectionError):
            eks.list_clusters()
    attempts.error = None
    for _ in range(MEMBER_CALLS_GIVEN_UP_AFTER + 1):
        with pytest.raises(ClientError):
            eks.describe_cluster(name="missing")
    # THEN every call was sent: only timeouts give an endpoint up
    assert attempts.sent == 2 * (MEMBER_CALLS_GIVEN_UP_AFTER + 1)


@pytest.mark.usefixtures("mocked_aws")
def test_a_members_calls_are_noted_as_answered_or_refused_only_on_its_own_until_forgotten() -> None:
    # GIVEN a member's watched DynamoDB client whose ListTables IAM refuses, and a hub client
    # watched under the same account (a hub that is a member too)
    endpoints = UnansweredEndpoints()
    dynamodb = endpoints.watch(
        boto3.client("dynamodb", region_name=REGION, config=ONE_ATTEMPT),
        MEMBER,
        REGION,
        given_up_after=MEMBER_CALLS_GIVEN_UP_AFTER,
        member=True,
    )
    refuse_every_attempt(dynamodb, "dynamodb", "ListTables")
    sns = endpoints.watch(
        boto3.client("sns", region_name=REGION, config=ONE_ATTEMPT),
        MEMBER,
        REGION,
        given_up_after=HUB_CALLS_GIVEN_UP_AFTER,
    )
    # WHEN the refused call is made, a call the member answers with another error, and the hub
    # client answers
    with pytest.raises(ClientError):
        dynamodb.list_tables()
    with pytest.raises(ClientError):
        dynamodb.describe_table(TableName="missing")
    sns.list_topics()
    # THEN the refusal alone is noted, by its call's name; nothing is noted as answered:
    # neither error nor the hub's answer is evidence of the member's grants
    calls = endpoints.member_calls
    assert calls.refused(MEMBER) == {"dynamodb:ListTables"}
    assert calls.answered(MEMBER) == frozenset()
    # WHEN a call of the member's client is answered with success
    dynamodb.list_backups()
    # THEN that call of that member, and of no other, is noted, until the next invocation starts
    assert calls.answered(MEMBER) == {"dynamodb:ListBackups"}
    assert calls.answered("333333333333") == frozenset()
    endpoints.forget()
    assert (calls.answered(MEMBER), calls.refused(MEMBER)) == (frozenset(), frozenset())


@pytest.mark.usefixtures("mocked_aws")
def test_a_refused_call_is_handled_as_the_timeout_it_stands_for_and_not_as_a_lost_answer() -> None:
    # GIVEN a watched EKS client whose endpoint left its calls unanswered until given up
    endpoints = UnansweredEndpoints()
    eks, _ = watched_client(endpoints, "eks")
    for _ in range(MEMBER_CALLS_GIVEN_UP_AFTER):
        with pytest.raises(ReadTimeoutError):
            eks.list_clusters()
    # WHEN it is called once more
    with pytest.raises(EndpointNotAnsweringError) as refused:
        eks.list_clusters()
    # THEN the refusal is an HTTP client failure a later retry may pass, as the timeout is, but
    # not a read timeout: nothing was sent, so nothing can have taken effect
    assert isinstance(refused.value, HTTPClientError)
    assert may_pass_on_retry(refused.value)
    assert not isinstance(refused.value, ReadTimeoutError)


def test_a_member_endpoint_whose_calls_each_run_to_their_bound_is_given_up_as_a_hung_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a watched member EKS client of the member call config (2 attempts of 8 s, 17 s a
    # call), whose endpoint answers each attempt with throttling as its timeouts run out, so
    # that a call spends its whole bound, botocore's waits drawn at their longest, the message
    # a proxy's page of many long lines
    endpoints = UnansweredEndpoints()
    client, time = bounded_client_with_longest_waits("eks", MEMBER_CALL_CONFIG, monkeypatch)
    eks = endpoints.watch(client, MEMBER, REGION, given_up_after=MEMBER_CALLS_GIVEN_UP_AFTER)
    throttling = throttle_just_before_timeout(
        eks, "eks", "ListClusters", time.spend, message=MULTI_LINE_PAGE
    )
    # WHEN it is called MEMBER_CALLS_GIVEN_UP_AFTER times, and once more
    for _ in range(MEMBER_CALLS_GIVEN_UP_AFTER):
        with pytest.raises(ClientError) as throttled:
            eks.list_clusters()
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(EndpointNotAnsweringError) as refused:
        eks.list_clusters()
    # THEN each of those calls ran to its bound with its own throttling error, and they gave
    # the endpoint up as unanswered calls do: the last call was refused without being sent,
    # naming the endpoint and the first call's throttling, its page one line cut short
    assert time.spent == MEMBER_CALLS_GIVEN_UP_AFTER * MEMBER_CALL_SECONDS
    assert throttling.attempts == MEMBER_CALLS_GIVEN_UP_AFTER * 2
    assert f"eks in account {MEMBER} region {REGION} did not answer 2 calls" in str(refused.value)
    assert "ThrottlingException" in refused.value.cause
    assert "<html>\\n<title>Console" in refused.value.cause
    assert "\n" not in str(refused.value)
    assert len(refused.value.cause) < 2 * ECHO_LIMIT
    assert str(refused.value).endswith("; not asked again")


def test_the_state_table_is_given_up_after_one_call_ended_at_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a state table client of its bounded config (4 attempts of 3 s, 13 s a call) asked
    # through the record, whose DynamoDB answers each attempt with throttling as its timeouts
    # run out, botocore's waits drawn at their longest
    endpoints = UnansweredEndpoints()
    dynamodb, time = bounded_client_with_longest_waits(
        "dynamodb", STATE_TABLE_CALL_CONFIG, monkeypatch
    )
    throttling = throttle_just_before_timeout(dynamodb, "dynamodb", "GetItem", time.spend)

    def get_item() -> Any:
        return endpoints.ask(
            STATE_TABLE,
            HUB_CALLS_GIVEN_UP_AFTER,
            partial(dynamodb.get_item, TableName="lambda-fleet-state", Key={"pk": {"S": "x"}}),
        )

    # WHEN one item is read, and then another
    with pytest.raises(ClientError) as ended:
        get_item()
    with pytest.raises(EndpointNotAnsweringError) as refused:
        get_item()
    # THEN the first read was ended at its bound (12 s, a fourth attempt could end past 13 s)
    # with its throttling error, and the table was given up after it: the second read was
    # refused at once, without being sent
    assert time.spent == 12 < STATE_TABLE_CALL_SECONDS
    assert throttling.attempts == 3
    assert "not retried after 12.0 s" in str(ended.value)
    assert str(refused.value).startswith(f"{STATE_TABLE} did not answer earlier")


@pytest.mark.parametrize(
    ("config", "attempts"),
    [
        pytest.param(STATE_TABLE_CALL_CONFIG, 4, id="state-table-config"),
        pytest.param(bounded_config(connect_seconds=2, read_seconds=5, attempts=1), 1, id="one"),
    ],
)
@pytest.mark.usefixtures("mocked_aws")
def test_throttling_answered_within_a_second_does_not_give_an_endpoint_up(
    monkeypatch: pytest.MonkeyPatch, config: Config, attempts: int
) -> None:
    # GIVEN a watched DynamoDB client of the state table's config (4 attempts of 3 s, 13 s a
    # call), or of one attempt of 7 s (its bound), given up after one unanswered call, whose
    # endpoint answers each attempt of its first two calls with throttling after 1 s, botocore's
    # waits drawn at their longest (1, 2 and 4 s: 11 s a call of 4 attempts, more than one
    # attempt short of the bound; 1 s a call of one attempt)
    endpoints = UnansweredEndpoints()
    client, time = bounded_client_with_longest_waits("dynamodb", config, monkeypatch)
    dynamodb = endpoints.watch(client, MEMBER, REGION, given_up_after=HUB_CALLS_GIVEN_UP_AFTER)
    throttling = ThrottledAtTheLastMoment(time.spend, attempt_seconds=1)
    dynamodb.meta.events.register_first("before-send.dynamodb.ListTables", throttling)
    # WHEN two calls are throttled on every attempt, and a third one is made
    for _ in range(2):
        with pytest.raises(ClientError):
            dynamodb.list_tables()
    dynamodb.meta.events.unregister("before-send.dynamodb.ListTables", throttling)
    tables = dynamodb.list_tables()
    # THEN the endpoint was asked again each time: a call that ended sooner than its attempts
    # timing out would counts as answered
    assert throttling.attempts == 2 * attempts
    assert tables["TableNames"] == []


@dataclass
class AnsweredWithABadChecksum:
    """Answers every attempt with a DynamoDB success whose `x-amz-crc32` does not match its body
    (which botocore retries), as the attempt's timeouts run out (`spend`)."""

    spend: Callable[[float], None]
    attempt_seconds: float
    attempts: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        self.spend(self.attempt_seconds)
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amz-crc32": "1"}
        return AWSResponse(request.url, 200, headers, _Body(b'{"TableNames": []}'))


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_a_success_answered_at_the_last_moment_of_every_attempt_does_not_give_an_endpoint_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a watched DynamoDB client of the state table's config (4 attempts of 3 s), given up
    # after one unanswered call, whose endpoint answers each attempt of a call as its timeouts
    # run out with a success whose checksum fails (botocore retries it, and returns the last)
    endpoints = UnansweredEndpoints()
    client, time = bounded_client_with_longest_waits(
        "dynamodb", STATE_TABLE_CALL_CONFIG, monkeypatch
    )
    dynamodb = endpoints.watch(client, MEMBER, REGION, given_up_after=HUB_CALLS_GIVEN_UP_AFTER)
    config = dynamodb.meta.config
    answering = AnsweredWithABadChecksum(time.spend, config.connect_timeout + config.read_timeout)
    dynamodb.meta.events.register_first("before-send.dynamodb.ListTables", answering)
    # WHEN a call takes its every attempt, and another one is made
    first = dynamodb.list_tables()
    second = dynamodb.list_tables()
    # THEN the first call was answered, so the endpoint was asked again: only a call that ends
    # with an error counts as left unanswered
    assert (first["TableNames"], second["TableNames"]) == ([], [])
    assert answering.attempts == 2 * 4
