"""backup_scheduler: EBS snapshots and DynamoDB backups of tagged resources, with retention.

Every member account and region of the fleet inventory is backed up, a few at a time; backup.py
says what is copied, how copies are tagged and which are deleted. Reference:
docs/functions/backup_scheduler.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.access_episodes import settle_member_access
from fleet_shared.fan_out import NOT_STARTED
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.target_results import run_status
from handlers.backup_scheduler.backup import BackupServices, backup_targets, run_day
from handlers.backup_scheduler.environment import BackupEnvironment
from handlers.backup_scheduler.member_access import BACKUP_ACCESS
from handlers.backup_scheduler.models import BackupRequest

FUNCTION = FleetFunction("backup_scheduler", BackupEnvironment, services=BackupServices.create)


@FUNCTION.handler(BackupRequest)
def handle(
    request: BackupRequest, services: BackupServices, invocation: Invocation
) -> dict[str, Any]:
    """Back up every target of the inventory, apply retention, then alert the members that
    started or stopped denying the backup role (not in a dry run). An inventory that cannot be
    read fails the invocation (the shared layer's InventoryUnreadableError), and so does an
    alert SNS did not take, once everything else is done, so the platform retries the run."""
    environment = services.environment
    dry_run = request.dry_run or environment.fleet_dry_run
    day = run_day(request.run, services.clock.now())
    inventory = services.inventory()
    targets = backup_targets(
        services,
        list(inventory.account_regions()),
        day=day,
        max_workers=environment.backup_max_workers,
        dry_run=dry_run,
        invocation=invocation,
    )
    statuses = [target["status"] for target in targets]
    not_started = [
        {"account_id": t["account_id"], "region": t["region"]}
        for t in targets
        if t["status"] == NOT_STARTED
    ]
    response = {
        "status": run_status(statuses),
        "dry_run": dry_run,
        "created": sum(t.get("created", 0) for t in targets),
        "deleted": sum(t.get("deleted", 0) for t in targets),
        "failed": sum(t.get("failed", 0) for t in targets),
        "unproven": sum(t.get("unproven", 0) for t in targets),
        "not_started": not_started,
        "targets": targets,
    }
    settlement = None
    if not dry_run:
        settlement = settle_member_access(
            BACKUP_ACCESS,
            services.state,
            services.alerts,
            targets,
            now=services.clock.now(),
            deadline=invocation,
            seconds_left=invocation.remaining_seconds,
            calls=services.sessions.unanswered_endpoints.member_calls,
        )
        response["access_alerts"] = settlement.summary()
    totals = {name: value for name, value in response.items() if name != "targets"}
    FUNCTION.logger.info("backup finished", extra={"totals": totals})
    if settlement is not None:
        settlement.raise_undelivered()
    return response


lambda_handler = FUNCTION.lambda_handler
