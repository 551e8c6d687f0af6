"""What the forecaster works with: the fleet's services plus a Lambda client for the scaler."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from botocore.config import Config

from fleet_shared.function_services import FunctionServices
from fleet_shared.sessions import CLIENT_CONFIG
from handlers.demand_forecaster.environment import ForecasterEnvironment

SCALER_READ_TIMEOUT_SECONDS = 130
"""Longer than the scaler's own 120 s timeout, so its answer is read rather than cut off."""


class ForecasterServices(FunctionServices[ForecasterEnvironment]):
    """The forecaster's services; tests build them with `ForecasterServices.create(...)`."""

    @cached_property
    def scaler_client(self) -> Any:
        """A hub Lambda client for the scaler; a retry is safe: its request id is idempotent."""
        config = CLIENT_CONFIG.merge(Config(read_timeout=SCALER_READ_TIMEOUT_SECONDS))
        session = self.sessions.session(self.sessions.hub_account_id, self.sessions.home_region)
        return session.client("lambda", config=config)
