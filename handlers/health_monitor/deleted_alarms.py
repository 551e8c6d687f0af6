"""The alarm incidents of accounts and regions where the member has no cluster.

An alarm's state change events open its incident wherever the alarm is, but a scheduled run
checks alarms only through a cluster's `alarm` check, which resolves the incidents of the alarms
deleted in its account and region. Where the member has no cluster, an alarm deleted while not OK
(no state change follows) kept its incident, and its PagerDuty incident, open until the record
was forgotten 90 days later. So the fleet run also walks the accounts and regions that hold alarm
incident lists (`incidents.ALARM_INCIDENT_PLACES`: one read) and have no cluster in the inventory,
asks DescribeAlarms there for the alarms of those incidents by name and resolves the incident of
each one it no longer lists (`checks.alarms.deleted_alarm_results`). A place is started only while
the invocation has a cluster's AWS time left (else it is `not_checked`), and the places a run left
so (`PLACES_LEFT`) go before the clusters in the next run: in a fleet too large for one run, every
run ends its clusters short of time, and places walked only after them were never checked. A
listing that fails resolves nothing there and is reported as that place's error; an entry of a
place's list of alarm incidents that cannot be read, or names no alarm (a hand edit), is an
`error` report of that place of its own, naming it, and the others are resolved. A place of an
account the inventory no longer has is not listed (its member role is gone with it): its open
alarm incidents are resolved once, the member having left the fleet (`_left_member_runs`). An
account the inventory has never listed (`fleet_shared.listed_members`: its rule forwarded an
alarm before the inventory listed it, in the deployment that adds it) has not left: its places
are reported `not_listed_yet` and nothing more is done there, their incidents left to their
alarms' state changes, until the inventory lists it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import FleetError, UnreadableStateValueError
from fleet_shared.handler import Invocation
from fleet_shared.inventory import FleetInventory
from fleet_shared.listed_members import ListedMembers
from fleet_shared.targets_left import TargetsLeftList
from handlers.health_monitor.checks.alarms import deleted_alarm_results, gone_alarm_results
from handlers.health_monitor.cluster_time import CLUSTER_AWS_SECONDS
from handlers.health_monitor.exceptions import TooLittleTimeError
from handlers.health_monitor.incidents import (
    ALARM_INCIDENT_PLACES,
    Scope,
    Settlement,
    alarm_incidents_key,
    read_incident_list,
    settle_incidents,
)
from handlers.health_monitor.report import NOT_CHECKED
from handlers.health_monitor.runner import logger
from handlers.health_monitor.services import FUNCTION_NAME, HealthServices, member_calls_within

CHECKED = "checked"
ERROR = "error"
MEMBER_LEFT = "member_left"
NOT_LISTED_YET = "not_listed_yet"

PLACES_LEFT = TargetsLeftList(
    f"{FUNCTION_NAME}/alarm-places-not-checked", "places", ttl_seconds=24 * 3600
)
"""The accounts and regions without a cluster a fleet run left `not_checked` for lack of time,
in its order, walked first by the next run; forgotten after a day, which only means the next run
walks them after the clusters again."""

Place = tuple[str, str]
"""An account and region: (account id, region)."""


@dataclass
class PlaceRun:
    """The report of one account and region without a cluster, and what settling it did."""

    report: dict[str, Any]
    settlement: Settlement = field(default_factory=Settlement)


def places_left_before(services: HealthServices) -> list[Place]:
    """The places without a cluster the last fleet run left for lack of time, in its order; none
    when the list cannot be read, or holds something that is no place."""
    return [
        (str(place["account_id"]), str(place["region"]))
        for place in PLACES_LEFT.read(services.state, logger)
        if isinstance(place, dict) and {"account_id", "region"} <= place.keys()
    ]


def check_places(
    services: HealthServices,
    inventory: FleetInventory,
    listed: ListedMembers,
    places: list[Place],
    invocation: Invocation,
) -> list[PlaceRun]:
    """Resolve the incidents of deleted alarms in each of `places` that has no cluster of
    `inventory` (the one the fleet run read for its clusters, so that one run judges by one
    inventory), in the order given; in a place of an account that left the fleet (`listed`
    before, not in `inventory`), those of every alarm (`_left_member_runs`), reported only while
    it lists some. A place of an account not listed yet is only reported so (`NOT_LISTED_YET`):
    no call, no alert, no incident changed."""
    with_clusters = _places_with_clusters(inventory)
    runs = []
    for account_id, region in places:
        if (account_id, region) in with_clusters:
            continue
        if inventory.member(account_id) is None:
            if not listed.has_left(account_id, inventory):
                runs.append(
                    PlaceRun({"account_id": account_id, "region": region, "status": NOT_LISTED_YET})
                )
                continue
            runs.extend(_left_member_runs(services, account_id, region, invocation))
            continue
        runs.extend(_place_runs(services, account_id, region, invocation))
    return runs


def check_places_without_clusters(
    services: HealthServices,
    inventory: FleetInventory,
    listed: ListedMembers,
    invocation: Invocation,
    *,
    walked: list[Place],
) -> list[PlaceRun]:
    """Resolve the incidents of deleted alarms in every account and region with alarm
    incidents and no cluster of `inventory`, in account and region order, except those this
    run `walked` already. A place without a cluster whose note cannot be read (a hand edit,
    corruption) is that place's `error`, naming the value, and the others are walked: the note
    is left for a person, or for the next alarm there that fails, which notes it again. A
    DynamoDB error fails the invocation once the clusters are checked, as one settling an
    incident does (`Settlement.raise_undelivered`): its retry walks the places, and sends each
    alert once."""
    read = services.state.readable_values_named(ALARM_INCIDENT_PLACES, "")
    places: list[Place] = []
    unreadable = dict(read.unreadable)
    for name, note in read.values.items():
        place = _noted_place(note.value)
        if place is None:
            unreadable[name] = UnreadableStateValueError(
                ALARM_INCIDENT_PLACES, name, "names no account_id and region as text"
            )
        elif place not in walked:
            places.append(place)
    runs = check_places(services, inventory, listed, places, invocation)
    with_clusters = _places_with_clusters(inventory)
    for name, error in unreadable.items():
        account_id, _, region = name.partition("/")
        if (account_id, region) in walked or (account_id, region) in with_clusters:
            continue
        runs.append(
            _failed_place(
                {"account_id": account_id, "region": region},
                error,
                "the note of a region with alarm incidents could not be read",
                "alarm incident place could not be read",
            )
        )
    return runs


def _noted_place(note: dict[str, Any]) -> Place | None:
    """The account and region a note of ALARM_INCIDENT_PLACES names; None when it lacks one or
    one is not text (a hand edit), which would otherwise fail the whole run."""
    account_id, region = note.get("account_id"), note.get("region")
    if isinstance(account_id, str) and account_id and isinstance(region, str) and region:
        return account_id, region
    return None


def _places_with_clusters(inventory: FleetInventory) -> set[Place]:
    """The accounts and regions where `inventory` has a cluster, whose run walks their alarms."""
    return {(member.account_id, cluster.region) for member, cluster in inventory.clusters()}


def save_places_left(
    services: HealthServices, place_runs: list[PlaceRun], left_before: list[Place]
) -> None:
    """Save the places `place_runs` left `not_checked`, in the order they came to them, for the
    next run to walk first."""
    left = [
        {"account_id": run.report["account_id"], "region": run.report["region"]}
        for run in place_runs
        if run.report["status"] == NOT_CHECKED
    ]
    PLACES_LEFT.save(
        services.state,
        left,
        [{"account_id": account_id, "region": region} for account_id, region in left_before],
        logger,
    )


def _place_runs(
    services: HealthServices, account_id: str, region: str, invocation: Invocation
) -> list[PlaceRun]:
    """Resolve the incidents of the alarms deleted in one account and region: its run, then
    the `error` run of each entry of its list of alarm incidents that cannot be read
    (`_unreadable_entry_runs`)."""
    report: dict[str, Any] = {"account_id": account_id, "region": region}
    if not invocation.allows(CLUSTER_AWS_SECONDS):
        return [PlaceRun({**report, "status": NOT_CHECKED})]
    try:
        with member_calls_within(invocation):
            results, unreadable = deleted_alarm_results(
                services.state,
                services.member_client("cloudwatch", account_id, region),
                account_id,
                region,
                in_alarm=set(),
            )
    except TooLittleTimeError:
        return [PlaceRun({**report, "status": NOT_CHECKED})]
    except (FleetError, *AWS_CALL_ERRORS) as error:
        return [
            _failed_place(
                report,
                error,
                "alarms of a region without a cluster could not be listed",
                "alarms could not be listed",
            )
        ]
    settlement = settle_incidents(results, services, Scope(account_id, region, None), invocation)
    return [
        PlaceRun({**report, "status": CHECKED, "alerts": settlement.counts()}, settlement),
        *_unreadable_entry_runs(report, [*unreadable, *settlement.unreadable]),
    ]


def _left_member_runs(
    services: HealthServices, account_id: str, region: str, invocation: Invocation
) -> list[PlaceRun]:
    """Resolve, once, the open incidents of the alarms listed in a place of an account that left
    the inventory: its member role is gone with it, so its alarms can no longer be listed (every
    run reported the place an `error` until its list was forgotten 90 days later), and no state
    change of theirs reaches the hub any more. The entries of incidents so settled are forgotten
    by the next run, after which the place is skipped (no run: nothing listed there). Each entry
    of the list that cannot be read is an `error` run of its own (`_unreadable_entry_runs`)."""
    report: dict[str, Any] = {"account_id": account_id, "region": region}
    try:
        listed, unreadable = read_incident_list(
            services.state, alarm_incidents_key(account_id, region), ("alarm",)
        )
        unread = _unreadable_entry_runs(report, unreadable)
        if not listed:
            return unread
        if not invocation.allows(CLUSTER_AWS_SECONDS):
            return [PlaceRun({**report, "status": NOT_CHECKED}), *unread]
        results, unreadable_records = gone_alarm_results(
            services.state,
            account_id,
            region,
            {alert_id: entry["alarm"] for alert_id, entry in listed.items()},
            detail=f"account {account_id} left the fleet",
            resolution=lambda alarm_name: (
                f"account {account_id} left the fleet: alarm {alarm_name} is no longer watched"
            ),
        )
    except AWS_CALL_ERRORS as error:
        return [
            _failed_place(
                report,
                error,
                "alarm incidents of an account that left the fleet could not be read",
                "alarm incidents could not be read",
            )
        ]
    settlement = settle_incidents(results, services, Scope(account_id, region, None), invocation)
    return [
        PlaceRun({**report, "status": MEMBER_LEFT, "alerts": settlement.counts()}, settlement),
        *unread,
        *_unreadable_entry_runs(report, [*unreadable_records, *settlement.unreadable]),
    ]


def _unreadable_entry_runs(
    report: dict[str, Any], unreadable: list[UnreadableStateValueError]
) -> list[PlaceRun]:
    """The `error` run of the place of `report` for each entry of its list of alarm incidents
    that cannot be read or names no alarm (`incidents.read_incident_list`), naming it: that
    incident is left for a person while the others are resolved."""
    return [
        _failed_place(
            report,
            error,
            "an alarm incident of a region without a cluster could not be read",
            "alarm incidents could not be read",
        )
        for error in unreadable
    ]


def _failed_place(
    report: dict[str, Any], error: Exception, log_message: str, failure: str
) -> PlaceRun:
    """The `error` run of a place, logged as `log_message` with the error and reported as
    `failure` with a short prefix of its text."""
    logger.warning(
        log_message,
        extra={
            "account_id": report["account_id"],
            "region": report["region"],
            "error": repr(error),
        },
    )
    return PlaceRun({**report, "status": ERROR, "error": f"{failure}: {call_error_text(error)}"})
