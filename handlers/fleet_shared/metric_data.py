"""CloudWatch GetMetricData: several metric queries over one window, every page, as time series.

Several functions read metric history (the forecaster's Container Insights series, the anomaly
detector's configured metrics, the cost analyzer's node utilisation). GetMetricData returns up to
100,800 values per page and splits the rest over `NextToken` pages, possibly interleaving the
queries; `get_metric_series` follows every page and merges each query's values into one series
ordered by time, so callers never see pagination. A value no metric can have (NaN, an infinity,
a magnitude beyond CloudWatch's limit of 2**360, which its CBOR answer can still carry) is left out
of the series and kept aside with its time (`MetricSeries.left_out`), for the caller to name: in
the series it would stop the anomaly detector, or reach a document or an alert as `NaN` or `inf`.
A value dated outside the window asked (`in_window`: a proxy's or a broken endpoint's answer
dating one in 1970, year 9999 or tomorrow) is left out of the series the same way
(`MetricSeries.outside_window`), so no caller takes it for a recent or an old measurement.
Light: no numpy or pandas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.exceptions import MetricReadCutShortError
from fleet_shared.page_tokens import pages
from fleet_shared.timestamps import iso_z

MAX_QUERIES_PER_CALL = 500
"""GetMetricData accepts at most 500 queries per request."""
VALUES_PER_PAGE = 100_800
"""GetMetricData's MaxDatapoints when not given: the values it answers before paginating."""
LARGEST_METRIC_VALUE = 2.0**360
"""CloudWatch's limit for the magnitude of a metric value (PutMetricData refuses larger ones)."""


def is_metric_value(value: float) -> bool:
    """Whether `value` is one a metric can have: finite and within +-LARGEST_METRIC_VALUE."""
    return math.isfinite(value) and abs(value) <= LARGEST_METRIC_VALUE


def align(moment: datetime, period: int) -> datetime:
    """`moment` rounded down to a multiple of `period` seconds since the epoch (UTC).

    CloudWatch buckets values into periods that start at StartTime; aligned start and end times
    give buckets on the hour (or the minute) and leave out the current, incomplete period.
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // timedelta(seconds=period)) * timedelta(seconds=period)


def in_window(moment: datetime, start: datetime, end: datetime, period: int) -> bool:
    """Whether CloudWatch can date a value of a `period`-second query from `start` to `end` at
    `moment`: before `end` (exclusive), and not before the period holding `start`.

    CloudWatch rounds an unaligned StartTime down (a high-resolution period's to the period, a
    recent start's to the minute) and dates the first value at the rounded time; an aligned
    start is its own period's start.
    """
    return align(start, period) <= moment < end


@dataclass(frozen=True)
class MetricQuery:
    """One metric statistic: namespace, name, dimensions, statistic and period in seconds, and
    the metric's unit when known."""

    id: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, str]
    stat: str
    period: int
    unit: str | None = None
    """The metric's CloudWatch unit, when its caller knows it (a reader choosing its noise floor
    by it); not sent: GetMetricData would then answer only the values stored with that unit."""

    def to_request(self) -> dict[str, Any]:
        """The `MetricDataQueries` entry of this query."""
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [
                        {"Name": name, "Value": value}
                        for name, value in sorted(self.dimensions.items())
                    ],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


@dataclass
class MetricSeries:
    """The values of one query, oldest first, and CloudWatch's final status for it."""

    timestamps: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    status: str = "Complete"
    left_out: list[tuple[datetime, float]] = field(default_factory=list)
    """The answer's values that are no metric value (`is_metric_value`), with their times,
    oldest first: not in `values`."""
    outside_window: list[tuple[datetime, float]] = field(default_factory=list)
    """The answer's values dated outside the window asked (`in_window`), with their times,
    oldest first: neither in `values` nor in `left_out`."""
    window: tuple[datetime, datetime] | None = None
    """The start and end asked, for `left_out_summary` to name."""

    def left_out_summary(self) -> str | None:
        """How many values were left out and the first of them, per reason, for a person; None
        when none was."""
        reasons: list[str] = []
        if self.left_out:
            moment, value = self.left_out[0]
            reasons.append(
                f"{_values(len(self.left_out))} left out, not a number within +-2**360 "
                f"(CloudWatch's limit); the first {value!r} at {iso_z(moment)}"
            )
        if self.outside_window:
            asked = ""
            if self.window is not None:
                asked = f" ({iso_z(self.window[0])} to {iso_z(self.window[1])})"
            reasons.append(
                f"{_values(len(self.outside_window))} left out, dated outside the window "
                f"asked{asked}; the first at {iso_z(self.outside_window[0][0])}"
            )
        return "; ".join(reasons) or None


def _values(count: int) -> str:
    """`1 value`, `2 values`."""
    return f"{count} value{'' if count == 1 else 's'}"


def within_range(
    series: MetricSeries, highest: float | None, unit: str
) -> tuple[MetricSeries, str | None]:
    """`series` without its values no measurement can be (below 0, above `highest` when there is
    one), and what was left out, for a person (None when nothing was). A node CPU of -5 % or
    140 % in the performance analysis made the optimizer refuse the whole analysis, and one of
    1000 times the usual load (Container Insights' namespace takes anyone's PutMetricData)
    drove a predictive cluster to its max_size."""

    def can_be(value: float) -> bool:
        return value >= 0 and (highest is None or value <= highest)

    points = list(zip(series.timestamps, series.values, strict=True))
    outside = [(moment, value) for moment, value in points if not can_be(value)]
    if not outside:
        return series, None
    kept = [(moment, value) for moment, value in points if can_be(value)]
    moment, value = outside[0]
    bound = "0 or more" if highest is None else f"0-{highest:g}"
    summary = (
        f"{_values(len(outside))} left out, outside {bound} {unit}; "
        f"the first {value!r} at {iso_z(moment)}"
    )
    within = replace(
        series,
        timestamps=[moment for moment, _ in kept],
        values=[value for _, value in kept],
    )
    return within, summary


def page_limit(queries: Sequence[MetricQuery], start: datetime, end: datetime) -> int:
    """The most pages one GetMetricData request of `queries` from `start` to `end` takes: twice
    the pages its values fill at VALUES_PER_PAGE (a page may hold fewer, CloudWatch interleaving
    the queries), and one more. Four weeks of 500 hourly series fill 4 pages (9 allowed), an
    alarm's 20,000 values one (3 allowed)."""
    values = sum(
        math.ceil((end - align(start, query.period)) / timedelta(seconds=query.period))
        for query in queries
    )
    return 2 * math.ceil(max(values, 1) / VALUES_PER_PAGE) + 1


def get_metric_series(
    cloudwatch: Any,
    queries: Iterable[MetricQuery],
    start: datetime,
    end: datetime,
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> dict[str, MetricSeries]:
    """Every value of every query between `start` and `end`, keyed by query id; one dated
    outside them (`in_window`) is kept aside in `MetricSeries.outside_window`.

    Follows `NextToken` until the last page (`page_tokens`: a token answered again raises
    `RepeatedPageTokenError`); queries are sent in batches of 500. Every request after the first
    (a next page or batch) is sent only while `next_page_allowed()` answers True, else the read
    raises `MetricReadCutShortError`: a read of many series can take many pages, each as long as
    the first. A read without `next_page_allowed` (a caller with no deadline to stop by) takes at
    most `page_limit` pages per request, else raises `PageLimitError` (a `PaginationError`, as
    for a token answered again): an endpoint answering a new token with every page was
    otherwise read until Lambda ended the run.
    """
    query_list = list(queries)
    merged: dict[str, dict[datetime, float]] = {query.id: {} for query in query_list}
    statuses: dict[str, str] = {query.id: "Complete" for query in query_list}
    requests = 0

    def ask_next_request() -> None:
        if requests and next_page_allowed is not None and not next_page_allowed():
            raise MetricReadCutShortError

    for offset in range(0, len(query_list), MAX_QUERIES_PER_CALL):
        batch = query_list[offset : offset + MAX_QUERIES_PER_CALL]
        request: dict[str, Any] = {
            "MetricDataQueries": [query.to_request() for query in batch],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        ask_next_request()
        limit = None if next_page_allowed is not None else page_limit(batch, start, end)
        for response in pages(cloudwatch, "GetMetricData", request, "NextToken", max_pages=limit):
            requests += 1
            # CloudWatch answers a result per query, so an answer without them is not its own
            # (a proxy's page), and must not pass for metrics that stopped reporting.
            for result in answer_field(response, "GetMetricData", "MetricDataResults"):
                query_id = answer_field(result, "GetMetricData", "Id")
                timestamps, values = result.get("Timestamps", []), result.get("Values", [])
                if len(timestamps) != len(values):
                    # CloudWatch sends a value per timestamp: pairing them otherwise would read
                    # values at times they were not measured, and a bare ValueError from the
                    # pairing ended whole runs instead of failing this read alone.
                    raise UnreadableAnswerError(
                        "GetMetricData",
                        f"a value for each timestamp of {query_id}",
                        {"Timestamps": len(timestamps), "Values": len(values)},
                    )
                try:
                    numbers = [float(value) for value in values]
                except (TypeError, ValueError):
                    # botocore hands a JSON answer's values on unchecked: one that is no number
                    # (CloudWatch sends NaN and the infinities as strings float() reads) is no
                    # CloudWatch answer, and must fail this read, not the caller's whole run.
                    raise UnreadableAnswerError(
                        "GetMetricData", f"a number for each value of {query_id}", values
                    ) from None
                merged.setdefault(query_id, {}).update(zip(timestamps, numbers, strict=True))
                # Pages before the last say PartialData: the last page's status is the answer.
                status = result.get("StatusCode", "Complete")
                if not isinstance(status, str):
                    # botocore hands a JSON answer's status on unchecked: one that is no text
                    # is no CloudWatch answer, and would reach the caller's error as whatever
                    # it is.
                    raise UnreadableAnswerError(
                        "GetMetricData", f"a text StatusCode of {query_id}", status
                    )
                statuses[query_id] = status
            if response.get("NextToken"):
                ask_next_request()
    periods = {query.id: query.period for query in query_list}
    series: dict[str, MetricSeries] = {}
    for query_id, points in merged.items():
        ordered = sorted(points.items())
        # A result of an id no query has (a proxy's) has no period: its own start bounds it.
        period = periods.get(query_id, 1)
        dated = [(at, value) for at, value in ordered if in_window(at, start, end, period)]
        kept = [(moment, value) for moment, value in dated if is_metric_value(value)]
        series[query_id] = MetricSeries(
            timestamps=[moment for moment, _ in kept],
            values=[value for _, value in kept],
            status=statuses.get(query_id, "Complete"),
            left_out=[(moment, value) for moment, value in dated if not is_metric_value(value)],
            outside_window=[
                (at, value) for at, value in ordered if not in_window(at, start, end, period)
            ],
            window=(start, end),
        )
    return series
