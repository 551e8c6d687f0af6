"""The difference between two offline plans, for pull-request review without cloud credentials.

Resources are matched by URN: a resource only in HEAD is added, only in BASE removed, and one in
both whose inputs or options differ is changed, with each changed input shown as a dotted path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetctl.exceptions import PlanError

MAX_SHOWN_VALUE = 120


@dataclass(frozen=True)
class ChangedInput:
    path: str
    before: Any
    after: Any


@dataclass
class PlanDiff:
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], list[ChangedInput]]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def load_plan(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"no plan file {path}") from None
    except json.JSONDecodeError as error:
        raise PlanError(f"{path} is not a plan document: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise PlanError(f"{path} is not a plan document (no `resources` list)")
    return document


def _differences(before: Any, after: Any, path: str) -> list[ChangedInput]:
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[ChangedInput] = []
        for key in sorted(set(before) | set(after)):
            child = f"{path}.{key}" if path else str(key)
            found.extend(_differences(before.get(key), after.get(key), child))
        return found
    if before != after:
        return [ChangedInput(path=path, before=before, after=after)]
    return []


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    base_by_urn = {resource["urn"]: resource for resource in base["resources"]}
    head_by_urn = {resource["urn"]: resource for resource in head["resources"]}
    result = PlanDiff()
    for urn in sorted(head_by_urn.keys() - base_by_urn.keys()):
        result.added.append(head_by_urn[urn])
    for urn in sorted(base_by_urn.keys() - head_by_urn.keys()):
        result.removed.append(base_by_urn[urn])
    for urn in sorted(base_by_urn.keys() & head_by_urn.keys()):
        before, after = base_by_urn[urn], head_by_urn[urn]
        changes = _differences(before.get("inputs", {}), after.get("inputs", {}), "inputs")
        changes += _differences(before.get("options", {}), after.get("options", {}), "options")
        if changes:
            result.changed.append((after, changes))
    return result


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "(absent)"
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


def _label(resource: dict[str, Any]) -> str:
    place = ""
    if resource.get("account_id"):
        place = f" [{resource['account_id']}/{resource['region']}]"
    return f"`{resource['type']}` **{resource['name']}**{place}"


def render_markdown(diff: PlanDiff, stack: str) -> str:
    """Markdown fit for a pull-request comment or a job summary."""
    if diff.is_empty:
        return f"### Offline plan for `{stack}`: no changes\n"
    lines = [
        f"### Offline plan for `{stack}`: {len(diff.added)} to add, "
        f"{len(diff.changed)} to change, {len(diff.removed)} to remove",
        "",
    ]
    for title, resources, sign in (("Added", diff.added, "+"), ("Removed", diff.removed, "-")):
        if resources:
            lines.append(f"#### {title}")
            lines.extend(f"- {sign} {_label(resource)}" for resource in resources)
            lines.append("")
    if diff.changed:
        lines.append("#### Changed")
        for resource, changes in diff.changed:
            lines.append(f"- ~ {_label(resource)}")
            lines.extend(
                f"  - `{change.path}`: {_shown(change.before)} → {_shown(change.after)}"
                for change in changes
            )
        lines.append("")
    return "\n".join(lines)
