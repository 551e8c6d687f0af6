"""map_isolated: bounded concurrency, results in target order, one failure isolated."""

from __future__ import annotations

import threading
import time

import pytest

from fleet_shared.fan_out import NOT_STARTED, TimeBudget, map_isolated
from fleet_shared.handler import Invocation


def test_results_keep_target_order_and_a_failing_target_is_reported_alone():
    # GIVEN targets whose second one fails
    def work(target: int) -> str:
        if target == 2:
            raise ValueError("denied")
        time.sleep(0.01 * (5 - target))
        return f"ok {target}"

    # WHEN they run concurrently
    results = map_isolated(
        [1, 2, 3, 4],
        work,
        on_error=lambda target, error: f"failed {target}: {error}",
        errors=(ValueError,),
        max_workers=4,
    )
    # THEN every target has its result, in the order given
    assert results == ["ok 1", "failed 2: denied", "ok 3", "ok 4"]


def test_no_more_than_max_workers_targets_run_at_once():
    running, peak = 0, 0
    lock = threading.Lock()

    def work(_: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    map_isolated(list(range(8)), work, on_error=lambda *_: None, errors=(), max_workers=2)
    assert peak == 2


def test_errors_not_declared_as_target_failures_propagate():
    def work(_: int) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        map_isolated([1], work, on_error=lambda *_: None, errors=(ValueError,), max_workers=1)


def test_no_targets_give_no_results():
    assert map_isolated([], str, on_error=lambda *_: "", errors=(), max_workers=4) == []


def test_targets_are_not_started_once_the_time_left_is_too_short() -> None:
    # GIVEN an invocation with 10 s left where each target takes 4 s of (simulated) time
    remaining = {"ms": 10_000}

    def work(target: int) -> str:
        remaining["ms"] -= 4_000
        return f"done {target}"

    invocation = Invocation("r", lambda: remaining["ms"])
    budget = TimeBudget(invocation, 4.0, lambda target: f"{NOT_STARTED} {target}")
    # WHEN four targets are run one at a time
    results = map_isolated(
        [1, 2, 3, 4],
        work,
        on_error=lambda target, error: "error",
        errors=(ValueError,),
        max_workers=1,
        budget=budget,
    )
    # THEN the first two run, and the rest are reported as left for the next run
    assert results == ["done 1", "done 2", "not_started 3", "not_started 4"]
