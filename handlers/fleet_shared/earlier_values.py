"""The one-time search for values saved before their function indexed them.

A function that starts noting its records in an index of its own (so a run reads one Query, never
a Scan) finds there only the records saved since the deployment that added the index: those saved
before it are missed until they expire. Such a function looks for them once, with a Scan of the
state table (`StateTable.keys_holding_value`), notes those it finds in its index, and then saves a
mark under its `mark_key` so that no later run scans the table again.

The Scan takes at most a share of the time the invocation has when its first page ends
(`SearchTime`), page by page: on a table too large for that it stops, its progress (the key it
stopped after) is saved under the same `mark_key`, and the next run goes on from there. The
caller notes what a search found before `save_search` records how far it went, so a run that
fails between the two searches those pages again rather than skipping them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet_shared.state_table import StateTable

SEARCHED = "indexed"
"""The mark, under a search's `mark_key`, that the values saved before the index are in it."""
PROGRESS = "progress"
"""Under a search's `mark_key`, until the mark: the state table key the last search stopped
after."""


@dataclass(frozen=True)
class EarlierKeys:
    """The keys one run's part of the search found, and the key it stopped after (None: it
    reached the table's end)."""

    keys: list[str]
    resume_after: dict[str, Any] | None

    @property
    def searched_to_end(self) -> bool:
        return self.resume_after is None


class SearchTime:
    """Whether the search may read another page: while the invocation has more than
    (1 - `time_share`) of the time it had when the search first asked. Asked only between
    pages, so the search of a table of one page reads no time."""

    def __init__(self, seconds_left: Callable[[], float], time_share: float) -> None:
        self._seconds_left = seconds_left
        self._time_share = time_share
        self._until: float | None = None

    def go_on(self) -> bool:
        left = self._seconds_left()
        if self._until is None:
            self._until = left * (1 - self._time_share)
        return left > self._until


def earlier_keys(
    state: StateTable,
    mark_key: str,
    *,
    value_name: str,
    key_prefix: str,
    page_items: int,
    go_on: Callable[[], bool],
) -> EarlierKeys | None:
    """The keys starting with `key_prefix` that hold a value named `value_name`, from where the
    last search stopped, at most `page_items` items a page and while `go_on`; None once the
    mark under `mark_key` says the search is done. Raises the state table's errors."""
    if state.get_value(mark_key, SEARCHED) is not None:
        return None
    progress = state.get_value(mark_key, PROGRESS)
    keys, resume_after = state.keys_holding_value(
        value_name,
        key_prefix,
        start_after=_resume_after(progress),
        page_items=page_items,
        go_on=go_on,
    )
    return EarlierKeys(keys, resume_after)


def save_search(state: StateTable, mark_key: str, found: EarlierKeys, at: str) -> None:
    """Record, under `mark_key`, how far the search that `found` went: the mark when it reached
    the table's end (`at` and how many keys this part found), else where it stopped."""
    if found.searched_to_end:
        state.put_value(mark_key, SEARCHED, {"at": at, "keys": len(found.keys)})
    else:
        state.put_value(mark_key, PROGRESS, {"at": at, "resume_after": found.resume_after})


def _resume_after(progress: Any) -> dict[str, Any] | None:
    """The state table key the last search stopped after, if `progress` holds one shaped as a
    key of the table (`pk` and `sk`, each a string); else None, and the search starts over (a
    hand-edited progress costs a longer search, never a skipped part of the table)."""
    resume_after = progress.get("resume_after") if isinstance(progress, dict) else None
    if not isinstance(resume_after, dict) or set(resume_after) != {"pk", "sk"}:
        return None
    if not all(
        isinstance(part, dict) and set(part) == {"S"} and isinstance(part["S"], str)
        for part in resume_after.values()
    ):
        return None
    return resume_after
