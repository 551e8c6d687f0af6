"""The declared checks: registry consistency and the rules moto can set up per service."""

from __future__ import annotations

import json
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.awsrequest import AWSResponse
from moto.sqs.models import sqs_backends

from catalog.functions import function_spec
from handlers.security_scanner import app, checks, registry
from handlers.security_scanner.checks import compute
from handlers.security_scanner.checks.messaging import QUEUE
from handlers.security_scanner.checks.storage import BUCKET
from handlers.security_scanner.models import ScanRequest, ScanTargetRequest, SqsBatch
from handlers.security_scanner.registry import Resource, ScanScope
from handlers.security_scanner.scan import evaluate
from handlers.security_scanner.security_event_models import CloudTrailEvent, GuardDutyFindingEvent
from tests.handlers.faults import answer_malformed
from tests.handlers.member_accounts import MEMBER_A, REGION, member_session
from tests.handlers.security_scanner.member_functions import (
    function_with_alias,
    member_a_functions,
    published_versions,
)

SCAN_DAY = date(2025, 6, 2)
"""The day the tests' scans run: python3.8 past its end of support, python3.12 not."""


@pytest.fixture(autouse=True)
def _checks_loaded() -> None:
    """The registry as the scanner sees it: with every check module imported."""
    checks.load_checks()


def test_every_module_of_the_checks_package_is_loaded() -> None:
    # GIVEN the modules of the checks package WHEN compared with what load_checks imports
    modules = {
        module.name
        for module in pkgutil.iter_modules(checks.__path__)
        if not module.name.startswith("_")
    }
    # THEN none is left out, so none of its checks is silently skipped
    assert modules == set(checks.CHECK_MODULES)
    assert registry.checks()


def test_every_iam_action_of_the_checks_is_granted_in_the_member_role() -> None:
    # GIVEN the registry WHEN its actions are compared with the catalog's member actions
    granted = set(function_spec("security_scanner").member_actions)
    # THEN nothing a source calls would be denied by the deployed member role
    assert registry.required_iam_actions() <= granted
    # AND every check has a source for its resource type, a severity and a remediation
    source_types = {source.resource_type for source in registry.sources()}
    for control in registry.checks():
        assert control.resource_type in source_types, control.control_id
        assert control.remediation, control.control_id


DECLARED_CONTROLS = {
    "EC2.13": ("AwsEc2SecurityGroup", "HIGH"),
    "EC2.14": ("AwsEc2SecurityGroup", "HIGH"),
    "FLEET.EC2.1": ("AwsEc2SecurityGroup", "CRITICAL"),
    "Lambda.1": ("AwsLambdaFunction", "CRITICAL"),
    "Lambda.2": ("AwsLambdaFunction", "MEDIUM"),
    "EKS.1": ("AwsEksCluster", "HIGH"),
    "EKS.3": ("AwsEksCluster", "MEDIUM"),
    "EKS.8": ("AwsEksCluster", "MEDIUM"),
    "IAM.1": ("AwsIamPolicy", "CRITICAL"),
    "IAM.21": ("AwsIamPolicy", "LOW"),
    "FLEET.IAM.1": ("AwsIamRole", "CRITICAL"),
    "FLEET.IAM.2": ("AwsIamRole", "LOW"),
    "FLEET.IAM.3": ("AwsIamUser", "CRITICAL"),
    "FLEET.IAM.4": ("AwsIamUser", "LOW"),
    "FLEET.IAM.5": ("AwsIamGroup", "CRITICAL"),
    "FLEET.IAM.6": ("AwsIamGroup", "LOW"),
    "SQS.1": ("AwsSqsQueue", "MEDIUM"),
    "SNS.1": ("AwsSnsTopic", "MEDIUM"),
    "S3.8": ("AwsS3Bucket", "HIGH"),
    "S3.4": ("AwsS3Bucket", "MEDIUM"),
    "S3.17": ("AwsS3Bucket", "LOW"),
    "S3.5": ("AwsS3Bucket", "MEDIUM"),
    "S3.14": ("AwsS3Bucket", "LOW"),
}
"""Every control with its resource type and severity: the ids and severities Security Hub holds
for the findings already exported."""

ADMIN_REMEDIATION = (
    "Replace the statement with the actions and resources the principal needs; grant "
    "administrator access only through a break-glass role."
)
WILDCARD_REMEDIATION = (
    "List the actions the principal needs instead of service:* (a prefix such as "
    "ec2:Describe* is acceptable)."
)
IAM_CONTROL_TEXTS = {
    "IAM.1": (
        'IAM policies should not allow full "*" administrative privileges',
        ADMIN_REMEDIATION,
    ),
    "IAM.21": (
        "IAM customer managed policies should not allow wildcard actions for services",
        WILDCARD_REMEDIATION,
    ),
    "FLEET.IAM.1": (
        'IAM role inline policies should not allow full "*" administrative privileges',
        ADMIN_REMEDIATION,
    ),
    "FLEET.IAM.2": (
        "IAM role inline policies should not allow wildcard actions for services",
        WILDCARD_REMEDIATION,
    ),
    "FLEET.IAM.3": (
        'IAM user inline policies should not allow full "*" administrative privileges',
        ADMIN_REMEDIATION,
    ),
    "FLEET.IAM.4": (
        "IAM user inline policies should not allow wildcard actions for services",
        WILDCARD_REMEDIATION,
    ),
    "FLEET.IAM.5": (
        'IAM group inline policies should not allow full "*" administrative privileges',
        ADMIN_REMEDIATION,
    ),
    "FLEET.IAM.6": (
        "IAM group inline policies should not allow wildcard actions for services",
        WILDCARD_REMEDIATION,
    ),
}


def test_every_control_keeps_its_id_resource_type_and_severity() -> None:
    # GIVEN the registry with every check module loaded WHEN its controls are listed
    declared = {
        control.control_id: (control.resource_type, control.severity.value)
        for control in registry.checks()
    }
    # THEN they are the controls whose findings Security Hub holds, each as first declared
    assert declared == DECLARED_CONTROLS


def test_the_iam_controls_keep_their_titles_and_remediations() -> None:
    # GIVEN the IAM controls of the registry WHEN their texts are read
    texts = {
        control.control_id: (control.title, control.remediation)
        for control in registry.checks()
        if "IAM" in control.control_id
    }
    # THEN each finding's title and remediation reads as exported before
    assert texts == IAM_CONTROL_TEXTS


def _member_a_scope(
    client: Callable[[str], Any] | None = None, *, include_global: bool = True
) -> ScanScope:
    """Member A's scope in REGION on the tests' scan day, through `client` (by default its
    session's clients)."""
    return ScanScope(
        MEMBER_A,
        REGION,
        include_global=include_global,
        member_regions=(REGION,),
        client=client or member_session(MEMBER_A).client,
        scanned_on=SCAN_DAY,
    )


def _evaluate_member_a() -> set[tuple[str, str]]:
    result = evaluate(_member_a_scope(), "2025-06-02T03:30:00.000Z")
    return {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}


def test_eks_cluster_open_to_the_world_without_encryption_or_audit_logs_fails_three_controls(
    mocked_aws: None,
) -> None:
    # GIVEN one cluster open to 0.0.0.0/0 with no secrets encryption and logging off (moto's
    # default), and one limited to a CIDR with a KMS key and audit logs on
    eks = member_session(MEMBER_A).client("eks")
    role = f"arn:aws:iam::{MEMBER_A}:role/eks"
    eks.create_cluster(
        name="open",
        roleArn=role,
        resourcesVpcConfig={"subnetIds": ["subnet-1"], "endpointPublicAccess": True},
    )
    eks.create_cluster(
        name="closed",
        roleArn=role,
        resourcesVpcConfig={
            "subnetIds": ["subnet-1"],
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["203.0.113.0/24"],
        },
        encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:x"}}],
        logging={"clusterLogging": [{"types": ["audit"], "enabled": True}]},
    )
    # WHEN the member is evaluated THEN only the open cluster fails EKS.1, EKS.3 and EKS.8
    failing = {item for item in _evaluate_member_a() if item[0].startswith("EKS")}
    assert failing == {
        ("EKS.1", "cluster/open"),
        ("EKS.3", "cluster/open"),
        ("EKS.8", "cluster/open"),
    }


def test_public_lambda_policy_and_deprecated_runtime_fail(mocked_aws: None) -> None:
    # GIVEN a python3.8 function anyone may invoke, and a python3.12 function callable by S3
    # from one account only
    session = member_session(MEMBER_A)
    role = session.client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    functions = session.client("lambda")
    for name, runtime in (("legacy", "python3.8"), ("current", "python3.12")):
        functions.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
    functions.add_permission(
        FunctionName="legacy", StatementId="anyone", Action="lambda:InvokeFunction", Principal="*"
    )
    functions.add_permission(
        FunctionName="current",
        StatementId="s3",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceAccount=MEMBER_A,
    )
    # WHEN evaluated THEN the legacy function fails Lambda.1 and Lambda.2, the current none
    failing = {item for item in _evaluate_member_a() if item[0].startswith("Lambda")}
    assert failing == {("Lambda.1", "legacy"), ("Lambda.2", "legacy")}


def test_a_public_policy_on_an_alias_fails_lambda_1_for_its_function(mocked_aws: None) -> None:
    # GIVEN a function whose alias `live` anyone may invoke, and one whose alias only S3 of one
    # account may, neither with a policy of the unqualified function
    functions, role = member_a_functions()
    function_with_alias(functions, role, "public-alias", "live")
    function_with_alias(functions, role, "private-alias", "live")
    functions.add_permission(
        FunctionName="public-alias",
        Qualifier="live",
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    functions.add_permission(
        FunctionName="private-alias",
        Qualifier="live",
        StatementId="s3",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceAccount=MEMBER_A,
    )
    with pytest.raises(functions.exceptions.ResourceNotFoundException):
        functions.get_policy(FunctionName="public-alias")
    # WHEN the member is evaluated
    scope = ScanScope(
        MEMBER_A,
        REGION,
        include_global=False,
        member_regions=(REGION,),
        client=member_session(MEMBER_A).client,
        scanned_on=SCAN_DAY,
    )
    result = evaluate(scope, "2025-06-02T03:30:00.000Z")
    # THEN the function with the public alias fails Lambda.1, naming the alias, the other passes
    [finding] = [f for f in result.failing if f.control_id == "Lambda.1"]
    assert finding.resource_arn == f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:public-alias"
    assert finding.detail == "alias live: statement anyone allows any principal"
    assert result.not_scanned == {}


def _lambda_scope(functions: Any) -> ScanScope:
    """Member A's region, its Lambda calls made through `functions`."""
    return ScanScope(
        MEMBER_A,
        REGION,
        include_global=False,
        member_regions=(REGION,),
        client=lambda service: (
            functions if service == "lambda" else member_session(MEMBER_A).client(service)
        ),
        scanned_on=SCAN_DAY,
    )


def _functions_anyone_may_invoke_through_live(*names: str) -> Any:
    """Member A's Lambda client, with functions `names` whose alias `live` anyone may invoke."""
    functions, role = member_a_functions()
    for name in names:
        function_with_alias(functions, role, name, "live")
        functions.add_permission(
            FunctionName=name,
            Qualifier="live",
            StatementId="anyone",
            Action="lambda:InvokeFunction",
            Principal="*",
        )
    return functions


def _lambda_calls(functions: Any) -> list[str]:
    """The Lambda operations `functions` calls from now on, each with its qualifier if any."""
    calls: list[str] = []
    functions.meta.events.register(
        "before-call.lambda",
        lambda model, params, **_: calls.append(
            f"{model.name} {params['query_string'].get('Qualifier', '')}".strip()
        ),
    )
    return calls


def test_a_public_policy_on_a_published_version_fails_lambda_1_for_its_function(
    mocked_aws: None,
) -> None:
    # GIVEN a function whose published version 2 anyone may invoke (`fn:2`), with no alias and
    # no policy of the unqualified function
    functions, role = member_a_functions()
    function_with_alias(functions, role, "public-version")
    published_versions(functions, "public-version", 1)
    functions.add_permission(
        FunctionName="public-version",
        Qualifier="2",
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    with pytest.raises(functions.exceptions.ResourceNotFoundException):
        functions.get_policy(FunctionName="public-version")
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN the function fails Lambda.1, naming the version
    [finding] = [f for f in result.failing if f.control_id == "Lambda.1"]
    assert finding.resource_arn == f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:public-version"
    assert finding.detail == "version 2: statement anyone allows any principal"
    assert result.not_scanned == {}


def test_a_function_with_more_aliases_and_versions_than_a_scan_reads_is_reported_not_scanned(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a scan that reads the policies of three aliases and versions per function, a
    # function with two aliases and four published versions, and one with four aliases
    monkeypatch.setattr(compute, "QUALIFIED_POLICIES_READ", 3)
    functions, role = member_a_functions()
    function_with_alias(functions, role, "many-versions", "blue", "green")
    published_versions(functions, "many-versions", 3)
    function_with_alias(functions, role, "many-aliases", "a", "b", "c", "d")
    calls = _lambda_calls(functions)
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN each function's own policy and those of three of its aliases and versions are read,
    # aliases first, the versions listed only when the aliases leave room, the newest read
    assert calls == [
        "ListFunctions",
        "GetPolicy",
        "ListAliases",
        "ListVersionsByFunction",
        "GetPolicy blue",
        "GetPolicy green",
        "GetPolicy 4",
        "GetPolicy",
        "ListAliases",
        "GetPolicy a",
        "GetPolicy b",
        "GetPolicy c",
    ]
    # AND both functions are reported as not scanned in full, for Lambda.1
    function_arn = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:"
    assert sorted(result.not_scanned) == [
        f"{function_arn}many-aliases",
        f"{function_arn}many-versions",
    ]
    assert all(
        why.startswith("Lambda.1: more than 3 aliases") for why in result.not_scanned.values()
    )
    assert result.partially_scanned == {
        ("Lambda.1", f"{function_arn}many-aliases"),
        ("Lambda.1", f"{function_arn}many-versions"),
    }


def test_a_public_policy_on_the_newest_version_past_the_budget_fails_lambda_1(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a scan that reads the policies of three aliases and versions per function, and a
    # function with six published versions whose newest, version 6, anyone may invoke
    monkeypatch.setattr(compute, "QUALIFIED_POLICIES_READ", 3)
    functions, role = member_a_functions()
    function_with_alias(functions, role, "deployed-daily")
    published_versions(functions, "deployed-daily", 5)
    functions.add_permission(
        FunctionName="deployed-daily",
        Qualifier="6",
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    calls = _lambda_calls(functions)
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN the function fails Lambda.1 naming version 6, the three newest versions' policies
    # read, newest first
    [finding] = [f for f in result.failing if f.control_id == "Lambda.1"]
    assert finding.detail == "version 6: statement anyone allows any principal"
    assert calls[-3:] == ["GetPolicy 6", "GetPolicy 5", "GetPolicy 4"]
    # AND it is still reported as not scanned in full, versions 1 to 3 left unread
    function_arn = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:deployed-daily"
    assert list(result.not_scanned) == [function_arn]


VERSIONS_PER_FAKED_PAGE = 30
"""Fewer than a page holds, as a proxy may answer: the pages read are bounded, not the versions."""


@dataclass
class _EndlessVersionPages:
    """ListVersionsByFunction answered, whatever moto holds (it answers all versions in one
    page), with pages of VERSIONS_PER_FAKED_PAGE versions (the first with `$LATEST`), each
    pointing to the next, as for a function deployed for years. Counts the pages asked for."""

    pages: int = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.pages += 1
        first = int(params["query_string"].get("Marker", "0"))
        numbers = range(first, first + VERSIONS_PER_FAKED_PAGE)
        versions = [{"Version": str(n) if n else "$LATEST"} for n in numbers]
        page = {"Versions": versions, "NextMarker": str(first + VERSIONS_PER_FAKED_PAGE)}
        return AWSResponse(params["url"], 200, {}, None), page


def test_a_function_with_more_version_pages_than_a_scan_reads_costs_only_those_pages(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a scan that reads two pages of versions and the policies of three aliases and
    # versions per function, and a function whose version listing never ends
    monkeypatch.setattr(compute, "QUALIFIED_POLICIES_READ", 3)
    monkeypatch.setattr(compute, "VERSION_PAGES_READ", 2)
    functions, role = member_a_functions()
    function_with_alias(functions, role, "deployed-for-years")
    endless = _EndlessVersionPages()
    functions.meta.events.register_first("before-call.lambda.ListVersionsByFunction", endless)
    calls = _lambda_calls(functions)
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN two pages are listed, and the newest versions of those pages are read, newest first
    assert endless.pages == 2
    assert calls[-3:] == ["GetPolicy 59", "GetPolicy 58", "GetPolicy 57"]
    # AND the function is reported as not scanned in full
    function_arn = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:deployed-for-years"
    assert list(result.not_scanned) == [function_arn]


def test_a_version_listing_without_its_versions_fails_that_function_alone(
    mocked_aws: None,
) -> None:
    # GIVEN two functions anyone may invoke through their published version 1, and
    # ListVersionsByFunction of the first answered with a JSON page without `Versions` (a
    # proxy's), which Lambda always sends (every function has `$LATEST`)
    functions, role = member_a_functions()
    for name in ("unlisted", "listed"):
        function_with_alias(functions, role, name)
        functions.add_permission(
            FunctionName=name,
            Qualifier="1",
            StatementId="anyone",
            Action="lambda:InvokeFunction",
            Principal="*",
        )
    page = answer_malformed(
        functions, "lambda", "ListVersionsByFunction", b"{}", url_part="/unlisted/"
    )
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN the first function is reported unreadable, not passed for one without versions, and
    # the other still fails Lambda.1
    assert page.answered == 1
    unlisted = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:unlisted"
    assert result.unreadable_arns == {unlisted}
    [error] = result.errors
    assert "ListVersionsByFunction answered without Versions" in error["error"]
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert failing == {("Lambda.1", "listed")}


def test_an_alias_listing_without_its_aliases_fails_that_function_alone(mocked_aws: None) -> None:
    # GIVEN two functions anyone may invoke through their alias, and ListAliases of the first
    # answered with a JSON page without `Aliases` (a proxy's), which Lambda always sends
    functions = _functions_anyone_may_invoke_through_live(*("unlisted", "listed"))
    page = answer_malformed(functions, "lambda", "ListAliases", b"{}", url_part="/unlisted/")
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN the first function is reported unreadable, not passed for one without aliases, and
    # the other still fails Lambda.1
    assert page.answered == 1
    unlisted = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:unlisted"
    assert result.unreadable_arns == {unlisted}
    [error] = result.errors
    assert "ListAliases answered without Aliases" in error["error"]
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert failing == {("Lambda.1", "listed")}


def test_a_function_whose_alias_listing_is_refused_with_a_page_is_reported_on_one_line(
    mocked_aws: None,
) -> None:
    # GIVEN two functions anyone may invoke through their alias, and ListAliases of the first
    # refused with a message that is a proxy's page over several lines, with a terminal escape
    functions = _functions_anyone_may_invoke_through_live(*("refused", "listed"))
    page = "<html>\nAll controls passed \x1b[31m\u2028" + "x" * 5000
    refusal = json.dumps({"__type": "InvalidParameterValueException", "message": page})
    answer_malformed(
        functions, "lambda", "ListAliases", refusal.encode(), url_part="/refused/", status=400
    )
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN the first function is reported unreadable, the refusal quoted on one short line, its
    # control characters escaped, and the other still fails Lambda.1
    refused = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:refused"
    assert result.unreadable_arns == {refused}
    [error] = result.errors
    assert error["error"].startswith("InvalidParameterValueException: An error occurred")
    assert "<html>\\nAll controls passed \\x1b[31m\\u2028xxx" in error["error"]
    assert error["error"].isprintable()
    assert len(error["error"]) <= 200
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert failing == {("Lambda.1", "listed")}


@pytest.mark.parametrize(
    ("operation", "page", "error"),
    [
        ("ListAliases", b'{"Aliases": [{}]}', "ListAliases answered without Name"),
        ("ListAliases", b'{"Aliases": [null]}', "ListAliases answered without Name"),
        (
            "ListVersionsByFunction",
            b'{"Versions": [{}]}',
            "ListVersionsByFunction answered without Version",
        ),
    ],
    ids=["alias-without-name", "alias-null", "version-without-number"],
)
def test_a_listed_alias_or_version_without_its_name_fails_that_function_alone(
    mocked_aws: None, operation: str, page: bytes, error: str
) -> None:
    # GIVEN two functions anyone may invoke through their alias `live`, and the alias or
    # version listing of the first answered with an entry that does not name it
    functions = _functions_anyone_may_invoke_through_live(*("unnamed", "named"))
    if operation == "ListVersionsByFunction":
        # Without aliases to read first, the versions are listed.
        functions.delete_alias(FunctionName="unnamed", Name="live")
    malformed = answer_malformed(functions, "lambda", operation, page, url_part="/unnamed/")
    # WHEN the member is evaluated
    result = evaluate(_lambda_scope(functions), "2025-06-02T03:30:00.000Z")
    # THEN the first function is reported unreadable, and the scan goes on to the other
    assert malformed.answered == 1
    unnamed = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:unnamed"
    assert result.unreadable_arns == {unnamed}
    [reported] = result.errors
    assert error in reported["error"]
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert failing == {("Lambda.1", "named")}


def test_a_function_policy_that_is_not_json_is_reported_and_the_other_functions_evaluated(
    mocked_aws: None,
) -> None:
    # GIVEN two python3.8 functions anyone may invoke, and GetPolicy of the first answering a
    # policy that is not JSON
    session = member_session(MEMBER_A)
    role = session.client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    functions = session.client("lambda")
    for name in ("garbled", "legacy"):
        functions.create_function(
            FunctionName=name,
            Runtime="python3.8",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        functions.add_permission(
            FunctionName=name, StatementId="anyone", Action="lambda:InvokeFunction", Principal="*"
        )
    answer_malformed(
        functions, "lambda", "GetPolicy", b'{"Policy": "<not json"}', url_part="/garbled/"
    )
    scope = ScanScope(
        MEMBER_A,
        REGION,
        include_global=False,
        member_regions=(REGION,),
        client=lambda service: functions if service == "lambda" else session.client(service),
        scanned_on=SCAN_DAY,
    )
    # WHEN the member is evaluated
    result = evaluate(scope, "2025-06-02T03:30:00.000Z")
    # THEN the garbled function is reported unreadable and the other one still fails its controls
    garbled = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:garbled"
    assert result.unreadable_arns == {garbled}
    assert [error["resource"] for error in result.errors] == [garbled]
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert {item for item in failing if item[0].startswith("Lambda")} == {
        ("Lambda.1", "legacy"),
        ("Lambda.2", "legacy"),
    }


def test_a_function_policy_whose_condition_is_no_object_is_reported_and_the_others_evaluated(
    mocked_aws: None,
) -> None:
    # GIVEN two python3.8 functions anyone may invoke, and GetPolicy of the first answering a
    # policy whose public statement has a Condition that is text, not an object of operators
    # (botocore hands the policy's JSON on unchecked)
    functions, role = member_a_functions()
    for name in ("garbled", "legacy"):
        functions.create_function(
            FunctionName=name,
            Runtime="python3.8",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        functions.add_permission(
            FunctionName=name, StatementId="anyone", Action="lambda:InvokeFunction", Principal="*"
        )
    policy = {
        "Statement": [
            {
                "Sid": "anyone",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "lambda:InvokeFunction",
                "Condition": "aws:SourceAccount=222222222222",
            }
        ]
    }
    answer_malformed(
        functions,
        "lambda",
        "GetPolicy",
        json.dumps({"Policy": json.dumps(policy)}).encode(),
        url_part="/garbled/",
    )
    scope = ScanScope(
        MEMBER_A,
        REGION,
        include_global=False,
        member_regions=(REGION,),
        client=lambda service: (
            functions if service == "lambda" else member_session(MEMBER_A).client(service)
        ),
        scanned_on=SCAN_DAY,
    )
    # WHEN the member is evaluated
    result = evaluate(scope, "2025-06-02T03:30:00.000Z")
    # THEN the garbled function is reported unreadable, naming the field, instead of Lambda.1's
    # AttributeError ending the scan; the other function still fails its controls
    garbled = f"arn:aws:lambda:{REGION}:{MEMBER_A}:function:garbled"
    assert result.unreadable_arns == {garbled}
    assert result.errors == [
        {
            "resource": garbled,
            "error": "ValueError: policy document's Statement[0].Condition is not an object",
        }
    ]
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert {item for item in failing if item[0].startswith("Lambda")} == {
        ("Lambda.1", "legacy"),
        ("Lambda.2", "legacy"),
    }


def test_unencrypted_queue_and_topic_fail_while_encrypted_ones_pass(mocked_aws: None) -> None:
    # GIVEN a queue with SSE-SQS off, one with it on, a topic with and one without a KMS key
    session = member_session(MEMBER_A)
    sqs = session.client("sqs")
    sqs.create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})
    sqs.create_queue(QueueName="sealed", Attributes={"SqsManagedSseEnabled": "true"})
    sns = session.client("sns")
    sns.create_topic(Name="plain-topic")
    sns.create_topic(Name="sealed-topic", Attributes={"KmsMasterKeyId": "alias/aws/sns"})
    # WHEN evaluated THEN only the plain ones fail
    failing = {item for item in _evaluate_member_a() if item[0] in ("SQS.1", "SNS.1")}
    assert failing == {("SQS.1", "plain"), ("SNS.1", "plain-topic")}


def test_a_queue_or_topic_whose_attributes_are_unreadable_fails_alone_and_the_others_are_judged(
    mocked_aws: None,
) -> None:
    # GIVEN two unencrypted queues and two topics without a KMS key, and SQS answering
    # GetQueueAttributes of `queue-a` and SNS answering GetTopicAttributes of `topic-a` with an
    # answer that is not theirs (HTTP 200)
    session = member_session(MEMBER_A)
    clients = {service: session.client(service) for service in ("sqs", "sns")}
    for name in ("queue-a", "queue-b"):
        clients["sqs"].create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "false"})
    for name in ("topic-a", "topic-b"):
        clients["sns"].create_topic(Name=name)
    answer_malformed(
        clients["sqs"],
        "sqs",
        "GetQueueAttributes",
        b"{}",
        body_with=b"queue-a",
        content_type="application/x-amz-json-1.0",
    )
    answer_malformed(
        clients["sns"],
        "sns",
        "GetTopicAttributes",
        b"<html>gateway<br></html>",
        body_with=b"topic-a",
    )
    scope = _member_a_scope(
        lambda service: clients.get(service) or session.client(service), include_global=False
    )
    # WHEN the member is evaluated
    result = evaluate(scope, "2025-06-02T03:30:00.000Z")
    # THEN `queue-a` and `topic-a` are reported unreadable, each in a short line saying why
    unreadable = {
        f"arn:aws:sqs:{REGION}:{MEMBER_A}:queue-a",
        f"arn:aws:sns:{REGION}:{MEMBER_A}:topic-a",
    }
    assert result.unreadable_arns == unreadable
    errors = {error["resource"]: error["error"] for error in result.errors}
    assert set(errors) == unreadable
    assert errors[f"arn:aws:sqs:{REGION}:{MEMBER_A}:queue-a"].startswith(
        "UnreadableAnswerError: GetQueueAttributes answered without Attributes"
    )
    assert all(len(error) <= 200 for error in errors.values())
    assert "Unable to parse response" in errors[f"arn:aws:sns:{REGION}:{MEMBER_A}:topic-a"]
    # AND the other queue and topic still fail their controls
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert failing == {("SQS.1", "queue-b"), ("SNS.1", "topic-b")}


def test_every_queue_of_an_account_with_more_than_a_thousand_queues_is_scanned(
    mocked_aws: None,
) -> None:
    # GIVEN 1,001 queues (created in moto's backend, not through 1,001 calls): ListQueues
    # without MaxResults answers the first 1,000 and no NextToken, in AWS as in moto
    backend = sqs_backends[MEMBER_A][REGION]
    for index in range(1001):
        backend.create_queue(f"queue-{index:04d}")
    (queues,) = (source for source in registry.sources() if source.resource_type == QUEUE)
    scope = ScanScope(
        MEMBER_A,
        REGION,
        include_global=True,
        member_regions=(REGION,),
        client=member_session(MEMBER_A).client,
        scanned_on=SCAN_DAY,
    )
    # WHEN the queue source collects the account's queues
    collected = [resource.arn for resource in queues.collect(scope)]
    # THEN every one is read, the 1,001st too
    assert len(collected) == 1001
    assert f"arn:aws:sqs:{REGION}:{MEMBER_A}:queue-1000" in collected


def _refuse_unpaginated_list_buckets(request: Any, **_: Any) -> AWSResponse | None:
    """S3's answer, in an account whose bucket quota is above 10,000, to a ListBuckets that
    carries neither max-buckets nor continuation-token: such a request is refused."""
    query = parse_qs(urlsplit(request.url).query)
    if "max-buckets" in query or "continuation-token" in query:
        return None
    body = b"<Error><Code>InvalidRequest</Code><Message>unpaginated</Message></Error>"
    return AWSResponse(request.url, 400, {"Content-Type": "application/xml"}, _XmlBody(body))


@dataclass
class _XmlBody:
    body: bytes

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_buckets_are_listed_with_paginated_requests_which_every_account_accepts(
    mocked_aws: None,
) -> None:
    # GIVEN a member account with a bucket in the scanned region, whose S3 refuses an
    # unpaginated ListBuckets (as it does once the account's bucket quota is above 10,000)
    session = member_session(MEMBER_A)
    session.client("s3").create_bucket(
        Bucket="member-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    session.events.register_first("before-send.s3.ListBuckets", _refuse_unpaginated_list_buckets)
    (buckets,) = (source for source in registry.sources() if source.resource_type == BUCKET)
    scope = ScanScope(
        MEMBER_A,
        REGION,
        include_global=True,
        member_regions=(REGION,),
        client=session.client,
        scanned_on=SCAN_DAY,
    )
    # WHEN the bucket source collects the account's buckets
    collected = [resource.arn for resource in buckets.collect(scope)]
    # THEN the bucket is listed and described
    assert collected == ["arn:aws:s3:::member-bucket"]


@pytest.mark.parametrize(
    ("ingress", "controls"),
    [
        (
            [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
            {"EC2.13", "EC2.14", "FLEET.EC2.1"},
        ),
        (
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 3389,
                    "ToPort": 3389,
                    "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
                }
            ],
            {"EC2.14"},
        ),
        (
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "Ipv6Ranges": [{"CidrIpv6": "0:0:0:0:0:0:0:0/0"}],
                }
            ],
            {"EC2.13"},
        ),
        (
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                }
            ],
            set(),
        ),
        # Every address without a /0: the two halves of the internet, in two rules or one
        (
            [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": half}]}
                for half in ("0.0.0.0/1", "128.0.0.0/1")
            ],
            {"EC2.13"},
        ),
        (
            [
                {
                    "IpProtocol": "-1",
                    "Ipv6Ranges": [{"CidrIpv6": "::/1"}, {"CidrIpv6": "8000::/1"}],
                }
            ],
            {"EC2.13", "EC2.14", "FLEET.EC2.1"},
        ),
        (
            [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": part}]}
                for part in ("0.0.0.0/1", "128.0.0.0/2")
            ],
            set(),
        ),
        (
            [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": half}]}
                for half in ("0.0.0.0/1",)
            ]
            + [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "128.0.0.0/1"}],
                }
            ],
            set(),
        ),
        (
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
            set(),
        ),
    ],
)
def test_security_group_rules_map_to_their_controls(
    ingress: list[dict[str, Any]], controls: set[str]
) -> None:
    # GIVEN a security group with one ingress rule WHEN every SG check evaluates it
    group = Resource(
        "arn:aws:ec2:ap-south-1:1:security-group/sg-1", "AwsEc2SecurityGroup", {"ingress": ingress}
    )
    failing = {
        c.control_id for c in registry.checks_for("AwsEc2SecurityGroup") if c.evaluate(group)
    }
    # THEN exactly the expected controls fail
    assert failing == controls


@pytest.mark.parametrize(
    ("cidrs", "reason"),
    [
        ([], "the public API endpoint accepts connections from 0.0.0.0/0"),
        (["203.0.113.0/24"], None),
        (
            ["0.0.0.0/1", "128.0.0.0/1"],
            "the public API endpoint accepts connections from 0.0.0.0/1, 128.0.0.0/1",
        ),
    ],
)
def test_a_public_endpoint_open_to_every_address_fails_eks1_however_its_ranges_are_cut(
    cidrs: list[str], reason: str | None
) -> None:
    # GIVEN a cluster whose public endpoint admits `cidrs` (none: EKS's default, everyone)
    cluster = Resource(
        "arn:aws:eks:ap-south-1:1:cluster/c",
        "AwsEksCluster",
        {"vpc": {"endpointPublicAccess": True, "publicAccessCidrs": cidrs}},
    )
    # WHEN EKS.1 evaluates it
    [eks1] = [c for c in registry.checks_for("AwsEksCluster") if c.control_id == "EKS.1"]
    # THEN it fails when the ranges let every address in, one of them or all together
    assert eks1.evaluate(cluster) == reason


@pytest.mark.parametrize(
    ("algorithms", "reasons"),
    [
        ([], {"S3.4": "the bucket has no default encryption configuration", "S3.17": None}),
        ([""], {"S3.4": "the bucket has no default encryption configuration", "S3.17": None}),
        (["AES256"], {"S3.4": None, "S3.17": "default encryption is AES256, not SSE-KMS"}),
        (["aws:kms:dsse"], {"S3.4": None, "S3.17": None}),
        (["", "AES256"], {"S3.4": None, "S3.17": "default encryption is AES256, not SSE-KMS"}),
    ],
)
def test_default_encryption_fails_s3_4_when_absent_and_s3_17_when_not_kms(
    algorithms: list[str], reasons: dict[str, str | None]
) -> None:
    # GIVEN a bucket whose default encryption rules name `algorithms` (empty for a rule without)
    bucket = Resource("arn:aws:s3:::b", BUCKET, {"encryption_algorithms": algorithms})
    # WHEN S3.4 and S3.17 evaluate it
    by_id = {c.control_id: c for c in registry.checks_for(BUCKET)}
    # THEN each fails with its reason, or passes
    assert {control: by_id[control].evaluate(bucket) for control in reasons} == reasons


def test_service_wildcards_fail_iam21_but_prefixed_wildcards_pass() -> None:
    # GIVEN a policy with s3:* and ec2:Describe* WHEN IAM.21 and IAM.1 evaluate it
    policy = Resource(
        "arn:aws:iam::1:policy/p",
        "AwsIamPolicy",
        {
            "documents": [
                {
                    "Statement": {
                        "Effect": "Allow",
                        "Action": ["s3:*", "ec2:Describe*"],
                        "Resource": "*",
                    }
                }
            ]
        },
    )
    by_id = {c.control_id: c for c in registry.checks_for("AwsIamPolicy")}
    # THEN IAM.21 names s3:* only, and it is not full admin
    assert by_id["IAM.21"].evaluate(policy) == "allows every action of: s3:*"
    assert by_id["IAM.1"].evaluate(policy) is None


def test_inline_policies_fail_their_principals_controls_and_a_principal_without_any_is_not_read(
    mocked_aws: None,
) -> None:
    # GIVEN a user whose inline policy allows everything and sqs:*, a role whose inline policy
    # allows s3:*, a group whose inline policy allows everything, and a role and a group without
    # any inline policy
    iam = member_session(MEMBER_A).client("iam")
    everything = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Allow", "Action": ["sqs:*"], "Resource": "*"},
            ],
        }
    )
    iam.create_user(UserName="deployer")
    iam.put_user_policy(UserName="deployer", PolicyName="everything", PolicyDocument=everything)
    for role in ("ops", "bare"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    iam.put_role_policy(
        RoleName="ops",
        PolicyName="buckets",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            }
        ),
    )
    for group in ("admins", "readers"):
        iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName="admins", PolicyName="everything", PolicyDocument=everything)
    scope = _member_a_scope()
    # WHEN the member is evaluated
    result = evaluate(scope, "2025-06-02T03:30:00.000Z")
    # THEN the user fails FLEET.IAM.3 and FLEET.IAM.4, the role FLEET.IAM.2 and the group
    # FLEET.IAM.5 and FLEET.IAM.6, each saying why
    failing = {
        (f.control_id, f.resource_arn, f.detail)
        for f in result.failing
        if f.control_id.startswith("FLEET.IAM")
    }
    admin = 'a statement allows Action "*" on Resource "*"'
    user = f"arn:aws:iam::{MEMBER_A}:user/deployer"
    group = f"arn:aws:iam::{MEMBER_A}:group/admins"
    assert failing == {
        ("FLEET.IAM.3", user, admin),
        ("FLEET.IAM.4", user, "allows every action of: sqs:*"),
        ("FLEET.IAM.2", f"arn:aws:iam::{MEMBER_A}:role/ops", "allows every action of: s3:*"),
        ("FLEET.IAM.5", group, admin),
        ("FLEET.IAM.6", group, "allows every action of: sqs:*"),
    }
    # AND the role without an inline policy is not a resource of the role source, nor an error
    (roles,) = (source for source in registry.sources() if source.resource_type == "AwsIamRole")
    assert [resource.arn for resource in roles.collect(scope)] == [
        f"arn:aws:iam::{MEMBER_A}:role/ops"
    ]
    assert result.errors == []


EXAMPLES = sorted(
    Path(__file__).resolve().parents[3].joinpath("events/security_scanner").glob("*.json")
)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_events_are_accepted_shapes(path: Path) -> None:
    # GIVEN an example event from events/security_scanner WHEN the handler parses it
    event = json.loads(path.read_text())
    request = app.parse(event)
    # THEN it is the request its shape says (parse raises for anything it does not accept)
    if "Records" in event:
        assert isinstance(request, SqsBatch)
        assert ScanTargetRequest.model_validate_json(request.records[0].body)
    elif "detail-type" in event:
        assert isinstance(request, GuardDutyFindingEvent | CloudTrailEvent)
        assert request.detail.document() == event["detail"]
    elif event["action"] == "scan":
        assert isinstance(request, ScanRequest)
    else:
        assert isinstance(request, ScanTargetRequest)


@pytest.mark.parametrize(
    "key", ["aws:SecureTransport", "aws:securetransport", "AWS:SECURETRANSPORT"]
)
def test_a_tls_only_bucket_policy_passes_s3_5_whatever_the_case_of_its_condition_key(
    key: str,
) -> None:
    # GIVEN a bucket policy denying requests without TLS, its condition key written in any case
    # (IAM condition keys are case-insensitive, so each denies them all)
    bucket = Resource(
        "arn:aws:s3:::b",
        "AwsS3Bucket",
        {
            "policy": {
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                        "Condition": {"Bool": {key: "false"}},
                    }
                ]
            }
        },
    )
    # WHEN S3.5 evaluates it THEN it passes
    s3_5 = next(c for c in registry.checks_for("AwsS3Bucket") if c.control_id == "S3.5")
    assert s3_5.evaluate(bucket) is None


ANY_PRINCIPAL = "statement FunctionURLAllowPublicAccess allows any principal"


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}, ANY_PRINCIPAL),
        ({"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}, ANY_PRINCIPAL),
        (
            {
                "StringEquals": {
                    "lambda:FunctionUrlAuthType": "AWS_IAM",
                    "aws:PrincipalOrgID": "o-a1b2c3d4e5",
                }
            },
            None,
        ),
    ],
    ids=["public-url", "any-account-iam-url", "organization-iam-url"],
)
def test_a_function_url_open_to_any_principal_fails_lambda_1_whatever_its_auth_type(
    condition: dict[str, Any], reason: str | None
) -> None:
    # GIVEN the statement Lambda adds for a function URL (add-permission --principal "*"
    # --function-url-auth-type): its condition names the URL's auth type, which says how a
    # caller signs in (NONE: not at all), not who the caller may be
    function = Resource(
        "arn:aws:lambda:ap-south-1:1:function:f",
        "AwsLambdaFunction",
        {
            "runtime": "python3.12",
            "qualified_policies": {},
            "policy": {
                "Statement": [
                    {
                        "Sid": "FunctionURLAllowPublicAccess",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "lambda:InvokeFunctionUrl",
                        "Resource": "arn:aws:lambda:ap-south-1:1:function:f",
                        "Condition": condition,
                    }
                ]
            },
        },
    )
    # WHEN Lambda.1 evaluates it
    lambda_1 = next(
        c for c in registry.checks_for("AwsLambdaFunction") if c.control_id == "Lambda.1"
    )
    # THEN it fails unless a condition narrows the caller (here to the organization)
    assert lambda_1.evaluate(function) == reason


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::*"}}, "statement s3 allows any principal"),
        ({"StringLike": {"aws:SourceAccount": "*"}}, "statement s3 allows any principal"),
        (
            {"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}},
            "statement s3 allows any principal",
        ),
        ({"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::reports"}}, None),
        ({"StringEquals": {"aws:SourceAccount": ["222222222222", "333333333333"]}}, None),
    ],
    ids=["any-bucket", "any-account", "policy-variable", "one-bucket", "two-accounts"],
)
def test_a_condition_narrows_the_caller_of_lambda_1_only_with_fixed_values(
    condition: dict[str, Any], reason: str | None
) -> None:
    # GIVEN a function anyone may invoke on a condition on where the call comes from: a
    # wildcard or a policy variable there admits a call from any bucket or account (as AWS
    # Config's rule for Lambda.1 holds: only fixed values make a policy not public)
    function = Resource(
        "arn:aws:lambda:ap-south-1:1:function:f",
        "AwsLambdaFunction",
        {
            "runtime": "python3.12",
            "qualified_policies": {},
            "policy": {
                "Statement": [
                    {
                        "Sid": "s3",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "lambda:InvokeFunction",
                        "Resource": "arn:aws:lambda:ap-south-1:1:function:f",
                        "Condition": condition,
                    }
                ]
            },
        },
    )
    # WHEN Lambda.1 evaluates it
    lambda_1 = next(
        c for c in registry.checks_for("AwsLambdaFunction") if c.control_id == "Lambda.1"
    )
    # THEN it passes only when the condition names fixed sources
    assert lambda_1.evaluate(function) == reason


def test_a_function_s3_may_invoke_for_a_bucket_of_any_account_fails_lambda_1(
    mocked_aws: None,
) -> None:
    # GIVEN functions Amazon S3 may invoke: with no condition, for a bucket named by its ARN
    # alone (a bucket name is free again once deleted, for any account to take), and for a
    # bucket of member A's own account
    functions, role = member_a_functions()
    for name, conditions in (
        ("any-bucket", {}),
        ("named-bucket", {"SourceArn": "arn:aws:s3:::reports"}),
        ("own-bucket", {"SourceArn": "arn:aws:s3:::reports", "SourceAccount": MEMBER_A}),
    ):
        functions.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        functions.add_permission(
            FunctionName=name,
            StatementId="s3",
            Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com",
            **conditions,
        )
    # WHEN evaluated
    # THEN the two S3 may invoke for another account's bucket fail Lambda.1, as the control's
    # AWS Config rule has it, naming the statement; the one limited to member A passes
    result = evaluate(_member_a_scope(), "2025-06-02T03:30:00.000Z")
    failing = {
        f.resource_arn.rsplit(":", 1)[-1]: f.detail
        for f in result.failing
        if f.control_id == "Lambda.1"
    }
    assert failing == dict.fromkeys(
        ("any-bucket", "named-bucket"),
        "statement s3 lets Amazon S3 invoke it for a bucket of any account "
        "(no aws:SourceAccount condition of fixed values)",
    )


@pytest.mark.parametrize(
    ("principal", "condition", "failing"),
    [
        ({"Service": ["sns.amazonaws.com", "s3.amazonaws.com"]}, {}, True),
        ({"Service": "S3.amazonaws.com"}, {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::r"}}, True),
        ({"Service": "s3.amazonaws.com"}, {"StringLike": {"aws:SourceAccount": "*"}}, True),
        ({"Service": "s3.amazonaws.com"}, {"StringEquals": {"aws:sourceaccount": "1"}}, False),
        ({"Service": "events.amazonaws.com"}, {}, False),
    ],
    ids=["among-services", "any-case", "wildcard-account", "one-account", "another-service"],
)
def test_lambda_1_reads_the_s3_service_principal_in_every_shape(
    principal: dict[str, Any], condition: dict[str, Any], failing: bool
) -> None:
    # GIVEN a function's statement allowing a service principal on a condition
    statement = {
        "Sid": "s3",
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:ap-south-1:1:function:f",
        "Condition": condition,
    }
    function = Resource(
        "arn:aws:lambda:ap-south-1:1:function:f",
        "AwsLambdaFunction",
        {"runtime": "python3.12", "qualified_policies": {}, "policy": {"Statement": [statement]}},
    )
    # WHEN Lambda.1 evaluates it
    lambda_1 = next(
        c for c in registry.checks_for("AwsLambdaFunction") if c.control_id == "Lambda.1"
    )
    # THEN it fails when S3 is among the services (in any case) and no fixed aws:SourceAccount
    # limits it; another service is not judged here
    assert (lambda_1.evaluate(function) is not None) == failing


TLS_DENIAL: dict[str, Any] = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
WITHOUT_TLS = "no bucket policy statement denies requests without TLS"


@pytest.mark.parametrize(
    ("narrowed", "reason"),
    [
        ({"Action": "s3:GetObject"}, WITHOUT_TLS),
        ({"Principal": {"AWS": "arn:aws:iam::222222222222:role/reader"}}, WITHOUT_TLS),
        ({"Resource": "arn:aws:s3:::b/*"}, WITHOUT_TLS),
        ({"Resource": "arn:aws:s3:::b/reports/*"}, WITHOUT_TLS),
        ({}, None),
        ({"Principal": {"AWS": "*"}, "Action": ["S3:*"], "Resource": "*"}, None),
        ({"Action": "*", "Resource": ["arn:aws:s3:::b*", "arn:aws:s3:::b*/*"]}, None),
    ],
    ids=[
        "one-action",
        "one-principal",
        "objects-only",
        "one-prefix",
        "every-request",
        "everyone-any-case",
        "wildcards",
    ],
)
def test_s3_5_passes_only_a_tls_denial_that_covers_every_request_to_the_bucket(
    narrowed: dict[str, Any], reason: str | None
) -> None:
    # GIVEN a bucket whose policy denies requests without TLS, to everyone and every action on
    # the bucket and its objects, or only to some of them
    bucket = Resource(
        "arn:aws:s3:::b", "AwsS3Bucket", {"policy": {"Statement": [{**TLS_DENIAL, **narrowed}]}}
    )
    # WHEN S3.5 evaluates it
    s3_5 = next(c for c in registry.checks_for("AwsS3Bucket") if c.control_id == "S3.5")
    # THEN it passes only when the denial covers every request: a request without TLS that the
    # statement does not cover is allowed as before
    assert s3_5.evaluate(bucket) == reason


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        (
            {
                "Bool": {"aws:SecureTransport": "false"},
                "StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"},
            },
            WITHOUT_TLS,
        ),
        (
            {
                "Bool": {"aws:SecureTransport": "false"},
                "StringEquals": {"aws:PrincipalAccount": "222222222222"},
            },
            WITHOUT_TLS,
        ),
        ({"Bool": {"aws:SecureTransport": "false", "aws:ViaAWSService": "false"}}, WITHOUT_TLS),
        ({"Bool": {"aws:SecureTransport": ["false"]}}, None),
        ({"Bool": {"aws:SecureTransport": False}}, None),
    ],
    ids=["outside-one-endpoint", "one-account", "not-via-a-service", "listed-value", "json-false"],
)
def test_s3_5_fails_a_tls_denial_that_further_conditions_narrow_to_some_requests(
    condition: dict[str, Any], reason: str | None
) -> None:
    # GIVEN a bucket whose policy denies every request without TLS to everyone, on the bucket
    # and its objects, but on a further condition: every condition of a statement must hold for
    # it to apply, so one on another key denies only the requests without TLS that also match
    # it (outside one VPC endpoint, from one account, not through an AWS service)
    bucket = Resource(
        "arn:aws:s3:::b",
        "AwsS3Bucket",
        {"policy": {"Statement": [{**TLS_DENIAL, "Condition": condition}]}},
    )
    # WHEN S3.5 evaluates it
    s3_5 = next(c for c in registry.checks_for("AwsS3Bucket") if c.control_id == "S3.5")
    # THEN it fails: the other requests without TLS are allowed as before; the denial on
    # aws:SecureTransport alone passes, its value as a list or a JSON false
    assert s3_5.evaluate(bucket) == reason


@pytest.mark.parametrize(
    ("control_id", "resource", "reason"),
    [
        pytest.param(
            "IAM.1",
            Resource(
                "arn:aws:iam::1:policy/p",
                "AwsIamPolicy",
                {"documents": [{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}]},
            ),
            None,
            id="iam-1-a-denial-of-everything",
        ),
        pytest.param(
            "FLEET.IAM.4",
            Resource(
                "arn:aws:iam::1:user/u",
                "AwsIamUser",
                {
                    "documents": [
                        {"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}}
                    ]
                },
            ),
            None,
            id="fleet-iam-4-a-denial-of-a-service",
        ),
        pytest.param(
            "Lambda.1",
            Resource(
                "arn:aws:lambda:ap-south-1:1:function:f",
                "AwsLambdaFunction",
                {
                    "qualified_policies": {},
                    "policy": {
                        "Statement": [
                            {"Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction"}
                        ]
                    },
                },
            ),
            None,
            id="lambda-1-a-denial-to-anyone",
        ),
        pytest.param(
            "S3.5",
            Resource(
                "arn:aws:s3:::b",
                "AwsS3Bucket",
                {"policy": {"Statement": [{**TLS_DENIAL, "Effect": "Allow"}]}},
            ),
            WITHOUT_TLS,
            id="s3-5-an-allow-on-the-tls-condition",
        ),
    ],
)
def test_a_statement_of_the_other_effect_is_not_what_a_policy_control_judges(
    control_id: str, resource: Resource, reason: str | None
) -> None:
    # GIVEN a policy whose only statement has the effect the control does not judge (a denial
    # where an allow grants too much, an allow where a denial is required)
    # WHEN the control evaluates it
    control = next(
        c for c in registry.checks_for(resource.resource_type) if c.control_id == control_id
    )
    # THEN the statement counts for nothing: it neither fails an allow control nor passes S3.5
    assert control.evaluate(resource) == reason


TOPIC_ARN = f"arn:aws:sns:{REGION}:{MEMBER_A}:plain-topic"
TOPICS_ONE_WITHOUT_ITS_ARN = (
    b'<ListTopicsResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ListTopicsResult>'
    b"<Topics><member></member><member><TopicArn>" + TOPIC_ARN.encode() + b"</TopicArn></member>"
    b"</Topics></ListTopicsResult>"
    b"<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></ListTopicsResponse>"
)
"""SNS's ListTopics answer, root and all, listing a topic without its TopicArn and
`plain-topic`."""
ROLES_ONE_WITHOUT_ITS_ARN = (
    b'<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult>'
    b"<IsTruncated>false</IsTruncated><Roles><member><RoleName>admin</RoleName></member></Roles>"
    b"</ListRolesResult>"
    b"<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></ListRolesResponse>"
)
"""IAM's ListRoles answer, root and all, listing a role without its Arn."""


@pytest.mark.parametrize(
    ("service", "operation", "body", "failed_type", "call", "shown", "judged"),
    [
        pytest.param(
            "sns", "ListTopics", TOPICS_ONE_WITHOUT_ITS_ARN, "AwsSnsTopic", "ListTopics", "{}",
            {("SNS.1", "plain-topic"), ("SQS.1", "plain")}, id="a-topic-without-its-arn",
        ),
        pytest.param(
            "iam", "ListRoles", ROLES_ONE_WITHOUT_ITS_ARN, "AwsIamRole", "ListRoles",
            "{'RoleName': 'admin'}", {("SNS.1", "plain-topic"), ("SQS.1", "plain")},
            id="a-role-without-its-arn",
        ),
    ],
)  # fmt: skip
def test_a_listed_item_without_its_arn_is_the_listing_error_and_the_others_are_judged(
    mocked_aws: None,
    *,
    service: str,
    operation: str,
    body: bytes,
    failed_type: str,
    call: str,
    shown: str,
    judged: set[tuple[str, str]],
) -> None:
    # GIVEN an unencrypted queue and a topic without a KMS key, and `service` answering its
    # listing with an item without the ARN it is reported under (a query service's XML member
    # without its element, which botocore parses into an item without the key)
    session = member_session(MEMBER_A)
    clients = {name: session.client(name) for name in ("sqs", "sns", "iam")}
    clients["sqs"].create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})
    clients["sns"].create_topic(Name="plain-topic")
    answer = answer_malformed(clients[service], service, operation, body)
    scope = _member_a_scope(lambda name: clients.get(name) or session.client(name))
    # WHEN the member is evaluated
    result = evaluate(scope, "2025-06-02T03:30:00.000Z")
    # THEN the item is the one error, its listing's, instead of the KeyError that ended the
    # scan; the type is incomplete (none of its findings resolved) and the listing's other
    # items and the other types are judged
    assert answer.answered >= 1
    assert result.errors == [
        {
            "resource_type": failed_type,
            "error": f"{call} answered without a text ARN for each listed item, not its "
            f"answer: {shown}",
        }
    ]
    assert failed_type not in result.complete_types
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert {item for item in failing if item[0] in ("SQS.1", "SNS.1")} == judged


GROUPS_WITHOUT_AN_ID_OR_RULES = (
    b'<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    b"<requestId>r-1</requestId><securityGroupInfo>"
    b"<item><groupName>nameless</groupName><ipPermissions/></item>"
    b"<item><groupId>sg-0norules</groupId><groupName>no-rules</groupName></item>"
    b"<item><groupId>sg-0open</groupId><groupName>open-ssh</groupName><ipPermissions><item>"
    b"<ipProtocol>tcp</ipProtocol><fromPort>22</fromPort><toPort>22</toPort>"
    b"<ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item></ipPermissions></item>"
    b"</securityGroupInfo></DescribeSecurityGroupsResponse>"
)
"""EC2's DescribeSecurityGroups answer, root and all, listing a group without its groupId, one
without its ipPermissions (which EC2 sends empty too) and `sg-0open`, open to SSH."""


def test_a_security_group_listed_without_its_id_or_rules_fails_alone_and_the_others_are_judged(
    mocked_aws: None,
) -> None:
    # GIVEN an unencrypted queue, and member A's EC2 listing a security group without its
    # GroupId, one without its IpPermissions and one open to SSH from anywhere
    session = member_session(MEMBER_A)
    clients = {name: session.client(name) for name in ("sqs", "ec2")}
    clients["sqs"].create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})
    answer = answer_malformed(
        clients["ec2"], "ec2", "DescribeSecurityGroups", GROUPS_WITHOUT_AN_ID_OR_RULES
    )
    scope = _member_a_scope(lambda name: clients.get(name) or session.client(name))
    # WHEN the member is evaluated
    result = evaluate(scope, "2025-06-02T03:30:00.000Z")
    # THEN the group without its id is the listing's error (none of the type's findings
    # resolved) and the one without its rules its own, instead of the KeyError that ended the
    # scan of every target, or no rules read as a fixed group
    assert answer.answered >= 1
    no_rules = f"arn:aws:ec2:{REGION}:{MEMBER_A}:security-group/sg-0norules"
    [listing_error, group_error] = result.errors
    assert listing_error["resource_type"] == compute.SECURITY_GROUP
    assert listing_error["error"].startswith(
        "DescribeSecurityGroups answered without a text ARN for each listed item, not its "
        "answer: {'GroupName': 'nameless'"
    )
    assert group_error["resource"] == no_rules
    assert group_error["error"].startswith(
        "UnreadableAnswerError: DescribeSecurityGroups answered without IpPermissions"
    )
    assert compute.SECURITY_GROUP not in result.complete_types
    assert no_rules in result.unreadable_arns
    # AND the listing's other group and the other types are judged
    failing = {(f.control_id, f.resource_arn.rsplit(":", 1)[-1]) for f in result.failing}
    assert {("EC2.13", "security-group/sg-0open"), ("SQS.1", "plain")} <= failing


@dataclass
class OneLookDeadline:
    """An invocation whose time allows the first look at it and no other."""

    looks: int = 0

    def allows(self, seconds: float) -> bool:
        self.looks += 1
        return self.looks == 1


def test_a_target_always_out_of_time_reads_each_type_first_on_some_day(mocked_aws: None) -> None:
    # GIVEN member A, scanned on as many days in a row as there are resource types, each time
    # with time for its first look only (a target that always runs out of time)
    registry_sources = [source.resource_type for source in registry.sources()]
    read_first: list[str] = []
    for offset in range(len(registry_sources)):
        scope = replace(_member_a_scope(), scanned_on=SCAN_DAY + timedelta(days=offset))
        # WHEN the target is evaluated
        result = evaluate(scope, "2025-06-02T03:30:00.000Z", OneLookDeadline())
        not_read = {
            error["resource_type"]
            for error in result.errors
            if error.get("error", "").startswith("not read")
        }
        [read] = set(registry_sources) - not_read
        read_first.append(read)
    # THEN each day another type was the one read, and every type was read on one of the days,
    # where a fixed order left the same types unread at every scan
    assert sorted(read_first) == sorted(registry_sources)
