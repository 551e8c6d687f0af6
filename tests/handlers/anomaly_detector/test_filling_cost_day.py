"""The newest day of Cost Explorer's daily cost is still being filled in when the scan reads it:
it only ever under-reports, so a drop there alone is no anomaly, while a jump there is one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from fleet_shared.clock import ManualClock
from tests.handlers.anomaly_detector.test_anomaly_detector_app import queue_daily_cost, scan


def steady_daily_cost(days: int = 28) -> list[float]:
    """`days` of daily cost around 100, the last one yesterday's."""
    return list(100.0 + np.random.default_rng(4).normal(0.0, 2.0, days))


def test_a_drop_on_the_day_still_being_filled_in_is_not_alerted(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a scan at 03:30 UTC, and a steady month of daily cost whose newest day (yesterday,
    # ended three and a half hours ago, so Cost Explorer has not all of it yet) reads half
    amounts = steady_daily_cost()
    amounts[-1] = 50.0
    queue_daily_cost(detector, amounts)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the cost was evaluated and no drop is reported or alerted
    assert result["status"] == "ok", result
    assert result["anomalies"] == []
    assert alert_inbox.receive() == []


@pytest.mark.parametrize("recent_days", [1, 3])
def test_a_drop_is_alerted_once_its_day_is_complete(
    detector: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    recent_days: int,
) -> None:
    # GIVEN a recent window of `recent_days` days for the daily cost, and a steady month whose
    # day before yesterday (complete: it ended more than a day ago) cost half the usual
    monkeypatch.setenv("ANOMALY_COST_RECENT_DAYS", str(recent_days))
    amounts = steady_daily_cost()
    amounts[-2] = 50.0
    queue_daily_cost(detector, amounts)
    drop_day = detector.now().date() - timedelta(days=2)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the drop is reported and alerted as a drop on that day
    assert result["status"] == "ok", result
    [finding] = result["anomalies"]
    assert finding["start"] == f"{drop_day.isoformat()}T00:00:00Z"
    assert finding["alerted"] is True
    [alert] = alert_inbox.receive()
    assert "spike down in daily cost" in alert.alert["title"]


def test_a_jump_on_the_day_still_being_filled_in_is_alerted(
    detector: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a steady month of daily cost whose newest day, still being filled in, already
    # reads three times the usual (it can only grow)
    amounts = steady_daily_cost()
    amounts[-1] = 310.0
    queue_daily_cost(detector, amounts)
    # WHEN the scan runs
    result = scan(lambda_context)
    # THEN the jump is alerted at once
    yesterday = detector.now().date() - timedelta(days=1)
    [finding] = result["anomalies"]
    assert finding["start"] == f"{yesterday.isoformat()}T00:00:00Z"
    [alert] = alert_inbox.receive()
    assert "spike up in daily cost" in alert.alert["title"]
