"""What the monitor works with: the fleet's services typed with its environment, and the probe.

Built once per container by the skeleton (app.py); tests build their own with a manual clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import Any

from fleet_shared.fan_out import Deadline
from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.sessions import MEMBER_CALL_CONFIG
from handlers.health_monitor.cluster_time import (
    MEMBER_CALL_SECONDS_LEFT,
    MEMBER_ENDPOINT_GIVEN_UP_AFTER,
)
from handlers.health_monitor.environment import HealthEnvironment
from handlers.health_monitor.exceptions import TooLittleTimeError
from handlers.health_monitor.probe import Probe, http_probe

FUNCTION_NAME = "health_monitor"

_MEMBER_CALL_DEADLINE: ContextVar[Deadline | None] = ContextVar(
    "health_monitor_member_call_deadline", default=None
)
"""The deadline of the cluster checked in this thread: member clients are shared by the clusters
of an account and region, and by invocations, so the call itself cannot carry it."""


@contextmanager
def member_calls_within(deadline: Deadline) -> Iterator[None]:
    """Within the block, this thread's member calls to endpoints not given up are refused with
    `TooLittleTimeError` once `deadline` no longer allows `MEMBER_CALL_SECONDS_LEFT`."""
    token = _MEMBER_CALL_DEADLINE.set(deadline)
    try:
        yield
    finally:
        _MEMBER_CALL_DEADLINE.reset(token)


def _refuse_without_time(model: Any, **_: Any) -> None:
    deadline = _MEMBER_CALL_DEADLINE.get()
    if deadline is not None and not deadline.allows(MEMBER_CALL_SECONDS_LEFT):
        raise TooLittleTimeError(model.name)


class HealthServices(WatchedMemberServices[HealthEnvironment]):
    """The monitor's services: environment, sessions, state table, alerts, clock and probe; its
    member clients are given up once their endpoint left `MEMBER_ENDPOINT_GIVEN_UP_AFTER` calls
    of the invocation unanswered, and start no call within `member_calls_within` a deadline that
    does not allow one hung call and the report after it."""

    member_call_config = MEMBER_CALL_CONFIG
    member_calls_given_up_after = MEMBER_ENDPOINT_GIVEN_UP_AFTER

    def member_client(self, service: str, account_id: str, region: str) -> Any:
        """The watched member client of `service` (`WatchedMemberServices.member_client`), whose
        calls are refused for lack of time (`member_calls_within`)."""
        client = super().member_client(service, account_id, region)
        # Registered last, so that a given-up endpoint's refusal, which costs nothing, comes
        # first: only a call that would be sent is refused for lack of time.
        client.meta.events.register_last(
            f"before-call.{client.meta.service_model.service_id.hyphenize()}",
            _refuse_without_time,
            unique_id=f"{__name__}.refuse-without-time",
        )
        return client

    @cached_property
    def probe(self) -> Probe:
        """How a health endpoint is requested: an HTTP GET with a timeout."""
        return http_probe
