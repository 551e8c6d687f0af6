"""Cost Explorer: daily cost by service, linked account and `cluster` tag, and the month-end
forecast.

Three GetCostAndUsage requests (DAILY, UnblendedCost, the last COST_LOOKBACK_DAYS full days),
each over every page, each grouped by charge type (RECORD_TYPE) as well: totals add every charge,
as the bill does, while the anomalies' series leave out those posted once a month or once (tax,
support, reservation and Savings Plans fees, credits, refunds), which would spike every 1st
(`fleet_shared.cost_explorer.OUT_OF_CYCLE_RECORD_TYPES`), without a request more. Amounts in
another currency than most of the answer's are left out of every figure (`usable_points`).
The forecast is GetCostForecast of UNBLENDED_COST from today to the first day of next month,
added to the month-to-date cost, so `month_end_total` estimates the bill.
A lookback that does not reach back to the 1st costs one more (ungrouped) request for the month
to date; when the forecast after it would not fit in the time left, the report keeps that month
to date alone (`FORECAST_NOT_STARTED`).
When Cost Explorer cannot forecast (DataUnavailableException for an account with little
history, throttling, an endpoint without the operation), the rest of the month is projected at
the run rate: the mean daily usage cost of the last RUN_RATE_DAYS complete days (yesterday's is
still being filled in: `fleet_shared.cost_explorer.COST_FILLING`), read from the service
answer's charge types, without a request more. `source` says which, and `forecast_unavailable`
why, so a projection is never mistaken for Cost Explorer's forecast.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import call_error_text, refusal_text
from fleet_shared.cost_explorer import (
    COST_FILLING,
    MAX_DAILY_AMOUNT,
    MAX_UNIT_LENGTH,
    RECORD_TYPE_GROUP,
    UNIT_FIELD,
    CostPoint,
    cost_and_usage,
    in_one_currency,
    is_cost,
    is_out_of_cycle,
    majority_currency,
)

DIMENSIONS: dict[str, dict[str, str]] = {
    "service": {"Type": "DIMENSION", "Key": "SERVICE"},
    "account": {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
    "cluster": {"Type": "TAG", "Key": "cluster"},
}
DAILY_SHARE = 0.5
"""A group with a cost on at least this share of the days from its first is charged daily, and
a day without counts as 0 in its series (`series_by_group`): one charged on the 1st of each
month has a cost on 1 day in 28-31; one that stopped 3 days before the end of a 30-day lookback
on 27 of its 30."""
RUN_RATE_DAYS = 7
"""Complete days whose mean daily cost projects the month when Cost Explorer cannot forecast."""
FORECAST_SOURCE = "cost explorer forecast"
RUN_RATE_SOURCE = f"run rate of the last {RUN_RATE_DAYS} days"
FORECAST_NOT_STARTED = "not started: too little time left in the invocation"
"""The `forecast_unavailable` of a month to date read on its own whose GetCostForecast would not
have fit before the report's time: no `source`, and no month-end total."""


def group_name(dimension: str, key: str) -> str:
    """Readable group: a tag value without its `cluster$` prefix (`(untagged)` when empty)."""
    if dimension == "cluster":
        value = key.split("$", 1)[1] if "$" in key else key
        return value or "(untagged)"
    return key


def daily_costs(
    ce: Any,
    today: date,
    days: int,
    *,
    next_page_allowed: Callable[[], bool],
    request_allowed: Callable[[str], bool],
) -> dict[str, list[CostPoint]]:
    """The daily points of each dimension and charge type, for the `days` full days before
    `today`; a next page only while `next_page_allowed()` (else `PagesCutShortError`). Each
    dimension's request after the first starts only when `request_allowed(dimension)`: a
    dimension whose request did not start is not in the answer."""
    start = today - timedelta(days=days)
    daily: dict[str, list[CostPoint]] = {}
    for dimension, group in DIMENSIONS.items():
        if daily and not request_allowed(dimension):
            continue
        daily[dimension] = cost_and_usage(
            ce,
            start,
            today,
            group_by=[group, RECORD_TYPE_GROUP],
            next_page_allowed=next_page_allowed,
        )
    return daily


def report_currency(daily: dict[str, list[CostPoint]]) -> str:
    """The currency of the report: that of most points of every dimension (USD without any)."""
    return majority_currency([point.unit for points in daily.values() for point in points])


def usable_points(
    daily: dict[str, list[CostPoint]], currency: str
) -> tuple[dict[str, list[CostPoint]], list[tuple[str, str]]]:
    """The points in `currency` whose amount is a finite number within +-MAX_DAILY_AMOUNT, per
    dimension; and per dimension that had others, one message for each kind naming the field,
    how many were left out and the first of them (amounts in two currencies do not add up; a
    NaN would make the report invalid JSON, an infinity stop the run)."""
    usable: dict[str, list[CostPoint]] = {}
    rejected: list[tuple[str, str]] = []
    for dimension, points in daily.items():
        one_currency = in_one_currency(points, currency)
        other_currency = one_currency.left_out_message()
        if other_currency is not None:
            rejected.append((dimension, other_currency))
        usable[dimension] = [p for p in one_currency.points if is_cost(p.amount)]
        left_out = [p for p in one_currency.points if not is_cost(p.amount)]
        if left_out:
            first = left_out[0]
            rejected.append(
                (
                    dimension,
                    f"Metrics.UnblendedCost.Amount: {len(left_out)} values left out, not a cost "
                    f"within +-{MAX_DAILY_AMOUNT:g}; the first {str(first.amount)!r} of group "
                    f"{group_name(dimension, first.group)[:60]!r} on {first.start.isoformat()}",
                )
            )
    return usable, rejected


def daily_totals(points: list[CostPoint]) -> list[CostPoint]:
    """One point per day and group: the sum of its charge types' amounts, estimated when any of
    them is, in the order of each day and group's first point."""
    merged: dict[tuple[date, str], CostPoint] = {}
    for point in points:
        key = (point.start, point.group)
        before = merged.get(key)
        merged[key] = (
            replace(point, record_type="")
            if before is None
            else replace(
                before,
                amount=before.amount + point.amount,
                estimated=before.estimated or point.estimated,
            )
        )
    return list(merged.values())


def anomaly_points(points: list[CostPoint], currency: str) -> list[CostPoint]:
    """The points a group's daily series for anomalies is drawn from (`series_by_group`): those
    in `currency` of the charge types billed as usage accrues (not `is_out_of_cycle`), amounts
    that are no cost included (their day is unknown, not nothing)."""
    return [p for p in points if p.unit == currency and not is_out_of_cycle(p)]


def _forecast_amount(answer: dict[str, Any], field: str, parent: str) -> float:
    """`answer[field]` (0 when absent) as a number; ValueError naming the field when it is not
    a cost within +-MAX_DAILY_AMOUNT (a NaN would make the report invalid JSON)."""
    given = answer.get(field, 0.0)
    try:
        amount = float(given)
    except (TypeError, ValueError):
        amount = math.nan
    if not is_cost(amount):
        raise ValueError(
            f"{parent}.{field}: {str(given)[:40]!r} is not a cost within +-{MAX_DAILY_AMOUNT:g}"
        )
    return amount


def totals(points: list[CostPoint], dimension: str) -> list[dict[str, Any]]:
    """Total per group over the period, largest first."""
    sums: dict[str, float] = defaultdict(float)
    for point in points:
        sums[group_name(dimension, point.group)] += point.amount
    return [
        {"name": name, "cost": round(amount, 4)}
        for name, amount in sorted(sums.items(), key=lambda item: (-item[1], item[0]))
    ]


def series_by_group(
    points: list[CostPoint], dimension: str
) -> dict[str, tuple[list[date], list[float]]]:
    """Each group's daily series (days in order), for anomaly detection, from `points` (the
    answer's `anomaly_points`: charges posted once a month or once are not in it). Cost Explorer
    sends no group of no cost, so a group charged daily (`is_daily`) has every day of the answer
    (a day some group of `dimension` has a point) from its first cost on, 0 on a day it has
    none: a cluster whose tag was lost or a service stopped would otherwise end its series at
    its last cost, and its drop to nothing never be judged. Days before its first cost are left
    out (a group new within the period has no history to judge its start by), and so is a day
    whose amount is no cost (`is_cost`): unknown, not nothing. Any other group (usage billed on
    a few days of the month) is its days of cost alone: its days without are its usual, and a
    charge among them no spike."""
    grouped: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    unknown: dict[str, set[date]] = defaultdict(set)
    answered: set[date] = set()
    for point in points:
        name = group_name(dimension, point.group)
        answered.add(point.start)
        if is_cost(point.amount):
            grouped[name][point.start] += point.amount
        else:
            unknown[name].add(point.start)
    series = {}
    for name, amounts in grouped.items():
        first = min(amounts)
        days = [day for day in sorted(answered) if day >= first and day not in unknown[name]]
        if not is_daily(len(amounts), len(days)):
            days = sorted(amounts)
        series[name] = (days, [amounts.get(day, 0.0) for day in days])
    return series


def is_daily(days_with_cost: int, days_since_first: int) -> bool:
    """Whether a group with a cost on `days_with_cost` of the `days_since_first` days of the
    answer from its first cost is charged daily: on at least DAILY_SHARE of them."""
    return days_with_cost >= DAILY_SHARE * days_since_first


def month_end_forecast(
    ce: Any,
    now: datetime,
    service_points: list[CostPoint],
    period_start: date,
    currency: str,
    *,
    next_page_allowed: Callable[[], bool],
    forecast_allowed: Callable[[], bool],
) -> dict[str, Any]:
    """Month-to-date cost, forecast of the rest, and their sum, in `currency`. `service_points`
    are the daily points of each service and charge type from `period_start` as Cost Explorer
    answered them, amounts that are no cost or in another currency included: one in the month to
    date is a ValueError naming the field (the month to date without it would be too low), and a
    day with one (of a usage charge) is left out of the run rate; so is a forecast in another
    currency. When `period_start` is after the 1st (a
    lookback shorter than the month so far), the month to date is read on its own, so it never
    leaves out the month's first days, a next page of it only while `next_page_allowed()`, and
    the forecast after it is asked only when `forecast_allowed()`: else the month to date alone,
    `forecast_unavailable` FORECAST_NOT_STARTED."""
    today = now.date()
    month_start = today.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    month_points = service_points
    read_on_its_own = period_start > month_start
    if read_on_its_own:
        month_points = cost_and_usage(ce, month_start, today, next_page_allowed=next_page_allowed)
    month_points = [p for p in month_points if p.start >= month_start]
    others = in_one_currency(month_points, currency).left_out
    if others:
        raise ValueError(
            f"{UNIT_FIELD}: {len(others)} month-to-date values are not in {currency}, the first "
            f"{others[0].unit!r} on {others[0].start.isoformat()}"
        )
    not_costs = [p for p in month_points if not is_cost(p.amount)]
    if not_costs:
        raise ValueError(
            f"Metrics.UnblendedCost.Amount: {len(not_costs)} month-to-date values are not a cost "
            f"within +-{MAX_DAILY_AMOUNT:g}, the first {str(not_costs[0].amount)!r} on "
            f"{not_costs[0].start.isoformat()}"
        )
    month_to_date = sum(p.amount for p in month_points)
    summary: dict[str, Any] = {
        "month": month_start.strftime("%Y-%m"),
        "month_to_date": round(month_to_date, 4),
    }
    if read_on_its_own and not forecast_allowed():
        # The month to date read is the bill so far: the report keeps it without a forecast.
        return {
            **summary,
            "forecast_remaining": None,
            "month_end_total": None,
            "interval_80": None,
            "unit": currency,
            "source": None,
            "forecast_unavailable": FORECAST_NOT_STARTED,
        }
    try:
        response = ce.get_cost_forecast(
            TimePeriod={"Start": today.isoformat(), "End": next_month.isoformat()},
            Metric="UNBLENDED_COST",
            Granularity="MONTHLY",
            PredictionIntervalLevel=80,
        )
    except (ClientError, BotoCoreError) as error:
        in_currency = [p for p in service_points if p.unit == currency]
        remaining = run_rate(in_currency, now) * (next_month - today).days
        return {
            **summary,
            "forecast_remaining": round(remaining, 4),
            "month_end_total": round(month_to_date + remaining, 4),
            "interval_80": None,
            "unit": currency,
            "source": RUN_RATE_SOURCE,
            "forecast_unavailable": _reason(error),
        }
    unit = response["Total"].get("Unit", "USD")
    if unit != currency:
        raise ValueError(
            f"Total.Unit: the forecast is in {str(unit)[:MAX_UNIT_LENGTH]!r}, not in "
            f"{currency}, the month to date's"
        )
    remaining = _forecast_amount(response["Total"], "Amount", "Total")
    intervals = response.get("ForecastResultsByTime", [])
    low = sum(
        _forecast_amount(i, "PredictionIntervalLowerBound", "ForecastResultsByTime")
        for i in intervals
    )
    high = sum(
        _forecast_amount(i, "PredictionIntervalUpperBound", "ForecastResultsByTime")
        for i in intervals
    )
    return {
        **summary,
        "forecast_remaining": round(remaining, 4),
        "month_end_total": round(month_to_date + remaining, 4),
        "interval_80": [round(month_to_date + low, 4), round(month_to_date + high, 4)]
        if intervals
        else None,
        "unit": currency,
        "source": FORECAST_SOURCE,
    }


def run_rate(service_points: list[CostPoint], now: datetime) -> float:
    """Mean daily usage cost of the last RUN_RATE_DAYS days complete at `now` (0 without any):
    the days before the first that ended less than COST_FILLING ago, whose partial cost would
    project the month low. A charge posted once a month or once (`is_out_of_cycle`: tax,
    support, the reservation and Savings Plans fees on the 1st, a credit or refund) is left out:
    the month to date holds it already, and as a day's cost it would raise (or a credit lower)
    every day projected; a day with no other charge counts as a day of no usage. A day with a
    usage amount that is no cost (`is_cost`) is left out: its other amounts alone would project
    the month low too."""
    still_filling = (now - COST_FILLING).date()
    first = still_filling - timedelta(days=RUN_RATE_DAYS)
    days: dict[date, float] = defaultdict(float)
    unknown: set[date] = set()
    for point in service_points:
        if not first <= point.start < still_filling:
            continue
        usage = 0.0 if is_out_of_cycle(point) else point.amount
        if is_cost(usage):
            days[point.start] += usage
        else:
            unknown.add(point.start)
    known = [amount for day, amount in days.items() if day not in unknown]
    return sum(known) / len(known) if known else 0.0


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        # A proxy's 4xx page becomes the whole message: cut and escaped, the wording kept.
        details = refusal_text(error)
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".strip(": ")
    return call_error_text(error)
