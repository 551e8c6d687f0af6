"""Properties of scaling_optimizer's recommendations (`handlers/scaling_optimizer/sizing.py`,
`optimization.is_working_hour`), as docs/functions/scaling_optimizer.md states them: "the values
are chosen so that `min_size <= desired_size <= max_size`, the off-hours size lies within them,
`desired_size`, the off-hours size and `max_size` are at least the node group's `floor` and no
size is above 450, so the patched file passes the program's settings validation"; and working
hours are the schedule's days and hours "as the scaler runs it"."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from fleet_shared.inventory import Cluster, ClusterCalendar, NodeGroup, ScalingSchedule
from fleet_shared.working_hours import WEEKDAYS
from handlers.eks_scaler.predictive import scheduled_size
from handlers.scaling_optimizer.optimization import is_working_hour
from handlers.scaling_optimizer.sizing import MAX_NODE_GROUP_SIZE, DemandHour, recommend_sizes

START = datetime(2026, 3, 1, tzinfo=UTC)


@st.composite
def demand_hours(draw: st.DrawFn) -> list[DemandHour]:
    """One to a hundred measured hours: any size the node group had, any CPU, one memory
    utilisation (or none measured), working or not."""
    count = draw(st.integers(min_value=1, max_value=100))
    memory = draw(st.none() | st.floats(min_value=0, max_value=100))
    return [
        DemandHour(
            START + timedelta(hours=index),
            draw(st.integers(min_value=0, max_value=600)),
            draw(st.floats(min_value=0, max_value=100)),
            draw(st.booleans()),
            memory,
        )
        for index in range(count)
    ]


@given(
    hours=demand_hours(),
    target=st.floats(min_value=1, max_value=100, exclude_min=True),
    capacity_type=st.sampled_from(("ON_DEMAND", "SPOT")),
    floor=st.integers(min_value=0, max_value=MAX_NODE_GROUP_SIZE),
    off_hours_above_floor=st.none() | st.integers(min_value=0, max_value=MAX_NODE_GROUP_SIZE),
)
# Working hours only, the schedule's off-hours size above the busiest hour's need (max_size
# rises to it) and below the quietest's (min_size comes down to it): the derandomized examples
# reach neither.
@example([DemandHour(START, 2, 10.0, True)], 70.0, "ON_DEMAND", 1, 4)
@example([DemandHour(START, 10, 100.0, True)], 70.0, "ON_DEMAND", 0, 1)
def test_recommended_sizes_pass_the_settings_rules(
    hours: list[DemandHour],
    target: float,
    capacity_type: str,
    floor: int,
    off_hours_above_floor: int | None,
) -> None:
    # GIVEN any measured hours, target utilisation, node group floor and schedule's off-hours
    # size (or none) the settings accept
    off_hours_size = (
        None
        if off_hours_above_floor is None
        else min(MAX_NODE_GROUP_SIZE, floor + off_hours_above_floor)
    )
    # WHEN the sizes are recommended
    sizes = recommend_sizes(hours, target, capacity_type, floor, off_hours_size)
    # THEN they are ordered, the off-hours size (recommended, or the schedule's when no
    # off-hours hour was measured) lies within them, the floor is kept and none is above the
    # largest size the settings accept
    assert sizes.min_size.value <= sizes.desired_size.value <= sizes.max_size.value
    assert sizes.max_size.value <= MAX_NODE_GROUP_SIZE
    assert min(sizes.desired_size.value, sizes.max_size.value) >= floor
    capacity_floor = 1 if capacity_type == "ON_DEMAND" else 0
    if off_hours_size is not None and sizes.off_hours is None:
        # Without a measured off-hours hour, min_size does not rise above the schedule's size.
        capacity_floor = min(capacity_floor, off_hours_size)
    assert sizes.min_size.value >= capacity_floor
    off_hours = off_hours_size if sizes.off_hours is None else sizes.off_hours.value
    if sizes.off_hours is not None:
        assert floor <= sizes.off_hours.value
    if off_hours is not None:
        assert sizes.min_size.value <= off_hours <= sizes.max_size.value


CLOCK_TIMES = st.builds(
    time,
    st.integers(min_value=0, max_value=3) | st.integers(min_value=0, max_value=23),
    st.sampled_from((0, 15, 30, 45)),
)
CLOCK_CHANGES = (
    ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 10, 25, 1, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 4, 4, 16, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 10, 3, 16, tzinfo=UTC)),
)
"""The instants the clocks change in 2026 (tested below, so a zone's rules moving shows)."""


@st.composite
def clusters_near_a_clock_change(draw: st.DrawFn) -> tuple[Cluster, datetime]:
    """A scheduled cluster and an instant the clocks of its zone change, with one of its two
    times, half the time, within an hour of the change's wall-clock times, and a calendar
    (half the time) whose holidays and forced working days fall around the change."""
    zone_name, change = draw(st.sampled_from(CLOCK_CHANGES))
    wall = (change - timedelta(hours=1)).astimezone(ZoneInfo(zone_name)).replace(tzinfo=None)
    near = st.sampled_from(
        sorted({(wall + timedelta(minutes=15 * step)).time() for step in range(9)})
    )
    first, second = draw(st.sampled_from(((near, CLOCK_TIMES), (CLOCK_TIMES, near))))
    scale_up_time = draw(first)
    group = NodeGroup(
        name="web",
        capacity_type="ON_DEMAND",
        instance_types=("m7g.large",),
        min_size=1,
        desired_size=2,
        max_size=4,
        floor=1,
    )
    days = draw(
        st.just(WEEKDAYS) | st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
    )
    around = [wall.date() + timedelta(days=offset) for offset in range(-2, 3)]
    exception_dates = st.lists(st.sampled_from(around), max_size=3, unique=True)
    calendar = draw(
        st.none()
        | st.builds(
            ClusterCalendar,
            time_zone=st.just(zone_name),
            holidays=exception_dates.map(tuple),
            working_days=exception_dates.map(tuple),
        )
    )
    cluster = Cluster(
        name="apps",
        region="eu-central-1",
        node_groups=(group,),
        schedule=ScalingSchedule(
            time_zone=zone_name,
            scale_up_time=scale_up_time,
            scale_down_time=draw(second.filter(lambda clock: clock != scale_up_time)),
            days=tuple(days),
            off_hours_desired={"web": 1},
        ),
        calendar=calendar,
    )
    return cluster, change


def test_the_clocks_change_at_the_instants_the_properties_take() -> None:
    # GIVEN each instant of CLOCK_CHANGES WHEN its zone's offset is read either side of it
    # THEN it changes there
    for zone_name, change in CLOCK_CHANGES:
        zone = ZoneInfo(zone_name)
        before = (change - timedelta(seconds=1)).astimezone(zone).utcoffset()
        assert before != change.astimezone(zone).utcoffset()


@given(drawn=clusters_near_a_clock_change(), hour=st.integers(min_value=-30, max_value=30))
def test_the_optimizers_working_hours_are_the_scalers(
    drawn: tuple[Cluster, datetime], hour: int
) -> None:
    # GIVEN a scheduled cluster, with or without a calendar, and a measured hour (the
    # optimizer's hours are whole UTC hours) within a day and a bit of an instant its zone's
    # clocks change
    cluster, change = drawn
    moment = change + timedelta(hours=hour)
    # WHEN the optimizer classes the hour
    # THEN it is a working hour exactly when the scaler gives the node group its daytime size
    # then (`scheduled_size`: the stack file's size, not the schedule's off-hours size 1)
    size, _ = scheduled_size(cluster, cluster.node_groups[0], moment)
    assert is_working_hour(cluster, moment) == (size == cluster.node_groups[0].desired_size)
