"""What the change validator works with: the fleet's services plus the scheduler, the scaler's
Lambda client and clients in the changed cluster's member account."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from fleet_shared.function_services import FunctionServices
from fleet_shared.sessions import bounded_config
from handlers.change_validator.environment import ValidatorEnvironment

FUNCTION_NAME = "change_validator"

SCALER_READ_TIMEOUT_SECONDS = 130
"""Longer than the scaler's own 120 s timeout, so its answer is read rather than cut off."""

MEMBER_CONNECT_TIMEOUT_SECONDS = 5
MEMBER_READ_TIMEOUT_SECONDS = 10
"""A change's reads in its member account (DescribeUpdate, DescribeNodegroup, the load balancers,
a GetMetricData over the bake) answer within a second or two; an endpoint that hangs is given up
after this long without a byte."""
MEMBER_READ_ATTEMPTS = 5
"""One fewer than the fleet's 6: the throttling of a burst of changes in one region still backs
off (a baseline that cannot be read leaves the change unvalidated), and a hung endpoint still
fails inside the invocation."""
MEMBER_READ_CONFIG = bounded_config(
    connect_seconds=MEMBER_CONNECT_TIMEOUT_SECONDS,
    read_seconds=MEMBER_READ_TIMEOUT_SECONDS,
    attempts=MEMBER_READ_ATTEMPTS,
)
"""One member read that hangs fails within 75 s (5 attempts of 5 s to connect and 10 s to read),
inside the validator's 120 s, so the check is counted and the next one booked. With botocore's
defaults (60 s to connect, 60 s to read, 6 attempts) Lambda ended the invocation first, every
attempt, and the validation was left with no verdict, no warning and nothing booked."""


class ValidatorServices(FunctionServices[ValidatorEnvironment]):
    """The validator's services; tests build them with `ValidatorServices.create(...)`."""

    @cached_property
    def scheduler(self) -> Any:
        """EventBridge Scheduler in the hub: the one-time callback schedules."""
        return self.hub_client("scheduler")

    @cached_property
    def scaler_client(self) -> Any:
        """A hub Lambda client for the scaler; a retry is safe: its request id is idempotent."""
        config = bounded_config(read_seconds=SCALER_READ_TIMEOUT_SECONDS)
        session = self.sessions.session(self.sessions.hub_account_id, self.sessions.home_region)
        return session.client("lambda", config=config)

    def member_client(self, account_id: str, region: str) -> Callable[[str], Any]:
        """`client(service)` in the member account and region of a change, its reads bounded by
        `MEMBER_READ_CONFIG`."""
        return lambda service: self.sessions.client(
            service, account_id, region, config=MEMBER_READ_CONFIG
        )
