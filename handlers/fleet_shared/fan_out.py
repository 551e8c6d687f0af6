"""Work across targets (accounts, regions, clusters): bounded, in order, one failure isolated.

Every function that acts across the fleet needs the same things: at most N targets at once
(member API limits and the function's memory), results in the order the targets were given (so
reports are stable), a failure in one target reported for that target while the others go on,
and no target started when the invocation could not finish it: Lambda would end the invocation
mid-change. A target not started for lack of time is reported through `on_deadline` (status
`not_started`), so the caller returns a `partial` result naming what is left for the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

TargetT = TypeVar("TargetT")
ResultT = TypeVar("ResultT")

NOT_STARTED = "not_started"
"""The status of a target left for the next run because the invocation was running out of time."""


class Deadline(Protocol):
    """What `map_isolated` asks of the invocation (`fleet_shared.handler.Invocation`)."""

    def allows(self, seconds: float) -> bool:
        """Whether a step that may take `seconds` still fits in the time left."""
        ...


@dataclass(frozen=True)
class TimeBudget:
    """Start a target only while `deadline` allows `seconds_per_target`; otherwise answer
    `on_deadline(target)`."""

    deadline: Deadline
    seconds_per_target: float
    on_deadline: Callable[[object], object]


def map_isolated(
    targets: Sequence[TargetT],
    work: Callable[[TargetT], ResultT],
    *,
    on_error: Callable[[TargetT, Exception], ResultT],
    errors: tuple[type[Exception], ...],
    max_workers: int,
    budget: TimeBudget | None = None,
) -> list[ResultT]:
    """`work` for every target, at most `max_workers` at once, results in target order.

    An exception of one of `errors` becomes that target's result through `on_error`; anything
    else propagates, because it is a bug rather than a target's failure. With a `budget`, a
    target whose turn comes when less than `seconds_per_target` is left is not started.
    """

    def run(target: TargetT) -> ResultT:
        if budget is not None and not budget.deadline.allows(budget.seconds_per_target):
            return budget.on_deadline(target)  # type: ignore[return-value]
        try:
            return work(target)
        except errors as error:
            return on_error(target, error)

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(targets))) as pool:
        return list(pool.map(run, targets))
