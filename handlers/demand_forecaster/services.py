"""What the forecaster works with: the fleet's services, member-account clients whose reads are
bounded (EKS, EC2, CloudWatch), and a Lambda client for the scaler."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from botocore.config import Config

from fleet_shared.function_services import FunctionServices
from fleet_shared.sessions import CLIENT_CONFIG
from handlers.demand_forecaster.environment import ForecasterEnvironment

SCALER_READ_TIMEOUT_SECONDS = 130
"""Longer than the scaler's own 120 s timeout, so its answer is read rather than cut off."""

READ_CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
"""A cluster's reads in its member account (DescribeNodegroup, DescribeInstanceTypes, a
GetMetricData of 4 hourly series) answer within a second or two; an endpoint that hangs is given
up after this long without a byte."""
READ_ATTEMPTS = 3
_MAX_RETRY_BACKOFF_SECONDS = 20
"""botocore's standard mode waits up to 2^(n-1) s, at most 20, before attempt n+1."""
READ_CALL_SECONDS = READ_ATTEMPTS * (READ_CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + sum(
    min(2**retry, _MAX_RETRY_BACKOFF_SECONDS) for retry in range(READ_ATTEMPTS - 1)
)
"""The longest one member read can take, every attempt timing out (48 s): botocore's defaults
(60 s to connect, 60 s to read, 6 attempts) would let one hung endpoint take the whole 300 s of
the fleet run."""
MEMBER_READ_CONFIG = CLIENT_CONFIG.merge(
    Config(
        connect_timeout=READ_CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        # `total_max_attempts`: botocore's `max_attempts` counts retries (2 is three calls).
        retries={"mode": "standard", "total_max_attempts": READ_ATTEMPTS},
    )
)


class ForecasterServices(FunctionServices[ForecasterEnvironment]):
    """The forecaster's services; tests build them with `ForecasterServices.create(...)`."""

    @cached_property
    def scaler_client(self) -> Any:
        """A hub Lambda client for the scaler; a retry is safe: its request id is idempotent."""
        config = CLIENT_CONFIG.merge(Config(read_timeout=SCALER_READ_TIMEOUT_SECONDS))
        session = self.sessions.session(self.sessions.hub_account_id, self.sessions.home_region)
        return session.client("lambda", config=config)

    def member_client(self, service: str, account_id: str, region: str) -> Any:
        """A client of `service` in `account_id` and `region` for a cluster's reads (EKS, EC2,
        CloudWatch), with `MEMBER_READ_CONFIG`."""
        return self.sessions.client(service, account_id, region, config=MEMBER_READ_CONFIG)
