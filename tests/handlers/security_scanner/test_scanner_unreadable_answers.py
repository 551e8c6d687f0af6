"""A member answer that is not its call's (a proxy's page with HTTP 200) fails its source or
resource alone: the scan goes on with the target's other sources and the other targets, and the
findings of what could not be read stay as they were, neither new nor resolved."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from fleet_shared.validation_errors import ECHO_LIMIT
from handlers.security_scanner.checks.compute import FUNCTION, SECURITY_GROUP
from handlers.security_scanner.checks.containers import CLUSTER
from handlers.security_scanner.checks.identity import POLICY
from handlers.security_scanner.checks.storage import BUCKET
from handlers.security_scanner.scan import ScanServices
from tests.handlers.faults import MalformedAnswer, answer_malformed
from tests.handlers.member_accounts import MEMBER_A, MEMBER_B, REGION, member_session
from tests.handlers.security_scanner.member_functions import member_a_functions

Scanner = Callable[..., dict[str, Any]]
HubFindings = Callable[[], dict[str, dict[str, Any]]]

PROXY_PAGE = b"<html><body>Bad gateway<br></body></html>" + b"x" * 2000
"""A proxy's page that is not well-formed XML, longer than any result may repeat."""
WELL_FORMED_PAGE = b"<html>gateway</html>"
"""A proxy's page that is well-formed XML: botocore reads it as an answer without the call's
fields (EC2's and S3's parsers, and the JSON services' for a body that is not JSON), or IAM's and
SNS's query parser fails looking for the call's result in it."""
SSH_FROM_ANYWHERE = {
    "IpProtocol": "tcp",
    "FromPort": 22,
    "ToPort": 22,
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
}
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def target(result: dict[str, Any], account_id: str) -> dict[str, Any]:
    return next(t for t in result["targets"] if t["account_id"] == account_id)


def finding_states(hub_findings: HubFindings, account_id: str) -> dict[str, str]:
    """The RecordState of member `account_id`'s findings in Security Hub, by control and
    resource."""
    return {
        f"{f['ProductFields']['lambda-fleet/ControlId']} {f['Resources'][0]['Id']}": f[
            "RecordState"
        ]
        for f in hub_findings().values()
        if f["ProductFields"]["lambda-fleet/MemberAccountId"] == account_id
    }


def open_ssh_group() -> str:
    """Member A's security group open to SSH from anywhere: its EC2.13 finding's key."""
    ec2 = member_session(MEMBER_A).client("ec2")
    group_id = ec2.create_security_group(GroupName="open-ssh", Description="test")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[SSH_FROM_ANYWHERE])
    return f"EC2.13 arn:aws:ec2:{REGION}:{MEMBER_A}:security-group/{group_id}"


@pytest.fixture
def member_a_open_to_ssh() -> str:
    """Member A's security group open to SSH from anywhere, and a bucket without any protection
    (S3 findings); returns the group's EC2.13 finding's key."""
    member_session(MEMBER_A).client("s3").create_bucket(
        Bucket="member-a-open-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return open_ssh_group()


def test_a_security_group_listing_that_is_not_xml_fails_that_source_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    member_a_open_to_ssh: str,
    hub_findings: HubFindings,
) -> None:
    # GIVEN a first scan that found member A's security group open to SSH, and member A's EC2
    # now answering DescribeSecurityGroups with a proxy's page that is not XML (HTTP 200)
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    member_ec2 = services.member_client("ec2", MEMBER_A, REGION)
    page = answer_malformed(member_ec2, "ec2", "DescribeSecurityGroups", PROXY_PAGE)
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN member A's security groups are its one error, naming the parse failure in a short
    # line; its other sources were scanned and the group's finding stays open
    assert page.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    [error] = target_a["errors"]
    assert error["resource_type"] == SECURITY_GROUP
    assert "Unable to parse response" in error["error"]
    assert len(error["error"]) <= 200
    assert target_a["by_severity"].get("HIGH", 0) >= 1
    assert target_a["resolved"] == 0
    assert finding_states(hub_findings, MEMBER_A)[member_a_open_to_ssh] == "ACTIVE"
    # AND member B was scanned and the run says it is partial
    assert target(result, MEMBER_B)["status"] == "scanned"
    assert result["status"] == "partial"


def test_a_policy_listing_answered_with_a_well_formed_page_fails_that_source_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    member_a_open_to_ssh: str,
    hub_findings: HubFindings,
) -> None:
    # GIVEN a first scan that found member A's full-admin policy (IAM.1), and member A's IAM now
    # answering ListPolicies with a proxy's well-formed page, in which botocore's query parser
    # finds no ListPoliciesResult
    policy_arn = (
        member_session(MEMBER_A)
        .client("iam")
        .create_policy(PolicyName="break-glass", PolicyDocument=json.dumps(ADMIN_POLICY))["Policy"][
            "Arn"
        ]
    )
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    member_iam = services.member_client("iam", MEMBER_A, REGION)
    page = answer_malformed(member_iam, "iam", "ListPolicies", WELL_FORMED_PAGE)
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN member A's customer-managed policies are its one error, naming what the answer
    # lacked; the policy's finding stays open and the security group's is still found
    assert page.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    [error] = target_a["errors"]
    assert error["resource_type"] == POLICY
    assert "ListPolicies answered without <ListPoliciesResponse>" in error["error"]
    assert target_a["resolved"] == 0
    assert finding_states(hub_findings, MEMBER_A)[f"IAM.1 {policy_arn}"] == "ACTIVE"
    assert finding_states(hub_findings, MEMBER_A)[member_a_open_to_ssh] == "ACTIVE"
    assert target(result, MEMBER_B)["status"] == "scanned"
    # WHEN IAM answers again THEN the next scan finds the policy's finding known, not new
    member_iam.meta.events.unregister("before-send.iam.ListPolicies", page)
    healed = target(scanner({"action": "scan"}, services), MEMBER_A)
    assert (healed.get("errors"), healed["new"], healed["resolved"]) == (None, 0, 0)


def test_a_cluster_described_with_a_page_that_is_not_eks_fails_that_cluster_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN member A's clusters `first` and `second`, both open to the world (EKS.1), found by a
    # first scan, and member A's EKS now answering DescribeCluster of `first` with a proxy's page
    # (HTTP 200), which botocore reads as an answer without `cluster`
    services = two_open_clusters_scanned(scanner, build_scanner_services)
    member_eks = services.member_client("eks", MEMBER_A, REGION)
    page = answer_malformed(
        member_eks, "eks", "DescribeCluster", PROXY_PAGE, url_part="/clusters/first"
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN cluster `first` is member A's one error, naming what its answer lacked; its findings
    # stay open and `second` is still evaluated
    assert page.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    first, second = (
        f"arn:aws:eks:{REGION}:{MEMBER_A}:cluster/{name}" for name in ("first", "second")
    )
    [error] = target_a["errors"]
    assert error["resource"] == first
    assert "DescribeCluster answered without cluster" in error["error"]
    assert len(error["error"]) <= 200
    assert target_a["resolved"] == 0
    findings = finding_states(hub_findings, MEMBER_A)
    assert (findings[f"EKS.1 {first}"], findings[f"EKS.1 {second}"]) == ("ACTIVE", "ACTIVE")
    assert target(result, MEMBER_B)["status"] == "scanned"


POLICY_LISTED_WITHOUT_ITS_VERSION = (
    '<ListPoliciesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListPoliciesResult>'
    "<IsTruncated>false</IsTruncated><Policies><member><PolicyName>break-glass</PolicyName>"
    f"<Arn>arn:aws:iam::{MEMBER_A}:policy/break-glass</Arn></member></Policies>"
    "</ListPoliciesResult></ListPoliciesResponse>"
).encode()
"""IAM's ListPolicies answer, root and all, listing break-glass without its DefaultVersionId."""
ROLE_LISTED_WITHOUT_ITS_NAME = (
    '<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult>'
    "<IsTruncated>false</IsTruncated><Roles><member><Path>/</Path>"
    f"<Arn>arn:aws:iam::{MEMBER_A}:role/admin</Arn></member></Roles></ListRolesResult>"
    "</ListRolesResponse>"
).encode()
"""IAM's ListRoles answer, root and all, listing the role admin without its RoleName."""


@pytest.mark.parametrize(
    ("answered", "expected_error"),
    [
        pytest.param(
            ("GetPolicyVersion", WELL_FORMED_PAGE),
            ("policy", "GetPolicyVersion answered without <GetPolicyVersionResponse>"),
            id="a-policy-version-as-a-well-formed-page",
        ),
        pytest.param(
            ("GetRolePolicy", PROXY_PAGE),
            ("role", "Unable to parse response"),
            id="a-role-policy-as-a-page-that-is-not-xml",
        ),
        pytest.param(
            ("ListPolicies", POLICY_LISTED_WITHOUT_ITS_VERSION),
            ("policy", "answered without DefaultVersionId"),
            id="a-policy-listed-without-its-default-version",
        ),
        pytest.param(
            ("ListRoles", ROLE_LISTED_WITHOUT_ITS_NAME),
            ("role", "answered without RoleName"),
            id="a-role-listed-without-its-name",
        ),
    ],
)
def test_an_iam_document_answered_with_a_page_fails_that_principal_or_policy_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
    answered: tuple[str, bytes],
    expected_error: tuple[str, str],
) -> None:
    # GIVEN member A's full-admin customer-managed policy (IAM.1) and a role with a full-admin
    # inline policy (FLEET.IAM.1), found by a first scan, and member A's IAM now answering
    # `operation` with a proxy's page (HTTP 200)
    iam = member_session(MEMBER_A).client("iam")
    arns = {
        "policy": iam.create_policy(
            PolicyName="break-glass", PolicyDocument=json.dumps(ADMIN_POLICY)
        )["Policy"]["Arn"],
        "role": iam.create_role(RoleName="admin", AssumeRolePolicyDocument="{}")["Role"]["Arn"],
    }
    iam.put_role_policy(
        RoleName="admin", PolicyName="admin", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    operation, body = answered
    page = answer_malformed(services.member_client("iam", MEMBER_A, REGION), "iam", operation, body)
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN that policy or role is member A's one error, in a short line; both findings stay open
    unreadable, shown = expected_error
    assert page.answered >= 1
    target_a = target(result, MEMBER_A)
    [error] = target_a["errors"]
    assert error["resource"] == arns[unreadable]
    assert shown in error["error"]
    assert len(error["error"]) <= 200
    assert target_a["resolved"] == 0
    findings = finding_states(hub_findings, MEMBER_A)
    assert findings[f"IAM.1 {arns['policy']}"] == "ACTIVE"
    assert findings[f"FLEET.IAM.1 {arns['role']}"] == "ACTIVE"


def public_function() -> str:
    """Member A's function whose policy lets anyone invoke it: its Lambda.1 finding's key."""
    session = member_session(MEMBER_A)
    role_arn = session.client("iam").create_role(
        RoleName="function", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("app.py", "def handler(event, context):\n    return event\n")
    lambda_client = session.client("lambda")
    function_arn = lambda_client.create_function(
        FunctionName="public",
        Runtime="python3.12",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    lambda_client.add_permission(
        FunctionName="public",
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    return f"Lambda.1 {function_arn}"


def unprotected_bucket() -> str:
    """Member A's bucket without Block Public Access settings: its S3.8 finding's key."""
    member_session(MEMBER_A).client("s3").create_bucket(
        Bucket="member-a-unprotected", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return "S3.8 arn:aws:s3:::member-a-unprotected"


def public_cluster() -> str:
    """Member A's cluster whose API endpoint is open to the world: its EKS.1 finding's key."""
    member_session(MEMBER_A).client("eks").create_cluster(
        name="open",
        roleArn=f"arn:aws:iam::{MEMBER_A}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"], "endpointPublicAccess": True},
    )
    return f"EKS.1 arn:aws:eks:{REGION}:{MEMBER_A}:cluster/open"


@pytest.mark.parametrize(
    ("listing", "failing_resource"),
    [
        pytest.param(
            (
                "ec2",
                "DescribeSecurityGroups",
                SECURITY_GROUP,
                "DescribeSecurityGroups answered without SecurityGroups, not its answer: {}",
            ),
            open_ssh_group,
            id="security-groups",
        ),
        pytest.param(
            (
                "lambda",
                "ListFunctions",
                FUNCTION,
                "ListFunctions answered without Functions, not its answer: {}",
            ),
            public_function,
            id="functions",
        ),
        pytest.param(
            (
                "s3",
                "ListBuckets",
                BUCKET,
                "Unable to parse response: ListBuckets answered without "
                "<ListAllMyBucketsResult>, not its answer: '<html>gateway</html>'",
            ),
            unprotected_bucket,
            id="buckets",
        ),
        pytest.param(
            (
                "eks",
                "ListClusters",
                CLUSTER,
                "ListClusters answered without clusters, not its answer: {}",
            ),
            public_cluster,
            id="clusters",
        ),
    ],
)
def test_a_listing_answered_with_a_page_without_its_items_resolves_none_of_its_findings(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
    listing: tuple[str, str, str, str],
    failing_resource: Callable[[], str],
) -> None:
    # GIVEN a first scan that found member A's failing resource, and member A's service now
    # answering the listing with a proxy's well-formed page (HTTP 200), which botocore parses
    # into an answer without the listing's items
    service, operation, resource_type, expected_error = listing
    finding = failing_resource()
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    assert finding_states(hub_findings, MEMBER_A)[finding] == "ACTIVE"
    member_client = services.member_client(service, MEMBER_A, REGION)
    page = answer_malformed(member_client, service, operation, WELL_FORMED_PAGE)
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN the listing did not pass for an empty one: the finding stays open in Security Hub,
    # and the listing is member A's one error, naming what its answer lacked
    assert page.answered >= 1
    target_a = target(result, MEMBER_A)
    assert (target_a["resolved"], result["resolved"]) == (0, 0)
    assert finding_states(hub_findings, MEMBER_A)[finding] == "ACTIVE"
    assert target_a["errors"] == [{"resource_type": resource_type, "error": expected_error}]


def test_a_queue_listing_without_queue_urls_reads_as_no_queues_as_sqs_sends_it(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN a first scan that found member A's unencrypted queue (SQS.1), the queue deleted
    # since, and member A's SQS answering ListQueues as SQS does in a region without queues:
    # a JSON answer without `QueueUrls`
    sqs = member_session(MEMBER_A).client("sqs")
    queue_url = sqs.create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})[
        "QueueUrl"
    ]
    finding = f"SQS.1 arn:aws:sqs:{REGION}:{MEMBER_A}:plain"
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    assert finding_states(hub_findings, MEMBER_A)[finding] == "ACTIVE"
    sqs.delete_queue(QueueUrl=queue_url)
    no_queues = answer_malformed(
        services.member_client("sqs", MEMBER_A, REGION),
        "sqs",
        "ListQueues",
        b"{}",
        content_type="application/x-amz-json-1.0",
    )
    # WHEN the schedule runs the scan
    target_a = target(scanner({"action": "scan"}, services), MEMBER_A)
    # THEN the answer reads as no queues, not as an error: the deleted queue's finding resolves
    assert no_queues.answered >= 1
    assert target_a.get("errors") is None
    assert target_a["resolved"] == 1
    assert finding_states(hub_findings, MEMBER_A)[finding] == "ARCHIVED"


def test_an_import_answered_with_a_page_that_is_not_security_hubs_saves_nothing(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN a first scan that found member A's security group open to SSH, the rule removed
    # since, and the hub's Security Hub answering BatchImportFindings with a proxy's page (HTTP
    # 200), which botocore reads as an answer without SuccessCount
    ssh_finding = open_ssh_group()
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    group_id = ssh_finding.rsplit("/", 1)[-1]
    member_session(MEMBER_A).client("ec2").revoke_security_group_ingress(
        GroupId=group_id, IpPermissions=[SSH_FROM_ANYWHERE]
    )
    page = answer_malformed(
        services.security_hub, "securityhub", "BatchImportFindings", WELL_FORMED_PAGE
    )
    # WHEN the schedule runs the scan
    unimported = target(scanner({"action": "scan"}, services), MEMBER_A)
    # THEN member A failed naming what the answer lacked, its state unsaved
    assert page.answered >= 1
    assert unimported["status"] == "failed"
    assert "BatchImportFindings answered without SuccessCount" in unimported["error"]
    # WHEN Security Hub answers again THEN the next scan still has the fix to import, and
    # resolves the finding there
    services.security_hub.meta.events.unregister(
        "before-send.securityhub.BatchImportFindings", page
    )
    healed = target(scanner({"action": "scan"}, services), MEMBER_A)
    assert (healed["status"], healed["resolved"]) == ("scanned", 1)
    assert finding_states(hub_findings, MEMBER_A)[ssh_finding] == "ARCHIVED"


def member_a_import_answered(
    services: ScanServices, body: dict[str, Any], status: int = 200
) -> MalformedAnswer:
    """The hub's Security Hub answering BatchImportFindings of member A's findings with `body`
    (as JSON) and HTTP `status`."""
    return answer_malformed(
        services.security_hub,
        "securityhub",
        "BatchImportFindings",
        json.dumps(body).encode(),
        body_with=MEMBER_A.encode(),
        content_type="application/json",
        status=status,
    )


def member_a_import_refused(services: ScanServices, refusal: object) -> MalformedAnswer:
    """The hub's Security Hub answering BatchImportFindings of member A's findings with none
    imported and `refusal` as the one entry of its FailedFindings."""
    body = {"SuccessCount": 0, "FailedCount": 1, "FailedFindings": [refusal]}
    return member_a_import_answered(services, body)


def test_an_import_answered_with_a_null_refusal_fails_that_target_and_saves_nothing(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN a first scan that found member A's security group open to SSH, the rule removed
    # since, and the hub's Security Hub answering BatchImportFindings of member A's findings with
    # a null among its FailedFindings (botocore keeps a null among a JSON list's items)
    ssh_finding = open_ssh_group()
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    group_id = ssh_finding.rsplit("/", 1)[-1]
    member_session(MEMBER_A).client("ec2").revoke_security_group_ingress(
        GroupId=group_id, IpPermissions=[SSH_FROM_ANYWHERE]
    )
    answer = member_a_import_refused(services, None)
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN member A failed naming the answer, instead of the AttributeError that ended the scan,
    # its state unsaved; member B was scanned
    assert answer.answered >= 1
    unimported = target(result, MEMBER_A)
    assert unimported["status"] == "failed"
    assert unimported["error"] == (
        "Security Hub import failed: BatchImportFindings answered without an object for each "
        "of FailedFindings, not its answer: [None]"
    )
    assert target(result, MEMBER_B)["status"] == "scanned"
    # WHEN Security Hub answers again THEN the next scan still has the fix to import
    services.security_hub.meta.events.unregister(
        "before-send.securityhub.BatchImportFindings", answer
    )
    healed = target(scanner({"action": "scan"}, services), MEMBER_A)
    assert (healed["status"], healed["resolved"]) == ("scanned", 1)
    assert finding_states(hub_findings, MEMBER_A)[ssh_finding] == "ARCHIVED"


REFUSAL_MESSAGE = "Invalid finding\nConsole: https://evil.example/signin\n" + "x" * 5000
"""A refusal's message of thousands of characters over several lines (Security Hub's, or a
proxy's), the second line posing as a fact of the message."""
CLIENT_ERROR_WORDING = (
    "An error occurred (InvalidInputException) when calling the BatchImportFindings operation: "
)
"""botocore's own wording of a refused call, which a target's error keeps whole."""


def member_a_import_refused_one_finding(services: ScanServices) -> MalformedAnswer:
    """BatchImportFindings of member A's findings answered with the refusal of a finding the scan
    did not send, its message REFUSAL_MESSAGE."""
    refusal = {"Id": "not-sent", "ErrorCode": "InvalidInput", "ErrorMessage": REFUSAL_MESSAGE}
    return member_a_import_refused(services, refusal)


def member_a_import_refused_as_a_call(services: ScanServices) -> MalformedAnswer:
    """BatchImportFindings of member A's findings refused as a call (HTTP 400), its message
    REFUSAL_MESSAGE."""
    body = {"__type": "InvalidInputException", "message": REFUSAL_MESSAGE}
    return member_a_import_answered(services, body, status=400)


@pytest.mark.parametrize(
    ("refuse", "wording", "quoted_start"),
    [
        pytest.param(
            member_a_import_refused_one_finding,
            "",
            "1 findings refused: not-sent: InvalidInput ",
            id="in-failed-findings",
        ),
        pytest.param(member_a_import_refused_as_a_call, CLIENT_ERROR_WORDING, "", id="as-a-call"),
    ],
)
def test_an_import_refusal_of_many_long_lines_is_one_short_line_in_the_target_error_and_report(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    refuse: Callable[[ScanServices], MalformedAnswer],
    wording: str,
    quoted_start: str,
) -> None:
    # GIVEN member A's security group open to SSH, and the hub's Security Hub refusing
    # BatchImportFindings of member A's findings (one finding, or the whole call) with the
    # message REFUSAL_MESSAGE
    open_ssh_group()
    services = build_scanner_services()
    answer = refuse(services)
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN member A failed with one line: the fleet's and botocore's wording whole, then the
    # refusal cut, its line breaks escaped
    assert answer.answered >= 1
    failed = target(result, MEMBER_A)
    assert failed["status"] == "failed"
    error = failed["error"]
    kept = f"Security Hub import failed: {wording}"
    assert error.startswith(kept)
    quoted = error.removeprefix(kept)
    assert quoted.startswith(
        f"{quoted_start}Invalid finding\\nConsole: https://evil.example/signin\\nxxx"
    )
    assert len(quoted) <= ECHO_LIMIT
    assert error.splitlines() == [error]
    # AND the report holds that same line; member B was scanned
    report = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket="lambda-fleet-data", Key=result["report_key"])["Body"]
        .read()
    )
    assert target(report, MEMBER_A)["error"] == error
    assert target(result, MEMBER_B)["status"] == "scanned"


def _encrypt_with_kms(s3: Any, bucket: str) -> None:
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )


def _block_public_access(s3: Any, bucket: str) -> None:
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _enable_versioning(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


@dataclass(frozen=True)
class BucketSetting:
    """A bucket setting the scanner reads: its read, the root S3 answers it with, the control
    whose finding the setting decides, and how a test sets it so the bucket has no finding."""

    operation: str
    root: str
    control: str
    configure: Callable[[Any, str], None]


@pytest.mark.parametrize(
    "setting",
    [
        BucketSetting(
            "GetBucketEncryption", "ServerSideEncryptionConfiguration", "S3.4", _encrypt_with_kms
        ),
        BucketSetting(
            "GetPublicAccessBlock", "PublicAccessBlockConfiguration", "S3.8", _block_public_access
        ),
        BucketSetting(
            "GetBucketVersioning", "VersioningConfiguration", "S3.14", _enable_versioning
        ),
    ],
    ids=lambda setting: setting.operation,
)
def test_a_bucket_setting_answered_with_a_page_raises_no_false_finding(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
    setting: BucketSetting,
) -> None:
    # GIVEN member A's bucket configured so that it has no finding of its control (encrypted with
    # SSE-KMS, every Block Public Access setting on, versioned), scanned once, and member A's S3
    # now answering the setting's read with a proxy's well-formed page (HTTP 200), which
    # botocore would parse into a setting left at its default (no rules, flags off, versioning
    # never enabled)
    bucket = "member-a-configured"
    s3 = member_session(MEMBER_A).client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    setting.configure(s3, bucket)
    services = build_scanner_services()
    assert target(scanner({"action": "scan"}, services), MEMBER_A)["findings"] > 0
    bucket_arn = f"arn:aws:s3:::{bucket}"
    assert f"{setting.control} {bucket_arn}" not in finding_states(hub_findings, MEMBER_A)
    page = answer_malformed(
        services.member_client("s3", MEMBER_A, REGION), "s3", setting.operation, WELL_FORMED_PAGE
    )
    # WHEN the schedule runs the scan
    target_a = target(scanner({"action": "scan"}, services), MEMBER_A)
    # THEN the page did not pass for the default: no finding of its control is raised and none is
    # new or resolved; the bucket is member A's one error, naming the root S3 sends
    assert page.answered >= 1
    assert (target_a["new"], target_a["resolved"]) == (0, 0)
    assert f"{setting.control} {bucket_arn}" not in finding_states(hub_findings, MEMBER_A)
    [error] = target_a["errors"]
    assert error["resource"] == bucket_arn
    assert f"{setting.operation} answered without <{setting.root}>" in error["error"]


def test_a_cluster_described_with_a_timestamp_botocore_cannot_parse_fails_that_cluster_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN member A's clusters `first` and `second`, both open to the world (EKS.1), found by a
    # first scan, and member A's EKS now answering DescribeCluster of `first` with EKS's JSON
    # whose `createdAt` is no timestamp, on which botocore's parser raises a bare ValueError
    services = two_open_clusters_scanned(scanner, build_scanner_services)
    first, second = (
        f"arn:aws:eks:{REGION}:{MEMBER_A}:cluster/{name}" for name in ("first", "second")
    )
    bad_date = json.dumps(
        {"cluster": {"name": "first", "arn": first, "createdAt": "not-a-date" + "x" * 500}}
    ).encode()
    answer = answer_malformed(
        services.member_client("eks", MEMBER_A, REGION),
        "eks",
        "DescribeCluster",
        bad_date,
        url_part="/clusters/first",
        content_type="application/json",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN cluster `first` is member A's one error, in a short line naming the parse failure;
    # its finding stays open, `second` is still evaluated and member B scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    [error] = target_a["errors"]
    assert error["resource"] == first
    assert "Unable to parse response" in error["error"]
    assert "Invalid timestamp" in error["error"]
    assert len(error["error"]) <= 200
    assert target_a["resolved"] == 0
    findings = finding_states(hub_findings, MEMBER_A)
    assert (findings[f"EKS.1 {first}"], findings[f"EKS.1 {second}"]) == ("ACTIVE", "ACTIVE")
    assert target(result, MEMBER_B)["status"] == "scanned"
    assert result["status"] == "partial"


@pytest.mark.parametrize(
    ("cluster", "problem"),
    [
        pytest.param({"arn": 7}, "a text arn, not its answer: 7", id="a-number-as-its-arn"),
        pytest.param(
            {"encryptionConfig": [None]},
            "an object for each of encryptionConfig, not its answer: [None]",
            id="a-null-encryption",
        ),
        pytest.param(
            {"logging": {"clusterLogging": [None]}},
            "an object for each of logging.clusterLogging, not its answer: [None]",
            id="a-null-log-setup",
        ),
        pytest.param(
            {"resourcesVpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": [None]}},
            "a text range for each of resourcesVpcConfig.publicAccessCidrs, not its answer: [None]",
            id="a-null-public-cidr",
        ),
    ],
)
def test_a_cluster_described_with_a_setting_of_the_wrong_kind_is_unreadable_not_compliant(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
    cluster: dict[str, Any],
    problem: str,
) -> None:
    # GIVEN member A's clusters `first` and `second`, open to the world, without secrets
    # encryption or audit log (EKS.1, EKS.3, EKS.8), found by a first scan, and member A's EKS
    # now answering DescribeCluster of `first` with its JSON holding a number as its arn or a
    # null among its public CIDRs, encryption or logging settings (botocore hands a JSON
    # answer's text and list items on unchecked)
    services = two_open_clusters_scanned(scanner, build_scanner_services)
    first, second = (
        f"arn:aws:eks:{REGION}:{MEMBER_A}:cluster/{name}" for name in ("first", "second")
    )
    before = finding_states(hub_findings, MEMBER_A)
    answer = answer_malformed(
        services.member_client("eks", MEMBER_A, REGION),
        "eks",
        "DescribeCluster",
        json.dumps({"cluster": {"name": "first", "arn": first, **cluster}}).encode(),
        url_part="/clusters/first",
        content_type="application/json",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN cluster `first` is member A's one error under its ARN, naming the call and the field
    # and showing the value, instead of being judged compliant (its findings resolved), filed
    # under a number or ending the whole scan (EKS.3's or EKS.8's AttributeError); `second` is
    # still evaluated and member B scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    assert target_a["errors"] == [
        {
            "resource": first,
            "error": f"UnreadableAnswerError: DescribeCluster of first answered without {problem}",
        }
    ]
    assert target_a["resolved"] == 0
    assert {f"EKS.{n} {first}" for n in (1, 3, 8)} <= before.keys()
    assert finding_states(hub_findings, MEMBER_A) == before
    assert before[f"EKS.1 {second}"] == "ACTIVE"
    assert target(result, MEMBER_B)["status"] == "scanned"


def scanned_queues(
    scanner: Scanner, build_scanner_services: Callable[[], ScanServices]
) -> tuple[ScanServices, str, str]:
    """Member A's unencrypted queues `first` and `second` (SQS.1), the services of a first scan
    that found them, and their URLs."""
    sqs = member_session(MEMBER_A).client("sqs")
    first, second = (
        sqs.create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"]
        for name in ("first", "second")
    )
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    return services, first, second


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        pytest.param(
            {"KmsMasterKeyId": True}, "a text Attributes.KmsMasterKeyId, not its answer: True"
        ),
        pytest.param(
            {"SqsManagedSseEnabled": True},
            "a text Attributes.SqsManagedSseEnabled, not its answer: True",
        ),
        pytest.param(
            {"SqsManagedSseEnabled": "yes"},
            "true or false as Attributes.SqsManagedSseEnabled, not its answer: 'yes'",
        ),
        pytest.param({"QueueArn": 7}, "a text Attributes.QueueArn, not its answer: 7"),
    ],
    ids=["key-as-true", "sse-as-true", "sse-as-yes", "arn-as-a-number"],
)
def test_a_queue_attribute_of_the_wrong_kind_makes_that_queue_unreadable_not_compliant(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
    attributes: dict[str, Any],
    problem: str,
) -> None:
    # GIVEN member A's unencrypted queues `first` and `second`, found by a first scan (SQS.1),
    # and member A's SQS now answering GetQueueAttributes of `first` with an attribute that is
    # no text, or no value SQS sends (botocore hands a JSON answer's map values on unchecked)
    services, first_url, _ = scanned_queues(scanner, build_scanner_services)
    first, second = (f"arn:aws:sqs:{REGION}:{MEMBER_A}:{name}" for name in ("first", "second"))
    answer = answer_malformed(
        services.member_client("sqs", MEMBER_A, REGION),
        "sqs",
        "GetQueueAttributes",
        json.dumps({"Attributes": {"QueueArn": first, **attributes}}).encode(),
        body_with=json.dumps(first_url).encode(),
        content_type="application/x-amz-json-1.0",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN queue `first` is member A's one error under its ARN, naming the attribute and showing
    # its value, instead of being judged encrypted (its finding resolved), judged on a value SQS
    # never sends, or filed under a number; `second` is still evaluated and member B scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    assert target_a["errors"] == [
        {
            "resource": first,
            "error": f"UnreadableAnswerError: GetQueueAttributes answered without {problem}",
        }
    ]
    assert target_a["resolved"] == 0
    findings = finding_states(hub_findings, MEMBER_A)
    assert (findings[f"SQS.1 {first}"], findings[f"SQS.1 {second}"]) == ("ACTIVE", "ACTIVE")
    assert target(result, MEMBER_B)["status"] == "scanned"


def test_a_queue_listing_holding_a_null_url_fails_the_queues_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN member A's unencrypted queues found by a first scan (SQS.1), and member A's SQS now
    # answering ListQueues with a null among its URLs (botocore keeps a null among a list's
    # items)
    services, first_url, _ = scanned_queues(scanner, build_scanner_services)
    answer = answer_malformed(
        services.member_client("sqs", MEMBER_A, REGION),
        "sqs",
        "ListQueues",
        json.dumps({"QueueUrls": [first_url, None]}).encode(),
        content_type="application/x-amz-json-1.0",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN the queues are member A's one error, naming the listing, instead of the
    # AttributeError that ended the scan; their findings stay open and member B is scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    [error] = target_a["errors"]
    assert error["resource_type"] == "AwsSqsQueue"
    assert error["error"].startswith(
        "ListQueues answered without a text URL for each of QueueUrls, not its answer: "
    )
    assert target_a["resolved"] == 0
    assert set(finding_states(hub_findings, MEMBER_A).values()) == {"ACTIVE"}
    assert target(result, MEMBER_B)["status"] == "scanned"


def functions_listed_as_by_lambda() -> list[dict[str, Any]]:
    """Member A's functions as Lambda lists them (ListFunctions' `Functions`), their dates as
    text."""
    listed = member_session(MEMBER_A).client("lambda").list_functions()["Functions"]
    return json.loads(json.dumps(listed, default=str))


def test_a_function_listing_holding_a_null_fails_the_functions_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN member A's function open to anyone (Lambda.1), found by a first scan, and member A's
    # Lambda now answering ListFunctions with a null beside it (botocore keeps a null among a
    # list's items)
    finding = public_function()
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    answer = answer_malformed(
        services.member_client("lambda", MEMBER_A, REGION),
        "lambda",
        "ListFunctions",
        json.dumps({"Functions": [None, *functions_listed_as_by_lambda()]}).encode(),
        content_type="application/json",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN member A's functions are its one error, naming the listing and showing the names only,
    # instead of the TypeError that ended the whole scan; the finding stays open and member B is
    # scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    assert target_a["errors"] == [
        {
            "resource_type": FUNCTION,
            "error": "ListFunctions answered without an object with a text FunctionName and "
            "FunctionArn for each of Functions, not its answer: [None, 'public']",
        }
    ]
    assert target_a["resolved"] == 0
    assert finding_states(hub_findings, MEMBER_A)[finding] == "ACTIVE"
    assert target(result, MEMBER_B)["status"] == "scanned"


def test_a_function_listed_with_a_runtime_of_the_wrong_kind_is_unreadable_not_supported(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN member A's function on python3.8, whose support has ended (Lambda.2), found by a
    # first scan, and member A's Lambda now listing it with a number as its Runtime
    functions, role = member_a_functions()
    function_arn = functions.create_function(
        FunctionName="old",
        Runtime="python3.8",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )["FunctionArn"]
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    finding = f"Lambda.2 {function_arn}"
    assert finding_states(hub_findings, MEMBER_A)[finding] == "ACTIVE"
    [listed] = functions_listed_as_by_lambda()
    answer = answer_malformed(
        services.member_client("lambda", MEMBER_A, REGION),
        "lambda",
        "ListFunctions",
        json.dumps({"Functions": [{**listed, "Runtime": 38}]}).encode(),
        content_type="application/json",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN the function is member A's one error under its ARN, instead of a runtime read as one
    # whose support never ended (its finding resolved)
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["errors"] == [
        {
            "resource": function_arn,
            "error": "UnreadableAnswerError: ListFunctions of old answered without a text "
            "Runtime, not its answer: 38",
        }
    ]
    assert target_a["resolved"] == 0
    assert finding_states(hub_findings, MEMBER_A)[finding] == "ACTIVE"


ROLES_WITH_A_BAD_DATE = (
    b'<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult>'
    b"<IsTruncated>false</IsTruncated><Roles><member><Path>/</Path><RoleName>admin</RoleName>"
    b"<RoleId>AROAEXAMPLE</RoleId><Arn>arn:aws:iam::000000000000:role/admin</Arn>"
    b"<CreateDate>the day before yesterday</CreateDate></member></Roles></ListRolesResult>"
    b"</ListRolesResponse>"
)
"""IAM's ListRoles answer, root and all, whose one role's CreateDate is no timestamp."""


def test_a_role_listing_with_a_timestamp_botocore_cannot_parse_fails_that_source_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    member_a_open_to_ssh: str,
    hub_findings: HubFindings,
) -> None:
    # GIVEN a first scan that found member A's security group open to SSH, and member A's IAM
    # now answering ListRoles with IAM's XML whose role's CreateDate is no timestamp
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    answer = answer_malformed(
        services.member_client("iam", MEMBER_A, REGION),
        "iam",
        "ListRoles",
        ROLES_WITH_A_BAD_DATE,
        content_type="text/xml",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN member A's roles are its one error, naming the parse failure; its other sources were
    # scanned (the group's finding stays open) and member B was scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    [error] = target_a["errors"]
    assert error["resource_type"] == "AwsIamRole"
    assert "Invalid timestamp" in error["error"]
    assert target_a["resolved"] == 0
    assert finding_states(hub_findings, MEMBER_A)[member_a_open_to_ssh] == "ACTIVE"
    assert target(result, MEMBER_B)["status"] == "scanned"


def two_open_clusters_scanned(
    scanner: Scanner, build_scanner_services: Callable[[], ScanServices]
) -> ScanServices:
    """Member A's clusters `first` and `second`, both open to the world (EKS.1), and the services
    of a first scan that found them."""
    eks = member_session(MEMBER_A).client("eks")
    for name in ("first", "second"):
        eks.create_cluster(
            name=name,
            roleArn=f"arn:aws:iam::{MEMBER_A}:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"], "endpointPublicAccess": True},
        )
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    return services


BUCKETS_ONE_WITHOUT_ITS_NAME = (
    b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Buckets><Bucket>'
    b"<CreationDate>2025-06-01T00:00:00.000Z</CreationDate></Bucket></Buckets>"
    b"</ListAllMyBucketsResult>"
)
"""S3's ListBuckets answer, root and all, listing a bucket without its Name."""


def test_a_bucket_listed_without_its_name_fails_the_bucket_type_alone(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
) -> None:
    # GIVEN a first scan that found member A's unprotected bucket (S3.8) and open cluster
    # (EKS.1), and member A's S3 now answering ListBuckets with a bucket without its Name
    bucket_finding, cluster_finding = unprotected_bucket(), public_cluster()
    services = build_scanner_services()
    scanner({"action": "scan"}, services)
    s3 = services.member_client("s3", MEMBER_A, REGION)
    answer = answer_malformed(s3, "s3", "ListBuckets", BUCKETS_ONE_WITHOUT_ITS_NAME)
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN the bucket type is member A's one error, naming the call and the field, instead of
    # the KeyError that ended the scan; both findings stay open and member B is scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    [error] = target_a["errors"]
    assert error["resource_type"] == BUCKET
    assert error["error"].startswith("ListBuckets answered without Name, not its answer: ")
    findings = finding_states(hub_findings, MEMBER_A)
    assert (findings[bucket_finding], findings[cluster_finding]) == ("ACTIVE", "ACTIVE")
    assert target(result, MEMBER_B)["status"] == "scanned"


@pytest.mark.parametrize("item", [None, 7], ids=["a-null", "a-number"])
def test_a_cluster_listing_holding_an_item_that_is_no_name_reports_it_and_reads_the_others(
    scanner: Scanner,
    build_scanner_services: Callable[[], ScanServices],
    hub_findings: HubFindings,
    item: object,
) -> None:
    # GIVEN member A's clusters `first` and `second`, open to the world, without secrets
    # encryption or audit log (EKS.1, EKS.3, EKS.8), found by a first scan, and member A's EKS
    # now answering ListClusters with `second` and, in place of `first`, an item that is no
    # text (botocore hands a JSON list's items on unchecked)
    services = two_open_clusters_scanned(scanner, build_scanner_services)
    first = f"arn:aws:eks:{REGION}:{MEMBER_A}:cluster/first"
    before = finding_states(hub_findings, MEMBER_A)
    answer = answer_malformed(
        services.member_client("eks", MEMBER_A, REGION),
        "eks",
        "ListClusters",
        json.dumps({"clusters": [item, "second"]}).encode(),
        content_type="application/json",
    )
    # WHEN the schedule runs the scan
    result = scanner({"action": "scan"}, services)
    # THEN the item is member A's one error, the cluster listing's, showing the item, under no
    # ARN made of it; `second` is evaluated (its three findings seen again), and no finding is
    # resolved, since the item may be `first`; member B is scanned
    assert answer.answered >= 1
    target_a = target(result, MEMBER_A)
    assert target_a["status"] == "scanned"
    assert target_a["errors"] == [
        {
            "resource_type": CLUSTER,
            "error": f"ListClusters answered without a text name for each of clusters, not its "
            f"answer: {item!r}",
        }
    ]
    assert {f"EKS.{n} {first}" for n in (1, 3, 8)} <= before.keys()
    assert (target_a["resolved"], result["resolved"]) == (0, 0)
    assert finding_states(hub_findings, MEMBER_A) == before
    assert (target_a["findings"], target_a["by_severity"]) == (3, {"HIGH": 1, "MEDIUM": 2})
    assert target(result, MEMBER_B)["status"] == "scanned"
