"""Helpers of the change_validator tests: a member cluster in moto, the health monitor's endpoint
results, CloudTrail records of EKS calls, and a harness that runs the validator's callback
schedules when the manual clock reaches them (with `fleetctl.validated_change`, as a local run
would).

moto implements neither DescribeUpdate nor any way to finish an EKS update, so `EksUpdates`
answers DescribeUpdate on the handler's own member EKS client (`before-call`, as the cost
analyzer's tests answer GetCostForecast) with the status a test sets. moto keeps one-time
schedules but never fires them: `Validator.fire_due_callbacks` invokes the handler with each due
schedule's input and deletes it, as `ActionAfterCompletion: DELETE` does.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from fleet_shared.clock import ManualClock
from fleet_shared.endpoint_history import HISTORY_VALUE, EndpointResult, endpoint_history_key
from fleet_shared.state_table import StateTable
from fleetctl.validated_change import cloudtrail_change_event, take_due_callbacks
from handlers.change_validator import app
from handlers.change_validator.services import ValidatorServices
from handlers.eks_scaler import app as scaler_app
from tests.handlers.conftest import (
    CHANGE_VALIDATOR_ENVIRONMENT,
    MEMBER_ACCOUNT_ID,
    REGION,
    AlertInbox,
    FakeLambdaContext,
)
from tests.handlers.member_accounts import create_cluster_with_node_group, member_session

CLUSTER = "dev-apps"
NODE_GROUP = "system"
SCHEDULE_GROUP = CHANGE_VALIDATOR_ENVIRONMENT["VALIDATION_SCHEDULE_GROUP"]
SCALER_ROLE = CHANGE_VALIDATOR_ENVIRONMENT["SCALER_MEMBER_ROLE_NAME"]
LABEL = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}"
REFUSED = "refused"
"""An `EksUpdates.status` that makes DescribeUpdate answer AccessDenied."""


@dataclass
class EksUpdates:
    """DescribeUpdate answers: the status a test sets, with its errors."""

    status: str = "InProgress"
    errors: list[dict[str, Any]] = field(default_factory=list)
    asked: int = 0

    def answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.asked += 1
        if self.status == REFUSED:
            refusal = {"Code": "AccessDeniedException", "Message": "not authorized"}
            return AWSResponse("https://eks.amazonaws.com", 403, {}, None), {"Error": refusal}
        update = {"id": "from-the-test", "status": self.status, "errors": self.errors}
        return AWSResponse("https://eks.amazonaws.com", 200, {}, None), {"update": update}


class ScalerThroughItsHandler:
    """The validator's Lambda client for the scaler: the invoke runs the scaler's own
    `lambda_handler` in process, as Lambda would run it."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        payload = json.loads(Payload)
        self.payloads.append(payload)
        answer = scaler_app.lambda_handler(payload, FakeLambdaContext())
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode("utf-8"))}


@dataclass
class Validator:
    """The validator's Lambda entry point, the callback schedules it created, and the world it
    acts in: the state table, DescribeUpdate's answers, the scaler and the alert inbox."""

    clock: ManualClock
    services: list[ValidatorServices]
    state: StateTable
    eks_updates: EksUpdates
    scaler: ScalerThroughItsHandler
    inbox: AlertInbox

    def send(self, event: object, context: FakeLambdaContext | None = None) -> dict[str, Any]:
        """The handler's result for `event` (with 60 s left, unless `context` says otherwise)."""
        result: dict[str, Any] = app.lambda_handler(event, context or FakeLambdaContext())
        return result

    def schedules(self) -> list[dict[str, Any]]:
        """The callback schedules waiting in the validator's group, by time."""
        scheduler = boto3.client("scheduler", region_name=REGION)
        found = [
            scheduler.get_schedule(Name=summary["Name"], GroupName=SCHEDULE_GROUP)
            for summary in scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]
        ]
        return sorted(found, key=lambda schedule: schedule["ScheduleExpression"])

    def fire_due_callbacks(self) -> list[dict[str, Any]]:
        """Invoke the handler for every schedule due by the clock (each deleted as it fires)."""
        return [self.send(payload) for payload in self.due_callbacks_after(0)]

    def advance(self, minutes: float) -> list[dict[str, Any]]:
        """Move the clock on and run the callbacks that came due."""
        self.clock.advance(minutes * 60)
        return self.fire_due_callbacks()

    def due_callbacks_after(self, minutes: float) -> list[dict[str, Any]]:
        """Move the clock on and take the callbacks that came due without running them, for the
        test to deliver (each deleted, as it fires)."""
        self.clock.advance(minutes * 60)
        scheduler = boto3.client("scheduler", region_name=REGION)
        return take_due_callbacks(scheduler, SCHEDULE_GROUP, self.clock.now())

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts the validator raised (the scaler's own notices left out)."""
        return [
            received.alert
            for received in self.inbox.receive()
            if received.alert["source"] == "change_validator"
        ]


def create_member_cluster(desired: int = 2) -> None:
    """The cluster, its node group and the node group's Auto Scaling group in the member."""
    create_cluster_with_node_group(
        member_session(MEMBER_ACCOUNT_ID), CLUSTER, NODE_GROUP, desired=desired, max_size=4
    )


def record_endpoint_results(
    state: StateTable, start: datetime, minutes: int, latency_ms: float, ok: bool = True
) -> None:
    """The health monitor's results of endpoint `api`: one a minute for `minutes` from `start`,
    added to those already kept."""
    key = endpoint_history_key(LABEL, "api")
    stored = state.get_value(key, HISTORY_VALUE) or {"results": []}
    for minute in range(minutes):
        result = EndpointResult(start + timedelta(minutes=minute), ok, latency_ms)
        stored["results"].append(result.as_entry())
    state.put_value(key, HISTORY_VALUE, stored)


def cloudtrail_event(
    event_name: str,
    update_id: str,
    at: datetime,
    request: dict[str, Any],
    role: str = "platform-admin",
) -> dict[str, Any]:
    """The forwarded CloudTrail record of an EKS call on the cluster, made through `role`."""
    return cloudtrail_change_event(
        event_name,
        account_id=MEMBER_ACCOUNT_ID,
        region=REGION,
        cluster=CLUSTER,
        update_id=update_id,
        at=at,
        request_parameters=request,
        role_name=role,
    )
