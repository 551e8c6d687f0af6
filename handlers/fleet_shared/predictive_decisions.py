"""The record of a cluster's predictive scaling decisions, shared by the forecaster (which makes
and records them) and the scaler (whose `analyze` shows the last ones).

One state-table value per cluster (key `predictive/<account>/<region>/<cluster>`, value
`decisions`) holding the newest `KEPT_DECISIONS`, newest first. Two copies of a run (a retry
while the first attempt still runs) can record at once, so a decision is written only over the
list it was added to, read again when another writer came in between.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.exceptions import FleetError
from fleet_shared.state_table import StateTable

KEPT_DECISIONS = 24
"""A day of hourly decisions."""
DECISIONS_TTL_SECONDS = 14 * 86400
RECORD_ATTEMPTS = 5
"""Reads and conditional writes before giving up: a run writes one decision per cluster, so
more than one other writer at a time means something else is wrong."""
_VALUE_NAME = "decisions"


def decisions_key(account_id: str, region: str, cluster: str) -> str:
    """The state key of a cluster's predictive decisions."""
    return f"predictive/{account_id}/{region}/{cluster}"


class DecisionNotRecordedError(FleetError):
    """Other writers kept replacing the cluster's decisions while this one was added."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"predictive decision not recorded under {key}: the decisions changed under each of "
            f"{RECORD_ATTEMPTS} attempts"
        )


def record_decision(state: StateTable, key: str, decision: dict[str, Any]) -> None:
    """Put `decision` first among the cluster's kept decisions, without losing one that another
    writer put first meanwhile; raises DecisionNotRecordedError when that happens every time."""
    for _ in range(RECORD_ATTEMPTS):
        read = state.get_versioned_value(key, _VALUE_NAME)
        kept = [] if read is None else list(read.value["decisions"])
        newest = {"decisions": [decision, *kept][:KEPT_DECISIONS]}
        if state.replace_value(
            key, _VALUE_NAME, newest, read=read, ttl_seconds=DECISIONS_TTL_SECONDS
        ):
            return
    raise DecisionNotRecordedError(key)


def recent_decisions(state: StateTable, key: str) -> list[dict[str, Any]]:
    """The cluster's kept decisions, newest first (empty when none was recorded)."""
    stored = state.get_value(key, _VALUE_NAME)
    return [] if stored is None else list(stored["decisions"])
