"""What changed: the kind of an EKS change, who made it, and the state it replaced.

The kind decides the rollback: a cluster or node group version, a launch template version, a
scaling configuration, or another node group setting (labels, taints). A change made through the
scaler's member role is the fleet's own scaling change; its previous sizes are in the scaler's
change record (matched by update id), which the scaler writes before CloudTrail delivers the
event. Anything else is read from EKS when the event arrives: while an update is in progress
DescribeCluster and DescribeNodegroup still show the version and launch template being replaced,
but a labels or taints update is applied within seconds, so the labels and taints read may be the
new ones; the rollback then names what the change asked, from its CloudTrail record. One
UpdateNodegroupConfig may change the sizes and the labels or taints together: it is a scaling
change that also keeps what it asked of labels and taints, so its rollback names both parts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fleet_shared.aws_answers import answer_field
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z, parse_iso
from handlers.change_validator.models import (
    UPDATE_CLUSTER_VERSION,
    UPDATE_NODEGROUP_VERSION,
    EksChangeEvent,
)

SEEN_IN_SCALER_RECORD = "the scaler's change record"
"""`seen_in` of sizes read from the scaler's own record: the only sizes known to be the ones
before the change, and the only ones an automatic restore acts on."""

SCALER_RECORD_LOOKBACK = timedelta(hours=1)
"""How far before the event the scaler's change record is looked for (CloudTrail delivers
within minutes)."""


class ChangeKind(StrEnum):
    CLUSTER_VERSION = "cluster_version"
    NODE_GROUP_VERSION = "node_group_version"
    LAUNCH_TEMPLATE = "launch_template"
    SCALING = "scaling"
    NODE_GROUP_CONFIG = "node_group_config"


@dataclass(frozen=True)
class Change:
    """One EKS change to validate; `validation_id` is its EKS update id."""

    validation_id: str
    account_id: str
    region: str
    cluster: str
    node_group: str | None
    kind: ChangeKind
    event_id: str
    event_name: str
    changed_at: str
    by_fleet_scaler: bool
    requested: dict[str, Any]

    @property
    def label(self) -> str:
        """`<account>/<region>/<cluster>[/<node group>]`: how alerts and results name it."""
        base = f"{self.account_id}/{self.region}/{self.cluster}"
        return f"{base}/{self.node_group}" if self.node_group else base

    @property
    def changed_at_time(self) -> datetime:
        return parse_iso(self.changed_at)

    @property
    def asks_labels_or_taints(self) -> bool:
        """Whether the change's CloudTrail record asks to add, update or remove a label or
        taint (an UpdateNodegroupConfig may ask it alongside new sizes)."""
        labels = self.requested.get("labels") or {}
        taints = self.requested.get("taints") or {}
        return any(
            (
                labels.get("addOrUpdateLabels"),
                labels.get("removeLabels"),
                taints.get("addOrUpdateTaints"),
                taints.get("removeTaints"),
            )
        )

    def as_record(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Change:
        return cls(**{**record, "kind": ChangeKind(record["kind"])})


def change_of(event: EksChangeEvent, update_id: str, scaler_role_name: str | None) -> Change:
    """The change an (already checked) event records."""
    detail = event.detail
    parameters = detail.requestParameters
    if detail.eventName == UPDATE_CLUSTER_VERSION:
        kind = ChangeKind.CLUSTER_VERSION
    elif detail.eventName == UPDATE_NODEGROUP_VERSION:
        kind = (
            ChangeKind.LAUNCH_TEMPLATE
            if parameters.launchTemplate is not None
            else ChangeKind.NODE_GROUP_VERSION
        )
    else:
        kind = (
            ChangeKind.SCALING
            if parameters.scalingConfig is not None
            else ChangeKind.NODE_GROUP_CONFIG
        )
    role = detail.userIdentity.role_name()
    requested = parameters.model_dump(
        include={
            "version",
            "releaseVersion",
            "launchTemplate",
            "scalingConfig",
            "labels",
            "taints",
        },
        exclude_none=True,
    )
    return Change(
        validation_id=update_id,
        account_id=event.account,
        region=event.region,
        cluster=event.cluster,
        node_group=parameters.nodegroupName,
        kind=kind,
        event_id=detail.eventID,
        event_name=detail.eventName,
        changed_at=iso_z(event.time),
        by_fleet_scaler=scaler_role_name is not None and role == scaler_role_name,
        requested=requested,
    )


def previous_state(change: Change, eks: Any, state: StateTable) -> dict[str, Any]:
    """What the change replaced, as far as it can be known when the event arrives."""
    if change.kind is ChangeKind.CLUSTER_VERSION:
        cluster = answer_field(
            eks.describe_cluster(name=change.cluster), "DescribeCluster", "cluster"
        )
        return {
            "version": cluster.get("version"),
            "platform_version": cluster.get("platformVersion"),
        }
    group = answer_field(
        eks.describe_nodegroup(clusterName=change.cluster, nodegroupName=change.node_group),
        "DescribeNodegroup",
        "nodegroup",
    )
    if change.kind in (ChangeKind.NODE_GROUP_VERSION, ChangeKind.LAUNCH_TEMPLATE):
        return {
            "version": group.get("version"),
            "release_version": group.get("releaseVersion"),
            "launch_template": group.get("launchTemplate"),
        }
    if change.kind is ChangeKind.NODE_GROUP_CONFIG:
        return _labels_and_taints_seen(group)
    sizes = _sizes_before(change, group, state)
    if change.asks_labels_or_taints:
        sizes["labels_and_taints"] = _labels_and_taints_seen(group)
    return sizes


def _sizes_before(change: Change, group: dict[str, Any], state: StateTable) -> dict[str, Any]:
    """The sizes a scaling change replaced: the scaler's record of its own change, else what
    DescribeNodegroup showed on arrival."""
    if change.by_fleet_scaler:
        recorded = scaler_change_record(change, state)
        if recorded is not None:
            return {
                "sizes": recorded.get("previous"),
                "seen_in": SEEN_IN_SCALER_RECORD,
                "scaler_request_id": recorded.get("request_id"),
            }
    config = group.get("scalingConfig") or {}
    return {
        "sizes": {
            "min_size": config.get("minSize"),
            "desired_size": config.get("desiredSize"),
            "max_size": config.get("maxSize"),
        },
        # A scaling update is quick: EKS may already show the new sizes.
        "seen_in": "DescribeNodegroup when the change was seen (may already be the new sizes)",
    }


def _labels_and_taints_seen(group: dict[str, Any]) -> dict[str, Any]:
    """The labels and taints DescribeNodegroup showed when a change asking for some arrived."""
    # Neither the CloudTrail record nor DescribeUpdate (LabelsToAdd, LabelsToRemove, ...) carries
    # the values a labels or taints update replaced, and only the scaler records its own changes:
    # what EKS shows now is all there is, and the quick update may be applied.
    return {
        "labels": group.get("labels") or {},
        "taints": group.get("taints") or [],
        "seen_in": "DescribeNodegroup when the change was seen",
    }


def desired_size_before(change: Change, previous: dict[str, Any]) -> int | None:
    """The changed node group's desired size before a scaling change, when it was read (from
    the scaler's record; from EKS, possibly the new size already); None for other changes."""
    if change.kind is not ChangeKind.SCALING:
        return None
    desired = (previous.get("sizes") or {}).get("desired_size")
    return desired if isinstance(desired, int) and not isinstance(desired, bool) else None


def scaler_change_record(change: Change, state: StateTable) -> dict[str, Any] | None:
    """The scaler's record of the change with this update id, if it wrote one."""
    if change.node_group is None:
        return None
    key = node_group_key(change.account_id, change.region, change.cluster, change.node_group)
    since = change.changed_at_time - SCALER_RECORD_LOOKBACK
    for recorded in reversed(state.query_history(key, since)):
        if recorded.record.get("update_id") == change.validation_id:
            return recorded.record
    return None
