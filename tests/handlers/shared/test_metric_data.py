"""fleet_shared.metric_data: every page of GetMetricData merged into one series per query."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import PaginationError
from botocore.stub import ANY, Stubber

from fleet_shared.aws_answers import AWS_CALL_ERRORS, UnreadableAnswerError
from fleet_shared.exceptions import MetricReadCutShortError
from fleet_shared.metric_data import MetricQuery, MetricSeries, get_metric_series
from tests.handlers.faults import (
    REPEATED_TOKEN_PAGE_LIMIT,
    EndlessPagesError,
    answer_malformed,
    answer_the_same_page_token,
)

START = datetime(2025, 6, 1, tzinfo=UTC)


def test_pages_are_followed_and_merged_in_time_order() -> None:
    # GIVEN a query whose values CloudWatch returns over two pages, newest page first
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    query = MetricQuery(
        "cpu", "ContainerInsights", "node_cpu_utilization", {"ClusterName": "a"}, "Average", 3600
    )
    hours = [START + timedelta(hours=i) for i in range(4)]
    with Stubber(cloudwatch) as stubber:
        stubber.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "cpu",
                        "Timestamps": hours[2:],
                        "Values": [3.0, 4.0],
                        "StatusCode": "PartialData",
                    }
                ],
                "NextToken": "page-2",
            },
            {
                "MetricDataQueries": [query.to_request()],
                "StartTime": ANY,
                "EndTime": ANY,
                "ScanBy": "TimestampAscending",
            },
        )
        stubber.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "cpu",
                        "Timestamps": hours[:2],
                        "Values": [1.0, 2.0],
                        "StatusCode": "Complete",
                    }
                ]
            },
            {
                "MetricDataQueries": ANY,
                "StartTime": ANY,
                "EndTime": ANY,
                "ScanBy": ANY,
                "NextToken": "page-2",
            },
        )
        # WHEN the series is read
        series = get_metric_series(cloudwatch, [query], START, START + timedelta(hours=4))
    # THEN both pages are merged, oldest first, and the final status is the last page's
    assert series["cpu"].timestamps == hours
    assert series["cpu"].values == [1.0, 2.0, 3.0, 4.0]
    assert series["cpu"].status == "Complete"


def test_query_without_values_gives_an_empty_series() -> None:
    # GIVEN CloudWatch has no values for the query
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    query = MetricQuery("m", "AWS/Lambda", "Errors", {}, "Sum", 300)
    with Stubber(cloudwatch) as stubber:
        stubber.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": "m", "Timestamps": [], "Values": [], "StatusCode": "Complete"}
                ]
            },
        )
        # WHEN read THEN the series exists and is empty
        series = get_metric_series(cloudwatch, [query], START, START + timedelta(hours=1))
    assert series["m"].values == []


def test_a_next_token_answered_again_fails_the_read_naming_get_metric_data(
    mocked_aws: None,
) -> None:
    # GIVEN CloudWatch (or a proxy before it) answering every page with the same NextToken
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    query = MetricQuery("m", "AWS/Lambda", "Errors", {}, "Sum", 300)
    repeated = answer_the_same_page_token(cloudwatch, "GetMetricData", "NextToken")
    # WHEN the series is read
    with pytest.raises(PaginationError) as raised:
        get_metric_series(cloudwatch, [query], START, START + timedelta(hours=1))
    # THEN the read fails at the first repeat, naming the operation and the token
    assert ("GetMetricData" in str(raised.value), "'page-2'" in str(raised.value)) == (True, True)
    assert repeated.pages == 2


def test_a_read_without_a_deadline_stops_after_the_pages_its_values_can_fill(
    mocked_aws: None,
) -> None:
    # GIVEN CloudWatch (or a proxy before it) answering every page with a new NextToken, and a
    # caller without a deadline reading one hour of one 5-minute series (one page's values)
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    query = MetricQuery("m", "AWS/Lambda", "Errors", {}, "Sum", 300)
    pages: list[str] = []

    def new_token(parsed: dict[str, object], **_: object) -> None:
        if len(pages) == REPEATED_TOKEN_PAGE_LIMIT:
            raise EndlessPagesError(f"GetMetricData asked for {len(pages) + 1} pages")
        pages.append(f"page-{len(pages) + 2}")
        parsed["NextToken"] = pages[-1]

    cloudwatch.meta.events.register_first("after-call.cloudwatch.GetMetricData", new_token)
    # WHEN the series is read
    with pytest.raises(AWS_CALL_ERRORS) as raised:
        get_metric_series(cloudwatch, [query], START, START + timedelta(hours=1))
    # THEN the read fails as a failed call (as for a token answered again) after the 3 pages
    # allowed, naming the operation, instead of asking until Lambda ends the run
    assert isinstance(raised.value, PaginationError)
    assert (len(pages), str(raised.value)) == (
        3,
        "GetMetricData answered a next page after 3 pages, more than the request can fill: its "
        "pages would go on forever",
    )


def test_values_no_metric_can_have_are_left_out_and_kept_aside_with_their_times() -> None:
    # GIVEN CloudWatch answers a series with NaN, an infinity and a value beyond its own limit
    # of 2**360 among usual values
    query = MetricQuery("m", "AWS/Lambda", "Duration", {}, "Average", 3600)
    hours = [START + timedelta(hours=i) for i in range(5)]
    values = [1.0, float("nan"), 2.0**360, float("-inf"), 2.0**361]
    # WHEN the series is read
    series = series_answered(query, hours, values, START, START + timedelta(hours=5))
    # THEN the series holds the metric values only
    assert series.timestamps == [hours[0], hours[2]]
    assert series.values == [1.0, 2.0**360]
    # AND the others are kept aside with their times, and summed up for a person
    assert [moment for moment, _ in series.left_out] == [hours[1], hours[3], hours[4]]
    assert series.left_out_summary() == (
        "3 values left out, not a number within +-2**360 (CloudWatch's limit); the first nan at "
        "2025-06-01T01:00:00Z"
    )


def test_values_dated_outside_the_window_asked_are_left_out_and_kept_aside() -> None:
    # GIVEN CloudWatch (a proxy, a broken endpoint) answering a 4-hour read with values dated in
    # 1970, an hour before StartTime, at EndTime (exclusive) and in year 9999, one of them NaN,
    # around two hours of the window
    query = MetricQuery("m", "AWS/Lambda", "Duration", {}, "Average", 3600)
    end = START + timedelta(hours=4)
    before = [datetime(1970, 1, 1, tzinfo=UTC), START - timedelta(hours=1)]
    after = [end, datetime(9999, 12, 31, 23, tzinfo=UTC)]
    timestamps = [*before, START, START + timedelta(hours=1), *after]
    values = [9.0, float("nan"), 1.0, 2.0, 7.0, 8.0]
    # WHEN the series is read
    series = series_answered(query, timestamps, values, START, end)
    # THEN the series holds the two hours of the window only, and nothing is taken for a value
    # that is no number
    assert (series.timestamps, series.values) == ([START, START + timedelta(hours=1)], [1.0, 2.0])
    assert series.left_out == []
    # AND the others are kept aside with their times, and summed up for a person
    assert [moment for moment, _ in series.outside_window] == [*before, *after]
    assert series.left_out_summary() == (
        "4 values left out, dated outside the window asked (2025-06-01T00:00:00Z to "
        "2025-06-01T04:00:00Z); the first at 1970-01-01T00:00:00Z"
    )


def test_the_value_of_the_minute_holding_an_unaligned_start_is_kept() -> None:
    # GIVEN a 1-minute read from 00:01:30, which CloudWatch rounds down to 00:01:00 and answers
    # from there, and a value of the minute before
    query = MetricQuery("m", "ContainerInsights", "node_cpu_utilization", {}, "Average", 60)
    minutes = [START, START + timedelta(minutes=1), START + timedelta(minutes=2)]
    # WHEN the series is read
    start, end = START + timedelta(seconds=90), START + timedelta(minutes=3)
    series = series_answered(query, minutes, [1.0, 2.0, 3.0], start, end)
    # THEN the minute holding the start is kept, the one before is left out
    assert series.timestamps == minutes[1:]
    assert [moment for moment, _ in series.outside_window] == minutes[:1]


def series_answered(
    query: MetricQuery,
    timestamps: list[datetime],
    values: list[float],
    start: datetime,
    end: datetime,
) -> MetricSeries:
    """`query`'s series from `start` to `end`, CloudWatch answering `timestamps` and `values`."""
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    result = {"Id": query.id, "Timestamps": timestamps, "Values": values}
    with Stubber(cloudwatch) as stubber:
        stubber.add_response("get_metric_data", {"MetricDataResults": [result]})
        return get_metric_series(cloudwatch, [query], start, end)[query.id]


def test_a_read_of_more_than_500_queries_asks_before_its_next_batch_and_stops_when_refused(
    mocked_aws: None,
) -> None:
    # GIVEN 501 queries (two GetMetricData requests of at most 500) and a caller whose time runs
    # out after the first request
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    queries = [MetricQuery(f"m{i}", "AWS/Lambda", "Errors", {}, "Sum", 300) for i in range(501)]
    sent: list[int] = []
    cloudwatch.meta.events.register(
        "before-call.cloudwatch.GetMetricData", lambda **_: sent.append(1)
    )
    questions: list[int] = []

    def next_page_allowed() -> bool:
        questions.append(len(sent))
        return False

    # WHEN the series are read
    with pytest.raises(MetricReadCutShortError):
        get_metric_series(
            cloudwatch,
            queries,
            START,
            START + timedelta(hours=1),
            next_page_allowed=next_page_allowed,
        )
    # THEN the caller was asked once, after the first request, and the second was not sent
    assert (questions, len(sent)) == ([1], 1)


@pytest.mark.parametrize(
    ("result", "missing"),
    [
        pytest.param(
            {"Id": "m", "Timestamps": [START, START + timedelta(hours=1)], "Values": [1.0]},
            "GetMetricData answered without a value for each timestamp of m, not its answer: "
            "{'Timestamps': 2, 'Values': 1}",
            id="fewer-values-than-timestamps",
        ),
        pytest.param(
            {"Timestamps": [START], "Values": [1.0]},
            "GetMetricData answered without Id",
            id="a-result-without-its-id",
        ),
    ],
)
def test_a_result_cloudwatch_would_not_send_fails_the_read_as_an_unreadable_answer(
    result: dict[str, object], missing: str
) -> None:
    # GIVEN CloudWatch's answer (HTTP 200) holding a result with fewer values than timestamps,
    # or one without the id of its query
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    query = MetricQuery("m", "AWS/Lambda", "Duration", {}, "Average", 3600)
    with Stubber(cloudwatch) as stubber:
        stubber.add_response("get_metric_data", {"MetricDataResults": [result]})
        # WHEN the series is read
        # THEN the read fails as one unreadable answer (one of AWS_CALL_ERRORS, which fails
        # its target alone), naming what the answer lacked, instead of a bare ValueError or
        # KeyError that ended the whole run
        with pytest.raises(AWS_CALL_ERRORS) as raised:
            get_metric_series(cloudwatch, [query], START, START + timedelta(hours=2))
    assert isinstance(raised.value, UnreadableAnswerError)
    assert str(raised.value).startswith(missing)


def test_a_value_that_is_no_number_fails_the_read_as_an_unreadable_answer(
    mocked_aws: None,
) -> None:
    # GIVEN CloudWatch's JSON answer (HTTP 200) holding a value that is no number, which
    # botocore hands on unchecked, beside CloudWatch's own spelling of NaN
    cloudwatch = boto3.client("cloudwatch", region_name="ap-south-1")
    query = MetricQuery("m", "AWS/Lambda", "Duration", {}, "Average", 3600)
    body = json.dumps(
        {
            "MetricDataResults": [
                {"Id": "m", "Timestamps": [1_748_736_000, 1_748_739_600], "Values": ["NaN", "lots"]}
            ]
        }
    ).encode()
    answer_malformed(
        cloudwatch, "cloudwatch", "GetMetricData", body, content_type="application/x-amz-json-1.0"
    )
    # WHEN the series is read
    # THEN the read fails as one unreadable answer, naming the query and showing the values,
    # instead of the bare ValueError that ended the whole run
    with pytest.raises(UnreadableAnswerError) as raised:
        get_metric_series(cloudwatch, [query], START, START + timedelta(hours=2))
    assert str(raised.value) == (
        "GetMetricData answered without a number for each value of m, not its answer: "
        "['NaN', 'lots']"
    )
