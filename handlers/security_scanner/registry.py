"""The check registry: every compliance check is declared once, as data plus one function.

Cloud Custodian style: a *resource source* lists the resources of one type in an (account,
region) and fetches the attributes its checks need; a *check* is a declared row (control id,
title, severity, remediation, the AWS calls and IAM actions it relies on) plus a pure function
that looks at one fetched resource and says why it fails, or None when it complies. Keeping the
AWS calls in the sources and the judgement in pure functions means each rule is tested without
AWS, and the IAM actions the scanner needs can be read off the registry (a test compares them
with the catalog's member actions).

This module imports no check: the check modules import it to register themselves, and
`checks.load_checks()` imports every check module (as Cloud Custodian's `load_resources` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class FindingSeverity(StrEnum):
    """ASFF severity labels used by the checks."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


SEVERITY_NORMALIZED = {
    FindingSeverity.CRITICAL: 90,
    FindingSeverity.HIGH: 70,
    FindingSeverity.MEDIUM: 40,
    FindingSeverity.LOW: 1,
}
"""ASFF Severity.Normalized of each label (the midpoints Security Hub documents for labels)."""


@dataclass(frozen=True)
class Resource:
    """One resource as fetched by its source: ARN, ASFF type and the attributes checks read."""

    arn: str
    resource_type: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnreadableListingItem:
    """An item of a source's listing that names no resource (a null among EKS's cluster names):
    `reason` says which listing and shows the item. It has no ARN to report it under and may be
    a resource with open findings, so the listing's error is reported and no finding of the type
    is resolved in the target; the listing's other resources are evaluated."""

    reason: str


@dataclass(frozen=True)
class ScanScope:
    """Where a source collects: one member account and region, through its clients.

    `include_global` is true for one region per account only, so global services (IAM) are
    scanned once per account instead of once per region. `member_regions` are the member's
    regions, each one target of the scan: a regional source whose listing reaches other regions
    (S3 lists an account's buckets of every region) says, in the `include_global` scope, what
    no target scans.
    """

    account_id: str
    region: str
    include_global: bool
    member_regions: tuple[str, ...]
    client: Callable[[str], Any]
    scanned_on: date
    """The scan's day in UTC: what a source judges by date (a runtime's end of support)."""
    next_page_allowed: Callable[[], bool] = lambda: True
    """Whether a source may ask a listing's next page (`checks._aws.listed`): False once the
    invocation's time for reading is out, so a listing whose pages never end stops there."""


@dataclass(frozen=True)
class ResourceSource:
    """Lists and describes the resources of one ASFF type.

    `collect` yields resources; a resource whose attributes could not be read is yielded with
    an `error` attribute, so that one unreadable bucket is reported and the others still run,
    and a listed item that names no resource as an `UnreadableListingItem`.
    """

    resource_type: str
    global_service: bool
    api_calls: tuple[str, ...]
    iam_actions: tuple[str, ...]
    collect: Callable[[ScanScope], Iterable[Resource | UnreadableListingItem]]


@dataclass(frozen=True)
class Check:
    """One compliance control evaluated on every resource of `resource_type`."""

    control_id: str
    title: str
    severity: FindingSeverity
    resource_type: str
    remediation: str
    evaluate: Callable[[Resource], str | None]
    """The reason the resource fails the control, or None when it complies."""


NOT_SCANNED = "not_scanned"
"""The attribute of a resource a source lists but no target of the scan evaluates (its value
says why): it is reported in the target's result, so that no findings never reads as every
resource checked."""

PARTIALLY_SCANNED = "partially_scanned"
"""The attribute of a resource its source read only in part, within the scan's budget (a
function's aliases and versions past those whose policies are read): the controls that judge
what was left unread, each with why. The resource is evaluated, a control failing on what was
read is a finding, but one passing resolves none of its open findings on the resource, and the
resource is listed in the target's result as not scanned, so that no finding never reads as
the whole resource checked."""

_SOURCES: dict[str, ResourceSource] = {}
_CHECKS: dict[str, Check] = {}


def register_source(source: ResourceSource) -> ResourceSource:
    """Add a resource source; one per resource type."""
    if source.resource_type in _SOURCES:
        raise ValueError(f"resource type {source.resource_type} already has a source")
    _SOURCES[source.resource_type] = source
    return source


def check(
    control_id: str,
    *,
    title: str,
    severity: FindingSeverity,
    resource_type: str,
    remediation: str,
) -> Callable[[Callable[[Resource], str | None]], Callable[[Resource], str | None]]:
    """Declare the decorated function as the evaluation of control `control_id`."""

    def register(evaluate: Callable[[Resource], str | None]) -> Callable[[Resource], str | None]:
        if control_id in _CHECKS:
            raise ValueError(f"control {control_id} is declared twice")
        _CHECKS[control_id] = Check(
            control_id=control_id,
            title=title,
            severity=severity,
            resource_type=resource_type,
            remediation=remediation,
            evaluate=evaluate,
        )
        return evaluate

    return register


def sources() -> Iterator[ResourceSource]:
    """Every registered resource source, in registration order."""
    yield from _SOURCES.values()


def sources_from(day: date) -> list[ResourceSource]:
    """Every registered resource source, in registration order rotated to start one source
    further each day: a target that runs out of time at every scan leaves other types unread
    each day, where a fixed order left the same last ones unread for good."""
    registered = list(_SOURCES.values())
    if not registered:
        return registered
    start = day.toordinal() % len(registered)
    return registered[start:] + registered[:start]


def is_global_type(resource_type: str) -> bool:
    """Whether `resource_type` belongs to a global service (IAM): scanned once per account, not
    per region."""
    source = _SOURCES.get(resource_type)
    return source is not None and source.global_service


def checks() -> tuple[Check, ...]:
    """Every registered check, in declaration order."""
    return tuple(_CHECKS.values())


def checks_for(resource_type: str) -> tuple[Check, ...]:
    """The checks that evaluate resources of `resource_type`."""
    return tuple(c for c in checks() if c.resource_type == resource_type)


def required_iam_actions() -> set[str]:
    """Every IAM action the sources need in a member account."""
    return {action for source in sources() for action in source.iam_actions}
