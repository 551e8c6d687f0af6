"""The scheduled scan across member accounts: findings, Security Hub, report, alerts, resolution."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import boto3
import pytest

from fleet_shared.alert_delivery import AlertNotDeliveredError, claim_scope
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import InventoryUnreadableError
from fleet_shared.state_table import StateTable
from handlers.security_scanner import left_accounts, scan, scan_requests
from handlers.security_scanner.checks import compute
from handlers.security_scanner.left_accounts import (
    EARLIER_STATES_INDEXED,
    EARLIER_STATES_KEY,
    EARLIER_STATES_PROGRESS,
)
from handlers.security_scanner.saved_targets import SAVED_TARGETS_KEY
from handlers.security_scanner.scan import (
    GLOBAL_STATE_REGION,
    STATE_NAME,
    ScanServices,
    state_key,
    stored_state,
)
from tests.handlers.conftest import STATE_TABLE_NAME, FakeLambdaContext
from tests.handlers.deadlines import LambdaTime, killed_while_publishing_then_retried
from tests.handlers.faults import (
    InjectedFault,
    answer_malformed,
    fail_every_attempt,
    refuse_completions,
    s3_error_every_attempt,
)
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_A,
    MEMBER_B,
    REGION,
    fleet_inventory,
    member_session,
)
from tests.handlers.security_scanner.conftest import TIMEOUT_SECONDS
from tests.handlers.security_scanner.member_functions import (
    function_with_alias,
    member_a_functions,
    published_versions,
)
from tests.handlers.security_scanner.security_hub_limits import refuse_findings_over_the_limits
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

HUB = "123456789012"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


_SSH_FROM_ANYWHERE = [
    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
]


def _open_ssh_group(session: boto3.Session) -> str:
    ec2 = session.client("ec2")
    group_id = ec2.create_security_group(GroupName="open-ssh", Description="test")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=_SSH_FROM_ANYWHERE)
    return group_id


def _close_ssh(group_id: str) -> None:
    """Remove member A's group's SSH rule, which fixes its EC2.13 finding."""
    member_session(MEMBER_A).client("ec2").revoke_security_group_ingress(
        GroupId=group_id, IpPermissions=_SSH_FROM_ANYWHERE
    )


def _ssh_finding_fixed_since_a_scan(
    scans: Scans,
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> str:
    """The id of member A's open SSH finding, found by a scan now, its rule removed since."""
    scans.scan()
    ssh_id, _ = _ssh_finding(hub_findings())
    _close_ssh(member_a_with_violations["group_id"])
    return ssh_id


def _ssh_finding(findings: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The id and finding of the (first) open-SSH finding (control EC2.13)."""
    return next(
        (finding_id, finding)
        for finding_id, finding in findings.items()
        if finding["ProductFields"]["lambda-fleet/ControlId"] == "EC2.13"
    )


def _compliant_bucket(session: boto3.Session, name: str) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(
        Bucket=name,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )


def _target(result: dict[str, Any], account_id: str) -> dict[str, Any]:
    return next(t for t in result["targets"] if t["account_id"] == account_id)


@pytest.fixture
def member_a_with_violations() -> dict[str, str]:
    """Member A: an unprotected bucket, SSH open to the world and a full-admin policy."""
    session = member_session(MEMBER_A)
    session.client("s3").create_bucket(
        Bucket="member-a-open-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    group_id = _open_ssh_group(session)
    policy_arn = session.client("iam").create_policy(
        PolicyName="break-glass", PolicyDocument=json.dumps(ADMIN_POLICY)
    )["Policy"]["Arn"]
    return {"group_id": group_id, "policy_arn": policy_arn}


@dataclass
class Scans:
    """Scans of members A (with violations), B and a denied member by one set of services, built
    on first use (with the environment the test set by then) and kept, so a fault injected into
    one of its clients stays for the scans after."""

    scanner: Callable[..., dict[str, Any]]
    build_services: Callable[[], ScanServices]
    clock: ManualClock
    alert_inbox: Any
    admin_policy_arn: str

    @cached_property
    def services(self) -> ScanServices:
        return self.build_services()

    def scan(self, context: Any = None) -> dict[str, Any]:
        """The scheduled scan, now."""
        return self.scanner({"action": "scan"}, self.services, context)

    def retry(self) -> dict[str, Any]:
        """The platform's retry of a failed scan, a minute later."""
        self.clock.advance(60)
        return self.scan()

    def fail_every_publish(self, *, after: int = 0) -> InjectedFault:
        """SNS failing every attempt of Publish after the first `after`, until healed."""
        return fail_every_attempt(self.services.hub_client("sns"), "sns", "Publish", after=after)

    def next_scan(self) -> dict[str, Any]:
        """The scheduled scan 6 hours later."""
        self.clock.advance(6 * 3600)
        return self.scan()

    def alerted_resources(self) -> list[str]:
        """The resources of the alerts received since the last call, in order."""
        return [received.alert["resource"] for received in self.alert_inbox.receive()]

    def assert_the_next_scan_sends_nothing(self) -> None:
        self.next_scan()
        assert self.alert_inbox.receive() == []


@pytest.fixture
def scans(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    member_a_with_violations: dict[str, str],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> Scans:
    return Scans(
        scanner,
        build_scanner_services,
        fake_clock,
        alert_inbox,
        member_a_with_violations["policy_arn"],
    )


TARGET_SCAN_SECONDS = 850
"""What each target's scan spends of an invocation of `time_for_one_target`: less than a
target's start reserve is left after it."""


@pytest.fixture
def time_for_one_target(monkeypatch: pytest.MonkeyPatch) -> Callable[[], FakeLambdaContext]:
    """`time_for_one_target()`: a Lambda context with time for the first target only. Each
    starts with the function's whole timeout, and the first target scanned with the latest one
    spends TARGET_SCAN_SECONDS of its time once it ends."""
    times: list[LambdaTime] = []
    scan_target = scan.scan_target

    def scan_target_spending_its_time(*args: Any, **kwargs: Any) -> scan.TargetResult:
        try:
            return scan_target(*args, **kwargs)
        finally:
            if times and times[-1].spent == 0:
                times[-1].spend(TARGET_SCAN_SECONDS)

    monkeypatch.setattr(scan, "scan_target", scan_target_spending_its_time)

    def context() -> FakeLambdaContext:
        times.append(LambdaTime(TIMEOUT_SECONDS))
        return times[-1].context()

    return context


def test_scan_reports_each_members_findings_and_isolates_a_denied_account(
    scanner: Callable[[Any], dict[str, Any]],
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    alert_inbox: Any,
) -> None:
    # GIVEN member A with violations, member B with only a compliant bucket, and a third
    # member whose role cannot be assumed
    _compliant_bucket(member_session(MEMBER_B), "member-b-good-bucket")
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"})
    # THEN A's findings are reported against A, B has none, and the denied account is reported
    assert result["status"] == "partial"
    statuses = {t["account_id"]: t["status"] for t in result["targets"]}
    assert statuses == {MEMBER_A: "scanned", MEMBER_B: "scanned", DENIED_MEMBER: "denied"}
    assert _target(result, MEMBER_B)["findings"] == 0
    findings = hub_findings()
    controls_a = {f["ProductFields"]["lambda-fleet/ControlId"] for f in findings.values()}
    assert {"S3.8", "S3.4", "S3.5", "S3.14", "EC2.13", "IAM.1"} <= controls_a
    assert "EC2.14" not in controls_a
    assert all(
        f["ProductFields"]["lambda-fleet/MemberAccountId"] == MEMBER_A for f in findings.values()
    )
    # AND the ASFF names the hub's default product and the failing resource
    ssh = next(
        f for f in findings.values() if f["ProductFields"]["lambda-fleet/ControlId"] == "EC2.13"
    )
    assert ssh["ProductArn"] == f"arn:aws:securityhub:{REGION}:{HUB}:product/{HUB}/default"
    assert ssh["SchemaVersion"] == "2018-10-08"
    assert ssh["AwsAccountId"] == HUB
    assert ssh["Resources"][0]["Id"].endswith(member_a_with_violations["group_id"])
    assert ssh["Compliance"]["Status"] == "FAILED"
    assert ssh["RecordState"] == "ACTIVE"
    assert ssh["Workflow"]["Status"] == "NEW"
    assert ssh["Severity"]["Label"] == "HIGH"
    # AND the report in the data bucket holds the same findings and the denied target
    report = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket="lambda-fleet-data", Key=result["report_key"])["Body"]
        .read()
    )
    assert result["report_key"] == "reports/security/2025-06-02/findings.json"
    assert len(report["findings"]) == len(findings)
    denied = next(t for t in report["targets"] if t["account_id"] == DENIED_MEMBER)
    assert "AccessDenied" in denied["error"]
    # AND only the new critical finding (the admin policy) raised an alert
    alerts = alert_inbox.receive()
    assert [a.alert["resource"] for a in alerts] == [member_a_with_violations["policy_arn"]]
    assert alerts[0].attributes["severity"] == "critical"


def test_fixed_finding_is_resolved_and_known_findings_do_not_alert_again(
    scanner: Callable[[Any], dict[str, Any]],
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a first scan that found SSH open to the world
    first = scanner({"action": "scan"})
    alert_inbox.receive()
    ssh_id, _ = _ssh_finding(hub_findings())
    # WHEN the rule is removed and the next scan runs six hours later
    _close_ssh(member_a_with_violations["group_id"])
    fake_clock.advance(6 * 3600)
    second = scanner({"action": "scan"})
    # THEN the SSH finding is resolved in Security Hub and in the result, the others stay open
    assert second["resolved"] == 1
    assert second["new"] == 0
    assert second["findings"] == first["findings"] - 1
    resolved = hub_findings()[ssh_id]
    assert resolved["RecordState"] == "ARCHIVED"
    assert resolved["Compliance"]["Status"] == "PASSED"
    # AND the still-open critical finding keeps its first-seen time and raises no new alert
    admin = next(
        f
        for f in hub_findings().values()
        if f["ProductFields"]["lambda-fleet/ControlId"] == "IAM.1"
    )
    assert admin["FirstObservedAt"] == "2025-06-02T03:30:00.000Z"
    assert admin["UpdatedAt"] == "2025-06-02T09:30:00.000Z"
    assert alert_inbox.receive() == []


def test_a_new_critical_finding_whose_alert_failed_is_announced_once_by_the_next_scan(
    scans: Scans,
) -> None:
    # GIVEN member A with a new critical finding (an admin policy) and SNS failing every attempt
    fault = scans.fail_every_publish()
    # WHEN the schedule runs the scan THEN the invocation fails, so the platform retries it
    with pytest.raises(AlertNotDeliveredError):
        scans.scan()
    assert scans.alert_inbox.receive() == []
    # WHEN the scan runs again with SNS healthy (the finding is no longer new by then)
    fault.healed = True
    retried = scans.retry()
    # THEN the alert kept in the outbox goes out, exactly once
    assert retried["new"] == 0
    alerts = scans.alert_inbox.receive()
    assert [a.alert["resource"] for a in alerts] == [scans.admin_policy_arn]
    assert alerts[0].attributes["severity"] == "critical"
    # AND the next scan sends nothing more
    scans.assert_the_next_scan_sends_nothing()


def test_a_finding_whose_delivery_claim_was_not_completed_is_not_announced_again(
    scans: Scans,
) -> None:
    # GIVEN member A with a new critical finding, and the state table refusing (every attempt)
    # to complete the delivery claim of its alert once SNS took it
    refused = refuse_completions(
        scans.services.hub_client("dynamodb"), claim_scope("security_scanner")
    )
    # WHEN the schedule runs the scan, then the state table answers again, and the next scan
    # comes 6 hours later
    scans.scan()
    refused.healed = True
    scans.next_scan()
    # THEN the alert SNS took counted as sent (its outbox emptied), and the next scan sends it no
    # second time: one copy reached the topic (a second one, 6 hours on, would be past the
    # notification router's dedup window and reach every channel again)
    assert refused.attempts > 1
    assert scans.alerted_resources() == [scans.admin_policy_arn]


def test_a_scan_killed_while_sns_hangs_is_announced_once_by_the_platforms_retry(
    scans: Scans, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN member A with a new critical finding (an admin policy), and a scan that starts a
    # target with 30 s left (so the killed scan, 45 s from its deadline, gets to its alert), its
    # member endpoints and S3 answering (their bounds when they hang are not at stake here)
    monkeypatch.setenv("SCAN_TARGET_SECONDS", "30")
    monkeypatch.setattr(scan_requests, "HUNG_ENDPOINTS_SECONDS", 0)
    monkeypatch.setattr(scan_requests, "REPORT_SECONDS", 0)
    monkeypatch.setattr(scan, "FINISH_SECONDS", 0)
    # WHEN SNS never answers the scan's Publish, so Lambda kills the scan at its deadline, and
    # retries it a minute later
    retried = killed_while_publishing_then_retried(
        scans.services.hub_client("sns"), scans.clock, scans.scan
    )
    # THEN the retry is not refused by the killed scan's claim: the alert kept in the outbox
    # goes out, once
    assert retried["new"] == 0
    assert scans.alerted_resources() == [scans.admin_policy_arn]


@pytest.mark.parametrize(
    "event",
    [
        {"action": "scan", "dry_run": True},
        {"action": "scan_target", "account_id": MEMBER_A, "region": REGION, "dry_run": True},
    ],
    ids=["scan", "scan-target"],
)
def test_dry_run_evaluates_but_writes_nothing(  # noqa: PLR0917
    scanner: Callable[[Any], dict[str, Any]],
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    alert_inbox: Any,
    dynamodb_client: Any,
    event: dict[str, Any],
) -> None:
    # GIVEN violations in member A, and the state table's items
    state_before = dynamodb_client.scan(TableName=STATE_TABLE_NAME)["Items"]
    # WHEN a dry-run scan of the fleet, or of member A alone, runs
    result = scanner(event)
    # THEN findings are counted but nothing reaches Security Hub, the bucket, the alert topics
    # or the state table (not even the search for earlier versions' states)
    assert result["findings"] > 0
    assert dynamodb_client.scan(TableName=STATE_TABLE_NAME)["Items"] == state_before
    assert "report_key" not in result
    assert hub_findings() == {}
    assert alert_inbox.receive() == []
    listing = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket="lambda-fleet-data", Prefix="reports/"
    )
    assert listing.get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"action": "scan", "dry_run": "yes"}, "dry_run"),
        ({"action": "scan_target", "account_id": "12", "region": REGION}, "account_id"),
        ({"action": "scan_target", "account_id": MEMBER_A, "region": "mars"}, "region"),
        (["scan"], "event"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    scanner: Callable[[Any], dict[str, Any]],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    event: Any,
    field: str,
) -> None:
    # GIVEN a malformed request WHEN it is handled
    result = scanner(event)
    # THEN it is refused with the field named, and nothing was written
    assert result["status"] == "error"
    assert f"invalid event: {field}" in result["error"]
    assert hub_findings() == {}


def test_target_outside_the_inventory_is_refused(
    scanner: Callable[[Any], dict[str, Any]], hub_findings: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    # GIVEN an account the fleet does not manage WHEN a scan of it is requested
    result = scanner({"action": "scan_target", "account_id": "999999999999", "region": REGION})
    # THEN it is refused: the scanner never assumes roles outside its inventory
    assert result["status"] == "error"
    assert "999999999999" in result["error"]
    assert hub_findings() == {}


def test_scan_report_is_dated_by_the_day_in_the_schedule_time_zone(
    scanner: Callable[[Any], dict[str, Any]],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a stack scheduled in Asia/Kolkata and a scan at 23:30 UTC on Monday, which is
    # 05:00 on Tuesday there
    monkeypatch.setenv("SCHEDULE_TIME_ZONE", "Asia/Kolkata")
    fake_clock.set(datetime(2025, 6, 2, 23, 30, tzinfo=UTC))
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"})
    # THEN its report is filed under Tuesday, the owner's day, not the UTC day
    assert result["report_key"] == "reports/security/2025-06-03/findings.json"


TLS_DENIAL_WITHOUT_ITS_KEYS = {
    "Statement": {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::member-b-good-bucket", "arn:aws:s3:::member-b-good-bucket/*"],
        "Condition": {"Bool": "aws:SecureTransport=false"},
    }
}
"""A bucket policy whose TLS denial has a condition operator that is text, not an object of
condition keys: JSON, but not shaped as a policy (S3 would refuse to store it)."""


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        (b"<not json", "JSONDecodeError"),
        (
            json.dumps(TLS_DENIAL_WITHOUT_ITS_KEYS).encode(),
            "ValueError: policy document's Statement.Condition.Bool is not an object",
        ),
    ],
    ids=["not-json", "condition-operator-no-object"],
)
def test_a_bucket_policy_that_is_no_policy_fails_that_bucket_and_the_scan_goes_on(  # noqa: PLR0917
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    policy: bytes,
    error: str,
) -> None:
    # GIVEN member B's bucket, whose GetBucketPolicy answers a body that is not JSON, or JSON
    # shaped otherwise than a policy (botocore hands it on unchecked)
    _compliant_bucket(member_session(MEMBER_B), "member-b-good-bucket")
    services = build_scanner_services()
    answer_malformed(
        services.member_client("s3", MEMBER_B, REGION), "s3", "GetBucketPolicy", policy
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN member B's bucket is reported as unreadable and every target still finished
    statuses = {t["account_id"]: t["status"] for t in result["targets"]}
    assert statuses == {MEMBER_A: "scanned", MEMBER_B: "scanned", DENIED_MEMBER: "denied"}
    errors = _target(result, MEMBER_B)["errors"]
    assert [reported["resource"] for reported in errors] == ["arn:aws:s3:::member-b-good-bucket"]
    assert error in errors[0]["error"]
    # AND member A's findings reached Security Hub and the report was written
    assert any(
        f["ProductFields"]["lambda-fleet/MemberAccountId"] == MEMBER_A
        for f in hub_findings().values()
    )
    assert result["report_key"] == "reports/security/2025-06-02/findings.json"


def test_a_target_scanned_with_an_unreadable_resource_makes_the_scan_partial(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
) -> None:
    # GIVEN member B's bucket, whose GetBucketPolicy answers a body that is not a JSON policy
    _compliant_bucket(member_session(MEMBER_B), "member-b-good-bucket")
    services = build_scanner_services()
    answer_malformed(
        services.member_client("s3", MEMBER_B, REGION), "s3", "GetBucketPolicy", b"<not json"
    )
    # WHEN member B is scanned
    result = scanner({"action": "scan_target", "account_id": MEMBER_B, "region": REGION}, services)
    # THEN the target is scanned but the scan as a whole says it is incomplete
    assert result["targets"][0]["status"] == "scanned"
    assert result["targets"][0]["errors"]
    assert result["status"] == "partial"


def test_a_global_finding_keeps_its_id_and_alert_when_the_accounts_first_region_changes(
    scanner: Callable[[Any], dict[str, Any]],
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A in two regions, REGION first, whose admin policy (IAM, a global service,
    # scanned from the first region only) was found and alerted
    other_region = "eu-west-1"

    def member_a_in(*regions: str) -> None:
        document = fleet_inventory(MEMBER_A)
        document["members"][0]["regions"] = list(regions)
        boto3.client("s3", region_name=REGION).put_object(
            Bucket="lambda-fleet-data",
            Key="config/fleet-inventory.json",
            Body=json.dumps(document).encode("utf-8"),
        )

    def admin_findings() -> dict[str, dict[str, Any]]:
        return {
            fid: f
            for fid, f in hub_findings().items()
            if f["ProductFields"]["lambda-fleet/ControlId"] == "IAM.1"
        }

    member_a_in(REGION, other_region)
    scanner({"action": "scan"})
    [first_alert] = alert_inbox.receive()
    [admin_id] = admin_findings()
    # WHEN the stack file lists the other region first and the next scan runs
    member_a_in(other_region, REGION)
    fake_clock.advance(6 * 3600)
    second = scanner({"action": "scan"})
    # THEN the admin policy is the same finding, still open, and not alerted again
    assert second["new"] == 0
    assert second["resolved"] == 0
    assert list(admin_findings()) == [admin_id]
    assert admin_findings()[admin_id]["RecordState"] == "ACTIVE"
    assert alert_inbox.receive() == []
    # WHEN the policy is deleted and the next scan runs THEN that finding is resolved
    member_session(MEMBER_A).client("iam").delete_policy(
        PolicyArn=member_a_with_violations["policy_arn"]
    )
    fake_clock.advance(6 * 3600)
    third = scanner({"action": "scan"})
    assert third["resolved"] == 1
    assert admin_findings()[admin_id]["RecordState"] == "ARCHIVED"
    assert first_alert.alert["resource"] == member_a_with_violations["policy_arn"]


def test_global_findings_kept_with_the_first_regions_by_an_earlier_version_are_taken_over(
    scanner: Callable[[Any], dict[str, Any]],
    member_a_with_violations: dict[str, str],
    state_table: StateTable,
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a scan whose state is then put back the way an earlier version kept it: the
    # admin policy's finding (IAM) among the first region's, and nothing under the account
    scanner({"action": "scan"})
    alert_inbox.receive()
    global_key = state_key(MEMBER_A, GLOBAL_STATE_REGION)
    regional_key = state_key(MEMBER_A, REGION)
    global_findings = stored_state(state_table.get_value(global_key, STATE_NAME))["findings"]
    regional = stored_state(state_table.get_value(regional_key, STATE_NAME))
    regional["findings"] |= global_findings
    state_table.put_value(regional_key, STATE_NAME, regional)
    boto3.client("dynamodb", region_name=REGION).delete_item(
        TableName=state_table.table_name,
        Key={"pk": {"S": f"STATE#{global_key}"}, "sk": {"S": f"VALUE#{STATE_NAME}"}},
    )
    # WHEN the next scan runs
    fake_clock.advance(6 * 3600)
    second = scanner({"action": "scan"})
    # THEN the admin policy is neither new nor resolved, nor alerted again, and its finding is
    # now kept under the account
    assert (second["new"], second["resolved"]) == (0, 0)
    assert alert_inbox.receive() == []
    assert stored_state(state_table.get_value(global_key, STATE_NAME))["findings"].keys() == (
        global_findings.keys()
    )
    regional_now = stored_state(state_table.get_value(regional_key, STATE_NAME))
    assert not global_findings.keys() & regional_now["findings"]
    assert any(
        finding["resource_arn"] == member_a_with_violations["policy_arn"]
        for finding in global_findings.values()
    )


def fail_every_write_of_the_state(scans: Scans, region: str, *, after: int = 0) -> InjectedFault:
    """Fail every attempt (after the first `after`) of a state table PutItem of member A's
    state of `region`, as a throttled or unreachable table does; other writes go through."""
    return fail_every_attempt(
        scans.services.hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        after=after,
        body_with=(f"STATE#{state_key(MEMBER_A, region)}".encode(),),
    )


@pytest.mark.parametrize("failing_region", [REGION, GLOBAL_STATE_REGION])
def test_a_new_critical_global_finding_is_alerted_once_when_saving_the_state_failed(
    failing_region: str, scans: Scans
) -> None:
    # GIVEN member A's new admin policy (IAM.1, critical, kept under the account) and the state
    # table failing every write of member A's regional state (the one holding the outbox) or of
    # its account-wide state (the one remembering IAM findings)
    fault = fail_every_write_of_the_state(scans, failing_region)
    # WHEN the schedule runs the scan THEN member A's target fails and nothing was alerted
    first = scans.scan()
    assert fault.attempts > 0
    assert _target(first, MEMBER_A)["status"] == "failed"
    assert scans.alert_inbox.receive() == []
    # WHEN the table is healthy again and the next scan runs
    fault.healed = True
    scans.next_scan()
    # THEN the admin policy's alert goes out, once
    assert scans.alerted_resources() == [scans.admin_policy_arn]
    # AND the scan after that sends nothing more
    scans.assert_the_next_scan_sends_nothing()


def test_two_scans_of_a_target_at_once_alert_a_new_critical_finding_once(
    scans: Scans, scanner: Callable[..., dict[str, Any]]
) -> None:
    # GIVEN member A's new admin policy, and a second scan of member A (a scan_target request,
    # a minute later) that reads the target's state while the schedule's scan imports its
    # findings into Security Hub and saves its state only once that scan has finished
    scan_of_member_a = {"action": "scan_target", "account_id": MEMBER_A, "region": REGION}
    second_scan: dict[str, Any] = {}

    def scan_member_a_meanwhile(**_: Any) -> None:
        if second_scan:
            return
        scans.clock.advance(60)
        second_scan.update(scanner(scan_of_member_a))

    scans.services.security_hub.meta.events.register_first(
        "before-send.securityhub.BatchImportFindings", scan_member_a_meanwhile
    )
    # WHEN the schedule's scan runs
    first_scan = scanner(scan_of_member_a, scans.services)
    # THEN the admin policy is alerted once between the two
    assert second_scan["new"] > 0
    assert scans.alerted_resources() == [scans.admin_policy_arn]
    # AND the scan that saved second reports the target failed, saying why
    assert first_scan["targets"][0]["status"] == "failed"
    assert "another scan of this target" in first_scan["targets"][0]["error"]
    # AND the next scan sends nothing more, and leaves nothing waiting in the outbox
    scans.clock.advance(6 * 3600)
    scanner({"action": "scan"})
    assert scans.alert_inbox.receive() == []
    assert_nothing_waits_in_member_as_outbox(scans)


def test_a_resource_type_that_cannot_be_listed_leaves_its_open_findings_open(
    scans: Scans,
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    # GIVEN a first scan that found member A's security group open to SSH
    # WHEN the rule is removed but the next scan cannot list member A's security groups (every
    # attempt fails, botocore's retries included)
    ssh_id = _ssh_finding_fixed_since_a_scan(scans, member_a_with_violations, hub_findings)
    fault = fail_every_attempt(
        scans.services.member_client("ec2", MEMBER_A, REGION), "ec2", "DescribeSecurityGroups"
    )
    unlisted = scans.next_scan()
    # THEN the resource type is reported, the other types and targets are scanned, and the
    # finding stays open: an unreadable type never passes for a fix
    assert fault.attempts > 1
    assert unlisted["status"] == "partial"
    target = _target(unlisted, MEMBER_A)
    assert target["status"] == "scanned"
    assert [error["resource_type"] for error in target["errors"]] == ["AwsEc2SecurityGroup"]
    assert (target["resolved"], target["findings"] > 0) == (0, True)
    assert _target(unlisted, MEMBER_B)["status"] == "scanned"
    assert hub_findings()[ssh_id]["RecordState"] == "ACTIVE"
    # WHEN the next scan can list them again THEN the finding is resolved
    fault.healed = True
    healed = scans.next_scan()
    assert _target(healed, MEMBER_A)["resolved"] == 1
    assert hub_findings()[ssh_id]["RecordState"] == "ARCHIVED"


_STATE_SECRET = "i-0secret0secret0"
"""In every unreadable saved state below: a result or log repeating it repeated the state."""


def _compressed(state: Any) -> dict[str, str]:
    """`state` as the scan saves it (JSON, zlib, base64)."""
    text = json.dumps(state).encode("utf-8")
    return {"compressed": base64.b64encode(zlib.compress(text)).decode("ascii")}


def _record(**fields: Any) -> dict[str, Any]:
    """A saved finding record of member A with every field this version saves, `fields` in
    place of the stored ones (the record's detail is the secret no result may repeat)."""
    return {
        "control_id": "S3.8",
        "title": "S3 general purpose buckets should block public access",
        "severity": "HIGH",
        "resource_arn": "arn:aws:s3:::gone-bucket",
        "resource_type": "AwsS3Bucket",
        "account_id": MEMBER_A,
        "region": REGION,
        "remediation": "Turn on Block Public Access.",
        "detail": _STATE_SECRET,
        "first_seen": "2025-06-01T03:30:00.000Z",
        "status": "FAILED",
        **fields,
    }


UNREADABLE_STATES: dict[str, tuple[str, dict[str, Any], str]] = {
    "not-compressed-json": (
        REGION,
        {"compressed": f"%%{_STATE_SECRET}%%"},
        "it is not compressed JSON",
    ),
    "findings-not-a-map": (REGION, _compressed({"findings": [_STATE_SECRET]}), "it holds no map"),
    "record-of-another-format": (
        REGION,
        _compressed({"findings": {"lambda-fleet/x": {"control_id": _STATE_SECRET}}}),
        "a finding record is not one this version reads",
    ),
    "record-with-a-number-for-its-resource": (
        REGION,
        _compressed({"findings": {"lambda-fleet/x": _record(resource_arn=12)}}),
        "a finding record is not one this version reads",
    ),
    "record-first-seen-past-the-calendar": (
        REGION,
        _compressed(
            {"findings": {"lambda-fleet/x": _record(first_seen="9999-12-31T23:59:59-14:00")}}
        ),
        "a finding record is not one this version reads",
    ),
    "outbox-not-alerts": (
        REGION,
        _compressed({"findings": {}, "outbox": [{"title": _STATE_SECRET}]}),
        "an alert of its outbox is not an alert",
    ),
    "global-not-compressed-json": (
        GLOBAL_STATE_REGION,
        {"compressed": f"%%{_STATE_SECRET}%%"},
        "it is not compressed JSON",
    ),
}
"""By test id: the region part of member A's state key, its unreadable value, the problem."""


@pytest.mark.parametrize(
    ("state_region", "unreadable", "problem"),
    UNREADABLE_STATES.values(),
    ids=UNREADABLE_STATES.keys(),
)
def test_a_targets_saved_findings_that_cannot_be_read_fail_that_target_alone(  # noqa: PLR0917 - pytest passes fixtures positionally
    scans: Scans,
    state_table: StateTable,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    state_region: str,
    unreadable: dict[str, Any],
    problem: str,
) -> None:
    # GIVEN a first scan of members A and B, then member A's saved findings (of its region, or
    # of its account's global services) made unreadable: corruption, a hand edit, the format of
    # another version
    scans.scan()
    scans.alerted_resources()
    imported = {fid: f["UpdatedAt"] for fid, f in hub_findings().items()}
    key = state_key(MEMBER_A, state_region)
    state_table.put_value(key, STATE_NAME, unreadable)
    # WHEN the next scan runs
    result = scans.next_scan()
    # THEN member A alone fails, naming the state and what is wrong with it, never its content,
    # instead of an exception ending the scan of every target and its report
    target_a = _target(result, MEMBER_A)
    assert target_a["status"] == "failed"
    assert key in target_a["error"]
    assert problem in target_a["error"]
    assert _STATE_SECRET not in json.dumps(result)
    # AND member B is scanned and the run's report is written
    assert _target(result, MEMBER_B)["status"] == "scanned"
    assert result["status"] == "partial"
    assert result["report_key"].endswith("findings.json")
    # AND nothing of member A changed: its state is as it was, no finding was imported again
    # (none taken for new, none resolved), no alert sent
    assert state_table.get_value(key, STATE_NAME) == unreadable
    updated = {fid: f["UpdatedAt"] for fid, f in hub_findings().items()}
    member_a = [fid for fid in imported if f"/{MEMBER_A}/" in fid]
    assert member_a
    assert {fid: updated[fid] for fid in member_a} == {fid: imported[fid] for fid in member_a}
    assert scans.alerted_resources() == []


def test_a_target_with_hundreds_of_findings_is_remembered_and_its_critical_one_alerted(
    scanner: Callable[..., dict[str, Any]],
    member_a_with_violations: dict[str, str],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN member A with a new admin policy (critical) and 650 topics not encrypted at rest:
    # its open findings take more than a DynamoDB item's 400 KB written out in full
    sns = member_session(MEMBER_A).client("sns")
    for number in range(650):
        sns.create_topic(Name=f"team-{number:04d}-notifications")
    # WHEN the schedule runs the scan
    first = scanner({"action": "scan"})
    # THEN member A is scanned, its findings remembered, and the admin policy alerted
    target = _target(first, MEMBER_A)
    assert (target["status"], target.get("error")) == ("scanned", None)
    assert target["by_severity"]["MEDIUM"] >= 650
    alerts = alert_inbox.receive()
    assert [a.alert["resource"] for a in alerts] == [member_a_with_violations["policy_arn"]]
    # AND the next scan knows them all: nothing new, nothing resolved, nothing alerted
    fake_clock.advance(6 * 3600)
    second = _target(scanner({"action": "scan"}), MEMBER_A)
    assert (second["status"], second["new"], second["resolved"]) == ("scanned", 0, 0)
    assert alert_inbox.receive() == []


def assert_nothing_waits_in_member_as_outbox(scans: Scans) -> None:
    saved = scans.services.state.get_value(state_key(MEMBER_A, REGION), STATE_NAME)
    assert stored_state(saved)["outbox"] == []


def test_a_critical_alert_sent_before_its_outbox_could_be_emptied_is_not_sent_again(
    scans: Scans,
) -> None:
    # GIVEN member A's new admin policy, and the state table failing every write of member A's
    # state after the first (the one saving the findings and the outbox)
    fault = fail_every_write_of_the_state(scans, REGION, after=1)
    # WHEN the schedule runs the scan THEN the alert goes out, but emptying the outbox fails
    first = scans.scan()
    assert fault.attempts > 0
    assert _target(first, MEMBER_A)["status"] == "failed"
    assert scans.alerted_resources() == [scans.admin_policy_arn]
    # WHEN the next scan runs with the table healthy THEN the alert is not sent again
    fault.healed = True
    second = scans.next_scan()
    assert _target(second, MEMBER_A)["status"] == "scanned"
    assert scans.alert_inbox.receive() == []
    assert_nothing_waits_in_member_as_outbox(scans)


def test_sns_failing_after_a_scans_first_critical_alert_repeats_only_the_others(
    scans: Scans,
) -> None:
    # GIVEN member A with two new critical findings (an admin policy and a security group
    # open on every port), and SNS failing after the scan's first alert went out
    ec2 = member_session(MEMBER_A).client("ec2")
    group_id = ec2.create_security_group(GroupName="open-all", Description="test")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    fault = scans.fail_every_publish(after=1)
    # WHEN the schedule runs the scan THEN it fails after one alert went out
    with pytest.raises(AlertNotDeliveredError):
        scans.scan()
    assert fault.attempts > 1
    [first_alert] = scans.alerted_resources()
    # WHEN the retry runs with SNS healthy THEN only the other alert goes out
    fault.healed = True
    scans.retry()
    [second_alert] = scans.alerted_resources()
    sent = {first_alert, second_alert}
    assert scans.admin_policy_arn in sent
    assert any(resource.endswith(group_id) for resource in sent)
    # AND the next scan sends nothing more
    scans.assert_the_next_scan_sends_nothing()


def test_a_finding_on_a_role_with_the_longest_iam_path_is_imported_within_security_hubs_limits(
    scans: Scans, hub_findings: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    # GIVEN member A with a role whose path (512 characters) and name (64) are the longest IAM
    # allows, with an inline admin policy (critical), beside A's other violations
    iam = member_session(MEMBER_A).client("iam")
    path = "/" + "platform-team/" * 36 + "x" * 6 + "/"
    role_arn = iam.create_role(
        RoleName="r" * 64, Path=path, AssumeRolePolicyDocument=json.dumps(ADMIN_POLICY)
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="r" * 64, PolicyName="admin", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    assert len(path) == 512
    # AND Security Hub refusing, as the real one does, findings over its published limits
    enforcement = refuse_findings_over_the_limits(scans.services.security_hub)
    # WHEN the schedule runs the scan
    first = scans.scan()
    # THEN every finding is accepted and member A's scan completes
    assert enforcement.refused == []
    assert _target(first, MEMBER_A)["status"] == "scanned"
    role_finding = next(f for f in hub_findings().values() if f["Resources"][0]["Id"] == role_arn)
    assert role_finding["Compliance"]["Status"] == "FAILED"
    # AND both critical findings are alerted, the role's naming the role
    assert sorted(scans.alerted_resources()) == sorted([scans.admin_policy_arn, role_arn])
    # AND a finding whose id fits keeps the id earlier scans gave it
    ssh_arn = _ssh_finding(hub_findings())[1]["Resources"][0]["Id"]
    assert f"lambda-fleet/{MEMBER_A}/{REGION}/EC2.13/{ssh_arn}" in hub_findings()
    # WHEN the inline policy is removed and the next scan runs
    iam.delete_role_policy(RoleName="r" * 64, PolicyName="admin")
    second = scans.next_scan()
    # THEN the same Security Hub finding is archived, and nothing is alerted
    assert enforcement.refused == []
    assert _target(second, MEMBER_A)["resolved"] == 1
    assert hub_findings()[role_finding["Id"]]["RecordState"] == "ARCHIVED"
    assert scans.alert_inbox.receive() == []


def test_a_direct_scan_running_out_of_time_stops_and_the_next_run_starts_with_what_it_left(  # noqa: PLR0917 - pytest passes fixtures positionally
    scanner: Callable[..., dict[str, Any]],
    member_a_with_violations: dict[str, str],
    alert_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    time_for_one_target: Callable[[], FakeLambdaContext],
) -> None:
    # GIVEN one target at a time, a new admin policy (critical) in member A and another in
    # member B, and an invocation with time for its first target only
    monkeypatch.setenv("SCAN_MAX_WORKERS", "1")
    policy_b = (
        member_session(MEMBER_B)
        .client("iam")
        .create_policy(PolicyName="break-glass-b", PolicyDocument=json.dumps(ADMIN_POLICY))[
            "Policy"
        ]["Arn"]
    )
    # WHEN the schedule runs the scan
    first = scanner({"action": "scan"}, context=time_for_one_target())
    # THEN member A is scanned and alerted; B and the denied member are not started, named as
    # left for the next run, in the result and in the report
    assert first["status"] == "partial"
    assert first["not_started"] == [
        {"account_id": MEMBER_B, "region": REGION},
        {"account_id": DENIED_MEMBER, "region": REGION},
    ]
    assert _target(first, MEMBER_A)["status"] == "scanned"
    assert _target(first, MEMBER_B)["status"] == "not_started"
    report = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket="lambda-fleet-data", Key=first["report_key"])["Body"]
        .read()
    )
    assert _target(report, MEMBER_B)["status"] == "not_started"
    assert [a.alert["resource"] for a in alert_inbox.receive()] == [
        member_a_with_violations["policy_arn"]
    ]
    # WHEN the next run again has time for one target only
    fake_clock.advance(6 * 3600)
    second = scanner({"action": "scan"}, context=time_for_one_target())
    # THEN it starts with member B, whose critical finding is alerted, and leaves the others
    assert _target(second, MEMBER_B)["status"] == "scanned"
    assert second["not_started"] == [
        {"account_id": MEMBER_A, "region": REGION},
        {"account_id": DENIED_MEMBER, "region": REGION},
    ]
    assert [a.alert["resource"] for a in alert_inbox.receive()] == [policy_b]
    # WHEN a run has time for every target
    fake_clock.advance(6 * 3600)
    third = scanner({"action": "scan"})
    # THEN every target is reached, nothing is new and nothing is alerted twice
    assert "not_started" not in third
    assert {t["status"] for t in third["targets"]} == {"scanned", "denied"}
    assert third["new"] == 0
    assert alert_inbox.receive() == []


def test_the_targets_a_direct_scan_left_take_turns_so_none_is_left_run_after_run(
    scanner: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    time_for_one_target: Callable[[], FakeLambdaContext],
) -> None:
    # GIVEN one target at a time (members A, B and the denied member, in that inventory order)
    monkeypatch.setenv("SCAN_MAX_WORKERS", "1")

    def scan_with_time_for_one_target() -> list[str]:
        result = scanner({"action": "scan"}, context=time_for_one_target())
        return [t["account_id"] for t in result["targets"] if t["status"] != "not_started"]

    # WHEN three scans in a row each have time for one target only
    reached = [scan_with_time_for_one_target() for _ in range(3)]
    # THEN each reaches a target the runs before it did not: the denied member, last in the
    # inventory and left twice, goes first in the third run (not member A again)
    assert reached == [[MEMBER_A], [MEMBER_B], [DENIED_MEMBER]]


def test_a_direct_scan_whose_list_of_targets_left_cannot_be_read_or_saved_still_scans_and_reports(
    scans: Scans,
) -> None:
    # GIVEN the state table failing every attempt to read or save the targets the last direct
    # scan left (its other items answer)
    faults = [
        fail_every_attempt(
            scans.services.hub_client("dynamodb"),
            "dynamodb",
            operation,
            body_with=(b"security_scanner/direct-scan",),
        )
        for operation in ("GetItem", "PutItem")
    ]
    # WHEN the schedule runs a direct scan
    result = scans.scan()
    # THEN the list only orders the scan: every target is scanned in inventory order, member A's
    # admin policy is alerted and the day's report is written
    assert sum(fault.attempts for fault in faults) > 0
    assert [(t["account_id"], t["status"]) for t in result["targets"]] == [
        (MEMBER_A, "scanned"),
        (MEMBER_B, "scanned"),
        (DENIED_MEMBER, "denied"),
    ]
    assert scans.alerted_resources() == [scans.admin_policy_arn]
    report = boto3.client("s3", region_name=REGION).get_object(
        Bucket="lambda-fleet-data", Key=result["report_key"]
    )
    assert json.loads(report["Body"].read())["targets"] == result["targets"]


def test_the_targets_left_as_saved_before_a_deploy_still_go_first_after_it(
    scanner: Callable[..., dict[str, Any]],
    state_table: StateTable,
    monkeypatch: pytest.MonkeyPatch,
    time_for_one_target: Callable[[], FakeLambdaContext],
) -> None:
    # GIVEN one target at a time, and the denied member left by a direct scan of the code
    # deployed before, under its key and in its shape (account and region under `targets`)
    monkeypatch.setenv("SCAN_MAX_WORKERS", "1")
    state_table.put_value(
        "security_scanner/direct-scan",
        "not_started",
        {"targets": [{"account_id": DENIED_MEMBER, "region": REGION}]},
    )
    # WHEN the next scan has time for one target only
    result = scanner({"action": "scan"}, context=time_for_one_target())
    # THEN it reaches the denied member first, and saves the others in the same shape
    assert _target(result, DENIED_MEMBER)["status"] == "denied"
    assert state_table.get_value("security_scanner/direct-scan", "not_started") == {
        "targets": [
            {"account_id": MEMBER_A, "region": REGION},
            {"account_id": MEMBER_B, "region": REGION},
        ]
    }


@pytest.mark.parametrize(
    ("scanned_at", "failing"),
    [(datetime(2026, 6, 29, 12, tzinfo=UTC), []), (datetime(2026, 7, 1, 12, tzinfo=UTC), ["etl"])],
    ids=["day-before-end-of-support", "after-end-of-support"],
)
def test_a_function_fails_lambda_2_once_its_runtime_reached_end_of_support(
    scanner: Callable[..., dict[str, Any]],
    fake_clock: ManualClock,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    scanned_at: datetime,
    failing: list[str],
) -> None:
    # GIVEN member A's function on python3.11, whose end of support in Lambda begins on
    # 2026-06-30, and one on python3.13
    session = member_session(MEMBER_A)
    role = session.client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    for name, runtime in (("etl", "python3.11"), ("api", "python3.13")):
        session.client("lambda").create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
    fake_clock.set(scanned_at)
    # WHEN member A is scanned
    scanner({"action": "scan_target", "account_id": MEMBER_A, "region": REGION})
    # THEN Lambda.2 fails for the function on python3.11 from that day on, never for the other
    lambda_2 = [
        finding["Resources"][0]["Id"].rsplit(":", 1)[-1]
        for finding in hub_findings().values()
        if finding["ProductFields"]["lambda-fleet/ControlId"] == "Lambda.2"
    ]
    assert lambda_2 == failing


def test_buckets_in_regions_outside_the_members_are_reported_not_scanned_once_per_account(
    scanner: Callable[[Any], dict[str, Any]],
    write_inventory: Callable[..., dict[str, Any]],
) -> None:
    # GIVEN member A in REGION and eu-west-1, with an open bucket in each, and two open buckets
    # in eu-north-1 and us-east-2, regions no target of the scan covers
    document = write_inventory(MEMBER_A)
    document["members"][0]["regions"] = [REGION, "eu-west-1"]
    boto3.client("s3", region_name=REGION).put_object(
        Bucket="lambda-fleet-data",
        Key="config/fleet-inventory.json",
        Body=json.dumps(document).encode("utf-8"),
    )
    for region in (REGION, "eu-west-1", "eu-north-1", "us-east-2"):
        member_session(MEMBER_A, region).client("s3").create_bucket(
            Bucket=f"member-a-{region}", CreateBucketConfiguration={"LocationConstraint": region}
        )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"})
    # THEN each member region's bucket is scanned by its own target only
    by_region = {target["region"]: target for target in result["targets"]}
    assert by_region[REGION]["findings"] == by_region["eu-west-1"]["findings"] > 0
    # AND the account's first target says which buckets no target scanned, the other one nothing
    outside = {
        "count": 2,
        "resources": ["arn:aws:s3:::member-a-eu-north-1", "arn:aws:s3:::member-a-us-east-2"],
        "reasons": ["S3 bucket in a region that is not one of the member's"],
    }
    assert by_region[REGION]["not_scanned"] == outside
    assert "not_scanned" not in by_region["eu-west-1"]
    # AND so does the report in the data bucket
    report = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket="lambda-fleet-data", Key=result["report_key"])["Body"]
        .read()
    )
    [first_target] = [t for t in report["targets"] if t["region"] == REGION]
    assert first_target["not_scanned"] == outside


def test_a_public_policy_past_the_ones_a_scan_reads_leaves_its_lambda_1_finding_open(
    scanner: Callable[..., dict[str, Any]],
    fake_clock: ManualClock,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a scan that reads the policies of two aliases and versions per function, and
    # member A's function `api` whose alias `live` anyone may invoke, found by a first scan
    monkeypatch.setattr(compute, "QUALIFIED_POLICIES_READ", 2)
    functions, role = member_a_functions()
    function_with_alias(functions, role, "api", "live")
    functions.add_permission(
        FunctionName="api",
        Qualifier="live",
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    target = {"action": "scan_target", "account_id": MEMBER_A, "region": REGION}
    first = _target(scanner(target), MEMBER_A)
    [(finding_id, finding)] = [
        (fid, f)
        for fid, f in hub_findings().items()
        if f["ProductFields"]["lambda-fleet/ControlId"] == "Lambda.1"
    ]
    assert finding["Compliance"]["Status"] == "FAILED"
    assert "not_scanned" not in first
    # WHEN a new version gets two aliases named before `live`, so that the next scan reads
    # theirs and not `live`'s, whose policy is still public
    published_versions(functions, "api", 1)
    for alias in ("a", "b"):
        functions.create_alias(FunctionName="api", Name=alias, FunctionVersion="2")
    fake_clock.advance(6 * 3600)
    second = _target(scanner(target), MEMBER_A)
    # THEN the finding stays open, not resolved by the policies read, and the function is
    # reported as not scanned in full
    assert second["resolved"] == 0
    assert hub_findings()[finding_id]["RecordState"] == "ACTIVE"
    function_arn = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:api"
    assert second["not_scanned"]["resources"] == [function_arn]


def _record_imports(services: ScanServices) -> list[dict[str, str]]:
    """The (Id, RecordState) of each finding the scanner imports into the hub's Security Hub
    from now on, one dict per BatchImportFindings call."""
    calls: list[dict[str, str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append({f["Id"]: f["RecordState"] for f in params["Findings"]})

    services.security_hub.meta.events.register(
        "before-parameter-build.securityhub.BatchImportFindings", record
    )
    return calls


def _ids_of(account_id: str, findings: dict[str, Any]) -> list[str]:
    return sorted(finding_id for finding_id in findings if f"/{account_id}/" in finding_id)


def test_the_findings_of_an_account_that_left_the_inventory_are_archived_once(
    scans: Scans,
    write_inventory: Callable[..., dict[str, Any]],
    state_table: StateTable,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    # GIVEN a first scan that imported member A's findings (regional and global) and member B's
    # open SSH finding
    _open_ssh_group(member_session(MEMBER_B))
    scans.scan()
    member_a, member_b = _ids_of(MEMBER_A, hub_findings()), _ids_of(MEMBER_B, hub_findings())
    assert member_a and member_b
    imports = _record_imports(scans.services)
    # WHEN member A is removed from the stack file, so from the inventory, and a dry run scans
    write_inventory(MEMBER_B, DENIED_MEMBER)
    dry_run = scans.scanner({"action": "scan", "dry_run": True}, scans.services)
    # THEN it reports what it would archive, and changes nothing
    [would] = dry_run["left_accounts"]
    assert (would["account_id"], would["status"]) == (MEMBER_A, "would_archive")
    assert (would["findings"], would["finding_ids"]) == (len(member_a), member_a)
    assert imports == []
    # WHEN the next scheduled scan runs
    result = scans.next_scan()
    # THEN each of member A's findings is archived once in the hub's Security Hub, as no longer
    # checked rather than fixed, in calls of 100 findings at most
    [left] = result["left_accounts"]
    assert left == {
        "account_id": MEMBER_A,
        "regions": [REGION, GLOBAL_STATE_REGION],
        "status": "archived",
        "findings": len(member_a),
        "finding_ids": member_a,
    }
    archived = [fid for call in imports for fid, state in call.items() if state == "ARCHIVED"]
    assert sorted(archived) == member_a
    assert all(len(call) <= 100 for call in imports)
    findings = hub_findings()
    assert {findings[fid]["RecordState"] for fid in member_a} == {"ARCHIVED"}
    assert {findings[fid]["Compliance"]["Status"] for fid in member_a} == {"NOT_AVAILABLE"}
    # AND member A's saved findings are dropped
    for region in (REGION, GLOBAL_STATE_REGION):
        assert state_table.get_value(state_key(MEMBER_A, region), STATE_NAME) is None
    # AND member B, still in the inventory, keeps its finding open and remembered
    assert {findings[fid]["RecordState"] for fid in member_b} == {"ACTIVE"}
    assert stored_state(state_table.get_value(state_key(MEMBER_B, REGION), STATE_NAME))[
        "findings"
    ].keys() == set(member_b)
    # WHEN the scan after that runs THEN nothing of member A is imported again
    imports.clear()
    again = scans.next_scan()
    assert "left_accounts" not in again
    assert _ids_of(MEMBER_A, {fid: None for call in imports for fid in call}) == []


def test_a_scan_whose_inventory_cannot_be_read_archives_nothing(
    scans: Scans,
    write_inventory: Callable[..., dict[str, Any]],
    state_table: StateTable,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    no_retry_waits: None,
) -> None:
    # GIVEN member A's findings imported by a scan of it, then member A removed from the
    # inventory and S3 failing every attempt to serve the inventory
    scans.scanner({"action": "scan_target", "account_id": MEMBER_A, "region": REGION})
    member_a = _ids_of(MEMBER_A, hub_findings())
    saved = state_table.get_value(state_key(MEMBER_A, REGION), STATE_NAME)
    write_inventory(DENIED_MEMBER)
    failing_s3 = s3_error_every_attempt(scans.services.hub_client("s3"), "GetObject")
    # WHEN the next scheduled scan runs THEN it fails, so the platform retries it, and archives
    # nothing: an inventory it could not read is not one without member A
    with pytest.raises(InventoryUnreadableError):
        scans.next_scan()
    assert {hub_findings()[fid]["RecordState"] for fid in member_a} == {"ACTIVE"}
    assert state_table.get_value(state_key(MEMBER_A, REGION), STATE_NAME) == saved
    # WHEN S3 serves the inventory again THEN the platform's retry archives member A's findings
    failing_s3.healed = True
    assert scans.retry()["left_accounts"][0]["status"] == "archived"
    assert {hub_findings()[fid]["RecordState"] for fid in member_a} == {"ARCHIVED"}


def test_an_account_that_left_whose_saved_findings_cannot_be_read_fails_alone(
    scans: Scans,
    write_inventory: Callable[..., dict[str, Any]],
    state_table: StateTable,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    # GIVEN member A's and member B's findings imported by a first scan, then both removed from
    # the inventory and member A's saved findings made unreadable (a hand edit, corruption)
    _open_ssh_group(member_session(MEMBER_B))
    scans.scan()
    member_a, member_b = _ids_of(MEMBER_A, hub_findings()), _ids_of(MEMBER_B, hub_findings())
    key = state_key(MEMBER_A, REGION)
    state_table.put_value(key, STATE_NAME, {"compressed": f"%%{_STATE_SECRET}%%"})
    write_inventory(DENIED_MEMBER)
    # WHEN the next scheduled scan runs
    result = scans.next_scan()
    # THEN member A is reported failed, naming its state and never its content, and none of its
    # findings is archived, its states kept for the next run
    reports = {report["account_id"]: report for report in result["left_accounts"]}
    assert reports[MEMBER_A]["status"] == "failed"
    assert key in reports[MEMBER_A]["error"]
    assert _STATE_SECRET not in json.dumps(result)
    assert {hub_findings()[fid]["RecordState"] for fid in member_a} == {"ACTIVE"}
    assert state_table.get_value(state_key(MEMBER_A, GLOBAL_STATE_REGION), STATE_NAME)
    # AND member B's findings are archived all the same
    assert reports[MEMBER_B]["status"] == "archived"
    assert {hub_findings()[fid]["RecordState"] for fid in member_b} == {"ARCHIVED"}


def test_an_account_that_left_before_the_upgrade_has_its_earlier_findings_archived(
    scanner: Callable[..., dict[str, Any]],
    member_a_with_violations: dict[str, str],
    write_inventory: Callable[..., dict[str, Any]],
    state_table: StateTable,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    # GIVEN member A's findings imported and saved by an earlier version, which noted no target
    # in the index, then member A removed from the inventory
    scanner({"action": "scan_target", "account_id": MEMBER_A, "region": REGION})
    for region in (REGION, GLOBAL_STATE_REGION):
        state_table.delete_value(SAVED_TARGETS_KEY, f"{MEMBER_A}/{region}")
    member_a = _ids_of(MEMBER_A, hub_findings())
    write_inventory(DENIED_MEMBER)
    # WHEN the first scheduled scan of this version runs
    result = scanner({"action": "scan"})
    # THEN it finds member A's states in the state table and archives their findings
    [left] = result["left_accounts"]
    assert (left["account_id"], left["status"], left["findings"]) == (
        MEMBER_A,
        "archived",
        len(member_a),
    )
    assert {hub_findings()[fid]["RecordState"] for fid in member_a} == {"ARCHIVED"}
    assert state_table.get_value(state_key(MEMBER_A, REGION), STATE_NAME) is None


def test_a_search_for_earlier_states_out_of_its_time_goes_on_next_run_and_the_fleet_is_scanned(  # noqa: PLR0917
    scanner: Callable[..., dict[str, Any]],
    member_a_with_violations: dict[str, str],
    write_inventory: Callable[..., dict[str, Any]],
    state_table: StateTable,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN member A's findings saved by an earlier version (not in the index), member A then
    # removed from the inventory, and a search for earlier states given none of the invocation's
    # time, one item a page (a state table too large for one run)
    scanner({"action": "scan_target", "account_id": MEMBER_A, "region": REGION})
    for region in (REGION, GLOBAL_STATE_REGION):
        state_table.delete_value(SAVED_TARGETS_KEY, f"{MEMBER_A}/{region}")
    member_a = _ids_of(MEMBER_A, hub_findings())
    write_inventory(DENIED_MEMBER)
    monkeypatch.setattr(left_accounts, "EARLIER_STATES_TIME_SHARE", 0.0)
    monkeypatch.setattr(left_accounts, "EARLIER_STATES_PAGE_ITEMS", 1)
    # WHEN the first scheduled scan of this version runs
    result = scanner({"action": "scan"})
    # THEN its search stops after a page, says it goes on next run and keeps where it stopped,
    # with no mark of being done, and the fleet is scanned and its report written all the same
    assert result["left_accounts"][-1]["status"] == "searching"
    assert _target(result, DENIED_MEMBER)["status"] == "denied"
    assert result["report_key"].endswith("findings.json")
    assert state_table.get_value(EARLIER_STATES_KEY, EARLIER_STATES_INDEXED) is None
    assert state_table.get_value(EARLIER_STATES_KEY, EARLIER_STATES_PROGRESS) is not None
    # WHEN the next scheduled scan has its time for the search
    monkeypatch.setattr(left_accounts, "EARLIER_STATES_TIME_SHARE", 0.25)
    monkeypatch.setattr(left_accounts, "EARLIER_STATES_PAGE_ITEMS", 1000)
    result = scanner({"action": "scan"})
    # THEN the search reaches the table's end, marks it done, and member A's findings are
    # archived
    assert [report["status"] for report in result["left_accounts"]] == ["archived"]
    assert state_table.get_value(EARLIER_STATES_KEY, EARLIER_STATES_INDEXED) is not None
    assert {hub_findings()[fid]["RecordState"] for fid in member_a} == {"ARCHIVED"}


def test_a_scan_whose_index_of_saved_targets_cannot_be_read_archives_nothing_and_goes_on(
    scans: Scans,
    write_inventory: Callable[..., dict[str, Any]],
    state_table: StateTable,
    dynamodb_client: Any,
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    # GIVEN member A's findings imported by a scan of it, then member A removed from the
    # inventory and an entry of the index of saved targets made no JSON (a hand edit)
    scans.scanner({"action": "scan_target", "account_id": MEMBER_A, "region": REGION})
    member_a = _ids_of(MEMBER_A, hub_findings())
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_value(SAVED_TARGETS_KEY, f"{MEMBER_B}/{REGION}", {"S": f"{{{SECRET}"}),
    )
    write_inventory(DENIED_MEMBER)
    # WHEN the next scheduled scan runs
    result = scans.next_scan()
    # THEN it reports the index unreadable, naming it and never its content, and archives
    # nothing: an index it could not read lists no account that left
    [unread] = result["left_accounts"]
    assert unread["status"] == "failed"
    assert SAVED_TARGETS_KEY in unread["error"]
    assert SECRET not in json.dumps(result)
    assert {hub_findings()[fid]["RecordState"] for fid in member_a} == {"ACTIVE"}
    # AND the fleet is still scanned and its report written
    assert _target(result, DENIED_MEMBER)["status"] == "denied"
    assert result["report_key"].endswith("findings.json")


@dataclass
class RefusedFindings:
    """Security Hub refusing, at each import, the findings whose Id holds `id_part`, as it
    refuses an invalid finding: listed in FailedFindings, the batch's others imported; `healed`
    lets them through."""

    id_part: str
    refused: int = 0
    healed: bool = False

    def keep_out(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        findings = params["Findings"]
        out = [] if self.healed else [f for f in findings if self.id_part in f["Id"]]
        # The batch keeps a finding of the others, which botocore's validation needs.
        params["Findings"] = [f for f in findings if f not in out]
        context["refused_ids"] = [f["Id"] for f in out]

    def list_refused(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        refused = context.get("refused_ids", [])
        self.refused += len(refused)
        parsed["FailedCount"] = len(refused)
        parsed["FailedFindings"] = [
            {"Id": fid, "ErrorCode": "InvalidInput", "ErrorMessage": "injected"} for fid in refused
        ]


def _refuse_findings(scans: Scans, id_part: str) -> RefusedFindings:
    """Make the scans' Security Hub refuse the findings whose Id holds `id_part`."""
    refusal = RefusedFindings(id_part)
    events = scans.services.security_hub.meta.events
    events.register_first(
        "before-parameter-build.securityhub.BatchImportFindings", refusal.keep_out
    )
    events.register_first("after-call.securityhub.BatchImportFindings", refusal.list_refused)
    return refusal


def test_a_fix_security_hub_refuses_leaves_its_finding_open_until_it_is_taken(
    scans: Scans,
    member_a_with_violations: dict[str, str],
    hub_findings: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    # GIVEN member A's open SSH finding found by a first scan, the rule removed since, and the
    # hub's Security Hub refusing that finding at every import
    ssh_id = _ssh_finding_fixed_since_a_scan(scans, member_a_with_violations, hub_findings)
    refusal = _refuse_findings(scans, member_a_with_violations["group_id"])
    # WHEN the next scan runs
    refused = _target(scans.next_scan(), MEMBER_A)
    # THEN the fix is not taken for imported: the finding stays open, named among the errors
    assert (refusal.refused, refused["status"], refused["resolved"]) == (1, "scanned", 0)
    assert [error["finding"] for error in refused["errors"]] == [ssh_id]
    assert hub_findings()[ssh_id]["RecordState"] == "ACTIVE"
    # WHEN Security Hub takes it again THEN the next scan imports the fix
    refusal.healed = True
    assert _target(scans.next_scan(), MEMBER_A)["resolved"] == 1
    assert hub_findings()[ssh_id]["RecordState"] == "ARCHIVED"


def test_a_finding_security_hub_refuses_waits_alone_and_is_alerted_once_it_is_taken(
    scans: Scans, hub_findings: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    # GIVEN member A with a second new full-admin policy (critical), whose finding the hub's
    # Security Hub refuses at every import
    refused_arn = (
        member_session(MEMBER_A)
        .client("iam")
        .create_policy(PolicyName="refused-admin", PolicyDocument=json.dumps(ADMIN_POLICY))[
            "Policy"
        ]["Arn"]
    )
    refusal = _refuse_findings(scans, refused_arn)
    # WHEN the schedule scans, twice
    first, second = scans.scan(), scans.next_scan()
    # THEN member A is scanned both times, naming the refused finding among its errors, instead
    # of failing whole with nothing saved or alerted: its other findings are imported and its
    # other admin policy alerted, once; the refused one is neither alerted nor remembered
    assert refusal.refused == 2
    for result in (first, second):
        target_a = _target(result, MEMBER_A)
        assert target_a["status"] == "scanned"
        [refused_error] = [error for error in target_a["errors"] if "finding" in error]
        assert refused_arn in refused_error["finding"]
        assert refused_error["error"] == "Security Hub refused it: InvalidInput injected"
    assert scans.alerted_resources() == [scans.admin_policy_arn]
    imported = hub_findings()
    assert any(scans.admin_policy_arn in fid for fid in imported)
    assert not any(refused_arn in fid for fid in imported)
    # WHEN Security Hub takes it again
    refusal.healed = True
    healed = _target(scans.next_scan(), MEMBER_A)
    # THEN it is imported as new and alerted, once
    assert (healed["new"], "errors" in healed) == (1, False)
    assert scans.alerted_resources() == [refused_arn]
    assert any(refused_arn in fid for fid in hub_findings())
    scans.assert_the_next_scan_sends_nothing()
