"""Properties of every function's event parser (`fleet_shared.event_parsing` and the parsers the
handlers declare) over events that hypothesis breaks: bad input "gets one clear message naming
the field and changes nothing", whatever is wrong with it.

The broken events start from the example events under `events/<function>/` (every event kind a
function takes) and change one place: a value replaced by any JSON value, a key removed, a key
added; a JSON text inside the event (an HTTP API body, an SQS or SNS message) is broken inside
as well. Parsing one either gives the request or raises a `FleetError` (the handler's refusal):
never a KeyError, TypeError or other traceback, which would fail the invocation and have the
event retried. A refusal repeats at most `ECHO_LIMIT` characters of any text of the event.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fleet_shared.exceptions import FleetError
from fleet_shared.validation_errors import ECHO_LIMIT
from tests.property.long_texts import long_texts, longest_echoed_run

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXAMPLES = tuple(sorted(EVENTS.glob("*/*.json")))
LONG_TEXT = long_texts(ECHO_LIMIT + 1, 3000)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(("2026-03-29T01:30:00+01:00", "9999-12-31T23:59:59-14:00", "nodes", "{}"))
    | LONG_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.text(max_size=10) | LONG_TEXT


@cache
def parser_of(function: str) -> Callable[[object], Any]:
    """The event parser `function`'s handler declares."""
    module = importlib.import_module(f"handlers.{function}.app")
    return module.FUNCTION._parse  # the parser alone, without the services


class _EmbeddedJson:
    """A JSON text of the event (a body, a message), decoded so a change can reach inside it."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _decoded(node: Any) -> Any:
    """`node` with every JSON object or array carried as text decoded into an `_EmbeddedJson`."""
    if isinstance(node, Mapping):
        return {key: _decoded(child) for key, child in node.items()}
    if isinstance(node, list):
        return [_decoded(child) for child in node]
    if isinstance(node, str) and node[:1] in ("{", "["):
        try:
            return _EmbeddedJson(_decoded(json.loads(node)))
        except ValueError:
            return node
    return node


def _encoded(node: Any) -> Any:
    """`node` as an event again: every `_EmbeddedJson` back to its JSON text."""
    if isinstance(node, _EmbeddedJson):
        return json.dumps(_encoded(node.value))
    if isinstance(node, Mapping):
        return {key: _encoded(child) for key, child in node.items()}
    if isinstance(node, list):
        return [_encoded(child) for child in node]
    return node


def _containers(node: Any) -> list[dict[str, Any] | list[Any]]:
    """Every mapping and list of the event, embedded JSON included, outermost first."""
    if isinstance(node, _EmbeddedJson):
        return _containers(node.value)
    found: list[dict[str, Any] | list[Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for child in node.values():
            found.extend(_containers(child))
    elif isinstance(node, list):
        found.append(node)
        for child in node:
            found.extend(_containers(child))
    return found


@st.composite
def broken_events(draw: st.DrawFn) -> tuple[str, Any]:
    """(function, one of its example events with one place changed)."""
    example = draw(st.sampled_from(EXAMPLES))
    event = _decoded(json.loads(example.read_text()))
    container = draw(st.sampled_from(_containers(event)))
    change = draw(st.sampled_from(("replace", "remove", "add")))
    if isinstance(container, dict):
        if container and change != "add":
            key = draw(st.sampled_from(sorted(container)))
            if change == "remove":
                del container[key]
            else:
                container[key] = draw(JSON_VALUES)
        else:
            container[draw(KEYS)] = draw(JSON_VALUES)
    elif container and change != "add":
        index = draw(st.integers(min_value=0, max_value=len(container) - 1))
        if change == "remove":
            del container[index]
        else:
            container[index] = draw(JSON_VALUES)
    else:
        container.append(draw(JSON_VALUES))
    return example.parent.name, _encoded(event)


def test_every_function_with_example_events_is_parsed_here() -> None:
    # GIVEN the example events WHEN their functions' parsers are found THEN each example parses
    # (so a refusal below is the change's)
    assert len({example.parent.name for example in EXAMPLES}) == 16
    for example in EXAMPLES:
        parser_of(example.parent.name)(json.loads(example.read_text()))


@given(broken=broken_events())
def test_a_broken_event_is_parsed_or_refused_with_a_short_message(broken: tuple[str, Any]) -> None:
    # GIVEN an example event of a function with one place changed to any JSON value
    function, event = broken
    # WHEN the function's parser reads it
    try:
        parser_of(function)(event)
    except FleetError as error:
        # THEN a refusal is a FleetError (the handler's error result) repeating at most a short
        # prefix of a long text of the event
        assert longest_echoed_run(str(error)) <= ECHO_LIMIT
