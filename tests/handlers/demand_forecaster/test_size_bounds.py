"""The recommended desired size is kept within [max(floor, min_size), max_size]: a low forecast
never takes a node group below the stack's floor nor below EKS's minSize, whichever is higher."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet_shared.inventory import Cluster, NodeGroup
from tests.handlers.demand_forecaster.test_local_days import (
    FRIDAY_EVENING_UTC,
    HISTORY_START,
    INSTANCE,
    forecast_for,
)


@pytest.mark.parametrize(
    ("min_size", "floor", "kept_at"),
    [(1, 3, 3), (3, 1, 3), (2, 4, 4), (1, 1, None)],
    ids=["floor_above_min_size", "min_size_above_floor", "floor_above_both", "neither_binds"],
)
def test_a_low_forecast_is_kept_at_the_higher_of_floor_and_min_size(
    min_size: int, floor: int, kept_at: int | None
) -> None:
    # GIVEN four weeks of a steady 2 vCPU, one node's worth, on a node group whose lower bounds
    # are the stack's `floor` and EKS's `min_size`
    moments = pd.date_range(HISTORY_START, FRIDAY_EVENING_UTC, freq="h", inclusive="left")
    noise = np.random.default_rng(7).normal(0.0, 0.02, len(moments))
    history = pd.Series(2.0 * np.exp(noise), index=moments)
    declared = NodeGroup(
        name="workers",
        capacity_type="ON_DEMAND",
        instance_types=(INSTANCE.instance_type,),
        min_size=min_size,
        desired_size=4,
        max_size=20,
        floor=floor,
    )
    cluster = Cluster(
        name="apps", region="eu-west-1", kubernetes_version="1.31", node_groups=(declared,)
    )
    # WHEN the node group (m5.2xlarge, about 7.9 allocatable vCPU) is sized on its forecast
    result = forecast_for(cluster, history)
    # THEN one node is needed, and the size is raised to the higher bound, saying so
    [recommendation] = result["recommendation"]
    assert result["node_groups"][0]["peak_nodes_needed"] == 1
    if kept_at is None:
        assert recommendation["desired_size"] == 1
        assert "kept at" not in recommendation["reason"]
    else:
        assert recommendation["desired_size"] == kept_at
        assert recommendation["reason"].endswith(f"; kept at floor/min_size {kept_at}")
