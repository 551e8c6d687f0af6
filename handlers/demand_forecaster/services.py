"""What the forecaster works with: the fleet's services, member-account clients whose reads are
bounded (EKS, EC2, CloudWatch), hub clients (state table, SNS, S3, the scaler's Lambda) whose calls
are bounded too and not repeated in the invocation once their endpoint did not answer one
(`fleet_shared.unanswered_endpoints`).

The fleet run calls the state table and SNS once or more per cluster (the forecast's save, a
warning per node group short of capacity, the predictive decision's record and its alert): a
service whose endpoint hangs would otherwise cost every one of those calls its bound, and a fleet
of clusters the run's time. A run spends at most one bounded call per hub service on an endpoint
that hangs, which is what `cluster_forecasts.HUB_SILENCE_SECONDS` reserves."""

from __future__ import annotations

from typing import Any

from fleet_shared.function_services import FunctionServices
from fleet_shared.sessions import (
    HUB_CONNECT_TIMEOUT_SECONDS,
    bounded_config,
    longest_hung_call_seconds,
)
from handlers.demand_forecaster.environment import ForecasterEnvironment

READ_CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
"""A cluster's reads in its member account (DescribeNodegroup, DescribeInstanceTypes, a
GetMetricData of 4 hourly series) answer within a second or two; an endpoint that hangs is given
up after this long without a byte."""
READ_ATTEMPTS = 3
MEMBER_READ_CONFIG = bounded_config(
    connect_seconds=READ_CONNECT_TIMEOUT_SECONDS,
    read_seconds=READ_TIMEOUT_SECONDS,
    attempts=READ_ATTEMPTS,
)
READ_CALL_SECONDS = longest_hung_call_seconds(MEMBER_READ_CONFIG)
"""The longest one member read can take, every attempt timing out (46 s): botocore's defaults
(60 s to connect, 60 s to read, 6 attempts) would let one hung endpoint take the whole 300 s of
the fleet run."""

SCALER_READ_TIMEOUT_SECONDS = 130
"""Longer than the scaler's own 120 s timeout, so its answer is read rather than cut off."""
SCALER_CALL_CONFIG = bounded_config(
    connect_seconds=HUB_CONNECT_TIMEOUT_SECONDS,
    read_seconds=SCALER_READ_TIMEOUT_SECONDS,
    attempts=1,
)
SCALER_CALL_SECONDS = longest_hung_call_seconds(SCALER_CALL_CONFIG)
"""The longest asking the scaler can take (132 s): one attempt, since a second after a read that
timed out would wait as long again, more than a fleet run has; a request the scaler's Lambda
refused or throttled is a failed decision, alerted, and the next hour asks again."""


class ForecasterServices(FunctionServices[ForecasterEnvironment]):
    """The forecaster's services; tests build them with `ForecasterServices.create(...)`."""

    @property
    def scaler_client(self) -> Any:
        """A hub Lambda client for the scaler, with `SCALER_CALL_CONFIG`, refused once Lambda did
        not answer a call of the invocation."""
        return self.sessions.watched_hub_client("lambda", None, SCALER_CALL_CONFIG)

    def member_client(self, service: str, account_id: str, region: str) -> Any:
        """A client of `service` in `account_id` and `region` for a cluster's reads (EKS, EC2,
        CloudWatch), with `MEMBER_READ_CONFIG`."""
        return self.sessions.client(service, account_id, region, config=MEMBER_READ_CONFIG)
