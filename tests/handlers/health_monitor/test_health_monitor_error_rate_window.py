"""How many results the endpoint error-rate window holds, and the results it may need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from catalog import function_spec
from catalog.model import FixedSchedule
from fleet_shared.exceptions import ConfigurationError
from handlers.health_monitor.environment import SCHEDULED_RUN_MINUTES
from tests.handlers.health_monitor.test_health_monitor_checks import (
    CLUSTER_EVENT,
    Invoke,
    checks_named,
    only_cluster,
)


@pytest.mark.parametrize(("window", "min_samples"), [("15", "4"), ("10", "3"), ("4", "2")])
def test_min_samples_more_than_the_window_holds_is_refused_naming_both_variables(
    invoke: Invoke,
    inventory: dict[str, Any],
    *,
    monkeypatch: pytest.MonkeyPatch,
    alert_inbox: Any,
    window: str,
    min_samples: str,
) -> None:
    # GIVEN more results needed than a window holds at one run every 5 minutes (a 15-minute
    # window holds 3): the error rate would never be judged, and nothing would say so
    monkeypatch.setenv("HEALTH_ERROR_RATE_WINDOW_MINUTES", window)
    monkeypatch.setenv("HEALTH_ERROR_RATE_MIN_SAMPLES", min_samples)
    # WHEN the monitor runs
    with pytest.raises(ConfigurationError) as raised:
        invoke(CLUSTER_EVENT)
    # THEN the invocation fails in one message naming both variables, and nothing was checked
    # or alerted
    message = str(raised.value)
    assert "HEALTH_ERROR_RATE_MIN_SAMPLES" in message
    assert "HEALTH_ERROR_RATE_WINDOW_MINUTES" in message
    assert alert_inbox.receive() == []


@pytest.mark.parametrize(("window", "min_samples"), [(5, 1), (10, 2), (11, 3), (20, 4)])
def test_min_samples_as_many_as_the_window_holds_is_reached_at_the_scheduled_cadence(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    fake_clock: Any,
    window: int,
    min_samples: int,
) -> None:
    # GIVEN a window and the most results it is allowed to need, and an endpoint failing at every
    # run of the 5-minute schedule
    monkeypatch.setenv("HEALTH_ERROR_RATE_WINDOW_MINUTES", str(window))
    monkeypatch.setenv("HEALTH_ERROR_RATE_MIN_SAMPLES", str(min_samples))
    use_endpoints([{"name": "api", "url": endpoint_server.url("/error")}])
    checks = []
    for _ in range(min_samples + 1):
        fake_clock.advance(300)
        checks.append(checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")[0])
    # WHEN the window is full THEN it holds that many results, and the error rate is judged
    assert checks[-1]["data"]["samples"] == min_samples
    assert "error rate 100%" in checks[-1]["detail"]


def test_the_cadence_the_window_is_counted_in_is_the_catalogs_schedule() -> None:
    # GIVEN the health monitor's scheduled trigger in the catalog
    [schedule] = [
        trigger
        for trigger in function_spec("health_monitor").triggers
        if isinstance(trigger, FixedSchedule)
    ]
    # WHEN its cadence is read THEN it is the one the environment counts a window's runs at: a
    # faster schedule would refuse settings it can judge, a slower one accept some it cannot
    assert schedule.expression == f"rate({SCHEDULED_RUN_MINUTES} minutes)"
