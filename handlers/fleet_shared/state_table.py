"""The fleet's DynamoDB state table: locks, idempotency, cooldowns, saved values and dedup.

Everything that must stay safe when a function runs twice at once, or twice for the same request,
goes through here. Table layout (partition key `pk`, sort key `sk`, both strings; TTL attribute
`expires_at` in epoch seconds; values as a JSON string in `data`):

| purpose      | pk                    | sk                         |
|--------------|-----------------------|----------------------------|
| lock         | `LOCK#<name>`         | `LOCK`                     |
| idempotency  | `IDEMPOTENCY#<scope>` | `<request_id>`             |
| last change  | `STATE#<key>`         | `LATEST`                   |
| change log   | `STATE#<key>`         | `HISTORY#<ISO timestamp>`  |
| saved value  | `STATE#<key>`         | `VALUE#<name>`             |
| dedup claim  | `ONCE#<key>`          | `ONCE`                     |

Every conditional put also writes a fresh `write_token`, by which a put botocore sent again
after its answer was lost recognises the item it already wrote (`_conditional_put`).

DynamoDB deletes expired items up to days late, so an item whose `expires_at` is in the past is
treated as absent everywhere: conditions compare `expires_at` with the clock, and reads drop it.
All reads are strongly consistent, because they decide whether to act.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import answer_field
from fleet_shared.clock import CLOCK_SKEW_SECONDS, Clock, SystemClock
from fleet_shared.exceptions import (
    LockNotAcquiredError,
    RequestIdReusedError,
    RequestInProgressError,
    UnreadableRequestRecordError,
    UnreadableStateRecordError,
    UnreadableStateValueError,
)
from fleet_shared.page_tokens import pages_of
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.unanswered_endpoints import HUB_CALLS_GIVEN_UP_AFTER, UnansweredEndpoints
from fleet_shared.validation_errors import shown_value

_logger = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 1.0
"""How often a lock taken with `wait_seconds` is tried again."""
LONGEST_LOCK_LEASE_SECONDS = 900
"""The longest lease a lock is taken or renewed for: the longest Lambda invocation, which no
holder outlives. A lock item whose lease runs further than this (and CLOCK_SKEW_SECONDS) from
now was written by no holder (a hand edit, corruption) and is taken as free: it would otherwise
hold its node group, or run, until that far-off time."""


@dataclass(frozen=True)
class VersionedValue:
    """A saved value as read, with what `StateTable.replace_value` compares to see whether it
    changed since: the stored JSON text itself (the same text is the same value), or None for a
    value stored with no text (no `data`, or one that is no DynamoDB string: a hand edit,
    corruption), which no writer of the fleet leaves."""

    value: dict[str, Any]
    version: str | None

    @classmethod
    def saved(cls, value: dict[str, Any]) -> VersionedValue:
        """`value` as `replace_value` just saved it: the `read` of the writer's next
        `replace_value`, without reading it back."""
        return cls(value, version=_to_json(value))


class ClaimDeadline(Protocol):
    """What an idempotent claim asks of the invocation (`fleet_shared.handler.Invocation`)."""

    def claim_seconds(self, longest: int) -> int:
        """How long a claim taken now may block another copy, at most `longest`."""
        ...


@dataclass(frozen=True)
class HeldLock:
    """The lock a `StateTable.lock` block holds."""

    table: StateTable
    name: str
    owner: str
    lease_seconds: int
    deadline: ClaimDeadline | None = None

    def renew(self) -> bool:
        """Extend the lease before acting on what was read under the lock (no later than the
        holder's deadline, when it has one): False once another owner took the lock (reads that
        outlast the lease may be stale; see `renew_lock`)."""
        return self.table.renew_lock(
            self.name, self.owner, _lease_from_now(self.lease_seconds, self.deadline)
        )


DEFAULT_IN_PROGRESS_SECONDS = 900
"""How long an unfinished idempotent request blocks repeats: the longest Lambda timeout."""

_CONDITION_FAILED = "ConditionalCheckFailedException"
_WRITE_TOKEN = "write_token"
_IN_PROGRESS = "IN_PROGRESS"
_COMPLETED = "COMPLETED"
_REQUEST_STATUSES = frozenset({_IN_PROGRESS, _COMPLETED})
"""The `status` values an idempotency record is written with; a record with another is taken."""
_FINGERPRINT = "fingerprint"
_HISTORY_PREFIX = "HISTORY#"
_VALUE_PREFIX = "VALUE#"
# Sorts after every ISO timestamp, so BETWEEN covers all history items from a given time on.
_HISTORY_END = "HISTORY#~"
_NEWEST_FIRST_PAGE_ITEMS = 10
"""Changes read per page newest first: a caller stops at the first change it does not want."""


@dataclass(frozen=True)
class StateChange:
    """One recorded change of a piece of state: when, and what the caller chose to record."""

    changed_at: datetime
    record: dict[str, Any]


@dataclass(frozen=True)
class HistoryRead:
    """A key's history as `StateTable.readable_history` read it: the changes that could be
    read, oldest first, and the error of each entry whose time or record could not (naming the
    key, the entry's time and what is wrong, never its data)."""

    changes: list[StateChange]
    unreadable: list[UnreadableStateRecordError]


@dataclass(frozen=True)
class ValuesRead:
    """The values saved under a key with a name prefix as `StateTable.readable_values_named`
    read them: those that could be read, by name with their versions, and the error of each
    that could not, by name (naming the key, the name and what is wrong, never its data)."""

    values: dict[str, VersionedValue]
    unreadable: dict[str, UnreadableStateValueError]


KeysFound = tuple[list[str], dict[str, Any] | None]
"""The keys `StateTable.keys_holding_value` found, and where its Scan stopped: the last key it
evaluated (DynamoDB's `LastEvaluatedKey`, to start the next search after), or None when it
reached the end of the table. A tuple, not a dataclass: every function imports this module, and
a frozen dataclass costs each of them about 5 M instructions at cold start (docs/benchmarks.md)."""


class IdempotentRequest:
    """The handle `StateTable.idempotent` yields.

    When `is_repeat` is true the request was already completed: `result` holds what was stored
    and the caller returns it without acting. Otherwise the caller acts and calls `complete`.
    """

    def __init__(
        self,
        request_id: str,
        stored_result: dict[str, Any] | None,
        store: Callable[[dict[str, Any]], None] | None,
        renew: Callable[[], bool] | None = None,
        *,
        unreadable: UnreadableRequestRecordError | None = None,
    ) -> None:
        self.request_id = request_id
        self.is_repeat = stored_result is not None or unreadable is not None
        self._result = stored_result
        self._unreadable = unreadable
        self.completed = False
        self.held = False
        self._store = store
        self._renew = renew

    @property
    def result(self) -> dict[str, Any] | None:
        """What a completed request stored (None before `complete` on a first run); raises
        `UnreadableRequestRecordError` for a repeat whose stored result cannot be read. Only a
        caller that needs the result meets it: the request ran, so `is_repeat` holds either way,
        and one that only needs to know that (a delivery already made) goes on."""
        if self._unreadable is not None:
            raise self._unreadable
        return self._result

    def renew(self) -> bool:
        """Extend the claim to its in-progress seconds from now (no later than the deadline's
        bound), before the next step of the work: a short claim then covers long work while its
        invocation lives, and frees soon after one that died. False once another invocation took
        the request over (the claim lapsed during a step): the caller then acts no further.
        """
        if self._renew is None:
            raise RuntimeError(f"request {self.request_id} is not claimed by this invocation")
        return self._renew()

    def complete(self, result: dict[str, Any]) -> None:
        """Store `result` (JSON-serialisable) as the answer to every repeat of this request id.

        Raises `RequestInProgressError` if the claim expired and another invocation took over.
        """
        if self._store is None:
            raise RuntimeError(f"request {self.request_id} was already completed")
        self._store(result)
        self._result = result
        self.completed = True

    def hold(self) -> None:
        """Keep the claim on leaving the block instead of releasing it, for a request whose
        action took effect but whose completion the table refused: it blocks repeats until it
        expires (its in-progress seconds), where a released claim would let one act again at
        once."""
        self.held = True


class StateTable:
    """Typed operations on the state table, with the low-level DynamoDB client.

    Once DynamoDB did not answer a call (every attempt timed out, or the call ran to its bound
    throttled: `unanswered_endpoints`), the table's later calls fail at once with
    `EndpointNotAnsweringError` for the rest of the invocation (`unanswered`, the
    container's record, which the handler forgets as each invocation starts): a run makes many
    state table calls (health_monitor's over one cluster makes 12), and each would otherwise
    wait up to `sessions.STATE_TABLE_CALL_SECONDS` again, past the function's timeout. A refused
    connection fails at once, so it is asked again.
    """

    def __init__(
        self,
        table_name: str,
        client: Any,
        clock: Clock | None = None,
        *,
        unanswered: UnansweredEndpoints,
    ) -> None:
        """`client` is a boto3 DynamoDB client of the hub account; `clock` defaults to real time;
        `unanswered` is the record of endpoints that did not answer the invocation
        (`AccountSessions.unanswered_endpoints`)."""
        self._table_name = table_name
        self._client = client
        self._clock = clock or SystemClock()
        self._unanswered = unanswered
        self._endpoint = f"state table {table_name}"

    def _call(self, operation: str, **arguments: Any) -> Any:
        """The client's `operation` with `arguments`, refused once DynamoDB did not answer a
        call of this invocation (`HUB_CALLS_GIVEN_UP_AFTER`)."""
        return self._unanswered.ask(
            self._endpoint,
            HUB_CALLS_GIVEN_UP_AFTER,
            partial(getattr(self._client, operation), **arguments),
        )

    def _write_if_condition_holds(self, operation: str, **arguments: Any) -> bool:
        """The conditional write `operation` (`_call`): True when made, False when DynamoDB
        refused it for its ConditionExpression (the item is another owner's or claim's now);
        any other failure raises."""
        try:
            self._call(operation, **arguments)
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    @property
    def table_name(self) -> str:
        """The DynamoDB table this instance works on."""
        return self._table_name

    # Locks ---------------------------------------------------------------------------------

    def acquire_lock(self, name: str, owner: str, lease_seconds: int) -> bool:
        """Take the lock `name` for `lease_seconds`, or renew it if `owner` already holds it.

        Returns False while another owner holds an unexpired lease. The lease bounds how long a
        crashed owner can block the others, so choose it longer than the work it protects.
        """
        return self._try_acquire(name, owner, lease_seconds) is None

    def renew_lock(self, name: str, owner: str, lease_seconds: int) -> bool:
        """Extend the lease of `owner`'s lock `name` to `lease_seconds` from now, before acting
        on what was read under it. True while the lock item is still `owner`'s, even with its
        lease run out (no one else took it, so nothing changed under it); False once another
        owner took it, whether it still holds it or already released it: what `owner` read may
        be stale."""
        _check_lease(lease_seconds)
        return self._write_if_condition_holds(
            "update_item",
            TableName=self._table_name,
            Key=_key(f"LOCK#{name}", "LOCK"),
            UpdateExpression="SET #expires_at = :expires_at",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner", "#expires_at": "expires_at"},
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":expires_at": {"N": str(_epoch(self._clock.now()) + lease_seconds)},
            },
        )

    def release_lock(self, name: str, owner: str) -> bool:
        """Release the lock if `owner` holds it; False when someone else does (or nobody)."""
        return self._write_if_condition_holds(
            "delete_item",
            TableName=self._table_name,
            Key=_key(f"LOCK#{name}", "LOCK"),
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
        )

    @contextmanager
    def lock(
        self,
        name: str,
        owner: str,
        lease_seconds: int,
        *,
        wait_seconds: float = 0.0,
        deadline: ClaimDeadline | None = None,
    ) -> Iterator[HeldLock]:
        """Hold the lock `name` for the block; raises `LockNotAcquiredError` if another owner
        holds it (still, after trying again every LOCK_POLL_SECONDS for `wait_seconds`). With
        `deadline` (the holder's invocation), the lease is cut to the time it has left when the
        lock is taken, after any wait, so the lock never outlasts its holder. The lock is released
        on leaving the block, also on an exception. A release that fails is logged, not raised:
        the block's result or error stands (a change it made would otherwise read as failed), and
        the lease frees the lock."""
        holder = self._try_acquire(name, owner, _lease_from_now(lease_seconds, deadline))
        waited = 0.0
        while holder is not None and waited < wait_seconds:
            time.sleep(LOCK_POLL_SECONDS)
            waited += LOCK_POLL_SECONDS
            holder = self._try_acquire(name, owner, _lease_from_now(lease_seconds, deadline))
        if holder is not None:
            raise LockNotAcquiredError(
                name,
                holder.get("owner", {}).get("S"),
                _expiry_time(holder),
            )
        try:
            yield HeldLock(self, name, owner, lease_seconds, deadline)
        finally:
            try:
                self.release_lock(name, owner)
            except (ClientError, BotoCoreError) as error:
                _logger.warning(
                    "lock %s not released (%s); its lease of %d s frees it",
                    name,
                    error,
                    lease_seconds,
                )

    def _try_acquire(self, name: str, owner: str, lease_seconds: int) -> dict[str, Any] | None:
        """None when acquired, else the item of the current holder. A lock item no holder wrote
        (no lease, or one past any holder's) is taken, and reported once: taking it replaces it."""
        _check_lease(lease_seconds)
        now = self._clock.now()

        def report_unheld(replaced: dict[str, Any]) -> None:
            expiry = _expiry_epoch(replaced)
            if expiry is not None and expiry <= _epoch(now) + _LONGEST_HELD_SECONDS:
                return
            _logger.warning(
                "lock %s taken from an item no holder wrote (owner %s, lease %s): a hand edit "
                "or corruption, which would have held it until then",
                name,
                shown_value(replaced.get("owner", {}).get("S")),
                "none" if expiry is None else f"to {_expiry_text(replaced)}",
            )

        return self._put_if_free(
            {
                **_key(f"LOCK#{name}", "LOCK"),
                "owner": {"S": owner},
                "acquired_at": {"S": _sortable_iso(now)},
                "expires_at": {"N": str(_epoch(now) + lease_seconds)},
            },
            or_owner=owner,
            free_without_expiry=True,
            replaced=report_unheld,
        )

    # Idempotency ---------------------------------------------------------------------------

    @contextmanager
    def idempotent(
        self,
        scope: str,
        request_id: str,
        ttl_seconds: int,
        in_progress_seconds: int = DEFAULT_IN_PROGRESS_SECONDS,
        *,
        deadline: ClaimDeadline | None = None,
        fingerprint: str | None = None,
    ) -> Iterator[IdempotentRequest]:
        """Run a request at most once per `request_id` within `scope` for `ttl_seconds`.

        ::

            with table.idempotent("eks_scaler", request_id, ttl_seconds=86400) as request:
                if request.is_repeat:
                    return request.result
                result = scale(...)
                request.complete(result)
                return result

        Entering claims the id with an IN_PROGRESS record. A repeat of a completed id yields
        `is_repeat=True` with the stored result (whose `result` raises
        `UnreadableRequestRecordError` when it cannot be read: it is never run again as if it had
        no record); a repeat while the first is still running raises `RequestInProgressError`.
        Leaving the block without `complete` (an exception, or an early return because nothing
        was done) releases the claim, so a retry can act (a release that fails is logged: the
        block's own error stands, and the claim expires), unless the block called `hold` (it
        acted, but could not complete): then the claim expires. A claim
        whose invocation died is taken over after `in_progress_seconds`; with `deadline` (the
        invocation), no later than when Lambda ends it, so the platform's retry of an invocation
        killed holding the claim can act; a record whose `status` is neither IN_PROGRESS nor
        COMPLETED (a hand edit, corruption) is taken over at once, and logged.
        `IdempotentRequest.renew` extends the claim between steps of the work, for a claim kept
        shorter than the work.

        `fingerprint` (a digest of what the request asks) is kept with the claim and the
        result: a request under the id of one with another fingerprint, completed or in
        progress, raises `RequestIdReusedError` rather than being answered with the other's
        result (it would read as done). A record without one (written before, or by a caller
        that gives none) matches any request.
        """
        longest = in_progress_seconds

        def claim_seconds() -> int:
            return longest if deadline is None else deadline.claim_seconds(longest)

        in_progress_seconds = claim_seconds()
        now = self._clock.now()
        token = uuid.uuid4().hex
        key = _key(f"IDEMPOTENCY#{scope}", request_id)
        fingerprinted = {} if fingerprint is None else {_FINGERPRINT: {"S": fingerprint}}
        claim = {
            **key,
            "status": {"S": _IN_PROGRESS},
            "token": {"S": token},
            "expires_at": {"N": str(_epoch(now) + in_progress_seconds)},
            **fingerprinted,
        }
        existing = self._put_if_free(claim)
        if existing is not None and existing.get("status", {}).get("S") not in _REQUEST_STATUSES:
            existing = self._take_unknown_status(scope, request_id, claim, existing)
        if existing is not None:
            recorded = existing.get(_FINGERPRINT, {}).get("S")
            if fingerprint is not None and recorded is not None and recorded != fingerprint:
                raise RequestIdReusedError(scope, request_id)
            if existing.get("status", {}).get("S") != _COMPLETED:
                raise RequestInProgressError(scope, request_id)
            try:
                stored = _completed_result(scope, request_id, existing)
            except UnreadableRequestRecordError as unreadable:
                yield IdempotentRequest(request_id, None, None, unreadable=unreadable)
                return
            yield IdempotentRequest(request_id, stored, None)
            return

        def store(result: dict[str, Any]) -> None:
            self._complete_request(
                scope, request_id, token, result, ttl_seconds, fingerprinted=fingerprinted
            )

        def renew() -> bool:
            return self._renew_claim(scope, request_id, token, claim_seconds())

        request = IdempotentRequest(request_id, None, store, renew)
        try:
            yield request
        finally:
            if not (request.completed or request.held):
                self._release_claim_or_log(scope, request_id, token, in_progress_seconds)

    def _take_unknown_status(
        self, scope: str, request_id: str, claim: dict[str, Any], existing: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Put `claim` over `existing`, a request record whose `status` is neither IN_PROGRESS
        nor COMPLETED (a hand edit, corruption: no writer writes one), if its status is still
        that; None when taken (reported once: taking it replaces it), else the item found then.
        Read as it is, it stood for a request in progress until it expired, for good without
        an expiry; it is taken as a claim whose invocation died is (see `idempotent`)."""
        status = existing.get("status")
        shown = shown_value(status.get("S")) if isinstance(status, dict) and "S" in status else None
        refused_by = self._conditional_put(
            claim,
            "attribute_not_exists(#status) OR #status = :seen",
            {"#status": "status"},
            # For a record without a status, attribute_not_exists decides; a NULL matches none.
            {":seen": status if isinstance(status, dict) else {"NULL": True}},
        )
        if refused_by is None:
            _logger.warning(
                "request %s/%s taken from a record whose status %s is neither %s nor %s: a "
                "hand edit or corruption, which read as in progress until it expired",
                scope,
                request_id,
                shown or "(none)",
                _IN_PROGRESS,
                _COMPLETED,
            )
        return refused_by

    def completed_result(self, scope: str, request_id: str) -> dict[str, Any] | None:
        """The result `idempotent` stored for `request_id` in `scope`, without claiming it: None
        while the request is in progress, when it never ran, and once its record expired. For
        what a completed request recorded (backup_scheduler's day records name the copies each
        day made). Raises `UnreadableRequestRecordError` when the result cannot be read."""
        item = self._get(f"IDEMPOTENCY#{scope}", request_id)
        if item is None or item.get("status", {}).get("S") != _COMPLETED:
            return None
        return _completed_result(scope, request_id, item)

    def request_completed(self, scope: str, request_id: str) -> bool:
        """Whether `request_id` in `scope` was completed (an unexpired record, its result
        readable or not: it ran), without claiming it; raises `RequestInProgressError` while an
        invocation holds its claim, as `idempotent` would. One read, for a caller that only needs
        to know whether the request ran (an alert delivered under an earlier scope)."""
        item = self._get(f"IDEMPOTENCY#{scope}", request_id)
        status = None if item is None else item.get("status", {}).get("S")
        if status == _IN_PROGRESS:
            raise RequestInProgressError(scope, request_id)
        return status == _COMPLETED

    def request_in_progress(self, scope: str, request_id: str) -> bool:
        """Whether an invocation holds the claim `idempotent` took on `request_id` in `scope` right
        now (unexpired, not completed): for work that must not start before that one ends."""
        item = self._get(f"IDEMPOTENCY#{scope}", request_id)
        return item is not None and item.get("status", {}).get("S") == _IN_PROGRESS

    def _complete_request(
        self,
        scope: str,
        request_id: str,
        token: str,
        result: dict[str, Any],
        ttl_seconds: int,
        *,
        fingerprinted: dict[str, dict[str, str]],
    ) -> None:
        now = self._clock.now()
        completed = self._write_if_condition_holds(
            "put_item",
            TableName=self._table_name,
            Item={
                **_key(f"IDEMPOTENCY#{scope}", request_id),
                "status": {"S": _COMPLETED},
                "token": {"S": token},
                "data": {"S": _to_json(result)},
                "completed_at": {"S": _sortable_iso(now)},
                "expires_at": {"N": str(_epoch(now) + ttl_seconds)},
                **fingerprinted,
            },
            ConditionExpression="#token = :token",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={":token": {"S": token}},
        )
        if not completed:
            # Our claim expired and another invocation took the request over.
            raise RequestInProgressError(scope, request_id)

    def _renew_claim(self, scope: str, request_id: str, token: str, seconds: int) -> bool:
        """Extend the unfinished claim with `token` to `seconds` from now; False once another
        claim replaced it. Like `renew_lock`, a claim that lapsed but that no one took is still
        ours: nothing was done under another claim meanwhile."""
        return self._write_if_condition_holds(
            "update_item",
            TableName=self._table_name,
            Key=_key(f"IDEMPOTENCY#{scope}", request_id),
            UpdateExpression="SET #expires_at = :expires_at",
            ConditionExpression="#token = :token AND #status = :in_progress",
            ExpressionAttributeNames={
                "#token": "token",
                "#status": "status",
                "#expires_at": "expires_at",
            },
            ExpressionAttributeValues={
                ":token": {"S": token},
                ":in_progress": {"S": _IN_PROGRESS},
                ":expires_at": {"N": str(_epoch(self._clock.now()) + seconds)},
            },
        )

    def _release_claim_or_log(
        self, scope: str, request_id: str, token: str, in_progress_seconds: int
    ) -> None:
        """Release the claim; a release that fails is logged, not raised, as for locks: the
        block's result or error stands (a caller may fail the invocation on that error so the
        platform retries), and the claim frees when it expires."""
        try:
            self._release_claim(scope, request_id, token)
        except (ClientError, BotoCoreError) as error:
            _logger.warning(
                "claim %s/%s not released (%s); it expires within %d s",
                scope,
                request_id,
                error,
                in_progress_seconds,
            )

    def _release_claim(self, scope: str, request_id: str, token: str) -> None:
        # A claim another invocation took over is its own to release.
        self._write_if_condition_holds(
            "delete_item",
            TableName=self._table_name,
            Key=_key(f"IDEMPOTENCY#{scope}", request_id),
            ConditionExpression="#token = :token AND #status = :in_progress",
            ExpressionAttributeNames={"#token": "token", "#status": "status"},
            ExpressionAttributeValues={
                ":token": {"S": token},
                ":in_progress": {"S": _IN_PROGRESS},
            },
        )

    # Changes and cooldowns -----------------------------------------------------------------

    def record_change(
        self,
        key: str,
        record: dict[str, Any],
        history_ttl_seconds: int,
        *,
        changed_at: datetime | None = None,
    ) -> StateChange:
        """Record that `key` changed now (or at `changed_at`, for a change made earlier and
        recorded late, which the caller knows to be later than the latest recorded one): the
        latest change (kept) plus a history entry that expires `history_ttl_seconds` after the
        change. Both are written in one transaction."""
        when = self._clock.now() if changed_at is None else changed_at
        data = {"S": _to_json(record)}
        stamp = {"S": _sortable_iso(when)}
        self._call(
            "transact_write_items",
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table_name,
                        "Item": {
                            **_key(f"STATE#{key}", f"{_HISTORY_PREFIX}{_sortable_iso(when)}"),
                            "data": data,
                            "changed_at": stamp,
                            "expires_at": {"N": str(_epoch(when) + history_ttl_seconds)},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": self._table_name,
                        "Item": {
                            **_key(f"STATE#{key}", "LATEST"),
                            "data": data,
                            "changed_at": stamp,
                        },
                    }
                },
            ],
        )
        return StateChange(changed_at=when, record=record)

    def latest_change(self, key: str) -> StateChange | None:
        """The last change recorded for `key`, if any; raises UnreadableStateRecordError when
        its time or record cannot be read (`_to_change`)."""
        item = self._get(f"STATE#{key}", "LATEST")
        return None if item is None else _to_change(key, item)

    def redate_latest_change(self, key: str, change: StateChange) -> StateChange | None:
        """Date `key`'s latest change `change`, recorded as of a time after now that no
        writer's clock wrote (`clock.written_after`: a hand edit, corruption), as of now
        instead, keeping that time in `redated_from`: read as it is, it stays the last change
        until that time (a cooldown that never ends), and dated now it counts as if made when
        first seen, which no change can have been after. None when the latest change is gone.
        For a caller holding what serialises the key's writers (a node group's lock)."""
        now = self._clock.now()
        redated = self._write_if_condition_holds(
            "update_item",
            TableName=self._table_name,
            Key=_key(f"STATE#{key}", "LATEST"),
            UpdateExpression="SET changed_at = :now, redated_from = :was",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={
                ":now": {"S": _sortable_iso(now)},
                ":was": {"S": iso_z(change.changed_at)},
            },
        )
        return StateChange(changed_at=now, record=change.record) if redated else None

    def last_change_at(self, key: str) -> datetime | None:
        """When `key` last changed, if it ever did."""
        change = self.latest_change(key)
        return None if change is None else change.changed_at

    def cooldown_remaining(self, key: str, cooldown_seconds: int) -> int:
        """Whole seconds until `cooldown_seconds` have passed since the last change (0 = go)."""
        last = self.last_change_at(key)
        if last is None:
            return 0
        remaining = (last + timedelta(seconds=cooldown_seconds) - self._clock.now()).total_seconds()
        return max(0, math.ceil(remaining))

    def query_history(self, key: str, since: datetime) -> list[StateChange]:
        """The unexpired changes of `key` at or after `since`, oldest first; raises
        UnreadableStateRecordError at an entry whose time or record cannot be read."""
        return [
            _to_change(key, item)
            for item in self._unexpired_items(_history_query(self._table_name, key, since))
        ]

    def readable_history(self, key: str, since: datetime) -> HistoryRead:
        """`query_history` for a reader that can go on without an entry whose time or record
        cannot be read: each such entry is returned among `unreadable` (its key, time and what
        is wrong) instead of raising, and the others are read on."""
        changes: list[StateChange] = []
        unreadable: list[UnreadableStateRecordError] = []
        query = _history_query(self._table_name, key, since)
        for item in self._unexpired_items(query):
            try:
                changes.append(_to_change(key, item))
            except UnreadableStateRecordError as error:
                unreadable.append(error)
        return HistoryRead(changes=changes, unreadable=unreadable)

    def changes_newest_first(self, key: str) -> Iterator[StateChange]:
        """The unexpired changes of `key`, newest first, read a page of a few at a time as the
        caller goes on (not the whole history); raises UnreadableStateRecordError at one whose
        time or record cannot be read."""
        query: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"STATE#{key}"},
                ":from": {"S": _HISTORY_PREFIX},
                ":to": {"S": _HISTORY_END},
            },
            "ScanIndexForward": False,
            "Limit": _NEWEST_FIRST_PAGE_ITEMS,
            "ConsistentRead": True,
        }
        return (_to_change(key, item) for item in self._unexpired_items(query))

    def _unexpired_items(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The unexpired items `query` finds, page by page (a Query answers 1 MB at most); a
        LastEvaluatedKey answered again raises `RepeatedPageTokenError` (`page_tokens`)."""
        now_epoch = _epoch(self._clock.now())
        for response in pages_of(
            partial(self._call, "query"),
            "Query",
            query,
            "ExclusiveStartKey",
            answer_token_field="LastEvaluatedKey",
        ):
            yield from (item for item in response["Items"] if not _expired(item, now_epoch))

    # Saved values and dedup ----------------------------------------------------------------

    def put_value(
        self, key: str, name: str, value: dict[str, Any], ttl_seconds: int | None = None
    ) -> None:
        """Save `value` under (`key`, `name`), replacing any previous one; kept forever unless
        `ttl_seconds` is given."""
        self._call(
            "put_item",
            TableName=self._table_name,
            Item=self._value_item(key, name, value, ttl_seconds),
        )

    def delete_value(self, key: str, name: str) -> None:
        """Remove the value saved under (`key`, `name`), if any."""
        self._call(
            "delete_item",
            TableName=self._table_name,
            Key=_key(f"STATE#{key}", f"{_VALUE_PREFIX}{name}"),
        )

    def get_value(self, key: str, name: str) -> dict[str, Any] | None:
        """The value saved under (`key`, `name`), or None if none was saved or it expired."""
        saved = self.get_versioned_value(key, name)
        return None if saved is None else saved.value

    def values_named(self, key: str, name_prefix: str) -> dict[str, dict[str, Any]]:
        """The unexpired values saved under `key` whose name starts with `name_prefix`, by name
        in name order: for a record kept as several values, since one item holds 400 KB at most."""
        saved = self.versioned_values_named(key, name_prefix)
        return {name: value.value for name, value in saved.items()}

    def versioned_values_named(self, key: str, name_prefix: str) -> dict[str, VersionedValue]:
        """`values_named` with each value's version, for `replace_value` of each part of a
        record several writers change at once."""
        return {
            name: _to_value(key, name, item) for name, item in self._value_items(key, name_prefix)
        }

    def readable_values_named(self, key: str, name_prefix: str) -> ValuesRead:
        """`versioned_values_named` for a reader that can go on without a value that cannot be
        read: each such value is returned among `unreadable` instead of raising, and the others
        are read on."""
        values: dict[str, VersionedValue] = {}
        unreadable: dict[str, UnreadableStateValueError] = {}
        for name, item in self._value_items(key, name_prefix):
            try:
                values[name] = _to_value(key, name, item)
            except UnreadableStateValueError as error:
                unreadable[name] = error
        return ValuesRead(values=values, unreadable=unreadable)

    def _value_items(self, key: str, name_prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The unexpired saved-value items of `key` whose name starts with `name_prefix`, each
        with its name, in name order."""
        query: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"STATE#{key}"},
                ":prefix": {"S": f"{_VALUE_PREFIX}{name_prefix}"},
            },
            "ConsistentRead": True,
        }
        for item in self._unexpired_items(query):
            yield item["sk"]["S"].removeprefix(_VALUE_PREFIX), item

    def keys_holding_value(
        self,
        name: str,
        key_prefix: str,
        *,
        start_after: dict[str, Any] | None = None,
        page_items: int | None = None,
        go_on: Callable[[], bool] = lambda: True,
    ) -> KeysFound:
        """The keys starting with `key_prefix` that hold an unexpired value named `name`, in
        key order, found by a Scan of the table (page by page): for values saved before their
        function indexed them, read as it upgrades, never on every run.

        The Scan starts after `start_after` (where an earlier search stopped), evaluates at most
        `page_items` items a page (DynamoDB's 1 MB without), and asks `go_on` after each page
        but the last: a table too large for one invocation is searched over several, each
        resuming where the last stopped."""
        scan: dict[str, Any] = {
            "TableName": self._table_name,
            "FilterExpression": "begins_with(pk, :prefix) AND sk = :name",
            "ExpressionAttributeValues": {
                ":prefix": {"S": f"STATE#{key_prefix}"},
                ":name": {"S": f"{_VALUE_PREFIX}{name}"},
            },
            "ProjectionExpression": "pk, expires_at",
            # Said, not implied by the projection: the roles may Scan only under the condition
            # `dynamodb:Select` SPECIFIC_ATTRIBUTES with `dynamodb:Attributes` among pk, sk and
            # expires_at (catalog.functions.STATE_TABLE_KEYS_SCAN), so no Scan reads a value.
            "Select": "SPECIFIC_ATTRIBUTES",
            "ConsistentRead": True,
        }
        if start_after is not None:
            scan["ExclusiveStartKey"] = start_after
        if page_items is not None:
            scan["Limit"] = page_items
        now_epoch = _epoch(self._clock.now())
        keys = []
        for response in pages_of(
            partial(self._call, "scan"),
            "Scan",
            scan,
            "ExclusiveStartKey",
            answer_token_field="LastEvaluatedKey",
        ):
            items = answer_field(response, "Scan", "Items")
            keys += [
                item["pk"]["S"].removeprefix("STATE#")
                for item in items
                if not _expired(item, now_epoch)
            ]
            last_evaluated = response.get("LastEvaluatedKey")
            if last_evaluated and not go_on():
                return sorted(keys), last_evaluated
        return sorted(keys), None

    def get_versioned_value(self, key: str, name: str) -> VersionedValue | None:
        """The value saved under (`key`, `name`) with its version, for `replace_value`."""
        item = self._get(f"STATE#{key}", f"{_VALUE_PREFIX}{name}")
        if item is None:
            return None
        return _to_value(key, name, item)

    def replace_value(
        self,
        key: str,
        name: str,
        value: dict[str, Any],
        *,
        read: VersionedValue | None,
        ttl_seconds: int | None = None,
    ) -> bool:
        """Save `value` under (`key`, `name`) only if what is saved is still what was `read`
        (None: nothing, or an expired value; a version of None: a value still stored with no
        text). False, writing nothing, when another writer came in between: read again and
        decide again."""
        item = self._value_item(key, name, value, ttl_seconds)
        if read is None:
            return self._put_if_free(item) is None
        if read.version is None:
            # Every writer stores a text, so a value with none still is the one read.
            condition = "attribute_exists(pk) AND NOT attribute_type(#data, :string)"
            refused_by = self._conditional_put(
                item, condition, {"#data": "data"}, {":string": {"S": "S"}}
            )
        else:
            refused_by = self._conditional_put(
                item, "#data = :read", {"#data": "data"}, {":read": {"S": read.version}}
            )
        return refused_by is None

    def rewrite_value(self, key: str, name: str, value: dict[str, Any]) -> bool:
        """Save `value` under (`key`, `name`) in place of the value saved there, keeping its
        expiry (none stays none): for a value corrected as read, whose lifetime its writer set.
        False, writing nothing, when no value is saved there any more. For a caller holding
        what serialises the key's writers (a node group's lock)."""
        return self._write_if_condition_holds(
            "update_item",
            TableName=self._table_name,
            Key=_key(f"STATE#{key}", f"{_VALUE_PREFIX}{name}"),
            UpdateExpression="SET #data = :data, updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#data": "data"},
            ExpressionAttributeValues={
                ":data": {"S": _to_json(value)},
                ":now": {"S": _sortable_iso(self._clock.now())},
            },
        )

    def _value_item(
        self, key: str, name: str, value: dict[str, Any], ttl_seconds: int | None
    ) -> dict[str, Any]:
        now = self._clock.now()
        item = {
            **_key(f"STATE#{key}", f"{_VALUE_PREFIX}{name}"),
            "data": {"S": _to_json(value)},
            "updated_at": {"S": _sortable_iso(now)},
        }
        if ttl_seconds is not None:
            item["expires_at"] = {"N": str(_epoch(now) + ttl_seconds)}
        return item

    def claim_once(self, key: str, ttl_seconds: int) -> bool:
        """True the first time `key` is claimed within `ttl_seconds`, False on every repeat.

        Once the claim has expired the next call claims it again, whether or not DynamoDB has
        deleted the item yet.
        """
        now = self._clock.now()
        refused_by = self._put_if_free(
            {
                **_key(f"ONCE#{key}", "ONCE"),
                "claimed_at": {"S": _sortable_iso(now)},
                "expires_at": {"N": str(_epoch(now) + ttl_seconds)},
            }
        )
        return refused_by is None

    def release_once(self, key: str) -> None:
        """Drop the claim on `key`, so the next `claim_once` succeeds: for a claim whose work
        failed before it changed anything (the caller must hold what serialises the claimants)."""
        self._call("delete_item", TableName=self._table_name, Key=_key(f"ONCE#{key}", "ONCE"))

    def _put_if_free(
        self,
        item: dict[str, Any],
        *,
        or_owner: str | None = None,
        free_without_expiry: bool = False,
        replaced: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """Put `item` unless an unexpired item with its key exists (held by someone other than
        `or_owner`, when given). Returns None when written, else the existing item.

        `free_without_expiry` (a lock): an existing item without a Number `expires_at`, or with
        one further ahead than any holder's lease (`LONGEST_LOCK_LEASE_SECONDS`), counts as
        free. Every holder writes its lease as one, so only a hand edit or corruption leaves
        one without or that far ahead, and TTL never deletes such an item in time: it would hold
        the lock for good. A request record without one stays taken (a completed request is
        never run again). `replaced`: see `_conditional_put`."""
        now_epoch = _epoch(self._clock.now())
        condition = "attribute_not_exists(pk) OR #expires_at < :now"
        names = {"#expires_at": "expires_at"}
        values = {":now": {"N": str(now_epoch)}}
        if free_without_expiry:
            # Checked before the comparisons, which moto cannot make with a String.
            condition = (
                "attribute_not_exists(pk) OR NOT attribute_type(#expires_at, :number) OR "
                "#expires_at < :now OR #expires_at > :unheld"
            )
            values[":number"] = {"S": "N"}
            values[":unheld"] = {"N": str(now_epoch + _LONGEST_HELD_SECONDS)}
        if or_owner is not None:
            condition += " OR #owner = :owner"
            names["#owner"] = "owner"
            values[":owner"] = {"S": or_owner}
        return self._conditional_put(item, condition, names, values, replaced=replaced)

    def _conditional_put(
        self,
        item: dict[str, Any],
        condition: str,
        names: dict[str, str],
        values: dict[str, dict[str, str]],
        *,
        replaced: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """Put `item` if `condition` holds. Returns None when written, else the existing item;
        with `replaced`, the put asks for the item it replaced and, when written over one, calls
        `replaced` with it.

        botocore sends a put again when its answer was lost (a read timeout, a closed
        connection) after DynamoDB may have applied it; that retry then fails its own condition.
        Each put carries a fresh `write_token`, so an existing item holding ours is this put,
        applied: it counts as written, as if the answer had arrived.
        """
        write_token = uuid.uuid4().hex
        old_item = {"ReturnValues": "ALL_OLD"} if replaced is not None else {}
        try:
            response = self._call(
                "put_item",
                TableName=self._table_name,
                Item={**item, _WRITE_TOKEN: {"S": write_token}},
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **old_item,
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            existing = dict(error.response.get("Item", {}))
            if existing.get(_WRITE_TOKEN, {}).get("S") == write_token:
                return None
            return existing
        previous = response.get("Attributes")
        if replaced is not None and isinstance(previous, dict):
            replaced(previous)
        return None

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._call(
            "get_item", TableName=self._table_name, Key=_key(pk, sk), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None or _expired(item, _epoch(self._clock.now())):
            return None
        return dict(item)


def _key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _history_query(table_name: str, key: str, since: datetime) -> dict[str, Any]:
    """The Query of `key`'s history entries at or after `since`, oldest first."""
    return {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"STATE#{key}"},
            ":from": {"S": f"{_HISTORY_PREFIX}{_sortable_iso(since)}"},
            ":to": {"S": _HISTORY_END},
        },
        "ConsistentRead": True,
    }


_LONGEST_HELD_SECONDS = LONGEST_LOCK_LEASE_SECONDS + CLOCK_SKEW_SECONDS
"""How far after now a holder's lease may end, as its own clock wrote it."""


def _check_lease(lease_seconds: int) -> None:
    """Refuse a lease no holder needs: one past LONGEST_LOCK_LEASE_SECONDS would read as an
    item no holder wrote, and be taken while held."""
    if lease_seconds > LONGEST_LOCK_LEASE_SECONDS:
        raise ValueError(
            f"a lock lease of {lease_seconds} s is longer than {LONGEST_LOCK_LEASE_SECONDS} s, "
            "the longest invocation"
        )


def _lease_from_now(longest: int, deadline: ClaimDeadline | None) -> int:
    """A lease taken now: `longest`, cut to what `deadline` has left when there is one."""
    return longest if deadline is None else deadline.claim_seconds(longest)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _expiry_epoch(item: dict[str, Any]) -> float | None:
    """When `item` expires, in epoch seconds, as DynamoDB's TTL reads its `expires_at`: None
    without one, or with one that is not a Number (TTL ignores such an item: it never expires).
    The fleet writes whole seconds; a hand edit may write a decimal or an exponent, which TTL
    reads as the number it is, where `int` raised for every reader of the key."""
    number = item.get("expires_at", {}).get("N")
    if not isinstance(number, str):
        return None
    try:
        return float(number)
    except ValueError:
        return None


def _expiry_time(item: dict[str, Any]) -> datetime | None:
    """When `item` expires (`_expiry_epoch`), for a message; None past the calendar."""
    expiry = _expiry_epoch(item)
    if expiry is None:
        return None
    try:
        return datetime.fromtimestamp(expiry, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _expiry_text(item: dict[str, Any]) -> str:
    """When `item` expires, for a log line: its time, or that it is past the calendar."""
    expiry = _expiry_time(item)
    return "past the calendar" if expiry is None else iso_z(expiry)


def _expired(item: dict[str, Any], now_epoch: int) -> bool:
    expiry = _expiry_epoch(item)
    return expiry is not None and expiry < now_epoch


def _to_json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _to_change(key: str, item: dict[str, Any]) -> StateChange:
    """The change an entry of `key` records; raises UnreadableStateRecordError when its time or
    record cannot be read (corruption, an older format, a hand edit): no `changed_at`, or one
    that is no ISO 8601 time with a zone, or `data` that is no JSON object in a string. Every
    reader would otherwise meet a KeyError, ValueError or RecursionError no caller expects,
    failing its whole run. The error names the entry's time where it can be read and what is
    wrong, never the value."""
    try:
        changed_at = _changed_at(item)
        record = _record(item)
    except _UnreadableEntryError as unreadable:
        raise UnreadableStateRecordError(key, _entry_time(item), unreadable.problem) from None
    return StateChange(changed_at=changed_at, record=record)


def _to_value(key: str, name: str, item: dict[str, Any]) -> VersionedValue:
    """The value a saved-value item of `key` named `name` holds; raises
    UnreadableStateValueError when its `data` is missing, no string, no JSON (or nested too deep
    to decode) or no JSON object. Every reader would otherwise meet a KeyError, TypeError,
    ValueError or RecursionError no caller expects, failing its whole run over one target's
    state. The error names the key, the name and what is wrong, never the value; it carries the
    `version` `replace_value` compares (`data` when it is a string, else None: no text), so a
    reader may replace the value only while it is still the one it could not read."""
    try:
        text = _string_attribute(item, "data")
    except _UnreadableEntryError as unreadable:
        raise UnreadableStateValueError(key, name, unreadable.problem) from None
    try:
        value = _record(item)
    except _UnreadableEntryError as unreadable:
        raise UnreadableStateValueError(key, name, unreadable.problem, version=text) from None
    return VersionedValue(value, version=text)


def _completed_result(scope: str, request_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """The result the record of a completed request holds; raises UnreadableRequestRecordError
    when its `data` is missing, no string, no JSON or no JSON object, where a bare decode raised
    a KeyError, TypeError or ValueError no caller expects."""
    try:
        return _record(item)
    except _UnreadableEntryError as unreadable:
        raise UnreadableRequestRecordError(scope, request_id, unreadable.problem) from None


class _UnreadableEntryError(Exception):
    """What `_to_change` or `_to_value` cannot read in an item, before it knows which item."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _changed_at(item: dict[str, Any]) -> datetime:
    text = _string_attribute(item, "changed_at")
    try:
        return parse_iso(text)
    except ValueError:
        raise _UnreadableEntryError(
            "its changed_at is not an ISO 8601 time with a time zone"
        ) from None


def _record(item: dict[str, Any]) -> dict[str, Any]:
    text = _string_attribute(item, "data")
    try:
        record = json.loads(text)
    except ValueError:
        raise _UnreadableEntryError("its data is not JSON") from None
    except RecursionError:
        # Valid JSON nested deeper than the decoder recurses: an item holds 400 KB.
        raise _UnreadableEntryError("its data is nested too deep to read") from None
    if not isinstance(record, dict):
        raise _UnreadableEntryError(f"its data is {_json_type(record)}, not an object")
    return record


def _string_attribute(item: dict[str, Any], name: str) -> str:
    """The string attribute `name` of `item`, as the fleet writes it."""
    attribute = item.get(name)
    if attribute is None:
        raise _UnreadableEntryError(f"it has no {name}")
    text = attribute.get("S")
    if not isinstance(text, str):
        # The attribute's DynamoDB type (N, B, M, ...): one of a fixed few names, not its value.
        kind = next(iter(attribute), "untyped")
        raise _UnreadableEntryError(f"its {name} is a DynamoDB {kind}, not a string")
    return text


def _entry_time(item: dict[str, Any]) -> str | None:
    """The time by which a person finds a change entry, when it is one: a history entry's
    sort-key time, else (the latest change, whose sort key holds none) its `changed_at`."""
    sort_key = item["sk"]["S"]
    if sort_key.startswith(_HISTORY_PREFIX):
        text = sort_key.removeprefix(_HISTORY_PREFIX)
    else:
        text = item.get("changed_at", {}).get("S")
    if not isinstance(text, str):
        return None
    try:
        parse_iso(text)
    except ValueError:
        return None
    return text


def _json_type(value: object) -> str:
    """What JSON `value` (decoded, not an object) is, for an error that must not show it."""
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    if isinstance(value, str):
        return "a JSON string"
    return "a JSON list"


def _is_condition_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == _CONDITION_FAILED)


def _sortable_iso(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so that string order is time order in sort keys."""
    return iso_z(moment, "microseconds")
