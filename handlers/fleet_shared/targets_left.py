"""The targets a run left for lack of time, kept in the state table for the next run to start with.

A run starts a target (a cluster, an account and region, an endpoint) only while the invocation
has time for it (`fan_out.TimeBudget`), in the order it is given. In inventory order, a fleet too
large for one run would leave the same targets at the end every run, never reached. So the
targets a run did not start are saved, in the order it came to them, and the next run starts with
them, in that order, then the others in inventory order: the targets left over take turns. A
function whose target may be started and left partly done for lack of time saves that target too
(health_monitor: a cluster with checks not checked or endpoints not probed), in the same order.

The list only orders the run: when it cannot be read or saved, that is logged, the run goes in
inventory order and its results stand. Two runs at once each save what they left, the later save
replacing the earlier: the order of one run is lost, no target's result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.state_table import StateTable

TargetT = TypeVar("TargetT")

StoredTarget = str | dict[str, str]
"""A target as the list keeps it: its label, or the fields that name it."""


@dataclass(frozen=True)
class TargetsLeftList:
    """Where a function keeps the targets its run left: the state table's `key` and value `name`,
    the `field` of the value that holds the list, and how long it is kept (None: until the next
    run that leaves some, or that finds some left, replaces it)."""

    key: str
    field: str
    name: str = "not_started"
    ttl_seconds: int | None = None

    def read(self, state: StateTable, logger: Any) -> list[StoredTarget]:
        """The targets the last run left, in the order it came to them; none when there are
        none or they cannot be read (DynamoDB failing, or a saved list no JSON object)."""
        try:
            saved = state.get_value(self.key, self.name)
        except (ClientError, BotoCoreError, UnreadableStateValueError) as error:
            logger.warning(
                "targets left by the last run could not be read",
                extra={"key": self.key, "error": repr(error)},
            )
            return []
        left = (saved or {}).get(self.field, [])
        return list(left) if isinstance(left, list) else []

    def save(
        self,
        state: StateTable,
        left: Sequence[StoredTarget],
        left_before: Sequence[StoredTarget],
        logger: Any,
    ) -> None:
        """Save `left`, the targets this run left in the order it came to them, when it
        left some or the last run had left some (`left_before`: an empty list then clears them);
        a failed save is logged, and the next run goes by the list saved before."""
        if not left and not left_before:
            return
        try:
            state.put_value(
                self.key, self.name, {self.field: list(left)}, ttl_seconds=self.ttl_seconds
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning(
                "targets left by this run could not be saved",
                extra={"key": self.key, "error": repr(error)},
            )


def stored_account_region(target: tuple[str, str]) -> StoredTarget:
    """An (account, region) target as the list keeps it: the fields that name it."""
    account_id, region = target
    return {"account_id": account_id, "region": region}


def in_turn_order(
    targets: Sequence[TargetT],
    left_before: Sequence[StoredTarget],
    stored_form: Callable[[TargetT], StoredTarget],
) -> list[TargetT]:
    """`targets` with those the last run left first, in its order, then the others in the order
    given; `stored_form` is a target as the list keeps it. A target the list names twice goes at
    its first place; one the list names that is not among `targets` is passed over."""
    rank: dict[str, int] = {}
    for position, target in enumerate(left_before):
        rank.setdefault(_identity(target), position)
    return sorted(
        targets, key=lambda target: rank.get(_identity(stored_form(target)), len(left_before))
    )


def _identity(target: StoredTarget) -> str:
    """One string per target whatever the order of its fields, so a stored target and a target
    of this run compare equal."""
    return json.dumps(target, sort_keys=True)
