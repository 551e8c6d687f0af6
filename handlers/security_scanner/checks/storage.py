"""S3 buckets: Block Public Access, default encryption, TLS-only policy, versioning."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any

from fleet_shared.aws_answers import answer_field
from handlers.security_scanner.checks._aws import (
    answered_policy,
    as_list,
    described,
    is_everyone,
    listed,
    optional,
    statements,
)
from handlers.security_scanner.registry import (
    NOT_SCANNED,
    FindingSeverity,
    Resource,
    ResourceSource,
    ScanScope,
    UnreadableListingItem,
    check,
    register_source,
)

BUCKET = "AwsS3Bucket"
LIST_BUCKETS_PAGE_SIZE = 10_000
"""ListBuckets' largest page (MaxBuckets). S3 refuses a ListBuckets without MaxBuckets or a
ContinuationToken in an account whose bucket quota is above 10,000."""
_PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def _collect_buckets(scope: ScanScope) -> Iterator[Resource | UnreadableListingItem]:
    """The buckets located in the scope's region (ListBuckets filtered by BucketRegion, in
    paginated requests), so a bucket is scanned once although the bucket list is global. In the
    account's first region, also the buckets of regions that are not the member's, which no
    target scans: listed as not scanned."""
    s3 = scope.client("s3")
    names = _bucket_names(s3, scope.region, scope.next_page_allowed)
    if scope.include_global:
        yield from _buckets_outside_member_regions(s3, scope, names)
    yield from described(
        names,
        BUCKET,
        listing_call="ListBuckets",
        arn_of=_bucket_arn,
        describe=lambda name, arn: Resource(
            arn=arn, resource_type=BUCKET, attributes=_describe(s3, name)
        ),
    )


def _bucket_names(s3: Any, region: str | None, next_page_allowed: Callable[[], bool]) -> list[str]:
    """The names of the account's buckets in `region`, or in every region for None."""
    region_filter = {} if region is None else {"BucketRegion": region}
    buckets = listed(
        s3,
        "list_buckets",
        "Buckets",
        # A wrapped list (<Buckets>, not flattened as ListObjectsV2's Contents), which S3 sends
        # empty too: a page without it would resolve every bucket finding of the region.
        always_sent=True,
        next_page_allowed=next_page_allowed,
        PaginationConfig={"PageSize": LIST_BUCKETS_PAGE_SIZE},
        **region_filter,
    )
    # S3 names every bucket it lists: one without its name names no resource to report.
    return [answer_field(bucket, "ListBuckets", "Name") for bucket in buckets]


def _buckets_outside_member_regions(
    s3: Any, scope: ScanScope, in_scope_region: list[str]
) -> Iterator[Resource]:
    """The account's buckets in no region of the member, each marked not scanned: the whole
    listing less each member region's. One listing per region rather than reading each entry's
    BucketRegion, which AWS sends only in a listing with a parameter (and moto never)."""
    outside = set(_bucket_names(s3, None, scope.next_page_allowed)) - set(in_scope_region)
    for region in scope.member_regions:
        if outside and region != scope.region:
            outside -= set(_bucket_names(s3, region, scope.next_page_allowed))
    for name in sorted(outside):
        yield Resource(
            arn=_bucket_arn(name),
            resource_type=BUCKET,
            attributes={NOT_SCANNED: "S3 bucket in a region that is not one of the member's"},
        )


def _bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def _describe(s3: Any, name: str) -> dict[str, Any]:
    block = optional(
        lambda: s3.get_public_access_block(Bucket=name),
        "NoSuchPublicAccessBlockConfiguration",
    )
    encryption = optional(
        lambda: s3.get_bucket_encryption(Bucket=name),
        "ServerSideEncryptionConfigurationNotFoundError",
    )
    policy = optional(
        lambda: s3.get_bucket_policy(Bucket=name),
        "NoSuchBucketPolicy",
    )
    versioning = s3.get_bucket_versioning(Bucket=name)
    # A configuration always has rules: one without them (a proxy's page) is not no encryption.
    rules = (
        answer_field(
            encryption, "GetBucketEncryption", "ServerSideEncryptionConfiguration", "Rules"
        )
        if encryption
        else []
    )
    return {
        "public_access_block": _public_access_settings(block),
        "encryption_algorithms": [
            rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "")
            for rule in rules
        ],
        "policy": answered_policy(policy, "GetBucketPolicy"),
        "versioning": versioning.get("Status", "Disabled"),
    }


def _public_access_settings(block: dict[str, Any] | None) -> dict[str, bool]:
    """The bucket's four Block Public Access settings, all off without a configuration. S3 sends
    every flag of a configuration, false ones too: an answer without one (a proxy's page) is not
    settings off, which would raise a false S3.8 finding."""
    if block is None:
        return dict.fromkeys(_PUBLIC_ACCESS_FLAGS, False)
    return {
        flag: answer_field(block, "GetPublicAccessBlock", "PublicAccessBlockConfiguration", flag)
        for flag in _PUBLIC_ACCESS_FLAGS
    }


register_source(
    ResourceSource(
        resource_type=BUCKET,
        global_service=False,
        api_calls=(
            "s3:ListBuckets",
            "s3:GetPublicAccessBlock",
            "s3:GetBucketEncryption",
            "s3:GetBucketPolicy",
            "s3:GetBucketVersioning",
        ),
        iam_actions=(
            "s3:ListAllMyBuckets",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetEncryptionConfiguration",
            "s3:GetBucketPolicy",
            "s3:GetBucketVersioning",
        ),
        collect=_collect_buckets,
    )
)


@check(
    "S3.8",
    title="S3 general purpose buckets should block public access",
    severity=FindingSeverity.HIGH,
    resource_type=BUCKET,
    remediation="Turn on all four Block Public Access settings of the bucket "
    "(aws s3api put-public-access-block).",
)
def block_public_access(resource: Resource) -> str | None:
    """All four bucket-level Block Public Access settings must be on."""
    settings = resource.attributes["public_access_block"]
    off = [flag for flag in _PUBLIC_ACCESS_FLAGS if not settings.get(flag, False)]
    return f"Block Public Access settings off: {', '.join(off)}" if off else None


def _default_algorithms(resource: Resource) -> list[str]:
    """The algorithms the bucket's default encryption rules name; a rule without one names
    none."""
    return [a for a in resource.attributes["encryption_algorithms"] if a]


@check(
    "S3.4",
    title="S3 general purpose buckets should have server-side encryption enabled",
    severity=FindingSeverity.MEDIUM,
    resource_type=BUCKET,
    remediation="Set default encryption on the bucket (SSE-KMS preferred, SSE-S3 at least).",
)
def default_encryption(resource: Resource) -> str | None:
    """The bucket must have a default encryption rule."""
    algorithms = _default_algorithms(resource)
    return None if algorithms else "the bucket has no default encryption configuration"


@check(
    "S3.17",
    title="S3 general purpose buckets should be encrypted at rest with AWS KMS keys",
    severity=FindingSeverity.LOW,
    resource_type=BUCKET,
    remediation="Set the bucket's default encryption to SSE-KMS (aws:kms or aws:kms:dsse).",
)
def kms_encryption(resource: Resource) -> str | None:
    """Default encryption must use KMS; a bucket without any encryption fails S3.4 instead."""
    algorithms = _default_algorithms(resource)
    if not algorithms or any(a.startswith("aws:kms") for a in algorithms):
        return None
    return f"default encryption is {', '.join(algorithms)}, not SSE-KMS"


@check(
    "S3.5",
    title="S3 general purpose buckets should require requests to use SSL",
    severity=FindingSeverity.MEDIUM,
    resource_type=BUCKET,
    remediation='Add a bucket policy statement that denies s3:* when "aws:SecureTransport" is '
    '"false".',
)
def tls_only(resource: Resource) -> str | None:
    """A Deny statement on aws:SecureTransport=false must cover every request: from anyone,
    for every S3 action, on the bucket and all its objects (as the control's AWS Config rule
    asks), on that condition alone. One that covers some only leaves the others allowed without
    TLS."""
    policy = resource.attributes["policy"]
    for statement in statements(policy, "Deny"):
        if _covers_every_request(statement, resource.arn) and _only_without_tls(statement):
            return None
    return "no bucket policy statement denies requests without TLS"


def _only_without_tls(statement: dict[str, Any]) -> bool:
    """Whether `statement`'s condition is aws:SecureTransport false and nothing else. Every
    condition of a statement must hold for it to apply: a further key (another operator's, or
    another Bool key) narrows the denial to the requests without TLS that also match it, such
    as those outside one VPC endpoint, and the others are allowed."""
    condition = statement.get("Condition", {})
    if list(condition) != ["Bool"] or len(condition["Bool"]) != 1:
        return False
    [(key, value)] = condition["Bool"].items()
    # Condition keys are case-insensitive: aws:securetransport is the same key.
    values = [str(v).lower() for v in as_list(value)]
    return key.lower() == "aws:securetransport" and values == ["false"]


def _covers_every_request(statement: dict[str, Any], bucket_arn: str) -> bool:
    """Whether `statement` applies to anyone, every S3 action, the bucket and its objects."""
    actions = {str(action).lower() for action in as_list(statement.get("Action"))}
    resources = [str(pattern) for pattern in as_list(statement.get("Resource"))]
    return (
        is_everyone(statement.get("Principal"))
        and bool(actions & {"*", "s3:*"})
        and all(
            any(fnmatch.fnmatchcase(target, pattern) for pattern in resources)
            for target in (bucket_arn, f"{bucket_arn}/*")
        )
    )


@check(
    "S3.14",
    title="S3 general purpose buckets should have versioning enabled",
    severity=FindingSeverity.LOW,
    resource_type=BUCKET,
    remediation="Enable versioning on the bucket (aws s3api put-bucket-versioning).",
)
def versioning(resource: Resource) -> str | None:
    """Versioning must be Enabled (Suspended counts as off)."""
    status = resource.attributes["versioning"]
    return None if status == "Enabled" else f"versioning is {status}"
