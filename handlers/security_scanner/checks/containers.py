"""EKS clusters: public endpoint open to the world, secrets encryption, audit logging."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError, answer_field
from handlers.security_scanner.checks._aws import described, listed
from handlers.security_scanner.registry import (
    FindingSeverity,
    Resource,
    ResourceSource,
    ScanScope,
    UnreadableListingItem,
    check,
    register_source,
)
from handlers.security_scanner.world_cidrs import world_sources

CLUSTER = "AwsEksCluster"


def _collect_clusters(scope: ScanScope) -> Iterator[Resource | UnreadableListingItem]:
    eks = scope.client("eks")

    def describe(name: str, arn: str) -> Resource:
        cluster = answer_field(eks.describe_cluster(name=name), "DescribeCluster", "cluster")
        call = f"DescribeCluster of {name}"
        described_arn = cluster.get("arn", arn)
        if not isinstance(described_arn, str):
            raise UnreadableAnswerError(call, "a text arn", described_arn)
        return Resource(
            arn=described_arn,
            resource_type=CLUSTER,
            attributes=_cluster_settings(cluster, call),
        )

    # EKS sends `clusters` in every answer, an empty list in a region without clusters (its API
    # reference's response syntax; AWS's own SDK example reads the key unguarded): a page
    # without it is not EKS's, and must not resolve every cluster finding.
    names = list(
        listed(
            eks,
            "list_clusters",
            "clusters",
            always_sent=True,
            next_page_allowed=scope.next_page_allowed,
        )
    )
    # botocore hands a JSON list's items on unchecked: an item that is no text names no cluster,
    # so it is reported as the listing's, under no ARN made of it, and the others are read.
    for name in names:
        if not isinstance(name, str):
            yield UnreadableListingItem(
                str(UnreadableAnswerError("ListClusters", "a text name for each of clusters", name))
            )
    yield from described(
        (name for name in names if isinstance(name, str)),
        CLUSTER,
        listing_call="ListClusters",
        arn_of=lambda name: f"arn:aws:eks:{scope.region}:{scope.account_id}:cluster/{name}",
        describe=describe,
        read_errors=AWS_CALL_ERRORS,
    )


def _cluster_settings(cluster: Mapping[str, Any], call: str) -> dict[str, Any]:
    """The settings EKS.1, EKS.3 and EKS.8 judge, from DescribeCluster's `cluster` (answering
    `call`). botocore checks a JSON answer's structures but hands its list items on unchecked:
    a null log setup read as an object would end the whole scan, a null among the public CIDRs
    is no 0.0.0.0/0 and would pass the cluster. Each raises UnreadableAnswerError instead,
    failing this cluster alone."""
    vpc = cluster.get("resourcesVpcConfig", {})
    cidrs = vpc.get("publicAccessCidrs", [])
    if not all(isinstance(cidr, str) for cidr in cidrs):
        raise UnreadableAnswerError(
            call, "a text range for each of resourcesVpcConfig.publicAccessCidrs", cidrs
        )
    encryption = cluster.get("encryptionConfig", [])
    setups = cluster.get("logging", {}).get("clusterLogging", [])
    for field, items in (("encryptionConfig", encryption), ("logging.clusterLogging", setups)):
        if not all(isinstance(item, Mapping) for item in items):
            raise UnreadableAnswerError(call, f"an object for each of {field}", items)
    return {"vpc": vpc, "encryption": encryption, "logging": setups}


register_source(
    ResourceSource(
        resource_type=CLUSTER,
        global_service=False,
        api_calls=("eks:ListClusters", "eks:DescribeCluster"),
        iam_actions=("eks:ListClusters", "eks:DescribeCluster"),
        collect=_collect_clusters,
    )
)


@check(
    "EKS.1",
    title="EKS cluster endpoints should not be publicly accessible",
    severity=FindingSeverity.HIGH,
    resource_type=CLUSTER,
    remediation="Set endpoint_public_access_cidrs in the stack settings to your own ranges, or "
    "turn the public endpoint off (aws eks update-cluster-config).",
)
def public_endpoint(resource: Resource) -> str | None:
    """The public endpoint is on and reachable from any address (0.0.0.0/0). A public endpoint
    limited to known CIDRs is what the stack settings allow, so it passes here."""
    vpc = resource.attributes["vpc"]
    if not vpc.get("endpointPublicAccess", False):
        return None
    world = world_sources(vpc.get("publicAccessCidrs") or ["0.0.0.0/0"])
    if world:
        return f"the public API endpoint accepts connections from {', '.join(world)}"
    return None


@check(
    "EKS.3",
    title="EKS clusters should use encrypted Kubernetes secrets",
    severity=FindingSeverity.MEDIUM,
    resource_type=CLUSTER,
    remediation="Associate a KMS key for secrets encryption (aws eks associate-encryption-config).",
)
def secrets_encryption(resource: Resource) -> str | None:
    """An encryption configuration must cover the `secrets` resource."""
    for config in resource.attributes["encryption"]:
        if "secrets" in config.get("resources", []):
            return None
    return "Kubernetes secrets are not envelope-encrypted with a KMS key"


@check(
    "EKS.8",
    title="EKS clusters should have audit logging enabled",
    severity=FindingSeverity.MEDIUM,
    resource_type=CLUSTER,
    remediation="Enable the audit control-plane log type "
    "(aws eks update-cluster-config --logging).",
)
def audit_logging(resource: Resource) -> str | None:
    """The `audit` control-plane log type must be enabled."""
    for setup in resource.attributes["logging"]:
        if setup.get("enabled") and "audit" in setup.get("types", []):
            return None
    return "the audit control-plane log is not enabled"
