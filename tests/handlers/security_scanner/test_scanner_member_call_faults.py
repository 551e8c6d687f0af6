"""The scan's calls to endpoints that never answer (a member's, the hub's Security Hub and SNS),
against the 900 s timeout.

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
from botocore.exceptions import ReadTimeoutError

from catalog.functions import function_spec
from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.sessions import HUB_CALL_SECONDS
from handlers.security_scanner import registry, scan
from handlers.security_scanner.checks import load_checks
from handlers.security_scanner.environment import ScannerEnvironment
from handlers.security_scanner.scan import (
    HUNG_ENDPOINTS_SECONDS,
    HUNG_MEMBER_CALL_SECONDS,
    MEMBER_SERVICES,
    SECURITY_HUB_CALL_SECONDS,
    STATE_NAME,
    TIME_RAN_OUT,
    ScanServices,
    state_key,
)
from handlers.security_scanner.scan_requests import REPORT_SECONDS
from tests.handlers.deadlines import (
    PLATFORM_RETRY_SECONDS,
    HungOperation,
    LambdaTime,
    hang_every_attempt,
)
from tests.handlers.faults import answer_of
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_A,
    MEMBER_B,
    REGION,
    member_session,
)

Scanner = Callable[..., dict[str, Any]]
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
NEW_CRITICAL_FINDINGS = 40
"""Admin policies of member A, each a new critical finding: with one hung publish each (10 s of
read timeouts), more than a target's start reserve."""
TIMEOUT_SECONDS = function_spec("security_scanner").timeout_seconds
SCAN_TARGET_SECONDS = ScannerEnvironment.model_fields["scan_target_seconds"].default


def member_a_never_answers(services: ScanServices, time: LambdaTime) -> HungOperation:
    """Every attempt of every call of member A's clients in REGION (IAM's included) accepts the
    connection and never answers, spending its client's read timeout of `time`: member A's
    region out of reach. The hooks go on member A's session, so every client the scan builds
    from it has them, whatever its config."""
    session = services.sessions.session(MEMBER_A, REGION)
    hung = HungOperation(time)
    session.events.register("before-parameter-build", hung.note_config)
    session.events.register_first("before-send", hung.hang)
    return hung


def target(result: dict[str, Any], account_id: str) -> dict[str, Any]:
    return next(t for t in result["targets"] if t["account_id"] == account_id)


def test_a_member_whose_endpoints_never_answer_is_scanned_with_errors_and_the_others_in_time(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN members A, B and a denied member, member A's open-bucket findings found by the last
    # scan, and now none of member A's endpoints answering any call
    member_session(MEMBER_A).client("s3").create_bucket(
        Bucket="member-a-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    assert target(scanner({"action": "scan"}), MEMBER_A)["findings"] > 0
    services = build_scanner_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    hung = member_a_never_answers(services, time)
    # WHEN the schedule invokes the scanner with the function's whole timeout
    result = scanner({"action": "scan"}, services, time.context())
    # THEN Lambda did not end the run: each of member A's endpoints was given up after one
    # bounded call, every resource type of member A is listed as unread, naming the timeout
    assert hung.attempts > 0
    assert time.spent <= len(MEMBER_SERVICES) * HUNG_MEMBER_CALL_SECONDS, time.spent
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    assert target_a["resolved"] == 0
    errors = {error["resource_type"]: error["error"] for error in target_a["errors"]}
    assert set(errors) == {source.resource_type for source in registry.sources()}
    assert all(
        "Read timeout" in error or "not asked again" in error for error in errors.values()
    ), errors
    # AND member B was scanned, the denied member reported, and the day's report written
    assert target(result, MEMBER_B)["status"] == "scanned"
    assert target(result, DENIED_MEMBER)["status"] == "denied"
    assert result["status"] == "partial"
    report = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket="lambda-fleet-data", Key=result["report_key"])["Body"]
        .read()
    )
    assert target(report, MEMBER_A)["errors"] == target_a["errors"]


@pytest.mark.parametrize(
    ("seconds_left", "member_a_started"),
    [
        pytest.param(
            SCAN_TARGET_SECONDS + HUNG_ENDPOINTS_SECONDS + REPORT_SECONDS,
            False,
            id="the-budget-only",
        ),
        pytest.param(
            SCAN_TARGET_SECONDS + HUNG_ENDPOINTS_SECONDS + REPORT_SECONDS + 1,
            True,
            id="the-budget-every-endpoint-bound-and-the-report",
        ),
    ],
)
def test_a_target_starts_only_with_time_for_its_budget_and_its_endpoints_hanging(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    monkeypatch: pytest.MonkeyPatch,
    seconds_left: int,
    member_a_started: bool,
) -> None:
    # GIVEN one target at a time, member A first, none of its endpoints answering, and an
    # invocation with `seconds_left`, more than SCAN_TARGET_SECONDS (120 s)
    monkeypatch.setenv("SCAN_MAX_WORKERS", "1")
    services = build_scanner_services()
    time = LambdaTime(seconds_left).spend_botocore_waits(monkeypatch)
    member_a_never_answers(services, time)
    # WHEN the schedule invokes the scanner
    result = scanner({"action": "scan"}, services, time.context())
    # THEN Lambda did not end the run: member A was started only with time for its budget, one
    # bounded call on each of its endpoints and the report, and otherwise left for the next run
    # untouched
    target_a = target(result, MEMBER_A)
    if member_a_started:
        assert target_a["status"] == "scanned"
        assert HUNG_MEMBER_CALL_SECONDS < time.spent <= HUNG_ENDPOINTS_SECONDS
    else:
        assert target_a["status"] == "not_started"
        assert time.spent == 0
    assert result["not_started"][-1] == {"account_id": DENIED_MEMBER, "region": REGION}


def test_the_hung_endpoints_reserve_counts_every_member_service_the_checks_call() -> None:
    # GIVEN every check module loaded into the registry
    load_checks()

    # WHEN the member services its resource sources call are read off their API calls
    called = {call.split(":")[0] for source in registry.sources() for call in source.api_calls}

    # THEN they are the services the reserve for hung endpoints counts, one endpoint each
    assert called == MEMBER_SERVICES


def test_a_security_hub_that_never_answers_fails_each_target_in_time_and_the_report_is_written(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN one target at a time, members A and B each with an open bucket (findings to import),
    # the function's whole timeout, and the hub's Security Hub never answering BatchImportFindings
    monkeypatch.setenv("SCAN_MAX_WORKERS", "1")
    for account_id in (MEMBER_A, MEMBER_B):
        member_session(account_id).client("s3").create_bucket(
            Bucket=f"open-bucket-{account_id}",
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
    services = build_scanner_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    hung = hang_every_attempt(services.security_hub, "securityhub", "BatchImportFindings", time)
    # WHEN the schedule invokes the scanner
    result = scanner({"action": "scan"}, services, time.context())
    # THEN member A's import was given up after one bounded call and member B's was refused at
    # once: both targets failed naming the timeout, with their state unsaved for the next scan
    assert hung.attempts > 1
    assert time.spent <= SECURITY_HUB_CALL_SECONDS, time.spent
    target_a, target_b = target(result, MEMBER_A), target(result, MEMBER_B)
    assert (target_a["status"], target_b["status"]) == ("failed", "failed")
    assert "Read timeout" in target_a["error"]
    assert "not asked again" in target_b["error"]
    assert services.state.get_value(state_key(MEMBER_A, REGION), STATE_NAME) is None
    assert target(result, DENIED_MEMBER)["status"] == "denied"
    assert "not_started" not in result
    # AND the day's report was written
    assert result["report_key"].endswith("/findings.json")


def test_a_hung_sns_fails_the_scan_in_time_and_the_retry_announces_every_critical_finding_once(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN one target at a time, member A with 40 new critical findings (admin policies), SNS
    # never answering a Publish, and a scan whose first target starts with just its reserve left
    monkeypatch.setenv("SCAN_MAX_WORKERS", "1")
    iam = member_session(MEMBER_A).client("iam")
    policies = {
        iam.create_policy(PolicyName=f"admin-{number}", PolicyDocument=json.dumps(ADMIN_POLICY))[
            "Policy"
        ]["Arn"]
        for number in range(NEW_CRITICAL_FINDINGS)
    }
    services = build_scanner_services()
    time = LambdaTime(SCAN_TARGET_SECONDS + HUNG_ENDPOINTS_SECONDS + REPORT_SECONDS + 1)
    time.spend_botocore_waits(monkeypatch)
    hung = hang_every_attempt(services.hub_client("sns"), "sns", "Publish", time)
    # WHEN the schedule invokes the scanner
    with pytest.raises(AlertNotDeliveredError):
        scanner({"action": "scan"}, services, time.context())
    # THEN the scan failed in time (Lambda did not end it), after one bounded publish: SNS was
    # not asked again for the other alerts
    assert hung.attempts > 1
    assert time.spent <= HUB_CALL_SECONDS, time.spent
    # WHEN SNS answers again and the platform retries the scan
    fake_clock.advance(PLATFORM_RETRY_SECONDS)
    services.hub_client("sns").meta.events.unregister("before-send.sns.Publish", hung.hang)
    scanner({"action": "scan"}, services)
    # THEN every critical finding is announced, once
    alerted = [received.alert["resource"] for received in alert_inbox.receive()]
    assert sorted(alerted) == sorted(policies)


@pytest.mark.parametrize(
    ("seconds_beyond_the_target_reserve", "member_a_started"),
    [
        pytest.param(1, False, id="not-the-reports-time"),
        pytest.param(HUB_CALL_SECONDS + 1, True, id="the-reports-time"),
    ],
)
def test_a_target_that_uses_its_whole_reserve_leaves_the_report_its_time(  # noqa: PLR0917 - pytest passes fixtures positionally
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    write_inventory: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    seconds_beyond_the_target_reserve: int,
    member_a_started: bool,
) -> None:
    # GIVEN member A alone, whose scan takes its whole reserve (SCAN_TARGET_SECONDS and its
    # endpoints' HUNG_ENDPOINTS_SECONDS), an S3 that never answers the report's PutObject, and an
    # invocation with that reserve and `seconds_beyond_the_target_reserve` left
    write_inventory(MEMBER_A)
    services = build_scanner_services()
    target_reserve = SCAN_TARGET_SECONDS + HUNG_ENDPOINTS_SECONDS
    time = LambdaTime(target_reserve + seconds_beyond_the_target_reserve)
    time.spend_botocore_waits(monkeypatch)
    evaluate = scan.evaluate

    def evaluate_spending_the_reserve(*args: Any, **kwargs: Any) -> scan.Evaluation:
        time.spend(target_reserve)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(scan, "evaluate", evaluate_spending_the_reserve)
    hung = hang_every_attempt(services.s3, "s3", "PutObject", time)
    # WHEN the schedule invokes the scanner
    with pytest.raises(ReadTimeoutError):
        scanner({"action": "scan"}, services, time.context())
    # THEN Lambda did not end the run: the report's bounded PutObject failed it in time, member A
    # started only with time for its reserve and the report's, and otherwise left untouched
    assert hung.attempts > 0
    assert time.spent < time.seconds_left
    saved = services.state.get_value(state_key(MEMBER_A, REGION), STATE_NAME)
    assert (saved is not None) == member_a_started


SLOW_MEMBER_CALL_SECONDS = 24
"""How long each of member A's calls takes in `test_a_target_whose_reads_outlast_...`: answered,
but just within its bounds (HUNG_MEMBER_CALL_SECONDS), as a throttled or far endpoint answers."""
SLOW_QUEUES = 40
"""Member A's queues there: with one call each, more calls than 900 s hold at that pace."""
HOW_LEFT = ("read in part", "not read")


def test_a_target_whose_reads_outlast_the_invocation_stops_in_time_naming_the_types_left(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    write_inventory: Callable[..., dict[str, Any]],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN member A with an open bucket and 40 unencrypted queues, whose findings the last scan
    # found, and now every call of member A answering, but each only after 24 s
    write_inventory(MEMBER_A)
    session = member_session(MEMBER_A)
    session.client("s3").create_bucket(
        Bucket="member-a-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    sqs = session.client("sqs")
    for number in range(SLOW_QUEUES):
        sqs.create_queue(QueueName=f"plain-{number}", Attributes={"SqsManagedSseEnabled": "false"})
    request = {"action": "scan_target", "account_id": MEMBER_A, "region": REGION}
    first = scanner(request)
    assert first["targets"][0]["findings"] > SLOW_QUEUES
    services = build_scanner_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    services.sessions.session(MEMBER_A, REGION).events.register_first(
        "before-send", lambda **_: time.spend(SLOW_MEMBER_CALL_SECONDS)
    )
    # WHEN a scan_target request for member A (a queue message's body) has the whole timeout
    result = scanner(request, services, time.context())
    # THEN Lambda did not end the scan: member A stopped reading with time left to import, save
    # and report, and its result names each resource type it read in part or not at all (its
    # queues among them, too many to read at that pace), with the controls left unjudged
    assert time.spent < TIMEOUT_SECONDS
    [target_a] = result["targets"]
    assert target_a["status"] == "scanned"
    left = {error["resource_type"]: error["error"] for error in target_a["errors"]}
    assert "AwsSqsQueue" in left, target_a
    for resource_type, error in left.items():
        controls = ", ".join(check.control_id for check in registry.checks_for(resource_type))
        assert error in {f"{how}: {TIME_RAN_OUT} ({controls})" for how in HOW_LEFT}, error
    assert result["status"] == "partial"
    assert result["report_key"].endswith(f"/targets/{MEMBER_A}-{REGION}.json")
    # AND none of the findings of the types it left was resolved
    assert target_a["resolved"] == 0
    assert {f["RecordState"] for f in hub_findings().values()} == {"ACTIVE"}


ENDLESS_PAGE_SECONDS = 40.0
"""What each page of member A's endless ListFunctions spends of the invocation's time."""


@dataclass
class EndlessFunctionPages:
    """Answers every ListFunctions with a page of no function under a new marker each time (a
    proxy's, or a broken endpoint's: boto3's paginator refuses only a marker answered twice in a
    row), each page spending ENDLESS_PAGE_SECONDS of `time`."""

    time: LambdaTime
    pages: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.pages += 1
        self.time.spend(ENDLESS_PAGE_SECONDS)
        page = {"Functions": [], "NextMarker": f"marker-{self.pages}"}
        return answer_of(request.url, 200, {}, json.dumps(page).encode())


def test_a_target_whose_listing_never_ends_stops_before_a_page_past_its_time_and_reports(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    write_inventory: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN member A, whose Lambda answers every ListFunctions page with a next one under a new
    # marker, and a scan_target request for it (a queue message's body) with the whole timeout
    write_inventory(MEMBER_A)
    services = build_scanner_services()
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    endless = EndlessFunctionPages(time)
    member_lambda = "before-send.lambda.ListFunctions"
    services.sessions.session(MEMBER_A, REGION).events.register_first(member_lambda, endless)
    request = {"action": "scan_target", "account_id": MEMBER_A, "region": REGION}
    # WHEN the scanner is invoked
    result = scanner(request, services, time.context())
    # THEN Lambda did not end the scan: the listing stopped before a page the target's finishing
    # reserve had no room for, the target was scanned and reported, and its functions are named
    # read in part, with the controls left unjudged
    assert time.spent < TIMEOUT_SECONDS - scan.FINISH_SECONDS + ENDLESS_PAGE_SECONDS
    [target_a] = result["targets"]
    assert target_a["status"] == "scanned"
    left = {error["resource_type"]: error["error"] for error in target_a["errors"]}
    assert left["AwsLambdaFunction"] == f"read in part: {TIME_RAN_OUT} (Lambda.1, Lambda.2)"
    assert result["report_key"].endswith(f"/targets/{MEMBER_A}-{REGION}.json")
