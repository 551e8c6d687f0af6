"""Finding cleanup candidates in one (account, region), and the marks already on resources.

A candidate is re-evaluated on every run from the live state of the account, never taken from a
previous run: a snapshot that an AMI uses, or that was tagged keep, since it was marked is no
longer a candidate and is spared. Each function returns the resources that are candidates OR
carry a deletion mark (a marked non-candidate must have its mark lifted); everything else is
irrelevant to the cleanup.

Only the kinds the stack's policy names are listed at all, and with a tag filter only resources
carrying its tags are candidates. A snapshot backup_scheduler made (tagged `lambda-fleet:backup`)
is never a candidate: it is kept until its `lambda-fleet:expires-at`, and then backup_scheduler
deletes it itself; nor is a volume tagged `backup` (backup_scheduler copies it), nor a Kubernetes
persistent volume or the snapshot of a Kubernetes VolumeSnapshot (the cluster's own), nor a
snapshot Data Lifecycle Manager or AWS Backup made (deleted by their own retention), nor a
snapshot shared with another account or made public (another team restores or copies it): the
last is asked (DescribeSnapshotAttribute) of a candidate alone, never of every snapshot, before
it is marked and again just before its deletion, or once due in notify mode (as_it_is_now),
not while its mark is pending.

Snapshots and volumes carry their mark as the tag `lambda-fleet:delete-after:<stack>=<ISO date>`
(mark_tag): each stack's own.
Lambda versions cannot be tagged one by one (tags belong to the function), so their marks live in
the state table and are passed in as a mapping `<function>:<version>` -> ISO date and the
version's LastModified (lambda_mark).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError

from fleet_shared.access_episodes import note_refused_call
from fleet_shared.aws_answers import (
    AWS_CALL_ERRORS,
    UnreadableAnswerError,
    answer_field,
    call_error_text,
)
from fleet_shared.backup_tags import BACKUP_TAG, COPY_TAG, misspelt_backup_key
from fleet_shared.cleanup_policy import (
    LAMBDA_VERSIONS,
    SNAPSHOTS,
    VOLUMES,
    CleanupPolicy,
    ResourceKind,
)
from fleet_shared.exceptions import PagesCutShortError
from fleet_shared.page_tokens import pages
from fleet_shared.unanswered_endpoints import EndpointNotAnsweringError
from fleet_shared.validation_errors import shown_value

MARK_TAG_PREFIX = "lambda-fleet:delete-after"
KUBERNETES_VOLUME_TAGS = (
    "CSIVolumeName",
    "ebs.csi.aws.com/cluster",
    "kubernetes.io/created-for/pv/name",
)
"""Tags the EBS CSI driver (the first two, on every volume it creates) and the in-tree
provisioner put on a Kubernetes persistent volume. Such a volume is detached whenever its pods
are not running (a StatefulSet scaled to 0, a node group scaled down for the night), and its
data lives only there, so it is never a candidate."""
KUBERNETES_SNAPSHOT_TAGS = ("CSIVolumeSnapshotName", "ebs.csi.aws.com/cluster")
"""Tags the EBS CSI driver puts on every snapshot it makes for a Kubernetes VolumeSnapshot (the
second on its volumes too): the VolumeSnapshotContent names the snapshot and a restore reads it,
and its deletion is the cluster's (the VolumeSnapshotClass's `deletionPolicy`), so it is never a
candidate; deleted under it, the cluster's backup would fail to restore."""
LIFECYCLE_MANAGED_SNAPSHOT_TAGS = ("aws:dlm:lifecycle-policy-id", "aws:backup:source-resource")
"""Tags Amazon Data Lifecycle Manager and AWS Backup put on every EBS snapshot they make (a key
starting `aws:` no one else may write): each deletes its snapshots itself by its own retention,
which may be longer than the policy's age for a reason (compliance), so such a snapshot is
never a candidate."""
SNAPSHOT = "snapshot"
VOLUME = "volume"
LAMBDA_VERSION = "lambda_version"
LAMBDA_FUNCTION = "lambda_function"
NOT_FOUND_CODES = {
    SNAPSHOT: ("InvalidSnapshot.NotFound",),
    VOLUME: ("InvalidVolume.NotFound",),
    LAMBDA_VERSION: ("ResourceNotFoundException",),
}
"""What AWS answers a call naming a resource of each kind that does not exist."""
ALIASED = "referenced by an alias"
MAPPED = "invoked by an event source mapping"
PROVISIONED = "holds provisioned concurrency"
"""Why a Lambda version is no candidate for what uses it, at the listing and just before its
deletion alike."""
SHARED = "shared"
PUBLIC = "public"
"""How a snapshot kept for its sharing is shared: its `createVolumePermission` names other
accounts (SHARED), or the group `all` (PUBLIC, anyone may restore it)."""


@dataclass(frozen=True)
class Resource:
    """A resource that is a candidate now, or carries a deletion mark, or both."""

    kind: str
    id: str
    candidate: bool
    reason: str
    delete_after: date | None
    published: str = ""
    """A Lambda version's LastModified, which its saved mark names (lambda_mark); empty for a
    snapshot or volume."""
    function_arn: str = ""
    """A Lambda version's function's ARN, its tags' (function_held); empty for a snapshot or
    volume."""

    @property
    def function_name(self) -> str:
        """The function of a Lambda version id `<function>:<version>`."""
        return self.id.rsplit(":", 1)[0]

    @property
    def version(self) -> str:
        """The version number of a Lambda version id `<function>:<version>`."""
        return self.id.rsplit(":", 1)[1]


@dataclass
class SharedSnapshots:
    """What a target's sharing checks found: how many snapshots were kept for being shared, by
    how (SHARED, PUBLIC), and the snapshots whose sharing could not be read (kept too, neither
    marked nor deleted nor their mark lifted), as `{kind, id, error}` entries."""

    kept: dict[str, int] = field(default_factory=dict)
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def keep(self, how: str) -> None:
        """Count one snapshot kept for being shared `how`."""
        self.kept[how] = self.kept.get(how, 0) + 1


NO_TIME_LEFT = "no time left in the invocation"


@dataclass(frozen=True)
class CallsAllowed:
    """Whether the invocation still has time for a target's next calls: a listing's next page
    (`next_page`; else the listing raises PagesCutShortError), and the reads of one listed
    resource (`resource_reads`: a snapshot's sharing, a function's tags, versions, aliases and
    provisioned concurrency; else the resource is left as it is, its error NO_TIME_LEFT)."""

    next_page: Callable[[], bool]
    resource_reads: Callable[[], bool]


def mark_tag(stack: str) -> str:
    """The key of `stack`'s deletion marks on snapshots and volumes (`<MARK_TAG_PREFIX>:<stack>`).
    Stacks sharing a member account (dev and prod) each mark, count and lift only their own, and
    each member role may delete only what carries its own: with one key for all, one stack's
    cleanup counted the age of another's mark, made under another policy and announced by
    another stack's notice, and deleted on it, or lifted it. A mark earlier versions wrote, the
    prefix alone, names no stack and counts for none: a candidate carrying it is marked afresh
    and announced before it can be deleted."""
    return f"{MARK_TAG_PREFIX}:{stack}"


def parse_mark(value: str | None) -> date | None:
    """The date of a mark; an unreadable mark counts as none (the resource is marked afresh)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _zoned_time(item: Mapping[str, Any], call: str, field: str) -> datetime:
    """`item[field]`, a time with its zone, as EC2 sends every snapshot's StartTime and volume's
    CreateTime; raises UnreadableAnswerError for an item without it (a KeyError ended the whole
    run, every target unhandled) or with a time botocore read without a zone (a TypeError did:
    no age can be taken from it)."""
    value = answer_field(item, call, field)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise UnreadableAnswerError(call, f"a {field} with its zone", value)
    return value


def lambda_mark(delete_after: str, published: str) -> str:
    """How the state table keeps a Lambda version's mark: its date, and the version's
    LastModified (`2026-12-06@2026-11-29T03:37:42.436+0000`)."""
    return f"{delete_after}@{published}"


def _lambda_mark_date(saved: str | None, published: str) -> date | None:
    """The date of a Lambda version's saved mark when the mark was made on this version: a
    version number names another version once its function was deleted and created again
    under its name (numbers start again at 1), so a mark naming another LastModified counts as
    none, and its version is marked afresh, with a notice of its own. A mark saved by an earlier
    version, a date alone, counts."""
    if not saved:
        return None
    delete_after, separator, marked_published = saved.partition("@")
    if separator and marked_published != published:
        return None
    return parse_mark(delete_after)


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in resource.get("Tags", [])}


KEEP_TAG_VALUES = ("true", "false")
"""What the policy's keep tag may say (any case): kept, or not kept."""


def _keep_tags(tags: Mapping[str, str], keep_tag: str) -> list[tuple[str, str]]:
    """The (key, value) of each of `tags` that is the policy's keep tag, its key written in any
    case and with blanks around it: AWS tag keys are case-sensitive, but whoever tagged a
    resource `Keep=true` (the console capitalises its own keys) meant to keep it."""
    wanted = keep_tag.strip().casefold()
    return [(key, value) for key, value in tags.items() if key.strip().casefold() == wanted]


def _kept(tags: Mapping[str, str], keep_tag: str) -> bool:
    """Whether the keep tag keeps the resource: `true`, or a value that is neither `true` nor
    `false` (`yes`, a typo), which `keep_tag_error` reports: a resource someone meant to keep is
    never deleted for how they spelled it."""
    return any(value.strip().lower() != "false" for _, value in _keep_tags(tags, keep_tag))


def keep_tag_error(tags: Mapping[str, str], keep_tag: str) -> str | None:
    """Why the keep tag's value is not understood (neither `true` nor `false`), or None."""
    for key, value in _keep_tags(tags, keep_tag):
        if value.strip().lower() not in KEEP_TAG_VALUES:
            return f"tag {key}={shown_value(value)} is neither true nor false: kept"
    return None


def missing_tag(tags: Mapping[str, str], required: Mapping[str, str]) -> str | None:
    """Why `tags` fail the policy's tag filter (the first required tag absent), or None."""
    for key, value in required.items():
        if tags.get(key) != value:
            return f"not tagged {key}={value}"
    return None


_PAGE_TOKENS = {
    "DescribeImages": ("NextToken", "NextToken"),
    "DescribeLaunchConfigurations": ("NextToken", "NextToken"),
    "DescribeLaunchTemplateVersions": ("NextToken", "NextToken"),
    "DescribeLaunchTemplates": ("NextToken", "NextToken"),
    "DescribeSnapshots": ("NextToken", "NextToken"),
    "DescribeVolumes": ("NextToken", "NextToken"),
    "ListAliases": ("Marker", "NextMarker"),
    "ListEventSourceMappings": ("Marker", "NextMarker"),
    "ListFunctions": ("Marker", "NextMarker"),
    "ListProvisionedConcurrencyConfigs": ("Marker", "NextMarker"),
    "ListVersionsByFunction": ("Marker", "NextMarker"),
}
"""Per listing, the request's token field and the answer's (Lambda's NextMarker is sent back as
Marker)."""


def _pages(
    client: Any,
    operation: str,
    key: str,
    next_page_allowed: Callable[[], bool],
    **arguments: Any,
) -> Iterable[dict[str, Any]]:
    """The `key` items of every page of `operation` (e.g. `DescribeSnapshots`); raises
    UnreadableAnswerError for a page without `key` (EC2's and Lambda's listings carry theirs,
    empty or not): a proxy's page must not pass for an empty listing, which would make the
    snapshots of AMIs, or the versions aliases, event source mappings or provisioned
    concurrency use, candidates. A token answered before raises RepeatedPageTokenError (boto3's
    paginators refused only one answered twice in a row), and a next page is asked only while
    `next_page_allowed()`, else PagesCutShortError: pages that never end were read until Lambda
    ended the run."""
    token_field, answer_token_field = _PAGE_TOKENS[operation]
    for page in pages(
        client,
        operation,
        arguments,
        token_field,
        answer_token_field=answer_token_field,
        next_page_allowed=next_page_allowed,
    ):
        yield from answer_field(page, operation, key)


def _text_of(item: object, call: str, field: str, default: str | None = None) -> str:
    """`item[field]` (`default` when the item has no such field and a default is given): text in
    every answer of Lambda's the fleet reads. botocore hands a rest-JSON answer's text fields
    on unchecked, so a null item or a number there raises UnreadableAnswerError, showing that
    value only (a function's item holds its environment), rather than a bare TypeError ending
    the whole run, or a version number 2 that no version "2" matches, leaving the version an
    alias uses a candidate."""
    value = item.get(field, default) if isinstance(item, Mapping) else None
    if not isinstance(value, str):
        raise UnreadableAnswerError(call, f"a text {field} in each item", value)
    return value


def ami_snapshot_ids(ec2: Any, next_page_allowed: Callable[[], bool]) -> set[str]:
    """Snapshots referenced by the block device mappings of the account's own AMIs, disabled and
    deprecated ones included (DescribeImages leaves disabled AMIs out unless asked)."""
    images = _pages(
        ec2,
        "DescribeImages",
        "Images",
        next_page_allowed,
        Owners=["self"],
        IncludeDisabled=True,
        IncludeDeprecated=True,
    )
    return {
        mapping["Ebs"]["SnapshotId"]
        for image in images
        for mapping in image.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    }


def launch_template_snapshots(ec2: Any, next_page_allowed: Callable[[], bool]) -> dict[str, str]:
    """Snapshot id -> the first of the account's launch templates whose block device mappings
    name it (`LaunchTemplateData.BlockDeviceMappings[].Ebs.SnapshotId`), in any version of the
    template, not only its default or latest: an Auto Scaling group, an EKS node group or an EC2
    Fleet may launch from any version, and once the snapshot is deleted each of its launches
    fails. DescribeLaunchTemplateVersions names no snapshot without a template, so each template
    is asked for its versions."""
    used: dict[str, str] = {}
    for template in _pages(ec2, "DescribeLaunchTemplates", "LaunchTemplates", next_page_allowed):
        template_id = _text_of(template, "DescribeLaunchTemplates", "LaunchTemplateId")
        for version in _pages(
            ec2,
            "DescribeLaunchTemplateVersions",
            "LaunchTemplateVersions",
            next_page_allowed,
            LaunchTemplateId=template_id,
        ):
            for mapping in version.get("LaunchTemplateData", {}).get("BlockDeviceMappings", []):
                snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
                if snapshot_id:
                    used.setdefault(snapshot_id, template_id)
    return used


def launch_configuration_snapshots(
    autoscaling: Any, next_page_allowed: Callable[[], bool]
) -> dict[str, str]:
    """Snapshot id -> the first of the account's Auto Scaling launch configurations whose block
    device mappings name it (`BlockDeviceMappings[].Ebs.SnapshotId`), shown as a refused value
    is (a name is any text up to 255 characters): a group launching from one fails every launch
    once the snapshot is gone, as from a launch template. An AMI a configuration names
    (`ImageId`) keeps its own snapshots already, being registered."""
    used: dict[str, str] = {}
    call = "DescribeLaunchConfigurations"
    for configuration in _pages(autoscaling, call, "LaunchConfigurations", next_page_allowed):
        name = _text_of(configuration, call, "LaunchConfigurationName")
        for mapping in configuration.get("BlockDeviceMappings") or []:
            snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
            if snapshot_id:
                used.setdefault(snapshot_id, shown_value(name))
    return used


def launch_sources(
    ec2: Any, autoscaling: Any, next_page_allowed: Callable[[], bool]
) -> dict[str, str]:
    """Snapshot id -> why a launch keeps it (`used by launch template <id>`, `used by launch
    configuration <name>`): every snapshot the account's launch templates (any version) or
    launch configurations name."""
    used = {
        snapshot_id: f"used by launch configuration {name}"
        for snapshot_id, name in launch_configuration_snapshots(
            autoscaling, next_page_allowed
        ).items()
    }
    for snapshot_id, template in launch_template_snapshots(ec2, next_page_allowed).items():
        used[snapshot_id] = f"used by launch template {template}"
    return used


def snapshot_sharing(ec2: Any, snapshot_id: str) -> tuple[str, str] | None:
    """How the snapshot is shared (SHARED or PUBLIC) and the reason it is kept, or None when its
    `createVolumePermission` names no one. Deleted, a shared snapshot would break another
    account's restore or copy of it. Raises an AWS_CALL_ERRORS error when the call fails, and
    UnreadableAnswerError for an answer that is not this snapshot's permission list (a proxy's
    page, another snapshot's, an item naming neither an account nor a group): the caller keeps
    the snapshot rather than delete it on doubt."""
    call = "DescribeSnapshotAttribute"
    answer = ec2.describe_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission"
    )
    if answer_field(answer, call, "SnapshotId") != snapshot_id:
        raise UnreadableAnswerError(call, f"SnapshotId {snapshot_id}", answer)
    permissions = answer_field(answer, call, "CreateVolumePermissions")
    if not isinstance(permissions, list) or not all(
        isinstance(permission, Mapping) and (permission.get("Group") or permission.get("UserId"))
        for permission in permissions
    ):
        raise UnreadableAnswerError(call, "a Group or UserId in each permission", answer)
    if any(permission.get("Group") for permission in permissions):
        return PUBLIC, "public (createVolumePermission group all): anyone may restore it"
    if permissions:
        accounts = len({permission["UserId"] for permission in permissions})
        return SHARED, f"shared with {accounts} other account(s) (createVolumePermission)"
    return None


def _no_candidate(resource: Resource, reason: str, *, marked: bool) -> list[Resource]:
    """A snapshot found to be no candidate for `reason` after all: returned for its mark to be
    lifted when it carries the mark tag, else none (as `_candidate_or_tag_marked`)."""
    return [replace(resource, candidate=False, reason=reason)] if marked else []


def _unless_shared(
    ec2: Any,
    resource: Resource,
    shared: SharedSnapshots,
    *,
    marked: bool,
    read_allowed: Callable[[], bool],
    refused: list[str],
) -> list[Resource]:
    """A snapshot candidate of the listing to be marked (`marked` when it carries the mark tag,
    one not a date), no candidate when it is shared (counted in `shared.kept`); none when its
    sharing cannot be read, or is not asked for lack of time (`read_allowed()` False), in
    `shared.unreadable` (and in `refused` when IAM refused the read): it is left as it is for
    the next run to decide on. A snapshot that is
    no candidate anyway, or whose mark is dated (pending, or reached: asked again by
    as_it_is_now), is returned as it is, unasked."""
    if not resource.candidate or resource.delete_after is not None:
        return [resource]
    cause = NO_TIME_LEFT
    if read_allowed():
        try:
            sharing = snapshot_sharing(ec2, resource.id)
        except AWS_CALL_ERRORS as error:
            cause = call_error_text(error)
            note_refused_call(refused, error, resource.id)
        else:
            return _candidate_unless_shared(resource, sharing, shared, marked=marked)
    shared.unreadable.append(
        {"kind": SNAPSHOT, "id": resource.id, "error": f"sharing not read, kept: {cause}"}
    )
    return []


def _candidate_unless_shared(
    resource: Resource, sharing: tuple[str, str] | None, shared: SharedSnapshots, *, marked: bool
) -> list[Resource]:
    """The snapshot candidate as it is when `sharing` (as `snapshot_sharing` read it) names no
    one; else counted in `shared.kept` and no candidate for the reason it is shared (returned
    only when `marked`, for its mark to be lifted)."""
    if sharing is None:
        return [resource]
    how, reason = sharing
    shared.keep(how)
    return _no_candidate(resource, reason, marked=marked)


def _kept_reason(
    kind: str,
    resource_id: str,
    tags: Mapping[str, str],
    keep_tag: str,
    tag_errors: list[dict[str, str]],
) -> str:
    """Why a resource the keep tag keeps is no candidate; a value not understood is also added
    to `tag_errors` as the resource's error."""
    error = keep_tag_error(tags, keep_tag)
    if error is None:
        return f"tagged {keep_tag}=true"
    tag_errors.append({"kind": kind, "id": resource_id, "error": error})
    return error


def _candidate_or_tag_marked(
    kind: str,
    resource_id: str,
    tags: Mapping[str, str],
    candidate: bool,
    reason: str,
    *,
    own_mark_tag: str,
) -> list[Resource]:
    """The EC2 resource as found, when it is a candidate or carries the stack's mark tag
    `own_mark_tag` (none when neither)."""
    if not (candidate or own_mark_tag in tags):
        return []
    # A mark that is not a date is still a mark: spared (removed) or marked afresh.
    return [Resource(kind, resource_id, candidate, reason, parse_mark(tags.get(own_mark_tag)))]


def snapshots(
    ec2: Any,
    policy: CleanupPolicy,
    now: datetime,
    tag_errors: list[dict[str, str]],
    shared: SharedSnapshots,
    *,
    autoscaling: Any,
    calls: CallsAllowed,
    refused: list[str],
    own_mark_tag: str,
) -> list[Resource]:
    """The account's own snapshots that are old enough, not a fleet backup, not used by an AMI
    or a launch template or configuration (`autoscaling`'s), not a Kubernetes volume snapshot,
    not made by Data Lifecycle Manager or AWS Backup, complete (not `pending`), not kept,
    carrying the policy's tags and not shared (see `_unless_shared`); a keep tag not understood
    is added to `tag_errors`. The launch templates and configurations are read only when a
    snapshot is a candidate otherwise."""
    used_by_ami = ami_snapshot_ids(ec2, calls.next_page)
    # Every page first: a listing cut short leaves no snapshot asked about or reported.
    listed_snapshots = list(
        _pages(ec2, "DescribeSnapshots", "Snapshots", calls.next_page, OwnerIds=["self"])
    )
    listed = [
        (own_mark_tag in _tags(snapshot), resource)
        for snapshot in listed_snapshots
        for resource in _snapshot(
            snapshot, policy, now, used_by_ami, tag_errors, own_mark_tag=own_mark_tag
        )
    ]
    launched = (
        launch_sources(ec2, autoscaling, calls.next_page)
        if any(resource.candidate for _, resource in listed)
        else {}
    )
    found: list[Resource] = []
    for marked, resource in listed:
        launch = launched.get(resource.id) if resource.candidate else None
        if launch is not None:
            found.extend(_no_candidate(resource, launch, marked=marked))
        else:
            found.extend(
                _unless_shared(
                    ec2,
                    resource,
                    shared,
                    marked=marked,
                    read_allowed=calls.resource_reads,
                    refused=refused,
                )
            )
    return found


def _snapshot(
    snapshot: Mapping[str, Any],
    policy: CleanupPolicy,
    now: datetime,
    used_by_ami: set[str],
    tag_errors: list[dict[str, str]],
    *,
    own_mark_tag: str,
) -> list[Resource]:
    """One snapshot as `snapshots` finds it (none when neither a candidate nor marked with
    `own_mark_tag`)."""
    tags = _tags(snapshot)
    snapshot_id = answer_field(snapshot, "DescribeSnapshots", "SnapshotId")
    age = now - _zoned_time(snapshot, "DescribeSnapshots", "StartTime")
    untagged = missing_tag(tags, policy.require_tags)
    kubernetes_tag = next((tag for tag in KUBERNETES_SNAPSHOT_TAGS if tag in tags), None)
    managed_tag = next((tag for tag in LIFECYCLE_MANAGED_SNAPSHOT_TAGS if tag in tags), None)
    if COPY_TAG in tags:
        candidate, reason = False, f"a fleet backup ({COPY_TAG}), kept until it expires"
    elif snapshot_id in used_by_ami:
        candidate, reason = False, "used by an AMI"
    elif kubernetes_tag is not None:
        candidate, reason = False, f"a Kubernetes volume snapshot (tag {kubernetes_tag})"
    elif managed_tag is not None:
        candidate, reason = False, f"kept by its own lifecycle (tag {managed_tag})"
    elif snapshot.get("State") == "pending":
        # Its age counts from its start: a large volume's first snapshot, or a copy from
        # another region, can take longer than a short age and notice together.
        candidate, reason = False, "still being created (pending)"
    elif _kept(tags, policy.keep_tag):
        candidate = False
        reason = _kept_reason(SNAPSHOT, snapshot_id, tags, policy.keep_tag, tag_errors)
    elif untagged is not None:
        candidate, reason = False, untagged
    elif age < timedelta(days=policy.snapshot_max_age_days):
        candidate, reason = False, f"{age.days} days old"
    else:
        candidate, reason = True, f"{age.days} days old"
    return _candidate_or_tag_marked(
        SNAPSHOT, snapshot_id, tags, candidate, reason, own_mark_tag=own_mark_tag
    )


def volumes(
    ec2: Any,
    policy: CleanupPolicy,
    now: datetime,
    tag_errors: list[dict[str, str]],
    next_page_allowed: Callable[[], bool],
    *,
    own_mark_tag: str,
) -> list[Resource]:
    """Volumes unattached (`available`) for long enough since creation, not Kubernetes
    persistent volumes, not backed up (nor tagged `Backup`, a key backup_scheduler does not
    read), not kept and carrying the policy's tags; a keep tag not understood, or a backup tag
    whose key is written otherwise than `backup`, is added to `tag_errors`."""
    found: list[Resource] = []
    for volume in list(_pages(ec2, "DescribeVolumes", "Volumes", next_page_allowed)):
        found.extend(_volume(volume, policy, now, tag_errors, own_mark_tag=own_mark_tag))
    return found


def _volume(
    volume: Mapping[str, Any],
    policy: CleanupPolicy,
    now: datetime,
    tag_errors: list[dict[str, str]],
    *,
    own_mark_tag: str,
) -> list[Resource]:
    """One volume as `volumes` finds it (none when neither a candidate nor marked with
    `own_mark_tag`)."""
    tags = _tags(volume)
    volume_id = answer_field(volume, "DescribeVolumes", "VolumeId")
    state = answer_field(volume, "DescribeVolumes", "State")
    age = now - _zoned_time(volume, "DescribeVolumes", "CreateTime")
    untagged = missing_tag(tags, policy.require_tags)
    kubernetes_tag = next((tag for tag in KUBERNETES_VOLUME_TAGS if tag in tags), None)
    # `Backup=daily` meant a backup, but backup_scheduler reads the key `backup` alone.
    misspelt_backup_tag = misspelt_backup_key(tags)
    if state != "available":
        candidate, reason = False, f"state {state}"
    elif kubernetes_tag is not None:
        candidate, reason = False, f"a Kubernetes persistent volume (tag {kubernetes_tag})"
    elif BACKUP_TAG in tags:
        # Deleted, it would leave backup_scheduler nothing to copy, and its copies expire.
        candidate = False
        reason = f"backed up by backup_scheduler (tag {BACKUP_TAG}={shown_value(tags[BACKUP_TAG])})"
    elif misspelt_backup_tag is not None:
        # Deleted, it would be gone with no copy at all: kept, and the key reported.
        candidate = False
        reason = (
            f"tag {misspelt_backup_tag}={shown_value(tags[misspelt_backup_tag])} is not "
            f"backup_scheduler's `{BACKUP_TAG}`: not copied, kept"
        )
        tag_errors.append({"kind": VOLUME, "id": volume_id, "error": reason})
    elif _kept(tags, policy.keep_tag):
        candidate = False
        reason = _kept_reason(VOLUME, volume_id, tags, policy.keep_tag, tag_errors)
    elif untagged is not None:
        candidate, reason = False, untagged
    elif age < timedelta(days=policy.volume_min_age_days):
        candidate, reason = False, f"created {age.days} days ago"
    else:
        candidate, reason = True, f"unattached, created {age.days} days ago"
    return _candidate_or_tag_marked(
        VOLUME, volume_id, tags, candidate, reason, own_mark_tag=own_mark_tag
    )


def _used_by_an_ami_now(ec2: Any, snapshot_id: str, next_page_allowed: Callable[[], bool]) -> bool:
    """Whether one of the account's AMIs (disabled and deprecated ones included) names the
    snapshot in its block device mappings now: only those AMIs are asked for."""
    images = _pages(
        ec2,
        "DescribeImages",
        "Images",
        next_page_allowed,
        Owners=["self"],
        Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snapshot_id]}],
        IncludeDisabled=True,
        IncludeDeprecated=True,
    )
    return any(True for _ in images)


ReadT = TypeVar("ReadT")


class ReadOnce(Generic[ReadT]):
    """A read of the references that guard a target's deletions, made when first asked, just
    before the first deletion (or due report) that needs it, and once per target: its answer, or
    the error it raised, raised again for every later deletion (not deleted on doubt). So the
    references are read again after the listing, at one read per target however many resources
    they guard."""

    def __init__(self, read: Callable[[], ReadT]) -> None:
        self._read = read
        self._answer: ReadT | Exception | None = None

    def __call__(self) -> ReadT:
        """The answer of the read, made now when not made yet."""
        if self._answer is None:
            try:
                self._answer = self._read()
            except (*AWS_CALL_ERRORS, PagesCutShortError) as error:
                self._answer = error
        if isinstance(self._answer, Exception):
            raise self._answer
        return self._answer


def _snapshot_candidate_now(
    ec2: Any,
    resource: Resource,
    shared: SharedSnapshots,
    *,
    marked: bool,
    launched_now: Callable[[], Mapping[str, str]],
    next_page_allowed: Callable[[], bool],
) -> list[Resource]:
    """A snapshot as described now (`marked` when it carries the mark tag), no candidate when an
    AMI has come to use it, a launch template or configuration has come to name it
    (`launched_now`, launch_sources read once per target) or it has come to be shared; raises an
    AWS_CALL_ERRORS error when any cannot be read (PagesCutShortError when a next page is not
    allowed)."""
    if not resource.candidate:
        return [resource]
    if _used_by_an_ami_now(ec2, resource.id, next_page_allowed):
        return _no_candidate(resource, "used by an AMI", marked=marked)
    launch = launched_now().get(resource.id)
    if launch is not None:
        return _no_candidate(resource, launch, marked=marked)
    return _candidate_unless_shared(
        resource, snapshot_sharing(ec2, resource.id), shared, marked=marked
    )


def as_it_is_now(
    ec2: Any,
    resource: Resource,
    policy: CleanupPolicy,
    now: datetime,
    tag_errors: list[dict[str, str]],
    *,
    shared: SharedSnapshots,
    launched_now: Callable[[], Mapping[str, str]],
    next_page_allowed: Callable[[], bool],
    own_mark_tag: str,
) -> Resource | None:
    """A snapshot or volume of the listing as EC2 describes it now, for its deletion to be
    decided on: a target's every resource is listed before any is acted on, so a keep tag added,
    or a mark moved or lifted, since the listing is honoured, and so is a snapshot an AMI has
    come to use (RegisterImage naming it in any block device mapping: EC2 itself refuses to
    delete only a root device's snapshot), that a launch template or configuration has come to
    name (`launched_now`), or that has come to be shared. None when it is gone,
    or is neither a candidate nor marked any more. A volume attached since is refused by EC2
    itself (VolumeInUse). Raises an AWS_CALL_ERRORS error when any of this cannot be read, and
    PagesCutShortError when a next page of the AMIs using it is not allowed."""
    try:
        if resource.kind == SNAPSHOT:
            answer = ec2.describe_snapshots(SnapshotIds=[resource.id], OwnerIds=["self"])
            found = []
            for snapshot in answer_field(answer, "DescribeSnapshots", "Snapshots"):
                marked = own_mark_tag in _tags(snapshot)
                for now_found in _snapshot(
                    snapshot, policy, now, set(), tag_errors, own_mark_tag=own_mark_tag
                ):
                    found.extend(
                        _snapshot_candidate_now(
                            ec2,
                            now_found,
                            shared,
                            marked=marked,
                            launched_now=launched_now,
                            next_page_allowed=next_page_allowed,
                        )
                    )
        else:
            answer = ec2.describe_volumes(VolumeIds=[resource.id])
            found = [
                now_found
                for volume in answer_field(answer, "DescribeVolumes", "Volumes")
                for now_found in _volume(volume, policy, now, tag_errors, own_mark_tag=own_mark_tag)
            ]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in NOT_FOUND_CODES[resource.kind]:
            return None
        raise
    return found[0] if found else None


def alias_versions(
    lambda_client: Any, function_name: str, next_page_allowed: Callable[[], bool]
) -> set[str]:
    """Versions an alias points at, including weighted routing's additional versions."""
    referenced: set[str] = set()
    for alias in _pages(
        lambda_client, "ListAliases", "Aliases", next_page_allowed, FunctionName=function_name
    ):
        referenced.add(_text_of(alias, f"ListAliases of {function_name}", "FunctionVersion"))
        weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
        referenced.update(weights)
    return referenced


def provisioned_versions(
    lambda_client: Any, function_name: str, next_page_allowed: Callable[[], bool]
) -> set[str]:
    """Versions with provisioned concurrency configured on the version itself (one configured
    on an alias keeps its version through the alias): someone pays to keep them warm, and
    deleting the version would take its configuration with it."""
    held: set[str] = set()
    for config in _pages(
        lambda_client,
        "ListProvisionedConcurrencyConfigs",
        "ProvisionedConcurrencyConfigs",
        next_page_allowed,
        FunctionName=function_name,
    ):
        call = f"ListProvisionedConcurrencyConfigs of {function_name}"
        qualifier = _text_of(config, call, "FunctionArn", "").rsplit(":", 1)[-1]
        if qualifier.isdigit():
            held.add(qualifier)
    return held


def mapped_versions(lambda_client: Any, next_page_allowed: Callable[[], bool]) -> set[str]:
    """`<function>:<version>` of every published version an event source mapping invokes (its
    `FunctionArn` qualified by a version number): deleting one would leave the mapping with no
    function to invoke."""
    referenced: set[str] = set()
    for mapping in _pages(
        lambda_client, "ListEventSourceMappings", "EventSourceMappings", next_page_allowed
    ):
        # arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
        parts = _text_of(mapping, "ListEventSourceMappings", "FunctionArn", "").split(":")
        if len(parts) == 8 and parts[7].isdigit():
            referenced.add(f"{parts[6]}:{parts[7]}")
    return referenced


def function_held(
    lambda_client: Any,
    function_name: str,
    function_arn: str,
    policy: CleanupPolicy,
    tag_errors: list[dict[str, str]],
) -> str | None:
    """Why the function's tags, read now, keep every version of it: the policy's keep tag on the
    function (read as on a snapshot or volume: a value neither true nor false keeps, and is added
    to `tag_errors`), or a tag of the policy's filter missing; None when they keep none. Raises
    UnreadableAnswerError for an answer whose `Tags` is missing or not a map of texts (Lambda
    sends them, empty or not): a proxy's or a gateway's empty answer passed for a function
    without the policy's tags, and its versions' marks were lifted, so their deletion started
    over with new dates."""
    call = f"ListTags of {function_name}"
    tags = answer_field(lambda_client.list_tags(Resource=function_arn), call, "Tags")
    if not isinstance(tags, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in tags.items()
    ):
        raise UnreadableAnswerError(call, "Tags, a map of texts", tags)
    if _kept(tags, policy.keep_tag):
        return _kept_reason(LAMBDA_FUNCTION, function_name, tags, policy.keep_tag, tag_errors)
    return missing_tag(tags, policy.require_tags)


def lambda_versions(
    lambda_client: Any,
    policy: CleanupPolicy,
    marks: Mapping[str, str],
    failed_functions: dict[str, str],
    calls: CallsAllowed,
    *,
    tag_errors: list[dict[str, str]],
    refused: list[str],
) -> list[Resource]:
    """Published versions older than the newest `keep_lambda_versions`, not used by an alias,
    invoked by an event source mapping or holding provisioned concurrency, of functions carrying
    the policy's tags and not its keep tag (function_held: a keep tag not understood is added to
    `tag_errors`).

    `$LATEST` is never a candidate. A marked version that no longer exists is simply not
    returned, so its mark is dropped when the caller saves the marks again. A function whose
    tags, versions, aliases or provisioned concurrency cannot be read (deleted meanwhile, say)
    is left out, with its error in `failed_functions` (and the call in `refused` when IAM
    refused it), and the other functions go on; once the
    endpoint did not answer (a timeout on every attempt, or a call run to its bound throttled),
    the later functions are left out
    unread: `lambda_client` (a watched member client) refuses their calls without sending them,
    since each would wait as long. So are the functions `calls` leaves no time to read.
    """
    found: list[Resource] = []
    mapped = mapped_versions(lambda_client, calls.next_page)
    for function in _pages(lambda_client, "ListFunctions", "Functions", calls.next_page):
        name = _text_of(function, "ListFunctions", "FunctionName")
        if not calls.resource_reads():
            failed_functions[name] = f"not read: {NO_TIME_LEFT}"
            continue
        try:
            found.extend(
                _function_versions(
                    lambda_client,
                    function,
                    policy,
                    marks,
                    mapped,
                    next_page_allowed=calls.next_page,
                    tag_errors=tag_errors,
                )
            )
        except EndpointNotAnsweringError as unanswered:
            failed_functions[name] = f"not read: {unanswered.cause}"
        except (*AWS_CALL_ERRORS, PagesCutShortError) as error:
            failed_functions[name] = call_error_text(error)
            note_refused_call(refused, error, name)
    return found


def _function_versions(
    lambda_client: Any,
    function: Mapping[str, Any],
    policy: CleanupPolicy,
    marks: Mapping[str, str],
    mapped: set[str],
    *,
    next_page_allowed: Callable[[], bool],
    tag_errors: list[dict[str, str]],
) -> list[Resource]:
    """The candidate or marked versions of one function; its tags are read only when it has
    more versions than the policy keeps (else none is a candidate, whatever its tags)."""
    name = function["FunctionName"]
    found: list[Resource] = []
    call = f"ListVersionsByFunction of {name}"
    # Version number -> its LastModified, which tells it from an earlier one of that number.
    published_at: dict[int, str] = {}
    for version in _pages(
        lambda_client, "ListVersionsByFunction", "Versions", next_page_allowed, FunctionName=name
    ):
        number = _text_of(version, call, "Version")
        if number.isdigit():
            published_at[int(number)] = _text_of(version, call, "LastModified", "")
    published = sorted(published_at, reverse=True)
    if not published:
        return found
    beyond_kept = len(published) > policy.keep_lambda_versions
    function_arn = _text_of(function, "ListFunctions", "FunctionArn")
    held = (
        function_held(lambda_client, name, function_arn, policy, tag_errors)
        if beyond_kept
        else None
    )
    aliased = alias_versions(lambda_client, name, next_page_allowed)
    provisioned = (
        provisioned_versions(lambda_client, name, next_page_allowed) if beyond_kept else set()
    )
    for rank, number in enumerate(published):
        version = str(number)
        identifier = f"{name}:{version}"
        if held is not None:
            candidate, reason = False, held
        elif rank < policy.keep_lambda_versions:
            candidate, reason = False, f"among the newest {policy.keep_lambda_versions}"
        elif version in aliased:
            candidate, reason = False, ALIASED
        elif identifier in mapped:
            candidate, reason = False, MAPPED
        elif version in provisioned:
            candidate, reason = False, PROVISIONED
        else:
            candidate, reason = True, f"older than the newest {policy.keep_lambda_versions}"
        mark = _lambda_mark_date(marks.get(identifier), published_at[number])
        if candidate or mark is not None:
            found.append(
                Resource(
                    LAMBDA_VERSION,
                    identifier,
                    candidate,
                    reason,
                    mark,
                    published_at[number],
                    function_arn,
                )
            )
    return found


def find_resources(
    policy: CleanupPolicy,
    ec2: Any,
    lambda_client: Any,
    lambda_marks: Mapping[str, str],
    now: datetime,
    *,
    autoscaling: Any,
    failed_functions: dict[str, str],
    tag_errors: list[dict[str, str]],
    shared: SharedSnapshots,
    calls: CallsAllowed,
    unlisted: dict[ResourceKind, Exception],
    refused: list[str],
    own_mark_tag: str,
) -> list[Resource]:
    """Candidates and marked resources of the kinds the policy names; other kinds are not read,
    nor are those already in `unlisted`. A Lambda function that cannot be read is named in
    `failed_functions` with its error, a snapshot or volume whose keep tag is not understood, or
    a volume whose backup tag's key is written otherwise than `backup`, in `tag_errors`, the
    snapshots kept for being shared, or whose sharing cannot be read, in `shared`. A kind whose
    listing failed (one of its calls, or a listing that guards it: the AMIs, launch templates
    and configurations of snapshots, the event source mappings of versions), or `calls` cut
    short, is named in `unlisted` with the error, and none of its resources is returned: one
    not listed may be an AMI's snapshot, or a version an event source mapping invokes. The other
    kinds are listed all the same: one throttled or refused listing no longer left the target's
    every kind uncleaned. A snapshot or volume counts as marked when it carries `own_mark_tag`,
    the stack's (mark_tag). The reads of one resource IAM refused (a snapshot's sharing, a
    function's tags, versions, aliases or provisioned concurrency) are named in `refused`."""
    listings: dict[ResourceKind, Callable[[], list[Resource]]] = {
        SNAPSHOTS: lambda: snapshots(
            ec2,
            policy,
            now,
            tag_errors,
            shared,
            autoscaling=autoscaling,
            calls=calls,
            refused=refused,
            own_mark_tag=own_mark_tag,
        ),
        VOLUMES: lambda: volumes(
            ec2, policy, now, tag_errors, calls.next_page, own_mark_tag=own_mark_tag
        ),
        LAMBDA_VERSIONS: lambda: lambda_versions(
            lambda_client,
            policy,
            lambda_marks,
            failed_functions,
            calls,
            tag_errors=tag_errors,
            refused=refused,
        ),
    }
    found: list[Resource] = []
    for kind, listing in listings.items():
        if not policy.cleans(kind) or kind in unlisted:
            continue
        try:
            found.extend(listing())
        except (*AWS_CALL_ERRORS, PagesCutShortError) as error:
            unlisted[kind] = error
    return found
