"""Validating events into models, and the standard result for input that does not validate.

Handlers never raise on bad input: they return `error_result(error)` so the caller (a schedule,
the HTTP API, another function) gets a clear message naming the field, and nothing changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fleet_shared.exceptions import EventValidationError, FleetError
from fleet_shared.validation_errors import error_echo, first_error

ModelT = TypeVar("ModelT", bound=BaseModel)

EVENT_FIELD = "event"
"""The field named when the event as a whole is wrong (not an object, or a model-level rule)."""


def parse_event(model_cls: type[ModelT], payload: object) -> ModelT:
    """Validate `payload` (a JSON object) into `model_cls`.

    Raises `EventValidationError` for the first problem, with its path rendered like
    `nodegroups[0].desired_size`; a payload that is not an object is reported as field `event`.
    """
    if not isinstance(payload, Mapping):
        raise EventValidationError(
            EVENT_FIELD, f"expected a JSON object, got {type(payload).__name__}"
        )
    try:
        return model_cls.model_validate(payload)
    except ValidationError as error:
        raise EventValidationError(*first_error(error, root=EVENT_FIELD)) from None


def decode_json(text: str, field: str) -> Any:
    """The JSON document in `text` (a body or message carried as a string in the event).

    Raises `EventValidationError` on `field` when it cannot be read (`json_or_problem`).
    """
    document, problem = json_or_problem(text)
    if problem is not None:
        raise EventValidationError(field, problem)
    return document


def json_or_problem(text: str | bytes) -> tuple[Any, str | None]:
    """(the JSON document in `text`, None), or (None, why it cannot be read): not JSON (or, as
    bytes, not UTF-8), nested deeper than the decoder goes (which raises RecursionError, not a
    decoding error), or holding an integer of more than 4,300 digits (which Python refuses to
    convert, with a plain ValueError)."""
    try:
        return json.loads(text), None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, f"is not valid JSON: {error}"
    except RecursionError:
        return None, "is JSON nested too deeply"
    except ValueError:
        return None, "holds a number of more than 4,300 digits"


def error_result(error: FleetError | Exception, **context: Any) -> dict[str, Any]:
    """`{"status": "error", "error": "<message>", **context}`: the result of a refused request.

    A `FleetError` is reported by its message (the fleet's wording, which quotes what it repeats
    already); any other exception as `validation_errors.error_echo` quotes it: by its type too,
    its message escaped and cut (it may repeat what a peer sent). A pydantic `ValidationError` (a
    document read from S3 that does not validate) is reported by its first error only, like an
    event's, since its own message lists every error with the values it refused. `context` adds
    fields such as the account or node group concerned and may not replace `status`.
    """
    if "status" in context:
        raise TypeError("error_result context may not set 'status'")
    if isinstance(error, FleetError):
        message = str(error)
    elif isinstance(error, ValidationError):
        field, problem = first_error(error, root=error.title)
        message = f"{type(error).__name__}: {field}: {problem}"
    else:
        message = error_echo(error)
    return {"status": "error", "error": message, **context}
