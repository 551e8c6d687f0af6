"""The demo shows predictive scaling: the dev cluster's seeded demand lets the forecaster be
confident in most hours and not in some, the forecaster reaches the scaler through Lambda's
Invoke, and the timeline shows each decision with its confidence and reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import numpy as np
import pytest
from botocore.config import Config

from fleetctl.demo import predictive_lines
from fleetctl.demo_world import HISTORY_DAYS, NODE_VCPUS, predictive_history
from fleetctl.exceptions import FleetctlError
from fleetctl.local_world import stack_settings
from fleetctl.webhook_receiver import LAMBDA_PATH, WebhookReceiver
from handlers.demand_forecaster.forecast import STEP as HOUR
from handlers.demand_forecaster.forecast import local_hour_of_week
from handlers.demand_forecaster.seasonal_model import forecast_demand

ZONE = ZoneInfo("Asia/Kolkata")
REPLAYED_DAYS = [date(2026, 11, 30) + timedelta(days=offset) for offset in range(5)]
"""A working week: which hours the forecaster trusts must not depend on the day replayed."""
THRESHOLD = 0.85
STEPS = 4
"""Hours the forecaster forecasts for its 180-minute horizon from a run on the hour."""


def _confidence_at(day: date, hour: int) -> float:
    """The confidence of the coming hour's step (the one a run on the hour sizes on) for the
    dev cluster at `hour` of the replayed `day`."""
    cluster = stack_settings("dev").members[0].clusters[0]
    day_end = datetime.combine(day, time(23, 59), ZONE).astimezone(UTC)
    start = (day_end - timedelta(days=HISTORY_DAYS)).replace(minute=0)
    hours = [start + timedelta(hours=index) for index in range(HISTORY_DAYS * 24)]
    series = predictive_history(cluster, hours, day_end)
    demand = (
        np.array(series["node_cpu_utilization"])
        / 100
        * np.array(series["cluster_node_count"])
        * NODE_VCPUS
    )
    run = datetime.combine(day, time(hour), ZONE).astimezone(UTC)
    known = [index for index, moment in enumerate(hours) if moment < run]
    # The hours of the week in the cluster's zone, as the forecaster counts them.
    moments = [hours[index] for index in known] + [run + HOUR * step for step in range(STEPS)]
    hours_of_week = np.array([local_hour_of_week(moment, ZONE) for moment in moments])
    forecast = forecast_demand(demand[known], hours_of_week, STEPS)
    return float(forecast.step_confidence[0])


def test_the_dev_cluster_is_in_predictive_mode():
    # GIVEN the dev stack WHEN its first cluster is read THEN the forecast may size it
    cluster = stack_settings("dev").members[0].clusters[0]
    assert cluster.scaling.mode == "predictive"
    assert cluster.scaling.confidence_threshold == THRESHOLD


@pytest.mark.parametrize("day", REPLAYED_DAYS, ids=lambda day: f"{day:%a}")
def test_the_seeded_demand_leaves_the_schedule_in_charge_at_night_and_the_forecast_by_day(
    day: date,
):
    # GIVEN the demand the demo seeds, the day before the replayed one erratic (a load test)
    # WHEN the forecaster's model runs at midnight and at 15:00 of the replayed day
    at_midnight, in_the_afternoon = _confidence_at(day, 0), _confidence_at(day, 15)
    # THEN whatever the weekday, its confidence is below the threshold at midnight (the day
    # it scored last was forecast badly) and at or above it at 15:00
    assert at_midnight < THRESHOLD <= in_the_afternoon, (at_midnight, in_the_afternoon)


def test_the_timeline_shows_a_forecast_driven_change_and_a_kept_schedule_with_their_reasons():
    # GIVEN a forecaster result with a decision of each kind, one handing a node group back
    result = {
        "status": "ok",
        "clusters": [
            {
                "cluster": "dev-apps",
                "predictive": {
                    "outcome": "scaler_asked",
                    "reason": (
                        "confidence 0.91 >= 0.85: sized on the hour's p90 5.10 vCPU + 10% headroom"
                    ),
                    "node_groups": [
                        {
                            "name": "system",
                            "nodes_wanted": 1,
                            "scaler_status": "scaling_initiated",
                            "desired_size": 2,
                        },
                        {"name": "batch", "nodes_wanted": 0, "scaler_status": "no_change_needed"},
                    ],
                },
            },
            {
                "cluster": "dev-batch",
                "predictive": {
                    "outcome": "schedule_kept",
                    "reason": "schedule kept: confidence 0.79 is below the threshold 0.85",
                    "node_groups": [],
                },
            },
            {
                "cluster": "dev-web",
                "predictive": {
                    "outcome": "schedule_kept",
                    "reason": "schedule kept: no forecast (no data)",
                    "node_groups": [
                        {
                            "name": "web",
                            "hand_back": True,
                            "scaler_status": "scaling_initiated",
                            "desired_size": 3,
                        },
                        {"name": "api", "hand_back": True, "scaler_status": "no_change_needed"},
                    ],
                },
            },
        ],
    }
    # WHEN the timeline's lines are made THEN each says what happened and why
    assert predictive_lines(result) == [
        "dev-apps: forecast-driven, system 1 wanted -> 2 (scaling_initiated), batch 0 wanted "
        "(no_change_needed): confidence 0.91 >= 0.85: sized on the hour's p90 5.10 vCPU + 10% "
        "headroom",
        "dev-batch: schedule kept: confidence 0.79 is below the threshold 0.85",
        "dev-web: schedule kept: no forecast (no data); back to the schedule: web -> 3 "
        "(scaling_initiated)",
    ]


def _lambda(receiver: WebhookReceiver) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=f"{receiver.url}{LAMBDA_PATH}",
        region_name="ap-south-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_one_function_invoking_another_reaches_it_through_the_receiver():
    # GIVEN the receiver handing invocations to a stand-in for the scaler
    calls: list[tuple[str, Any]] = []

    def invoke(name: str, event: Any) -> Any:
        calls.append((name, event))
        if event.get("fail"):
            raise FleetctlError("eks_scaler stopped")
        return {"status": "ok"}

    with WebhookReceiver() as receiver:
        receiver.function_invoker = invoke
        client = _lambda(receiver)
        # WHEN the forecaster's Lambda client invokes the scaler
        answer = client.invoke(FunctionName="lf-dev-eks-scaler", Payload=b'{"action": "x"}')
        failed = client.invoke(FunctionName="lf-dev-eks-scaler", Payload=b'{"fail": true}')
    # THEN the stand-in got the event and its answer came back as the payload
    assert calls[0] == ("lf-dev-eks-scaler", {"action": "x"})
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert answer["Payload"].read() == b'{"status": "ok"}'
    # AND a failed invocation is a function error, as Lambda reports one
    assert failed["FunctionError"] == "Unhandled"
