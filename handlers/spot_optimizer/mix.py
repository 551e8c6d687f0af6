"""recommend_node_group_mix: which instance types each SPOT node group of a cluster should keep,
add or drop.

Candidates are the same-size siblings of the group's types in the Graviton general, compute and
memory families (m6g/m7g, c6g/c7g, r6g/r7g): e.g. for m7g.large the candidates are m6g.large,
c6g.large, c7g.large, r6g.large and r7g.large. Current and candidate types are scored together by
analyze_opportunities; a current type scoring below SPOT_RECOMMEND_SCORE is dropped (unless that
would leave the group empty), a candidate at or above it is added (best MAX_ADDITIONS first).
Nothing is changed: the result is a recommendation.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.fan_out import Deadline
from handlers.spot_optimizer.node_groups import described_node_groups
from handlers.spot_optimizer.opportunities import analyze_opportunities
from handlers.spot_optimizer.services import SpotServices

CANDIDATE_FAMILIES = ("m6g", "m7g", "c6g", "c7g", "r6g", "r7g")
MAX_ADDITIONS = 3
CAPACITY_BLOCK_LEFT_OUT = (
    "capacity type CAPACITY_BLOCK: capacity reserved for a fixed time, not spot; its instance "
    "types are not mixed"
)
"""Why a capacity block's node group gets no mix: like SPOT it is not ON_DEMAND, but its
instances are the reservation's, at its price, and cannot be swapped for other types."""


def candidates_for(instance_type: str) -> list[str]:
    """Same-size siblings of `instance_type` in CANDIDATE_FAMILIES (none for other families)."""
    family, _, size = instance_type.partition(".")
    if family not in CANDIDATE_FAMILIES:
        return []
    return [f"{other}.{size}" for other in CANDIDATE_FAMILIES if other != family]


def recommend_node_group_mix(
    services: SpotServices, account_id: str, region: str, cluster: str, *, deadline: Deadline
) -> dict[str, Any]:
    """`{"account_id", "region", "cluster", "node_groups": [{"nodegroup", "keep", "add",
    "drop", "unscored"}], "left_out_node_groups": [{"nodegroup", "reason"}]}`: a mix for each
    SPOT node group; a CAPACITY_BLOCK one is left out and named (an ON_DEMAND one, plainly not
    spot, is not named). The analysis's pages are read while `deadline` allows."""
    eks = services.member_client("eks", account_id, region)
    spot_groups: list[tuple[str, list[str]]] = []
    left_out: list[dict[str, str]] = []
    for group in described_node_groups(eks, cluster):
        if group["capacityType"] == "SPOT":
            spot_groups.append((group["nodegroupName"], list(group.get("instanceTypes") or [])))
        elif group["capacityType"] == "CAPACITY_BLOCK":
            left_out.append(
                {"nodegroup": group["nodegroupName"], "reason": CAPACITY_BLOCK_LEFT_OUT}
            )
    all_types: list[str] = []
    for _, types in spot_groups:
        for kind in types:
            all_types.extend([kind, *candidates_for(kind)])
    scored: dict[str, dict[str, Any]] = {}
    if all_types:
        analysis = analyze_opportunities(services, account_id, region, all_types, deadline=deadline)
        scored = {item["instance_type"]: item for item in analysis["results"]}
    return {
        "action": "recommend_node_group_mix",
        "account_id": account_id,
        "region": region,
        "cluster": cluster,
        "recommend_score": services.environment.spot_recommend_score,
        "node_groups": [_recommend(name, types, scored) for name, types in spot_groups],
        "left_out_node_groups": left_out,
    }


def _recommend(name: str, types: list[str], scored: dict[str, dict[str, Any]]) -> dict[str, Any]:
    keep, drop, unscored = [], [], []
    for kind in types:
        item = scored.get(kind, {})
        if item.get("score") is None:
            unscored.append({"instance_type": kind, "reason": item.get("error", "not analysed")})
        elif item["recommended"]:
            keep.append(_entry(item))
        else:
            drop.append(_entry(item))
    if not keep and not unscored and drop:
        # Never leave a group without types: keep the best of the weak ones.
        best = max(drop, key=lambda entry: entry["score"])
        drop.remove(best)
        keep.append({**best, "note": "kept although below the threshold: the group needs a type"})
    candidates = {c for kind in types for c in candidates_for(kind)} - set(types)
    additions = sorted(
        (
            _entry(scored[kind])
            for kind in candidates
            if kind in scored and scored[kind].get("recommended")
        ),
        key=lambda entry: -entry["score"],
    )[:MAX_ADDITIONS]
    return {"nodegroup": name, "keep": keep, "add": additions, "drop": drop, "unscored": unscored}


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    """A scored type as the mix lists it, with the prices its score left out (`left_out`), so
    that a type kept, added or dropped on fewer prices than EC2 answered says so."""
    return {
        "instance_type": item["instance_type"],
        "score": item["score"],
        "confidence": item["confidence"],
        **({"left_out": item["left_out"]} if "left_out" in item else {}),
    }
