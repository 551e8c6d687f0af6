"""Generated CUR 2.0 line items (seeded), for the cost analyzer's tests and benchmark."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

PRODUCTS = ("AmazonEC2", "AmazonRDS", "AmazonS3", "AWSLambda")
CLUSTERS = ("dev-apps", "prod-apps", "")


def generated_cur(rows: int, start: datetime, days: int, seed: int = 7) -> pd.DataFrame:
    """`rows` hourly line items over `days` from `start`: EC2 nodes (on-demand and spot, tagged
    with a cluster or not), RDS, S3 and Lambda usage in three accounts."""
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
                tag_maps[i] if is_ec2[n] else {} for n, i in enumerate(cluster_index)
            ],
        }
    )


def period(end: datetime, days: int) -> tuple[datetime, datetime]:
    """The analysis period ending at `end`."""
    return end - timedelta(days=days), end
