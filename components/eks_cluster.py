"""One member cluster: the pulumi-eks control plane, its node role and its managed node groups.
A cluster the stack file marks `existing` gets nothing here (its owner keeps it whole).

pulumi-eks components are multi-language ("remote") components: the engine constructs them
through the `eks` plugin, which needs an explicit `eks` provider when the stack disables default
providers, and the AWS resources inside take the member's AWS provider from the `providers` map
under the key "aws". Both are passed here, so every resource lands in the member account.

Security posture: API authentication mode (access entries, no aws-auth ConfigMap), all five
control-plane log types, Kubernetes secrets encrypted with a customer key that rotates, a private
API endpoint (public only for the configured CIDRs), nodes in private subnets, a node role with
only the managed policies nodes need, and EKS deletion protection unless the stack file turns it
off (DeleteCluster then fails, whatever asks for it: a renamed or removed entry, a replacement,
`pulumi destroy`).

The node groups ignore scaling changes: the fleet's scaler changes desired sizes at run time, and
`pulumi up` must not put them back.

The only access entry is the nodes'. The fleet's member roles get none: every function acts on
clusters through the EKS API (IAM: `components/member_permissions.py`), none through Kubernetes,
so a Kubernetes view of the cluster (pods, config maps) would be granted and never used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from components.naming import EKS_CLUSTER_SUFFIX, NODE_ROLE_SUFFIX
from components.settings import PROJECT, ClusterSettings, NodeGroupSettings

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")

# What worker nodes need: join the cluster, run the VPC CNI, pull images, and be reachable by
# Session Manager instead of SSH.
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)


@dataclass(frozen=True)
class EksClusterArgs:
    cluster: ClusterSettings
    partition: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    provider: aws.Provider
    eks_provider: eks.Provider


def node_role_trust_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        indent=2,
    )


class EksCluster(pulumi.ComponentResource):
    """An EKS cluster with managed node groups, built on pulumi-eks in one member account."""

    cluster: eks.Cluster
    node_role: aws.iam.Role
    node_groups: dict[str, eks.ManagedNodeGroup]

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:eks:EksCluster", name, None, opts)
        settings = args.cluster
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        remote = pulumi.ResourceOptions(
            parent=self, provider=args.eks_provider, providers={"aws": args.provider}
        )

        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Encrypts Kubernetes secrets of EKS cluster {settings.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{PROJECT}/{settings.name}-eks-secrets",
            target_key_id=secrets_key.key_id,
            opts=child,
        )

        self.node_role = aws.iam.Role(
            f"{name}{NODE_ROLE_SUFFIX}",
            description=f"Worker nodes of EKS cluster {settings.name}",
            assume_role_policy=node_role_trust_policy(),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}{NODE_ROLE_SUFFIX}-{policy}",
                role=self.node_role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in NODE_MANAGED_POLICIES
        ]

        public_cidrs = list(settings.endpoint_public_access_cidrs)
        self.cluster = eks.Cluster(
            f"{name}{EKS_CLUSTER_SUFFIX}",
            name=settings.name,
            version=settings.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=args.private_subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=bool(public_cidrs),
            public_access_cidrs=public_cidrs or None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                "nodes": eks.AccessEntryArgs(
                    principal_arn=self.node_role.arn, type=eks.AccessEntryType.EC2_LINUX
                ),
            },
            instance_roles=[self.node_role],
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            encryption_config_key_arn=secrets_key.arn,
            skip_default_node_group=True,
            create_oidc_provider=True,
            deletion_protection=settings.deletion_protection,
            opts=pulumi.ResourceOptions.merge(
                remote, pulumi.ResourceOptions(depends_on=attachments)
            ),
        )

        self.node_groups = {
            group.name: self._node_group(name, group, args, remote)
            for group in settings.node_groups
        }
        self.register_outputs(
            {
                "cluster_name": settings.name,
                "node_groups": list(self.node_groups),
                "node_role_arn": self.node_role.arn,
            }
        )

    def _node_group(
        self,
        name: str,
        group: NodeGroupSettings,
        args: EksClusterArgs,
        remote: pulumi.ResourceOptions,
    ) -> eks.ManagedNodeGroup:
        return eks.ManagedNodeGroup(
            f"{name}-{group.name}",
            cluster=self.cluster,
            node_group_name=group.name,
            node_role=self.node_role,
            capacity_type=group.capacity_type,
            instance_types=list(group.instance_types),
            labels=dict(group.labels),
            # The settings spell taint effects as the EKS API does (NO_SCHEDULE, ...).
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=taint.key, value=taint.value or None, effect=taint.effect
                )
                for taint in group.taints
            ],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min_size,
                desired_size=group.desired_size,
                max_size=group.max_size,
            ),
            disk_size=group.disk_size_gb,
            subnet_ids=args.private_subnet_ids,
            ignore_scaling_changes=True,
            opts=remote,
        )
