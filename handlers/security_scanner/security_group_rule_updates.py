"""The security group rules a CloudTrail `ModifySecurityGroupRules` event changed, read from its
`requestParameters`.

CloudTrail records this call as EC2's query API received it: the request wrapped in its
`ModifySecurityGroupRulesRequest` element, each rule update under the list's wire name
`SecurityGroupRule` (botocore's ec2 model serializes `SecurityGroupRules` by that name), with the
position of the update as `tag`, and the keys in the API's PascalCase:

    {"ModifySecurityGroupRulesRequest": {
        "GroupId": "sg-0123456789abcdef0",
        "SecurityGroupRule": {
            "SecurityGroupRuleId": "sgr-0d28445c956a5d8ac", "tag": 1,
            "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                  "CidrIpv4": "0.0.0.0/0"}}}}

One update is an object, several a list. The API's own shape (`SecurityGroupRules`, a list,
not wrapped) and CloudTrail's `{"items": [...]}` lists of the older EC2 calls are read too: the
shape of a call's record is CloudTrail's to change. What cannot be read raises
`UnreadableRuleUpdateError` naming the part, so the event is refused naming it rather than
scored as if it opened nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

EC2_SOURCE = "ec2.amazonaws.com"
MODIFY_SECURITY_GROUP_RULES = "ModifySecurityGroupRules"
REQUEST_ELEMENT = "ModifySecurityGroupRulesRequest"
_UPDATE_KEYS = ("SecurityGroupRule", "SecurityGroupRules")
"""The wire name CloudTrail records the updates under, then the API's name of the list."""
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,5}")


class UnreadableRuleUpdateError(ValueError):
    """A part of a `ModifySecurityGroupRules` request that is not shaped as the API's."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class RuleUpdate:
    """What one update sets a rule to: the rule's id, its protocol, ports and CIDRs (None: not
    sent)."""

    rule_id: str | None
    protocol: str | None
    from_port: int | None
    to_port: int | None
    cidrs: frozenset[str]


def modifies_rules(event_source: object, event_name: object, error_code: object) -> bool:
    """Whether a CloudTrail record is a `ModifySecurityGroupRules` call that succeeded: a refused
    one (errorCode, a dry run's too) changed no rule."""
    return (
        event_source == EC2_SOURCE and event_name == MODIFY_SECURITY_GROUP_RULES and not error_code
    )


def rule_updates(request_parameters: object) -> tuple[RuleUpdate, ...]:
    """The rule updates of a `ModifySecurityGroupRules` call's `requestParameters`.

    Raises `UnreadableRuleUpdateError` naming the first part that is not shaped as the API's,
    by its path from `requestParameters`.
    """
    where = "requestParameters"
    if not isinstance(request_parameters, dict):
        raise UnreadableRuleUpdateError(where, "is not an object naming the rules the call changed")
    request = request_parameters
    if REQUEST_ELEMENT in request_parameters:
        request, where = request_parameters[REQUEST_ELEMENT], f"{where}.{REQUEST_ELEMENT}"
        if not isinstance(request, dict):
            raise UnreadableRuleUpdateError(where, "is not an object")
    key = next((name for name in _UPDATE_KEYS if name in request), None)
    if key is None:
        raise UnreadableRuleUpdateError(where, f"has no {' or '.join(_UPDATE_KEYS)}")
    where = f"{where}.{key}"
    value = request[key]
    if isinstance(value, dict) and "items" in value:
        value, where = value["items"], f"{where}.items"
    if isinstance(value, dict):
        return (_rule_update(value, where),)
    if not isinstance(value, list):
        raise UnreadableRuleUpdateError(where, "is neither an object nor a list")
    return tuple(_rule_update(item, f"{where}[{index}]") for index, item in enumerate(value))


def _rule_update(update: object, where: str) -> RuleUpdate:
    if not isinstance(update, dict):
        raise UnreadableRuleUpdateError(where, "is not an object")
    # The API requires the id, but a record without one (or not as text) only leaves the rule's
    # direction unknown, so the update is scored as inbound: refused, it would score nothing.
    rule_id = update.get("SecurityGroupRuleId")
    # The API makes the rule optional: an update without one changes no protocol, port or CIDR.
    rule = update.get("SecurityGroupRule", {})
    where = f"{where}.SecurityGroupRule"
    if not isinstance(rule, dict):
        raise UnreadableRuleUpdateError(where, "is not an object")
    cidrs = frozenset(
        cidr for name in ("CidrIpv4", "CidrIpv6") if (cidr := _text(rule, name, where)) is not None
    )
    return RuleUpdate(
        rule_id=rule_id if isinstance(rule_id, str) and rule_id else None,
        protocol=_text(rule, "IpProtocol", where, numbers=True),
        from_port=_port(rule, "FromPort", where),
        to_port=_port(rule, "ToPort", where),
        cidrs=cidrs,
    )


def _text(rule: dict[str, Any], name: str, where: str, *, numbers: bool = False) -> str | None:
    """A text field of a rule (with `numbers`, a protocol number written as a number too)."""
    value = rule.get(name)
    if value is None or isinstance(value, str):
        return value
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise UnreadableRuleUpdateError(f"{where}.{name}", f"is not text ({type(value).__name__})")


def _port(rule: dict[str, Any], name: str, where: str) -> int | None:
    """A port of a rule: a whole number, which the record may write as text."""
    value = rule.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    raise UnreadableRuleUpdateError(f"{where}.{name}", "is not a whole number")
