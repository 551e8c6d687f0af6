"""What the change validator works with: the fleet's services plus the scheduler, the scaler's
Lambda client and clients in the changed cluster's member account."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.sessions import bounded_config, longest_hung_call_seconds
from handlers.change_validator.environment import ValidatorEnvironment

FUNCTION_NAME = "change_validator"

SCALER_READ_TIMEOUT_SECONDS = 130
"""The longest wait for the scaler's answer: longer than its own 120 s timeout, so an answer is
read rather than cut off when the invocation has that long left."""
SCALER_CONNECT_TIMEOUT_SECONDS = 5
FINISH_SECONDS = 15
"""What the invocation keeps after asking the scaler or reading the member: saving the record and
sending the verdict's alert (a second or two when DynamoDB and SNS answer, the rest for their
retries)."""
MIN_SCALER_READ_SECONDS = 10
"""Less time than this left for the scaler's answer is not worth asking: the restore is left to a
person and the alert says so."""


def scaler_read_seconds(seconds_left: float) -> float:
    """How long to wait for the scaler's answer in an invocation with `seconds_left`: what is left
    after connecting and after what the invocation does next, at most
    SCALER_READ_TIMEOUT_SECONDS. The validator's 300 s hold that whole wait after a measurement
    of up to 150 s; after a longer one, a scaler that takes long (waiting on its lock, a member
    endpoint that hangs) would otherwise outlast the validator, which Lambda then ends before its
    alert."""
    return min(
        SCALER_READ_TIMEOUT_SECONDS,
        seconds_left - SCALER_CONNECT_TIMEOUT_SECONDS - FINISH_SECONDS,
    )


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
"""One member read that hangs fails within MEMBER_READ_SECONDS, inside the validator's 300 s, so
the check is counted and the next one booked. With botocore's defaults (60 s to connect, 60 s to
read, 6 attempts) Lambda ended the invocation first, every attempt, and the validation was left
with no verdict, no warning and nothing booked."""
MEMBER_READ_SECONDS = longest_hung_call_seconds(MEMBER_READ_CONFIG)
"""The longest one member read takes when its endpoint never answers (76 s: 5 attempts of 5 s to
connect and 10 s to read, and botocore's waits between them, 750 ms at most)."""
MEASUREMENT_RESERVE_SECONDS = MEMBER_READ_SECONDS + FINISH_SECONDS
"""The time a measurement keeps once it reads on (91 s of the validator's 300): one more member
read that never answers, then the record saved and the alert sent. With less left it asks no next
page or request (`next_member_read_allowed`) and fails, a counted failed check (an `inconclusive`
baseline), where a member answering page after page under new markers held the check until
Lambda ended it, every retry alike. The other 209 s are the measurement's to read in: about 2,000
requests at ELB's 10 Describe requests a second, the load balancers of the largest clusters (one
request per target group beside a few listings: `fleet_shared.load_balancers`)."""


def next_member_read_allowed(invocation: Invocation) -> Callable[[], bool]:
    """Whether a measurement in `invocation` may send its next member request: while
    MEASUREMENT_RESERVE_SECONDS fit in the time left."""
    return lambda: invocation.allows(MEASUREMENT_RESERVE_SECONDS)


class ValidatorServices(FunctionServices[ValidatorEnvironment]):
    """The validator's services; tests build them with `ValidatorServices.create(...)`."""

    @cached_property
    def scheduler(self) -> Any:
        """EventBridge Scheduler in the hub: the one-time callback schedules."""
        return self.hub_client("scheduler")

    def scaler_client(self, read_seconds: float) -> Any:
        """A hub Lambda client for the scaler that waits at most `read_seconds` for the answer,
        in one attempt: a second attempt after a read that timed out would wait as long again,
        past the invocation's end. The request id is idempotent, so a later invocation asks
        again safely."""
        config = bounded_config(
            connect_seconds=SCALER_CONNECT_TIMEOUT_SECONDS, read_seconds=read_seconds, attempts=1
        )
        session = self.sessions.session(self.sessions.hub_account_id, self.sessions.home_region)
        return session.client("lambda", config=config)

    def member_client(self, account_id: str, region: str) -> Callable[[str], Any]:
        """`client(service)` in the member account and region of a change, its reads bounded by
        `MEMBER_READ_CONFIG`."""
        return lambda service: self.sessions.client(
            service, account_id, region, config=MEMBER_READ_CONFIG
        )
