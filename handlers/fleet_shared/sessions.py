"""boto3 sessions and clients per (account, region), for the hub and the member accounts.

The hub account is where the function runs: it uses the function's own credentials. For a member
account the function assumes `arn:aws:iam::<account>:role/<MEMBER_ROLE_NAME>`; the assumed
credentials are cached per (account, region) until 15 minutes (`REFRESH_MARGIN`) before they
expire, so a batch over many node groups assumes each role once and no invocation outlives the
credentials it was handed. Clients are cached per (service, account, region)
and rebuilt when their session is refreshed.

A failing AssumeRole raises `MemberAccessError`, so a handler can record that one account failed
and go on with the others; an STS that does not answer fails it within `HUB_CALL_SECONDS`, and is
not asked again in the invocation, for any member: every AssumeRole goes to the hub's one STS
endpoint in the home region, and a run asks for member sessions once per node group or check,
over many members. A refused AssumeRole (an answer), or one answered with a page that is not
STS's (a proxy's), fails that member only. A member client of
`watched_member_client` is likewise given up for the rest of the invocation once its endpoint did
not answer two of its calls (or the caller's `given_up_after`), and the hub's SNS and S3
(`WATCHED_HUB_SERVICES`) once one of their calls got no answer. All are kept in the container's
one record of endpoints that did not answer (`unanswered_endpoints`: a call whose every attempt
timed out, or that ran to its bound on errors botocore retries, each costing the call's bound),
forgotten as each invocation starts, with the calls of each member answered or refused by IAM
(`fleet_shared.member_calls`: a member's AssumeRole STS refused is noted here).
Endpoint overrides come only from boto3's own `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`)
variables, which makes a moto server or LocalStack work unchanged.

Safe to share between threads: cache updates happen under a lock, a member's AssumeRole under
that member and region's own lock, and boto3 clients are thread-safe once built.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from fleet_shared.aws_answers import UnreadableAnswerError, call_error_text
from fleet_shared.call_bounds import hold_to_bound, longest_retry_wait_seconds
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import FunctionEnvironment
from fleet_shared.exceptions import ConfigurationError, MemberAccessError
from fleet_shared.foreign_answers import refuse_foreign_answer
from fleet_shared.malformed_answers import MalformedAnswerRefusingParserFactory
from fleet_shared.member_calls import ASSUME_ROLE
from fleet_shared.unanswered_endpoints import (
    HUB_CALLS_GIVEN_UP_AFTER,
    MEMBER_CALLS_GIVEN_UP_AFTER,
    EndpointNotAnsweringError,
    UnansweredEndpoints,
)

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    user_agent_extra="lambda-fleet",
)
"""The botocore configuration of every client the fleet builds."""


def bounded_config(
    *, read_seconds: float, connect_seconds: float | None = None, attempts: int | None = None
) -> Config:
    """CLIENT_CONFIG with a bounded wait for each answer (and for the connection, if given) and,
    if given, at most `attempts` calls in all: botocore's `total_max_attempts`, since its
    `max_attempts` counts retries (1 would be two calls)."""
    bounds: dict[str, Any] = {"read_timeout": read_seconds}
    if connect_seconds is not None:
        bounds["connect_timeout"] = connect_seconds
    if attempts is not None:
        bounds["retries"] = {"mode": "standard", "total_max_attempts": attempts}
    return CLIENT_CONFIG.merge(Config(**bounds))


def longest_hung_call_seconds(config: Config) -> int:
    """The longest one call of a client built with `config` takes, in whole seconds rounded up:
    every attempt spends its connect and read timeouts, and botocore waits between the attempts.

    botocore's standard mode (`botocore/retries/standard.py`, `ExponentialBackoff.delay_amount`,
    slept by `botocore.endpoint`) waits `random() * min(scale * 2 ** (n - 1), 20)` seconds after
    attempt n: full jitter, capped at 20 s. `scale` is 1 s after a throttling answer (a throttling
    error code, S3's 503 SlowDown among them, or a 429 the model does not name) and 50 ms after
    anything else: a connect or read timeout, a connection error, any other 5xx (25 ms for
    DynamoDB). An answer with an `x-amz-retry-after` header may wait up to 5 s more. An endpoint
    that never answers gives neither an error code nor a header, so its waits are the 50 ms ones
    (50, 100, 200 ms, ...: under 2 s over 6 attempts), which this bound counts. A throttling
    answer's longer waits would take a call past it (an endpoint that throttles each attempt just
    before its read timeout), so a client built by `AccountSessions` or `bound_calls` retries
    only while the retry cannot end past this bound (`fleet_shared.call_bounds`): the bound holds
    whatever the endpoint answers. A client whose retry quota is spent stops retrying, which only
    shortens the call. Two cases still outlast one attempt's timeouts, and so can end the call
    past the bound by the overrun of its last attempt: the connect timeout is counted once per
    attempt, though urllib3 spends it on each address the endpoint's name resolves to in turn (a
    name of several addresses that all drop the connection can take that many times as long),
    and the read timeout bounds each wait for a byte, not the answer (an endpoint that trickles
    its answer holds an attempt as long as it trickles).

    Raises ValueError for another retry mode (legacy and adaptive wait differently) or a config
    that leaves the number of attempts to the environment.
    """
    attempts = _attempts(config)
    waits = sum(
        longest_retry_wait_seconds(attempt, throttled=False, retry_after=None)
        for attempt in range(1, attempts)
    )
    return math.ceil(attempts * (config.connect_timeout + config.read_timeout) + waits)


def bound_calls(client: Any, config: Config) -> Any:
    """`client`, built with `config`, whose calls botocore retries only while the retry cannot
    end past `longest_hung_call_seconds(config)`, whatever its endpoint answers
    (`fleet_shared.call_bounds`).

    Raises ValueError for a config `longest_hung_call_seconds` refuses.
    """
    return hold_to_bound(
        client,
        attempts=_attempts(config),
        attempt_seconds=config.connect_timeout + config.read_timeout,
        bound_seconds=longest_hung_call_seconds(config),
    )


def _attempts(config: Config) -> int:
    """The attempts a client of `config` makes in all, as botocore's standard mode counts them.

    Raises ValueError for another retry mode or attempts left to the environment.
    """
    retries = config.retries or {}
    if retries.get("mode") != "standard":
        raise ValueError(f"retries mode {retries.get('mode')!r}: the bound knows standard only")
    if "total_max_attempts" in retries:
        return int(retries["total_max_attempts"])
    if "max_attempts" in retries:
        # botocore's max_attempts counts the retries, not the first call.
        return int(retries["max_attempts"]) + 1
    raise ValueError("retries without max_attempts: the environment would choose them")


HUB_CONNECT_TIMEOUT_SECONDS = 2
HUB_READ_TIMEOUT_SECONDS = 5
"""STS (AssumeRole), SNS (Publish) and S3 (the data bucket's objects) answer within a second in
the function's own region; an endpoint silent this long is not going to answer."""
HUB_ATTEMPTS = 2
HUB_CALL_CONFIG = bounded_config(
    connect_seconds=HUB_CONNECT_TIMEOUT_SECONDS,
    read_seconds=HUB_READ_TIMEOUT_SECONDS,
    attempts=HUB_ATTEMPTS,
)
HUB_CALL_SECONDS = longest_hung_call_seconds(HUB_CALL_CONFIG)
"""The longest a bounded hub call takes, every attempt timing out (15 s): an eighth of the
shortest timeout of a function that assumes member roles or publishes alerts (120 s: eks_scaler,
health_monitor, change_validator). An account reached through a hung STS is then reported
unreachable and the run goes on; an alert a hung SNS did not take fails the run in time, and the
platform's retry sends it (`alert_delivery`); an object a hung S3 did not take (an analysis, a
report) is the error of its target or its run. botocore's defaults (60 s to connect, 60 s to
read, 6 attempts) let one such call outlast every function's timeout: every member session
starts with an AssumeRole, and the writes and alerts come at the end of the work."""
BOUNDED_HUB_SERVICES = frozenset({"sts", "sns", "s3"})
"""The hub services whose clients (`hub_client`) have `HUB_CALL_CONFIG`: member sessions' STS, the
alerts' SNS, and S3 (the inventory, reports, analyses and state kept in the data bucket)."""
WATCHED_HUB_SERVICES = frozenset({"sns", "s3"})
"""The bounded hub services whose `hub_client` is given up after `HUB_CALLS_GIVEN_UP_AFTER`
unanswered call of the invocation: a run publishes an alert per incident or notice and writes
an object per target, each of which would otherwise wait out `HUB_CALL_SECONDS` again (40 alerts
to a hung SNS, 10 minutes). STS is not among them: its AssumeRole is given up through the same
record, for every member at once, and refused as the member's `MemberAccessError` (`session`)."""

MEMBER_CONNECT_TIMEOUT_SECONDS = 2
MEMBER_READ_TIMEOUT_SECONDS = 6
"""The member calls of eks_scaler, spot_optimizer and health_monitor (a DescribeCluster or
DescribeNodegroup, a page of ListNodegroups, DescribeTags, DescribeSpotPriceHistory or
DescribeAlarms, DescribeInstances of one instance, a GetMetricData, an UpdateNodegroupConfig)
answer within a second or two; an endpoint silent this long is not going to answer."""
MEMBER_ATTEMPTS = 2
MEMBER_CALL_CONFIG = bounded_config(
    connect_seconds=MEMBER_CONNECT_TIMEOUT_SECONDS,
    read_seconds=MEMBER_READ_TIMEOUT_SECONDS,
    attempts=MEMBER_ATTEMPTS,
)
MEMBER_CALL_SECONDS = longest_hung_call_seconds(MEMBER_CALL_CONFIG)
"""The longest one member call of `MEMBER_CALL_CONFIG` takes, every attempt timing out (17 s,
botocore's wait between the attempts included): that node group (eks_scaler), target
(spot_optimizer: an account and region of the fleet analysis, a requested analysis or mix) or
check (health_monitor) fails naming the timeout, and the others go on. With botocore's defaults
(60 s to connect, 60 s to read, 6 attempts) one hung call took about 6 minutes, past the 120 s
timeout of eks_scaler and health_monitor and the 300 s of spot_optimizer: Lambda ended the run,
and what it had not come to was not done (the node groups after it, the fleet analysis of every
target, the report and its alerts)."""

STATE_TABLE_CONNECT_TIMEOUT_SECONDS = 1
STATE_TABLE_READ_TIMEOUT_SECONDS = 2
"""DynamoDB answers the state table's calls (an item, a page of history, a two-item transaction)
in milliseconds in the function's own region; an endpoint silent this long is not going to
answer."""
STATE_TABLE_ATTEMPTS = 4
"""More than the hub's other calls make: standard mode retries DynamoDB's throttling
(ProvisionedThroughputExceeded, ThrottlingException), which an on-demand table answers to a
sudden burst and lifts within seconds, waiting up to 1, 2 and 4 s before these attempts."""
STATE_TABLE_CALL_CONFIG = bounded_config(
    connect_seconds=STATE_TABLE_CONNECT_TIMEOUT_SECONDS,
    read_seconds=STATE_TABLE_READ_TIMEOUT_SECONDS,
    attempts=STATE_TABLE_ATTEMPTS,
)
STATE_TABLE_CALL_SECONDS = longest_hung_call_seconds(STATE_TABLE_CALL_CONFIG)
"""The longest a state table call takes, every attempt timing out (13 s): under a quarter of the
shortest timeout of a function that uses the table (notification_router's 60 s), and under a
ninth of the 120 s of eks_scaler, health_monitor and change_validator. A hung table then fails
the call with botocore's timeout while the invocation still has time to end with that error;
botocore's defaults (60 s to connect, 60 s to read, 6 attempts) let one call outlast every
function's timeout, so that Lambda ended the run without a result."""

REFRESH_MARGIN = timedelta(minutes=15)
"""Assumed credentials are renewed this long before they expire: Lambda's longest timeout, so a
session or client handed out at any point of an invocation holds credentials that outlast it,
however long the target using it runs. Five minutes let an invocation of security_scanner or
cost_analyzer (900 s), cleanup_manager or backup_scheduler (600 s) start a target on credentials
that expired under its later calls."""

ASSUME_ROLE_REFUSED = "AccessDenied"
"""STS's error code for an AssumeRole it refuses: the role does not exist or does not trust the
caller (IAM answers both alike), the member's `MemberAccessError.refused`."""

ASSUMED_CREDENTIALS = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
"""The fields of AssumeRole's `Credentials` a member session is built from."""

_SESSION_NAME_FORBIDDEN = re.compile(r"[^\w+=,.@-]")
_SESSION_NAME_MAX = 64


@dataclass(frozen=True)
class _CachedSession:
    session: boto3.Session
    expires_at: datetime


class AccountSessions:
    """Sessions and clients for the hub and member accounts of one function."""

    def __init__(
        self,
        function_name: str,
        member_role_name: str | None,
        hub_account_id: str | None = None,
        *,
        home_region: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Build an empty cache; nothing is called until a session or client is asked for.

        `function_name` names the assumed-role sessions (visible in the members' CloudTrail).
        `home_region` is where STS is called; it defaults to the function's own region.
        """
        self._function_name = function_name
        self._member_role_name = member_role_name
        self._hub_account_id = hub_account_id
        self._home_region = home_region
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._hub_sessions: dict[str, boto3.Session] = {}
        self._member_sessions: dict[tuple[str, str], _CachedSession] = {}
        self._assume_locks: dict[tuple[str, str], threading.Lock] = {}
        self._unanswered_endpoints = UnansweredEndpoints()
        self._clients: dict[tuple[str, str, str, Config], tuple[boto3.Session, Any]] = {}

    @classmethod
    def from_environment(
        cls, environment: FunctionEnvironment, function_name: str, *, clock: Clock | None = None
    ) -> AccountSessions:
        """Sessions configured by MEMBER_ROLE_NAME and HUB_ACCOUNT_ID."""
        return cls(
            function_name,
            environment.member_role_name,
            environment.hub_account_id,
            clock=clock,
        )

    @property
    def home_region(self) -> str:
        """The function's own region (AWS_REGION in Lambda, AWS_DEFAULT_REGION locally)."""
        if self._home_region is None:
            region = boto3.Session().region_name
            if region is None:
                raise ConfigurationError("AWS_DEFAULT_REGION", "is required but not set")
            self._home_region = region
        return self._home_region

    @property
    def hub_account_id(self) -> str:
        """HUB_ACCOUNT_ID, or the account of the function's own credentials (asked once)."""
        with self._lock:
            if self._hub_account_id is None:
                sts = self._hub_session(self.home_region).client("sts", config=CLIENT_CONFIG)
                self._hub_account_id = str(sts.get_caller_identity()["Account"])
            return self._hub_account_id

    def is_hub(self, account_id: str) -> bool:
        """Whether `account_id` is the hub, where no role is assumed."""
        return account_id == self.hub_account_id

    def session(self, account_id: str, region: str) -> boto3.Session:
        """A session acting in `account_id` and `region`, assuming the member role when needed.

        Raises `MemberAccessError` when AssumeRole fails, or when STS did not answer an AssumeRole
        into any member in this invocation (without asking STS again, with that timeout as its
        cause: every node group, check or member would otherwise wait `HUB_CALL_SECONDS` for it
        again), and `ConfigurationError` when a member account is asked for but MEMBER_ROLE_NAME
        is not set.
        """
        if self.is_hub(account_id):
            return self._hub_session(region)
        key = (account_id, region)
        with self._assume_lock(key):
            cached = self._member_sessions.get(key)
            if cached is None or self._clock.now() >= cached.expires_at - REFRESH_MARGIN:
                cached = self._assume_member_role(account_id, region)
                with self._lock:
                    self._member_sessions[key] = cached
            return cached.session

    @property
    def unanswered_endpoints(self) -> UnansweredEndpoints:
        """The container's record of the endpoints that did not answer in this invocation (the
        members' AssumeRole, the watched clients, the state table), forgotten as each invocation
        starts (`FunctionServices.forget_unanswered_calls`)."""
        return self._unanswered_endpoints

    def client(
        self, service: str, account_id: str, region: str, config: Config = CLIENT_CONFIG
    ) -> Any:
        """A client of `service` in `account_id` and `region`, with `config` (a module-level
        one: clients are cached per config object), renewed with the session; its calls end
        within `longest_hung_call_seconds(config)` whatever the endpoint answers (`bound_calls`).

        Typed `Any` because boto3 generates client classes at run time.
        """
        session = self.session(account_id, region)
        with self._lock:
            key = (service, account_id, region, config)
            cached = self._clients.get(key)
            if cached is not None and cached[0] is session:
                return cached[1]
            client = bound_calls(session.client(service, config=config), config)
            self._clients[key] = (session, client)
            return client

    def watched_member_client(
        self,
        service: str,
        account_id: str,
        region: str,
        config: Config,
        *,
        given_up_after: int = MEMBER_CALLS_GIVEN_UP_AFTER,
    ) -> Any:
        """`client(service, account_id, region, config)`, whose calls fail at once with
        `EndpointNotAnsweringError` once its endpoint did not answer `given_up_after` calls of
        this invocation: a run over many node groups or resources behind one hung endpoint would
        otherwise wait out `config`'s bound for each. A function passes the same
        `given_up_after` for a service on every call (the first one watching a client holds).
        Its calls answered with success or refused by IAM are noted
        (`UnansweredEndpoints.member_calls`)."""
        client = self.client(service, account_id, region, config)
        return self._unanswered_endpoints.watch(
            client, account_id, region, given_up_after=given_up_after, member=True
        )

    def watched_hub_client(self, service: str, region: str | None, config: Config) -> Any:
        """A hub client of `service` in `region` or the home region, with `config`, whose calls
        fail at once with `EndpointNotAnsweringError` once its endpoint did not answer
        `HUB_CALLS_GIVEN_UP_AFTER` call of this invocation."""
        region = region or self.home_region
        client = self.client(service, self.hub_account_id, region, config)
        return self._unanswered_endpoints.watch(
            client, self.hub_account_id, region, given_up_after=HUB_CALLS_GIVEN_UP_AFTER
        )

    def hub_client(self, service: str, region: str | None = None) -> Any:
        """A client of `service` in the hub account, in `region` or the home region, with
        `HUB_CALL_CONFIG` for the `BOUNDED_HUB_SERVICES` and `STATE_TABLE_CALL_CONFIG` for
        DynamoDB (the state table); SNS's and S3's are refused (`WATCHED_HUB_SERVICES`) once
        their endpoint left a call of this invocation unanswered."""
        if service in WATCHED_HUB_SERVICES:
            return self.watched_hub_client(service, region, HUB_CALL_CONFIG)
        return self.client(
            service, self.hub_account_id, region or self.home_region, _hub_config(service)
        )

    def _assume_lock(self, key: tuple[str, str]) -> threading.Lock:
        """The lock of one member account and region: threads asking for it at once assume its
        role once, and an AssumeRole that hangs (up to `HUB_CALL_SECONDS`) holds up no other
        account's session nor the hub's clients, as the one lock of every cache would."""
        with self._lock:
            return self._assume_locks.setdefault(key, threading.Lock())

    @staticmethod
    def _new_session(**arguments: Any) -> boto3.Session:
        """A boto3 session that reads service models through the container's shared loader,
        whose clients refuse an answer that is not their call's (`foreign_answers`) and one
        their parser fails on with a Python error (`malformed_answers`)."""
        core = botocore.session.get_session()
        core.register_component("data_loader", _shared_loader())
        core.register_component("response_parser_factory", MalformedAnswerRefusingParserFactory())
        core.register("before-parse", refuse_foreign_answer)
        return boto3.Session(botocore_session=core, **arguments)

    def _hub_session(self, region: str) -> boto3.Session:
        # The function's own credentials: botocore refreshes them itself, so no expiry is kept.
        with self._lock:
            session = self._hub_sessions.get(region)
            if session is None:
                session = self._new_session(region_name=region)
                self._hub_sessions[region] = session
            return session

    def _assume_member_role(self, account_id: str, region: str) -> _CachedSession:
        if not self._member_role_name:
            raise ConfigurationError(
                "MEMBER_ROLE_NAME", f"is required to act in member account {account_id}"
            )
        role_arn = f"arn:aws:iam::{account_id}:role/{self._member_role_name}"
        sts = self.hub_client("sts")
        try:
            # Keyed by the one endpoint every member's AssumeRole goes to, not by the member: a
            # hung STS would otherwise cost each member of a run its own HUB_CALL_SECONDS.
            response = self._unanswered_endpoints.ask(
                f"sts AssumeRole in account {self.hub_account_id} region {self.home_region}",
                HUB_CALLS_GIVEN_UP_AFTER,
                partial(
                    sts.assume_role, RoleArn=role_arn, RoleSessionName=self._role_session_name()
                ),
            )
        except EndpointNotAnsweringError as refused:
            # Refused without asking STS: the member's cause is the timeout of the call it did
            # not answer, as that call's own error said.
            raise MemberAccessError(account_id, region, refused.cause) from refused
        except (ClientError, BotoCoreError, ResponseParserError) as error:
            # An answer that is not AssumeRole's (a proxy's page) fails that member, as a refusal.
            refused = (
                isinstance(error, ClientError)
                and error.response.get("Error", {}).get("Code") == ASSUME_ROLE_REFUSED
            )
            if refused:
                self._unanswered_endpoints.member_calls.note_refused(account_id, ASSUME_ROLE)
            raise MemberAccessError(
                account_id, region, call_error_text(error), refused=refused
            ) from error
        try:
            credentials = _assumed_credentials(response)
        except UnreadableAnswerError as error:
            # STS's own answer without its credentials (a proxy's, or a truncated one) fails that
            # member, as a refusal: a KeyError here ended every function's whole run.
            raise MemberAccessError(account_id, region, str(error)) from error
        session = self._new_session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
        return _CachedSession(session, expires_at=credentials["Expiration"])

    def _role_session_name(self) -> str:
        name = _SESSION_NAME_FORBIDDEN.sub("-", f"lambda-fleet-{self._function_name}")
        return name[:_SESSION_NAME_MAX]


def _assumed_credentials(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The `ASSUMED_CREDENTIALS` of an AssumeRole answer; raises UnreadableAnswerError naming
    the first one missing and showing the names of the fields the answer holds, never their
    values: a secret key and a session token are among them."""
    held = answer.get("Credentials")
    fields: Mapping[str, Any] = held if isinstance(held, Mapping) else {}
    for name in ASSUMED_CREDENTIALS:
        if name not in fields:
            missing = f"Credentials.{name}" if isinstance(held, Mapping) else "Credentials"
            shown = sorted(fields) if isinstance(held, Mapping) else sorted(answer)
            raise UnreadableAnswerError("AssumeRole", missing, shown)
    return {name: fields[name] for name in ASSUMED_CREDENTIALS}


def _hub_config(service: str) -> Config:
    if service in BOUNDED_HUB_SERVICES:
        return HUB_CALL_CONFIG
    if service == "dynamodb":
        return STATE_TABLE_CALL_CONFIG
    return CLIENT_CONFIG


@cache
def _shared_loader() -> botocore.loaders.Loader:
    """One botocore loader per container: each session would otherwise parse every service
    model it touches again, and there is one session per member account and region."""
    return botocore.loaders.create_loader()
