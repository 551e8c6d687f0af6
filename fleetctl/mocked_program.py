"""Run the Pulumi program offline, under Pulumi mocks, and return every registered resource.

This is both a tool (`fleetctl plan`) and the infrastructure test harness: the program that runs
here is `__main__.py` itself, fed the settings of a real `Pulumi.<stack>.yaml`. The mocks answer
the way AWS would (ids and ARNs in the provider's account and region, caller identity, regions,
availability zones, IAM policy documents) and stack references answer with the outputs a
network stack would export.

Because Pulumi's runtime settings are process-global, one process runs one program at a time;
`run_program` serialises callers with a lock. Each run gets its own event loop: when a
registration fails, Pulumi sets that error on every output future of the resource (and of those
waiting on it), and nobody awaits them once the program has failed. The run's loop knows the
failure was reported as ProgramFailedError and does not report each of those futures again when
they are garbage-collected, as Pulumi's own language host does for a failed program; the
applies still pending are cancelled before the loop closes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import runpy
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import engine_pb2
from pulumi.runtime.stack import run_pulumi_func

from components.exceptions import one_short_line
from components.settings import PROJECT
from fleet_shared.validation_errors import shown_value
from fleetctl.exceptions import PlanError, ProgramFailedError
from fleetctl.leading_zeros import leading_zero_number
from fleetctl.mock_responses import FleetMocks, ProviderPlacement, network_outputs_from_config
from fleetctl.text_files import unreadable

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = REPO_ROOT / "__main__.py"
DISABLE_DEFAULT_PROVIDERS = "pulumi:disable-default-providers"
AWS_PROVIDER_TYPE = "pulumi:providers:aws"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"

# Multi-language component packages, and the packages of the providers that the resources they
# create need; with default providers disabled, each must come explicitly in `providers`.
COMPONENT_PROVIDER_PACKAGES: dict[str, tuple[str, ...]] = {"eks": ("aws",)}

_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class RegisteredResource:
    """One resource as the engine would receive it, with the options that matter in review."""

    urn: str
    type: str
    name: str
    custom: bool
    remote: bool
    parent: str | None
    provider: str | None
    providers: dict[str, str]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    depends_on: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    placement: ProviderPlacement | None

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")


@dataclass(frozen=True)
class CliVersionRequirement:
    """A Pulumi CLI version range the program required of the engine, and how many resources
    (the root stack aside) it had registered by then."""

    version_range: str
    registered_before: int


@dataclass
class ProgramRun:
    """What one run of the program registered, in registration order."""

    stack: str
    resources: list[RegisteredResource]
    stack_outputs: dict[str, Any]
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cli_version_requirements: list[CliVersionRequirement] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def by_urn(self) -> dict[str, RegisteredResource]:
        return {resource.urn: resource for resource in self.resources}

    def children_of(self, urn: str) -> list[RegisteredResource]:
        return [resource for resource in self.resources if resource.parent == urn]

    def descendants_of(self, urn: str) -> list[RegisteredResource]:
        found: list[RegisteredResource] = []
        frontier = [urn]
        while frontier:
            children = [r for r in self.resources if r.parent in frontier]
            found.extend(children)
            frontier = [child.urn for child in children]
        return found

    def dependencies_of(self, resource: RegisteredResource) -> set[str]:
        """The URNs `resource` waits for, directly or through the resources it waits for."""
        by_urn = self.by_urn()
        found: set[str] = set()
        frontier = list(resource.depends_on)
        while frontier:
            urn = frontier.pop()
            if urn not in found:
                found.add(urn)
                frontier.extend(by_urn[urn].depends_on)
        return found

    def provider_of(self, resource: RegisteredResource) -> RegisteredResource | None:
        if resource.provider is None:
            return None
        return self.by_urn().get(resource.provider.rsplit("::", 1)[0])


# libyaml's loader reads a stack file of 100 members about five times faster than the
# pure-Python one; PyYAML builds without it where no wheel carries it.
FAST_YAML_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
YAML_BOOL_TAG = "tag:yaml.org,2002:bool"
YAML_INT_TAG = "tag:yaml.org,2002:int"
YAML_FLOAT_TAG = "tag:yaml.org,2002:float"
YAML_MERGE_TAG = "tag:yaml.org,2002:merge"
YAML_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
YAML_1_2_RESOLVERS = {
    YAML_BOOL_TAG: (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    # PyYAML's YAML 1.1 int and float without the base-60 forms (`18:00` is 1080 there).
    YAML_INT_TAG: (
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$",
        "-+0123456789",
    ),
    # As the CLI's YAML library (go-yaml v3) reads a number that is no integer: digits with an
    # optional fraction and exponent, so `012345678901` (a leading 0, then an 8 or 9) and `1e3` are
    # numbers there, not text.
    YAML_FLOAT_TAG: (
        r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
}


class DuplicateKeyError(yaml.YAMLError):
    """A key written twice in one mapping of a stack file."""

    def __init__(self, key: Any, first_line: int, line: int) -> None:
        super().__init__(
            f"line {line}: key {shown_value(key)} is already set at line {first_line} of the "
            "same mapping, and the Pulumi CLI refuses a key written twice; keep one"
        )


class StackFileLoader(FAST_YAML_LOADER):
    """Reads a stack file's scalars as the Pulumi CLI reads them (YAML 1.2): only `true` and
    `false` are booleans, and `18:00` is text.

    PyYAML follows YAML 1.1, where `off`, `on`, `yes` and `no` are booleans too and digits
    joined by colons are a base-60 number, so `tracing: off` would reach the settings as `False`
    and `scale_down_time: 18:00` as 1080, and be refused here while `pulumi up` takes them.
    A key written twice in one mapping, which PyYAML reads as its last value, is refused as the
    CLI refuses it, and every mapping key is text, as the CLI passes it to the program.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        # Keys compared as written, as the CLI compares them: `1` and `"1"` are one key, `1` and
        # `true` two (Python's 1 == True would take them for one).
        first_lines: dict[str, int] = {}
        for key_node, _ in node.value:
            # A merge key (`<<: *base`) brings keys that the mapping's own may override.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == YAML_MERGE_TAG:
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first_lines:
                raise DuplicateKeyError(key_node.value, first_lines[key_node.value], line)
            first_lines[key_node.value] = line
        # Keys as text, as the CLI passes them to the program (Go's rendering of what YAML read:
        # `true`, `1`), so `labels: {1: web}` means the same offline.
        self.flatten_mapping(node)
        return {
            _cli_key(self.construct_object(key_node, deep=deep)): self.construct_object(
                value_node, deep=deep
            )
            for key_node, value_node in node.value
        }

    def construct_timestamp_or_text(self, node: yaml.ScalarNode) -> Any:
        """An unquoted date or time as YAML's, or as its text when it is none of the calendar
        (`2025-02-29`, `2025-12-31 24:00:00`), as the CLI's YAML reads it: the settings then
        refuse it naming the field (PyYAML's own constructor raises a bare ValueError)."""
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


def _cli_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


StackFileLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in YAML_1_2_RESOLVERS]
    for first, resolvers in FAST_YAML_LOADER.yaml_implicit_resolvers.items()
}
for _tag, (_pattern, _first_characters) in YAML_1_2_RESOLVERS.items():
    StackFileLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first_characters))
StackFileLoader.add_constructor(YAML_TIMESTAMP_TAG, StackFileLoader.construct_timestamp_or_text)


MAX_NESTING = 64
"""Levels of mappings and lists a stack file may nest (its settings need fewer than ten)."""


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file; a clear PlanError if it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"no stack file {path.name} in {path.parent}") from None
    except (OSError, UnicodeDecodeError) as error:
        # The Pulumi CLI reads YAML in UTF-8 only: a file saved as Latin-1 or UTF-16 (a
        # PowerShell redirection's) is refused by `pulumi up` too.
        raise PlanError(f"cannot read stack file {path.name}: {unreadable(error)}") from None
    return stack_config(text, path.name)


def stack_config(text: str, file_name: str) -> dict[str, Any]:
    """The `config:` mapping of the stack file `file_name` holding `text`, as the Pulumi CLI
    reads it; a clear PlanError if it is not one."""
    loader = StackFileLoader(text)
    try:
        root = loader.get_single_node()
        leading_zero = leading_zero_number(root)
        if leading_zero is not None:
            raise PlanError(f"{file_name}: {leading_zero[0]}: {leading_zero[1]}")
        document = None if root is None else loader.construct_document(root)
    except DuplicateKeyError as error:
        raise PlanError(f"{file_name}: {error}") from None
    except yaml.YAMLError:
        # Read again for the message: the pure-Python loader's quotes the offending line.
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise PlanError(f"{file_name} is not valid YAML: {error}") from None
    except ValueError:
        # PyYAML reads an integer with Python's int(), which refuses more than 4,300 digits.
        raise PlanError(f"{file_name}: a number of more than 4,300 digits") from None
    finally:
        loader.dispose()
    if not isinstance(document, Mapping) or not isinstance(document.get("config"), Mapping):
        raise PlanError(f"{file_name} has no `config:` mapping")
    if _nesting(document) > MAX_NESTING:
        # Deeper, handing the config to the program as JSON would end in a RecursionError.
        raise PlanError(f"{file_name}: values nested more than {MAX_NESTING} levels deep")
    return _namespaced(document["config"], file_name)


def _nesting(value: Any) -> int:
    """How many mappings and lists deep `value` goes (0 for a scalar), counted without recursion
    and up to MAX_NESTING + 1 at most: a YAML alias can make a list that holds itself."""
    deepest, pending = 0, [(value, 0)]
    while pending and deepest <= MAX_NESTING:
        item, depth = pending.pop()
        children = (
            item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else ()
        )
        pending.extend((child, depth + 1) for child in children)
        deepest = max(deepest, depth)
    return deepest


def _namespaced(config: Mapping[Any, Any], file_name: str) -> dict[str, Any]:
    """The config with each key that has no namespace (`dry_run:`) in the project's
    (`lambda-fleet:dry_run`), as the Pulumi CLI reads it: left out here, its setting would be
    ignored by the offline tools alone. A key written both ways is refused, since the CLI keeps
    whichever of the two it happens to read last."""
    namespaced: dict[str, Any] = {}
    written_as: dict[str, str] = {}
    for key, value in config.items():
        text = str(key)
        full = text if ":" in text else f"{PROJECT}:{text}"
        if full in written_as:
            raise PlanError(
                f"{file_name}: {one_short_line(full)}: set twice, as "
                f"{shown_value(written_as[full])} and {shown_value(text)} (a key without a "
                "namespace is the project's); keep one"
            )
        written_as[full] = text
        namespaced[full] = value
    return namespaced


def stack_file(stack: str, project_dir: Path = REPO_ROOT) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, recording each registration request the way the engine receives it."""

    def __init__(self, mocks: FleetMocks, default_providers_disabled: bool) -> None:
        super().__init__(mocks)
        self.fleet_mocks = mocks
        self.default_providers_disabled = default_providers_disabled
        self.requests: list[tuple[str, Any]] = []
        self.registered_outputs: dict[str, dict[str, Any]] = {}
        # The engine's qualified type of each resource (by the mock's URN), and the engine URNs
        # taken: the mock's own URNs keep only the parent's last type and let a second
        # registration of one URN replace the first, where the engine stops the preview.
        self.qualified_types: dict[str, str] = {}
        self.engine_urns: set[str] = set()
        # The SDK registers resources from several threads at once.
        self.engine_urns_lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self._refuse_implicit_provider(request)
        engine_urn = self._claim_engine_urn(request)
        request = _with_references_as_urns(request)
        response = super().RegisterResource(_placed_by_aws_provider(request))
        self.qualified_types[response.urn] = engine_urn.split("::")[2]
        self.requests.append((response.urn, request))
        if request.type == AWS_PROVIDER_TYPE:
            self.fleet_mocks.remember_provider(
                f"{response.urn}::{response.id}", rpc.deserialize_properties(request.object)
            )
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        engine_urn = self._claim_engine_urn(request)
        response = super().ReadResource(request)
        self.qualified_types[response.urn] = engine_urn.split("::")[2]
        self.requests.append((response.urn, request))
        return response

    def _claim_engine_urn(self, request: Any) -> str:
        """The URN the engine gives the resource (its parents' types, all of them, then its own,
        and its name), refused as the engine refuses it when a resource registered already has
        it."""
        parent_type = self.qualified_types.get(request.parent or "")
        # The root stack's type is no part of its children's URNs.
        qualified = (
            f"{parent_type}${request.type}"
            if parent_type and parent_type != ROOT_STACK_TYPE
            else request.type
        )
        engine_urn = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{qualified}"
        engine_urn += f"::{request.name}"
        with self.engine_urns_lock:
            if engine_urn in self.engine_urns:
                raise PlanError(
                    f"duplicate resource URN {engine_urn!r}: the engine refuses a second "
                    "resource of one type and name under parents of one type"
                )
            self.engine_urns.add(engine_urn)
        return engine_urn

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.registered_outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        unplaced = self.default_providers_disabled and not request.provider
        if unplaced and request.tok.startswith(("aws:", "eks:")):
            raise PlanError(
                f"call {request.tok} has no explicit provider, and default providers "
                "are disabled for this stack"
            )
        return super().Invoke(request)

    def _refuse_implicit_provider(self, request: Any) -> None:
        """What the engine does when `pulumi:disable-default-providers` is set."""
        if not self.default_providers_disabled or request.type.startswith("pulumi:"):
            return
        package = request.type.split(":", 1)[0]
        if request.custom and not request.provider:
            raise PlanError(
                f"resource {request.name!r} ({request.type}) has no explicit provider, and "
                "default providers are disabled for this stack"
            )
        if not request.remote:
            return
        for needed in (package, *COMPONENT_PROVIDER_PACKAGES.get(package, ())):
            if needed not in request.providers:
                raise PlanError(
                    f"component {request.name!r} ({request.type}) has no provider for package "
                    f"{needed!r}, and default providers are disabled for this stack"
                )


def _with_references_as_urns(request: Any) -> Any:
    """The registration with each resource reference in its inputs replaced by the URN.

    Deserialising a reference inside the mock monitor would rebuild the referenced resource
    through the engine, from another event loop, and fail; the URN names the resource passed,
    which is what the plan and the tests need.
    """
    if not hasattr(request, "object"):
        return request
    document = json_format.MessageToDict(request.object)
    replaced = _urns_for_references(document)
    if replaced == document:
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    copy.object.Clear()
    json_format.ParseDict(replaced, copy.object)
    return copy


def _urns_for_references(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_resource_sig:
            return value["urn"]
        return {key: _urns_for_references(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_urns_for_references(item) for item in value]
    return value


class RecordingEngine(pulumi_mocks.MockEngine):
    """The mock engine, recording the Pulumi CLI versions the program requires.

    No CLI runs an offline plan, so every range is admitted; what was required is in the run.
    """

    def __init__(self, monitor: RecordingMonitor) -> None:
        super().__init__(logger=None)
        self.monitor = monitor
        self.cli_version_requirements: list[CliVersionRequirement] = []

    def RequirePulumiVersion(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        registered = sum(1 for _, r in self.monitor.requests if r.type != ROOT_STACK_TYPE)
        self.cli_version_requirements.append(
            CliVersionRequirement(request.pulumi_version_range, registered)
        )
        return engine_pb2.RequirePulumiVersionResponse()


def _placed_by_aws_provider(request: Any) -> Any:
    """What the mocks see of a multi-language component: its AWS provider places it.

    Its own provider (for example `eks`) says nothing about the account; the AWS provider it
    passes to its children does.
    """
    aws_provider = dict(getattr(request, "providers", {})).get("aws")
    if not getattr(request, "remote", False) or not aws_provider:
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    copy.provider = aws_provider
    return copy


def _config_for_pulumi(config: Mapping[str, Any]) -> dict[str, str]:
    """Pulumi keeps structured config values as JSON strings; plain strings stay as they are."""
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()
    }


class ProgramEventLoop:
    """The event loop of one program run, quiet about the futures its reported failure left
    behind, and closed with no task pending."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.failed = False
        self.loop.set_exception_handler(self._handle_exception)

    def _handle_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        future = context.get("future")
        left_by_failure = (
            self.failed
            and isinstance(future, asyncio.Future)
            and future.done()
            and not future.cancelled()
            and future.exception() is not None
        )
        if not left_by_failure:
            loop.default_exception_handler(context)

    def __enter__(self) -> ProgramEventLoop:
        # Pulumi creates the root stack resource's futures on the thread's current loop.
        asyncio.set_event_loop(self.loop)
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_details: object) -> None:
        # Whatever failed the run is raised to the caller: that is its one report.
        self.failed = error_type is not None
        self._finish_pending_tasks()
        asyncio.set_event_loop(None)
        self.loop.close()

    def _finish_pending_tasks(self) -> None:
        """Cancel the tasks the run left pending and let them finish, as `asyncio.run` does.

        An apply that raised leaves the applies waiting on it pending, and those scheduled in
        the run's last loop iteration not even started. Closed with the loop, each would be
        reported as destroyed while pending, and each unstarted coroutine would warn that it was
        never awaited wherever it is garbage-collected: in a later test, since the failure's
        exception keeps them alive as long as the caller keeps it.
        """
        while pending := [task for task in asyncio.all_tasks(self.loop) if not task.done()]:
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """No automatic garbage collection while a program runs; it resumes (as it was) afterwards.

    A run allocates millions of small objects (outputs, futures, callbacks) that all live until
    it ends, and the collector's passes scanned them again and again: more than half of the CPU
    time of a 100-member plan. What the run leaves behind is collected once, after it, in the
    youngest generation only: every object the run made is there (no pass promoted one), and a
    full pass would scan the whole process again (0.35 s of a 1.7 s dev run).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def run_program(stack: str, project_dir: Path = REPO_ROOT) -> ProgramRun:
    """Run `__main__.py` for `Pulumi.<stack>.yaml` under mocks; return what it registered.

    Raises ProgramFailedError with the program's own message (for example a stack settings
    error) and the URNs it had registered before it failed.
    """
    config = read_stack_file(stack_file(stack, project_dir))
    disabled = config.get(DISABLE_DEFAULT_PROVIDERS) or []
    with _RUN_LOCK, garbage_collection_paused(), ProgramEventLoop() as program_loop:
        mocks = FleetMocks(network_outputs_from_config(config, PROJECT))
        monitor = RecordingMonitor(mocks, default_providers_disabled="*" in disabled)
        settings.reset_options(project=PROJECT, stack=stack, preview=False)
        pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
        engine = RecordingEngine(monitor)
        settings.SETTINGS.engine = engine
        pulumi.runtime.set_all_config(_config_for_pulumi(config))

        def program() -> None:
            runpy.run_path(str(project_dir / PROGRAM.name), run_name="__pulumi_program__")

        try:
            program_loop.loop.run_until_complete(run_pulumi_func(program))
        except (pulumi.RunError, PlanError) as error:
            registered = [urn for urn, _ in monitor.requests]
            raise ProgramFailedError(str(error), registered) from None
        root = settings.get_root_resource()
        stack_outputs = _resolve_stack_outputs(program_loop.loop, root)
        return _collect(stack, monitor, engine, mocks, stack_outputs)


def _resolve_stack_outputs(loop: asyncio.AbstractEventLoop, root: Any) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for key, value in getattr(root, "outputs", {}).items():
        outputs[key] = loop.run_until_complete(pulumi.Output.from_input(value).future())
    return outputs


def _collect(
    stack: str,
    monitor: RecordingMonitor,
    engine: RecordingEngine,
    mocks: FleetMocks,
    stack_outputs: dict[str, Any],
) -> ProgramRun:
    resources = []
    for urn, request in monitor.requests:
        registration = monitor.resources.get(urn)
        # A read (stack references) carries its inputs in `properties` and has no options.
        is_read = not hasattr(request, "object")
        properties = request.properties if is_read else request.object
        resources.append(
            RegisteredResource(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=is_read or bool(request.custom),
                remote=not is_read and bool(request.remote),
                parent=request.parent or None,
                provider=request.provider or None,
                providers={} if is_read else dict(request.providers),
                inputs=dict(rpc.deserialize_properties(properties)),
                outputs=dict(registration.state) if registration else {},
                depends_on=tuple(sorted(set(request.dependencies))),
                ignore_changes=() if is_read else tuple(request.ignoreChanges),
                protect=not is_read and bool(request.protect),
                delete_before_replace=not is_read and bool(request.deleteBeforeReplace),
                retain_on_delete=not is_read and bool(request.retainOnDelete),
                placement=mocks.placement_of(request),
            )
        )
    return ProgramRun(
        stack=stack,
        resources=resources,
        stack_outputs=stack_outputs,
        component_outputs=dict(monitor.registered_outputs),
        cli_version_requirements=list(engine.cli_version_requirements),
    )
