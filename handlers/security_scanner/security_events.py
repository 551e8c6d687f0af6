"""Event mode: score a GuardDuty finding or CloudTrail event and alert at its severity.

An alert is delivered once per EventBridge event id (`deliver_once`, 7 days), or for a GuardDuty
finding once per finding and severity (finding_episodes.py): the claim is
completed only after SNS took the alert, so a failed publish fails the invocation and the
platform's retry publishes it; only a retry of an event whose alert went out is a `duplicate`.
An event that carries a country also teaches the principal's country baseline: that work is an
idempotent request per event id whose stored outcome (score, rules, the alert itself) is what a
retry reuses, so a redelivery neither counts its own country as known nor scores differently;
the principal's countries name the event that taught each, so neither does the retry of an
event whose country was saved but whose outcome the state table did not store.
Those claims last EVENT_CLAIM_SECONDS (7 days): an event older than that (an archive's replay, a
dead-letter redrive) may find them gone and would alert again, or teach its country again, so it
is reported `stale` (its result and one warning in the log) and neither scored nor alerted.
Ordinary CloudTrail calls (no country, no alert) write nothing. A `ModifySecurityGroupRules`
call that sets rules to the world is scored once EC2 has said which of them are outbound
(rule_directions.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.alert_delivery import deliver_once
from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.exceptions import RequestInProgressError, UnreadableStateValueError
from fleet_shared.state_table import ClaimDeadline, StateTable
from fleet_shared.timestamps import iso_z, parse_iso
from handlers.security_scanner.exceptions import (
    CountriesContendedError,
    EventInProgressError,
    UnreadableCountriesError,
)
from handlers.security_scanner.finding_episodes import alert_finding_once
from handlers.security_scanner.risk import (
    RiskAssessment,
    SecurityEvent,
    assess,
    from_cloudtrail,
    from_guardduty,
)
from handlers.security_scanner.rule_directions import Ec2ClientOf, with_rule_directions
from handlers.security_scanner.security_event_models import (
    GuardDutyFindingEvent,
    SecurityEventEnvelope,
)

SOURCE = "security_scanner"
EVENT_SCOPE = "security_scanner_event"
"""The idempotency scope of the per-event country work."""
EVENT_CLAIM_SECONDS = 7 * 24 * 3600
STALE_AFTER = timedelta(seconds=EVENT_CLAIM_SECONDS)
"""The age past which an event is stale: the claims of its alert and its country, taken when it
was first handled (at or after its time), may have expired."""
EVENT_WORK_SECONDS = 120
"""How long a claimed event blocks a concurrent copy; a crashed invocation's claim is free for
the platform's second retry."""
COUNTRIES_NAME = "countries"
COUNTRY_SAVE_ATTEMPTS = 5
"""Reads and conditional saves of a principal's countries before the invocation gives up."""


def handle_security_event(
    envelope: SecurityEventEnvelope,
    state: StateTable,
    publisher: AlertPublisher,
    now: datetime,
    country_window_days: int,
    *,
    ec2_client_of: Ec2ClientOf,
    deadline: ClaimDeadline | None,
) -> dict[str, Any]:
    """Score the event; alert when the score reaches a severity (the alert's claim bound to
    `deadline`, the invocation). `ec2_client_of(account, region)` is the member's EC2, asked
    which of the security group rules the event sets to the world are outbound.

    Raises `AlertNotDeliveredError` when SNS did not take the alert and `EventInProgressError`
    while another invocation handles the same event: both fail the invocation for a retry.
    An event older than STALE_AFTER is answered `stale` and changes nothing.
    """
    if now - envelope.time > STALE_AFTER:
        return {
            "status": "stale",
            "event_id": envelope.id,
            "time": iso_z(envelope.time),
            "reason": (
                f"the event is {(now - envelope.time).days} days old, older than the "
                f"{STALE_AFTER.days} days its alert is claimed for: a replay, neither scored "
                "nor alerted again"
            ),
        }
    if isinstance(envelope, GuardDutyFindingEvent):
        event = from_guardduty(envelope.id, envelope.account, envelope.region, envelope.detail)
    else:
        event = from_cloudtrail(envelope.id, envelope.account, envelope.region, envelope.detail)
        event = with_rule_directions(event, ec2_client_of)
    if event.country is None:
        result, alert = _outcome(event, assess(event), now)
    else:
        result, alert = _learn_country(event, state, now, country_window_days)
    if alert is None:
        # No alert, so nothing a redelivery could duplicate: it gets the (stored) score.
        return result
    if event.finding_id is not None and not event.sample:
        # A finding's updates come as new events: its alert is per finding, not per event.
        return alert_finding_once(
            event, result, alert, state, publisher, now=now, deadline=deadline
        )
    message_id = deliver_once(
        state, publisher, _alert_key(event), alert, EVENT_CLAIM_SECONDS, deadline=deadline
    )
    if message_id is None:
        return {"status": "duplicate", "event_id": event.event_id}
    return {**result, "alerted": True}


def _learn_country(
    event: SecurityEvent, state: StateTable, now: datetime, window_days: int
) -> tuple[dict[str, Any], Alert | None]:
    """The outcome of an event carrying a country, computed and stored once per event id:
    (result, alert)."""
    try:
        with state.idempotent(
            EVENT_SCOPE, event.event_id, EVENT_CLAIM_SECONDS, EVENT_WORK_SECONDS
        ) as request:
            stored = request.result
            if stored is not None:
                alert = None if stored["alert"] is None else Alert.model_validate(stored["alert"])
                return stored["result"], alert
            try:
                is_new = _record_country(state, event, now, window_days)
            except UnreadableStateValueError as unreadable:
                raise UnreadableCountriesError(unreadable) from None
            event = replace(event, new_country=is_new)
            result, alert = _outcome(event, assess(event), now)
            request.complete(
                {
                    "result": result,
                    "alert": None if alert is None else alert.model_dump(mode="json"),
                }
            )
            return result, alert
    except RequestInProgressError as error:
        raise EventInProgressError(event.event_id) from error


def _outcome(
    event: SecurityEvent, assessment: RiskAssessment, now: datetime
) -> tuple[dict[str, Any], Alert | None]:
    """The result of scoring `event` (not yet alerted) and the alert its severity calls for."""
    result: dict[str, Any] = {
        "status": "ok",
        "event_id": event.event_id,
        "kind": event.kind,
        "principal": event.principal,
        "score": assessment.score,
        "rules": [rule.rule_id for rule in assessment.matched],
        "severity": assessment.severity.value if assessment.severity else None,
        "sample": event.sample,
        "alerted": False,
    }
    if assessment.severity is None:
        return result, None
    reasons = "; ".join(
        [f"{rule.description} (+{rule.points})" for rule in assessment.matched]
        + list(assessment.notes)
    )
    base = f"base {event.base_score} from the GuardDuty severity; " if event.base_score else ""
    sample = " [GuardDuty sample finding]" if event.sample else ""
    alert = Alert.create(
        severity=assessment.severity,
        source=SOURCE,
        title=f"Security event{sample}: {event.title} (risk {assessment.score})",
        detail=f"Principal {event.principal}. {base}{reasons or 'no rule matched'}.",
        resource=event.resource,
        account_id=event.account_id,
        region=event.region,
        timestamp=now,
    )
    return result, alert


def _alert_key(event: SecurityEvent) -> str:
    return f"{SOURCE}/event/{event.event_id}"


def _record_country(
    state: StateTable, event: SecurityEvent, now: datetime, window_days: int
) -> bool:
    """Remember the event's country for its principal; True when the principal has a baseline
    from the window and this country is not in it.

    Each country in the window is saved with the event that taught it (`taught_by`): a country
    this event's own earlier attempt saved (one whose outcome was not stored, so it was tried
    again) is not part of the baseline, and the retry scores the country as that attempt did.
    """
    key = f"{SOURCE}/principal/{event.principal}"
    window = timedelta(days=window_days)
    country = str(event.country)
    # Saved only if unchanged since read: two events of one principal handled at once would
    # otherwise each save their own country over the other's.
    for _ in range(COUNTRY_SAVE_ATTEMPTS):
        read = state.get_versioned_value(key, COUNTRIES_NAME)
        saved = read.value if read is not None else {}
        recent = {
            name: seen
            for name, seen in saved.get("countries", {}).items()
            if parse_iso(seen) >= now - window
        }
        taught_by = {
            name: event_id
            for name, event_id in saved.get("taught_by", {}).items()
            if name in recent
        }
        baseline = {name for name in recent if taught_by.get(name) != event.event_id}
        is_new = bool(baseline) and country not in baseline
        recent[country] = iso_z(now)
        if country not in baseline:
            taught_by[country] = event.event_id
        if state.replace_value(
            key,
            COUNTRIES_NAME,
            {"countries": recent, "taught_by": taught_by},
            read=read,
            ttl_seconds=int(window.total_seconds()),
        ):
            return is_new
    raise CountriesContendedError(event.principal, COUNTRY_SAVE_ATTEMPTS)
