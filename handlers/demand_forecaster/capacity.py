"""Allocatable CPU and memory per instance type and the live node groups of a cluster.

Allocatable vCPU of a node = vCPUs - kube-reserved CPU - system daemonsets, where kube-reserved is
the formula of the EKS optimised AMIs (awslabs/amazon-eks-ami, bootstrap `get_cpu_millicores_to_
reserve`): 6% of the first core, 1% of the second, 0.5% of the third and fourth, 0.25% of each
core above four; and `DAEMONSET_VCPU` covers the CPU requests of the daemonsets every EKS node runs
(aws-node 25m and kube-proxy 100m). A 2-vCPU node therefore offers 2 - 0.07 - 0.125 = 1.805
vCPU (90%), an 8-vCPU node 7.775 (97%). `allocatable_fraction` reports that ratio.

Allocatable memory of a node = memory - kube-reserved memory - the kubelet's hard eviction
threshold, again as the EKS optimised AMIs set them: 11 MiB per pod the node may run plus 255 MiB,
and `EVICTION_THRESHOLD_MIB` (memory.available 100Mi). The pods a node may run are those of the
VPC CNI: ENIs x (IPv4 addresses per ENI - 1) + 2 (an m5.2xlarge: 4 x 14 + 2 = 58, so 32768 -
893 - 100 = 31775 MiB).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ConnectionError as EndpointUnreachableError
from botocore.exceptions import HTTPClientError

from fleet_shared.aws_answers import (
    AWS_CALL_ERRORS,
    UnreadableAnswerError,
    answer_field,
    call_error_text,
)
from fleet_shared.inventory import Cluster, NodeGroup
from fleet_shared.node_group_listings import node_group_capacity_type
from fleet_shared.page_tokens import pages
from handlers.demand_forecaster.exceptions import NodeGroupReadsCutShortError

UNREACHABLE = (EndpointUnreachableError, HTTPClientError)
"""What botocore raises for an endpoint that was not reached or did not answer (connection
refused or timed out, no answer read) after every attempt. It fails the cluster at once: asking
it again per node group or instance type would wait as long each time and cost the fleet run the
time of the clusters after it."""

DAEMONSET_VCPU = 0.125
RESERVED_MIB_PER_POD = 11
RESERVED_MIB_BASE = 255
EVICTION_THRESHOLD_MIB = 100
DEFAULT_MAX_PODS = 110
"""The kubelet's default, for an instance type whose network limits EC2 does not report."""
_RESERVED_SHARE_BY_CORE = ((1, 0.06), (1, 0.01), (2, 0.005))
_RESERVED_SHARE_ABOVE_FOUR = 0.0025
_DESCRIBE_BATCH = 100
_DESCRIBE = "DescribeInstanceTypes"


@dataclass(frozen=True)
class InstanceCapacity:
    """CPU and memory of one instance type and what pods can use of them."""

    instance_type: str
    vcpus: int
    memory_mib: int
    max_pods: int = DEFAULT_MAX_PODS

    @property
    def allocatable_vcpu(self) -> float:
        """vCPUs left for workload pods (see the module docstring)."""
        return max(0.0, self.vcpus - kube_reserved_vcpu(self.vcpus) - DAEMONSET_VCPU)

    @property
    def allocatable_memory_mib(self) -> float:
        """Memory left for workload pods (see the module docstring)."""
        reserved = RESERVED_MIB_PER_POD * self.max_pods + RESERVED_MIB_BASE
        return max(0.0, float(self.memory_mib - reserved - EVICTION_THRESHOLD_MIB))

    @property
    def allocatable_fraction(self) -> float:
        """Allocatable vCPU as a share of the instance's vCPUs."""
        return self.allocatable_vcpu / self.vcpus if self.vcpus else 0.0


@dataclass(frozen=True)
class LiveNodeGroup:
    """A node group as EKS reports it now, with the floor the inventory sets and its
    `max_size` (the lower of EKS's maxSize and the stack file's)."""

    name: str
    capacity_type: str
    instance_types: tuple[str, ...]
    min_size: int
    max_size: int
    desired_size: int
    floor: int
    eks_max_size: int | None = None
    """EKS's maxSize as described, the most nodes the group can have now (None: unknown, as in
    a group built without EKS's answer; `max_size` stands for it)."""


def kube_reserved_vcpu(vcpus: int) -> float:
    """CPU the EKS AMI reserves for the kubelet and the container runtime."""
    reserved, remaining = 0.0, vcpus
    for cores, share in _RESERVED_SHARE_BY_CORE:
        used = min(cores, remaining)
        reserved += used * share
        remaining -= used
    return reserved + max(0, remaining) * _RESERVED_SHARE_ABOVE_FOUR


def instance_capacities(
    ec2: Any, instance_types: set[str]
) -> tuple[dict[str, InstanceCapacity], dict[str, str]]:
    """Capacity per instance type, and an error per type EC2 could not describe.

    One call per 100 types; when a call fails (an unknown type fails the whole call), each of
    its types is asked alone so one bad type does not hide the others. An endpoint that does not
    answer raises (`UNREACHABLE`).
    """
    capacities: dict[str, InstanceCapacity] = {}
    errors: dict[str, str] = {}
    ordered = sorted(instance_types)
    for offset in range(0, len(ordered), _DESCRIBE_BATCH):
        batch = ordered[offset : offset + _DESCRIBE_BATCH]
        try:
            described, refused = _describe(ec2, batch)
        except UNREACHABLE:
            raise
        except AWS_CALL_ERRORS:
            described, refused = {}, {}
            for instance_type in batch:
                try:
                    alone, alone_refused = _describe(ec2, [instance_type])
                except UNREACHABLE:
                    raise
                except AWS_CALL_ERRORS as error:
                    errors[instance_type] = call_error_text(error)
                else:
                    described.update(alone)
                    refused.update(alone_refused)
        capacities.update(described)
        errors.update(refused)
    for instance_type in ordered:
        if instance_type not in capacities and instance_type not in errors:
            errors[instance_type] = "not returned by DescribeInstanceTypes"
    return capacities, errors


def _describe(
    ec2: Any, instance_types: list[str]
) -> tuple[dict[str, InstanceCapacity], dict[str, str]]:
    """The capacity of each type EC2 describes, and why a type described with no room for pods
    is not one (sized on, 0 vCPUs gave nodes needed of -2**63 and 0 MiB divided by zero); raises
    `PageLimitError` for more pages than the types asked can fill."""
    found: dict[str, InstanceCapacity] = {}
    refused: dict[str, str] = {}
    request = {"InstanceTypes": instance_types}
    # EC2 describes the types a request names, at most 100, in pages of up to 100: a page past
    # one per type is an endpoint paging on under new tokens, which the fleet run would follow
    # until Lambda ended it, every cluster after this one left without its forecast.
    most_pages = len(instance_types) + 1
    for response in pages(ec2, _DESCRIBE, request, "NextToken", max_pages=most_pages):
        for item in response.get("InstanceTypes", []):
            # An item without one of these (a proxy's page in EC2's form) raised a bare KeyError
            # that ended the fleet run; UnreadableAnswerError fails its instance types alone.
            capacity = InstanceCapacity(
                instance_type=answer_field(item, _DESCRIBE, "InstanceType"),
                vcpus=int(answer_field(item, _DESCRIBE, "VCpuInfo", "DefaultVCpus")),
                memory_mib=int(answer_field(item, _DESCRIBE, "MemoryInfo", "SizeInMiB")),
                max_pods=_max_pods(item.get("NetworkInfo", {})),
            )
            problem = _no_room_for_pods(capacity)
            if problem is None:
                found[capacity.instance_type] = capacity
            else:
                refused[capacity.instance_type] = f"DescribeInstanceTypes answered {problem}"
    return found, refused


def _no_room_for_pods(capacity: InstanceCapacity) -> str | None:
    """What leaves `capacity` no allocatable vCPU or memory, or None."""
    if capacity.allocatable_vcpu <= 0:
        return f"VCpuInfo.DefaultVCpus {capacity.vcpus}: no allocatable vCPU"
    if capacity.allocatable_memory_mib <= 0:
        return (
            f"MemoryInfo.SizeInMiB {capacity.memory_mib}: no allocatable memory for "
            f"{capacity.max_pods} pods"
        )
    return None


def _max_pods(network: dict[str, Any]) -> int:
    """Pods the VPC CNI can give an address on a node with this network info."""
    interfaces = network.get("MaximumNetworkInterfaces")
    addresses = network.get("Ipv4AddressesPerInterface")
    if not interfaces or not addresses:
        return DEFAULT_MAX_PODS
    return int(interfaces) * (int(addresses) - 1) + 2


def live_node_groups(
    eks: Any, cluster: Cluster, next_call_allowed: Callable[[], bool] | None = None
) -> tuple[list[LiveNodeGroup], dict[str, str]]:
    """The inventory's node groups of `cluster` as EKS describes them now, and an error per node
    group EKS could not describe (that group is left out; the others go on). An endpoint that
    does not answer raises (`UNREACHABLE`). With `next_call_allowed`, a node group after the
    first is described only while it answers True, else NodeGroupReadsCutShortError: an
    endpoint answering each of up to 100 calls just within its timeouts took longer than the
    fleet run has, which Lambda then ended inside this cluster."""
    groups: list[LiveNodeGroup] = []
    errors: dict[str, str] = {}
    for index, declared in enumerate(cluster.node_groups):
        if index > 0 and next_call_allowed is not None and not next_call_allowed():
            raise NodeGroupReadsCutShortError(cluster.name, index, len(cluster.node_groups))
        call = f"DescribeNodegroup of {declared.name}"
        try:
            described = answer_field(
                eks.describe_nodegroup(clusterName=cluster.name, nodegroupName=declared.name),
                call,
                "nodegroup",
            )
            groups.append(_live_node_group(described, declared, call))
        except UNREACHABLE:
            raise
        except AWS_CALL_ERRORS as error:
            errors[declared.name] = call_error_text(error)
    return groups, errors


def _live_node_group(described: Mapping[str, Any], declared: NodeGroup, call: str) -> LiveNodeGroup:
    """The node group EKS described as `described` (DescribeNodegroup's `nodegroup`), what it
    leaves out taken from `declared`. botocore's parser converts the sizes (or refuses them) but
    hands text values on unchecked: a null among the instance types raised a bare TypeError that
    ended the fleet run, and a capacity type EKS does not have went into the forecast as it
    came; UnreadableAnswerError names the field instead."""
    types = described.get("instanceTypes") or list(declared.instance_types)
    if not all(isinstance(kind, str) for kind in types):
        raise UnreadableAnswerError(call, "a text name for each of nodegroup.instanceTypes", types)
    scaling = described.get("scalingConfig", {})
    eks_max_size = int(scaling.get("maxSize", declared.max_size))
    return LiveNodeGroup(
        name=declared.name,
        capacity_type=node_group_capacity_type(described, call, declared.capacity_type),
        instance_types=tuple(types),
        min_size=int(scaling.get("minSize", declared.min_size)),
        # The stack file's max_size bounds the scaler too (its `Limits`): EKS's maxSize counts
        # only when lower (not yet raised by `pulumi up`).
        max_size=min(eks_max_size, declared.max_size),
        desired_size=int(scaling.get("desiredSize", declared.desired_size)),
        floor=declared.floor,
        eks_max_size=eks_max_size,
    )
