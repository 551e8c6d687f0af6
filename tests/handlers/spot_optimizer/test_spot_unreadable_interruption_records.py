"""An interruption record in the state table that is not a JSON object (corruption, an older
format, a hand edit): the warnings of its node group and type/AZ are still recorded, counted and
announced once, and the analyses that read it still score its target."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from fleet_shared.timestamps import iso_z
from handlers.spot_optimizer.exceptions import InterruptionNotRecordedError
from handlers.spot_optimizer.keys import node_group_interruptions_key, zone_interruptions_key
from handlers.spot_optimizer.services import SpotServices
from tests.handlers.faults import fail_every_attempt
from tests.handlers.member_accounts import MEMBER_A, REGION
from tests.handlers.spot_optimizer.conftest import (
    CLUSTER,
    desired_size,
    interrupt_batch_spot,
    interruption_event,
    launch_spot_instance,
)
from tests.handlers.unreadable_state_entries import SECRET, UNREADABLE_SHAPES, unreadable_entry

MakeServices = Callable[..., SpotServices]
Invoke = Callable[..., dict[str, Any]]

BAD_VALUE = "i-0badbadbadbadbad0"
NOT_AN_OBJECT = {
    "list": f'["{BAD_VALUE}"]',
    "number": "1717300000",
    "string": f'"{BAD_VALUE}"',
}
SKIPPED = "unreadable interruption record skipped"


def batch_spot_key() -> str:
    return node_group_interruptions_key(MEMBER_A, REGION, CLUSTER, "batch-spot")


def m7g_zone_key() -> str:
    """The type/AZ key of launch_spot_instance's default instances."""
    return zone_interruptions_key(MEMBER_A, REGION, "m7g.large", f"{REGION}a")


def write_unreadable_record(
    services: SpotServices, key: str, data: str, *, minutes_ago: int = 5
) -> str:
    """A history entry of `key` whose data is `data` (not a JSON object), written `minutes_ago`
    as a hand edit would, with no expiry; its time, as the state table names it."""
    written_at = iso_z(services.clock.now() - timedelta(minutes=minutes_ago), "microseconds")
    services.hub_client("dynamodb").put_item(
        TableName=services.state.table_name,
        Item={
            "pk": {"S": f"STATE#{key}"},
            "sk": {"S": f"HISTORY#{written_at}"},
            "data": {"S": data},
            "changed_at": {"S": written_at},
        },
    )
    return written_at


def recorded_instances(services: SpotServices, key: str) -> list[str]:
    """The instance ids of the readable interruption records of `key`."""
    since = services.clock.now().replace(year=2020)
    history = services.state.readable_history(key, since)
    return [change.record["instance_id"] for change in history.changes]


def skipped_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """(key, time) of each log line of a skipped record."""
    return [
        (record.key, record.changed_at)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == SKIPPED
    ]


@pytest.fixture
def services(make_services: MakeServices) -> SpotServices:
    return make_services()


@pytest.mark.parametrize("data", NOT_AN_OBJECT.values(), ids=NOT_AN_OBJECT.keys())
def test_a_warning_whose_node_group_history_holds_an_unreadable_record_is_recorded_and_announced(
    invoke: Invoke,
    services: SpotServices,
    alert_inbox: Any,
    caplog: pytest.LogCaptureFixture,
    data: str,
) -> None:
    # GIVEN a spot instance of batch-spot, and the node group's interruption history holding,
    # five minutes ago, a record that is not a JSON object
    caplog.set_level(logging.WARNING)
    instance_id = launch_spot_instance()
    written_at = write_unreadable_record(services, batch_spot_key(), data)
    # WHEN its warning arrives
    result = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN it is recorded under both keys, and the unreadable record counts as an interruption
    # of the hour (it sits under the interruptions key) and is reported
    assert result["status"] == "recorded", result
    assert result["interruptions_last_hour"] == 2
    assert result["unreadable_interruption_records"] == 1
    assert recorded_instances(services, batch_spot_key()) == [instance_id]
    assert recorded_instances(services, m7g_zone_key()) == [instance_id]
    # AND its alert went out once, saying a record was skipped
    [alert] = alert_inbox.receive()
    assert alert.alert["severity"] == "warning"
    assert "2 interruption(s) of its node group in the last hour" in alert.alert["detail"]
    assert "1 interruption record(s)" in alert.alert["detail"]
    # AND the record was logged once (its key read twice), by key and time, never its value
    assert skipped_records(caplog) == [(batch_spot_key(), written_at)]
    assert BAD_VALUE not in caplog.text
    assert all(BAD_VALUE not in str(record.__dict__) for record in caplog.records)


ENTRY_SHAPES = ("no-changed-at", "changed-at-no-time", "data-binary", "data-nested-too-deep")
"""Shapes (`UNREADABLE_SHAPES`) of an entry whose time or record cannot be read."""


@pytest.mark.parametrize("shape_id", ENTRY_SHAPES)
def test_a_warning_beside_an_entry_of_no_readable_time_or_record_is_recorded_and_announced_once(
    invoke: Invoke,
    services: SpotServices,
    alert_inbox: Any,
    caplog: pytest.LogCaptureFixture,
    shape_id: str,
) -> None:
    # GIVEN a spot instance of batch-spot, and the node group's interruption history holding,
    # five minutes ago, an entry whose time or record cannot be read (a hand edit, corruption,
    # an older format)
    caplog.set_level(logging.WARNING)
    instance_id = launch_spot_instance()
    shape, problem = UNREADABLE_SHAPES[shape_id]
    written_at = iso_z(services.clock.now() - timedelta(minutes=5), "microseconds")
    services.hub_client("dynamodb").put_item(
        TableName=services.state.table_name,
        Item=unreadable_entry(batch_spot_key(), f"HISTORY#{written_at}", written_at, shape),
    )
    # WHEN its warning arrives, and EventBridge delivers it again
    result = invoke(interruption_event(instance_id), services, "inv-1")
    services.clock.advance(30)  # type: ignore[attr-defined]
    repeat = invoke(interruption_event(instance_id), services, "inv-2")
    # THEN it is recorded once, the entry counted as an interruption and reported, instead of
    # a KeyError or ValueError failing the warning until the entry leaves the window
    assert result["status"] == "recorded", result
    assert result["interruptions_last_hour"] == 2
    assert result["unreadable_interruption_records"] == 1
    assert repeat["status"] == "duplicate"
    assert recorded_instances(services, batch_spot_key()) == [instance_id]
    # AND announced once, saying a record was skipped
    [alert] = alert_inbox.receive()
    assert "1 interruption record(s)" in alert.alert["detail"]
    # AND the entry was logged by key, sort-key time and problem, never its value
    assert skipped_records(caplog)[0] == (batch_spot_key(), written_at)
    assert {
        record.problem  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == SKIPPED
    } == {problem}
    assert SECRET not in caplog.text
    assert all(SECRET not in str(record.__dict__) for record in caplog.records)


def test_a_repeated_warning_beside_an_unreadable_record_is_not_recorded_or_announced_twice(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a spot instance of batch-spot whose warning was handled, and an unreadable record
    # in the node group's interruption history
    instance_id = launch_spot_instance()
    write_unreadable_record(services, batch_spot_key(), NOT_AN_OBJECT["list"])
    invoke(interruption_event(instance_id), services, "inv-1")
    assert len(alert_inbox.receive()) == 1
    # WHEN EventBridge delivers the same warning again
    services.clock.advance(30)  # type: ignore[attr-defined]
    repeat = invoke(interruption_event(instance_id), services, "inv-2")
    # THEN it is the duplicate: nothing recorded twice, nothing announced again
    assert repeat["status"] == "duplicate"
    assert recorded_instances(services, batch_spot_key()) == [instance_id]
    assert alert_inbox.receive() == []


def test_a_retried_warning_beside_unreadable_records_adds_only_the_missing_record(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a spot instance of batch-spot, unreadable records under its type/AZ key and its
    # node group's key, and the state table refusing every attempt to record the node group's
    # interruption (the type/AZ record goes through), so the first attempt fails
    instance_id = launch_spot_instance()
    write_unreadable_record(services, m7g_zone_key(), NOT_AN_OBJECT["number"])
    write_unreadable_record(services, batch_spot_key(), NOT_AN_OBJECT["string"])
    refused = fail_every_attempt(
        services.hub_client("dynamodb"),
        "dynamodb",
        "TransactWriteItems",
        body_with=(b"spot-interruptions/nodegroup/",),
    )
    with pytest.raises(InterruptionNotRecordedError):
        invoke(interruption_event(instance_id), services, "inv-1")
    assert recorded_instances(services, m7g_zone_key()) == [instance_id]
    # WHEN the platform retries the warning with the state table healthy
    refused.healed = True
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the type/AZ record is found despite the unreadable one beside it and not added
    # again, the node group's is added once, and the warning is announced once
    assert retried["status"] == "recorded", retried
    assert retried["unreadable_interruption_records"] == 2
    assert recorded_instances(services, m7g_zone_key()) == [instance_id]
    assert recorded_instances(services, batch_spot_key()) == [instance_id]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]


@pytest.mark.parametrize(
    ("minutes_ago", "counted", "fallback"),
    [(10, 4, "scaling_initiated"), (70, 3, None)],
    ids=["in-the-hour", "before-the-hour"],
)
def test_an_unreadable_record_in_the_hour_counts_toward_the_fallback_threshold(  # noqa: PLR0917 - pytest passes fixtures positionally
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    minutes_ago: int,
    counted: int,
    fallback: str | None,
) -> None:
    # GIVEN auto-apply on (threshold 3), an unreadable record of batch-spot's interruption
    # history `minutes_ago`, then two interruptions of batch-spot a minute apart
    services = make_services(SPOT_AUTO_APPLY="true")
    write_unreadable_record(
        services, batch_spot_key(), NOT_AN_OBJECT["list"], minutes_ago=minutes_ago
    )
    interrupt_batch_spot(invoke, services, times=2)
    # WHEN a third warning of a new instance arrives
    services.clock.advance(60)  # type: ignore[attr-defined]
    result = invoke(interruption_event(launch_spot_instance()), services, "inv-3")
    # THEN the unreadable record, now `minutes_ago` + 3 minutes old, counts as an interruption
    # while it is in the hour: 4 > 3 applies the on-demand +1 of system (2 -> 3); older, it
    # does not count
    assert result["status"] == "recorded", result
    assert result["interruptions_last_hour"] == counted
    assert result.get("fallback", {}).get("status") == fallback
    assert desired_size(member_eks, "system") == (3 if fallback else 2)


def test_an_analysis_counts_an_unreadable_type_az_record_and_scores_the_target(
    invoke: Invoke, services: SpotServices, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an unreadable record under m7g.large's interruption key in zone a
    caplog.set_level(logging.WARNING)
    written_at = write_unreadable_record(services, m7g_zone_key(), NOT_AN_OBJECT["list"])
    # WHEN the opportunities of m7g.large and m6g.large are analysed
    event = {
        "action": "analyze_opportunities",
        "account_id": MEMBER_A,
        "region": REGION,
        "instance_types": ["m7g.large", "m6g.large"],
    }
    result = invoke(event, services, "inv-1")
    # THEN both types are scored; the record counts as an interruption of m7g.large in zone a
    # (a higher risk, so a lower score than its other zones) and is reported there
    by_type = {item["instance_type"]: item for item in result["results"]}
    assert {item["status"] for item in by_type.values()} == {"ok"}, result
    m7g_zones = {zone["availability_zone"]: zone for zone in by_type["m7g.large"]["zones"]}
    assert m7g_zones[f"{REGION}a"]["interruptions_7d"] == 1
    assert m7g_zones[f"{REGION}a"]["unreadable_interruption_records"] == 1
    assert m7g_zones[f"{REGION}a"]["score"] < m7g_zones[f"{REGION}b"]["score"]
    assert by_type["m7g.large"]["unreadable_interruption_records"] == 1
    assert "unreadable_interruption_records" not in by_type["m6g.large"]
    assert skipped_records(caplog) == [(m7g_zone_key(), written_at)]


def test_a_fleet_analysis_beside_an_unreadable_type_az_record_saves_its_target(
    invoke: Invoke, services: SpotServices
) -> None:
    # GIVEN an unreadable record under m7g.large's interruption key in zone a, a type of
    # batch-spot
    write_unreadable_record(services, m7g_zone_key(), NOT_AN_OBJECT["number"])
    # WHEN the hourly fleet analysis runs
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN member A's target is analysed and saved, not failed, and the record is reported
    [target] = [t for t in result["targets"] if t["account_id"] == MEMBER_A]
    assert target["status"] == "ok", target
    [batch_spot] = target["node_groups"]
    types = {item["instance_type"]: item for item in batch_spot["instance_types"]}
    assert types["m7g.large"]["unreadable_interruption_records"] == 1
    assert "unreadable_interruption_records" not in types["m6g.large"]
