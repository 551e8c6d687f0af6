"""The targets a run left for lack of time go first in the next run.

A run starts a target only while the invocation has time for it (`TimeBudget`), in the order it
is given. In inventory order, a fleet too large for one run would leave the same accounts and
regions at the end every night, never backed up. So the targets a run did not start are saved,
in the order it came to them, and the next run starts with them, then the others in inventory
order. The list only orders the run: when it cannot be read or saved, the run goes in inventory
order and its results stand.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.observability import observability_for
from fleet_shared.state_table import StateTable

FUNCTION_NAME = "backup_scheduler"
LEFT_KEY = f"{FUNCTION_NAME}/targets-not-started"
LEFT_VALUE = "not_started"
LEFT_TTL_SECONDS = 3 * 86400
"""Longer than the day between two runs: a forgotten list only means the next run starts in
inventory order."""

Target = tuple[str, str]
"""(account id, region)."""

logger = observability_for(FUNCTION_NAME).logger


def targets_left_before(state: StateTable) -> list[Target]:
    """The targets the last run did not start, in the order it came to them; none when they
    cannot be read."""
    try:
        saved = state.get_value(LEFT_KEY, LEFT_VALUE)
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "targets left by the last run could not be read", extra={"error": repr(error)}
        )
        return []
    return [
        (str(target["account_id"]), str(target["region"]))
        for target in (saved or {}).get("targets", [])
    ]


def in_turn_order(targets: list[Target], left_before: list[Target]) -> list[Target]:
    """`targets` with those the last run left first, in its order, then the others in
    inventory order."""
    rank = {target: position for position, target in reversed(list(enumerate(left_before)))}
    return sorted(targets, key=lambda target: rank.get(target, len(rank)))


def remember_targets_left(state: StateTable, left: list[Target]) -> None:
    """Save the targets this run did not start (an empty list clears them)."""
    targets = [{"account_id": account_id, "region": region} for account_id, region in left]
    try:
        state.put_value(LEFT_KEY, LEFT_VALUE, {"targets": targets}, ttl_seconds=LEFT_TTL_SECONDS)
    except (ClientError, BotoCoreError) as error:
        logger.warning("targets left by this run could not be saved", extra={"error": repr(error)})
