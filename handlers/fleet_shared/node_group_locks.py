"""One definition of the state-table names that guard a managed node group.

The eks_scaler and the spot_optimizer both change node group sizes. They must take the SAME lock
before a change and record the change under the SAME state key, so that one never races the
other and the scaler's cooldown also counts the optimizer's changes. Both build the names here.
"""

from __future__ import annotations

NODE_GROUP_LOCK_LEASE_SECONDS = 120
"""Lease of a node group lock: longer than one describe + update + record, shorter than a retry
of the schedule, so a crashed holder blocks the node group for two minutes at most."""

SAVED_SIZES_NAME = "previous_sizes"
"""Name of the saved value holding the sizes before the last scale-down (see put_value)."""

SPOT_FALLBACK_ACTION = "spot_fallback"
"""The `action` of the spot optimizer's on-demand +1 in a node group's change record."""

TEMPORARY_CHANGE_FIELD = "temporary"
"""A change record field, true for a change meant to last only until the cluster's next scheduled
size (the spot optimizer's +1): the scaler's scale-down does not save it as the size to restore."""


def node_group_key(account_id: str, region: str, cluster: str, node_group: str) -> str:
    """The state key of a node group: its change history, last change (cooldown) and saved sizes."""
    return f"nodegroup/{account_id}/{region}/{cluster}/{node_group}"


def node_group_lock_name(account_id: str, region: str, cluster: str, node_group: str) -> str:
    """The lock taken by anyone who changes the node group's scaling configuration."""
    return node_group_key(account_id, region, cluster, node_group)


def node_group_resource(account_id: str, region: str, cluster: str, node_group: str) -> str:
    """How alerts name a node group (`resource` of fleet_shared.alerts.Alert)."""
    return f"{account_id}/{region}/{cluster}/{node_group}"
