"""The rollback a regression calls for, and the automatic restore of the scaler's own changes.

- the scaler's scaling change: restore the previous desired size through the scaler's normal path
  (a `scale_up` or `scale_down` request with that size, so its lock, cooldown, floors, dry run and
  idempotency apply, saving no sizes for the next morning's restore to bring back); automatic
  only when the stack sets `restore_scaler_changes`, never for a change that was itself such a
  restore (two regressions in a row would otherwise flap), only when the scaler's record of the
  change gives the size before it (without it, EKS's sizes may be the new ones and whether it was
  a restore is unknown), and only while the node group still has the desired size the change set
  (otherwise the restore would undo a later change: a person's, the spot fallback's, the next
  schedule's; or, back at the size before it, a failed update's say, there is nothing to restore);
- another scaling change: the sizes seen when the change arrived, restored by hand;
- a scaling change that also asked for labels or taints: the sizes as above, and the labels and
  taints part as below, always by hand (the scaler changes sizes only, so an automatic restore
  puts back the sizes and the alert says the rest is left to a person);
- a node group version or launch template: the version (and release, or launch template version,
  and both when the call asked for both) to go back to with UpdateNodegroupVersion;
- a cluster version: EKS cannot downgrade a control plane, so the previous version is named for a
  rebuilt cluster or a fix forward;
- labels or taints: what the change asked, to be undone by hand. The values it replaced cannot be
  named: its CloudTrail record and DescribeUpdate carry only what it asked, and the labels and
  taints read when it arrives may already be the new ones.
"""

from __future__ import annotations

from typing import Any

from handlers.change_validator.changes import SEEN_IN_SCALER_RECORD, Change, ChangeKind

RESTORE_REQUEST_PREFIX = "change-validator-restore-"
"""The request id of the scaler requests this function makes: idempotent per validation, and how
a restore is recognised when its own change arrives for validation."""


def rollback_plan(
    change: Change, previous: dict[str, Any], *, restore_allowed: bool
) -> dict[str, Any]:
    """`{"kind", "action", "automatic", ...}`: the rollback that applies to `change`."""
    if change.kind is ChangeKind.SCALING:
        sizes = previous.get("sizes") or {}
        was_restore = str(previous.get("scaler_request_id") or "").startswith(
            RESTORE_REQUEST_PREFIX
        )
        restorable = change.by_fleet_scaler and restore_allowed
        recorded = previous.get("seen_in") == SEEN_IN_SCALER_RECORD
        automatic = (
            restorable
            and recorded
            and not was_restore
            and isinstance(sizes.get("desired_size"), int)
        )
        plan = {
            "kind": "restore_sizes",
            "action": (
                f"restore node group {change.node_group} to desired size "
                f"{sizes.get('desired_size')} (min {sizes.get('min_size')}, "
                f"max {sizes.get('max_size')}; from {previous.get('seen_in')})"
            ),
            "sizes": sizes,
            "automatic": automatic,
        }
        if restorable and not recorded:
            plan["not_automatic"] = (
                "the scaler's record of this change was not found, so the size before it is not "
                "known (EKS may already have shown the new one): restore it by hand"
            )
        labels_and_taints = previous.get("labels_and_taints")
        if labels_and_taints is not None:
            undo = _undo_labels_and_taints(change, labels_and_taints)
            plan["action"] += f"; and, by hand, {undo}"
            plan["labels_and_taints"] = {"action": undo, **labels_and_taints, "automatic": False}
        return plan
    if change.kind in (ChangeKind.NODE_GROUP_VERSION, ChangeKind.LAUNCH_TEMPLATE):
        template = previous.get("launch_template") or {}
        if change.kind is ChangeKind.LAUNCH_TEMPLATE:
            name = template.get("name") or template.get("id")
            action = (
                f"UpdateNodegroupVersion of {change.node_group} back to launch template {name} "
                f"version {template.get('version')}"
            )
            if "version" in change.requested or "releaseVersion" in change.requested:
                # One call may move the launch template and the AMI release together.
                action += (
                    f" and to version {previous.get('version')} "
                    f"(release {previous.get('release_version')})"
                )
        else:
            action = (
                f"UpdateNodegroupVersion of {change.node_group} back to version "
                f"{previous.get('version')} (release {previous.get('release_version')})"
            )
        return {"kind": change.kind.value, "action": action, **previous, "automatic": False}
    if change.kind is ChangeKind.CLUSTER_VERSION:
        return {
            "kind": "cluster_version",
            "action": (
                f"the previous control plane version was {previous.get('version')}; EKS cannot "
                "downgrade a cluster: fix forward, or move workloads to a cluster at that version"
            ),
            **previous,
            "automatic": False,
        }
    return {
        "kind": "node_group_config",
        "action": _undo_labels_and_taints(change, previous),
        **previous,
        "automatic": False,
    }


def _undo_labels_and_taints(change: Change, seen: dict[str, Any]) -> str:
    """The by-hand rollback of what `change` asked of labels and taints, with those `seen`
    (`{"labels", "taints", "seen_in"}`) when it arrived."""
    return (
        f"UpdateNodegroupConfig of {change.node_group} undoing what the change asked "
        f"({_labels_and_taints_asked(change.requested)}); the values it replaced are not "
        f"recorded ({seen['seen_in']} showed labels {seen.get('labels')} and taints "
        f"{_taint_names(seen.get('taints'))}, possibly the new ones already)"
    )


def _labels_and_taints_asked(requested: dict[str, Any]) -> str:
    """What an UpdateNodegroupConfig asked of labels and taints, from its CloudTrail record."""
    labels = requested.get("labels") or {}
    taints = requested.get("taints") or {}
    asked = [
        f"{verb} {what} {shown}"
        for verb, what, shown in (
            ("added or updated", "labels", labels.get("addOrUpdateLabels")),
            ("removed", "labels", labels.get("removeLabels")),
            ("added or updated", "taints", _taint_names(taints.get("addOrUpdateTaints"))),
            ("removed", "taints", _taint_names(taints.get("removeTaints"))),
        )
        if shown
    ]
    return "; ".join(asked) or "its CloudTrail record names no labels or taints"


def _taint_names(taints: Any) -> list[str]:
    """Taints as kubectl writes them: `key=value:effect`, or `key:effect` without a value."""
    named = []
    for taint in taints or []:
        if isinstance(taint, dict):
            value = f"={taint['value']}" if taint.get("value") else ""
            named.append(f"{taint.get('key')}{value}:{taint.get('effect')}")
    return named


RESTORE_SKIPPED = "skipped"
"""The status of an automatic restore not asked for (the node group changed since, or is at the
size before the change already), its reason kept."""

RESTORE_ASKED = "asked"
"""The status of an automatic restore whose request is saved and whose answer is not yet."""


def why_not_restored(change: Change, plan: dict[str, Any], current_desired: int) -> str | None:
    """Why the automatic restore of `change` (rollback `plan`) is not asked for, or None when the
    node group still has the desired size the change set."""
    if current_desired == plan["sizes"]["desired_size"]:
        # A failed update, or one undone since: asking the scaler would change nothing.
        return (
            f"node group {change.node_group} is already at desired size {current_desired}, the "
            "size before this change: nothing to restore"
        )
    changed_to = (change.requested.get("scalingConfig") or {}).get("desiredSize")
    if changed_to == current_desired:
        return None
    return (
        f"node group {change.node_group} is at desired size {current_desired}, not the "
        f"{changed_to} this change set: a later change stands and is not undone"
    )


def why_not_asked_again(
    change: Change, plan: dict[str, Any], current_desired: int, request_id: str
) -> str | None:
    """Why a restore asked before (its outcome unknown) is not asked again, or None when the
    node group still has the desired size the change set, or the size before it (the earlier ask
    may have restored it: the scaler then answers from its idempotency record, and asking for
    the size a node group has changes nothing)."""
    before = plan["sizes"]["desired_size"]
    changed_to = (change.requested.get("scalingConfig") or {}).get("desiredSize")
    if current_desired in (before, changed_to):
        return None
    # Had the scaler not run the earlier ask, asking again would undo this later change.
    return (
        f"node group {change.node_group} is at desired size {current_desired}, neither the "
        f"{changed_to} this change set nor the {before} before it: a later change stands and is "
        f"not undone (restore request {request_id}, asked earlier: its outcome is unknown)"
    )


_SAVES_NO_SIZES = {"save_sizes": False}
"""The size being undone is not one for the next morning's restore to bring back."""


def restore_request(
    change: Change, plan: dict[str, Any], current_desired: int, *, dry_run: bool
) -> dict[str, Any]:
    """The scaler request that puts the previous desired size back."""
    desired = int(plan["sizes"]["desired_size"])
    return {
        "action": "scale_up" if desired > current_desired else "scale_down",
        "account_id": change.account_id,
        "region": change.region,
        "cluster": change.cluster,
        "nodegroups": [{"name": change.node_group, "desired_size": desired}],
        "dry_run": dry_run,
        "request_id": f"{RESTORE_REQUEST_PREFIX}{change.validation_id}",
        **_SAVES_NO_SIZES,
    }


def resent_restore_request(stored: dict[str, Any]) -> dict[str, Any]:
    """The restore request `stored` in a validation record, as it is asked again (its answer was
    not saved, or did not come): the same request, with the same request id, saving no sizes.
    A request stored by a version before `save_sizes` lacks the field, and the scaler, reading
    it as true, would save the size being undone for the next morning's restore to bring back."""
    return {**stored, **_SAVES_NO_SIZES}
