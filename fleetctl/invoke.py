"""`fleetctl invoke`: run a function's handler locally with the environment the stack gives it.

Where the handler's AWS calls go is chosen explicitly, safe by default:
- by default, the demo's world: a moto server on 127.0.0.1 seeded as the demo seeds it (with a
  local Slack/PagerDuty/health stand-in), started for this invocation and stopped after it;
- `--endpoint-url URL`: another endpoint (a moto server, LocalStack) with fake credentials;
- `--real-aws`: the shell's credentials, after STS says whose they are; refused unless they are
  the stack's hub account.
In every mode the region and the function's variables come from the stack; none of the shell's
AWS variables reach the handler except in the real-AWS mode. The handler's log goes to a file.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog import function_spec
from catalog.model import FunctionSpec
from components.settings import FleetSettings
from fleetctl.demo_world import demo_now
from fleetctl.exceptions import FleetctlError
from fleetctl.function_workers import FunctionWorker, WorkerCrashedError
from fleetctl.handler_environment import (
    FAKE_CREDENTIALS,
    deployed_environment,
    handler_environment,
)
from fleetctl.json_text import UnreadableJsonError, read_json
from fleetctl.local_world import local_world, stack_settings
from fleetctl.mocked_program import run_program
from fleetctl.text_files import unreadable

ENDPOINT_PROBE_SECONDS = 3
TARGET_LISTS = ("results", "clusters", "objects", "targets")
"""Where a function's result lists its targets' results: the fan-out's `results`, the
forecaster's `clusters`, the S3-triggered functions' `objects`, the member-account runs'
`targets`; each one failed is an error result, whatever the run's own `status` says."""


class InvokeError(FleetctlError):
    """Bad arguments to `fleetctl invoke`: unknown function, unreadable event, no endpoint."""


@dataclass(frozen=True)
class InvokeTarget:
    """Where the handler's AWS calls go: the demo's world, an endpoint, or real AWS."""

    endpoint_url: str | None = None
    real_aws: bool = False


@dataclass(frozen=True)
class InvokeOutcome:
    result: Any
    crash: str | None = None

    @property
    def is_error(self) -> bool:
        """An error result, every target in error, a failed HTTP answer, failed batch items,
        or a crashed handler."""
        if self.crash is not None:
            return True
        if not isinstance(self.result, dict):
            return False
        if self.result.get("status") == "error":
            return True
        if any(_every_one_failed(self.result.get(key)) for key in TARGET_LISTS):
            return True
        if int(self.result.get("statusCode", 200)) >= 400:
            return True
        return bool(self.result.get("batchItemFailures"))


def _every_one_failed(targets: Any) -> bool:
    """Whether `targets` is a list of targets' results, each of them an error."""
    return (
        isinstance(targets, list)
        and bool(targets)
        and all(isinstance(target, dict) and target.get("status") == "error" for target in targets)
    )


def read_event(source: str) -> Any:
    """The event from a file, or from standard input when the source is `-`."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvokeError(f"cannot read event {source}: {unreadable(error)}") from None
    try:
        return read_json(text)
    except UnreadableJsonError as error:
        raise InvokeError(f"event {source} is not JSON: {error}") from None


def resolve_function(name: str) -> FunctionSpec:
    try:
        return function_spec(name)
    except KeyError as error:
        raise InvokeError(str(error.args[0])) from None


def check_endpoint(endpoint_url: str) -> None:
    """Refuse an endpoint that does not answer, before any handler waits on it."""
    try:
        with urllib.request.urlopen(endpoint_url, timeout=ENDPOINT_PROBE_SECONDS):
            return
    except urllib.error.HTTPError:
        return  # it answered; what it thinks of a bare GET does not matter
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise InvokeError(f"--endpoint-url {endpoint_url} is unreachable: {reason}") from None


def confirm_real_account(settings: FleetSettings, stack: str) -> str:
    """Say which account and region the shell's credentials act in; refuse another account.

    Returns the line said, so that it is the first thing the person reads.
    """
    import boto3  # noqa: PLC0415 - only the real-AWS mode asks STS
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError  # noqa: PLC0415

    region = settings.hub.region
    try:
        identity = boto3.client("sts", region_name=region).get_caller_identity()
    except NoCredentialsError:
        raise InvokeError("--real-aws: this shell has no AWS credentials") from None
    except (BotoCoreError, ClientError) as error:
        raise InvokeError(
            f"--real-aws: STS cannot say whose credentials these are: {error}"
        ) from None
    account = identity["Account"]
    if account != settings.hub.account_id:
        raise InvokeError(
            f"--real-aws: the shell's credentials are for account {account}, not the {stack} "
            f"stack's hub account {settings.hub.account_id}; nothing was invoked"
        )
    return f"acting in real AWS: account {account} as {identity['Arn']}, region {region}"


def refuse_a_directory_as_log(log_path: Path) -> None:
    """Refuse a `--log` that names a directory, before any world starts (removing it as an
    older log raised IsADirectoryError after the invocation's world was up)."""
    if log_path.is_dir():
        raise InvokeError(f"--log {str(log_path)!r} is a directory; name a file")


def run_handler(
    spec: FunctionSpec, event: Any, environment: dict[str, str], log_path: Path
) -> InvokeOutcome:
    """One invocation in a fresh process; its log (and any traceback) goes to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    worker = FunctionWorker(spec.name, environment, log_path)
    try:
        return InvokeOutcome(result=worker.invoke(event))
    except WorkerCrashedError as error:
        return InvokeOutcome(result=None, crash=str(error))
    finally:
        worker.close()


def invoke(
    name: str,
    event: Any,
    *,
    log_path: Path,
    stack: str = "dev",
    target: InvokeTarget | None = None,
    say: Any = print,
) -> InvokeOutcome:
    """Run `name`'s handler with the stack's environment for it, against `target`."""
    target = target or InvokeTarget()
    spec = resolve_function(name)
    refuse_a_directory_as_log(log_path)
    settings = stack_settings(stack)
    region = settings.hub.region
    if target.real_aws:
        say(confirm_real_account(settings, stack))
    elif target.endpoint_url:
        check_endpoint(target.endpoint_url)
    run = run_program(stack)
    variables = deployed_environment(run, spec)
    if target.real_aws:
        environment = handler_environment(
            variables, function=spec.name, region=region, endpoint_url=None, credentials=None
        )
        return run_handler(spec, event, environment, log_path)
    if target.endpoint_url:
        environment = handler_environment(
            variables,
            function=spec.name,
            region=region,
            endpoint_url=target.endpoint_url,
            credentials=FAKE_CREDENTIALS,
        )
        return run_handler(spec, event, environment, log_path)
    with local_world(stack, run, demo_now()) as world:
        say(f"running {spec.name} against the demo's world on {world.world.endpoint_url}")
        return run_handler(spec, event, world.environments[spec.name], log_path)
