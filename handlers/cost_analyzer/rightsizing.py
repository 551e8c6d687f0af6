"""Rightsizing: Lambda memory of the fleet's functions, and under-used node groups.

Lambda memory: Lambda Insights is not assumed, so the data are the REPORT lines Lambda writes to
each function's log group (`Max Memory Used`, `Billed Duration`, `Memory Size`; in the JSON log
format, which the program deploys the fleet's functions with, a `platform.report` record with
`record.metrics.maxMemoryUsedMB` and `billedDurationMs`: both formats are read), read with a
CloudWatch Logs Insights query (StartQuery, then GetQueryResults until Complete) over the last
COST_LAMBDA_LOG_DAYS. The lines are parsed here rather than with `stats max(@maxMemoryUsed)` so the
same code reads any Insights answer. When the newest `QUERY_LIMIT` REPORT lines leave part of the
window out (a busy function), their maximum is not the window's, and a peak before them (a nightly
batch) would size the memory below it: a second query reads the one line of the window sorted first
by the field Logs Insights discovers in REPORT lines of the newest lines' format
(`MEMORY_USED_FIELD`; this rests on that field, which cannot be checked offline; without it the line
read is any, and the maximum is the newest lines' as before). A query this run stops waiting for
(too little time left, the poll budget spent, a poll that failed) is stopped (StopQuery,
best-effort), since it would otherwise run on for up to 60 minutes, holding one of the account's
concurrent Logs Insights queries; so is one that an attempt of StartQuery whose answer was lost, or
came back unreadable, started, found by the comment line unique to the call in its query string.
Recommended memory = max used x 1.3, rounded up to 64 MB, at least 128 MB (at most 10,240). Monthly
saving = (current - recommended) GB x billed seconds per month (the billed duration of the lines
read scaled to 30 days from the time they cover: the window, or, when the answer was cut at
`QUERY_LIMIT` lines, from the oldest line read to the window's end) x the arm64 price per GB-second
(`prices.py`). A function whose recommendation is above its current size is reported as at risk
(negative saving).

Node groups: the average `node_cpu_utilization` (Container Insights, per cluster) over the
lookback, read in the cluster's member account; when it is under
COST_NODE_UTILISATION_THRESHOLD every node group of the cluster is listed with its size, because
the metric is per cluster, not per node group.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from botocore.parsers import ResponseParserError

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError, answer_field
from fleet_shared.exceptions import PagesCutShortError
from fleet_shared.inventory import Cluster
from fleet_shared.lost_answers import watched_attempts
from fleet_shared.metric_data import MetricQuery, align, get_metric_series
from fleet_shared.page_tokens import pages
from fleet_shared.timestamps import iso_z
from fleet_shared.unanswered_endpoints import left_unanswered
from handlers.cost_analyzer import query_polling
from handlers.cost_analyzer.prices import PRICES_DATE, arm64_price_per_gb_second
from handlers.cost_analyzer.query_polling import PolledQuery

HEADROOM = 1.3
STEP_MB = 64
MIN_MB = 128
MAX_MB = 10_240
MAX_BILLED_MS = 900_000
"""The longest an invocation is billed: Lambda's 15-minute timeout."""
_MAX_DIGITS = 6
"""More digits than any figure of a REPORT line within MAX_MB has: a longer one is not read."""
QUERY_LIMIT = 10_000
"""The most lines a Logs Insights query returns (its `limit` maximum)."""
_MAX_USED = re.compile(r"Max Memory Used:\s*(\d+)\s*MB")
_BILLED = re.compile(r"Billed Duration:\s*([\d.]+)\s*ms")
REPORT_FILTER = (
    r'@message like /^REPORT RequestId/ or @message like /"type"\s*:\s*"platform\.report"/'
)
"""A REPORT line in either log format: plain text (`REPORT RequestId: ...`) or JSON, which the
fleet's functions use (a `platform.report` record)."""
MEMORY_USED_FIELD = {"text": "@maxMemoryUsed", "json": "record.metrics.maxMemoryUsedMB"}
"""The field Logs Insights discovers with the memory a REPORT line says was used, per format."""
_MAX_POLLS = 60
_ENDED = ("Complete", "Failed", "Cancelled", "Timeout")
SECONDS_PER_MONTH = 30 * 86_400

_logger = logging.getLogger(__name__)


def recommended_memory(max_used_mb: float) -> int:
    """Max used x 1.3, rounded up to 64 MB, within [128, 10240]."""
    size = math.ceil(max_used_mb * HEADROOM / STEP_MB) * STEP_MB
    return int(min(MAX_MB, max(MIN_MB, size)))


@dataclass(frozen=True)
class FunctionListing:
    """The functions a ListFunctions listing holds, and an error for each of its items that is
    no function (not an object, or without a text FunctionName)."""

    functions: list[dict[str, Any]]
    unreadable: list[UnreadableAnswerError]


def fleet_functions(
    lambda_client: Any, prefix: str, next_page_allowed: Callable[[], bool]
) -> FunctionListing:
    """Every function whose name starts with `prefix` (all ListFunctions pages), by name; raises
    UnreadableAnswerError for a page without `Functions`, which Lambda sends in every answer,
    and PagesCutShortError before a next page `next_page_allowed()` refuses (Lambda or a proxy
    answering page after page under new tokens, which boto3's paginator follows forever).
    botocore hands a JSON answer's list items and text on unchecked: an item that is null or
    whose FunctionName is no text (unnamed, so perhaps one of the fleet's) is left out with its
    error, which shows that item's FunctionName only, never the environment an item holds."""
    functions: list[dict[str, Any]] = []
    unreadable: list[UnreadableAnswerError] = []
    position = 0
    for page in pages(
        lambda_client,
        "ListFunctions",
        {},
        "Marker",
        answer_token_field="NextMarker",
        next_page_allowed=next_page_allowed,
    ):
        for item in answer_field(page, "ListFunctions", "Functions"):
            name = item.get("FunctionName") if isinstance(item, Mapping) else item
            if isinstance(item, Mapping) and isinstance(name, str):
                if name.startswith(prefix):
                    functions.append(dict(item))
            else:
                unreadable.append(
                    UnreadableAnswerError(
                        "ListFunctions",
                        f"a function with a text FunctionName as item {position} of Functions",
                        name,
                    )
                )
            position += 1
    return FunctionListing(sorted(functions, key=lambda f: f["FunctionName"]), unreadable)


@dataclass(frozen=True)
class ReportLines:
    """The REPORT messages read, newest first, and the seconds of the window they cover; and
    when they do not cover all of it, the message of the window that used the most memory."""

    messages: list[str]
    seconds_covered: float
    peak_messages: list[str]


def _moment(value: str) -> datetime:
    """An Insights `@timestamp`: `2025-06-01 10:00:00.000` (UTC), or epoch milliseconds;
    ValueError naming the field and showing the start of the value for any other. botocore
    hands an answer's text on unchecked: a 400-digit time raised an OverflowError, which no
    section expects, and ended the run before the report."""
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"@timestamp {value[:40]!r} is not a time") from None


def report_lines(
    logs: Any,
    log_group: str,
    start: datetime,
    end: datetime,
    sleep: Callable[[float], None] = time.sleep,
    *,
    keep_waiting: Callable[[], bool] = lambda: True,
    can_stop: Callable[[], bool] = lambda: True,
) -> ReportLines:
    """The REPORT messages of `log_group` in the window (Logs Insights), newest first, and when
    the newest `QUERY_LIMIT` leave part of the window out, the one that used the most memory in
    all of it. Each query is polled while `keep_waiting()` says there is time for it (the second
    is started only then); else it is given up (raises), and stopped first when `can_stop()`
    says there is time for that call. So is every other query a StartQuery may have started (an
    attempt got no answer, or one it cannot read)."""
    window = _QueryWindow(logs, log_group, start, end, sleep, keep_waiting, can_stop)
    rows = window.rows("@timestamp", QUERY_LIMIT)
    if len(rows) < QUERY_LIMIT:
        return ReportLines(_messages(rows), max(1.0, (end - start).total_seconds()), [])
    # Cut at the limit: the lines read are the newest, so they cover only the time since the
    # oldest of them, and a rate over the whole window would undercount.
    moments = [_moment(str(row["@timestamp"])) for row in rows if row.get("@timestamp")]
    covered_from = max(start, min(moments, default=start))
    # Nor is their maximum the window's: a peak before them (a nightly batch) would be missed,
    # and memory sized below it.
    if not keep_waiting():
        raise RuntimeError(
            f"Logs Insights query on {log_group}: the newest {QUERY_LIMIT} REPORT lines leave "
            "part of the window out, and too little time is left in the invocation to read its "
            "peak: given up"
        )
    messages = _messages(rows)
    log_format = "json" if messages and messages[0].startswith("{") else "text"
    peak = _messages(window.rows(MEMORY_USED_FIELD[log_format], 1))
    return ReportLines(messages, max(1.0, (end - covered_from).total_seconds()), peak)


def _messages(rows: list[dict[str, Any]]) -> list[str]:
    """The REPORT lines among `rows`' messages (moto's Insights, for one, does not filter)."""
    return [
        str(row["@message"])
        for row in rows
        if row.get("@message") is not None and report_figures(str(row["@message"])) is not None
    ]


def report_figures(message: str) -> tuple[int, float] | None:
    """The memory used (MB) and billed duration (ms) a REPORT line gives, in plain text or in
    Lambda's JSON log format (`platform.report`, `record.metrics`); None for any other line,
    and for one whose figures no Lambda invocation has (more than MAX_MB used, or billed past
    MAX_BILLED_MS): a line a function logged itself, whose 400-digit figure raised an
    OverflowError that failed the whole report, or made its saving an infinity."""
    figures = _report_figures(message)
    if figures is None or figures[0] > MAX_MB or figures[1] > MAX_BILLED_MS:
        return None
    return figures


def _report_figures(message: str) -> tuple[int, float] | None:
    if message.startswith("REPORT"):
        used = _MAX_USED.search(message)
        billed = _BILLED.search(message)
        if used is None or len(used.group(1)) > _MAX_DIGITS:
            return None
        try:
            billed_ms = float(billed.group(1)) if billed else 0.0
        except ValueError:
            # "1.2.3 ms": not Lambda's figure.
            return None
        return int(used.group(1)), billed_ms
    if not message.startswith("{"):
        return None
    try:
        line = json.loads(message)
    except (ValueError, RecursionError):
        # A line a function logged, not Lambda's record: any text, nested however deep.
        return None
    if not isinstance(line, dict) or line.get("type") != "platform.report":
        return None
    record = line.get("record")
    metrics = record.get("metrics") if isinstance(record, dict) else None
    if not isinstance(metrics, dict):
        return None
    used_mb, billed_ms = metrics.get("maxMemoryUsedMB"), metrics.get("billedDurationMs", 0)
    if not (_is_amount(used_mb) and _is_amount(billed_ms)):
        return None
    return int(used_mb), float(billed_ms)


def _is_amount(value: object) -> bool:
    """A JSON number a REPORT record can hold: finite and not negative (not a bool)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


@dataclass(frozen=True)
class _QueryWindow:
    """Logs Insights queries of the REPORT lines of one log group in one window."""

    logs: Any
    log_group: str
    start: datetime
    end: datetime
    sleep: Callable[[float], None]
    keep_waiting: Callable[[], bool]
    can_stop: Callable[[], bool]

    def rows(self, sort_field: str, limit: int) -> list[dict[str, Any]]:
        """The `limit` REPORT lines with the largest `sort_field`, as field -> value rows."""
        logs, log_group, can_stop = self.logs, self.log_group, self.can_stop
        # A comment line (Logs Insights ignores a line that starts with `#`) unique to this
        # call: DescribeQueries lists queries with their query string, so a query an attempt
        # whose answer was lost started can be told from every other one, and stopped.
        marker = f"lambda-fleet rightsizing {uuid.uuid4()}"
        try:
            with watched_attempts(logs) as attempts:
                started = logs.start_query(
                    logGroupName=log_group,
                    startTime=int(self.start.timestamp()),
                    endTime=int(self.end.timestamp()),
                    queryString=(
                        f"fields @timestamp, @message\n| filter {REPORT_FILTER}\n# {marker}\n"
                        f"| sort {sort_field} desc\n| limit {limit}"
                    ),
                    limit=limit,
                )
            query_id = answer_field(started, "StartQuery", "queryId")
        except AWS_CALL_ERRORS as error:
            # An answer that came back unreadable answers a request AWS may have acted on.
            if attempts.answer_lost or isinstance(
                error, (ResponseParserError, UnreadableAnswerError)
            ):
                if left_unanswered(error):
                    query_polling.log_left_running_unanswered(
                        f"Logs Insights queries StartQuery may have started on {log_group}", error
                    )
                else:
                    _stop_marked_queries(logs, log_group, marker, None, can_stop)
            raise
        if attempts.answer_lost:
            _stop_marked_queries(logs, log_group, marker, query_id, can_stop)
        response = query_polling.ended_answer(
            _polled_query(logs, log_group, query_id),
            sleep=self.sleep,
            keep_waiting=self.keep_waiting,
            can_stop=can_stop,
        )
        if response["status"] != "Complete":
            raise RuntimeError(f"Logs Insights query on {log_group} ended {response['status']}")
        return [
            {cell.get("field"): cell.get("value", "") for cell in row}
            for row in response.get("results", [])
        ]


def _polled_query(logs: Any, log_group: str, query_id: str) -> PolledQuery[dict[str, Any]]:
    """The started query `query_id` of `log_group`, as `query_polling` waits for it."""

    def given_up(why: str) -> Callable[[str], Exception]:
        return lambda status: RuntimeError(
            f"Logs Insights query on {log_group} still {status} {why}: given up"
        )

    max_polls = _MAX_POLLS
    return PolledQuery(
        name=_query_name(log_group, query_id),
        poll=lambda: logs.get_query_results(queryId=query_id),
        state=lambda response: response["status"],
        ended=_ENDED,
        max_polls=max_polls,
        stop=partial(_stopped, logs, query_id),
        out_of_time=given_up("with too little time left in the invocation"),
        out_of_polls=given_up(f"after {max_polls} polls"),
    )


def _query_name(log_group: str, query_id: str) -> str:
    """How the logs name the query `query_id` of `log_group`."""
    return f"Logs Insights query {query_id} on {log_group}"


def _stopped(logs: Any, query_id: str) -> bool:
    """Whether StopQuery says it stopped `query_id`."""
    return bool(logs.stop_query(queryId=query_id).get("success"))


def _stop_marked_queries(
    logs: Any, log_group: str, marker: str, kept: str | None, can_stop: Callable[[], bool]
) -> None:
    """Stop every query of `log_group` still running whose query string holds `marker` but
    `kept`: those that attempts of one StartQuery whose answers were lost (or unreadable)
    started. Best-effort, as `query_polling.stop_query`: the listing's next page is asked only
    while `can_stop()` says so."""
    if not can_stop():
        _logger.warning(
            "Logs Insights queries of %s a lost StartQuery answer may have started left "
            "running: too little time left to look for them",
            log_group,
        )
        return
    try:
        duplicates = [
            query["queryId"]
            # Only while a stop still fits: Logs (or a proxy) answering page after page under
            # new tokens was otherwise listed until Lambda ended the run, with no report.
            for page in pages(
                logs,
                "DescribeQueries",
                {"logGroupName": log_group},
                "nextToken",
                next_page_allowed=can_stop,
            )
            for query in answer_field(page, "DescribeQueries", "queries")
            if marker in str(query.get("queryString", ""))
            and query.get("status") not in _ENDED
            and isinstance(query.get("queryId"), str)
            and query["queryId"] != kept
        ]
    except (*AWS_CALL_ERRORS, PagesCutShortError) as error:
        _logger.warning(
            "Logs Insights queries of %s a lost StartQuery answer may have started not looked "
            "for: %s",
            log_group,
            error,
        )
        return
    for query_id in duplicates:
        query_polling.stop_query(
            _query_name(log_group, query_id), partial(_stopped, logs, query_id), can_stop
        )


def lambda_memory(function: dict[str, Any], lines: ReportLines, region: str) -> dict[str, Any]:
    """Rightsizing of one function (an item of a ListFunctions answer) from its REPORT lines;
    raises UnreadableAnswerError when the item has no MemorySize of Lambda's range (Lambda
    sends one for every function; botocore drops one answered as null), showing that value
    only: the item also holds the function's environment variables."""
    current = function.get("MemorySize")
    # Lambda's memory is MIN_MB to MAX_MB: a size beyond (a 400-digit number made the saving an
    # OverflowError, which no section expects, and ended the run before the report) is no
    # answer of Lambda's.
    if not isinstance(current, int) or not MIN_MB <= current <= MAX_MB:
        raise UnreadableAnswerError(
            "ListFunctions", f"a MemorySize of {MIN_MB} to {MAX_MB} MB", current
        )
    figures = [f for line in lines.messages if (f := report_figures(line)) is not None]
    used = [used_mb for used_mb, _ in figures]
    peak = [f[0] for line in lines.peak_messages if (f := report_figures(line)) is not None]
    billed_ms = sum(billed for _, billed in figures)
    result: dict[str, Any] = {
        "function": function["FunctionName"],
        "architecture": (function.get("Architectures") or ["x86_64"])[0],
        "current_mb": current,
        "invocations": len(used),
    }
    if not used:
        return {**result, "recommendation": None, "reason": "no REPORT lines in the window"}
    max_used = max(used + peak)
    recommended = recommended_memory(max_used)
    price, price_region = arm64_price_per_gb_second(region)
    billed_seconds_month = billed_ms / 1000 * SECONDS_PER_MONTH / lines.seconds_covered
    saving = (current - recommended) / 1024 * billed_seconds_month * price
    return {
        **result,
        "max_used_mb": max_used,
        "recommended_mb": recommended,
        "billed_seconds_per_month": round(billed_seconds_month, 3),
        "monthly_saving_usd": round(saving, 8),
        "price_per_gb_second": price,
        "price_region": price_region,
        "prices_date": PRICES_DATE,
        "recommendation": (
            "decrease" if recommended < current else "increase" if recommended > current else "keep"
        ),
    }


def cluster_utilisation(
    cloudwatch: Any, cluster: Cluster, now: datetime, days: int
) -> tuple[float | None, str | None]:
    """Average hourly node CPU utilisation (0-1) of the cluster over `days`, None without data;
    and what the average leaves out (`MetricSeries.left_out`, and percentages beyond 0-100), for
    a person, None when none."""
    end = align(now, 3600)
    query = MetricQuery("cpu", "ContainerInsights", "node_cpu_utilization",
                        {"ClusterName": cluster.name}, "Average", 3600)  # fmt: skip
    series = get_metric_series(cloudwatch, [query], end - timedelta(days=days), end)["cpu"]
    # A percentage beyond 0-100 is no node's CPU (anything in the member account may put
    # ContainerInsights data): a negative one made the average, and so the idle node hours,
    # any figure, and the cluster under-used.
    hours = list(zip(series.timestamps, series.values, strict=True))
    percentages = [value for _, value in hours if 0.0 <= value <= 100.0]
    beyond = [(moment, value) for moment, value in hours if not 0.0 <= value <= 100.0]
    reasons = [series.left_out_summary()]
    if beyond:
        count, (moment, value) = len(beyond), beyond[0]
        reasons.append(
            f"{count} value{'' if count == 1 else 's'} left out, not a percentage from 0 to "
            f"100; the first {value!r} at {iso_z(moment)}"
        )
    left_out = "; ".join(reason for reason in reasons if reason is not None)
    named = f"node_cpu_utilization: {left_out}" if left_out else None
    if not percentages:
        return None, named
    return sum(percentages) / len(percentages) / 100.0, named
