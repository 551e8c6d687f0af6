"""SQS queues and SNS topics without encryption at rest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError, answer_field
from handlers.security_scanner.checks._aws import described, listed
from handlers.security_scanner.registry import (
    FindingSeverity,
    Resource,
    ResourceSource,
    ScanScope,
    UnreadableListingItem,
    check,
    register_source,
)

QUEUE = "AwsSqsQueue"
TOPIC = "AwsSnsTopic"
LIST_QUEUES_PAGE_SIZE = 1000
"""ListQueues' largest page. Without MaxResults it answers the first 1,000 queues and no
NextToken, so the rest of the account's queues would never be listed."""


def _collect_queues(scope: ScanScope) -> Iterator[Resource | UnreadableListingItem]:
    sqs = scope.client("sqs")

    def describe(url: str, fallback_arn: str) -> Resource:
        answer = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["QueueArn", "KmsMasterKeyId", "SqsManagedSseEnabled"],
        )
        # Always there: QueueArn, asked for, is every queue's.
        attributes = answer_field(answer, "GetQueueAttributes", "Attributes")
        return Resource(
            arn=_queue_attribute(attributes, "QueueArn") or fallback_arn,
            resource_type=QUEUE,
            attributes={
                "kms_key": _queue_attribute(attributes, "KmsMasterKeyId"),
                "sqs_managed_sse": _sqs_managed_sse(attributes),
            },
        )

    # SQS leaves QueueUrls out when there is no queue, MaxResults or not, so absent means none;
    # a gateway's text/html page is refused before parsing (fleet_shared.foreign_answers).
    urls = list(
        listed(
            sqs,
            "list_queues",
            "QueueUrls",
            always_sent=False,
            next_page_allowed=scope.next_page_allowed,
            PaginationConfig={"PageSize": LIST_QUEUES_PAGE_SIZE},
        )
    )
    # botocore hands a JSON answer's list items on unchecked: a URL that is null or no text
    # names no queue, so the listing fails (the source's error), not the whole scan.
    if not all(isinstance(url, str) for url in urls):
        raise UnreadableAnswerError("ListQueues", "a text URL for each of QueueUrls", urls)
    yield from described(
        urls,
        QUEUE,
        listing_call="ListQueues",
        arn_of=lambda url: (
            f"arn:aws:sqs:{scope.region}:{scope.account_id}:{url.rsplit('/', 1)[-1]}"
        ),
        describe=describe,
        read_errors=AWS_CALL_ERRORS,
    )


def _queue_attribute(attributes: Mapping[str, Any], name: str) -> str | None:
    """The GetQueueAttributes attribute `name` (None when not sent); raises
    UnreadableAnswerError, showing the value only, when it is no text. SQS sends every attribute
    as text, but botocore hands a JSON answer's map values on unchecked: a key id sent as `true`
    would read as encrypted, so the queue must be unreadable rather than judged compliant."""
    value = attributes.get(name)
    if value is not None and not isinstance(value, str):
        raise UnreadableAnswerError("GetQueueAttributes", f"a text Attributes.{name}", value)
    return value


def _sqs_managed_sse(attributes: Mapping[str, Any]) -> bool:
    """Whether SqsManagedSseEnabled is `true` (absent: `false`); raises UnreadableAnswerError
    for a value SQS does not send."""
    value = _queue_attribute(attributes, "SqsManagedSseEnabled") or "false"
    if value not in {"true", "false"}:
        raise UnreadableAnswerError(
            "GetQueueAttributes", "true or false as Attributes.SqsManagedSseEnabled", value
        )
    return value == "true"


def _collect_topics(scope: ScanScope) -> Iterator[Resource | UnreadableListingItem]:
    sns = scope.client("sns")

    def describe(_topic: dict[str, Any], arn: str) -> Resource:
        answer = sns.get_topic_attributes(TopicArn=arn)
        attributes = answer_field(answer, "GetTopicAttributes", "Attributes")
        return Resource(
            arn=arn,
            resource_type=TOPIC,
            attributes={"kms_key": attributes.get("KmsMasterKeyId")},
        )

    # Not required in SNS's model; a proxy's page is refused before botocore parses it
    # (fleet_shared.foreign_answers: no <ListTopicsResponse>).
    yield from described(
        listed(
            sns,
            "list_topics",
            "Topics",
            always_sent=False,
            next_page_allowed=scope.next_page_allowed,
        ),
        TOPIC,
        listing_call="ListTopics",
        arn_of=lambda topic: topic["TopicArn"],
        describe=describe,
        read_errors=AWS_CALL_ERRORS,
    )


register_source(
    ResourceSource(
        resource_type=QUEUE,
        global_service=False,
        api_calls=("sqs:ListQueues", "sqs:GetQueueAttributes"),
        iam_actions=("sqs:ListQueues", "sqs:GetQueueAttributes"),
        collect=_collect_queues,
    )
)
register_source(
    ResourceSource(
        resource_type=TOPIC,
        global_service=False,
        api_calls=("sns:ListTopics", "sns:GetTopicAttributes"),
        iam_actions=("sns:ListTopics", "sns:GetTopicAttributes"),
        collect=_collect_topics,
    )
)


@check(
    "SQS.1",
    title="Amazon SQS queues should be encrypted at rest",
    severity=FindingSeverity.MEDIUM,
    resource_type=QUEUE,
    remediation="Turn on SSE-SQS or SSE-KMS for the queue (aws sqs set-queue-attributes).",
)
def queue_encryption(resource: Resource) -> str | None:
    """Either a KMS key or SQS-managed encryption must be set."""
    if resource.attributes["kms_key"] or resource.attributes["sqs_managed_sse"]:
        return None
    return "the queue is not encrypted at rest"


@check(
    "SNS.1",
    title="SNS topics should be encrypted at rest using AWS KMS",
    severity=FindingSeverity.MEDIUM,
    resource_type=TOPIC,
    remediation="Set KmsMasterKeyId on the topic (aws sns set-topic-attributes).",
)
def topic_encryption(resource: Resource) -> str | None:
    """The topic must name a KMS key."""
    return None if resource.attributes["kms_key"] else "the topic has no KMS key"
