"""Scanning: evaluate the registry in one (account, region), compare with the last scan, export.

Per target: every source of the registry collects its resources through the member role, every
check of that resource type evaluates each resource. The failing (control, resource) pairs are
compared with the open findings the state table remembers for the target: new ones are imported
as NEW (and alerted when critical), gone ones are imported again as resolved. A finding is only
resolved when its resource type was fully collected and its resource was readable this time, so
an access error, or an answer that is not its call's (`checks._aws.listed`), never passes for a
fix. Targets run concurrently in a bounded thread pool; one
denied account is reported and the others go on. Member calls and Security Hub's are bounded
(`MEMBER_CALL_CONFIG`, `SECURITY_HUB_CALL_CONFIG`; SNS and the state table have the fleet's hub
bounds), and an endpoint that did not answer one is refused for the rest of the invocation, so
endpoints out of reach cost a target at most HUNG_ENDPOINTS_SECONDS.

The alerts of new critical findings go through an outbox kept with the target's open findings:
saved with them before anything is published, delivered with `deliver_all` (one claim per
finding and first sighting), and emptied only once all went out. When SNS fails, the
invocation fails (the platform retries it) and the alerts still in the outbox are delivered by
the next scan of the target, those already sent never twice. The target's state is saved only
if no other scan of the target saved it since this one read it, so two scans at once never
both take a finding for new and alert it twice.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from pydantic import ValidationError

from fleet_shared.alert_delivery import deliver_all
from fleet_shared.alerts import Alert, Severity
from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import MemberAccessError, PagesCutShortError
from fleet_shared.fan_out import Deadline, TimeBudget, map_isolated
from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.sessions import (
    HUB_CALL_CONFIG,
    HUB_CALL_SECONDS,
    STATE_TABLE_CALL_SECONDS,
    bounded_config,
    longest_hung_call_seconds,
)
from fleet_shared.state_table import ClaimDeadline, VersionedValue
from fleet_shared.target_results import DENIED, FAILED
from fleet_shared.target_results import TargetResult as SharedTargetResult
from fleet_shared.validation_errors import cut_echo
from handlers.security_scanner import registry
from handlers.security_scanner.checks import load_checks
from handlers.security_scanner.environment import ScannerEnvironment
from handlers.security_scanner.exceptions import SecurityHubImportError, UnreadableScanStateError
from handlers.security_scanner.findings import Finding, iso_timestamp
from handlers.security_scanner.registry import FindingSeverity, ScanScope
from handlers.security_scanner.saved_targets import SavedTarget, note_saved_target
from handlers.security_scanner.security_hub import import_findings

SOURCE = "security_scanner"
STATE_NAME = "open_findings"
GLOBAL_STATE_REGION = "global"
"""The state key's region part for an account's findings on global services: they belong to
the account, and stay there when its first region (the one that scans them) changes."""
SCANNED = "scanned"
COMPRESSED = "compressed"
"""The one field of a saved state: its JSON, zlib-compressed, in base64."""
COMPRESSION_LEVEL = 9
ALERT_DELIVERY_SECONDS = 30 * 24 * 3600
"""How long a delivered finding alert is remembered: longer than any outbox waits for SNS."""

MEMBER_SERVICES = frozenset({"s3", "ec2", "iam", "eks", "lambda", "sqs", "sns"})
"""The member services the checks' sources call: one endpoint each per target (IAM's only in the
account's first region)."""
MEMBER_ENDPOINT_GIVEN_UP_AFTER = 1
"""Unanswered calls after which a target's endpoint is given up for the rest of the invocation
(`AccountSessions.watched_member_client`): one, where eks_scaler waits for two, since a source's
calls are alike and small (a page of a listing, one resource's policy or attributes), so one whose
every attempt timed out is the endpoint's, and each next resource would wait as long. The
endpoint, one service in one account and region, is the target's own."""
MEMBER_CONNECT_TIMEOUT_SECONDS = 2
MEMBER_READ_TIMEOUT_SECONDS = 6
"""The sources' calls answer within a second or two; an endpoint silent this long is not going
to answer."""
MEMBER_ATTEMPTS = 3
"""One more than eks_scaler's two: a scan reads every resource of an account (IAM's policies one
role and user at a time), and standard mode retries a throttled read after up to 1 and 2 s."""
MEMBER_CALL_CONFIG = bounded_config(
    connect_seconds=MEMBER_CONNECT_TIMEOUT_SECONDS,
    read_seconds=MEMBER_READ_TIMEOUT_SECONDS,
    attempts=MEMBER_ATTEMPTS,
)
HUNG_MEMBER_CALL_SECONDS = longest_hung_call_seconds(MEMBER_CALL_CONFIG)
"""The longest one member call takes when its endpoint never answers (25 s): that resource type
is listed in the target's errors and the scan goes on. With botocore's defaults (60 s to connect,
60 s to read, 6 attempts) one hung call took about 6 minutes, and the next resource's as long
again: Lambda ended the scan, with no report and no list of the targets it had not come to."""
SECURITY_HUB_CONNECT_TIMEOUT_SECONDS = 2
SECURITY_HUB_READ_TIMEOUT_SECONDS = 5
"""BatchImportFindings of one batch (100 findings at most) answers within a second or two in the
function's own region; an endpoint silent this long is not going to answer."""
SECURITY_HUB_ATTEMPTS = 4
"""More than the hub's other calls make: BatchImportFindings is throttled at 10 calls a second
per account and region, which the scans of the queue's targets, running at once, can pass;
standard mode retries it after waiting up to 1, 2 and 4 s."""
SECURITY_HUB_CALL_CONFIG = bounded_config(
    connect_seconds=SECURITY_HUB_CONNECT_TIMEOUT_SECONDS,
    read_seconds=SECURITY_HUB_READ_TIMEOUT_SECONDS,
    attempts=SECURITY_HUB_ATTEMPTS,
)
SECURITY_HUB_CALL_SECONDS = longest_hung_call_seconds(SECURITY_HUB_CALL_CONFIG)
"""The longest one import takes when Security Hub never answers (29 s): that target fails, its
state unsaved, and Security Hub is refused at once for the rest of the invocation, so each later
target fails without waiting. With botocore's defaults one hung import took up to 12 minutes,
and the next target's as long again: Lambda ended the scan."""
FAN_OUT_CALL_CONFIG = HUB_CALL_CONFIG
"""The fan-out's SendMessageBatch (ten small bodies at most, to the function's own queue in its
own region) answers within a second, as the hub's SNS and S3 calls do: their bounds, 2 s to
connect, 5 s to read, 2 attempts."""
FAN_OUT_CALL_SECONDS = longest_hung_call_seconds(FAN_OUT_CALL_CONFIG)
"""The longest one send of the fan-out takes when SQS never answers (15 s): SQS is then not asked
again in the invocation, and the run fails naming the targets it did not send. With botocore's
defaults (60 s to connect, 60 s to read, 6 attempts) one hung send took up to 12 minutes of the
900 s, and the run failed naming nothing."""
HUNG_ENDPOINTS_SECONDS = (
    len(MEMBER_SERVICES) * HUNG_MEMBER_CALL_SECONDS
    + SECURITY_HUB_CALL_SECONDS
    + HUB_CALL_SECONDS
    + STATE_TABLE_CALL_SECONDS
)
"""What endpoints that never answer add to a target's scan (232 s): its member endpoints, Security
Hub, SNS (its alerts) and the state table, each given up for the invocation after one such call.
A direct scan starts a target only with this much time left beyond SCAN_TARGET_SECONDS and the
report's (`REPORT_SECONDS`), so an endpoint out of reach cannot keep it, or the
run's report after it, past Lambda's timeout."""

REPORT_SECONDS = HUB_CALL_SECONDS
"""What a scan's report takes after its last target when S3 never answers (15 s): its one
PutObject. The save of a direct scan's targets left needs no time of its own: the state table's
one unanswered call is already in each target's HUNG_ENDPOINTS_SECONDS, and after it the table
is refused at once."""
FINISH_SECONDS = (
    HUNG_MEMBER_CALL_SECONDS
    + SECURITY_HUB_CALL_SECONDS
    + HUB_CALL_SECONDS
    + STATE_TABLE_CALL_SECONDS
    + REPORT_SECONDS
)
"""The time a target's scan keeps for itself once it reads on (97 s): one more member call,
then its import, its alerts, its saved state and the report, each when its endpoint never
answers. With less left, it reads no further (`evaluate`): what it read is imported, its
findings of the resource types left are kept open, and the result names those types. A target
of thousands of resources (or pages that never end) otherwise read on until Lambda ended the
invocation, with no report, its state unsaved, and a queued target failing the same way at each
retry."""
TIME_RAN_OUT = "the invocation's time ran out"


class ScanDeadline(ClaimDeadline, Deadline, Protocol):
    """What a scan asks of the invocation (`fleet_shared.handler.Invocation`): how long its
    alerts' delivery claims may block, and whether a read still fits in the time left."""


NOT_SCANNED_LISTED = 20
"""How many of a target's resources not scanned its result names (all are counted): enough to
recognise them, few enough for an account with thousands of buckets elsewhere."""


class ScanServices(WatchedMemberServices[ScannerEnvironment]):
    """The hub-side dependencies of a scan."""

    member_call_config = MEMBER_CALL_CONFIG
    member_calls_given_up_after = MEMBER_ENDPOINT_GIVEN_UP_AFTER

    @cached_property
    def security_hub(self) -> Any:
        """Security Hub of the hub account, where every finding is imported: its calls bounded
        by `SECURITY_HUB_CALL_CONFIG`, and refused once one was left unanswered in the
        invocation."""
        return self.sessions.watched_hub_client("securityhub", None, SECURITY_HUB_CALL_CONFIG)

    @cached_property
    def s3(self) -> Any:
        """S3 of the hub account: the inventory and the reports, refused once a call was left
        unanswered in the invocation (`sessions.WATCHED_HUB_SERVICES`)."""
        return self.hub_client("s3")

    @cached_property
    def sqs(self) -> Any:
        """SQS of the hub account, the fan-out queue: its calls bounded by
        `FAN_OUT_CALL_CONFIG`, and refused once one was left unanswered in the invocation."""
        return self.sessions.watched_hub_client("sqs", None, FAN_OUT_CALL_CONFIG)


@dataclass
class Evaluation:
    """What one pass over the registry found in a target."""

    failing: list[Finding] = field(default_factory=list)
    complete_types: set[str] = field(default_factory=set)
    unreadable_arns: set[str] = field(default_factory=set)
    errors: list[dict[str, str]] = field(default_factory=list)
    not_scanned: dict[str, str] = field(default_factory=dict)
    """The resources listed that no target of the scan evaluates, or evaluates in part: ARN ->
    why."""
    partially_scanned: set[tuple[str, str]] = field(default_factory=set)
    """(control id, ARN) of the controls a resource was read for only in part: passing them
    resolves none of its findings."""


@dataclass
class TargetResult(SharedTargetResult):
    """The outcome of scanning one (account, region): `scanned`, `denied` or `failed`."""

    findings: list[Finding] = field(default_factory=list)
    new: list[Finding] = field(default_factory=list)
    resolved: list[Finding] = field(default_factory=list)
    not_scanned: dict[str, str] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        """Counts of open, new and resolved findings, open findings by severity, and the
        resources no target scanned (their count, the first NOT_SCANNED_LISTED and why)."""
        details: dict[str, Any] = {
            "findings": len(self.findings),
            "new": len(self.new),
            "resolved": len(self.resolved),
            "by_severity": _count_by_severity(self.findings),
        }
        if self.not_scanned:
            details["not_scanned"] = {
                "count": len(self.not_scanned),
                "resources": sorted(self.not_scanned)[:NOT_SCANNED_LISTED],
                "reasons": sorted(set(self.not_scanned.values())),
            }
        return details


def state_key(account_id: str, region: str) -> str:
    """The state table key of a target's open findings."""
    return f"{SOURCE}/{account_id}/{region}"


def evaluate(scope: ScanScope, first_seen: str, deadline: Deadline | None = None) -> Evaluation:
    """Run every applicable source and check in `scope`; `first_seen` stamps new findings.
    With a `deadline`, no resource is read once it leaves less than FINISH_SECONDS: the
    resource types read in part or not at all are listed in the errors, with their controls;
    the types are read in an order that starts one type further each day
    (`registry.sources_from`), so no type is always the one time runs out before.

    Raises `MemberAccessError` when the member role cannot be assumed (the first client does).
    """
    load_checks()
    result = Evaluation()
    for source in registry.sources_from(scope.scanned_on):
        if source.global_service and not scope.include_global:
            continue
        checks = registry.checks_for(source.resource_type)
        if not _time_to_read(deadline):
            result.errors.append(_left_unread(source.resource_type, checks, "not read"))
            continue
        try:
            resources, whole = _read_in_time(source.collect(scope), deadline)
        except MemberAccessError:
            raise
        except AWS_CALL_ERRORS as error:
            result.errors.append(
                {"resource_type": source.resource_type, "error": call_error_text(error)}
            )
            continue
        if whole:
            result.complete_types.add(source.resource_type)
        else:
            result.errors.append(_left_unread(source.resource_type, checks, "read in part"))
        for resource in resources:
            if isinstance(resource, registry.UnreadableListingItem):
                result.errors.append(
                    {"resource_type": source.resource_type, "error": resource.reason}
                )
                result.complete_types.discard(source.resource_type)
                continue
            if registry.NOT_SCANNED in resource.attributes:
                result.not_scanned[resource.arn] = resource.attributes[registry.NOT_SCANNED]
                continue
            if "error" in resource.attributes:
                result.unreadable_arns.add(resource.arn)
                result.errors.append(
                    {"resource": resource.arn, "error": resource.attributes["error"]}
                )
                continue
            unread: dict[str, str] = resource.attributes.get(registry.PARTIALLY_SCANNED, {})
            for control_id, why in unread.items():
                result.partially_scanned.add((control_id, resource.arn))
                result.not_scanned[resource.arn] = f"{control_id}: {why}"
            for control in checks:
                reason = control.evaluate(resource)
                if reason is None:
                    continue
                result.failing.append(
                    Finding(
                        control_id=control.control_id,
                        title=control.title,
                        severity=control.severity,
                        resource_arn=resource.arn,
                        resource_type=resource.resource_type,
                        account_id=scope.account_id,
                        region=scope.region,
                        remediation=control.remediation,
                        detail=reason,
                        first_seen=first_seen,
                    )
                )
    return result


def _time_to_read(deadline: Deadline | None) -> bool:
    """Whether a target may read on: the invocation leaves it FINISH_SECONDS after one more
    call."""
    return deadline is None or deadline.allows(FINISH_SECONDS)


def _read_in_time(
    resources: Iterable[registry.Resource | registry.UnreadableListingItem],
    deadline: Deadline | None,
) -> tuple[list[registry.Resource | registry.UnreadableListingItem], bool]:
    """The resources a source yields while there is time to read (the next one may take a
    call), and whether they are all of them: not when a listing was cut short before its next
    page (`ScanScope.next_page_allowed`)."""
    read: list[registry.Resource | registry.UnreadableListingItem] = []
    try:
        for resource in resources:
            read.append(resource)
            if not _time_to_read(deadline):
                return read, False
    except PagesCutShortError:
        return read, False
    return read, True


def _left_unread(
    resource_type: str, checks: tuple[registry.Check, ...], how: str
) -> dict[str, str]:
    """The error of a resource type the target read in part or not at all (`how`) for lack of
    time: none of its findings is resolved, and the controls it leaves unjudged are named."""
    controls = ", ".join(check.control_id for check in checks)
    return {"resource_type": resource_type, "error": f"{how}: {TIME_RAN_OUT} ({controls})"}


def scan_target(
    services: ScanServices,
    account_id: str,
    region: str,
    *,
    member_regions: tuple[str, ...],
    dry_run: bool,
    deadline: ScanDeadline | None,
) -> TargetResult:
    """Scan one target, one of the member's `member_regions`, and export the differences with
    the last scan (unless `dry_run`); global services are scanned in the member's first region.
    The alerts' delivery claims are bound to `deadline` (the invocation), and the target reads
    only while it leaves FINISH_SECONDS."""
    now = services.clock.now()
    include_global = region == member_regions[0]
    scope = ScanScope(
        account_id=account_id,
        region=region,
        include_global=include_global,
        member_regions=member_regions,
        client=lambda service: services.member_client(service, account_id, region),
        scanned_on=now.astimezone(UTC).date(),
        next_page_allowed=lambda: _time_to_read(deadline),
    )
    try:
        evaluation = evaluate(scope, iso_timestamp(now), deadline)
    except MemberAccessError as error:
        return TargetResult(account_id, region, DENIED, error=str(error))

    key = state_key(account_id, region)
    global_key = state_key(account_id, GLOBAL_STATE_REGION)
    try:
        saved_before = saved_state(services, key)
        previous = saved_before.findings
        if include_global:
            previous = _with_account_global_findings(services, global_key, previous)
    except UnreadableScanStateError as error:
        return TargetResult(account_id, region, FAILED, error=str(error))
    read, outbox = saved_before.read, saved_before.outbox
    known_global = {(f.control_id, f.resource_arn): f for f in previous.values() if _is_global(f)}
    current: dict[str, Finding] = {}
    for finding in evaluation.failing:
        known = previous.get(finding.id) or known_global.get(
            (finding.control_id, finding.resource_arn)
        )
        # A global finding keeps the region it was first found from, and so its id, when the
        # account's first region changes.
        kept = (
            replace(finding, region=known.region, first_seen=known.first_seen)
            if known is not None
            else finding
        )
        current[kept.id] = kept
    new = [f for fid, f in current.items() if fid not in previous]
    resolved_ids = sorted(
        fid
        for fid, f in previous.items()
        if fid not in current
        and f.resource_type in evaluation.complete_types
        and f.resource_arn not in evaluation.unreadable_arns
        and (f.control_id, f.resource_arn) not in evaluation.partially_scanned
    )
    resolved = [previous[fid].resolved() for fid in resolved_ids]
    # Findings neither seen again nor resolved (their resource could not be read) stay open.
    remembered = {fid: f for fid, f in previous.items() if fid not in resolved_ids} | current
    result = TargetResult(
        account_id,
        region,
        SCANNED,
        findings=list(current.values()),
        new=new,
        resolved=resolved,
        errors=evaluation.errors,
        not_scanned=evaluation.not_scanned,
    )
    if dry_run:
        return result
    imported = [*current.values(), *resolved]
    try:
        import_findings(
            services.security_hub,
            hub_account_id=services.sessions.hub_account_id,
            hub_region=services.sessions.home_region,
            now=now,
            findings=imported,
            new_ids={f.id for f in new},
        )
    except (SecurityHubImportError, *AWS_CALL_ERRORS) as error:
        refused = error.refused if isinstance(error, SecurityHubImportError) else {}
        if not refused or not set(refused) <= {f.id for f in imported}:
            result.status = FAILED
            result.error = f"Security Hub import failed: {call_error_text(error)}"
            return result
        # Security Hub took the others: the refused ones alone wait for the next scan, which
        # imports them again, so one finding it refuses at every import (an invalid one) costs
        # neither the target's other findings nor their alerts.
        new, remembered = _without_refused(refused, new, remembered, previous, resolved)
        result.new = new
        result.resolved = [f for f in resolved if f.id not in refused]
        result.errors = [
            *result.errors,
            *(
                {"finding": fid, "error": cut_echo(f"Security Hub refused it: {reason}")}
                for fid, reason in sorted(refused.items())
            ),
        ]
    queued = {alert.id for alert in outbox}
    # A finding still waiting in the outbox is new again when its global record was not
    # saved: its alert is the one already queued, not a second one.
    outbox += [
        alert
        for alert in (_alert(f, now) for f in new if f.severity is FindingSeverity.CRITICAL)
        if alert.id not in queued
    ]
    global_findings: dict[str, Any] = {}
    if include_global:
        global_findings = {fid: f.to_state() for fid, f in remembered.items() if _is_global(f)}
        remembered = {fid: f for fid, f in remembered.items() if not _is_global(f)}
    open_findings = {fid: f.to_state() for fid, f in remembered.items()}
    # The outbox is saved first: once a global finding is remembered as open it is never new
    # again, so its alert must already be queued.
    saved = {"findings": open_findings, "outbox": [a.model_dump(mode="json") for a in outbox]}
    # Noted before saving: the states of an account that leaves the inventory are found by the
    # index alone (`left_accounts`).
    note_saved_target(services.state, SavedTarget(account_id, region))
    if include_global:
        note_saved_target(services.state, SavedTarget(account_id, GLOBAL_STATE_REGION))
    if not services.state.replace_value(key, STATE_NAME, _saved_form(saved), read=read):
        # Another scan of the target saved its state since this one read it: its comparison
        # stands, and its outbox holds the alerts of the findings both took for new.
        result.status = FAILED
        result.error = "another scan of this target saved its findings first"
        return result
    if include_global:
        services.state.put_value(global_key, STATE_NAME, _saved_form({"findings": global_findings}))
    if outbox:
        deliveries = [(_delivery_key(alert), alert) for alert in outbox]
        deliver_all(
            services.state,
            services.alerts,
            deliveries,
            ALERT_DELIVERY_SECONDS,
            deadline=deadline,
        )
        _empty_outbox(services, key, saved)
    return result


def _without_refused(
    refused: dict[str, str],
    new: list[Finding],
    remembered: dict[str, Finding],
    previous: dict[str, Finding],
    resolved: list[Finding],
) -> tuple[list[Finding], dict[str, Finding]]:
    """The new findings and those to remember once Security Hub refused the findings of
    `refused`: a refused new one is neither alerted nor remembered (the next scan finds it new
    again), a refused fix leaves its finding open (the next scan imports the fix again)."""
    fixed = {f.id for f in resolved}
    kept = {fid: f for fid, f in remembered.items() if fid in previous or fid not in refused}
    kept |= {fid: previous[fid] for fid in refused if fid in fixed}
    return [f for f in new if f.id not in refused], kept


def _empty_outbox(services: ScanServices, key: str, saved: dict[str, Any]) -> None:
    """Empty the outbox this scan saved and delivered, unless another scan of the target saved
    its state since: that state's outbox holds these alerts too, and delivering them again
    (by that scan or the next) sends nothing twice."""
    read = services.state.get_versioned_value(key, STATE_NAME)
    if read is not None and stored_state(read.value) == saved:
        emptied = _saved_form({**saved, "outbox": []})
        services.state.replace_value(key, STATE_NAME, emptied, read=read)


def stored_state(value: dict[str, Any] | None) -> dict[str, Any]:
    """The open findings (and outbox) of a target, or of an account's global services, from
    what the state table holds: nothing yet is no finding, and the uncompressed form earlier
    versions saved is read as it is."""
    if value is None:
        return {"findings": {}}
    if COMPRESSED in value:
        return json.loads(zlib.decompress(base64.b64decode(value[COMPRESSED])))
    return value


def _saved_form(state: dict[str, Any]) -> dict[str, Any]:
    """`state` as the state table keeps it: compressed, since a DynamoDB item holds at most
    400 KB and a target's findings written out in full pass that at about 600 (their texts
    repeat, so compressed they take a few dozen bytes each)."""
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    compressed = zlib.compress(text.encode("utf-8"), COMPRESSION_LEVEL)
    return {COMPRESSED: base64.b64encode(compressed).decode("ascii")}


def _with_account_global_findings(
    services: ScanServices, global_key: str, previous: dict[str, Finding]
) -> dict[str, Finding]:
    """The target's remembered findings with the account's global ones (IAM), which are kept
    under the account, not under whichever region scanned them. Before the first scan that
    keeps them there, they are the ones in this target's own state, the first region's. Raises
    UnreadableScanStateError when the global ones cannot be read."""
    saved = saved_state(services, global_key)
    if saved.read is None:
        return previous
    regional = {fid: f for fid, f in previous.items() if not _is_global(f)}
    return regional | saved.findings


@dataclass(frozen=True)
class SavedState:
    """A state of open findings as read: the item (None: nothing saved, or it expired), its
    findings by id and its outbox's alerts."""

    read: VersionedValue | None
    findings: dict[str, Finding]
    outbox: list[Alert]


def saved_state(services: ScanServices, key: str) -> SavedState:
    """The state of open findings saved under `key`. Raises UnreadableScanStateError, naming
    what is wrong and never the content, when it cannot be read: base64, zlib, json and pydantic
    would otherwise raise errors no caller handles, ending the scan of every target, and
    pydantic's would repeat the content."""
    try:
        read = services.state.get_versioned_value(key, STATE_NAME)
    except (KeyError, ValueError):
        # The item has no data attribute, or one that is not JSON.
        raise UnreadableScanStateError(key, "its item holds no JSON value") from None
    try:
        stored = stored_state(None if read is None else read.value)
    except (TypeError, ValueError, RecursionError, zlib.error):
        raise UnreadableScanStateError(key, "it is not compressed JSON") from None
    records = stored.get("findings") if isinstance(stored, dict) else None
    if not isinstance(records, dict):
        raise UnreadableScanStateError(key, "it holds no map of findings")
    try:
        findings = {fid: Finding.from_state(record) for fid, record in records.items()}
    except (AttributeError, KeyError, TypeError, ValueError):
        raise UnreadableScanStateError(
            key, "a finding record is not one this version reads"
        ) from None
    alerts = stored.get("outbox", [])
    if not isinstance(alerts, list):
        raise UnreadableScanStateError(key, "its outbox is not a list")
    try:
        outbox = [Alert.model_validate(alert) for alert in alerts]
    except ValidationError:
        raise UnreadableScanStateError(key, "an alert of its outbox is not an alert") from None
    return SavedState(read, findings, outbox)


def _is_global(finding: Finding) -> bool:
    """Whether `finding` is about a global service's resource (scanned once per account)."""
    return registry.is_global_type(finding.resource_type)


def scan_targets(
    services: ScanServices,
    targets: list[tuple[str, str, tuple[str, ...]]],
    *,
    max_workers: int,
    dry_run: bool,
    deadline: ScanDeadline | None,
    budget: TimeBudget | None = None,
) -> list[TargetResult]:
    """Scan (account, region, member regions) targets with at most `max_workers` at a time.

    Results come back in target order. An unexpected error in one target is reported for it.
    The alerts' delivery claims are bound to `deadline` (the invocation).
    With a `budget`, a target whose turn comes when the invocation could not finish it is not
    started (its result comes from the budget's `on_deadline`).
    """

    def scan(target: tuple[str, str, tuple[str, ...]]) -> TargetResult:
        account_id, region, member_regions = target
        return scan_target(
            services,
            account_id,
            region,
            member_regions=member_regions,
            dry_run=dry_run,
            deadline=deadline,
        )

    return map_isolated(
        targets,
        scan,
        on_error=lambda target, error: TargetResult(
            target[0], target[1], FAILED, error=call_error_text(error)
        ),
        errors=AWS_CALL_ERRORS,
        max_workers=max_workers,
        budget=budget,
    )


def report_document(results: list[TargetResult], now: datetime) -> dict[str, Any]:
    """The JSON report: per-target status, open findings and findings resolved by this scan."""
    return {
        "generated_at": iso_timestamp(now),
        "targets": [result.summary() for result in results],
        "findings": [f.to_report() for r in results for f in r.findings],
        "resolved": [f.to_report() for r in results for f in r.resolved],
    }


def write_report(services: ScanServices, key: str, document: dict[str, Any]) -> str:
    """Store the report in the data bucket; returns its key."""
    services.s3.put_object(
        Bucket=services.environment.data_bucket_name,
        Key=key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode("utf-8"),
        ContentType="application/json",
    )
    return key


def _alert(finding: Finding, now: datetime) -> Alert:
    return Alert.create(
        severity=Severity.CRITICAL,
        source=SOURCE,
        title=f"{finding.control_id} {finding.title}",
        detail=f"{finding.detail}. Remediation: {finding.remediation}",
        resource=finding.resource_arn,
        account_id=finding.account_id,
        region=finding.region,
        timestamp=now,
    )


def _delivery_key(alert: Alert) -> str:
    """One delivery per finding and first sighting: a finding fixed and failing again later
    alerts again."""
    return f"{SOURCE}/finding/{alert.id}/{alert.timestamp.isoformat()}"


def _count_by_severity(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.severity.value] = counts.get(finding.severity.value, 0) + 1
    return counts
