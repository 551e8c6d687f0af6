"""The demo's spot prices: each instance type and zone has its own history, so the spot
optimizer's scores differ by pool as they would in AWS (moto alone gives every pool one price)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws

from fleetctl.demo_world import SeededSpotPrices, serve_spot_prices
from handlers.spot_optimizer.on_demand_prices import table_price
from handlers.spot_optimizer.prices import history_window, spot_history
from handlers.spot_optimizer.scoring import history_statistics, opportunity_score, savings_percent

ACCOUNT = "123456789012"
REGION = "ap-south-1"
TYPES = ["m7g.large", "m6g.large", "c7g.large"]
END = datetime(2026, 11, 26, 18, 29, tzinfo=UTC)


@mock_aws
def test_the_spot_optimizer_reads_a_history_that_scores_each_type_and_zone_differently():
    # GIVEN the demo's spot prices served in the member account's region
    prices = SeededSpotPrices(places=frozenset({(ACCOUNT, REGION)}), end=END)
    ec2 = boto3.client("ec2", region_name=REGION)
    with serve_spot_prices(prices):
        # WHEN the optimizer reads its week of history at a replayed hour, as it does
        now = END - timedelta(hours=10)
        start, end = history_window(now, 7)
        read = spot_history(ec2, TYPES, start, end, next_page_allowed=lambda: True)
    # THEN every type has its three zones, with prices that move within the week, none left out
    history = read.prices
    assert read.left_out == {}
    assert sorted(history) == sorted((kind, f"{REGION}{z}") for kind in TYPES for z in "abc")
    # AND no price is later than the replayed hour
    assert max(point.timestamp for points in history.values() for point in points) <= end
    scores = {}
    for (kind, zone), points in history.items():
        ordered = sorted(points, key=lambda point: point.timestamp)
        volatility, trend = history_statistics(ordered, start, end)
        assert volatility is not None and volatility > 0
        on_demand = table_price(REGION, kind)
        assert on_demand is not None
        saving = savings_percent(ordered[-1].price, on_demand)
        assert 0 < saving < 75
        scores[kind, zone] = opportunity_score(saving, volatility, trend, 0.0).score
    # AND the nine pools get nine different scores, differing by type and by zone
    assert len(set(scores.values())) == len(scores)
    assert max(scores.values()) - min(scores.values()) > 5


@mock_aws
def test_accounts_without_seeded_prices_keep_motos_answer():
    # GIVEN prices seeded for another account
    prices = SeededSpotPrices(places=frozenset({("999999999999", REGION)}), end=END)
    ec2 = boto3.client("ec2", region_name=REGION)
    with serve_spot_prices(prices):
        # WHEN this account asks THEN moto answers as it does without the demo
        answer = ec2.describe_spot_price_history(InstanceTypes=["m7g.large"])
    assert {entry["SpotPrice"] for entry in answer["SpotPriceHistory"]} == {"0.00001"}
