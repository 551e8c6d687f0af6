"""Faults injected where they really happen: in botocore's send step, so its retries run.

A `before-send` handler that raises a connection error stands in for the network failing:
botocore catches it as an HTTP client error and applies its retry policy exactly as for a real
failure (`before-call` would skip the retries). The handler is registered first and raises, so
no later `before-send` handler runs: moto's in-process stub never sees the request, and nothing
happens on the AWS side (an injected HTTP 500 answer would not stop moto acting on the request).
Throttling is an answer, not a connection failure: `throttle_attempts` answers chosen attempts
with SSM-style ThrottlingException ahead of moto's answer, and `throttle_just_before_timeout`
answers every attempt of one operation so at the last moment of its timeouts, spending a
simulated invocation's time. A malformed answer is a success whose body the caller cannot read:
`answer_malformed` sends it for one operation, likewise. A refusal
botocore does not retry (AccessDeniedException) comes from `refuse_every_attempt`; S3's own
InternalError, which it retries, from `s3_error_every_attempt`, and its AccessDenied with a
message of the test's from `refuse_every_s3_attempt`. botocore calls every `before-send`
handler and keeps the first answer, so moto still acts on a request these answer: harmless for a
read, but a write they refuse is made all the same (`refuse_retry_after_lost_answer` refuses a
retry that moto must not act on, `throttle_then_refuse` every attempt of a write);
`refuse_completions` fails only the writes that complete an idempotent request. An answer lost
after the request was applied (`lose_first_answer`) lets moto's stub act on the first attempt and
then fails it with a read timeout, so botocore sends the same request again. A
hang (`hang_first_attempt`) holds a request the way a peer that never answers holds an
invocation until Lambda kills it: nothing after it runs, not even the invocation's `finally`
blocks, until the test releases it.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.core.models import botocore_stubber


@dataclass
class InjectedFault:
    """Lets the first `let_through` attempts go, then counts the attempts it failed; once
    `healed`, requests go through. With `body_parts`, only requests whose body holds them all
    are failed (one kind of write among an operation's others), with `url_part` only those
    whose URL holds it (a REST call on one resource). With `server_error`, a failed attempt is
    answered (HTTP 500, JSON protocol: botocore retries it) with that message instead of failing
    to connect: a proxy's error page, which the error then quotes."""

    operation: str
    let_through: int = 0
    attempts: int = 0
    healed: bool = False
    body_parts: tuple[bytes, ...] = ()
    url_part: str = ""
    server_error: str | None = None

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.healed or self.url_part not in request.url:
            return None
        # A query-protocol service (SNS, SQS) sends its form as text, the others bytes.
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        if not all(part in body for part in self.body_parts):
            return None
        if self.let_through > 0:
            self.let_through -= 1
            return None
        self.attempts += 1
        if self.server_error is not None:
            return _error_answer_unseen_by_moto(
                request, "InternalServerError", ec2=False, status=500, message=self.server_error
            )
        raise EndpointConnectionError(endpoint_url=request.url)


def fail_every_attempt(
    client: Any,
    service: str,
    operation: str,
    *,
    after: int = 0,
    body_with: tuple[bytes, ...] = (),
    url_with: str = "",
    server_error: str | None = None,
) -> InjectedFault:
    """Make every attempt of `operation` on `client` fail to connect (or, with `server_error`,
    answer a server error with that message), after the first `after` went through (an SNS
    that failed once a scan's first alert was out), until it is healed; with `body_with`, only
    the attempts whose body contains each of those bytes, with `url_with`, only those whose URL
    contains it."""
    fault = InjectedFault(
        operation,
        let_through=after,
        body_parts=body_with,
        url_part=url_with,
        server_error=server_error,
    )
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


class _Body:
    """The raw body of an injected answer: streamed whole, or read as a streaming answer (an S3
    object's) is read."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._unread = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, amt: int | None = None) -> bytes:
        return self._unread.read(amt)

    def close(self) -> None:
        self._unread.close()


def answer_of(url: str, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    """An answer to a request to `url` that botocore reads as its endpoint's: `status`,
    `headers` and `body`, for a `before-send` handler to return."""
    return AWSResponse(url, status, headers, _Body(body))


@dataclass
class InjectedThrottling:
    """Answers the n-th attempts (counted from 1, over all threads) with ThrottlingException."""

    attempt_numbers: frozenset[int]
    injected: int = 0
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            if next(self._counter) not in self.attempt_numbers:
                return None
            self.injected += 1
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Body(body)
        )


def throttle_attempts(client: Any, service: str, *attempt_numbers: int) -> InjectedThrottling:
    """Answer the given attempts of every `service` operation on `client` with throttling (a
    JSON-protocol error answer, as SSM, DynamoDB or SQS send it)."""
    fault = InjectedThrottling(frozenset(attempt_numbers))
    client.meta.events.register_first(f"before-send.{service}", fault)
    return fault


@dataclass
class MalformedAnswer:
    """Answers the attempts of one operation whose URL contains `url_part` and whose body
    contains `body_part` with `body` (HTTP `status`, with `content_type` when given) ahead of
    moto's answer; the others go through."""

    body: bytes
    url_part: str
    body_part: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    content_length: int | None = None
    status: int = 200
    answered: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.url_part not in request.url:
            return None
        # A query-protocol request (EC2's, Auto Scaling's) carries its body as text; an S3
        # PutObject's is a stream, only searched when a part is asked for.
        sent = request.body or b""
        sent = sent.encode("utf-8") if isinstance(sent, str) else sent
        if self.body_part and self.body_part not in sent:
            return None
        self.answered += 1
        headers = {} if self.content_type is None else {"Content-Type": self.content_type}
        if self.etag is not None:
            headers["ETag"] = self.etag
        if self.content_length is not None:
            headers["Content-Length"] = str(self.content_length)
        return AWSResponse(request.url, self.status, headers, _Body(self.body))


def answer_malformed(
    client: Any,
    service: str,
    operation: str,
    body: bytes,
    *,
    url_part: str = "",
    body_with: bytes = b"",
    content_type: str | None = None,
    etag: str | None = None,
    content_length: int | None = None,
    status: int = 200,
) -> MalformedAnswer:
    """Make `operation` on `client` (only for URLs containing `url_part` and bodies containing
    `body_with`) succeed with `body`, as a service answering something the caller cannot read (a
    policy that is not JSON, a proxy's page), sent as `content_type` when given (a gateway's
    `text/html`), else with no Content-Type, with the header `ETag` when given (a cache's own),
    and with the header `Content-Length` when given (one the body may not match); or fail with
    it, when `status` is an error's (an error answer whose message the caller quotes)."""
    fault = MalformedAnswer(
        body, url_part, body_with, content_type, etag, content_length, status=status
    )
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


@dataclass
class InjectedRefusal:
    """Answers every attempt of one operation with a JSON-protocol error `code` (HTTP 400)."""

    code: str
    refused: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.refused += 1
        body = json.dumps({"__type": self.code, "message": "injected refusal"}).encode()
        return AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Body(body)
        )


def refuse_every_attempt(
    client: Any, service: str, operation: str, code: str = "AccessDeniedException"
) -> InjectedRefusal:
    """Answer every attempt of `operation` on `client` (a JSON-protocol service: DynamoDB, SQS)
    with the error `code`, which botocore does not retry, ahead of moto's answer (moto still
    acts on the request: see the module docstring)."""
    fault = InjectedRefusal(code)
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


@dataclass
class InjectedEc2Refusal:
    """Answers every attempt of one EC2 operation with EC2's own error answer `code` (HTTP 403,
    EC2's XML, `message` escaped as EC2 writes it), as EC2 refuses a call its caller's role does
    not grant."""

    code: str
    message: str = "injected refusal"
    refused: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.refused += 1
        body = (
            f"<Response><Errors><Error><Code>{self.code}</Code><Message>{xml_escape(self.message)}"
            "</Message></Error></Errors><RequestID>injected</RequestID></Response>"
        ).encode()
        return AWSResponse(request.url, 403, {"Content-Type": "text/xml"}, _Body(body))


def refuse_every_ec2_attempt(
    client: Any,
    operation: str,
    code: str = "UnauthorizedOperation",
    message: str = "injected refusal",
) -> InjectedEc2Refusal:
    """Answer every attempt of the EC2 `operation` on `client` with the error `code` (and
    `message`), which botocore does not retry, ahead of moto's answer."""
    fault = InjectedEc2Refusal(code, message)
    client.meta.events.register_first(f"before-send.ec2.{operation}", fault)
    return fault


@dataclass
class InjectedS3InternalError:
    """Answers every attempt of one S3 operation with S3's 500 InternalError, which botocore
    retries, until `healed`; with `url_part`, only the attempts whose URL contains it."""

    attempts: int = 0
    healed: bool = False
    url_part: str = ""

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.healed or self.url_part not in request.url:
            return None
        self.attempts += 1
        body = b"<Error><Code>InternalError</Code><Message>Please try again.</Message></Error>"
        return AWSResponse(request.url, 500, {"Content-Type": "application/xml"}, _Body(body))


def s3_error_every_attempt(
    s3_client: Any, operation: str, *, url_with: str = ""
) -> InjectedS3InternalError:
    """Answer every attempt of `operation` on `s3_client` with InternalError (S3 failing on its
    side), ahead of moto's answer, until healed; with `url_with`, only the attempts whose URL
    contains it (one key's)."""
    fault = InjectedS3InternalError(url_part=url_with)
    s3_client.meta.events.register_first(f"before-send.s3.{operation}", fault)
    return fault


@dataclass
class CompletionRefusal:
    """Fails every attempt to complete an idempotent request of `scope` (a state table that
    stops answering right after the request acted) until `healed`; other writes go through."""

    scope: str
    attempts: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> None:
        item = json.loads(request.body or b"{}").get("Item", {})
        if (
            not self.healed
            and item.get("pk", {}).get("S") == f"IDEMPOTENCY#{self.scope}"
            and item.get("status", {}).get("S") == "COMPLETED"
        ):
            self.attempts += 1
            raise EndpointConnectionError(endpoint_url=request.url)


def refuse_completions(dynamodb_client: Any, scope: str) -> CompletionRefusal:
    """Make every attempt to complete a request of `scope` (e.g. a function's delivery claims,
    `alert_delivery.claim_scope(function)`, once SNS took the alert) through `dynamodb_client`
    fail to connect, until healed."""
    fault = CompletionRefusal(scope)
    dynamodb_client.meta.events.register_first("before-send.dynamodb.PutItem", fault)
    return fault


@dataclass
class LostAnswer:
    """Lets moto apply the first attempt of one operation whose body holds each of `body_parts`,
    then fails that attempt with a read timeout, as a DynamoDB whose answer to an applied write
    never arrives; botocore sends the request again, and moto answers that attempt (or, while
    `unreachable_after`, the later attempts fail to connect, never reaching moto)."""

    operation: str
    body_parts: tuple[bytes, ...] = ()
    lost: int = 0
    unreachable_after: bool = False

    def __call__(self, request: Any, **kwargs: Any) -> None:
        # A query-protocol request (EC2's) carries its body as text.
        body = request.body or b""
        body = body.encode("utf-8") if isinstance(body, str) else body
        if not all(part in body for part in self.body_parts):
            return
        if self.lost:
            if self.unreachable_after:
                raise EndpointConnectionError(endpoint_url=request.url)
            return
        self.lost += 1
        botocore_stubber(request=request, **kwargs)
        raise ReadTimeoutError(endpoint_url=request.url)


def lose_first_answer(
    client: Any,
    service: str,
    operation: str,
    *,
    body_with: tuple[bytes, ...] = (),
    then_unreachable: bool = False,
) -> LostAnswer:
    """Make moto apply the first attempt of `operation` on `client` (with `body_with`, the first
    whose body contains each of those bytes) and lose its answer, so botocore's retry sends the
    same request to a table that already holds its write; with `then_unreachable`, the later
    attempts fail to connect until `unreachable_after` is turned off."""
    fault = LostAnswer(operation, body_with, unreachable_after=then_unreachable)
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


@dataclass
class RefusedRetry:
    """Lets moto apply the first attempt of one operation and loses its answer, as LostAnswer,
    then answers every later attempt with the error `code` (in EC2's XML when `ec2`, else
    JSON), as AWS refuses a retry that conflicts with the attempt it applied (CreateBackup while
    that backup is being created, a second CreateSnapshot of a volume within 15 s)."""

    code: str
    ec2: bool = False
    lost: int = 0
    refused: int = 0

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse:
        if not self.lost:
            self.lost += 1
            botocore_stubber(request=request, **kwargs)
            raise ReadTimeoutError(endpoint_url=request.url)
        self.refused += 1
        return _error_answer_unseen_by_moto(request, self.code, ec2=self.ec2)


MULTI_LINE_PAGE = "<html>\n<title>Console: https://evil.example/signin</title>\n" + "x" * 5000
"""An error answer's message of thousands of characters over several lines (a proxy's page),
the second line posing as a fact of the message."""
ESCAPES_PAGE = "<html>\nRefused \x1b[31m\u2028" + "x" * 5000
"""An error answer's message (a proxy's page) holding a line break, a terminal's colour escape
and a Unicode line separator: quoted, it must read `<html>\\nRefused \\x1b[31m\\u2028` on one
line, cut."""
ESCAPES_PAGE_QUOTED = "<html>\\nRefused \\x1b[31m\\u2028xxx"
"""How the start of `ESCAPES_PAGE` reads once escaped."""


@dataclass
class InjectedS3Refusal:
    """Answers every attempt of one S3 operation whose URL contains `url_part` with S3's 403
    AccessDenied carrying `message`, which botocore does not retry."""

    message: str
    url_part: str = ""
    refused: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.url_part not in request.url:
            return None
        self.refused += 1
        body = (
            f"<Error><Code>AccessDenied</Code><Message>{xml_escape(self.message)}</Message></Error>"
        ).encode()
        return answer_of(request.url, 403, {"Content-Type": "application/xml"}, body)


def refuse_every_s3_attempt(
    s3_client: Any, operation: str, message: str = MULTI_LINE_PAGE, *, url_with: str = ""
) -> InjectedS3Refusal:
    """Answer every attempt of `operation` on `s3_client` (with `url_with`, only those whose URL
    contains it) with AccessDenied and `message` (a proxy's page unless told), ahead of moto's
    answer."""
    fault = InjectedS3Refusal(message, url_part=url_with)
    s3_client.meta.events.register_first(f"before-send.s3.{operation}", fault)
    return fault


def _error_answer_unseen_by_moto(
    request: Any, code: str, *, ec2: bool, status: int = 400, message: str = "injected refusal"
) -> AWSResponse:
    """An error answer `code` with `message` (in EC2's XML when `ec2`, else JSON; HTTP `status`)
    to `request`, which moto then leaves alone: botocore calls every `before-send` handler, and
    moto acts on a request another handler answered, but not on a URL outside AWS's domains."""
    request.url = "https://refused-retry.invalid/"
    if ec2:
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{xml_escape(message)}"
            "</Message></Error></Errors><RequestID>refused</RequestID></Response>"
        ).encode()
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Body(body))
    body = json.dumps({"__type": code, "message": message}).encode()
    return AWSResponse(
        request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Body(body)
    )


@dataclass
class RefusedUnseenByMoto:
    """Answers every attempt of one operation with the error `code` and `message` (EC2's XML when
    `ec2`, else JSON; HTTP 400), which moto never sees."""

    code: str
    message: str
    ec2: bool = False
    refused: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.refused += 1
        return _error_answer_unseen_by_moto(request, self.code, ec2=self.ec2, message=self.message)


def refuse_unseen_by_moto(
    client: Any, service: str, operation: str, code: str, message: str
) -> RefusedUnseenByMoto:
    """Answer every attempt of `operation` on `client` with the error `code` and `message`
    before moto sees it: for an operation moto does not implement (it would raise), or a
    write moto must not make."""
    fault = RefusedUnseenByMoto(code, message, ec2=client.meta.service_model.protocol == "ec2")
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


def refuse_retry_after_lost_answer(
    client: Any, service: str, operation: str, code: str
) -> RefusedRetry:
    """Make moto apply the first attempt of `operation` on `client` and lose its answer, then
    answer botocore's retries with the error `code` (EC2's or a JSON-protocol service's) before
    moto sees them."""
    fault = RefusedRetry(code, ec2=client.meta.service_model.protocol == "ec2")
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


@dataclass
class ServerErrorAfterApplying:
    """Lets moto apply the first attempt of one operation, then answers it with the HTTP 500
    error `code` (AWS failing after it acted), which botocore retries, and answers every later
    attempt with the error `retry_code` (HTTP 400), none of which moto sees. With `spend`, each
    attempt first spends `attempt_seconds` through it (answered as its timeouts run out); with
    `retry_after_ms`, the server error asks for that wait (`x-amz-retry-after`)."""

    code: str
    retry_code: str
    ec2: bool = False
    applied: int = 0
    refused: int = 0
    spend: Callable[[float], None] | None = None
    attempt_seconds: float = 0.0
    retry_after_ms: int | None = None

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse:
        if self.spend is not None:
            self.spend(self.attempt_seconds)
        if not self.applied:
            self.applied += 1
            botocore_stubber(request=request, **kwargs)
            answer = _error_answer_unseen_by_moto(request, self.code, ec2=self.ec2, status=500)
            if self.retry_after_ms is not None:
                answer.headers["x-amz-retry-after"] = str(self.retry_after_ms)
            return answer
        self.refused += 1
        return _error_answer_unseen_by_moto(request, self.retry_code, ec2=self.ec2)


def fail_after_applying_then_refuse(
    client: Any,
    service: str,
    operation: str,
    code: str,
    retry_code: str,
    *,
    spend: Callable[[float], None] | None = None,
    retry_after_ms: int | None = None,
) -> ServerErrorAfterApplying:
    """Make moto apply the first attempt of `operation` on `client` and answer it with the
    server error `code` (HTTP 500; asking for a wait of `retry_after_ms`, if given), then answer
    botocore's retries with `retry_code`; with `spend` (a `LambdaTime`'s), each attempt is
    answered only as the client's connect and read timeouts run out."""
    config = client.meta.config
    fault = ServerErrorAfterApplying(
        code,
        retry_code,
        ec2=client.meta.service_model.protocol == "ec2",
        spend=spend,
        attempt_seconds=config.connect_timeout + config.read_timeout,
        retry_after_ms=retry_after_ms,
    )
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


@dataclass
class ThrottledThenRefused:
    """Answers the first attempt of one operation with ThrottlingException and every later one
    with the error `code`, none of them reaching moto, until `healed`: an AWS that acted on no
    attempt, each answered."""

    code: str
    ec2: bool = False
    answered: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.healed:
            return None
        self.answered += 1
        code = "ThrottlingException" if self.answered == 1 else self.code
        return _error_answer_unseen_by_moto(request, code, ec2=self.ec2)


def throttle_then_refuse(
    client: Any, service: str, operation: str, code: str
) -> ThrottledThenRefused:
    """Answer the first attempt of `operation` on `client` with throttling, which botocore
    retries, and its retries with the error `code`, before moto sees any of them."""
    fault = ThrottledThenRefused(code, ec2=client.meta.service_model.protocol == "ec2")
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


@dataclass
class ThrottledAtTheLastMoment:
    """Answers every attempt of one operation with throttling at the last moment of its
    timeouts: each attempt first spends `attempt_seconds` through `spend` (connected as the
    connect timeout runs out, answered as the read timeout does), then gets ThrottlingException
    with `message` (in EC2's XML when `ec2`, else JSON), which moto never sees."""

    spend: Callable[[float], None]
    attempt_seconds: float
    ec2: bool = False
    message: str = "injected refusal"
    attempts: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        self.spend(self.attempt_seconds)
        return _error_answer_unseen_by_moto(
            request, "ThrottlingException", ec2=self.ec2, message=self.message
        )


def throttle_just_before_timeout(
    client: Any,
    service: str,
    operation: str,
    spend: Callable[[float], None],
    message: str = "injected refusal",
) -> ThrottledAtTheLastMoment:
    """Make every attempt of `operation` on `client` spend its client's connect and read
    timeouts through `spend` (a `LambdaTime`'s, with botocore's waits spent there too), then be
    answered with throttling (its message `message`: a proxy's page), which botocore retries
    after its throttling waits (1 s, doubling, up to 20 s), before moto sees it."""
    config = client.meta.config
    fault = ThrottledAtTheLastMoment(
        spend,
        config.connect_timeout + config.read_timeout,
        ec2=client.meta.service_model.protocol == "ec2",
        message=message,
    )
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


HANG_LIMIT_SECONDS = 30
"""The longest a hung request is held: the test stays bounded even if it fails."""


class InvocationKilledError(Exception):
    """Raised in a hung request once the test releases it: Lambda killed that invocation, so
    it must go no further (botocore does not retry it)."""


@dataclass
class HeldAttempt:
    """Holds the first attempt of an operation until `release`, then lets it go on, as a peer
    slow to answer (or, `killed_when_released`, ends it as Lambda ends an invocation at its
    deadline); `entered` is set once it holds."""

    operation: str
    entered: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)
    killed_when_released: bool = False

    def __call__(self, request: Any, **_: Any) -> None:
        if self.entered.is_set():
            return
        self.entered.set()
        self._released.wait(HANG_LIMIT_SECONDS)
        if self.killed_when_released:
            raise InvocationKilledError(f"{self.operation} to {request.url}")

    def release(self) -> None:
        """Let the held attempt go on (or end, when it is killed)."""
        self._released.set()


@dataclass
class InjectedHang(HeldAttempt):
    """Holds the first attempt of an operation until `release`, as a peer that never answers
    holds an invocation until Lambda kills it at its deadline; `entered` is set once it holds."""

    killed_when_released: bool = True


def hold_first_attempt(client: Any, service: str, operation: str) -> HeldAttempt:
    """Hold the first attempt of `operation` on `client` until released; it then goes through,
    as do later attempts."""
    held = HeldAttempt(operation)
    client.meta.events.register_first(f"before-send.{service}.{operation}", held)
    return held


def hang_first_attempt(client: Any, service: str, operation: str) -> InjectedHang:
    """Make the first attempt of `operation` on `client` hang until released; later attempts
    (the platform's retry of the invocation) go through."""
    fault = InjectedHang(operation)
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault


REPEATED_TOKEN_PAGE_LIMIT = 20
"""The most pages `answer_the_same_page_token` answers: a loop that follows its token forever
fails the test after these instead of running until the test run is killed."""


class EndlessPagesError(Exception):
    """A loop asked for more than REPEATED_TOKEN_PAGE_LIMIT pages of an answer that repeats its
    token: it would have asked until Lambda ended the run."""


@dataclass
class RepeatedPageToken:
    """Gives every answer of an operation the same next-page token (`token_field`: NextToken,
    NextPageToken, DynamoDB's LastEvaluatedKey), as a service or a proxy replaying one answer
    may; counts the pages."""

    operation: str
    token_field: str
    token: object
    pages: int = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        self.pages += 1
        if self.pages > REPEATED_TOKEN_PAGE_LIMIT:
            raise EndlessPagesError(f"{self.operation} asked for {self.pages} pages")
        parsed[self.token_field] = self.token


def answer_the_same_page_token(
    client: Any, operation: str, token_field: str, token: object = "page-2"
) -> RepeatedPageToken:
    """Make every answer of `operation` on `client` (moto's, in an `after-call` handler) carry
    `token` in `token_field`, whatever the request asked for."""
    fault = RepeatedPageToken(operation, token_field, token)
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"after-call.{service}.{operation}", fault)
    return fault
