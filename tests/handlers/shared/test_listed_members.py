"""Behaviour of fleet_shared.listed_members: "left the fleet" is listed before and not now."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.inventory import FleetInventory
from fleet_shared.listed_members import LISTED_MEMBERS, ListedMembers, note_listed_members
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from tests.handlers.faults import fail_every_attempt
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

KEY = "some_function/listed-members"
KEEP_SECONDS = 14 * 86_400
LOGGER = logging.getLogger("listed_members_test")
FIRST = "111111111111"
SECOND = "222222222222"
NEW = "333333333333"


def inventory_of(*account_ids: str) -> FleetInventory:
    """An inventory listing `account_ids`, each with one region and no cluster."""
    return FleetInventory.model_validate(
        {
            "stack": "test",
            "hub": {"account_id": "999999999999", "region": "eu-west-1"},
            "dry_run": False,
            "members": [
                {"account_id": account_id, "name": f"m{account_id[0]}", "regions": ["eu-west-1"]}
                for account_id in account_ids
            ],
        }
    )


def note(state_table: StateTable, clock: ManualClock, *account_ids: str) -> ListedMembers:
    """A run's note of an inventory listing `account_ids`: the accounts noted before it."""
    return note_listed_members(
        state_table,
        KEY,
        inventory_of(*account_ids),
        now=clock.now(),
        keep_seconds=KEEP_SECONDS,
        logger=LOGGER,
    )


def test_an_account_the_inventory_listed_before_has_left_one_never_listed_has_not_arrived_yet(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a run whose inventory listed the first and second members
    note(state_table, fake_clock, FIRST, SECOND)
    # WHEN a later run's inventory lists only the second
    now = inventory_of(SECOND)
    listed = note(state_table, fake_clock, SECOND)
    # THEN the first left the fleet, the second did not, and an account never listed (its
    # rule forwarded an event before the inventory listed it) has not left: it has not arrived
    assert listed.has_left(FIRST, now)
    assert not listed.has_left(SECOND, now)
    assert not listed.has_left(NEW, now)


def test_before_the_first_note_every_account_the_inventory_lacks_counts_as_left(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN a function upgraded from a version that noted nothing
    # WHEN its first run notes its inventory, which lacks the first member
    listed = note(state_table, fake_clock, SECOND)
    # THEN that run judges as before: an account the inventory lacks has left
    assert listed == ListedMembers(None)
    assert listed.has_left(FIRST, inventory_of(SECOND))
    # AND the next run judges by the note: an account never listed has not left
    assert not note(state_table, fake_clock, SECOND).has_left(FIRST, inventory_of(SECOND))


def test_an_account_that_left_is_kept_for_keep_seconds_then_forgotten_and_listed_again_if_back(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN the first member listed, then no longer listed
    note(state_table, fake_clock, FIRST, SECOND)
    missing_since = iso_z(fake_clock.now())
    note(state_table, fake_clock, SECOND)
    # WHEN runs go on until just before KEEP_SECONDS have passed
    fake_clock.advance(KEEP_SECONDS - 1)
    assert note(state_table, fake_clock, SECOND).has_left(FIRST, inventory_of(SECOND))
    # THEN it is kept, with when it was first found missing
    assert state_table.get_value(KEY, LISTED_MEMBERS) == {
        "accounts": {FIRST: missing_since, SECOND: None}
    }
    # WHEN a run comes KEEP_SECONDS after that
    fake_clock.advance(1)
    note(state_table, fake_clock, SECOND)
    # THEN it is forgotten: the value holds the members and those that left lately, no more
    assert state_table.get_value(KEY, LISTED_MEMBERS) == {"accounts": {SECOND: None}}
    # AND an account listed again is a member again, whose next leaving counts from then
    note(state_table, fake_clock, FIRST, SECOND)
    assert state_table.get_value(KEY, LISTED_MEMBERS) == {"accounts": {FIRST: None, SECOND: None}}


def test_the_note_is_written_only_when_the_accounts_listed_change(
    state_table: StateTable, fake_clock: ManualClock, dynamodb_client: Any
) -> None:
    # GIVEN a note of the first and second members
    note(state_table, fake_clock, SECOND, FIRST)
    # WHEN later runs read an inventory listing the same accounts, in another order
    writes = fail_every_attempt(dynamodb_client, "dynamodb", "PutItem")
    fake_clock.advance(timedelta(days=3).total_seconds())
    note(state_table, fake_clock, FIRST, SECOND)
    # THEN none writes
    assert writes.attempts == 0


def test_accounts_another_run_noted_meanwhile_are_kept(
    state_table: StateTable, fake_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run that read no note, and another run that noted the second member meanwhile
    note(state_table, fake_clock, SECOND)
    read = state_table.get_versioned_value
    reads: list[str] = []

    def first_read_before_the_other_run(key: str, name: str) -> Any:
        reads.append(name)
        return None if len(reads) == 1 else read(key, name)

    monkeypatch.setattr(state_table, "get_versioned_value", first_read_before_the_other_run)
    # WHEN the first run notes its inventory, which lists the first member only
    note(state_table, fake_clock, FIRST)
    # THEN its write, refused, is made again on what the other saved: both accounts are noted
    assert state_table.get_value(KEY, LISTED_MEMBERS) == {
        "accounts": {FIRST: None, SECOND: iso_z(fake_clock.now())}
    }


def test_a_note_that_cannot_be_read_or_saved_is_logged_and_the_run_judges_as_before_it(
    state_table: StateTable,
    fake_clock: ManualClock,
    dynamodb_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a note of the first member, and DynamoDB failing every read
    note(state_table, fake_clock, FIRST)
    reads = fail_every_attempt(dynamodb_client, "dynamodb", "GetItem")
    # WHEN a run notes its inventory
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        listed = note(state_table, fake_clock, SECOND)
    # THEN it raises nothing, logs the failure naming the key, and judges as before the note
    assert reads.attempts > 0
    assert listed == ListedMembers(None)
    assert [(record.getMessage(), record.key) for record in caplog.records] == [  # type: ignore[attr-defined]
        ("the member accounts listed before could not be read", KEY)
    ]
    # WHEN DynamoDB reads again but refuses every write
    reads.healed = True
    caplog.clear()
    writes = fail_every_attempt(dynamodb_client, "dynamodb", "PutItem")
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        listed = note(state_table, fake_clock, SECOND)
    # THEN the run judges by the note it read, logs the failed save, and the note stands
    assert writes.attempts > 0
    assert listed.has_left(FIRST, inventory_of(SECOND))
    assert [record.getMessage() for record in caplog.records] == [
        "the member accounts listed could not be saved"
    ]
    assert state_table.get_value(KEY, LISTED_MEMBERS) == {"accounts": {FIRST: None}}


def test_a_note_that_is_no_json_is_logged_and_the_run_judges_as_before_it(
    state_table: StateTable,
    fake_clock: ManualClock,
    dynamodb_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a note made no JSON by a hand edit
    dynamodb_client.put_item(
        TableName=state_table.table_name,
        Item=unreadable_value(KEY, LISTED_MEMBERS, {"S": f'{{"accounts": {SECRET}'}),
    )
    # WHEN a run notes its inventory
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        listed = note(state_table, fake_clock, SECOND)
    # THEN it raises nothing (every run of the functions that note would fail), judges as
    # before the note, and logs the key and what is wrong, never the value
    assert listed == ListedMembers(None)
    [record] = caplog.records
    assert (record.getMessage(), record.key) == (  # type: ignore[attr-defined]
        "the member accounts listed before could not be read",
        KEY,
    )
    assert "its data is not JSON" in record.error  # type: ignore[attr-defined]
    assert SECRET not in record.error  # type: ignore[attr-defined]
