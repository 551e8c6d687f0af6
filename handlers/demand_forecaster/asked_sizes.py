"""The node group sizes a predictive run asks the scaler for, kept before it asks.

The scaler carries out one request under a request id and refuses another under it ("request_id
reused"), and every attempt of an hourly run asks under the run's id (`predictive-<hour>`): a
retry whose forecast now wants other sizes must ask those of the run's first attempt again. The
first attempt keeps them beside the cluster's decisions (key
`predictive/<account>/<region>/<cluster>`, value `asked/<request id>`) with a conditional write
before it asks, so a retry, or a copy of the run at the same time, finds them even when the
first attempt's decision was never recorded: it died or ran out of time after the scaler acted,
or the state table refused the decision. Kept as long as a run's attempts are accepted
(`fleet_shared.scheduled_runs.RUN_MAX_AGE`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.scheduled_runs import RUN_MAX_AGE

if TYPE_CHECKING:
    from fleet_shared.state_table import StateTable

ASKED_TTL_SECONDS = int(RUN_MAX_AGE.total_seconds())
"""How long a run's asked sizes are kept: a retry whose `run` is older is refused."""


def asked_value_name(request_id: str) -> str:
    """The name of the value keeping what the run asks under `request_id`."""
    return f"asked/{request_id}"


def first_asked(
    state: StateTable, key: str, request_id: str, node_groups: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """Keep `node_groups` (each with its `name` and `nodes_wanted`) under `key` as what the run
    asks under `request_id`, unless an earlier attempt of the run kept its own: those node
    groups then; None when `node_groups` were kept. Raises the state table's errors, and
    UnreadableStateValueError for kept sizes that are no list of node groups with their sizes
    (a hand edit)."""
    name = asked_value_name(request_id)
    if state.replace_value(
        key, name, {"node_groups": node_groups}, read=None, ttl_seconds=ASKED_TTL_SECONDS
    ):
        return None
    kept = state.get_value(key, name)
    if kept is None:
        # Expired since the write was refused: a day has passed, no retry of the run comes now.
        return None
    groups = kept.get("node_groups")
    if not isinstance(groups, list) or not groups or not all(map(_names_its_size, groups)):
        raise UnreadableStateValueError(
            key, name, "`node_groups` is not a list of node groups with their sizes"
        )
    return groups


def _names_its_size(group: object) -> bool:
    """Whether `group`, a kept node group, names itself and the size it asked for."""
    if not isinstance(group, dict) or not isinstance(group.get("name"), str):
        return False
    size = group.get("nodes_wanted")
    return isinstance(size, int) and not isinstance(size, bool)
