"""What the scaler works with: the fleet's services plus the forecaster's Lambda client and the
optional inventory."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from fleet_shared.function_services import FunctionServices
from fleet_shared.inventory import FleetInventory
from fleet_shared.observability import observability_for
from fleet_shared.sessions import bounded_config, longest_hung_call_seconds
from handlers.eks_scaler.environment import ScalerEnvironment

MEMBER_CONNECT_TIMEOUT_SECONDS = 2
MEMBER_READ_TIMEOUT_SECONDS = 6
"""The scaler's calls in a member account (DescribeCluster, DescribeNodegroup, a page of
ListNodegroups or DescribeTags, GetMetricData, UpdateNodegroupConfig) answer within a second or
two; an endpoint silent this long is not going to answer."""
MEMBER_ATTEMPTS = 2
MEMBER_CALL_CONFIG = bounded_config(
    connect_seconds=MEMBER_CONNECT_TIMEOUT_SECONDS,
    read_seconds=MEMBER_READ_TIMEOUT_SECONDS,
    attempts=MEMBER_ATTEMPTS,
)
MEMBER_CALL_SECONDS = longest_hung_call_seconds(MEMBER_CALL_CONFIG)
"""The longest one member call takes, every attempt timing out (17 s): that node group fails,
and the others go on. An endpoint is given up for the invocation after two such calls
(`fleet_shared.unanswered_endpoints`), so a hung EKS and a hung Auto Scaling endpoint cost a run
at most 68 s of its 120 s. With botocore's defaults (60 s to connect, 60 s to read, 5 retries)
one hung UpdateNodegroupConfig outlasted the timeout: Lambda ended the run, and the node groups
after it were not processed."""


class ScalerServices(FunctionServices[ScalerEnvironment]):
    """The scaler's services; tests build them with `ScalerServices.create(..., clock=...)`."""

    @cached_property
    def logger(self) -> Any:
        """The function's logger (the same object as `FUNCTION.logger`)."""
        return observability_for(self.function_name).logger

    def member_client(self, service: str, account_id: str, region: str) -> Any:
        """A client of `service` in a member account and region, its calls bounded by
        `MEMBER_CALL_CONFIG` and refused at once once its endpoint was given up in this
        invocation (`AccountSessions.watched_member_client`)."""
        return self.sessions.watched_member_client(service, account_id, region, MEMBER_CALL_CONFIG)

    @cached_property
    def forecaster_client(self) -> Any:
        """A hub Lambda client for the forecaster: one attempt, bounded read timeout, because a
        slow forecast must not hold the scaler (it then reports "forecast unavailable")."""
        config = bounded_config(
            read_seconds=self.environment.scaler_forecast_timeout_seconds, attempts=1
        )
        session = self.sessions.session(self.sessions.hub_account_id, self.sessions.home_region)
        return session.client("lambda", config=config)

    def configured_inventory(self) -> FleetInventory | None:
        """The fleet inventory, or None when DATA_BUCKET_NAME is not set (default floors apply,
        and no request may go above a node group's current maxSize).

        Raises fleet_shared.exceptions.InventoryError when it is configured but unreadable:
        floors and ceilings must not silently fall back to the defaults then.
        """
        if self.environment.data_bucket_name is None:
            return None
        return self.inventory()
