"""cleanup_manager: stale EBS snapshots, unattached volumes and old Lambda versions, with notice.

Event (examples under events/cleanup_manager/): `{"action": "cleanup"}` (the schedule), with an
optional `"dry_run": true`. Every member account and region of the fleet inventory is cleaned,
a few at a time; see cleanup.py for the mark / pending / delete / spare decision and
candidates.py for what a candidate is. The first run that finds a candidate marks it with a
deletion date (tag `lambda-fleet:delete-after` on snapshots and volumes, the state table for
Lambda versions) and raises one warning alert per account; a run on or after that date deletes it
if it is still a candidate, and a marked resource that is no longer a candidate is spared.

Environment variables:
- STATE_TABLE_NAME (required): the Lambda version marks, per target.
- MEMBER_ROLE_NAME (required): the role assumed in each member account.
- DATA_BUCKET_NAME (required): holds the fleet inventory.
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_CRITICAL_ARN, ALERT_TOPIC_INFO_ARN: alert topics.
- HUB_ACCOUNT_ID: the hub account; STS is asked when unset.
- FLEET_INVENTORY_KEY (default `config/fleet-inventory.json`): the inventory object.
- FLEET_DRY_RUN (default false): when true, report and change nothing (as event `dry_run`).
- CLEANUP_SNAPSHOT_MAX_AGE_DAYS (default 30): snapshots at least this old are candidates.
- CLEANUP_VOLUME_MIN_AGE_DAYS (default 7): unattached volumes created at least this long ago are
  candidates (EC2 does not record when a volume was detached).
- CLEANUP_KEEP_LAMBDA_VERSIONS (default 3): newest published versions kept per function.
- CLEANUP_NOTICE_DAYS (default 7): days between the mark and the deletion.
- CLEANUP_KEEP_TAG (default `keep`): a snapshot or volume tagged `<tag>=true` is never a candidate.
- CLEANUP_MAX_WORKERS (default 4): targets cleaned at once.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from fleet_shared.alerts import AlertPublisher
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import FleetError
from fleet_shared.inventory_store import load_inventory
from fleet_shared.observability import observability_for
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.cleanup_manager.candidates import Policy
from handlers.cleanup_manager.cleanup import (
    DENIED,
    FAILED,
    PARTIAL,
    CleanupServices,
    TargetResult,
    clean_targets,
    publish_notices,
)
from handlers.cleanup_manager.models import CleanupRequest
from handlers.cleanup_manager.settings import CleanupEnvironment

FUNCTION_NAME = "cleanup_manager"
OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger


@functools.cache
def _environment() -> CleanupEnvironment:
    return load_environment(CleanupEnvironment)


def build_services(environment: CleanupEnvironment, clock: Clock | None = None) -> CleanupServices:
    """The hub clients and settings of a run; `clock` decides ages and dates (tests move it).

    Sessions keep the system clock: assumed credentials expire in real time, whatever date the
    cleanup logic is told it is.
    """
    clock = clock or SystemClock()
    sessions = AccountSessions.from_environment(environment, FUNCTION_NAME, clock=SystemClock())
    return CleanupServices(
        sessions=sessions,
        state=StateTable(environment.state_table_name, sessions.hub_client("dynamodb"), clock),
        clock=clock,
        publisher=AlertPublisher(sessions.hub_client("sns"), environment),
        policy=Policy(
            snapshot_max_age=timedelta(days=environment.cleanup_snapshot_max_age_days),
            volume_min_age=timedelta(days=environment.cleanup_volume_min_age_days),
            keep_lambda_versions=environment.cleanup_keep_lambda_versions,
            keep_tag=environment.cleanup_keep_tag,
        ),
        notice=timedelta(days=environment.cleanup_notice_days),
    )


@functools.cache
def _services() -> CleanupServices:
    return build_services(_environment())


@OBSERVABILITY.handler
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Run the scheduled cleanup; bad input or configuration gives a `status: error` result."""
    try:
        environment = _environment()
        request = parse_event(CleanupRequest, event)
        return handle(request, environment, _services())
    except FleetError as error:
        logger.warning("request refused", extra={"error": str(error)})
        return error_result(error)


def handle(
    request: CleanupRequest, environment: CleanupEnvironment, services: CleanupServices
) -> dict[str, Any]:
    """Clean every target of the inventory and alert per account about new marks."""
    dry_run = request.dry_run or environment.fleet_dry_run
    inventory = load_inventory(
        services.sessions.hub_client("s3"),
        environment.data_bucket_name,
        environment.fleet_inventory_key,
    )
    results = clean_targets(
        services,
        list(inventory.account_regions()),
        max_workers=environment.cleanup_max_workers,
        dry_run=dry_run,
    )
    alerts = 0 if dry_run else publish_notices(results, services)
    response = _summary(results, dry_run, alerts)
    totals = {name: value for name, value in response.items() if name != "targets"}
    logger.info("cleanup finished", extra={"totals": totals})
    return response


def _summary(results: list[TargetResult], dry_run: bool, alerts: int) -> dict[str, Any]:
    targets = [result.summary() for result in results]
    ok = all(result.status not in (DENIED, FAILED, PARTIAL) for result in results)
    return {
        "status": "ok" if ok else "partial",
        "dry_run": dry_run,
        "candidates": sum(t["candidates"] for t in targets),
        "marked": sum(t["marked"] for t in targets),
        "deleted": sum(t["deleted"] for t in targets),
        "spared": sum(t["spared"] for t in targets),
        "failed": sum(t["failed"] for t in targets),
        "alerts": alerts,
        "targets": targets,
    }
