"""fleet_shared.malformed_answers: an answer of its call's shape holding a value botocore's parser
cannot read (a timestamp that is no date, an XML number that is no number, a structure sent as a
string) fails its call with a `ResponseParserError`, one of the errors of one target, instead of
the bare Python error botocore raised; botocore's own parser errors and good answers pass as
they were."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError
from botocore.parsers import ResponseParserError

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.malformed_answers import MalformedAnswerError
from fleet_shared.sessions import AccountSessions
from fleet_shared.validation_errors import ECHO_LIMIT
from tests.handlers.faults import answer_malformed

REGION = "ap-south-1"
MOTO_ACCOUNT = "123456789012"
NOT_A_DATE = "not-a-date" + "x" * 5000
"""A timestamp botocore cannot parse, longer than any error may repeat."""
NOT_A_DATE_OVER_LINES = "not-a-date\nAll checks passed \x1b[31m\u2028" + "x" * 5000
"""A timestamp botocore cannot parse that runs over lines, with a terminal escape: its second
line poses as a fact of the error."""


@pytest.fixture
def sessions(mocked_aws: None) -> AccountSessions:
    """The sessions a function builds, in moto."""
    return AccountSessions("security_scanner", "lambda-fleet-member", MOTO_ACCOUNT)


def iam_roles(create_date: str) -> bytes:
    return (
        '<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult>'
        "<IsTruncated>false</IsTruncated><Roles><member><Path>/</Path><RoleName>r</RoleName>"
        f"<RoleId>AROA1</RoleId><Arn>arn:aws:iam::{MOTO_ACCOUNT}:role/r</Arn>"
        f"<CreateDate>{create_date}</CreateDate></member></Roles></ListRolesResult>"
        "</ListRolesResponse>"
    ).encode()


@dataclass(frozen=True)
class Case:
    """A call, the answer it gets (HTTP 200, the call's own shape) and the start of the error
    it must fail with, after `Unable to parse response: `."""

    service: str
    operation: str
    arguments: dict[str, Any]
    body: bytes
    content_type: str
    message: str


MALFORMED_ANSWERS = [
    pytest.param(
        Case(
            "eks",
            "DescribeCluster",
            {"name": "c"},
            json.dumps({"cluster": {"name": "c", "createdAt": NOT_A_DATE_OVER_LINES}}).encode(),
            "application/json",
            "DescribeCluster answered a value botocore cannot read: ValueError: Invalid "
            'timestamp "not-a-date\\nAll checks passed \\x1b[31m\\u2028xxx',
        ),
        id="rest-json-timestamp",
    ),
    pytest.param(
        Case(
            "eks",
            "DescribeNodegroup",
            {"clusterName": "c", "nodegroupName": "n"},
            json.dumps({"nodegroup": {"nodegroupName": "n", "scalingConfig": "three"}}).encode(),
            "application/json",
            "DescribeNodegroup answered a value botocore cannot read: AttributeError",
        ),
        id="rest-json-structure-as-a-string",
    ),
    pytest.param(
        Case(
            "iam",
            "ListRoles",
            {},
            iam_roles(NOT_A_DATE),
            "text/xml",
            'ListRoles answered a value botocore cannot read: ValueError: Invalid timestamp "not',
        ),
        id="query-timestamp",
    ),
    pytest.param(
        Case(
            "autoscaling",
            "DescribeAutoScalingGroups",
            {},
            b'<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/'
            b'2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups><member>'
            b"<AutoScalingGroupName>g</AutoScalingGroupName><DesiredCapacity>many"
            b"</DesiredCapacity></member></AutoScalingGroups></DescribeAutoScalingGroupsResult>"
            b"</DescribeAutoScalingGroupsResponse>",
            "text/xml",
            "DescribeAutoScalingGroups answered a value botocore cannot read: ValueError",
        ),
        id="query-integer",
    ),
    pytest.param(
        Case(
            "s3",
            "ListBuckets",
            {},
            b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Buckets>'
            b"<Bucket><Name>b</Name><CreationDate>yesterday</CreationDate></Bucket></Buckets>"
            b"</ListAllMyBucketsResult>",
            "application/xml",
            "ListBuckets answered a value botocore cannot read: ValueError: Invalid timestamp",
        ),
        id="rest-xml-timestamp",
    ),
]


@pytest.mark.parametrize("case", MALFORMED_ANSWERS)
def test_an_answer_botocore_cannot_read_fails_its_call_as_one_targets_error(
    sessions: AccountSessions, case: Case
) -> None:
    # GIVEN a fleet session's client whose call is answered (HTTP 200) with the call's own shape
    # holding a value botocore's parser cannot convert
    client = sessions.hub_client(case.service, REGION)
    answer = answer_malformed(
        client, case.service, case.operation, case.body, content_type=case.content_type
    )
    method = client.meta.method_to_api_mapping
    call = getattr(client, next(name for name, api in method.items() if api == case.operation))
    # WHEN the call is made
    with pytest.raises(AWS_CALL_ERRORS) as raised:
        call(**case.arguments)
    # THEN it fails with a parser error of the call (and a BotoCoreError, as a foreign answer),
    # naming the operation and what could not be read, in one short line (control characters
    # escaped)
    assert answer.answered == 1
    error = raised.value
    assert isinstance(error, MalformedAnswerError)
    assert isinstance(error, ResponseParserError)
    assert isinstance(error, BotoCoreError)
    assert str(error).startswith(f"Unable to parse response: {case.message}")
    assert len(str(error)) <= ECHO_LIMIT
    assert str(error).isprintable()


def test_an_answer_botocore_refuses_itself_keeps_botocores_error(
    sessions: AccountSessions,
) -> None:
    # GIVEN EC2 answering DescribeInstances with a body that is not XML, which botocore's own
    # parser refuses
    ec2 = sessions.hub_client("ec2", REGION)
    answer_malformed(ec2, "ec2", "DescribeInstances", b"<<not xml")
    # WHEN the call is made
    with pytest.raises(ResponseParserError) as raised:
        ec2.describe_instances()
    # THEN the error is botocore's, as it was
    assert type(raised.value) is ResponseParserError


def test_a_well_formed_answer_is_parsed_as_before(sessions: AccountSessions) -> None:
    # GIVEN IAM answering ListRoles with a role whose CreateDate is a timestamp
    iam = sessions.hub_client("iam", REGION)
    answer_malformed(
        iam, "iam", "ListRoles", iam_roles("2026-11-28T04:00:00Z"), content_type="text/xml"
    )
    # WHEN the roles are listed
    [role] = iam.list_roles()["Roles"]
    # THEN the role is read, its date parsed
    assert (role["RoleName"], role["CreateDate"].isoformat()) == ("r", "2026-11-28T04:00:00+00:00")
