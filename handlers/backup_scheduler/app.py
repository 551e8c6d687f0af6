"""backup_scheduler: EBS snapshots and DynamoDB backups of tagged resources, with retention.

Event (examples under events/backup_scheduler/): `{"action": "backup"}` (the schedule), with an
optional `"dry_run": true`. Every member account and region of the fleet inventory is backed up,
a few at a time; see backup.py for what is copied, how copies are tagged and which are deleted.
Resources are selected by the tag `backup=daily` or `backup=weekly` (value case-insensitive).

Environment variables:
- STATE_TABLE_NAME (required): the once-a-day record per target and DynamoDB backups' expiry.
- MEMBER_ROLE_NAME (required): the role assumed in each member account.
- DATA_BUCKET_NAME (required): holds the fleet inventory.
- HUB_ACCOUNT_ID: the hub account; STS is asked when unset.
- FLEET_INVENTORY_KEY (default `config/fleet-inventory.json`): the inventory object.
- FLEET_DRY_RUN (default false): when true, report and change nothing (as event `dry_run`).
- BACKUP_DAILY_RETENTION_DAYS (default 7): how long daily copies are kept.
- BACKUP_WEEKLY_RETENTION_DAYS (default 35): how long weekly copies are kept.
- BACKUP_WEEKLY_DAY (default SUN; MON..SUN): the UTC weekday on which weekly copies are made.
- BACKUP_MAX_WORKERS (default 4): targets backed up at once.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import FleetError
from fleet_shared.inventory import load_inventory
from fleet_shared.observability import observability_for
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.backup_scheduler.backup import OK, BackupServices, Retention, backup_targets
from handlers.backup_scheduler.models import BackupRequest
from handlers.backup_scheduler.settings import BackupEnvironment

FUNCTION_NAME = "backup_scheduler"
OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger


@functools.cache
def _environment() -> BackupEnvironment:
    return load_environment(BackupEnvironment)


def build_services(environment: BackupEnvironment, clock: Clock | None = None) -> BackupServices:
    """The hub clients and settings of a run; `clock` decides dates and expiries (tests move it).

    Sessions keep the system clock: assumed credentials expire in real time.
    """
    clock = clock or SystemClock()
    sessions = AccountSessions.from_environment(environment, FUNCTION_NAME, clock=SystemClock())
    return BackupServices(
        sessions=sessions,
        state=StateTable(environment.state_table_name, sessions.hub_client("dynamodb"), clock),
        clock=clock,
        retention=Retention(
            daily=timedelta(days=environment.backup_daily_retention_days),
            weekly=timedelta(days=environment.backup_weekly_retention_days),
            weekly_day=environment.backup_weekly_day,
        ),
    )


@functools.cache
def _services() -> BackupServices:
    return build_services(_environment())


@OBSERVABILITY.handler
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Run the scheduled backup; bad input or configuration gives a `status: error` result."""
    try:
        environment = _environment()
        request = parse_event(BackupRequest, event)
        return handle(request, environment, _services())
    except FleetError as error:
        logger.warning("request refused", extra={"error": str(error)})
        return error_result(error)


def handle(
    request: BackupRequest, environment: BackupEnvironment, services: BackupServices
) -> dict[str, Any]:
    """Back up every target of the inventory and apply retention."""
    dry_run = request.dry_run or environment.fleet_dry_run
    inventory = load_inventory(
        services.sessions.hub_client("s3"),
        environment.data_bucket_name,
        environment.fleet_inventory_key,
    )
    targets = backup_targets(
        services,
        list(inventory.account_regions()),
        max_workers=environment.backup_max_workers,
        dry_run=dry_run,
    )
    response = {
        "status": "ok" if all(t["status"] == OK for t in targets) else "partial",
        "dry_run": dry_run,
        "created": sum(t.get("created", 0) for t in targets),
        "deleted": sum(t.get("deleted", 0) for t in targets),
        "failed": sum(t.get("failed", 0) for t in targets),
        "targets": targets,
    }
    totals = {name: value for name, value in response.items() if name != "targets"}
    logger.info("backup finished", extra={"totals": totals})
    return response
