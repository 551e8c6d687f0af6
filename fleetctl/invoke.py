"""`fleetctl invoke`: run a function's handler locally with the environment the stack gives it.

The environment comes from the offline plan (the function resource's `environment.variables`),
so what runs locally is what would be deployed. The handler runs in a fresh interpreter whose
import path is laid out like Lambda's: the repository root stands for /var/task (the function
archive keeps `handlers/<name>/`) and `handlers/` for /opt/python (the shared layer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog import function_spec
from catalog.model import FunctionSpec
from fleetctl.exceptions import FleetctlError
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, run_program

LAMBDA_FUNCTION = "aws:lambda/function:Function"


class InvokeError(FleetctlError):
    """Bad arguments to `fleetctl invoke`: unknown function, unreadable event."""


@dataclass(frozen=True)
class InvokeOutcome:
    result: Any
    stderr: str
    returncode: int

    @property
    def is_error(self) -> bool:
        """An error result, every target in error, a failed HTTP answer, failed batch items,
        or a crashed handler."""
        if self.returncode != 0 or not isinstance(self.result, dict):
            return self.returncode != 0
        if self.result.get("status") == "error":
            return True
        targets = self.result.get("results")
        every_target_failed = isinstance(targets, list) and bool(targets)
        every_target_failed = every_target_failed and all(
            isinstance(target, dict) and target.get("status") == "error" for target in targets
        )
        if every_target_failed:
            return True
        if int(self.result.get("statusCode", 200)) >= 400:
            return True
        return bool(self.result.get("batchItemFailures"))


def read_event(source: str) -> Any:
    """The event from a file, or from standard input when the source is `-`."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise InvokeError(f"cannot read event {source}: {error.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvokeError(f"event {source} is not JSON: {error}") from None


def resolve_function(name: str) -> FunctionSpec:
    try:
        return function_spec(name)
    except KeyError as error:
        raise InvokeError(str(error.args[0])) from None


def deployed_environment(run: ProgramRun, spec: FunctionSpec) -> dict[str, str]:
    """The variables the program gives the function, found by its handler string."""
    for resource in run.of_type(LAMBDA_FUNCTION):
        if resource.inputs.get("handler") == spec.handler:
            variables = (resource.inputs.get("environment") or {}).get("variables") or {}
            return {key: str(value) for key, value in variables.items()}
    raise InvokeError(f"the {run.stack} stack deploys no function with handler {spec.handler}")


def invocation_environment(
    variables: dict[str, str],
    *,
    endpoint_url: str | None,
    account_id: str | None,
    region: str | None,
) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(variables)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "handlers")])
    environment.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    if endpoint_url:
        environment["AWS_ENDPOINT_URL"] = endpoint_url
    if account_id:
        environment["HUB_ACCOUNT_ID"] = account_id
    if region:
        environment["AWS_REGION"] = region
        environment["AWS_DEFAULT_REGION"] = region
    return environment


def invoke(
    name: str,
    event: Any,
    *,
    stack: str = "dev",
    endpoint_url: str | None = None,
    account_id: str | None = None,
    region: str | None = None,
    run: ProgramRun | None = None,
) -> InvokeOutcome:
    """Run `name`'s handler in a fresh process with the stack's environment for it."""
    spec = resolve_function(name)
    variables = deployed_environment(run or run_program(stack), spec)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetctl.invoke_runner",
            f"handlers.{spec.name}.app",
            variables.get("POWERTOOLS_SERVICE_NAME", spec.name),
            str(spec.timeout_seconds),
        ],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env=invocation_environment(
            variables, endpoint_url=endpoint_url, account_id=account_id, region=region
        ),
    )
    result = json.loads(completed.stdout) if completed.stdout.strip() else None
    return InvokeOutcome(result=result, stderr=completed.stderr, returncode=completed.returncode)
