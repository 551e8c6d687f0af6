"""The fleet alert and its publisher.

Every function raises alerts in one shape, so the notification router can dedupe, correlate and
route them without knowing which function wrote them. An alert's `id` is derived from its source,
resource and title: the same problem found again gets the same id, which is what deduplication
keys on. The publisher sends an alert to its severity's topic (ALERT_TOPIC_CRITICAL_ARN,
ALERT_TOPIC_INFO_ARN) or, when that is not set, to ALERT_TOPIC_ARN. Alerts are published in dry
run too: they report, they change nothing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from fleet_shared.aws_answers import AWS_CALL_ERRORS, answer_field
from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import AccountId
from fleet_shared.timestamps import iso_z
from fleet_shared.utc_times import in_utc

SUBJECT_MAX_LENGTH = 99
"""SNS's Publish takes a subject "less than 100 characters long" (its API reference): 100 may be
refused, and the alert would reach no inbox."""

_ID_LENGTH = 16
ID_MAX_LENGTH = 64
"""The longest id an alert may carry (`alert_id` makes 16 characters): the notification router
keys its dedup claims on the id (a state-table sort key holds 1,024 bytes) and sends it as
PagerDuty's dedup key (at most 255 characters)."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point: in a str from JSON always a lone one (json joins escaped pairs)."""
_ELLIPSIS = "..."


class Severity(StrEnum):
    """How urgently someone must look: critical pages, warning notifies, info is recorded."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


def encodable(text: str) -> str:
    """`text` with each surrogate code point as U+FFFD. A JSON answer can escape a lone one
    (`"\\ud800"`) in a name or tag value and botocore hands it on, but no UTF-8 text holds it:
    hashing, publishing or sending an alert naming it would fail on every attempt."""
    return _SURROGATE.sub("\ufffd", text)


def alert_id(source: str, resource: str, title: str) -> str:
    """The deterministic id of an alert: a sha256 prefix of source, resource and title (as
    `encodable` makes them, as the alert holds them)."""
    digest = hashlib.sha256(encodable("\n".join((source, resource, title))).encode("utf-8"))
    return digest.hexdigest()[:_ID_LENGTH]


class Alert(BaseModel):
    """One alert, as published to SNS and read by the notification router.

    `account_id` and `region` are None for alerts about the fleet as a whole (a cost anomaly over
    all accounts). `timestamp` is UTC and serialises as ISO 8601 with a `Z`.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    id: str = Field(max_length=ID_MAX_LENGTH)
    severity: Severity
    source: str
    title: str
    detail: str
    resource: str
    account_id: AccountId | None = None
    region: str | None = None
    timestamp: datetime
    resolved: bool = False
    """True for the notice that the condition this alert reported has cleared: same id (so the
    same PagerDuty dedup key), routed as a resolution."""

    @model_validator(mode="before")
    @classmethod
    def _derived_id_when_blank(cls, data: Any) -> Any:
        # A blank id (a publisher's id field left empty) would be one dedup key, and one PagerDuty
        # dedup key, for every alert that has it: the router would drop the second as a copy of
        # the first. It gets the id `create` gives, from source, resource and title; when one of
        # those is not a string, their own validation names it.
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return data
        parts = [data.get(name) for name in ("source", "resource", "title")]
        if data["id"].strip() or not all(isinstance(part, str) for part in parts):
            return data
        source, resource, title = parts
        return {**data, "id": alert_id(source, resource, title)}

    @field_validator("source", "title", "detail", "resource", "region")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        return None if value is None else encodable(value)

    @field_validator("timestamp")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a timezone")
        return in_utc(value)

    @field_serializer("timestamp")
    def _iso_utc(self, value: datetime) -> str:
        return iso_z(value)

    @classmethod
    def create(
        cls,
        *,
        severity: Severity | str,
        source: str,
        title: str,
        detail: str,
        resource: str,
        account_id: str | None = None,
        region: str | None = None,
        timestamp: datetime | None = None,
        id: str | None = None,
    ) -> Alert:
        """An alert with its deterministic id (unless `id` is given) and `timestamp` (default now).

        `source` is the function raising it (e.g. `health_monitor`); `resource` names what the
        alert is about (an ARN, or `<account>/<region>/<cluster>/<node group>`).
        """
        return cls(
            id=id or alert_id(source, resource, title),
            severity=Severity(severity),
            source=source,
            title=title,
            detail=detail,
            resource=resource,
            account_id=account_id,
            region=region,
            timestamp=timestamp or datetime.now(UTC),
        )

    def resolution(self, detail: str, timestamp: datetime) -> Alert:
        """The notice that this alert's condition cleared: the same id, severity and resource,
        at `timestamp`, the time it cleared by the raiser's clock. It must be newer than the
        alert, or the notification router takes it for a late copy of a notice from before it."""
        return type(self).model_validate(
            {**self.model_dump(), "resolved": True, "detail": detail, "timestamp": timestamp}
        )

    def subject(self) -> str:
        """An SNS/e-mail subject: `[SEVERITY] title` (`[RESOLVED] title` for a resolution),
        ASCII, one line, at most 100 characters."""
        label = "RESOLVED" if self.resolved else self.severity.value.upper()
        text = f"[{label}] {self.title}"
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
        text = " ".join(_CONTROL_CHARACTERS.sub(" ", text).split())
        if len(text) > SUBJECT_MAX_LENGTH:
            text = text[: SUBJECT_MAX_LENGTH - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
        return text


class AlertPublisher:
    """Publishes one function's alerts to the fleet's SNS topics."""

    def __init__(self, sns_client: Any, environment: FunctionEnvironment, function: str) -> None:
        """Fail early, with `ConfigurationError`, when ALERT_TOPIC_ARN is not set. `function` is
        the declared name of the function whose alerts these are (`FunctionServices`), never
        anything an event says: their delivery claims are that function's
        (`fleet_shared.alert_delivery.claim_scope`)."""
        self.function = function
        self._sns = sns_client
        default_topic = environment.required("alert_topic_arn")
        self._topics = {
            Severity.CRITICAL: environment.alert_topic_critical_arn or default_topic,
            Severity.WARNING: default_topic,
            Severity.INFO: environment.alert_topic_info_arn or default_topic,
        }

    def topic_for(self, severity: Severity) -> str:
        """The topic ARN that alerts of `severity` go to."""
        return self._topics[severity]

    def publish(self, alert: Alert) -> str:
        """Publish `alert` as JSON, with `severity` and `source` message attributes (for
        subscription filter policies); returns the SNS message id."""
        response = self._sns.publish(
            TopicArn=self.topic_for(alert.severity),
            Message=alert.model_dump_json(),
            Subject=alert.subject(),
            MessageAttributes={
                "severity": {"DataType": "String", "StringValue": alert.severity.value},
                "source": {"DataType": "String", "StringValue": alert.source},
            },
        )
        # SNS sends MessageId for every message it took: an answer without it (a proxy's, a
        # truncated one) fails this publish as any other unreadable answer, not the whole run.
        return str(answer_field(response, "Publish", "MessageId"))

    def publish_or_log(self, alert: Alert, logger: Any) -> str | None:
        """Publish `alert`; when SNS fails after botocore's retries, log it and return None.

        For alerts that report on work already done, where a failed notification must not undo
        or repeat the work; the caller records that the alert was not published.
        """
        try:
            return self.publish(alert)
        except AWS_CALL_ERRORS as error:
            logger.warning(
                "alert not published",
                extra={"alert_id": alert.id, "title": alert.title, "error": str(error)},
            )
            return None
