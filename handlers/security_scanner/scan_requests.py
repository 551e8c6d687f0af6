"""Answering scan requests: the whole fleet (directly, or fanned out to the queue), or one target.

The schedule's `scan` covers every member account and region of the inventory; above
SCAN_MAX_TARGETS_PER_INVOCATION targets it sends one `scan_target` message per target to the
scanner's own queue instead. Global services are scanned in each account's first region only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fleet_shared.exceptions import ConfigurationError, EventValidationError
from fleet_shared.inventory import FleetInventory
from fleet_shared.target_results import FAILED, PARTIAL, run_status
from handlers.security_scanner.models import ScanRequest, ScanTargetRequest
from handlers.security_scanner.scan import (
    ScanServices,
    TargetResult,
    report_document,
    scan_target,
    scan_targets,
    write_report,
)

SQS_BATCH_LIMIT = 10


def scan_fleet(request: ScanRequest, services: ScanServices) -> dict[str, Any]:
    """Scan every target of the inventory, or fan out when there are too many for one run."""
    environment = services.environment
    targets = _targets(services.inventory())
    if len(targets) > environment.scan_max_targets_per_invocation:
        return _fan_out(targets, request.dry_run, services)
    results = scan_targets(
        services,
        targets,
        max_workers=environment.scan_max_workers,
        dry_run=request.dry_run,
    )
    now = services.clock.now()
    response = _summary(results, request.dry_run, mode="direct")
    if not request.dry_run:
        key = f"reports/security/{_report_day(now, services)}/findings.json"
        response["report_key"] = write_report(services, key, report_document(results, now))
    return response


def scan_one(
    request: ScanTargetRequest, services: ScanServices, inventory: FleetInventory
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
        include_global=request.region == member.regions[0],
        dry_run=request.dry_run,
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


def _report_day(now: datetime, services: ScanServices) -> str:
    """The date in the stack's schedule time zone: a report's folder is the owner's day."""
    return now.astimezone(ZoneInfo(services.environment.schedule_time_zone)).date().isoformat()


def _targets(inventory: FleetInventory) -> list[tuple[str, str, bool]]:
    """(account, region, include_global) for every member account and region."""
    return [
        (member.account_id, region, index == 0)
        for member in inventory.members
        for index, region in enumerate(member.regions)
    ]


def _fan_out(
    targets: list[tuple[str, str, bool]], dry_run: bool, services: ScanServices
) -> dict[str, Any]:
    environment = services.environment
    queue_url = environment.scan_queue_url
    if not queue_url:
        raise ConfigurationError(
            "SCAN_QUEUE_URL",
            f"is required to fan out {len(targets)} targets (more than "
            f"SCAN_MAX_TARGETS_PER_INVOCATION={environment.scan_max_targets_per_invocation})",
        )
    sent = 0
    failed: list[dict[str, str]] = []
    for start in range(0, len(targets), SQS_BATCH_LIMIT):
        chunk = targets[start : start + SQS_BATCH_LIMIT]
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
        response = services.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent += len(response.get("Successful", []))
        for failure in response.get("Failed", []):
            account_id, region, _ = chunk[int(failure["Id"])]
            failed.append(
                {"account_id": account_id, "region": region, "error": failure.get("Message", "")}
            )
    return {
        "status": "fanned_out" if not failed else "partial",
        "targets": len(targets),
        "messages_sent": sent,
        "failed": failed,
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
