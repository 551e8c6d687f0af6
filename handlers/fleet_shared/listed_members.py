"""The member accounts a function has seen listed in the fleet inventory: "left" is listed before
and not now.

A function resolves what it follows in an account the inventory does not list as "the account
left the fleet" (its member role is gone with it). But in the `pulumi up` that adds a member, an
event the member forwards may reach the hub before the inventory lists it: the account has not
arrived yet, and resolving its alarm's episode or incident at the next run closed a live one.
So each run (and each event that reads the inventory) notes the accounts its inventory lists, in
one state table value; an account it does not list has left only when noted before. An account
that stops being listed keeps its entry, with when it was first found missing, for `keep_seconds`
(long enough for its resolutions to go out, retried run after run): the value holds the fleet's
members and those that left lately, one entry each.

The value is written only when the accounts listed change, each write conditional on what was
read (two runs at once apply their notes again on what the other saved). A value that cannot be
read or saved is logged and the run goes on: unread, it judges as before the value existed
(`ListedMembers.has_left`); unsaved, the next run notes the accounts again. Before a function's
first note (an upgrade from a version without it), every account the inventory does not list is
taken as one that left, as it was then, so a member removed in the upgrading deployment is still
resolved at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.inventory import FleetInventory
from fleet_shared.state_table import StateTable, VersionedValue
from fleet_shared.timestamps import iso_z, parse_iso

LISTED_MEMBERS = "listed_members"
"""The value's name under the function's key."""
NOTE_ATTEMPTS = 3
"""Tries to save the note against another run saving it at the same time; the next run notes the
accounts again if all fail."""


@dataclass(frozen=True)
class ListedMembers:
    """The accounts noted as listed before this run, each with when it was first found missing
    from the inventory (None while it is listed); `accounts` None: never noted (or unreadable)."""

    accounts: dict[str, str | None] | None

    def has_left(self, account_id: str, inventory: FleetInventory) -> bool:
        """Whether `account_id` left the fleet: `inventory` does not list it and it was listed
        before (or nothing was ever noted, as before the note existed). An account never noted
        has not arrived yet: the inventory will list it."""
        if inventory.member(account_id) is not None:
            return False
        return self.accounts is None or account_id in self.accounts


def note_listed_members(
    table: StateTable,
    key: str,
    inventory: FleetInventory,
    *,
    now: datetime,
    keep_seconds: int,
    logger: Any,
) -> ListedMembers:
    """Note the accounts `inventory` lists under `key`, keeping those it no longer lists for
    `keep_seconds` after they were first found missing; the note as it was before (what this
    run judges "left" by, `ListedMembers.has_left`)."""
    try:
        read = table.get_versioned_value(key, LISTED_MEMBERS)
    except (*AWS_CALL_ERRORS, UnreadableStateValueError) as error:
        # An unreadable note is kept for a person to see: judged as none, as when DynamoDB
        # fails, rather than failing every run that reads it.
        logger.warning(
            "the member accounts listed before could not be read",
            extra={"key": key, "error": repr(error)},
        )
        return ListedMembers(None)
    before = ListedMembers(_accounts_of(read))
    try:
        for _ in range(NOTE_ATTEMPTS):
            noted = _noted(_accounts_of(read) or {}, inventory, now, keep_seconds)
            if read is not None and noted == _accounts_of(read):
                break
            value = {"accounts": noted}
            if table.replace_value(key, LISTED_MEMBERS, value, read=read):
                break
            read = table.get_versioned_value(key, LISTED_MEMBERS)
        else:
            logger.warning("the member accounts listed were not saved", extra={"key": key})
    except AWS_CALL_ERRORS as error:
        logger.warning(
            "the member accounts listed could not be saved",
            extra={"key": key, "error": repr(error)},
        )
    return before


def _accounts_of(read: VersionedValue | None) -> dict[str, str | None] | None:
    """The accounts of a saved note; None when there is none, or it holds no accounts."""
    accounts = read.value.get("accounts") if read is not None else None
    return dict(accounts) if isinstance(accounts, dict) else None


def _noted(
    accounts: dict[str, str | None], inventory: FleetInventory, now: datetime, keep_seconds: int
) -> dict[str, str | None]:
    """`accounts` with those `inventory` lists (None: listed), those it no longer lists marked
    missing since `now` (or since they first were), and those missing for `keep_seconds` gone."""
    listed = {member.account_id for member in inventory.members}
    noted: dict[str, str | None] = dict.fromkeys(sorted(listed))
    for account_id, missing_since in sorted(accounts.items()):
        if account_id in listed:
            continue
        since = missing_since if isinstance(missing_since, str) else iso_z(now)
        if now - parse_iso(since) < timedelta(seconds=keep_seconds):
            noted[account_id] = since
    return noted
