"""Event mode: score a GuardDuty finding or CloudTrail event and alert at its severity.

Each EventBridge event id is claimed once in the state table (7 days) before it can change state
or alert, so a redelivered event neither alerts twice nor counts its own country as known. The
claim is taken only for events that touch state (they carry a country) or would alert, so the
stream of ordinary CloudTrail calls writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z, parse_iso
from handlers.security_scanner.models import GuardDutyFindingEvent, SecurityEventEnvelope
from handlers.security_scanner.risk import (
    SecurityEvent,
    assess,
    from_cloudtrail,
    from_guardduty,
)

SOURCE = "security_scanner"
EVENT_CLAIM_SECONDS = 7 * 24 * 3600
COUNTRIES_NAME = "countries"


def handle_security_event(
    envelope: SecurityEventEnvelope,
    state: StateTable,
    publisher: AlertPublisher,
    now: datetime,
    country_window_days: int,
) -> dict[str, Any]:
    """Score the event; alert when the score reaches a severity."""
    if isinstance(envelope, GuardDutyFindingEvent):
        event = from_guardduty(envelope.id, envelope.account, envelope.region, envelope.detail)
    else:
        event = from_cloudtrail(envelope.id, envelope.account, envelope.region, envelope.detail)
    claimed = False
    if event.country is not None:
        if not state.claim_once(_claim_key(event), EVENT_CLAIM_SECONDS):
            return {"status": "duplicate", "event_id": event.event_id}
        claimed = True
        is_new = _record_country(state, event, now, country_window_days)
        event = SecurityEvent(**{**event.__dict__, "new_country": is_new})
    assessment = assess(event)
    result: dict[str, Any] = {
        "status": "ok",
        "event_id": event.event_id,
        "kind": event.kind,
        "principal": event.principal,
        "score": assessment.score,
        "rules": [rule.rule_id for rule in assessment.matched],
        "severity": assessment.severity.value if assessment.severity else None,
        "alerted": False,
    }
    if assessment.severity is None:
        return result
    if not claimed and not state.claim_once(_claim_key(event), EVENT_CLAIM_SECONDS):
        return {"status": "duplicate", "event_id": event.event_id}
    reasons = "; ".join(f"{rule.description} (+{rule.points})" for rule in assessment.matched)
    base = f"base {event.base_score} from the GuardDuty severity; " if event.base_score else ""
    publisher.publish(
        Alert.create(
            severity=assessment.severity,
            source=SOURCE,
            title=f"Security event: {event.title} (risk {assessment.score})",
            detail=f"Principal {event.principal}. {base}{reasons or 'no rule matched'}.",
            resource=event.resource,
            account_id=event.account_id,
            region=event.region,
            timestamp=now,
        )
    )
    result["alerted"] = True
    return result


def _claim_key(event: SecurityEvent) -> str:
    return f"{SOURCE}/event/{event.event_id}"


def _record_country(
    state: StateTable, event: SecurityEvent, now: datetime, window_days: int
) -> bool:
    """Remember the event's country for its principal; True when the principal has a baseline
    from the window and this country is not in it."""
    key = f"{SOURCE}/principal/{event.principal}"
    window = timedelta(days=window_days)
    stored = (state.get_value(key, COUNTRIES_NAME) or {}).get("countries", {})
    recent = {country: seen for country, seen in stored.items() if parse_iso(seen) >= now - window}
    is_new = bool(recent) and event.country not in recent
    recent[str(event.country)] = iso_z(now)
    state.put_value(
        key, COUNTRIES_NAME, {"countries": recent}, ttl_seconds=int(window.total_seconds())
    )
    return is_new
