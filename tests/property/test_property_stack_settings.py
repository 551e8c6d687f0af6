"""Properties of the settings loader (`components/settings/loading.py`) over stack files that
hypothesis breaks: the README's promise that "a mistake stops the program before anything is
registered, with one line that names the field", whatever the mistake.

The broken files start from the repository's own stack files (every setting they use is
reachable) and change one place: a value replaced by any YAML scalar or collection, a key
removed, a key added. Whatever the result, the loader either returns settings or raises one
`StackSettingsError`: never a KeyError, TypeError or other traceback; its message is one line;
it repeats at most `SHOWN_VALUE_LENGTH` characters of a value written into the file. Settings
that load build the inventory the program writes for the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from components.exceptions import StackSettingsError
from components.settings import load_settings, settings_document
from components.stack_config import validated_stack_settings
from fleet_shared.validation_errors import SHOWN_VALUE_LENGTH
from fleetctl.mocked_program import REPO_ROOT, read_stack_file

STACKS = ("dev", "prod")
MARKER = "Zq"
"""Starts every long text the tests write: no setting or message of the project contains it, so
any run of the marker's characters in a message came from the file."""
LONG_TEXT = st.integers(min_value=SHOWN_VALUE_LENGTH + 1, max_value=400).map(
    lambda length: (MARKER + "x0y1" * 100)[:length]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        ("08:00", "25:00", "1.30", "ON_DEMAND", "SPOT", "predictive", "Europe/Berlin")
    )
    | st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
    | LONG_TEXT
)
YAML_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.text(max_size=10) | st.sampled_from(("name", "floor", "max_step", "{region}")) | LONG_TEXT


@cache
def stack_document(stack: str) -> dict[str, Any]:
    """The `lambda-fleet:` settings of the repository's stack file `stack`."""
    return settings_document(read_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml"))


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place of the document (a key of a mapping, an index of a list), outermost first."""
    places = [path] if path else []
    if isinstance(node, Mapping):
        for key, child in node.items():
            places.extend(_places(child, (*path, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            places.extend(_places(child, (*path, index)))
    return places


def _copy(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {key: _copy(child) for key, child in node.items()}
    if isinstance(node, list):
        return [_copy(child) for child in node]
    return node


@st.composite
def broken_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A stack document with one place changed: replaced, removed, or given a new key."""
    document = _copy(stack_document(draw(st.sampled_from(STACKS))))
    path = draw(st.sampled_from(_places(document)))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    change = draw(st.sampled_from(("replace", "remove", "add")))
    if change == "replace":
        parent[last] = draw(YAML_VALUES)
    elif change == "remove":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][draw(KEYS)] = draw(YAML_VALUES)
    elif isinstance(parent[last], list):
        parent[last].append(draw(YAML_VALUES))
    else:
        parent[last] = draw(YAML_VALUES)
    return document


def _longest_run_of_the_file(message: str) -> int:
    """The most characters of a long text of the file that `message` repeats in one piece."""
    longest = 0
    start = message.find(MARKER)
    while start != -1:
        end = start
        while end < len(message) and message[end] in (MARKER + "x0y1"):
            end += 1
        longest = max(longest, end - start)
        start = message.find(MARKER, end)
    return longest


def test_the_stack_files_the_properties_break_load_as_they_are() -> None:
    # GIVEN the repository's stack files WHEN loaded unchanged THEN they load (so a refusal
    # below is the change's)
    for stack in STACKS:
        assert load_settings(stack, stack_document(stack)).hub.name


@given(document=broken_documents())
def test_a_broken_stack_file_loads_or_gets_one_short_line_naming_a_field(
    document: dict[str, Any],
) -> None:
    # GIVEN a stack file with one place changed to anything YAML can hold
    # WHEN the settings are read as the program reads them, and the inventory it writes for the
    # functions is built from them
    try:
        settings = validated_stack_settings("dev", {}, document)
    except StackSettingsError as error:
        # THEN a refusal is one line that names a field, and quotes at most a short prefix of a
        # long value written in the file
        message = str(error)
        assert "\n" not in message
        assert error.field
        assert _longest_run_of_the_file(message) <= SHOWN_VALUE_LENGTH
    else:
        # THEN settings that load build the inventory and the functions' settings
        assert settings.inventory("dev").hub.account_id == settings.hub.account_id
        settings.cleanup_policy()
        settings.change_validation()
