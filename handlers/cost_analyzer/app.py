"""cost_analyzer: the fleet's daily cost report.

Cost Explorer totals and forecast, cost anomalies, CUR detail, under-used node groups and Lambda
memory, written to the data bucket and summarised in an alert; analysis.py says how.
Reference: docs/functions/cost_analyzer.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.handler import FleetFunction, Invocation
from handlers.cost_analyzer.analysis import CostServices, analyze
from handlers.cost_analyzer.environment import CostEnvironment
from handlers.cost_analyzer.models import AnalyzeRequest

FUNCTION = FleetFunction("cost_analyzer", CostEnvironment, services=CostServices.create)


@FUNCTION.handler(AnalyzeRequest)
def handle(
    request: AnalyzeRequest, services: CostServices, invocation: Invocation
) -> dict[str, Any]:
    """Run every section of the analysis and publish the report."""
    return analyze(services, invocation, FUNCTION.logger, run=request.run)


lambda_handler = FUNCTION.lambda_handler
