"""The fleet's EventBridge and HTTP API models accept and refuse exactly what Powertools' do.

`fleet_shared.event_bridge.EventBridgeEvent` and `fleet_shared.http_api.HttpApiEvent` replace
Powertools' `EventBridgeModel` and `APIGatewayProxyEventV2Model` for cold start only
(docs/architecture.md); a Powertools upgrade that changes its models must show up here, not as a
different answer to a real event. Every example event of `events/` of each kind is validated
as it is and mutated (each field removed, each field given a value of another type, at every
depth), by both models: both accept it, or both refuse it naming the same first field with the
same message. Two differences are intended: an EventBridge event's `detail` is not compared
(every function narrows it with its own model), and where Powertools' HTTP API model fails with
an exception that is not a validation error (a `sourceIp` that is not a string), the fleet's
refuses the event naming the field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    EventBridgeModel,
)
from pydantic import BaseModel, ValidationError

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.http_api_event import HttpApiEvent

EVENTS_DIR = Path(__file__).resolve().parents[3] / "events"
WRONG_VALUES: tuple[object, ...] = (None, 7, "text", [], {}, True)
"""Values of another type than most fields have: each replaces every field in turn."""
CRASHED = "crashed"


def _example_events(is_kind: Any) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for path in sorted(EVENTS_DIR.glob("*/*.json")):
        event = json.loads(path.read_text())
        if isinstance(event, dict) and is_kind(event):
            events.append((f"{path.parent.name}/{path.name}", event))
    return events


EVENT_BRIDGE_EVENTS = _example_events(lambda event: "detail-type" in event)
HTTP_API_EVENTS = _example_events(lambda event: event.get("version") == "2.0")


def _paths(value: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every key of every object in `value`, depth first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))


def _mutations(
    event: dict[str, Any], skipped: tuple[str, ...] = ()
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The event unchanged, then without each field, then with each field of another type
    (fields under a `skipped` top-level key are left as they are)."""
    yield "as it is", event
    for path in _paths(event):
        if path[0] in skipped:
            continue
        removed = copy.deepcopy(event)
        parent = removed
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        yield f"without {'.'.join(path)}", removed
        for wrong in WRONG_VALUES:
            changed = copy.deepcopy(event)
            parent = changed
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = wrong
            yield f"{'.'.join(path)} = {wrong!r}", changed


def _verdict(model: type[BaseModel], event: dict[str, Any]) -> tuple[object, ...] | None:
    """None when `model` accepts the event, else the first error's location and message, or the
    type of an exception that is not a validation error."""
    try:
        model.model_validate(event)
    except ValidationError as error:
        first = error.errors()[0]
        return (first["loc"], first["msg"])
    # Powertools' sourceIp validator raises AttributeError on a value that is not a string.
    except AttributeError as error:
        return (CRASHED, type(error).__name__)
    return None


def _assert_same_verdicts(
    fleet_model: type[BaseModel],
    powertools_model: type[BaseModel],
    event: dict[str, Any],
    skipped: tuple[str, ...] = (),
) -> int:
    compared = 0
    for mutation, mutated in _mutations(event, skipped):
        fleet = _verdict(fleet_model, mutated)
        powertools = _verdict(powertools_model, mutated)
        if powertools is not None and powertools[0] == CRASHED:
            assert fleet is not None and fleet[0] != CRASHED, mutation
        else:
            assert fleet == powertools, mutation
        compared += 1
    return compared


def test_there_are_example_events_of_both_kinds() -> None:
    # GIVEN the example events WHEN sorted by kind THEN both kinds are there to compare
    assert len(EVENT_BRIDGE_EVENTS) >= 5
    assert HTTP_API_EVENTS


@pytest.mark.parametrize(
    "event", [event for _, event in EVENT_BRIDGE_EVENTS], ids=[n for n, _ in EVENT_BRIDGE_EVENTS]
)
def test_the_event_bridge_model_answers_every_mutation_as_powertools_does(
    event: dict[str, Any],
) -> None:
    # GIVEN an example EventBridge event and its mutations
    # WHEN both models validate each one
    compared = _assert_same_verdicts(EventBridgeEvent, EventBridgeModel, event, ("detail",))
    # THEN every answer is the same (asserted per mutation), over every envelope field
    assert compared > 50


def test_a_scheduler_event_with_an_empty_string_detail_is_accepted_as_powertools_does() -> None:
    # GIVEN an EventBridge Scheduler event whose empty payload arrives as the string "{}"
    _name, event = EVENT_BRIDGE_EVENTS[0]
    scheduled = {**event, "source": "aws.scheduler", "detail": "{}"}
    # WHEN both models validate it THEN both accept it with an empty detail
    assert EventBridgeEvent.model_validate(scheduled).detail == {}
    assert EventBridgeModel.model_validate(scheduled).detail == {}


# A sourceIp of True reaches the standard library's ipaddress as an int, which warns.
@pytest.mark.filterwarnings("ignore:__int__ returned non-int:DeprecationWarning")
@pytest.mark.parametrize(
    "event", [event for _, event in HTTP_API_EVENTS], ids=[n for n, _ in HTTP_API_EVENTS]
)
def test_the_http_api_model_answers_every_mutation_as_powertools_does(
    event: dict[str, Any],
) -> None:
    # GIVEN an example HTTP API (payload v2) event and its mutations
    # WHEN both models validate each one
    compared = _assert_same_verdicts(HttpApiEvent, APIGatewayProxyEventV2Model, event)
    # THEN every answer is the same (asserted per mutation), over many mutations
    assert compared > 100
