"""health_monitor's scheduled fleet runs as the platform makes them, for the tests that follow an
incident over several runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_shared.alert_delivery import AlertNotDeliveredError
from tests.handlers.faults import fail_every_attempt

Invoke = Callable[..., dict[str, Any]]

CADENCE_SECONDS = 300
FLEET_EVENT = {"action": "check_fleet"}


def scheduled_runs(invoke: Invoke, fake_clock: Any, count: int) -> list[dict[str, Any]]:
    """The results of `count` scheduled fleet runs, one cadence apart."""
    results = []
    for _ in range(count):
        fake_clock.advance(CADENCE_SECONDS)
        results.append(invoke(FLEET_EVENT))
    return results


def run_refused_by_sns_then_retried(
    invoke: Invoke,
    fake_clock: Any,
    sns_client: Any,
    sent: Callable[[], list[Any]],
    *,
    retries: int,
) -> None:
    """A scheduled run while SNS refuses every attempt of Publish: it fails, so the platform
    retries it, and nothing went out (`sent()` is empty); then, SNS answering again, the
    platform's `retries` of it a minute later and the next two scheduled runs."""
    fault = fail_every_attempt(sns_client, "sns", "Publish")
    fake_clock.advance(CADENCE_SECONDS)
    with pytest.raises(AlertNotDeliveredError):
        invoke(FLEET_EVENT)
    assert sent() == []
    fault.healed = True
    fake_clock.advance(60)
    for _ in range(retries):
        invoke(FLEET_EVENT)
    scheduled_runs(invoke, fake_clock, 2)
