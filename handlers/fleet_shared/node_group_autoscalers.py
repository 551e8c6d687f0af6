"""Whether Cluster Autoscaler or Karpenter manages a node group: read by every function that
changes node group sizes (eks_scaler, spot_optimizer's on-demand fallback), so that neither
fights an autoscaler the other leaves alone.

Karpenter is recognised by its tags: it finds its cluster by `karpenter.sh/discovery` and labels
what it provisions with `karpenter.sh/nodepool`, on the cluster or the node group. Cluster
Autoscaler is not recognisable from AWS: its auto-discovery takes the Auto Scaling groups tagged
with both `k8s.io/cluster-autoscaler/enabled` and `k8s.io/cluster-autoscaler/<cluster>`, and EKS
puts both on every managed node group's group whether or not Cluster Autoscaler runs. So it
counts only where the stack file declares it (`autoscaler: cluster-autoscaler` on the cluster,
carried in the inventory); its tags are then the evidence of which groups it discovers (removing
`enabled` takes a group out).
Either one sets the node group's size from pending pods, so a change from outside is undone or
fights it. Reading the tags needs DescribeCluster, DescribeNodegroup and autoscaling
DescribeTags in the member account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet_shared.aws_answers import answer_field
from fleet_shared.node_group_listings import auto_scaling_group_names

CLUSTER_AUTOSCALER = "cluster-autoscaler"
KARPENTER = "karpenter"
CLUSTER_AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler/"
KARPENTER_TAGS = ("karpenter.sh/discovery", "karpenter.sh/nodepool")


@dataclass(frozen=True)
class ManagingAutoscaler:
    """The autoscalers that manage a node group, and the tags that say so."""

    kinds: tuple[str, ...]
    evidence: tuple[str, ...]
    """One line per tag found, naming the resource that carries it."""

    def as_dict(self) -> dict[str, Any]:
        """How results and change records show it."""
        return {"kinds": list(self.kinds), "evidence": list(self.evidence)}

    def described(self) -> str:
        """Who manages the node group and the tags that say so, in one line."""
        return f"managed by {' and '.join(self.kinds)} ({'; '.join(self.evidence)})"


def cluster_tags(eks: Any, cluster: str) -> dict[str, str]:
    """The tags of `cluster` (DescribeCluster), where Karpenter's discovery tag may be."""
    described = answer_field(
        eks.describe_cluster(name=cluster), f"DescribeCluster of {cluster}", "cluster"
    )
    return dict(described.get("tags") or {})


def autoscaler_of_described(
    autoscaling: Any,
    cluster: str,
    tags_of_cluster: dict[str, str],
    node_group: dict[str, Any],
    *,
    declared: str,
) -> ManagingAutoscaler | None:
    """The autoscalers that manage `node_group` (DescribeNodegroup's `nodegroup`) of `cluster`
    (its tags `tags_of_cluster`): Karpenter by its tags on the cluster or node group; Cluster
    Autoscaler, when `declared` says it runs, by its tags on the node group's Auto Scaling
    groups. None when there are none."""
    found: dict[str, str] = {}
    name = node_group.get("nodegroupName")
    for owner, tags in (
        (f"cluster {cluster}", tags_of_cluster),
        (f"node group {name}", node_group.get("tags") or {}),
    ):
        for key in KARPENTER_TAGS:
            if key in tags:
                found[f"{owner}: tag {key}={tags[key]}"] = KARPENTER
    if declared != CLUSTER_AUTOSCALER:
        return _managing(found)
    # A group EKS would not list fails the node group as unreadable, rather than pass for one
    # Cluster Autoscaler does not discover.
    groups = auto_scaling_group_names(node_group, f"DescribeNodegroup of {name}")
    discovery_tags = {f"{CLUSTER_AUTOSCALER_TAG_PREFIX}{suffix}" for suffix in ("enabled", cluster)}
    tags_by_group: dict[str, dict[str, str]] = {}
    for tag in _auto_scaling_group_tags(autoscaling, groups):
        if tag["Key"] in discovery_tags:
            tags_by_group.setdefault(tag["ResourceId"], {})[tag["Key"]] = tag.get("Value", "")
    for group, tags in tags_by_group.items():
        # Auto-discovery needs both tags; a group without one of them is not Cluster Autoscaler's.
        if set(tags) == discovery_tags:
            listed = ", ".join(f"{key}={value}" for key, value in sorted(tags.items()))
            found[f"Auto Scaling group {group}: tags {listed}"] = CLUSTER_AUTOSCALER
    return _managing(found)


def declared_autoscaler(cluster: Any) -> str:
    """The autoscaler the inventory's cluster entry declares (`none` without an entry)."""
    return getattr(cluster, "autoscaler", "none") if cluster is not None else "none"


def _managing(found: dict[str, str]) -> ManagingAutoscaler | None:
    if not found:
        return None
    return ManagingAutoscaler(tuple(sorted(set(found.values()))), tuple(found))


def _auto_scaling_group_tags(autoscaling: Any, group_names: list[str]) -> list[dict[str, Any]]:
    if not group_names:
        return []
    tags: list[dict[str, Any]] = []
    pages = autoscaling.get_paginator("describe_tags").paginate(
        Filters=[{"Name": "auto-scaling-group", "Values": group_names}]
    )
    for page in pages:
        # Auto Scaling sends `Tags` in every page, empty or not: a page without it is not the
        # call's, and must not pass for a group no autoscaler manages.
        tags.extend(answer_field(page, "DescribeTags", "Tags"))
    return tags
