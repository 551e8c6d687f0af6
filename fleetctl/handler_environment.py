"""The environment a handler runs with locally: the plan's variables for it, laid out as Lambda.

The variables come from the offline plan (the function resource's `environment.variables`), so
what runs locally is what would be deployed. The import path is laid out like Lambda's: the
repository root stands for /var/task (the function archive keeps `handlers/<name>/`) and
`handlers/` for /opt/python (the shared layer).
"""

from __future__ import annotations

import os

from catalog.model import FunctionSpec
from fleetctl.exceptions import FleetctlError
from fleetctl.mocked_program import REPO_ROOT, ProgramRun

LAMBDA_FUNCTION = "aws:lambda/function:Function"
# Credentials a local endpoint accepts; they open nothing anywhere else.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def deployed_environment(run: ProgramRun, spec: FunctionSpec) -> dict[str, str]:
    """The variables the program gives the function, found by its handler string."""
    for resource in run.of_type(LAMBDA_FUNCTION):
        if resource.inputs.get("handler") == spec.handler:
            variables = (resource.inputs.get("environment") or {}).get("variables") or {}
            return {key: str(value) for key, value in variables.items()}
    raise FleetctlError(f"the {run.stack} stack deploys no function with handler {spec.handler}")


def handler_environment(
    variables: dict[str, str],
    *,
    region: str,
    endpoint_url: str | None,
    credentials: dict[str, str] | None,
) -> dict[str, str]:
    """The process environment of a local handler.

    With `credentials`, every AWS variable of the shell (profile, keys, config files, endpoints)
    is left out, so nothing the handler does can reach an account through them; without, the
    shell's credentials are kept (the explicit real-AWS mode).
    """
    if credentials is None:
        environment = dict(os.environ)
    else:
        environment = {
            name: value for name, value in os.environ.items() if not name.startswith("AWS_")
        }
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
