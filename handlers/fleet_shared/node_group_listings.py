"""Reading EKS's node group names, and a node group's Auto Scaling groups, capacity type and
status, as EKS sends them.

ListNodegroups lists each node group by its name, and DescribeNodegroup a node group's Auto
Scaling groups as objects and its capacity type and status as one of EKS's enum values. botocore
hands a (rest-)JSON answer's text and list items on unchecked, enum values included, so a null or
a number among them, or a value EKS does not have, passes its parser: sorted, compared or read by
name, one ended the caller's whole run with a bare `TypeError` or `AttributeError`, past the
per-cluster and per-node-group errors that take `AWS_CALL_ERRORS`, and an unknown capacity type
was taken for SPOT (a floor of 0 nodes). The readers here raise `UnreadableAnswerError` instead,
so such an answer fails its cluster or node group alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.page_tokens import pages

CAPACITY_TYPES = ("ON_DEMAND", "SPOT", "CAPACITY_BLOCK")
"""DescribeNodegroup's `capacityType` values (EKS API reference, `CapacityTypes`)."""
NODE_GROUP_STATUSES = (
    "CREATING",
    "ACTIVE",
    "UPDATING",
    "DELETING",
    "CREATE_FAILED",
    "DELETE_FAILED",
    "DEGRADED",
)
"""DescribeNodegroup's `status` values (EKS API reference, `NodegroupStatus`)."""


def node_group_names(
    eks: Any, cluster: str, *, next_page_allowed: Callable[[], bool] | None = None
) -> list[str]:
    """The name of every node group of `cluster` (all ListNodegroups pages); raises
    UnreadableAnswerError for a page without `nodegroups` (EKS lists it in every page: a proxy's
    page must not pass for a cluster without node groups) or for a name that is not text, and
    RepeatedPageTokenError (a BotoCoreError) for a token already followed: boto3's paginator
    refuses only one answered twice in a row, and followed two in turn until Lambda ended the
    run. With `next_page_allowed`, a next page only while it answers True, else
    PagesCutShortError (new tokens, each never seen, are not refused otherwise)."""
    call = f"ListNodegroups of {cluster}"
    names: list[Any] = []
    listing = pages(
        eks,
        "ListNodegroups",
        {"clusterName": cluster},
        "nextToken",
        next_page_allowed=next_page_allowed,
    )
    for page in listing:
        names.extend(answer_field(page, call, "nodegroups"))
    if not all(isinstance(name, str) for name in names):
        raise UnreadableAnswerError(call, "a text name for each of nodegroups", names)
    return names


def auto_scaling_group_names(node_group: Mapping[str, Any], call: str) -> list[str]:
    """The names of the Auto Scaling groups of `node_group` (the `nodegroup` of the
    DescribeNodegroup answer `call` names), a group listed without a name left out; raises
    UnreadableAnswerError for a group that is not an object or whose name is not text."""
    listed = (node_group.get("resources") or {}).get("autoScalingGroups", [])
    if not all(
        isinstance(group, Mapping) and isinstance(group.get("name", ""), str) for group in listed
    ):
        raise UnreadableAnswerError(
            call, "an object with a text name for each resources.autoScalingGroups", listed
        )
    return [group["name"] for group in listed if group.get("name")]


def node_group_capacity_type(node_group: Mapping[str, Any], call: str, default: str) -> str:
    """The `capacityType` of `node_group` (the `nodegroup` of the DescribeNodegroup answer `call`
    names), `default` when the answer leaves it out; raises UnreadableAnswerError naming the
    field for a value not of CAPACITY_TYPES."""
    return _one_of(node_group, call, "capacityType", CAPACITY_TYPES, default)


def node_group_status(node_group: Mapping[str, Any], call: str, default: str) -> str:
    """The `status` of `node_group` (as `node_group_capacity_type`), one of
    NODE_GROUP_STATUSES."""
    return _one_of(node_group, call, "status", NODE_GROUP_STATUSES, default)


def _one_of(
    node_group: Mapping[str, Any], call: str, field: str, values: tuple[str, ...], default: str
) -> str:
    value = node_group.get(field, default)
    if value not in values:
        # A list or an object is not hashable, but `in` a tuple compares it by equality.
        raise UnreadableAnswerError(
            call, f"a nodegroup.{field} of {', '.join(values[:-1])} or {values[-1]}", value
        )
    return value
