"""CUR reading, aggregation and summary: exact shares on hand-made line items, Parquet maps,
CSV flat tags and JSON tags, column pruning, and files lacking a column."""

from __future__ import annotations

import gzip
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.cur_files import cur_tables
from fleet_shared.aws_answers import UnreadableAnswerError
from handlers.cost_analyzer import cur_reader
from handlers.cost_analyzer.athena import period_parameters
from handlers.cost_analyzer.cur import CurDataError, aggregate_line_items, summarise
from handlers.cost_analyzer.cur_reader import CurFileError, read_cur
from tests.handlers.conftest import REGION
from tests.handlers.faults import answer_malformed

START = datetime(2025, 5, 1, tzinfo=UTC)
END = datetime(2025, 6, 1, tzinfo=UTC)

LINES: dict[str, list[Any]] = {
    "line_item_usage_start_date": ["2025-05-10T00:00:00Z", "2025-05-10T01:00:00Z",
                                   "2025-05-10T00:00:00Z", "2025-05-11T00:00:00Z",
                                   "2025-04-30T23:00:00Z"],
    "line_item_usage_account_id": ["222222222222"] * 5,
    "line_item_product_code": ["AmazonEC2", "AmazonEC2", "AmazonEC2", "AmazonRDS", "AmazonEC2"],
    "line_item_resource_id": ["i-od", "i-od", "i-spot", "db-1", "i-old"],
    "line_item_usage_type": ["APS3-BoxUsage:m7g.large", "APS3-BoxUsage:m7g.large",
                             "APS3-SpotUsage:m7g.large", "APS3-InstanceUsage:db.r6g",
                             "APS3-BoxUsage:m7g.large"],
    "line_item_usage_amount": [1.0, 1.0, 1.0, 24.0, 1.0],
    "line_item_unblended_cost": [0.08, 0.08, 0.04, 5.0, 99.0],
    "product_instance_type": ["m7g.large", "m7g.large", "m7g.large", "", "m7g.large"],
}  # fmt: skip
TAGS = [{"user_cluster": "dev-apps"}, {"user_cluster": "dev-apps"},
        {"aws_eks_cluster_name": "dev-apps"}, {}, {"user_cluster": "dev-apps"}]  # fmt: skip


def test_summary_gives_top_resources_and_exact_spot_shares() -> None:
    # GIVEN two on-demand node hours, one spot node hour, a database, and one line before the
    # period
    lines = pd.DataFrame({**LINES, "resource_tags": TAGS})
    # WHEN aggregated and summarised
    summary = summarise(aggregate_line_items(lines, START, END), top_n=2)
    # THEN the old line is left out, the database leads, and the node shares are exact
    assert summary["total_cost"] == pytest.approx(5.2)
    assert [r["resource_id"] for r in summary["top_resources"]] == ["db-1", "i-od"]
    nodes = summary["eks_nodes"]
    assert nodes["node_hours"] == 3.0
    assert nodes["spot_cost_share"] == pytest.approx(0.04 / 0.2, abs=1e-4)
    assert nodes["spot_hours_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert [(c["account_id"], c["region"], c["cluster"]) for c in nodes["clusters"]] == [
        ("222222222222", "", "dev-apps")
    ]


def test_parquet_maps_and_csv_flat_tags_are_both_read(mocked_aws: None) -> None:
    # GIVEN the line items as Parquet (resource_tags a map) and as gzip-less CSV (flat tag)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="cur", CreateBucketConfiguration={"LocationConstraint": REGION})
    table = pa.table(
        {
            **LINES,
            "resource_tags": pa.array(
                [list(tags.items()) for tags in TAGS], type=pa.map_(pa.string(), pa.string())
            ),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3.put_object(Bucket="cur", Key="cur/data/part-0.parquet", Body=buffer.getvalue())
    flat = pd.DataFrame(
        {
            **LINES,
            "resource_tags_user_cluster": ["dev-apps", "dev-apps", "dev-apps", "", "dev-apps"],
        }
    )
    s3.put_object(Bucket="cur", Key="cur/data/part-1.csv", Body=flat.to_csv(index=False).encode())
    s3.put_object(Bucket="cur", Key="cur/manifest.json", Body=json.dumps({}).encode())
    # WHEN read and aggregated
    summary = summarise(aggregate_line_items(read_cur(s3, "cur", "cur/"), START, END), top_n=5)
    # THEN both files count, with the cluster from the map and from the flat column
    assert summary["eks_nodes"]["node_hours"] == 6.0
    [cluster] = summary["eks_nodes"]["clusters"]
    assert cluster["spot_hours_share"] == pytest.approx(1 / 3, abs=1e-4)


def put_object(s3: Any, key: str, body: bytes) -> None:
    s3.put_object(Bucket="cur", Key=key, Body=body)


def cur_bucket() -> Any:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="cur", CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3


def test_gzipped_csv_keeps_account_ids_as_text_and_finds_clusters_in_json_tags(
    mocked_aws: None,
) -> None:
    # GIVEN a gzipped CSV export whose account id starts with 0 and whose resource_tags column
    # holds JSON text: one node tagged by the user, one only by EKS, one with an empty tag
    s3 = cur_bucket()
    tags = [
        '{"user_team": "a", "user_cluster": "dev-apps"}',
        '{"user_team": "a", "user_cluster": "dev-apps"}',
        '{"aws_eks_cluster_name": "prod-apps"}',
        "{}",
        '{"user_cluster": ""}',
    ]
    frame = pd.DataFrame({**LINES, "resource_tags": tags})
    frame["line_item_usage_account_id"] = "012345678901"
    frame["unused_column"] = "x"
    put_object(s3, "cur/data/part-0.csv.gz", gzip.compress(frame.to_csv(index=False).encode()))
    # WHEN read and aggregated
    aggregate = aggregate_line_items(read_cur(s3, "cur", "cur/"), START, END)
    # THEN the account id keeps its leading zero and each node has its cluster
    assert set(aggregate["account_id"]) == {"012345678901"}
    clusters = dict(zip(aggregate["resource_id"], aggregate["cluster"], strict=True))
    assert clusters == {"i-od": "dev-apps", "i-spot": "prod-apps", "db-1": ""}


def test_map_tag_wins_over_flat_column_and_user_tag_over_eks_tag() -> None:
    # GIVEN line items tagged in the map and in the flat columns, in several combinations
    lines = pd.DataFrame(
        {
            **LINES,
            "resource_tags": [
                {"user_cluster": "from-map", "aws_eks_cluster_name": "eks-map"},
                {"user_cluster": "", "aws_eks_cluster_name": "eks-map"},
                {},
                None,
                {},
            ],
            "resource_tags_user_cluster": [None, None, "", "flat-user", None],
            "resource_tags_aws_eks_cluster_name": ["flat-eks", None, "flat-eks", "x", None],
        }
    )
    # WHEN aggregated (the old line item is outside the period)
    aggregate = aggregate_line_items(lines, START, END)
    # THEN the map's user tag, then the map's EKS tag, then the flat user tag, then the flat EKS
    # tag is the cluster; an empty value counts as none
    clusters = set(zip(aggregate["resource_id"], aggregate["cluster"], strict=True))
    assert clusters == {
        ("i-od", "from-map"),
        ("i-od", "eks-map"),
        ("i-spot", "flat-eks"),
        ("db-1", "flat-user"),
    }


def test_a_file_lacking_a_required_column_is_refused_naming_it(mocked_aws: None) -> None:
    # GIVEN a Parquet file without the unblended cost
    s3 = cur_bucket()
    buffer = io.BytesIO()
    pq.write_table(pa.table({k: v for k, v in LINES.items() if k != "line_item_unblended_cost"}),
                   buffer)  # fmt: skip
    put_object(s3, "cur/data/part-0.parquet", buffer.getvalue())
    # WHEN read THEN the error names the file and the column
    with pytest.raises(CurFileError, match=r"cur/data/part-0\.parquet lacks .*unblended_cost"):
        read_cur(s3, "cur", "cur/")


@pytest.mark.parametrize(
    ("bad_cost", "shown"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (-float("inf"), "-inf"), (1e300, "1e+300")],
)
def test_a_cost_that_is_not_an_amount_is_refused_naming_the_column_and_the_value(
    mocked_aws: None, bad_cost: float, shown: str
) -> None:
    # GIVEN a Parquet file whose second line item's unblended cost is not an amount
    s3 = cur_bucket()
    costs = [0.08, bad_cost, 0.04, 5.0, 99.0]
    buffer = io.BytesIO()
    pq.write_table(pa.table({**LINES, "line_item_unblended_cost": costs}), buffer)
    put_object(s3, "cur/data/part-0.parquet", buffer.getvalue())
    # WHEN read and aggregated THEN the error names the column and the value
    expected = rf"^line_item_unblended_cost: 1 values .*'{re.escape(shown)}'"
    with pytest.raises(CurDataError, match=expected):
        aggregate_line_items(read_cur(s3, "cur", "cur/"), START, END)


def test_empty_costs_and_usage_count_as_zero(mocked_aws: None) -> None:
    # GIVEN a CSV file whose second line item has neither cost nor usage amount
    s3 = cur_bucket()
    frame = pd.DataFrame({**LINES, "resource_tags": ["{}"] * 5})
    frame.loc[1, ["line_item_unblended_cost", "line_item_usage_amount"]] = None
    put_object(s3, "cur/data/part-0.csv", frame.to_csv(index=False).encode())
    # WHEN read, aggregated and summarised
    summary = summarise(aggregate_line_items(read_cur(s3, "cur", "cur/"), START, END), top_n=5)
    # THEN the empty amounts count as nothing
    assert summary["total_cost"] == pytest.approx(5.12)


@pytest.mark.parametrize(
    ("column", "bad_value", "expected"),
    [
        ("line_item_usage_amount", "<b>" + "x" * 10_000,
         r"part-0\.csv: line_item_usage_amount is not a number: '<b>x{37}'$"),
        ("line_item_usage_start_date", "yesterday\x07<b>",
         r"part-0\.csv: line_item_usage_start_date is not a time: .*yesterday"),
        ("line_item_usage_start_date", "",
         r"part-0\.csv: line_item_usage_start_date is empty in 1 line item\(s\)$"),
    ],
)  # fmt: skip
def test_a_csv_value_of_the_wrong_type_is_refused_naming_the_file_and_the_column(
    mocked_aws: None, column: str, bad_value: str, expected: str
) -> None:
    # GIVEN a CSV file whose second line item holds hostile text in a number or time column, or
    # no usage start
    s3 = cur_bucket()
    frame = pd.DataFrame({**LINES, "resource_tags": ["{}"] * 5})
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = bad_value
    put_object(s3, "cur/data/part-0.csv", frame.to_csv(index=False).encode())
    # WHEN read THEN the one error names the file and the column, with the value cut short
    with pytest.raises(CurFileError, match=expected) as refused:
        read_cur(s3, "cur", "cur/")
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [("line_item_unblended_cost", pa.array([True] * 5),
      r"part-0\.parquet: line_item_unblended_cost is bool, not a number$"),
     ("line_item_usage_start_date", pa.array([1_746_835_200] * 5),
      r"part-0\.parquet: line_item_usage_start_date is int64, not a time$"),
     ("line_item_usage_start_date",
      pa.array([datetime(2025, 5, 10), None, *[datetime(2025, 5, 11)] * 3], pa.timestamp("ms")),
      r"part-0\.parquet: line_item_usage_start_date is empty in 1 line item\(s\)$")],
    ids=["cost-true-false", "start-a-number", "start-missing"],
)  # fmt: skip
def test_a_parquet_column_of_another_type_or_a_missing_start_is_refused_naming_them(
    mocked_aws: None, column: str, values: pa.Array, expected: str
) -> None:
    # GIVEN a Parquet file whose cost is true/false, whose usage start is a number (seconds
    # since 1970, which would be read as nanoseconds), or one of whose usage starts is missing
    s3 = cur_bucket()
    buffer = io.BytesIO()
    pq.write_table(pa.table({**LINES, column: values}), buffer)
    put_object(s3, "cur/data/part-0.parquet", buffer.getvalue())
    # WHEN read THEN the one error names the file and the column, not a cost counted as 1 or
    # line items left out of every period
    with pytest.raises(CurFileError, match=expected):
        read_cur(s3, "cur", "cur/")


def test_the_cur_is_aggregated_a_chunk_at_a_time_as_if_at_once(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the line items as two Parquet files, and chunks of 2 line items (a million deployed)
    s3 = cur_bucket()
    buffer = io.BytesIO()
    pq.write_table(pa.table({**LINES, "resource_tags": [json.dumps(t) for t in TAGS]}), buffer)
    for part in (0, 1):
        put_object(s3, f"cur/data/part-{part}.parquet", buffer.getvalue())
    monkeypatch.setattr(cur_reader, "CHUNK_ROWS", 2)
    monkeypatch.setattr(cur_reader, "_BATCH_ROWS", 2)
    aggregated_at_once: list[int] = []

    def aggregate(lines: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
        aggregated_at_once.append(len(lines))
        return aggregate_line_items(lines, start, end)

    monkeypatch.setattr(cur_reader, "aggregate_line_items", aggregate)
    # WHEN aggregated
    chunked = cur_reader.aggregate_cur(s3, "cur", "cur/", START, END)
    # THEN no more than a chunk's line items were ever aggregated at once, and the groups are
    # those of all the line items aggregated at once
    assert aggregated_at_once == [2, 2, 1, 2, 2, 1]
    whole = aggregate_line_items(read_cur(s3, "cur", "cur/"), START, END)
    pd.testing.assert_frame_equal(chunked, whole, check_dtype=False)
    assert summarise(chunked, top_n=5) == summarise(whole, top_n=5)


def test_a_usage_start_that_is_no_time_past_the_first_block_is_named_as_no_time(
    mocked_aws: None,
) -> None:
    # GIVEN a CSV file of more than one block (Arrow reads 1 MB at a time, typing the usage
    # start as a time from the first), whose last line item's usage start is text
    s3 = cur_bucket()
    frame = pd.DataFrame({**LINES, "resource_tags": ["{}"] * 5}).sample(
        20_000, replace=True, random_state=1
    )
    frame["line_item_usage_start_date"] = frame["line_item_usage_start_date"].astype(object)
    frame.iloc[-1, 0] = "yesterday"
    put_object(s3, "cur/data/part-0.csv", frame.to_csv(index=False).encode())
    # WHEN read THEN the error names the column as no time, not as no number
    expected = r"part-0\.csv: line_item_usage_start_date is not a time: 'yesterday'$"
    with pytest.raises(CurFileError, match=expected):
        read_cur(s3, "cur", "cur/")


def test_a_csv_file_with_only_its_header_adds_no_line_items_to_the_others(
    mocked_aws: None,
) -> None:
    # GIVEN a month of line items as Parquet and a CSV file of a new billing period that holds
    # only its header line (no usage yet)
    s3 = cur_bucket()
    buffer = io.BytesIO()
    pq.write_table(pa.table({**LINES, "resource_tags": [json.dumps(t) for t in TAGS]}), buffer)
    put_object(s3, "cur/data/BILLING_PERIOD=2025-05/part-0.parquet", buffer.getvalue())
    header = ",".join([*LINES, "resource_tags"]) + "\n"
    put_object(s3, "cur/data/BILLING_PERIOD=2025-06/part-0.csv.gz", gzip.compress(header.encode()))
    # WHEN read, aggregated and summarised
    summary = summarise(aggregate_line_items(read_cur(s3, "cur", "cur/"), START, END), top_n=5)
    # THEN the header-only file is no error and the month's line items all count
    assert summary["total_cost"] == pytest.approx(5.2)


def test_a_later_listing_page_answered_with_a_proxys_page_fails_the_read_not_the_costs(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN May's line items in two Parquet files, listed one per page (S3 pages at 1,000 keys),
    # and S3 answering the listing's second page with a proxy's well-formed page (HTTP 200),
    # which botocore parses into an answer without IsTruncated or Contents
    monkeypatch.setenv("MOTO_S3_DEFAULT_MAX_KEYS", "1")
    s3 = cur_bucket()
    for part in ("part-0", "part-1"):
        put_object(s3, f"cur/data/BILLING_PERIOD=2025-05/{part}.parquet", parquet_of(LINES))
    page = answer_malformed(
        s3, "s3", "ListObjectsV2", b"<html>gateway</html>", url_part="continuation-token"
    )
    # WHEN read
    # THEN the read fails naming what the page lacked, instead of the first file's costs
    # passing for the month's
    with pytest.raises(UnreadableAnswerError, match=r"^ListObjectsV2 answered without IsTruncated"):
        read_cur(s3, "cur", "cur/", period=(START, END))
    assert page.answered == 1


def test_parquet_read_fetches_only_the_used_columns_and_gives_the_full_read_result(
    mocked_aws: None,
) -> None:
    # GIVEN a generated 89-column export of 20,000 line items as Parquet in S3
    s3 = cur_bucket()
    table, _ = cur_tables(20_000, START, 31, seed=5)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    put_object(s3, "cur/data/part-0.parquet", buffer.getvalue())
    fetched: list[int] = []
    s3.meta.events.register(
        "after-call.s3.GetObject",
        lambda parsed, **_: fetched.append(int(parsed["ContentLength"])),
    )
    # WHEN read through the function's reader
    summary = summarise(aggregate_line_items(read_cur(s3, "cur", "cur/"), START, END), top_n=5)
    # THEN less than a fifth of the file was fetched, and the summary is the one of the whole file
    assert 0 < sum(fetched) < len(buffer.getvalue()) / 5
    everything = table.to_pandas()
    assert summary == summarise(aggregate_line_items(everything, START, END), top_n=5)


@pytest.mark.parametrize(
    ("start", "end", "billing_periods"),
    [(datetime(2025, 5, 2, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC),
      ["'2025-05'", "'2025-05'"]),
     (datetime(2024, 12, 3, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC),
      ["'2024-12'", "'2025-01'"])],
    ids=["ending-on-the-first-of-a-month", "across-a-new-year"],
)  # fmt: skip
def test_the_athena_query_bounds_the_billing_periods_by_the_first_and_last_month_it_covers(
    start: datetime, end: datetime, billing_periods: list[str]
) -> None:
    # GIVEN a period (end exclusive) WHEN its Athena execution parameters are made
    parameters = period_parameters(start, end)
    # THEN the billing period bounds are the months of its first and last moment (a period
    # ending at midnight on the first of a month has none of that month), then the period
    assert parameters[:2] == billing_periods
    assert parameters[2:] == [f"'{start:%Y-%m-%d %H:%M:%S}'", f"'{end:%Y-%m-%d %H:%M:%S}'"]


EXPORT_ROOT = "cur/fleet"
"""A Data Exports CUR 2.0 export named `fleet` under the function's prefix `cur/`."""


def parquet_of(lines: dict[str, list[Any]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({**lines, "resource_tags": [json.dumps(t) for t in TAGS]}), buffer)
    return buffer.getvalue()


def lines_costing(factor: float) -> dict[str, list[Any]]:
    """`LINES` with every cost multiplied by `factor` (a later refresh's restated figures)."""
    return {
        **LINES,
        "line_item_unblended_cost": [c * factor for c in LINES["line_item_unblended_cost"]],
    }


def put_execution(s3: Any, month: str, execution_id: str, factor: float) -> list[str]:
    """One refresh's data file in the "create new" layout (a folder per execution); its key."""
    key = f"{EXPORT_ROOT}/data/BILLING_PERIOD={month}/{execution_id}/fleet-00001.snappy.parquet"
    put_object(s3, key, parquet_of(lines_costing(factor)))
    return [key]


def put_manifest(
    s3: Any, month: str, execution_id: str, keys: list[str], bucket: str = "cur"
) -> str:
    """The period's manifest as Data Exports writes it, naming the files of `execution_id`."""
    key = f"{EXPORT_ROOT}/metadata/BILLING_PERIOD={month}/fleet-Manifest.json"
    manifest = {
        "executionId": execution_id,
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:123456789012:export/fleet-0000",
        "columns": [{"name": name, "type": "string"} for name in LINES],
        "dataFiles": [f"s3://{bucket}/{data_key}" for data_key in keys],
    }
    put_object(s3, key, json.dumps(manifest).encode())
    return key


def test_a_create_new_export_counts_each_line_item_once_from_the_latest_refresh(
    mocked_aws: None,
) -> None:
    # GIVEN a "create new" export that kept two refreshes of May, each in its execution's folder,
    # the later one restating every cost at twice the first's, and May's manifest naming it
    s3 = cur_bucket()
    put_execution(s3, "2025-05", "exec-0001", factor=1.0)
    latest = put_execution(s3, "2025-05", "exec-0002", factor=2.0)
    put_manifest(s3, "2025-05", "exec-0002", latest)
    # WHEN read, aggregated and summarised
    lines = read_cur(s3, "cur", "cur/", period=(START, END))
    summary = summarise(aggregate_line_items(lines, START, END), top_n=5)
    # THEN the cost is the latest refresh's, counted once (not the sum of both refreshes)
    assert summary["total_cost"] == pytest.approx(2 * 5.2)


def test_an_overwrite_export_mid_refresh_is_read_from_the_files_its_manifest_lists(
    mocked_aws: None,
) -> None:
    # GIVEN an "overwrite" export whose May manifest names one file, while a refresh under way
    # has delivered a second part its manifest does not name yet; and June's first files, of a
    # period without a manifest yet
    s3 = cur_bucket()
    folder = f"{EXPORT_ROOT}/data/BILLING_PERIOD=2025-05"
    put_object(s3, f"{folder}/fleet-00001.snappy.parquet", parquet_of(LINES))
    put_object(s3, f"{folder}/fleet-00002.snappy.parquet", parquet_of(lines_costing(3.0)))
    put_manifest(s3, "2025-05", "exec-0001", [f"{folder}/fleet-00001.snappy.parquet"])
    june = {**LINES, "line_item_usage_start_date": ["2025-06-01T00:00:00Z"] * 5}
    put_object(s3, f"{EXPORT_ROOT}/data/BILLING_PERIOD=2025-06/fleet-00001.snappy.parquet",
               parquet_of(june))  # fmt: skip
    june_end = datetime(2025, 7, 1, tzinfo=UTC)
    # WHEN read, aggregated and summarised
    lines = read_cur(s3, "cur", "cur/", period=(START, june_end))
    summary = summarise(aggregate_line_items(lines, START, june_end), top_n=5)
    # THEN May counts once, from the manifest's file only, and June from what is listed
    assert summary["total_cost"] == pytest.approx(5.2 + sum(LINES["line_item_unblended_cost"]))


def test_only_the_manifests_and_files_of_the_billing_periods_the_period_overlaps_are_fetched(
    mocked_aws: None,
) -> None:
    # GIVEN a "create new" export with two refreshes kept in April and in May, each month's
    # manifest naming its latest
    s3 = cur_bucket()
    manifests = {}
    for month in ("2025-04", "2025-05"):
        put_execution(s3, month, "exec-0001", factor=1.0)
        latest = put_execution(s3, month, "exec-0002", factor=1.0)
        manifests[month] = put_manifest(s3, month, "exec-0002", latest)
    fetched: set[str] = set()
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: fetched.add(params["Key"])
    )
    # WHEN May is read
    read_cur(s3, "cur", "cur/", period=(START, END))
    # THEN only May's manifest and the files of its latest refresh were fetched
    assert fetched == {
        manifests["2025-05"],
        f"{EXPORT_ROOT}/data/BILLING_PERIOD=2025-05/exec-0002/fleet-00001.snappy.parquet",
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"dataFiles": ["s3://cur/cur/fleet/da', r"is not JSON: "),
     (b"\xff\xfe<html>", r"is not JSON: "),
     (b'{"executionId": "exec-0002"}', r"lacks dataFiles"),
     (b'["s3://cur/cur/fleet/data/x.parquet"]', r"lacks dataFiles"),
     (b'{"dataFiles": "s3://cur/cur/fleet/data/x.parquet"}', r"lacks dataFiles"),
     (b"[" * 50_000, r"is not JSON: nested too deeply"),
     (b'{"n": ' + b"9" * 5000 + b"}", r"is not JSON: ")],
    ids=["truncated", "not-text", "no-data-files", "not-an-object", "data-files-not-a-list",
         "nested-too-deeply", "a-5000-digit-number"],
)  # fmt: skip
def test_a_manifest_that_is_not_one_is_refused_naming_it(
    mocked_aws: None, body: bytes, expected: str
) -> None:
    # GIVEN May's data files and a manifest that is not a Data Exports manifest
    s3 = cur_bucket()
    put_execution(s3, "2025-05", "exec-0001", factor=1.0)
    manifest = put_manifest(s3, "2025-05", "exec-0001", [])
    put_object(s3, manifest, body)
    # WHEN read THEN the one error names the manifest, and echoes nothing of it at length
    with pytest.raises(CurFileError, match=rf"^CUR manifest {re.escape(manifest)} {expected}"):
        read_cur(s3, "cur", "cur/", period=(START, END))


def test_a_manifest_over_the_size_a_manifest_may_have_is_refused_naming_it(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN May's data file and its manifest, larger than a manifest the function reads (here
    # 64 bytes)
    monkeypatch.setattr(cur_reader, "MANIFEST_MAX_BYTES", 64)
    s3 = cur_bucket()
    manifest = put_manifest(s3, "2025-05", "exec-0001", put_execution(s3, "2025-05", "e", 1.0))
    size = s3.head_object(Bucket="cur", Key=manifest)["ContentLength"]
    # WHEN read THEN the one error names the manifest, its size and the limit
    expected = rf"^CUR manifest {re.escape(manifest)}: {size:,} bytes or more, more than the 64 "
    with pytest.raises(CurFileError, match=expected):
        read_cur(s3, "cur", "cur/", period=(START, END))


@pytest.mark.parametrize(
    ("uri", "shown", "reason"),
    [("s3://other-bucket/cur/fleet/data/BILLING_PERIOD=2025-05/fleet-00001.snappy.parquet",
      "s3://other-bucket/cur/fleet/data/BILLING", "is not a file under s3://cur/cur/"),
     ("s3://cur/elsewhere/fleet-00001.snappy.parquet",
      "s3://cur/elsewhere/fleet-00001.snappy.pa", "is not a file under s3://cur/cur/"),
     ("https://attacker.example/" + "x" * 5_000, "https://attacker.example/xxxxxxxxxxxxxxx",
      "is not a file under s3://cur/cur/"),
     (7, "7", "is not a file under s3://cur/cur/"),
     ("s3://cur/cur/fleet/metadata/BILLING_PERIOD=2025-05/fleet-Manifest.json",
      "s3://cur/cur/fleet/metadata/BILLING_PERI", "is not a Parquet or CSV file"),
     ("s3://cur/cur/fleet/data/BILLING_PERIOD=2025-05/fleet-00009.snappy.parquet",
      "cur/fleet/data/BILLING_PERIOD=2025-05/fl", "is not in s3://cur/cur/")],
    ids=["another-bucket", "outside-the-prefix", "not-s3", "not-text", "not-data", "missing"],
)  # fmt: skip
def test_a_manifest_listing_a_file_the_function_may_not_or_cannot_read_is_refused(
    mocked_aws: None, uri: object, shown: str, reason: str
) -> None:
    # GIVEN May's data file and its manifest, which also lists a file of another bucket, outside
    # the prefix, not an S3 URI, not a data file, or not in the bucket
    s3 = cur_bucket()
    latest = put_execution(s3, "2025-05", "exec-0001", factor=1.0)
    manifest = put_manifest(s3, "2025-05", "exec-0001", latest)
    document = json.loads(s3.get_object(Bucket="cur", Key=manifest)["Body"].read())
    document["dataFiles"].append(uri)
    put_object(s3, manifest, json.dumps(document).encode())
    # WHEN read THEN the one error names the manifest and the start of what it lists
    expected = rf"^CUR manifest {re.escape(manifest)} lists '{re.escape(shown)}', which {reason}"
    with pytest.raises(CurFileError, match=expected) as refused:
        read_cur(s3, "cur", "cur/", period=(START, END))
    assert len(str(refused.value)) < 250
