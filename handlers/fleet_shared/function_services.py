"""The one container of a fleet function: environment, sessions, state table, alerts and clock.

Built once per execution environment by `fleet_shared.handler.FleetFunction` and handed to the
handler with every request. Everything is lazy: a function that never publishes an alert never
needs ALERT_TOPIC_ARN and never builds an SNS client. Tests build their own with a manual clock::

    services = FunctionServices.create("backup_scheduler", environment, clock=ManualClock(...))

A function that needs more (a retention policy, a secret cache) subclasses it and adds cached
properties derived from the environment; it never adds constructor arguments, so `create` and the
skeleton build every subclass the same way. A function whose member clients are bounded and given
up once their endpoint stops answering subclasses `WatchedMemberServices` and declares its
`member_call_config` and `member_calls_given_up_after`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import FunctionEnvironment
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.sessions import AccountSessions

if TYPE_CHECKING:
    from botocore.config import Config

    from fleet_shared.alerts import AlertPublisher
    from fleet_shared.inventory import FleetInventory
    from fleet_shared.state_table import StateTable

EnvironmentT = TypeVar("EnvironmentT", bound=FunctionEnvironment)


@dataclass(frozen=True)
class FunctionServices(Generic[EnvironmentT]):
    """What a function works with; `clock` decides every date, age, cooldown and TTL."""

    function_name: str
    environment: EnvironmentT
    sessions: AccountSessions
    clock: Clock

    @classmethod
    def create(
        cls, function_name: str, environment: EnvironmentT, *, clock: Clock | None = None
    ) -> Self:
        """The services of `function_name`; nothing is called until something is used.

        Sessions keep the system clock whatever `clock` is: assumed credentials expire in real
        time, even while a test or a replay tells the function's logic another date.
        """
        return cls(
            function_name=function_name,
            environment=environment,
            sessions=AccountSessions.from_environment(environment, function_name),
            clock=clock or SystemClock(),
        )

    def hub_client(self, service: str, region: str | None = None) -> Any:
        """A client of `service` in the hub account (the function's own), with the fleet's
        retry configuration, bounded (`sessions.HUB_CALL_CONFIG`) for STS, SNS and S3, and
        (`sessions.STATE_TABLE_CALL_CONFIG`) for DynamoDB; SNS's and S3's refused once their
        endpoint left a call of the invocation unanswered (`sessions.WATCHED_HUB_SERVICES`)."""
        return self.sessions.hub_client(service, region)

    def forget_unanswered_calls(self) -> None:
        """Ask again every endpoint that did not answer in the last invocation (a member's
        AssumeRole, the watched member and hub clients, the state table): called as each
        invocation starts, since it may be the platform's retry of it."""
        self.sessions.unanswered_endpoints.forget()

    @cached_property
    def state(self) -> StateTable:
        """The state table (STATE_TABLE_NAME): locks, idempotency, cooldowns, claims."""
        # Imported here, as are the alert publisher and the inventory: a function that never
        # uses one does not compile and load it at every cold start (docs/benchmarks.md).
        from fleet_shared.state_table import StateTable  # noqa: PLC0415

        return StateTable(
            self.environment.required("state_table_name"),
            self.hub_client("dynamodb"),
            self.clock,
            unanswered=self.sessions.unanswered_endpoints,
        )

    @cached_property
    def alerts(self) -> AlertPublisher:
        """The alert publisher (ALERT_TOPIC_ARN and the per-severity topics)."""
        from fleet_shared.alerts import AlertPublisher  # noqa: PLC0415

        return AlertPublisher(self.hub_client("sns"), self.environment, self.function_name)

    def inventory(self) -> FleetInventory:
        """The fleet inventory in the data bucket, re-read only when its ETag changed.

        Raises `ConfigurationError` when DATA_BUCKET_NAME is unset, `InventoryUnreadableError`
        (which fails the invocation, so Lambda retries it) when the object cannot be read, and
        `InventoryError` (which fails the invocation too, naming the field) when it is not a valid
        inventory.
        """
        from fleet_shared.inventory_store import load_inventory  # noqa: PLC0415

        bucket = self.environment.data_bucket_name
        if bucket is None:
            raise ConfigurationError("DATA_BUCKET_NAME", "is required to read the fleet inventory")
        return load_inventory(self.hub_client("s3"), bucket, self.environment.fleet_inventory_key)


class WatchedMemberServices(FunctionServices[EnvironmentT]):
    """The services of a function whose member clients are watched: each subclass declares the
    config of its member calls and after how many unanswered calls of an invocation a member
    endpoint is given up."""

    member_call_config: ClassVar[Config]
    member_calls_given_up_after: ClassVar[int]

    def member_client(self, service: str, account_id: str, region: str) -> Any:
        """A client of `service` in a member account and region, its calls bounded by
        `member_call_config` and refused at once once its endpoint left
        `member_calls_given_up_after` calls of the invocation unanswered
        (`AccountSessions.watched_member_client`)."""
        return self.sessions.watched_member_client(
            service,
            account_id,
            region,
            self.member_call_config,
            given_up_after=self.member_calls_given_up_after,
        )
