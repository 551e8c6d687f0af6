"""The record of a cluster's predictive scaling decisions, shared by the forecaster (which makes
and records them) and the scaler (whose `analyze` shows the last ones).

One state-table value per cluster (key `predictive/<account>/<region>/<cluster>`, value
`decisions`) holding the newest `KEPT_DECISIONS`, newest first: one hourly run writes one
decision per cluster, so a read-modify-write without a lock is enough.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.state_table import StateTable

KEPT_DECISIONS = 24
"""A day of hourly decisions."""
DECISIONS_TTL_SECONDS = 14 * 86400
_VALUE_NAME = "decisions"


def decisions_key(account_id: str, region: str, cluster: str) -> str:
    """The state key of a cluster's predictive decisions."""
    return f"predictive/{account_id}/{region}/{cluster}"


def record_decision(state: StateTable, key: str, decision: dict[str, Any]) -> None:
    """Put `decision` first among the cluster's kept decisions."""
    kept = recent_decisions(state, key)
    newest = [decision, *kept][:KEPT_DECISIONS]
    state.put_value(key, _VALUE_NAME, {"decisions": newest}, ttl_seconds=DECISIONS_TTL_SECONDS)


def recent_decisions(state: StateTable, key: str) -> list[dict[str, Any]]:
    """The cluster's kept decisions, newest first (empty when none was recorded)."""
    stored = state.get_value(key, _VALUE_NAME)
    return [] if stored is None else list(stored["decisions"])
