"""Holds: a freeze of a cluster's or a node group's size until a given time, read by every
function that changes node group sizes (eks_scaler, spot_optimizer's on-demand fallback).

The eks_scaler places and releases holds (`POST /scale` with `"action": "hold"`/`"release"`);
this module is the one definition of where a hold lives in the state table and when it is in
force, so that no writer of sizes reads it differently. A hold is a saved value (`put_value`)
named `hold` under the node group's state key, or under the cluster's key for the whole cluster,
kept with a TTL that ends at `until`. It is in force while the services' clock is before `until`
and it was not released: DynamoDB deletes expired items up to days late, so the time decides,
not the item's presence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import parse_iso
from fleet_shared.validation_errors import shown_value

HOLD_NAME = "hold"
"""Name of the saved value that holds a hold (see `StateTable.put_value`)."""


def cluster_key(account_id: str, region: str, cluster: str) -> str:
    """The state key of a cluster as a whole (its hold)."""
    return f"cluster/{account_id}/{region}/{cluster}"


HOLD_SCOPES = ("cluster", "nodegroup")
"""A hold's `scope`: the whole cluster, or one node group."""
HOLD_FIELDS = {
    "scope": True,
    "reason": True,
    "until": True,
    "set_by": True,
    "set_at": True,
    "request_id": False,
    "released_at": False,
    "released_by": False,
}
"""A stored hold's fields, each a string, and whether it is required (else a string or null)."""


@dataclass(frozen=True)
class Hold:
    """One hold as stored: who set it, why, until when, and whether it was released early."""

    scope: str
    """`cluster` or `nodegroup`."""
    reason: str
    until: str
    set_by: str
    set_at: str
    request_id: str | None = None
    released_at: str | None = None
    released_by: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any], key: str) -> Hold:
        """From the state table value (`as_record`) under `key`.

        UnreadableStateValueError naming the field when it is not one: the table is the fleet's
        own, so only corruption or a hand edit writes one, and it fails what the hold would
        freeze, never reads as no hold (a TypeError or ValueError failed every node group of the
        request, held or not, and the spot optimizer's fallback with them)."""
        unknown = sorted(set(record) - set(HOLD_FIELDS))
        if unknown:
            raise UnreadableStateValueError(
                key, HOLD_NAME, f"unknown field {shown_value(unknown[0])}"
            )
        for field, required in HOLD_FIELDS.items():
            value = record.get(field)
            if not isinstance(value, str) and (required or value is not None):
                raise UnreadableStateValueError(
                    key, HOLD_NAME, f"{field} {shown_value(value)} is not a string"
                )
        if record["scope"] not in HOLD_SCOPES:
            raise UnreadableStateValueError(
                key, HOLD_NAME, f"scope {shown_value(record['scope'])} is not a hold's scope"
            )
        try:
            parse_iso(record["until"])
        except ValueError:
            raise UnreadableStateValueError(
                key,
                HOLD_NAME,
                f"until {shown_value(record['until'])} is not a time with a time zone",
            ) from None
        return cls(**record)

    def as_record(self) -> dict[str, Any]:
        """The state table value (also how results show a hold)."""
        return asdict(self)

    def in_force(self, now: datetime) -> bool:
        """Whether the hold freezes sizes at `now`."""
        return self.released_at is None and now < parse_iso(self.until)

    def explanation(self) -> str:
        """Why a change is skipped, in one line."""
        subject = "the cluster" if self.scope == "cluster" else "the node group"
        return f"{subject} is on hold until {self.until} (set by {self.set_by}): {self.reason}"


def stored_hold(state: StateTable, key: str) -> Hold | None:
    """The hold saved under `key` (in force or not), if any is left in the table."""
    record = state.get_value(key, HOLD_NAME)
    return Hold.from_record(record, key) if record is not None else None


def hold_in_force(
    state: StateTable,
    account_id: str,
    region: str,
    cluster: str,
    node_group: str,
    *,
    now: datetime,
) -> Hold | None:
    """The hold that freezes `node_group` at `now`: its own, else its cluster's, else None."""
    for key in (
        node_group_key(account_id, region, cluster, node_group),
        cluster_key(account_id, region, cluster),
    ):
        hold = stored_hold(state, key)
        if hold is not None and hold.in_force(now):
            return hold
    return None
