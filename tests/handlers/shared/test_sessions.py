"""Behaviour of fleet_shared.sessions against moto STS (moto honours assumed-role accounts)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.stub import Stubber

from catalog.functions import FUNCTIONS
from fleet_shared.clock import ManualClock
from fleet_shared.environment import FunctionEnvironment
from fleet_shared.exceptions import ConfigurationError, MemberAccessError
from fleet_shared.observability import observability_for
from fleet_shared.sessions import (
    CLIENT_CONFIG,
    HUB_ATTEMPTS,
    HUB_CALL_SECONDS,
    STATE_TABLE_ATTEMPTS,
    STATE_TABLE_CALL_SECONDS,
    AccountSessions,
    bounded_config,
)
from fleet_shared.state_table import StateTable
from fleet_shared.unanswered_endpoints import MEMBER_CALLS_GIVEN_UP_AFTER, EndpointNotAnsweringError
from fleetctl.local_state_table import create_state_table as create_local_state_table
from tests.handlers.deadlines import THREAD_REACHED_SECONDS, LambdaTime, hang_every_attempt
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    InvocationKilledError,
    answer_malformed,
    hang_first_attempt,
    throttle_attempts,
)

REGION = "ap-south-1"
MOTO_ACCOUNT = "123456789012"
MEMBER = "222222222222"
OTHER_MEMBER = "333333333333"
ONE_ATTEMPT_CONFIG = bounded_config(read_seconds=1, attempts=1)


@pytest.fixture
def real_time_clock() -> ManualClock:
    """Starts at the real time: moto stamps credential expiry from the real clock."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def sessions(mocked_aws: None, real_time_clock: ManualClock) -> AccountSessions:
    return AccountSessions("eks_scaler", "lambda-fleet-member", MOTO_ACCOUNT, clock=real_time_clock)


def test_member_client_acts_in_the_member_account(sessions: AccountSessions) -> None:
    # GIVEN a member account WHEN a client is asked for there
    sts = sessions.client("sts", MEMBER, REGION)
    sqs = sessions.client("sqs", MEMBER, REGION)
    # THEN its calls run as the assumed member role, and resources land in the member account
    identity = sts.get_caller_identity()
    assert identity["Account"] == MEMBER
    assert identity["Arn"].startswith(
        f"arn:aws:sts::{MEMBER}:assumed-role/lambda-fleet-member/lambda-fleet-eks_scaler"
    )
    assert f"/{MEMBER}/" in sqs.create_queue(QueueName="probe")["QueueUrl"]


def test_a_member_roles_credentials_are_not_logged_at_the_debug_log_level(
    sessions: AccountSessions, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a function's observability built, as every handler's is at import, and its log level
    # set to DEBUG (Lambda's application log level sets the root logger's)
    observability_for("eks_scaler")
    caplog.set_level(logging.DEBUG)
    # WHEN a member client is asked for and used, assuming the member role
    sessions.client("sts", MEMBER, REGION).get_caller_identity()
    # THEN botocore's debug records of the AssumeRole call were logged, without its credentials
    credentials = sessions.session(MEMBER, REGION).get_credentials()
    assert "AssumeRole" in caplog.text
    assert credentials.secret_key not in caplog.text
    assert credentials.token not in caplog.text


def test_hub_uses_the_functions_own_credentials(sessions: AccountSessions) -> None:
    # GIVEN the hub account WHEN a client is asked for there
    identity = sessions.client("sts", MOTO_ACCOUNT, REGION).get_caller_identity()
    # THEN no role is assumed: the caller is the function's own identity
    assert identity["Account"] == MOTO_ACCOUNT
    assert ":assumed-role/" not in identity["Arn"]
    assert sessions.hub_client("sts").get_caller_identity()["Arn"] == identity["Arn"]


def test_hub_account_is_found_through_sts_when_not_configured(mocked_aws: None) -> None:
    # GIVEN no HUB_ACCOUNT_ID WHEN the hub account is asked for THEN STS names it
    sessions = AccountSessions("eks_scaler", "lambda-fleet-member")
    assert sessions.hub_account_id == MOTO_ACCOUNT
    assert sessions.is_hub(MOTO_ACCOUNT)
    assert not sessions.is_hub(MEMBER)


def test_clients_and_sessions_are_cached_per_account_and_region(
    sessions: AccountSessions,
) -> None:
    # GIVEN clients asked for twice WHEN compared THEN the same objects come back
    assert sessions.client("eks", MEMBER, REGION) is sessions.client("eks", MEMBER, REGION)
    assert sessions.session(MEMBER, REGION) is sessions.session(MEMBER, REGION)
    # AND other accounts, regions and services get their own
    assert sessions.client("eks", MEMBER, REGION) is not sessions.client("eks", MEMBER, "eu-west-1")
    assert sessions.session(MEMBER, REGION) is not sessions.session(OTHER_MEMBER, REGION)
    assert sessions.client("eks", MEMBER, REGION) is not sessions.client("ec2", MEMBER, REGION)


MEMBER_CREDENTIALS_SECONDS = 3600
"""How long AssumeRole's credentials last by default (moto's too)."""
LONGEST_MEMBER_INVOCATION_SECONDS = max(
    spec.timeout_seconds for spec in FUNCTIONS if spec.member_actions
)
"""The longest timeout of a function that acts in member accounts (security_scanner's 900 s)."""


def test_a_member_session_is_renewed_once_its_credentials_would_not_outlast_an_invocation(
    sessions: AccountSessions, real_time_clock: ManualClock
) -> None:
    # GIVEN a member session whose credentials last an hour, and a warm container whose next
    # invocation (up to the longest timeout of a function acting in members) will use it
    first_session = sessions.session(MEMBER, REGION)
    first_client = sessions.client("eks", MEMBER, REGION)
    renewal_due = MEMBER_CREDENTIALS_SECONDS - LONGEST_MEMBER_INVOCATION_SECONDS
    # WHEN time passes while its credentials still outlast such an invocation THEN it is reused
    real_time_clock.advance(renewal_due - 60)
    assert sessions.session(MEMBER, REGION) is first_session
    # WHEN an invocation asks for it once they would expire before such an invocation ends (a
    # scan of 15 minutes started with 14 minutes of credentials left)
    real_time_clock.advance(120)
    # THEN the role is assumed again and clients are rebuilt, instead of handing out credentials
    # that expire under the invocation's later calls
    assert sessions.session(MEMBER, REGION) is not first_session
    assert sessions.client("eks", MEMBER, REGION) is not first_client


def test_clients_use_the_fleet_retry_and_user_agent_settings(sessions: AccountSessions) -> None:
    # GIVEN a member client WHEN its configuration is read THEN the fleet's settings apply
    config = sessions.client("eks", MEMBER, REGION).meta.config
    # botocore counts max_attempts=5 as five retries after the first call
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert config.user_agent_extra == CLIENT_CONFIG.user_agent_extra == "lambda-fleet"


@pytest.mark.parametrize("message", ["not authorized", MULTI_LINE_PAGE], ids=["short", "a-page"])
def test_failed_assume_role_raises_member_access_error(
    sessions: AccountSessions, message: str
) -> None:
    # GIVEN STS denying the AssumeRole into the member, its message short or a proxy's page
    with Stubber(sessions.hub_client("sts")) as stubber:
        stubber.add_client_error("assume_role", "AccessDenied", message)
        # WHEN a member client is asked for THEN MemberAccessError names account and region
        with pytest.raises(MemberAccessError) as raised:
            sessions.client("eks", MEMBER, REGION)
    assert (raised.value.account_id, raised.value.region) == (MEMBER, REGION)
    assert "AccessDenied" in raised.value.cause
    # AND the answer's text in it is one line, cut, as every caller quotes it
    assert "\n" not in raised.value.cause and len(raised.value.cause) < 400
    # AND the refusal is noted as the member's, for its access episode
    assert sessions.unanswered_endpoints.member_calls.refused(MEMBER) == {"sts:AssumeRole"}


def test_an_assume_role_answered_with_a_proxy_page_raises_member_access_error(
    sessions: AccountSessions,
) -> None:
    # GIVEN the hub's STS answering AssumeRole with a gateway's well-formed page (HTTP 200)
    page = answer_malformed(
        sessions.hub_client("sts"), "sts", "AssumeRole", b"<html><body>Bad gateway</body></html>"
    )
    # WHEN a member client is asked for THEN MemberAccessError names the account, the region
    # and the call its answer was not
    with pytest.raises(MemberAccessError) as raised:
        sessions.client("eks", MEMBER, REGION)
    assert page.answered == 1
    assert (raised.value.account_id, raised.value.region) == (MEMBER, REGION)
    assert "AssumeRole answered without <AssumeRoleResponse>" in raised.value.cause


@dataclass
class UnansweredAssumeRole:
    """Every AssumeRole attempt times out as botocore times out an STS that does not answer,
    until `answering`; the first attempt waits for `let_fail` (when given) after setting
    `entered`."""

    timeout: type[ConnectTimeoutError | ReadTimeoutError]
    attempts: int = 0
    answering: bool = False
    entered: threading.Event | None = None
    let_fail: threading.Event | None = None

    def __call__(self, request: Any, **_: Any) -> None:
        if self.answering:
            return
        self.attempts += 1
        if self.attempts == 1 and self.entered is not None and self.let_fail is not None:
            self.entered.set()
            self.let_fail.wait(10)
        raise self.timeout(endpoint_url=request.url)


def unanswered_assume_role(
    sessions: AccountSessions,
    monkeypatch: pytest.MonkeyPatch,
    timeout: type[ConnectTimeoutError | ReadTimeoutError] = ReadTimeoutError,
    **waits: threading.Event,
) -> UnansweredAssumeRole:
    """Make the hub STS time out every AssumeRole attempt (botocore's wait between attempts
    skipped)."""
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _: None))
    fault = UnansweredAssumeRole(timeout, **waits)
    sessions.hub_client("sts").meta.events.register_first("before-send.sts.AssumeRole", fault)
    return fault


@pytest.mark.parametrize("timeout", [ReadTimeoutError, ConnectTimeoutError])
def test_an_unanswered_assume_role_fails_every_member_at_once_until_the_next_invocation(
    sessions: AccountSessions,
    monkeypatch: pytest.MonkeyPatch,
    timeout: type[ConnectTimeoutError | ReadTimeoutError],
) -> None:
    # GIVEN STS timing out every attempt of the AssumeRole into a member
    fault = unanswered_assume_role(sessions, monkeypatch, timeout)
    with pytest.raises(MemberAccessError) as first:
        sessions.client("eks", MEMBER, REGION)
    assert fault.attempts == HUB_ATTEMPTS
    # WHEN STS answers again, and the same invocation asks for that member once more, another
    # region of it and another member
    fault.answering = True
    asked = [(MEMBER, REGION), (MEMBER, "eu-west-1"), (OTHER_MEMBER, REGION)]
    refusals = []
    for account_id, region in asked:
        with pytest.raises(MemberAccessError) as again:
            sessions.session(account_id, region)
        refusals.append(again.value)
    # THEN each fails at once naming its own account and region, with the timeout as cause, STS
    # not asked: every AssumeRole goes to the hub's one STS endpoint, and the invocation would
    # otherwise wait HUB_CALL_SECONDS for each member
    assert fault.attempts == HUB_ATTEMPTS
    assert [(refused.account_id, refused.region) for refused in refusals] == asked
    assert all(refused.cause == first.value.cause for refused in refusals)
    # AND the hub's own calls of STS are made as before
    assert sessions.hub_client("sts").get_caller_identity()["Account"] == MOTO_ACCOUNT
    # WHEN the next invocation starts THEN STS is asked again for every member
    sessions.unanswered_endpoints.forget()
    for account_id, region in asked:
        assert sessions.client("sts", account_id, region).get_caller_identity()["Account"] == (
            account_id
        )


def test_a_watched_member_client_is_given_up_after_the_callers_number_of_unanswered_calls(
    sessions: AccountSessions,
) -> None:
    # GIVEN a member's EC2 client watched with given_up_after=1 and its EKS client watched with
    # the default, both endpoints timing out every attempt
    sent: list[str] = []

    def time_out(request: Any, **_: Any) -> None:
        sent.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    ec2 = sessions.watched_member_client(
        "ec2", MEMBER, REGION, ONE_ATTEMPT_CONFIG, given_up_after=1
    )
    eks = sessions.watched_member_client("eks", MEMBER, REGION, ONE_ATTEMPT_CONFIG)
    for client in (ec2, eks):
        client.meta.events.register_first("before-send", time_out)
    # WHEN each is called once unanswered, then once more
    with pytest.raises(ReadTimeoutError):
        ec2.describe_volumes()
    with pytest.raises(ReadTimeoutError):
        eks.list_clusters()
    with pytest.raises(EndpointNotAnsweringError) as refused:
        ec2.describe_volumes()
    with pytest.raises(ReadTimeoutError):
        eks.list_clusters()
    # THEN EC2 was given up after its one unanswered call (the second not sent), and EKS was
    # asked again, given up only after MEMBER_CALLS_GIVEN_UP_AFTER
    assert MEMBER_CALLS_GIVEN_UP_AFTER > 1
    assert len(sent) == 3
    assert f"ec2 in account {MEMBER} region {REGION} did not answer earlier" in str(refused.value)


@pytest.mark.parametrize(
    ("service", "call"),
    [
        (
            "sns",
            lambda sns: sns.publish(TopicArn=f"arn:aws:sns:{REGION}:{MOTO_ACCOUNT}:a", Message="m"),
        ),
        ("s3", lambda s3: s3.put_object(Bucket="data", Key="report.json", Body=b"{}")),
    ],
)
def test_the_hubs_sns_and_s3_are_given_up_after_one_unanswered_call_until_the_next_invocation(
    sessions: AccountSessions, service: str, call: Callable[[Any], Any]
) -> None:
    # GIVEN the hub's client of the service, its endpoint timing out every attempt
    sent: list[str] = []

    def time_out(request: Any, **_: Any) -> None:
        sent.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    client = sessions.hub_client(service, REGION)
    client.meta.events.register_first("before-send", time_out)
    # WHEN it is called once unanswered, then again
    with pytest.raises(ReadTimeoutError):
        call(client)
    with pytest.raises(EndpointNotAnsweringError) as refused:
        call(client)
    # THEN the second call was refused without being sent, naming the endpoint
    assert len(sent) == HUB_ATTEMPTS
    assert f"{service} in account {MOTO_ACCOUNT} region {REGION} did not answer" in str(
        refused.value
    )
    # AND the next invocation asks the endpoint again
    sessions.unanswered_endpoints.forget()
    with pytest.raises(ReadTimeoutError):
        call(client)
    assert len(sent) == 2 * HUB_ATTEMPTS


def test_a_refused_assume_role_is_asked_again(sessions: AccountSessions) -> None:
    # GIVEN STS refusing the AssumeRole into a member twice (an answer, which comes at once)
    with Stubber(sessions.hub_client("sts")) as stubber:
        stubber.add_client_error("assume_role", "AccessDenied", "not authorized")
        stubber.add_client_error("assume_role", "AccessDenied", "not authorized")
        # WHEN the member is asked for twice in one invocation
        for _ in range(2):
            with pytest.raises(MemberAccessError) as raised:
                sessions.session(MEMBER, REGION)
            assert "AccessDenied" in raised.value.cause
        # THEN each asked STS: only a silent STS is remembered
        stubber.assert_no_pending_responses()


def test_threads_waiting_on_a_member_whose_sts_did_not_answer_fail_without_asking_again(
    sessions: AccountSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN STS holding the first AssumeRole into a member, then timing out every attempt
    entered, let_fail = threading.Event(), threading.Event()
    fault = unanswered_assume_role(sessions, monkeypatch, entered=entered, let_fail=let_fail)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(sessions.session, MEMBER, REGION)
        assert entered.wait(THREAD_REACHED_SECONDS)
        # WHEN a second thread (another node group of the run) asks for the same member
        # meanwhile, and the first AssumeRole then times out
        second = pool.submit(sessions.session, MEMBER, REGION)
        let_fail.set()
        # THEN both fail naming the member, on the one AssumeRole's attempts
        assert isinstance(first.exception(timeout=10), MemberAccessError)
        assert isinstance(second.exception(timeout=10), MemberAccessError)
    assert fault.attempts == HUB_ATTEMPTS


def test_a_hung_hub_sts_sns_or_s3_takes_a_small_part_of_every_functions_timeout(
    sessions: AccountSessions,
) -> None:
    # GIVEN the STS client that assumes member roles, the alerts' SNS and the data bucket's S3
    for service in ("sts", "sns", "s3"):
        config = sessions.hub_client(service).meta.config
        # WHEN its bounds are read THEN every attempt of a hung call is given up in seconds
        assert (config.connect_timeout, config.read_timeout) == (2, 5)
        assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    # AND all of them fit at least 8 times in the timeout of every function acting in members,
    # and 4 times in every function's (each may publish alerts)
    member_acting = [spec for spec in FUNCTIONS if spec.member_actions]
    assert member_acting
    assert all(spec.timeout_seconds >= 8 * HUB_CALL_SECONDS for spec in member_acting)
    assert all(spec.timeout_seconds >= 4 * HUB_CALL_SECONDS for spec in FUNCTIONS)


def test_the_state_tables_client_gives_up_a_hung_call_in_a_small_part_of_every_timeout(
    sessions: AccountSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the hub's DynamoDB client (the state table's), and a DynamoDB that never answers
    dynamodb = sessions.hub_client("dynamodb")
    time = LambdaTime(seconds_left=900).spend_botocore_waits(monkeypatch)
    fault = hang_every_attempt(dynamodb, "dynamodb", "GetItem", time)
    # WHEN the state table reads an item
    with pytest.raises(ReadTimeoutError):
        StateTable(
            "lambda-fleet-state", dynamodb, unanswered=sessions.unanswered_endpoints
        ).get_value("dev-apps", "sizes")
    # THEN the call was given up after its attempts, within STATE_TABLE_CALL_SECONDS, which fits
    # four times in every function's timeout (every function uses the table)
    assert fault.attempts == STATE_TABLE_ATTEMPTS
    assert time.spent <= STATE_TABLE_CALL_SECONDS
    assert all(spec.timeout_seconds >= 4 * STATE_TABLE_CALL_SECONDS for spec in FUNCTIONS)


def test_the_state_tables_client_outlasts_more_throttling_than_the_hubs_other_calls(
    sessions: AccountSessions, no_retry_waits: None
) -> None:
    # GIVEN the state table, and DynamoDB throttling the first three attempts of a read (two
    # more than the hub's STS, SNS and S3 calls may take)
    dynamodb = sessions.hub_client("dynamodb")
    create_local_state_table(dynamodb, "lambda-fleet-state")
    throttling = throttle_attempts(dynamodb, "dynamodb", 1, 2, 3)
    # WHEN the state table reads an item THEN the fourth attempt answers
    assert (
        StateTable(
            "lambda-fleet-state", dynamodb, unanswered=sessions.unanswered_endpoints
        ).get_value("dev-apps", "sizes")
        is None
    )
    assert throttling.injected == 3 > HUB_ATTEMPTS


def test_an_assume_role_that_hangs_holds_up_no_other_accounts_session_nor_the_hub(
    sessions: AccountSessions,
) -> None:
    # GIVEN STS holding the AssumeRole into one member account
    hang = hang_first_attempt(sessions.hub_client("sts"), "sts", "AssumeRole")
    with ThreadPoolExecutor(max_workers=2) as pool:
        hung = pool.submit(sessions.session, OTHER_MEMBER, REGION)
        try:
            assert hang.entered.wait(THREAD_REACHED_SECONDS)
            # WHEN another thread (another cluster of the run) asks for a client of another
            # member and for a hub client while it hangs
            other = pool.submit(
                lambda: (sessions.client("eks", MEMBER, REGION), sessions.hub_client("dynamodb"))
            )
            # THEN both come at once, without waiting for the hung call
            member_eks, hub_dynamodb = other.result(timeout=5)
        finally:
            hang.release()
        assert isinstance(hung.exception(timeout=10), InvocationKilledError)
    assert member_eks.meta.region_name == hub_dynamodb.meta.region_name == REGION


def test_threads_asking_for_one_member_at_once_assume_its_role_once(
    sessions: AccountSessions,
) -> None:
    # GIVEN STS answering the member's first AssumeRole only once the test lets it
    sts = sessions.hub_client("sts")
    entered, answer = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow_first_answer(**_: Any) -> None:
        calls.append("AssumeRole")
        if len(calls) == 1:
            entered.set()
            answer.wait(10)

    sts.meta.events.register_first("before-send.sts.AssumeRole", slow_first_answer)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(sessions.session, MEMBER, REGION)
        assert entered.wait(THREAD_REACHED_SECONDS)
        # WHEN a second thread asks for the same member meanwhile, and STS then answers
        second = pool.submit(sessions.session, MEMBER, REGION)
        answer.set()
        # THEN both got the one session of the one AssumeRole
        assert first.result(timeout=10) is second.result(timeout=10)
    assert calls == ["AssumeRole"]


def test_member_access_without_member_role_name_is_a_configuration_error(
    mocked_aws: None,
) -> None:
    # GIVEN an environment without MEMBER_ROLE_NAME
    environment = FunctionEnvironment(hub_account_id=MOTO_ACCOUNT)
    sessions = AccountSessions.from_environment(environment, "health_monitor")
    # WHEN a member is asked for THEN the missing variable is named; the hub still works
    with pytest.raises(ConfigurationError) as raised:
        sessions.session(MEMBER, REGION)
    assert raised.value.variable == "MEMBER_ROLE_NAME"
    assert sessions.client("sts", MOTO_ACCOUNT, REGION).get_caller_identity()["Account"] == (
        MOTO_ACCOUNT
    )


def test_endpoint_override_comes_from_aws_endpoint_url(
    sessions: AccountSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN boto3's standard AWS_ENDPOINT_URL (a moto server or LocalStack)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    # WHEN a new client is built THEN it points there
    assert sessions.client("s3", MOTO_ACCOUNT, "eu-west-1").meta.endpoint_url == (
        "http://localhost:4566"
    )


def test_sessions_of_all_accounts_share_one_model_loader(sessions: AccountSessions) -> None:
    # GIVEN sessions of the hub and of a member account
    hub = sessions.session(sessions.hub_account_id, "ap-south-1")
    member = sessions.session(MEMBER, "ap-south-1")
    # THEN both read service models through the same loader, so each model is parsed once
    loader = hub._session.get_component("data_loader")
    assert member._session.get_component("data_loader") is loader


def test_a_bounded_config_counts_every_call_in_its_attempts_and_keeps_the_fleets_settings():
    # GIVEN a bound of 2 s to connect, 6 s to read and 2 attempts, and one of 9 s to read alone
    both = bounded_config(connect_seconds=2, read_seconds=6, attempts=2)
    read_only = bounded_config(read_seconds=9)

    # WHEN a client is built with each
    client = boto3.client("sqs", region_name="eu-west-1", config=both)

    # THEN the client makes at most two calls in all (botocore's max_attempts would count
    # retries), with both timeouts bounded
    assert both.retries == {"mode": "standard", "total_max_attempts": 2}
    assert client.meta.config.retries["total_max_attempts"] == 2
    assert (both.connect_timeout, both.read_timeout) == (2, 6)
    # AND a bound on reading alone keeps the fleet's retries and botocore's connect timeout
    assert read_only.retries == CLIENT_CONFIG.retries
    assert (read_only.connect_timeout, read_only.read_timeout) == (60, 9)
    # AND both keep the fleet's user agent
    assert both.user_agent_extra == read_only.user_agent_extra == CLIENT_CONFIG.user_agent_extra


ASSUME_ROLE_ANSWER = (
    '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
    "{credentials}</AssumeRoleResult></AssumeRoleResponse>"
)
"""STS's AssumeRole answer, root and result, holding `credentials`."""


@pytest.mark.parametrize(
    ("credentials", "cause"),
    [
        pytest.param("", "AssumeRole answered without Credentials", id="without-credentials"),
        pytest.param(
            "<Credentials><SecretAccessKey>SECRET-KEY</SecretAccessKey><SessionToken>"
            "SESSION-TOKEN</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
            "</Credentials>",
            "AssumeRole answered without Credentials.AccessKeyId",
            id="without-an-access-key",
        ),
        pytest.param(
            "<Credentials><AccessKeyId>a</AccessKeyId><SecretAccessKey>SECRET-KEY"
            "</SecretAccessKey><SessionToken>SESSION-TOKEN</SessionToken><Expiration>soon"
            "</Expiration></Credentials>",
            "AssumeRole answered a value botocore cannot read: ValueError",
            id="an-expiration-that-is-no-timestamp",
        ),
    ],
)
def test_an_assume_role_answered_without_usable_credentials_fails_that_member_alone(
    sessions: AccountSessions, credentials: str, cause: str
) -> None:
    # GIVEN the hub's STS answering AssumeRole into the member with its own answer (HTTP 200)
    # holding no credentials, credentials without a key, or an expiration that is no timestamp
    answer = answer_malformed(
        sessions.hub_client("sts"),
        "sts",
        "AssumeRole",
        ASSUME_ROLE_ANSWER.format(credentials=credentials).encode(),
        content_type="text/xml",
    )
    # WHEN a member client is asked for THEN MemberAccessError names the account, the region
    # and what the answer lacked, as for a refused AssumeRole, which fails that member alone;
    # it shows none of the secrets the answer held
    with pytest.raises(MemberAccessError) as raised:
        sessions.client("eks", MEMBER, REGION)
    assert answer.answered == 1
    assert (raised.value.account_id, raised.value.region) == (MEMBER, REGION)
    assert cause in raised.value.cause
    assert "SECRET-KEY" not in str(raised.value)
    assert "SESSION-TOKEN" not in str(raised.value)
