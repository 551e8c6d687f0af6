"""The scaler's side of autoscaler-managed node groups (the detection is
`fleet_shared.node_group_autoscalers`, shared with spot_optimizer's on-demand fallback).

Cluster Autoscaler (where the stack file declares it) or Karpenter sets a node group's size from
pending pods, so a scheduled change would be undone or would fight it: the scaler leaves such a
node group alone unless the request says `"override_autoscaler": true` for it (recorded with the
change).
"""

from __future__ import annotations

from typing import Any

from fleet_shared.aws_answers import answer_field
from fleet_shared.node_group_autoscalers import (
    ManagingAutoscaler,
    autoscaler_of_described,
    cluster_tags,
)
from handlers.eks_scaler.models import Status, node_group_result


def managing_autoscaler(
    eks: Any, autoscaling: Any, cluster: str, node_group: str, *, declared: str
) -> ManagingAutoscaler | None:
    """The autoscalers that manage the node group (`declared`: the cluster's autoscaler in the
    inventory), read from the member account; None when there are none."""
    tags_of_cluster = cluster_tags(eks, cluster)
    described = answer_field(
        eks.describe_nodegroup(clusterName=cluster, nodegroupName=node_group),
        f"DescribeNodegroup of {node_group}",
        "nodegroup",
    )
    return autoscaler_of_described(
        autoscaling, cluster, tags_of_cluster, described, declared=declared
    )


def left_alone_explanation(autoscaler: ManagingAutoscaler) -> str:
    """Why the scaler leaves the node group alone, in one line."""
    return (
        f"{autoscaler.described()}; scheduled changes are left to it (a request may say "
        '"override_autoscaler": true)'
    )


def autoscaler_result(name: str, autoscaler: ManagingAutoscaler) -> dict[str, Any]:
    """The result of a change skipped because an autoscaler manages the node group."""
    return node_group_result(
        name,
        Status.AUTOSCALER_MANAGED,
        left_alone_explanation(autoscaler),
        autoscaler=autoscaler.as_dict(),
    )
