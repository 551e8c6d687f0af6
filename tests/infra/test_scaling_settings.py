"""A cluster's `scaling:` block: defaults, validation naming the field, carried in the inventory."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from components.exceptions import StackSettingsError
from components.settings import load_settings

SettingsDocument = Callable[[str], dict[str, Any]]


def _dev_with_scaling(document: SettingsDocument, scaling: Any) -> dict[str, Any]:
    settings = copy.deepcopy(document("dev"))
    settings["members"][0]["clusters"][0]["scaling"] = scaling
    return settings


def test_a_cluster_without_a_scaling_block_is_scaled_by_its_schedule_alone(
    stack_settings_document: SettingsDocument,
) -> None:
    # GIVEN the dev stack file with its cluster's `scaling:` block left out
    document = stack_settings_document("dev")
    document["members"][0]["clusters"][0].pop("scaling")
    settings = load_settings("dev", document)
    # WHEN its inventory is built
    cluster = settings.inventory("dev").members[0].clusters[0]
    # THEN the cluster is in schedule mode with the documented defaults
    assert cluster.scaling.mode == "schedule"
    assert cluster.scaling.confidence_threshold == 0.85
    assert cluster.scaling.target_utilization == 70
    assert cluster.scaling.headroom_percent == 10
    assert cluster.scaling.max_step == 2
    assert cluster.scaling.working_hours_floor is True


def test_a_predictive_scaling_block_is_carried_in_the_inventory(
    stack_settings_document: SettingsDocument,
) -> None:
    # GIVEN a cluster switched to predictive mode with its own bounds
    scaling = {"mode": "predictive", "confidence_threshold": 0.9, "max_step": 3,
               "working_hours_floor": False}  # fmt: skip
    document = _dev_with_scaling(stack_settings_document, scaling)
    # WHEN the settings are validated and the inventory is built
    cluster = load_settings("dev", document).inventory("dev").members[0].clusters[0]
    # THEN the functions read the same block, defaults filled in
    assert cluster.scaling.mode == "predictive"
    assert cluster.scaling.confidence_threshold == 0.9
    assert cluster.scaling.max_step == 3
    assert cluster.scaling.working_hours_floor is False
    assert cluster.scaling.target_utilization == 70


@pytest.mark.parametrize(
    ("scaling", "field", "problem"),
    [
        ({"mode": "forecast"}, "scaling.mode", "'schedule' or 'predictive'"),
        ({"confidence_threshold": 1.5}, "scaling.confidence_threshold", "less than or equal"),
        ({"target_utilization": 0}, "scaling.target_utilization", "greater than 0"),
        ({"headroom_percent": -5}, "scaling.headroom_percent", "greater than or equal"),
        ({"max_step": 0}, "scaling.max_step", "greater than or equal to 1"),
        ({"max_steps": 2}, "scaling.max_steps", "did you mean 'max_step'"),
    ],
    ids=["mode", "threshold", "utilization", "headroom", "max-step", "misspelt"],
)
def test_a_bad_scaling_setting_is_refused_naming_its_field(
    stack_settings_document: SettingsDocument, scaling: dict[str, Any], field: str, problem: str
) -> None:
    # GIVEN a scaling block with one bad value
    document = _dev_with_scaling(stack_settings_document, scaling)
    # WHEN the settings are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the field path and the problem
    assert raised.value.field == f"members[0].clusters[0].{field}"
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("field", "accepted", "refused"),
    [
        ("confidence_threshold", (0, 1), (-0.01, 1.01)),
        ("target_utilization", (1.01, 100), (1, 100.5)),
        ("headroom_percent", (0, 1, 200), (0.5, 200.5)),
    ],
    ids=["confidence", "utilization", "headroom"],
)
def test_the_readmes_ranges_of_the_scaling_settings_hold_at_their_ends(
    stack_settings_document: SettingsDocument,
    field: str,
    accepted: tuple[float, ...],
    refused: tuple[float, ...],
) -> None:
    # GIVEN the README's ranges: confidence_threshold 0-1, target_utilization above 1 and at
    # most 100, headroom_percent 0 or 1-200
    for value in accepted:
        # WHEN a predictive block sets the field to a value at an end THEN it is accepted
        document = _dev_with_scaling(stack_settings_document, {"mode": "predictive", field: value})
        scaling = load_settings("dev", document).members[0].clusters[0].scaling
        assert getattr(scaling, field) == value
    for value in refused:
        # WHEN it is set just past an end THEN it is refused naming the field
        document = _dev_with_scaling(stack_settings_document, {"mode": "predictive", field: value})
        with pytest.raises(StackSettingsError) as raised:
            load_settings("dev", document)
        assert raised.value.field == f"members[0].clusters[0].scaling.{field}"


@pytest.mark.parametrize(
    ("scaling", "field"),
    [
        ({"confidence_threshold": 0.9}, "confidence_threshold"),
        ({"mode": "schedule", "headroom_percent": 20}, "headroom_percent"),
        ({"max_step": 3}, "max_step"),
        ({"target_utilization": 60, "working_hours_floor": False}, "working_hours_floor"),
    ],
    ids=["threshold", "headroom-explicit-schedule", "max-step", "floor"],
)
def test_a_predictive_setting_without_predictive_mode_is_refused_naming_it(
    stack_settings_document: SettingsDocument, scaling: dict[str, Any], field: str
) -> None:
    # GIVEN a scaling block that sets a setting only predictive mode reads, in schedule mode
    # (written or by default): nothing would ever read it
    document = _dev_with_scaling(stack_settings_document, scaling)
    # WHEN the settings are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the setting and says how to make it count
    assert raised.value.field == f"members[0].clusters[0].scaling.{field}"
    assert raised.value.problem == (
        f"only predictive mode reads {field}, and the cluster is in schedule mode: set "
        f"mode: predictive, or leave {field} out"
    )


def test_target_utilization_is_accepted_in_schedule_mode(
    stack_settings_document: SettingsDocument,
) -> None:
    # GIVEN a scaling block in schedule mode with its target utilisation, which scaling_optimizer
    # sizes the node groups for in either mode
    document = _dev_with_scaling(stack_settings_document, {"target_utilization": 60})
    # WHEN the settings are validated THEN they load with it
    scaling = load_settings("dev", document).members[0].clusters[0].scaling
    assert (scaling.mode, scaling.target_utilization) == ("schedule", 60)


@pytest.mark.parametrize("switched_off", ["demand_forecaster", "eks_scaler"])
def test_predictive_mode_with_the_forecaster_or_the_scaler_switched_off_is_refused(
    stack_settings_document: SettingsDocument, switched_off: str
) -> None:
    # GIVEN a cluster in predictive mode in a stack that switches off one of the two functions
    # predictive mode runs through (the forecaster asks the scaler for each hour's sizes)
    document = _dev_with_scaling(stack_settings_document, {"mode": "predictive"})
    document["functions"] = {switched_off: {"enabled": False}}
    # WHEN the settings are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the cluster's mode and the function's switch
    assert raised.value.field == "members[0].clusters[0].scaling.mode"
    assert raised.value.problem == (
        f"predictive mode needs demand_forecaster and eks_scaler, and "
        f"functions.{switched_off}.enabled is false: nothing would ask for this cluster's "
        f"predictive sizes; set mode: schedule, or switch {switched_off} on"
    )


def test_schedule_mode_loads_with_the_forecaster_switched_off(
    stack_settings_document: SettingsDocument,
) -> None:
    # GIVEN a cluster in schedule mode in a stack that switches the demand forecaster off
    document = _dev_with_scaling(stack_settings_document, {"mode": "schedule"})
    document["functions"] = {"demand_forecaster": {"enabled": False}}
    # WHEN the settings are validated THEN they load: the schedule needs no forecast
    settings = load_settings("dev", document)
    assert not settings.function_enabled("demand_forecaster")
    assert settings.members[0].clusters[0].scaling.mode == "schedule"


def test_target_utilization_in_schedule_mode_is_refused_without_the_scaling_optimizer(
    stack_settings_document: SettingsDocument,
) -> None:
    # GIVEN a cluster in schedule mode with its target utilisation, in a stack that switches
    # scaling_optimizer off: in schedule mode nothing else reads it
    document = _dev_with_scaling(stack_settings_document, {"target_utilization": 60})
    document["functions"] = {"scaling_optimizer": {"enabled": False}}
    # WHEN the settings are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the setting and the optimizer's switch
    assert raised.value.field == "members[0].clusters[0].scaling.target_utilization"
    assert raised.value.problem == (
        "in schedule mode only scaling_optimizer reads target_utilization, and "
        "functions.scaling_optimizer.enabled is false: leave target_utilization out, or switch "
        "scaling_optimizer on"
    )


def test_target_utilization_in_predictive_mode_loads_without_the_scaling_optimizer(
    stack_settings_document: SettingsDocument,
) -> None:
    # GIVEN a cluster in predictive mode with its target utilisation, which the forecaster sizes
    # for, in a stack that switches scaling_optimizer off
    scaling = {"mode": "predictive", "target_utilization": 60}
    document = _dev_with_scaling(stack_settings_document, scaling)
    document["functions"] = {"scaling_optimizer": {"enabled": False}}
    # WHEN the settings are validated THEN they load with it
    assert load_settings("dev", document).members[0].clusters[0].scaling.target_utilization == 60


@pytest.mark.parametrize("floor", [True, False])
def test_the_working_hours_floor_is_refused_on_a_cluster_without_a_schedule(
    stack_settings_document: SettingsDocument, floor: bool
) -> None:
    # GIVEN a predictive cluster without a schedule, whose working hours the floor would hold in
    document = _dev_with_scaling(
        stack_settings_document, {"mode": "predictive", "working_hours_floor": floor}
    )
    del document["members"][0]["clusters"][0]["schedule"]
    # WHEN the settings are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one message names the setting and says the cluster has no working hours
    assert raised.value.field == "members[0].clusters[0].scaling.working_hours_floor"
    assert raised.value.problem == (
        "working_hours_floor holds in the schedule's working hours, and the cluster has no "
        "schedule: add a schedule, or leave working_hours_floor out"
    )
