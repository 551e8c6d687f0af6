"""A client-side rate limit for SSM: one token bucket shared by every worker thread.

SSM allows 40 transactions per second per account and region, shared by GetParameter,
GetParameters and GetParametersByPath; the fetcher's workers could offer far more and would be
throttled. The bucket is attached to the SSM client's `request-created` event, which botocore
emits for every attempt (retries included), so each request that reaches SSM has taken a token.

The bucket holds at most `capacity` tokens (1 by default: calls are spaced evenly, with no burst
after an idle spell) and refills at `rate_per_second`. A caller that finds it empty reserves the
next token and sleeps until it is due, outside the lock, so waiting callers are served in order
and never more than `capacity + rate_per_second * T` requests start in any T seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class TokenBucket:
    """A thread-safe token bucket; `monotonic` and `sleep` are injectable for tests."""

    def __init__(
        self,
        rate_per_second: float,
        capacity: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._rate = rate_per_second
        self._capacity = capacity
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = capacity
        self._updated = monotonic()

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def attach(self, client: Any) -> None:
        """Make every request `client` sends (each retry too) take a token first."""
        service = client.meta.service_model.service_id.hyphenize()
        # First, so the wait happens before signing and the signature's time stays current.
        client.meta.events.register_first(f"request-created.{service}", self._on_request)

    def _on_request(self, **_: Any) -> None:
        self.acquire()
