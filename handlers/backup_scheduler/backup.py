"""The backup of one (account, region): create today's copies, delete our expired ones.

Per target, in order, each step isolated from the others and each resource from the others
(except a member endpoint that does not answer, `NO_ANSWER`, which ends its step at once, and
is given up for the rest of the invocation, `MEMBER_ENDPOINT_GIVEN_UP_AFTER`, so the target's
later step on it is not tried):
1. EBS volumes tagged `backup=daily|weekly` -> CreateSnapshot, tagged with the source volume,
   `lambda-fleet:backup=<frequency>`, `lambda-fleet:expires-at=<ISO timestamp>`, the run's
   day and the stack (`lambda-fleet:stack`: stacks sharing a member account never take each
   other's copies for theirs, to prune, to skip a volume, or as a lost attempt's), then with its
   own id (`lambda-fleet:snapshot-id`, which a copy someone makes of it with
   its tags carries naming another snapshot: `_made_here`, never pruned) (a create whose answer
   was lost leaves one snapshot all the same, and a retry EC2
   refused, or a success it answered unreadably, takes the day's snapshot as the copy). A
   volume with a
   snapshot of the run's day (or, in 2, a table with the run's backup and
   its saved expiry) was copied by an attempt killed at its deadline and is not copied again
   (its snapshot, when it is the only one of the day and the killed attempt did not tag it with
   its own id, which no tag of CreateSnapshot can name, is tagged then).
2. DynamoDB tables tagged the same -> CreateBackup `lambda-fleet.<stack>.<table>-<yyyymmdd>`
   (`backup_name`: stacks sharing a member account never take each other's for theirs). A backup
   cannot be tagged, so its expiry is saved in the state table under its account, region and
   name, before it is created (earlier versions saved it under its ARN, still read). A create
   whose answer was lost leaves one backup all the same (`_TargetBackup._create_backup`).
3. Snapshots carrying both of our tags whose expires-at has passed, and the stack's tag or no
   stack tag -> DeleteSnapshot, only when shown to be ours (`_TargetBackup._shown_ours`):
   tagged with their own id and the stack, or, for one without either tag (made before the tag
   was, or whose tagging failed), listed among the copies of a target's day's record in the
   stack's own state table, which lasts a few days (RECORDED_DAYS); such a snapshot is then
   tagged with its own id and the stack, so the proof outlives the record. One without the
   stack tag may have been made by any stack sharing the account, and only a record proves
   which. A copy someone made with the tags carries
   them all, and EC2 records nothing that tells it apart (a copy's VolumeId is arbitrary, its
   description whatever the copier gave): a snapshot not shown to be ours is never deleted, and
   once expired is counted in the result's `unproven` and named (UNPROVEN_IDS_SHOWN) there and
   in a warning, for a person to delete it or hand it back (tagging it with its own id and the
   stack).
4. Backups named `lambda-fleet.<stack>....` whose saved expiry has passed -> DeleteBackup, and
   those named `lambda-fleet-...` by earlier versions (by any stack sharing the account) only
   when their saved expiry names their ARN (`_TargetBackup._expiry_record`). A backup with no
   saved expiry was not made by this function (or its record is gone) and is left alone.
In 3 and 4, a resource still tagged for backup keeps its last good copy: when none of its
completed copies is within its retention, the one that expires last is not deleted (a backup so
kept has its saved expiry saved again, or it would outlive it and never be deleted).

The run's day is the UTC date of the time the schedule's run was scheduled for (`run`, the same
for every attempt of the run; the clock's date for an event without it): a retry after UTC
midnight belongs to the run it retries. Weekly copies are made only when that day is
BACKUP_WEEKLY_DAY, and DynamoDB backups are named after it. A target is backed up at most once
per day: the state table's idempotency record `<account>/<region>/<yyyy-mm-dd>` makes a retried
schedule return the first run's result instead of copying again; its lists (copies, deletions,
copies kept, errors) are saved beside it in parts (`day_record_key`), since a region's thousands
of copies take more than DynamoDB's 400 KB item. The record is completed even
when some resources failed (they are reported in the result): completing it is what prevents
duplicate copies of the resources that did succeed (a failed listing is likewise one reported
failure). A target whose member role could not be assumed leaves no record, so a retry acts; nor
does one that stopped between two items for lack of time (ITEM_RESERVE_SECONDS), whose result
names the steps it `left`: the next run does them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from fleet_shared.access_episodes import SETTLE_ACCOUNT_SECONDS, refused_by_iam
from fleet_shared.aws_answers import (
    AWS_CALL_ERRORS,
    UnreadableAnswerError,
    answer_field,
    call_error_text,
)
from fleet_shared.backup_tags import (
    BACKUP_TAG,
    COPY_TAG,
    SNAPSHOT_ID_TAG,
    STACK_TAG,
    copied_from,
    misspelt_backup_key,
)
from fleet_shared.exceptions import (
    MemberAccessError,
    RequestInProgressError,
    UnreadableRequestRecordError,
    UnreadableStateValueError,
)
from fleet_shared.fan_out import NOT_STARTED, TimeBudget, map_isolated
from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.handler import Invocation
from fleet_shared.lost_answers import gone_on_retry, watched_attempts
from fleet_shared.observability import observability_for
from fleet_shared.page_tokens import pages
from fleet_shared.scheduled_runs import accepted_run
from fleet_shared.sessions import HUB_CALL_SECONDS, bounded_config, longest_hung_call_seconds
from fleet_shared.target_results import DENIED, FAILED, IN_PROGRESS, PARTIAL
from fleet_shared.target_results import TargetResult as SharedTargetResult
from fleet_shared.targets_left import (
    TargetsLeftList,
    in_turn_order,
    stored_account_region,
)
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.unanswered_endpoints import NO_ANSWER, EndpointNotAnsweringError
from fleet_shared.validation_errors import shown_value
from handlers.backup_scheduler.environment import WEEKDAYS, BackupEnvironment

SOURCE = "backup_scheduler"
logger = observability_for(SOURCE).logger
EXPIRES_TAG = "lambda-fleet:expires-at"
SOURCE_VOLUME_TAG = "lambda-fleet:source-volume"
RUN_DAY_TAG = "lambda-fleet:backup-day"
"""The run day of a snapshot: a retry of a run killed at its deadline finds the copies made."""
BACKUP_NAME_PREFIX = "lambda-fleet."
"""What begins the name of a backup this function makes, `lambda-fleet.<stack>.<table>-<yyyymmdd>`:
a stack name holds no dot, so the name says which stack made it, and stacks sharing a member
account never take each other's backups for theirs (to skip a table, as a lost attempt's, or to
prune)."""
LEGACY_BACKUP_NAME_PREFIX = "lambda-fleet-"
"""What began the name of a backup earlier versions made, `lambda-fleet-<table>-<yyyymmdd>`, by
any stack sharing the account: pruned only when its saved expiry names its ARN."""
EXPIRY_VALUE = "expiry"
DAILY = "daily"
WEEKLY = "weekly"
FREQUENCIES = (DAILY, WEEKLY)
IDEMPOTENCY_TTL_SECONDS = 3 * 86400
EXPIRY_RECORD_MARGIN = timedelta(days=90)
"""How long a backup's expiry record outlives the expiry, so a late run still finds it."""
TARGETS_LEFT = TargetsLeftList(f"{SOURCE}/targets-not-started", "targets", ttl_seconds=3 * 86400)
"""The targets a run did not start, `{account_id, region}` each, for the next run to start
with; kept longer than the day between two runs (a forgotten list only means the next run
starts in inventory order)."""
DAY_RECORD_LISTS = ("copies", "expired", "kept", "errors")
"""The lists of a target's summary, saved in parts beside its day's record."""
DAY_RECORD_PART_BYTES = 200_000
"""The JSON of the entries one part holds at most: half of DynamoDB's 400 KB item (a copy is
about 130 bytes, so one part holds some 1,500 copies)."""
DAY_RECORD_PARTS = "parts"
"""The field of a completed day's record naming its parts: `{"id", "count"}`."""
DAY_RECORD_PART_TTL_SECONDS = IDEMPOTENCY_TTL_SECONDS + 86400
"""Longer than the record: its parts are written before it, and must outlive it."""
RECORDED_DAYS = IDEMPOTENCY_TTL_SECONDS // 86400 + 2
"""How many run days, back from the clock's date, may still have a day's record to read: it lasts
IDEMPOTENCY_TTL_SECONDS (3 days) from its completion, which comes before the end of the day after
its run day (`scheduled_runs.RUN_MAX_AGE`). A run day older than these has no record left."""
UNPROVEN_IDS_SHOWN = 20
"""The most ids of expired copies kept as not shown to be this stack's (`unproven`: snapshots,
and backups an earlier version named) that a target's result and its log line name; the count is
whole."""
_BACKUP_NAME_MAX = 255
"""CreateBackup's longest BackupName (its model: 3-255 of `[a-zA-Z0-9_.-]`); a table name may be
as long, so a backup name holds what the prefix, the stack and the day leave of it."""
_TABLE_DIGEST_CHARACTERS = 8
"""The hex digits of a long table name's SHA-256 that end its part of the backup name."""
_AWS_ERRORS = AWS_CALL_ERRORS
_RESOURCE_ERRORS = (*_AWS_ERRORS, UnreadableStateValueError)
"""What fails one resource (or one target) alone: an AWS call, or a value it saved that the state
table cannot read (a hand edit, corruption), which fails it the same way on every run."""
_NO_CREATION_TIME = datetime.min.replace(tzinfo=UTC)
_SNAPSHOT_GONE = ("InvalidSnapshot.NotFound",)
_BACKUP_GONE = ("BackupNotFoundException",)
"""What a delete's retry is answered when its first attempt, whose answer was lost, deleted the
copy: the copy counts as deleted."""
MEMBER_ENDPOINT_GIVEN_UP_AFTER = 1
"""Unanswered calls after which a target's EC2 or DynamoDB endpoint is given up for the rest of
the invocation (`AccountSessions.watched_member_client`): one, where eks_scaler waits for two,
since a target's calls to one service are few and alike (a page of a listing, a create, a
delete), so one whose every attempt timed out, or that ran to its bound throttled, is the
endpoint's, and the next would wait as long. The endpoint is the target's own (one account and
region, each a target once)."""

MEMBER_CONNECT_TIMEOUT_SECONDS = 5
MEMBER_READ_TIMEOUT_SECONDS = 10
"""A target's calls (a page of DescribeSnapshots or DescribeVolumes, CreateSnapshot,
CreateBackup, a delete) answer within seconds; an endpoint that hangs is given up after this
long without a byte."""
MEMBER_ATTEMPTS = 6
MEMBER_CONFIG = bounded_config(
    connect_seconds=MEMBER_CONNECT_TIMEOUT_SECONDS,
    read_seconds=MEMBER_READ_TIMEOUT_SECONDS,
    attempts=MEMBER_ATTEMPTS,
)
"""One member call that hangs fails within 92 s, HUNG_MEMBER_CALL_SECONDS (the fleet's 6 attempts,
kept so that a region's throttled CreateSnapshot calls still back off, of 5 s to connect and 10 s to
read). With botocore's default timeouts (60 s each) one hung call took 6 minutes, so with the step
after it Lambda ended the 600 s run on every attempt: no result, and the targets the run had not
come to were left for the next night."""
HUNG_MEMBER_CALL_SECONDS = longest_hung_call_seconds(MEMBER_CONFIG)
"""The longest one member call takes when its endpoint never answers: each attempt waits out both
timeouts, and botocore's waits between attempts after a timeout (50 ms, doubling) add under 2 s."""
HUNG_ENDPOINTS_SECONDS = 2 * HUNG_MEMBER_CALL_SECONDS
"""What member endpoints that never answer add to a target's time: EC2 and DynamoDB are each
given up for the invocation after one such call. A target starts only with this much time left
beyond BACKUP_TARGET_SECONDS (and the settling after it: TARGET_START_RESERVE_SECONDS), so a hung
endpoint cannot keep it past Lambda's timeout."""
ITEM_RESERVE_SECONDS = HUNG_MEMBER_CALL_SECONDS + HUB_CALL_SECONDS + SETTLE_ACCOUNT_SECONDS
"""The time a target's next step, or next copy, table or deletion, starts only with more than
left in the invocation (135 s): one hung call of its member endpoint (an endpoint that left one
call unanswered is given up, so each item or step waits out one at most), one bounded hub call,
and the settlement of an account's access episode after the last target
(`access_episodes.SETTLE_ACCOUNT_SECONDS`, as spot_optimizer's fleet analysis keeps it), which
would otherwise find too little time left for any account of a run whose items took it all.
A target of many volumes or tables could otherwise run past Lambda's timeout, killed between
two calls; it stops between two items instead (`_TimeUpError`), names what it left (`left`), and
completes no day's record, so the next run (a retry the same day, or the next night's, which
starts with it) does the rest, skipping what was copied."""
TARGET_START_RESERVE_SECONDS = HUNG_ENDPOINTS_SECONDS + SETTLE_ACCOUNT_SECONDS
"""What a target needs left to start beyond BACKUP_TARGET_SECONDS (212 s): its member endpoints
never answering, and an account's settlement after the last target."""


@dataclass(frozen=True)
class Retention:
    """How long copies are kept, and the weekday of weekly copies."""

    daily: timedelta
    weekly: timedelta
    weekly_day: str

    def due(self, frequency: str, day: date) -> bool:
        """Whether a resource of `frequency` is copied in the run of `day`."""
        return frequency == DAILY or WEEKDAYS[day.weekday()] == self.weekly_day

    def expires_at(self, frequency: str, now: datetime) -> datetime:
        """When a copy made `now` expires."""
        return now + (self.daily if frequency == DAILY else self.weekly)


class BackupServices(WatchedMemberServices[BackupEnvironment]):
    """The hub-side dependencies of a backup run."""

    member_call_config = MEMBER_CONFIG
    member_calls_given_up_after = MEMBER_ENDPOINT_GIVEN_UP_AFTER

    @cached_property
    def retention(self) -> Retention:
        """Retention and weekly day from the environment."""
        return Retention(
            daily=timedelta(days=self.environment.backup_daily_retention_days),
            weekly=timedelta(days=self.environment.backup_weekly_retention_days),
            weekly_day=self.environment.backup_weekly_day,
        )


@dataclass
class TargetResult(SharedTargetResult):
    """The outcome of one (account, region)."""

    created: list[dict[str, str]] = field(default_factory=list)
    deleted: list[dict[str, str]] = field(default_factory=list)
    kept: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    left: list[dict[str, str]] = field(default_factory=list)
    access_denied: list[str] = field(default_factory=list)
    """What IAM refused, `sts:AssumeRole` or a resource or step whose call it refused: the
    member's access episode (member_access.py) alerts on it."""

    def details(self) -> dict[str, Any]:
        """Counts, then the copies made, the expired copies deleted and those kept, and the
        expired copies kept as not shown to be this stack's (the first
        UNPROVEN_IDS_SHOWN ids); and, for a target stopped for lack of time, the steps it left
        (each from the resource it did not reach, when it had started)."""
        left = {"left": self.left} if self.left else {}
        denied = {"access_denied": self.access_denied} if self.access_denied else {}
        return {
            "created": len(self.created),
            "deleted": len(self.deleted),
            "skipped": len(self.skipped),
            "failed": len(self.errors),
            "unproven": len(self.unproven),
            "copies": self.created,
            "expired": self.deleted,
            "kept": self.kept,
            "unproven_ids": sorted(self.unproven)[:UNPROVEN_IDS_SHOWN],
            **left,
            **denied,
        }

    def fail(self, resource: str, error: Exception | str) -> None:
        """Record a failure on one resource; the target goes on, as `partial`. A call IAM
        refused is noted in `access_denied` too."""
        super().fail(resource, error)
        self.status = PARTIAL
        if refused_by_iam(error):
            self.access_denied.append(resource)


def expiry_key(backup_arn: str) -> str:
    """The state table key of a DynamoDB backup's expiry saved by its ARN (earlier versions)."""
    return f"{SOURCE}/backup/{backup_arn}"


def named_expiry_key(account_id: str, region: str, name: str) -> str:
    """The state table key of a DynamoDB backup's expiry, saved by its name before it exists."""
    return f"{SOURCE}/backup/{account_id}/{region}/{name}"


def day_request_id(account_id: str, region: str, day: date) -> str:
    """The request id of a target's day in the state table's idempotency records."""
    return f"{account_id}/{region}/{day.isoformat()}"


def day_record_key(account_id: str, region: str, day: date) -> str:
    """The state table key of the parts of a target's day's record."""
    return f"{SOURCE}/day/{account_id}/{region}/{day.isoformat()}"


def _part_name(parts_id: str, index: int) -> str:
    return f"{parts_id}#{index:06d}"


def _list_parts(summary: dict[str, Any]) -> list[dict[str, list[Any]]]:
    """The entries of the summary's lists, in order, cut into parts of DAY_RECORD_PART_BYTES."""
    parts: list[dict[str, list[Any]]] = []
    size = DAY_RECORD_PART_BYTES
    for name in DAY_RECORD_LISTS:
        for entry in summary.get(name, []):
            entry_size = len(json.dumps(entry)) + 1
            if size + entry_size > DAY_RECORD_PART_BYTES:
                parts.append({})
                size = 0
            parts[-1].setdefault(name, []).append(entry)
            size += entry_size
    return parts


def _save_day_record_parts(
    services: BackupServices, key: str, summary: dict[str, Any]
) -> dict[str, Any]:
    """Save the summary's lists in parts under `key`; returns the record to complete the day
    with: the summary with its lists empty, naming the parts. The parts' id is new on every
    attempt, so parts an attempt killed before completing left behind are never read."""
    parts_id = uuid.uuid4().hex
    parts = _list_parts(summary)
    for index, part in enumerate(parts):
        services.state.put_value(
            key, _part_name(parts_id, index), part, ttl_seconds=DAY_RECORD_PART_TTL_SECONDS
        )
    record = {name: [] if name in DAY_RECORD_LISTS else value for name, value in summary.items()}
    record[DAY_RECORD_PARTS] = {"id": parts_id, "count": len(parts)}
    return record


def _stored_summary(
    services: BackupServices, account_id: str, region: str, day: date, record: dict[str, Any]
) -> dict[str, Any]:
    """The summary the completed record of a target's day holds, its lists read back from their
    parts (a record of an earlier version holds them itself). Raises UnreadableRequestRecordError
    (naming the day, never a value) for a record, or a part, not as this function saves them (a
    hand edit, corruption): read as it was, it raised a KeyError, TypeError or AttributeError
    that failed the invocation, the retried run or the pruning of every night while it lasted."""
    request_id = day_request_id(account_id, region, day)

    def unreadable(problem: str) -> UnreadableRequestRecordError:
        return UnreadableRequestRecordError(SOURCE, request_id, problem)

    summary = {name: value for name, value in record.items() if name != DAY_RECORD_PARTS}
    if DAY_RECORD_PARTS in record:
        listed = record[DAY_RECORD_PARTS]
        if not (
            isinstance(listed, dict)
            and isinstance(listed.get("id"), str)
            and type(listed.get("count")) is int
        ):
            raise unreadable(f"its {DAY_RECORD_PARTS} are not a text id and a count")
        key = day_record_key(account_id, region, day)
        saved = services.state.values_named(key, f"{listed['id']}#")
        for index in range(listed["count"]):
            part = saved.get(_part_name(listed["id"], index))
            if part is None:
                raise unreadable(f"part {index} of its lists is missing")
            for name, entries in part.items():
                if name not in DAY_RECORD_LISTS or not isinstance(entries, list):
                    # Not naming `name`: a hand edit's key could be any text.
                    lists = ", ".join(DAY_RECORD_LISTS)
                    raise unreadable(f"part {index} of its lists holds other than {lists}")
                summary.setdefault(name, []).extend(entries)
    if not isinstance(summary.get("status"), str):
        raise unreadable("it has no status")
    for name in DAY_RECORD_LISTS:
        entries = summary.get(name, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise unreadable(f"its {name} are not a list of objects")
    return summary


def stack_backup_prefix(stack: str) -> str:
    """What begins the name of every backup `stack` makes: `lambda-fleet.<stack>.`."""
    return f"{BACKUP_NAME_PREFIX}{stack}."


def backup_name(stack: str, table: str, day: date) -> str:
    """`lambda-fleet.<stack>.<table>-<yyyymmdd>`, within DynamoDB's limit (_BACKUP_NAME_MAX). A
    table name too long for it is cut and ends in a digest of the whole name: cut alone, two
    tables whose names begin alike shared one backup name, so the second table's saved expiry
    took the first's place and the first's backups were never deleted."""
    prefix = stack_backup_prefix(stack)
    suffix = f"-{day:%Y%m%d}"
    room = _BACKUP_NAME_MAX - len(prefix) - len(suffix)
    if len(table) > room:
        digest = hashlib.sha256(table.encode("utf-8")).hexdigest()[:_TABLE_DIGEST_CHARACTERS]
        table = f"{table[: room - len(digest) - 1]}-{digest}"
    return f"{prefix}{table}{suffix}"


def run_day(run: datetime | None, now: datetime) -> date:
    """The backup day of a run scheduled for `run` (None: a run started by hand, `now`); raises
    EventValidationError for a `run` in the future or more than a day old (`accepted_run`), which
    would copy again under a past day's name."""
    if run is None:
        return now.date()
    return accepted_run(run, now).astimezone(UTC).date()


def _parse_iso(value: str) -> datetime | None:
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _saved_expiry(key: str, record: dict[str, Any]) -> datetime:
    """The `expires_at` of a backup's saved expiry under `key`; raises UnreadableStateValueError
    (naming the key, never the value) for one missing, or no ISO 8601 time with a time zone: a
    hand edit or corruption. It fails that backup alone, kept and named in the errors, where a
    missing one, a number or a null raised a KeyError or AttributeError that failed the
    invocation, and a text that is no time kept the backup for ever, unreported."""
    expires_at = record.get("expires_at")
    parsed = _parse_iso(expires_at) if isinstance(expires_at, str) else None
    if parsed is None:
        raise UnreadableStateValueError(
            key, EXPIRY_VALUE, "its expires_at is not an ISO 8601 time with a time zone"
        )
    return parsed


def _tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in tags}


def _backup_tag(tags: dict[str, str]) -> tuple[str, str] | None:
    """The key and value of a volume's or table's `backup` tag: BACKUP_TAG, or else a key that
    reads as it (`misspelt_backup_key`: `Backup`, the console's style, `backups`), which
    `_TargetBackup._frequency` reports; None for a resource without either."""
    if BACKUP_TAG in tags:
        return BACKUP_TAG, tags[BACKUP_TAG]
    misspelt = misspelt_backup_key(tags)
    return None if misspelt is None else (misspelt, tags[misspelt])


def _expired(snapshot: dict[str, Any], now: datetime) -> bool:
    """Whether `snapshot`'s expires-at tag has passed (one that cannot be read never has)."""
    expires_at = _parse_iso(_tag_map(snapshot.get("Tags", [])).get(EXPIRES_TAG, ""))
    return expires_at is not None and expires_at <= now


def _made_here(snapshot: dict[str, Any]) -> bool:
    """Whether `snapshot` may be one this function made: not a copy someone made of one with its
    tags (`fleet_shared.backup_tags.copied_from`), which pruning leaves alone. One without its
    own-id tag or the stack's is shown to be ours only by a day's record
    (`_TargetBackup._shown_ours`)."""
    return copied_from(snapshot["SnapshotId"], _tag_map(snapshot.get("Tags", []))) is None


def _tagged_as_ours(snapshot: dict[str, Any], stack: str) -> bool:
    """Whether `snapshot` carries SNAPSHOT_ID_TAG naming itself and STACK_TAG naming `stack`:
    this stack's function made it."""
    tags = _tag_map(snapshot.get("Tags", []))
    return tags.get(SNAPSHOT_ID_TAG) == snapshot["SnapshotId"] and tags.get(STACK_TAG) == stack


def _of_stack_or_none(snapshot: dict[str, Any], stack: str) -> bool:
    """Whether `snapshot` is tagged with `stack`, or with no stack (made before STACK_TAG was,
    by any stack sharing the account): another stack's copy is never this one's to prune."""
    return _tag_map(snapshot.get("Tags", [])).get(STACK_TAG, stack) == stack


def _pages(client: Any, operation: str, key: str, **arguments: Any) -> Iterator[dict[str, Any]]:
    """The `key` items of every page; raises UnreadableAnswerError for a page without `key`
    (EC2 and DynamoDB's listings always carry theirs, empty or not): a proxy's page must not
    pass for an empty listing, which pruning would take for no source tagged for backup."""
    call = client.meta.method_to_api_mapping.get(operation, operation)
    for page in client.get_paginator(operation).paginate(**arguments):
        yield from answer_field(page, call, key)


def _table_tags(table: str, arn: str, dynamodb: Any) -> dict[str, str]:
    """`table`'s tags (all ListTagsOfResource pages); raises UnreadableAnswerError for a tag
    that is not an object with a text Key and Value. DynamoDB's JSON answer is handed on
    unchecked by botocore (EC2's XML tags are always text): a null tag or a number for a value
    must fail the table, as a refused call does, not end the whole run with a bare TypeError."""
    listed = list(_pages(dynamodb, "list_tags_of_resource", "Tags", ResourceArn=arn))
    if not all(
        isinstance(tag, dict)
        and isinstance(tag.get("Key"), str)
        and isinstance(tag.get("Value", ""), str)
        for tag in listed
    ):
        raise UnreadableAnswerError(
            f"ListTagsOfResource of {table}", "a text Key and Value in each of Tags", listed
        )
    return _tag_map(listed)


class _TimeUpError(Exception):
    """The invocation has no time for the target's next item (ITEM_RESERVE_SECONDS): the step
    stops before `resource`, and the target's later steps are left too."""

    def __init__(self, resource: str) -> None:
        super().__init__(resource)
        self.resource = resource


class _TargetBackup:
    """One target's run; `dry_run` reports every copy and deletion and performs none."""

    def __init__(
        self,
        services: BackupServices,
        ec2: Any,
        dynamodb: Any,
        result: TargetResult,
        *,
        day: date,
        dry_run: bool,
        deadline: Invocation,
    ) -> None:
        self._services = services
        self._deadline = deadline
        self._ec2 = ec2
        self._dynamodb = dynamodb
        self._result = result
        self._day = day
        self._dry_run = dry_run
        self._now = services.clock.now()
        self._stack = services.environment.stack_name
        # The volumes and tables tagged for backup, once all could be read (None until then):
        # pruning keeps the last good copy of these, of every source while they are unknown.
        self._tagged_volumes: set[str] | None = None
        self._tagged_tables: set[str] | None = None

    def run(self) -> None:
        steps = (
            ("ec2:DescribeVolumes", self._snapshot_volumes),
            ("dynamodb:ListTables", self._back_up_tables),
            ("ec2:DescribeSnapshots", self._delete_expired_snapshots),
            ("dynamodb:ListBackups", self._delete_expired_backups),
        )
        for index, (listing, step) in enumerate(steps):
            try:
                self._before_item(listing)
                step()
            except _TimeUpError as time_up:
                reached = {"from": time_up.resource} if time_up.resource != listing else {}
                self._result.left.append({"step": listing, **reached})
                self._result.left.extend({"step": later} for later, _ in steps[index + 1 :])
                self._result.status = PARTIAL
                break
            except EndpointNotAnsweringError as refused:
                # The endpoint did not answer an earlier step, and the next call would wait as
                # long (HUNG_ENDPOINTS_SECONDS counts one per service): nothing was sent.
                self._result.fail(listing, f"not tried: {refused.cause}")
            except _AWS_ERRORS as error:
                self._result.fail(listing, error)
        self._report_unproven()

    def _before_item(self, resource: str) -> None:
        """Raise _TimeUpError when the invocation has no time for `resource`, the step's next
        item: the items before it are done whole, and it is left untouched."""
        if not self._deadline.allows(ITEM_RESERVE_SECONDS):
            raise _TimeUpError(resource)

    def _frequency(self, resource: str, tag: tuple[str, str], tagged: set[str]) -> str | None:
        """The frequency `resource`'s `backup` tag, (key, value) as `_backup_tag` found it,
        names, the resource counted among `tagged` (pruning keeps its last good copy); None, and
        an error naming the tag, for a value that is neither daily nor weekly, or a key written
        otherwise than `backup`: a typo must not stop its copies and then let pruning delete the
        last ones, as for a resource no longer tagged."""
        tagged.add(resource)
        key, tag_value = tag
        if key != BACKUP_TAG:
            self._result.fail(
                resource,
                f"tag {key}={shown_value(tag_value)} is not {BACKUP_TAG}, the key backup_scheduler "
                "reads: not copied, its last good copy kept",
            )
            return None
        frequency = tag_value.strip().lower()
        if frequency in FREQUENCIES:
            return frequency
        self._result.fail(
            resource,
            f"{BACKUP_TAG} tag {shown_value(tag_value)} is neither {DAILY} nor {WEEKLY}: "
            "not copied, its last good copy kept",
        )
        return None

    def _due(self, resource: str, frequency: str) -> bool:
        if not self._services.retention.due(frequency, self._day):
            self._result.skipped.append(
                {
                    "resource": resource,
                    "reason": f"weekly, not {self._services.retention.weekly_day}",
                }
            )
            return False
        return True

    def _copied_volumes(self) -> dict[str, list[dict[str, Any]]]:
        """The volumes copied in this run already (by an attempt killed at its deadline): volume
        id -> its snapshots of the run's day, the copy last."""
        snapshots = _pages(
            self._ec2,
            "describe_snapshots",
            "Snapshots",
            OwnerIds=["self"],
            Filters=[
                {"Name": f"tag:{RUN_DAY_TAG}", "Values": [self._day.isoformat()]},
                {"Name": f"tag:{STACK_TAG}", "Values": [self._stack]},
            ],
        )
        copied: dict[str, list[dict[str, Any]]] = {}
        for snapshot in snapshots:
            if snapshot.get("State") != "error":
                volume_id = _tag_map(snapshot.get("Tags", [])).get(SOURCE_VOLUME_TAG, "")
                copied.setdefault(volume_id, []).append(snapshot)
        return copied

    def _tag_killed_attempts_copy(self, made: list[dict[str, Any]]) -> None:
        """Tag a volume's snapshot of the run's day as ours when an attempt killed at its deadline
        made it and was killed before tagging it with its own id (CreateSnapshot's tags cannot
        name the id it has yet to give): this retry of the run is the last to know it made it;
        untagged, it would be kept at its expiry as `unproven`. Not when the volume has more than
        one snapshot of the day: one may be a copy someone made of it with its tags."""
        if self._dry_run or len(made) != 1 or _tagged_as_ours(made[0], self._stack):
            return
        self._tag_as_ours(made[0]["SnapshotId"])

    def _copied_earlier(self, resource: str, copy_id: str) -> None:
        self._result.skipped.append(
            {"resource": resource, "reason": f"copied earlier in this run ({copy_id})"}
        )

    def _snapshot_volumes(self) -> None:
        copied = self._copied_volumes()
        # Every volume, not those EC2's `tag-key` filter finds: it matches the key's case, and a
        # volume tagged `Backup` would pass for one no longer tagged, its last copies pruned.
        volumes = _pages(self._ec2, "describe_volumes", "Volumes")
        tagged: set[str] = set()
        for volume in volumes:
            volume_id = volume["VolumeId"]
            tag = _backup_tag(_tag_map(volume.get("Tags", [])))
            if tag is None:
                continue
            frequency = self._frequency(volume_id, tag, tagged)
            if frequency is None or not self._due(volume_id, frequency):
                continue
            if volume_id in copied:
                self._copied_earlier(volume_id, copied[volume_id][-1]["SnapshotId"])
                self._tag_killed_attempts_copy(copied[volume_id])
                continue
            self._before_item(volume_id)
            expires_at = iso_z(self._services.retention.expires_at(frequency, self._now))
            copy = {"kind": "snapshot", "source": volume_id, "frequency": frequency}
            copy["expires_at"] = expires_at
            hunt_duplicate = False
            if not self._dry_run:
                try:
                    copy["id"], hunt_duplicate = self._create_snapshot(
                        volume_id, frequency, expires_at
                    )
                except NO_ANSWER:
                    raise
                except _AWS_ERRORS as error:
                    self._result.fail(volume_id, error)
                    continue
            self._result.created.append(copy)
            if not self._dry_run:
                self._tag_as_ours(copy["id"])
            if hunt_duplicate:
                # After the copy is reported: an EC2 that stops answering the hunt ends the step
                # (`NO_ANSWER`), and the copy it made stays in the result.
                self._delete_lost_attempts_snapshots(volume_id, copy["id"])
        self._tagged_volumes = tagged

    def _create_snapshot(self, volume_id: str, frequency: str, expires_at: str) -> tuple[str, bool]:
        """Snapshot `volume_id`, tagged as a copy of the run's day; the snapshot's id, and
        whether a snapshot an earlier attempt made may be left beside it (its answer was lost
        and botocore's retry made this one: `_delete_lost_attempts_snapshots`).

        botocore sends CreateSnapshot again when its answer is lost (the API takes no client
        token), and AWS may have applied the first attempt. The retry is then refused (a second
        snapshot of a volume within 15 s, SnapshotCreationPerVolumeRateExceeded): the volume's
        snapshot of the run's day is the copy. Or the retry makes a second snapshot: the other
        one is to be deleted (one left, when it cannot be, is tagged with its own id and expires
        with the copy). Only a call one of whose attempts got no answer is so looked into
        (`fleet_shared.lost_answers`): a throttled attempt made no snapshot."""
        try:
            with watched_attempts(self._ec2) as attempts:
                answer = self._ec2.create_snapshot(
                    VolumeId=volume_id,
                    Description=f"lambda-fleet {frequency} backup of {volume_id}",
                    TagSpecifications=[
                        {
                            "ResourceType": "snapshot",
                            "Tags": [
                                {"Key": SOURCE_VOLUME_TAG, "Value": volume_id},
                                {"Key": COPY_TAG, "Value": frequency},
                                {"Key": EXPIRES_TAG, "Value": expires_at},
                                {"Key": RUN_DAY_TAG, "Value": self._day.isoformat()},
                                {"Key": STACK_TAG, "Value": self._stack},
                            ],
                        }
                    ],
                )
        except ClientError:
            made = self._day_snapshots(volume_id) if attempts.answer_lost else []
            if not made:
                raise
            return str(made[0]), False
        except ResponseParserError as error:
            # EC2 took the request (HTTP 200) but its answer cannot be parsed: as good as lost.
            return self._unreadably_answered_snapshot(volume_id, error), False
        if not isinstance(answer.get("SnapshotId"), str):
            call = f"CreateSnapshot of {volume_id}"
            unreadable = UnreadableAnswerError(call, "SnapshotId", answer)
            return self._unreadably_answered_snapshot(volume_id, unreadable), False
        return str(answer["SnapshotId"]), attempts.answer_lost

    def _tag_as_ours(self, snapshot_id: str) -> None:
        """Tag our snapshot with its own id, which a copy someone makes of it with its tags
        carries naming this one (`_made_here`), and with the stack (tagged at creation already,
        but for a snapshot made before STACK_TAG was). Untagged (the call failed), the next runs
        find it in its day's record and tag it then (`_shown_ours`); once that record is gone it
        is kept, and reported, as not shown to be ours."""
        try:
            self._ec2.create_tags(
                Resources=[snapshot_id],
                Tags=[
                    {"Key": SNAPSHOT_ID_TAG, "Value": snapshot_id},
                    {"Key": STACK_TAG, "Value": self._stack},
                ],
            )
        except NO_ANSWER:
            raise
        except _AWS_ERRORS as error:
            logger.warning(
                "snapshot not tagged with its own id; the next runs tag it from its day's record",
                extra={"snapshot_id": snapshot_id, "error": str(error)},
            )

    def _unreadably_answered_snapshot(self, volume_id: str, unreadable: Exception) -> str:
        """The copy a CreateSnapshot EC2 answered with success but unreadably made: the volume's
        snapshot of the run's day; raises `unreadable` when there is none."""
        made = self._day_snapshots(volume_id)
        if not made:
            raise unreadable
        return str(made[0])

    def _day_snapshots(self, volume_id: str) -> list[str]:
        """The ids of `volume_id`'s snapshots of the run's day, but those EC2 failed: a failed
        one is why the volume is copied again (`_copied_volumes`), never the copy."""
        return [
            snapshot["SnapshotId"]
            for snapshot in _pages(
                self._ec2,
                "describe_snapshots",
                "Snapshots",
                OwnerIds=["self"],
                Filters=[
                    {"Name": f"tag:{RUN_DAY_TAG}", "Values": [self._day.isoformat()]},
                    {"Name": f"tag:{SOURCE_VOLUME_TAG}", "Values": [volume_id]},
                    {"Name": f"tag:{STACK_TAG}", "Values": [self._stack]},
                ],
            )
            if snapshot.get("State") != "error"
        ]

    def _delete_lost_attempts_snapshots(self, volume_id: str, copy_id: str) -> None:
        """Delete `volume_id`'s snapshots of the run's day other than `copy_id`, made by an
        attempt whose answer was lost. One that cannot be deleted is tagged with its own id, as
        `copy_id` is, and expires with it; one that could not be listed has no such tag, and once
        expired is kept and reported as `unproven` (`_shown_ours`)."""
        try:
            lost_attempts = [
                snapshot_id
                for snapshot_id in self._day_snapshots(volume_id)
                if snapshot_id != copy_id
            ]
        except NO_ANSWER:
            raise
        except _AWS_ERRORS as error:
            logger.warning(
                "snapshots of a retried CreateSnapshot not listed; a second one is left untagged",
                extra={"volume_id": volume_id, "copy_id": copy_id, "error": str(error)},
            )
            return
        for snapshot_id in lost_attempts:
            try:
                self._ec2.delete_snapshot(SnapshotId=snapshot_id)
            except NO_ANSWER:
                raise
            except _AWS_ERRORS as error:
                logger.warning(
                    "second snapshot of a retried CreateSnapshot not deleted; it expires with "
                    "the copy",
                    extra={"volume_id": volume_id, "copy_id": copy_id, "error": str(error)},
                )
                self._tag_as_ours(snapshot_id)

    def _back_up_tables(self) -> None:
        tagged: set[str] = set()
        every_table_read = True
        for table in _pages(self._dynamodb, "list_tables", "TableNames"):
            self._before_item(table)
            try:
                self._back_up_table(table, tagged)
            except NO_ANSWER:
                raise
            except _RESOURCE_ERRORS as error:
                self._result.fail(table, error)
                every_table_read = False
        self._tagged_tables = tagged if every_table_read else None

    def _back_up_table(self, table: str, tagged: set[str]) -> None:
        arn = answer_field(
            self._dynamodb.describe_table(TableName=table),
            f"DescribeTable of {table}",
            "Table",
            "TableArn",
        )
        # DynamoDB answers `"Tags": []` for a table without tags: an answer without them, read
        # as none, would take the table for one no longer tagged, whose last backup pruning
        # deletes. It fails the table, and pruning then keeps every table's last good backup.
        tags = _table_tags(table, arn, self._dynamodb)
        tag = _backup_tag(tags)
        if tag is None:
            return
        frequency = self._frequency(table, tag, tagged)
        if frequency is None or not self._due(table, frequency):
            return
        expires_at = self._services.retention.expires_at(frequency, self._now)
        name = backup_name(self._stack, table, self._day)
        earlier = self._backup_made_in_this_run(table, name)
        if earlier is not None:
            self._copied_earlier(table, earlier)
            return
        copy = {"kind": "dynamodb_backup", "source": table, "frequency": frequency}
        copy |= {"name": name, "expires_at": iso_z(expires_at)}
        if self._dry_run:
            self._result.created.append(copy)
            return
        # The expiry is saved first: a backup created without it would never be deleted.
        key = named_expiry_key(self._result.account_id, self._result.region, name)
        record = {"expires_at": iso_z(expires_at), "table": table, "frequency": frequency}
        ttl_seconds = int((expires_at - self._now + EXPIRY_RECORD_MARGIN).total_seconds())
        self._services.state.put_value(key, EXPIRY_VALUE, record, ttl_seconds=ttl_seconds)
        details, hunt_duplicate = self._create_backup(table, name)
        backup_arn = copy["id"] = str(details["BackupArn"])
        # Reported before the hunt for a duplicate: a DynamoDB that stops answering it ends the
        # step (`NO_ANSWER`), and the copy it made stays in the result (expiring by name).
        self._result.created.append(copy)
        only_copy = not hunt_duplicate or self._delete_lost_attempts_backups(table, name, details)
        try:
            # With the ARN, a backup someone else gave the same name is never taken for ours;
            # without it (a second copy is left), both copies expire by name and day.
            if only_copy:
                record["backup_arn"] = backup_arn
                self._services.state.put_value(key, EXPIRY_VALUE, record, ttl_seconds=ttl_seconds)
        except _AWS_ERRORS as error:
            # The copy exists and its expiry is saved: it is reported, and expires by name.
            self._result.fail(table, error)

    def _create_backup(self, table: str, name: str) -> tuple[dict[str, Any], bool]:
        """Create `table`'s backup `name`: its details (`BackupArn`, and `BackupCreationDateTime`
        of one just made), and whether a backup an earlier attempt made may be left beside it
        (its answer was lost and botocore's retry made this one: `_delete_lost_attempts_backups`).

        botocore sends CreateBackup again when its answer is lost (the API takes no client
        token), and AWS may have applied the first attempt. The retry is then refused with
        BackupInUseException while that backup is being created: the table's latest backup of
        the name is the copy. Or the retry makes a second backup, a full copy whose ARN nobody
        would record (so it would never expire), which is to be deleted. Only a call one of
        whose attempts got no answer is so looked into (`fleet_shared.lost_answers`): a
        throttled attempt made no backup."""
        try:
            with watched_attempts(self._dynamodb) as attempts:
                answer = self._dynamodb.create_backup(TableName=table, BackupName=name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code != "BackupInUseException" or not attempts.answer_lost:
                raise
            made = self._live_backups_named(table, name)
            if not made:
                raise
            return made[-1], False
        details = answer.get("BackupDetails")
        if not isinstance(details, dict) or not isinstance(details.get("BackupArn"), str):
            # DynamoDB took the request (HTTP 200) but its answer cannot be read: as good as
            # lost, so the table's latest backup of the name is the copy.
            made = self._live_backups_named(table, name)
            if not made:
                raise UnreadableAnswerError(
                    f"CreateBackup of {table}", "BackupDetails.BackupArn", answer
                )
            return made[-1], False
        return details, attempts.answer_lost

    def _delete_lost_attempts_backups(self, table: str, name: str, details: dict[str, Any]) -> bool:
        """Delete `table`'s backups named `name` other than the one of `details`, made by an
        attempt whose answer was lost: at most HUNG_MEMBER_CALL_SECONDS before it. Whether none
        is left (the ARN of `details` may then be recorded); when one cannot be deleted, no ARN
        is recorded and both expire by name and day."""
        earliest = details["BackupCreationDateTime"] - timedelta(seconds=HUNG_MEMBER_CALL_SECONDS)
        lost_attempts = [
            backup
            for backup in self._live_backups_named(table, name)
            if backup["BackupArn"] != details["BackupArn"]
            and backup.get("BackupCreationDateTime", _NO_CREATION_TIME) >= earliest
        ]
        only_copy = True
        for backup in lost_attempts:
            try:
                self._dynamodb.delete_backup(BackupArn=backup["BackupArn"])
            except NO_ANSWER:
                raise
            except _AWS_ERRORS as error:
                only_copy = False
                logger.warning(
                    "second backup of a retried CreateBackup not deleted; it expires by name",
                    extra={"backup_arn": backup["BackupArn"], "error": str(error)},
                )
        return only_copy

    def _live_backups_named(self, table: str, name: str) -> list[dict[str, Any]]:
        """`table`'s backups named `name` that are not deleted, oldest first."""
        return sorted(
            (
                backup
                for backup in self._backups(TableName=table)
                if backup.get("BackupName") == name and backup.get("BackupStatus") != "DELETED"
            ),
            # ListBackups may leave out a creation time (its model does not require one).
            key=lambda backup: backup.get("BackupCreationDateTime") or _NO_CREATION_TIME,
        )

    def _recorded_snapshot_ids(self) -> set[str]:
        """The ids of the snapshots this target's day records list among the copies made, of
        the RECORDED_DAYS run days that may still have one (a day in progress has none yet)."""
        recorded: set[str] = set()
        account_id, region = self._result.account_id, self._result.region
        for days_back in range(RECORDED_DAYS):
            day = self._now.date() - timedelta(days=days_back)
            record = self._services.state.completed_result(
                SOURCE, day_request_id(account_id, region, day)
            )
            if record is None:
                continue
            summary = _stored_summary(self._services, account_id, region, day, record)
            recorded.update(
                str(copy["id"])
                for copy in summary.get("copies", [])
                if copy.get("kind") == "snapshot" and "id" in copy
            )
        return recorded

    def _shown_ours(self, snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Of `snapshots` (both fleet tags, the stack's tag or none, not a copy by their own-id
        tag), those shown to be ours: tagged with their own id and the stack, or listed among
        the copies of a day's record of this stack's state table, which then tags them so the
        proof outlives the record (not in a dry run). A snapshot without the tags (made before
        they were, or whose tagging failed) whose day's record is gone, or never named it, may be
        a copy someone made with its tags (EC2 records nothing that proves it is not: a copy's
        VolumeId is arbitrary, its description and tags the copier's), or, without the stack
        tag, a copy another stack sharing the account made: it is never pruned, and once expired
        counted `unproven`, for a person to decide. When the records cannot be read, no snapshot
        without the tags is pruned and the failure is an error."""
        untagged = [
            snapshot for snapshot in snapshots if not _tagged_as_ours(snapshot, self._stack)
        ]
        if not untagged:
            return snapshots
        try:
            recorded = self._recorded_snapshot_ids()
        except _RESOURCE_ERRORS as error:
            self._result.fail("state table: day records", error)
            return [snapshot for snapshot in snapshots if _tagged_as_ours(snapshot, self._stack)]
        for snapshot in untagged:
            snapshot_id = snapshot["SnapshotId"]
            if snapshot_id in recorded and not self._dry_run:
                self._tag_as_ours(snapshot_id)
            elif snapshot_id not in recorded and _expired(snapshot, self._now):
                self._result.unproven.append(snapshot_id)
        return [
            snapshot
            for snapshot in snapshots
            if _tagged_as_ours(snapshot, self._stack) or snapshot["SnapshotId"] in recorded
        ]

    def _report_unproven(self) -> None:
        unproven = self._result.unproven
        if unproven:
            logger.warning(
                "expired copies kept: not shown to be this stack's",
                extra={
                    "account_id": self._result.account_id,
                    "region": self._result.region,
                    "count": len(unproven),
                    "copy_ids": sorted(unproven)[:UNPROVEN_IDS_SHOWN],
                },
            )

    def _delete_expired_snapshots(self) -> None:
        listed = [
            snapshot
            for snapshot in _pages(
                self._ec2,
                "describe_snapshots",
                "Snapshots",
                OwnerIds=["self"],
                Filters=[{"Name": "tag-key", "Values": [EXPIRES_TAG]}],
            )
            if COPY_TAG in _tag_map(snapshot.get("Tags", []))
            and _made_here(snapshot)
            and _of_stack_or_none(snapshot, self._stack)
        ]
        snapshots = self._shown_ours(listed)
        good = [
            (
                _tag_map(snapshot["Tags"]).get(SOURCE_VOLUME_TAG) or snapshot.get("VolumeId", ""),
                _parse_iso(_tag_map(snapshot["Tags"]).get(EXPIRES_TAG, "")),
                snapshot["SnapshotId"],
            )
            for snapshot in snapshots
            if snapshot.get("State") == "completed"
        ]
        last_good = _last_good_copies(good, self._now, self._tagged_volumes)
        for snapshot in snapshots:
            expires_at = _parse_iso(_tag_map(snapshot["Tags"]).get(EXPIRES_TAG, ""))
            if expires_at is None or expires_at > self._now:
                continue
            snapshot_id = snapshot["SnapshotId"]
            if snapshot_id in last_good:
                self._keep_last_good("snapshot", snapshot_id, expires_at)
                continue
            self._delete_expired(
                "snapshot",
                snapshot_id,
                expires_at,
                partial(self._ec2.delete_snapshot, SnapshotId=snapshot_id),
                _SNAPSHOT_GONE,
            )

    def _delete_expired(
        self,
        kind: str,
        copy_id: str,
        expires_at: datetime,
        delete: Callable[[], object],
        gone_codes: tuple[str, ...],
    ) -> None:
        """Delete an expired copy with `delete` (not on a dry run) and list it as deleted. A
        delete refused fails that copy alone; one refused with `gone_codes` on a retry counts as
        done (`gone_on_retry`); a member endpoint that does not answer ends the step
        (`NO_ANSWER`), and so does a lack of time before it (`_TimeUpError`)."""
        self._before_item(copy_id)
        if not self._dry_run:
            try:
                delete()
            except NO_ANSWER:
                raise
            except ClientError as error:
                if not gone_on_retry(error, gone_codes):
                    self._result.fail(copy_id, error)
                    return
            except (BotoCoreError, ResponseParserError) as error:
                self._result.fail(copy_id, error)
                return
        self._result.deleted.append({"kind": kind, "id": copy_id, "expired_at": iso_z(expires_at)})

    def _keep_last_good(self, kind: str, copy_id: str, expires_at: datetime) -> None:
        self._result.kept.append(
            {
                "kind": kind,
                "id": copy_id,
                "expired_at": iso_z(expires_at),
                "reason": "the last good copy of a resource tagged for backup, kept until a newer "
                "one completes",
            }
        )

    def _backup_made_in_this_run(self, table: str, name: str) -> str | None:
        """The ARN of `table`'s backup of this run, made by an attempt killed at its deadline:
        named for the run's day, with the expiry this function saves before creating it."""
        key = named_expiry_key(self._result.account_id, self._result.region, name)
        if self._services.state.get_value(key, EXPIRY_VALUE) is None:
            return None
        for backup in self._backups(TableName=table):
            if backup.get("BackupName") == name and backup.get("BackupStatus") != "DELETED":
                return str(backup["BackupArn"])
        return None

    def _backup_pages(self, **filters: str) -> Iterator[dict[str, Any]]:
        """The ListBackups pages of our user backups (of the table `TableName=` names); a
        LastEvaluatedBackupArn answered again raises `RepeatedPageTokenError` instead of asking
        until Lambda ends the run."""
        return pages(
            self._dynamodb,
            "ListBackups",
            {"BackupType": "USER", **filters},
            "ExclusiveStartBackupArn",
            answer_token_field="LastEvaluatedBackupArn",
        )

    def _backups(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Our user backups (of the table `TableName=` names). A page without BackupSummaries
        (botocore's model leaves them optional; moto sends them, empty or not) raises
        UnreadableAnswerError: read as no backup, a table's backup of the day would be taken for
        one never made and made again, or its duplicate left behind, and a copy whose expiry
        record the other took over is never deleted."""
        for page in self._backup_pages(**filters):
            yield from answer_field(page, "ListBackups", "BackupSummaries")

    def _expiry_record(self, backup: dict[str, Any]) -> tuple[str, dict[str, Any], datetime] | None:
        """The state table key, saved expiry and expiry time of one of our backups: by name when
        it names this backup (its ARN, or, when the ARN could not be saved, its table and
        creation day, for a name of this stack's only), else by ARN as earlier versions saved
        it; None for a backup that is not shown to be ours. Raises UnreadableStateValueError for
        a saved expiry whose `expires_at` is no time (`_saved_expiry`).

        A backup named as earlier versions named them (LEGACY_BACKUP_NAME_PREFIX) whose saved
        expiry names no ARN may be another stack's of the same name, made the same day: it is
        never pruned and, once its saved expiry passed, counted `unproven`."""
        arn, name = backup["BackupArn"], backup["BackupName"]
        legacy_name = not name.startswith(stack_backup_prefix(self._stack))
        key = named_expiry_key(self._result.account_id, self._result.region, name)
        record = self._services.state.get_value(key, EXPIRY_VALUE)
        if record is not None:
            saved_arn = record.get("backup_arn")
            created = backup.get("BackupCreationDateTime")
            # Created on the day its name gives, or just after midnight.
            same_day = created is not None and name[-8:] in {
                f"{created.astimezone(UTC):%Y%m%d}",
                f"{created.astimezone(UTC) - timedelta(days=1):%Y%m%d}",
            }
            named_by_day = (
                saved_arn is None and record.get("table") == backup.get("TableName") and same_day
            )
            if saved_arn == arn or (named_by_day and not legacy_name):
                return key, record, _saved_expiry(key, record)
            if named_by_day and _saved_expiry(key, record) <= self._now:
                self._result.unproven.append(arn)
                return None
        legacy_key = expiry_key(arn)
        legacy_record = self._services.state.get_value(legacy_key, EXPIRY_VALUE)
        if legacy_record is None:
            return None
        return legacy_key, legacy_record, _saved_expiry(legacy_key, legacy_record)

    def _keep_last_good_backup(
        self, arn: str, expires_at: datetime, record_key: str, record: dict[str, Any]
    ) -> None:
        """Keep `arn`, a table's last good backup, and its saved expiry as long again as
        EXPIRY_RECORD_MARGIN: kept past the record's life, the backup would no longer be known
        as ours and stay for ever once a newer copy completes."""
        self._keep_last_good("dynamodb_backup", arn, expires_at)
        if self._dry_run:
            return
        try:
            self._services.state.put_value(
                record_key,
                EXPIRY_VALUE,
                record,
                ttl_seconds=int(EXPIRY_RECORD_MARGIN.total_seconds()),
            )
        except NO_ANSWER:
            raise
        except _AWS_ERRORS as error:
            self._result.fail(arn, error)

    def _delete_expired_backups(self) -> None:
        ours: list[tuple[dict[str, Any], datetime, str, dict[str, Any]]] = []
        # A page without BackupSummaries is read as listing nothing, which only deletes less:
        # the copies it would have held stay, and the last good copies are judged among the rest.
        listed = (
            backup for page in self._backup_pages() for backup in page.get("BackupSummaries", [])
        )
        own_prefix = stack_backup_prefix(self._stack)
        for backup in listed:
            name = backup.get("BackupName", "")
            if not name.startswith((own_prefix, LEGACY_BACKUP_NAME_PREFIX)):
                continue
            if backup.get("BackupStatus") != "AVAILABLE":
                continue
            try:
                saved = self._expiry_record(backup)
            except NO_ANSWER:
                raise
            except _RESOURCE_ERRORS as error:
                self._result.fail(backup["BackupArn"], error)
                continue
            if saved is not None:
                record_key, record, expires_at = saved
                ours.append((backup, expires_at, record_key, record))
        good = [
            (backup.get("TableName", ""), expires_at, backup["BackupArn"])
            for backup, expires_at, _, _ in ours
        ]
        last_good = _last_good_copies(good, self._now, self._tagged_tables)
        for backup, expires_at, record_key, record in ours:
            arn = backup["BackupArn"]
            if expires_at > self._now:
                continue
            if arn in last_good:
                self._keep_last_good_backup(arn, expires_at, record_key, record)
                continue
            self._delete_expired(
                "dynamodb_backup",
                arn,
                expires_at,
                partial(self._dynamodb.delete_backup, BackupArn=arn),
                _BACKUP_GONE,
            )


def _last_good_copies(
    copies: Iterable[tuple[str, datetime | None, str]],
    now: datetime,
    tagged_sources: set[str] | None,
) -> set[str]:
    """The expired copies pruning keeps, from (source, expires at, id) of the good copies: for a
    source still tagged for backup (any source when `tagged_sources` could not be read) none of
    whose good copies is within its retention (its new copies failing, or not complete yet), the
    one that expires last, so no resource tagged for backup is left without one. A source no
    longer tagged, or gone, keeps none past its retention."""
    unexpired: set[str] = set()
    latest: dict[str, tuple[datetime, str]] = {}
    for source, expires_at, copy_id in copies:
        if expires_at is None or expires_at > now:
            unexpired.add(source)
        elif source not in latest or (expires_at, copy_id) > latest[source]:
            latest[source] = (expires_at, copy_id)
    return {
        copy_id
        for source, (_, copy_id) in latest.items()
        if source not in unexpired and (tagged_sources is None or source in tagged_sources)
    }


def _run_target(
    services: BackupServices,
    account_id: str,
    region: str,
    day: date,
    *,
    dry_run: bool,
    invocation: Invocation,
) -> TargetResult:
    result = TargetResult(account_id, region)
    try:
        ec2 = services.member_client("ec2", account_id, region)
        dynamodb = services.member_client("dynamodb", account_id, region)
    except MemberAccessError as error:
        result.status, result.error = DENIED, str(error)
        if refused_by_iam(error.__cause__):
            result.access_denied.append("sts:AssumeRole")
        return result
    _TargetBackup(
        services, ec2, dynamodb, result, day=day, dry_run=dry_run, deadline=invocation
    ).run()
    return result


def backup_target(
    services: BackupServices,
    account_id: str,
    region: str,
    *,
    day: date,
    dry_run: bool,
    invocation: Invocation,
) -> dict[str, Any]:
    """Back up one target at most once per run day `day`; returns its summary.

    A repeat of a completed day returns the stored summary with `repeat: true`; a dry run claims
    nothing and changes nothing. The day's claim blocks a concurrent copy only while this
    invocation can run, so the platform's retry of an invocation killed at its deadline backs
    the target up.
    """
    if dry_run:
        return _run_target(
            services, account_id, region, day, dry_run=True, invocation=invocation
        ).summary()
    request_id = day_request_id(account_id, region, day)
    try:
        with services.state.idempotent(
            SOURCE,
            request_id,
            IDEMPOTENCY_TTL_SECONDS,
            deadline=invocation,
        ) as request:
            record_key = day_record_key(account_id, region, day)
            if request.is_repeat and request.result is not None:
                stored = _stored_summary(services, account_id, region, day, request.result)
                return {**stored, "repeat": True}
            result = _run_target(
                services, account_id, region, day, dry_run=False, invocation=invocation
            )
            if result.status == DENIED or result.left:
                # No record: a retry acts, and the next run does what was left.
                return result.summary()
            summary = result.summary()
            request.complete(_save_day_record_parts(services, record_key, summary))
            return summary
    except RequestInProgressError as error:
        return {
            "account_id": account_id,
            "region": region,
            "status": IN_PROGRESS,
            "error": str(error),
        }


def backup_targets(
    services: BackupServices,
    targets: list[tuple[str, str]],
    *,
    day: date,
    max_workers: int,
    dry_run: bool,
    invocation: Invocation,
) -> list[dict[str, Any]]:
    """Back up (account, region) targets for the run of `day`, at most `max_workers` at once;
    results in target order.

    An unexpected AWS error in one target (the state table, say) is reported for it. A target
    whose turn comes with less than BACKUP_TARGET_SECONDS and TARGET_START_RESERVE_SECONDS left in
    the invocation is not started
    (status `not_started`): its day's record is not claimed, and the next run starts with it, as
    with one that ran out of time between two items (`left`, ITEM_RESERVE_SECONDS)
    (`TARGETS_LEFT`, fleet_shared.targets_left; a dry run reads that list but does not change
    it).
    """
    budget = TimeBudget(
        invocation,
        services.environment.backup_target_seconds + TARGET_START_RESERVE_SECONDS,
        on_deadline=lambda target: TargetResult(*target, status=NOT_STARTED).summary(),
    )
    left_before = TARGETS_LEFT.read(services.state, logger)
    in_turn = in_turn_order(targets, left_before, stored_account_region)
    results_in_turn = map_isolated(
        in_turn,
        lambda target: backup_target(
            services, *target, day=day, dry_run=dry_run, invocation=invocation
        ),
        on_error=lambda target, error: TargetResult(
            *target, status=FAILED, error=call_error_text(error)
        ).summary(),
        errors=_RESOURCE_ERRORS,
        max_workers=max_workers,
        budget=budget,
    )
    left = [
        stored_account_region(target)
        for target, result in zip(in_turn, results_in_turn, strict=True)
        if result["status"] == NOT_STARTED or result.get("left")
    ]
    if not dry_run:
        TARGETS_LEFT.save(services.state, left, left_before, logger)
    by_target = dict(zip(in_turn, results_in_turn, strict=True))
    return [by_target[target] for target in targets]
