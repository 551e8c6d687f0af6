"""GuardDuty finding episodes: one alert per finding, and another only when its severity rises.

GuardDuty publishes every update of an ongoing finding as a new EventBridge event (a new event
id) with the same finding `id`, a higher `service.count` and a later `updatedAt`: at the
detector's `FindingPublishingFrequency`, six hours by default, one hour or fifteen minutes if set.
Alerting per event id would page for one ongoing finding every few hours until it is archived.

So a finding (account, region, finding id) has a record in the state table: the highest severity
it alerted at, how many of its updates came, when it was last updated and the ids of its latest
events. Its first event alerts at its score's severity; a later update alerts only when its
severity is above the recorded one (info -> warning -> critical), and is otherwise a `repeat`:
counted, logged, and sent nowhere.

The alert itself goes through `deliver_once`, keyed by the finding and the severity, so two
updates handled at once alert once (the second waits on, or finds, the first one's claim), and
an invocation whose record write failed after SNS took the alert fails; its retry finds the
delivered claim and writes the record without alerting again. A record that cannot be read (a
hand edit, corruption) costs the count of repeats, never the alert: the update alerts through
the same claim, once per finding and severity, and the record is left for a person.

The record lives FINDING_RECORD_SECONDS (30 days) past the finding's last update: an ongoing
finding updates at least every six hours, so one silent for 30 days has stopped, and its
reappearance is a new episode that alerts again. The delivery claim of an alert lives as long
from the alert, which is never later than the record's last update, so it has gone by then too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fleet_shared.alert_delivery import deliver_once
from fleet_shared.alerts import Alert, AlertPublisher, Severity
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.state_table import ClaimDeadline, StateTable
from fleet_shared.timestamps import iso_z
from handlers.security_scanner.exceptions import FindingRecordContendedError
from handlers.security_scanner.risk import SecurityEvent

SOURCE = "security_scanner"
FINDING_RECORD_NAME = "guardduty_finding"
FINDING_RECORD_SECONDS = 30 * 24 * 3600
RECORD_SAVE_ATTEMPTS = 5
"""Reads and conditional saves of a finding's record before the invocation gives up."""
RECENT_EVENT_IDS = 32
"""Event ids a finding's record keeps to recognise a redelivery: Lambda retries an event for at
most 6 hours, 24 updates at the FIFTEEN_MINUTES publishing frequency."""
SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


def alert_finding_once(
    event: SecurityEvent,
    result: dict[str, Any],
    alert: Alert,
    state: StateTable,
    publisher: AlertPublisher,
    *,
    now: datetime,
    deadline: ClaimDeadline | None,
) -> dict[str, Any]:
    """Alert `event`, an update of a GuardDuty finding, unless its finding already alerted at
    `alert`'s severity or above: then count it as a repeat.

    Raises `AlertNotDeliveredError` as `deliver_once` does, and the state table's errors when the
    record could not be written (the invocation fails; its retry does not alert again).
    """
    key = _record_key(event)
    try:
        read = state.get_versioned_value(key, FINDING_RECORD_NAME)
    except UnreadableStateValueError as error:
        return _alert_beside_an_unreadable_record(
            event, result, alert, state, publisher, deadline=deadline, problem=str(error)
        )
    record = read.value if read is not None else None
    if record is not None and not _readable(record):
        problem = f"the record of finding {event.finding_id} is not one this function saved"
        return _alert_beside_an_unreadable_record(
            event, result, alert, state, publisher, deadline=deadline, problem=problem
        )
    if record is not None and event.event_id in record["event_ids"]:
        return {"status": "duplicate", "event_id": event.event_id}
    if record is not None and SEVERITY_RANK[alert.severity] <= _rank(record["severity"]):
        return _repeat(event, result, _save(state, event, now, alerted=None))
    message_id = _deliver(event, alert, state, publisher, deadline=deadline)
    saved = _save(state, event, now, alerted=alert.severity)
    if message_id is None:
        # The finding's alert at this severity is out: sent by this event's attempt whose record
        # write failed, or by another update of the finding handled at the same time.
        return _repeat(event, result, saved)
    return {**result, "alerted": True, "finding_id": event.finding_id}


def _deliver(
    event: SecurityEvent,
    alert: Alert,
    state: StateTable,
    publisher: AlertPublisher,
    *,
    deadline: ClaimDeadline | None,
) -> str | None:
    """`deliver_once` of the finding's alert under its severity's delivery key: the message id,
    or None when that alert was already out."""
    return deliver_once(
        state,
        publisher,
        _delivery_key(event, alert),
        alert,
        FINDING_RECORD_SECONDS,
        deadline=deadline,
    )


def _alert_beside_an_unreadable_record(
    event: SecurityEvent,
    result: dict[str, Any],
    alert: Alert,
    state: StateTable,
    publisher: AlertPublisher,
    *,
    deadline: ClaimDeadline | None,
    problem: str,
) -> dict[str, Any]:
    """Alert `event` when its finding's record cannot be read (a hand edit, corruption): its
    severity's delivery claim still lets one alert out per finding and severity, so a corrupt
    record costs the count of repeats, never the alert. The record is left for a person."""
    message_id = _deliver(event, alert, state, publisher, deadline=deadline)
    outcome = {"finding_id": event.finding_id, "finding_record": f"unreadable: {problem}"}
    if message_id is None:
        # A repeat whose count and last sighting were in the record.
        repeat = {
            "status": "repeat",
            "repeat_of": f"repeat of finding {event.finding_id}",
            "count": None,
            "last_seen": None,
            "alerted_severity": alert.severity.value,
        }
        return {**result, **outcome, **repeat, "alerted": False}
    return {**result, **outcome, "alerted": True}


def _readable(record: Any) -> bool:
    """Whether `record` has the fields `_save` writes, of their types."""
    return (
        isinstance(record, dict)
        and isinstance(record.get("event_ids"), list)
        and record.get("severity") in {severity.value for severity in SEVERITY_RANK}
        and isinstance(record.get("updates"), int)
        and isinstance(record.get("last_seen"), str)
    )


def _delivery_key(event: SecurityEvent, alert: Alert) -> str:
    """The delivery claim of the finding's alert at `alert`'s severity: one alert each."""
    return f"{_record_key(event)}/{alert.severity.value}"


def _record_key(event: SecurityEvent) -> str:
    return f"{SOURCE}/finding/{event.account_id}/{event.region}/{event.finding_id}"


def _rank(severity: str) -> int:
    return SEVERITY_RANK[Severity(severity)]


def _repeat(event: SecurityEvent, result: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    repeat = {
        "status": "repeat",
        "repeat_of": f"repeat of finding {event.finding_id}",
        "finding_id": event.finding_id,
        "count": record["updates"],
        "last_seen": record["last_seen"],
        "alerted_severity": record["severity"],
    }
    return {**result, **repeat}


def _save(
    state: StateTable, event: SecurityEvent, now: datetime, *, alerted: Severity | None
) -> dict[str, Any]:
    """Count `event` in its finding's record (once per event id), raising the recorded severity
    to `alerted`; returns the record saved. Saved only if unchanged since read, so updates of one
    finding handled at once are all counted and the highest severity kept."""
    key = _record_key(event)
    for _ in range(RECORD_SAVE_ATTEMPTS):
        read = state.get_versioned_value(key, FINDING_RECORD_NAME)
        saved = read.value if read is not None else None
        if saved is not None and event.event_id in saved["event_ids"]:
            return saved
        severities = [Severity(saved["severity"])] if saved is not None else []
        if alerted is not None:
            severities.append(alerted)
        record = {
            "finding_id": event.finding_id,
            "severity": max(severities, key=SEVERITY_RANK.__getitem__).value,
            "updates": (saved["updates"] if saved is not None else 0) + 1,
            "occurrences": event.occurrences,
            "last_seen": event.updated_at or iso_z(now),
            "event_ids": [*(saved["event_ids"] if saved is not None else []), event.event_id][
                -RECENT_EVENT_IDS:
            ],
        }
        if state.replace_value(
            key, FINDING_RECORD_NAME, record, read=read, ttl_seconds=FINDING_RECORD_SECONDS
        ):
            return record
    raise FindingRecordContendedError(str(event.finding_id), RECORD_SAVE_ATTEMPTS)
