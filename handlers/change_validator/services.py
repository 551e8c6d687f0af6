"""What the change validator works with: the fleet's services plus the scheduler, the scaler's
Lambda client and clients in the changed cluster's member account."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from botocore.config import Config

from fleet_shared.function_services import FunctionServices
from fleet_shared.sessions import CLIENT_CONFIG
from handlers.change_validator.environment import ValidatorEnvironment

FUNCTION_NAME = "change_validator"

SCALER_READ_TIMEOUT_SECONDS = 130
"""Longer than the scaler's own 120 s timeout, so its answer is read rather than cut off."""


class ValidatorServices(FunctionServices[ValidatorEnvironment]):
    """The validator's services; tests build them with `ValidatorServices.create(...)`."""

    @cached_property
    def scheduler(self) -> Any:
        """EventBridge Scheduler in the hub: the one-time callback schedules."""
        return self.hub_client("scheduler")

    @cached_property
    def scaler_client(self) -> Any:
        """A hub Lambda client for the scaler; a retry is safe: its request id is idempotent."""
        config = CLIENT_CONFIG.merge(Config(read_timeout=SCALER_READ_TIMEOUT_SECONDS))
        session = self.sessions.session(self.sessions.hub_account_id, self.sessions.home_region)
        return session.client("lambda", config=config)

    def member_client(self, account_id: str, region: str) -> Callable[[str], Any]:
        """`client(service)` in the member account and region of a change."""
        return lambda service: self.sessions.client(service, account_id, region)
