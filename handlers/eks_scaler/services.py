"""What the scaler works with: the fleet's services plus the forecaster's Lambda client and the
optional inventory."""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.inventory import FleetInventory
from fleet_shared.observability import observability_for
from fleet_shared.sessions import MEMBER_CALL_CONFIG, bounded_config
from fleet_shared.unanswered_endpoints import MEMBER_CALLS_GIVEN_UP_AFTER
from handlers.eks_scaler.environment import ScalerEnvironment


class ScalerServices(WatchedMemberServices[ScalerEnvironment]):
    """The scaler's services; tests build them with `ScalerServices.create(..., clock=...)`."""

    member_call_config = MEMBER_CALL_CONFIG
    member_calls_given_up_after = MEMBER_CALLS_GIVEN_UP_AFTER
    """A node group's call that hangs fails it within `sessions.MEMBER_CALL_SECONDS` (17 s) and
    the others go on; an endpoint is given up after two such calls, so a hung EKS and a hung Auto
    Scaling endpoint cost a run at most 68 s of its 120 s."""

    @cached_property
    def logger(self) -> Any:
        """The function's logger (the same object as `FUNCTION.logger`)."""
        return observability_for(self.function_name).logger

    def pause(self, seconds: float) -> None:
        """Wait for a node group's cooldown to end (tests' services move their clock instead)."""
        time.sleep(seconds)

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

        Raises fleet_shared.exceptions.InventoryUnreadableError or InventoryError when it is
        configured but cannot be read or is invalid: floors and ceilings must not silently fall
        back to the defaults then.
        """
        if self.environment.data_bucket_name is None:
            return None
        return self.inventory()
