"""The managed node groups of a member cluster, as EKS describes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import answer_field
from fleet_shared.node_group_listings import node_group_names

_NOT_FOUND = "ResourceNotFoundException"


def described_node_groups(eks: Any, cluster: str) -> Iterator[dict[str, Any]]:
    """Each node group of `cluster` in name order, described one at a time (so a caller that
    stops early describes no more). A group deleted between the listing and its description is
    passed over: it no longer exists, and it must not stop the others."""
    for name in sorted(node_group_names(eks, cluster)):
        try:
            answer = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != _NOT_FOUND:
                raise
            continue
        yield dict(answer_field(answer, f"DescribeNodegroup of {name}", "nodegroup"))
