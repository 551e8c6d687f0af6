"""Work across targets (accounts, regions, clusters): bounded, in order, one failure isolated.

Every function that acts across the fleet needs the same three things: at most N targets at once
(member API limits and the function's memory), results in the order the targets were given (so
reports are stable), and a failure in one target reported for that target while the others go
on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

TargetT = TypeVar("TargetT")
ResultT = TypeVar("ResultT")


def map_isolated(
    targets: Sequence[TargetT],
    work: Callable[[TargetT], ResultT],
    *,
    on_error: Callable[[TargetT, Exception], ResultT],
    errors: tuple[type[Exception], ...],
    max_workers: int,
) -> list[ResultT]:
    """`work` for every target, at most `max_workers` at once, results in target order.

    An exception of one of `errors` becomes that target's result through `on_error`; anything
    else propagates, because it is a bug rather than a target's failure.
    """

    def run(target: TargetT) -> ResultT:
        try:
            return work(target)
        except errors as error:
            return on_error(target, error)

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(targets))) as pool:
        return list(pool.map(run, targets))
