"""Reading the interruption histories (keys.py) an interruption warning and the analyses count.

A record under an interruption key whose time or data cannot be read (no JSON object, no
`changed_at`: corruption, an older format, a hand edit) is skipped, not raised: a two-minute
warning cannot wait for a person to clean the table, and while such a record stayed in the window
every warning of its node group or type/AZ would otherwise fail, announced by no alert and
counted nowhere. The record is logged once per invocation (its key, time and what is wrong, never
its data) and still counted as an interruption: only interruptions are written under these keys,
so its sort-key time (which places it in the window) marks one; counting it errs
towards the on-demand fallback (a mutation with its own guards: ceilings, holds, maintenance
windows, once an hour) and towards a higher interruption risk, never towards trusting spot more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet_shared.observability import observability_for
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import parse_iso
from handlers.spot_optimizer.services import FUNCTION_NAME

logger = observability_for(FUNCTION_NAME).logger


@dataclass(frozen=True)
class Interruptions:
    """The interruptions recorded under one key in a window: the records that could be read,
    oldest first, and how many records could not."""

    records: list[dict[str, Any]]
    unreadable: int

    @property
    def count(self) -> int:
        """Every interruption recorded, an unreadable record included (module docstring)."""
        return len(self.records) + self.unreadable

    def warned_since(self, since: datetime) -> int:
        """The interruptions whose warning EC2 sent at or after `since`: a warning handled late
        (a retry, a redrive) is recorded when handled, but its burst is as old as its warning.
        A record whose `warned_at` cannot be read counts, as an unreadable record does."""
        return self.unreadable + sum(
            1
            for record in self.records
            if _warned_at(record) is None or _warned_at(record) >= since
        )


def _warned_at(record: dict[str, Any]) -> datetime | None:
    """When EC2 sent the recorded warning, or None when the record does not say readably."""
    try:
        return parse_iso(str(record["warned_at"]))
    except (KeyError, ValueError):
        return None


class InterruptionHistories:
    """The reader of interruption histories for one invocation: it logs each unreadable record
    once, however often its key is read, and counts them all (`unreadable_records`)."""

    def __init__(self, state: StateTable) -> None:
        self._state = state
        self._unreadable_seen: set[tuple[str, str]] = set()

    def read(self, key: str, since: datetime) -> Interruptions:
        """The interruptions recorded under `key` at or after `since`."""
        history = self._state.readable_history(key, since)
        for error in history.unreadable:
            seen = (error.key, error.changed_at)
            if seen in self._unreadable_seen:
                continue
            self._unreadable_seen.add(seen)
            logger.warning(
                "unreadable interruption record skipped",
                extra={"key": error.key, "changed_at": error.changed_at, "problem": error.problem},
            )
        return Interruptions(
            records=[change.record for change in history.changes],
            unreadable=len(history.unreadable),
        )

    @property
    def unreadable_records(self) -> int:
        """How many distinct unreadable records this invocation's reads met."""
        return len(self._unreadable_seen)
