"""The demo's validated changes: which node group updates a scaler answer started, the
CloudTrail event change_validator gets for each, when the health monitor probes around them,
and the timeline's line for a verdict.

In AWS the scaler's UpdateNodegroupConfig reaches change_validator through CloudTrail and
EventBridge, and its callbacks through EventBridge Scheduler; the demo plays both parts with
`fleetctl.validated_change`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetctl.schedule_replay import Firing, PlannedSchedule, rate_minutes
from fleetctl.validated_change import cloudtrail_change_event

VALIDATOR = "change_validator"
HEALTH_MONITOR = "health_monitor"
DEFAULT_BAKE_MINUTES = 15
"""change_validator's bake when the plan does not set VALIDATION_BAKE_MINUTES."""


@dataclass(frozen=True)
class ScalerChange:
    """One node group update the scaler started: where, to what size, and its EKS update id."""

    at: datetime
    account_id: str
    region: str
    cluster: str
    node_group: str
    desired_size: int
    update_id: str

    def cloudtrail_event(self, scaler_role_name: str) -> dict[str, Any]:
        """The forwarded CloudTrail record of the scaler's UpdateNodegroupConfig."""
        return cloudtrail_change_event(
            "UpdateNodegroupConfig",
            account_id=self.account_id,
            region=self.region,
            cluster=self.cluster,
            update_id=self.update_id,
            at=self.at,
            request_parameters={
                "nodegroupName": self.node_group,
                "scalingConfig": {"desiredSize": self.desired_size},
            },
            role_name=scaler_role_name,
        )


def scaler_changes(result: Any, at: datetime) -> list[ScalerChange]:
    """The node group updates a scaler answer reports started (those with an update id)."""
    if not isinstance(result, dict) or not isinstance(result.get("results"), list):
        return []
    changes = []
    for item in result["results"]:
        if not isinstance(item, dict) or not item.get("update_id"):
            continue
        new = item.get("new") if isinstance(item.get("new"), dict) else {}
        changes.append(
            ScalerChange(
                at=at,
                account_id=str(result.get("account_id")),
                region=str(result.get("region")),
                cluster=str(result.get("cluster")),
                node_group=str(item.get("nodegroup")),
                desired_size=int(new.get("desired_size", 0)),
                update_id=str(item["update_id"]),
            )
        )
    return changes


def probe_moments(
    around: datetime,
    *,
    before: timedelta,
    after: timedelta,
    step: timedelta,
    later_than: datetime,
    taken: Iterable[datetime],
) -> list[datetime]:
    """When the health monitor runs around a change at `around`, at its own cadence `step`:
    from `before` ahead of it to `after` past it, only moments after `later_than` (the replay
    never goes back) and not already `taken` by one of its firings."""
    occupied = set(taken)
    moments = []
    moment = around - before
    while moment <= around + after:
        if moment > later_than and moment not in occupied:
            moments.append(moment)
        moment += step
    return moments


class DaySteps:
    """The day's firings in time order, with the health monitor's probes merged in: runs at its
    own cadence over the bake length before each scaling firing, and after each change until
    one cadence past its bake, so that the validator's baseline and bake have endpoint results.
    Without a bake (no validator) or a health monitor rate schedule, only the firings."""

    def __init__(
        self,
        schedules: list[PlannedSchedule],
        firings: list[Firing],
        bake: timedelta | None,
        sizing_functions: tuple[str, ...],
    ) -> None:
        self.firings = firings
        self.monitor = next(
            (
                schedule
                for schedule in schedules
                if schedule.function == HEALTH_MONITOR and schedule.expression.startswith("rate(")
            ),
            None,
        )
        self.bake = bake if self.monitor is not None else None
        self.cadence = (
            timedelta(minutes=rate_minutes(self.monitor.expression)) if self.monitor else None
        )
        self._monitor_moments = {
            firing.at for firing in firings if firing.schedule.function == HEALTH_MONITOR
        }
        self._probes: list[datetime] = []
        self._index = 0
        self._last = datetime.min.replace(tzinfo=UTC)
        # All at once, not as each sizing firing comes next: the firings of the same minute
        # before it (the forecaster, the validator's sweep) would have moved the replay past
        # its baseline, leaving the validator too few results to judge the change.
        for firing in firings:
            if firing.schedule.function in sizing_functions:
                self._add(firing.at, before=True)

    def next_step(self) -> datetime | tuple[int, Firing] | None:
        """The next probe's moment, or the next firing with its number (from 1); None after
        the last."""
        firing = self.firings[self._index] if self._index < len(self.firings) else None
        if self._probes and (firing is None or self._probes[0] < firing.at):
            self._last = self._probes.pop(0)
            return self._last
        if firing is None:
            return None
        self._index += 1
        self._last = firing.at
        return self._index, firing

    def after_change(self, at: datetime) -> None:
        """Probe after a change at `at` until one cadence past its bake's end (the step that
        delivers the bake's callback)."""
        self._add(at, before=False)

    def probe(self, at: datetime) -> Firing:
        """The health monitor's firing at a probe's moment."""
        if self.monitor is None:
            raise ValueError("no health monitor rate schedule to probe with")
        return Firing(at, self.monitor)

    def _add(self, around: datetime, *, before: bool) -> None:
        if self.bake is None or self.cadence is None:
            return
        moments = probe_moments(
            around,
            before=self.bake if before else timedelta(0),
            after=-self.cadence if before else self.bake + self.cadence,
            step=self.cadence,
            later_than=self._last,
            taken=self._monitor_moments,
        )
        self._probes = sorted(set(self._probes) | set(moments))


def verdict_line(result: Any) -> str | None:
    """The timeline's line for a validation that reached its verdict (None before that):
    the node group, the verdict, why (the figures that moved, with how much) and, for a
    regression, the rollback that applies."""
    if not isinstance(result, dict) or not result.get("verdict") or result.get("duplicate"):
        return None
    subject = "/".join(str(part) for part in (result.get("cluster"), result.get("node_group")))
    line = f"{subject} {result['verdict']}: {result.get('reason')}"
    rollback = result.get("rollback")
    if result["verdict"] != "passed" and isinstance(rollback, dict) and rollback.get("action"):
        line += f"; rollback: {rollback['action']}"
    restore = result.get("restore")
    if isinstance(restore, dict) and restore.get("status"):
        line += f"; restore {restore['status']}"
    return line
