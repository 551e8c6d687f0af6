"""The clusters a fleet run left for lack of time go first in the next run.

The fleet run starts a cluster only while the invocation has time for it (`TimeBudget`), in the
order it is given. In inventory order, a fleet too large for one run would leave the same
clusters at the end every run, never checked. So the clusters a run did not start are saved, in
the order it came to them, and the next run starts with them, then the others in inventory
order. The list only orders the run: when it cannot be read or saved, the run goes in inventory
order and its results stand.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.state_table import StateTable
from handlers.health_monitor.checks.base import ClusterTarget
from handlers.health_monitor.runner import logger
from handlers.health_monitor.services import FUNCTION_NAME

LEFT_KEY = f"{FUNCTION_NAME}/clusters-not-started"
LEFT_VALUE = "not_started"
LEFT_TTL_SECONDS = 24 * 3600
"""How long the clusters a run left are remembered: a forgotten list only means the next run
starts in inventory order."""


def clusters_left_before(state: StateTable) -> list[str]:
    """The labels of the clusters the last fleet run did not start, in the order it came to
    them; none when they cannot be read."""
    try:
        saved = state.get_value(LEFT_KEY, LEFT_VALUE)
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "clusters left by the last run could not be read", extra={"error": repr(error)}
        )
        return []
    return [str(label) for label in (saved or {}).get("clusters", [])]


def in_turn_order(targets: list[ClusterTarget], left_before: list[str]) -> list[ClusterTarget]:
    """`targets` with those the last run left first, in its order, then the others in
    inventory order."""
    rank = {label: position for position, label in reversed(list(enumerate(left_before)))}
    return sorted(targets, key=lambda target: rank.get(target.label, len(rank)))


def remember_clusters_left(state: StateTable, labels: list[str]) -> None:
    """Save the labels of the clusters this run did not start (an empty list clears them)."""
    try:
        state.put_value(LEFT_KEY, LEFT_VALUE, {"clusters": labels}, ttl_seconds=LEFT_TTL_SECONDS)
    except (ClientError, BotoCoreError) as error:
        logger.warning("clusters left by this run could not be saved", extra={"error": repr(error)})
