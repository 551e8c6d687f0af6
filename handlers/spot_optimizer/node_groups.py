"""The managed node groups of a member cluster, as EKS describes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import answer_field

_NOT_FOUND = "ResourceNotFoundException"


def described_node_groups(eks: Any, cluster: str) -> Iterator[dict[str, Any]]:
    """Each node group of `cluster` in name order, described one at a time (so a caller that
    stops early describes no more). A group deleted between the listing and its description is
    passed over: it no longer exists, and it must not stop the others."""
    names: list[str] = []
    for page in eks.get_paginator("list_nodegroups").paginate(clusterName=cluster):
        # EKS lists `nodegroups` in every page, empty or not: a page without it is not its
        # answer (a proxy's), which must not pass for a cluster without node groups.
        names.extend(answer_field(page, f"ListNodegroups of {cluster}", "nodegroups"))
    for name in sorted(names):
        try:
            answer = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != _NOT_FOUND:
                raise
            continue
        yield dict(answer_field(answer, f"DescribeNodegroup of {name}", "nodegroup"))
