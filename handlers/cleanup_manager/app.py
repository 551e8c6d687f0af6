"""cleanup_manager: stale EBS snapshots, unattached volumes and old Lambda versions, with notice.

Every member account and region of the fleet inventory is cleaned, a few at a time; cleanup.py
holds the mark / pending / delete / spare decision and candidates.py what a candidate is.
Reference: docs/functions/cleanup_manager.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.access_episodes import settle_member_access
from fleet_shared.fan_out import NOT_STARTED
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.target_results import run_status
from handlers.cleanup_manager.cleanup import CleanupServices, announce_marks, clean_targets
from handlers.cleanup_manager.environment import CleanupEnvironment
from handlers.cleanup_manager.member_access import CLEANUP_ACCESS
from handlers.cleanup_manager.models import CleanupRequest

FUNCTION = FleetFunction("cleanup_manager", CleanupEnvironment, services=CleanupServices.create)


@FUNCTION.handler(CleanupRequest)
def handle(
    request: CleanupRequest, services: CleanupServices, invocation: Invocation
) -> dict[str, Any]:
    """Clean every target of the inventory, alert the members that started or stopped denying
    the cleanup role, then announce the marks per account and date (neither in a dry run); a
    notice or access alert SNS refuses fails the invocation after the marks are made, so its
    retry sends it, and an inventory that cannot be read fails it (the shared layer's
    InventoryUnreadableError), so the platform retries the run. The targets leave the settling
    and the notices their time (cleanup.AFTER_TARGETS_SECONDS); what finds too little left is
    left for the next run, which settles it and rebuilds the notices from the pending marks."""
    environment = services.environment
    dry_run = request.dry_run or environment.fleet_dry_run
    inventory = services.inventory()
    results = clean_targets(
        services,
        list(inventory.account_regions()),
        max_workers=environment.cleanup_max_workers,
        dry_run=dry_run,
        deadline=invocation,
    )
    settlement = None
    sent = 0
    if not dry_run:
        # Before the notices, whose failure fails the invocation: an access alert not sent
        # leaves its episode as it was, for the retry.
        settlement = settle_member_access(
            CLEANUP_ACCESS,
            services.state,
            services.alerts,
            [result.summary() for result in results],
            now=services.clock.now(),
            deadline=invocation,
            seconds_left=invocation.remaining_seconds,
            calls=services.sessions.unanswered_endpoints.member_calls,
        )
        sent = announce_marks(
            results, services, invocation, seconds_left=invocation.remaining_seconds
        )
    # After the notices: one not sent (its record unreadable, or no time left for it) is
    # reported on its account's first target.
    targets = [result.summary() for result in results]
    not_started = [
        {"account_id": result.account_id, "region": result.region}
        for result in results
        if result.status == NOT_STARTED
    ]
    response = {
        "status": run_status([result.status for result in results]),
        "dry_run": dry_run,
        "candidates": sum(t["candidates"] for t in targets),
        "marked": sum(t["marked"] for t in targets),
        "deleted": sum(t["deleted"] for t in targets),
        "spared": sum(t["spared"] for t in targets),
        "kept": _kept_in_fleet(targets),
        "failed": sum(t["failed"] for t in targets),
        "alerts": sent,
        "not_started": not_started,
        "targets": targets,
    }
    if settlement is not None:
        response["access_alerts"] = settlement.summary()
    totals = {name: value for name, value in response.items() if name != "targets"}
    FUNCTION.logger.info("cleanup finished", extra={"totals": totals})
    if settlement is not None:
        settlement.raise_undelivered()
    return response


def _kept_in_fleet(targets: list[dict[str, Any]]) -> dict[str, int]:
    """The snapshots kept for their sharing in every target, by how (`shared`, `public`)."""
    kept: dict[str, int] = {}
    for target in targets:
        for how, count in target["kept"].items():
            kept[how] = kept.get(how, 0) + count
    return kept


lambda_handler = FUNCTION.lambda_handler
