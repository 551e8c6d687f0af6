"""The fleet's alert topics by severity, and the email topic for people.

Functions publish alerts to `critical`, `warning` or `info`; the notification router consumes
them and sends what people should read to the email topic (and to Slack and PagerDuty, whose
secrets it reads by name at run time). Every topic is encrypted with the fleet key; only this
account may publish, and CloudWatch on its behalf only to the topics the functions' alarms notify
(the warning topic, and the e-mail topic for the router's own alarms). No EventBridge rule
targets a topic, so EventBridge may publish to none: a grant would let anyone who may create a
rule in the account page people with forged alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.policies import account_root, deny_insecure_transport, document
from components.settings import email_resource_suffix

SEVERITIES = ("critical", "warning", "info")
# The severity whose topic the functions' CloudWatch alarms notify.
ALARMED_SEVERITY = "warning"
ACCOUNT_ACTIONS = (
    "sns:GetTopicAttributes",
    "sns:ListSubscriptionsByTopic",
    "sns:Publish",
    "sns:Subscribe",
)
ALARM_SERVICE = "cloudwatch.amazonaws.com"


@dataclass(frozen=True)
class AlertTopicsArgs:
    prefix: str
    account_id: str
    key_arn: pulumi.Input[str]
    emails: Sequence[str]
    provider: aws.Provider


class AlertTopics(pulumi.ComponentResource):
    """`topics[severity]` and `email_topic`, each with a policy limited to the account."""

    topics: dict[str, aws.sns.Topic]
    email_topic: aws.sns.Topic

    def __init__(
        self, name: str, args: AlertTopicsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:alerts:AlertTopics", name, None, opts)
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.topics = {
            severity: self._topic(
                f"{name}-{severity}",
                f"{args.prefix}-alerts-{severity}",
                (ALARM_SERVICE,) if severity == ALARMED_SEVERITY else (),
            )
            for severity in SEVERITIES
        }
        # CloudWatch publishes the notification router's own alarms here too: people must hear
        # of a broken router without it.
        self.email_topic = self._topic(
            f"{name}-email", f"{args.prefix}-alerts-email", (ALARM_SERVICE,)
        )
        for address in args.emails:
            aws.sns.TopicSubscription(
                f"{name}-email-{email_resource_suffix(address)}",
                topic=self.email_topic.arn,
                protocol="email",
                endpoint=address,
                opts=self._child,
            )
        self.register_outputs(
            {
                "topics": {severity: topic.arn for severity, topic in self.topics.items()},
                "email_topic": self.email_topic.arn,
            }
        )

    def _topic(
        self, name: str, topic_name: str, publishing_services: Sequence[str]
    ) -> aws.sns.Topic:
        topic = aws.sns.Topic(
            name, name=topic_name, kms_master_key_id=self._args.key_arn, opts=self._child
        )
        statements = [
            {
                "Sid": "AccountUsesTheTopic",
                "Effect": "Allow",
                "Principal": {"AWS": account_root(self._args.account_id)},
                "Action": list(ACCOUNT_ACTIONS),
                "Resource": topic.arn,
            },
            deny_insecure_transport("DenyInsecureTransport", "sns:Publish", [topic.arn]),
        ]
        if publishing_services:
            statements.insert(
                1,
                {
                    "Sid": "AlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": list(publishing_services)},
                    "Action": "sns:Publish",
                    "Resource": topic.arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": self._args.account_id}},
                },
            )
        aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=topic.arn,
            policy=pulumi.Output.json_dumps(document(*statements)),
            opts=self._child,
        )
        return topic
