"""The forecast counts the days of the week in the cluster's time zone, whose days its load
follows."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fleet_shared.inventory import Cluster, ClusterCalendar, NodeGroup, ScalingSchedule
from handlers.demand_forecaster.capacity import InstanceCapacity, LiveNodeGroup
from handlers.demand_forecaster.environment import ForecasterEnvironment
from handlers.demand_forecaster.forecast import (
    DemandHistory,
    Sized,
    forecast_from_history,
    local_hour_of_week,
)

TOKYO_OFFSET = timedelta(hours=9)
HISTORY_START = datetime(2025, 6, 2, tzinfo=UTC)
"""A Monday 00:00 UTC."""
FRIDAY_EVENING_UTC = HISTORY_START + timedelta(days=4 * 7 + 4, hours=20)
"""Saturday 05:00 in Tokyo, four weeks and four days later."""
INSTANCE = InstanceCapacity("m5.2xlarge", vcpus=8, memory_mib=32768, max_pods=58)


def tokyo_load(moments: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """vCPU demand of a team in Tokyo: a working day from 06:00 to 18:00 on weekdays, a
    quarter of it at weekends, 2% noise."""
    local = moments + TOKYO_OFFSET
    hour = local.hour.to_numpy()
    working = np.clip(np.sin(np.pi * (hour - 6) / 12), 0.0, None)
    weekend = local.weekday.to_numpy() >= 5
    load = 20.0 + 60.0 * working * np.where(weekend, 0.25, 1.0)
    return load * np.exp(rng.normal(0.0, 0.02, len(moments)))


def cluster(**settings: object) -> Cluster:
    return Cluster(
        name="apps",
        region="ap-northeast-1",
        kubernetes_version="1.31",
        node_groups=(
            NodeGroup(
                name="workers",
                capacity_type="ON_DEMAND",
                instance_types=(INSTANCE.instance_type,),
                min_size=1,
                desired_size=10,
                max_size=20,
                floor=1,
            ),
        ),
        **settings,
    )


def forecast_for(cluster: Cluster, history: pd.Series) -> dict[str, object]:
    # EKS has the node group as the stack file sizes it.
    configured = cluster.node_groups[0]
    group = LiveNodeGroup(
        configured.name,
        configured.capacity_type,
        configured.instance_types,
        configured.min_size,
        configured.max_size,
        configured.desired_size,
        configured.floor,
    )
    return forecast_from_history(
        DemandHistory(history, pd.Series(dtype=float), pd.Series(dtype=float)),
        [Sized(group, INSTANCE)],
        ForecasterEnvironment(data_bucket_name="data", forecast_history_days=42),
        account_id="123456789012",
        cluster=cluster,
        horizon_minutes=180,
        now=FRIDAY_EVENING_UTC + timedelta(minutes=5),
        errors={},
    )


def test_a_cluster_is_forecast_on_the_days_of_its_time_zone() -> None:
    # GIVEN four weeks of load that follows Tokyo's days: in UTC its working day starts on the
    # evening before and its weekend in the middle of Friday
    moments = pd.date_range(HISTORY_START, FRIDAY_EVENING_UTC, freq="h", inclusive="left")
    rng = np.random.default_rng(21)
    history = pd.Series(tokyo_load(moments, rng), index=moments)
    coming = pd.date_range(FRIDAY_EVENING_UTC, periods=4, freq="h")
    truth = tokyo_load(coming, rng)
    # WHEN Saturday's early hours in Tokyo are forecast for the cluster with its schedule in
    # Tokyo, with the stack's calendar in Tokyo and with neither (UTC)
    tokyo_schedule = ScalingSchedule(
        time_zone="Asia/Tokyo",
        scale_up_time="08:00",
        scale_down_time="18:00",
        days=("MON", "TUE", "WED", "THU", "FRI"),
    )
    by_schedule = forecast_for(cluster(schedule=tokyo_schedule), history)
    by_calendar = forecast_for(cluster(calendar=ClusterCalendar(time_zone="Asia/Tokyo")), history)
    in_utc = forecast_for(cluster(), history)
    # THEN with Tokyo's days no ramp is forecast on a Saturday: every hour within 10%
    errors = {}
    for name, result in (("schedule", by_schedule), ("calendar", by_calendar), ("utc", in_utc)):
        mean = np.array([step["demand_vcpu"] for step in result["forecast"]])
        errors[name] = np.abs(mean - truth) / truth
    assert errors["schedule"].max() < 0.1
    assert errors["calendar"] == pytest.approx(errors["schedule"])
    # AND on UTC days the weekday ramp that starts in the evening of every other UTC day is
    # forecast on top of the quiet Saturday morning: an hour off by more than 30%
    assert errors["utc"].max() > 0.3
    # AND the forecast says whose days it counted
    assert by_schedule["model"]["days_of_week_time_zone"] == "Asia/Tokyo"
    assert in_utc["model"]["days_of_week_time_zone"] == "UTC"


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", 18),
        ("Asia/Tokyo", 24 + 3),
        ("Asia/Kathmandu", 24),
        ("Asia/Kolkata", 24),
        ("America/St_Johns", 16),
        ("America/New_York", 14),
    ],
)
def test_a_utc_hour_counts_as_the_local_hour_that_holds_most_of_it(
    zone: str, expected: int
) -> None:
    # GIVEN the UTC hour Monday 18:00-19:00 in July, and a zone's offset then
    hour = datetime(2025, 7, 7, 18, tzinfo=UTC)
    # WHEN its local hour of the week is counted
    counted = local_hour_of_week(hour, zoneinfo.ZoneInfo(zone))
    # THEN it is the local hour that holds most of it: Kathmandu (+5:45) is Tuesday 00:00, not
    # Monday 23:00; St John's (-2:30 in summer) is 16:00; New York is at its summer offset (-4)
    assert counted == expected


def test_each_hour_is_counted_at_the_offset_of_its_own_day() -> None:
    # GIVEN a New York hour in October summer time (-4) and one after the change to winter
    # time (-5) on 2 November, both Monday 18:00 UTC
    zone = zoneinfo.ZoneInfo("America/New_York")
    summer = datetime(2025, 10, 27, 18, tzinfo=UTC)
    winter = datetime(2025, 11, 10, 18, tzinfo=UTC)
    # WHEN their local hours of the week are counted
    # THEN each is the local hour of its own day: Monday 14:00 and Monday 13:00
    assert local_hour_of_week(summer, zone) == 14
    assert local_hour_of_week(winter, zone) == 13


def new_york_load(moments: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """vCPU demand of a team in New York: a working day from 07:00 to 18:00 local time on
    weekdays, a fifth of it at weekends, 3% noise."""
    local = moments.tz_convert("America/New_York")
    hour = local.hour.to_numpy()
    working = np.clip(np.sin(np.pi * (hour - 7) / 11), 0.0, None)
    weekend = local.weekday.to_numpy() >= 5
    load = 20.0 + 60.0 * working * np.where(weekend, 0.2, 1.0)
    return load * np.exp(rng.normal(0.0, 0.03, len(moments)))


def test_the_day_after_a_daylight_saving_change_is_forecast_on_local_time() -> None:
    # GIVEN two weeks of load that follows New York's clock, ending at local midnight on the
    # Monday after the change to winter time (Sunday 2 November 2025), for a cluster whose
    # schedule is in New York
    end = datetime(2025, 11, 3, 5, tzinfo=UTC)
    moments = pd.date_range(end - timedelta(days=14), end, freq="h", inclusive="left")
    rng = np.random.default_rng(4)
    history = pd.Series(new_york_load(moments, rng), index=moments)
    coming = pd.date_range(end, periods=24, freq="h")
    truth = new_york_load(coming, rng)
    schedule = ScalingSchedule(
        time_zone="America/New_York",
        scale_up_time="08:00",
        scale_down_time="18:00",
        days=("MON", "TUE", "WED", "THU", "FRI"),
    )
    configured = cluster(schedule=schedule).node_groups[0]
    group = LiveNodeGroup(
        configured.name,
        configured.capacity_type,
        configured.instance_types,
        configured.min_size,
        configured.max_size,
        configured.desired_size,
        configured.floor,
    )
    # WHEN Monday is forecast
    result = forecast_from_history(
        DemandHistory(history, pd.Series(dtype=float), pd.Series(dtype=float)),
        [Sized(group, INSTANCE)],
        ForecasterEnvironment(data_bucket_name="data"),
        account_id="123456789012",
        cluster=cluster(schedule=schedule),
        horizon_minutes=24 * 60,
        now=end,
        errors={},
    )
    # THEN the morning ramp and the evening drop are on the hours of winter time: every hour
    # within 15% (8%; with the summer weeks counted at the winter offset, one hour was 80% off
    # and the day 13% on average)
    steps = result["forecast"][: len(truth)]
    assert steps[0]["timestamp"] == "2025-11-03T05:00:00Z"
    mean = np.array([step["demand_vcpu"] for step in steps])
    assert (np.abs(mean - truth) / truth).max() < 0.15
