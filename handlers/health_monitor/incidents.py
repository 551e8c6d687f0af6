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
was settled), and the retry sends what is missing; a delivery claim lasts no longer than the
invocation, so a run killed while SNS did not answer does not turn its retry away. An incident
is named by the closing time of the one before it, so two runs that see the same new failure at
once share its delivery key and one alert goes out.

Runs do settle one incident at once: an alarm is seen by every cluster of its account and region
in the fleet run and by its state change events. So the record is written only if it is still
what was read, and otherwise read again and decided again. A result timed by its source (an
alarm's state change, `CheckResult.since`) that is older than the state the record last settled
changes nothing: an ALARM seen, or an event retried, after its OK was settled does not reopen the
incident, and an OK older than the ALARM that opened it does not close it. A timed pass with no
incident is remembered for that reason; an alert that went out while another run recorded the
pass that ends it is resolved at once.

A record that cannot be read, or is not shaped as an incident's (a hand edit, an older format:
`read_incident`), is left as it is and named in `Settlement.unreadable`, for the caller's report:
its result is not settled (no retry reads it better, so the invocation does not fail for it) and
the other results are. It is for a person to mend or delete, or for its expiry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, Severity
from fleet_shared.exceptions import RequestInProgressError, UnreadableStateValueError
from fleet_shared.handler import Invocation
from fleet_shared.state_table import StateTable, VersionedValue
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.validation_errors import cut_echo
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
"""An open incident whose check stopped reporting is forgotten a week after it was last seen
failing; one of a cluster that left is resolved first (`CHECK_INCIDENT_CLUSTERS`), and one whose
target left a cluster still checked by the first run that completes its checks (left_targets.py),
so this is for the incidents of a cluster no run completes in a week."""

CHECK_INCIDENTS = "check-incidents"
"""The state-table key (with the cluster's label) of the check incidents of a cluster that may be
open, one value per alert id naming its check and target: an incident record is found only by its
alert id, so a fleet run reads these to resolve the incidents of a cluster that left the fleet,
and a cluster's run those of its targets that left (left_targets.py)."""

CHECK_INCIDENT_CLUSTERS = f"{SOURCE}/check-incident-clusters"
"""The state-table key of the clusters with a `CHECK_INCIDENTS` list, one value per cluster label,
kept as long as the list's newest entry: a fleet run finds the clusters that left with one read."""

OPEN_ALARM_INCIDENT_TTL_SECONDS = 90 * 24 * 3600
"""An open incident of a result timed by its source (an alarm's) is kept this long after it was
last seen failing: an alarm reports only when its state changes, and no scheduled run lists it
in INSUFFICIENT_DATA (nor in ALARM where the account and region have no cluster), so a week
without a change would forget the incident and its return to OK would resolve nothing, leaving
the alert's PagerDuty incident open. An alarm deleted while not OK sends no more events: its
record goes after this, unless a scheduled run finds the alarm gone first (`ALARM_INCIDENTS`)."""

ALARM_INCIDENTS = "alarm-incidents"
"""The state-table key (with the account and region) of the alarm incidents that may be open
there, one value per alert id naming its alarm: an incident record is found only by its alert id,
so a scheduled run reads these to resolve the incidents of alarms that were deleted."""

ALARM_INCIDENT_PLACES = f"{SOURCE}/alarm-incident-places"
"""The state-table key of the accounts and regions with an `ALARM_INCIDENTS` list, one value per
`<account>/<region>`, kept as long as the list's newest entry: a scheduled run checks the alarms
of a region where the member has no cluster only through it (`deleted_alarms.py`)."""

SETTLE_STEPS = 6
"""Readings of an incident's record one result may take: closing, then publishing the
resolution, then an opening after it are three; the rest is for runs writing it at once."""


class IncidentContendedError(Exception):
    """Other runs kept changing an incident's record while this one settled it: the invocation
    fails, so the platform retries it."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"incident {alert_id} changed at every one of {SETTLE_STEPS} readings")


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
    unsettled: list[ClientError | BotoCoreError | IncidentContendedError] = field(
        default_factory=list
    )
    """State-table failures that left a result's incident as it was, for the retry."""
    unreadable: list[UnreadableStateValueError] = field(default_factory=list)
    """Incident records that cannot be read (`read_incident`), left as they are for a person or
    their expiry: no retry reads them better, so they do not fail the invocation."""

    def counts(self) -> dict[str, int]:
        """`sent` (alerts opening or escalating an incident), `resolved` (resolutions sent) and
        `suppressed` (failures of an incident already announced at that severity or higher)."""
        return {"sent": self.sent, "resolved": self.resolved, "suppressed": self.suppressed}

    def errors(self) -> list[str]:
        """The report's error of each incident record that could not be read, naming it."""
        return [f"incident could not be read: {cut_echo(str(error))}" for error in self.unreadable]

    def raise_undelivered(self) -> None:
        """Fail the invocation, so the platform retries it, when an alert was not delivered or
        an incident could not be read or written."""
        if self.undelivered:
            raise self.undelivered[0]
        if self.unsettled:
            raise self.unsettled[0]


def settle_incidents(
    results: Iterable[CheckResult], services: HealthServices, scope: Scope, invocation: Invocation
) -> Settlement:
    """Open, escalate or resolve the incident of every result; every result is tried even when
    the delivery of an earlier one, or the state table for it, failed."""
    settlement = Settlement()
    place_noted = False
    cluster_noted = False
    for result in results:
        alert = alert_for(result, services, scope)
        try:
            if not result.passed and result.since is None and scope.cluster is not None:
                # Noted before the incident can open, so a cluster that leaves the inventory
                # leaves no open check incident that no run would find to resolve.
                if not cluster_noted:
                    services.state.put_value(
                        CHECK_INCIDENT_CLUSTERS,
                        scope.label,
                        {
                            "account_id": scope.account_id,
                            "region": scope.region,
                            "cluster": scope.cluster,
                        },
                        ttl_seconds=OPEN_INCIDENT_TTL_SECONDS,
                    )
                    cluster_noted = True
                services.state.put_value(
                    check_incidents_key(scope.label),
                    alert.id,
                    {"check": result.name, "target": result.target},
                    ttl_seconds=OPEN_INCIDENT_TTL_SECONDS,
                )
            if not result.passed and result.since is not None:
                # Noted before the incident can open, so no open alarm incident goes unlisted,
                # nor its list unwalked where no cluster's run walks it.
                if not place_noted:
                    services.state.put_value(
                        ALARM_INCIDENT_PLACES,
                        alarm_place(scope.account_id, scope.region),
                        {"account_id": scope.account_id, "region": scope.region},
                        ttl_seconds=OPEN_ALARM_INCIDENT_TTL_SECONDS,
                    )
                    place_noted = True
                services.state.put_value(
                    alarm_incidents_key(scope.account_id, scope.region),
                    alert.id,
                    {"alarm": result.target},
                    ttl_seconds=OPEN_ALARM_INCIDENT_TTL_SECONDS,
                )
            _settle(alert, result, services, settlement, invocation)
        except AlertNotDeliveredError as error:
            if isinstance(error.__cause__, RequestInProgressError):
                # Another run is publishing this very alert; it delivers it or fails and retries.
                settlement.suppressed += 1
            else:
                settlement.undelivered.append(error)
        except (ClientError, BotoCoreError, IncidentContendedError) as error:
            settlement.unsettled.append(error)
        except UnreadableStateValueError as error:
            settlement.unreadable.append(error)
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
        resource=result.resource or own_resource(scope, result.name, result.target),
        account_id=scope.account_id,
        region=scope.region,
        timestamp=services.clock.now(),
    )


def own_resource(scope: Scope, check: str, target: str) -> str:
    """The resource of the alert of a target of the cluster itself: the one a result that sets
    none gets."""
    return f"{scope.label}/{check}/{target}"


def incident_key(alert_id: str) -> str:
    """The state-table key of the incident of an alert id."""
    return f"{SOURCE}/incident/{alert_id}"


def read_incident(state: StateTable, alert_id: str) -> VersionedValue | None:
    """The record of the incident of `alert_id`, if any. Raises UnreadableStateValueError naming
    the record, never its data, when it is no JSON object or is not shaped as an incident record
    (a hand edit, an older format): a field it is settled by missing or of another type."""
    key = incident_key(alert_id)
    saved = state.get_versioned_value(key, INCIDENT_VALUE)
    if saved is not None:
        problem = _record_problem(saved.value)
        if problem is not None:
            raise UnreadableStateValueError(key, INCIDENT_VALUE, problem)
    return saved


def _record_problem(record: dict[str, Any]) -> str | None:
    """What keeps `record` from being read as an incident record, or None."""
    is_open = record.get("open", False)
    if not isinstance(is_open, bool):
        return "`open` is not true or false"
    texts = ("name", "opened_at", "severity") if is_open else ("closed_at",)
    alerts = ["alert"] if is_open else []
    if record.get("resolution") is not None:
        texts += ("name",)
        alerts.append("resolution")
    for name in texts:
        if not isinstance(record.get(name), str):
            return f"`{name}` is not text"
    if is_open and record["severity"] not in set(Severity):
        return "`severity` is not a severity"
    if record.get("state_since") is not None and not _is_time(record["state_since"]):
        return "`state_since` is not a time"
    for name in alerts:
        try:
            Alert.model_validate(record.get(name))
        except ValidationError:
            return f"`{name}` is not an alert"
    return None


def _is_time(value: object) -> bool:
    """Whether `value` is a time as `parse_iso` reads one."""
    if not isinstance(value, str):
        return False
    try:
        parse_iso(value)
    except ValueError:
        return False
    return True


def listed_unsettled_alerts(
    state: StateTable, listed_key: str, alert_ids: Iterable[str]
) -> tuple[dict[str, dict[str, Any]], list[UnreadableStateValueError]]:
    """The alert (or resolution) of each incident of `alert_ids`, listed under `listed_key`,
    that is not settled, by alert id (`_listed_unsettled_alert`: the settled ones are forgotten
    from the list); and the error of each incident whose record cannot be read, its entry kept
    and the others read on."""
    alerts: dict[str, dict[str, Any]] = {}
    unreadable: list[UnreadableStateValueError] = []
    for alert_id in alert_ids:
        try:
            alert = _listed_unsettled_alert(state, listed_key, alert_id)
        except UnreadableStateValueError as error:
            unreadable.append(error)
            continue
        if alert is not None:
            alerts[alert_id] = alert
    return alerts, unreadable


def _listed_unsettled_alert(
    state: StateTable, listed_key: str, alert_id: str
) -> dict[str, Any] | None:
    """The alert (or resolution) of the incident of `alert_id`, listed under `listed_key`, while
    it is not settled: open, or holding a resolution not yet sent. A settled one (closed, its
    resolution sent, or its record gone) is forgotten from the list, and None. Raises
    UnreadableStateValueError for a record that cannot be read (`read_incident`), its entry
    kept."""
    saved = read_incident(state, alert_id)
    record = None if saved is None else saved.value
    alert = None if record is None else record.get("alert") or record.get("resolution")
    if record is None or alert is None or not (record.get("open") or "resolution" in record):
        state.delete_value(listed_key, alert_id)
        return None
    return alert


def read_incident_list(
    state: StateTable, listed_key: str, fields: tuple[str, ...]
) -> tuple[dict[str, dict[str, str]], list[UnreadableStateValueError]]:
    """The entries of the list of incidents `listed_key` (`ALARM_INCIDENTS`, `CHECK_INCIDENTS`)
    by alert id, each with its `fields` as text, and the error of each entry that cannot be read
    or lacks one of them as text (a hand edit, corruption), by name, naming it, never its data:
    its incident is left to a person, or to its record's expiry, and the others are worked,
    where a bare KeyError (or the first unreadable entry) stopped them all."""
    read = state.readable_values_named(listed_key, "")
    unreadable = dict(read.unreadable)
    listed: dict[str, dict[str, str]] = {}
    for alert_id, entry in read.values.items():
        texts = {name: entry.value.get(name) for name in fields}
        if all(isinstance(text, str) and text for text in texts.values()):
            listed[alert_id] = {name: str(text) for name, text in texts.items()}
        else:
            unreadable[alert_id] = UnreadableStateValueError(
                listed_key, alert_id, f"names no {' and '.join(fields)} as text"
            )
    return listed, [unreadable[name] for name in sorted(unreadable)]


def alarm_incidents_key(account_id: str, region: str) -> str:
    """The state-table key of the alarm incidents that may be open in an account and region."""
    return f"{SOURCE}/{ALARM_INCIDENTS}/{account_id}/{region}"


def check_incidents_key(cluster_label: str) -> str:
    """The state-table key of the check incidents that may be open for a cluster."""
    return f"{SOURCE}/{CHECK_INCIDENTS}/{cluster_label}"


def alarm_place(account_id: str, region: str) -> str:
    """The name of an account and region in `ALARM_INCIDENT_PLACES`."""
    return f"{account_id}/{region}"


def _settle(
    alert: Alert,
    result: CheckResult,
    services: HealthServices,
    settlement: Settlement,
    invocation: Invocation,
) -> None:
    """Bring the incident of `result` up to date, one step per reading of its record: each
    step publishes at most one alert and writes the record only if it is still what was read,
    so a run that read it before another run changed it decides again on the new record."""
    opened: str | None = None
    for _ in range(SETTLE_STEPS):
        saved = read_incident(services.state, alert.id)
        if saved is not None and saved.value.get("resolution") is not None:
            # The last incident's resolution goes out before anything else of the check.
            _deliver_resolution(services, alert.id, saved, settlement, invocation)
            continue
        if result.passed:
            if _resolve(alert, result, services, saved):
                return
            continue
        settled, opened = _raise(
            alert, result, services, settlement, saved=saved, opened=opened, invocation=invocation
        )
        if settled:
            return
    raise IncidentContendedError(alert.id)


def _raise(
    alert: Alert,
    result: CheckResult,
    services: HealthServices,
    settlement: Settlement,
    *,
    saved: VersionedValue | None,
    opened: str | None,
    invocation: Invocation,
) -> tuple[bool, str | None]:
    """One step for a failed result; returns (settled, the incident this settle published an
    opening or escalation of, when its record is not written yet)."""
    record = None if saved is None else saved.value
    if record is not None and not record.get("open") and _observed_before(result, record):
        # Seen failing before the pass that closed the incident: over already.
        if opened is None:
            settlement.suppressed += 1
            return True, None
        # This settle's alert went out while another run recorded the pass that ends it.
        resolution = alert.resolution(
            "passed again before its alert was recorded", services.clock.now()
        )
        closed = {
            **record,
            "name": opened,
            "opened_at": _now(services),
            "closed_at": _now(services),
            "resolution": resolution.model_dump(mode="json"),
        }
        written = _replace(services, alert.id, closed, saved, CLOSED_INCIDENT_TTL_SECONDS)
        return False, None if written else opened
    if record is not None and record.get("open"):
        name = str(record["name"])
        alerted = Severity(record["severity"])
        if SEVERITY_RANK[alert.severity] <= SEVERITY_RANK[alerted]:
            refreshed = {**record, "last_failed_at": _now(services), **_since_of(result, record)}
            if not _replace(services, alert.id, refreshed, saved, _open_ttl_seconds(result)):
                return False, opened
            if opened is None:
                settlement.suppressed += 1
            return True, None
        opened_at = str(record["opened_at"])
    else:
        name = str(record["closed_at"]) if record is not None else FIRST_INCIDENT
        opened_at = _now(services)
    key = f"{SOURCE}/{alert.id}/{name}/{alert.severity.value}"
    delivered = deliver_once(
        services.state, services.alerts, key, alert, DELIVERY_TTL_SECONDS, deadline=invocation
    )
    if delivered is not None:
        settlement.sent += 1
        opened = name
    record_open = {
        "open": True,
        "name": name,
        "opened_at": opened_at,
        "last_failed_at": _now(services),
        "severity": alert.severity.value,
        "alert": alert.model_dump(mode="json"),
        **_since_of(result, record),
    }
    if not _replace(services, alert.id, record_open, saved, _open_ttl_seconds(result)):
        return False, opened
    if opened is None:
        # Another run delivered this alert; counted once, when this settle ends.
        settlement.suppressed += 1
    return True, None


def _resolve(
    alert: Alert, result: CheckResult, services: HealthServices, saved: VersionedValue | None
) -> bool:
    """One step for a passed result; True when it is settled."""
    record = None if saved is None else saved.value
    if record is None:
        if result.since is None:
            return True
        # Remember the pass, so a failure seen before it (an event retried late) opens nothing.
        passed = {"open": False, "closed_at": _now(services), **_since_of(result, None)}
        return _replace(services, alert.id, passed, None, CLOSED_INCIDENT_TTL_SECONDS)
    if _observed_before(result, record):
        # The check was seen failing after this pass: the incident stays as it is.
        return True
    if record.get("open"):
        announced = Alert.model_validate(record["alert"])
        resolution = announced.resolution(
            result.resolution or f"passed again: {result.detail}", services.clock.now()
        )
        closed = {
            "open": False,
            "name": record["name"],
            "opened_at": record["opened_at"],
            "closed_at": _now(services),
            "resolution": resolution.model_dump(mode="json"),
            **_since_of(result, record),
        }
        # Closed before the resolution is published (by the next step): once it is out, no
        # lost write can leave the incident open, which would silence its next failure.
        _replace(services, alert.id, closed, saved, CLOSED_INCIDENT_TTL_SECONDS)
        return False
    later = _since_of(result, record)
    if later == {key: record.get(key) for key in later}:
        return True
    return _replace(services, alert.id, {**record, **later}, saved, CLOSED_INCIDENT_TTL_SECONDS)


def _deliver_resolution(
    services: HealthServices,
    alert_id: str,
    saved: VersionedValue,
    settlement: Settlement,
    invocation: Invocation,
) -> None:
    """Publish the resolution a closed incident still holds (its run failed to send it or to
    note it sent), then forget it; the delivery key keeps it from going out twice."""
    closed = saved.value
    resolution = Alert.model_validate(closed["resolution"])
    key = f"{SOURCE}/{alert_id}/{closed['name']}/resolved"
    if deliver_once(
        services.state,
        services.alerts,
        key,
        resolution,
        DELIVERY_TTL_SECONDS,
        deadline=invocation,
    ):
        settlement.resolved += 1
    delivered = {k: v for k, v in closed.items() if k != "resolution"}
    _replace(services, alert_id, delivered, saved, CLOSED_INCIDENT_TTL_SECONDS)


def _open_ttl_seconds(result: CheckResult) -> int:
    """How long the open incident of `result` is kept after it was last seen failing."""
    return OPEN_INCIDENT_TTL_SECONDS if result.since is None else OPEN_ALARM_INCIDENT_TTL_SECONDS


def _observed_before(result: CheckResult, record: dict[str, Any]) -> bool:
    """Whether `result` was observed before the state `record` last settled (both timed by the
    check's source; a result or record without a time cannot tell)."""
    recorded = record.get("state_since")
    return result.since is not None and recorded is not None and result.since < parse_iso(recorded)


def _since_of(result: CheckResult, record: dict[str, Any] | None) -> dict[str, str]:
    """The `state_since` a record keeps: the latest observation's time, when timed."""
    recorded = None if record is None else record.get("state_since")
    if result.since is None:
        return {} if recorded is None else {"state_since": recorded}
    if recorded is not None and parse_iso(recorded) >= result.since:
        return {"state_since": recorded}
    return {"state_since": iso_z(result.since)}


def _replace(
    services: HealthServices,
    alert_id: str,
    record: dict[str, Any],
    saved: VersionedValue | None,
    ttl_seconds: int,
) -> bool:
    """Write `record` if the incident is still as `saved` was read; False when another run
    changed it in between."""
    return services.state.replace_value(
        incident_key(alert_id), INCIDENT_VALUE, record, read=saved, ttl_seconds=ttl_seconds
    )


def _now(services: HealthServices) -> str:
    return iso_z(services.clock.now())
