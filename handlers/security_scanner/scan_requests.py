"""Answering scan requests: the whole fleet (directly, or fanned out to the queue), or one target.

The schedule's `scan` covers every member account and region of the inventory; above
SCAN_MAX_TARGETS_PER_INVOCATION targets it sends one `scan_target` message per target to the
scanner's own queue instead, each target once per run however often the platform retries it
(`_fan_out`). Global services are scanned in each account's first region only. Before either,
it archives the findings of the accounts that left the inventory (`left_accounts`).

A direct scan starts a target only while the invocation has SCAN_TARGET_SECONDS left beyond
HUNG_ENDPOINTS_SECONDS (what its endpoints, the member's and the hub's, take when they never
answer) and REPORT_SECONDS (the run's report after it): Lambda would end it mid-target, or end
the run before its report, otherwise, and the run's retry would stop at the same place. The
targets left are answered `not_started` and remembered in the order the scan came to them, and
the next direct scan starts with them in that order, so they take turns
(fleet_shared.targets_left; the list only orders the scan: one that cannot be read or saved is
logged, and the scan goes on). A target's findings and outbox are its own state, so a target not
scanned loses and repeats nothing: its next scan compares with its last one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError
from fleet_shared.exceptions import ConfigurationError, EventValidationError
from fleet_shared.fan_out import NOT_STARTED, TimeBudget
from fleet_shared.handler import Invocation
from fleet_shared.inventory import FleetInventory
from fleet_shared.observability import observability_for
from fleet_shared.target_results import FAILED, PARTIAL, run_status
from fleet_shared.targets_left import StoredTarget, TargetsLeftList, in_turn_order
from handlers.security_scanner.exceptions import FanOutIncompleteError
from handlers.security_scanner.left_accounts import archive_left_accounts
from handlers.security_scanner.models import ScanRequest, ScanTargetRequest
from handlers.security_scanner.scan import (
    HUNG_ENDPOINTS_SECONDS,
    REPORT_SECONDS,
    SOURCE,
    ScanDeadline,
    ScanServices,
    TargetResult,
    report_document,
    scan_target,
    scan_targets,
    write_report,
)

SQS_BATCH_LIMIT = 10
FAN_OUT_RECORD = "fan_out"
FAN_OUT_RECORD_FIELD = "sent"
FAN_OUT_RECORD_SECONDS = 24 * 3600
"""How long a run's record of the targets it sent is kept: longer than the platform retries the
run (within the hour it keeps an asynchronous event)."""
ERROR_CHARS = 200
"""The most of a send's error a `FanOutIncompleteError` repeats."""
TARGETS_LEFT = TargetsLeftList(f"{SOURCE}/direct-scan", "targets")
"""Where the targets a direct scan left for lack of time are kept, for the next one."""
logger = observability_for(SOURCE).logger

Target = tuple[str, str, tuple[str, ...]]
"""(account, region, the member's regions)"""


def scan_fleet(
    request: ScanRequest, services: ScanServices, invocation: Invocation
) -> dict[str, Any]:
    """Scan every target of the inventory, or fan out when there are too many for one run.

    The targets the last direct scan did not start go first, in the order it came to them; a
    target is started only while the invocation has SCAN_TARGET_SECONDS, HUNG_ENDPOINTS_SECONDS
    and REPORT_SECONDS left, the others are listed under `not_started` and saved, in the
    order this scan came to them, for the next one (fleet_shared.targets_left): so the targets
    left over take turns. The alerts' delivery claims are bound to the invocation.
    """
    environment = services.environment
    inventory = services.inventory()
    targets = _targets(inventory)
    left_accounts = archive_left_accounts(
        services, inventory, dry_run=request.dry_run, seconds_left=invocation.remaining_seconds
    )
    if len(targets) > environment.scan_max_targets_per_invocation:
        fanned_out = _fan_out(targets, request.dry_run, services, invocation.request_id)
        return _with_left_accounts(fanned_out, left_accounts, direct=False)
    left_before = TARGETS_LEFT.read(services.state, logger)
    in_turn = in_turn_order(targets, left_before, _stored_form)
    budget = TimeBudget(
        invocation,
        environment.scan_target_seconds + HUNG_ENDPOINTS_SECONDS + REPORT_SECONDS,
        _not_started,
    )
    scanned = scan_targets(
        services,
        in_turn,
        max_workers=environment.scan_max_workers,
        dry_run=request.dry_run,
        deadline=invocation,
        budget=budget,
    )
    # Reported in inventory order, whatever order they were scanned in.
    by_target = {(result.account_id, result.region): result for result in scanned}
    results = [by_target[target[:2]] for target in targets]
    not_started = [
        {"account_id": result.account_id, "region": result.region}
        for result in results
        if result.status == NOT_STARTED
    ]
    now = services.clock.now()
    response = _with_left_accounts(
        _summary(results, request.dry_run, mode="direct"), left_accounts, direct=True
    )
    if not_started:
        response["not_started"] = not_started
    if not request.dry_run:
        left = [
            _stored_form(target)
            for target, result in zip(in_turn, scanned, strict=True)
            if result.status == NOT_STARTED
        ]
        TARGETS_LEFT.save(services.state, left, left_before, logger)
        key = f"reports/security/{_report_day(now, services)}/findings.json"
        response["report_key"] = write_report(services, key, report_document(results, now))
    return response


def scan_one(
    request: ScanTargetRequest,
    services: ScanServices,
    inventory: FleetInventory,
    deadline: ScanDeadline | None,
) -> dict[str, Any]:
    """Scan one target of the inventory; raises `EventValidationError` for any other."""
    member = inventory.member(request.account_id)
    if member is None or request.region not in member.regions:
        raise EventValidationError(
            "account_id",
            f"{request.account_id}/{request.region} is not a member account and region of the "
            "fleet inventory",
        )
    result = scan_target(
        services,
        request.account_id,
        request.region,
        member_regions=member.regions,
        dry_run=request.dry_run,
        deadline=deadline,
    )
    response = _summary([result], request.dry_run, mode="target")
    if not request.dry_run and result.status != FAILED:
        now = services.clock.now()
        key = (
            f"reports/security/{_report_day(now, services)}/targets/"
            f"{request.account_id}-{request.region}.json"
        )
        response["report_key"] = write_report(services, key, report_document([result], now))
    return response


def _with_left_accounts(
    response: dict[str, Any], left_accounts: list[dict[str, Any]], *, direct: bool
) -> dict[str, Any]:
    """`response` with the reports of the accounts that left (`left_accounts`), when there
    are any; a `direct` scan's is `partial` when one of them failed (a fan-out's stays
    `fanned_out`, which says its targets were queued)."""
    if not left_accounts:
        return response
    if direct and any(report["status"] == FAILED for report in left_accounts):
        response = {**response, "status": PARTIAL}
    return {**response, "left_accounts": left_accounts}


def _not_started(target: Target) -> TargetResult:
    """The result of a target left for the next run because time was running out."""
    account_id, region, _ = target
    return TargetResult(account_id, region, NOT_STARTED)


def _stored_form(target: Target) -> StoredTarget:
    """A target as the list of those left keeps it."""
    account_id, region, _ = target
    return {"account_id": account_id, "region": region}


def _report_day(now: datetime, services: ScanServices) -> str:
    """The date in the stack's schedule time zone: a report's folder is the owner's day."""
    return now.astimezone(ZoneInfo(services.environment.schedule_time_zone)).date().isoformat()


def _targets(inventory: FleetInventory) -> list[Target]:
    """(account, region, the member's regions) for every member account and region."""
    return [
        (member.account_id, region, member.regions)
        for member in inventory.members
        for region in member.regions
    ]


def _fan_out(
    targets: list[Target], dry_run: bool, services: ScanServices, run_id: str
) -> dict[str, Any]:
    """Send one `scan_target` message per target to the scan queue, except the targets an
    earlier attempt of this run (`run_id`: the invocation's request id, which Lambda keeps when
    it retries an invocation) sent already.

    A batch SQS refuses or does not answer (given up after one such call, `FAN_OUT_CALL_CONFIG`),
    and an entry its answer does not list (a proxy's page lists none), costs only its targets;
    the others are still sent. The targets sent are recorded under the run, and then the run
    fails naming those not sent (`FanOutIncompleteError`), so the platform's retry sends them
    and nothing twice. A record the state table does not take fails
    the run too: its retry sends those targets again, and a target queued twice is scanned twice,
    its second scan finding nothing new.
    """
    environment = services.environment
    queue_url = environment.scan_queue_url
    if not queue_url:
        raise ConfigurationError(
            "SCAN_QUEUE_URL",
            f"is required to fan out {len(targets)} targets (more than "
            f"SCAN_MAX_TARGETS_PER_INVOCATION={environment.scan_max_targets_per_invocation})",
        )
    record_key = f"{SOURCE}/fan-out/{run_id}"
    recorded = services.state.get_value(record_key, FAN_OUT_RECORD)
    sent_before: list[dict[str, str]] = list((recorded or {}).get(FAN_OUT_RECORD_FIELD, []))
    already = {(target["account_id"], target["region"]) for target in sent_before}
    to_send = [target for target in targets if target[:2] not in already]
    sent: list[Target] = []
    failed: list[tuple[Target, str]] = []
    for start in range(0, len(to_send), SQS_BATCH_LIMIT):
        chunk = to_send[start : start + SQS_BATCH_LIMIT]
        entries = [
            {
                "Id": str(index),
                "MessageBody": json.dumps(
                    {
                        "action": "scan_target",
                        "account_id": account_id,
                        "region": region,
                        "dry_run": dry_run,
                    }
                ),
            }
            for index, (account_id, region, _) in enumerate(chunk)
        ]
        try:
            response = services.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except AWS_CALL_ERRORS as error:
            failed += [(target, str(error)) for target in chunk]
            continue
        taken = {
            index
            for entry in response.get("Successful", [])
            if (index := _entry_index(entry)) is not None
        }
        refused = {
            index: str(failure.get("Message", ""))
            for failure in response.get("Failed", [])
            if (index := _entry_index(failure)) is not None
        }
        for index, target in enumerate(chunk):
            if index in taken:
                sent.append(target)
            elif index in refused:
                failed.append((target, refused[index]))
            else:
                # SQS answers for every entry: one it left out (a proxy's page answered for
                # none) was not taken, and passing it over would leave its target unscanned.
                unanswered = UnreadableAnswerError("SendMessageBatch", f"entry {index}", response)
                failed.append((target, str(unanswered)))
    if sent:
        services.state.put_value(
            record_key,
            FAN_OUT_RECORD,
            {
                FAN_OUT_RECORD_FIELD: sent_before
                + [{"account_id": account_id, "region": region} for account_id, region, _ in sent]
            },
            ttl_seconds=FAN_OUT_RECORD_SECONDS,
        )
    if failed:
        not_sent = [f"{account_id}/{region}" for (account_id, region, _), _ in failed]
        logger.error(
            "targets not sent to the scan queue",
            extra={"not_sent": not_sent, "sent": len(sent), "error": failed[0][1]},
        )
        raise FanOutIncompleteError(not_sent, len(targets), failed[0][1][:ERROR_CHARS])
    return {
        "status": "fanned_out",
        "targets": len(targets),
        "messages_sent": len(sent),
        "sent_before": len(targets) - len(to_send),
        "dry_run": dry_run,
    }


def _summary(results: list[TargetResult], dry_run: bool, *, mode: str) -> dict[str, Any]:
    """The scan's answer: `partial` when a target failed, was denied, or was scanned with a
    resource type or resource it could not read (listed under the target's `errors`)."""
    incomplete = any(result.errors for result in results)
    return {
        "status": PARTIAL if incomplete else run_status([result.status for result in results]),
        "mode": mode,
        "dry_run": dry_run,
        "findings": sum(len(r.findings) for r in results),
        "new": sum(len(r.new) for r in results),
        "resolved": sum(len(r.resolved) for r in results),
        "targets": [result.summary() for result in results],
    }


def _entry_index(entry: object) -> int | None:
    """The index a SendMessageBatch answer's entry (of `Successful` or `Failed`) gives as its
    `Id`; None for one that gives none. botocore hands a JSON answer's list items and text on
    unchecked: a null entry, or an Id that is no index, raised a bare TypeError or ValueError
    that ended the fan-out before it recorded the batches SQS took (the retry sent them again).
    Its entry is then one SQS's answer left out, whose target is not sent."""
    if not isinstance(entry, Mapping):
        return None
    identifier = entry.get("Id")
    if not isinstance(identifier, str) or not (identifier.isascii() and identifier.isdigit()):
        return None
    return int(identifier)
