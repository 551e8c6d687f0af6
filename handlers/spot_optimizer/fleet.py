"""analyze_fleet (the hourly schedule): every SPOT node group of the fleet inventory.

Node groups are grouped per (account, region) so each target's spot history is read once; a
target that fails (AssumeRole denied, an API error) is reported, the others go on, and the run is
then `partial`. A target whose turn comes with less than FLEET_TARGET_START_SECONDS left in the
invocation is not started (`not_started`; the run is `partial`), so endpoints that do not answer
cannot keep the run past Lambda's timeout, nor leave no time to settle access episodes after it.
A node group whose analysis is not saved is reported with its error, and the target's other node
groups are still saved. The latest analysis of each
node group is saved in the state table (keys.analysis_key) for dashboards and for
recommend_node_group_mix's callers, each type with the prices its score left out (`left_out`),
so that a saved score says what it does not rest on; nothing in the member accounts changes.

A target whose AssumeRole STS refused, or whose spot price history EC2 refused to the role
(`access_denied`), settles its account's access episode as denied, and an analysed one as reached
(member_access.py): the episode the interruption warnings settle too, so a refusal alerts once
whichever path meets it first, and its resolution follows once either path is let in. The
account was only an error target of the run's result, silently missing from the analysis.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.access_episodes import SETTLE_ACCOUNT_SECONDS
from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import FleetError
from fleet_shared.fan_out import Deadline
from fleet_shared.handler import Invocation
from fleet_shared.observability import observability_for
from fleet_shared.sessions import HUB_CALL_SECONDS, MEMBER_CALL_SECONDS, STATE_TABLE_CALL_SECONDS
from handlers.spot_optimizer.keys import LATEST_ANALYSIS, analysis_key
from handlers.spot_optimizer.member_access import (
    check_untargeted_access,
    refused_call,
    settle_spot_access,
)
from handlers.spot_optimizer.opportunities import TARGET_WORK_SECONDS, analyze_opportunities
from handlers.spot_optimizer.scoring import INSUFFICIENT_HISTORY
from handlers.spot_optimizer.services import (
    FUNCTION_NAME,
    PRICING_CALL_SECONDS,
    SpotServices,
)

logger = observability_for(FUNCTION_NAME).logger

FLEET_TARGET_SECONDS = (
    TARGET_WORK_SECONDS
    + HUB_CALL_SECONDS
    + MEMBER_CALL_SECONDS
    + PRICING_CALL_SECONDS
    + STATE_TABLE_CALL_SECONDS
)
"""The time a target needs left to start (72 s): its work, and one call of each endpoint it asks
(STS's AssumeRole, the member's EC2, the Pricing API, the state table) never answering. Each of
those fails the target, or is given up for the invocation after that call, so one target cannot
take longer; a run over many targets behind a hung endpoint (a region's EC2 for every account)
stops starting them while it can still answer."""
FLEET_TARGET_START_SECONDS = FLEET_TARGET_SECONDS + SETTLE_ACCOUNT_SECONDS
"""The time left a target is started with at least (100 s): its own, and an account's settlement
of its access episode after the last target (`access_episodes.SETTLE_ACCOUNT_SECONDS`), which
Lambda would otherwise end between an alert SNS took and its record."""


def analyze_fleet(services: SpotServices, *, dry_run: bool, deadline: Invocation) -> dict[str, Any]:
    """`{"action", "status": "ok"|"partial", "dry_run", "targets": [...], "summary",
    "access_alerts", "access_checks"?}`; dry run saves no analysis. A target is started only
    while `deadline` allows FLEET_TARGET_START_SECONDS. The member access episodes are then settled
    (member_access.py), those of members with no target by an access check each:
    raises AlertNotDeliveredError once all are when SNS did not take an alert or resolution, so
    the platform retries the run, and InventoryUnreadableError when S3 did not serve the
    inventory."""
    inventory = services.inventory()
    groups: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
    for member, cluster in inventory.clusters():
        for group in cluster.node_groups:
            if group.capacity_type == "SPOT":
                groups[(member.account_id, cluster.region)].append((cluster.name, group))
    targets = []
    for (account, region), members in groups.items():
        if not deadline.allows(FLEET_TARGET_START_SECONDS):
            targets.append({"account_id": account, "region": region, "status": "not_started"})
            continue
        try:
            node_groups, not_analysed = _analyze_target(
                services, account, region, members, dry_run=dry_run, deadline=deadline
            )
        except (FleetError, *AWS_CALL_ERRORS) as error:
            # An answer botocore could not parse is in its error's message: cut and escaped.
            message = call_error_text(error)
            logger.warning("target failed", extra={"account": account, "error": message})
            target = {"account_id": account, "region": region, "status": "error", "error": message}
            denied = refused_call(error)
            if denied is not None:
                target["access_denied"] = [denied]
            targets.append(target)
            continue
        targets.append(_target_result(account, region, node_groups, not_analysed))
    failed = sum(target["status"] == "error" for target in targets)
    not_started = sum(target["status"] == "not_started" for target in targets)
    unsaved = sum("error" in group for t in targets for group in t.get("node_groups", []))
    cut_short = any("not_analysed" in target for target in targets)
    # Refusals are the member's grants, which a dry run reads as a real run does.
    checks = check_untargeted_access(services, inventory, targets, deadline=deadline)
    settlement = settle_spot_access(services, inventory, [*targets, *checks], deadline=deadline)
    result = {
        "action": "analyze_fleet",
        "status": "partial" if failed or not_started or unsaved or cut_short else "ok",
        "dry_run": dry_run,
        "targets": targets,
        "summary": {
            "targets": len(targets),
            "failed_targets": failed,
            "node_groups": sum(len(t.get("node_groups", [])) for t in targets),
            "unsaved_node_groups": unsaved,
        },
        "access_alerts": settlement.summary(),
        **({"access_checks": checks} if checks else {}),
    }
    settlement.raise_undelivered()
    return result


def _target_result(
    account: str, region: str, node_groups: list[dict[str, Any]], not_analysed: list[str]
) -> dict[str, Any]:
    """The target's entry: `ok`, `partial` when some of its analyses were not saved or some of
    its types not analysed for lack of time (`not_analysed`), `error` (with the first node
    group's error) when no analysis was saved."""
    unsaved = [group["error"] for group in node_groups if "error" in group]
    result: dict[str, Any] = {"account_id": account, "region": region, "status": "ok"}
    if unsaved and len(unsaved) == len(node_groups):
        result.update(status="error", error=unsaved[0])
    elif unsaved or not_analysed:
        result["status"] = "partial"
    if not_analysed:
        result["not_analysed"] = not_analysed
    return {**result, "node_groups": node_groups}


def _analyze_target(
    services: SpotServices,
    account: str,
    region: str,
    members: list[tuple[str, Any]],
    *,
    dry_run: bool,
    deadline: Deadline,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The summary of each (cluster, node group) of one account and region, each saved unless
    `dry_run` (a summary whose save failed carries the `error`), and the types not analysed for
    lack of time."""
    types = sorted({kind for _, group in members for kind in group.instance_types})
    analysis = analyze_opportunities(services, account, region, types, deadline=deadline)
    by_type = {item["instance_type"]: item for item in analysis["results"]}
    node_groups = []
    for cluster_name, group in members:
        summary = _node_group_summary(cluster_name, group, by_type, analysis["window"])
        if not dry_run:
            try:
                services.state.put_value(
                    analysis_key(account, region, cluster_name, group.name),
                    LATEST_ANALYSIS,
                    {**summary, "analyzed_at": analysis["window"]["end"]},
                    ttl_seconds=services.environment.spot_analysis_ttl_days * 86400,
                )
            except (ClientError, BotoCoreError) as error:
                # This node group only: the others of the target are still saved.
                logger.warning(
                    "analysis not saved",
                    extra={
                        "cluster": cluster_name,
                        "nodegroup": group.name,
                        "error": call_error_text(error),
                    },
                )
                summary["error"] = f"analysis not saved: {call_error_text(error)}"
        node_groups.append(summary)
    return node_groups, analysis.get("not_analysed", [])


def _node_group_summary(
    cluster: str, group: Any, by_type: dict[str, dict[str, Any]], window: dict[str, str]
) -> dict[str, Any]:
    results = [by_type[kind] for kind in group.instance_types if kind in by_type]
    scored = [item for item in results if item.get("score") is not None]
    return {
        "cluster": cluster,
        "nodegroup": group.name,
        "window": window,
        "mean_score": round(sum(i["score"] for i in scored) / len(scored), 2) if scored else None,
        "instance_types": [
            {
                "instance_type": item["instance_type"],
                "status": item["status"],
                "score": item.get("score"),
                "recommended": item.get("recommended"),
                "confidence": item.get("confidence"),
                "on_demand_source": item.get("on_demand_source"),
                "error": item.get("error"),
                "history": "ok" if item.get("confidence") == "high" else INSUFFICIENT_HISTORY,
                **{
                    name: item[name]
                    for name in ("left_out", "unreadable_interruption_records")
                    if name in item
                },
            }
            for item in results
        ],
    }
