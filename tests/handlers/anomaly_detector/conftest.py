"""Fixtures of the anomaly detector tests: the handler's services on a manual clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.function_services import FunctionServices
from handlers.anomaly_detector import app
from handlers.anomaly_detector.environment import AnomalyEnvironment


@pytest.fixture(autouse=True)
def _no_services_left_behind() -> Iterator[None]:
    """Services a test's invocations built are dropped, so no test sees another's environment."""
    yield
    app.FUNCTION.use_services(None)


@pytest.fixture
def detector(
    *,
    fleet_environment: dict[str, str],
    inventory_in_s3: dict[str, Any],
    state_table: Any,
    alert_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> ManualClock:
    """The handler on the fake clock, with table, topics and inventory in moto.

    Sessions are built once per test; the environment is read per invocation, as a new
    container would, so a test can change a variable between invocations.
    """
    built: list[FunctionServices[AnomalyEnvironment]] = []

    def services() -> FunctionServices[AnomalyEnvironment]:
        environment = load_environment(AnomalyEnvironment)
        if not built:
            built.append(FunctionServices.create(app.FUNCTION.name, environment, clock=fake_clock))
        return dataclasses.replace(built[0], environment=environment)

    monkeypatch.setattr(app.FUNCTION, "services", services)
    return fake_clock
