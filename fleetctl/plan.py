"""The offline plan: the program's resources as a stable JSON document and as a readable tree."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pulumi

from fleetctl.mocked_program import REPO_ROOT, ProgramRun, RegisteredResource
from fleetctl.review_notes import review_note

PROGRAM_WIDE = "program-wide"


def _portable_path(path: str) -> str:
    """Archive paths relative to the checkout, so two checkouts give the same plan."""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(REPO_ROOT):
        return resolved.relative_to(REPO_ROOT).as_posix()
    return path


def plain(value: Any) -> Any:
    """A JSON-ready copy of a resource input: assets and archives become their identities."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"file": _portable_path(str(value.path))}
    if isinstance(value, pulumi.AssetArchive):
        return {"assets": {key: plain(item) for key, item in sorted(value.assets.items())}}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    if isinstance(value, pulumi.Resource):
        return {"resource": type(value).__name__}
    return value


def group_key(resource: RegisteredResource) -> str:
    if resource.placement is None:
        return PROGRAM_WIDE
    return f"{resource.placement.account_id}/{resource.placement.region}"


def _options(resource: RegisteredResource) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if resource.ignore_changes:
        options["ignore_changes"] = sorted(resource.ignore_changes)
    if resource.protect:
        options["protect"] = True
    if resource.depends_on:
        options["depends_on"] = list(resource.depends_on)
    if resource.delete_before_replace:
        options["delete_before_replace"] = True
    if resource.retain_on_delete:
        options["retain_on_delete"] = True
    return options


def _decoded_provider_inputs(resource: RegisteredResource) -> dict[str, Any]:
    """Providers receive structured settings as JSON text; decode them for a readable diff."""
    if not resource.is_provider:
        return resource.inputs
    decoded: dict[str, Any] = {}
    for key, value in resource.inputs.items():
        try:
            decoded[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            decoded[key] = value
    return decoded


def plan_document(run: ProgramRun) -> dict[str, Any]:
    """Sorted by URN, with every input, so that the same program gives the same bytes."""
    resources = []
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for resource in sorted(run.resources, key=lambda item: item.urn):
        entry: dict[str, Any] = {
            "urn": resource.urn,
            "type": resource.type,
            "name": resource.name,
            "parent": resource.parent,
            "provider": resource.provider.rsplit("::", 1)[0] if resource.provider else None,
            "account_id": resource.placement.account_id if resource.placement else None,
            "region": resource.placement.region if resource.placement else None,
            "inputs": plain(_decoded_provider_inputs(resource)),
        }
        options = _options(resource)
        if options:
            entry["options"] = options
        resources.append(entry)
        groups[group_key(resource)][resource.type] += 1
    return {
        "project": "lambda-fleet",
        "stack": run.stack,
        "resource_count": len(resources),
        "summary": {
            key: {"total": sum(counts.values()), "by_type": dict(sorted(counts.items()))}
            for key, counts in sorted(groups.items())
        },
        "outputs": plain(run.stack_outputs),
        "resources": resources,
    }


def render_json(run: ProgramRun) -> str:
    return json.dumps(plan_document(run), indent=2, sort_keys=True, default=str) + "\n"


def _account_names(run: ProgramRun) -> dict[str, str]:
    names: dict[str, str] = {}
    for resource in run.resources:
        if resource.is_provider and resource.placement is not None:
            account_name = resource.placement.default_tags.get("account")
            if account_name:
                names[resource.placement.account_id] = account_name
    return names


def _tree_lines(members: list[RegisteredResource], names_by_urn: dict[str, str]) -> list[str]:
    """One group's resources as an indented tree; roots name their parent outside the group."""
    in_group = {resource.urn for resource in members}
    children: dict[str | None, list[RegisteredResource]] = defaultdict(list)
    for resource in members:
        children[resource.parent if resource.parent in in_group else None].append(resource)
    lines: list[str] = []
    pending: list[tuple[RegisteredResource, int]] = [(root, 1) for root in reversed(children[None])]
    while pending:
        resource, depth = pending.pop()
        context = ""
        if depth == 1 and resource.parent and resource.parent not in in_group:
            context = f"  (in {names_by_urn.get(resource.parent, '?')})"
        note = review_note(resource.type, resource.inputs)
        shown = f"  [{note}]" if note else ""
        lines.append(f"{'  ' * depth}{resource.type}  {resource.name}{context}{shown}")
        pending.extend((child, depth + 1) for child in reversed(children[resource.urn]))
    return lines


def render_tree(run: ProgramRun) -> str:
    """Resources grouped by account and region, each group a tree of parents and children."""
    by_group: dict[str, list[RegisteredResource]] = defaultdict(list)
    for resource in run.resources:
        if resource.type == "pulumi:pulumi:Stack":
            continue
        by_group[group_key(resource)].append(resource)
    account_names = _account_names(run)
    names_by_urn = {resource.urn: resource.name for resource in run.resources}
    counted = sum(len(items) for items in by_group.values())
    lines = [
        f"Stack {run.stack}: {counted} resources in "
        f"{len([key for key in by_group if key != PROGRAM_WIDE])} account/region pairs",
        "",
    ]
    for key in sorted(by_group, key=lambda item: (item == PROGRAM_WIDE, item)):
        members = sorted(by_group[key], key=lambda item: (item.type, item.name))
        if key == PROGRAM_WIDE:
            title = "program-wide components"
        else:
            account_id, region = key.split("/")
            title = f"account {account_id} ({account_names.get(account_id, '?')}) in {region}"
        lines.append(f"{title}: {len(members)} resources")
        lines.extend(_tree_lines(members, names_by_urn))
        counts = Counter(resource.type for resource in members)
        lines.append(
            "  counts: " + ", ".join(f"{type_} x{count}" for type_, count in sorted(counts.items()))
        )
        lines.append("")
    return "\n".join(lines)
