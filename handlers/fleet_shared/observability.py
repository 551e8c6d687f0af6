"""Powertools Logger, Metrics and (in detailed tracing only) Tracer for one function, built once
per container.

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
function in one place.

Tracing follows the stack's `tracing` setting (docs/tracing.md): the program sets
POWERTOOLS_TRACE_DISABLED=false only in `detailed` mode. Only then is the Powertools Tracer built,
and with it the X-Ray SDK imported; in `active` mode Lambda traces the invocation itself and the
function pays nothing for it at cold start. As Powertools does, tracing is also off outside
Lambda (no LAMBDA_TASK_ROOT), so tests and local runs need no X-Ray daemon.

botocore's loggers of requests and answers are held at INFO: at DEBUG (a function's application
log level set to DEBUG to look into a problem) they log every answer's body, among them Secrets
Manager's secret values and AssumeRole's credentials, and every request's headers with the
session token.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "LambdaFleet"
TRACE_DISABLED_VARIABLE = "POWERTOOLS_TRACE_DISABLED"
# Powertools reads these values of a flag as true (`strtobool`); anything else is false.
_TRUE_FLAGS = frozenset({"1", "y", "yes", "t", "true", "on"})

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])
WIRE_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.auth")
"""botocore's loggers, at DEBUG, of every answer's body (parsers) and every request's headers,
the session token among them (endpoint; auth, in the request it signs)."""


def detailed_tracing_enabled() -> bool:
    """Whether this process runs in Lambda with the Powertools Tracer switched on.

    An unset POWERTOOLS_TRACE_DISABLED means tracing on, as Powertools reads it.
    """
    disabled = os.environ.get(TRACE_DISABLED_VARIABLE, "false").strip().lower() in _TRUE_FLAGS
    return "LAMBDA_TASK_ROOT" in os.environ and not disabled


@dataclass(frozen=True)
class Observability:
    """The Powertools utilities of one function; `tracer` is None unless tracing is detailed."""

    service: str
    logger: Logger
    metrics: Metrics
    tracer: Tracer | None = None

    def handler(self, function: HandlerT) -> HandlerT:
        """Wrap `lambda_handler`: Lambda context in every log line, the metrics flushed (with a
        cold-start metric) when the invocation ends, and in detailed tracing a traced handler.

        Responses are not copied into the trace: results can be large and name account data.
        """
        wrapped = self.metrics.log_metrics(capture_cold_start_metric=True)(function)
        if self.tracer is not None:
            wrapped = self.tracer.capture_lambda_handler(wrapped, capture_response=False)
        return self.logger.inject_lambda_context(clear_state=True)(wrapped)


def _tracer(service: str) -> Tracer | None:
    if not detailed_tracing_enabled():
        return None
    # Building a Tracer (not importing its class) imports the X-Ray SDK and patches botocore.
    return Tracer(service=service)


@functools.cache
def observability_for(function_name: str) -> Observability:
    """The one `Observability` of `function_name` in this process."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or function_name
    # Requests and answers hold secret values and credentials: not logged whatever the level.
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    return Observability(
        service=service,
        logger=Logger(service=service),
        metrics=Metrics(namespace=NAMESPACE, service=service),
        tracer=_tracer(service),
    )
