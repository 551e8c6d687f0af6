"""Reading node groups in a member account, and saying in one line what a failed call meant.

Shared by `scaling` (the apply step) and `analysis`, so neither borrows from the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import answer_field, call_error_text, refusal_text
from fleet_shared.node_group_listings import (
    node_group_capacity_type,
    node_group_names,
    node_group_status,
)
from handlers.eks_scaler.sizing import Sizes


@dataclass(frozen=True)
class DescribedNodeGroup:
    """What DescribeNodegroup says about one node group."""

    sizes: Sizes
    status: str
    capacity_type: str


def describe_node_group(eks: Any, cluster: str, name: str) -> DescribedNodeGroup:
    """The node group's scaling config, status and capacity type; raises UnreadableAnswerError
    for an answer without the sizes, or with a status or capacity type EKS does not have (an
    unknown capacity type was taken for SPOT, a floor of 0 nodes; a status that is no text
    ended the run)."""
    call = f"DescribeNodegroup of {name}"
    answer = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)
    described = answer_field(answer, call, "nodegroup")
    return DescribedNodeGroup(
        sizes=Sizes(
            *(
                answer_field(answer, call, "nodegroup", "scalingConfig", size)
                for size in ("minSize", "desiredSize", "maxSize")
            )
        ),
        status=node_group_status(described, call, "ACTIVE"),
        capacity_type=node_group_capacity_type(described, call, "ON_DEMAND"),
    )


def list_node_groups(eks: Any, cluster: str) -> list[str]:
    """The names of every node group of `cluster` (`node_group_names`)."""
    return node_group_names(eks, cluster)


def describe_error(error: Exception) -> str:
    """An AWS error as `<code>: <message>` (`not found: ...` for a missing resource)."""
    if isinstance(error, ClientError):
        # A proxy's 4xx page becomes the whole message: cut and escaped, the wording kept.
        details = refusal_text(error)
        code = details.get("Code", "ClientError")
        if code == "ResourceNotFoundException":
            return f"not found: {details.get('Message', '')}".strip()
        return f"{code}: {details.get('Message', '')}".strip()
    # A ResponseParserError's message repeats the whole body botocore could not parse.
    return call_error_text(error)
