"""Member endpoints given up for the rest of an invocation once they left calls unanswered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from fleet_shared.s3_events import may_pass_on_retry
from fleet_shared.unanswered_endpoints import (
    MEMBER_CALLS_GIVEN_UP_AFTER,
    EndpointNotAnsweringError,
    UnansweredEndpoints,
)

MEMBER = "222222222222"
REGION = "ap-south-1"
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
