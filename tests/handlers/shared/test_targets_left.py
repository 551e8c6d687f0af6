"""Behaviour of fleet_shared.targets_left: the targets a run left, first in the next run."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.state_table import StateTable
from fleet_shared.targets_left import StoredTarget, TargetsLeftList, in_turn_order
from tests.handlers.faults import fail_every_attempt
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

LABELS = TargetsLeftList("fleet_run/clusters-not-started", "clusters", ttl_seconds=3600)
FIELDS = TargetsLeftList("fleet_run/direct-scan", "targets")
LOGGER = logging.getLogger("targets_left_test")


def as_fields(target: tuple[str, str]) -> StoredTarget:
    account_id, region = target
    return {"account_id": account_id, "region": region}


def test_the_targets_the_last_run_left_go_first_in_its_order_then_the_others_in_theirs() -> None:
    # GIVEN five targets, of which the last run left d then b
    targets = ["a", "b", "c", "d", "e"]
    # WHEN they are put in turn order
    ordered = in_turn_order(targets, ["d", "b"], str)
    # THEN d and b go first, in the order the last run came to them, then a, c, e
    assert ordered == ["d", "b", "a", "c", "e"]


def test_a_target_listed_twice_goes_at_its_first_place_and_one_no_longer_there_is_passed_over() -> (
    None
):
    # GIVEN a list naming c twice and a target that left the inventory since
    left_before: list[StoredTarget] = ["c", "gone", "a", "c"]
    # WHEN the run's targets are put in turn order
    ordered = in_turn_order(["a", "b", "c", "d"], left_before, str)
    # THEN c keeps its first place, the missing target is ignored, and the others follow in order
    assert ordered == ["c", "a", "b", "d"]


def test_stored_fields_match_a_target_whatever_their_order() -> None:
    # GIVEN a list saved with its fields in another order than this run writes them
    left_before: list[StoredTarget] = [{"region": "eu-west-1", "account_id": "222222222222"}]
    targets = [("111111111111", "eu-west-1"), ("222222222222", "eu-west-1")]
    # WHEN the targets are put in turn order
    ordered = in_turn_order(targets, left_before, as_fields)
    # THEN the saved target is recognised and goes first
    assert ordered == [("222222222222", "eu-west-1"), ("111111111111", "eu-west-1")]


def test_the_targets_saved_are_read_back_in_their_order_under_the_key_and_field_given(
    state_table: StateTable,
) -> None:
    # GIVEN a run that left two targets
    left: list[StoredTarget] = [as_fields(("2", "eu-west-1")), as_fields(("1", "eu-west-1"))]
    # WHEN it saves them
    FIELDS.save(state_table, left, [], LOGGER)
    # THEN the next run reads them in the same order, stored in the shape the functions wrote
    assert FIELDS.read(state_table, LOGGER) == left
    assert state_table.get_value("fleet_run/direct-scan", "not_started") == {"targets": left}


def test_an_empty_list_clears_the_last_runs_and_nothing_is_written_when_neither_left_any(
    state_table: StateTable, dynamodb_client: Any
) -> None:
    # GIVEN a list the last run saved
    LABELS.save(state_table, ["a/r/c"], [], LOGGER)
    # WHEN a run that reached every target saves what it left
    LABELS.save(state_table, [], ["a/r/c"], LOGGER)
    # THEN nothing is left for the next run
    assert LABELS.read(state_table, LOGGER) == []
    # WHEN a run finds nothing left and leaves nothing, with DynamoDB failing every write
    fault = fail_every_attempt(dynamodb_client, "dynamodb", "PutItem")
    LABELS.save(state_table, [], [], LOGGER)
    # THEN it did not try to write
    assert fault.attempts == 0


def test_the_list_is_forgotten_after_its_ttl(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a list kept for an hour
    LABELS.save(state_table, ["a/r/c"], [], LOGGER)
    # WHEN more than an hour passes
    fake_clock.advance(3601)
    # THEN the next run finds none
    assert LABELS.read(state_table, LOGGER) == []


def test_a_list_that_cannot_be_read_or_saved_is_logged_and_the_run_goes_on(
    state_table: StateTable, dynamodb_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a saved list, and DynamoDB failing every attempt to read or write
    LABELS.save(state_table, ["a/r/c"], [], LOGGER)
    reads = fail_every_attempt(dynamodb_client, "dynamodb", "GetItem")
    writes = fail_every_attempt(dynamodb_client, "dynamodb", "PutItem")
    # WHEN a run reads the list and saves its own
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        left_before = LABELS.read(state_table, LOGGER)
        LABELS.save(state_table, ["b/r/c"], left_before, LOGGER)
    # THEN it reads none and raises nothing: both failures are logged, naming the list's key
    assert left_before == []
    assert reads.attempts > 0
    assert writes.attempts > 0
    assert [(record.getMessage(), record.key) for record in caplog.records] == [  # type: ignore[attr-defined]
        ("targets left by the last run could not be read", LABELS.key),
        ("targets left by this run could not be saved", LABELS.key),
    ]
    # AND the list saved before stands for the run after
    reads.healed = writes.healed = True
    assert LABELS.read(state_table, LOGGER) == ["a/r/c"]


def test_a_saved_list_that_is_no_json_is_logged_and_the_run_goes_in_inventory_order(
    state_table: StateTable, dynamodb_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the list a run left, made no JSON by a hand edit
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_value(LABELS.key, LABELS.name, {"S": f"[{SECRET}"}),
    )
    # WHEN the next run reads it
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        left_before = LABELS.read(state_table, LOGGER)
    # THEN it reads none, raising nothing that would fail every run of the function, and logs
    # the list's key and what is wrong, never the value
    assert left_before == []
    [record] = caplog.records
    assert (record.getMessage(), record.key) == (  # type: ignore[attr-defined]
        "targets left by the last run could not be read",
        LABELS.key,
    )
    assert "its data is not JSON" in record.error  # type: ignore[attr-defined]
    assert SECRET not in record.error  # type: ignore[attr-defined]
    # AND the run's own list replaces it
    LABELS.save(state_table, ["b/r/c"], left_before, LOGGER)
    assert LABELS.read(state_table, LOGGER) == ["b/r/c"]


def test_a_value_without_a_list_under_its_field_reads_as_none_left(
    state_table: StateTable,
) -> None:
    # GIVEN a value under the key whose field is not a list
    state_table.put_value(LABELS.key, LABELS.name, {"clusters": "a/r/c"})
    # WHEN the next run reads it THEN it finds none left, and goes in inventory order
    assert LABELS.read(state_table, LOGGER) == []
