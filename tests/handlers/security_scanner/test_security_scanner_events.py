"""Event mode: risk scores of GuardDuty findings and CloudTrail events, and their alerts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from tests.handlers.member_accounts import MEMBER_A, REGION

DAY = 24 * 3600


def _guardduty(event_id: str, severity: float, country: str | None = None) -> dict[str, Any]:
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
        "time": "2025-06-02T03:30:00Z",
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
    scanner(_guardduty("gd-13", 2.0, country="Brazil"))
    fake_clock.advance(DAY)
    assert scanner(_guardduty("gd-14", 2.0, country="India"))["rules"] == ["NEW_COUNTRY"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**_guardduty("gd-x", 1.0), "detail": {"severity": 42}}, "detail.severity"),
        ({**_guardduty("gd-x", 1.0), "detail-type": "Something Else"}, "detail-type"),
        ({k: v for k, v in _guardduty("gd-x", 1.0).items() if k != "detail"}, "detail"),
    ],
)
def test_malformed_security_events_are_refused_naming_the_field(
    scanner: Callable[[Any], dict[str, Any]], alert_inbox: Any, event: dict[str, Any], field: str
) -> None:
    # GIVEN a malformed security event WHEN it arrives THEN it is refused and nothing alerts
    result = scanner(event)
    assert result["status"] == "error"
    assert f"invalid event: {field}" in result["error"]
    assert alert_inbox.receive() == []
