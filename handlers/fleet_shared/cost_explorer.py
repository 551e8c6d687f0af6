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

Each amount carries its currency (`Unit`): amounts are added or compared only within one
(`in_one_currency`). Charges posted once a month, or once, rather than as usage accrues
(`OUT_OF_CYCLE_RECORD_TYPES`: tax, support, reservation and Savings Plans fees, credits and
refunds) are left out of the daily series anomalies are judged on, never out of totals that
must match the bill.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.page_tokens import pages
from fleet_shared.validation_errors import error_echo

CE_REGION = "us-east-1"
TOTAL = "Total"
"""The group name of a point when the request has no GroupBy."""
MAX_DAILY_AMOUNT = 1e12
"""No group's daily cost comes near it (USD): a larger amount is not a cost, and sums of such
amounts would overflow the report's totals and the anomaly detector."""
REASON_LENGTH = 80
"""The most characters of the error a result by time Cost Explorer would not send raised that
its UnreadableAnswerError keeps: enough for its kind and the start of the value."""


RECORD_TYPE_GROUP = {"Type": "DIMENSION", "Key": "RECORD_TYPE"}
"""A GroupBy by charge type: a point of an answer grouped by it as well keeps its `record_type`."""
OUT_OF_CYCLE_RECORD_TYPES = (
    "Tax",
    "Support",
    "Recurring reservation fee",
    "Upfront reservation fee",
    "SavingsPlanRecurringFee",
    "SavingsPlanUpfrontFee",
    "Credit",
    "Refund",
)
"""Cost Explorer's RECORD_TYPE values (its API terms, not the console's) of charges not posted
as usage accrues: tax, support and the reservation and Savings Plans fees land on the 1st of
the month, a refund or a credit when it is granted. In a daily series each would read as a
spike (or a drop) every month; the usage they bill is in the `Usage`, `DiscountedUsage` and
`SavingsPlanCoveredUsage` records."""
EXCLUDE_OUT_OF_CYCLE_CHARGES: dict[str, Any] = {
    "Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(OUT_OF_CYCLE_RECORD_TYPES)}}
}
"""The GetCostAndUsage Filter of a daily series for anomaly detection alone: its totals no longer
match the bill."""
UNIT_FIELD = "Metrics.UnblendedCost.Unit"
MAX_UNIT_LENGTH = 12
"""The longest Unit an answer may give (a currency code has 3): a longer one fails the read."""


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
    """The amount of one group on one day (or month), in `unit`; of one charge type
    (`record_type`) when the request was grouped by RECORD_TYPE as well, else ""."""

    start: date
    group: str
    amount: float
    unit: str
    estimated: bool
    record_type: str = ""


@dataclass(frozen=True)
class OneCurrency:
    """Points split by currency: those in `currency` and those in another (`left_out`)."""

    currency: str
    points: list[CostPoint]
    left_out: list[CostPoint]

    def left_out_message(self, field: str = UNIT_FIELD) -> str | None:
        """One line naming `field`, how many points were left out and the first one's currency
        and day; None when none was."""
        if not self.left_out:
            return None
        count, first = len(self.left_out), self.left_out[0]
        return (
            f"{field}: {count} value{'' if count == 1 else 's'} left out, not in {self.currency} "
            f"as the others; the first {first.unit!r} on {first.start.isoformat()}"
        )


def majority_currency(units: list[str], default: str = "USD") -> str:
    """The currency most of `units` are in, the first seen of those tied; `default` without any.
    The majority, not the first: one account billed in another currency, sorted first, must not
    leave the rest of the fleet out."""
    counts = Counter(units)
    return max(counts, key=counts.__getitem__) if counts else default


def in_one_currency(points: list[CostPoint], currency: str | None = None) -> OneCurrency:
    """`points` in `currency` (by default the majority's, `majority_currency`), and the others."""
    chosen = currency if currency is not None else majority_currency([p.unit for p in points])
    return OneCurrency(
        chosen,
        [p for p in points if p.unit == chosen],
        [p for p in points if p.unit != chosen],
    )


def is_out_of_cycle(point: CostPoint) -> bool:
    """Whether `point` is a charge posted once a month or once (`OUT_OF_CYCLE_RECORD_TYPES`)."""
    return point.record_type in OUT_OF_CYCLE_RECORD_TYPES


def cost_and_usage(
    ce: Any,
    start: date,
    end: date,
    *,
    granularity: str = "DAILY",
    metric: str = "UnblendedCost",
    group_by: list[dict[str, str]] | None = None,
    filter_expression: dict[str, Any] | None = None,
    next_page_allowed: Callable[[], bool] | None = None,
) -> list[CostPoint]:
    """Every point of `metric` from `start` (inclusive) to `end` (exclusive), all pages; with
    `next_page_allowed`, a next page only while it answers True, else `PagesCutShortError`.

    With `group_by`, a point's `group` joins the group's keys with `|` (a tag key comes back as
    `cluster$dev-apps`; an untagged cost as `cluster$`); without it, `group` is `TOTAL`. When the
    last GroupBy is `RECORD_TYPE_GROUP`, its key is the point's `record_type` instead.
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
    for response in pages(
        ce, "GetCostAndUsage", request, "NextPageToken", next_page_allowed=next_page_allowed
    ):
        # Cost Explorer answers a result per period, so an answer without them is not its own
        # (a proxy's page), and must not pass for a fleet that cost nothing.
        results = answer_field(response, "GetCostAndUsage", "ResultsByTime")
        if not isinstance(results, list):
            raise UnreadableAnswerError("GetCostAndUsage", "ResultsByTime as a list", response)
        for index, period in enumerate(results):
            try:
                period_points = _period_points(
                    period,
                    metric,
                    grouped=bool(group_by),
                    by_record_type=bool(group_by) and group_by[-1] == RECORD_TYPE_GROUP,
                )
                # A day outside the period asked (a proxy's or a stale answer) is not this
                # period's cost; one past 2262 also stopped the anomaly detection of the caller
                # (pandas' time index ends there) with an error no section expected.
                outside = [p.start for p in period_points if not start <= p.start < end]
                if outside:
                    raise ValueError(
                        f"TimePeriod.Start {outside[0].isoformat()} is outside "
                        f"{start.isoformat()} to {end.isoformat()}"
                    )
                points += period_points
            # botocore hands a JSON answer's values on unchecked: a period, group or amount
            # shaped otherwise than Cost Explorer sends it raises one of these here, where only
            # the answer is read, and must fail this read, not the caller's whole run.
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                reason = error_echo(error, REASON_LENGTH)
                raise UnreadableAnswerError(
                    "GetCostAndUsage", f"a readable ResultsByTime[{index}] ({reason})", period
                ) from None
    return points


def _period_points(
    period: Any, metric: str, *, grouped: bool, by_record_type: bool
) -> list[CostPoint]:
    """The points of `metric` in one result by time of a GetCostAndUsage answer: one per group
    when `grouped` (the last key its record type when `by_record_type`), else its total, if it
    has one."""
    day = date.fromisoformat(period["TimePeriod"]["Start"])
    # A JSON answer's true or false reaches here unchecked: "false", a text, was true.
    estimated = period.get("Estimated", False)
    if not isinstance(estimated, bool):
        raise ValueError(f"Estimated {estimated!r:.40} is not true or false")
    if grouped:
        points = []
        for group in period.get("Groups", []):
            keys = list(group["Keys"])
            record_type = ""
            if by_record_type:
                if len(keys) < 2:
                    raise ValueError(f"Keys {keys!r:.40} lack the RECORD_TYPE key")
                record_type = keys.pop()
            value = group["Metrics"][metric]
            points.append(_point(day, "|".join(keys), value, estimated, record_type))
        return points
    if metric in period.get("Total", {}):
        return [_point(day, TOTAL, period["Total"][metric], estimated)]
    return []


def _point(day: date, group: str, value: Any, estimated: bool, record_type: str = "") -> CostPoint:
    # Cost Explorer sends every amount's Unit, a currency code ("USD"): one without it is taken
    # for USD, its default; one of another shape is no answer of Cost Explorer's, and would
    # reach the report and its alerts whole.
    unit = value.get("Unit", "USD")
    if not isinstance(unit, str) or len(unit) > MAX_UNIT_LENGTH:
        raise ValueError(f"Unit {unit!r:.40} is not a currency code")
    return CostPoint(day, group, float(value["Amount"]), unit, estimated, record_type)
