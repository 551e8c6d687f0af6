"""The README's stack-settings table names every setting the program accepts."""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from components.settings import FleetSettings
from fleetctl.mocked_program import REPO_ROOT


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
