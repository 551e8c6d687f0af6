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
from tests.property.long_texts import long_texts, longest_echoed_run

STACKS = ("dev", "prod")
LONG_TEXT = long_texts(SHOWN_VALUE_LENGTH + 1, 400)
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
        assert longest_echoed_run(message) <= SHOWN_VALUE_LENGTH
    else:
        # THEN settings that load build the inventory and the functions' settings
        assert settings.inventory("dev").hub.account_id == settings.hub.account_id
        settings.cleanup_policy()
        settings.change_validation()


SIZE_FIELDS = ("min_size", "desired_size", "max_size", "floor")


@st.composite
def resized_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A stack document whose node groups' sizes, floors and off-hours sizes are drawn within
    the rules, then some of them moved by one, across a boundary or not (a floor sometimes left
    out, so the capacity type's default applies)."""
    document = _copy(stack_document(draw(st.sampled_from(STACKS))))
    nudge = st.sampled_from((0,) * 14 + (-1, 1))
    for member in document["members"]:
        for cluster in member.get("clusters", []):
            lowest: dict[str, tuple[int, int]] = {}
            for group in cluster["node_groups"]:
                max_size = draw(st.integers(min_value=1, max_value=8))
                min_size = draw(st.integers(min_value=0, max_value=max_size))
                desired_size = draw(st.integers(min_value=min_size, max_value=max_size))
                group["min_size"] = min_size + draw(nudge)
                group["desired_size"] = desired_size + draw(nudge)
                group["max_size"] = max_size + draw(nudge)
                if draw(st.booleans()):
                    group.pop("floor", None)
                else:
                    group["floor"] = draw(st.integers(min_value=0, max_value=desired_size)) + draw(
                        nudge
                    )
                lowest[group["name"]] = (min_size, max_size)
            schedule = cluster.get("schedule")
            for name in schedule.get("off_hours_desired", {}) if schedule else ():
                low, high = lowest[name]
                size = draw(st.integers(min_value=low, max_value=high)) + draw(nudge)
                schedule["off_hours_desired"][name] = size
    return document


@given(document=resized_documents())
def test_accepted_sizes_keep_the_readmes_rules(document: dict[str, Any]) -> None:
    # GIVEN a stack file whose node group sizes, floors and off-hours sizes are any numbers
    # WHEN it is read as the program reads it
    try:
        settings = validated_stack_settings("dev", {}, document)
    except StackSettingsError as error:
        assert error.field
        return
    # THEN what is accepted keeps min_size <= desired_size <= max_size, a floor at most
    # desired_size and the off-hours size, and an off-hours size within [min_size, max_size];
    # the inventory the functions read carries the same
    inventory = settings.inventory("dev")
    for member, listed in zip(settings.members, inventory.members, strict=True):
        for cluster, listed_cluster in zip(member.clusters, listed.clusters, strict=True):
            off_hours = cluster.schedule.off_hours_desired if cluster.schedule else {}
            for group in cluster.node_groups:
                assert 0 <= group.min_size <= group.desired_size <= group.max_size
                assert group.effective_floor <= group.desired_size
                if group.name in off_hours:
                    size = off_hours[group.name]
                    assert group.min_size <= size <= group.max_size
                    assert group.effective_floor <= size
                entry = listed_cluster.node_group(group.name)
                assert entry is not None
                assert (entry.min_size, entry.desired_size, entry.max_size, entry.floor) == (
                    group.min_size,
                    group.desired_size,
                    group.max_size,
                    group.effective_floor,
                )
