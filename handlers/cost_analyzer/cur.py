"""Cost and Usage Report (CUR 2.0) detail: one aggregation, two engines, one summary.

The heavy part is one GROUP BY over the line items of the period, keyed by account, product,
resource, instance type, purchase option and cluster, summing cost and instance hours. It runs
in pandas over the report files in S3 (`aggregate_line_items`) or, for a report too large for one
Lambda, as the same SQL in Athena (`athena.py`, `AGGREGATE_SQL`). Both give the same small frame
(`AGGREGATE_COLUMNS`), which `summarise` turns into the report:

- top resources by cost;
- spot vs on-demand share of the EKS nodes' cost and hours, overall and per cluster: EKS nodes
  are EC2 instance usage (`line_item_usage_type` containing `BoxUsage` = on-demand, `SpotUsage`
  = spot) tagged with a cluster;
- node hours per cluster, from which the analyzer derives idle node hours (see `app.py`).

Columns read (CUR 2.0 names): line_item_usage_start_date, line_item_usage_account_id,
line_item_product_code, line_item_resource_id, line_item_usage_type, line_item_usage_amount,
line_item_unblended_cost, product_instance_type, and the cluster tag from `resource_tags` (a map;
keys `user_cluster`, then `aws_eks_cluster_name`) or from the flat columns
`resource_tags_user_cluster` / `resource_tags_aws_eks_cluster_name` of older exports.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

AGGREGATE_COLUMNS = (
    "account_id",
    "product_code",
    "resource_id",
    "instance_type",
    "purchase",
    "cluster",
    "cost",
    "instance_hours",
)
KEYS = list(AGGREGATE_COLUMNS[:6])
CLUSTER_TAG_KEYS = ("user_cluster", "aws_eks_cluster_name")
_FLAT_TAG_COLUMNS = tuple(f"resource_tags_{key}" for key in CLUSTER_TAG_KEYS)
_READ_COLUMNS = (
    "line_item_usage_start_date",
    "line_item_usage_account_id",
    "line_item_product_code",
    "line_item_resource_id",
    "line_item_usage_type",
    "line_item_usage_amount",
    "line_item_unblended_cost",
    "product_instance_type",
    "resource_tags",
    *_FLAT_TAG_COLUMNS,
)


def read_cur(s3: Any, bucket: str, prefix: str) -> pd.DataFrame:
    """Every Parquet (`.parquet`) and CSV (`.csv`, `.csv.gz`) file under the prefix, stacked."""
    frames: list[pd.DataFrame] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith((".parquet", ".csv", ".csv.gz")):
                continue
            body = io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            if key.endswith(".parquet"):
                frame = pd.read_parquet(body)
            else:
                frame = pd.read_csv(
                    body, compression="gzip" if key.endswith(".gz") else None, low_memory=False
                )
            frames.append(frame[[c for c in _READ_COLUMNS if c in frame.columns]])
    if not frames:
        return pd.DataFrame(columns=list(_READ_COLUMNS[:8]))
    return pd.concat(frames, ignore_index=True)


def aggregate_line_items(lines: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """The GROUP BY of `AGGREGATE_SQL`, in pandas, for usage from `start` to `end` (exclusive)."""
    usage_start = pd.to_datetime(lines["line_item_usage_start_date"], utc=True)
    lines = lines[(usage_start >= pd.Timestamp(start)) & (usage_start < pd.Timestamp(end))]
    usage_type = lines["line_item_usage_type"].fillna("").astype(str)
    spot = usage_type.str.contains("SpotUsage", regex=False).to_numpy()
    box = usage_type.str.contains("BoxUsage", regex=False).to_numpy()
    amount = pd.to_numeric(lines["line_item_usage_amount"], errors="coerce").fillna(0.0)
    frame = pd.DataFrame(
        {
            "account_id": lines["line_item_usage_account_id"].astype(str).to_numpy(),
            "product_code": lines["line_item_product_code"].fillna("").astype(str).to_numpy(),
            "resource_id": lines["line_item_resource_id"].fillna("").astype(str).to_numpy(),
            "instance_type": _text(lines, "product_instance_type"),
            "purchase": np.select([spot, box], ["spot", "on_demand"], default="other"),
            "cluster": cluster_tags(lines),
            "cost": pd.to_numeric(lines["line_item_unblended_cost"], errors="coerce")
            .fillna(0.0)
            .to_numpy(),
            "instance_hours": np.where(spot | box, amount.to_numpy(), 0.0),
        }
    )
    grouped = frame.groupby(KEYS, sort=False, observed=True, as_index=False)[
        ["cost", "instance_hours"]
    ].sum()
    return grouped.sort_values("cost", ascending=False, kind="stable").reset_index(drop=True)


def cluster_tags(lines: pd.DataFrame) -> np.ndarray:
    """The cluster of each line item ("" when untagged)."""
    result = np.full(len(lines), "", dtype=object)
    for column in reversed(_FLAT_TAG_COLUMNS):
        if column in lines.columns:
            values = lines[column].fillna("").astype(str).to_numpy()
            result = np.where(values != "", values, result)
    if "resource_tags" in lines.columns:
        from_map = lines["resource_tags"].map(_cluster_from_map).to_numpy()
        result = np.where(from_map != "", from_map, result)
    return result


def _cluster_from_map(tags: Any) -> str:
    """The cluster tag of one `resource_tags` value: a dict, Parquet's list of (key, value)
    pairs, or the JSON text of a CSV export."""
    if tags is None or (isinstance(tags, float) and np.isnan(tags)):
        return ""
    if isinstance(tags, str):
        try:
            tags = json.loads(tags) if tags else {}
        except json.JSONDecodeError:
            return ""
    if not isinstance(tags, dict):
        tags = dict(tags)
    for key in CLUSTER_TAG_KEYS:
        value = tags.get(key)
        if value:
            return str(value)
    return ""


def _text(lines: pd.DataFrame, column: str) -> np.ndarray:
    if column not in lines.columns:
        return np.full(len(lines), "", dtype=object)
    return lines[column].fillna("").astype(str).to_numpy()


def summarise(aggregate: pd.DataFrame, top_n: int) -> dict[str, Any]:
    """Top resources, EKS node spot/on-demand shares and node hours per cluster."""
    aggregate = aggregate.astype({"cost": float, "instance_hours": float})
    by_resource = (
        aggregate[aggregate["resource_id"] != ""]
        .groupby(["resource_id", "account_id", "product_code"], as_index=False)[
            ["cost", "instance_hours"]
        ]
        .sum()
        .sort_values(["cost", "resource_id"], ascending=[False, True])
        .head(top_n)
    )
    nodes = aggregate[
        (aggregate["cluster"] != "")
        & (aggregate["product_code"] == "AmazonEC2")
        & aggregate["purchase"].isin(["spot", "on_demand"])
    ]
    per_cluster = nodes.groupby(["cluster", "purchase"])[["cost", "instance_hours"]].sum()
    clusters: dict[str, dict[str, Any]] = {}
    for cluster in sorted(nodes["cluster"].unique()):
        part = per_cluster.loc[cluster]
        clusters[cluster] = _shares(part)
    overall = nodes.groupby("purchase")[["cost", "instance_hours"]].sum()
    return {
        "total_cost": round(float(aggregate["cost"].sum()), 4),
        "top_resources": [
            {
                "resource_id": row.resource_id,
                "account_id": row.account_id,
                "product_code": row.product_code,
                "cost": round(float(row.cost), 4),
            }
            for row in by_resource.itertuples(index=False)
        ],
        "eks_nodes": {**_shares(overall), "clusters": clusters},
    }


def _shares(part: pd.DataFrame) -> dict[str, Any]:
    cost = {p: float(part["cost"].get(p, 0.0)) for p in ("spot", "on_demand")}
    hours = {p: float(part["instance_hours"].get(p, 0.0)) for p in ("spot", "on_demand")}
    total_cost, total_hours = sum(cost.values()), sum(hours.values())
    return {
        "cost": round(total_cost, 4),
        "node_hours": round(total_hours, 4),
        "spot_cost": round(cost["spot"], 4),
        "on_demand_cost": round(cost["on_demand"], 4),
        "spot_cost_share": round(cost["spot"] / total_cost, 4) if total_cost else 0.0,
        "spot_hours_share": round(hours["spot"] / total_hours, 4) if total_hours else 0.0,
    }
