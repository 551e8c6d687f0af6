"""The demo's handlers run on the replayed clock, and the demo says which settings it changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from catalog import FUNCTIONS
from fleetctl import demo, invoke_runner
from fleetctl.invoke_runner import ReplayedClock, answer

REPLAYED = datetime(2026, 11, 26, 2, 30, tzinfo=UTC)


@dataclass(frozen=True)
class _Services:
    function_name: str
    clock: object


class _Function:
    """The two members of the skeleton's FleetFunction that a local runner uses."""

    def __init__(self) -> None:
        self.current = _Services("fn", clock=SimpleNamespace(now=lambda: datetime.now(UTC)))

    def services(self) -> _Services:
        return self.current

    def use_services(self, services: _Services) -> None:
        self.current = services


def test_a_replayed_clock_starts_at_the_instant_set_and_ticks_from_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a replayed clock set to an instant when the machine's monotonic clock reads 100 s
    monotonic = [100.0]
    monkeypatch.setattr(invoke_runner, "time", SimpleNamespace(monotonic=lambda: monotonic[0]))
    clock = ReplayedClock()
    clock.set(REPLAYED)
    # WHEN it is read at once, then 2.5 s of real time later
    at_once = clock.now()
    monotonic[0] += 2.5
    later = clock.now()
    # THEN it starts at the instant and has moved on by the real time elapsed
    assert (at_once, later) == (REPLAYED, REPLAYED + timedelta(seconds=2.5))
    # AND unset, it follows the machine's clock
    clock.set(None)
    before = datetime.now(UTC)
    now = clock.now()
    assert before <= now <= datetime.now(UTC)


def test_each_invocation_sees_the_instant_it_was_sent_with():
    # GIVEN a function whose handler answers with what its services' clock says
    function = _Function()
    module = SimpleNamespace(
        FUNCTION=function,
        lambda_handler=lambda event, context: function.current.clock.now().isoformat(),
    )
    clock = ReplayedClock()
    # WHEN two invocations come at two instants of a replayed day
    morning = answer(module, clock, {"event": {}, "now": "2026-11-26T02:30:00Z"}, None)
    evening = answer(module, clock, {"event": {}, "now": "2026-11-26T12:30:00+00:00"}, None)
    # THEN each handler saw its own instant, not the machine's time
    assert morning["result"].startswith("2026-11-26T02:30:00")
    assert evening["result"].startswith("2026-11-26T12:30:00")
    # AND the services kept everything but the clock
    assert function.current.function_name == "fn"


def test_the_demo_says_which_stack_setting_it_changes_and_why(capsys):
    # GIVEN a dev plan whose functions run with FLEET_DRY_RUN=true
    variables = {"FLEET_DRY_RUN": "true"}
    resources = [
        SimpleNamespace(inputs={"handler": spec.handler, "environment": {"variables": variables}})
        for spec in FUNCTIONS
    ]
    run = SimpleNamespace(stack="dev", of_type=lambda type_name: resources)
    # WHEN the demo starts
    demo._print_overrides(run)
    # THEN its first lines name the setting, both values and the reason
    printed = capsys.readouterr().out
    assert printed.startswith("settings: FLEET_DRY_RUN=false instead of true: dry_run: true only")
    # AND no other setting is forced: cooldowns run as configured on the replayed clock
    assert set(demo.STACK_OVERRIDES) == {"FLEET_DRY_RUN"}
