"""Properties of the scaler's pure decision (`handlers/eks_scaler/decision.py`, `sizing.py`,
`predictive.py`) over every node group, request and moment hypothesis draws: the README's
promises hold whatever the sizes, not only for the examples the other tests wrote down.

- A change never sets a desired size outside [floor, max_size], nor beyond EKS's maxSize, and
  never changes min_size or max_size.
- A decrease never happens within the cooldown of the last change.
- `scale_down` never raises, a sized `scale_up` never lowers.
- A forecast's change moves at most `max_step` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from fleet_shared.inventory import Cluster, ClusterScaling, NodeGroup, ScalingSchedule
from fleet_shared.wall_clocks import first_reading
from fleet_shared.working_hours import WEEKDAYS
from handlers.eks_scaler.decision import (
    DecisionKind,
    NodeGroupFacts,
    SavedSizes,
    cooldown_remaining,
    decide,
)
from handlers.eks_scaler.models import Action, NodeGroupRequest
from handlers.eks_scaler.predictive import in_working_hours
from handlers.eks_scaler.sizing import Limits, Sizes, node_group_limits, plan_desired

GROUP = "web"
TIME_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney")
SIZE = st.integers(min_value=0, max_value=40)
MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@st.composite
def eks_sizes(draw: st.DrawFn) -> Sizes:
    """A node group's scaling config as EKS holds it: min <= desired <= max, max >= 1."""
    max_size = draw(st.integers(min_value=1, max_value=40))
    min_size = draw(st.integers(min_value=0, max_value=max_size))
    return Sizes(min_size, draw(st.integers(min_value=min_size, max_value=max_size)), max_size)


@st.composite
def configured_groups(draw: st.DrawFn, capacity_type: str, current: Sizes) -> NodeGroup:
    """The node group as the inventory lists it (its own rules: ordered sizes, floor <= max):
    mostly the sizes EKS has, sometimes other ones (a stack file change not applied yet)."""
    if draw(st.booleans()):
        min_size, max_size = current.min_size, current.max_size
    else:
        max_size = draw(st.integers(min_value=1, max_value=40))
        min_size = draw(st.integers(min_value=0, max_value=max_size))
    desired_size = draw(st.integers(min_value=min_size, max_value=max_size))
    return NodeGroup(
        name=GROUP,
        capacity_type=capacity_type,
        instance_types=("m7g.large",),
        min_size=min_size,
        desired_size=desired_size,
        max_size=max_size,
        floor=draw(st.integers(min_value=0, max_value=max_size)),
    )


CLOCK_TIMES = st.builds(
    time, st.integers(min_value=0, max_value=23), st.sampled_from((0, 15, 30, 45))
)


@st.composite
def schedules(draw: st.DrawFn, off_hours_max: int) -> ScalingSchedule:
    scale_up_time = draw(CLOCK_TIMES)
    return ScalingSchedule(
        time_zone=draw(st.sampled_from(TIME_ZONES)),
        scale_up_time=scale_up_time,
        scale_down_time=draw(CLOCK_TIMES.filter(lambda clock: clock != scale_up_time)),
        days=tuple(
            draw(
                st.lists(
                    st.sampled_from(("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")),
                    min_size=1,
                    max_size=7,
                    unique=True,
                )
            )
        ),
        off_hours_desired={GROUP: draw(st.integers(min_value=0, max_value=off_hours_max))},
    )


@dataclass(frozen=True)
class Case:
    """One node group, what is known about it, and the request and moment of the decision."""

    action: Action
    request: NodeGroupRequest
    facts: NodeGroupFacts
    now: datetime

    @property
    def limits(self) -> Limits:
        facts = self.facts
        return node_group_limits(facts.current, facts.capacity_type, facts.configured)


@st.composite
def cases(draw: st.DrawFn, actions: tuple[Action, ...]) -> Case:
    capacity_type = draw(st.sampled_from(("ON_DEMAND", "SPOT")))
    current = draw(eks_sizes())
    configured = draw(st.none() | configured_groups(capacity_type, current))
    action = draw(st.sampled_from(actions))
    now = draw(MOMENTS)
    cluster = None
    if configured is not None and draw(st.integers(min_value=0, max_value=3)) > 0:
        schedule = draw(st.none() | schedules(configured.max_size))
        cluster = Cluster(
            name="apps",
            region="ap-south-1",
            node_groups=(configured,),
            schedule=schedule,
            scaling=ClusterScaling(
                mode=draw(st.sampled_from(("schedule", "predictive", "predictive"))),
                max_step=draw(st.integers(min_value=1, max_value=6)),
                working_hours_floor=draw(st.booleans()),
            ),
        )
    saved = None
    if draw(st.booleans()):
        saved = SavedSizes(
            current.with_desired(draw(st.integers(min_value=current.min_size, max_value=40))),
            saved_at="2026-01-01T18:00:00Z",
            restored_at=draw(st.none() | st.just("2026-01-02T08:00:00Z")),
        )
    last_change_at = draw(
        st.none()
        | st.integers(min_value=0, max_value=5400).map(lambda s: now - timedelta(seconds=s))
    )
    hand_back = action is Action.PREDICTIVE and draw(st.booleans())
    desired = None if hand_back else draw(st.none() | SIZE)
    if action is Action.PREDICTIVE and not hand_back:
        desired = draw(SIZE)
    facts = NodeGroupFacts(
        current=current,
        status=draw(st.sampled_from(("ACTIVE", "DEGRADED"))),
        capacity_type=capacity_type,
        configured=configured,
        saved=saved,
        last_change_at=last_change_at,
        cooldown_seconds=draw(st.sampled_from((0, 300, 900, 3600))),
        cluster=cluster,
        last_change_action=draw(st.sampled_from((None, "predictive", "scale_down", "scale_up"))),
    )
    request = NodeGroupRequest(name=GROUP, desired_size=desired, hand_back=hand_back)
    return Case(action, request, facts, now)


ALL_ACTIONS = (Action.SCALE_UP, Action.SCALE_DOWN, Action.RESTORE, Action.PREDICTIVE)


@given(
    requested=st.integers(min_value=0, max_value=60),
    current=eks_sizes(),
    capacity_type=st.sampled_from(("ON_DEMAND", "SPOT")),
    data=st.data(),
)
def test_a_planned_desired_size_is_always_within_the_floor_and_both_max_sizes(
    requested: int, current: Sizes, capacity_type: str, data: st.DataObject
) -> None:
    # GIVEN any node group (with or without its inventory entry) and any requested size
    configured = data.draw(st.none() | configured_groups(capacity_type, current))
    limits = node_group_limits(current, capacity_type, configured)
    # WHEN the desired size is planned
    plan = plan_desired(requested, limits)
    # THEN a planned size is within [floor, max_size], min_size and EKS's maxSize; a request
    # already within them is kept as asked; only limits leaving no size, or a size past EKS's
    # maxSize with no configured max_size, are refused
    if plan.desired_size is None:
        assert plan.refused
        assert limits.lowest > limits.highest or (
            configured is None and requested > current.max_size
        )
        return
    floor = configured.floor if configured is not None else (capacity_type == "ON_DEMAND")
    assert max(floor, current.min_size) <= plan.desired_size <= current.max_size
    if configured is not None:
        assert plan.desired_size <= configured.max_size
    if limits.lowest <= requested <= limits.highest:
        assert plan.desired_size == requested


@given(case=cases(ALL_ACTIONS))
def test_a_change_keeps_the_desired_size_within_its_bounds_and_min_and_max_untouched(
    case: Case,
) -> None:
    # GIVEN any node group, request and moment
    # WHEN the scaler decides
    decision = decide(case.action, case.request, case.facts, case.now)
    # THEN a change sets only the desired size, within the floor, min_size, the stack file's
    # max_size and EKS's maxSize
    if decision.kind is not DecisionKind.CHANGE:
        return
    assert decision.target is not None
    current = case.facts.current
    assert (decision.target.min_size, decision.target.max_size) == (
        current.min_size,
        current.max_size,
    )
    assert case.limits.lowest <= decision.target.desired_size <= case.limits.highest
    assert decision.target.desired_size != current.desired_size


@given(case=cases((Action.SCALE_DOWN, Action.PREDICTIVE)), data=st.data())
def test_no_decrease_is_made_within_the_cooldown(case: Case, data: st.DataObject) -> None:
    # GIVEN any node group, a request for fewer nodes than it has, and a last change at most
    # an hour and a half ago
    current = case.facts.current.desired_size
    assume(current > 0)
    request = NodeGroupRequest(
        name=GROUP, desired_size=data.draw(st.integers(min_value=0, max_value=current - 1))
    )
    # WHEN the scaler decides
    decision = decide(case.action, request, case.facts, case.now)
    remaining = cooldown_remaining(case.facts.last_change_at, case.facts.cooldown_seconds, case.now)
    # THEN it lowers the node group only once the cooldown has passed, and a decrease it holds
    # back says how long is left
    if decision.kind is DecisionKind.CHANGE:
        assert decision.target is not None
        if decision.target.desired_size < current:
            assert remaining == 0
    if decision.cooldown_remaining_seconds is not None:
        assert decision.kind is DecisionKind.BLOCKED
        assert decision.cooldown_remaining_seconds == remaining > 0


@given(case=cases((Action.SCALE_UP, Action.SCALE_DOWN)))
def test_a_scale_down_never_raises_and_a_sized_scale_up_never_lowers(case: Case) -> None:
    # GIVEN any node group and a scale-up or scale-down
    # WHEN the scaler decides
    decision = decide(case.action, case.request, case.facts, case.now)
    if decision.kind is not DecisionKind.CHANGE or decision.target is None:
        return
    # THEN a scale-down lowers; a scale-up raises, unless it restores the saved daytime sizes
    current = case.facts.current.desired_size
    if case.action is Action.SCALE_DOWN:
        assert decision.target.desired_size < current
    elif decision.restores is None:
        assert decision.target.desired_size > current


@given(case=cases((Action.PREDICTIVE,)))
def test_a_forecasts_change_moves_at_most_max_step_nodes(case: Case) -> None:
    # GIVEN any node group of a cluster and a forecast's size for it (not a hand-back)
    assume(not case.request.hand_back)
    limits = case.limits
    current = case.facts.current.desired_size
    # ... whose current size is within its limits (one outside is brought within them at once:
    # the bounds come before the step)
    assume(limits.lowest <= current <= limits.highest)
    # WHEN the scaler decides
    decision = decide(case.action, case.request, case.facts, case.now)
    # THEN only a cluster handed to the forecast changes, by at most max_step nodes
    if decision.kind is not DecisionKind.CHANGE or decision.target is None:
        return
    cluster = case.facts.cluster
    assert cluster is not None
    assert cluster.scaling.mode == "predictive"
    assert abs(decision.target.desired_size - current) <= cluster.scaling.max_step


@st.composite
def forecasts_in_working_hours(draw: st.DrawFn) -> Case:
    """A forecast's size for a node group of a predictive cluster with the working-hours floor
    on, at a moment in its schedule's working hours."""
    case = draw(cases((Action.PREDICTIVE,)))
    capacity_type = case.facts.capacity_type
    configured = draw(configured_groups(capacity_type, case.facts.current))
    schedule = draw(schedules(configured.max_size))
    cluster = Cluster(
        name="apps",
        region="ap-south-1",
        node_groups=(configured,),
        schedule=schedule,
        scaling=ClusterScaling(
            mode="predictive", max_step=draw(st.integers(min_value=1, max_value=6))
        ),
    )
    day = draw(st.dates(min_value=date(2026, 1, 2), max_value=date(2027, 12, 30)))
    day += timedelta(
        days=next(
            ahead
            for ahead in range(7)
            if WEEKDAYS[(day + timedelta(days=ahead)).weekday()] in schedule.days
        )
    )
    end_day = day + timedelta(days=1) if schedule.scale_down_time < schedule.scale_up_time else day
    start = first_reading(schedule.zone, day, schedule.scale_up_time)
    end = first_reading(schedule.zone, end_day, schedule.scale_down_time)
    now = start + (end - start) * draw(st.floats(min_value=0, max_value=1, exclude_max=True))
    # A window whose times the clocks skip or repeat may last no time at all.
    assume(in_working_hours(schedule, now, calendar=None))
    facts = replace(case.facts, configured=configured, cluster=cluster)
    request = NodeGroupRequest(name=GROUP, desired_size=draw(SIZE))
    return Case(Action.PREDICTIVE, request, facts, now)


@given(case=forecasts_in_working_hours())
def test_in_working_hours_a_forecast_never_takes_a_node_group_below_its_daytime_size(
    case: Case,
) -> None:
    # GIVEN a forecast's size for a node group of a cluster in predictive mode, with the
    # working-hours floor on, at a moment in the schedule's working hours
    cluster = case.facts.cluster
    configured = case.facts.configured
    assert cluster is not None and cluster.schedule is not None and configured is not None
    # WHEN the scaler decides
    decision = decide(case.action, case.request, case.facts, case.now)
    if decision.kind is not DecisionKind.CHANGE or decision.target is None:
        return
    # THEN the node group does not go down below the stack file's desired size (nor the
    # limits' top, when that is lower), and below it only climbs
    current = case.facts.current.desired_size
    daytime = min(configured.desired_size, case.limits.highest)
    target = decision.target.desired_size
    assert target >= daytime or target > current
