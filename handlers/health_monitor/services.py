"""What the monitor works with: the fleet's services typed with its environment, and the probe.

Built once per container by the skeleton (app.py); tests build their own with a manual clock.
"""

from __future__ import annotations

from functools import cached_property

from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.sessions import MEMBER_CALL_CONFIG
from handlers.health_monitor.cluster_time import MEMBER_ENDPOINT_GIVEN_UP_AFTER
from handlers.health_monitor.environment import HealthEnvironment
from handlers.health_monitor.probe import Probe, http_probe

FUNCTION_NAME = "health_monitor"


class HealthServices(WatchedMemberServices[HealthEnvironment]):
    """The monitor's services: environment, sessions, state table, alerts, clock and probe; its
    member clients are given up once their endpoint left `MEMBER_ENDPOINT_GIVEN_UP_AFTER` calls
    of the invocation unanswered."""

    member_call_config = MEMBER_CALL_CONFIG
    member_calls_given_up_after = MEMBER_ENDPOINT_GIVEN_UP_AFTER

    @cached_property
    def probe(self) -> Probe:
        """How a health endpoint is requested: an HTTP GET with a timeout."""
        return http_probe
