"""What every check receives, and the shape of a check.

`ClusterContext` holds one cluster's clients (already in the member account), its inventory entry,
the thresholds, the state table and the invocation's deadline. The node groups are listed and
described once per run and shared by the node group and capacity checks, so a run costs one
DescribeNodegroup per group. ListNodegroups asks a next page only within
`cluster_time.LISTING_SECONDS` of its first follow-up, else both checks fail alone, naming the
listing cut short: a member (or a proxy) answering page after page under new tokens held the
cluster until its member calls were refused for lack of time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import (
    AWS_CALL_ERRORS,
    UnreadableAnswerError,
    answer_field,
    call_error_text,
)
from fleet_shared.clock import Clock
from fleet_shared.exceptions import PagesCutShortError
from fleet_shared.handler import Invocation
from fleet_shared.inventory import Cluster
from fleet_shared.node_group_listings import auto_scaling_group_names, node_group_names
from fleet_shared.state_table import StateTable
from handlers.health_monitor.cluster_time import next_request_allowed
from handlers.health_monitor.environment import HealthEnvironment
from handlers.health_monitor.exceptions import TooLittleTimeError
from handlers.health_monitor.probe import Probe
from handlers.health_monitor.report import CheckResult


@dataclass(frozen=True)
class ClusterTarget:
    """A cluster of the inventory and where it lives."""

    account_id: str
    region: str
    cluster: Cluster

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self.cluster.name

    @property
    def label(self) -> str:
        """`<account>/<region>/<cluster>`: how reports, alerts and state keys name the cluster."""
        return f"{self.account_id}/{self.region}/{self.cluster.name}"


@dataclass(frozen=True)
class NodeGroupState:
    """A node group as EKS describes it, or the error that prevented describing it."""

    name: str
    description: dict[str, Any] | None
    error: str | None = None


class ClusterContext:
    """Everything a check needs for one cluster."""

    def __init__(
        self,
        target: ClusterTarget,
        *,
        client: Callable[[str], Any],
        environment: HealthEnvironment,
        state: StateTable,
        clock: Clock,
        probe: Probe,
        deadline: Invocation,
    ) -> None:
        """`client(service)` returns a client of that service in the cluster's account/region;
        `deadline` is the invocation's, which a check asks before work that may take long."""
        self.target = target
        self.client = client
        self.environment = environment
        self.state = state
        self.clock = clock
        self.probe = probe
        self.deadline = deadline
        self.not_probed: list[str] = []
        """The endpoints the endpoint check left for the next run for lack of time."""

    @property
    def cluster(self) -> dict[str, Any] | None:
        """DescribeCluster's answer, or None when EKS has no such cluster; raises the call's
        error, the same one to every check that asks."""
        description, error = self._described_cluster
        if error is not None:
            raise error
        return description

    @functools.cached_property
    def _described_cluster(
        self,
    ) -> tuple[dict[str, Any] | None, Exception | None]:
        # The error is kept too: three checks ask, and an EKS endpoint that does not answer would
        # otherwise cost each of them `sessions.MEMBER_CALL_SECONDS` again.
        try:
            answer = self.client("eks").describe_cluster(name=self.target.name)
            call = f"DescribeCluster of {self.target.name}"
            return dict(answer_field(answer, call, "cluster")), None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None, None
            return None, error
        except AWS_CALL_ERRORS as error:
            return None, error

    @property
    def node_groups(self) -> list[NodeGroupState]:
        """The cluster's node groups as EKS has them, each described (or its error); none when
        the cluster itself is missing (the cluster check reports that). Raises the error of
        DescribeCluster or ListNodegroups (a listing cut short, or a call refused for lack of time,
        too), the same one to every check that asks."""
        described, error = self._described_node_groups
        if error is not None:
            raise error
        return described

    @functools.cached_property
    def _described_node_groups(
        self,
    ) -> tuple[list[NodeGroupState], Exception | None]:
        try:
            return self._list_and_describe_node_groups(), None
        # A listing cut short, or a call refused for lack of time, is kept too: asked again, the
        # capacity check would list and describe the node groups once more, and another
        # LISTING_SECONDS go by before a cut short listing failed it.
        except (PagesCutShortError, TooLittleTimeError, *AWS_CALL_ERRORS) as error:
            return [], error

    def _list_and_describe_node_groups(self) -> list[NodeGroupState]:
        if self.cluster is None:
            return []
        eks = self.client("eks")
        # A listing EKS would not send fails the node group checks, rather than pass for a
        # cluster without node groups, which would report the inventory's groups missing.
        names = node_group_names(
            eks, self.target.name, next_page_allowed=next_request_allowed(self.deadline)
        )
        states: list[NodeGroupState] = []
        for name in sorted(names):
            call = f"DescribeNodegroup of {name}"
            try:
                description = answer_field(
                    eks.describe_nodegroup(clusterName=self.target.name, nodegroupName=name),
                    call,
                    "nodegroup",
                )
                # What the node group and capacity checks read of it: a null or a number
                # there fails this node group alone, not every check of the cluster.
                health_issues(description, call)
                auto_scaling_group_names(description, call)
            except AWS_CALL_ERRORS as error:
                states.append(NodeGroupState(name, None, call_error_text(error)))
            else:
                states.append(NodeGroupState(name, description))
        return states


def health_issues(described: Mapping[str, Any], call: str) -> list[Mapping[str, Any]]:
    """The `health.issues` of a cluster or node group as `call` (DescribeCluster's `cluster`,
    DescribeNodegroup's `nodegroup`) described it; raises UnreadableAnswerError for an issue
    that is not an object, or a code, message or resource id that is not text. botocore hands a
    JSON answer's nulls among a list's items, and its text values, on unchecked: read as an
    issue, a null raised an AttributeError that failed every check of the cluster."""
    issues = (described.get("health") or {}).get("issues") or []
    if not all(_is_issue(issue) for issue in issues):
        raise UnreadableAnswerError(
            call,
            "an object with a text code, message and resourceIds for each health.issues",
            issues,
        )
    return list(issues)


def _is_issue(issue: object) -> bool:
    """Whether one of `health.issues` is an object whose code, message and resource ids, those
    it has, are text."""
    return (
        isinstance(issue, Mapping)
        and all(isinstance(issue.get(key, ""), str) for key in ("code", "message"))
        and all(isinstance(resource, str) for resource in issue.get("resourceIds") or [])
    )


@dataclass(frozen=True)
class Check:
    """A named health check: `run` returns one result per target it looked at."""

    name: str
    description: str
    run: Callable[[ClusterContext], list[CheckResult]]
