"""Cost CUR: the cost analyzer's pandas aggregation over a generated CUR of 1,000,000 line items.

Prints the time of the aggregation and summary (as `cost_analyzer` runs them on the files it read
from S3), the peak memory Python allocated for them (tracemalloc, second run) and the process's
peak resident size, so the Lambda memory setting (1024 MB) and the switch to Athena
(COST_QUERY_ENGINE=athena) can be judged on numbers. The line items are generated with a seeded
numpy generator: EC2 nodes (on-demand and spot, tagged with a cluster in a `resource_tags` map,
or untagged), RDS, S3 and Lambda usage over 30 days in three accounts.
"""

from __future__ import annotations

import platform
import resource
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from handlers.cost_analyzer.cur import aggregate_line_items, summarise

LINE_ITEMS = 1_000_000
DAYS = 30
END = datetime(2025, 6, 1, tzinfo=UTC)
PRODUCTS = ("AmazonEC2", "AmazonRDS", "AmazonS3", "AWSLambda")
CLUSTERS = ("dev-apps", "prod-apps", "")


def generated_cur(rows: int, start: datetime, days: int, seed: int = 7) -> pd.DataFrame:
    """`rows` hourly line items over `days` from `start` (CUR 2.0 column names)."""
    rng = np.random.default_rng(seed)
    product = rng.choice(len(PRODUCTS), size=rows, p=[0.6, 0.1, 0.2, 0.1])
    is_ec2 = product == 0
    spot = is_ec2 & (rng.random(rows) < 0.4)
    usage_type = np.where(
        spot,
        "APS3-SpotUsage:m7g.large",
        np.where(is_ec2, "APS3-BoxUsage:m7g.large", "APS3-Requests-Tier1"),
    )
    resources = rng.integers(0, 5_000, size=rows)
    cluster_index = rng.choice(len(CLUSTERS), size=rows, p=[0.4, 0.4, 0.2])
    tag_maps = [{"user_cluster": name} if name else {} for name in CLUSTERS]
    untagged: dict[str, str] = {}
    hours = rng.integers(0, days * 24, size=rows)
    amount = np.where(is_ec2, 1.0, rng.uniform(0.0, 100.0, rows))
    cost = np.where(spot, 0.03, np.where(is_ec2, 0.0816, rng.uniform(0.0, 0.5, rows)))
    return pd.DataFrame(
        {
            "line_item_usage_start_date": pd.Timestamp(start) + pd.to_timedelta(hours, "h"),
            "line_item_usage_account_id": rng.choice(
                ["222222222222", "333333333333", "444444444444"], size=rows
            ),
            "line_item_product_code": np.array(PRODUCTS)[product],
            "line_item_resource_id": np.char.add("i-", resources.astype(str)),
            "line_item_usage_type": usage_type,
            "line_item_usage_amount": amount,
            "line_item_unblended_cost": cost * amount,
            "product_instance_type": np.where(is_ec2, "m7g.large", ""),
            "resource_tags": [
                tag_maps[index] if ec2 else untagged
                for ec2, index in zip(is_ec2, cluster_index, strict=True)
            ],
        }
    )


def analyse(lines: pd.DataFrame) -> dict[str, object]:
    """What the handler does with the line items it read."""
    return summarise(aggregate_line_items(lines, END - timedelta(days=DAYS), END), top_n=20)


def main() -> None:
    """Generate, aggregate and print the figures."""
    print(f"python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}")
    started = time.perf_counter()
    lines = generated_cur(LINE_ITEMS, END - timedelta(days=DAYS), DAYS)
    print(f"generated {len(lines):,} line items in {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    summary = analyse(lines)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    analyse(lines)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    nodes = summary["eks_nodes"]
    print(f"aggregation + summary: {elapsed:.2f} s")
    print(f"peak memory allocated by the aggregation (tracemalloc): {peak / 2**20:.0f} MiB")
    print(f"process peak resident size (generation included): {max_rss_mb:.0f} MiB")
    print(
        f"total cost {summary['total_cost']:.2f} USD, EKS node hours {nodes['node_hours']:.0f}, "
        f"spot share of node cost {nodes['spot_cost_share']:.1%}"
    )
