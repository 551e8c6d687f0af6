"""Runs one handler in this (fresh) process, laid out as Lambda lays it out.

Started by `fleetctl invoke` and by the demo's workers with the function's environment already
set. Each request is one line of JSON on standard input, `{"event": ..., "now": ...}`; each
answer one line on standard output, `{"result": ...}` or `{"crash": "..."}` when the handler
raised (the traceback goes to standard error, which the caller keeps as the function's log, as
CloudWatch Logs would). Everything the handler logs goes to standard error.

`now` (ISO 8601, optional) is the instant the invocation happens at: the function's services
then run on a clock that starts there and ticks in real time, so dates, cooldowns, windows and
TTLs follow a replayed day. Without it the function runs on the machine's clock.

Usage: python -m fleetctl.invoke_runner <handler module> <function name> <timeout seconds>

The process stays warm like a Lambda execution environment, answering request after request
until standard input closes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_shared.exceptions import FleetError
from fleet_shared.http_api import is_http_api_event
from fleet_shared.http_api_alias import HTTP_API_ALIAS
from fleet_shared.timestamps import parse_iso


@dataclass
class LocalContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    invoked_function_arn: str = ""
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class ReplayedClock:
    """A clock set to an instant per invocation that ticks in real time from there."""

    def __init__(self) -> None:
        self._instant: datetime | None = None
        self._set_at = time.monotonic()

    def set(self, instant: datetime | None) -> None:
        """Start at `instant` (timezone-aware) from now on; None follows the machine's clock."""
        self._instant = instant
        self._set_at = time.monotonic()

    def now(self) -> datetime:
        """The instant set, plus the real time elapsed since it was set."""
        if self._instant is None:
            return datetime.now(UTC)
        return self._instant + timedelta(seconds=time.monotonic() - self._set_at)


def _use_clock(module: Any, clock: ReplayedClock) -> None:
    """Give the function's services the replayed clock, through the skeleton's local-runner hook.

    A function whose configuration is invalid keeps failing each invocation naming the variable,
    as deployed.
    """
    function = module.FUNCTION
    try:
        services = function.services()
    except FleetError:
        return
    if services.clock is not clock:
        function.use_services(dataclasses.replace(services, clock=clock))


def invoked_function_arn(function_name: str, event: object) -> str:
    """The ARN Lambda runs `event` through: an HTTP API request through the function's http-api
    alias, as the deployed API invokes it (the handler refuses one that came another way), any
    other event through the function's own ARN."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    account = os.environ.get("HUB_ACCOUNT_ID") or "000000000000"
    arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
    return f"{arn}:{HTTP_API_ALIAS}" if is_http_api_event(event) else arn


def answer(module: Any, clock: ReplayedClock, request: dict[str, Any], context: Any) -> dict:
    """One invocation: the handler's result, or the crash that Lambda would report."""
    now = request.get("now")
    clock.set(parse_iso(now) if now else None)
    try:
        _use_clock(module, clock)
        return {"result": module.lambda_handler(request.get("event"), context)}
    except Exception as error:  # reported to the caller, as Lambda reports it
        traceback.print_exc()
        return {"crash": f"{type(error).__name__}: {error}"}


def serve(module_name: str, function_name: str, timeout: str) -> int:
    answers = sys.stdout
    clock = ReplayedClock()
    # Handlers log to standard output (as Lambda captures it); keep it apart from the answers.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # the function cannot start: every request gets this answer
            traceback.print_exc()
            failed = {"crash": f"cannot import {module_name}: {type(error).__name__}: {error}"}
            for _ in sys.stdin:
                answers.write(json.dumps(failed) + "\n")
                answers.flush()
            return 1
        for line in sys.stdin:
            request = json.loads(line)
            context = LocalContext(
                function_name=function_name,
                timeout_seconds=int(timeout),
                log_group_name=f"/aws/lambda/{function_name}",
                invoked_function_arn=invoked_function_arn(function_name, request.get("event")),
            )
            reply = answer(module, clock, request, context)
            answers.write(json.dumps(reply, default=str) + "\n")
            answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(*sys.argv[1:]))
