"""Errors of the eks_scaler."""

from __future__ import annotations

from typing import Any

from fleet_shared.aws_answers import call_error_text
from fleet_shared.exceptions import FleetError
from fleet_shared.validation_errors import cut_echo


class ScheduledRunUnfinishedError(Exception):
    """A cluster schedule's run left node groups `locked`, `updating` or `error` (or, a
    scale-down, held by the cooldown after what it could wait), after doing and announcing the
    rest. Deliberately not a `FleetError`: the skeleton lets it fail the invocation,
    so the platform retries the run (which finds the finished node groups at their target) instead
    of the node group keeping its size through the night or the working day unnoticed; after the
    last retry the dead-letter queue and the function's error alarm tell people."""

    def __init__(self, action: str, cluster: str, unfinished: list[dict[str, Any]]) -> None:
        self.action = action
        self.cluster = cluster
        self.unfinished = unfinished
        groups = "; ".join(
            f"{item['nodegroup']}: {item['status']} ({cut_echo(str(item.get('reason')))})"
            for item in unfinished
        )
        super().__init__(f"scheduled {action} of {cluster} left node groups unfinished: {groups}")


class UpdateAnswerLostError(FleetError):
    """UpdateNodegroupConfig failed after one of its attempts reached EKS and got no answer (a
    read timeout, a connection closed before the answer) or a server failure (HTTP 500, 502,
    504): EKS may have made the change. The node
    group is an error, which leaves the request open; its intent and saved sizes are kept, so
    the retry that finds the node group at its target records and announces the change."""

    def __init__(self, nodegroup: str, cause: Exception) -> None:
        self.nodegroup = nodegroup
        self.cause = call_error_text(cause)
        super().__init__(
            f"{self.cause}: the update's answer was lost, so the change may have been made; a "
            "retry of the request records it if it finds the node group at its target"
        )


class UnreadableScalerChangeError(FleetError):
    """A change of the node group's history in the state table whose sizes the scaler reads
    (a temporary spot fallback raise's `previous` and `new` desired sizes) holds no node count.
    The table is the fleet's own, so only corruption or an older format writes one: it fails
    that node group alone, named, rather than the whole request or a size made of it."""

    def __init__(self, changed_at: str, problem: str) -> None:
        super().__init__(f"the node group's scaler history change at {changed_at}: {problem}")
