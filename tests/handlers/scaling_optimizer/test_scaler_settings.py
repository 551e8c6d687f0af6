"""The scaler settings the optimizer reports beside the patch (docs/functions/scaling_optimizer.md,
"Scaler settings"): a grid replayed over the node groups' busy nodes with the scaler's one-node
steps; on target (each node group at its own cluster's target) in 95 % of the hours with the
fewest changes wins, ties going to the mean utilisation closest to the targets, then to the
current settings."""

from __future__ import annotations

import pytest

from handlers.scaling_optimizer.sizing import (
    SCALER_DEFAULTS,
    NodeGroupDemand,
    ScalerSettings,
    best_scaler_settings,
    replay_steps,
)

TARGET = 70.0
TOLERANCE = 10.0
DAYS = 14


def working_day_load(working: float, off_hours: float) -> list[float]:
    """Busy nodes hour by hour: `working` from 08:00 to 18:00, `off_hours` otherwise."""
    return [working if 8 <= hour % 24 < 18 else off_hours for hour in range(DAYS * 24)]


def test_the_settings_on_target_with_the_fewest_changes_win() -> None:
    # GIVEN a node group of 5 nodes (bounds 1-10) busy with 3.8 nodes' worth of CPU in working
    # hours and 1.2 at night: the current settings step up at 76 % and down at 24 %, every day
    demand = NodeGroupDemand(working_day_load(3.8, 1.2), 5, (1, 10), TARGET)
    # WHEN the grid is replayed
    best, outcome, current = best_scaler_settings([demand], TOLERANCE)
    # THEN the settings that never step (scale up above 80 %, down under 20 %) win: on target in
    # every hour, where the current ones make 57 changes
    assert best == ScalerSettings(80.0, 20.0, 300)
    assert (outcome.changes, outcome.on_target_share) == (0, 1.0)
    assert current.changes == 57


def test_a_tie_goes_to_the_current_settings() -> None:
    # GIVEN a node group that ran at 70 % all the time: no setting of the grid makes a change
    demand = NodeGroupDemand([3.5] * 48, 5, (1, 10), TARGET)
    # WHEN the grid is replayed
    best, outcome, current = best_scaler_settings([demand], TOLERANCE)
    # THEN the tie goes to the current settings (nothing to advise)
    assert best == SCALER_DEFAULTS
    assert outcome == current


def test_when_no_setting_is_on_target_in_95_percent_of_the_hours_the_best_share_is_required() -> (
    None
):
    # GIVEN a node group at its largest size (10) busy with 8.5 nodes' worth in working hours
    # (85 %, above the 80 % ceiling whatever the settings) and 3 at night (30 %)
    demand = NodeGroupDemand(working_day_load(8.5, 3.0), 10, (1, 10), TARGET)
    # WHEN the grid is replayed
    best, outcome, _ = best_scaler_settings([demand], TOLERANCE)
    # THEN the winner is on target in as many hours as any setting is, and no setting on target
    # as often makes fewer changes
    assert outcome.on_target_share == pytest.approx(14 / 24)
    assert outcome.changes == 0
    assert best.scale_down_utilization <= 30.0


def test_each_node_group_is_judged_at_its_own_clusters_target() -> None:
    # GIVEN two clusters' node groups of 5 nodes for two weeks: one targeting 55 % busy with 2.5
    # nodes' worth (50 %), one targeting 85 % busy with 4.4 (88 %, under its 95 % ceiling)
    hours = DAYS * 24
    quiet = NodeGroupDemand([2.5] * hours, 5, (1, 10), 55.0)
    busy = NodeGroupDemand([4.4] * hours, 5, (1, 10), 85.0)
    # WHEN the grid is replayed over both
    best, outcome, current = best_scaler_settings([quiet, busy], TOLERANCE)
    # THEN both are on target in every hour without a change once the scale-up threshold is
    # above the busier cluster's target: judged at the mean of the targets (70 %, ceiling 80 %),
    # 88 % was off target and the current settings' step to 6 nodes won
    assert best.scale_up_utilization == 90.0
    assert best.scale_down_utilization < 55.0
    assert (outcome.changes, outcome.on_target_share) == (0, 1.0)
    assert current.changes == 1


@pytest.mark.parametrize(
    ("cooldown_seconds", "changes"), [(300, 4), (7200, 3)], ids=["5-minutes", "2-hours"]
)
def test_a_replayed_scale_down_waits_out_the_cooldown_since_the_last_change(
    cooldown_seconds: int, changes: int
) -> None:
    # GIVEN a node group of 5 nodes (bounds 1-10) busy with half a node's worth for 6 hours,
    # under the scale-down threshold at every size
    demand = NodeGroupDemand([0.5] * 6, 5, (1, 10), TARGET)
    # WHEN its steps are replayed with a cooldown of 5 minutes or of 2 hours
    outcome = replay_steps(demand, ScalerSettings(75.0, 30.0, cooldown_seconds), TOLERANCE)
    # THEN it steps down every hour to its lower bound (4 changes), or every second hour (3)
    assert outcome.changes == changes


def test_an_hour_at_exactly_the_target_plus_the_tolerance_is_on_target() -> None:
    # GIVEN a node group of 5 nodes busy with 4 nodes' worth (80 %: the 70 % target plus the
    # 10 points of tolerance) for a day, under a scale-up threshold of 85 %
    demand = NodeGroupDemand([4.0] * 24, 5, (1, 10), TARGET)
    # WHEN its steps are replayed
    outcome = replay_steps(demand, ScalerSettings(85.0, 20.0, 300), TOLERANCE)
    # THEN every hour is on target, none changed
    assert (outcome.changes, outcome.on_target_share) == (0, 1.0)
