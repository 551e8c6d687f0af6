"""What one scaler invocation works with: settings, sessions, state table, alerts, clock and the
fleet inventory. Built once per container by app.py; tests build their own with a manual clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.inventory import FleetInventory
from fleet_shared.inventory_store import load_inventory
from fleet_shared.sessions import CLIENT_CONFIG, AccountSessions
from fleet_shared.state_table import StateTable
from handlers.eks_scaler.environment import ScalerEnvironment

FUNCTION_NAME = "eks_scaler"


@dataclass
class ScalerRuntime:
    """Dependencies of the scaler, injected so tests can drive time and clients."""

    environment: ScalerEnvironment
    sessions: AccountSessions
    state: StateTable
    alerts: AlertPublisher
    clock: Clock
    _lambda_client: Any = field(default=None, repr=False)

    @classmethod
    def create(cls, environment: ScalerEnvironment, clock: Clock | None = None) -> ScalerRuntime:
        """Hub clients for the state table and alerts; member clients come per call."""
        clock = clock or SystemClock()
        sessions = AccountSessions.from_environment(environment, FUNCTION_NAME)
        return cls(
            environment=environment,
            sessions=sessions,
            state=StateTable(environment.state_table_name, sessions.hub_client("dynamodb"), clock),
            alerts=AlertPublisher(sessions.hub_client("sns"), environment),
            clock=clock,
        )

    def inventory(self) -> FleetInventory | None:
        """The fleet inventory, or None when DATA_BUCKET_NAME is not set (default floors apply).

        Raises fleet_shared.exceptions.InventoryError when it is configured but unreadable:
        floors must not silently fall back to the defaults then.
        """
        bucket = self.environment.data_bucket_name
        if bucket is None:
            return None
        return load_inventory(
            self.sessions.hub_client("s3"), bucket, self.environment.fleet_inventory_key
        )

    def publish(self, alert: Alert) -> None:
        """Publish an alert (fleet_shared.alerts)."""
        self.alerts.publish(alert)

    def lambda_client(self) -> Any:
        """A hub Lambda client for the forecaster: one attempt, bounded read timeout, because a
        slow forecast must not hold the scaler (it then reports "forecast unavailable")."""
        if self._lambda_client is None:
            config = CLIENT_CONFIG.merge(
                Config(
                    read_timeout=self.environment.scaler_forecast_timeout_seconds,
                    retries={"mode": "standard", "max_attempts": 1},
                )
            )
            session = self.sessions.session(self.sessions.hub_account_id, self.sessions.home_region)
            self._lambda_client = session.client("lambda", config=config)
        return self._lambda_client
