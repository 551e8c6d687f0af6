"""The record of a cluster's predictive scaling decisions, shared by the forecaster (which makes
and records them) and the scaler (whose `analyze` shows the last ones).

One state-table value per cluster (key `predictive/<account>/<region>/<cluster>`, value
`decisions`) holding the newest `KEPT_DECISIONS` (fewer when they would not fit in the item),
newest first. Two copies of a run (a retry while the first attempt still runs) can record at
once, so a decision is written only over the list it was added to, read again when another
writer came in between. That writer may have been the decision's own write, sent again by
botocore after its answer was lost: a decision found among the kept ones then is recorded. A
record that is no list of decisions (a hand edit, an older format) is UnreadableStateValueError
for both, naming it, and left as it is for a person or its expiry.
"""

from __future__ import annotations

import json
from typing import Any

from fleet_shared.exceptions import FleetError, UnreadableStateValueError
from fleet_shared.state_table import StateTable

KEPT_DECISIONS = 24
"""A day of hourly decisions."""
DECISIONS_TTL_SECONDS = 14 * 86400
DECISIONS_MAX_BYTES = 300_000
"""What the kept decisions may take: a DynamoDB item holds 400 KB, and a cluster with dozens of
node groups makes decisions of 20 KB, so fewer than KEPT_DECISIONS of them are kept then."""
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
    as_stored = _as_stored(decision)
    for attempt in range(RECORD_ATTEMPTS):
        read = state.get_versioned_value(key, _VALUE_NAME)
        kept = [] if read is None else _kept(key, read.value)
        if attempt > 0 and any(_as_stored(other) == as_stored for other in kept):
            # The write that failed its condition was this one's own, landed before botocore
            # sent it again (its answer lost): adding it again would record the decision twice.
            return
        newest = {"decisions": _fitting([decision, *kept][:KEPT_DECISIONS])}
        if state.replace_value(
            key, _VALUE_NAME, newest, read=read, ttl_seconds=DECISIONS_TTL_SECONDS
        ):
            return
    raise DecisionNotRecordedError(key)


def _as_stored(decision: dict[str, Any]) -> str:
    """`decision` as JSON text, the same for a decision and its copy read back."""
    return json.dumps(decision, sort_keys=True, separators=(",", ":"))


def _fitting(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest of `decisions` (the first one always) whose JSON stays within
    DECISIONS_MAX_BYTES."""
    sizes = [len(json.dumps(decision, separators=(",", ":")).encode()) for decision in decisions]
    count, total = 1, sizes[0]
    while count < len(decisions) and total + sizes[count] <= DECISIONS_MAX_BYTES:
        total += sizes[count]
        count += 1
    return decisions[:count]


def recent_decisions(state: StateTable, key: str) -> list[dict[str, Any]]:
    """The cluster's kept decisions, newest first (empty when none was recorded); raises
    UnreadableStateValueError for a record that is no list of decisions."""
    stored = state.get_value(key, _VALUE_NAME)
    return [] if stored is None else _kept(key, stored)


def _kept(key: str, stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions of the record `stored` under `key`."""
    decisions = stored.get("decisions")
    if not isinstance(decisions, list) or not all(isinstance(item, dict) for item in decisions):
        raise UnreadableStateValueError(key, _VALUE_NAME, "`decisions` is not a list of objects")
    return list(decisions)
