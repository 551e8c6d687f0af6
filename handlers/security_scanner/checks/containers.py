"""EKS clusters: public endpoint open to the world, secrets encryption, audit logging."""

from __future__ import annotations

from collections.abc import Iterator

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError, answer_field
from handlers.security_scanner.checks._aws import described, listed
from handlers.security_scanner.registry import (
    FindingSeverity,
    Resource,
    ResourceSource,
    ScanScope,
    check,
    register_source,
)

CLUSTER = "AwsEksCluster"


def _collect_clusters(scope: ScanScope) -> Iterator[Resource]:
    eks = scope.client("eks")

    def describe(name: str, arn: str) -> Resource:
        cluster = answer_field(eks.describe_cluster(name=name), "DescribeCluster", "cluster")
        encryption = cluster.get("encryptionConfig", [])
        logging = cluster.get("logging", {}).get("clusterLogging", [])
        # botocore keeps a null among a JSON list's items: EKS.3 and EKS.8 read each as an
        # object, and one that is not must fail this cluster as unreadable, not the whole scan.
        for field, items in (("encryptionConfig", encryption), ("logging.clusterLogging", logging)):
            if not all(isinstance(item, dict) for item in items):
                raise UnreadableAnswerError(
                    f"DescribeCluster of {name}", f"an object for each of {field}", items
                )
        return Resource(
            arn=cluster.get("arn", arn),
            resource_type=CLUSTER,
            attributes={
                "vpc": cluster.get("resourcesVpcConfig", {}),
                "encryption": encryption,
                "logging": logging,
            },
        )

    # EKS sends `clusters` in every answer, an empty list in a region without clusters (its API
    # reference's response syntax; AWS's own SDK example reads the key unguarded): a page
    # without it is not EKS's, and must not resolve every cluster finding.
    yield from described(
        listed(eks, "list_clusters", "clusters", always_sent=True),
        CLUSTER,
        arn_of=lambda name: f"arn:aws:eks:{scope.region}:{scope.account_id}:cluster/{name}",
        describe=describe,
        read_errors=AWS_CALL_ERRORS,
    )


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
    cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]
    if "0.0.0.0/0" in cidrs:
        return "the public API endpoint accepts connections from 0.0.0.0/0"
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
