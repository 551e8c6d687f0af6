"""A generated CUR 2.0 export: 89 columns of realistic types, as Parquet and as gzipped CSV.

The cost analyzer reads 10 of the columns; the others are there so that a reader that loads
everything and then selects pays what it would pay on a real export. Line items are generated with
a seeded numpy generator: EC2 nodes (on-demand and spot, tagged with a cluster in the
`resource_tags` map, or untagged), RDS, S3 and Lambda usage over `days` in three accounts. The files
are written once per (rows, seed, period) under `build/cur/` and reused.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

BUILD_DIRECTORY = Path(__file__).resolve().parent.parent / "build" / "cur"
PRODUCTS = ("AmazonEC2", "AmazonRDS", "AmazonS3", "AWSLambda")
PRODUCT_SHARES = (0.6, 0.1, 0.2, 0.1)
CLUSTERS = ("dev-apps", "prod-apps", "")
ACCOUNTS = ("222222222222", "333333333333", "444444444444")
RESOURCES = 5_000
_TAGS = pa.map_(pa.string(), pa.string())

# Columns the analyzer does not read, by type: text drawn from a few values (most CUR columns),
# decimals, and timestamps.
_TEXT_COLUMNS = {
    "bill_bill_type": ("Anniversary", "Purchase", "Refund"),
    "bill_billing_entity": ("AWS", "AWS Marketplace"),
    "bill_invoice_id": ("2025-12345678", "2025-23456789", ""),
    "bill_invoicing_entity": ("Amazon Web Services EMEA SARL",),
    "bill_payer_account_id": ("111111111111",),
    "bill_payer_account_name": ("fleet-hub",),
    "line_item_availability_zone": ("ap-south-2a", "ap-south-2b", "ap-south-2c", ""),
    "line_item_currency_code": ("USD",),
    "line_item_legal_entity": ("Amazon Web Services EMEA SARL", "Amazon Web Services, Inc."),
    "line_item_line_item_description": (
        "$0.0816 per On Demand Linux m7g.large Instance Hour",
        "$0.03 per Spot Linux m7g.large Instance Hour",
        "$0.005 per 1,000 PUT requests",
        "AWS Lambda - Compute Free Tier - 400,000 GB-Seconds",
    ),
    "line_item_line_item_type": ("Usage", "Tax", "Credit", "DiscountedUsage"),
    "line_item_operation": ("RunInstances", "RunInstances:SV001", "PutObject", "Invoke"),
    "line_item_tax_type": ("", "VAT"),
    "line_item_usage_account_name": ("fleet-dev", "fleet-prod", "fleet-shared"),
    "pricing_currency": ("USD",),
    "pricing_lease_contract_length": ("", "1yr", "3yr"),
    "pricing_offering_class": ("", "standard", "convertible"),
    "pricing_purchase_option": ("", "No Upfront", "All Upfront"),
    "pricing_rate_code": ("ABCD1234.JRTCKXETXF.6YS6EN2CT7",),
    "pricing_term": ("OnDemand", "Spot", "Reserved"),
    "pricing_unit": ("Hrs", "Requests", "GB-Mo", "Lambda-GB-Second"),
    "product_comment": ("",),
    "product_fee_code": ("",),
    "product_fee_description": ("",),
    "product_from_location": ("", "Asia Pacific (Hyderabad)"),
    "product_from_location_type": ("", "AWS Region"),
    "product_from_region_code": ("", "ap-south-2"),
    "product_instance_family": ("", "General purpose", "Memory optimized"),
    "product_location": ("Asia Pacific (Hyderabad)",),
    "product_location_type": ("AWS Region",),
    "product_operation": ("RunInstances", "PutObject", "Invoke", "CreateDBInstance"),
    "product_pricing_unit": ("Hrs", "Requests", "GB-Mo"),
    "product_product_family": ("Compute Instance", "API Request", "Storage", "Serverless"),
    "product_region_code": ("ap-south-2",),
    "product_servicecode": PRODUCTS,
    "product_sku": ("JRTCKXETXF9G6CKA", "6YS6EN2CT7TQXJQG", "4XN4DMQ5C2A3VJBS"),
    "product_to_location": ("", "Asia Pacific (Hyderabad)"),
    "product_to_location_type": ("", "AWS Region"),
    "product_to_region_code": ("", "ap-south-2"),
    "product_usagetype": ("APS3-BoxUsage:m7g.large", "APS3-Requests-Tier1"),
    "reservation_availability_zone": ("",),
    "reservation_modification_status": ("", "Original"),
    "reservation_reservation_a_r_n": ("",),
    "reservation_subscription_id": ("1234567890", "2345678901"),
    "savings_plan_instance_type_family": ("", "m7g"),
    "savings_plan_offering_type": ("", "ComputeSavingsPlans"),
    "savings_plan_payment_option": ("", "No Upfront"),
    "savings_plan_purchase_term": ("", "1yr"),
    "savings_plan_region": ("", "Asia Pacific (Hyderabad)"),
    "savings_plan_savings_plan_a_r_n": ("",),
    "split_line_item_parent_resource_id": ("",),
}
_DECIMAL_COLUMNS = (
    "discount_bundled_discount",
    "discount_total_discount",
    "line_item_blended_cost",
    "line_item_blended_rate",
    "line_item_net_unblended_cost",
    "line_item_net_unblended_rate",
    "line_item_normalization_factor",
    "line_item_normalized_usage_amount",
    "line_item_unblended_rate",
    "pricing_public_on_demand_cost",
    "pricing_public_on_demand_rate",
    "reservation_amortized_upfront_cost_for_usage",
    "reservation_effective_cost",
    "reservation_net_effective_cost",
    "reservation_unused_quantity",
    "savings_plan_net_savings_plan_effective_cost",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_savings_plan_rate",
    "savings_plan_used_commitment",
)
_TIMESTAMP_COLUMNS = (
    "bill_billing_period_end_date",
    "bill_billing_period_start_date",
    "reservation_end_time",
    "reservation_start_time",
)


def cur_tables(rows: int, start: datetime, days: int, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """`rows` hourly line items over `days` from `start`, in the columns of a CUR 2.0 export: as
    Parquet holds them (map columns as maps) and as CSV does (map columns as JSON text)."""
    rng = np.random.default_rng(seed)
    product = rng.choice(len(PRODUCTS), size=rows, p=PRODUCT_SHARES)
    is_ec2 = product == 0
    spot = is_ec2 & (rng.random(rows) < 0.4)
    usage_type = np.where(spot, 1, np.where(is_ec2, 0, 2))
    hour = rng.integers(0, days * 24, size=rows)
    usage_start = np.datetime64(start.replace(tzinfo=None), "s") + hour * np.timedelta64(1, "h")
    amount = np.where(is_ec2, 1.0, rng.uniform(0.0, 100.0, rows))
    cost = np.where(spot, 0.03, np.where(is_ec2, 0.0816, rng.uniform(0.0, 0.5, rows))) * amount
    cluster = np.where(is_ec2, rng.choice(len(CLUSTERS), size=rows, p=[0.4, 0.4, 0.2]), 2)
    resource = rng.integers(0, RESOURCES, size=rows)
    usage_types = ["APS3-BoxUsage:m7g.large", "APS3-SpotUsage:m7g.large", "APS3-Requests-Tier1"]
    columns: dict[str, pa.Array] = {
        "identity_line_item_id": pa.array(np.char.add("li-", np.arange(rows).astype(str))),
        "identity_time_interval": _text(hour // 24, [f"day-{day}" for day in range(days)]),
        "line_item_usage_start_date": pa.array(usage_start, pa.timestamp("s")),
        "line_item_usage_end_date": pa.array(
            usage_start + np.timedelta64(1, "h"), pa.timestamp("s")
        ),
        "line_item_usage_account_id": _text(rng.integers(0, len(ACCOUNTS), size=rows), ACCOUNTS),
        "line_item_product_code": _text(product, PRODUCTS),
        "line_item_resource_id": _text(resource, [f"i-{n:017x}" for n in range(RESOURCES)]),
        "line_item_usage_type": _text(usage_type, usage_types),
        "line_item_usage_amount": pa.array(amount),
        "line_item_unblended_cost": pa.array(cost),
        "product_instance_type": _text(is_ec2.astype(np.int64), ["", "m7g.large"]),
    }
    for name, values in _TEXT_COLUMNS.items():
        columns[name] = _text(rng.integers(0, len(values), size=rows), values)
    for name in _DECIMAL_COLUMNS:
        columns[name] = pa.array(np.round(rng.uniform(0.0, 1.0, rows), 8))
    for name in _TIMESTAMP_COLUMNS:
        columns[name] = pa.array(np.full(rows, usage_start.min()), pa.timestamp("s"))
    tags = _tag_choices(cluster, rng)
    none = np.zeros(rows, dtype=np.int64)
    maps = {
        "resource_tags": tags,
        "cost_category": (none, [[("team", "platform")]]),
        "product": (none, [[("servicename", "fleet")]]),
        "discount": (none, [[]]),
    }
    parquet = dict(columns)
    csv = dict(columns)
    for name, (codes, choices) in maps.items():
        parquet[name] = pa.array(choices, _TAGS).take(pa.array(codes))
        csv[name] = _text(codes, [json.dumps(dict(items)) for items in choices])
    # In the order of the CUR 2.0 schema (by name), so the used columns lie apart in the file.
    return pa.table(dict(sorted(parquet.items()))), pa.table(dict(sorted(csv.items())))


def cur_files(rows: int, start: datetime, days: int, seed: int) -> dict[str, Path]:
    """The Parquet and gzipped CSV files of `cur_tables(rows, start, days, seed)`, written once."""
    name = f"cur-{rows}-{start:%Y%m%d}-{days}d-seed{seed}"
    files = {
        "parquet": BUILD_DIRECTORY / f"{name}.parquet",
        "csv.gz": BUILD_DIRECTORY / f"{name}.csv.gz",
    }
    if all(path.exists() for path in files.values()):
        return files
    BUILD_DIRECTORY.mkdir(parents=True, exist_ok=True)
    parquet, csv = cur_tables(rows, start, days, seed)
    # Written under another name first, so an interrupted run leaves no half file in the cache.
    partial = files["parquet"].with_suffix(".partial")
    pq.write_table(parquet, partial)
    partial.replace(files["parquet"])
    with pa.CompressedOutputStream(str(partial), "gzip") as stream:
        pa_csv.write_csv(csv, stream)
    partial.replace(files["csv.gz"])
    return files


def _text(codes: np.ndarray, values: tuple[str, ...] | list[str]) -> pa.Array:
    """Text column `values[codes]`, built without a Python object per row."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values))
    return dictionary.cast(pa.string())


def _tag_choices(
    cluster: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[list[tuple[str, str]]]]:
    """`resource_tags` as (index per row, distinct maps): the cluster tag (`user_cluster`, or on a
    quarter of the nodes only the tag EKS sets, `aws_eks_cluster_name`) among other tags;
    untagged line items have an empty map."""
    choices: list[list[tuple[str, str]]] = []
    for name in CLUSTERS[:2]:
        common = [("user_team", "platform"), ("user_environment", name.split("-")[0])]
        choices.append([*common, ("user_cluster", name)])
        choices.append([*common, ("aws_eks_cluster_name", name)])
    choices.append([])
    eks_only = (rng.random(len(cluster)) < 0.25).astype(np.int64)
    codes = np.where(cluster == 2, len(choices) - 1, cluster * 2 + eks_only)
    return codes, choices
