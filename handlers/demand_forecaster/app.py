"""demand_forecaster: forecasts CPU demand and node counts per EKS cluster.

`forecast` answers for one cluster (the eks_scaler invokes it synchronously); `forecast_fleet`
(the hourly schedule) forecasts every cluster of the inventory, saves the results, alerts
capacity shortfalls and asks the scaler for the next hour's sizes of clusters in predictive mode
(`predictive_request.py`). The model is in `seasonal_model.py`, the sizing in `forecast.py`.
Reference: docs/functions/demand_forecaster.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.event_parsing import parse_event
from fleet_shared.fan_out import NOT_STARTED
from fleet_shared.handler import FleetFunction, Invocation
from handlers.demand_forecaster.cluster_forecasts import forecast_fleet, forecast_one
from handlers.demand_forecaster.environment import ForecasterEnvironment
from handlers.demand_forecaster.models import ActionEvent, FleetForecastRequest, ForecastRequest
from handlers.demand_forecaster.services import ForecasterServices

FUNCTION = FleetFunction(
    "demand_forecaster", ForecasterEnvironment, services=ForecasterServices.create
)


def parse_request(event: object) -> ForecastRequest | FleetForecastRequest:
    """The model of the event's `action`."""
    action = parse_event(ActionEvent, event).action
    return parse_event(ForecastRequest if action == "forecast" else FleetForecastRequest, event)


@FUNCTION.handler(parse_request)
def handle(
    request: ForecastRequest | FleetForecastRequest,
    services: ForecasterServices,
    invocation: Invocation,
) -> dict[str, Any]:
    """Forecast the requested cluster, or every cluster of the inventory."""
    if isinstance(request, ForecastRequest):
        return forecast_one(services, request, FUNCTION.logger)
    result = forecast_fleet(services, request, invocation, FUNCTION.logger)
    started = [cluster for cluster in result["clusters"] if cluster["status"] != NOT_STARTED]
    FUNCTION.observability.metrics.add_metric(
        name="ClustersForecast", unit="Count", value=len(started)
    )
    return result


lambda_handler = FUNCTION.lambda_handler
