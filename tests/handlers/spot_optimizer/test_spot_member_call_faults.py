"""The optimizer's calls in a member account, and to the hub's Pricing API, when their endpoint
hangs, against the function's 300 s timeout and the 45 s claim of an interruption warning.

Time is simulated (tests/handlers/deadlines.py): a hung attempt spends its client's read timeout
of the invocation's time, botocore's waits between attempts spend theirs, and once the time is up
the invocation ends as Lambda ends it, from wherever it is."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.sessions import CLIENT_CONFIG, MEMBER_ATTEMPTS, MEMBER_CALL_SECONDS
from handlers.spot_optimizer import app
from handlers.spot_optimizer.exceptions import InterruptionNotRecordedError
from handlers.spot_optimizer.fleet import FLEET_TARGET_START_SECONDS
from handlers.spot_optimizer.interruptions import HANDLING_SECONDS
from handlers.spot_optimizer.keys import zone_interruptions_key
from handlers.spot_optimizer.opportunities import NEXT_PAGE_SECONDS, OUT_OF_TIME, TYPE_SECONDS
from handlers.spot_optimizer.services import (
    HUNG_ENDPOINT_SECONDS,
    PRICING_CALL_SECONDS,
    SpotServices,
)
from tests.handlers.conftest import HUB_ACCOUNT_ID
from tests.handlers.deadlines import LambdaTime
from tests.handlers.faults import MalformedAnswer, ThrottledAtTheLastMoment
from tests.handlers.member_accounts import DENIED_MEMBER, MEMBER_A, MEMBER_B, REGION
from tests.handlers.spot_optimizer.conftest import (
    CLUSTER,
    at_the_fallback_threshold,
    change_the_inventory,
    desired_size,
    interruption_event,
    launch_spot_instance,
    next_batch_spot_warning,
)

TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["spot_optimizer"].timeout_seconds
DATA_BUCKET = "lambda-fleet-data"
INVENTORY_KEY = "config/fleet-inventory.json"


@dataclass
class HungService:
    """Every attempt goes to an endpoint that accepts the connection at the last moment of the
    client's connect timeout and never answers: each spends both timeouts of the invocation's
    time and fails as botocore fails it; `healed` lets them through."""

    time: LambdaTime
    attempts: int = 0
    attempt_seconds: float = 0.0
    healed: bool = False
    armed_by: str = ""
    """Let calls through until one whose URL contains this (every call hangs when empty)."""
    second_attempts_answered: bool = False
    """Let each call's second attempt through, answered a second before its timeouts are up."""

    def note_config(self, context: dict[str, Any], **_: Any) -> None:
        config = context["client_config"]
        self.attempt_seconds = config.connect_timeout + config.read_timeout

    def hang(self, request: Any, **_: Any) -> None:
        if self.armed_by in request.url:
            self.armed_by = ""
        if self.healed or self.armed_by:
            return
        self.attempts += 1
        if self.second_attempts_answered and self.attempts % 2 == 0:
            self.time.spend(self.attempt_seconds - 1)
            return
        self.time.spend(self.attempt_seconds)
        raise ReadTimeoutError(endpoint_url=request.url)


def hang_member_service(
    services: SpotServices,
    time: LambdaTime,
    service: str,
    account_id: str | set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> HungService:
    """Make every attempt of every call of `service` in `account_id` (or each of a set) hang for
    its client's timeouts of `time`, whichever config the handler builds that client with."""
    accounts = {account_id} if isinstance(account_id, str) else account_id
    fault = HungService(time)
    build_client = services.sessions.client

    def client(name: str, account: str, region: str, config: Config = CLIENT_CONFIG) -> Any:
        built = build_client(name, account, region, config)
        if name == service and account in accounts:
            events = built.meta.events
            events.register_first(
                f"before-parameter-build.{service}", fault.note_config, unique_id="hung-config"
            )
            events.register_first(f"before-send.{service}", fault.hang, unique_id="hung-send")
        return built

    monkeypatch.setattr(services.sessions, "client", client)
    return fault


def throttle_member_service_at_the_last_moment(
    services: SpotServices,
    time: LambdaTime,
    service: str,
    account_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> ThrottledAtTheLastMoment:
    """Make every attempt of every call of `service` in `account_id` spend its client's
    timeouts of `time` and then be answered with throttling (in XML: `service` is EC2 or Auto
    Scaling), which botocore retries."""
    config = services.member_call_config
    # Auto Scaling's query protocol reads its errors from the same XML as EC2's.
    fault = ThrottledAtTheLastMoment(
        time.spend, config.connect_timeout + config.read_timeout, ec2=True
    )
    build_client = services.sessions.client

    def client(name: str, account: str, region: str, config: Config = CLIENT_CONFIG) -> Any:
        built = build_client(name, account, region, config)
        if name == service and account == account_id:
            built.meta.events.register_first(
                f"before-send.{service}", fault, unique_id="throttled-send"
            )
        return built

    monkeypatch.setattr(services.sessions, "client", client)
    return fault


def declare_cluster_autoscaler() -> None:
    """The stack file declares Cluster Autoscaler for dev-apps: the fallback then reads its
    discovery tags on each ON_DEMAND group's Auto Scaling group before taking it."""

    def declare(cluster: dict[str, Any]) -> None:
        cluster["autoscaler"] = "cluster-autoscaler"

    change_the_inventory(declare)


def add_members_to_the_inventory(*account_ids: str) -> None:
    """Members with a copy of member A's dev-apps cluster and its spot group, after the others."""
    s3 = boto3.client("s3", region_name=REGION)
    inventory = json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=INVENTORY_KEY)["Body"].read())
    member_a = next(m for m in inventory["members"] if m["account_id"] == MEMBER_A)
    for account_id in account_ids:
        inventory["members"].append({**member_a, "account_id": account_id, "name": account_id})
    s3.put_object(Bucket=DATA_BUCKET, Key=INVENTORY_KEY, Body=json.dumps(inventory).encode())


def invoke_in_time(
    event: dict[str, Any], services: SpotServices, time: LambdaTime, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The handler's result for `event` in an invocation whose time is `time`."""
    monkeypatch.setattr(app.FUNCTION, "services", lambda: services)
    return dict(app.lambda_handler(event, time.context()))


def test_a_fleet_analysis_whose_member_ec2_hangs_fails_that_target_and_answers_in_time(
    make_services: Callable[..., SpotServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the hourly analysis of members A and B (and a denied member), with the function's
    # whole timeout, and member A's EC2 endpoint answering no call
    add_members_to_the_inventory(MEMBER_B)
    services = make_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "ec2", MEMBER_A, monkeypatch)
    # WHEN the schedule invokes the optimizer
    result = invoke_in_time({"action": "analyze_fleet"}, services, time, monkeypatch)
    # THEN member A's target failed after one bounded call, naming the timeout, and member B was
    # analysed: the run answered in time (Lambda did not end it)
    assert fault.attempts > 1
    assert time.spent <= MEMBER_CALL_SECONDS
    assert result["status"] == "partial"
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "error"
    assert "Read timeout" in targets[MEMBER_A]["error"]
    assert targets[MEMBER_B]["status"] == "ok"
    assert "AccessDenied" in targets[DENIED_MEMBER]["error"]


def test_a_fleet_analysis_of_many_targets_behind_hung_ec2_stops_starting_them_in_time(
    make_services: Callable[..., SpotServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the hourly analysis of 20 members in one region, whose EC2 endpoints all answer no
    # call (each target's one read, 16 s: 20 of them outlast the function's timeout)
    extra_members = [f"{number:012d}" for number in range(400000000000, 400000000019)]
    add_members_to_the_inventory(*extra_members)
    services = make_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    hang_member_service(services, time, "ec2", {MEMBER_A, *extra_members}, monkeypatch)
    # WHEN the schedule invokes the optimizer
    result = invoke_in_time({"action": "analyze_fleet"}, services, time, monkeypatch)
    # THEN it answered in time (Lambda did not end it): each target started failed naming the
    # timeout, and those whose turn came with less than a target's reserve left (its own and an
    # account's settlement after the last) were not started
    assert time.spent <= TIMEOUT_SECONDS - FLEET_TARGET_START_SECONDS + MEMBER_CALL_SECONDS
    assert result["status"] == "partial"
    statuses = [target["status"] for target in result["targets"]]
    started = [
        target
        for target in result["targets"]
        if target["status"] == "error" and target["account_id"] != DENIED_MEMBER
    ]
    assert started
    assert all("Read timeout" in target["error"] for target in started)
    assert statuses.count("not_started") == 1 + len(extra_members) - len(started)


def test_a_warning_whose_instance_describe_hangs_fails_within_its_claim_and_the_retry_records(
    make_services: Callable[..., SpotServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a spot instance's interruption warning, and member A's EC2 endpoint answering no call
    services = make_services()
    instance_id = launch_spot_instance()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "ec2", MEMBER_A, monkeypatch)
    # WHEN the warning arrives
    with pytest.raises(InterruptionNotRecordedError, match="Read timeout"):
        invoke_in_time(interruption_event(instance_id), services, time, monkeypatch)
    # THEN the invocation failed naming the timeout while its claim still held (no copy of the
    # warning could take it over), so the platform retries it
    assert fault.attempts > 1
    assert time.spent <= MEMBER_CALL_SECONDS < HANDLING_SECONDS
    # WHEN EC2 answers again and the platform retries the warning a minute later
    fault.healed = True
    services.clock.advance(60)
    retried = invoke_in_time(
        interruption_event(instance_id), services, LambdaTime(TIMEOUT_SECONDS), monkeypatch
    )
    # THEN the retry records the interruption
    assert retried["status"] == "recorded"
    history = services.state.query_history(
        zone_interruptions_key(MEMBER_A, REGION, "m7g.large", f"{REGION}a"),
        services.clock.now().replace(year=2020),
    )
    assert [change.record["instance_id"] for change in history] == [instance_id]


def test_a_fallback_whose_member_eks_hangs_fails_within_the_claim_and_the_warning_is_recorded(
    make_services: Callable[..., SpotServices],
    invoke: Callable[..., dict[str, Any]],
    member_eks: Any,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN auto-apply on, batch-spot at the fallback's threshold, and member A's EKS endpoint
    # answering no call
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    warning = next_batch_spot_warning(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "eks", MEMBER_A, monkeypatch)
    # WHEN the fourth warning of the hour arrives
    result = invoke_in_time(warning, services, time, monkeypatch)
    # THEN the interruption is recorded and announced, and the fallback failed naming the
    # timeout within the warning's claim, renewed before it: the invocation answered in time
    assert fault.attempts > 1
    assert time.spent <= MEMBER_CALL_SECONDS < HANDLING_SECONDS
    assert result["status"] == "recorded"
    assert result["interruptions_last_hour"] == 4
    assert result["fallback"]["status"] == "error"
    assert "Read timeout" in result["fallback"]["error"]
    assert [alert.alert["severity"] for alert in alert_inbox.receive()] == ["warning"]
    # AND the on-demand group is unchanged
    fault.healed = True
    assert desired_size(member_eks, "system") == 2


def test_an_analysis_whose_pricing_api_hangs_prices_every_type_from_the_table_in_time(
    make_services: Callable[..., SpotServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an analysis of three instance types with the function's whole timeout, and the hub's
    # Pricing API answering no call
    services = make_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "pricing", HUB_ACCOUNT_ID, monkeypatch)
    request = {
        "action": "analyze_opportunities",
        "account_id": MEMBER_A,
        "region": REGION,
        "instance_types": ["m7g.large", "m6g.large", "c7g.large"],
    }
    # WHEN it is asked for
    result = invoke_in_time(request, services, time, monkeypatch)
    # THEN the first type's price waited out one bounded call and the others did not ask again:
    # each type is priced from the bundled table, saying why, and the analysis answered in time
    assert fault.attempts > 1
    assert time.spent <= PRICING_CALL_SECONDS
    notes = {item["instance_type"]: item["pricing_note"] for item in result["results"]}
    assert sorted(notes) == ["c7g.large", "m6g.large", "m7g.large"]
    assert all(item["on_demand_source"] != "pricing api" for item in result["results"])
    [asked] = [note for note in notes.values() if "not asked again" not in note]
    assert "Read timeout" in asked


def test_a_plus_one_whose_eks_stops_answering_mid_fallback_ends_within_the_claim(
    make_services: Callable[..., SpotServices],
    invoke: Callable[..., dict[str, Any]],
    member_eks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN auto-apply on, batch-spot at the fallback's threshold, and member A's EKS endpoint
    # answering no call from the fallback's UpdateNodegroupConfig on (that +1's answer lost, then
    # the read of the node group's size it calls for)
    services = at_the_fallback_threshold(make_services, invoke)
    warning = next_batch_spot_warning(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "eks", MEMBER_A, monkeypatch)
    fault.armed_by = "/update-config"
    # WHEN the fourth warning of the hour arrives
    result = invoke_in_time(warning, services, time, monkeypatch)
    # THEN both hung calls together ended inside the warning's claim, renewed before the
    # fallback: the fallback is an error naming the timeout, and the interruption is recorded
    assert fault.attempts == 2 * MEMBER_ATTEMPTS
    assert time.spent <= HUNG_ENDPOINT_SECONDS < HANDLING_SECONDS
    assert result["status"] == "recorded"
    assert result["fallback"]["status"] == "error"
    assert "Read timeout" in result["fallback"]["error"]


def test_a_mix_recommendation_whose_member_eks_hangs_is_an_error_result_in_time(
    make_services: Callable[..., SpotServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN member A's EKS endpoint answering no call, with the function's whole timeout
    services = make_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "eks", MEMBER_A, monkeypatch)
    request = {
        "action": "recommend_node_group_mix",
        "account_id": MEMBER_A,
        "region": REGION,
        "cluster": "dev-apps",
    }
    # WHEN the mix of dev-apps is asked for
    result = invoke_in_time(request, services, time, monkeypatch)
    # THEN the answer is an error naming the cluster and the timeout, in time
    assert fault.attempts == MEMBER_ATTEMPTS
    assert time.spent <= MEMBER_CALL_SECONDS
    assert result["status"] == "error"
    assert result["cluster"] == "dev-apps"
    assert "Read timeout" in result["error"]


def test_a_fallback_whose_member_auto_scaling_hangs_fails_within_the_claim_and_adds_no_node(
    make_services: Callable[..., SpotServices],
    invoke: Callable[..., dict[str, Any]],
    member_eks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN auto-apply on, batch-spot at the fallback's threshold, Cluster Autoscaler declared
    # for dev-apps, and member A's Auto Scaling endpoint answering no call (so whether it
    # manages the on-demand group system cannot be read)
    services = at_the_fallback_threshold(make_services, invoke)
    declare_cluster_autoscaler()
    warning = next_batch_spot_warning(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "autoscaling", MEMBER_A, monkeypatch)
    # WHEN the fourth warning of the hour arrives
    result = invoke_in_time(warning, services, time, monkeypatch)
    # THEN the fallback failed naming the timeout after one bounded DescribeTags, inside the
    # warning's claim renewed before it, and the interruption is recorded
    assert fault.attempts == MEMBER_ATTEMPTS
    assert time.spent <= MEMBER_CALL_SECONDS < HANDLING_SECONDS
    assert result["status"] == "recorded"
    assert result["fallback"]["status"] == "error"
    assert "Read timeout" in result["fallback"]["error"]
    # AND no +1 was made on the group whose ownership could not be read
    assert desired_size(member_eks, "system") == 2
    assert services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system")) is None


def test_a_fallback_whose_member_auto_scaling_throttles_to_its_bound_adds_no_node_in_time(
    make_services: Callable[..., SpotServices],
    invoke: Callable[..., dict[str, Any]],
    member_eks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN auto-apply on, batch-spot at the fallback's threshold, Cluster Autoscaler declared
    # for dev-apps, and member A's Auto Scaling endpoint throttling every attempt just before
    # its timeouts run out (botocore's longest waits, 1 s and more, between them)
    services = at_the_fallback_threshold(make_services, invoke)
    declare_cluster_autoscaler()
    warning = next_batch_spot_warning(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = throttle_member_service_at_the_last_moment(
        services, time, "autoscaling", MEMBER_A, monkeypatch
    )
    # WHEN the fourth warning of the hour arrives
    result = invoke_in_time(warning, services, time, monkeypatch)
    # THEN DescribeTags was given up within one call's bound, inside the warning's claim: the
    # fallback is an error naming the throttling, and the interruption is recorded
    assert fault.attempts == MEMBER_ATTEMPTS
    assert time.spent <= MEMBER_CALL_SECONDS < HANDLING_SECONDS
    assert result["status"] == "recorded"
    assert result["fallback"]["status"] == "error"
    assert "Throttling" in result["fallback"]["error"]
    # AND no +1 was made on the group whose ownership could not be read
    assert desired_size(member_eks, "system") == 2
    assert services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system")) is None


PAGE_SECONDS = 2.0
"""What each page of an endlessly paging API spends of the invocation's time."""


@dataclass
class EndlessPages:
    """Answers every attempt with a page holding nothing and a next token (two tokens in turn
    when `cycle`, else a new one every time), each spending PAGE_SECONDS of `time`."""

    time: LambdaTime
    cycle: bool
    page: Callable[[str], bytes]
    content_type: str | None = None
    answered: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.answered += 1
        self.time.spend(PAGE_SECONDS)
        token = f"page-{self.answered % 2 if self.cycle else self.answered}"
        return MalformedAnswer(self.page(token), "", content_type=self.content_type)(request)


def spot_price_page(token: str) -> bytes:
    return (
        '<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<spotPriceHistorySet/><nextToken>{token}</nextToken>"
        "</DescribeSpotPriceHistoryResponse>"
    ).encode()


def products_page(token: str) -> bytes:
    return json.dumps({"FormatVersion": "aws_v1", "PriceList": [], "NextToken": token}).encode()


def test_an_analysis_whose_pricing_api_answers_every_call_late_answers_in_time(
    make_services: Callable[..., SpotServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an analysis of 50 instance types with the function's whole timeout, and the hub's
    # Pricing API answering each call only at its second attempt, just in time (15 s a type:
    # never a call unanswered, so it is never given up)
    services = make_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_service(services, time, "pricing", HUB_ACCOUNT_ID, monkeypatch)
    fault.second_attempts_answered = True
    types = ["m7g.large", *(f"x9.size{index}" for index in range(49))]
    request = {
        "action": "analyze_opportunities",
        "account_id": MEMBER_A,
        "region": REGION,
        "instance_types": types,
    }
    # WHEN it is asked for
    result = invoke_in_time(request, services, time, monkeypatch)
    # THEN it answers before Lambda ends it (750 s of types), the types reached in time
    # analysed and the others named as not analysed, each with why
    assert time.spent < TIMEOUT_SECONDS - TYPE_SECONDS + PRICING_CALL_SECONDS
    not_analysed = result["not_analysed"]
    assert 0 < len(not_analysed) < len(types)
    errors = {item["instance_type"]: item.get("error") for item in result["results"]}
    assert {kind for kind, error in errors.items() if error == OUT_OF_TIME} == set(not_analysed)
    [m7g] = [item for item in result["results"] if item["instance_type"] == "m7g.large"]
    assert m7g["status"] == "ok"


@pytest.mark.parametrize(
    ("cycle", "problem"),
    [(True, "answered the NextToken 'page-1' again"), (False, "read cut short")],
)
def test_a_fleet_analysis_whose_spot_history_pages_never_end_fails_that_target_in_time(
    make_services: Callable[..., SpotServices],
    monkeypatch: pytest.MonkeyPatch,
    cycle: bool,
    problem: str,
) -> None:
    # GIVEN member A's EC2 answering DescribeSpotPriceHistory page after page, each with a next
    # token: two in turn, or a new one every time
    services = make_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    pages = EndlessPages(time, cycle, spot_price_page)
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    ec2.meta.events.register_first("before-send.ec2.DescribeSpotPriceHistory", pages)
    # WHEN the schedule invokes the optimizer
    result = invoke_in_time({"action": "analyze_fleet"}, services, time, monkeypatch)
    # THEN member A's target failed naming the endless pages, and the run answered in time
    # (Lambda did not end it at its timeout)
    assert time.spent < TIMEOUT_SECONDS - NEXT_PAGE_SECONDS + PAGE_SECONDS
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "error"
    assert problem in targets[MEMBER_A]["error"]
    assert result["status"] == "partial"


@pytest.mark.parametrize(
    ("cycle", "problem"),
    [(True, "answered the NextToken 'page-1' again"), (False, "read cut short")],
)
def test_an_on_demand_price_whose_pricing_pages_never_end_comes_from_the_table_in_time(
    make_services: Callable[..., SpotServices],
    monkeypatch: pytest.MonkeyPatch,
    cycle: bool,
    problem: str,
) -> None:
    # GIVEN the Pricing API answering GetProducts page after page without a product, each with
    # a next token: two in turn, or a new one every time
    services = make_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    pages = EndlessPages(time, cycle, products_page, "application/x-amz-json-1.1")
    pricing = services.pricing_client()
    pricing.meta.events.register_first("before-send.pricing.GetProducts", pages)
    # WHEN one type is analysed
    event = {
        "action": "analyze_opportunities",
        "account_id": MEMBER_A,
        "region": REGION,
        "instance_types": ["m7g.large"],
    }
    result = invoke_in_time(event, services, time, monkeypatch)
    # THEN the type is priced from the bundled table, its note naming the endless pages, and the
    # analysis answered in time (Lambda did not end it at its timeout)
    assert time.spent < TIMEOUT_SECONDS - NEXT_PAGE_SECONDS + PAGE_SECONDS
    [item] = result["results"]
    assert item["status"] == "ok"
    assert item["on_demand_source"] != "pricing api"
    assert problem in item["pricing_note"]
