"""The cleanup of one (account, region), and of the whole fleet with a bounded pool.

Per resource (see candidates.py for what a candidate is), the decision is:

| candidate now | mark              | action                                        |
|---------------|-------------------|-----------------------------------------------|
| yes           | none              | mark: delete-after = today + notice days      |
| yes           | date not reached  | pending (nothing to do)                       |
| yes           | date reached      | delete (mode `delete`), due (mode `notify`)   |
| no            | any               | spare: remove the mark                        |

"Today" is the run's date in the stack's schedule time zone, the one its daily schedule fires in,
and "date reached" means that date is on or after the mark's date. Not the UTC date: the daily
19:00 of New York is 23:00 UTC in summer and 00:00 UTC the next day in winter, so a mark made in
the week before the clocks go back would be reached a day early, six days into seven. In the
policy's `notify` mode a due resource keeps its mark and is reported, never deleted. In `delete`
mode a resource is deleted only once a notice said it would be (announce_marks) at least the
notice days before; else it is marked afresh, or, when that notice went out late (SNS failing for
days), its mark is moved to the notice days after the notice, and a notice gives the new date.
A snapshot or volume to be deleted, or due in notify mode, is described again first and
decided on as it is then (candidates.as_it_is_now): the target was listed whole before any
action, and an engineer may have tagged it keep, lifted its mark, registered an AMI from the
snapshot, named it in a launch template or configuration, or shared it, since (in notify mode,
at any time since its mark: a due resource is never deleted, so without this its report would
stay what it was when marked). So are the versions of a Lambda function to be deleted or due, by
one ListTags, one ListAliases and one ListProvisionedConcurrencyConfigs of the function just
before the first of them: its owner may have tagged it keep, or taken off a tag the policy's
filter requires, and an alias may have come to point at one, or weight it, or provisioned
concurrency been configured on it. The references that guard many resources at once (the
target's launch templates and configurations, its event source mappings) are read again once
per target, just before the first deletion they guard (candidates.ReadOnce).
A failed call on one resource is counted and reported, and the others go on, except a member
endpoint that does not answer (`NO_ANSWER`, or a call run to its bound throttled): it is given up
for the rest of the invocation (`MEMBER_ENDPOINT_GIVEN_UP_AFTER`), so the target's later calls to
it are not made, since each would wait as long, and their resources are reported as failed. A
kind whose listing fails is reported and not acted on, and the target's other kinds go on. A
target whose member role cannot be assumed is reported as denied and the other targets go on. In
dry run every decision is reported and nothing is called that changes anything (no tags, no
deletions, no state, no alert).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from fleet_shared.access_episodes import SETTLE_ACCOUNT_SECONDS, note_refused_call
from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_all
from fleet_shared.alerts import Alert, Severity, alert_id
from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.cleanup_policy import LAMBDA_VERSIONS, CleanupPolicy, ResourceKind
from fleet_shared.exceptions import (
    MemberAccessError,
    PagesCutShortError,
    UnreadableStateValueError,
)
from fleet_shared.fan_out import NOT_STARTED, Deadline, TimeBudget, map_isolated
from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.lost_answers import gone_on_retry
from fleet_shared.observability import observability_for
from fleet_shared.sessions import (
    HUB_CALL_SECONDS,
    STATE_TABLE_CALL_SECONDS,
    bounded_config,
    longest_hung_call_seconds,
)
from fleet_shared.state_table import ClaimDeadline
from fleet_shared.target_results import DENIED, FAILED, OK, PARTIAL
from fleet_shared.target_results import TargetResult as SharedTargetResult
from fleet_shared.targets_left import (
    TargetsLeftList,
    in_turn_order,
    stored_account_region,
)
from fleet_shared.unanswered_endpoints import EndpointNotAnsweringError
from handlers.cleanup_manager.candidates import (
    ALIASED,
    LAMBDA_VERSION,
    MAPPED,
    NO_TIME_LEFT,
    NOT_FOUND_CODES,
    PROVISIONED,
    SNAPSHOT,
    VOLUME,
    CallsAllowed,
    ReadOnce,
    Resource,
    SharedSnapshots,
    alias_versions,
    as_it_is_now,
    find_resources,
    function_held,
    lambda_mark,
    launch_sources,
    mapped_versions,
    mark_tag,
    provisioned_versions,
)
from handlers.cleanup_manager.environment import CleanupEnvironment
from handlers.cleanup_manager.lambda_marks import (
    LAMBDA_MARKS,
    SavedMarks,
    read_marks,
    save_marks,
)

SOURCE = "cleanup_manager"
logger = observability_for(SOURCE).logger
ANNOUNCED = "announced"
DELETING = "deleting"
"""The resources of an announced-marks record whose notice said they would be deleted."""
EARLIER_NOTICE = "earlier_notice"
"""The resources of an announced-marks record whose deletion an earlier notice, of the date
their mark was moved from, announced on the record's `published_on`."""
PUBLISHED_ON = "published_on"
"""The run's date on which a notice went out (its items of an announced-marks record)."""
ANNOUNCED_MARGIN_DAYS = 30
"""How long an announced-marks record outlives its marks' date, for a run that comes late."""
ANNOUNCED_PART_ENTRIES = 5_000
"""The digests one item of an announced-marks record lists at most: about 190 KB with those
for deletion listed again, within DynamoDB's 400 KB item."""
NOTICE_LISTED_RESOURCES = 100
"""The resources a notice names one by one: thousands of marks would take it past SNS's 256 KB
message limit, and SNS would refuse it on every run."""
TARGETS_LEFT = TargetsLeftList(f"{SOURCE}/targets-not-started", "targets", ttl_seconds=3 * 86400)
"""The targets a run did not start, `{account_id, region}` each, for the next run to start
with; kept longer than the day between two runs (a forgotten list only means the next run
starts in inventory order)."""
MEMBER_ENDPOINT_GIVEN_UP_AFTER = 1
"""Unanswered calls after which a target's EC2, Auto Scaling or Lambda endpoint is given up for
the rest of the invocation (`AccountSessions.watched_member_client`): one, where eks_scaler
waits for two, since a target's calls to one service are few and alike (a page of a listing, a
tag, a delete), so one whose every attempt timed out, or that ran to its bound throttled, is the
endpoint's, and the next would wait as long. The endpoint is the target's own (one account and
region, each a target once)."""
MEMBER_CONNECT_TIMEOUT_SECONDS = 5
MEMBER_READ_TIMEOUT_SECONDS = 10
"""A target's calls (a page of a listing, a tag, a delete) answer within seconds; an endpoint
that hangs is given up after this long without a byte."""
MEMBER_ATTEMPTS = 6
MEMBER_CONFIG = bounded_config(
    connect_seconds=MEMBER_CONNECT_TIMEOUT_SECONDS,
    read_seconds=MEMBER_READ_TIMEOUT_SECONDS,
    attempts=MEMBER_ATTEMPTS,
)
"""One member call that hangs fails within 92 s, HUNG_MEMBER_CALL_SECONDS (the fleet's 6 attempts,
kept so that a region's throttled CreateTags or DeleteSnapshot calls still back off, of 5 s to
connect and 10 s to read). With botocore's default timeouts (60 s each) one hung call took 6
minutes, and with the next resource's call Lambda ended the 600 s run: no result, no notices, and
the targets the run had not come to were left for the next day."""
HUNG_MEMBER_CALL_SECONDS = longest_hung_call_seconds(MEMBER_CONFIG)
"""The longest one member call takes when its endpoint never answers: each attempt waits out both
timeouts, and botocore's waits between attempts after a timeout (50 ms, doubling) add under 2 s."""
HUNG_ENDPOINTS_SECONDS = 3 * HUNG_MEMBER_CALL_SECONDS
"""What member endpoints that never answer add to a target's time (276 s): EC2, Auto Scaling (its
launch configurations) and Lambda are each given up for the invocation after one such call, so a
target's calls after any point of it hang this long at most."""
NOTICE_SECONDS = STATE_TABLE_CALL_SECONDS + HUB_CALL_SECONDS
"""The time a mark notice needs left to start (28 s): its record's reads and writes and its
delivery claim, the state table hanging once at most (it is given up for the invocation after one
call it left unanswered), and its publish, SNS hanging once at most (given up alike). A notice
whose turn comes with less is left for the next run (announce_marks)."""
AFTER_TARGETS_SECONDS = SETTLE_ACCOUNT_SECONDS + NOTICE_SECONDS
"""What the targets leave in the invocation for the work after the last of them (56 s): settling
the access episodes, an account started only with more than SETTLE_ACCOUNT_SECONDS left, then the
mark notices, each started only with more than NOTICE_SECONDS left. The state table and SNS hang
once at most in all that (each is given up for the invocation after it), so the notices find
their own time when the settlement took its share, and the settlement's too when it took none."""
TARGET_RESERVE_SECONDS = HUNG_ENDPOINTS_SECONDS + AFTER_TARGETS_SECONDS
"""What a target keeps free in the invocation (332 s): its endpoints hanging, and the work after
the last target. A target starts only with this much left beyond CLEANUP_TARGET_SECONDS, a
listed resource's own reads start only so too (which keeps that estimate for acting on what was
listed), and a listing's next page and each action on a resource only with this much left, so a
target that outlasts CLEANUP_TARGET_SECONDS (thousands of candidates, listing pages that never
end) or whose endpoints hang still leaves the settling and the notices their time. With the
endpoints' 276 s alone, a night whose targets took their time left every account `not_settled`,
and its notices went out with no time check: Lambda could end the run while SNS hung, its
result lost."""
READ_ERRORS = (*AWS_CALL_ERRORS, PagesCutShortError)
"""What reading a resource again before acting on it may raise: a failed call, or a next page
not asked for lack of time."""
MARK = "mark"
PENDING = "pending"
DELETE = "delete"
DUE = "due"
SPARE = "spare"


class CleanupServices(WatchedMemberServices[CleanupEnvironment]):
    """The hub-side dependencies of a cleanup run."""

    member_call_config = MEMBER_CONFIG
    member_calls_given_up_after = MEMBER_ENDPOINT_GIVEN_UP_AFTER

    @property
    def policy(self) -> CleanupPolicy:
        """The stack's cleanup policy, from the environment."""
        return self.environment.cleanup_policy

    @cached_property
    def schedule_zone(self) -> ZoneInfo:
        """The zone whose days date the marks: the stack's schedule time zone."""
        return ZoneInfo(self.environment.schedule_time_zone)

    @cached_property
    def mark_tag(self) -> str:
        """The tag key of this stack's marks on snapshots and volumes (candidates.mark_tag)."""
        return mark_tag(self.environment.stack_name)

    def today(self) -> date:
        """The run's date in the schedule's zone: the date of marks and of notices sent."""
        return self.clock.now().astimezone(self.schedule_zone).date()

    @cached_property
    def notice(self) -> timedelta:
        """Time between the mark and the deletion."""
        return timedelta(days=self.policy.notice_days)


@dataclass
class TargetResult(SharedTargetResult):
    """The outcome of one (account, region); a failed resource is `{kind, id, error}`."""

    candidates: int = 0
    actions: list[dict[str, str]] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    """How many snapshots that would otherwise be candidates were kept, by why (`shared` with
    other accounts, `public`)."""
    access_denied: list[str] = field(default_factory=list)
    """The calls IAM refused (`sts:AssumeRole`, a listing's operation, the operation and resource
    of an action or of a read of one resource): the member's access episode (member_access.py)
    alerts on them."""

    def count(self, action: str) -> int:
        """How many resources got (or, in dry run, would get) `action`."""
        return sum(1 for entry in self.actions if entry["action"] == action)

    def details(self) -> dict[str, Any]:
        """Counts, then the actions, and the calls IAM refused when there are any."""
        denied = {"access_denied": self.access_denied} if self.access_denied else {}
        return {
            "candidates": self.candidates,
            "marked": self.count(MARK),
            "pending": self.count(PENDING),
            "deleted": self.count(DELETE),
            "due": self.count(DUE),
            "spared": self.count(SPARE),
            "kept": self.kept,
            "failed": len(self.errors),
            "actions": self.actions,
            **denied,
        }


def state_key(account_id: str, region: str) -> str:
    """The state table key of a target's Lambda version marks."""
    return f"{SOURCE}/{account_id}/{region}"


def decide(resource: Resource, today: date, *, deletes: bool) -> str:
    """The action for `resource` on `today` (the table in the module docstring); `deletes` is
    the policy's mode."""
    if not resource.candidate:
        return SPARE
    if resource.delete_after is None:
        return MARK
    if today < resource.delete_after:
        return PENDING
    return DELETE if deletes else DUE


def _apply(
    ec2: Any, lambda_client: Any, resource: Resource, action: str, mark: tuple[str, str]
) -> None:
    """Perform `action` on an EC2 resource or a Lambda version (whose marks the caller keeps);
    `mark` is the stack's mark tag and its value."""
    if resource.kind == LAMBDA_VERSION:
        if action == DELETE:
            lambda_client.delete_function(
                FunctionName=resource.function_name, Qualifier=resource.version
            )
        return
    if action == MARK:
        ec2.create_tags(Resources=[resource.id], Tags=[{"Key": mark[0], "Value": mark[1]}])
    elif action == SPARE:
        ec2.delete_tags(Resources=[resource.id], Tags=[{"Key": mark[0]}])
    elif action == DELETE and resource.kind == SNAPSHOT:
        ec2.delete_snapshot(SnapshotId=resource.id)
    elif action == DELETE and resource.kind == VOLUME:
        ec2.delete_volume(VolumeId=resource.id)


def _apply_unless_unanswered(
    ec2: Any,
    lambda_client: Any,
    resource: Resource,
    *,
    action: str,
    mark: tuple[str, str],
    result: TargetResult,
) -> str | None:
    """Perform `action` (see `_apply`) unless its endpoint did not answer earlier in the
    invocation (the watched member client refuses the call); the error met or why it was not
    tried, or None when done (a delete whose retry found the resource gone: the first attempt,
    whose answer was lost, deleted it). The error is cut to ECHO_LIMIT characters: a refusal's
    message is the member's answer (an SCP's or a proxy's, of any length), and a parser's error
    repeats the whole page it could not parse. A call IAM refused is noted in `result`'s
    access_denied."""
    try:
        _apply(ec2, lambda_client, resource, action, mark)
    except EndpointNotAnsweringError as refused:
        return f"not tried: {refused.cause}"
    except ClientError as error:
        if action == DELETE and gone_on_retry(error, NOT_FOUND_CODES[resource.kind]):
            return None
        note_refused_call(result.access_denied, error, resource.id)
        return call_error_text(error)
    except (BotoCoreError, ResponseParserError) as error:
        return call_error_text(error)
    return None


def _calls_member(resource: Resource, action: str, *, dry_run: bool) -> bool:
    """Whether `action` on `resource` calls its member endpoint: a deletion or a due resource is
    read again, and a snapshot or volume is tagged (a Lambda version's mark is the state
    table's); none in dry run but the reads."""
    if action in (DELETE, DUE):
        return True
    return not dry_run and resource.kind != LAMBDA_VERSION and action in (MARK, SPARE)


def clean_target(
    services: CleanupServices,
    account_id: str,
    region: str,
    *,
    dry_run: bool,
    deadline: Deadline,
) -> TargetResult:
    """Evaluate and clean one target; never raises for an AWS error.

    A listing's next page, and each action on a resource (reading it again, marking, sparing,
    deleting), are started only while `deadline` allows TARGET_RESERVE_SECONDS, and the reads of
    one listed resource (a snapshot's sharing, a function's versions) only while it allows a
    target's start (CLEANUP_TARGET_SECONDS more), which keeps that estimate for acting on what
    was listed; what is left is listed under the target's errors, its marks as they were, and a
    kind whose listing was cut short is not acted on at all. Before, a target that outlasted its
    estimate ran on until Lambda ended the run: no result, no notices, the targets not started
    not saved for the next run. So is a kind whose listing failed, or whose saved Lambda marks
    cannot be read (find_resources): it is listed under the errors as `{kind, id:
    <account>/<region>, error}`, and the target's other kinds are cleaned."""
    result = TargetResult(account_id, region)

    def acting_allowed() -> bool:
        return deadline.allows(TARGET_RESERVE_SECONDS)

    calls = CallsAllowed(
        next_page=acting_allowed,
        resource_reads=lambda: deadline.allows(
            services.environment.cleanup_target_seconds + TARGET_RESERVE_SECONDS
        ),
    )
    unlisted: dict[ResourceKind, Exception] = {}
    now = services.clock.now()
    today = now.astimezone(services.schedule_zone).date()
    new_mark = (today + services.notice).isoformat()
    key = state_key(account_id, region)
    try:
        ec2 = services.member_client("ec2", account_id, region)
        autoscaling = services.member_client("autoscaling", account_id, region)
        lambda_client = services.member_client("lambda", account_id, region)
    except MemberAccessError as error:
        result.status, result.error = DENIED, str(error)
        if error.refused:
            result.access_denied.append("sts:AssumeRole")
        return result
    # Lambda version marks are neither read nor rewritten when the policy leaves them out, nor
    # when they cannot be read: then that kind alone is not cleaned (nothing is saved over them).
    saved_marks = SavedMarks({}, frozenset())
    if services.policy.cleans(LAMBDA_VERSIONS):
        try:
            saved_marks = read_marks(services.state, key)
        except (ClientError, BotoCoreError, UnreadableStateValueError) as error:
            unlisted[LAMBDA_VERSIONS] = error
    stored_marks = saved_marks.marks
    failed_functions: dict[str, str] = {}
    tag_errors: list[dict[str, str]] = []
    shared = SharedSnapshots(kept=result.kept)
    resources = find_resources(
        services.policy,
        ec2,
        lambda_client,
        stored_marks,
        now,
        autoscaling=autoscaling,
        failed_functions=failed_functions,
        tag_errors=tag_errors,
        shared=shared,
        calls=calls,
        unlisted=unlisted,
        refused=result.access_denied,
        own_mark_tag=services.mark_tag,
    )

    result.candidates = sum(1 for resource in resources if resource.candidate)
    # A function that could not be read keeps its versions' marks for the next run, as do all
    # functions when their listing failed or was cut short.
    lambda_marks: dict[str, str] = {
        identifier: mark
        for identifier, mark in stored_marks.items()
        if LAMBDA_VERSIONS in unlisted or identifier.rsplit(":", 1)[0] in failed_functions
    }
    for kind, error in unlisted.items():
        result.errors.append(
            {"kind": kind, "id": f"{account_id}/{region}", "error": call_error_text(error)}
        )
        note_refused_call(result.access_denied, error)
    for function_name, error in failed_functions.items():
        result.errors.append({"kind": "lambda_function", "id": function_name, "error": error})
    result.errors.extend(tag_errors)
    result.errors.extend(shared.unreadable)
    deletion_notices: dict[date, AnnouncedMarks] = {}
    # Moved mark date -> the date the deletion was first announced -> digests (EARLIER_NOTICE).
    moved_marks: dict[date, dict[date, set[str]]] = {}
    # Function name -> the function as read just before its deletions, or the error met.
    functions_now: dict[str, FunctionNow | Exception] = {}
    # What launches and event source mappings use now, read again before the first deletion
    # each guards: either may have come to name a resource since the listing.
    launched_now = ReadOnce(lambda: launch_sources(ec2, autoscaling, acting_allowed))
    mapped_now = ReadOnce(lambda: mapped_versions(lambda_client, acting_allowed))
    for listed in resources:
        resource: Resource | None = listed
        action = decide(listed, today, deletes=services.policy.deletes)
        if _calls_member(listed, action, dry_run=dry_run) and not acting_allowed():
            result.errors.append(
                {"kind": listed.kind, "id": listed.id, "error": f"not tried: {NO_TIME_LEFT}"}
            )
            if listed.kind == LAMBDA_VERSION and listed.delete_after is not None:
                lambda_marks[listed.id] = _saved_mark(listed, listed.delete_after)
            continue
        # A due resource of notify mode is checked as a deletion would be: its report says
        # what a `delete` run would do, not what was true when it was marked.
        if action in (DELETE, DUE):
            try:
                resource = (
                    _function_rechecked(
                        lambda_client,
                        listed,
                        functions_now,
                        services.policy,
                        mapped_now=mapped_now,
                        tag_errors=result.errors,
                        next_page_allowed=acting_allowed,
                    )
                    if listed.kind == LAMBDA_VERSION
                    else as_it_is_now(
                        ec2,
                        listed,
                        services.policy,
                        now,
                        result.errors,
                        shared=shared,
                        launched_now=launched_now,
                        next_page_allowed=acting_allowed,
                        own_mark_tag=services.mark_tag,
                    )
                )
            except READ_ERRORS as error:
                note_refused_call(result.access_denied, error, listed.id)
                cause = (
                    f"not tried: {error.cause}"
                    if isinstance(error, EndpointNotAnsweringError)
                    else call_error_text(error)
                )
                result.errors.append({"kind": listed.kind, "id": listed.id, "error": cause})
                if listed.kind == LAMBDA_VERSION and listed.delete_after is not None:
                    # Not deleted on doubt: its mark stands for the next run.
                    lambda_marks[listed.id] = _saved_mark(listed, listed.delete_after)
                continue
            if resource is None or not resource.candidate:
                # No longer a candidate: the count says what this run acts on.
                result.candidates -= 1
                logger.info(
                    "due resource not deleted: changed since the listing",
                    extra={
                        "kind": listed.kind,
                        "id": listed.id,
                        "reason": "gone" if resource is None else resource.reason,
                    },
                )
            if resource is None:
                continue
            action = decide(resource, today, deletes=services.policy.deletes)
        marked_on = resource.delete_after
        reason = resource.reason
        mark = new_mark if marked_on is None else marked_on.isoformat()
        if action == DELETE and marked_on is not None:
            try:
                announced_on = _deletion_announced_on(
                    services, (account_id, region), resource, marked_on, deletion_notices
                )
            except (ClientError, BotoCoreError, UnreadableStateValueError) as error:
                # Not deleted on doubt; the target's other resources go on.
                result.errors.append(
                    {"kind": resource.kind, "id": resource.id, "error": str(error)}
                )
                if resource.kind == LAMBDA_VERSION:
                    lambda_marks[resource.id] = _saved_mark(resource, marked_on)
                continue
            if announced_on is None:
                # Its notice said nothing would be deleted (notify mode), or none went out: it is
                # marked afresh, and the new mark's notice announces the deletion first.
                action, marked_on, mark = MARK, None, new_mark
                reason = f"{reason}; its deletion was not announced yet"
            elif today < announced_on + services.notice:
                # The notice went out late (SNS or the router down for days): the mark moves to
                # the whole notice after it, and that date's notice says so.
                moved_to = announced_on + services.notice
                action, marked_on, mark = MARK, None, moved_to.isoformat()
                reason = (
                    f"{reason}; its deletion notice went out on {announced_on.isoformat()}, "
                    f"less than {services.policy.notice_days} days before: postponed to {mark}"
                )
                entry_digest = recorded_entry(notice_entry(region, resource.kind, resource.id))
                moved_marks.setdefault(moved_to, {}).setdefault(announced_on, set()).add(
                    entry_digest
                )
        entry = {
            "kind": resource.kind,
            "id": resource.id,
            "action": action,
            "reason": reason,
        }
        if action in (MARK, PENDING, DUE):
            entry["delete_after"] = mark
        if not dry_run and action not in (PENDING, DUE):
            error_text = _apply_unless_unanswered(
                ec2,
                lambda_client,
                resource,
                action=action,
                mark=(services.mark_tag, mark),
                result=result,
            )
            if error_text is not None:
                result.errors.append(
                    {"kind": resource.kind, "id": resource.id, "error": error_text}
                )
                if resource.kind == LAMBDA_VERSION and marked_on is not None:
                    lambda_marks[resource.id] = _saved_mark(resource, marked_on)
                continue
        result.actions.append(entry)
        if resource.kind == LAMBDA_VERSION and action in (MARK, PENDING, DUE):
            lambda_marks[resource.id] = lambda_mark(mark, resource.published)
    if not dry_run and moved_marks:
        try:
            _record_earlier_notices(services, account_id, moved_marks)
        except (ClientError, BotoCoreError) as error:
            # The moved marks stand; without this record, their date's notice alone counts, so
            # their deletion waits the whole notice after it: later, never sooner.
            result.errors.append({"kind": ANNOUNCED, "id": account_id, "error": str(error)})
    if not dry_run and lambda_marks != stored_marks:
        try:
            save_marks(services.state, key, lambda_marks, saved_marks)
        except (ClientError, BotoCoreError) as error:
            # The actions above were taken, so they stay in the result and their notices go
            # out. Marks not saved are made again by the next run, with a later date: nothing is
            # deleted sooner than announced.
            result.errors.append({"kind": LAMBDA_MARKS, "id": key, "error": str(error)})
    if result.errors:
        result.status = PARTIAL
    return result


def _saved_mark(resource: Resource, marked_on: date) -> str:
    """The saved mark of a Lambda version `resource` whose mark stands as it is."""
    return lambda_mark(marked_on.isoformat(), resource.published)


@dataclass(frozen=True)
class FunctionNow:
    """A Lambda function as read again just before the first of its versions' deletions: why its
    tags now keep every version (candidates.function_held; None when they keep none), the
    versions its aliases use now, and those holding provisioned concurrency now."""

    held: str | None
    aliased: set[str]
    provisioned: set[str]


def _function_rechecked(
    lambda_client: Any,
    listed: Resource,
    functions_now: dict[str, FunctionNow | Exception],
    policy: CleanupPolicy,
    *,
    mapped_now: Callable[[], set[str]],
    tag_errors: list[dict[str, str]],
    next_page_allowed: Callable[[], bool],
) -> Resource:
    """A Lambda version due for deletion, as its function is now: no candidate when the
    function's owner has since tagged it keep, or taken off a tag the policy's filter requires
    (its tags are read again: the listing may be minutes old), when an alias points at the
    version now or weights it (`RoutingConfig.AdditionalVersionWeights`), when provisioned
    concurrency has been configured on it, or when an event source mapping has come to invoke it
    (`mapped_now`, the target's mappings read once). The function is read once, just before the
    first of its deletions, into `functions_now`, and the error met is raised again for its
    other versions (one of READ_ERRORS: not deleted on doubt)."""
    function_name = listed.function_name
    if function_name not in functions_now:
        try:
            held = function_held(
                lambda_client, function_name, listed.function_arn, policy, tag_errors
            )
            functions_now[function_name] = FunctionNow(
                held,
                alias_versions(lambda_client, function_name, next_page_allowed),
                provisioned_versions(lambda_client, function_name, next_page_allowed),
            )
        except READ_ERRORS as error:
            functions_now[function_name] = error
    now = functions_now[function_name]
    if isinstance(now, Exception):
        raise now
    if now.held is not None:
        return replace(listed, candidate=False, reason=now.held)
    if listed.version in now.aliased:
        return replace(listed, candidate=False, reason=ALIASED)
    if listed.version in now.provisioned:
        return replace(listed, candidate=False, reason=PROVISIONED)
    if listed.id in mapped_now():
        return replace(listed, candidate=False, reason=MAPPED)
    return listed


def _deletion_announced_on(
    services: CleanupServices,
    target: tuple[str, str],
    resource: Resource,
    marked_on: date,
    deletion_notices: dict[date, AnnouncedMarks],
) -> date | None:
    """The date the deletion of `resource` was first announced, when a notice saying it would be
    deleted went out for its mark (else None); the record of each mark date is read once into
    `deletion_notices`; `target` is (account, region)."""
    if marked_on not in deletion_notices:
        deletion_notices[marked_on] = _announced(services, target[0], marked_on.isoformat())
    announced = deletion_notices[marked_on]
    digest = recorded_entry(notice_entry(target[1], resource.kind, resource.id))
    if digest not in announced.deleting:
        return None
    # A notice recorded without its date (by an earlier version) gives the whole notice from
    # today: its deletion is postponed rather than risk a notice that went out late.
    return announced.deletion_announced_on.get(digest, services.today())


def _record_earlier_notices(
    services: CleanupServices, account_id: str, moved_marks: dict[date, dict[date, set[str]]]
) -> None:
    """Record, under each moved mark's date, when the deletion of its resources was first
    announced (EARLIER_NOTICE items, which announce nothing themselves), so that once that date
    is reached the deletion counts from that first notice, not from the new date's notice."""
    ttl_seconds = (services.policy.notice_days + 1 + ANNOUNCED_MARGIN_DAYS) * 86_400
    for moved_to, by_announcement in moved_marks.items():
        record_key = announced_key(account_id, moved_to.isoformat())
        for announced_on, digests in by_announcement.items():
            ordered = sorted(digests)
            for start in range(0, len(ordered), ANNOUNCED_PART_ENTRIES):
                part = ordered[start : start + ANNOUNCED_PART_ENTRIES]
                part_name = f"{EARLIER_NOTICE}#{announced_on.isoformat()}#{_digest(set(part))}"
                services.state.put_value(
                    record_key,
                    f"{ANNOUNCED}#{part_name}",
                    {EARLIER_NOTICE: part, PUBLISHED_ON: announced_on.isoformat()},
                    ttl_seconds=ttl_seconds,
                )


def clean_targets(
    services: CleanupServices,
    targets: list[tuple[str, str]],
    *,
    max_workers: int,
    dry_run: bool,
    deadline: Deadline,
) -> list[TargetResult]:
    """Clean (account, region) targets, at most `max_workers` at once; results in target order.

    An unexpected AWS error in one target (the state table, say) is reported for it. A target
    whose turn comes with less than CLEANUP_TARGET_SECONDS and TARGET_RESERVE_SECONDS left in the
    invocation is not started
    (status `not_started`), and the next run starts with it (`TARGETS_LEFT`,
    fleet_shared.targets_left; a dry run reads that list but does not change it).
    """
    budget = TimeBudget(
        deadline,
        services.environment.cleanup_target_seconds + TARGET_RESERVE_SECONDS,
        on_deadline=lambda target: TargetResult(*target, status=NOT_STARTED),
    )
    left_before = TARGETS_LEFT.read(services.state, logger)
    in_turn = in_turn_order(targets, left_before, stored_account_region)
    results_in_turn = map_isolated(
        in_turn,
        lambda target: clean_target(services, *target, dry_run=dry_run, deadline=deadline),
        on_error=lambda target, error: TargetResult(
            *target, status=FAILED, error=call_error_text(error)
        ),
        # A target's saved value the state table cannot read (its Lambda marks, a record of
        # what was announced) fails that target on every run until a person mends it.
        errors=(*AWS_CALL_ERRORS, UnreadableStateValueError),
        max_workers=max_workers,
        budget=budget,
    )
    if not dry_run:
        left = [
            stored_account_region(target)
            for target, result in zip(in_turn, results_in_turn, strict=True)
            if result.status == NOT_STARTED
        ]
        TARGETS_LEFT.save(services.state, left, left_before, logger)
    by_target = dict(zip(in_turn, results_in_turn, strict=True))
    return [by_target[target] for target in targets]


@dataclass(frozen=True)
class MarkNotice:
    """The notice of one account's marks with one deletion date, and the resources it lists
    (`<region> <kind> <id>`)."""

    account_id: str
    delete_after: str
    resources: frozenset[str]
    alert: Alert


def announced_key(account_id: str, delete_after: str) -> str:
    """The state table key of the resources already announced for an account and date."""
    return f"{SOURCE}/notices/{account_id}/{delete_after}"


def notice_entry(region: str, kind: str, resource_id: str) -> str:
    """How a notice names a resource (`<region> <kind> <id>`)."""
    return f"{region} {kind} {resource_id}"


def recorded_entry(entry: str) -> str:
    """How an announced-marks record keeps a notice entry: a 64-bit digest (records written
    before kept the entry itself, which has spaces, where a digest has none; both are read)."""
    if " " not in entry:
        return entry
    return hashlib.sha256(entry.encode("utf-8")).hexdigest()[:16]


def _recorded(entries: list[str]) -> set[str]:
    """The digests of the entries of a saved announced-marks list."""
    return {recorded_entry(entry) for entry in entries}


@dataclass(frozen=True)
class AnnouncedMarks:
    """What the record of an account and date says was announced: the digests of the resources
    announced, of those announced for deletion, and, for the latter, the earliest date a notice
    announced their deletion (the notices recorded with their date, and EARLIER_NOTICE items)."""

    announced: set[str]
    deleting: set[str]
    deletion_announced_on: dict[str, date]


@dataclass(frozen=True)
class _AnnouncedItem:
    """One item of an announced-marks record, as `_record_announced` (or an earlier version)
    wrote it: its announcement and how many items that has (None and 0 for an earlier
    version's), the digests it announced, those for deletion and those of EARLIER_NOTICE, and
    its PUBLISHED_ON date (None when not recorded)."""

    announcement: str | None
    parts: int
    resources: set[str]
    deleting: set[str]
    earlier_notice: set[str]
    published_on: date | None


def _announced_item(key: str, name: str, value: dict[str, Any]) -> _AnnouncedItem:
    """The item `name` of the record `key`; raises UnreadableStateValueError, naming it, for one
    not shaped as this function writes it (a hand edit, corruption)."""
    try:
        announcement = value.get("announcement")
        if announcement is not None and not isinstance(announcement, str):
            raise TypeError(announcement)
        return _AnnouncedItem(
            announcement=announcement,
            parts=0 if announcement is None else int(value["parts"]),
            resources=_recorded(value.get("resources", [])),
            deleting=_recorded(value.get(DELETING, [])),
            earlier_notice=set(value.get(EARLIER_NOTICE, [])),
            published_on=(
                date.fromisoformat(value[PUBLISHED_ON]) if PUBLISHED_ON in value else None
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        problem = f"it is no announced-marks record ({type(error).__name__})"
        raise UnreadableStateValueError(key, name, problem) from None


def _announced(services: CleanupServices, account_id: str, delete_after: str) -> AnnouncedMarks:
    """What was announced for an account and date (AnnouncedMarks): the union of the record's
    items (`_record_announced`) written whole, and of the single item `announced` earlier
    versions wrote. Raises UnreadableStateValueError for a record that cannot be read, or an
    item not shaped as this function writes it."""
    key = announced_key(account_id, delete_after)
    items = [
        _announced_item(key, name, value)
        for name, value in services.state.values_named(key, ANNOUNCED).items()
    ]
    parts_written: dict[str, int] = {}
    for item in items:
        if item.announcement is not None:
            parts_written[item.announcement] = parts_written.get(item.announcement, 0) + 1
    announced: set[str] = set()
    deleting: set[str] = set()
    announced_on: dict[str, date] = {}
    for item in items:
        # An announcement whose items were written in part (its run failed between them) does
        # not count yet: its retry finds the same resources unannounced, so its delivery key is
        # the same (the notice is not sent twice) and it writes the missing items.
        if item.announcement is not None and parts_written[item.announcement] < item.parts:
            continue
        announced |= item.resources
        deleting |= item.deleting
        if item.published_on is None:
            continue
        for digest in item.deleting | item.earlier_notice:
            announced_on[digest] = min(
                announced_on.get(digest, item.published_on), item.published_on
            )
    return AnnouncedMarks(announced, deleting, announced_on)


def _record_announced(
    services: CleanupServices,
    notice: MarkNotice,
    announcement: str,
    digests: set[str],
    ttl_seconds: int,
) -> None:
    """Record the `digests` a delivered notice announced (for deletion too in `delete` mode), and
    the run's date (PUBLISHED_ON: the notice period counts from it), as items of
    ANNOUNCED_PART_ENTRIES digests at most under the account and date's key, named
    after the `announcement` (the delivery key's mode and digest): any number of resources fits,
    and a retry writes the same items again."""
    ordered = sorted(digests)
    parts = [
        ordered[start : start + ANNOUNCED_PART_ENTRIES]
        for start in range(0, len(ordered), ANNOUNCED_PART_ENTRIES)
    ]
    record_key = announced_key(notice.account_id, notice.delete_after)
    published_on = services.today()
    for index, part in enumerate(parts):
        services.state.put_value(
            record_key,
            f"{ANNOUNCED}#{announcement}#{index:06d}",
            {
                "announcement": announcement,
                "parts": len(parts),
                "resources": part,
                DELETING: part if services.policy.deletes else [],
                PUBLISHED_ON: published_on.isoformat(),
            },
            ttl_seconds=ttl_seconds,
        )


def _digest(resources: set[str] | frozenset[str]) -> str:
    return hashlib.sha256("\n".join(sorted(resources)).encode("utf-8")).hexdigest()[:16]


def mark_notices(results: list[TargetResult], services: CleanupServices) -> list[MarkNotice]:
    """One warning per account and deletion date, listing every resource that carries that mark
    (marked in this run or pending).

    The marks are the record of what must be announced: a notice that could not be delivered is
    rebuilt from them by the next run (the retry, or the next day's).
    """
    marked: dict[tuple[str, str], list[tuple[str, dict[str, str]]]] = {}
    for result in results:
        for entry in result.actions:
            if entry["action"] in (MARK, PENDING):
                marked.setdefault((result.account_id, entry["delete_after"]), []).append(
                    (result.region, entry)
                )
    now = services.clock.now()
    notices: list[MarkNotice] = []
    for (account_id, delete_after), entries in sorted(marked.items()):
        by_kind: dict[str, int] = {}
        for _, entry in entries:
            by_kind[entry["kind"]] = by_kind.get(entry["kind"], 0) + 1
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(by_kind.items()))
        listing = "; ".join(
            f"{region} {entry['kind']} {entry['id']} ({entry['reason']})"
            for region, entry in entries[:NOTICE_LISTED_RESOURCES]
        )
        if len(entries) > NOTICE_LISTED_RESOURCES:
            listing += (
                f"; and {len(entries) - NOTICE_LISTED_RESOURCES} more (the run's result lists "
                "every one)"
            )
        resources = frozenset(
            notice_entry(region, entry["kind"], entry["id"]) for region, entry in entries
        )
        regions = sorted({region for region, _ in entries})
        # In notify mode nothing is deleted, so the notice must not say it will be.
        outcome = (
            f"scheduled for deletion after {delete_after}"
            if services.policy.deletes
            else "marked (notify mode: nothing is deleted)"
        )
        resource = f"{account_id}/cleanup/{delete_after}"
        title = f"Cleanup: {len(entries)} resources in {account_id} {outcome}"
        alert = Alert.create(
            severity=Severity.WARNING,
            source=SOURCE,
            title=title,
            detail=(
                f"Marked {kinds} with {services.mark_tag}={delete_after}. Tag a snapshot, "
                f"volume or function {services.policy.keep_tag}=true, attach the volume or "
                f"reference the version from an alias to spare it. {listing}"
            ),
            resource=resource,
            account_id=account_id,
            region=regions[0] if len(regions) == 1 else None,
            timestamp=now,
            # Two notices of one account and date list different resources: distinct alerts.
            id=alert_id(SOURCE, resource, f"{title} {_digest(resources)}"),
        )
        notices.append(MarkNotice(account_id, delete_after, resources, alert))
    return notices


def announce_marks(
    results: list[TargetResult],
    services: CleanupServices,
    deadline: ClaimDeadline | None,
    *,
    seconds_left: Callable[[], float],
) -> int:
    """Deliver the mark notices that list a resource not announced yet; returns how many went
    out now.

    What was announced is remembered per account and deletion date, resource by resource, until
    well after the marks are due (the policy's notice_days and ANNOUNCED_MARGIN_DAYS and a
    day), apart for the notices that said the resources would be deleted (`delete` mode): a
    notice goes out when its marks include one not announced yet in the policy's mode (marked
    later the same day, in any region, or announced in notify mode only and now to be deleted),
    and is not sent again when some of its resources were spared or a region was not cleaned
    since. A resource is deleted only once a notice saying so went out, the policy's notice
    days before (clean_target). The marks are applied before the notices go out, so a notice
    SNS refuses never undoes or repeats the marking: `AlertNotDeliveredError` (or the state
    table failing on a notice) fails the invocation after every notice was tried, and its retry
    finds the marks pending and delivers the notice (each claim is bound to `deadline`, the
    invocation, so the retry of one killed while SNS hangs is not refused by it). The delivery
    key names the mode and the resources not announced yet, so a retry never sends a delivered
    notice twice.

    A notice is started only while `seconds_left()`, the invocation's time left, is more than
    NOTICE_SECONDS: Lambda ending the run between SNS taking it and its record would have it sent
    again, and ending it while SNS hangs loses the run's result. One left so is not tried (its
    account's first target says so, `not tried: no time left in the invocation`), and its marks,
    made and pending, are the record the next run rebuilds it from: a resource is deleted only
    the whole notice after a notice announced its deletion, so a notice sent late postpones the
    deletion and never shortens it.
    """
    sent = 0
    failures: list[AlertNotDeliveredError | ClientError | BotoCoreError] = []
    for notice in mark_notices(results, services):
        if seconds_left() <= NOTICE_SECONDS:
            _notice_unsent(results, notice, f"not tried: {NO_TIME_LEFT}")
            continue
        try:
            sent += _announce(services, notice, deadline)
        except (AlertNotDeliveredError, ClientError, BotoCoreError) as error:
            failures.append(error)
        except UnreadableStateValueError as error:
            # What was announced cannot be known until a person mends the record: the
            # account's notice is not sent, its first target says why, and the other
            # accounts' notices go out (they stopped at it on every run).
            _notice_unsent(results, notice, str(error))
    if failures:
        raise failures[0]
    return sent


def _notice_unsent(results: list[TargetResult], notice: MarkNotice, error: str) -> None:
    """Report on the account's first target that `notice` was not sent for `error`."""
    first = next(result for result in results if result.account_id == notice.account_id)
    first.errors.append(
        {"kind": "notice", "id": f"{notice.account_id}/{notice.delete_after}", "error": error}
    )
    if first.status == OK:
        first.status = PARTIAL


def _announce(services: CleanupServices, notice: MarkNotice, deadline: ClaimDeadline | None) -> int:
    """Deliver `notice` unless it lists no resource not announced yet (its claim bound to
    `deadline`), and record what it announced; how many notices went out now (0 or 1)."""
    policy = services.policy
    delivery_ttl_seconds = (policy.notice_days + 1) * 86_400
    record_ttl_seconds = delivery_ttl_seconds + ANNOUNCED_MARGIN_DAYS * 86_400
    record = _announced(services, notice.account_id, notice.delete_after)
    already = record.deleting if policy.deletes else record.announced
    unannounced = {entry for entry in notice.resources if recorded_entry(entry) not in already}
    if not unannounced:
        return 0
    announcement = f"{policy.mode}#{_digest(unannounced)}"
    delivery_key = "/".join(
        (SOURCE, notice.account_id, notice.delete_after, policy.mode, _digest(unannounced))
    )
    sent = len(
        deliver_all(
            services.state,
            services.alerts,
            [(delivery_key, notice.alert)],
            delivery_ttl_seconds,
            deadline=deadline,
        )
    )
    # The notice's other resources were announced in this mode already.
    _record_announced(
        services,
        notice,
        announcement,
        {recorded_entry(entry) for entry in unannounced},
        record_ttl_seconds,
    )
    return sent
