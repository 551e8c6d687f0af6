"""Cost Explorer GetCostAndUsage over every page, as daily amounts per group.

The anomaly detector (daily fleet cost) and the cost analyzer (cost by service, account and
cluster tag) both read daily cost; Cost Explorer pages long answers with `NextPageToken`, and
each page holds some days, each day some groups. `cost_and_usage` follows the pages
(`page_tokens`: a token answered again fails the read) and returns one flat list of
`CostPoint`s; an answer without its results, or with one shaped otherwise than Cost Explorer
sends it (an amount that is no number), fails the read with `UnreadableAnswerError`, one of
`AWS_CALL_ERRORS`. Cost Explorer is a global service served from us-east-1 (`CE_REGION`). Light:
no numpy or pandas.

The newest day of a daily answer is usually incomplete (`COST_FILLING`): both readers judge a drop
only on complete days (`is_complete_day`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.page_tokens import pages
from fleet_shared.validation_errors import cut_echo

CE_REGION = "us-east-1"
TOTAL = "Total"
"""The group name of a point when the request has no GroupBy."""
MAX_DAILY_AMOUNT = 1e12
"""No group's daily cost comes near it (USD): a larger amount is not a cost, and sums of such
amounts would overflow the report's totals and the anomaly detector."""
REASON_LENGTH = 80
"""The most characters of the error a result by time Cost Explorer would not send raised that
its UnreadableAnswerError keeps: enough for its kind and the start of the value."""


COST_FILLING = timedelta(hours=24)
"""How long after a day ends (midnight UTC) Cost Explorer may still be adding to its cost: AWS
updates billing information up to three times a day (the Cost Explorer API's best practices),
and usage reaches billing hours after it happens, so a day that ended less than a day ago may
be missing part of its cost (yesterday's, whenever it is read). Such a day only ever
under-reports: it reads as a drop until it is complete, and an increase on it is real."""


def is_complete_day(day: date, now: datetime) -> bool:
    """Whether the cost of `day` (a UTC day) is complete at `now`: it ended COST_FILLING ago."""
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return now - end >= COST_FILLING


def is_cost(amount: float) -> bool:
    """Whether `amount` can be a cost: a finite number within +-MAX_DAILY_AMOUNT (a NaN would
    make a report invalid JSON, an infinity stop the anomaly detector)."""
    return math.isfinite(amount) and abs(amount) <= MAX_DAILY_AMOUNT


@dataclass(frozen=True)
class CostPoint:
    """The amount of one group on one day (or month), in `unit`."""

    start: date
    group: str
    amount: float
    unit: str
    estimated: bool


def cost_and_usage(
    ce: Any,
    start: date,
    end: date,
    *,
    granularity: str = "DAILY",
    metric: str = "UnblendedCost",
    group_by: list[dict[str, str]] | None = None,
    filter_expression: dict[str, Any] | None = None,
) -> list[CostPoint]:
    """Every point of `metric` from `start` (inclusive) to `end` (exclusive), all pages.

    With `group_by`, a point's `group` joins the group's keys with `|` (a tag key comes back as
    `cluster$dev-apps`; an untagged cost as `cluster$`); without it, `group` is `TOTAL`.
    """
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": granularity,
        "Metrics": [metric],
    }
    if group_by:
        request["GroupBy"] = group_by
    if filter_expression:
        request["Filter"] = filter_expression
    points: list[CostPoint] = []
    for response in pages(ce, "GetCostAndUsage", request, "NextPageToken"):
        # Cost Explorer answers a result per period, so an answer without them is not its own
        # (a proxy's page), and must not pass for a fleet that cost nothing.
        results = answer_field(response, "GetCostAndUsage", "ResultsByTime")
        if not isinstance(results, list):
            raise UnreadableAnswerError("GetCostAndUsage", "ResultsByTime as a list", response)
        for index, period in enumerate(results):
            try:
                points += _period_points(period, metric, grouped=bool(group_by))
            # botocore hands a JSON answer's values on unchecked: a period, group or amount
            # shaped otherwise than Cost Explorer sends it raises one of these here, where only
            # the answer is read, and must fail this read, not the caller's whole run.
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                reason = cut_echo(f"{type(error).__name__}: {error}", REASON_LENGTH)
                raise UnreadableAnswerError(
                    "GetCostAndUsage", f"a readable ResultsByTime[{index}] ({reason})", period
                ) from None
    return points


def _period_points(period: Any, metric: str, *, grouped: bool) -> list[CostPoint]:
    """The points of `metric` in one result by time of a GetCostAndUsage answer: one per group
    when `grouped`, else its total, if it has one."""
    day = date.fromisoformat(period["TimePeriod"]["Start"])
    estimated = bool(period.get("Estimated", False))
    if grouped:
        return [
            _point(day, "|".join(group["Keys"]), group["Metrics"][metric], estimated)
            for group in period.get("Groups", [])
        ]
    if metric in period.get("Total", {}):
        return [_point(day, TOTAL, period["Total"][metric], estimated)]
    return []


def _point(day: date, group: str, value: Any, estimated: bool) -> CostPoint:
    return CostPoint(day, group, float(value["Amount"]), value.get("Unit", "USD"), estimated)
