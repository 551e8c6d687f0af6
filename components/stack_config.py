"""Read the stack's settings from Pulumi config and validate them before anything is registered."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from catalog.functions import FUNCTIONS_BY_NAME
from catalog.model import EnvSource
from components.aws_limits import oversize_cleanup_policy
from components.bytecode import (
    RUNTIME,
    RUNTIME_PYTHON_VARIABLE,
    RuntimePython,
    runtime_python_for,
)
from components.exceptions import RuntimePythonError, StackSettingsError
from components.naming import created_cluster_name_problem, stack_name_problem
from components.schedule_payloads import action_days, skipped_run_day
from components.settings import (
    CLEANUP_FUNCTION,
    FleetSettings,
    load_settings,
    misspelt_namespace,
    settings_document,
)


def _configured_values() -> dict[str, Any]:
    """Every config key of the stack, as the engine handed it to the program.

    `pulumi.Config` can only look keys up by name; listing them is what lets a misspelt key
    (`lambda-fleet:dryrun`) be refused instead of silently ignored.
    """
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def read_settings_document() -> dict[str, Any]:
    """The raw `lambda-fleet:` settings as the stack file has them, unknown keys included.

    Pulumi keeps structured values as JSON text and plain strings as they are, so each value is
    decoded as JSON when it is JSON. A value Python cannot decode (a number of more than 4,300
    digits, nesting deeper than the recursion limit) stays text, as one that is no JSON does.
    Nothing is required here: validation reports missing and unknown keys, and such a value,
    in the same one-line form as every other mistake.
    """
    document: dict[str, Any] = {}
    for key, raw in settings_document(_configured_values()).items():
        try:
            document[key] = json.loads(raw) if isinstance(raw, str) else raw
        except (ValueError, RecursionError):
            document[key] = raw
    return document


def load_stack_settings() -> FleetSettings:
    """The validated settings of the current stack (raises StackSettingsError)."""
    return validated_stack_settings(
        pulumi.get_stack(), _configured_values(), read_settings_document()
    )


def validated_stack_settings(
    stack: str, config: Mapping[str, Any], document: dict[str, Any]
) -> FleetSettings:
    """The settings of `stack` from its `lambda-fleet:` `document` (raises StackSettingsError),
    after refusing a key of its whole `config` whose namespace misspells `lambda-fleet:` (its
    setting would be silently ignored), a stack whose name cannot go into the hub's bucket
    names, and an account and a created cluster whose names make its IAM roles' names too long
    (which only the AWS provider would find, at preview). The program and the local tools
    (`fleetctl demo`, `invoke`) read a stack this way."""
    misspelt = misspelt_namespace(config)
    if misspelt is not None:
        raise StackSettingsError(stack, *misspelt)
    settings = load_settings(stack, document)
    problem = stack_name_problem(stack, settings.hub.account_id, settings.hub.region)
    if problem is not None:
        raise StackSettingsError(stack, "stack name", problem)
    for member_index, member in enumerate(settings.members):
        for cluster_index, cluster in enumerate(member.clusters):
            if cluster.existing:
                continue
            problem = created_cluster_name_problem(member.name, cluster.name)
            if problem is not None:
                raise StackSettingsError(
                    stack, f"members[{member_index}].clusters[{cluster_index}].name", problem
                )
    skipped = _skipped_schedule_run(settings, date.today())
    if skipped is not None:
        raise StackSettingsError(stack, *skipped)
    oversize = _oversize_cleanup_policy(settings)
    if oversize is not None:
        raise StackSettingsError(stack, *oversize)
    return settings


def _oversize_cleanup_policy(settings: FleetSettings) -> tuple[str, str] | None:
    """The cleanup policy, when it would pass Lambda's limit on its function's environment, as
    (field, problem), or None. Its `require_tags` can grow without bound: found here, it stops
    the program before anything is registered, not at the function (refuse_oversize_environment)
    after the rest of the hub."""
    if not settings.function_enabled(CLEANUP_FUNCTION):
        return None
    spec = FUNCTIONS_BY_NAME[CLEANUP_FUNCTION]
    (variable,) = (
        name for name, source in spec.environment.items() if source is EnvSource.CLEANUP_POLICY
    )
    problem = oversize_cleanup_policy(variable, settings.cleanup_policy_variable())
    if problem is None:
        return None
    return f"functions.{CLEANUP_FUNCTION}.policy", problem


def _skipped_schedule_run(settings: FleetSettings, start: date) -> tuple[str, str] | None:
    """The first cluster schedule time that a day of the coming year lacks in the schedule's
    zone (a daylight-saving change skips over it), as (field, problem), or None."""
    for member_index, member in enumerate(settings.members):
        for cluster_index, cluster in enumerate(member.clusters):
            schedule = cluster.schedule
            if schedule is None:
                continue
            calendar = settings.cluster_calendar(cluster)
            for action, field in (("scale_up", "scale_up_time"), ("scale_down", "scale_down_time")):
                clock_time = getattr(schedule, field)
                days = action_days(action, schedule, calendar)
                day = skipped_run_day(clock_time, schedule.time_zone, days, start)
                if day is not None:
                    return (
                        f"members[{member_index}].clusters[{cluster_index}].schedule.{field}",
                        f"{clock_time} does not exist in {schedule.time_zone} on {day} "
                        f"({day:%a}), when the clocks go forward, and EventBridge Scheduler skips "
                        "a run at a time that does not exist; choose a time outside the hour "
                        "the clocks skip",
                    )
    return None


def archive_runtime_python(settings: FleetSettings, stack: str) -> RuntimePython | None:
    """The interpreter for the archives' bytecode, as the stack's `bytecode` setting asks, found
    before anything is registered (raises StackSettingsError when it is `required` and missing).
    Without one under `auto`, a warning says that every cold start will compile the sources."""
    try:
        found = runtime_python_for(settings.bytecode)
    except RuntimePythonError as error:
        raise StackSettingsError(stack, "bytecode", str(error)) from None
    if found is None and settings.bytecode == "auto":
        pulumi.log.warn(
            f"no {RUNTIME} interpreter found ({RUNTIME_PYTHON_VARIABLE}, PATH, pyenv): the "
            "archives carry Python sources only, which Lambda compiles at every cold start; "
            "lambda-fleet:bytecode: required makes this an error"
        )
    return found
