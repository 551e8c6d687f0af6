"""Whether the rules a `ModifySecurityGroupRules` event set to the world are outbound, asked of
EC2 in the event's account and region.

The CloudTrail record names each rule by id only, and every security group's default outbound
rule is all traffic to 0.0.0.0/0: scored on the record alone, editing that rule (its
description, or back to the default) alerts as if SSH had been opened to the world. So the event
handler asks EC2 (`DescribeSecurityGroupRules`, through the member role the scans assume) for
the direction (`IsEgress`) of each rule whose update would open its group (`risk.opening_updates`),
one rule per call: EC2 refuses a whole call that names one rule it does not know (one deleted
since), and that rule must not cost the others their answer. It stops at the first inbound one:
that one opens the group whatever the others are.

A rule whose direction cannot be had (the member role not assumed, the call refused or
unanswered after botocore's retries, the rule gone, an answer without `IsEgress`) is None, and
risk.py counts it as inbound, the safe assumption, and the reason is logged as a warning (the
rule id and the error, cut short) so that whoever reads the alert can see why EC2 was not heard.
Nothing here fails the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, answer_field
from fleet_shared.exceptions import MemberAccessError
from fleet_shared.observability import observability_for
from fleet_shared.validation_errors import cut_echo
from handlers.security_scanner.risk import SecurityEvent, opening_updates
from handlers.security_scanner.scan import SOURCE
from handlers.security_scanner.security_group_rule_updates import RuleUpdate

DESCRIBE_RULES = "DescribeSecurityGroupRules"

Ec2ClientOf = Callable[[str, str], Any]
"""The EC2 client of an (account, region), through the member role."""
UNREAD_DIRECTION = "the direction of a security group rule could not be read"
"""The warning logged for each rule whose direction is None, with the rule id and the reason."""

logger = observability_for(SOURCE).logger


def with_rule_directions(event: SecurityEvent, ec2_client_of: Ec2ClientOf) -> SecurityEvent:
    """`event` with EC2's answer on the direction of the rules its updates open to the world
    (`SecurityEvent.rule_is_egress`); unchanged when it opens none."""
    updates = opening_updates(event)
    if not updates:
        return event
    directions = rule_directions(updates, lambda: ec2_client_of(event.account_id, event.region))
    return replace(event, rule_is_egress=directions)


def rule_directions(
    updates: Iterable[RuleUpdate], ec2_client: Callable[[], Any]
) -> dict[str, bool | None]:
    """Whether each updated rule is outbound, by rule id, asked in order until one is inbound
    (None: its direction could not be had)."""
    rule_ids = list(dict.fromkeys(update.rule_id for update in updates if update.rule_id))
    if not rule_ids:
        return {}
    try:
        ec2 = ec2_client()
    except (MemberAccessError, *AWS_CALL_ERRORS) as error:
        for rule_id in rule_ids:
            _log_unread(rule_id, str(error))
        return dict.fromkeys(rule_ids)
    directions: dict[str, bool | None] = {}
    for rule_id in rule_ids:
        directions[rule_id] = _is_egress(ec2, rule_id)
        if directions[rule_id] is False:
            break
    return directions


def _is_egress(ec2: Any, rule_id: str) -> bool | None:
    """EC2's `IsEgress` of the rule `rule_id`, or None (and a warning why) when it cannot be
    had."""
    try:
        answer = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])
        rules = answer_field(answer, DESCRIBE_RULES, "SecurityGroupRules")
    except AWS_CALL_ERRORS as error:
        _log_unread(rule_id, str(error))
        return None
    if isinstance(rules, list):
        for rule in rules:
            if isinstance(rule, Mapping) and rule.get("SecurityGroupRuleId") == rule_id:
                is_egress = rule.get("IsEgress")
                if isinstance(is_egress, bool):
                    return is_egress
                _log_unread(rule_id, f"{DESCRIBE_RULES} answered the rule without IsEgress")
                return None
    _log_unread(rule_id, f"{DESCRIBE_RULES} answered without the rule")
    return None


def _log_unread(rule_id: str, reason: str) -> None:
    logger.warning(
        UNREAD_DIRECTION, extra={"rule_id": cut_echo(rule_id), "reason": cut_echo(reason)}
    )
