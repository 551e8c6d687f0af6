"""The services of the demand_forecaster, anomaly_detector and cost_analyzer tests' invocations.

Each invocation gets services on the test's manual clock. Sessions (and so clients, with any hook
a test registers on them) are built once per test; the environment is read per invocation, as a
new container would, so a test can change a variable between invocations.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import FleetFunction


def inject_services(
    monkeypatch: pytest.MonkeyPatch,
    function: FleetFunction[Any, Any],
    clock: ManualClock,
    services_type: type[FunctionServices[Any]] = FunctionServices,
) -> list[FunctionServices[Any]]:
    """Make `function` use services of `services_type` on `clock`; returns the list that holds
    them once the first invocation (or `services()`) built them."""
    built: list[FunctionServices[Any]] = []

    def services() -> FunctionServices[Any]:
        environment = load_environment(function.environment_model)
        if not built:
            built.append(services_type.create(function.name, environment, clock=clock))
        return dataclasses.replace(built[0], environment=environment)

    monkeypatch.setattr(function, "services", services)
    return built
