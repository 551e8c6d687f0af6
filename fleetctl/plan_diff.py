"""The difference between two offline plans, for pull-request review without cloud credentials.

Resources are matched by URN: a resource only in HEAD is added, only in BASE removed, and one in
both whose inputs, options or placement (provider, account, region) differ is changed, with each
changed input shown as a path.

Inputs that hold JSON as text (IAM, key, bucket and queue policies, event patterns, schedule
payloads, the inventory) are compared as the documents they are, so a reviewer sees the
statement, action, resource or field that changed instead of two long strings:
- a list of plain values (actions, resources, CIDRs) shows the items added and removed;
- IAM statements are matched by `Sid`, or else by effect and actions, so a statement that gained
  a resource is one change, not a shifted list;
- lists of objects that all have a distinct `name` (members, clusters, node groups) are matched
  by name; other lists item by item;
- an object added or removed as a whole is shown field by field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet_shared.validation_errors import shown_value
from fleetctl.control_characters import escape_control_characters
from fleetctl.exceptions import PlanError
from fleetctl.json_text import UnreadableJsonError, read_json
from fleetctl.text_files import unreadable

MAX_SHOWN_VALUE = 120
COMMENT_MAX_CHARS = 60_000
"""The default length of `plan --diff`: GitHub refuses a pull request comment over 65,536
characters (a dev-to-prod diff is about 79k), and the comment action adds its own marker.
Lengths are counted in UTF-8 bytes: GitHub's refusal names characters, but limits in bytes
have been reported for comments and bodies, and a text within N bytes is within N characters."""
SHORTEST_MAX_CHARS = 1_000
"""Room for the summary line and the note on what was left out, with a resource or two."""
_BACKTICKS = re.compile(r"`+")
VALUE = "value"
ITEMS = "items"
# What the diff reads of each resource of a plan (`fleetctl.plan.plan_document`).
RESOURCE_TEXT_FIELDS = ("urn", "type", "name")
RESOURCE_OBJECT_FIELDS = ("inputs", "options")
PLACEMENT_FIELDS = ("provider", "account_id", "region")


@dataclass(frozen=True)
class ChangedInput:
    """One difference: a value replaced (`kind` value), or plain items added to and removed from
    a list (`kind` items: `before` holds the removed items, `after` the added ones)."""

    path: str
    before: Any
    after: Any
    kind: str = VALUE


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
        document = read_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"no plan file {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"cannot read plan {path}: {unreadable(error)}") from None
    except UnreadableJsonError as error:
        raise PlanError(f"{path} is not a plan document: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise PlanError(f"{path} is not a plan document (no `resources` list)")
    problem = _resources_problem(document["resources"])
    if problem is not None:
        raise PlanError(f"{path} is not a plan document: {problem}")
    return document


def _resources_problem(resources: list[Any]) -> str | None:
    """The first resource of a plan that the diff cannot read, as `resources[i].field: why`, or
    None: a KeyError would end the command with a traceback, and a URN listed twice would hide
    one of its resources from the diff."""
    first_with_urn: dict[str, int] = {}
    for index, resource in enumerate(resources):
        at = f"resources[{index}]"
        if not isinstance(resource, dict):
            return f"{at}: expected a resource object, got {shown_value(resource)}"
        for field_name in RESOURCE_TEXT_FIELDS:
            if not isinstance(resource.get(field_name), str):
                return f"{at}.{field_name}: required, as text"
        for field_name in RESOURCE_OBJECT_FIELDS:
            value = resource.get(field_name)
            if value is not None and not isinstance(value, dict):
                return f"{at}.{field_name}: expected an object, got {shown_value(value)}"
        if resource.get("account_id") and resource.get("region") is None:
            # The label names a placed resource by both.
            return f"{at}.region: required beside account_id"
        earlier = first_with_urn.setdefault(resource["urn"], index)
        if earlier != index:
            urn = shown_value(resource["urn"])
            return f"{at}.urn: {urn} is already the URN of resources[{earlier}]"
    return None


def _as_document(value: Any) -> Any:
    """A JSON object or array held as text, decoded; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _is_plain(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _statement_key(statement: Any, index: int) -> str:
    """How an IAM statement is recognised across two versions of a policy."""
    if not isinstance(statement, dict):
        return f"[{index}]"
    if statement.get("Sid"):
        return f"[Sid={statement['Sid']}]"
    actions = statement.get("Action", statement.get("NotAction", []))
    actions = [actions] if isinstance(actions, str) else actions
    return f"[{statement.get('Effect', '?')} {','.join(sorted(map(str, actions)))}]"


def _keyed(items: list[Any], path: str) -> dict[str, Any]:
    if all(isinstance(item, dict) for item in items):
        if path.endswith("Statement"):
            keyed: dict[str, Any] = {}
            for index, item in enumerate(items):
                key = _statement_key(item, index)
                keyed[key if key not in keyed else f"{key}#{index}"] = item
            return keyed
        names = [item.get("name") for item in items]
        if all(isinstance(name, str) for name in names) and len(set(names)) == len(names):
            return {f"[name={name}]": item for name, item in zip(names, items, strict=True)}
    return {f"[{index}]": item for index, item in enumerate(items)}


def _list_differences(before: list[Any], after: list[Any], path: str) -> list[ChangedInput]:
    if all(map(_is_plain, before + after)):
        removed = [item for item in before if item not in after]
        added = [item for item in after if item not in before]
        if added or removed:
            return [ChangedInput(path=path, before=removed, after=added, kind=ITEMS)]
        return [] if before == after else [ChangedInput(path=path, before=before, after=after)]
    before_keyed, after_keyed = _keyed(before, path), _keyed(after, path)
    found: list[ChangedInput] = []
    for key in [*before_keyed, *(key for key in after_keyed if key not in before_keyed)]:
        found.extend(_differences(before_keyed.get(key), after_keyed.get(key), f"{path}{key}"))
    return found


def _differences(before: Any, after: Any, path: str) -> list[ChangedInput]:
    before, after = _as_document(before), _as_document(after)
    # An object added or removed as a whole is shown field by field, like a changed one.
    if isinstance(before, dict) and after is None:
        after = {}
    if isinstance(after, dict) and before is None:
        before = {}
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[ChangedInput] = []
        for key in sorted(set(before) | set(after)):
            child = f"{path}.{key}" if path else str(key)
            found.extend(_differences(before.get(key), after.get(key), child))
        return found
    if isinstance(before, list) and isinstance(after, str | None):
        after = [after] if isinstance(after, str) else []
    if isinstance(after, list) and isinstance(before, str | None):
        before = [before] if isinstance(before, str) else []
    if isinstance(before, list) and isinstance(after, list):
        return _list_differences(before, after, path)
    if before != after:
        return [ChangedInput(path=path, before=before, after=after)]
    return []


def _placement(resource: dict[str, Any]) -> dict[str, Any]:
    """Where a resource is created: a resource that another provider creates (a cluster moved to
    another region, an account renamed) is another cloud resource, which Pulumi may replace,
    whether or not one of its inputs changed."""
    return {field_name: resource.get(field_name) for field_name in PLACEMENT_FIELDS}


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
        changes += _differences(_placement(before), _placement(after), "placement")
        if changes:
            result.changed.append((after, changes))
    return result


def code(text: str) -> str:
    """`text` as a Markdown code span that shows it as it is.

    Values come from the stack file under review: rendered as Markdown, a health check URL
    ending in `<!--` would hide every later line of the comment from the reviewer, and a
    backtick would end the span early. The fence is longer than any run of backticks inside,
    and control characters (a line break would start a new block) are shown escaped.
    """
    text = escape_control_characters(text)
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    # CommonMark strips one space at each end when both are there: pad so nothing is lost.
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _shown(value: Any) -> str:
    if value is None:
        return "(absent)"
    text = json.dumps(value, sort_keys=True)
    return code(text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…")


def _change_line(change: ChangedInput) -> str:
    if change.kind == ITEMS:
        parts = [f"+ {_shown(item)}" for item in change.after]
        parts += [f"- {_shown(item)}" for item in change.before]
        return f"{code(change.path)}: {'; '.join(parts)}"
    return f"{code(change.path)}: {_shown(change.before)} → {_shown(change.after)}"


def _label(resource: dict[str, Any]) -> str:
    place = ""
    if resource.get("account_id"):
        place = " " + code(f"{resource['account_id']}/{resource['region']}")
    return f"{code(str(resource['type']))} {code(str(resource['name']))}{place}"


def _sections(diff: PlanDiff) -> list[tuple[str, list[str]]]:
    """Each section's title and its resources, one block of lines per resource."""
    changed = [
        "\n".join([f"- ~ {_label(resource)}", *(f"  - {_change_line(c)}" for c in changes)])
        for resource, changes in diff.changed
    ]
    return [
        ("Added", [f"- + {_label(resource)}" for resource in diff.added]),
        ("Removed", [f"- - {_label(resource)}" for resource in diff.removed]),
        ("Changed", changed),
    ]


def _size(text: str) -> int:
    """The length that `max_chars` bounds: UTF-8 bytes (see COMMENT_MAX_CHARS)."""
    return len(text.encode("utf-8"))


def _left_out_note(left_out: int, total: int, max_chars: int) -> str:
    return (
        f"_{left_out} of {total} resources not shown, to keep this under {max_chars} "
        "characters (a pull request comment takes 65,536): "
        "`fleetctl plan --diff BASE.json HEAD.json --max-chars 0` shows them all._"
    )


def _fitting(sections: list[tuple[str, list[str]]], budget: int) -> list[tuple[str, list[str]]]:
    """The resources whose blocks fit in `budget` bytes (`_size`), in order, each whole: a
    larger one is skipped so the smaller ones after it still show."""
    kept: list[tuple[str, list[str]]] = []
    for title, blocks in sections:
        shown: list[str] = []
        for block in blocks:
            if _size(block) + 1 <= budget:
                shown.append(block)
                budget -= _size(block) + 1
        kept.append((title, shown))
    return kept


def render_markdown(diff: PlanDiff, stack: str, max_chars: int = 0) -> str:
    """Markdown fit for a pull-request comment or a job summary: with a `max_chars` (0: no
    limit), the summary and as many resources as fit, whole, then how many were left out."""
    if diff.is_empty:
        return f"### Offline plan for {code(stack)}: no changes\n"
    heading = (
        f"### Offline plan for {code(stack)}: {len(diff.added)} to add, "
        f"{len(diff.changed)} to change, {len(diff.removed)} to remove"
    )
    sections = _sections(diff)
    text = _assembled(heading, sections, note=None)
    if not max_chars or _size(text) <= max_chars:
        return text
    total = sum(len(blocks) for _, blocks in sections)
    # What every shortened text holds besides the resources, at its longest.
    frame = _size(_assembled(heading, [(title, []) for title, _ in sections], "")) + sum(
        _size(f"#### {title}\n\n") for title, _ in sections
    )
    note_room = _size(_left_out_note(total, total, max_chars))
    kept = _fitting(sections, max_chars - frame - note_room)
    left_out = total - sum(len(blocks) for _, blocks in kept)
    return _assembled(heading, kept, _left_out_note(left_out, total, max_chars))


def _assembled(heading: str, sections: list[tuple[str, list[str]]], note: str | None) -> str:
    lines = [heading, ""]
    for title, blocks in sections:
        if blocks:
            lines.append(f"#### {title}")
            lines.extend(blocks)
            lines.append("")
    if note is not None:
        lines.extend([note, ""])
    return "\n".join(lines)
