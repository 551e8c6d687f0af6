"""analyze_opportunities: score spot capacity per instance type and AZ in one member region.

Per instance type: the on-demand price (Pricing API or bundled table, the source is reported),
then per AZ the spot history of the last SPOT_HISTORY_DAYS days, the interruptions recorded in
the state table over the last 7 days, and the opportunity score (scoring.py). The type's score is
the mean of its AZ scores (a node group spreads over its AZs). A type that cannot be priced is
reported with its error and the others go on. An interruption record whose time or data cannot be
read is counted, logged and reported (`unreadable_interruption_records` of its AZ and type), not
raised (interruption_history): it would fail every type of the target.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fleet_shared.fan_out import Deadline
from fleet_shared.sessions import MEMBER_CALL_SECONDS, STATE_TABLE_CALL_SECONDS
from fleet_shared.timestamps import iso_z
from handlers.spot_optimizer.interruption_history import InterruptionHistories
from handlers.spot_optimizer.keys import zone_interruptions_key
from handlers.spot_optimizer.prices import (
    SpotHistory,
    history_window,
    on_demand_price,
    spot_history,
)
from handlers.spot_optimizer.scoring import (
    INSUFFICIENT_HISTORY,
    PricePoint,
    history_statistics,
    interruption_risk,
    opportunity_score,
    savings_percent,
)
from handlers.spot_optimizer.services import PRICING_CALL_SECONDS, SpotServices

RISK_WINDOW = timedelta(days=7)

TARGET_WORK_SECONDS = 10
"""A target's reads and saves when every endpoint answers: a few pages of spot price history, a
price per type, a few state table items; seconds at most."""
TYPE_SECONDS = TARGET_WORK_SECONDS + PRICING_CALL_SECONDS + STATE_TABLE_CALL_SECONDS
"""The time an instance type needs left to be analysed (40 s): its Pricing call and a state
table call (its zones' interruptions) never answering, and the rest of the work. Each type asks
again: endpoints that answer every call late, but answer, are given up for none of them."""
OUT_OF_TIME = "not analysed: too little of the invocation's time was left (the next run does it)"
"""The error of an instance type whose turn came with less than TYPE_SECONDS left."""
NEXT_PAGE_SECONDS = (
    TARGET_WORK_SECONDS + MEMBER_CALL_SECONDS + PRICING_CALL_SECONDS + STATE_TABLE_CALL_SECONDS
)
"""The time a next page of spot price history or of Pricing products needs left (57 s): the
page (a member or Pricing call, 17 s at most), then the rest of the analysis with one call of
the Pricing API and of the state table never answering. An API answering page after page under
new tokens is so stopped while the invocation can still answer (`PagesCutShortError`)."""


def analyze_opportunities(
    services: SpotServices,
    account_id: str,
    region: str,
    instance_types: list[str] | tuple[str, ...],
    *,
    deadline: Deadline,
) -> dict[str, Any]:
    """`{"account_id", "region", "window", "results": [...]}`, results sorted by score (best
    first, errors last; `not_analysed` lists the types left when less than TYPE_SECONDS was,
    each an error). Raises MemberAccessError when the member role cannot be
    assumed, and
    PagesCutShortError when the spot price history's next page comes with less than
    NEXT_PAGE_SECONDS left before `deadline` (a type whose Pricing pages are so cut short is
    priced from the bundled table)."""

    def next_page_allowed() -> bool:
        return deadline.allows(NEXT_PAGE_SECONDS)

    types = list(dict.fromkeys(instance_types))
    start, end = history_window(services.clock.now(), services.environment.spot_history_days)
    ec2 = services.member_client("ec2", account_id, region)
    history = spot_history(ec2, types, start, end, next_page_allowed=next_page_allowed)
    pricing = services.pricing_client()
    histories = InterruptionHistories(services.state)
    threshold = services.environment.spot_recommend_score
    results = []
    for instance_type in types:
        result = _score_type(
            services,
            pricing,
            histories,
            account_id=account_id,
            region=region,
            instance_type=instance_type,
            history=history,
            start=start,
            end=end,
            next_page_allowed=next_page_allowed,
        )
        left_out = history.left_out_summary(instance_type)
        if left_out is not None:
            result["left_out"] = left_out
        results.append(result)
        if not deadline.allows(TYPE_SECONDS):
            # An endpoint answering each call late (a Pricing API that answers the second
            # attempt of each) would keep a run of many types until Lambda ended it, unanswered.
            break
    not_analysed = types[len(results) :]
    results.extend(
        {"instance_type": kind, "status": "error", "error": OUT_OF_TIME} for kind in not_analysed
    )
    for result in results:
        if result.get("score") is not None:
            result["recommended"] = result["score"] >= threshold
    results.sort(key=lambda item: (item.get("score") is None, -(item.get("score") or 0.0)))
    return {
        "account_id": account_id,
        "region": region,
        "window": {"start": iso_z(start), "end": iso_z(end)},
        "recommend_score": threshold,
        "results": results,
        **({"not_analysed": not_analysed} if not_analysed else {}),
    }


def _score_type(
    services: SpotServices,
    pricing: Any,
    histories: InterruptionHistories,
    *,
    account_id: str,
    region: str,
    instance_type: str,
    history: SpotHistory,
    start: Any,
    end: Any,
    next_page_allowed: Callable[[], bool],
) -> dict[str, Any]:
    """The type's result, scored on the prices of `history` its on-demand price leaves
    plausible (the others go to the history's `left_out`)."""
    on_demand, api_problem = on_demand_price(
        pricing, region, instance_type, next_page_allowed=next_page_allowed
    )
    if on_demand is None:
        return {"instance_type": instance_type, "status": "error", "error": api_problem}
    history.leave_out_implausible(instance_type, on_demand.price)
    zones: dict[str, list[PricePoint]] = {
        zone: points for (kind, zone), points in history.prices.items() if kind == instance_type
    }
    if not zones:
        error = f"no Linux/UNIX spot price history for {instance_type} in {region}"
        if instance_type in history.left_out:
            error = (
                f"no plausible Linux/UNIX spot price for {instance_type} in {region}: every "
                "price EC2 answered was left out"
            )
        return {
            "instance_type": instance_type,
            "status": "error",
            "error": error,
            "on_demand_price": on_demand.price,
            "on_demand_source": on_demand.source,
        }
    since = services.clock.now() - RISK_WINDOW
    zone_results = []
    for zone, points in sorted(zones.items()):
        ordered = sorted(points, key=lambda point: point.timestamp)
        current = ordered[-1].price
        volatility, trend = history_statistics(ordered, start, end)
        recorded = histories.read(
            zone_interruptions_key(account_id, region, instance_type, zone), since
        )
        interruptions = recorded.count
        score = opportunity_score(
            savings_percent(current, on_demand.price),
            volatility,
            trend,
            interruption_risk(interruptions),
        )
        zone_results.append(
            {
                "availability_zone": zone,
                "spot_price": current,
                "history_points": len(ordered),
                "savings_percent": score.savings_percent,
                "volatility": score.volatility
                if score.volatility is not None
                else INSUFFICIENT_HISTORY,
                "trend_per_day": score.trend_per_day
                if score.trend_per_day is not None
                else INSUFFICIENT_HISTORY,
                "interruptions_7d": interruptions,
                "interruption_risk": score.interruption_risk,
                "score": score.score,
                "confidence": score.confidence,
                **(
                    {"unreadable_interruption_records": recorded.unreadable}
                    if recorded.unreadable
                    else {}
                ),
            }
        )
    zone_results.sort(key=lambda item: -item["score"])
    mean_score = round(sum(item["score"] for item in zone_results) / len(zone_results), 2)
    result: dict[str, Any] = {
        "instance_type": instance_type,
        "status": "ok",
        "score": mean_score,
        "confidence": "high"
        if all(item["confidence"] == "high" for item in zone_results)
        else "low",
        "on_demand_price": on_demand.price,
        "on_demand_source": on_demand.source,
        "best_zone": zone_results[0]["availability_zone"],
        "zones": zone_results,
    }
    unreadable = sum(item.get("unreadable_interruption_records", 0) for item in zone_results)
    if unreadable:
        result["unreadable_interruption_records"] = unreadable
    if api_problem:
        result["pricing_note"] = api_problem
    return result
