"""The Slack webhook URL (its path is the secret) and the PagerDuty routing key never leave the
request: not in a channel's error, the handler's result, a log line, an alert sent on another
channel or the state table, whatever way the peer fails."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from fleet_shared.alerts import Alert
from handlers.notification_router.channels import SlackChannel, post_json
from handlers.notification_router.exceptions import ChannelError
from handlers.notification_router.secret_masks import REDACTED
from handlers.notification_router.services import RouterServices
from tests.handlers.conftest import START_TIME
from tests.handlers.local_peers import LocalPeer
from tests.handlers.notification_router.conftest import (
    REGION,
    ROUTING_KEY,
    SLACK_SECRET,
    EmailInbox,
    Receiver,
)

WEBHOOK_TOKEN = "xQ7hooksecretTOKEN42zz"
"""The distinctive part of the Slack webhook URL: its last path segment."""
WEBHOOK_PATH = f"/services/T0AAA1111/B0BBB2222/{WEBHOOK_TOKEN}"


def critical_alert_from_the_queue() -> dict[str, Any]:
    alert = Alert.create(
        severity="critical",
        source="health_monitor",
        title="dev-apps: capacity check failed for system",
        detail="1 of 4 desired instances ready (25%)",
        resource="222222222222/ap-south-1/dev-apps/capacity/system",
        account_id="222222222222",
        region=REGION,
        timestamp=START_TIME,
    )
    return {
        "Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": alert.model_dump_json()}]
    }


def set_slack_webhook(url: str) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=SLACK_SECRET, SecretString=url
    )


def everything_the_invocation_left(
    result: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    email_inbox: EmailInbox,
) -> str:
    """The result, every log record (message and extras), the process output (Powertools' JSON
    logs and metrics), the e-mails sent and the state table's items, as one text."""
    records = [
        json.dumps({**vars(record), "msg": record.getMessage()}, default=str)
        for record in caplog.records
    ]
    output = capfd.readouterr()
    table = boto3.client("dynamodb", region_name=REGION).scan(TableName="lambda-fleet-state")
    return "\n".join(
        [
            json.dumps(result),
            *records,
            output.out,
            output.err,
            json.dumps(email_inbox.receive()),
            json.dumps(table["Items"]),
        ]
    )


@pytest.mark.parametrize(
    ("failure", "answer"),
    [
        ("404 echoing the path", (404, {}, f"no_service: {WEBHOOK_PATH}".encode())),
        ("404 echoing the token", (404, {}, f"no such token {WEBHOOK_TOKEN}".encode())),
        ("500", 500),
        ("redirect echoing the path", (307, {"Location": f"/moved{WEBHOOK_PATH}"}, b"moved")),
    ],
)
def test_a_failing_slack_webhook_leaves_its_url_in_no_result_log_alert_or_record(
    invoke: Any,
    receiver: Receiver,
    email_inbox: EmailInbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    *,
    failure: str,
    answer: Any,
) -> None:
    # GIVEN a Slack webhook on the local peer, which fails every post in one way
    set_slack_webhook(receiver.url(WEBHOOK_PATH))
    receiver.answer(WEBHOOK_PATH, *[answer] * 5)
    caplog.set_level(logging.INFO)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN Slack failed naming its host, and the webhook's token is nowhere
    slack = {c["channel"]: c for c in result["results"][0]["channels"]}["slack"]
    assert slack["status"] == "failed", failure
    assert slack["error"].startswith("127.0.0.1:")
    assert WEBHOOK_TOKEN not in everything_the_invocation_left(result, caplog, capfd, email_inbox)


def test_a_pagerduty_refusal_echoing_the_event_leaves_the_routing_key_in_no_result_or_log(
    invoke: Any,
    receiver: Receiver,
    email_inbox: EmailInbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # GIVEN PagerDuty (the local peer) refusing every event with a body echoing it
    echo = json.dumps({"status": "invalid event", "routing_key": ROUTING_KEY}).encode()
    receiver.answer("/pagerduty", *[(400, {}, echo)] * 5)
    caplog.set_level(logging.INFO)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN PagerDuty failed with its answer, the routing key masked, and the key is nowhere
    pagerduty = {c["channel"]: c for c in result["results"][0]["channels"]}["pagerduty"]
    assert pagerduty["status"] == "failed"
    assert "invalid event" in pagerduty["error"]
    assert ROUTING_KEY not in everything_the_invocation_left(result, caplog, capfd, email_inbox)


@pytest.mark.parametrize(
    "webhook",
    [
        f"hooks.slack.com{WEBHOOK_PATH}",
        f"ftp://127.0.0.1:1{WEBHOOK_PATH}",
        f"file://{WEBHOOK_PATH}",
        f"https://hooks.slack.com{WEBHOOK_PATH} {WEBHOOK_TOKEN}",
        f"https://hooks.slack.com{WEBHOOK_PATH}\x7f",
        f"https://hooks..slack.com{WEBHOOK_PATH}",
        f"https://{'hooks' * 13}.slack.com{WEBHOOK_PATH}",
    ],
)
def test_a_slack_secret_that_is_no_http_url_fails_slack_alone_naming_the_secret_not_its_value(
    invoke: Any,
    email_inbox: EmailInbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    webhook: str,
) -> None:
    # GIVEN a Slack secret that is not an http(s) URL (no scheme, another scheme, a space or a
    # control character in it, a host with an empty label or one past DNS's 63 characters)
    set_slack_webhook(webhook)
    caplog.set_level(logging.INFO)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN Slack failed, its error names the secret and shows nothing of its value; PagerDuty and
    # e-mail took the alert; the webhook's token is nowhere
    channels = {c["channel"]: c for c in result["results"][0]["channels"]}
    assert channels["slack"]["status"] == "failed"
    assert channels["slack"]["error"] == f"secret {SLACK_SECRET} is not an http(s) URL"
    assert (channels["pagerduty"]["status"], channels["email"]["status"]) == ("sent", "sent")
    assert WEBHOOK_TOKEN not in everything_the_invocation_left(result, caplog, capfd, email_inbox)


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:1{WEBHOOK_PATH}",
        f"http://user:{WEBHOOK_TOKEN}@127.0.0.1:1/hook",
        f"http://127.0.0.1:1{WEBHOOK_PATH} x",
        f"nohost{WEBHOOK_PATH}",
    ],
)
def test_a_post_that_cannot_reach_its_peer_names_the_host_and_nothing_of_the_url(url: str) -> None:
    # GIVEN a URL with the secret in its path or its user part, whose host refuses connections
    # (or that is no URL at all)
    # WHEN a message is posted to it THEN the channel error shows nothing of the secret
    with pytest.raises(ChannelError) as raised:
        post_json(url, {"text": "hello"}, timeout_seconds=2)
    assert WEBHOOK_TOKEN not in str(raised.value)


def test_a_hanging_peer_times_out_naming_its_host_and_nothing_of_the_path() -> None:
    # GIVEN a peer that accepts the connection and never answers
    # WHEN a message is posted to it with a short timeout
    with LocalPeer(hang=True) as peer, pytest.raises(ChannelError) as raised:
        post_json(peer.url(WEBHOOK_PATH), {"text": "hello"}, timeout_seconds=0.3)
    # THEN the error names the host and nothing of the path
    assert str(raised.value).startswith("127.0.0.1:")
    assert WEBHOOK_TOKEN not in str(raised.value)


def test_at_the_debug_log_level_no_secret_is_logged_with_the_answers_botocore_logs(
    invoke: Any,
    receiver: Receiver,
    email_inbox: EmailInbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a Slack webhook with its token, and the function's log level set to DEBUG (Lambda's
    # application log level sets the root logger's)
    set_slack_webhook(receiver.url(WEBHOOK_PATH))
    caplog.set_level(logging.DEBUG)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN it was sent, botocore's debug records of the secrets' reads were logged, and neither
    # the webhook's token nor the routing key is in them (nor anywhere else)
    assert result["results"][0]["status"] == "sent"
    left = everything_the_invocation_left(result, caplog, capfd, email_inbox)
    assert "GetSecretValue" in left
    assert WEBHOOK_TOKEN not in left
    assert ROUTING_KEY not in left


@pytest.mark.parametrize(
    ("variable", "channel"),
    [("SLACK_WEBHOOK_SECRET", "slack"), ("PAGERDUTY_ROUTING_KEY_SECRET", "pagerduty")],
)
def test_a_secret_pasted_in_place_of_its_name_fails_its_channel_naming_the_variable_not_the_value(
    invoke: Any,
    email_inbox: EmailInbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    variable: str,
    channel: str,
) -> None:
    # GIVEN the webhook URL itself set where the name of its secret belongs
    monkeypatch.setenv(variable, f"https://hooks.slack.com{WEBHOOK_PATH}")
    caplog.set_level(logging.INFO)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN that channel failed, once, naming the variable; the others took the alert; the
    # message goes back to the queue; and the webhook's token is nowhere
    channels = {c["channel"]: c for c in result["results"][0]["channels"]}
    assert (channels[channel]["status"], channels[channel]["attempts"]) == ("failed", 1)
    assert channels[channel]["error"].startswith(f"{variable} is not a Secrets Manager secret")
    assert {c["status"] for name, c in channels.items() if name != channel} == {"sent"}
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert WEBHOOK_TOKEN not in everything_the_invocation_left(result, caplog, capfd, email_inbox)


FUNCTION_KEY = "q8Zr/Wm+3vT1xYpQ0aLk9s/Hd2Fg+Jc7Ne4Bo=="
"""A webhook key in the URL's query, base64 as some endpoints issue them (`/`, `+` and `=` in
it): the URL carries it percent-encoded, so every form a peer may echo differs from another."""
FUNCTION_KEY_CORE = "3vT1xYpQ0aLk9s"
"""A run of the key with no character that any encoding changes: found in every form of it."""


def lower_case_escapes(text: str) -> str:
    """`text` percent-encoded as some servers write it: `%2f`, not `%2F`."""
    return re.sub(r"%[0-9A-F]{2}", lambda escape: escape.group().lower(), quote(text, safe=""))


def echoed(status: int, text: str) -> tuple[int, dict[str, str], bytes]:
    """A refusal quoting `text` in its body (a redirect's also in its Location)."""
    headers = {"Location": f"https://elsewhere.example/hook?code={text}"} if status < 400 else {}
    return status, headers, f"refused for key {text}".encode()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(echoed(400, FUNCTION_KEY), id="decoded, as the peer's framework read it"),
        pytest.param(echoed(400, lower_case_escapes(FUNCTION_KEY)), id="percent-encoded, %2f"),
        pytest.param(
            echoed(400, json.dumps(FUNCTION_KEY).replace("/", "\\/")), id="JSON with / as \\/"
        ),
        pytest.param(
            echoed(400, FUNCTION_KEY.replace("+", "\\u002B")), id="JSON with + as \\u002B (.NET)"
        ),
        pytest.param(echoed(400, FUNCTION_KEY.replace("+", " ")), id="form-decoded, + as a space"),
        pytest.param(echoed(308, FUNCTION_KEY), id="a redirect to where it was moved, decoded"),
    ],
)
def test_a_peer_echoing_the_webhook_key_in_another_encoding_sees_it_masked_in_the_error(
    receiver: Receiver, answer: tuple[int, dict[str, str], bytes]
) -> None:
    # GIVEN a webhook whose key is in its query, percent-encoded as the URL carries it, and a
    # peer that refuses the post quoting the key in another form
    path = f"/api/alerts?code={quote(FUNCTION_KEY, safe='')}"
    receiver.answer(path, answer)
    # WHEN a message is posted to it
    with pytest.raises(ChannelError) as raised:
        post_json(receiver.url(path), {"text": "hello"}, timeout_seconds=2)
    # THEN the error keeps the peer's reason, the key masked, and shows nothing of the key
    error = str(raised.value)
    assert f"answered HTTP {answer[0]}: refused for key " in error
    assert REDACTED in error
    assert FUNCTION_KEY_CORE not in error


LONG_TOKEN = "".join(f"{n:04d}Tk" for n in range(150))
"""A webhook token of 900 characters: longer than the answer's start an error quotes."""


@pytest.mark.parametrize(
    ("token", "answer_body"),
    [
        pytest.param(WEBHOOK_TOKEN, "x" * 190 + WEBHOOK_TOKEN, id="token across the 200th byte"),
        pytest.param(LONG_TOKEN, LONG_TOKEN * 10, id="token across the end of the read"),
    ],
)
def test_a_refusal_quoting_the_token_where_the_quote_is_cut_shows_no_start_of_it(
    receiver: Receiver, token: str, answer_body: str
) -> None:
    # GIVEN a peer refusing the post with an answer whose quoted start ends inside the token
    path = f"/services/T0AAA1111/B0BBB2222/{token}"
    receiver.answer(path, (404, {}, answer_body.encode()))
    # WHEN a message is posted to it
    with pytest.raises(ChannelError) as raised:
        post_json(receiver.url(path), {"text": "hello"}, timeout_seconds=2)
    # THEN the error quotes the answer's start and no piece of the token
    error = str(raised.value)
    assert "answered HTTP 404: " in error
    assert token[:8] not in error


@pytest.mark.parametrize(
    ("variable", "channel", "pasted"),
    [
        pytest.param(
            "PAGERDUTY_ROUTING_KEY_SECRET", "pagerduty", ROUTING_KEY, id="routing key as the name"
        ),
        pytest.param(
            "SLACK_WEBHOOK_SECRET",
            "slack",
            f"hooks.slack.com{WEBHOOK_PATH}",
            id="webhook URL without its scheme as the name",
        ),
    ],
)
def test_a_secret_pasted_as_a_valid_name_shows_only_its_start_in_cannot_read_secret(
    invoke: Any,
    email_inbox: EmailInbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    variable: str,
    channel: str,
    pasted: str,
) -> None:
    # GIVEN the routing key or the webhook URL set where the name of its secret belongs, in a
    # form Secrets Manager takes as a name (no such secret exists)
    monkeypatch.setenv(variable, pasted)
    caplog.set_level(logging.INFO)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN that channel failed on reading the secret, naming it by its first characters only,
    # and the pasted value is nowhere
    channels = {c["channel"]: c for c in result["results"][0]["channels"]}
    assert channels[channel]["status"] == "failed"
    assert channels[channel]["error"].startswith(f"cannot read secret {pasted[:4]}...")
    left = everything_the_invocation_left(result, caplog, capfd, email_inbox)
    assert pasted[4:24] not in left


def test_a_secret_name_past_the_shown_length_is_named_by_its_start(
    invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a PagerDuty secret name of 300 characters (nothing in it looks like a key)
    name = "lambda-fleet/" + "pager-duty/" * 26 + "routing"
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY_SECRET", name)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN PagerDuty failed naming the secret by its start and its length, not in full
    pagerduty = {c["channel"]: c for c in result["results"][0]["channels"]}["pagerduty"]
    assert pagerduty["error"].startswith(f"cannot read secret lamb... ({len(name)} characters")
    assert name not in pagerduty["error"]


def test_a_refusal_naming_the_pasted_secret_shows_it_masked(
    invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the routing key set as the secret's name, and Secrets Manager refusing the read with
    # AWS's AccessDenied text, which names the resource asked for
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY_SECRET", ROUTING_KEY)
    refusal = (
        "An error occurred (AccessDeniedException) when calling the GetSecretValue operation: "
        "User: arn:aws:sts::111111111111:assumed-role/router/notification_router is not "
        f"authorized to perform: secretsmanager:GetSecretValue on resource: {ROUTING_KEY} "
        "because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )

    def refuse(_services: RouterServices, secret_id: str) -> str:
        raise GetParameterError(refusal)

    monkeypatch.setattr(RouterServices, "secret", refuse)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN PagerDuty failed with AWS's reason, the key masked in it
    error = {c["channel"]: c for c in result["results"][0]["channels"]}["pagerduty"]["error"]
    assert "not authorized to perform: secretsmanager:GetSecretValue on resource: [redacted]" in (
        error
    )
    assert ROUTING_KEY[4:] not in error


@pytest.mark.parametrize(
    "region",
    [pytest.param("-x-", id="dash at the ends"), pytest.param("a" * 64, id="64 characters")],
)
def test_a_secret_arn_naming_a_region_botocore_refuses_fails_slack_alone_naming_the_variable(
    invoke: Any, monkeypatch: pytest.MonkeyPatch, region: str
) -> None:
    # GIVEN SLACK_WEBHOOK_SECRET set to a secret ARN whose region botocore refuses to make a
    # client for (InvalidRegionError)
    monkeypatch.setenv(
        "SLACK_WEBHOOK_SECRET", f"arn:aws:secretsmanager:{region}:111111111111:secret:slack"
    )
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN Slack failed, once, naming the variable, and PagerDuty and e-mail (after Slack on the
    # route) took the alert
    channels = {c["channel"]: c for c in result["results"][0]["channels"]}
    assert (channels["slack"]["status"], channels["slack"]["attempts"]) == ("failed", 1)
    assert channels["slack"]["error"].startswith("SLACK_WEBHOOK_SECRET is not a Secrets Manager")
    assert (channels["pagerduty"]["status"], channels["email"]["status"]) == ("sent", "sent")


def test_an_unforeseen_channel_error_quoting_the_secret_leaves_it_in_no_result_or_log(
    invoke: Any,
    email_inbox: EmailInbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a Slack channel failing in a way it does not foresee, with an error whose text
    # quotes the webhook it was reading (a library's own error)
    set_slack_webhook(f"https://hooks.slack.com{WEBHOOK_PATH}")

    def fail_quoting_the_webhook(self: Any, message: Any) -> None:
        raise RuntimeError(f"cannot use https://hooks.slack.com{WEBHOOK_PATH}")

    monkeypatch.setattr(SlackChannel, "send", fail_quoting_the_webhook)
    caplog.set_level(logging.INFO)
    # WHEN a critical alert is routed from the queue
    result = invoke(critical_alert_from_the_queue())
    # THEN Slack failed by the error's type, its frames are logged, the others took the alert,
    # and the webhook's token is nowhere
    channels = {c["channel"]: c for c in result["results"][0]["channels"]}
    assert channels["slack"]["status"] == "failed"
    assert "RuntimeError" in channels["slack"]["error"]
    assert (channels["pagerduty"]["status"], channels["email"]["status"]) == ("sent", "sent")
    assert any("fail_quoting_the_webhook" in record.getMessage() for record in caplog.records)
    assert WEBHOOK_TOKEN not in everything_the_invocation_left(result, caplog, capfd, email_inbox)
