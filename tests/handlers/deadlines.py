"""A Lambda context whose time runs out: for tests of handlers that stop starting work in time,
and of what Lambda's retry finds after it killed an invocation at its deadline. `LambdaTime`
simulates an invocation's time, spent by a member endpoint that never answers
(`hang_every_attempt`) and by botocore's waits between attempts, and ends the invocation when it is
up."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar

import botocore.endpoint
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.retries import standard

from fleet_shared import call_bounds
from fleet_shared.clock import ManualClock
from tests.handlers.conftest import FakeLambdaContext
from tests.handlers.faults import hang_first_attempt

ResultT = TypeVar("ResultT")

THREAD_REACHED_SECONDS = 60.0
"""How long a test waits for a thread it started to reach a point (a hung call entered, a peer
cut off): generous, as a loaded machine can take seconds to schedule that thread; a passing
test never waits it out."""
PLATFORM_RETRY_SECONDS = 60
"""The soonest Lambda retries an invocation that failed (or was killed)."""
KILLED_WITH_SECONDS_LEFT = 45
"""The time left to an invocation killed while publishing: more than its function's budget per
target (so it gets as far as its alerts; security_scanner's SCAN_TARGET_SECONDS, 120 s by
default, is lowered for it), and with the retry a minute after its deadline, less than a
delivery claim's own bound (`alert_delivery.PUBLISH_SECONDS`, 120 s) since it started. Below
eks_scaler's reserve per node group (`scaling.NODE_GROUP_SECONDS`, 47 s), with which it would
start none and publish nothing: its tests pass seconds of their own, counted from that constant."""


@dataclass(frozen=True)
class ContextRunningOutOfTime(FakeLambdaContext):
    """Answers the time left from `millis_left`, one answer per question (the handler asks once
    per target), the last answer repeated once the others are used up."""

    millis_left: list[int] = field(default_factory=lambda: [60_000])

    def get_remaining_time_in_millis(self) -> int:
        """The next answer of `millis_left`."""
        if len(self.millis_left) > 1:
            return self.millis_left.pop(0)
        return self.millis_left[0]


class InvocationEndedError(BaseException):
    """Lambda ended the invocation at its timeout: nothing after it runs, not even the handler's
    own error handling (a BaseException, which no `except Exception` catches)."""


@dataclass
class LambdaTime:
    """The time an invocation has spent of the `seconds_left` it started with."""

    seconds_left: float
    spent: float = 0.0

    def spend(self, seconds: float) -> None:
        """Spend `seconds`; the invocation ends when its time is up."""
        self.spent += seconds
        if self.spent >= self.seconds_left:
            raise InvocationEndedError(f"Lambda ended the invocation after {self.spent:.0f} s")

    def context(self) -> FakeLambdaContext:
        """The Lambda context of the invocation."""
        return SimulatedContext(time=self)

    def spend_botocore_waits(self, monkeypatch: pytest.MonkeyPatch) -> LambdaTime:
        """Make botocore's waits between attempts spend this invocation's time instead of the
        test's, and the bounded clients (`fleet_shared.call_bounds`) measure their calls in it;
        returns this time."""
        monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=self.spend))
        monkeypatch.setattr(call_bounds, "time", SimpleNamespace(monotonic=lambda: self.spent))
        return self


@dataclass(frozen=True)
class SimulatedContext(FakeLambdaContext):
    """A Lambda context whose time left is what its `time` has not spent."""

    time: LambdaTime = field(kw_only=True)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, round((self.time.seconds_left - self.time.spent) * 1000))


@dataclass
class HungOperation:
    """Every attempt of one operation goes to an endpoint that accepts the connection and never
    answers: each spends its client's read timeout of the invocation's time and fails as
    botocore fails it."""

    time: LambdaTime
    attempts: int = 0
    read_timeout: float = 0.0
    """The client's read timeout: given, or noted from each call's client config by
    `note_config` (registered on `before-parameter-build`)."""

    def note_config(self, context: dict[str, Any], **_: Any) -> None:
        self.read_timeout = context["client_config"].read_timeout

    def hang(self, request: Any, **_: Any) -> None:
        self.attempts += 1
        self.time.spend(self.read_timeout)
        raise ReadTimeoutError(endpoint_url=request.url)


def killed_while_publishing_then_retried(
    sns_client: Any,
    clock: ManualClock,
    invoke: Callable[[FakeLambdaContext], ResultT],
) -> ResultT:
    """The result of Lambda's retry of `invoke`, whose first run (with KILLED_WITH_SECONDS_LEFT
    in its context) hung on its first SNS Publish until Lambda killed it at its deadline; the
    retry runs a minute later by `clock`, with SNS answering, while the killed run still holds
    whatever it held.

    `invoke(context)` runs the function's handler on the event with that Lambda context. The
    killed run is let go (it ends with `InvocationKilledError`) only after the retry returned.
    """
    return killed_while_calling_then_retried(
        sns_client, "sns", "Publish", clock, invoke, seconds_left=KILLED_WITH_SECONDS_LEFT
    )


def killed_while_calling_then_retried(
    client: Any,
    service: str,
    operation: str,
    clock: ManualClock,
    invoke: Callable[[FakeLambdaContext], ResultT],
    *,
    seconds_left: int,
) -> ResultT:
    """The result of Lambda's retry of `invoke`, whose first run (with `seconds_left` in its
    context) hung on its first `operation` call through `client` until Lambda killed it at its
    deadline; the retry runs a minute after that deadline by `clock`, with `operation`
    answering, while the killed run still holds whatever it held.

    `invoke(context)` runs the function's handler on the event with that Lambda context. The
    killed run is let go (it ends with `InvocationKilledError`) only after the retry returned.
    """
    hang = hang_first_attempt(client, service, operation)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(invoke, ContextRunningOutOfTime(millis_left=[seconds_left * 1000]))
        try:
            assert hang.entered.wait(THREAD_REACHED_SECONDS), (
                f"the invocation made no {operation} call"
            )
            clock.advance(seconds_left + PLATFORM_RETRY_SECONDS)
            return invoke(FakeLambdaContext())
        finally:
            # Leaving the pool waits for the killed run to end, once let go.
            hang.release()


def hang_every_attempt(
    client: Any, service: str, operation: str, time: LambdaTime
) -> HungOperation:
    """Make every attempt of `operation` on `client` hang for the client's read timeout of `time`
    (botocore's waits between attempts spend `time` too: patch `botocore.endpoint.time`)."""
    fault = HungOperation(time, read_timeout=client.meta.config.read_timeout)
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault.hang)
    return fault


@dataclass
class SlowOperation:
    """Every call of one operation answers only at its last attempt: the attempts before it go to
    an endpoint that accepts the connection and never answers, each spending the client's read
    timeout of the invocation's time, as a member region's degraded network path does."""

    time: LambdaTime
    read_timeout: float
    answers_at_attempt: int
    attempts: int = 0
    attempt_of_the_call: int = 0

    def start_call(self, **_: Any) -> None:
        self.attempt_of_the_call = 0

    def hang_but_the_last(self, request: Any, **_: Any) -> None:
        self.attempts += 1
        self.attempt_of_the_call += 1
        if self.attempt_of_the_call < self.answers_at_attempt:
            self.time.spend(self.read_timeout)
            raise ReadTimeoutError(endpoint_url=request.url)


def answer_at_the_last_attempt(
    client: Any, service: str, operation: str, time: LambdaTime
) -> SlowOperation:
    """Make every call of `operation` on `client` answer at its client's last attempt, the ones
    before hanging for the client's read timeout of `time` (patch `botocore.endpoint.time`)."""
    config = client.meta.config
    fault = SlowOperation(time, config.read_timeout, config.retries["total_max_attempts"])
    client.meta.events.register_first(f"before-call.{service}.{operation}", fault.start_call)
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault.hang_but_the_last)
    return fault


def draw_longest_botocore_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make botocore's standard retries wait the longest their full jitter allows after each
    attempt (the jitter's random draw at 1), as the bounds of a call count them."""
    monkeypatch.setattr(
        standard, "ExponentialBackoff", partial(standard.ExponentialBackoff, random=lambda: 1.0)
    )
