"""Everything the fleet creates in one member account: access, event forwarding and the clusters
it creates (an existing cluster gets nothing: the member roles reach it through the EKS API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from catalog.model import FunctionSpec
from components.eks_cluster import EksCluster, EksClusterArgs
from components.event_forwarding import (
    EventForwarding,
    EventForwardingArgs,
    forwarded_event_rules,
)
from components.member_access import MemberAccess, MemberAccessArgs
from components.member_permissions import DeclaredCluster
from components.naming import member_events_bus_arn, partition_of
from components.network import AccountNetwork
from components.settings import HubSettings, MemberSettings
from fleet_shared.cleanup_policy import CleanupPolicy


@dataclass(frozen=True)
class MemberAccountArgs:
    member: MemberSettings
    hub: HubSettings
    stack: str
    # The stack's cleanup policy (MemberAccessArgs.cleanup_policy).
    cleanup_policy: CleanupPolicy
    functions: Sequence[FunctionSpec]
    # Per region of the member, in the member's region order.
    providers: Mapping[str, aws.Provider]
    networks: Mapping[str, AccountNetwork]
    # The hub's inventory object, which the member's event forwarding waits for
    # (`EventForwardingArgs.inventory`).
    inventory: pulumi.Resource


class MemberAccount(pulumi.ComponentResource):
    """Member roles and one forwarding role per account; rules and created clusters per region."""

    access: MemberAccess
    forwarding: EventForwarding
    clusters: dict[str, EksCluster]

    def __init__(
        self, name: str, args: MemberAccountArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:member:MemberAccount", name, None, opts)
        member = args.member
        partition = partition_of(member.deploy_role_arn)
        first_region_provider = args.providers[member.regions[0]]
        self.access = MemberAccess(
            f"{name}-access",
            MemberAccessArgs(
                stack=args.stack,
                partition=partition,
                member_account_id=member.account_id,
                hub_account_id=args.hub.account_id,
                functions=args.functions,
                clusters=[
                    DeclaredCluster(
                        member.cluster_region(cluster),
                        cluster.name,
                        tuple(group.name for group in cluster.node_groups),
                    )
                    for cluster in member.clusters
                ],
                cleanup_policy=args.cleanup_policy,
                provider=first_region_provider,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.forwarding = EventForwarding(
            f"{name}-events",
            EventForwardingArgs(
                stack=args.stack,
                member_account_id=member.account_id,
                hub_bus_arn=member_events_bus_arn(
                    partition_of(args.hub.deploy_role_arn),
                    args.hub.region,
                    args.hub.account_id,
                    args.stack,
                ),
                rules=tuple(forwarded_event_rules(args.functions)),
                providers={region: args.providers[region] for region in member.regions},
                inventory=args.inventory,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.clusters = {}
        created = [cluster for cluster in member.clusters if not cluster.existing]
        if created:
            # The eks plugin's own provider has no settings; the AWS provider decides the
            # account. A member with existing clusters only needs no eks plugin at all.
            eks_provider = eks.Provider(f"{name}-eks", opts=pulumi.ResourceOptions(parent=self))
            for cluster in created:
                region = member.cluster_region(cluster)
                network = args.networks[region]
                self.clusters[cluster.name] = EksCluster(
                    f"{name}-{cluster.name}",
                    EksClusterArgs(
                        cluster=cluster,
                        partition=partition,
                        vpc_id=network.vpc_id,
                        private_subnet_ids=network.private_subnet_ids,
                        provider=args.providers[region],
                        eks_provider=eks_provider,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.register_outputs(
            {
                "member_role_names": {
                    function: role.name for function, role in self.access.roles.items()
                },
                "clusters": sorted(cluster.name for cluster in member.clusters),
            }
        )
