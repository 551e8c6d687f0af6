"""The delivery channels, declared in one registry: name -> sender class.

A channel whose configuration is unset (no secret variable, no topic) is *disabled*: the alert is
reported as skipped for it, not failed. Every delivery problem (HTTP error status, timeout,
unreadable secret, SNS error) is raised as `ChannelError`, which the delivery loop retries; one
that the same attempt meets again (a refusal, a secret whose content gives no usable value) is
`permanent`, tried once per delivery.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from fleet_shared.alerts import Alert
from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.bounded_http import is_http_url, open_bounded
from fleet_shared.timestamps import iso_z
from handlers.notification_router.channel_names import EMAIL, PAGERDUTY, SLACK
from handlers.notification_router.channel_text import (
    PAGERDUTY_DETAIL_MAX,
    PAGERDUTY_SUMMARY_MAX,
    PAGERDUTY_TEXT_MAX,
    SLACK_FIELD_MAX,
    SLACK_HEADER_MAX,
    SLACK_SECTION_MAX,
    fit,
    one_line,
    slack_escape,
    slack_text,
)
from handlers.notification_router.environment import RouterEnvironment
from handlers.notification_router.exceptions import (
    ChannelError,
    RateLimitedError,
    UnusableSecretError,
)
from handlers.notification_router.formatting import OutgoingMessage
from handlers.notification_router.rate_limits import RATE_LIMIT_STATUSES, parse_retry_after
from handlers.notification_router.secret_masks import (
    SecretMask,
    longest_form,
    masked,
    masks_of,
    secret_masks,
)
from handlers.notification_router.services import RouterServices

USER_AGENT = "lambda-fleet-notification-router"
TRANSIENT_CLIENT_ERRORS = frozenset({408, 425, 429})
"""4xx statuses that may go away on their own (timeout, too early, too many requests); any other
4xx (Slack's `invalid_payload`, `channel_is_archived`, a revoked webhook) is permanent for the
request."""
PAGERDUTY_CLIENT = "lambda-fleet"
"""The event's `client`, and its `source` when the alert names neither a resource nor a function."""
PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
"""Events API v2 severities are critical, error, warning and info."""
_SECRET_NAME = r"[A-Za-z0-9/_+=.@-]{1,512}"
_REGION = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
"""A region as botocore makes a client for it: any other raises InvalidRegionError, no
GetParameterError, out of the channel."""
SECRET_ID = re.compile(
    rf"{_SECRET_NAME}|arn:aws[a-z-]*:secretsmanager:{_REGION}:\d{{12}}:secret:{_SECRET_NAME}"
)
"""A Secrets Manager secret's name (the stack file's `SecretName`) or ARN: what a channel's secret
variable must hold. Anything else (a webhook URL) is likely the secret pasted in its place."""
LONGEST_SHOWN_SECRET_ID = 128
"""The longest secret name or ARN an error shows in full; of a longer one, only its start."""
SHOWN_SECRET_ID_START = 4
"""The characters an error shows of a secret name that may be the secret itself."""
_KEY_LIKE_RUN = re.compile(r"[A-Za-z0-9]{20,}")
"""20 letters and digits in a row: a routing key (32) or a webhook token (24), not the words of a
secret's name, which `/`, `-`, `_` or `.` separate."""
ANSWER_SHOWN_CHARACTERS = 200
"""The most characters of a refusing peer's answer an error quotes: enough for its reason."""
ANSWER_READ_BYTES = 8192
"""How much of a refusing peer's answer is read to quote its start: a secret is masked only where
it is whole, so more is read than is shown, and what the read may have cut is left out."""


class Channel(ABC):
    """A destination for alerts."""

    name: ClassVar[str]

    def __init__(self, services: RouterServices) -> None:
        """Keep the services; nothing is called until `send`."""
        self.services = services

    @abstractmethod
    def disabled_reason(self) -> str | None:
        """Why the channel is off (its variable is unset), or None when it is on."""

    @abstractmethod
    def send(self, message: OutgoingMessage) -> None:
        """Deliver once; raise `ChannelError` on any failure."""

    def _secret_value(self, variable: str, secret_id: str, names: tuple[str, ...]) -> str:
        """The value the channel sends with: the secret's text, or the first of `names` in its
        JSON. A read that fails is a `ChannelError` the delivery loop retries; a content that
        gives no usable value is `_unusable`."""
        secret = self._secret(variable, secret_id)
        try:
            return secret_field(secret, names)
        except UnusableSecretError as error:
            raise self._unusable(secret_id, str(error)) from None

    def _unusable(self, secret_id: str, problem: str) -> ChannelError:
        """The error of a secret Secrets Manager answered but whose content gives no usable value:
        permanent, since every read within the invocation gets the same content (reading it again
        or posting would change nothing), and the cached value is forgotten, so that the
        message's retry reads the secret the operator fixed meanwhile. `problem` names the field,
        never the value."""
        self.services.forget_secret(secret_id)
        return ChannelError(f"secret {shown_secret_id(secret_id)} {problem}", permanent=True)

    @contextlib.contextmanager
    def _read_again_if_refused(self, secret_id: str) -> Iterator[None]:
        """Forget the secret's cached value when the peer refuses the request for good (a 4xx
        other than 408, 425 and 429, a redirect): most often a revoked webhook or routing key,
        which the operator replaces in Secrets Manager, and the message's retry (Lambda's a minute
        later, in this container) must post with the new one, not the cached value for
        ROUTER_SECRET_TTL_SECONDS."""
        try:
            yield
        except ChannelError as error:
            if error.permanent:
                self.services.forget_secret(secret_id)
            raise

    def _secret(self, variable: str, secret_id: str) -> str | bytes:
        if not SECRET_ID.fullmatch(secret_id):
            # Refused before any call, showing nothing of it: it is likely the secret itself,
            # which GetSecretValue's error, and so the channel's, would repeat.
            raise ChannelError(
                f"{variable} is not a Secrets Manager secret name or ARN (its value is not shown: "
                "it may be the secret itself)",
                permanent=True,
            )
        shown = shown_secret_id(secret_id)
        try:
            return self.services.secret(secret_id)
        except GetParameterError as error:
            # AWS's refusal names the resource asked for: the value, when it may be the secret.
            reason = (
                str(error) if shown == secret_id else masked(str(error), masks_of((secret_id,)))
            )
            raise ChannelError(f"cannot read secret {shown}: {reason}") from error


class SlackChannel(Channel):
    """A Slack incoming webhook; the URL is the secret (plain, or JSON `{"url": ...}`)."""

    name = SLACK

    def disabled_reason(self) -> str | None:
        """Off without SLACK_WEBHOOK_SECRET."""
        if self.services.environment.slack_webhook_secret:
            return None
        return "SLACK_WEBHOOK_SECRET is not set"

    def send(self, message: OutgoingMessage) -> None:
        """POST a message with a header, the detail and the facts as fields."""
        environment = self.services.environment
        started = time.monotonic()
        secret_id = environment.slack_webhook_secret or ""
        url = self._secret_value("SLACK_WEBHOOK_SECRET", secret_id, ("url", "webhook_url"))
        if not is_http_url(url):
            # Nothing of the value is shown, not even a prefix: the URL is the secret, and a
            # mistyped one may be the bare token.
            raise self._unusable(secret_id, "is not an http(s) URL")
        with self._read_again_if_refused(secret_id):
            post_json(url, slack_payload(message), _rest_of_attempt(started, environment))


class PagerDutyChannel(Channel):
    """PagerDuty Events API v2; the routing key is the secret (plain, or `{"routing_key": ...}`)."""

    name = PAGERDUTY

    def disabled_reason(self) -> str | None:
        """Off without PAGERDUTY_ROUTING_KEY_SECRET."""
        if self.services.environment.pagerduty_routing_key_secret:
            return None
        return "PAGERDUTY_ROUTING_KEY_SECRET is not set"

    def send(self, message: OutgoingMessage) -> None:
        """Trigger (or resolve) the incident whose dedup key is the alert id."""
        environment = self.services.environment
        started = time.monotonic()
        secret_id = environment.pagerduty_routing_key_secret or ""
        key = self._secret_value(
            "PAGERDUTY_ROUTING_KEY_SECRET", secret_id, ("routing_key", "integration_key")
        )
        with self._read_again_if_refused(secret_id):
            post_json(
                environment.pagerduty_events_url,
                pagerduty_payload(message, key),
                _rest_of_attempt(started, environment),
                secrets=(key,),
            )


class EmailChannel(Channel):
    """The e-mail topic (EMAIL_TOPIC_ARN), whose subscribers are the stack's alert addresses."""

    name = EMAIL

    def disabled_reason(self) -> str | None:
        """Off without EMAIL_TOPIC_ARN."""
        return None if self.services.environment.email_topic_arn else "EMAIL_TOPIC_ARN is not set"

    def send(self, message: OutgoingMessage) -> None:
        """Publish the plain-text body with the alert's subject; SNS's answer must carry the
        message's id, as it does for every message it took."""
        topic_arn = self.services.environment.email_topic_arn or ""
        try:
            answer = self.services.sns_client(topic_arn.split(":")[3]).publish(
                TopicArn=topic_arn,
                Subject=message.subject(),
                Message=message.text(),
            )
            answer_field(answer, "Publish", "MessageId")
        except ClientError as error:
            raise ChannelError(f"publishing to {topic_arn} failed: {error}") from error
        except (BotoCoreError, ResponseParserError, UnreadableAnswerError) as error:
            # No answer (a timeout, a connection lost), or not SNS's (a proxy's page, an answer
            # without the message's id): the topic may have taken it.
            message = f"publishing to {topic_arn} failed: {error}"
            raise ChannelError(message, unconfirmed=True) from error


CHANNELS: dict[str, type[Channel]] = {
    channel.name: channel for channel in (PagerDutyChannel, SlackChannel, EmailChannel)
}
"""The implementation of every name in `channel_names.CHANNEL_NAMES` (a test checks both agree)."""


def slack_payload(message: OutgoingMessage) -> dict[str, Any]:
    """Block Kit message; `text` is the notification fallback shown in alerts and previews.

    Every field that comes from the event is escaped and cut to its block's limit
    (`channel_text`), and every mrkdwn text is `verbatim` (Slack's default turns bare URLs into
    links, links channel names and parses certain mentions), so an alert's text can neither
    mention nor link.
    """
    alert = message.notification.alert
    fields = [
        ("Severity", "resolved" if message.notification.resolves else alert.severity.value),
        ("Resource", alert.resource),
        ("Account", alert.account_id or "fleet-wide"),
        ("Region", alert.region or "-"),
        ("Source", alert.source),
    ]
    if message.suppressed_duplicates:
        fields.append(("Suppressed duplicates", str(message.suppressed_duplicates)))
    field_texts = [
        f"*{name}*\n" + slack_text(one_line(value), SLACK_FIELD_MAX - len(name) - 3)
        for name, value in fields
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": slack_text(message.headline, SLACK_HEADER_MAX)},
        },
        {"type": "section", "text": _mrkdwn(slack_text(alert.detail, SLACK_SECTION_MAX) or "-")},
        {"type": "section", "fields": [_mrkdwn(text) for text in field_texts]},
    ]
    if message.console_url:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    _mrkdwn(f"<{slack_escape(message.console_url)}|Open in the AWS console>")
                ],
            }
        )
    fallback = f"{message.headline} - {one_line(alert.resource)} ({message.where})"
    return {"text": slack_text(fallback, SLACK_SECTION_MAX), "blocks": blocks}


def _mrkdwn(text: str) -> dict[str, Any]:
    """A Slack mrkdwn text object marked `verbatim`: Slack still reads its formatting and its
    `<...>` sequences, but makes no link or mention out of the plain text in it."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def pagerduty_payload(message: OutgoingMessage, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: `trigger` with the alert, or `resolve` for a resolving one.

    PagerDuty shows `source`, `component` and the details' region as one-line fields: each is
    made one line (`one_line`), as in the other channels. Every text is cut (`channel_text`), so
    the event stays within the size PagerDuty accepts.
    """
    alert = message.notification.alert
    if message.notification.resolves:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.id}
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.id,
        "payload": {
            "summary": fit(message.headline, PAGERDUTY_SUMMARY_MAX),
            "source": fit(_pagerduty_source(alert), PAGERDUTY_TEXT_MAX),
            "severity": PAGERDUTY_SEVERITY[alert.severity.value],
            "timestamp": iso_z(alert.timestamp),
            "group": alert.account_id or "fleet",
            "custom_details": {
                "detail": fit(alert.detail, PAGERDUTY_DETAIL_MAX),
                "account_id": alert.account_id,
                "region": (
                    fit(one_line(alert.region), PAGERDUTY_TEXT_MAX)
                    if alert.region is not None
                    else None
                ),
                "alert_id": alert.id,
                "suppressed_duplicates": message.suppressed_duplicates,
            },
        },
        "client": PAGERDUTY_CLIENT,
    }
    if one_line(alert.source).strip():
        event["payload"]["component"] = fit(one_line(alert.source), PAGERDUTY_TEXT_MAX)
    if message.console_url:
        event["client_url"] = message.console_url
    return event


def _pagerduty_source(alert: Alert) -> str:
    """PagerDuty's `payload.source`: the alert's resource on one line, or, when that is blank
    (PagerDuty refuses the event on every retry: "'payload.source' is missing or blank"), the
    function that raised it, or the fleet."""
    for text in (one_line(alert.resource), one_line(alert.source)):
        if text.strip():
            return text
    return PAGERDUTY_CLIENT


def post_json(
    url: str, payload: dict[str, Any], timeout_seconds: float, *, secrets: tuple[str, ...] = ()
) -> None:
    """POST `payload` as JSON, all of it (the answer's body included) within `timeout_seconds`;
    any non-2xx status, timeout, connection error or answer that is not HTTP is a `ChannelError`
    naming the host only: webhook URLs are secrets, so every long part of the URL's path, query
    and user, and each of `secrets` (a routing key in the payload), is masked in the error, the
    peer's answer quoted in it included (a peer may echo the request). Once the peer has answered
    2xx the message is delivered, and the rest of its answer is not read: a retry would post it
    again. A 429 or 503 with a Retry-After is a `RateLimitedError` carrying the seconds to
    wait; a redirect (not followed), another 4xx than 408, 425 or 429, or a URL that is not
    http(s), is `permanent`. A 2xx is delivered whatever its body says: Slack answers `ok` and
    sends its errors as 4xx, and posting again would show the message twice."""
    if not is_http_url(url):
        raise ChannelError(
            "the URL is not an http(s) URL (not shown: it may be a secret)", permanent=True
        )
    host = _host(url)
    masks = secret_masks(url, secrets)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={"content-type": "application/json", "user-agent": USER_AGENT},
    )
    try:
        response = open_bounded(request, timeout_seconds)
    except urllib.error.HTTPError as error:
        body = _quoted_answer(error, masks)
        answer = f"{host} answered HTTP {error.code}: {body}"
        retry_after = (
            parse_retry_after(error.headers.get("retry-after"), datetime.now(UTC))
            if error.code in RATE_LIMIT_STATUSES
            else None
        )
        if retry_after is not None:
            answer += f" (retry after {retry_after:g} s)"
            raise RateLimitedError(answer, retry_after) from None
        permanent = 300 <= error.code < 500 and error.code not in TRANSIENT_CLIENT_ERRORS
        raise ChannelError(answer, permanent=permanent) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = masked(str(getattr(error, "reason", error)), masks)
        raise ChannelError(f"{host} unreachable: {reason}", unconfirmed=True) from None
    # The 2xx is the answer: its body is not read. One without end, read until the attempt's
    # time is up, filled the function's memory within a second, and the invocation died after
    # the channel took the message, unrecorded, so the retry posted it again.
    response.close()


def shown_secret_id(secret_id: str) -> str:
    """A secret's name or ARN as an error shows it: whole when it reads as a name, else (a routing
    key or webhook token pasted where the name belongs, or a name past LONGEST_SHOWN_SECRET_ID)
    only its first characters and its length."""
    if len(secret_id) <= LONGEST_SHOWN_SECRET_ID and not _KEY_LIKE_RUN.search(secret_id):
        return secret_id
    return (
        f"{secret_id[:SHOWN_SECRET_ID_START]}... ({len(secret_id)} characters, not shown: "
        "it may be the secret itself)"
    )


def _host(url: str) -> str:
    """The URL's host and port, without a user part (`user:password@`)."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]


def _quoted_answer(error: urllib.error.HTTPError, masks: list[SecretMask]) -> str:
    """The start of a refusing peer's answer, its secrets masked. When the read stopped before the
    answer's end, it may have cut a secret, which no mask then matches: what could be left of one
    at the end is dropped. A body that does not come within the attempt's time (or breaks off) is
    not quoted: the status already says the channel refused, and its other channels must still
    be tried."""
    with error:
        try:
            read = error.read(ANSWER_READ_BYTES)
        except (OSError, http.client.HTTPException) as failure:
            return f"(its body could not be read: {type(failure).__name__})"
    text = masked(read.decode("utf-8", "replace"), masks)
    if len(read) == ANSWER_READ_BYTES:
        text = text[: max(len(text) - longest_form(masks), 0)]
    return text[:ANSWER_SHOWN_CHARACTERS]


def _rest_of_attempt(started: float, environment: RouterEnvironment) -> float:
    """The time left for the request of an attempt `started` (time.monotonic) with reading its
    secret: the two share ROUTER_HTTP_TIMEOUT_SECONDS, the time the delivery loop keeps for one
    attempt, so a slow read and a hanging webhook together cannot outlast the invocation."""
    timeout = environment.router_http_timeout_seconds
    left = timeout - (time.monotonic() - started)
    if left <= 0:
        raise ChannelError(f"not sent: reading the secret took the attempt's {timeout:g} s")
    return left


def secret_field(secret: str | bytes, names: tuple[str, ...]) -> str:
    """The secret's text, stripped, or, when it is a JSON object, the first of `names` in it that
    holds a string of more than blanks, stripped the same way: PagerDuty refuses a routing key
    with blanks around it for good, and a URL with them is no URL. Raises `UnusableSecretError`
    naming what is wrong (the field, and the JSON type it holds), nothing of the value."""
    if isinstance(secret, bytes):
        raise UnusableSecretError("is binary (SecretBinary), not the text of a SecretString")
    text = secret.strip()
    if not text:
        raise UnusableSecretError("is empty")
    if not text.startswith("{"):
        return text
    try:
        document = json.loads(text, parse_int=_json_integer)
    except json.JSONDecodeError:
        raise UnusableSecretError("is not valid JSON") from None
    except RecursionError:
        # Nested deeper than the parser goes: no JSONDecodeError, and no value either.
        raise UnusableSecretError("is JSON nested deeper than the parser reads") from None
    present = [name for name in names if name in document]
    for name in present:
        value = document[name]
        if isinstance(value, str) and value.strip():
            return value.strip()
    if not present:
        raise UnusableSecretError(f"has none of the keys {', '.join(names)}")
    name = present[0]
    if isinstance(document[name], str):
        raise UnusableSecretError(f'has an empty "{name}"')
    raise UnusableSecretError(f'has "{name}" as a JSON {_json_type(document[name])}, not a string')


class _UnconvertedInteger:
    """A JSON integer of more digits than Python converts (`sys.get_int_max_str_digits`, 4300):
    a number all the same, never the secret's value."""


def _json_integer(digits: str) -> int | _UnconvertedInteger:
    """A JSON integer as `json.loads` parses it, except one past Python's digit limit, on which
    `int` raises a bare ValueError, no JSONDecodeError: a Slack secret `{"url": 1111...}` then
    failed its channel as an unforeseen error, not as a `url` that is no string, and its cached
    value was kept for the retry after the operator's fix."""
    try:
        return int(digits)
    except ValueError:
        return _UnconvertedInteger()


def _json_type(value: object) -> str:
    """The JSON type of a parsed value, as an error names it instead of showing the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | _UnconvertedInteger):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"
