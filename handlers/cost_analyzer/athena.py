"""The CUR aggregation in Athena, for reports too large for one Lambda (COST_QUERY_ENGINE=athena).

`AGGREGATE_SQL` is the GROUP BY of `cur.aggregate_line_items`, written for the CUR 2.0 table
that the AWS data export's Glue crawler (or CREATE TABLE) defines, with a count of the line
items without a usage start, which the pandas engine refuses and the period's bounds alone
would drop unseen. The period is passed as
execution parameters (`?`, bound by Athena), never written into the SQL; only the database and
table names are, since parameters cannot name a table, and they are checked first. The function
starts the query in ATHENA_WORKGROUP, polls GetQueryExecution with a growing pause until it ends
(or the poll budget or the invocation's time runs out), and reads every GetQueryResults page
(NextToken, RESULT_PAGE_ROWS a page) while the invocation has time for the next and the rows read
fit MAX_RESULT_ROWS; the first row of the first page is the header. A query this run stops waiting
for before it ended (too little time left, the poll budget spent, a poll that failed) is stopped
(StopQueryExecution, best-effort): it would otherwise run on, billed for the data it scans and
holding one of the account's concurrent DML queries. One that succeeded holds neither, so a failure
while reading its pages stops nothing. Each StartQueryExecution call carries a ClientRequestToken
of its own, the same in each of botocore's attempts, so Athena answers a retry after a lost answer
with the first query's id instead of starting a second query; and when the call fails after an
attempt that got no answer, the request is sent once more with that token, so that the query the
lost attempt may have started is named and read (or started then), not left running unknown to the
run.

The AWS SDK for pandas (`wr.athena.read_sql_query`) is not used here: its regular path reads the
result CSV from S3 (s3:GetObject on the results and athena:GetWorkGroup, which the role does not
grant) and polls on its own clock, outside the invocation's time budget and the tests' pause.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from botocore.parsers import ResponseParserError

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError, answer_field
from fleet_shared.exceptions import FleetError
from fleet_shared.lost_answers import watched_attempts
from fleet_shared.page_tokens import pages
from fleet_shared.unanswered_endpoints import left_unanswered
from fleet_shared.validation_errors import escaped_echo
from handlers.cost_analyzer import query_polling
from handlers.cost_analyzer.cur import AGGREGATE_COLUMNS, USAGE_START_COLUMN, require_amounts
from handlers.cost_analyzer.query_polling import PolledQuery

AGGREGATE_SQL = """
SELECT line_item_usage_account_id AS account_id,
       COALESCE(product_region_code, '') AS region,
       line_item_product_code AS product_code,
       COALESCE(line_item_resource_id, '') AS resource_id,
       COALESCE(product_instance_type, '') AS instance_type,
       CASE WHEN line_item_usage_type LIKE '%SpotUsage%' THEN 'spot'
            WHEN line_item_usage_type LIKE '%BoxUsage%' THEN 'on_demand'
            ELSE 'other' END AS purchase,
       COALESCE(NULLIF(element_at(resource_tags, 'user_cluster'), ''),
                NULLIF(element_at(resource_tags, 'aws_eks_cluster_name'), ''), '') AS cluster,
       SUM(line_item_unblended_cost) AS cost,
       SUM(CASE WHEN line_item_usage_type LIKE '%SpotUsage%'
                  OR line_item_usage_type LIKE '%BoxUsage%'
                THEN line_item_usage_amount ELSE 0 END) AS instance_hours,
       COALESCE(line_item_currency_code, '') AS currency,
       COUNT_IF(line_item_usage_start_date IS NULL) AS undated_lines
FROM "{database}"."{table}"
WHERE billing_period BETWEEN ? AND ?
  AND (line_item_usage_start_date IS NULL
       OR (line_item_usage_start_date >= CAST(? AS TIMESTAMP)
           AND line_item_usage_start_date < CAST(? AS TIMESTAMP)))
GROUP BY 1, 2, 3, 4, 5, 6, 7, 10
ORDER BY cost DESC
"""
UNDATED_LINES_COLUMN = "undated_lines"
"""The result column counting each group's line items without a usage start: the period's
bounds alone would leave them out unseen (NULL compares as neither in nor out), where the
pandas engine refuses the file holding one."""
SUMMED_COLUMNS = {"cost": "line_item_unblended_cost", "instance_hours": "line_item_usage_amount"}
"""Each summed column of the result and the CUR column it adds up (named in errors)."""
_IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")
MAX_POLLS = 120
RESULT_PAGE_ROWS = 1_000
"""Rows asked for a GetQueryResults page: the most its MaxResults takes (1 to 1,000)."""
MAX_RESULT_ROWS = 250_000
"""The most result rows (groups of line items, the header not counted) read into the function's
memory; a result with more fails the CUR section naming this bound, the pages after it unread.
Held as text, framed and summarised, a row of this query took about 1.4 KiB of the process's
memory (measured on 2026-11-29, resource ids of 64 characters: 269 MiB more at 200,000 rows, 530
MiB at 400,000), so this many take about 340 MiB beside the 120 MiB of the loaded libraries,
within the function's 1,024 MB (catalog) with room for longer resource ids; read on, a large
fleet's result (a group per resource) took the function past its memory, and no report was
written."""

_MAYBE_STARTED = "an Athena query the failed StartQueryExecution may have started is left running: "
"""The start of the warning that a query may run on unknown to this run."""

_logger = logging.getLogger(__name__)


class AthenaQueryError(FleetError):
    """The query failed, was cancelled, or did not end (or its result could not be read) within
    the poll budget or the invocation's time."""


def aggregate_sql(database: str, table: str) -> str:
    """The aggregation over `database.table`; the names are checked, since they are written into
    the SQL."""
    for name in (database, table):
        if not _IDENTIFIER.fullmatch(name):
            raise AthenaQueryError(f"invalid Athena database or table name {name!r}")
    return AGGREGATE_SQL.format(database=database, table=table)


def period_parameters(start: datetime, end: datetime) -> list[str]:
    """The execution parameters of `AGGREGATE_SQL`, as SQL string literals: the first and last
    billing period (`YYYY-MM`) the period from `start` to `end` (exclusive) overlaps, then the
    period's bounds."""
    last = end - timedelta(microseconds=1)
    # Without the partition bounds Athena scans every month the export ever wrote: each run
    # would cost as much as the export's whole history.
    months = [f"'{moment:%Y-%m}'" for moment in (start, last)]
    return months + [f"'{moment:%Y-%m-%d %H:%M:%S}'" for moment in (start, end)]


def run_query(
    athena: Any,
    sql: str,
    *,
    parameters: list[str],
    workgroup: str,
    output_location: str | None,
    sleep: Callable[[float], None] = time.sleep,
    keep_waiting: Callable[[], bool] = lambda: True,
    can_call: Callable[[], bool] = lambda: True,
) -> pd.DataFrame:
    """Start `sql` with its execution `parameters`, wait for it while `keep_waiting()` says there
    is time, read its result pages while `can_call()` says one more call fits (else it is given
    up: `AthenaQueryError`), and return its rows as text columns. A query given up, or whose poll
    failed, is stopped first when `can_call()` says so."""
    request: dict[str, Any] = {
        "QueryString": sql,
        "ExecutionParameters": parameters,
        "WorkGroup": workgroup,
        # Unique to this call and the same in every request of it: Athena answers a request with
        # a token it has seen with the query that token started, and starts no other.
        "ClientRequestToken": str(uuid.uuid4()),
    }
    if output_location:
        request["ResultConfiguration"] = {"OutputLocation": output_location}
    execution_id = _started_query(athena, request, can_call)
    status = query_polling.ended_answer(
        _polled_query(athena, execution_id),
        sleep=sleep,
        keep_waiting=keep_waiting,
        can_stop=can_call,
    )
    if status["State"] != "SUCCEEDED":
        # Athena's reason may quote the query and the data it failed on, at any length and over
        # lines (and a proxy's answer anything): its start, on one line, is enough to tell why.
        reason = escaped_echo(str(status.get("StateChangeReason", "no reason given")))
        raise AthenaQueryError(f"Athena query {execution_id} {status['State']}: {reason}")
    return _result_frame(athena, execution_id, can_call)


def _started_query(athena: Any, request: dict[str, Any], can_call: Callable[[], bool]) -> str:
    """The id of the query `request` starts. When the call fails after an attempt that got no
    answer (or answered with a page it cannot read), Athena may have started the query: the
    request is sent once more, with its token, so that Athena names that query (or starts it)
    and the run goes on with it instead of leaving it running unread."""
    try:
        with watched_attempts(athena) as attempts:
            return _execution_id(athena.start_query_execution(**request))
    except AWS_CALL_ERRORS as error:
        if not attempts.answer_lost and not isinstance(
            error, (ResponseParserError, UnreadableAnswerError)
        ):
            raise
        if left_unanswered(error):
            _logger.warning(_MAYBE_STARTED + "its endpoint did not answer (%s)", error)
            raise
        if not can_call():
            _logger.warning(_MAYBE_STARTED + "too little time left to ask for it")
            raise
        try:
            return _execution_id(athena.start_query_execution(**request))
        except AWS_CALL_ERRORS as second_error:
            _logger.warning(_MAYBE_STARTED + "asking for it again failed (%s)", second_error)
        raise


def _execution_id(started: object) -> str:
    """The query id a StartQueryExecution answer names (`UnreadableAnswerError` without one)."""
    return str(answer_field(started, "StartQueryExecution", "QueryExecutionId"))


def _polled_query(athena: Any, execution_id: str) -> PolledQuery[dict[str, Any]]:
    """The started query `execution_id`, as `query_polling` waits for it: its status."""
    name = f"Athena query {execution_id}"
    max_polls = MAX_POLLS
    return PolledQuery(
        name=name,
        poll=lambda: _query_status(athena.get_query_execution(QueryExecutionId=execution_id)),
        state=lambda status: status["State"],
        ended=_DONE,
        max_polls=max_polls,
        stop=partial(_stopped, athena, execution_id),
        out_of_time=lambda state: AthenaQueryError(
            f"{name} still {state} with too little time left in the invocation: given up"
        ),
        out_of_polls=lambda _: AthenaQueryError(f"{name} did not finish in {max_polls} polls"),
    )


def _query_status(answer: object) -> dict[str, Any]:
    """GetQueryExecution's `QueryExecution.Status`, with a text `State` (UnreadableAnswerError
    naming the field otherwise): botocore hands a JSON answer's text on unchecked, and a
    proxy's page parses into an answer without the call's fields."""
    state = answer_field(answer, "GetQueryExecution", "QueryExecution", "Status", "State")
    if not isinstance(state, str):
        raise UnreadableAnswerError(
            "GetQueryExecution", "a text QueryExecution.Status.State", state
        )
    status: dict[str, Any] = answer_field(answer, "GetQueryExecution", "QueryExecution", "Status")
    return status


def _row_values(row: object) -> list[str | None]:
    """The values of a GetQueryResults row, each text or None (Athena's SQL NULL, sent without
    `VarCharValue`): UnreadableAnswerError naming the field for a row that is not an object
    with a list of cells, a cell that is not an object or a value that is not text, which
    botocore hands on unchecked and the aggregation would take for a real amount."""
    if not isinstance(row, Mapping):
        raise UnreadableAnswerError("GetQueryResults", "an object for each of ResultSet.Rows", row)
    cells = row.get("Data")
    if not isinstance(cells, list) or not all(isinstance(cell, Mapping) for cell in cells):
        raise UnreadableAnswerError(
            "GetQueryResults", "an object for each cell of ResultSet.Rows[].Data", cells
        )
    values = [cell.get("VarCharValue") for cell in cells]
    if not all(value is None or isinstance(value, str) for value in values):
        raise UnreadableAnswerError(
            "GetQueryResults", "a text VarCharValue for each cell of ResultSet.Rows[].Data", values
        )
    return values


def _stopped(athena: Any, execution_id: str) -> bool:
    """Stop `execution_id` (StopQueryExecution answers nothing but success, so True)."""
    athena.stop_query_execution(QueryExecutionId=execution_id)
    return True


def _result_frame(athena: Any, execution_id: str, can_call: Callable[[], bool]) -> pd.DataFrame:
    """The rows of a query that succeeded, read page after page while `can_call()` says there
    is time for the next, and while they are at most MAX_RESULT_ROWS (else AthenaQueryError
    naming the bound)."""
    rows: list[list[str | None]] = []
    read = 0

    def ensure_time() -> None:
        # A large result read page after page would otherwise run past the invocation's end,
        # leaving no report at all.
        if not can_call():
            raise AthenaQueryError(
                f"Athena query {execution_id} results: {read} pages read, too little time left "
                "in the invocation to read the next: given up"
            )

    ensure_time()
    request = {"QueryExecutionId": execution_id, "MaxResults": RESULT_PAGE_ROWS}
    # A NextToken answered again raises RepeatedPageTokenError: the rows would repeat too.
    for page in pages(athena, "GetQueryResults", request, "NextToken"):
        read += 1
        rows.extend(
            _row_values(row) for row in answer_field(page, "GetQueryResults", "ResultSet", "Rows")
        )
        # The first row is the header. Checked after each page, not only at the end: the pages
        # after the bound would take the memory it keeps.
        if len(rows) - 1 > MAX_RESULT_ROWS:
            raise AthenaQueryError(
                f"Athena query {execution_id} results: more than {MAX_RESULT_ROWS:,} rows, the "
                f"most the function reads into its memory, after {read} pages: given up"
            )
        if page.get("NextToken"):
            ensure_time()
    if not rows:
        return pd.DataFrame(columns=list(AGGREGATE_COLUMNS))
    return pd.DataFrame(rows[1:], columns=rows[0])


def aggregate_with_athena(
    athena: Any,
    *,
    workgroup: str,
    database: str,
    table: str,
    output_location: str | None,
    start: datetime,
    end: datetime,
    sleep: Callable[[float], None] = time.sleep,
    keep_waiting: Callable[[], bool] = lambda: True,
    can_call: Callable[[], bool] = lambda: True,
) -> pd.DataFrame:
    """The aggregate frame of `cur.aggregate_line_items`, computed by Athena (given up when
    `keep_waiting()` says there is no time left to wait for it, or `can_call()` to read its next
    result page; a query given up is stopped when `can_call()` says there is time)."""
    frame = run_query(
        athena,
        aggregate_sql(database, table),
        parameters=period_parameters(start, end),
        workgroup=workgroup,
        output_location=output_location,
        sleep=sleep,
        keep_waiting=keep_waiting,
        can_call=can_call,
    )
    missing = [c for c in (*AGGREGATE_COLUMNS, UNDATED_LINES_COLUMN) if c not in frame.columns]
    if missing:
        raise AthenaQueryError(f"Athena result lacks columns {missing}")
    _require_dated_lines(frame[UNDATED_LINES_COLUMN])
    frame = frame[list(AGGREGATE_COLUMNS)].fillna("")
    for column, cur_column in SUMMED_COLUMNS.items():
        given = frame[column]
        # An empty sum is null (no amounts); "NaN", "Infinity" or text are not amounts.
        numbers = pd.to_numeric(given.mask(given == "", "0"), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        require_amounts(cur_column, numbers, given)
        frame[column] = numbers
    return frame


def _require_dated_lines(undated_lines: pd.Series) -> None:
    """`AthenaQueryError` when a line item of the billing periods read has no usage start: its
    cost belongs to no period, and the report would be short of it with nothing said."""
    counts = pd.to_numeric(undated_lines, errors="coerce")
    if counts.isna().any():
        raise AthenaQueryError(f"Athena result: {UNDATED_LINES_COLUMN} is not a count in every row")
    undated = int(counts.sum())
    if undated:
        raise AthenaQueryError(
            f"{USAGE_START_COLUMN} is empty in {undated} line item(s) of the billing periods read"
        )
