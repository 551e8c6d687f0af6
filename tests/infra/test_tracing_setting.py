"""The stack's `tracing` setting: validated, and deployed as Lambda tracing plus the Powertools
switch every function reads."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hub_view import HubView

from components.exceptions import StackSettingsError
from components.settings import load_settings
from fleetctl.mocked_program import REPO_ROOT, read_stack_file, run_program


def _hub_with_tracing(project: Path, mode: str) -> HubView:
    """The dev stack with `tracing: <mode>`, run under Pulumi mocks from a temporary project."""
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:tracing"] = mode
    (project / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (project / f"Pulumi.{mode}.yaml").write_text(yaml.safe_dump({"config": config}))
    return HubView(run_program(mode, project), project_dir=project)


@pytest.fixture(scope="module")
def tracing_hubs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HubView]:
    return {
        mode: _hub_with_tracing(tmp_path_factory.mktemp(mode), mode) for mode in ("detailed", "off")
    }


def test_tracing_defaults_to_lambda_active_tracing(
    stack_settings_document: Callable[[str], dict[str, Any]],
):
    # GIVEN the dev stack, which does not mention tracing WHEN it is validated
    settings = load_settings("dev", stack_settings_document("dev"))
    # THEN tracing is Lambda's own active tracing
    assert settings.tracing == "active"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("detail", "unknown tracing mode 'detail'; did you mean 'detailed'?"),
        ("xray", "unknown tracing mode 'xray'; known: active, detailed, off"),
    ],
)
def test_unknown_tracing_mode_is_named_with_the_mode_it_resembles(
    stack_settings_document: Callable[[str], dict[str, Any]], value: str, problem: str
):
    # GIVEN the dev settings with a tracing mode that does not exist
    document = copy.deepcopy(stack_settings_document("dev"))
    document["tracing"] = value
    # WHEN they are validated
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one line names the field and the problem, with the nearest mode when there is one
    assert str(raised.value) == f"Pulumi.dev.yaml: tracing: {problem}"


def test_active_tracing_traces_in_lambda_and_keeps_the_sdk_out_of_functions(stack_run):
    # GIVEN the dev and prod stacks (tracing not set: active) WHEN the program runs
    hub = HubView(stack_run)
    # THEN every function has Lambda's active tracing and Powertools' tracer switched off
    for spec, function in hub.functions():
        assert function.inputs["tracingConfig"] == {"mode": "Active"}, spec.name
        variables = function.inputs["environment"]["variables"]
        assert variables["POWERTOOLS_TRACE_DISABLED"] == "true", spec.name


@pytest.mark.parametrize(
    ("mode", "lambda_mode", "trace_disabled"),
    [("detailed", "Active", "false"), ("off", "PassThrough", "true")],
)
def test_tracing_mode_sets_lambda_tracing_and_the_powertools_switch(
    tracing_hubs: dict[str, HubView], mode: str, lambda_mode: str, trace_disabled: str
):
    # GIVEN a stack with `tracing: <mode>` WHEN the program runs
    hub = tracing_hubs[mode]
    # THEN every function gets the matching Lambda tracing mode and POWERTOOLS_TRACE_DISABLED
    functions = list(hub.functions())
    assert functions
    for spec, function in functions:
        assert function.inputs["tracingConfig"] == {"mode": lambda_mode}, spec.name
        variables = function.inputs["environment"]["variables"]
        assert variables["POWERTOOLS_TRACE_DISABLED"] == trace_disabled, spec.name
