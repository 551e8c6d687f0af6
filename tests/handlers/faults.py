"""Faults injected where they really happen: in botocore's send step, so its retries run.

A `before-send` handler that raises a connection error stands in for the network failing:
botocore catches it as an HTTP client error and applies its retry policy exactly as for a real
failure (`before-call` would skip the retries). The handler is registered first and raises, so
no later `before-send` handler runs: moto's in-process stub never sees the request, and nothing
happens on the AWS side (an injected HTTP 500 answer would not stop moto acting on the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import EndpointConnectionError


@dataclass
class InjectedFault:
    """Counts the attempts it failed; once `healed`, requests go through."""

    operation: str
    attempts: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> None:
        if self.healed:
            return
        self.attempts += 1
        raise EndpointConnectionError(endpoint_url=request.url)


def fail_every_attempt(client: Any, service: str, operation: str) -> InjectedFault:
    """Make every attempt of `operation` on `client` fail to connect until the fault is healed."""
    fault = InjectedFault(operation)
    client.meta.events.register_first(f"before-send.{service}.{operation}", fault)
    return fault
