"""A small HTTP server on 127.0.0.1 that stands in for Slack, PagerDuty and a news feed.

It records every POST (path and JSON body) so the demo can show what the fleet's alerts would
have sent, serves a fixed RSS document for the report fetcher's launch-date feed, and answers
the health monitor's endpoint checks. Under LAMBDA_PATH it answers Lambda's Invoke API (one
function invoking another, as the forecaster asks the scaler) through `function_invoker`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from fleetctl.exceptions import FleetctlError

FEED_PATH = "/feed.rss"
HEALTH_PATH = "/healthz"
PRICING_PATH = "/pricing"
LAMBDA_PATH = "/lambda"
_INVOKE_PATH = re.compile(rf"{LAMBDA_PATH}/2015-03-31/functions/(?P<name>[^/]+)/invocations")
# moto has no Pricing API; the demo answers it here as AWS answers an unavailable operation, so
# the spot optimizer takes its documented fallback (the bundled price table).
PRICING_REFUSAL = b'{"__type": "ServiceUnavailableException", "message": "no Pricing API offline"}'

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>AWS region launches</title>
<item><title>Asia Pacific (Hyderabad) Region is now open</title>
<link>https://aws.amazon.com/about-aws/whats-new/</link>
<pubDate>Tue, 22 Nov 2022 00:00:00 GMT</pubDate></item>
<item><title>Asia Pacific (Melbourne) Region is now open</title>
<link>https://aws.amazon.com/about-aws/whats-new/</link>
<pubDate>Tue, 24 Jan 2023 00:00:00 GMT</pubDate></item>
</channel></rss>
"""


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    body: Any


FunctionInvoker = Callable[[str, Any], Any]
"""(deployed function name, event) -> the function's result; raises FleetctlError when the
function failed."""


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.health_status = 200
        self.function_invoker: FunctionInvoker | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                if self.path.startswith(PRICING_PATH):
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(PRICING_REFUSAL)))
                    self.end_headers()
                    self.wfile.write(PRICING_REFUSAL)
                    return
                invocation = _INVOKE_PATH.fullmatch(self.path.split("?", 1)[0])
                if invocation is not None:
                    self._invoke(unquote(invocation["name"]), raw)
                    return
                try:
                    body: Any = json.loads(raw)
                except json.JSONDecodeError:
                    body = raw
                receiver.requests.append(ReceivedRequest(self.path, body))
                reply = b'{"status": "success"}' if "pagerduty" in self.path else b"ok"
                self.send_response(202 if "pagerduty" in self.path else 200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def do_GET(self) -> None:
                if self.path not in (FEED_PATH, HEALTH_PATH):
                    self.send_error(404)
                    return
                if self.path == FEED_PATH:
                    data, status = FEED.encode(), 200
                else:
                    status = receiver.health_status
                    data = b'{"status": "ok"}' if status == 200 else b'{"status": "failing"}'
                self.send_response(status)
                content_type = (
                    "application/rss+xml" if self.path == FEED_PATH else "application/json"
                )
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _invoke(self, name: str, raw: str) -> None:
                """Lambda's Invoke: the result as the body, or the error with the header that
                marks a function error; an unknown function is Lambda's 404."""
                headers: dict[str, str] = {}
                if receiver.function_invoker is None:
                    status = 404
                    headers["x-amzn-ErrorType"] = "ResourceNotFoundException"
                    body: Any = {"Type": "User", "Message": f"Function not found: {name}"}
                else:
                    status = 200
                    try:
                        body = receiver.function_invoker(name, json.loads(raw or "{}"))
                    except FleetctlError as error:
                        headers["X-Amz-Function-Error"] = "Unhandled"
                        body = {"errorMessage": str(error), "errorType": type(error).__name__}
                data = json.dumps(body).encode()
                self.send_response(status)
                for header, value in headers.items():
                    self.send_header(header, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
