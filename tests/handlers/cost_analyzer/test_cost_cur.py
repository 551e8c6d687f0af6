"""CUR aggregation and summary: exact shares on hand-made line items, Parquet maps and CSV."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from handlers.cost_analyzer.cur import aggregate_line_items, summarise
from handlers.cost_analyzer.cur_reader import read_cur
from tests.handlers.conftest import REGION

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
    assert list(nodes["clusters"]) == ["dev-apps"]


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
    assert summary["eks_nodes"]["clusters"]["dev-apps"]["spot_hours_share"] == pytest.approx(
        1 / 3, abs=1e-4
    )
