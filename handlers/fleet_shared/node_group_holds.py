"""Holds: a freeze of a cluster's or a node group's size until a given time, read by every
function that changes node group sizes (eks_scaler, spot_optimizer's on-demand fallback).

The eks_scaler places and releases holds (`POST /scale` with `"action": "hold"`/`"release"`);
this module is the one definition of where a hold lives in the state table and when it is in
force, so that no writer of sizes reads it differently. A hold is a saved value (`put_value`)
named `hold` under the node group's state key, or under the cluster's key for the whole cluster,
kept with a TTL that ends at `until`. It is in force while the services' clock is before `until`
and it was not released: DynamoDB deletes expired items up to days late, so the time decides,
not the item's presence.

A hold reaches at most MAX_HOLD_DAYS ahead of when it is placed, so one whose `until` lies
further from now (and CLOCK_SKEW_SECONDS) was placed by no writer: a hand edit, a typo in a
record made by hand (2206 for 2026), corruption. It keeps holding, but only as long as any hold
can from now: its `until` is cut to MAX_HOLD_DAYS from when it is first seen, the time it had
kept in `until_as_stored`, and saved so, logged once (`stored_hold`). Someone froze those sizes,
so dropping the hold would undo a freeze nobody lifted; kept as it is it freezes every scale-up
and scale-down for good, ended only by a `release` nobody knows is due.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.clock import written_after
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.validation_errors import shown_value

_logger = logging.getLogger(__name__)

MAX_HOLD_DAYS = 14
"""The furthest a hold may reach: two weeks covers a release freeze or an incident."""

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
    "until_as_stored": False,
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
    until_as_stored: str | None = None
    """The `until` a hold reaching beyond MAX_HOLD_DAYS was stored with, before it was cut."""

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
        cut = (
            f" (cut from {shown_value(self.until_as_stored)}, beyond the {MAX_HOLD_DAYS} days a "
            "hold may last)"
            if self.until_as_stored is not None
            else ""
        )
        return f"{subject} is on hold until {self.until}{cut} (set by {self.set_by}): {self.reason}"

    def seconds_left(self, now: datetime) -> int:
        """Whole seconds from `now` to `until`, at least 1: the TTL of the hold's item."""
        return max(1, math.ceil((parse_iso(self.until) - now).total_seconds()))


def stored_hold(state: StateTable, key: str, *, now: datetime, dry_run: bool) -> Hold | None:
    """The hold saved under `key` (in force or not), if any is left in the table; one reaching
    beyond MAX_HOLD_DAYS from `now` is cut to end then (see the module), and saved so unless
    `dry_run` (then cut for this reader only, and logged again by the next)."""
    saved = state.get_versioned_value(key, HOLD_NAME)
    if saved is None:
        return None
    hold = Hold.from_record(saved.value, key)
    longest = now + timedelta(days=MAX_HOLD_DAYS)
    if not written_after(parse_iso(hold.until), longest):
        return hold
    cut = replace(hold, until=iso_z(longest), until_as_stored=hold.until)
    _logger.warning(
        "hold reaching beyond %d days cut to end %s",
        MAX_HOLD_DAYS,
        cut.until,
        extra={"key": key, "until_as_stored": shown_value(hold.until), "dry_run": dry_run},
    )
    if not dry_run:
        # Replaced only if unchanged since read: a release meanwhile stands.
        state.replace_value(
            key, HOLD_NAME, cut.as_record(), read=saved, ttl_seconds=cut.seconds_left(now)
        )
    return cut


def hold_in_force(
    state: StateTable,
    account_id: str,
    region: str,
    cluster: str,
    node_group: str,
    *,
    now: datetime,
    dry_run: bool,
) -> Hold | None:
    """The hold that freezes `node_group` at `now`: its own, else its cluster's, else None
    (`stored_hold`, with `dry_run`)."""
    for key in (
        node_group_key(account_id, region, cluster, node_group),
        cluster_key(account_id, region, cluster),
    ):
        hold = stored_hold(state, key, now=now, dry_run=dry_run)
        if hold is not None and hold.in_force(now):
            return hold
    return None
