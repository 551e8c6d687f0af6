"""The pure scoring functions on handmade price histories, with numbers worked out by hand, and
the pure readers of the prices they score."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.spot_optimizer.app import parse_request
from handlers.spot_optimizer.models import IgnoredEvent, InterruptionEvent
from handlers.spot_optimizer.prices import is_price, parse_on_demand_price
from handlers.spot_optimizer.scoring import (
    PricePoint,
    coefficient_of_variation,
    history_statistics,
    hourly_series,
    interruption_risk,
    opportunity_score,
    relative_trend_per_day,
    savings_percent,
)

START = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
END = START + timedelta(hours=4)
STEP_HISTORY = [
    PricePoint(START - timedelta(hours=1), 0.10),  # in effect when the window opens
    PricePoint(START + timedelta(hours=2), 0.20),
]


def test_savings_is_the_share_of_the_on_demand_price_not_paid() -> None:
    # GIVEN spot at 0.03 and on-demand at 0.10 THEN 70 % is saved; spot above on-demand is negative
    assert savings_percent(0.03, 0.10) == pytest.approx(70.0, abs=1e-9)
    assert savings_percent(0.12, 0.10) == pytest.approx(-20.0, abs=1e-9)


def test_history_is_resampled_hourly_as_a_step_function() -> None:
    # GIVEN 0.10 in effect before the window and 0.20 from hour 2
    # THEN the five hourly prices carry each price forward
    assert hourly_series(STEP_HISTORY, START, END) == [0.10, 0.10, 0.20, 0.20, 0.20]


def test_volatility_and_trend_of_a_step_history() -> None:
    # GIVEN the series [0.1, 0.1, 0.2, 0.2, 0.2] (mean 0.16)
    series = hourly_series(STEP_HISTORY, START, END)
    # THEN CV = sqrt(0.0024) / 0.16 and trend = (0.03 per hour * 24) / 0.16 per day
    assert coefficient_of_variation(series) == pytest.approx(math.sqrt(0.0024) / 0.16, rel=1e-9)
    assert relative_trend_per_day(series) == pytest.approx(0.72 / 0.16, rel=1e-9)
    volatility, trend = history_statistics(STEP_HISTORY, START, END)
    assert volatility == pytest.approx(0.3061862178, rel=1e-9)
    assert trend == pytest.approx(4.5, rel=1e-9)


@pytest.mark.parametrize(
    "single",
    [
        [PricePoint(START - timedelta(days=365), 0.05)],
        [
            PricePoint(START + timedelta(hours=1), 0.05),
            PricePoint(START + timedelta(hours=1), 0.05),
        ],
    ],
    ids=["one old point", "one point answered twice"],
)
def test_a_single_point_is_insufficient_history(single: list[PricePoint]) -> None:
    # GIVEN one published price (what moto returns: one old point per AZ), or one price in the
    # window that the answer lists twice (a repeated page)
    # THEN neither volatility nor trend is computed: one moment shows no movement
    assert history_statistics(single, START, END) == (None, None)


def test_the_dearest_on_demand_price_aws_lists_is_read_as_a_price() -> None:
    # GIVEN the dearest on-demand price of AWS's price list (u7in-32tb.224xlarge's, measured in
    # prices.MAX_HOURLY_PRICE), written as the Pricing API writes prices and as EC2 writes spot
    # prices
    entry = {
        "terms": {
            "OnDemand": {
                "t": {"priceDimensions": {"d": {"pricePerUnit": {"USD": "360.9869500000"}}}}
            }
        }
    }
    # WHEN each is read
    # THEN each is a price: the ceiling refuses no price AWS lists
    assert parse_on_demand_price(json.dumps(entry)) == 360.98695
    assert is_price("360.986950")


def test_interruption_risk_saturates_at_five() -> None:
    assert [interruption_risk(n) for n in (0, 2, 5, 7)] == [0.0, 0.4, 1.0, 1.0]


def test_score_of_a_flat_cheap_history_without_interruptions() -> None:
    # GIVEN 70 % savings, no volatility, a flat trend, no interruptions
    score = opportunity_score(70.0, 0.0, 0.0, 0.0)
    # THEN 50*0.7 + 20 + 15 + 15
    assert score.score == 85.0
    assert score.confidence == "high"


def test_score_with_insufficient_history_is_neutral_and_low_confidence() -> None:
    # GIVEN 70 % savings and no usable history
    score = opportunity_score(70.0, None, None, 0.0)
    # THEN stability and trend count half: 35 + 10 + 7.5 + 15
    assert score.score == 67.5
    assert score.confidence == "low"


def test_score_penalises_volatility_rising_prices_and_interruptions() -> None:
    # GIVEN CV 0.125 (half the ceiling), +2.5 %/day (half the ceiling), two interruptions
    score = opportunity_score(70.0, 0.125, 0.025, interruption_risk(2))
    # THEN 35 + 20*0.5 + 15*0.5 + 15*0.6
    assert score.score == 61.5
    # AND a falling trend scores like a flat one, spot above on-demand gets no savings points
    assert opportunity_score(70.0, 0.0, -0.5, 0.0).score == 85.0
    assert opportunity_score(-10.0, 0.0, 0.0, 0.0).score == 50.0


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[3] / "events" / "spot_optimizer").glob("*.json")),
    ids=lambda path: path.name,
)
def test_example_events_are_valid(path: Path) -> None:
    # GIVEN an example event under events/
    event = json.loads(path.read_text())
    # WHEN the handler parses it
    request = parse_request(event)
    # THEN it is the request its shape says, none of them ignored: an EventBridge event is the
    # interruption warning of its instance, another the model of its action, each with the dry
    # run it asks for
    if "detail-type" in event:
        assert isinstance(request, InterruptionEvent)
        assert request.detail.instance_id == event["detail"]["instance-id"]
    else:
        assert not isinstance(request, IgnoredEvent | InterruptionEvent)
        assert request.action == event["action"]
    assert request.dry_run is event.get("dry_run", False)
