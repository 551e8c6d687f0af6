"""What one optimizer invocation works with: settings, sessions, state table, alerts, clock and
the fleet inventory. Built once per container by app.py; tests build their own with a manual
clock."""

from __future__ import annotations

from dataclasses import dataclass

from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.inventory import FleetInventory
from fleet_shared.inventory_store import load_inventory
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.spot_optimizer.environment import SpotEnvironment

FUNCTION_NAME = "spot_optimizer"


@dataclass
class SpotRuntime:
    """Dependencies of the optimizer, injected so tests can drive time and clients."""

    environment: SpotEnvironment
    sessions: AccountSessions
    state: StateTable
    alerts: AlertPublisher
    clock: Clock

    @classmethod
    def create(cls, environment: SpotEnvironment, clock: Clock | None = None) -> SpotRuntime:
        """Hub clients for the state table and alerts; member clients come per call."""
        clock = clock or SystemClock()
        sessions = AccountSessions.from_environment(environment, FUNCTION_NAME, clock=clock)
        return cls(
            environment=environment,
            sessions=sessions,
            state=StateTable(environment.state_table_name, sessions.hub_client("dynamodb"), clock),
            alerts=AlertPublisher(sessions.hub_client("sns"), environment),
            clock=clock,
        )

    def inventory(self) -> FleetInventory:
        """The fleet inventory; analyze_fleet cannot work without it.

        Raises ConfigurationError when DATA_BUCKET_NAME is unset and InventoryError when the
        object cannot be read.
        """
        bucket = self.environment.data_bucket_name
        if bucket is None:
            raise ConfigurationError("DATA_BUCKET_NAME", "is required to analyze the fleet")
        return load_inventory(
            self.sessions.hub_client("s3"), bucket, self.environment.fleet_inventory_key
        )

    def publish(self, alert: Alert) -> None:
        """Publish an alert (fleet_shared.alerts)."""
        self.alerts.publish(alert)
