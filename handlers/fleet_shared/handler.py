"""One way to declare a fleet function: the skeleton every `app.py` is written on.

An `app.py` declares its environment model, its event parsing and its `handle`, and nothing
else::

    FUNCTION = FleetFunction("backup_scheduler", BackupEnvironment, services=BackupServices)

    @FUNCTION.handler(BackupRequest)
    def handle(request: BackupRequest, services: BackupServices, invocation: Invocation) -> dict:
        ...

    lambda_handler = FUNCTION.lambda_handler

The skeleton adds, the same for every function:
- observability: Powertools Logger (Lambda context in every line), Metrics and, in detailed
  tracing only, Tracer (`fleet_shared.observability`), with a `RequestsHandled`,
  `RequestsRefused` or `RequestsFailed` metric per invocation, so every flush has a metric to send;
- configuration: the environment is validated once per container into the frozen model, and the
  services are built once from it; a bad variable (`ConfigurationError`), like an invalid fleet
  inventory (`InventoryError`), is a `DeploymentError` that fails the invocation naming it,
  every time, so the event is kept for a retry and the Errors alarm fires;
- event parsing: a pydantic model class (validated with `event_parsing.parse_event`, so the error
  names the field) or any callable that raises `EventValidationError`;
- the error result: any other `FleetError` raised anywhere in parsing or handling becomes
  `{"status": "error", "error": ...}` (or what `error_response` makes of it, e.g. an HTTP 400),
  with every text in it cut to `ERROR_TEXT_LIMIT` characters, since it may echo the event;
  any other exception is a bug and propagates, so Lambda retries and the dead-letter queue
  keeps the event;
- strict JSON: a result is returned only as JSON the standard allows; a NaN or infinite number is
  replaced by null with a warning, never sent as `NaN`.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import DeploymentError, FleetError
from fleet_shared.function_services import FunctionServices
from fleet_shared.observability import Observability, observability_for
from fleet_shared.validation_errors import cut_echo

EnvironmentT = TypeVar("EnvironmentT", bound=FunctionEnvironment)
ServicesT = TypeVar("ServicesT", bound=FunctionServices[Any])
RequestT = TypeVar("RequestT")

Handle = Callable[[Any, Any, "Invocation"], Any]
ErrorResponse = Callable[[FleetError, object], Any]

ERROR_TEXT_LIMIT = 1000
"""The longest text an error answer carries. Validation errors already cut what they echo to
`validation_errors.ECHO_LIMIT`; this is the last guard for every other error message."""


@dataclass(frozen=True)
class Invocation:
    """One invocation: its request id and how much time it has left."""

    request_id: str
    _remaining_millis: Callable[[], int] | None = None
    invoked_function_arn: str | None = None
    """The ARN Lambda ran the invocation through (with its alias, when invoked through one)."""

    @classmethod
    def from_context(cls, context: object) -> Invocation:
        """The invocation of a Lambda context (or a fresh id and no deadline without one)."""
        request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        invoked = getattr(context, "invoked_function_arn", None)
        return cls(
            str(request_id),
            remaining if callable(remaining) else None,
            invoked if isinstance(invoked, str) else None,
        )

    @classmethod
    def local(
        cls, request_id: str | None = None, *, invoked_function_arn: str | None = None
    ) -> Invocation:
        """An invocation with no deadline: for tests and for one function calling another's
        logic in process."""
        return cls(request_id or uuid.uuid4().hex, invoked_function_arn=invoked_function_arn)

    def remaining_seconds(self) -> float:
        """Seconds left before Lambda ends the invocation (infinite without a deadline)."""
        if self._remaining_millis is None:
            return math.inf
        return self._remaining_millis() / 1000

    def allows(self, seconds: float) -> bool:
        """Whether a step that may take `seconds` still fits in the time left."""
        return self.remaining_seconds() > seconds

    def claim_seconds(self, longest: int) -> int:
        """How long a claim taken now (an idempotent request's IN_PROGRESS record) should block
        another copy: until Lambda ends this invocation, in whole seconds rounded up, so when the
        invocation is killed holding the claim, the platform's retry (a minute later at the
        soonest) finds it free. `longest` without a deadline, or when that is sooner."""
        remaining = self.remaining_seconds()
        if math.isinf(remaining):
            return longest
        return max(1, min(longest, math.ceil(remaining)))


def _parser(parse: type[BaseModel] | Callable[[object], Any]) -> Callable[[object], Any]:
    if isinstance(parse, type) and issubclass(parse, BaseModel):
        model = parse
        return lambda event: parse_event(model, event)
    return parse


class FleetFunction(Generic[EnvironmentT, ServicesT]):
    """The declaration of one fleet function; see the module docstring."""

    def __init__(
        self,
        name: str,
        environment: type[EnvironmentT],
        services: Callable[[str, EnvironmentT], ServicesT] = FunctionServices.create,  # type: ignore[assignment]
    ) -> None:
        """`name` is the catalog name (service name in logs, metrics and assumed-role sessions);
        `environment` the function's environment model; `services` builds its container."""
        self.name = name
        self.environment_model = environment
        self.observability: Observability = observability_for(name)
        self.logger = self.observability.logger
        self._build_services = services
        self._services: ServicesT | None = None
        self._lock = threading.Lock()
        self._parse: Callable[[object], Any] | None = None
        self._handle: Handle | None = None
        self._error_response: ErrorResponse = lambda error, event: error_result(error)
        self.lambda_handler: Callable[[Any, Any], Any] = self.observability.handler(self._invoke)

    def handler(
        self,
        parse: type[BaseModel] | Callable[[object], Any],
        *,
        error_response: ErrorResponse | None = None,
    ) -> Callable[[Handle], Handle]:
        """Declare `handle(request, services, invocation)`, fed with `parse(event)`.

        `error_response(error, event)` answers a refused request; the default is the standard
        error result.
        """

        def declare(handle: Handle) -> Handle:
            if self._handle is not None:
                raise TypeError(f"{self.name} already has a handler")
            self._parse = _parser(parse)
            self._handle = handle
            if error_response is not None:
                self._error_response = error_response
            return handle

        return declare

    def services(self) -> ServicesT:
        """The services of this container, built on first use from the validated environment.

        Raises `ConfigurationError` naming the variable while the environment is invalid; it is
        read again on the next call, so a fixed configuration needs no new container.
        """
        with self._lock:
            if self._services is None:
                environment = load_environment(self.environment_model)
                self._services = self._build_services(self.name, environment)
            return self._services

    def use_services(self, services: ServicesT | None) -> None:
        """Replace the container's services (tests and local runners); None builds them again."""
        with self._lock:
            self._services = services

    def invoke(self, event: object, invocation: Invocation) -> Any:
        """Parse and handle one event: the result, or the error response of a `FleetError`."""
        if self._parse is None or self._handle is None:
            raise TypeError(f"{self.name} declares no handler")
        try:
            services = self.services()
            services.forget_unanswered_calls()
            request = self._parse(event)
            result = self._handle(request, services, invocation)
        except DeploymentError as error:
            # The deployment is wrong, not the event: raised, so the event is kept (a queue's
            # messages come back, then go to its dead-letter queue; an asynchronous event is
            # retried, then dead-lettered) and the function's Errors alarm tells people. Answered
            # as a refusal, the event would be consumed and nobody told: a router with a broken
            # variable deleted every queued alert.
            self.logger.error("deployment invalid", extra={"error": str(error)})
            self.observability.metrics.add_metric(name="RequestsFailed", unit="Count", value=1)
            raise
        except FleetError as error:
            self.logger.warning("request refused", extra={"error": str(error)})
            self.observability.metrics.add_metric(name="RequestsRefused", unit="Count", value=1)
            return strict_json(_bounded_texts(self._error_response(error, event)), self.logger)
        except Exception:
            self.observability.metrics.add_metric(name="RequestsFailed", unit="Count", value=1)
            raise
        self.observability.metrics.add_metric(name="RequestsHandled", unit="Count", value=1)
        return strict_json(result, self.logger)

    def _invoke(self, event: Any, context: Any) -> Any:
        return self.invoke(event, Invocation.from_context(context))


def strict_json(value: Any, logger: Any = None) -> Any:
    """`value` unchanged when it is standard JSON; otherwise a copy with every NaN and infinity
    replaced by None (logged, since a number the function could not compute is worth a look)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        if logger is not None:
            logger.warning("result had non-finite numbers; they are returned as null")
        return _finite(value)
    return value


def _bounded_texts(value: Any) -> Any:
    """`value` with every text cut to `ERROR_TEXT_LIMIT` characters; an HTTP response's JSON
    `body` is cut inside, so it stays JSON."""
    if isinstance(value, str):
        return cut_echo(value, ERROR_TEXT_LIMIT)
    if isinstance(value, dict):
        return {
            key: _bounded_body(item) if key == "body" else _bounded_texts(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_bounded_texts(item) for item in value]
    return value


def _bounded_body(body: Any) -> Any:
    if not isinstance(body, str) or len(body) <= ERROR_TEXT_LIMIT:
        return body
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return cut_echo(body, ERROR_TEXT_LIMIT)
    return json.dumps(_bounded_texts(decoded))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
