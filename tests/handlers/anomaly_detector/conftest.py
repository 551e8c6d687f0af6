"""Fixtures of the anomaly detector tests: the handler's services on a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from handlers.anomaly_detector import app
from tests.handlers.analytics_services import inject_services


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
    """The handler on the fake clock, with table, topics and inventory in moto."""
    inject_services(monkeypatch, app.FUNCTION, fake_clock)
    return fake_clock
