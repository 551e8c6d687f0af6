"""Event mode: risk scores of GuardDuty findings and CloudTrail events, and their alerts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError

from catalog.functions import function_spec
from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from handlers.security_scanner.exceptions import UnreadableCountriesError
from handlers.security_scanner.risk import (
    DIRECTION_UNREAD,
    SecurityEvent,
    assess,
    from_cloudtrail,
)
from handlers.security_scanner.rule_directions import UNREAD_DIRECTION
from handlers.security_scanner.scan import ScanServices
from handlers.security_scanner.security_event_models import CloudTrailRecord
from tests.handlers.conftest import START_TIME
from tests.handlers.deadlines import (
    killed_while_calling_then_retried,
    killed_while_publishing_then_retried,
)
from tests.handlers.faults import (
    answer_malformed,
    fail_every_attempt,
    refuse_completions,
    refuse_every_ec2_attempt,
)
from tests.handlers.fresh_interpreter import REPOSITORY, probe_output
from tests.handlers.member_accounts import MEMBER_A, REGION, member_session
from tests.handlers.unreadable_state_entries import SECRET

DAY = 24 * 3600


def _guardduty(
    event_id: str, severity: float, country: str | None = None, at: datetime = START_TIME
) -> dict[str, Any]:
    action: dict[str, Any] = {"actionType": "AWS_API_CALL"}
    if country:
        action["awsApiCallAction"] = {"remoteIpDetails": {"country": {"countryName": country}}}
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": MEMBER_A,
        "region": REGION,
        "time": iso_z(at),
        "resources": [],
        "detail": {
            "accountId": MEMBER_A,
            "region": REGION,
            "severity": severity,
            "type": "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
            "title": "Unusual console login",
            "arn": f"arn:aws:guardduty:{REGION}:{MEMBER_A}:detector/d/finding/{event_id}",
            "resource": {"accessKeyDetails": {"principalId": "AIDAEXAMPLE", "userType": "IAMUser"}},
            "service": {"action": action},
        },
    }


def _finding_update(event_id: str, finding_id: str, severity: float, count: int) -> dict[str, Any]:
    """An EventBridge event (id `event_id`) of GuardDuty's `count`-th update of the finding
    `finding_id`: every update is a new event with the same finding id."""
    event = _guardduty(event_id, severity)
    event["detail"]["id"] = finding_id
    event["detail"]["arn"] = (
        f"arn:aws:guardduty:{REGION}:{MEMBER_A}:detector/d/finding/{finding_id}"
    )
    event["detail"]["updatedAt"] = f"2025-06-{count:02d}T03:30:00.000Z"
    event["detail"]["service"]["count"] = count
    return event


def _cloudtrail(event_id: str, detail: dict[str, Any], detail_type: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "aws.signin" if "Sign In" in detail_type else "aws.ec2",
        "account": MEMBER_A,
        "region": REGION,
        "time": "2025-06-02T03:30:00Z",
        "resources": [],
        "detail": detail,
    }


ROOT_LOGIN_WITHOUT_MFA = {
    "eventName": "ConsoleLogin",
    "eventSource": "signin.amazonaws.com",
    "userIdentity": {"type": "Root", "arn": f"arn:aws:iam::{MEMBER_A}:root"},
    "responseElements": {"ConsoleLogin": "Success"},
    "additionalEventData": {"MFAUsed": "No"},
    "sourceIPAddress": "198.51.100.7",
}
WORLD_OPEN_SG = {
    "eventName": "AuthorizeSecurityGroupIngress",
    "eventSource": "ec2.amazonaws.com",
    "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{MEMBER_A}:user/dev"},
    "requestParameters": {
        "groupId": "sg-1",
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                }
            ]
        },
    },
}

SSH_TO_THE_WORLD = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"}
ALL_TRAFFIC_WITH_THE_WORLD = {"IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"}
RULE_EC2_DOES_NOT_KNOW = "sgr-0123456789abcdef0"


def _rules_modified(
    *rules: Any, error_code: str | None = None, rule_ids: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A CloudTrail record of ModifySecurityGroupRules setting rules `rule_ids` (by default
    sgr-1, sgr-2, ...) to `rules`, shaped as CloudTrail writes it: the request wrapped in
    ModifySecurityGroupRulesRequest, each update under the query API's wire name
    SecurityGroupRule with its position as `tag` (one update an object, several a list)."""
    updates = [
        {
            "SecurityGroupRuleId": rule_ids[tag - 1] if rule_ids else f"sgr-{tag}",
            "tag": tag,
            "SecurityGroupRule": rule,
        }
        for tag, rule in enumerate(rules, start=1)
    ]
    detail = {
        "eventName": "ModifySecurityGroupRules",
        "eventSource": "ec2.amazonaws.com",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{MEMBER_A}:user/dev"},
        "requestParameters": {
            "ModifySecurityGroupRulesRequest": {
                "GroupId": "sg-1",
                "SecurityGroupRule": updates[0] if len(updates) == 1 else updates,
            }
        },
        "responseElements": {"ModifySecurityGroupRulesResponse": {"return": True}},
    }
    if error_code:
        detail.update(errorCode=error_code, responseElements=None)
    return detail


def test_root_console_login_without_mfa_is_critical(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any
) -> None:
    # GIVEN a root console sign-in without MFA WHEN the event arrives
    result = scanner(
        _cloudtrail("e-1", ROOT_LOGIN_WITHOUT_MFA, "AWS Console Sign In via CloudTrail")
    )
    # THEN both rules score it (60 + 40) and a critical alert names the root principal
    assert result["rules"] == ["ROOT_USER", "CONSOLE_LOGIN_WITHOUT_MFA"]
    assert result["score"] == 100
    alerts = alert_inbox.receive()
    assert [a.attributes["severity"] for a in alerts] == ["critical"]
    assert alerts[0].alert["resource"] == f"arn:aws:iam::{MEMBER_A}:root"


def test_security_group_opened_to_the_world_is_a_warning_and_routine_calls_are_silent(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any
) -> None:
    # GIVEN a security group opened to 0.0.0.0/0 and an ordinary read-only call
    routine = {
        "eventName": "DescribeInstances",
        "eventSource": "ec2.amazonaws.com",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{MEMBER_A}:user/dev"},
    }
    # WHEN both arrive
    opened = scanner(_cloudtrail("e-2", WORLD_OPEN_SG, "AWS API Call via CloudTrail"))
    quiet = scanner(_cloudtrail("e-3", routine, "AWS API Call via CloudTrail"))
    # THEN only the opening alerts, as a warning (40 points)
    assert (opened["score"], opened["severity"]) == (40, "warning")
    assert (quiet["score"], quiet["severity"], quiet["alerted"]) == (0, None, False)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["warning"]


def test_a_security_group_rule_set_to_the_world_alerts_once_and_one_set_to_a_private_cidr_not(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any
) -> None:
    # GIVEN a ModifySecurityGroupRules call setting a rule to SSH from 0.0.0.0/0, and one
    # setting a rule to SSH from a private network
    opened = _cloudtrail(
        "e-mod-1", _rules_modified(SSH_TO_THE_WORLD), "AWS API Call via CloudTrail"
    )
    private = _rules_modified({**SSH_TO_THE_WORLD, "CidrIpv4": "10.0.0.0/8"})
    # WHEN the first arrives twice (EventBridge delivers at least once) and the second once
    first, again = scanner(opened), scanner(opened)
    quiet = scanner(_cloudtrail("e-mod-2", private, "AWS API Call via CloudTrail"))
    # THEN the first scores as a security group opened to the world does (40, a warning) and
    # alerts once; the second scores nothing
    assert (first["score"], first["rules"], first["severity"]) == (
        40,
        ["SECURITY_GROUP_OPEN_TO_WORLD"],
        "warning",
    )
    assert again["status"] == "duplicate"
    assert (quiet["score"], quiet["severity"], quiet["alerted"]) == (0, None, False)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["warning"]


def _member_group_rule_ids() -> dict[str, str]:
    """The rules of a new security group of member A, by direction: its default outbound rule
    (all traffic to 0.0.0.0/0) and an inbound SSH rule from a private network."""
    ec2 = member_session(MEMBER_A).client("ec2")
    group_id = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
            }
        ],
    )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]
    return {
        "outbound" if rule["IsEgress"] else "inbound": rule["SecurityGroupRuleId"] for rule in rules
    }


def _refuse_describing_rules(ec2: Any, _: dict[str, str]) -> None:
    refuse_every_ec2_attempt(ec2, "DescribeSecurityGroupRules")


def _describe_the_outbound_rule_without_its_direction(ec2: Any, rule_ids: dict[str, str]) -> None:
    # A well-formed EC2 answer naming the rule, without `isEgress`.
    rule = f"<item><securityGroupRuleId>{rule_ids['outbound']}</securityGroupRuleId></item>"
    body = f"<DescribeSecurityGroupRulesResponse><securityGroupRuleSet>{rule}"
    body += "</securityGroupRuleSet></DescribeSecurityGroupRulesResponse>"
    answer_malformed(
        ec2, "ec2", "DescribeSecurityGroupRules", body.encode(), content_type="text/xml"
    )


@pytest.mark.parametrize(
    ("updated", "fault", "alerts", "unread"),
    [
        pytest.param(("outbound",), None, [], (), id="the-default-outbound-rule"),
        pytest.param(("inbound",), None, [False], (), id="an-inbound-rule"),
        pytest.param(
            (RULE_EC2_DOES_NOT_KNOW, "inbound"),
            None,
            [False],
            (RULE_EC2_DOES_NOT_KNOW,),
            id="a-rule-ec2-does-not-know-and-an-inbound-one",
        ),
        pytest.param(
            ("outbound", RULE_EC2_DOES_NOT_KNOW),
            None,
            [True],
            (RULE_EC2_DOES_NOT_KNOW,),
            id="the-outbound-rule-and-one-ec2-does-not-know",
        ),
        pytest.param(
            ("outbound",),
            _refuse_describing_rules,
            [True],
            ("outbound",),
            id="the-outbound-rule-ec2-refuses-to-describe",
        ),
        pytest.param(
            ("outbound",),
            _describe_the_outbound_rule_without_its_direction,
            [True],
            ("outbound",),
            id="the-outbound-rule-described-without-IsEgress",
        ),
    ],
)
def test_a_rule_set_to_the_world_opens_its_group_unless_ec2_answers_it_is_outbound(  # noqa: PLR0917 - pytest passes fixtures positionally
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
    caplog: pytest.LogCaptureFixture,
    updated: tuple[str, ...],
    fault: Callable[[Any, dict[str, str]], None] | None,
    alerts: list[bool],
    unread: tuple[str, ...],
) -> None:
    # GIVEN a security group of member A with its default outbound rule and an inbound rule, and
    # a ModifySecurityGroupRules call setting the `updated` rules to all traffic with 0.0.0.0/0
    rule_ids = _member_group_rule_ids()
    detail = _rules_modified(
        *[ALL_TRAFFIC_WITH_THE_WORLD] * len(updated),
        rule_ids=tuple(rule_ids.get(name, name) for name in updated),
    )
    services = build_scanner_services()
    # AND, with a `fault`, EC2 refusing the member role DescribeSecurityGroupRules, or answering
    # it without the rule's direction
    if fault is not None:
        fault(services.member_client("ec2", MEMBER_A, REGION), rule_ids)
    # WHEN the event arrives
    result = scanner(_cloudtrail("e-mod-dir", detail, "AWS API Call via CloudTrail"), services)
    # THEN it opens the group unless EC2 answered that its one updated rule is outbound; a rule
    # whose direction EC2 did not give counts as inbound, and the alert (one per `alerts`) says
    # so (True) unless a rule EC2 answered as inbound opened the group anyway (False)
    assert result["rules"] == ["SECURITY_GROUP_OPEN_TO_WORLD"] * len(alerts)
    details = [alert.alert["detail"] for alert in alert_inbox.receive()]
    assert [DIRECTION_UNREAD in detail for detail in details] == alerts
    # AND each `unread` rule's warning names it and why EC2 was not heard
    warnings = [record for record in caplog.records if record.msg == UNREAD_DIRECTION]
    assert [record.rule_id for record in warnings] == [rule_ids.get(name, name) for name in unread]
    assert all(record.reason for record in warnings)


def _matched_rules(detail: dict[str, Any]) -> list[str]:
    """The risk rules a CloudTrail record `detail` of member A matches."""
    record = CloudTrailRecord.model_validate(detail)
    return [
        rule.rule_id for rule in assess(from_cloudtrail("e-1", MEMBER_A, REGION, record)).matched
    ]


@pytest.mark.parametrize(
    ("detail", "opened"),
    [
        pytest.param(
            _rules_modified(
                {**SSH_TO_THE_WORLD, "CidrIpv4": "10.0.0.0/8"},
                {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "CidrIpv6": "::/0"},
            ),
            True,
            id="the-second-of-two-updates-rdp-from-::/0",
        ),
        pytest.param(
            _rules_modified({**SSH_TO_THE_WORLD, "FromPort": "20", "ToPort": "25"}),
            True,
            id="a-tcp-range-around-22-written-as-text",
        ),
        pytest.param(
            _rules_modified(
                {**SSH_TO_THE_WORLD, "IpProtocol": "udp", "FromPort": 0, "ToPort": 65535}
            ),
            True,
            id="every-udp-port",
        ),
        pytest.param(
            {
                **_rules_modified(),
                "requestParameters": {
                    "GroupId": "sg-1",
                    "SecurityGroupRules": [
                        {
                            "SecurityGroupRuleId": "sgr-1",
                            "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"},
                        }
                    ],
                },
            },
            True,
            id="all-traffic-in-the-apis-own-shape",
        ),
        pytest.param(
            {
                **_rules_modified(),
                "requestParameters": {
                    "ModifySecurityGroupRulesRequest": {
                        "GroupId": "sg-1",
                        "SecurityGroupRule": {
                            "items": [
                                {
                                    "SecurityGroupRuleId": "sgr-1",
                                    "SecurityGroupRule": {"CidrIpv6": "::/0"},
                                }
                            ]
                        },
                    }
                },
            },
            True,
            id="an-items-list-of-a-rule-without-protocol-or-ports",
        ),
        pytest.param(
            _rules_modified({**SSH_TO_THE_WORLD, "FromPort": 443, "ToPort": 443}),
            False,
            id="a-web-port-from-0.0.0.0/0",
        ),
        pytest.param(
            _rules_modified(
                {"IpProtocol": "udp", "FromPort": 3389, "ToPort": 3389, "CidrIpv6": "::/0"}
            ),
            False,
            id="udp-3389",
        ),
        pytest.param(
            _rules_modified(SSH_TO_THE_WORLD, error_code="UnauthorizedOperation"),
            False,
            id="refused",
        ),
    ],
)
def test_a_rule_set_to_the_world_opens_a_group_on_ssh_rdp_all_traffic_or_every_port(
    detail: dict[str, Any], opened: bool
) -> None:
    # GIVEN the CloudTrail record of a ModifySecurityGroupRules call WHEN it is assessed
    matched = _matched_rules(detail)
    # THEN it opens the group to the world when one of its updates sets a rule from 0.0.0.0/0
    # or ::/0 on what the scanner's controls judge (TCP 22 or 3389, all traffic, every port), and
    # the call succeeded
    assert matched == ["SECURITY_GROUP_OPEN_TO_WORLD"] * opened


def _ingress_authorized(request_parameters: dict[str, Any]) -> dict[str, Any]:
    """A CloudTrail record of AuthorizeSecurityGroupIngress with `request_parameters`."""
    return {**WORLD_OPEN_SG, "requestParameters": {"groupId": "sg-1", **request_parameters}}


@pytest.mark.parametrize(
    ("detail", "opened"),
    [
        pytest.param(
            _ingress_authorized(
                {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"}
            ),
            True,
            id="authorize-ingress-one-rule-form-from-0.0.0.0/0",
        ),
        pytest.param(
            _ingress_authorized(
                {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "10.0.0.0/8"}
            ),
            False,
            id="authorize-ingress-one-rule-form-from-a-private-network",
        ),
        pytest.param(
            _ingress_authorized(
                {
                    "ipPermissions": {
                        "items": [
                            {
                                "ipProtocol": "tcp",
                                "fromPort": 22,
                                "toPort": 22,
                                "ipv6Ranges": {"items": [{"cidrIpv6": "0:0:0:0:0:0:0:0/0"}]},
                            }
                        ]
                    }
                }
            ),
            True,
            id="authorize-ingress-from-::/0-written-out",
        ),
        pytest.param(
            _ingress_authorized(
                {
                    "ipPermissions": {
                        "items": [
                            {
                                "ipProtocol": "tcp",
                                "fromPort": 22,
                                "toPort": 22,
                                "ipRanges": {
                                    "items": [{"cidrIp": "0.0.0.0/1"}, {"cidrIp": "128.0.0.0/1"}]
                                },
                            }
                        ]
                    }
                }
            ),
            True,
            id="authorize-ingress-from-both-halves-of-the-internet",
        ),
        pytest.param(
            _rules_modified({**SSH_TO_THE_WORLD, "CidrIpv4": None, "CidrIpv6": "0::/0"}),
            True,
            id="modify-rule-to-::/0-as-0::/0",
        ),
        pytest.param(
            _rules_modified({**SSH_TO_THE_WORLD, "CidrIpv4": "0.0.0.0/00"}),
            True,
            id="modify-rule-to-0.0.0.0/00",
        ),
        pytest.param(
            _rules_modified({**SSH_TO_THE_WORLD, "CidrIpv4": "0.0.0.0/1"}),
            False,
            id="modify-rule-to-half-the-internet",
        ),
    ],
)
def test_a_group_opened_to_the_world_scores_whichever_form_the_call_wrote_it_in(
    detail: dict[str, Any], opened: bool
) -> None:
    # GIVEN the CloudTrail record of a call adding or setting a rule: AuthorizeSecurityGroupIngress
    # in the API's one-rule form (the SDKs' CidrIp, IpProtocol, FromPort and ToPort, no
    # IpPermissions), or a CIDR of every address written other than 0.0.0.0/0 or ::/0
    # WHEN it is assessed
    matched = _matched_rules(detail)
    # THEN a rule from every address opens the group to the world however it is written, and
    # one from part of the addresses does not
    assert matched == ["SECURITY_GROUP_OPEN_TO_WORLD"] * opened


def test_guardduty_severity_is_the_base_score_and_a_redelivery_does_not_alert_twice(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any
) -> None:
    # GIVEN a high GuardDuty finding (7.5) WHEN it is delivered twice
    first = scanner(_guardduty("gd-1", 7.5))
    second = scanner(_guardduty("gd-1", 7.5))
    # THEN it scores 75 (critical) once, and the redelivery is recognised
    assert (first["score"], first["severity"]) == (75, "critical")
    assert second["status"] == "duplicate"
    assert len(alert_inbox.receive()) == 1


def test_a_redelivered_event_that_raised_no_alert_is_answered_as_scored_not_duplicate(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any
) -> None:
    # GIVEN a low GuardDuty finding carrying a country (scored 5: no alert)
    first = scanner(_guardduty("gd-5", 0.5, country="India"))
    assert (first["score"], first["alerted"]) == (5, False)
    # WHEN it is delivered again
    again = scanner(_guardduty("gd-5", 0.5, country="India"))
    # THEN no alert went out, so the redelivery is answered with the stored score, not as a
    # duplicate of an alert
    assert again == first
    assert alert_inbox.receive() == []


def test_access_from_a_new_country_adds_risk_within_thirty_days_only(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a principal seen from India (its baseline: a first sighting is not "new")
    baseline = scanner(_guardduty("gd-10", 2.0, country="India"))
    assert baseline["rules"] == []
    # WHEN, a day later, it acts from Brazil THEN the new country adds 30 points (20 -> 50)
    fake_clock.advance(DAY)
    brazil = scanner(_guardduty("gd-11", 2.0, country="Brazil"))
    assert brazil["rules"] == ["NEW_COUNTRY"]
    assert (brazil["score"], brazil["severity"]) == (50, "warning")
    # AND again from Brazil a day later, it is no longer new
    fake_clock.advance(DAY)
    assert scanner(_guardduty("gd-12", 2.0, country="Brazil"))["rules"] == []
    # AND after 31 days without India, India counts as new again
    fake_clock.advance(31 * DAY)
    scanner(_guardduty("gd-13", 2.0, country="Brazil", at=fake_clock.now()))
    fake_clock.advance(DAY)
    india = scanner(_guardduty("gd-14", 2.0, country="India", at=fake_clock.now()))
    assert india["rules"] == ["NEW_COUNTRY"]


def test_a_finding_whose_principals_countries_cannot_be_read_fails_for_the_platforms_retry(
    scanner: Callable[[Any], dict[str, Any]],
    state_table: StateTable,
    dynamodb_client: Any,
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a principal seen from India, whose saved countries a hand edit made no JSON
    scanner(_guardduty("gd-15", 2.0, country="India"))
    [item] = [
        item
        for item in dynamodb_client.scan(TableName=state_table.table_name)["Items"]
        if item["sk"]["S"] == "VALUE#countries"
    ]
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item={**item, "data": {"S": f"{{{SECRET}"}}
    )
    alert_inbox.receive()
    # WHEN a critical finding of the principal arrives
    fake_clock.advance(DAY)
    # THEN the invocation fails naming what cannot be read, never the value, so the platform
    # retries the finding and keeps it in the dead-letter queue, rather than answering an error
    # that drops it unannounced
    with pytest.raises(UnreadableCountriesError) as raised:
        scanner(_guardduty("gd-16", 8.0, country="Brazil"))
    assert "saved value countries of security_scanner/principal/" in str(raised.value)
    assert "its data is not JSON" in str(raised.value)
    assert SECRET not in str(raised.value)
    # AND once the countries are mended, the retry scores and announces the finding
    state_table.delete_value(item["pk"]["S"].removeprefix("STATE#"), "countries")
    assert scanner(_guardduty("gd-16", 8.0, country="Brazil"))["alerted"] is True


@pytest.mark.parametrize("days", ["3000000", "1000000000"])
def test_a_country_window_past_the_calendar_is_refused_naming_the_variable(
    scanner: Callable[[Any], dict[str, Any]],
    alert_inbox: Any,
    state_table: StateTable,
    monkeypatch: pytest.MonkeyPatch,
    days: str,
) -> None:
    # GIVEN RISK_COUNTRY_WINDOW_DAYS mistyped so long that the window reaches past the year 1
    # (or past a timedelta's range)
    monkeypatch.setenv("RISK_COUNTRY_WINDOW_DAYS", days)
    # WHEN a finding with a country arrives
    # THEN the invocation fails naming the variable, and nothing is scored, kept or alerted
    with pytest.raises(
        ConfigurationError, match=r"^environment variable RISK_COUNTRY_WINDOW_DAYS:"
    ):
        scanner(_guardduty("gd-w", 8.0, country="Brazil"))
    assert _state_items(state_table) == 0
    assert alert_inbox.receive() == []


def _state_items(state_table: StateTable) -> int:
    return int(
        boto3.client("dynamodb", region_name=REGION).scan(TableName=state_table.table_name)["Count"]
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**_guardduty("gd-x", 1.0), "detail": {"severity": 42}}, "detail.severity"),
        ({**_guardduty("gd-x", 1.0), "detail": {"severity": -1}}, "detail.severity"),
        ({k: v for k, v in _guardduty("gd-x", 1.0).items() if k != "detail"}, "detail"),
        ({**_guardduty("gd-x", 1.0), "detail": {"id": ""}}, "detail.id"),
        ({**_guardduty("gd-x", 1.0), "detail": {"service": {"count": -1}}}, "detail.service.count"),
        (
            {**_guardduty("gd-x", 1.0), "detail": {"resource": {"accessKeyDetails": None}}},
            "detail.resource.accessKeyDetails",
        ),
        (
            _cloudtrail(
                "e-x",
                {**ROOT_LOGIN_WITHOUT_MFA, "userIdentity": None},
                "AWS Console Sign In via CloudTrail",
            ),
            "detail.userIdentity",
        ),
        (
            _cloudtrail(
                "e-x",
                {**ROOT_LOGIN_WITHOUT_MFA, "responseElements": "Success"},
                "AWS Console Sign In via CloudTrail",
            ),
            "detail.responseElements",
        ),
        # A ModifySecurityGroupRules call whose rules cannot be read is refused naming the part:
        # scored, it would read as opening nothing.
        (
            _cloudtrail(
                "e-x",
                {
                    key: value
                    for key, value in _rules_modified(SSH_TO_THE_WORLD).items()
                    if key != "requestParameters"
                },
                "AWS API Call via CloudTrail",
            ),
            "detail: requestParameters",
        ),
        (
            _cloudtrail("e-x", _rules_modified("0.0.0.0/0 on 22"), "AWS API Call via CloudTrail"),
            "detail: requestParameters.ModifySecurityGroupRulesRequest.SecurityGroupRule"
            ".SecurityGroupRule",
        ),
        (
            _cloudtrail(
                "e-x",
                _rules_modified(SSH_TO_THE_WORLD, {**SSH_TO_THE_WORLD, "FromPort": "ssh"}),
                "AWS API Call via CloudTrail",
            ),
            "detail: requestParameters.ModifySecurityGroupRulesRequest.SecurityGroupRule[1]"
            ".SecurityGroupRule.FromPort",
        ),
        # The event id keys the claims of the event's alert and country: a root login (it would
        # alert) whose id is too long for a state-table key, and a finding whose id is empty.
        (
            _cloudtrail("x" * 3000, ROOT_LOGIN_WITHOUT_MFA, "AWS Console Sign In via CloudTrail"),
            "id",
        ),
        (_guardduty("", 8.0, country="Brazil"), "id"),
    ],
)
def test_malformed_security_events_are_refused_naming_the_field(
    scanner: Callable[..., dict[str, Any]],
    alert_inbox: Any,
    state_table: StateTable,
    event: dict[str, Any],
    field: str,
) -> None:
    # GIVEN a malformed security event WHEN it arrives
    result = scanner(event)
    # THEN it is refused naming the field, and nothing is alerted or kept
    assert result["status"] == "error"
    assert f"invalid event: {field}:" in result["error"]
    assert alert_inbox.receive() == []
    assert _state_items(state_table) == 0


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("custom.not-aws", "AWS Console Sign In via CloudTrail"),
        ("aws.ec2", "AWS Console Sign In via CloudTrail"),
        ("custom.not-aws", "AWS API Call via CloudTrail"),
        (None, "AWS API Call via CloudTrail"),
        ("aws.signin", "Something Else"),
    ],
)
def test_an_event_not_from_the_aws_source_of_its_type_is_ignored(  # noqa: PLR0917 - pytest passes fixtures positionally
    scanner: Callable[..., dict[str, Any]],
    alert_inbox: Any,
    state_table: StateTable,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    source: str | None,
    detail_type: str,
) -> None:
    # GIVEN a root console login without MFA (it would score 100) with a forged source or type
    event = _cloudtrail("forged-1", ROOT_LOGIN_WITHOUT_MFA, detail_type)
    if source is None:
        del event["source"]
    else:
        event["source"] = source
    # WHEN it arrives
    result = scanner(event)
    # THEN it is ignored with a reason, logged and counted, and nothing is alerted or kept
    assert result["status"] == "ignored"
    assert result["reason"]
    assert "event ignored" in caplog.messages
    assert '"EventsIgnored":[1.0]' in capsys.readouterr().out
    assert alert_inbox.receive() == []
    assert _state_items(state_table) == 0


@pytest.mark.parametrize("field", ["source", "detail-type"])
def test_an_ignored_event_repeats_only_the_start_of_a_huge_source_or_detail_type(
    scanner: Callable[..., dict[str, Any]],
    alert_inbox: Any,
    state_table: StateTable,
    field: str,
) -> None:
    # GIVEN a root console login whose source, or detail-type, is a 1 MB text
    event = _cloudtrail("forged-huge", ROOT_LOGIN_WITHOUT_MFA, "AWS Console Sign In via CloudTrail")
    event[field] = "x" * 1_000_000
    # WHEN it arrives
    result = scanner(event)
    # THEN it is ignored with a reason that repeats only the start of the text and its length
    assert result["status"] == "ignored"
    assert result["reason"].startswith(f"{field} 'xxxx")
    assert "... (1000002 characters) is not" in result["reason"]
    assert len(json.dumps(result)) < 1000
    # AND nothing is alerted or kept
    assert alert_inbox.receive() == []
    assert _state_items(state_table) == 0


@pytest.mark.parametrize(
    "additional_info",
    [{"sample": True}, {"value": json.dumps({"sample": True}), "type": "default"}],
)
def test_a_guardduty_sample_finding_is_reported_at_info_and_never_pages(
    scanner: Callable[..., dict[str, Any]], alert_inbox: Any, additional_info: dict[str, Any]
) -> None:
    # GIVEN a high-severity GuardDuty sample finding (8.0 would be critical)
    event = _guardduty("gd-sample", 8.0, country="Brazil")
    event["detail"]["service"]["additionalInfo"] = additional_info
    # WHEN it arrives
    result = scanner(event)
    # THEN it is scored but reported at info only, marked as a sample
    assert (result["score"], result["severity"], result["sample"]) == (80, "info", True)
    [alert] = alert_inbox.receive()
    assert alert.attributes["severity"] == "info"
    assert "sample" in alert.alert["title"]


@pytest.mark.parametrize(
    "value", ['{"n": ' + "9" * 5000 + "}", "[" * 50_000], ids=["a-5000-digit-number", "deep"]
)
def test_a_guardduty_finding_whose_additional_info_python_cannot_decode_is_scored_as_real(
    scanner: Callable[..., dict[str, Any]], alert_inbox: Any, value: str
) -> None:
    # GIVEN a high GuardDuty finding whose additionalInfo.value is JSON Python refuses to read
    event = _guardduty("gd-odd-info", 8.0, country="Brazil")
    event["detail"]["service"]["additionalInfo"] = {"value": value, "type": "default"}
    # WHEN it arrives
    result = scanner(event)
    # THEN it is scored as a real finding (critical, one alert), not a failed invocation
    assert (result["score"], result["severity"], result["sample"]) == (80, "critical", False)
    assert [alert.attributes["severity"] for alert in alert_inbox.receive()] == ["critical"]


def test_root_console_login_is_announced_exactly_once_after_sns_failed(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
) -> None:
    # GIVEN SNS failing on every attempt (botocore's retries included)
    services = build_scanner_services()
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    event = _cloudtrail("e-root", ROOT_LOGIN_WITHOUT_MFA, "AWS Console Sign In via CloudTrail")
    # WHEN a root console login arrives THEN the invocation fails, so the platform retries it
    with pytest.raises(AlertNotDeliveredError):
        scanner(event, services)
    assert fault.attempts > 1
    assert alert_inbox.receive() == []
    # WHEN the platform retries the same event with SNS healthy
    fault.healed = True
    retried = scanner(event, services)
    # THEN the retry announces it (not "duplicate"), and a further redelivery is the duplicate
    assert (retried["status"], retried["score"], retried["alerted"]) == ("ok", 100, True)
    assert scanner(event, services)["status"] == "duplicate"
    alerts = alert_inbox.receive()
    assert [a.attributes["severity"] for a in alerts] == ["critical"]
    assert alerts[0].alert["resource"] == f"arn:aws:iam::{MEMBER_A}:root"


@pytest.mark.parametrize(
    ("event", "countries_taught"),
    [
        (
            _cloudtrail("e-replayed", ROOT_LOGIN_WITHOUT_MFA, "AWS Console Sign In via CloudTrail"),
            None,
        ),
        (
            _guardduty("gd-replayed", 7.5, country="Brazil"),
            {"countries": {"Brazil": iso_z(START_TIME)}, "taught_by": {"Brazil": "gd-replayed"}},
        ),
    ],
    ids=["cloudtrail-root-login", "guardduty-finding-with-a-country"],
)
def test_an_event_replayed_after_its_claim_expired_is_reported_stale_and_not_alerted_again(  # noqa: PLR0917 - pytest passes fixtures positionally
    scanner: Callable[..., dict[str, Any]],
    alert_inbox: Any,
    fake_clock: ManualClock,
    state_table: StateTable,
    event: dict[str, Any],
    countries_taught: dict[str, Any] | None,
) -> None:
    # GIVEN an event that alerted when it came
    assert scanner(event)["alerted"] is True
    assert len(alert_inbox.receive()) == 1
    # WHEN an archive replays it a day after its 7-day claims expired
    fake_clock.advance(8 * DAY)
    replayed = scanner(event)
    # THEN it is answered stale, naming its time, and neither alerts nor teaches its country again
    assert replayed["status"] == "stale", replayed
    assert replayed["time"] == iso_z(START_TIME)
    assert "8 days old" in replayed["reason"]
    assert alert_inbox.receive() == []
    assert state_table.get_value("security_scanner/principal/AIDAEXAMPLE", "countries") == (
        countries_taught
    )


def test_root_console_login_killed_while_sns_hangs_is_announced_once_by_the_retry(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a root console login
    services = build_scanner_services()
    event = _cloudtrail("e-root", ROOT_LOGIN_WITHOUT_MFA, "AWS Console Sign In via CloudTrail")
    # WHEN SNS never answers its Publish, so Lambda kills the invocation at its deadline, and
    # retries the event a minute later
    retried = killed_while_publishing_then_retried(
        services.hub_client("sns"),
        fake_clock,
        lambda context: scanner(event, services, context),
    )
    # THEN the retry is not refused by the killed invocation's claim: it announces the login once
    assert (retried["status"], retried["alerted"]) == ("ok", True), retried
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["critical"]


def test_a_finding_killed_while_learning_its_country_is_scored_and_announced_by_the_retry(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a principal known from India, and a finding from Brazil (new country: 20 + 30)
    # handled from the start of an invocation (the function's whole timeout left at its claim)
    services = build_scanner_services()
    scanner(_guardduty("gd-30", 2.0, country="India"), services)
    alert_inbox.receive()
    fake_clock.advance(DAY)
    finding = _guardduty("gd-31", 2.0, country="Brazil")
    timeout = function_spec("security_scanner").timeout_seconds
    # WHEN the state table never answers the read of the principal's countries, so Lambda
    # kills the invocation holding the event's claim, and retries the finding a minute later
    retried = killed_while_calling_then_retried(
        services.hub_client("dynamodb"),
        "dynamodb",
        "GetItem",
        fake_clock,
        lambda context: scanner(finding, services, context),
        seconds_left=timeout,
    )
    # THEN the killed invocation's claim has run out: the retry scores Brazil as new and
    # announces the finding once
    assert (retried["rules"], retried["score"], retried["alerted"]) == (["NEW_COUNTRY"], 50, True)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["warning"]


def test_a_finding_whose_outcome_was_not_stored_keeps_its_new_country_score_on_the_retry(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a principal known from India, and a state table that saves the principal's
    # countries but not the outcome of the event that taught them
    services = build_scanner_services()
    scanner(_guardduty("gd-40", 2.0, country="India"), services)
    alert_inbox.receive()
    fake_clock.advance(DAY)
    refused = refuse_completions(services.hub_client("dynamodb"), "security_scanner_event")
    # WHEN a finding from Brazil (new country: 20 + 30) cannot store its outcome
    with pytest.raises(BotoCoreError):
        scanner(_guardduty("gd-41", 2.0, country="Brazil"), services)
    assert refused.attempts > 0
    # AND the platform retries it with the state table healed
    refused.healed = True
    fake_clock.advance(60)
    retried = scanner(_guardduty("gd-41", 2.0, country="Brazil"), services)
    # THEN the retry still counts Brazil as new: the first attempt's save taught it, not
    # another event, and the finding is announced once at that score
    assert (retried["rules"], retried["score"], retried["alerted"]) == (["NEW_COUNTRY"], 50, True)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["warning"]
    # AND a later finding of the principal from Brazil is not new
    assert scanner(_guardduty("gd-42", 2.0, country="Brazil"), services)["rules"] == []


def test_a_retried_finding_keeps_its_new_country_score_and_alerts_once(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a principal known from India, and SNS failing on every attempt
    services = build_scanner_services()
    assert scanner(_guardduty("gd-20", 2.0, country="India"), services)["rules"] == []
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["info"]
    fake_clock.advance(DAY)
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    # WHEN a finding from Brazil (new country: 20 + 30) cannot be announced
    with pytest.raises(AlertNotDeliveredError):
        scanner(_guardduty("gd-21", 2.0, country="Brazil"), services)
    # AND the platform retries it with SNS healthy
    fault.healed = True
    retried = scanner(_guardduty("gd-21", 2.0, country="Brazil"), services)
    # THEN the retry still counts Brazil as new (its own first attempt did not make it known)
    assert (retried["rules"], retried["score"], retried["alerted"]) == (["NEW_COUNTRY"], 50, True)
    # AND exactly one warning went out, a further redelivery being a duplicate
    assert scanner(_guardduty("gd-21", 2.0, country="Brazil"), services)["status"] == "duplicate"
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["warning"]


def test_two_findings_of_one_principal_at_once_both_teach_their_country(
    scanner: Callable[..., Any],
    build_scanner_services: Callable[[], ScanServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN a principal seen from India, then a finding from Brazil whose invocation saves the
    # principal's countries just after another invocation read them for a finding from Spain
    scanner(_guardduty("gd-20", 2.0, country="India"))
    fake_clock.advance(DAY)
    services = build_scanner_services()
    spain: dict[str, Any] = {}

    def handle_spain_meanwhile(request: Any, **_: Any) -> None:
        if spain or b"VALUE#countries" not in request.body:
            return
        spain.update(scanner(_guardduty("gd-22", 2.0, country="Spain")))

    services.hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb.PutItem", handle_spain_meanwhile
    )
    # WHEN both findings are handled at once
    brazil = scanner(_guardduty("gd-21", 2.0, country="Brazil"), services)
    # THEN each was new for the principal
    assert (brazil["rules"], spain["rules"]) == (["NEW_COUNTRY"], ["NEW_COUNTRY"])
    # AND a day later neither Brazil nor Spain is new any more: both were remembered
    fake_clock.advance(DAY)
    assert scanner(_guardduty("gd-23", 2.0, country="Brazil"))["rules"] == []
    assert scanner(_guardduty("gd-24", 2.0, country="Spain"))["rules"] == []


@pytest.mark.parametrize(
    ("detail", "rules"),
    [
        ({"eventSource": "iam.amazonaws.com", "eventName": "PutRolePolicy"}, ["IAM_POLICY_CHANGE"]),
        (
            {"eventSource": "iam.amazonaws.com", "eventName": "CreatePolicyVersion"},
            ["IAM_POLICY_CHANGE"],
        ),
        (
            {
                "eventSource": "iam.amazonaws.com",
                "eventName": "PutRolePolicy",
                "errorCode": "AccessDenied",
            },
            [],
        ),
        ({"eventSource": "iam.amazonaws.com", "eventName": "GetRolePolicy"}, []),
        ({"eventSource": "kms.amazonaws.com", "eventName": "PutRolePolicy"}, []),
        (
            {"eventSource": "kms.amazonaws.com", "eventName": "ScheduleKeyDeletion"},
            ["KMS_KEY_DISABLING"],
        ),
        ({"eventSource": "kms.amazonaws.com", "eventName": "DisableKey"}, ["KMS_KEY_DISABLING"]),
        (
            {
                "eventSource": "kms.amazonaws.com",
                "eventName": "DisableKey",
                "errorCode": "AccessDeniedException",
            },
            [],
        ),
        ({"eventSource": "iam.amazonaws.com", "eventName": "DisableKey"}, []),
    ],
)
def test_a_policy_change_or_key_disabling_scores_only_as_a_successful_call_to_its_service(
    detail: dict[str, Any], rules: list[str]
) -> None:
    # GIVEN a CloudTrail event of an IAM or KMS call, successful or refused (errorCode)
    event = SecurityEvent(
        event_id="e-1",
        kind="cloudtrail",
        account_id=MEMBER_A,
        region=REGION,
        principal=f"arn:aws:iam::{MEMBER_A}:user/dev",
        title="call",
        resource=f"arn:aws:iam::{MEMBER_A}:user/dev",
        base_score=0,
        detail=detail,
        country=None,
    )
    # WHEN it is assessed
    matched = [rule.rule_id for rule in assess(event).matched]
    # THEN IAM_POLICY_CHANGE or KMS_KEY_DISABLING matches only a call of its service's events
    # that succeeded
    assert matched == rules


_IMPORT_PROBE = """
import json, sys
import handlers.security_scanner.app as app
deferred = ("security_event_models", "security_events", "risk")
imported = [f"handlers.security_scanner.{name}" in sys.modules for name in deferred]
print(*imported, type(app.parse(json.loads(sys.argv[1]))).__name__)
"""


def test_security_event_models_and_scoring_are_imported_only_when_a_security_event_comes() -> None:
    # GIVEN a fresh interpreter with security_scanner imported (the security events' models and
    # risk rules are about 40 M instructions of its import, unused by a scheduled scan)
    finding = (REPOSITORY / "events" / "security_scanner" / "guardduty_finding.json").read_text()
    # WHEN the function is imported, then the example GuardDuty finding parsed
    printed = probe_output(_IMPORT_PROBE, finding)
    # THEN the import left them out, and the finding is still read as a GuardDuty finding
    assert printed == ["False", "False", "False", "GuardDutyFindingEvent"]


def test_an_ongoing_guardduty_finding_alerts_once_and_counts_its_updates(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a high GuardDuty finding, announced at its first event
    first = scanner(_finding_update("ev-1", "f-1", 7.5, count=1))
    assert (first["status"], first["alerted"]) == ("ok", True)
    # WHEN GuardDuty publishes two updates of it (new event ids, same severity)
    second = scanner(_finding_update("ev-2", "f-1", 7.5, count=2))
    third = scanner(_finding_update("ev-3", "f-1", 7.5, count=3))
    # THEN they are repeats of the finding, counted with when it was last seen, and send nothing
    assert (second["status"], second["repeat_of"], second["count"]) == (
        "repeat",
        "repeat of finding f-1",
        2,
    )
    assert (third["count"], third["last_seen"]) == (3, "2025-06-03T03:30:00.000Z")
    assert third["alerted"] is False
    logged = [
        (record.getMessage(), record.count, record.last_seen)  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "event_id", None) == "ev-3"
    ]
    assert logged == [("repeat of finding f-1", 3, "2025-06-03T03:30:00.000Z")]
    # AND a redelivery of an update (same event id) is still a duplicate
    assert scanner(_finding_update("ev-3", "f-1", 7.5, count=3))["status"] == "duplicate"
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["critical"]


@pytest.mark.parametrize(
    "data",
    [pytest.param(f"{{{SECRET}", id="not-json"), pytest.param('{"count": 2}', id="other-fields")],
)
def test_a_finding_whose_record_cannot_be_read_still_alerts_once_per_severity(
    scanner: Callable[[Any], dict[str, Any]],
    state_table: StateTable,
    dynamodb_client: Any,
    alert_inbox: Any,
    data: str,
) -> None:
    # GIVEN a high finding announced, whose record a hand edit then made unreadable
    scanner(_finding_update("ev-1", "f-9", 7.5, count=1))
    [item] = [
        item
        for item in dynamodb_client.scan(TableName=state_table.table_name)["Items"]
        if item["sk"]["S"] == "VALUE#guardduty_finding"
    ]
    dynamodb_client.put_item(TableName=state_table.table_name, Item={**item, "data": {"S": data}})
    # WHEN two more updates come, the second escalating nothing, then a medium finding's record
    # is as unreadable and the finding rises to high
    repeat = scanner(_finding_update("ev-2", "f-9", 7.5, count=2))
    # THEN no update fails for it (an error result would drop a rise unannounced): the repeat
    # sends nothing, saying why the count is missing, and never the record's data
    assert (repeat["status"], repeat["alerted"]) == ("repeat", False)
    assert repeat["finding_record"].startswith("unreadable: ")
    assert SECRET not in str(repeat)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["critical"]
    scanner(_finding_update("ev-3", "f-10", 5.0, count=1))
    [item] = [
        item
        for item in dynamodb_client.scan(TableName=state_table.table_name)["Items"]
        if item["sk"]["S"] == "VALUE#guardduty_finding" and "f-10" in item["pk"]["S"]
    ]
    dynamodb_client.put_item(TableName=state_table.table_name, Item={**item, "data": {"S": data}})
    risen = scanner(_finding_update("ev-4", "f-10", 8.0, count=2))
    assert (risen["status"], risen["alerted"]) == ("ok", True)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["warning", "critical"]


def test_an_update_whose_severity_rises_alerts_again_and_one_that_falls_does_not(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any
) -> None:
    # GIVEN a medium finding (warning), announced
    scanner(_finding_update("ev-1", "f-2", 5.0, count=1))
    # WHEN an update raises it to high (critical), then another lowers it to medium again
    escalated = scanner(_finding_update("ev-2", "f-2", 8.0, count=2))
    lowered = scanner(_finding_update("ev-3", "f-2", 5.0, count=3))
    # THEN the escalation alerts, the lowered update is a repeat
    assert (escalated["status"], escalated["alerted"]) == ("ok", True)
    assert (lowered["status"], lowered["alerted_severity"]) == ("repeat", "critical")
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["warning", "critical"]


def test_each_guardduty_finding_has_its_own_alert(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any
) -> None:
    # GIVEN a finding announced, and an update of it (a repeat)
    scanner(_finding_update("ev-1", "f-3", 7.5, count=1))
    assert scanner(_finding_update("ev-2", "f-3", 7.5, count=2))["status"] == "repeat"
    # WHEN another finding (another id) of the same severity comes
    other = scanner(_finding_update("ev-3", "f-4", 7.5, count=1))
    # THEN it alerts: one alert per finding
    assert (other["status"], other["alerted"]) == ("ok", True)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["critical", "critical"]


def test_two_updates_of_one_finding_handled_at_once_alert_once(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
) -> None:
    # GIVEN the first two events of a finding, the second handled while the first publishes
    services = build_scanner_services()
    second = _finding_update("ev-2", "f-5", 7.5, count=2)
    meanwhile: list[BaseException] = []

    def handle_second_meanwhile(**_: Any) -> None:
        if not meanwhile:
            try:
                scanner(second)
            except AlertNotDeliveredError as error:
                meanwhile.append(error)

    services.hub_client("sns").meta.events.register_first(
        "before-send.sns.Publish", handle_second_meanwhile
    )
    # WHEN both are handled
    first = scanner(_finding_update("ev-1", "f-5", 7.5, count=1), services)
    # THEN the second waits on the first one's claim: its invocation fails for a retry
    assert first["alerted"] is True
    assert len(meanwhile) == 1
    # AND its retry is a repeat: one alert in all
    assert scanner(second)["status"] == "repeat"
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["critical"]


def test_a_finding_whose_record_was_not_saved_after_its_alert_is_not_announced_again(
    scanner: Callable[..., dict[str, Any]],
    build_scanner_services: Callable[[], ScanServices],
    alert_inbox: Any,
) -> None:
    # GIVEN a state table that fails every attempt to save a finding's record
    services = build_scanner_services()
    fault = fail_every_attempt(
        services.hub_client("dynamodb"), "dynamodb", "PutItem", body_with=(b"guardduty_finding",)
    )
    update = _finding_update("ev-1", "f-6", 7.5, count=1)
    # WHEN a finding's first event is announced THEN its invocation fails after the alert
    with pytest.raises(BotoCoreError):
        scanner(update, services)
    assert fault.attempts > 1
    # WHEN the platform retries it with the state table healthy, and the next update comes
    fault.healed = True
    retried = scanner(update, services)
    later = scanner(_finding_update("ev-2", "f-6", 7.5, count=2), services)
    # THEN neither announces it again: one alert across the retry
    assert (retried["status"], later["status"], later["count"]) == ("repeat", "repeat", 2)
    assert [a.attributes["severity"] for a in alert_inbox.receive()] == ["critical"]
