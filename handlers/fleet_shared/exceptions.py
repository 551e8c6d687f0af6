"""Errors of the shared layer.

Every error a handler is expected to catch derives from `FleetError`, so a handler can turn the
known failures into a result (see `event_parsing.error_result`) and let anything else surface as
a real bug. Each error keeps its parts as attributes, so callers and tests need not parse text.
"""

from __future__ import annotations

from datetime import datetime

from fleet_shared.validation_errors import cut_echo, escaped_echo


class FleetError(Exception):
    """Base of the errors the fleet raises on purpose."""


class OutsideCalendarError(ValueError):
    """A time whose offset carries it past the years 1-9999 once in UTC
    (`9999-12-31T23:59:59-14:00`): a ValueError, as for any other unreadable time, so callers that
    take an unreadable time for none or refuse it do the same with this one."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"{text[:40]!r} is outside the years 1-9999 in UTC")


class PagesCutShortError(FleetError):
    """A paged read (`page_tokens.pages` with `next_page_allowed`) stopped before its next page
    because the invocation had no time left for one: an API (or a proxy) answering page after
    page under new tokens was otherwise read until Lambda ended the run."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        super().__init__(f"{operation} read cut short before its next page, for lack of time")


class MetricReadCutShortError(FleetError):
    """A GetMetricData read stopped before its next page (or batch of queries) because its caller
    had no time left for one (`metric_data.get_metric_series`'s `next_page_allowed`): the series
    read so far are partial, so none of them is returned."""

    def __init__(self) -> None:
        super().__init__("GetMetricData read cut short before its next page, for lack of time")


class DeploymentError(FleetError):
    """The deployment, not the event, is wrong: an environment variable or the fleet inventory the
    program wrote. The skeleton fails the invocation with it (`fleet_shared.handler`), so the
    event is kept for a retry and the function's Errors alarm tells people; answered as an error
    result, a scheduled run would end as a success nobody reads."""


class ConfigurationError(DeploymentError):
    """An environment variable is missing or invalid."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"environment variable {variable}: {problem}")


class EventValidationError(FleetError):
    """The event does not have the expected shape; `field` is a path like `nodegroups[0].size`.

    Both are cut to `validation_errors.ECHO_LIMIT` characters, since either may repeat input."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = cut_echo(field)
        self.problem = cut_echo(problem)
        super().__init__(f"invalid event: {self.field}: {self.problem}")


class LockNotAcquiredError(FleetError):
    """Another owner holds the lock; acting anyway could race that owner."""

    def __init__(self, name: str, holder: str | None, expires_at: datetime | None) -> None:
        self.name = name
        self.holder = holder
        self.expires_at = expires_at
        held = f" by {holder}" if holder else ""
        until = f" until {expires_at.isoformat()}" if expires_at else ""
        super().__init__(f"lock {name} is held{held}{until}")


class RequestInProgressError(FleetError):
    """A request with the same id is being processed right now; the caller should retry later."""

    def __init__(self, scope: str, request_id: str) -> None:
        self.scope = scope
        self.request_id = request_id
        super().__init__(f"request {request_id} of {scope} is already in progress")


class RequestIdReusedError(FleetError):
    """A request came under the id of an earlier request, completed or in progress, that asked
    something else (`StateTable.idempotent`'s `fingerprint`): answered with that request's
    result, it would read as done and nothing it asks would be done. A caller refuses it naming
    its request id field; a different request needs a new id."""

    def __init__(self, scope: str, request_id: str) -> None:
        self.scope = scope
        self.request_id = cut_echo(request_id)
        super().__init__(
            f"request {self.request_id} of {scope} was already made with a different request"
        )


class MemberAccessError(FleetError):
    """Assuming the member role failed; callers skip that account and go on with the others.
    `refused` when STS answered AccessDenied (the role is missing in the account, or does not
    trust the function's): the member's grant, which a retry does not change, where a throttle
    or an STS that did not answer may pass."""

    def __init__(self, account_id: str, region: str, cause: str, *, refused: bool = False) -> None:
        self.account_id = account_id
        self.region = region
        self.cause = cause
        self.refused = refused
        super().__init__(f"cannot access account {account_id} in {region}: {cause}")


class InventoryError(DeploymentError):
    """The fleet inventory object was read but does not match the expected shape (not JSON, a
    field wrong); one that cannot be read is an `InventoryUnreadableError`."""

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        self.problem = problem
        super().__init__(f"fleet inventory {location}: {problem}")


class InventoryUnreadableError(Exception):
    """The fleet inventory object could not be read: S3 failed after botocore's retries (a
    server error, throttling, a timeout), refused it, or has no object at its key.

    Deliberately not a `FleetError`, which is the result of an invocation that succeeded: a
    scheduled run has no one to read that result (no retry, no dead-letter queue, no error
    alarm), so the run would be lost unnoticed. Failing the invocation lets Lambda retry it and
    the function's Errors alarm count it. An object read but not a valid inventory is an
    `InventoryError`, which names the field: no retry helps it. `cause` is S3's error as
    `aws_answers.call_error_text` quotes it (the answer's text cut and escaped), so every caller
    repeats one short line."""

    def __init__(self, location: str, cause: str) -> None:
        self.location = location
        self.cause = cause
        super().__init__(f"fleet inventory {location} cannot be read: {cause}")


class UnreadableStateRecordError(FleetError):
    """A change record of the state table (a key's latest change or a history entry) whose time
    or record cannot be read: no `changed_at` or one that is no time with a zone, or `data` that
    is no JSON object. The table is the fleet's own, so only corruption, an older format or a
    hand edit writes one. Raised by the table's readers of changes, naming the key, the entry's
    time where it can be read (`changed_at`: a history entry's sort-key time, else the latest
    change's own, else None) and what is wrong, never the value, so a caller fails the one
    piece of state (a node group) it reads, not its run."""

    def __init__(self, key: str, changed_at: str | None, problem: str) -> None:
        self.key = cut_echo(key)
        self.changed_at = changed_at
        self.problem = problem
        where = self.key if changed_at is None else f"{self.key} at {changed_at}"
        super().__init__(f"state record of {where}: {problem}")


class UnreadableStateValueError(FleetError):
    """A saved value of the state table (`StateTable.put_value`) that cannot be read: no `data`,
    `data` that is no string, no JSON, nested too deep to decode, or JSON that is no object. The
    table is the fleet's own, so only corruption, an older format or a hand edit writes one.
    Raised by every reader of saved values, naming the key, the value's name and what is wrong,
    never the value, so a caller fails the one target whose state it reads, not its run.
    `version` is what `StateTable.replace_value` compares (the stored `data` when it is a
    string, None when there is no text), for a caller that replaces the value it could not read
    only if no other writer replaced it meanwhile (never shown)."""

    def __init__(self, key: str, name: str, problem: str, *, version: str | None = None) -> None:
        self.key = cut_echo(key)
        self.name = cut_echo(name)
        self.problem = problem
        self.version = version
        super().__init__(f"saved value {self.name} of {self.key}: {problem}")


class UnreadableRequestRecordError(UnreadableStateValueError):
    """The record of a completed request (`StateTable.idempotent`) whose stored result cannot be
    read: no `data`, `data` that is no string, no JSON, or JSON that is no object. The request
    ran, so a repeat is refused with this error, never run again as if it had no record: a caller
    isolates it as any unreadable saved value, and a client that means to act again sends a new
    request id. Names the scope, the request id and what is wrong, never the data."""

    def __init__(self, scope: str, request_id: str, problem: str) -> None:
        super().__init__(f"IDEMPOTENCY#{scope}", request_id, problem)
        self.scope = cut_echo(scope)
        self.request_id = cut_echo(request_id)
        self.args = (
            f"request {self.request_id} of {self.scope} completed, but its recorded result "
            f"cannot be read: {problem}; it is not run again under this request id",
        )


class AnswerLostError(FleetError):
    """A mutation failed after one of its attempts was sent and got no answer (a read timeout, a
    connection closed before the answer) or a server failure (`fleet_shared.lost_answers`),
    whatever later attempts met: AWS may have applied it, and only a read tells. The unanswered
    attempt's error is quoted escaped and cut (`escaped_echo`): a server failure's message may be
    a proxy's page, and the message reaches results, alerts and log lines."""

    def __init__(self, call: str, unanswered: Exception) -> None:
        self.call = call
        self.unanswered = unanswered
        super().__init__(
            f"{call}: {escaped_echo(str(unanswered))}: its answer was lost, so it may have been "
            "applied"
        )


class ObjectTooLargeError(FleetError):
    """An object is larger than its reader may take into memory: it is refused unread."""

    def __init__(self, key: str, size: int, limit: int, etag: str) -> None:
        self.key = key
        self.size = size
        self.limit = limit
        self.etag = etag
        super().__init__(
            f"{cut_echo(key)}: {size:,} bytes or more, more than the {limit:,} a document may have"
        )


class ObjectReadTimeoutError(FleetError):
    """An object's bytes did not all come within the time its reader had for them (a body that
    trickles, each part within the socket's read timeout): the read is given up, naming the
    object, before Lambda would end the invocation in it."""

    def __init__(self, key: str, seconds: float) -> None:
        self.key = key
        self.seconds = seconds
        super().__init__(
            f"{cut_echo(key)}: its bytes did not all come within the {seconds:.1f} s the "
            "invocation had left for them"
        )


class ObjectsToRetryError(Exception):
    """Objects of an S3 notification failed for a reason that may pass (the network, throttling,
    another invocation's lock or claim). Deliberately not a `FleetError`, which becomes the
    result of an invocation that succeeded: S3 invokes asynchronously, so only a failed invocation
    is retried by Lambda (and, once its retries are spent, sent to the function's dead-letter
    queue)."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        listed = "; ".join(f"{cut_echo(key)}: {error}" for key, error in failures)
        super().__init__(f"{len(failures)} object(s) to retry: {listed}")
