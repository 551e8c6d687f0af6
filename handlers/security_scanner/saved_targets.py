"""The index of the targets whose open findings the state table keeps.

A target's state (`scan.state_key`) is read only when the target is scanned, and a target is
scanned only while the inventory lists its account: once an account leaves, nothing would read
its states again, and its findings would stay ACTIVE in Security Hub for ever. So a scan notes
its target here before saving the target's state (and the account's `global` state), one value
per (account, state region) under one key, and the scheduled scan reads the index back to find
the accounts that left (`left_accounts`). Noting first means no state is ever saved unindexed;
a note whose save then failed only names a state that does not exist, which archives nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_shared.state_table import StateTable

SAVED_TARGETS_KEY = "security_scanner/saved-targets"
"""The state-table key of the index: one value per target, named `<account>/<state region>`."""


@dataclass(frozen=True)
class SavedTarget:
    """An (account, state region) whose open findings were saved; the region is `global` for
    the account's findings on global services."""

    account_id: str
    region: str

    @property
    def name(self) -> str:
        """The target's value name in the index."""
        return f"{self.account_id}/{self.region}"


def note_saved_target(state: StateTable, target: SavedTarget) -> None:
    """Note `target` in the index, before its state is saved (a repeat rewrites the same)."""
    state.put_value(
        SAVED_TARGETS_KEY,
        target.name,
        {"account_id": target.account_id, "region": target.region},
    )


def saved_targets(state: StateTable) -> list[SavedTarget]:
    """Every target noted, in name order. Raises the state table's errors when it cannot be
    read; a value that names no target is skipped, as one that names nothing saved."""
    noted = state.values_named(SAVED_TARGETS_KEY, "")
    return [
        SavedTarget(value["account_id"], value["region"])
        for value in noted.values()
        if isinstance(value.get("account_id"), str) and isinstance(value.get("region"), str)
    ]


def forget_saved_target(state: StateTable, target: SavedTarget) -> None:
    """Remove `target` from the index, once its state is dropped."""
    state.delete_value(SAVED_TARGETS_KEY, target.name)
