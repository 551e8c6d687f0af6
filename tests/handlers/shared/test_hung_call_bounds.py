"""`sessions.longest_hung_call_seconds` against botocore's own retries: a call whose every
attempt hangs, or is throttled at the last moment of its timeouts, botocore's waits drawn at their
longest and spent in simulated time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from catalog.functions import function_spec
from fleet_shared import call_bounds, sessions
from fleet_shared.access_episodes import SETTLE_ACCOUNT_SECONDS
from fleet_shared.inventory import HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS
from fleet_shared.sessions import bound_calls, bounded_config, longest_hung_call_seconds
from handlers.anomaly_detector import target_calls as anomaly
from handlers.backup_scheduler import backup
from handlers.change_validator import services as validator
from handlers.cleanup_manager import cleanup
from handlers.cost_analyzer import analysis as cost_analysis
from handlers.demand_forecaster import cluster_forecasts
from handlers.demand_forecaster import services as forecaster
from handlers.health_monitor import cluster_time as health
from handlers.health_monitor.checks.endpoints import PROBES_AT_ONCE
from handlers.health_monitor.cluster_time import CLUSTER_AWS_SECONDS
from handlers.notification_router import dead_letters as router_dead_letters
from handlers.notification_router import delivery_policy as router_policy
from handlers.notification_router.environment import RouterEnvironment
from handlers.performance_analyzer.analysis import CLUSTER_CALL_CONFIG, NEXT_PAGE_SECONDS
from handlers.security_scanner import scan as security_scan
from handlers.security_scanner import scan_requests as security_requests
from handlers.spot_optimizer import fleet as spot_fleet
from handlers.spot_optimizer import interruptions
from handlers.spot_optimizer import opportunities as spot_opportunities
from handlers.spot_optimizer import services as spot
from tests.handlers.deadlines import LambdaTime, draw_longest_botocore_waits
from tests.handlers.faults import throttle_attempts, throttle_just_before_timeout

REGION = "eu-west-1"
REPOSITORY = Path(__file__).resolve().parents[3]
FLEET_ATTEMPTS = 6
"""CLIENT_CONFIG's 5 retries and the first call."""
FIGURES = {
    "hub calls": (sessions.HUB_CALL_CONFIG, sessions.HUB_CALL_SECONDS),
    "state table calls": (sessions.STATE_TABLE_CALL_CONFIG, sessions.STATE_TABLE_CALL_SECONDS),
    "eks_scaler, spot_optimizer and health_monitor member calls": (
        sessions.MEMBER_CALL_CONFIG,
        sessions.MEMBER_CALL_SECONDS,
    ),
    "health_monitor watched member calls": (
        sessions.MEMBER_CALL_CONFIG,
        health.HUNG_MEMBER_CALL_SECONDS,
    ),
    "backup_scheduler member calls": (backup.MEMBER_CONFIG, backup.HUNG_MEMBER_CALL_SECONDS),
    "cleanup_manager member calls": (cleanup.MEMBER_CONFIG, cleanup.HUNG_MEMBER_CALL_SECONDS),
    "demand_forecaster member reads": (forecaster.MEMBER_READ_CONFIG, forecaster.READ_CALL_SECONDS),
    "demand_forecaster scaler calls": (
        forecaster.SCALER_CALL_CONFIG,
        forecaster.SCALER_CALL_SECONDS,
    ),
    "cost_analyzer target calls": (
        cost_analysis.TARGET_CALL_CONFIG,
        cost_analysis.TARGET_CALL_SECONDS,
    ),
    "cost_analyzer Cost Explorer calls": (
        cost_analysis.COST_EXPLORER_CALL_CONFIG,
        cost_analysis.COST_EXPLORER_CALL_SECONDS,
    ),
    "change_validator member reads": (validator.MEMBER_READ_CONFIG, validator.MEMBER_READ_SECONDS),
    "spot_optimizer pricing calls": (spot.PRICING_CALL_CONFIG, spot.PRICING_CALL_SECONDS),
    "anomaly_detector target reads": (anomaly.TARGET_CALL_CONFIG, anomaly.HUNG_TARGET_CALL_SECONDS),
    "security_scanner member calls": (
        security_scan.MEMBER_CALL_CONFIG,
        security_scan.HUNG_MEMBER_CALL_SECONDS,
    ),
    "security_scanner Security Hub imports": (
        security_scan.SECURITY_HUB_CALL_CONFIG,
        security_scan.SECURITY_HUB_CALL_SECONDS,
    ),
    "security_scanner fan-out sends": (
        security_scan.FAN_OUT_CALL_CONFIG,
        security_scan.FAN_OUT_CALL_SECONDS,
    ),
}
"""Each module's figure for one hung call of its bounded clients, and the config of those."""


class EndpointThatNeverAnswers:
    """Every attempt connects at the last moment of its connect timeout, then waits out its read
    timeout without a byte: the longest a timed-out attempt takes."""

    def __init__(self, time: LambdaTime, config: Config) -> None:
        self.time = time
        self.attempt_seconds = config.connect_timeout + config.read_timeout
        self.attempts = 0

    def __call__(self, request: Any, **_: Any) -> None:
        self.attempts += 1
        self.time.spend(self.attempt_seconds)
        raise ReadTimeoutError(endpoint_url=request.url)


def bounded_client_with_longest_waits(
    service: str, config: Config, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, LambdaTime]:
    """A client of `service` with `config`, its calls held to their bound as the fleet's are
    (`bound_calls`), botocore's jitter drawing the longest wait every time, and the simulated
    time its waits spend and its bound measures."""
    draw_longest_botocore_waits(monkeypatch)
    time = LambdaTime(seconds_left=math.inf).spend_botocore_waits(monkeypatch)
    client = boto3.client(
        service,
        region_name=REGION,
        config=config,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return bound_calls(client, config), time


def hung_call_seconds(config: Config, monkeypatch: pytest.MonkeyPatch) -> tuple[float, int]:
    """The simulated seconds and the attempts of one call through a bounded client with `config`
    to an endpoint that never answers, botocore's jitter drawing the longest wait every time."""
    client, time = bounded_client_with_longest_waits("sts", config, monkeypatch)
    endpoint = EndpointThatNeverAnswers(time, config)
    client.meta.events.register_first("before-send.sts.GetCallerIdentity", endpoint)
    with pytest.raises(ReadTimeoutError):
        client.get_caller_identity()
    return time.spent, endpoint.attempts


@pytest.mark.parametrize(
    ("attempts", "made"), [(1, 1), (2, 2), (5, 5), (None, FLEET_ATTEMPTS)], ids=str
)
def test_a_call_whose_every_attempt_hangs_ends_within_its_longest_hung_call_seconds(
    monkeypatch: pytest.MonkeyPatch, attempts: int | None, made: int
) -> None:
    # GIVEN a client bounded to 2 s to connect and 5 s to read, in `attempts` (the fleet's 6
    # when not given), whose endpoint never answers and whose waits botocore draws at their
    # longest
    config = bounded_config(connect_seconds=2, read_seconds=5, attempts=attempts)

    # WHEN one call is made
    spent, attempts_made = hung_call_seconds(config, monkeypatch)

    # THEN it makes every attempt and ends within the bound
    assert attempts_made == made
    assert spent <= longest_hung_call_seconds(config)
    # AND the bound is botocore's own waits rounded up to the second, not a guess with room
    assert longest_hung_call_seconds(config) - spent < 1


def test_the_bound_caps_botocores_wait_at_twenty_seconds_as_botocore_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a call of 12 attempts of 1 s each: its waits double from 50 ms, and the 10th and 11th
    # (25.6 s and 51.2 s uncapped) are botocore's cap, 20 s
    config = bounded_config(connect_seconds=0.5, read_seconds=0.5, attempts=12)

    # WHEN its every attempt hangs
    spent, attempts_made = hung_call_seconds(config, monkeypatch)

    # THEN the bound is 12 s of attempts, 25.55 s of doubling waits and two of 20 s, rounded up
    assert attempts_made == 12
    assert longest_hung_call_seconds(config) == 78
    assert 77 < spent <= 78


BACKUP_LIKE_CONFIG = bounded_config(connect_seconds=5, read_seconds=10, attempts=6)
"""backup_scheduler's and cleanup_manager's member config: 6 attempts of 15 s, a 92 s bound."""


def test_a_call_throttled_at_the_last_moment_of_each_attempt_ends_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a bounded client of 6 attempts of 5 s to connect and 10 s to read (92 s for a hung
    # call), whose endpoint answers each attempt with throttling as its timeouts run out, and
    # botocore's throttling waits (1, 2, 4, 8, 16 s: 121 s with the attempts) drawn at their
    # longest
    config = BACKUP_LIKE_CONFIG
    dynamodb, time = bounded_client_with_longest_waits("dynamodb", config, monkeypatch)
    throttling = throttle_just_before_timeout(dynamodb, "dynamodb", "ListTables", time.spend)

    # WHEN one call is made
    with pytest.raises(ClientError) as refused:
        dynamodb.list_tables()

    # THEN it ends within the bound, at the last attempt whose retry could have ended past it
    # (90 s: a sixth would end at 121 s)
    assert time.spent <= longest_hung_call_seconds(config) == 92
    assert (throttling.attempts, time.spent) == (5, 90)
    # AND its error is the last attempt's throttling, naming the call and why it stopped
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    message = str(refused.value)
    assert "ListTables" in message
    assert "dynamodb ListTables not retried after 90.0 s" in message
    assert "past the call's bound of 92 s" in message


@pytest.mark.usefixtures("mocked_aws")
def test_a_call_throttled_once_at_once_is_still_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the same bounded client, whose endpoint throttles the call's first attempt at once
    # and answers the second
    dynamodb, time = bounded_client_with_longest_waits("dynamodb", BACKUP_LIKE_CONFIG, monkeypatch)
    throttle_attempts(dynamodb, "dynamodb", 1)

    # WHEN one call is made
    tables = dynamodb.list_tables()

    # THEN botocore retried it after its throttling wait, far inside the bound, and it succeeded
    assert tables["TableNames"] == []
    assert tables["ResponseMetadata"]["RetryAttempts"] == 1
    assert time.spent == 1


def test_a_config_the_bound_cannot_know_is_refused_naming_what_it_lacks() -> None:
    # GIVEN botocore's adaptive mode (client-side rate limiting adds its own waits), and a
    # standard mode whose attempts the environment would choose
    adaptive = Config(retries={"mode": "adaptive", "total_max_attempts": 2})
    unnamed_attempts = Config(retries={"mode": "standard"})

    # WHEN their bounds are asked for THEN each is refused, saying why
    with pytest.raises(ValueError, match="'adaptive'"):
        longest_hung_call_seconds(adaptive)
    with pytest.raises(ValueError, match="max_attempts"):
        longest_hung_call_seconds(unnamed_attempts)


@pytest.mark.parametrize("calls", FIGURES)
def test_every_modules_figure_for_a_hung_call_is_as_long_as_botocore_takes(
    monkeypatch: pytest.MonkeyPatch, calls: str
) -> None:
    # GIVEN the config of a module's bounded clients and the figure its reserves and docs use
    config, figure = FIGURES[calls]

    # WHEN one call through such a client goes to an endpoint that never answers
    spent, _ = hung_call_seconds(config, monkeypatch)

    # THEN the call ends within the module's figure
    assert spent <= figure


FORECASTER_CLUSTER_SECONDS = (
    forecaster.READ_CALL_SECONDS
    + cluster_forecasts.CLUSTER_WORK_SECONDS
    + cluster_forecasts.HUB_SILENCE_SECONDS
    + cluster_forecasts.RUN_END_SECONDS
)
ROUTER_HTTP_SECONDS = RouterEnvironment.model_fields["router_http_timeout_seconds"].default
ROUTER_ATTEMPT_SECONDS = router_policy.attempt_seconds(ROUTER_HTTP_SECONDS)
ROUTER_TIMEOUT_SECONDS = function_spec("notification_router").timeout_seconds


def router_attempts_started(peer_seconds: float) -> int:
    """Channel attempts one router invocation starts, one after the other, when each peer takes
    `peer_seconds`: an attempt starts only with more than `ROUTER_ATTEMPT_SECONDS` left."""
    return math.ceil((ROUTER_TIMEOUT_SECONDS - ROUTER_ATTEMPT_SECONDS) / peer_seconds)


def attempts(config: Config) -> int:
    """The attempts a bounded config makes in all."""
    return int(config.retries["total_max_attempts"])


MEMBER_CALL_TIMEOUTS = (
    f"{sessions.MEMBER_ATTEMPTS} attempts of {sessions.MEMBER_CONNECT_TIMEOUT_SECONDS} s to connect"
    f" and {sessions.MEMBER_READ_TIMEOUT_SECONDS} s to read"
)
HUB_CALL_TIMEOUTS = (
    f"{sessions.HUB_ATTEMPTS} attempts of {sessions.HUB_CONNECT_TIMEOUT_SECONDS} s to connect"
    f" and {sessions.HUB_READ_TIMEOUT_SECONDS} s to read"
)
DOC_FIGURES = {
    "docs/architecture.md": [
        f"fails the AssumeRole within {sessions.HUB_CALL_SECONDS} s, `HUB_CALL_SECONDS`",
        f"fails a call within {sessions.STATE_TABLE_CALL_SECONDS} s (`STATE_TABLE_CALL_SECONDS`)",
        f"gives up an attempt after {sessions.STATE_TABLE_CONNECT_TIMEOUT_SECONDS} s without a"
        f" connection or {sessions.STATE_TABLE_READ_TIMEOUT_SECONDS} s without an answer and makes"
        f" {sessions.STATE_TABLE_ATTEMPTS} attempts",
        f"a throttling answer's waits of up to {call_bounds.LONGEST_RETRY_WAIT_SECONDS} s,"
        f" {call_bounds.LONGEST_RETRY_WAIT_SECONDS + call_bounds.RETRY_AFTER_EXTRA_SECONDS}"
        " with an `x-amz-retry-after` header",
    ],
    "docs/functions/health_monitor.md": [
        f"gets no answer is given up within {sessions.MEMBER_CALL_SECONDS} s"
        f" ({MEMBER_CALL_TIMEOUTS})",
        f"given up within {sessions.HUB_CALL_SECONDS} s, {HUB_CALL_TIMEOUTS}",
        f"time left for its AWS calls ({CLUSTER_AWS_SECONDS:g} s)",
        f"is given up for the rest of the invocation after {health.MEMBER_ENDPOINT_GIVEN_UP_AFTER}"
        " call it left unanswered, or throttled to its bound: as many"
        f" {health.HUNG_MEMBER_CALL_SECONDS} s calls as fit in the {CLUSTER_AWS_SECONDS:g} s a"
        " cluster is started with",
        f"a hung endpoint costs a run one call's {health.HUNG_MEMBER_CALL_SECONDS} s however many"
        " clusters it serves",
        f"probed {PROBES_AT_ONCE} at once",
        f"the stack file's {HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS:g} s",
        "probes at least 2 batches, and each endpoint is probed at least every"
        f" `ceil(endpoints / {2 * PROBES_AT_ONCE})` such runs",
    ],
    "docs/functions/backup_scheduler.md": [
        f"{backup.MEMBER_CONFIG.connect_timeout} s to connect,"
        f" {backup.MEMBER_CONFIG.read_timeout} s to read, each of the fleet's"
        f" {attempts(backup.MEMBER_CONFIG)} attempts",
        f"attempts: {backup.HUNG_MEMBER_CALL_SECONDS} s at most",
        f"the {backup.HUNG_ENDPOINTS_SECONDS} s its EC2 and DynamoDB endpoints take when they never"
        f" answer (one call of {backup.HUNG_MEMBER_CALL_SECONDS} s each)",
        f"settled only while more than {SETTLE_ACCOUNT_SECONDS} s are left",
        f"and {SETTLE_ACCOUNT_SECONDS} s for settling an account's access episode after the last",
        f"more than {backup.ITEM_RESERVE_SECONDS} s left (one hung member call of"
        f" {backup.HUNG_MEMBER_CALL_SECONDS} s",
    ],
    "docs/functions/cleanup_manager.md": [
        f"settled only while more than {SETTLE_ACCOUNT_SECONDS} s are left",
        f"{cleanup.MEMBER_CONFIG.connect_timeout} s to connect,"
        f" {cleanup.MEMBER_CONFIG.read_timeout} s to read, each of the fleet's"
        f" {attempts(cleanup.MEMBER_CONFIG)} attempts",
        f"attempts: {cleanup.HUNG_MEMBER_CALL_SECONDS} s at most",
        f"the {cleanup.HUNG_ENDPOINTS_SECONDS} s its EC2, Auto Scaling and Lambda endpoints take"
        " when they never"
        f" answer (one call of {cleanup.HUNG_MEMBER_CALL_SECONDS} s each) and the"
        f" {cleanup.AFTER_TARGETS_SECONDS} s of settling the access episodes and sending the"
        " notices after the last target",
        f"left beyond {cleanup.TARGET_RESERVE_SECONDS} s: {cleanup.HUNG_ENDPOINTS_SECONDS} s, what"
        " its EC2, Auto Scaling and Lambda endpoints take when none answers",
        f"and {cleanup.AFTER_TARGETS_SECONDS} s for the work after the last target (settling the"
        f" access episodes, {SETTLE_ACCOUNT_SECONDS} s, and sending the notices,"
        f" {cleanup.NOTICE_SECONDS} s",
        f"are started only while {cleanup.TARGET_RESERVE_SECONDS} s are left",
        f"A notice is started only while more than {cleanup.NOTICE_SECONDS} s are left",
    ],
    "docs/functions/demand_forecaster.md": [
        f"A cluster needs {FORECASTER_CLUSTER_SECONDS} s left: {forecaster.READ_CALL_SECONDS} s for"
        " one of its member reads timing out",
        f"{forecaster.SCALER_CALL_SECONDS} s more in predictive mode",
    ],
    "docs/functions/cost_analyzer.md": [
        f"gives up within {cost_analysis.TARGET_CALL_SECONDS} s",
        f"each Cost Explorer call within {cost_analysis.COST_EXPLORER_CALL_SECONDS} s"
        f" ({attempts(cost_analysis.COST_EXPLORER_CALL_CONFIG)} attempts,"
        f" {cost_analysis.COST_EXPLORER_CALL_CONFIG.connect_timeout} s to connect and"
        f" {cost_analysis.COST_EXPLORER_CALL_CONFIG.read_timeout} s to answer",
        f"less than {cost_analysis.POLL_RESERVE_SECONDS:g} s are left (one more poll's"
        f" {cost_analysis.TARGET_CALL_SECONDS} s, its StopQuery's"
        f" {cost_analysis.TARGET_CALL_SECONDS} s and {cost_analysis.WRITE_RESERVE_SECONDS:g} s to"
        " write)",
        f"the `cur` error) when less than {cost_analysis.POLL_RESERVE_SECONDS:g} s are left",
        f"also only with more than {cost_analysis.POLL_RESERVE_SECONDS:g} s left, what its first"
        " poll needs",
        f"result pages when less than {cost_analysis.CALL_RESERVE_SECONDS:g} s are left",
        f"(StopQuery, StopQueryExecution) while more than {cost_analysis.CALL_RESERVE_SECONDS:g} s"
        " are left",
        f"sent once more with that token while more than {cost_analysis.CALL_RESERVE_SECONDS:g} s"
        " are left",
    ],
    "docs/functions/change_validator.md": [
        f"{validator.MEMBER_READ_CONFIG.connect_timeout} s to connect,"
        f" {validator.MEMBER_READ_CONFIG.read_timeout} s to read,"
        f" {attempts(validator.MEMBER_READ_CONFIG)} attempts, and botocore's waits between them",
        f"fails its check within {validator.MEMBER_READ_SECONDS} s",
    ],
    "docs/functions/performance_analyzer.md": [
        f"give up a call within {longest_hung_call_seconds(CLUSTER_CALL_CONFIG)} s",
        f"asks for a next page only while the invocation has {NEXT_PAGE_SECONDS} s left",
    ],
    "docs/functions/eks_scaler.md": [
        f"answer is given up within {sessions.MEMBER_CALL_SECONDS} s ({MEMBER_CALL_TIMEOUTS})",
    ],
    "docs/functions/spot_optimizer.md": [
        f"answer is given up within {sessions.MEMBER_CALL_SECONDS} s ({MEMBER_CALL_TIMEOUTS})",
        f"costs a warning's step is {spot.HUNG_ENDPOINT_SECONDS} s, inside the"
        f" {interruptions.HANDLING_SECONDS} s its claim lasts",
        f"A Pricing API call that does not answer is given up within {spot.PRICING_CALL_SECONDS} s",
        f"whose turn comes with less than {spot_fleet.FLEET_TARGET_START_SECONDS} s left",
        f"and {SETTLE_ACCOUNT_SECONDS} s for settling an",
        f"a next page only while {spot_opportunities.NEXT_PAGE_SECONDS} s are left in the"
        " invocation",
    ],
    "docs/functions/anomaly_detector.md": [
        f"{attempts(anomaly.TARGET_CALL_CONFIG)} attempts of"
        f" {anomaly.TARGET_CALL_CONFIG.connect_timeout} s to connect and"
        f" {anomaly.TARGET_CALL_CONFIG.read_timeout} s to read",
        f"GetCostAndUsage) is given up within {anomaly.HUNG_TARGET_CALL_SECONDS} s",
        f"`ANOMALY_TARGET_SECONDS` and those {anomaly.HUNG_TARGET_CALL_SECONDS} s left",
        f"one read that never answers ({anomaly.HUNG_TARGET_CALL_SECONDS} s) left",
    ],
    "docs/functions/notification_router.md": [
        f"then {router_policy.RECORDING_SECONDS} s for the state table call that records what the"
        " channel took",
        f"and {router_policy.DEADLINE_MARGIN_SECONDS:g} s to return",
        f"With the default {ROUTER_HTTP_SECONDS:g} s and the {ROUTER_TIMEOUT_SECONDS} s timeout, an"
        f" invocation starts at most {router_attempts_started(ROUTER_HTTP_SECONDS)} channel"
        f" attempts whose peers each take the whole {ROUTER_HTTP_SECONDS:g} s (peers answering"
        f" within a second leave room for about {router_attempts_started(1)})",
        f"(SQS failing after its {attempts(sessions.HUB_CALL_CONFIG)} attempts, the variable unset,"
        f" less than {router_dead_letters.KEEP_SECONDS:g} s left)",
    ],
    "docs/functions/security_scanner.md": [
        f"never answers gives up within {security_scan.HUNG_MEMBER_CALL_SECONDS} s",
        f"left beyond the {security_scan.HUNG_ENDPOINTS_SECONDS} s its endpoints take when they"
        " never answer",
        f"beyond the {security_scan.HUNG_ENDPOINTS_SECONDS} s its endpoints take when they never"
        f" answer (one call each: {security_scan.HUNG_MEMBER_CALL_SECONDS} s for each of its seven"
        f" member services, {security_scan.SECURITY_HUB_CALL_SECONDS} s for Security Hub,"
        f" {sessions.HUB_CALL_SECONDS} s for SNS, {sessions.STATE_TABLE_CALL_SECONDS} s for the"
        f" state table) and the {security_requests.REPORT_SECONDS} s of the run's report (its S3"
        " PutObject when S3 never answers)",
        f"and the {security_requests.REPORT_SECONDS} s the run's report takes when S3 never"
        " answers",
        f"gives up within {security_scan.SECURITY_HUB_CALL_SECONDS} s",
        f"A publish SNS does not answer gives up within {sessions.HUB_CALL_SECONDS} s",
        f"A send SQS does not answer gives up within {security_scan.FAN_OUT_CALL_SECONDS} s"
        f" ({security_scan.FAN_OUT_CALL_CONFIG.connect_timeout} s to connect,"
        f" {security_scan.FAN_OUT_CALL_CONFIG.read_timeout} s to read,"
        f" {attempts(security_scan.FAN_OUT_CALL_CONFIG)} attempts)",
    ],
}
"""The sentences of the doc pages that state a hung call's bound, or a reserve or limit the
deadlines are built on, as the code computes it."""


@pytest.mark.parametrize("page", DOC_FIGURES)
def test_every_doc_page_states_the_hung_call_figures_the_code_computes(page: str) -> None:
    # GIVEN a doc page that says how long a hung call, or a reserve made of them, takes
    text = " ".join((REPOSITORY / page).read_text().split())

    # WHEN its sentences are looked for with the figures the code computes
    missing = [sentence for sentence in DOC_FIGURES[page] if sentence not in text]

    # THEN each is there, so no page states a figure the code no longer has
    assert missing == []
