"""Forward a member's events (spot interruptions, alarms, security findings) to the hub's bus.

Events happen where the workloads run, but the functions that react to them run in the hub. In
every member account and region, one rule whose pattern is the `$or` of the forwarded catalog
patterns sends matching events to the stack's member-events bus in the hub, through a role that
may only put events on that one bus. The hub side owns the bus, its policy that admits the
member accounts and the rules that route each kind of event to its function. One rule instead of
one per pattern: each rule and target is a resource in every member region, and the hub routes
the events anyway.

A pattern that another forwarded pattern already covers is not forwarded again: both would match
the same event, and the hub would receive (and act on) it twice.

Each rule is created after the fleet inventory object (it depends on it): in the `pulumi up` that
adds a member, the hub's functions then read an inventory that lists the member before the first
event it forwards, and never take the member for one that left the fleet (an alarm's episode or
incident resolved at the next run as "the account left the fleet", though it had not arrived yet).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from catalog.model import EventRule, FunctionSpec
from components.naming import forwarding_role_name, forwarding_rule_name, partition_of

# EventBridge's "or" across fields: the pattern matches when any pattern of its list matches.
OR_KEY = "$or"


def forwarded_event_rules(functions: Iterable[FunctionSpec]) -> list[EventRule]:
    """The catalog's member-forwarded rules, without those another one already covers.

    Of two identical patterns, the first in catalog order is kept.
    """
    candidates = [
        trigger
        for spec in functions
        for trigger in spec.triggers
        if isinstance(trigger, EventRule) and trigger.forwarded_from_members
    ]
    kept: list[EventRule] = []
    for index, rule in enumerate(candidates):
        covered = any(
            pattern_covers(other.pattern, rule.pattern)
            and (not pattern_covers(rule.pattern, other.pattern) or other_index < index)
            for other_index, other in enumerate(candidates)
            if other_index != index
        )
        if not covered:
            kept.append(rule)
    return kept


def forwarding_pattern(rules: Sequence[EventRule]) -> dict[str, Any]:
    """One pattern that matches exactly the events one of `rules` matches.

    EventBridge reads `$or` as "or" only with two or more patterns, so one rule is kept as is.
    """
    if len(rules) == 1:
        return dict(rules[0].pattern)
    return {OR_KEY: [rule.pattern for rule in rules]}


def pattern_covers(wide: Mapping[str, Any], narrow: Mapping[str, Any]) -> bool:
    """True when every event that `narrow` matches is also matched by `wide`.

    Conservative: exact values, `prefix` matchers and nested objects are compared, and any other
    matcher (numeric, exists...) covers only an identical one, so a needed rule is never dropped.
    A pattern that is only an `$or` covers what one of its patterns covers, and is covered when
    each of its patterns is.
    """
    narrow_alternatives = or_alternatives(narrow)
    if narrow_alternatives is not None:
        return all(pattern_covers(wide, alternative) for alternative in narrow_alternatives)
    wide_alternatives = or_alternatives(wide)
    if wide_alternatives is not None:
        return any(pattern_covers(alternative, narrow) for alternative in wide_alternatives)
    return all(key in narrow and _field_covers(value, narrow[key]) for key, value in wide.items())


def or_alternatives(pattern: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The patterns of a pattern that is only an `$or` of patterns; None for any other pattern."""
    alternatives = pattern.get(OR_KEY)
    if set(pattern) != {OR_KEY} or not isinstance(alternatives, list):
        return None
    if not all(isinstance(alternative, Mapping) for alternative in alternatives):
        return None
    return alternatives


def _field_covers(wide: Any, narrow: Any) -> bool:
    if wide == narrow:
        return True
    if isinstance(wide, Mapping) and isinstance(narrow, Mapping):
        return pattern_covers(wide, narrow)
    narrow_values = _exact_values(narrow)
    if narrow_values is None or not isinstance(wide, list):
        return False
    return all(any(_matches(matcher, value) for matcher in wide) for value in narrow_values)


def _exact_values(value: Any) -> frozenset[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    return None


def _matches(matcher: Any, value: str) -> bool:
    """Whether one entry of a pattern's value list matches the string `value`: an exact string,
    or a `prefix` matcher (so `aws.` covers `aws.eks`); any other matcher is not compared."""
    if isinstance(matcher, str):
        return matcher == value
    if isinstance(matcher, Mapping) and set(matcher) == {"prefix"}:
        return isinstance(matcher["prefix"], str) and value.startswith(matcher["prefix"])
    return False


def forwarding_role_trust_policy(partition: str, member_account_id: str, stack: str) -> str:
    """EventBridge may assume the role only for the stack's forwarding rule of this member
    account, in any of its regions (the rule's ARN is its `aws:SourceArn`): another rule of the
    account, made by anyone allowed to pass roles to EventBridge, cannot put events on the hub
    bus with it."""
    rule_arns = f"arn:{partition}:events:*:{member_account_id}:rule/{forwarding_rule_name(stack)}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": member_account_id},
                        "ArnLike": {"aws:SourceArn": rule_arns},
                    },
                }
            ],
        },
        indent=2,
    )


def put_events_policy(hub_bus_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PutEventsOnHubBusOnly",
                    "Effect": "Allow",
                    "Action": "events:PutEvents",
                    "Resource": hub_bus_arn,
                }
            ],
        },
        indent=2,
    )


@dataclass(frozen=True)
class EventForwardingArgs:
    stack: str
    member_account_id: str
    hub_bus_arn: str
    rules: tuple[EventRule, ...]
    # One provider per region of the account, in the account's region order; the first one
    # creates the (global) IAM role.
    providers: Mapping[str, aws.Provider]
    # The hub's fleet inventory object: the rules are created once it lists the member.
    inventory: pulumi.Resource


class EventForwarding(pulumi.ComponentResource):
    """One role per member account, and per region one rule (the `$or` of the forwarded
    patterns) with the hub bus as its target."""

    role: aws.iam.Role

    def __init__(
        self, name: str, args: EventForwardingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:member:EventForwarding", name, None, opts)
        iam_provider = next(iter(args.providers.values()))
        iam = pulumi.ResourceOptions(parent=self, provider=iam_provider)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=forwarding_role_name(args.stack),
            description="Lets EventBridge forward this account's events to the fleet hub bus",
            # The member's partition is the hub bus's: EventBridge forwards within one.
            assume_role_policy=forwarding_role_trust_policy(
                partition_of(args.hub_bus_arn), args.member_account_id, args.stack
            ),
            opts=iam,
        )
        aws.iam.RolePolicy(
            f"{name}-put-events",
            name="put-events-on-hub-bus",
            role=self.role.id,
            policy=put_events_policy(args.hub_bus_arn),
            opts=iam,
        )
        if args.rules:
            self._forward_from_each_region(name, args)
        self.register_outputs(
            {"role_arn": self.role.arn, "rules": [rule.name for rule in args.rules]}
        )

    def _forward_from_each_region(self, name: str, args: EventForwardingArgs) -> None:
        rule_names = ", ".join(rule.name for rule in args.rules)
        event_pattern = json.dumps(forwarding_pattern(args.rules), sort_keys=True)
        for region, provider in args.providers.items():
            regional = pulumi.ResourceOptions(parent=self, provider=provider)
            member_rule = aws.cloudwatch.EventRule(
                f"{name}-{region}",
                name=forwarding_rule_name(args.stack),
                description=f"Forwards {rule_names} events to the lambda-fleet hub bus",
                event_pattern=event_pattern,
                opts=pulumi.ResourceOptions.merge(
                    regional, pulumi.ResourceOptions(depends_on=[args.inventory])
                ),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{region}",
                rule=member_rule.name,
                target_id="hub-bus",
                arn=args.hub_bus_arn,
                role_arn=self.role.arn,
                opts=regional,
            )
