"""The environment a handler runs with locally: the plan's variables for it, laid out as Lambda.

The variables come from the offline plan (the function resource's `environment.variables`), so
what runs locally is what would be deployed: a variable the function reads that the plan does not
set keeps its default, whatever the shell says (as in Lambda, where only the function's own
variables are set). The import path is laid out like Lambda's: the repository root stands for
/var/task (the function archive keeps `handlers/<name>/`) and `handlers/` for /opt/python (the
shared layer).
"""

from __future__ import annotations

import functools
import importlib
import os

from catalog import FUNCTIONS
from catalog.model import FunctionSpec
from fleetctl.exceptions import FleetctlError
from fleetctl.mocked_program import REPO_ROOT, ProgramRun

LAMBDA_FUNCTION = "aws:lambda/function:Function"
# Credentials a local endpoint accepts; they open nothing anywhere else.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def deployed_functions(run: ProgramRun) -> list[FunctionSpec]:
    """The catalog's functions the plan deploys, in catalog order: a stack may switch some off
    (`functions.<name>.enabled: false`; prod's cleanup_manager), and those have no variables."""
    handlers = {resource.inputs.get("handler") for resource in run.of_type(LAMBDA_FUNCTION)}
    return [spec for spec in FUNCTIONS if spec.handler in handlers]


def deployed_environment(run: ProgramRun, spec: FunctionSpec) -> dict[str, str]:
    """The variables the program gives the function, found by its handler string."""
    for resource in run.of_type(LAMBDA_FUNCTION):
        if resource.inputs.get("handler") == spec.handler:
            variables = (resource.inputs.get("environment") or {}).get("variables") or {}
            return {key: str(value) for key, value in variables.items()}
    raise FleetctlError(f"the {run.stack} stack deploys no function with handler {spec.handler}")


@functools.cache
def function_variables(function: str) -> frozenset[str]:
    """The variables `function`'s handler reads: the fields of the environment models of
    `handlers/<function>/environment.py`, the common ones of `FunctionEnvironment` included."""
    # The shared layer's path is set up by `components`, which the plan imports first.
    from fleet_shared.environment import FunctionEnvironment  # noqa: PLC0415

    module = importlib.import_module(f"handlers.{function}.environment")
    models = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, FunctionEnvironment)
    ]
    return frozenset(
        field.alias or name.upper()
        for model in models
        for name, field in model.model_fields.items()
    )


def handler_environment(
    variables: dict[str, str],
    *,
    function: str,
    region: str,
    endpoint_url: str | None,
    credentials: dict[str, str] | None,
) -> dict[str, str]:
    """The process environment of `function`'s local handler.

    A variable the function reads is the plan's (`variables`) or unset, never the shell's: an
    exported `SCALER_COOLDOWN_SECONDS=0` would otherwise scale without the cooldown, in real AWS
    too. With `credentials`, every AWS variable of the shell (profile, keys, config files,
    endpoints) is left out, so nothing the handler does can reach an account through them;
    without, the shell's credentials are kept (the explicit real-AWS mode).
    """
    reads = function_variables(function)
    shell = {name: value for name, value in os.environ.items() if name not in reads}
    if credentials is None:
        environment = shell
    else:
        environment = {name: value for name, value in shell.items() if not name.startswith("AWS_")}
        environment["AWS_ACCESS_KEY_ID"] = credentials["aws_access_key_id"]
        environment["AWS_SECRET_ACCESS_KEY"] = credentials["aws_secret_access_key"]
        if credentials.get("aws_session_token"):
            environment["AWS_SESSION_TOKEN"] = credentials["aws_session_token"]
        environment["AWS_CONFIG_FILE"] = os.devnull
        environment["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    environment.update(variables)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "handlers")])
    environment.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    environment["AWS_REGION"] = region
    environment["AWS_DEFAULT_REGION"] = region
    if endpoint_url:
        environment["AWS_ENDPOINT_URL"] = endpoint_url
    return environment
