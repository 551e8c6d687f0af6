"""A node group's change intent: the change eks_scaler is about to make, found made but unrecorded.

eks_scaler saves, under the node group's state key and before UpdateNodegroupConfig, the change
record to be with its notice (handlers/eks_scaler/change_intents.py says when and why). When the
update is made but its answer lost, the invocation ends with the change unrecorded and
unannounced, and its retry comes a minute or more later. Whoever changes the node group before
that retry, under the node group lock (another eks_scaler request, spot_optimizer's +1), would
record a change after the intent, which spends it: the first change would never be recorded nor
announced. So each of them, before its own change, records the change of an unspent intent (no
change recorded at or after it) that it finds made (the node group at its target), as of when
the intent was saved, and delivers its notice under the notice's own key (the first request's),
which its retry delivers under too: once. A state table refusal of that record is raised, so the
caller changes nothing: its change would spend the intent, the one trace of the first change.

Each of them reads the intent through `current_intent`, which dates one saved as of a time after
now (a hand edit, corruption) as of now, once: read as it is, it held the node group's decreases
until then, and a change found made from it was recorded as of then, after every later change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fleet_shared.clock import written_after
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.validation_errors import shown_value

_logger = logging.getLogger(__name__)

INTENT_NAME = "change_intent"
"""The saved value (under the node group's state key) holding the change about to be made."""

NOTICE_FIELD = "notice"
"""The field of a change record (and of nothing else) that holds the change's notice."""

Notice = dict[str, Any]
"""`{"key": <delivery key>, "alert": <the alert as JSON>}`, as the records keep it."""

NOTICE_DELIVERERS = ("eks_scaler", "spot_optimizer")
"""The functions that deliver a node group change's notice, each under the notice's key:
eks_scaler its own, and either one a change it finds made from an intent. Each counts the
other's delivery claims as its own (`alert_delivery.deliver_all`'s `also_claimed_by`), so the
notice goes out once whichever delivers it."""


@dataclass(frozen=True)
class KeptIntent:
    """The node group's kept intent: when it was saved, and the change record (with its notice)
    it saved."""

    prepared_at: datetime
    record: dict[str, Any]

    @classmethod
    def from_value(cls, value: dict[str, Any], key: str) -> KeptIntent:
        """The intent of a saved value (`INTENT_NAME`'s) under node group `key`.

        UnreadableStateValueError naming the field when it is not one: the table is the fleet's
        own, so only corruption or a hand edit writes one, and it fails that node group alone (a
        KeyError or ValueError failed every node group of the request, and `int()` made a flag
        or a fraction the size a found change is matched against)."""
        prepared_at, record = value.get("prepared_at"), value.get("record")
        prepared = _time_with_zone(prepared_at)
        if prepared is None:
            raise _unreadable(
                key, f"prepared_at {shown_value(prepared_at)} is not a time with a time zone"
            )
        if not isinstance(record, dict):
            raise _unreadable(key, f"record {shown_value(record)} is not an object")
        new = record.get("new")
        desired = new.get("desired_size") if isinstance(new, dict) else None
        if isinstance(desired, bool) or not isinstance(desired, int) or desired < 0:
            raise _unreadable(
                key, f"record.new.desired_size {shown_value(desired)} is not a node count"
            )
        if not isinstance(record.get("action"), str):
            raise _unreadable(
                key, f"record.action {shown_value(record.get('action'))} is not a string"
            )
        if not isinstance(record.get(NOTICE_FIELD), dict):
            raise _unreadable(key, f"record.{NOTICE_FIELD} is not an object")
        return cls(prepared, record)

    @property
    def action(self) -> str:
        """The action of the change (`scale_up`, `predictive`...)."""
        return str(self.record["action"])

    @property
    def desired_size(self) -> int:
        """The desired size the change sets."""
        return int(self.record["new"]["desired_size"])

    def spent_by(self, last_change_at: datetime | None) -> bool:
        """Whether a change recorded at `last_change_at` (the node group's last) spends the
        intent: its own record, or a later change's."""
        return last_change_at is not None and last_change_at >= self.prepared_at


def _time_with_zone(value: object) -> datetime | None:
    """`value` as an aware time, or None when it is no ISO 8601 text with a zone."""
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _unreadable(key: str, problem: str) -> UnreadableStateValueError:
    return UnreadableStateValueError(key, INTENT_NAME, problem)


def kept_intent(state: StateTable, key: str) -> KeptIntent | None:
    """The node group's kept intent, if any."""
    value = state.get_value(key, INTENT_NAME)
    return KeptIntent.from_value(value, key) if value is not None else None


def current_intent(
    state: StateTable, key: str, *, now: datetime, dry_run: bool
) -> tuple[KeptIntent | None, datetime | None]:
    """The node group's kept intent, and the time it was saved as of when that lay after `now`
    (`clock.written_after`: no clock writes it; None otherwise). Unspent, an intent counts as the
    node group's last change, so read as it is it would hold every decrease until then, and a
    change found made from it would be recorded as of then. The change it stands for cannot have
    been prepared later than now: it is saved again as of now (`redated_from` keeps the time, its
    expiry is kept), logged, so the next reader finds a true time. A dry run dates it so for
    itself only. None when the intent is gone before it is saved again."""
    intent = kept_intent(state, key)
    if intent is None or not written_after(intent.prepared_at, now):
        return intent, None
    _logger.warning(
        "change intent dated after now",
        extra={"key": key, "recorded_at": iso_z(intent.prepared_at), "dry_run": dry_run},
    )
    if not dry_run:
        value = {
            "prepared_at": iso_z(now, "microseconds"),
            "record": intent.record,
            "redated_from": iso_z(intent.prepared_at),
        }
        if not state.rewrite_value(key, INTENT_NAME, value):
            return None, intent.prepared_at
    return replace(intent, prepared_at=now), intent.prepared_at


def record_found_change(
    state: StateTable,
    key: str,
    intent: KeptIntent,
    *,
    current_desired: int,
    recorded_by: Mapping[str, Any],
    history_ttl_seconds: int,
) -> Notice | None:
    """When the node group is at the target (`current_desired`) of an unspent `intent`, its
    change was made by an invocation that ended before recording it: record it now, as of when
    the intent was saved, with `recorded_by` (fields naming who recorded it), and return its
    notice. None otherwise: its update was not made (its retry makes it). A refusal of the
    state table is raised."""
    if intent.desired_size != current_desired:
        return None
    state.record_change(
        key,
        {**intent.record, **recorded_by},
        history_ttl_seconds=history_ttl_seconds,
        changed_at=intent.prepared_at,
    )
    notice: Notice = intent.record[NOTICE_FIELD]
    return notice


def record_unspent_intents_change(
    state: StateTable,
    key: str,
    *,
    now: datetime,
    current_desired: int,
    recorded_by: Mapping[str, Any],
    history_ttl_seconds: int,
) -> Notice | None:
    """`record_found_change` of the node group's kept intent when no change is recorded at or
    after it (read here, `current_intent`): for a caller that saves no intent of its own. None
    when there is no such intent, or its change was not made."""
    intent, _ = current_intent(state, key, now=now, dry_run=False)
    if intent is None or intent.spent_by(state.last_change_at(key)):
        return None
    return record_found_change(
        state,
        key,
        intent,
        current_desired=current_desired,
        recorded_by=recorded_by,
        history_ttl_seconds=history_ttl_seconds,
    )
