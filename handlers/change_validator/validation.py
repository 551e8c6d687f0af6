"""A validation from the change to the verdict: baseline, follow, bake, compare, alert.

1. `start` (the CloudTrail event): one validation per EKS update id (idempotent: the same event
   twice is one validation). It records what the change replaced, the baseline over the bake
   length (at least 15 minutes) before the change (or, while an earlier change of the cluster
   is still validated, that one's baseline, from before both), and the rollback that would
   apply, then checks the update at once.
2. Following: DescribeUpdate until EKS reports Successful, Failed or Cancelled; while InProgress
   (or when DescribeUpdate or the member session failed: status `Unknown`, the error kept) a
   one-time schedule calls back after VALIDATION_FOLLOW_MINUTES, up to
   VALIDATION_MAX_FOLLOW_CHECKS checks (an update still unfinished then is `failed`; one whose
   status could not be read at that last check is `inconclusive`).
3. Baking: once Successful, a schedule calls back after VALIDATION_BAKE_MINUTES; the same figures
   are measured over the bake and compared (comparison.py): `passed`, `degraded` with the
   figures that moved, or `not_enough_baseline` when nothing moved but a subject's baseline
   held too few samples to be compared. Failed or Cancelled is `failed`. A measurement that
   fails (an AWS error in the member account, or a listing still paging when the invocation
   keeps only MEASUREMENT_RESERVE_SECONDS) counts a failed check, keeps its error in the
   record and is tried
   again VALIDATION_FOLLOW_MINUTES later, up to VALIDATION_MAX_FOLLOW_CHECKS failed checks; then
   the validation is `inconclusive`. Each bake check books its successor before measuring, so
   one Lambda ends (slow member endpoints) leaves the next, which counts it as failed. A
   baseline that cannot be measured when the change arrives cannot be measured later (it is the
   health before the change): `inconclusive` at once.
   Raising instead would end, after the platform's retries, with no verdict and nothing booked.
4. Done: a `degraded` or `failed` verdict restores the scaler's own change when allowed
   (rollback.py: its sizes only, the labels and taints it also asked are left to a person) and
   raises one critical alert naming the rollback; an `inconclusive` or `not_enough_baseline` one
   raises one warning naming the change and the error. Each is delivered exactly once
   (`fleet_shared.alert_delivery`): the verdict is stored before the alert is sent, an alert SNS
   refused fails the invocation, and the platform's retry sends it without judging again.

The record lives in the state table under `change_validator/<update id>`; `start` and the
follow-ups hold a lock on it, so a schedule delivered twice acts once, and the platform's retry of
a `start` acts on a validation only while no follow-up of it does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.alert_delivery import deliver_once
from fleet_shared.alerts import Alert, Severity
from fleet_shared.aws_answers import AWS_CALL_ERRORS, answer_field, call_error_text
from fleet_shared.endpoint_history import HISTORY_RETENTION, SCHEDULED_RUN_MINUTES
from fleet_shared.exceptions import (
    EventValidationError,
    InventoryError,
    InventoryUnreadableError,
    LockNotAcquiredError,
    MemberAccessError,
    MetricReadCutShortError,
    PagesCutShortError,
    RequestInProgressError,
    UnreadableStateRecordError,
    UnreadableStateValueError,
)
from fleet_shared.handler import Invocation
from fleet_shared.observability import observability_for
from fleet_shared.scaler_requests import ask_scaler
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.validation_errors import cut_echo, escaped_echo, shown_value
from handlers.change_validator.callbacks import callback_fate, cancel_callback, schedule_callback
from handlers.change_validator.changes import (
    Change,
    change_of,
    desired_size_before,
    previous_state,
)
from handlers.change_validator.comparison import (
    MIN_BASELINE_SAMPLES,
    Thresholds,
    describe_moved,
    moved_figures,
    thin_baseline,
)
from handlers.change_validator.exceptions import (
    UnreadableValidationError,
    ValidationInProgressError,
)
from handlers.change_validator.measurements import Window, measure
from handlers.change_validator.models import (
    OLDEST_CHANGE,
    EksChangeEvent,
    check_change_time,
    event_summary,
)
from handlers.change_validator.open_validations import (
    note_done,
    note_open,
    open_validation_ids,
)
from handlers.change_validator.record_shape import Phase, Verdict, record_problem
from handlers.change_validator.rollback import (
    RESTORE_ASKED,
    RESTORE_SKIPPED,
    resent_restore_request,
    restore_request,
    rollback_plan,
    why_not_asked_again,
    why_not_restored,
)
from handlers.change_validator.services import (
    FUNCTION_NAME,
    MIN_SCALER_READ_SECONDS,
    ValidatorServices,
    next_member_read_allowed,
    scaler_read_seconds,
)

SCOPE = "change_validator"
RECORD_NAME = "validation"
RECORD_TTL_SECONDS = int(OLDEST_CHANGE.total_seconds())
START_TTL_SECONDS = 7 * 86400
ALERT_TTL_SECONDS = int(OLDEST_CHANGE.total_seconds())
LOCK_LEASE_SECONDS = 300
"""As long as one follow-up can take (the function's timeout, 300 s): the lease is cut to the
holder's deadline when taken, so it never outlasts the invocation."""

FINISHED_STATUSES = ("Successful", "Failed", "Cancelled")
BASELINE_STARTED_AT = "baseline_started_at"
"""The record's field of a baseline under measurement: the starts of its measurements, found by
the platform's retry of the change when they did not finish."""
BASELINES_UNFINISHED_AT_MOST = 2
"""The platform runs a change's event at most three times (two retries): the retry that finds
the baseline unfinished once measures it again; the last, finding it unfinished twice, ends
the validation `inconclusive` with its warning, rather than be ended too and leave the event
dead-lettered with none."""
CHECK_STARTED_AT = "check_started_at"
"""The record's field of a bake check under way (its successor booked): found by the next
check, the check did not finish, and counts as failed."""
UNKNOWN_STATUS = "Unknown"
"""The status recorded when DescribeUpdate could not be asked (it is asked again later)."""

MEASUREMENT_FAILURES = (
    MemberAccessError,
    PagesCutShortError,
    MetricReadCutShortError,
    InventoryError,
    InventoryUnreadableError,
    UnreadableStateRecordError,
    UnreadableStateValueError,
    *AWS_CALL_ERRORS,
)
"""What a check that could not read the member account (or the inventory), got an answer that
is not its call's, met a scaler change record or an endpoint's recent results that are no
object in the state table (a hand edit: an error answer left the validation open), or had no
time left for its next member page (`next_member_read_allowed`), raises:
the check is counted as failed, not the invocation (a raised error ends, after the platform's
retries, with the validation left unfinished and no callback booked)."""

UPDATE_ERRORS_KEPT = 5
"""How many of DescribeUpdate's errors a validation keeps (the rest are counted)."""


UNJUDGED_VERDICTS = (Verdict.INCONCLUSIVE.value, Verdict.NOT_ENOUGH_BASELINE.value)
"""The verdicts of a change the fleet could not judge: one warning, nothing restored."""

BASELINE_MINUTES_AT_LEAST = MIN_BASELINE_SAMPLES * SCHEDULED_RUN_MINUTES
"""The shortest baseline: the health monitor's results of MIN_BASELINE_SAMPLES runs. A shorter
bake would otherwise measure its baseline over too few of them ever to judge an endpoint."""


def record_key(validation_id: str) -> str:
    """The state-table key of a validation record."""
    return f"{SCOPE}/{validation_id}"


def load_record(services: ValidatorServices, validation_id: str) -> dict[str, Any] | None:
    """The validation record of `validation_id`, if it exists; UnreadableValidationError,
    naming the field, when it is no object or one the validator cannot step on."""
    key = record_key(validation_id)
    try:
        record = services.state.get_value(key, RECORD_NAME)
    except UnreadableStateValueError as error:
        raise UnreadableValidationError(key, RECORD_NAME, error.problem, validation_id) from None
    problem = None if record is None else record_problem(record)
    if problem is not None:
        raise UnreadableValidationError(key, RECORD_NAME, problem, validation_id)
    return record


@contextmanager
def _reported_if_unreadable(services: ValidatorServices, invocation: Invocation) -> Iterator[None]:
    """Send, once per validation, the warning of a record found unreadable inside, then let the
    error end the invocation with an error answer: the validation is left to a person, and
    neither a retry nor the callbacks still booked warn again."""
    try:
        yield
    except UnreadableValidationError as error:
        deliver_once(
            services.state,
            services.alerts,
            f"{SCOPE}/{error.validation_id}/unreadable",
            unreadable_record_alert(error, services.function_name, services.clock.now()),
            ALERT_TTL_SECONDS,
            deadline=invocation,
        )
        raise


def _save(services: ValidatorServices, record: dict[str, Any]) -> None:
    """Save `record`; one not done is noted open (`open_validations`) for the sweep. A done one
    stays noted until its alert is sent (`_finish`), so a sweep sends one a failure left."""
    validation_id = record["validation_id"]
    services.state.put_value(
        record_key(validation_id), RECORD_NAME, record, ttl_seconds=RECORD_TTL_SECONDS
    )
    if record["phase"] != Phase.DONE.value:
        note_open(services.state, validation_id, RECORD_TTL_SECONDS)


def start(
    event: EksChangeEvent, services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    """Open the validation of the update the event records (once per update id).

    The update's claim blocks a concurrent copy only while this invocation can run, so the
    platform's retry of an invocation killed at its deadline opens the validation. The record is
    read and stepped under the validation's lock, the follow-ups' own, bound to this invocation
    likewise: a retry whose killed copy booked a callback does not act while that callback does.
    A copy that finds the claim or the lock taken fails (ValidationInProgressError), so the
    platform retries it too."""
    check_change_time(event, services.clock.now())
    summary = event_summary(event)
    response = event.detail.responseElements
    if response is None:
        failure = event.detail.errorCode or "no update"
        return {
            "status": "ignored",
            "reason": f"the call failed ({failure}): nothing to validate",
            **summary,
        }
    update_id = response.update.id
    environment = services.environment
    change = change_of(event, update_id, environment.scaler_member_role_name)
    try:
        with (
            _reported_if_unreadable(services, invocation),
            services.state.idempotent(
                SCOPE,
                update_id,
                START_TTL_SECONDS,
                deadline=invocation,
            ) as request,
        ):
            if request.is_repeat:
                return {**(request.result or {}), "duplicate": True}
            with services.state.lock(
                record_key(update_id),
                invocation.request_id,
                LOCK_LEASE_SECONDS,
                deadline=invocation,
            ):
                record = load_record(services, update_id)
                unfinished = _unfinished_baselines(record)
                if record is None or 0 < len(unfinished) < BASELINES_UNFINISHED_AT_MOST:
                    record = _new_record(change, services, unfinished, invocation)
                    if Phase(record["phase"]) is Phase.DONE:
                        _count_verdict(record)
                elif unfinished:
                    _baseline_unfinished(record, services)
                record = _step(record, services, invocation)
            result = _result(record)
            request.complete(result)
            return result
    except RequestInProgressError as error:
        raise ValidationInProgressError(update_id) from error
    except LockNotAcquiredError as error:
        raise ValidationInProgressError(
            update_id, f"being advanced by another invocation ({error})"
        ) from error


def follow_up(
    validation_id: str, services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    """Continue the validation a callback schedule names (an unknown id changes nothing), under
    the validation's lock held by this invocation and bound to its deadline: one killed holding
    it keeps no later invocation out."""
    with _reported_if_unreadable(services, invocation):
        return _follow_up(validation_id, services, invocation)


def _follow_up(
    validation_id: str, services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    if load_record(services, validation_id) is None:
        raise EventValidationError(
            "validation_id", f"no validation {validation_id!r} (never started, or expired)"
        )
    with services.state.lock(
        record_key(validation_id),
        invocation.request_id,
        LOCK_LEASE_SECONDS,
        deadline=invocation,
    ):
        record = load_record(services, validation_id)
        if record is None:
            raise EventValidationError("validation_id", f"validation {validation_id!r} expired")
        if _unfinished_baselines(record):
            _baseline_unfinished(record, services)
        return _result(_step(record, services, invocation))


def _new_record(
    change: Change, services: ValidatorServices, unfinished: list[str], invocation: Invocation
) -> dict[str, Any]:
    """The record of a new validation: following, or `inconclusive` when what the change
    replaced or the baseline could not be read in `invocation`'s time (the health before the
    change cannot be read later); `unfinished` are the starts of earlier measurements of it that
    did not finish."""
    environment = services.environment
    changed_at = change.changed_at_time
    now = services.clock.now()
    baseline_minutes = max(environment.validation_bake_minutes, BASELINE_MINUTES_AT_LEAST)
    window = Window(changed_at - timedelta(minutes=baseline_minutes), changed_at)
    record: dict[str, Any] = {
        "validation_id": change.validation_id,
        "change": change.as_record(),
        "previous": None,
        "rollback": {
            "kind": change.kind.value,
            "action": "unknown: what the change replaced could not be read",
            "automatic": False,
        },
        "baseline": None,
        "baseline_window": {"start": iso_z(window.start), "end": iso_z(window.end)},
        "phase": Phase.FOLLOWING.value,
        "follow_checks": 0,
        "update_status": None,
        "schedules": [],
        "started_at": iso_z(now),
    }
    if changed_at < now - HISTORY_RETENTION:
        # A change seen this late (a dead-letter redrive): the endpoint results before it are
        # gone, and what EKS shows now is no longer what it replaced.
        _conclude(
            record,
            Verdict.INCONCLUSIVE,
            f"the change was seen {_hours(now - changed_at)} after it was made, and the health "
            f"monitor keeps endpoint results for {_hours(HISTORY_RETENTION)}: the health before "
            "it cannot be measured",
            now,
        )
        _save(services, record)
        return record
    # Saved before the member is read: the retries of invocations Lambda ends while reading
    # (member endpoints answering each call at its last attempt) find it, and the last ends the
    # validation rather than the event being dead-lettered unvalidated.
    record[BASELINE_STARTED_AT] = [*unfinished, iso_z(now)]
    _save(services, record)
    del record[BASELINE_STARTED_AT]
    try:
        member = services.member_client(change.account_id, change.region)
        previous = previous_state(change, member("eks"), services.state)
        record["previous"] = previous
        record["rollback"] = rollback_plan(
            change, previous, restore_allowed=environment.validation_restore_scaler_changes
        )
        record["baseline"] = measure(
            change,
            window,
            member_client=member,
            state=services.state,
            inventory=services.inventory(),
            desired_before=desired_size_before(change, previous),
            next_page_allowed=next_member_read_allowed(invocation),
        )
        earlier = _earlier_open_validation(change, services)
        if earlier is not None:
            # The window before this change holds the earlier one's effect: its baseline, from
            # before it, is kept for every figure it has; what it lacks (the readiness of another
            # node group) is this change's own, read now, before this change.
            record["baseline"] = {**record["baseline"], **earlier["baseline"]}
            record["baseline_window"] = earlier["baseline_window"]
            record["baseline_from"] = earlier["validation_id"]
    except MEASUREMENT_FAILURES as error:
        # The fleet's own errors escape the text they quote where they are raised.
        failure = call_error_text(error)
        _conclude(
            record,
            Verdict.INCONCLUSIVE,
            f"the baseline could not be measured: {failure}",
            now,
            measurement_errors=[f"{iso_z(now)}: {failure}"],
        )
    _save(services, record)
    return record


def _earlier_open_validation(change: Change, services: ValidatorServices) -> dict[str, Any] | None:
    """The open validation, with a baseline, of the earliest change of `change`'s cluster made
    before it, if any: its endpoints and load balancers are the cluster's, so any change of the
    cluster moves the figures of the others. A record that cannot be read is skipped (its own
    callbacks and the sweep report it)."""
    earlier: list[dict[str, Any]] = []
    for other_id in open_validation_ids(services.state):
        if other_id == change.validation_id:
            continue
        try:
            other = load_record(services, other_id)
        except UnreadableValidationError:
            continue
        if other is None or other["phase"] == Phase.DONE.value or other["baseline"] is None:
            continue
        made = Change.from_record(other["change"])
        same_cluster = (made.account_id, made.region, made.cluster) == (
            change.account_id,
            change.region,
            change.cluster,
        )
        if same_cluster and made.changed_at_time <= change.changed_at_time:
            earlier.append(other)
    return min(earlier, key=lambda other: parse_iso(other["change"]["changed_at"]), default=None)


def _unfinished_baselines(record: dict[str, Any] | None) -> list[str]:
    """When the baseline of the validation `record` was begun and never finished."""
    return [str(started) for started in (record or {}).get(BASELINE_STARTED_AT) or []]


def _baseline_unfinished(record: dict[str, Any], services: ValidatorServices) -> None:
    """End, `inconclusive`, the validation whose baseline's measurement began in invocations
    that never finished it (Lambda ended them): the health before the change is not measured."""
    started = ", ".join(_unfinished_baselines(record))
    del record[BASELINE_STARTED_AT]
    _conclude(
        record,
        Verdict.INCONCLUSIVE,
        f"the baseline could not be measured: its measurements, begun at {started}, did not "
        "finish (Lambda ended their invocations)",
        services.clock.now(),
    )
    _save(services, record)
    _count_verdict(record)


def _hours(duration: timedelta) -> str:
    return f"{duration.total_seconds() / 3600:.1f} h"


def _step(
    record: dict[str, Any], services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    """Advance the validation as far as it can go now, then finish a verdict."""
    phase = Phase(record["phase"])
    now = services.clock.now()
    if phase is Phase.FOLLOWING and not _is_early(record.get("next_check_at"), now):
        record = _follow(record, services)
    elif (
        phase is Phase.BAKING
        and not _is_early(record["bake_until"], now)
        and not _is_early(record.get("next_check_at"), now)
    ):
        record = _judge(record, services, invocation)
    if Phase(record["phase"]) is Phase.DONE:
        if phase is not Phase.DONE:
            _count_verdict(record)
        record = _finish(record, services, invocation)
        note_done(services.state, record["validation_id"])
    return record


CALLBACK_GIVEN_UP_AFTER = timedelta(hours=3)
"""How long after its time a callback that has not come never will: EventBridge Scheduler retries
its delivery for an hour (callbacks.MAXIMUM_EVENT_AGE_SECONDS) and Lambda an asynchronous invoke
for another (the fleet's event invoke config), and the sweep runs hourly."""


def close_if_stalled(
    validation_id: str, services: ValidatorServices, invocation: Invocation
) -> str:
    """What the sweep does to the validation noted open `validation_id`, under its lock: `done`
    (judged, its alert sent again if a failure left it, or no record: dropped from the index),
    `waiting` (its callback may still come), or `closed`: its callback was due more than
    CALLBACK_GIVEN_UP_AFTER ago (a schedule deleted by hand, a delivery that failed after all its
    retries), so it is ended `inconclusive`, with its one warning, rather than left open for ever.
    An unreadable record is warned of once (UnreadableValidationError, raised)."""
    with (
        _reported_if_unreadable(services, invocation),
        services.state.lock(
            record_key(validation_id),
            invocation.request_id,
            LOCK_LEASE_SECONDS,
            deadline=invocation,
        ),
    ):
        record = load_record(services, validation_id)
        outcome = "done"
        if record is not None and record["phase"] != Phase.DONE.value:
            now = services.clock.now()
            due = _callback_due_at(record)
            if now < due + CALLBACK_GIVEN_UP_AFTER:
                return "waiting"
            booked = record["schedules"][-1] if record["schedules"] else None
            fate = callback_fate(services.scheduler, services.environment, booked)
            _conclude(
                record,
                Verdict.INCONCLUSIVE,
                f"its callback {booked or '(none booked)'}, due at {iso_z(due)}, had not come "
                f"{_hours(now - due)} later ({fate}): the validation could not go on",
                now,
            )
            _save(services, record)
            _count_verdict(record)
            outcome = "closed"
        if record is not None:
            _finish(record, services, invocation)
        note_done(services.state, validation_id)
        return outcome


def _callback_due_at(record: dict[str, Any]) -> datetime:
    """When the open validation `record` expected its next callback: the later of its next
    check and the bake's end, or, with neither booked, when it was opened."""
    booked = [record.get("next_check_at"), record.get("bake_until")]
    times = [parse_iso(str(at)) for at in booked if at is not None]
    return max(times) if times else parse_iso(record["started_at"])


def _count_verdict(record: dict[str, Any]) -> None:
    """The verdict's metric (`ChangesPassed`, ...), sent by the invocation that reached and saved
    it, even when its alert then fails: a retry, or a callback delivered again, finds the
    validation done and counts nothing."""
    words = str(record["verdict"]).split("_")
    observability_for(FUNCTION_NAME).metrics.add_metric(
        name=f"Changes{''.join(word.capitalize() for word in words)}", unit="Count", value=1
    )


def _is_early(booked_at: str | None, now: datetime) -> bool:
    """Whether the callback booked for `booked_at` is not due yet. Schedules fire at or after
    their second, so a follow-up before it is a copy of an earlier one (EventBridge Scheduler
    delivers at least once): it must neither count a check nor book another."""
    return booked_at is not None and now < parse_iso(booked_at)


def _follow(record: dict[str, Any], services: ValidatorServices) -> dict[str, Any]:
    change = Change.from_record(record["change"])
    environment = services.environment
    arguments: dict[str, Any] = {"name": change.cluster, "updateId": change.validation_id}
    if change.node_group is not None:
        arguments["nodegroupName"] = change.node_group
    try:
        eks = services.member_client(change.account_id, change.region)("eks")
        answer = eks.describe_update(**arguments)
        # A proxy's page (HTTP 200) lacks the update or its status: no answer about the update.
        answer_field(answer, "DescribeUpdate", "update", "status")
        update = answer["update"]
    except MEASUREMENT_FAILURES as error:
        # Not an answer about the update: this check counts, and the next one asks again.
        failure = {"errorCode": "DescribeUpdate failed", "errorMessage": str(error)[:300]}
        update = {"status": UNKNOWN_STATUS, "errors": [failure]}
    status = str(update.get("status"))
    now = services.clock.now()
    record["follow_checks"] += 1
    record["update_status"] = status
    errors = update.get("errors") or []
    # EKS's texts reach the record (one DynamoDB item, 400 KB at most) and the alert: each is cut,
    # and only the first few are kept, with the count of the others.
    record["update_errors"] = [_update_error(error) for error in errors[:UPDATE_ERRORS_KEPT]]
    if len(errors) > UPDATE_ERRORS_KEPT:
        record["update_errors"].append(f"and {len(errors) - UPDATE_ERRORS_KEPT} more errors")
    if status == "Successful":
        bake = timedelta(minutes=environment.validation_bake_minutes)
        booked = schedule_callback(
            services.scheduler, environment, change.validation_id, "bake", now + bake
        )
        # A retried invocation finds the bake booked by its first attempt: the bake is that one.
        record.update(
            phase=Phase.BAKING.value,
            bake_started_at=iso_z(min(now, booked.at - bake)),
            bake_until=iso_z(booked.at),
        )
        record["schedules"].append(booked.name)
    elif status in FINISHED_STATUSES:
        reasons = cut_echo("; ".join(record["update_errors"])) or "no errors reported"
        _conclude(record, Verdict.FAILED, f"EKS reports the update {status}: {reasons}", now)
    elif (
        record["follow_checks"] >= environment.validation_max_follow_checks
        and status == UNKNOWN_STATUS
    ):
        _conclude(
            record,
            Verdict.INCONCLUSIVE,
            f"the update's status could not be read at the last of {record['follow_checks']} "
            f"checks: {cut_echo('; '.join(record['update_errors']))}",
            now,
        )
    elif record["follow_checks"] >= environment.validation_max_follow_checks:
        _conclude(
            record,
            Verdict.FAILED,
            f"the update is still {status} after {record['follow_checks']} checks "
            f"{environment.validation_follow_minutes} minutes apart",
            now,
        )
    else:
        _book_check(record, services, f"follow-{record['follow_checks'] + 1}", now)
    _save(services, record)
    return record


def _update_error(error: object) -> str:
    """One of DescribeUpdate's `errors` as the record keeps it: `<errorCode>: <errorMessage>`,
    cut, its line breaks and other control characters escaped (EKS's text, or a proxy's page
    that refused the call, reaches the verdict and the alert). botocore hands a null among a
    JSON answer's list items on unchecked: read as an object, it raised an AttributeError at
    every check, and the update's verdict (`failed`, with EKS's other reasons) waited hours for
    the sweep to end it `inconclusive`."""
    if not isinstance(error, Mapping):
        return f"an error EKS sent as {shown_value(error)}, not an object"
    return escaped_echo(f"{error.get('errorCode')}: {error.get('errorMessage')}")


def _judge(
    record: dict[str, Any], services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    """Measure the bake in `invocation`'s time and judge it; the check's successor is booked
    before the measurement, so a check Lambda ends (member endpoints answering each call only
    at its last attempt outlast the invocation) still leaves the next one, which counts it as
    failed."""
    change = Change.from_record(record["change"])
    now = services.clock.now()
    unfinished = record.pop(CHECK_STARTED_AT, None)
    if unfinished is not None and _counted_failed_check(
        record,
        services,
        f"the check started at {unfinished} did not finish: Lambda ended its invocation",
        now,
    ):
        _save(services, record)
        return record
    successor = _book_check(record, services, f"bake-retry-{_failed_checks(record) + 1}", now)
    record[CHECK_STARTED_AT] = iso_z(now)
    _save(services, record)
    window = Window(parse_iso(record["bake_started_at"]), now)
    try:
        after = measure(
            change,
            window,
            member_client=services.member_client(change.account_id, change.region),
            state=services.state,
            inventory=services.inventory(),
            next_page_allowed=next_member_read_allowed(invocation),
        )
    except MEASUREMENT_FAILURES as error:
        del record[CHECK_STARTED_AT]
        concluded = _counted_failed_check(record, services, call_error_text(error), now)
        _save(services, record)
        if concluded:
            cancel_callback(services.scheduler, services.environment, successor)
        return record
    del record[CHECK_STARTED_AT]
    moved = moved_figures(
        record["baseline"], after, Thresholds.from_environment(services.environment)
    )
    thin = thin_baseline(record["baseline"])
    if moved:
        verdict, reason = Verdict.DEGRADED, describe_moved(moved)
    elif thin:
        counted = ", ".join(f"{subject} {count}" for subject, count in sorted(thin.items()))
        verdict = Verdict.NOT_ENOUGH_BASELINE
        reason = (
            f"not enough baseline: fewer than {MIN_BASELINE_SAMPLES} samples before the change "
            f"({counted}), so their latencies and error rates were not compared; no other "
            "figure moved past its threshold"
        )
    else:
        verdict, reason = Verdict.PASSED, "no figure moved past its threshold"
    if "baseline_from" in record:
        reason += (
            f" (against the baseline of update {record['baseline_from']}, an earlier change of "
            "the cluster still being validated when this one came: the health before both)"
        )
    _conclude(
        record,
        verdict,
        reason,
        now,
        after=after,
        bake_window={"start": iso_z(window.start), "end": iso_z(window.end)},
        moved=moved,
    )
    _save(services, record)
    cancel_callback(services.scheduler, services.environment, successor)
    return record


def _conclude(
    record: dict[str, Any], verdict: Verdict, reason: str, now: datetime, **figures: Any
) -> None:
    """End the validation in `record` with `verdict` and why, judged at `now`, with the figures
    behind it."""
    record.update(
        phase=Phase.DONE.value,
        verdict=verdict.value,
        reason=reason,
        judged_at=iso_z(now),
        **figures,
    )


def _book_check(
    record: dict[str, Any], services: ValidatorServices, step: str, now: datetime
) -> str:
    """Book the validation's next check, VALIDATION_FOLLOW_MINUTES after `now`, as callback
    `step`; a delivery before it changes nothing (`next_check_at`). The schedule's name."""
    environment = services.environment
    at = now + timedelta(minutes=environment.validation_follow_minutes)
    booked = schedule_callback(services.scheduler, environment, record["validation_id"], step, at)
    # A retried invocation finds `step` booked by its first attempt: the check waits for that one.
    record["next_check_at"] = iso_z(booked.at)
    record["schedules"].append(booked.name)
    return booked.name


def _failed_checks(record: dict[str, Any]) -> int:
    return int(record.get("failed_checks", 0))


def _counted_failed_check(
    record: dict[str, Any], services: ValidatorServices, failure: str, now: datetime
) -> bool:
    """Count a bake check that could not measure, with its error; whether that was the last
    (VALIDATION_MAX_FOLLOW_CHECKS failed checks), the validation then `inconclusive`."""
    environment = services.environment
    record["failed_checks"] = _failed_checks(record) + 1
    record.setdefault("measurement_errors", []).append(f"{iso_z(now)}: {failure}")
    if record["failed_checks"] < environment.validation_max_follow_checks:
        return False
    _conclude(
        record,
        Verdict.INCONCLUSIVE,
        f"the bake could not be measured after {record['failed_checks']} checks "
        f"{environment.validation_follow_minutes} minutes apart: {failure}",
        now,
    )
    return True


def _finish(
    record: dict[str, Any], services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    """For a regression: the automatic restore (once) and the critical alert (exactly once); for
    a change that could not be validated, the warning (exactly once). The alert's claim is bound
    to `invocation`, so the platform's retry of one killed while SNS hangs sends it."""
    if record["verdict"] == Verdict.PASSED.value:
        return record
    change = Change.from_record(record["change"])
    if record["verdict"] in UNJUDGED_VERDICTS:
        deliver_once(
            services.state,
            services.alerts,
            f"{SCOPE}/{change.validation_id}/verdict",
            inconclusive_alert(record, services.function_name),
            ALERT_TTL_SECONDS,
            deadline=invocation,
        )
        return record
    environment = services.environment
    restore = record.get("restore")
    unanswered = restore is not None and restore.get("status") == RESTORE_ASKED
    if (
        record["rollback"]["automatic"]
        and environment.scaler_function_name
        and (restore is None or unanswered)
    ):
        record["restore"] = _restore(record, change, services, invocation)
        labels_and_taints = record["rollback"].get("labels_and_taints")
        if labels_and_taints is not None:
            # The scaler changes sizes only: what the change asked of labels and taints stays.
            record["restore"]["left_to_a_person"] = labels_and_taints["action"]
        _save(services, record)
    deliver_once(
        services.state,
        services.alerts,
        f"{SCOPE}/{change.validation_id}/verdict",
        verdict_alert(record, services.function_name),
        ALERT_TTL_SECONDS,
        deadline=invocation,
    )
    return record


def _restore(
    record: dict[str, Any], change: Change, services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    """Ask the scaler to restore the size before `change`, unless a later change stands; the
    record's `restore`.

    The request is saved before the scaler is asked: when the answer is not saved (DynamoDB
    failing), the retry finds it and asks again with the same request id, which the scaler
    answers from its idempotency record without changing anything twice. Without it, the retry
    would read the restored size as a later change and announce the restore as skipped. A request
    asked again always saves no sizes (`resent_restore_request`), one an earlier version stored
    without `save_sizes` included.

    The wait for the answer fits what is left of `invocation` (`scaler_read_seconds`); an answer
    that does not come in that time, or says the request is still in progress, leaves the
    restore `asked`, its outcome unknown, so the alert still goes out and a later run of this
    validation asks again with the same id, once it has read the node group's size again: at
    the size the change set or the one before it, it asks; at another, a change made since
    stands (the earlier ask may never have reached the scaler) and the restore is skipped."""
    environment = services.environment
    asked = record.get("restore")
    if asked is not None:
        request = resent_restore_request(asked["request"])
        seconds = scaler_read_seconds(invocation.remaining_seconds())
        if seconds < MIN_SCALER_READ_SECONDS:
            return _unanswered(request, f"not asked again: {seconds:.0f} s left for the answer")
        # The earlier ask may never have reached the scaler: a change made since then stands.
        try:
            current = _current_desired_size(change, services)
        except MEASUREMENT_FAILURES as error:
            return _unanswered(
                request,
                f"not asked again: node group {change.node_group}'s current size could not be "
                f"read ({call_error_text(error)})",
            )
        not_asked = why_not_asked_again(
            change, record["rollback"], current, str(request["request_id"])
        )
        if not_asked is not None:
            return {"request": request, "status": RESTORE_SKIPPED, "reason": not_asked}
    elif scaler_read_seconds(invocation.remaining_seconds()) < MIN_SCALER_READ_SECONDS:
        return _too_little_time(invocation)
    else:
        try:
            current = _current_desired_size(change, services)
        except MEASUREMENT_FAILURES as error:
            # No restore on a size not read; the alert still goes out and asks for it by hand.
            reason = (
                f"node group {change.node_group}'s current size could not be read "
                f"({call_error_text(error)}): restore it by hand"
            )
            return {"status": RESTORE_SKIPPED, "reason": reason}
        not_restored = why_not_restored(change, record["rollback"], current)
        if not_restored is not None:
            return {"status": RESTORE_SKIPPED, "reason": not_restored}
        # The node group's read may have taken much of the time (an endpoint answering at its
        # last attempt): the wait for the scaler is what is left after it.
        if scaler_read_seconds(invocation.remaining_seconds()) < MIN_SCALER_READ_SECONDS:
            return _too_little_time(invocation)
        request = restore_request(
            change, record["rollback"], current, dry_run=environment.fleet_dry_run
        )
        record["restore"] = {"request": request, "status": RESTORE_ASKED}
        _save(services, record)
    read_seconds = scaler_read_seconds(invocation.remaining_seconds())
    if read_seconds < MIN_SCALER_READ_SECONDS:
        return _unanswered(request, f"not asked again: {read_seconds:.0f} s left for the answer")
    answer = ask_scaler(
        services.scaler_client(read_seconds), environment.scaler_function_name, request
    )
    if answer.get("timed_out") or answer.get("in_progress") is True:
        # The scaler may be acting on it still (this ask, or an earlier one of the same id).
        return _unanswered(request, str(answer.get("error")))
    results = [
        {"nodegroup": item.get("nodegroup"), "status": item.get("status")}
        for item in answer.get("results", [])
    ]
    # The scaler's answer has a top-level status only when it failed as a whole; else the
    # restore's one node group says what happened (changed, blocked, locked, ...).
    statuses = ", ".join(str(item["status"]) for item in results)
    return {
        "request": request,
        "status": answer.get("status") or statuses or None,
        "results": results,
        "error": answer.get("error"),
    }


def _current_desired_size(change: Change, services: ValidatorServices) -> int:
    """The changed node group's desired size as EKS shows it now."""
    eks = services.member_client(change.account_id, change.region)("eks")
    described = eks.describe_nodegroup(clusterName=change.cluster, nodegroupName=change.node_group)
    return int(
        answer_field(described, "DescribeNodegroup", "nodegroup", "scalingConfig", "desiredSize")
    )


def _too_little_time(invocation: Invocation) -> dict[str, Any]:
    """The record's `restore` when too little of `invocation` is left to wait for the scaler's
    answer and then save the verdict and send its alert: skipped, left to a person."""
    reason = (
        f"the invocation had too little time left ({invocation.remaining_seconds():.0f} s) "
        "to wait for the scaler: restore it by hand"
    )
    return {"status": RESTORE_SKIPPED, "reason": reason}


def _unanswered(request: dict[str, Any], error: str) -> dict[str, Any]:
    """The record's `restore` when the scaler's outcome is unknown (no answer in time, or the
    request still in progress): still `asked`, so a later run asks again with the same id."""
    return {"request": request, "status": RESTORE_ASKED, "error": error}


def verdict_alert(record: dict[str, Any], source: str) -> Alert:
    """The critical alert of a `degraded` or `failed` validation, naming the rollback."""
    plan = record["rollback"]
    restore = record.get("restore")
    if restore is not None and restore.get("status") == RESTORE_SKIPPED:
        restored = f" It was not restored automatically: {restore.get('reason')}."
    elif restore is not None and restore.get("status") == RESTORE_ASKED:
        restored = (
            f" The scaler was asked to restore it (request {restore['request']['request_id']}), "
            f"but its outcome is unknown: {restore.get('error')}. The request id is idempotent, "
            "so the scaler may still complete it; check the node group's size."
        )
    elif restore is not None:
        restored = f" The scaler was asked to restore it: {restore.get('status')}."
    elif plan["automatic"]:
        restored = " No scaler is deployed to restore it."
    elif "not_automatic" in plan:
        restored = f" It was not restored automatically: {plan['not_automatic']}."
    else:
        restored = ""
    if (restore is not None or plan["automatic"]) and "labels_and_taints" in plan:
        restored += (
            " The scaler restores sizes only: the labels and taints this change asked are left "
            "to a person, as the rollback says."
        )
    return _change_alert(
        record,
        source,
        Severity.CRITICAL,
        record["verdict"],
        f"{record['verdict']}: {record['reason']}. Rollback: {plan['action']}.{restored}",
    )


def inconclusive_alert(record: dict[str, Any], source: str) -> Alert:
    """The warning of a change the fleet could not validate (or judge, for want of baseline),
    naming it and the error."""
    outcome = (
        "not judged" if record["verdict"] == Verdict.NOT_ENOUGH_BASELINE.value else "not validated"
    )
    return _change_alert(
        record,
        source,
        Severity.WARNING,
        outcome,
        f"{outcome}: {record['reason']}. Check the cluster's health by hand; the rollback, "
        f"if one is needed: {record['rollback']['action']}.",
    )


def unreadable_record_alert(error: UnreadableValidationError, source: str, now: datetime) -> Alert:
    """The warning of a validation record the validator cannot step on, naming the record and
    the field."""
    return Alert.create(
        severity=Severity.WARNING,
        source=source,
        title=f"Validation record unreadable (update {error.validation_id[:8]})",
        detail=(
            f"The {error}. The validation of update {error.validation_id} is not advanced, "
            "judged or alerted until the record is repaired or deleted: check the change by hand."
        ),
        resource=error.key,
        timestamp=now,
    )


def _change_alert(
    record: dict[str, Any], source: str, severity: Severity, outcome: str, judgement: str
) -> Alert:
    """The alert of the change `record` validated, at the time it was judged: its title names
    the `outcome`, its detail the change, who made it, and the `judgement`."""
    change = Change.from_record(record["change"])
    maker = "made by the fleet scaler" if change.by_fleet_scaler else "made outside the fleet"
    return Alert.create(
        severity=severity,
        source=source,
        title=(
            f"Change {outcome}: {change.kind.value} of {change.label} "
            f"(update {change.validation_id[:8]})"
        ),
        detail=(
            f"{change.event_name} on {change.label} (update {change.validation_id}, {maker}): "
            f"{judgement}"
        ),
        resource=change.label,
        account_id=change.account_id,
        region=change.region,
        timestamp=parse_iso(record["judged_at"]),
    )


def _result(record: dict[str, Any]) -> dict[str, Any]:
    change = record["change"]
    result: dict[str, Any] = {
        "status": record.get("verdict") or record["phase"],
        "validation_id": record["validation_id"],
        "phase": record["phase"],
        "kind": change["kind"],
        "cluster": change["cluster"],
        "node_group": change["node_group"],
        "by_fleet_scaler": change["by_fleet_scaler"],
        "update_status": record["update_status"],
        "rollback": record["rollback"],
    }
    for optional in ("verdict", "reason", "moved", "next_check_at", "bake_until", "restore"):
        if optional in record:
            result[optional] = record[optional]
    return result
