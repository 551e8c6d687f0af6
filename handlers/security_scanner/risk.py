"""Risk scoring of security events: GuardDuty findings and CloudTrail management events.

The score is the GuardDuty severity times ten (0-100; 0 for CloudTrail events) plus the points of
every rule below that matches; the total picks the alert severity from `THRESHOLDS`.

| rule | points | matches |
|---|---|---|
| ROOT_USER | 60 | the root user acted (`userIdentity.type` / `accessKeyDetails.userType`) |
| CONSOLE_LOGIN_WITHOUT_MFA | 40 | a successful `ConsoleLogin` with `MFAUsed = "No"` |
| IAM_POLICY_CHANGE | 30 | iam `Put*Policy`, `Attach*Policy`, `CreatePolicy(Version)`, ... |
| SECURITY_GROUP_OPEN_TO_WORLD | 40 | a rule from 0.0.0.0/0 or ::/0 added or set (below) |
| KMS_KEY_DISABLING | 40 | kms.amazonaws.com `DisableKey` or `ScheduleKeyDeletion` |
| NEW_COUNTRY | 30 | a country not seen for the principal within RISK_COUNTRY_WINDOW_DAYS |

Security groups: `AuthorizeSecurityGroupIngress` from 0.0.0.0/0 or ::/0 matches on any port, in
its one-rule form (`cidrIp` beside the permissions) too; a CIDR of every address matches however
it is written (`0::/0`: world_cidrs.py), and so do the ranges of one call that together cover
every address (`0.0.0.0/1` and `128.0.0.0/1`).
`ModifySecurityGroupRules` sets rules by id, and its record says neither whether a rule is
inbound or outbound nor what it allowed before: a rule it sets to the world matches on what the
scanner's security group controls judge (TCP 22 or 3389, all traffic, every port: EC2.13, EC2.14,
FLEET.EC2.1), so a public web port whose description was edited does not. Whether such a rule
is outbound is EC2's to answer (`SecurityEvent.rule_is_egress`, which the event handler fills in:
rule_directions.py): every group's default outbound rule is all traffic to 0.0.0.0/0, and one
EC2 answers as outbound does not match. One whose direction is unknown counts as inbound, the
safe assumption, and the assessment says so (`DIRECTION_UNREAD`) when the match rests on it.

Country: nothing here geolocates IP addresses (no IP-to-country table is bundled), so the
country is only known when the event carries it: GuardDuty's
`service.action.<action>.remoteIpDetails.country.countryName`. CloudTrail events carry only
`sourceIPAddress`, so NEW_COUNTRY never fires for them. The countries seen per principal are kept
in the state table for RISK_COUNTRY_WINDOW_DAYS (30 by default); a principal's first sighting
sets its baseline and is not new.

GuardDuty sample findings (`service.additionalInfo.sample`, made by `CreateSampleFindings`) are
scored like real ones but alert at `info` at most: they describe nothing that happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleet_shared.alerts import Severity
from handlers.security_scanner.security_event_models import CloudTrailRecord, GuardDutyFinding
from handlers.security_scanner.security_group_rule_updates import (
    RuleUpdate,
    modifies_rules,
    rule_updates,
)
from handlers.security_scanner.world_cidrs import is_world, world_sources

GUARDDUTY_ACTIONS = (
    "awsApiCallAction",
    "networkConnectionAction",
    "kubernetesApiCallAction",
    "rdsLoginAttemptAction",
)
IAM_POLICY_EVENTS = frozenset(
    {
        "PutUserPolicy",
        "PutRolePolicy",
        "PutGroupPolicy",
        "AttachUserPolicy",
        "AttachRolePolicy",
        "AttachGroupPolicy",
        "CreatePolicy",
        "CreatePolicyVersion",
        "SetDefaultPolicyVersion",
        "PutUserPermissionsBoundary",
        "PutRolePermissionsBoundary",
        "UpdateAssumeRolePolicy",
    }
)
KMS_DISABLING_EVENTS = frozenset({"DisableKey", "ScheduleKeyDeletion"})
SENSITIVE_TCP_PORTS = (22, 3389)
"""The ports of controls EC2.13 and EC2.14 (checks/compute.py)."""
TCP = frozenset({"tcp", "6"})
TCP_UDP = TCP | {"udp", "17"}
MAX_PORT = 65535

DIRECTION_UNREAD = "the rule's direction could not be read from EC2, so it counts as inbound"
"""The note of a security group opened to the world only by rules whose direction is unknown."""

THRESHOLDS: tuple[tuple[int, Severity], ...] = (
    (70, Severity.CRITICAL),
    (40, Severity.WARNING),
    (15, Severity.INFO),
)
"""Lowest score of each alert severity; below 15 an event raises no alert. GuardDuty's own
bands line up: high (7.0-8.9) and above is critical, medium (4.0-6.9) a warning, low an info."""


@dataclass(frozen=True)
class SecurityEvent:
    """A GuardDuty finding or CloudTrail event reduced to what the rules read."""

    event_id: str
    kind: str
    account_id: str
    region: str
    principal: str
    title: str
    resource: str
    base_score: int
    detail: dict[str, Any]
    country: str | None
    new_country: bool = False
    sample: bool = False
    finding_id: str | None = None
    """GuardDuty's finding id, the same in every update of an ongoing finding (None otherwise)."""
    occurrences: int | None = None
    """GuardDuty's `service.count` of the finding's activity (None otherwise)."""
    updated_at: str | None = None
    """GuardDuty's `updatedAt` of this update of the finding (None otherwise)."""
    rule_is_egress: dict[str, bool | None] = field(default_factory=dict)
    """For a `ModifySecurityGroupRules` event, EC2's answer per rule id asked about: whether the
    rule is outbound (`IsEgress`), None when no answer could be had. A rule not in it, or None,
    counts as inbound."""


@dataclass(frozen=True)
class RiskRule:
    """One documented scoring rule."""

    rule_id: str
    points: int
    description: str
    matches: Callable[[SecurityEvent], bool]


def _cloudtrail(event: SecurityEvent) -> dict[str, Any]:
    return event.detail if event.kind == "cloudtrail" else {}


def _object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else empty: the rules read parts of the services'
    documents that the models keep untyped, whose shape AWS may extend."""
    return value if isinstance(value, dict) else {}


def _root_user(event: SecurityEvent) -> bool:
    if event.kind == "cloudtrail":
        return bool(_object(event.detail.get("userIdentity")).get("type") == "Root")
    details = _object(_object(event.detail.get("resource")).get("accessKeyDetails"))
    return bool(details.get("userType") == "Root")


def _console_login_without_mfa(event: SecurityEvent) -> bool:
    detail = _cloudtrail(event)
    return (
        detail.get("eventName") == "ConsoleLogin"
        and _object(detail.get("responseElements")).get("ConsoleLogin") == "Success"
        and _object(detail.get("additionalEventData")).get("MFAUsed") == "No"
    )


def _succeeded_call(event: SecurityEvent, service: str, names: frozenset[str]) -> bool:
    """Whether `event` records a call to `service` (its eventSource) named in `names` that
    succeeded: a refused call (errorCode) changed nothing."""
    detail = _cloudtrail(event)
    return (
        detail.get("eventSource") == service
        and detail.get("eventName") in names
        and not detail.get("errorCode")
    )


def _iam_policy_change(event: SecurityEvent) -> bool:
    return _succeeded_call(event, "iam.amazonaws.com", IAM_POLICY_EVENTS)


def opening_updates(event: SecurityEvent) -> tuple[RuleUpdate, ...]:
    """The updates of a `ModifySecurityGroupRules` event that open their group to the world if
    their rule is inbound: set to 0.0.0.0/0 or ::/0 on what the scanner's security group
    controls judge (none for any other event)."""
    detail = _cloudtrail(event)
    if not modifies_rules(
        detail.get("eventSource"), detail.get("eventName"), detail.get("errorCode")
    ):
        return ()
    # CloudTrailRecord refused the event if these could not be read.
    updates = rule_updates(detail.get("requestParameters"))
    return tuple(
        update
        for update in updates
        if any(is_world(cidr) for cidr in update.cidrs) and _covers_sensitive_ports(update)
    )


def _inbound_opening_updates(event: SecurityEvent) -> tuple[RuleUpdate, ...]:
    """The opening updates of `event` whose rule EC2 did not answer as outbound."""
    return tuple(
        update
        for update in opening_updates(event)
        if update.rule_id is None or event.rule_is_egress.get(update.rule_id) is not True
    )


def _opened_by_rules_of_unknown_direction(event: SecurityEvent) -> bool:
    """Whether `event` opens its group to the world only through rules whose direction is
    unknown: none of them is one EC2 answered as inbound."""
    updates = _inbound_opening_updates(event)
    return bool(updates) and not any(
        update.rule_id is not None and event.rule_is_egress.get(update.rule_id) is False
        for update in updates
    )


def _security_group_open_to_world(event: SecurityEvent) -> bool:
    detail = _cloudtrail(event)
    if modifies_rules(detail.get("eventSource"), detail.get("eventName"), detail.get("errorCode")):
        return bool(_inbound_opening_updates(event))
    if detail.get("eventName") != "AuthorizeSecurityGroupIngress" or detail.get("errorCode"):
        return False
    request = _object(detail.get("requestParameters"))
    # The API's one-rule form (CidrIp with IpProtocol and ports, as the SDKs send it) names its
    # CIDR beside the permissions, not in them.
    cidrs = [request.get("cidrIp")]
    for permission in _items(_object(request.get("ipPermissions"))):
        cidrs += [r.get("cidrIp") for r in _items(_object(permission.get("ipRanges")))]
        cidrs += [r.get("cidrIpv6") for r in _items(_object(permission.get("ipv6Ranges")))]
    return bool(world_sources(cidrs))


def _covers_sensitive_ports(update: RuleUpdate) -> bool:
    """Whether a rule set to `update` allows what the scanner's security group controls judge:
    TCP 22 or 3389, all traffic, or every port. A protocol or port the record left out could be
    any: it counts."""
    protocol = None if update.protocol is None else update.protocol.lower()
    if protocol is None or protocol == "-1":
        return True
    if protocol not in TCP_UDP:
        return False
    low = 0 if update.from_port is None else update.from_port
    high = MAX_PORT if update.to_port is None else update.to_port
    if low <= 0 and high >= MAX_PORT:
        return True
    return protocol in TCP and any(low <= port <= high for port in SENSITIVE_TCP_PORTS)


def _items(container: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of CloudTrail's `{"items": [...]}` lists."""
    items = container.get("items")
    return [_object(item) for item in items] if isinstance(items, list) else []


def _kms_key_disabling(event: SecurityEvent) -> bool:
    return _succeeded_call(event, "kms.amazonaws.com", KMS_DISABLING_EVENTS)


RULES: tuple[RiskRule, ...] = (
    RiskRule("ROOT_USER", 60, "the root user acted", _root_user),
    RiskRule(
        "CONSOLE_LOGIN_WITHOUT_MFA",
        40,
        "console sign-in succeeded without MFA",
        _console_login_without_mfa,
    ),
    RiskRule("IAM_POLICY_CHANGE", 30, "an IAM policy was changed", _iam_policy_change),
    RiskRule(
        "SECURITY_GROUP_OPEN_TO_WORLD",
        40,
        "a security group was opened to 0.0.0.0/0 or ::/0",
        _security_group_open_to_world,
    ),
    RiskRule(
        "KMS_KEY_DISABLING",
        40,
        "a KMS key was disabled or scheduled for deletion",
        _kms_key_disabling,
    ),
    RiskRule(
        "NEW_COUNTRY",
        30,
        "the principal acted from a country not seen for it within RISK_COUNTRY_WINDOW_DAYS",
        lambda event: event.new_country,
    ),
)


@dataclass(frozen=True)
class RiskAssessment:
    """The score of one event, the rules behind it, the alert severity (None: no alert) and
    what the alert must say about how sure the rules are (`DIRECTION_UNREAD`)."""

    score: int
    matched: tuple[RiskRule, ...]
    severity: Severity | None
    notes: tuple[str, ...] = ()


def assess(event: SecurityEvent) -> RiskAssessment:
    """Score `event` with `RULES` and map the total to an alert severity (`info` at most for a
    GuardDuty sample finding)."""
    matched = tuple(rule for rule in RULES if rule.matches(event))
    score = event.base_score + sum(rule.points for rule in matched)
    severity = next((level for floor, level in THRESHOLDS if score >= floor), None)
    if event.sample and severity is not None:
        severity = Severity.INFO
    notes = (DIRECTION_UNREAD,) if _opened_by_rules_of_unknown_direction(event) else ()
    return RiskAssessment(score=score, matched=matched, severity=severity, notes=notes)


def from_guardduty(
    event_id: str, account_id: str, region: str, detail: GuardDutyFinding
) -> SecurityEvent:
    """A GuardDuty finding: its severity (0-10, checked by the model) times ten is the base
    score."""
    key = detail.resource.access_key_details
    sample = detail.service.is_sample
    principal = key.principal_id or key.user_name or detail.arn or event_id
    document = detail.document()
    return SecurityEvent(
        event_id=event_id,
        kind="guardduty",
        account_id=str(detail.account_id or account_id),
        region=str(detail.region or region),
        principal=str(principal),
        title=str(detail.title or detail.type or "GuardDuty finding"),
        resource=str(detail.arn or principal),
        base_score=round(detail.severity * 10),
        detail=document,
        # A sample's invented remote address teaches no principal a country.
        country=None if sample else _guardduty_country(detail.service.action or {}),
        sample=sample,
        finding_id=detail.id,
        occurrences=detail.service.count,
        updated_at=detail.updated_at,
    )


def from_cloudtrail(
    event_id: str, account_id: str, region: str, detail: CloudTrailRecord
) -> SecurityEvent:
    """A CloudTrail management event: no base score, no country (see the module docstring)."""
    identity = detail.user_identity
    principal = identity.get("arn") or identity.get("principalId") or identity.get("type")
    source = detail.event_source
    name = detail.event_name
    return SecurityEvent(
        event_id=event_id,
        kind="cloudtrail",
        account_id=str(detail.recipient_account_id or account_id),
        region=str(detail.aws_region or region),
        principal=str(principal or "unknown"),
        title=f"{name} ({source})",
        resource=str(principal or f"{source}/{name}"),
        base_score=0,
        detail=detail.document(),
        country=None,
    )


def _guardduty_country(action: dict[str, Any]) -> str | None:
    remotes = [
        _object(_object(action.get(name)).get("remoteIpDetails")) for name in GUARDDUTY_ACTIONS
    ]
    probes = _object(action.get("portProbeAction")).get("portProbeDetails")
    if isinstance(probes, list):
        remotes += [_object(_object(probe).get("remoteIpDetails")) for probe in probes]
    for remote in remotes:
        name = _object(remote.get("country")).get("countryName")
        if isinstance(name, str) and name:
            return name
    return None
