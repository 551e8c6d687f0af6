"""Finding cleanup candidates in one (account, region), and the marks already on resources.

A candidate is re-evaluated on every run from the live state of the account, never taken from a
previous run: a snapshot that an AMI uses, or that was tagged keep, since it was marked is no
longer a candidate and is spared. Each function returns the resources that are candidates OR
carry a deletion mark (a marked non-candidate must have its mark lifted); everything else is
irrelevant to the cleanup.

Snapshots and volumes carry their mark as the tag `lambda-fleet:delete-after=<ISO date>`.
Lambda versions cannot be tagged one by one (tags belong to the function), so their marks live in
the state table and are passed in as a mapping `<function>:<version>` -> ISO date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

MARK_TAG = "lambda-fleet:delete-after"
SNAPSHOT = "snapshot"
VOLUME = "volume"
LAMBDA_VERSION = "lambda_version"


@dataclass(frozen=True)
class Policy:
    """What makes a resource a candidate (from the function's settings)."""

    snapshot_max_age: timedelta
    volume_min_age: timedelta
    keep_lambda_versions: int
    keep_tag: str


@dataclass(frozen=True)
class Resource:
    """A resource that is a candidate now, or carries a deletion mark, or both."""

    kind: str
    id: str
    candidate: bool
    reason: str
    delete_after: date | None

    @property
    def function_name(self) -> str:
        """The function of a Lambda version id `<function>:<version>`."""
        return self.id.rsplit(":", 1)[0]

    @property
    def version(self) -> str:
        """The version number of a Lambda version id `<function>:<version>`."""
        return self.id.rsplit(":", 1)[1]


def parse_mark(value: str | None) -> date | None:
    """The date of a mark; an unreadable mark counts as none (the resource is marked afresh)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in resource.get("Tags", [])}


def _kept(tags: Mapping[str, str], keep_tag: str) -> bool:
    return tags.get(keep_tag, "").strip().lower() == "true"


def _pages(client: Any, operation: str, key: str, **arguments: Any) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**arguments):
        yield from page.get(key, [])


def ami_snapshot_ids(ec2: Any) -> set[str]:
    """Snapshots referenced by the block device mappings of the account's own AMIs."""
    return {
        mapping["Ebs"]["SnapshotId"]
        for image in _pages(ec2, "describe_images", "Images", Owners=["self"])
        for mapping in image.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    }


def snapshots(ec2: Any, policy: Policy, now: datetime) -> list[Resource]:
    """The account's own snapshots that are old enough, not used by an AMI and not kept."""
    used_by_ami = ami_snapshot_ids(ec2)
    found: list[Resource] = []
    for snapshot in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]):
        tags = _tags(snapshot)
        age = now - snapshot["StartTime"]
        if snapshot["SnapshotId"] in used_by_ami:
            candidate, reason = False, "used by an AMI"
        elif _kept(tags, policy.keep_tag):
            candidate, reason = False, f"tagged {policy.keep_tag}=true"
        elif age < policy.snapshot_max_age:
            candidate, reason = False, f"{age.days} days old"
        else:
            candidate, reason = True, f"{age.days} days old"
        mark = parse_mark(tags.get(MARK_TAG))
        if candidate or mark is not None:
            found.append(Resource(SNAPSHOT, snapshot["SnapshotId"], candidate, reason, mark))
    return found


def volumes(ec2: Any, policy: Policy, now: datetime) -> list[Resource]:
    """Volumes unattached (`available`) for long enough since creation, and not kept."""
    found: list[Resource] = []
    for volume in _pages(ec2, "describe_volumes", "Volumes"):
        tags = _tags(volume)
        age = now - volume["CreateTime"]
        if volume["State"] != "available":
            candidate, reason = False, f"state {volume['State']}"
        elif _kept(tags, policy.keep_tag):
            candidate, reason = False, f"tagged {policy.keep_tag}=true"
        elif age < policy.volume_min_age:
            candidate, reason = False, f"created {age.days} days ago"
        else:
            candidate, reason = True, f"unattached, created {age.days} days ago"
        mark = parse_mark(tags.get(MARK_TAG))
        if candidate or mark is not None:
            found.append(Resource(VOLUME, volume["VolumeId"], candidate, reason, mark))
    return found


def alias_versions(lambda_client: Any, function_name: str) -> set[str]:
    """Versions an alias points at, including weighted routing's additional versions."""
    referenced: set[str] = set()
    for alias in _pages(lambda_client, "list_aliases", "Aliases", FunctionName=function_name):
        referenced.add(alias["FunctionVersion"])
        weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
        referenced.update(weights)
    return referenced


def lambda_versions(lambda_client: Any, policy: Policy, marks: Mapping[str, str]) -> list[Resource]:
    """Published versions older than the newest `keep_lambda_versions`, not used by an alias.

    `$LATEST` is never a candidate. A marked version that no longer exists is simply not
    returned, so its mark is dropped when the caller saves the marks again.
    """
    found: list[Resource] = []
    for function in _pages(lambda_client, "list_functions", "Functions"):
        name = function["FunctionName"]
        published = sorted(
            (
                int(version["Version"])
                for version in _pages(
                    lambda_client, "list_versions_by_function", "Versions", FunctionName=name
                )
                if version["Version"].isdigit()
            ),
            reverse=True,
        )
        if not published:
            continue
        aliased = alias_versions(lambda_client, name)
        for rank, number in enumerate(published):
            version = str(number)
            identifier = f"{name}:{version}"
            if rank < policy.keep_lambda_versions:
                candidate, reason = False, f"among the newest {policy.keep_lambda_versions}"
            elif version in aliased:
                candidate, reason = False, "referenced by an alias"
            else:
                candidate, reason = True, f"older than the newest {policy.keep_lambda_versions}"
            mark = parse_mark(marks.get(identifier))
            if candidate or mark is not None:
                found.append(Resource(LAMBDA_VERSION, identifier, candidate, reason, mark))
    return found
