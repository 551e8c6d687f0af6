"""Cost and Usage Report (CUR 2.0) detail: one aggregation, two engines, one summary.

The heavy part is one GROUP BY over the line items of the period, keyed by account, region,
product, resource, instance type, purchase option and cluster, summing cost and instance hours.
It runs in pandas over the report files in S3 (`cur_reader.read_cur`, then
`aggregate_line_items`, on whole columns: no Python call per line item) or, for a report too
large for one Lambda, as the same SQL in Athena (`athena.py`, `AGGREGATE_SQL`). Both give the
same small frame (`AGGREGATE_COLUMNS`), which `summarise` turns into the report:

- top resources by cost;
- spot vs on-demand share of the EKS nodes' cost and hours, overall and per cluster: EKS nodes
  are EC2 instance usage (`line_item_usage_type` containing `BoxUsage` = on-demand, `SpotUsage`
  = spot) tagged with a cluster;
- node hours per cluster, from which the analyzer derives idle node hours (see `analysis.py`).
  A cluster is its account, region and name: EKS names are unique only within an account's
  region, and a fleet often runs one `apps` cluster per region or per account.

The aggregation is keyed by each line item's currency (`line_item_currency_code`) as well, and
`in_currency` keeps the report's currency alone: amounts in two currencies never add up.

Columns read (CUR 2.0 names): line_item_usage_start_date, line_item_usage_account_id,
line_item_product_code, line_item_resource_id, line_item_usage_type, line_item_usage_amount,
line_item_unblended_cost, line_item_currency_code, product_instance_type, product_region_code,
and the cluster tag from
`resource_tags` (a map; keys `user_cluster`, then `aws_eks_cluster_name`) or from the flat
columns `resource_tags_user_cluster` / `resource_tags_aws_eks_cluster_name` of older exports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

AGGREGATE_COLUMNS = (
    "account_id",
    "region",
    "product_code",
    "resource_id",
    "instance_type",
    "purchase",
    "cluster",
    "cost",
    "instance_hours",
    "currency",
)
KEYS = [*AGGREGATE_COLUMNS[:7], "currency"]
CURRENCY_COLUMN = "line_item_currency_code"
CURRENCY_ECHO_LENGTH = 12
"""The most characters of an unexpected currency an error quotes (a currency code has 3)."""
CLUSTER_TAG_KEYS = ("user_cluster", "aws_eks_cluster_name")
_FLAT_TAG_COLUMNS = tuple(f"resource_tags_{key}" for key in CLUSTER_TAG_KEYS)
USAGE_START_COLUMN = "line_item_usage_start_date"
NUMBER_COLUMNS = ("line_item_usage_amount", "line_item_unblended_cost")
REQUIRED_COLUMNS = (
    USAGE_START_COLUMN,
    "line_item_usage_account_id",
    "line_item_product_code",
    "line_item_resource_id",
    "line_item_usage_type",
    *NUMBER_COLUMNS,
)
OPTIONAL_COLUMNS = (
    # Every CUR 2.0 export has it; a hand-made file without it is taken to be in the report's
    # currency (`in_currency`).
    CURRENCY_COLUMN,
    "product_instance_type",
    "product_region_code",
    "resource_tags",
    *_FLAT_TAG_COLUMNS,
)
READ_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
TEXT_COLUMNS = tuple(c for c in READ_COLUMNS if c not in (USAGE_START_COLUMN, *NUMBER_COLUMNS))
MAX_AMOUNT = 1e12
"""No line item's cost or usage, nor a group's sum of them, comes near it: a larger one, like NaN
or an infinity, is not an amount to add up (it would make the report's totals invalid JSON)."""
_TAG_MAP_TYPE = pa.map_(pa.string(), pa.string())
# EKS cluster names are letters, digits, '-' and '_', so a tag value in a CSV export's JSON text
# never holds an escaped quote and one regular expression per key finds it.
_JSON_TAG_PATTERNS = tuple(
    rf'"{re.escape(key)}"\s*:\s*"(?P<value>[^"]*)"' for key in CLUSTER_TAG_KEYS
)


class CurDataError(ValueError):
    """A CUR number column holds a value that is not an amount (see `require_amounts`)."""


def require_amounts(column: str, values: np.ndarray, given: pd.Series) -> None:
    """Raise `CurDataError` naming `column`, how many and the first of `given` (its text, cut
    short) when any of `values` is not a finite number within +-MAX_AMOUNT."""
    # NaN compares false, so it is caught with the infinities and the too large.
    bad = ~(np.abs(values) <= MAX_AMOUNT)
    if bad.any():
        first = str(given.iloc[int(np.flatnonzero(bad)[0])])[:40]
        raise CurDataError(
            f"{column}: {int(bad.sum())} values are not an amount within +-{MAX_AMOUNT:g}, "
            f"the first {first!r}"
        )


def aggregate_line_items(lines: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """The GROUP BY of `AGGREGATE_SQL`, in pandas, for usage from `start` to `end` (exclusive);
    every step works on whole columns (Arrow compute, numpy), none calls Python per line item."""
    usage_start = _epoch_nanoseconds(lines[USAGE_START_COLUMN])
    lines = lines[
        (usage_start >= pd.Timestamp(start).value) & (usage_start < pd.Timestamp(end).value)
    ]
    usage_type = _text(lines, "line_item_usage_type")
    spot = pc.match_substring(usage_type, "SpotUsage").to_numpy(zero_copy_only=False)
    box = pc.match_substring(usage_type, "BoxUsage").to_numpy(zero_copy_only=False)
    amount = _number(lines, "line_item_usage_amount")
    frame = pd.DataFrame(
        {
            "account_id": _categories(_text(lines, "line_item_usage_account_id")),
            "region": _categories(_text(lines, "product_region_code")),
            "product_code": _categories(_text(lines, "line_item_product_code")),
            "resource_id": _categories(_text(lines, "line_item_resource_id")),
            "instance_type": _categories(_text(lines, "product_instance_type")),
            "purchase": pd.Categorical.from_codes(
                np.select([spot, box], [0, 1], default=2), ["spot", "on_demand", "other"]
            ),
            "cluster": _categories(cluster_tags(lines)),
            "currency": _categories(_text(lines, CURRENCY_COLUMN)),
            "cost": _number(lines, "line_item_unblended_cost"),
            "instance_hours": np.where(spot | box, amount, 0.0),
        }
    )
    grouped = frame.groupby(KEYS, sort=False, observed=True, as_index=False)[
        ["cost", "instance_hours"]
    ].sum()
    grouped = grouped.astype(dict.fromkeys(KEYS, object))
    return grouped.sort_values("cost", ascending=False, kind="stable").reset_index(drop=True)


def combine_aggregates(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The aggregates of chunks of the line items (`aggregate_line_items` of each) as one, as
    if the line items had been aggregated at once; no row when there is none."""
    if not parts:
        return pd.DataFrame(columns=[*KEYS, "cost", "instance_hours"])
    if len(parts) == 1:
        return parts[0]
    grouped = (
        pd.concat(parts, ignore_index=True)
        .groupby(KEYS, sort=False, as_index=False)[["cost", "instance_hours"]]
        .sum()
    )
    return grouped.sort_values("cost", ascending=False, kind="stable").reset_index(drop=True)


def cluster_tags(lines: pd.DataFrame) -> pa.Array:
    """The cluster of each line item ("" when untagged): the `resource_tags` map first, then the
    flat tag columns, each in the order of `CLUSTER_TAG_KEYS`; an empty value counts as none."""
    candidates: list[pa.Array] = []
    if "resource_tags" in lines.columns:
        candidates.extend(_tags_from_map(lines["resource_tags"]))
    candidates.extend(_text(lines, column) for column in _FLAT_TAG_COLUMNS if column in lines)
    empty_as_null = [
        pc.if_else(pc.equal(candidate, ""), pa.scalar(None, pa.string()), candidate)
        for candidate in candidates
    ]
    if not empty_as_null:
        return _empty_text(len(lines))
    return pc.fill_null(pc.coalesce(*empty_as_null), "")


def _tags_from_map(tags: pd.Series) -> list[pa.Array]:
    """The value of each of `CLUSTER_TAG_KEYS` in `resource_tags`: a map (Parquet), the JSON
    text of a CSV export, or Python dicts or (key, value) pairs."""
    values = _arrow(tags)
    if pa.types.is_null(values.type) or _is_text(values.type):
        text = values.cast(pa.string())
        return [
            pc.struct_field(pc.extract_regex(text, pattern), [0]) for pattern in _JSON_TAG_PATTERNS
        ]
    if not pa.types.is_map(values.type):
        values = _arrow(tags, _TAG_MAP_TYPE)
    # All (key, value) pairs in one flat array with the row each belongs to: a few whole-array
    # steps per key, about three times faster than `map_lookup` on a million rows.
    pairs_type = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
    pairs = values.cast(pairs_type)
    flat = pairs.flatten()
    keys, tag_values = pc.struct_field(flat, "key"), pc.struct_field(flat, "value")
    rows = pc.list_parent_indices(pairs).to_numpy(zero_copy_only=False)
    found = []
    for key in CLUSTER_TAG_KEYS:
        matches = pc.equal(keys, key).to_numpy(zero_copy_only=False)
        # Map keys are unique, so each row has at most one match.
        position = np.full(len(values), -1, dtype=np.int64)
        position[rows[matches]] = np.flatnonzero(matches)
        found.append(tag_values.take(pa.array(position, mask=position < 0)))
    return found


def _arrow(values: pd.Series, type: pa.DataType | None = None) -> pa.Array:
    """A column as one Arrow array (NaN and None as null), without copying Arrow-backed ones."""
    if isinstance(values.dtype, (pd.ArrowDtype, pd.StringDtype)) and type is None:
        array = pa.array(values.array)
    else:
        objects = values.to_numpy(dtype=object)
        if type is None and _first_is_text(objects):
            type = pa.string()
        array = pa.array(objects, type=type, from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _first_is_text(objects: np.ndarray) -> bool:
    present = objects[pd.notna(objects)] if objects.size else objects
    return bool(present.size) and isinstance(present[0], str)


def _is_text(type: pa.DataType) -> bool:
    return pa.types.is_string(type) or pa.types.is_large_string(type)


def _text(lines: pd.DataFrame, column: str) -> pa.Array:
    """`column` as Arrow text, "" where null or absent (numbers, like an account id a CSV reader
    took for one, are written out)."""
    if column not in lines.columns:
        return _empty_text(len(lines))
    values = _arrow(lines[column])
    if not _is_text(values.type):
        values = values.cast(pa.string())
    return pc.fill_null(values, "")


def _empty_text(length: int) -> pa.Array:
    return pc.fill_null(pa.nulls(length, pa.string()), "")


def _categories(text: pa.Array) -> pd.Categorical:
    """Text as a categorical: the group-by works on small integer codes."""
    encoded = text.dictionary_encode()
    return pd.Categorical.from_codes(
        encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()
    )


def utc_timestamps(values: pa.Array) -> pa.Array:
    """Usage start times as timestamp[ns, UTC]: a CUR 2.0 Parquet timestamp has no zone and is
    UTC; text (a CSV export) is parsed as ISO 8601."""
    if pa.types.is_timestamp(values.type):
        return values.cast(pa.timestamp("ns", values.type.tz)).cast(pa.timestamp("ns", "UTC"))
    parsed = pd.to_datetime(pd.Series(values.to_numpy(zero_copy_only=False)), utc=True)
    return pa.array(parsed, pa.timestamp("ns", "UTC"))


def _epoch_nanoseconds(values: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC), NaN where missing."""
    stamps = utc_timestamps(_arrow(values)).cast(pa.int64())
    return stamps.to_numpy(zero_copy_only=False)


def _number(lines: pd.DataFrame, column: str) -> np.ndarray:
    """`column` as floats, 0 where the CUR leaves it empty; `CurDataError` for text, NaN, an
    infinity or an amount beyond +-MAX_AMOUNT."""
    given = lines[column]
    numbers = np.where(
        given.isna().to_numpy(dtype=bool),
        0.0,
        pd.to_numeric(given, errors="coerce").to_numpy(dtype=float, na_value=np.nan),
    )
    require_amounts(column, numbers, given)
    return numbers


@dataclass(frozen=True)
class CurrencySplit:
    """The aggregate rows in `currency` and, when any other was left out, `left_out` saying so."""

    currency: str
    aggregate: pd.DataFrame
    left_out: str | None


def in_currency(aggregate: pd.DataFrame, currency: str | None) -> CurrencySplit:
    """The rows of `aggregate` in `currency` (by default that of most rows), those of an unknown
    currency (a file without CURRENCY_COLUMN) with them, and one message naming the column, how
    many groups of line items were left out for another currency and the first one's (cut
    short), None when none was."""
    known = aggregate["currency"][aggregate["currency"] != ""]
    # The count of each in the order first seen: of those tied, the first (idxmax) is chosen.
    counts = known.value_counts(sort=False)
    chosen = currency if currency is not None else str(counts.idxmax()) if len(counts) else "USD"
    other = (aggregate["currency"] != "") & (aggregate["currency"] != chosen)
    if not other.any():
        return CurrencySplit(chosen, aggregate, None)
    first = str(aggregate.loc[other, "currency"].iloc[0])[:CURRENCY_ECHO_LENGTH]
    count = int(other.sum())
    return CurrencySplit(
        chosen,
        aggregate[~other].reset_index(drop=True),
        f"{CURRENCY_COLUMN}: {count} group{'' if count == 1 else 's'} of line items left out, "
        f"not in {chosen} as the report; the first {first!r}",
    )


def summarise(aggregate: pd.DataFrame, top_n: int) -> dict[str, Any]:
    """Top resources, EKS node spot/on-demand shares and node hours per cluster (account,
    region and name; region "" where the files have no `product_region_code`)."""
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
    cluster_keys = ["account_id", "region", "cluster"]
    per_cluster = nodes.groupby([*cluster_keys, "purchase"])[["cost", "instance_hours"]].sum()
    clusters = [
        {"account_id": account_id, "region": region, "cluster": cluster,
         **_shares(per_cluster.loc[(account_id, region, cluster)])}
        for account_id, region, cluster in sorted(
            nodes[cluster_keys].drop_duplicates().itertuples(index=False, name=None)
        )
    ]  # fmt: skip
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
