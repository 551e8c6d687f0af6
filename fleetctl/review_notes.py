"""What a reviewer checks on each kind of resource, as one short note beside it in the text plan.

One row per resource type, registered in `REVIEW_NOTES`: a schedule's expression and time zone, a
cluster's version and deletion protection, a node group's capacity and sizes, a function's memory,
timeout and reserved concurrency, who may assume a role. A type without a row gets no note.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Inputs = Mapping[str, Any]


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _schedule(inputs: Inputs) -> str:
    note = f"{inputs.get('scheduleExpression')} {inputs.get('scheduleExpressionTimezone', 'UTC')}"
    target_input = (inputs.get("target") or {}).get("input")
    if isinstance(target_input, str):
        try:
            action = json.loads(target_input).get("action")
        except (json.JSONDecodeError, AttributeError):
            action = None
        if action:
            note += f", action {action}"
    if inputs.get("state") == "DISABLED":
        note += ", DISABLED"
    return note


def _cluster(inputs: Inputs) -> str:
    # Without deletion protection, whatever deletes the resource deletes the cluster and all it
    # runs: a renamed or removed stack entry, a replacement, `pulumi destroy`.
    protection = "on" if inputs.get("deletionProtection") is True else "OFF"
    return f"Kubernetes {inputs.get('version')}, deletion protection {protection}"


def _node_group(inputs: Inputs) -> str:
    scaling = inputs.get("scalingConfig") or {}
    sizes = "/".join(_number(scaling.get(key)) for key in ("minSize", "desiredSize", "maxSize"))
    types = ",".join(inputs.get("instanceTypes") or [])
    return f"{inputs.get('capacityType', 'ON_DEMAND')} {types}, min/desired/max {sizes}"


def _function(inputs: Inputs) -> str:
    note = (
        f"{_number(inputs.get('memorySize'))} MB, {_number(inputs.get('timeout'))} s, "
        f"{inputs.get('runtime')} {','.join(inputs.get('architectures') or [])}"
    )
    reserved = inputs.get("reservedConcurrentExecutions")
    if reserved is not None and reserved >= 0:
        note += f", reserved concurrency {_number(reserved)}"
    return note


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, Mapping):
        return [str(principal)]
    found: list[str] = []
    for value in principal.values():
        found.extend(value if isinstance(value, list) else [value])
    return [str(item) for item in found]


def _role(inputs: Inputs) -> str | None:
    policy = inputs.get("assumeRolePolicy")
    if not isinstance(policy, str):
        return None
    try:
        statements = json.loads(policy).get("Statement", [])
    except (json.JSONDecodeError, AttributeError):
        return None
    allowed = [
        (principal, statement.get("Condition"))
        for statement in statements
        if statement.get("Effect") == "Allow"
        for principal in _principals(statement)
    ]
    parts = [
        principal + (" (with conditions)" if condition else "") for principal, condition in allowed
    ]
    return "assumed by " + ", ".join(parts) if parts else None


REVIEW_NOTES: dict[str, Callable[[Inputs], str | None]] = {
    "aws:scheduler/schedule:Schedule": _schedule,
    "eks:index:Cluster": _cluster,
    "eks:index:ManagedNodeGroup": _node_group,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    "aws:lambda/function:Function": _function,
    "aws:iam/role:Role": _role,
}


def review_note(resource_type: str, inputs: Inputs) -> str | None:
    """The note for a resource of `resource_type`, or None."""
    describe = REVIEW_NOTES.get(resource_type)
    return describe(inputs) if describe else None
