"""The index of open validations, which the hourly sweep reads (one Query, never a Scan).

A validation goes on only when its one-time callback schedule fires: one deleted by hand (or
whose delivery failed after all its retries) left the validation open for ever, never judged and
never alerted. Each validation not yet done is noted under OPEN_VALIDATIONS_KEY (one saved value
per update id, kept as long as its record) from its first save until it is done, so the sweep
(`sweep.py`) finds the ones whose callback never came.
"""

from __future__ import annotations

from fleet_shared.state_table import StateTable

OPEN_VALIDATIONS_KEY = "change_validator/open"
"""The state-table key whose saved values, named by update id, are the open validations."""


def note_open(state: StateTable, validation_id: str, ttl_seconds: int) -> None:
    """Note the validation `validation_id` open (again: a later save keeps it noted)."""
    state.put_value(OPEN_VALIDATIONS_KEY, validation_id, {}, ttl_seconds=ttl_seconds)


def note_done(state: StateTable, validation_id: str) -> None:
    """Drop the validation `validation_id` from the index (it is done, or has no record)."""
    state.delete_value(OPEN_VALIDATIONS_KEY, validation_id)


def open_validation_ids(state: StateTable) -> list[str]:
    """The update ids of the validations noted open, in order; an entry whose value cannot be
    read (a hand edit) still names its validation, which is what the sweep needs."""
    read = state.readable_values_named(OPEN_VALIDATIONS_KEY, "")
    return sorted({*read.values, *read.unreadable})
