"""Powertools Logger, Tracer and Metrics for one function, built once per container.

Usage in a handler module::

    from fleet_shared.observability import observability_for

    OBSERVABILITY = observability_for("eks_scaler")
    logger = OBSERVABILITY.logger

    @OBSERVABILITY.handler
    def lambda_handler(event: dict, context: LambdaContext) -> dict:
        OBSERVABILITY.metrics.add_metric(name="NodeGroupsScaled", unit="Count", value=2)
        ...

The service name is POWERTOOLS_SERVICE_NAME when set, else the function name; metrics go to the
`LambdaFleet` namespace whatever POWERTOOLS_METRICS_NAMESPACE says, so dashboards find every
function in one place. Powertools disables the tracer outside Lambda (no LAMBDA_TASK_ROOT) and
when POWERTOOLS_TRACE_DISABLED=true, so tests and local runs need no X-Ray daemon.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "LambdaFleet"

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


@dataclass(frozen=True)
class Observability:
    """The Powertools utilities of one function."""

    service: str
    logger: Logger
    tracer: Tracer
    metrics: Metrics

    def handler(self, function: HandlerT) -> HandlerT:
        """Wrap `lambda_handler`: Lambda context in every log line, a traced handler, and the
        metrics flushed (with a cold-start metric) when the invocation ends.

        Responses are not copied into the trace: results can be large and name account data.
        """
        wrapped = self.metrics.log_metrics(capture_cold_start_metric=True)(function)
        wrapped = self.tracer.capture_lambda_handler(wrapped, capture_response=False)
        return self.logger.inject_lambda_context(clear_state=True)(wrapped)


@functools.cache
def observability_for(function_name: str) -> Observability:
    """The one `Observability` of `function_name` in this process."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or function_name
    return Observability(
        service=service,
        logger=Logger(service=service),
        tracer=Tracer(service=service),
        metrics=Metrics(namespace=NAMESPACE, service=service),
    )
