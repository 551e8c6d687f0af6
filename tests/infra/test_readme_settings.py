"""The README's stack-settings section: its table names every setting the program accepts and
only those, and the longest account and cluster names it takes together, and its example of a
mistake is the line the program stops with."""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from catalog.functions import FUNCTIONS_BY_NAME
from components.exceptions import StackSettingsError
from components.naming import created_cluster_name_problem
from components.settings import FleetSettings, load_settings
from fleetctl.mocked_program import REPO_ROOT, read_stack_file


def _settings_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    return readme.split("\n## Stack settings\n", 1)[1].split("\n## ", 1)[0]


def _settings_table_first_cells() -> list[str]:
    return re.findall(r"^\| (.+?) \|", _settings_section(), flags=re.MULTILINE)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The settings models an annotation names (inside lists, dicts, unions, Annotated)."""
    if get_origin(annotation) is Annotated:
        return _models_in(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in _models_in(argument)]


def _nested_settings(model: type[BaseModel], path: str, seen: set[type]) -> list[tuple[str, str]]:
    """(path, field name) of every field of `model` and of the models below it."""
    if model in seen:
        return []
    seen.add(model)
    found = []
    for name, field in model.model_fields.items():
        found.append((f"{path}.{name}".lstrip("."), name))
        for nested in _models_in(field.annotation):
            found.extend(_nested_settings(nested, f"{path}.{name}", seen))
    return found


def test_every_top_level_setting_has_a_row_in_the_readme():
    # GIVEN the settings model's top-level fields WHEN the README's settings table is read
    cells = _settings_table_first_cells()
    named = {match for cell in cells for match in re.findall(r"`([a-z_]+)[`.\[]", cell)}
    # THEN each field is named at the start of a setting in some row
    missing = sorted(set(FleetSettings.model_fields) - named)
    assert not missing, f"README settings table lacks: {missing}"


def test_every_nested_setting_is_named_in_the_readme_settings_section():
    # GIVEN every field the stack file may set, at any depth (clusters, node groups, schedule,
    # scaling, calendar, cleanup policy...)
    settings = _nested_settings(FleetSettings, "", set())
    # WHEN the words quoted in the README's settings section are read
    quoted = {
        word
        for span in re.findall(r"`([^`]+)`", _settings_section())
        for word in re.findall(r"[a-z_]+", span)
    }
    # THEN each field is named there, so no accepted setting goes undocumented
    missing = sorted(path for path, name in settings if name not in quoted)
    assert not missing, f"README settings section does not name: {missing}"


def test_the_readmes_example_of_a_mistake_is_the_whole_line_the_program_stops_with() -> None:
    # GIVEN the line the README's settings section quotes for a min_size above desired_size
    example = re.search(r"names the field, for example\s+`([^`]+)`", _settings_section())
    assert example, "the README's settings section no longer quotes a mistake's line"
    quoted = " ".join(example[1].split())
    # WHEN the dev stack file is read with that mistake: its second node group's min_size at 5
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:members"][0]["clusters"][0]["node_groups"][1]["min_size"] = 5
    settings = {
        key.split(":", 1)[1]: value
        for key, value in config.items()
        if key.startswith("lambda-fleet:")
    }
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", settings)
    # THEN the program's line is the README's, word for word
    assert str(raised.value) == quoted


def test_the_readmes_longest_account_and_cluster_name_is_the_longest_the_program_accepts() -> None:
    # GIVEN the most characters the README's settings table gives `<account name>-<cluster name>`
    # of a created cluster
    limit = re.search(
        r"`<account name>-<cluster name>` unique in the stack and, for a created cluster, at most "
        r"(\d+) characters",
        " ".join(_settings_section().split()),
    )
    assert limit, "the README's settings table no longer gives the joined names' length"
    longest = int(limit[1])
    # WHEN an account and a created cluster are named that long together, and one longer
    account = "platform"
    fitting, one_over = ("c" * (length - len(account) - 1) for length in (longest, longest + 1))
    # THEN the first pair is accepted and the second refused (their cluster's IAM roles would not
    # fit IAM's 64 characters with the AWS provider's random suffix)
    assert created_cluster_name_problem(account, fitting) is None
    assert created_cluster_name_problem(account, one_over) is not None


def _setting_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every path a stack file may write under `model`, as the README's table spells them: a
    list's items `name[]`, a mapping's values `name.<name>`, a union each of its models."""
    paths = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        for items, nested in _shapes(field.annotation):
            paths.add(f"{path}{items}")
            paths |= _setting_paths(nested, f"{path}{items}.")
    return paths


def _shapes(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """(how a path reaches it, model) of each settings model `annotation` holds."""
    if get_origin(annotation) is Annotated:
        return _shapes(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    if get_origin(annotation) is list:
        return [("[]" + items, model) for items, model in _shapes(get_args(annotation)[0])]
    if get_origin(annotation) is dict:
        return [(".<name>" + items, model) for items, model in _shapes(get_args(annotation)[1])]
    return [shape for argument in get_args(annotation) for shape in _shapes(argument)]


def _readme_setting_names() -> list[str]:
    """The settings the table's first column names, a sibling written `.name` after the row's
    first path spelt out in full; a path starting `…` stays so."""
    names = []
    for cell in _settings_table_first_cells()[1:]:
        spelt = re.findall(r"`([^`]+)`", cell)
        names.extend(
            spelt[0].rsplit(".", 1)[0] + name if name.startswith(".") else name for name in spelt
        )
    return names


def test_every_setting_the_readmes_table_names_is_one_the_program_accepts() -> None:
    # GIVEN every path the settings model accepts, a catalog function's settings under
    # `functions.<name>`
    accepted = _setting_paths(FleetSettings)
    # WHEN the settings the README's table names are looked up in it (a path starting with `…`
    # ends one the model accepts)
    unknown = []
    for name in _readme_setting_names():
        function = re.match(r"functions\.([a-z_]+)\.", name)
        if function and function[1] not in FUNCTIONS_BY_NAME:
            unknown.append(name)
            continue
        path = re.sub(r"^functions\.[a-z_]+\.", "functions.<name>.", name)
        if path.startswith("…"):
            found = any(known.endswith(f".{path[1:]}") for known in accepted)
        else:
            found = path in accepted
        if not found:
            unknown.append(name)
    # THEN each is a setting the program takes, so no row documents one renamed or removed
    assert not unknown, f"the README's settings table names settings the program refuses: {unknown}"
