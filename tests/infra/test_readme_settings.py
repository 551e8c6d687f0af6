"""The README's stack-settings section: its table names every setting the program accepts and
only those, each default as the program has it, and the longest account and cluster names it
takes together, and its example of a mistake is the line the program stops with."""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from catalog.functions import FUNCTIONS_BY_NAME
from catalog.model import FixedSchedule
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


def _shapes(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """(how a path reaches it, model) of each settings model `annotation` holds: a list's items
    `[]`, a mapping's values `.<name>`, a union's each of its models."""
    if get_origin(annotation) is Annotated:
        return _shapes(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    if get_origin(annotation) is list:
        return [("[]" + items, model) for items, model in _shapes(get_args(annotation)[0])]
    if get_origin(annotation) is dict:
        return [(".<name>" + items, model) for items, model in _shapes(get_args(annotation)[1])]
    return [shape for argument in get_args(annotation) for shape in _shapes(argument)]


def _setting_fields(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """Every field a stack file may write under `model`, by its path as the README's table spells
    it (`members[].clusters[].name`, `functions.<name>.enabled`)."""
    fields = {}
    for name, field in model.model_fields.items():
        fields[f"{prefix}{name}"] = field
        for items, nested in _shapes(field.annotation):
            fields |= _setting_fields(nested, f"{prefix}{name}{items}.")
    return fields


def _settings_rows() -> list[tuple[str, str]]:
    """(first cell, default cell) of each row of the README's settings table."""
    rows = []
    for line in _settings_section().splitlines():
        if line.startswith("| ") and not line.startswith("| setting |"):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            rows.append((cells[0], cells[-1]))
    return rows


def _spelt_names(first_cell: str) -> list[str]:
    """The settings a row's first cell names, a sibling written `.name` after the row's first
    path spelt out in full; a path starting `…` stays so."""
    spelt = re.findall(r"`([^`]+)`", first_cell)
    return [spelt[0].rsplit(".", 1)[0] + name if name[0] == "." else name for name in spelt]


def _fields_named(name: str, fields: dict[str, FieldInfo]) -> list[FieldInfo]:
    """The fields a README path names (a catalog function's under `functions.<name>`): a path
    starting `…` every field whose path it ends; none when it names no field."""
    function = re.match(r"functions\.([a-z_]+)\.", name)
    if function and function[1] != "<name>" and function[1] not in FUNCTIONS_BY_NAME:
        return []
    path = re.sub(r"^functions\.[a-z_<>]+\.", "functions.<name>.", name).removesuffix("[]")
    if path.startswith("…"):
        return [field for known, field in fields.items() if known.endswith(f".{path[1:]}")]
    return [fields[path]] if path in fields else []


def test_every_setting_the_readmes_table_names_is_one_the_program_accepts() -> None:
    # GIVEN every field the settings model accepts, by its path
    fields = _setting_fields(FleetSettings)
    # WHEN the settings the README's table names are looked up among them
    names = [name for cell, _ in _settings_rows() for name in _spelt_names(cell)]
    unknown = [name for name in names if not _fields_named(name, fields)]
    # THEN each is a setting the program takes, so no row documents one renamed or removed
    assert len(names) > 50
    assert not unknown, f"the README's settings table names settings the program refuses: {unknown}"


def _shown(value: Any) -> set[str]:
    """How the README's default column writes `value`: `true`, `70`, `[]`, an element of a list."""
    if isinstance(value, bool):
        return {str(value).lower()}
    if isinstance(value, int | float):
        return {f"{value:g}"}
    if isinstance(value, list | tuple | dict) and not value:
        return {"[]" if isinstance(value, list | tuple) else "{}"}
    if isinstance(value, list | tuple):
        return {shown for item in value for shown in _shown(item)}
    return {str(value)}


def _defaults_shown(name: str, field: FieldInfo) -> set[str]:
    """How the README may write the default of a setting (`value`, or `name: value`) and those of
    the settings of the block it is (a cleanup policy, a scaling block), unwritten or not."""
    shown: set[str] = set()
    if field.default_factory is not None or field.default is not PydanticUndefined:
        value = field.get_default(call_default_factory=True)
        shown |= {f"{name}: {text}" for text in _shown(value)} | _shown(value)
    for items, model in _shapes(field.annotation):
        if not items:
            for nested_name, nested in model.model_fields.items():
                shown |= _defaults_shown(nested_name, nested)
    return shown


def _without_default(field: FieldInfo) -> bool:
    """A field the stack file must write: no default, or one that says nothing (None, empty)."""
    if field.default_factory is None and field.default is PydanticUndefined:
        return True
    return field.get_default(call_default_factory=True) in (None, [], {})


# Rows whose default the table writes in words a value cannot be compared with, and the test that
# holds it: the floor's per capacity type (the model's is None, resolved by `effective_floor`).
DEFAULTS_IN_WORDS = {
    "`…node_groups[].floor`": "test_floors_default_to_one_for_on_demand_and_zero_for_spot",
}


def test_every_default_the_readmes_settings_table_gives_is_the_programs() -> None:
    # GIVEN every field of the settings model by its path, and the names of settings
    fields = _setting_fields(FleetSettings)
    setting_names = {path.rsplit(".", 1)[-1] for path in fields}
    wrong = []
    for first_cell, default in _settings_rows():
        if first_cell in DEFAULTS_IN_WORDS:
            continue
        # WHEN a row's default cell is read: each value it quotes (`false`, `availability_zones:
        # 3`, the first and last days of `MON`-`FRI`) but a setting's name, or the number it is,
        # or its word that the setting is required
        quoted = re.findall(r"`([^`]+)`", default) or re.findall(r"^\d+$", default)
        row_fields = [
            (name.rsplit(".", 1)[-1].removesuffix("[]"), field)
            for name in _spelt_names(first_cell)
            for field in _fields_named(name, fields)
        ]
        shown = {text for name, field in row_fields for text in _defaults_shown(name, field)}
        # THEN each value is the default of one of the row's settings (or of the block it is),
        # and a setting the row says is required has no default that would stand in for it
        wrong += [
            f"{first_cell}: {value}"
            for value in quoted
            if value not in setting_names and value not in shown
        ]
        if default.startswith("required") and not all(_without_default(f) for _, f in row_fields):
            wrong.append(f"{first_cell}: required, but the program has a default")
    assert not wrong, f"README settings defaults that are not the program's: {wrong}"


def test_the_readme_names_every_function_that_cannot_stay_on_without_the_one_it_reads() -> None:
    # GIVEN the catalog's functions whose only input another function writes
    needed = {
        (spec.name, producer)
        for spec in FUNCTIONS_BY_NAME.values()
        for producer in spec.reads_output_of
    }
    # WHEN the README's row on switching functions off is read for the pairs it names
    (switches,) = [
        line
        for line in _settings_section().splitlines()
        if line.startswith("| `functions.<name>.enabled` |")
    ]
    named = set(re.findall(r"`([a-z_]+)` (?:reads )?`([a-z_]+)`'s", switches))
    # THEN it names each of them, so a stack file switching one producer off is not a surprise
    assert named == needed


def test_the_readme_names_every_function_whose_schedule_runs_in_the_schedule_time_zone() -> None:
    # GIVEN the functions with a fixed schedule at a time of day (a cron expression), which the
    # program puts in `schedule_time_zone` (a rate runs the same in every zone)
    at_a_time_of_day = {
        spec.name
        for spec in FUNCTIONS_BY_NAME.values()
        for trigger in spec.triggers
        if isinstance(trigger, FixedSchedule) and trigger.expression.startswith("cron(")
    }
    # WHEN the README's `schedule_time_zone` row is read for the schedules it lists
    (row,) = [
        line
        for line in _settings_section().splitlines()
        if line.startswith("| `schedule_time_zone` |")
    ]
    listed = re.search(r"time zone of the fleet-wide schedules \(([^)]+)\)", row)
    assert listed, "the README no longer lists the schedules in schedule_time_zone"
    # THEN each function is named there by the first word of its name (backup, cost, report...)
    unnamed = sorted(name for name in at_a_time_of_day if name.split("_")[0] not in listed[1])
    assert not unnamed, f"schedule_time_zone's row does not name the schedules of {unnamed}"
