"""The README's "Functions" table, rendered from the catalog so the two cannot drift apart.

A test checks that README.md contains exactly this table; after changing the catalog, run
`python -m catalog.readme_table` and paste its output into the README. Each function's own hub
and member actions are in its page, docs/functions/<name>.md (`python -m fleetctl.function_docs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from catalog.functions import FUNCTIONS
from catalog.model import (
    AlertTopics,
    CallbackSchedules,
    ClusterSchedule,
    EventRule,
    FixedSchedule,
    FunctionSpec,
    HttpRoute,
    ObjectCreated,
    QueueMessages,
)

TRIGGER_DESCRIPTIONS: dict[type, Callable[[Any], str]] = {
    FixedSchedule: lambda trigger: f"schedule `{trigger.expression}`",
    ClusterSchedule: lambda trigger: f"per-cluster `{trigger.action}` at `{trigger.time_field}`",
    ObjectCreated: lambda trigger: f"S3 created `{trigger.prefix}*{trigger.suffix}`",
    EventRule: lambda trigger: f"event `{trigger.name}`",
    AlertTopics: lambda trigger: f"SNS alerts ({', '.join(trigger.severities)})",
    HttpRoute: lambda trigger: f"HTTP `{trigger.method} {trigger.path}` (IAM)",
    QueueMessages: lambda trigger: f"own SQS queue (batch {trigger.batch_size})",
    CallbackSchedules: lambda trigger: "its own one-time callback schedules",
}

HEADER = (
    "| function | what it does | triggers | memory (MB) | timeout (s) |",
    "|---|---|---|---|---|",
)


def _actions(actions: Sequence[str]) -> str:
    unique = sorted(set(actions))
    return ", ".join(f"`{action}`" for action in unique) if unique else "none"


def hub_actions(spec: FunctionSpec) -> set[str]:
    return {action for statement in spec.permissions for action in statement.actions}


def common_hub_actions(functions: Sequence[FunctionSpec]) -> set[str]:
    """The hub actions every function has (state, alerts, inventory, member roles, key...)."""
    return set.intersection(*(hub_actions(spec) for spec in functions)) if functions else set()


def function_row(spec: FunctionSpec) -> str:
    triggers = "; ".join(TRIGGER_DESCRIPTIONS[type(trigger)](trigger) for trigger in spec.triggers)
    cells = (
        f"[`{spec.name}`](docs/functions/{spec.name}.md)",
        spec.description,
        triggers or "none",
        str(spec.memory_mb),
        str(spec.timeout_seconds),
    )
    return "| " + " | ".join(cells) + " |"


def functions_table(functions: Sequence[FunctionSpec] = FUNCTIONS) -> str:
    """A sentence with the actions all functions share, then one row per function."""
    common = common_hub_actions(functions)
    intro = (
        f"Every function's role allows {_actions(sorted(common))} "
        "(on the fleet's own resources wherever the action allows it; the fleet key only "
        "through the services that encrypt with it: DynamoDB, Lambda, S3, SNS, SQS), "
        "plus writing its own log group and dead-letter queue. Hub actions are granted on the "
        "resolved ARNs of the hub's resources; each function's page lists the actions it has "
        "besides these, and what it does through its own member role in each member account "
        "(deletions only under the catalog's `member_conditions`: the fleet's marker tags, "
        "qualified Lambda versions; except DynamoDB table backups, which carry no tags for IAM "
        "to check: the backup scheduler deletes only backups whose name has its prefix)."
    )
    rows = [function_row(spec) for spec in functions]
    return "\n".join([intro, "", *HEADER, *rows]) + "\n"


if __name__ == "__main__":
    print(functions_table(), end="")
