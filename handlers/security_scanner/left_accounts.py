"""The findings of accounts that left the inventory: archived once, their saved states dropped.

A target is scanned only while the inventory lists its account, and only a scan of the target
archives its findings (`scan.scan_target`): an account removed from the stack file left its
findings ACTIVE in Security Hub for ever, and its states in the state table. So each scheduled
scan, once it has read the inventory, reads the index of the targets with saved states
(`saved_targets`), and for every account the inventory does not list imports each finding its
states hold again, archived as a fixed one is (`RecordState = ARCHIVED`, in the hub's Security
Hub where the scans imported it, 100 a call), with `Compliance.Status = NOT_AVAILABLE` since
it was not fixed but is no longer checked; then drops its states (their undelivered alerts too:
the account is gone) and its index entries, so the next run finds nothing to do.

The states saved before the index existed are not in it: a scheduled scan that finds no mark of
them having been indexed (`EARLIER_STATES_KEY`) looks for them with a Scan of the state table
(`fleet_shared.earlier_values`), notes those it finds, and saves the mark once the Scan has
reached the table's end, so an account that left before the upgrade, or in the upgrading
deployment, is archived too, and no later run scans the table again. The Scan may take
EARLIER_STATES_TIME_SHARE of the time the invocation has when its first page ends, page by page:
on a table too large for that it stops, keeps where it stopped (EARLIER_STATES_PROGRESS), and the
next run goes on from there, so the fleet is scanned in every run and a large table never makes
every run end at Lambda's timeout.

An inventory that cannot be read fails the run before this (never "every account left"); an
index that cannot be read archives nothing and is reported. An account whose states cannot be
read, or whose archive Security Hub or the state table refuses, is reported `failed` with its
states and index entries kept, so the next run tries it again, and the other accounts go on.
A dry run reports what it would archive and changes nothing.

Its cost is bounded as a target's is: Security Hub and the state table are each given up for the
invocation after one call they leave unanswered (29 s and 13 s), after which every later
account fails at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.earlier_values import (
    PROGRESS,
    SEARCHED,
    SearchTime,
    earlier_keys,
    save_search,
)
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.inventory import FleetInventory
from fleet_shared.observability import observability_for
from fleet_shared.target_results import FAILED
from handlers.security_scanner.exceptions import SecurityHubImportError, UnreadableScanStateError
from handlers.security_scanner.findings import Finding, iso_timestamp
from handlers.security_scanner.saved_targets import (
    SAVED_TARGETS_KEY,
    SavedTarget,
    forget_saved_target,
    note_saved_target,
    saved_targets,
)
from handlers.security_scanner.scan import (
    NOT_SCANNED_LISTED,
    SOURCE,
    STATE_NAME,
    ScanServices,
    saved_state,
    state_key,
)
from handlers.security_scanner.security_hub import import_findings

ARCHIVED = "archived"
WOULD_ARCHIVE = "would_archive"
"""A dry run's status of a left account: what a run would archive, nothing changed."""
FINDING_IDS_LISTED = NOT_SCANNED_LISTED
"""How many of a left account's finding ids its report names (all are counted)."""

EARLIER_STATES_KEY = f"{SAVED_TARGETS_KEY}/earlier-states"
EARLIER_STATES_INDEXED = SEARCHED
"""The mark, under EARLIER_STATES_KEY, that the states saved before the index are in it."""
EARLIER_STATES_PROGRESS = PROGRESS
"""Under EARLIER_STATES_KEY, until the mark: the state table key the last search stopped after."""
EARLIER_STATES_TIME_SHARE = 0.25
"""The share of the invocation's time left at its start that the search for earlier states may
take; the rest is the fleet scan's."""
EARLIER_STATES_PAGE_ITEMS = 1000
"""Items a page of that Scan evaluates at most: the time left is checked at least this often."""
SEARCHING = "searching"
"""The report of a search for earlier states that stopped for time and goes on next run."""

logger = observability_for(SOURCE).logger


def archive_left_accounts(
    services: ScanServices,
    inventory: FleetInventory,
    *,
    dry_run: bool,
    seconds_left: Callable[[], float],
) -> list[dict[str, Any]]:
    """Archive the findings of every account with saved states that `inventory` does not list,
    and drop its states (only report them with `dry_run`); one report per such account, in
    account order, or one `failed` report naming no account when the index cannot be read, and
    a `searching` one while the search for states saved before the index goes on (it stopped
    for time, `seconds_left` being the invocation's)."""
    try:
        search_time = SearchTime(seconds_left, EARLIER_STATES_TIME_SHARE)
        noted, searched_to_end = _noted_targets(services, dry_run=dry_run, go_on=search_time.go_on)
    except (*AWS_CALL_ERRORS, UnreadableStateValueError) as error:
        logger.warning(
            "the targets with saved findings could not be read", extra={"error": repr(error)}
        )
        shown = call_error_text(error)
        return [{"status": FAILED, "error": f"targets with saved findings unread: {shown}"}]
    left: dict[str, list[SavedTarget]] = {}
    for target in noted:
        if inventory.member(target.account_id) is None:
            left.setdefault(target.account_id, []).append(target)
    reports = [
        _archive_account(services, account_id, targets, dry_run=dry_run)
        for account_id, targets in sorted(left.items())
    ]
    for report in reports:
        if report["status"] == FAILED:
            logger.warning("the findings of an account that left were not archived", extra=report)
        else:
            logger.info("the findings of an account that left", extra=report)
    if not searched_to_end:
        searching = {
            "status": SEARCHING,
            "detail": "the search for findings saved before the index stopped for time; the "
            "next run goes on with it",
        }
        logger.info("the search for earlier states goes on next run", extra=searching)
        reports.append(searching)
    return reports


def _noted_targets(
    services: ScanServices, *, dry_run: bool, go_on: Callable[[], bool]
) -> tuple[list[SavedTarget], bool]:
    """The targets of the index, with those whose states were saved before it existed, found
    by a Scan of the state table (from where the last one stopped, while `go_on`) and noted
    (only read with `dry_run`); and whether that search has reached the table's end. Raises the
    state table's errors when the index, the mark, the progress or the Scan cannot be read."""
    noted = saved_targets(services.state)
    found = earlier_keys(
        services.state,
        EARLIER_STATES_KEY,
        value_name=STATE_NAME,
        key_prefix=f"{SOURCE}/",
        page_items=EARLIER_STATES_PAGE_ITEMS,
        go_on=go_on,
    )
    if found is None:
        return noted, True
    earlier = [
        target
        for key in found.keys
        if (target := _saved_target_of(key)) is not None and target not in noted
    ]
    if not dry_run:
        for target in earlier:
            note_saved_target(services.state, target)
        save_search(services.state, EARLIER_STATES_KEY, found, iso_timestamp(services.clock.now()))
    targets = sorted([*noted, *earlier], key=lambda target: target.name)
    return targets, found.searched_to_end


def _saved_target_of(key: str) -> SavedTarget | None:
    """The target whose state is saved under `key` (`scan.state_key`); None for a key of
    another record that holds a value of the same name."""
    parts = key.split("/")
    if len(parts) != 3 or not (len(parts[1]) == 12 and parts[1].isascii() and parts[1].isdigit()):
        return None
    target = SavedTarget(parts[1], parts[2])
    return target if parts[2] and state_key(target.account_id, target.region) == key else None


def _archive_account(
    services: ScanServices, account_id: str, targets: list[SavedTarget], *, dry_run: bool
) -> dict[str, Any]:
    """Archive the findings saved under `targets`, all of `account_id`, then drop them."""
    report: dict[str, Any] = {
        "account_id": account_id,
        "regions": [target.region for target in targets],
    }
    try:
        findings = _saved_findings(services, targets)
    except (*AWS_CALL_ERRORS, UnreadableStateValueError, UnreadableScanStateError) as error:
        return {**report, "status": FAILED, "error": call_error_text(error)}
    report["finding_ids"] = [finding.id for finding in findings[:FINDING_IDS_LISTED]]
    if dry_run:
        return {**report, "status": WOULD_ARCHIVE, "findings": len(findings)}
    try:
        import_findings(
            services.security_hub,
            hub_account_id=services.sessions.hub_account_id,
            hub_region=services.sessions.home_region,
            now=services.clock.now(),
            findings=findings,
            new_ids=set(),
        )
    except (SecurityHubImportError, *AWS_CALL_ERRORS) as error:
        shown = call_error_text(error)
        return {**report, "status": FAILED, "error": f"Security Hub import failed: {shown}"}
    try:
        for target in targets:
            services.state.delete_value(state_key(account_id, target.region), STATE_NAME)
            forget_saved_target(services.state, target)
    except AWS_CALL_ERRORS as error:
        # Archived, but some states kept: the next run archives their findings again (the same
        # archived findings, nothing new) and drops them.
        shown = call_error_text(error)
        return {**report, "status": FAILED, "error": f"saved findings not dropped: {shown}"}
    return {**report, "status": ARCHIVED, "findings": len(findings)}


def _saved_findings(services: ScanServices, targets: list[SavedTarget]) -> list[Finding]:
    """The findings saved under `targets`, marked as their account's having left, in id order
    (once each: an earlier version kept the global ones in the first region's state too).
    Raises UnreadableScanStateError, or the state table's errors, when a state cannot be read."""
    findings: dict[str, Finding] = {}
    for target in targets:
        state = saved_state(services, state_key(target.account_id, target.region))
        findings.update(state.findings)
    return [findings[finding_id].account_left() for finding_id in sorted(findings)]
