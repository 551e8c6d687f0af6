"""The cleanup manager's own errors."""

from __future__ import annotations


class InventoryUnreadableError(Exception):
    """The fleet inventory could not be read, so no target of the day's run was cleaned.

    Deliberately not a `FleetError`: that would be the result of an invocation that succeeded,
    and a scheduled run has no one to read it (no retry, no dead-letter queue, no error alarm), so
    the fleet would go a day without marks, notices or deletions unnoticed. Failing the invocation
    lets Lambda retry it, and the error alarm and the dead-letter queue say the day's run is
    missing.
    """

    def __init__(self, cause: str) -> None:
        self.cause = cause
        super().__init__(f"no target cleaned: {cause}")
