"""A webhook peer, or an AWS endpoint or a proxy, on 127.0.0.1 that answers in ways meant to hold
or swamp the router, or behind a corporate CA that only the client's CA bundle trusts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from handlers.notification_router import app
from handlers.notification_router.channels import post_json
from handlers.notification_router.services import RouterServices
from tests.handlers.deadlines import THREAD_REACHED_SECONDS
from tests.handlers.local_peers import LocalPeer, PeerRequest, http_answer
from tests.handlers.local_tls import INSPECTED_HOST, LocalAuthority, local_authority
from tests.handlers.notification_router.conftest import (
    PAGERDUTY_SECRET,
    REGION,
    ROUTING_KEY,
    Receiver,
)
from tests.handlers.notification_router.test_notification_router import (
    channels_of,
    fleet_alert,
    sqs_event,
    statuses,
)

ENDLESS_BODY_CAP_BYTES = 64 * 1024 * 1024
"""Where the "endless" body stops, so that a router reading it all ends the test: far more than
the socket buffers of both ends hold."""


@pytest.fixture
def endless_body() -> Iterator[LocalPeer]:
    """A peer that answers 200 and then a body without end (up to `ENDLESS_BODY_CAP_BYTES`);
    its `cut_off` is set once the client hung up before the peer sent all of it."""
    chunk = b"x" * 65536
    # No Content-Length: the body ends only when the peer closes.
    with LocalPeer(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        [chunk] * (ENDLESS_BODY_CAP_BYTES // len(chunk)),
    ) as peer:
        yield peer


def test_a_2xx_followed_by_an_endless_body_is_delivered_without_reading_the_body(
    endless_body: LocalPeer,
) -> None:
    # GIVEN a peer that takes the message, answers 200, then sends a body without end
    # WHEN a message is posted to it, with time enough to read tens of megabytes
    post_json(endless_body.url("/hook"), {"text": "hello"}, timeout_seconds=30)
    # THEN the post counts as delivered and the router hung up instead of reading on: a body
    # read to the end of the attempt's time fills the function's memory (256 MB) in a second,
    # and the invocation dies after the channel took the alert, unrecorded, so its retry posts
    # it again
    assert endless_body.cut_off.wait(THREAD_REACHED_SECONDS)


TRICKLE_PAUSE_SECONDS = 0.05
"""The trickling endpoint's pause before each line of its answer: well within the read timeout
botocore waits for each byte (half the HTTP timeout below)."""
TRICKLE_LINES = 40
"""Header lines the trickling endpoint sends one by one: 2 s of them, nearly seven times the
HTTP timeout below."""
SHORT_HTTP_TIMEOUT = "0.3"


@dataclass(frozen=True)
class AwsCall:
    """A call a channel makes to AWS, and the answer the service gives it."""

    service: str
    operation: str
    channel: str
    client: Callable[[RouterServices], Any]
    content_type: str
    body: bytes

    def answer(self, status: int = 200, **headers: str) -> bytes:
        return http_answer(status, {"Content-Type": self.content_type, **headers}, self.body)


AWS_CALLS = {
    "sns-publish": AwsCall(
        "sns",
        "Publish",
        "email",
        lambda services: services.sns_client(REGION),
        "text/xml",
        b'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
        b"<MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1"
        b"</RequestId></ResponseMetadata></PublishResponse>",
    ),
    "secrets-get-secret-value": AwsCall(
        "secretsmanager",
        "GetSecretValue",
        "pagerduty",
        lambda services: services.secrets_client(REGION),
        "application/x-amz-json-1.1",
        json.dumps({"Name": PAGERDUTY_SECRET, "SecretString": ROUTING_KEY}).encode(),
    ),
}
"""By test id: the calls of the channels to AWS, each with its answer."""


def _route_info_alert(
    invoke: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    call: AwsCall,
    endpoint_url: str,
) -> dict[str, Any]:
    """The result of routing an info alert to `call`'s channel alone (one attempt within
    SHORT_HTTP_TIMEOUT), `call` sent to `endpoint_url`."""
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", SHORT_HTTP_TIMEOUT)
    monkeypatch.setenv("ROUTER_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ROUTER_ROUTES", f"info={call.channel}")
    # A body the router refuses unread: the container exists, and no channel was called yet.
    invoke(sqs_event(("warm-up", "{not json")))

    def to_endpoint(request: Any, **_: Any) -> None:
        request.url = endpoint_url

    client = call.client(app.FUNCTION.services())
    client.meta.events.register_first(f"before-send.{call.service}.{call.operation}", to_endpoint)
    return invoke(sqs_event(("m-1", fleet_alert("info"))))


@pytest.mark.parametrize("call", AWS_CALLS.values(), ids=AWS_CALLS.keys())
def test_an_aws_answer_that_trickles_fails_the_attempt_within_the_http_timeout(
    invoke: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch, call: AwsCall
) -> None:
    # GIVEN an endpoint that answers the channel's call a header line at a time, each line well
    # within botocore's read timeout, the whole answer taking far longer than the HTTP timeout
    filler = {f"X-Trickle-{line}": "1" for line in range(TRICKLE_LINES)}
    with LocalPeer.trickling_lines(call.answer(**filler), TRICKLE_PAUSE_SECONDS) as endpoint:
        # WHEN an alert for that channel is routed
        result = _route_info_alert(invoke, monkeypatch, call, endpoint.url("/"))
        # THEN the router hung up once the HTTP timeout was up, instead of reading on as long
        # as the endpoint trickled (until Lambda ended the invocation): the attempt failed on a
        # timeout, and the message is handed back for a later delivery
        assert endpoint.cut_off.wait(THREAD_REACHED_SECONDS)
    assert statuses(result) == ["failed"]
    outcome = channels_of(result["results"][0])[call.channel]
    assert outcome["status"] == "failed"
    assert "Read timeout on endpoint URL" in outcome["error"]


@pytest.mark.parametrize("call", AWS_CALLS.values(), ids=AWS_CALLS.keys())
def test_an_aws_answer_that_comes_whole_in_time_is_read_as_the_services(
    invoke: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
    call: AwsCall,
) -> None:
    # GIVEN an endpoint that answers the channel's call at once, as the service does
    with LocalPeer(call.answer()) as endpoint:
        # WHEN an alert for that channel is routed
        result = _route_info_alert(invoke, monkeypatch, call, endpoint.url("/"))
    # THEN the answer, read whole within the HTTP timeout, is the service's: the e-mail topic
    # took the alert, or PagerDuty got it with the routing key the secret holds
    assert statuses(result) == ["sent"]
    assert endpoint.connections == 1
    if call.channel == "pagerduty":
        assert [body["routing_key"] for body in receiver.bodies("/pagerduty")] == [ROUTING_KEY]


def test_an_aws_error_answer_is_read_as_the_services_refusal(
    invoke: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an endpoint that refuses the e-mail topic's Publish, as SNS does
    refusal = AwsCall(
        "sns",
        "Publish",
        "email",
        lambda services: services.sns_client(REGION),
        "text/xml",
        b"<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
        b"<Message>not authorized to publish</Message></Error><RequestId>r-2</RequestId>"
        b"</ErrorResponse>",
    )
    with LocalPeer(refusal.answer(403)) as endpoint:
        # WHEN an alert for the e-mail channel is routed
        result = _route_info_alert(invoke, monkeypatch, refusal, endpoint.url("/"))
    # THEN the attempt failed on SNS's refusal, named with its code
    assert statuses(result) == ["failed"]
    outcome = channels_of(result["results"][0])["email"]
    assert "AuthorizationError" in outcome["error"]
    assert "not authorized to publish" in outcome["error"]


@pytest.fixture(scope="module")
def corporate_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalAuthority:
    """A corporate CA (a TLS-inspecting egress proxy's), trusted only through its bundle file."""
    return local_authority(tmp_path_factory.mktemp("corporate-ca"))


@pytest.fixture
def proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy, CA bundle or proxy exception from the test's own environment."""
    for variable in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NO_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.lower(), raising=False)
    return monkeypatch


SNS_PUBLISH = AWS_CALLS["sns-publish"]


@pytest.mark.parametrize("bundle", [True, False], ids=["ca-bundle", "no-ca-bundle"])
def test_an_https_endpoint_is_trusted_as_the_clients_ca_bundle_says(
    invoke: Callable[..., dict[str, Any]],
    proxy_variables: pytest.MonkeyPatch,
    corporate_ca: LocalAuthority,
    bundle: bool,
) -> None:
    # GIVEN an HTTPS endpoint whose certificate a corporate CA signed, and AWS_CA_BUNDLE naming
    # that CA's certificate, or unset
    if bundle:
        proxy_variables.setenv("AWS_CA_BUNDLE", str(corporate_ca.bundle))
    with LocalPeer(SNS_PUBLISH.answer(), tls=corporate_ca.server_context()) as endpoint:
        # WHEN an alert for the e-mail topic is routed
        result = _route_info_alert(invoke, proxy_variables, SNS_PUBLISH, endpoint.url("/"))
    # THEN with the bundle the topic took it, as every other client's call passes (the router
    # checked the certificate against the system's CA store, and refused it); without it the
    # certificate is refused, and nothing was sent unchecked
    if bundle:
        assert statuses(result) == ["sent"]
        assert [PeerRequest.parse(request).method for request in endpoint.requests] == ["POST"]
    else:
        assert statuses(result) == ["failed"]
        assert "SSL validation failed" in channels_of(result["results"][0])["email"]["error"]
        assert (endpoint.requests, endpoint.handshakes_failed) == ([], 1)


def test_a_call_goes_through_the_clients_proxy_with_its_credentials(
    invoke: Callable[..., dict[str, Any]],
    proxy_variables: pytest.MonkeyPatch,
    corporate_ca: LocalAuthority,
) -> None:
    # GIVEN a TLS-inspecting egress proxy with credentials in HTTPS_PROXY, its CA's certificate
    # in AWS_CA_BUNDLE, and an endpoint the router cannot reach but through the proxy
    proxy_variables.setenv("AWS_CA_BUNDLE", str(corporate_ca.bundle))
    with LocalPeer(SNS_PUBLISH.answer(), tls=corporate_ca.server_context(), tunnel=True) as proxy:
        proxy_variables.setenv("HTTPS_PROXY", f"http://router:s3cret@127.0.0.1:{proxy.port}")
        # WHEN an alert for the e-mail topic is routed
        result = _route_info_alert(
            invoke, proxy_variables, SNS_PUBLISH, f"https://{INSPECTED_HOST}/"
        )
    # THEN the Publish went through a tunnel the proxy opened, which took the proxy's
    # credentials (never sent on to the endpoint), for the endpoint's host (the one signed),
    # and the topic took the alert: the router went past the proxy, or sent it unchecked
    assert statuses(result) == ["sent"]
    tunnel, publish = (PeerRequest.parse(request) for request in proxy.requests)
    assert (tunnel.method, tunnel.path) == ("CONNECT", f"{INSPECTED_HOST}:443")
    credentials = base64.b64encode(b"router:s3cret").decode()
    assert tunnel.headers["proxy-authorization"] == f"Basic {credentials}"
    assert (publish.method, publish.headers["host"]) == ("POST", INSPECTED_HOST)
    assert b"Action=Publish" in publish.body
    assert "proxy-authorization" not in publish.headers


def test_a_proxy_that_trickles_its_tunnels_answer_fails_the_attempt_within_the_http_timeout(
    invoke: Callable[..., dict[str, Any]], proxy_variables: pytest.MonkeyPatch
) -> None:
    # GIVEN a proxy (HTTPS_PROXY) that answers the CONNECT of the router's tunnel a header line
    # at a time, each line well within botocore's read timeout, the whole answer taking far
    # longer than the HTTP timeout
    filler = {f"X-Trickle-{line}": "1" for line in range(TRICKLE_LINES)}
    opened = http_answer(200, filler)
    with LocalPeer.trickling_lines(opened, TRICKLE_PAUSE_SECONDS) as proxy:
        proxy_variables.setenv("HTTPS_PROXY", proxy.url(""))
        # WHEN an alert for the e-mail topic is routed
        result = _route_info_alert(
            invoke, proxy_variables, SNS_PUBLISH, f"https://{INSPECTED_HOST}/"
        )
        # THEN the router hung up once the HTTP timeout was up, and the attempt failed on a
        # timeout, before the request was sent
        assert proxy.cut_off.wait(THREAD_REACHED_SECONDS)
    assert statuses(result) == ["failed"]
    assert "Connect timeout on endpoint URL" in channels_of(result["results"][0])["email"]["error"]


def test_a_ca_bundle_that_cannot_be_read_fails_the_channel_naming_it(
    invoke: Callable[..., dict[str, Any]], proxy_variables: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # GIVEN AWS_CA_BUNDLE naming a file that is not there (a path mistyped)
    proxy_variables.setenv("AWS_CA_BUNDLE", str(tmp_path / "corporate-ca.pem"))
    proxy_variables.setenv("ROUTER_ROUTES", "info=email")
    # WHEN an alert for the e-mail topic is routed
    result = invoke(sqs_event(("m-1", fleet_alert("info"))))
    # THEN the e-mail channel failed, its error naming the CA bundle (not a bare error type):
    # nothing was sent with the system's CA store, or unchecked
    assert statuses(result) == ["failed"]
    error = channels_of(result["results"][0])["email"]["error"]
    assert "its CA bundle '" in error
    assert "cannot be read (FileNotFoundError)" in error
