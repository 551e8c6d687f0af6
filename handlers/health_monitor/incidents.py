"""Incidents: a failing check opens one, announces it, escalates it, and resolves it when it passes.

An incident is keyed by the alert id of its check (source, resource and title: the same check of
the same target has the same id whatever its severity) and kept in the state table. For each
check result of a run:

- failed, no open incident: the alert goes out and opens the incident;
- failed, open incident: a severity higher than every one alerted in the incident goes out as a
  new alert with the same id (an escalation); the same or a lower severity raises nothing, so a
  check failing every five minutes for hours is announced once;
- passed, open incident: one resolution goes out (`Alert.resolution`: same id, so the router
  resolves the PagerDuty incident with the same dedup key) and the incident closes; a later
  failure is a new incident.

Delivery is `deliver_once`, keyed by the incident and the severity (or `resolved`). An opening
or escalation is recorded only after SNS took the alert: when a publish fails the record stays as
it was. A resolution is kept in the closed record before it is published and dropped once SNS
took it, so a lost write after the publish cannot leave a resolved incident open (which would
silence its next failure); a closed record still holding one publishes it before anything else.
A failed publish fails the invocation (`AlertNotDeliveredError`, raised after every other result
was settled), and the retry sends what is missing. An incident is named by the closing time of the
one before it, so two runs that see the same new failure at once share its delivery key and one
alert goes out. The record is read and written without a condition: runs of one check are five
minutes apart, and the delivery keys keep a concurrent copy from publishing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, Severity
from fleet_shared.exceptions import RequestInProgressError
from fleet_shared.timestamps import iso_z
from handlers.health_monitor.report import SEVERITY_RANK, CheckResult
from handlers.health_monitor.services import FUNCTION_NAME, HealthServices

SOURCE = FUNCTION_NAME
INCIDENT_VALUE = "incident"
FIRST_INCIDENT = "first"
"""What names an incident of a check that had none before (or whose last one was forgotten)."""

DELIVERY_TTL_SECONDS = 24 * 3600
"""How long a delivered alert is remembered: longer than the platform retries an invocation."""

CLOSED_INCIDENT_TTL_SECONDS = DELIVERY_TTL_SECONDS
"""A closed incident names the next one until its delivery keys have expired."""

OPEN_INCIDENT_TTL_SECONDS = 7 * 24 * 3600
"""An open incident whose check stopped reporting (its cluster left the inventory) is forgotten
a week after it was last seen failing."""


@dataclass(frozen=True)
class Scope:
    """Where the results were found: account, region and cluster (None for an account alarm)."""

    account_id: str
    region: str
    cluster: str | None

    @property
    def label(self) -> str:
        """`<account>/<region>[/<cluster>]`."""
        return f"{self.account_id}/{self.region}" + (f"/{self.cluster}" if self.cluster else "")


@dataclass
class Settlement:
    """What settling a run's results sent, and what could not be delivered."""

    sent: int = 0
    resolved: int = 0
    suppressed: int = 0
    undelivered: list[AlertNotDeliveredError] = field(default_factory=list)
    unsettled: list[ClientError | BotoCoreError] = field(default_factory=list)
    """State-table failures that left a result's incident as it was, for the retry."""

    def counts(self) -> dict[str, int]:
        """`sent` (alerts opening or escalating an incident), `resolved` (resolutions sent) and
        `suppressed` (failures of an incident already announced at that severity or higher)."""
        return {"sent": self.sent, "resolved": self.resolved, "suppressed": self.suppressed}

    def raise_undelivered(self) -> None:
        """Fail the invocation, so the platform retries it, when an alert was not delivered or
        an incident could not be read or written."""
        if self.undelivered:
            raise self.undelivered[0]
        if self.unsettled:
            raise self.unsettled[0]


def settle_incidents(
    results: Iterable[CheckResult], services: HealthServices, scope: Scope
) -> Settlement:
    """Open, escalate or resolve the incident of every result; every result is tried even when
    the delivery of an earlier one, or the state table for it, failed."""
    settlement = Settlement()
    for result in results:
        alert = alert_for(result, services, scope)
        try:
            if result.passed:
                _resolve(alert, result, services, settlement)
            else:
                _raise(alert, services, settlement)
        except AlertNotDeliveredError as error:
            if isinstance(error.__cause__, RequestInProgressError):
                # Another run is publishing this very alert; it delivers it or fails and retries.
                settlement.suppressed += 1
            else:
                settlement.undelivered.append(error)
        except (ClientError, BotoCoreError) as error:
            settlement.unsettled.append(error)
    return settlement


def alert_for(result: CheckResult, services: HealthServices, scope: Scope) -> Alert:
    """The alert of a result, failed or passed: a passed result has its failure's id."""
    title = result.title or (
        f"{scope.cluster or scope.label}: {result.name} check failed for {result.target}"
    )
    return Alert.create(
        severity=result.severity,
        source=SOURCE,
        title=title,
        detail=result.detail,
        resource=result.resource or f"{scope.label}/{result.name}/{result.target}",
        account_id=scope.account_id,
        region=scope.region,
        timestamp=services.clock.now(),
    )


def incident_key(alert_id: str) -> str:
    """The state-table key of the incident of an alert id."""
    return f"{SOURCE}/incident/{alert_id}"


def _raise(alert: Alert, services: HealthServices, settlement: Settlement) -> None:
    record = services.state.get_value(incident_key(alert.id), INCIDENT_VALUE)
    if record is not None and not record.get("open"):
        # The last incident's resolution goes out before the next incident's first alert.
        _deliver_resolution(services, alert.id, record, settlement)
    if record is not None and record.get("open"):
        name = str(record["name"])
        alerted = Severity(record["severity"])
        if SEVERITY_RANK[alert.severity] <= SEVERITY_RANK[alerted]:
            settlement.suppressed += 1
            _store(services, alert.id, {**record, "last_failed_at": _now(services)})
            return
        opened_at = str(record["opened_at"])
    else:
        name = str(record["closed_at"]) if record is not None else FIRST_INCIDENT
        opened_at = _now(services)
    key = f"{SOURCE}/{alert.id}/{name}/{alert.severity.value}"
    if deliver_once(services.state, services.alerts, key, alert, DELIVERY_TTL_SECONDS):
        settlement.sent += 1
    else:
        settlement.suppressed += 1
    _store(
        services,
        alert.id,
        {
            "open": True,
            "name": name,
            "opened_at": opened_at,
            "last_failed_at": _now(services),
            "severity": alert.severity.value,
            "alert": alert.model_dump(mode="json"),
        },
    )


def _resolve(
    alert: Alert, result: CheckResult, services: HealthServices, settlement: Settlement
) -> None:
    record = services.state.get_value(incident_key(alert.id), INCIDENT_VALUE)
    if record is None:
        return
    if record.get("open"):
        announced = Alert.model_validate(record["alert"])
        resolution = announced.resolution(f"passed again: {result.detail}", services.clock.now())
        record = {
            "open": False,
            "name": record["name"],
            "opened_at": record["opened_at"],
            "closed_at": _now(services),
            "resolution": resolution.model_dump(mode="json"),
        }
        # Closed before the resolution is published: once it is out, no lost write can leave
        # the incident open, which would silence the next failure of a resolved incident.
        _store_closed(services, alert.id, record)
    _deliver_resolution(services, alert.id, record, settlement)


def _deliver_resolution(
    services: HealthServices, alert_id: str, closed: dict[str, Any], settlement: Settlement
) -> None:
    """Publish the resolution a closed incident still holds (its run failed to send it or to
    note it sent), then forget it; the delivery key keeps it from going out twice."""
    pending = closed.get("resolution")
    if pending is None:
        return
    resolution = Alert.model_validate(pending)
    key = f"{SOURCE}/{alert_id}/{closed['name']}/resolved"
    if deliver_once(services.state, services.alerts, key, resolution, DELIVERY_TTL_SECONDS):
        settlement.resolved += 1
    _store_closed(services, alert_id, {k: v for k, v in closed.items() if k != "resolution"})


def _store_closed(services: HealthServices, alert_id: str, record: dict[str, Any]) -> None:
    services.state.put_value(
        incident_key(alert_id), INCIDENT_VALUE, record, ttl_seconds=CLOSED_INCIDENT_TTL_SECONDS
    )


def _store(services: HealthServices, alert_id: str, record: dict[str, Any]) -> None:
    services.state.put_value(
        incident_key(alert_id), INCIDENT_VALUE, record, ttl_seconds=OPEN_INCIDENT_TTL_SECONDS
    )


def _now(services: HealthServices) -> str:
    return iso_z(services.clock.now())
