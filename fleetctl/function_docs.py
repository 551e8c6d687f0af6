"""The generated sections of the function reference in docs/functions/.

Each page is prose written by hand plus sections between `<!-- generated:<section> -->` and
`<!-- /generated -->` that this module rewrites: a function's triggers and permissions come from
its catalog entry, its environment table from the field descriptions of its environment model
(`handlers.<name>.app.FUNCTION.environment_model`). The index page (docs/functions/README.md)
gets the variables every function shares, from `FunctionEnvironment`.

    python -m fleetctl.function_docs           rewrite every page whose sections are stale
    python -m fleetctl.function_docs --check   list the stale pages and exit 1, change nothing

Both exit 1 when a page cannot be generated (a missing marker, a function not declared on the
handler skeleton, a field without a description), naming the page and the reason.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from catalog.functions import COMMON_PERMISSIONS, FUNCTIONS, function_spec
from catalog.model import (
    AlertTopics,
    CallbackSchedules,
    ClusterSchedule,
    Condition,
    EventRule,
    FixedSchedule,
    FunctionSpec,
    HttpRoute,
    ObjectCreated,
    PermissionStatement,
    QueueMessages,
    ResourceRef,
)
from components.member_permissions import (
    ACTION_SCOPES,
    CLEANUP_DELETIONS,
    KEEP_TAG_PLACEHOLDER,
    STACK_PLACEHOLDER,
)
from components.naming import member_role_name
from components.settings import CLEANUP_FUNCTION
from fleet_shared.state_keys import readable_partitions, writable_partitions

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO_ROOT / "docs" / "functions"
INDEX_PAGE = "README.md"
SECTION_PATTERN = re.compile(
    r"(<!-- generated:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.DOTALL
)
FUNCTION_SECTIONS = ("triggers", "permissions", "environment")
INDEX_SECTIONS = ("common-environment",)

RESOURCE_DESCRIPTIONS: dict[ResourceRef, str] = {
    ResourceRef.STATE_TABLE: "the state table",
    ResourceRef.DATA_BUCKET: "the data bucket",
    ResourceRef.DATA_BUCKET_OBJECTS: "objects of the data bucket",
    ResourceRef.ALERT_TOPICS: "the alert topics",
    ResourceRef.EMAIL_TOPIC: "the e-mail topic",
    ResourceRef.ALERT_SECRETS: "the Slack and PagerDuty secrets the stack names",
    ResourceRef.OWN_MEMBER_ROLES: "its own member role in each member account",
    ResourceRef.FLEET_FUNCTIONS: "the fleet functions it invokes",
    ResourceRef.FUNCTION_QUEUE: "its own queue",
    ResourceRef.FUNCTION_QUEUE_DEAD_LETTERS: "its own queue's dead-letter queue",
    ResourceRef.SECURITY_HUB: "Security Hub and its default product in the hub",
    ResourceRef.FLEET_KEY: "the fleet key",
    ResourceRef.FLEET_LOG_GROUPS: "the fleet functions' log groups",
    ResourceRef.ATHENA_WORKGROUP: "the fleet's Athena workgroup",
    ResourceRef.GLOBAL_INFRASTRUCTURE_PARAMETERS: "the public SSM global-infrastructure parameters",
    ResourceRef.CUR_BUCKET: "the CUR bucket",
    ResourceRef.CUR_OBJECTS: "the CUR objects under the CUR prefix",
    ResourceRef.CUR_GLUE_TABLE: "the CUR's Glue catalog, database and table (athena engine only)",
    ResourceRef.CALLBACK_SCHEDULES: "schedules in its own callback schedule group",
    ResourceRef.CALLBACK_SCHEDULER_ROLE: "its callback scheduler role",
    ResourceRef.ANY: (
        "`*` (no resource type in the Service Authorization Reference applies to the calls)"
    ),
}


class FunctionDocsError(Exception):
    """A page that cannot be generated; the message names the page or function and why."""


@dataclass(frozen=True)
class PageResult:
    """One page: its path, the text on disk, the text generated from it, and the sections that
    could not be generated (kept as they are on disk)."""

    path: Path
    current: str
    generated: str
    errors: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        """Whether the page on disk differs from the generated one."""
        return self.current != self.generated


def _code(value: str) -> str:
    return f"`{value}`"


def _actions(actions: Sequence[str]) -> str:
    return ", ".join(_code(action) for action in sorted(set(actions))) or "none"


def _trigger_rows(spec: FunctionSpec) -> list[str]:
    describe: dict[type, Callable[[Any], str]] = {
        FixedSchedule: lambda trigger: (
            f"schedule `{trigger.name}`: `{trigger.expression}` in the stack's "
            f"`schedule_time_zone`, sending `{json.dumps(trigger.payload, sort_keys=True)}`"
        ),
        ClusterSchedule: lambda trigger: (
            f"one schedule per member cluster with a `schedule`: `{trigger.action}` at its "
            f"`{trigger.time_field}` on its `days`"
            + (
                " (the day after each when the window crosses midnight)"
                if trigger.action == "scale_down"
                else ""
            )
            + ", in its `time_zone`"
        ),
        ObjectCreated: lambda trigger: (
            f"S3 object created in the data bucket under `{trigger.prefix}`"
            + (f" ending `{trigger.suffix}`" if trigger.suffix else "")
        ),
        EventRule: lambda trigger: (
            f"EventBridge rule `{trigger.name}` on the hub bus: "
            f"`{json.dumps(trigger.pattern, sort_keys=True)}`"
            + (", forwarded from every member region" if trigger.forwarded_from_members else "")
        ),
        AlertTopics: lambda trigger: (
            f"SNS subscription to the {', '.join(trigger.severities)} alert topics"
        ),
        HttpRoute: lambda trigger: (
            f"HTTP API route `{trigger.method} {trigger.path}` (IAM authorisation)"
        ),
        QueueMessages: lambda trigger: (
            f"its own SQS queue, batches of {trigger.batch_size}"
            + (", partial batch failures" if trigger.report_batch_item_failures else "")
            + (
                "; its asynchronous invocations that failed past Lambda's retries come back "
                "through it (its on-failure destination)"
                if trigger.failed_invocations
                else ""
            )
        ),
        CallbackSchedules: lambda trigger: (
            "one-time EventBridge Scheduler schedules it creates in its own schedule group, "
            "invoking it back through a scheduler role that may invoke only this function"
        ),
    }
    return [f"- {describe[type(trigger)](trigger)}" for trigger in spec.triggers] or ["- none"]


def triggers_section(spec: FunctionSpec) -> str:
    """What invokes the function, and its size, from the catalog."""
    lines = [
        f"From `catalog/functions.py`: {spec.description}",
        "",
        *_trigger_rows(spec),
        "",
        f"Memory {spec.memory_mb} MB, timeout {spec.timeout_seconds} s"
        + (
            f", reserved concurrency {spec.reserved_concurrency}"
            if spec.reserved_concurrency is not None
            else ""
        )
        + (", with the AWS SDK for pandas layer" if spec.uses_pandas_layer else "")
        + (f"; invokes {', '.join(_code(name) for name in spec.invokes)}" if spec.invokes else "")
        + ".",
    ]
    return "\n".join(lines)


def _statement_row(statement: PermissionStatement) -> str:
    if statement.object_prefixes:
        prefixes = ", ".join(_code(prefix) for prefix in statement.object_prefixes)
        return f"| {_actions(statement.actions)} | objects of the data bucket under {prefixes} |"
    resources = "; ".join(RESOURCE_DESCRIPTIONS[resource] for resource in statement.resources)
    if statement.conditions:
        resources += f", only under {_conditions_text(statement.conditions)}"
    return f"| {_actions(statement.actions)} | {resources} |"


def _conditions_text(conditions: tuple[Condition, ...]) -> str:
    """IAM conditions that all hold, as the page shows them."""
    return "; ".join(
        f"`{c.operator}` `{_any_stack(c.key)}` = "
        + ", ".join(f"`{_any_stack(v)}`" for v in c.values)
        for c in conditions
    )


def _any_stack(text: str) -> str:
    """A condition's key or value as the page shows it: `<stack>` for the stack's name, as in the
    member role's, and `<keep_tag>` for its cleanup policy's keep tag."""
    return text.replace(STACK_PLACEHOLDER, "<stack>").replace(KEEP_TAG_PLACEHOLDER, "<keep_tag>")


def _state_table_partitions_text(function: str) -> str:
    """The state table partitions the function's role reads and writes (`dynamodb:LeadingKeys`,
    `fleet_shared.state_keys`)."""
    written_patterns = writable_partitions(function)
    writes = ", ".join(_code(pattern) for pattern in written_patterns)
    reads = ", ".join(
        _code(pattern)
        for pattern in readable_partitions(function)
        if pattern not in written_patterns
    )
    written = f"reads and writes only the partitions {writes}" if writes else "writes nothing"
    read = f", and reads {reads}" if reads else ""
    return f"Of the state table's items (`dynamodb:LeadingKeys`), it {written}{read}."


def permissions_section(spec: FunctionSpec) -> str:
    """The function's own hub statements and its member actions, from the catalog."""
    own = [statement for statement in spec.permissions if statement not in COMMON_PERMISSIONS]
    lacked = [statement for statement in COMMON_PERMISSIONS if statement not in spec.permissions]
    # A function without one of them (the router raises no alerts) says which.
    but = "".join(
        f" but {_actions(statement.actions)} on "
        + "; ".join(RESOURCE_DESCRIPTIONS[resource] for resource in statement.resources)
        for statement in lacked
    )
    lines = [
        "Besides the statements every function has (state table, alert topics, inventory, fleet "
        f"key, metrics and traces; see the README's function table){but}, its role allows:",
        "",
    ]
    rows = [_statement_row(s) for s in own]
    if any(isinstance(t, QueueMessages) and t.failed_invocations for t in spec.triggers):
        # Granted by the program with the on-failure destination, not by a catalog statement.
        rows.append(
            "| `sqs:SendMessage` | its own queue: Lambda sends the record of a failed "
            "asynchronous invocation there with this role |"
        )
    if rows:
        lines += ["| hub actions | on |", "|---|---|", *rows]
    else:
        lines.append("no other hub actions.")
    lines += ["", _state_table_partitions_text(spec.name), ""]
    if not spec.member_actions:
        lines.append("It has no member role: it acts in the hub account only.")
        return "\n".join(lines)
    lines.append(
        f"Through its own member role `{member_role_name('<stack>', spec.name)}` (trusted only by "
        f"this function's hub role), in member accounts: {_actions(spec.member_actions)}."
    )
    for action in sorted(spec.member_conditions):
        granted = ", or under ".join(
            _conditions_text(conditions) for conditions in spec.member_condition_sets(action)
        )
        lines.append(f"- `{action}` only under {granted}.")
    if spec.name == CLEANUP_FUNCTION:
        for kind, action in sorted(CLEANUP_DELETIONS.items(), key=lambda item: item[1]):
            lines.append(
                f"- `{action}` only when the stack's cleanup policy deletes {_code(kind)} "
                "(`mode: delete`, its `resources` naming them)."
            )
    for action in sorted(set(spec.member_actions)):
        scope = ACTION_SCOPES[action]
        if scope.per_declared_cluster:
            lines.append(
                f"- `{action}` only on the node groups the stack file declares in that account "
                "(on its declared clusters as a whole where they would take the policy past IAM's "
                "limit)."
            )
        if scope.tag_required_on is not None:
            pattern, tag_key = scope.tag_required_on
            kind = pattern.rsplit(":", 1)[-1].split("/", 1)[0]
            lines.append(f"- `{action}` only on a {kind} tagged `{tag_key}`.")
    return "\n".join(lines)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return _code(str(value).lower())
    if isinstance(value, str | int | float):
        return _code(str(value))
    if isinstance(value, tuple | list) and all(isinstance(item, str) for item in value):
        return _code(",".join(value))
    return _code(json.dumps(value, sort_keys=True, default=list))


def _variable(name: str, field: FieldInfo) -> str:
    return field.alias or name.upper()


def _described(owner: str, name: str, field: FieldInfo) -> str:
    if not field.description:
        raise FunctionDocsError(f"{owner}: field {name} has no description")
    return field.description


def _own_fields(model: type[BaseModel], base: type[BaseModel]) -> list[str]:
    """Fields the function's model declares itself (new, or re-declared from `base`)."""
    declared: set[str] = set()
    for cls in model.__mro__:
        if cls is base or not (isinstance(cls, type) and issubclass(cls, base)):
            continue
        declared.update(inspect.get_annotations(cls))
    return [name for name in model.model_fields if name in declared]


def environment_table(
    model: type[BaseModel], names: Sequence[str], deployed: Mapping[str, str]
) -> list[str]:
    """Rows `variable | default | set by the program from | meaning` of the named fields."""
    owner = f"{model.__module__}.{model.__qualname__}"
    rows = [
        "| variable | default | set by the program from | meaning |",
        "|---|---|---|---|",
    ]
    for name in names:
        field = model.model_fields[name]
        variable = _variable(name, field)
        source = _code(deployed[variable]) if variable in deployed else "not set"
        rows.append(
            f"| {_code(variable)} | {_default(field)} | {source} | "
            f"{_described(owner, name, field)} |"
        )
    return rows


def _common_environment_model() -> type[BaseModel]:
    _import_handlers_path()
    module = importlib.import_module("fleet_shared.environment")
    model: type[BaseModel] = module.FunctionEnvironment
    return model


def environment_model(name: str) -> type[BaseModel]:
    """The environment model the function declares on the handler skeleton."""
    _import_handlers_path()
    module = importlib.import_module(f"handlers.{name}.app")
    function = getattr(module, "FUNCTION", None)
    model = getattr(function, "environment_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise FunctionDocsError(
            f"{name}: handlers.{name}.app declares no FUNCTION with an environment model "
            "(it is not on the handler skeleton)"
        )
    return model


def environment_section(spec: FunctionSpec, model: type[BaseModel]) -> str:
    """The function's own variables as a table, then the common ones it also reads."""
    base = _common_environment_model()
    deployed = {variable: source.value for variable, source in spec.environment.items()}
    own = _own_fields(model, base)
    lines = [
        f"From `{model.__module__}.{model.__qualname__}`; the program sets each variable "
        "from the stack as shown, the others keep their default.",
        "",
        *environment_table(model, own, deployed),
    ]
    inherited = [name for name in model.model_fields if name not in own]
    if inherited:
        names = ", ".join(_code(_variable(name, model.model_fields[name])) for name in inherited)
        lines += ["", f"Also read, as described in [the common variables](README.md): {names}."]
    read = {_variable(name, field) for name, field in model.model_fields.items()}
    unread = sorted(set(deployed) - read)
    if unread:
        lines += ["", f"Set by the program but not read: {', '.join(map(_code, unread))}."]
    return "\n".join(lines)


def common_environment_section() -> str:
    """The variables every function's model inherits, with the catalog's common sources."""
    base = _common_environment_model()
    deployed = {
        variable: source.value
        for variable, source in FUNCTIONS[0].environment.items()
        if all(spec.environment.get(variable) == source for spec in FUNCTIONS)
    }
    lines = [
        "From `fleet_shared.environment.FunctionEnvironment`; the program gives every function "
        "these variables. A function that needs one re-declares it in its own table.",
        "",
        *environment_table(base, list(base.model_fields), deployed),
    ]
    return "\n".join(lines)


def _import_handlers_path() -> None:
    # In Lambda the shared layer is the top-level package `fleet_shared`; handlers/ stands in.
    handlers_dir = str(REPO_ROOT / "handlers")
    if handlers_dir not in sys.path:
        sys.path.append(handlers_dir)


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def render_page(path: Path, text: str, sections: Mapping[str, Callable[[], str]]) -> PageResult:
    """`text` with each generated section replaced; every expected section must be present.

    A section whose builder raises `FunctionDocsError` keeps its current body and is listed in
    the result's errors, so the other sections are still brought up to date.
    """
    found = {match["name"] for match in SECTION_PATTERN.finditer(text)}
    missing = [name for name in sections if name not in found]
    unknown = sorted(found - set(sections))
    if missing or unknown:
        problems = [f"missing marker <!-- generated:{name} -->" for name in missing]
        problems += [f"unknown section {name}" for name in unknown]
        raise FunctionDocsError(f"{_relative(path)}: {'; '.join(problems)}")
    errors: list[str] = []

    def replace(match: re.Match[str]) -> str:
        try:
            body = sections[match["name"]]() + "\n"
        except FunctionDocsError as error:
            errors.append(f"{_relative(path)}: section {match['name']}: {error}")
            body = match["body"]
        return f"{match[1]}{body}{match[4]}"

    generated = SECTION_PATTERN.sub(replace, text)
    return PageResult(path, text, generated, tuple(errors))


def function_page(name: str, docs_dir: Path = DOCS_DIR) -> PageResult:
    """The page of catalog function `name`, as on disk and as generated."""
    spec = function_spec(name)
    path = docs_dir / f"{name}.md"
    if not path.is_file():
        raise FunctionDocsError(f"{_relative(path)}: no such page")
    current = path.read_text()
    sections = {
        "triggers": lambda: triggers_section(spec),
        "permissions": lambda: permissions_section(spec),
        "environment": lambda: environment_section(spec, environment_model(name)),
    }
    return render_page(path, current, sections)


def index_page(docs_dir: Path = DOCS_DIR) -> PageResult:
    """The index page, as on disk and as generated."""
    path = docs_dir / INDEX_PAGE
    return render_page(path, path.read_text(), {"common-environment": common_environment_section})


def main(argv: Sequence[str] | None = None, docs_dir: Path = DOCS_DIR) -> int:
    """Rewrite (or with --check, list) the stale pages; 1 when any is stale or failed."""
    parser = argparse.ArgumentParser(
        prog="python -m fleetctl.function_docs",
        description="Generate the sections of docs/functions/*.md from the catalog and models.",
    )
    parser.add_argument("--check", action="store_true", help="list stale pages, change nothing")
    arguments = parser.parse_args(argv)

    builders: list[Callable[[], PageResult]] = [lambda: index_page(docs_dir)]
    builders += [lambda name=spec.name: function_page(name, docs_dir) for spec in FUNCTIONS]
    status = 0
    for build in builders:
        try:
            page = build()
        except FunctionDocsError as error:
            print(f"cannot generate: {error}", file=sys.stderr)
            status = 1
            continue
        for error in page.errors:
            print(f"cannot generate: {error}", file=sys.stderr)
            status = 1
        if not page.stale:
            continue
        if arguments.check:
            print(f"stale: {_relative(page.path)}")
            status = 1
        else:
            page.path.write_text(page.generated)
            print(f"rewrote: {_relative(page.path)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
