"""How hard and how long a channel is tried: a leaf module, so the services (which build it from
the environment) and the delivery loop (which follows it) both import it and not each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryPolicy:
    """Attempts per channel, the first backoff, what one attempt may take at most (a channel is
    not tried when less than that is left in the invocation), and the longest Retry-After
    waited for."""

    max_attempts: int
    backoff_seconds: float
    attempt_seconds: float
    longest_wait_seconds: float
    """The longest Retry-After waited for within the invocation; a longer one is left to the
    message's retry."""
