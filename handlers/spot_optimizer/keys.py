"""State-table keys of the optimizer's own records.

Interruptions are kept under their own keys, never under the node group's key of
fleet_shared.node_group_locks: a change recorded there starts the scaler's cooldown, and an
interruption is not a change of the node group's configuration.
"""

from __future__ import annotations


def zone_interruptions_key(account_id: str, region: str, instance_type: str, zone: str) -> str:
    """Interruptions of one instance type in one AZ (read by the interruption risk)."""
    return f"spot-interruptions/zone/{account_id}/{region}/{instance_type}/{zone}"


def node_group_interruptions_key(account_id: str, region: str, cluster: str, group: str) -> str:
    """Interruptions of one node group's instances (read by the hourly threshold)."""
    return f"spot-interruptions/nodegroup/{account_id}/{region}/{cluster}/{group}"


def instance_claim_key(account_id: str, region: str, instance_id: str) -> str:
    """The idempotent request of one instance's interruption warning (EventBridge may deliver it
    twice, and the platform retries a failed invocation)."""
    return f"spot-interruption/{account_id}/{region}/{instance_id}"


def fallback_claim_key(account_id: str, region: str, cluster: str, group: str) -> str:
    """At most one on-demand fallback per on-demand node group and claim period."""
    return f"spot-fallback/{account_id}/{region}/{cluster}/{group}"


def analysis_key(account_id: str, region: str, cluster: str, group: str) -> str:
    """Where analyze_fleet saves the latest analysis of a spot node group."""
    return f"spot-analysis/{account_id}/{region}/{cluster}/{group}"


LATEST_ANALYSIS = "latest"
"""Value name of the latest analysis under analysis_key."""
