"""The managed node groups of a member cluster, as EKS describes them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.node_group_listings import node_group_capacity_type, node_group_names

_NOT_FOUND = "ResourceNotFoundException"


def described_node_groups(eks: Any, cluster: str) -> Iterator[dict[str, Any]]:
    """Each node group of `cluster` in name order, described one at a time (so a caller that
    stops early describes no more). A group deleted between the listing and its description is
    passed over: it no longer exists, and it must not stop the others. Raises
    UnreadableAnswerError for a description that is not the listed group's (`_checked`)."""
    for name in sorted(node_group_names(eks, cluster)):
        try:
            answer = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != _NOT_FOUND:
                raise
            continue
        call = f"DescribeNodegroup of {name}"
        yield _checked(answer_field(answer, call, "nodegroup"), name, call)


def _checked(group: object, name: str, call: str) -> dict[str, Any]:
    """The description `group` of node group `name` (DescribeNodegroup's `nodegroup`, answering
    `call`) with its name, capacity type and instance types as the callers read them: botocore
    hands a JSON answer's values and list items on unchecked, so a name missing or no text, a
    null among the types, would end the caller's invocation with a bare KeyError or
    AttributeError, and a capacity type EKS does not have was taken for one that is not
    ON_DEMAND (SPOT, in the mix). Raises UnreadableAnswerError for those, showing the value
    only. `capacityType` is always set in what is returned: EKS's default, ON_DEMAND, when the
    answer leaves it out."""
    if not isinstance(group, Mapping):
        raise UnreadableAnswerError(call, "an object as nodegroup", group)
    if group.get("nodegroupName") != name:
        raise UnreadableAnswerError(
            call, f"nodegroup.nodegroupName {name}", group.get("nodegroupName")
        )
    capacity_type = node_group_capacity_type(group, call, "ON_DEMAND")
    types = group.get("instanceTypes") or []
    if not isinstance(types, list) or not all(isinstance(kind, str) for kind in types):
        raise UnreadableAnswerError(call, "a text name for each of nodegroup.instanceTypes", types)
    return {**group, "capacityType": capacity_type}
