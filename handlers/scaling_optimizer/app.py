"""scaling_optimizer: daily, from the last 14 days of performance analyses, the scaler's history
and the cost analyzer's memory rightsizing, the stack file values that would have kept
utilisation at the target with the fewest changes, written as reviewable recommendations
(`fleetctl recommendations` prints them as a patch to `Pulumi.<stack>.yaml`); nothing is
applied. Reference: docs/functions/scaling_optimizer.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.performance_documents import recommendations_key
from handlers.scaling_optimizer.environment import OptimizerEnvironment
from handlers.scaling_optimizer.models import OptimizeEvent
from handlers.scaling_optimizer.optimization import OptimizerServices, optimise, summary

FUNCTION = FleetFunction(
    "scaling_optimizer", OptimizerEnvironment, services=OptimizerServices.create
)


@FUNCTION.handler(OptimizeEvent)
def handle(
    request: OptimizeEvent, services: OptimizerServices, invocation: Invocation
) -> dict[str, Any]:
    """Recommend and write the recommendations, within the invocation's time; the summary
    names every changed line."""
    optimisation = optimise(services, invocation)
    recommendations = optimisation.recommendations
    FUNCTION.observability.metrics.add_metric(
        name="StackFileChangesRecommended", unit="Count", value=len(recommendations.changes)
    )
    return summary(optimisation, recommendations_key(recommendations.generated_at))


lambda_handler = FUNCTION.lambda_handler
