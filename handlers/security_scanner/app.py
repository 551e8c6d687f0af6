"""security_scanner: compliance checks across the member accounts, and risk scoring of events.

Events (examples under events/security_scanner/):
- `{"action": "scan"}` (the schedule): scan every member account and region of the fleet
  inventory, or fan out one SQS message per target when there are more than
  SCAN_MAX_TARGETS_PER_INVOCATION targets.
- `{"action": "scan_target", "account_id": ..., "region": ...}`: scan one target.
- SQS batches (`Records[].eventSource == "aws:sqs"`) whose bodies are `scan_target` requests:
  the fan-out queue; answered with `batchItemFailures`.
- EventBridge "GuardDuty Finding", "AWS API Call via CloudTrail" and "AWS Console Sign In via
  CloudTrail" events: risk-scored (see risk.py) and alerted.

Environment variables:
- STATE_TABLE_NAME (required): open findings per target, countries per principal, event claims.
- MEMBER_ROLE_NAME (required): the role assumed in each member account.
- DATA_BUCKET_NAME (required): holds the inventory and receives `reports/security/<date>/`.
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_CRITICAL_ARN, ALERT_TOPIC_INFO_ARN: alert topics.
- HUB_ACCOUNT_ID: the hub account (Security Hub findings are imported there); STS when unset.
- FLEET_INVENTORY_KEY (default `config/fleet-inventory.json`): the inventory object.
- SCAN_QUEUE_URL: the fan-out queue (from the catalog); required only when fanning out.
- SCAN_MAX_WORKERS (default 4): targets scanned at once in one invocation.
- SCAN_MAX_TARGETS_PER_INVOCATION (default 10): above this many targets the schedule fans out.
- RISK_COUNTRY_WINDOW_DAYS (default 30): how long a principal's countries are remembered.
FLEET_DRY_RUN is not read: the scanner changes nothing in the member accounts. An event's
`dry_run: true` evaluates without writing (no Security Hub import, report, state or alert).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import AlertPublisher
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import ConfigurationError, EventValidationError, FleetError
from fleet_shared.inventory import FleetInventory
from fleet_shared.inventory_store import load_inventory
from fleet_shared.observability import observability_for
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.security_scanner.models import (
    ScanRequest,
    ScanTargetRequest,
    SecurityEventEnvelope,
    SqsBatch,
)
from handlers.security_scanner.scan import (
    DENIED,
    FAILED,
    ScanServices,
    TargetResult,
    report_document,
    scan_target,
    scan_targets,
    write_report,
)
from handlers.security_scanner.security_events import handle_security_event
from handlers.security_scanner.settings import ScannerEnvironment

FUNCTION_NAME = "security_scanner"
OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger
SQS_BATCH_LIMIT = 10


@dataclass(frozen=True)
class Runtime:
    """Everything an invocation needs, built once per container."""

    environment: ScannerEnvironment
    services: ScanServices
    sqs: Any


def build_runtime(clock: Clock | None = None) -> Runtime:
    """Read the environment and build the hub clients; raises `ConfigurationError`."""
    environment = load_environment(ScannerEnvironment)
    clock = clock or SystemClock()
    sessions = AccountSessions.from_environment(environment, FUNCTION_NAME, clock=clock)
    services = ScanServices(
        sessions=sessions,
        state=StateTable(environment.state_table_name, sessions.hub_client("dynamodb"), clock),
        clock=clock,
        publisher=AlertPublisher(sessions.hub_client("sns"), environment),
        security_hub=sessions.hub_client("securityhub"),
        s3=sessions.hub_client("s3"),
        data_bucket=environment.data_bucket_name,
    )
    return Runtime(environment, services, sessions.hub_client("sqs"))


_runtime = functools.cache(build_runtime)


@OBSERVABILITY.handler
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Dispatch on the event's shape: SQS batch, EventBridge security event, or a request."""
    try:
        runtime = _runtime()
    except ConfigurationError as error:
        return error_result(error)
    return handle(event, runtime)


def handle(event: Any, runtime: Runtime) -> dict[str, Any]:
    """The handler's work, with its dependencies given (tests pass a runtime with a fake clock)."""
    try:
        if isinstance(event, dict) and "Records" in event:
            return _consume_queue(parse_event(SqsBatch, event), runtime)
        if isinstance(event, dict) and "detail-type" in event:
            envelope = parse_event(SecurityEventEnvelope, event)
            return _security_event(envelope, runtime)
        action = event.get("action") if isinstance(event, dict) else None
        if action == "scan_target":
            request = parse_event(ScanTargetRequest, event)
            return _scan_one(request, runtime, _inventory(runtime))
        return _scan_fleet(parse_event(ScanRequest, event), runtime)
    except FleetError as error:
        logger.warning("request refused", extra={"error": str(error)})
        return error_result(error)


def _security_event(envelope: SecurityEventEnvelope, runtime: Runtime) -> dict[str, Any]:
    try:
        return handle_security_event(
            envelope,
            runtime.services.state,
            runtime.services.publisher,
            runtime.services.clock.now(),
            runtime.environment.risk_country_window_days,
        )
    except ValueError as error:
        return error_result(EventValidationError("detail.severity", str(error)))


def _inventory(runtime: Runtime) -> FleetInventory:
    environment = runtime.environment
    return load_inventory(
        runtime.services.s3, environment.data_bucket_name, environment.fleet_inventory_key
    )


def _targets(inventory: FleetInventory) -> list[tuple[str, str, bool]]:
    """(account, region, include_global): global services are scanned in each account's first
    region only."""
    return [
        (member.account_id, region, index == 0)
        for member in inventory.members
        for index, region in enumerate(member.regions)
    ]


def _scan_fleet(request: ScanRequest, runtime: Runtime) -> dict[str, Any]:
    environment = runtime.environment
    targets = _targets(_inventory(runtime))
    if len(targets) > environment.scan_max_targets_per_invocation:
        return _fan_out(targets, request.dry_run, runtime)
    results = scan_targets(
        runtime.services,
        targets,
        max_workers=environment.scan_max_workers,
        dry_run=request.dry_run,
    )
    now = runtime.services.clock.now()
    response = _summary(results, request.dry_run, mode="direct")
    if not request.dry_run:
        key = f"reports/security/{now.date().isoformat()}/findings.json"
        response["report_key"] = write_report(runtime.services, key, report_document(results, now))
    return response


def _fan_out(
    targets: list[tuple[str, str, bool]], dry_run: bool, runtime: Runtime
) -> dict[str, Any]:
    queue_url = runtime.environment.scan_queue_url
    if not queue_url:
        raise ConfigurationError(
            "SCAN_QUEUE_URL",
            f"is required to fan out {len(targets)} targets (more than "
            f"SCAN_MAX_TARGETS_PER_INVOCATION={runtime.environment.scan_max_targets_per_invocation})",
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
        response = runtime.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
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


def _scan_one(
    request: ScanTargetRequest, runtime: Runtime, inventory: FleetInventory
) -> dict[str, Any]:
    member = inventory.member(request.account_id)
    if member is None or request.region not in member.regions:
        raise EventValidationError(
            "account_id",
            f"{request.account_id}/{request.region} is not a member account and region of the "
            "fleet inventory",
        )
    result = scan_target(
        runtime.services,
        request.account_id,
        request.region,
        include_global=request.region == member.regions[0],
        dry_run=request.dry_run,
    )
    response = _summary([result], request.dry_run, mode="target")
    if not request.dry_run and result.status != FAILED:
        now = runtime.services.clock.now()
        key = (
            f"reports/security/{now.date().isoformat()}/targets/"
            f"{request.account_id}-{request.region}.json"
        )
        response["report_key"] = write_report(runtime.services, key, report_document([result], now))
    return response


def _consume_queue(batch: SqsBatch, runtime: Runtime) -> dict[str, Any]:
    """Scan the target of each message; only failures worth retrying go back to the queue.

    A message that can never succeed (invalid body, target not in the inventory) and a denied
    account are logged and dropped: redelivering them would fail the same way.
    """
    failures: list[dict[str, str]] = []
    inventory: FleetInventory | None = None
    for record in batch.records:
        try:
            try:
                body = json.loads(record.body)
            except json.JSONDecodeError as error:
                raise EventValidationError("body", f"is not JSON: {error}") from None
            request = parse_event(ScanTargetRequest, body)
            inventory = inventory or _inventory(runtime)
            outcome = _scan_one(request, runtime, inventory)
        except EventValidationError as error:
            logger.error(
                "dropping message", extra={"message_id": record.message_id, "error": str(error)}
            )
            continue
        except (FleetError, ClientError, BotoCoreError):
            logger.exception("message failed", extra={"message_id": record.message_id})
            failures.append({"itemIdentifier": record.message_id})
            continue
        target = outcome["targets"][0]
        if target["status"] == FAILED:
            failures.append({"itemIdentifier": record.message_id})
        logger.info("target scanned", extra={"message_id": record.message_id, "target": target})
    return {"batchItemFailures": failures}


def _summary(results: list[TargetResult], dry_run: bool, *, mode: str) -> dict[str, Any]:
    ok = all(result.status not in (DENIED, FAILED) for result in results)
    return {
        "status": "ok" if ok else "partial",
        "mode": mode,
        "dry_run": dry_run,
        "findings": sum(len(r.findings) for r in results),
        "new": sum(len(r.new) for r in results),
        "resolved": sum(len(r.resolved) for r in results),
        "targets": [result.summary() for result in results],
    }
