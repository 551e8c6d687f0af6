"""Whether the stack file declares a node group: the scaler changes only the node groups the fleet
inventory lists under the request's account, region and cluster.

The member role (components/member_permissions.py) lets the scaler update the node groups of the
declared clusters only, but any node group of theirs: a typo'd or foreign name in a schedule
payload, an HTTP request or another function's request would otherwise be scaled with no floor
or max_size from the stack file (the defaults and EKS's maxSize instead). The scaler asks this
before the calendar and the node group lock, so a refusal reads and changes nothing.

Without an inventory (DATA_BUCKET_NAME unset, never so as deployed: every function gets the data
bucket) nothing is declared and nothing refused: that mode runs on default floors and EKS's
maxSize by design. An inventory that cannot be read refuses every change before this
(actions.py): its floors and ceilings are unknown.
"""

from __future__ import annotations

from fleet_shared.inventory import FleetInventory
from handlers.eks_scaler.models import ScalerEvent

ONLY_DECLARED = "the scaler changes declared node groups only"


def undeclared_refusal(
    event: ScalerEvent, node_group: str, inventory: FleetInventory | None
) -> str | None:
    """Why the scaler must not change `node_group` of the event's cluster: neither the cluster
    nor the node group is declared in the stack file; None when it is (or there is no
    inventory to ask)."""
    if inventory is None:
        return None
    cluster = inventory.find_cluster(event.account_id, event.region, event.cluster)
    if cluster is None:
        return (
            f"node group {node_group} is not scaled: cluster {event.cluster} is not declared in "
            f"the stack file for account {event.account_id} in {event.region}; {ONLY_DECLARED}"
        )
    if cluster.node_group(node_group) is None:
        return (
            f"node group {node_group} is not declared in the stack file for cluster "
            f"{event.cluster} ({event.account_id}, {event.region}); {ONLY_DECLARED}"
        )
    return None
