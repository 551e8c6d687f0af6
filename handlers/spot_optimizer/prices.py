"""Prices: spot price history from EC2 in the member account, on-demand prices from the Pricing
API in the hub (falling back to the bundled table in on_demand_prices.py).

The Pricing API lives in us-east-1 (and a few other regions) whatever region is priced; its
PriceList entries are JSON documents whose OnDemand terms hold one price dimension per unit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import answer_field, call_error_text, refusal_text
from fleet_shared.event_parsing import json_or_problem
from fleet_shared.exceptions import PagesCutShortError
from fleet_shared.page_tokens import pages
from fleet_shared.timestamps import iso_z
from fleet_shared.validation_errors import cut_echo, shown_value
from handlers.spot_optimizer.exceptions import UnreadablePriceListError
from handlers.spot_optimizer.on_demand_prices import TABLE_SOURCES, table_price
from handlers.spot_optimizer.scoring import PricePoint

PRICING_REGION = "us-east-1"
PRODUCT_DESCRIPTION = "Linux/UNIX"
PRODUCTS_PAGE_SIZE = 10
"""GetProducts' MaxResults: the filters match a few products of one instance type."""

LOCATIONS = {
    "ap-south-1": "Asia Pacific (Mumbai)",
    "eu-west-1": "EU (Ireland)",
    "us-east-1": "US East (N. Virginia)",
    "us-west-2": "US West (Oregon)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
}
"""Pricing API `location` names of the regions; others are filtered by `regionCode`."""

DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
"""A price as the Pricing API and EC2 write it: ASCII digits, a fraction at most, no sign or
exponent."""

MAX_HOURLY_PRICE = 10_000.0
"""USD an hour above which a spot or on-demand price is no price. Measured: the dearest
on-demand price (Linux) of AWS's price list for us-east-1 as karpenter-provider-aws captured it
(pkg/providers/pricing/zz_generated.pricing_aws.go, generated 2026-01-19) is
u7in-32tb.224xlarge's 360.986950, then u7in-24tb.224xlarge's 270.73 and u-24tb1.112xlarge's
218.40 (the dearest GPU type, p6-b200.48xlarge, 113.93); a spot price stays below its type's
on-demand price. At about 28 times the dearest, the ceiling refuses no price the list holds,
with room for dearer types to come, and refuses the values that broke the scoring ("1e200", a
proxy's or a corrupt "250000.00"). A spot price under it but above its type's on-demand price
is left out once that price is known (`SpotHistory.leave_out_implausible`)."""

LOWEST_SPOT_SHARE = 0.05
"""The share of its type's on-demand price below which a spot price is no spot price. AWS
advertises spot discounts of up to 90 % (a spot price of 10 % of on-demand); half that leaves
room for an unusually quiet pool. Below it lie the answers that made a type look free: moto's
0.00001 for every pool, a corrupt or hostile history's "0.000010" for m7g.large (a saving of
99.99 %, the full savings part of the score on a price no instance paid)."""

NO_USD_PRICE = object()
"""What a price dimension without a USD price reads as (a null there is a price unread)."""


@dataclass(frozen=True)
class OnDemandPrice:
    """An on-demand price and where it came from (`pricing api` or the table's source)."""

    price: float
    source: str


@dataclass
class SpotHistory:
    """(instance type, AZ) -> published spot prices; and per instance type, the answers' prices
    left out of `prices` (no price, `is_price`, dated after the window, or not plausible beside
    the type's on-demand price, `implausible_spot_price`), each with its zone, time and why."""

    prices: dict[tuple[str, str], list[PricePoint]]
    left_out: dict[str, list[tuple[str, str, datetime, str]]]

    def leave_out_implausible(self, instance_type: str, on_demand: float) -> None:
        """Move the prices of `instance_type` that cannot be spot prices beside its on-demand
        price `on_demand` (`implausible_spot_price`) from `prices` to `left_out`; a zone left
        without a price is dropped."""
        for key in [key for key in self.prices if key[0] == instance_type]:
            kept = []
            for point in self.prices[key]:
                why = implausible_spot_price(point.price, on_demand)
                if why is None:
                    kept.append(point)
                    continue
                # As EC2 writes a price: six decimals.
                entry = (f"{point.price:.6f}", key[1], point.timestamp, why)
                self.left_out.setdefault(instance_type, []).append(entry)
            if kept:
                self.prices[key] = kept
            else:
                del self.prices[key]

    def left_out_summary(self, instance_type: str) -> str | None:
        """How many prices of `instance_type` were left out and the first, for a person; None
        when none was."""
        rejected = self.left_out.get(instance_type)
        if not rejected:
            return None
        count = len(rejected)
        text, zone, moment, why = rejected[0]
        return (
            f"SpotPrice: {count} value{'' if count == 1 else 's'} left out; the first "
            f"{cut_echo(text, 40)!r} in {zone} at {iso_z(moment)}: {why}"
        )


NOT_A_PRICE = f"not a decimal price above 0 and at most {MAX_HOURLY_PRICE:g}"
AFTER_THE_WINDOW = "dated after the window's end, so not in effect in it"


def implausible_spot_price(price: float, on_demand: float) -> str | None:
    """Why `price` cannot be a spot price of a type whose on-demand price is `on_demand`; None
    when it can. EC2 has moved spot prices gradually since its 2017 pricing model, and a spot
    request's maximum price defaults to the on-demand price: a spot price above it would
    interrupt every instance launched so, and does not last. Scored, such a price (a proxy's,
    a corrupt "25.000000" for m7g.large, under MAX_HOURLY_PRICE) took the type's saving to
    nothing and its volatility to the ceiling, on a price no instance paid. Nor can a price
    below LOWEST_SPOT_SHARE of `on_demand`, a discount no spot pool gives."""
    if price > on_demand:
        return f"above the type's on-demand price {on_demand:g}, which caps a spot price"
    if price < on_demand * LOWEST_SPOT_SHARE:
        return (
            f"below {LOWEST_SPOT_SHARE:.0%} of the type's on-demand price {on_demand:g}, "
            "a discount no spot price gives"
        )
    return None


def is_price(text: str) -> bool:
    """Whether `text` is a price: decimal text as EC2 writes it ("0.031200") above 0 and at most
    MAX_HOURLY_PRICE (scored, a NaN made its zone the best, a negative price a saving of hundreds
    of percent, text ended the analysis, and "1e200" beside a real price overflowed the
    volatility's squares: an OverflowError that failed the whole fleet run)."""
    if DECIMAL.fullmatch(text) is None:
        return False
    return 0 < float(text) <= MAX_HOURLY_PRICE


def spot_history(
    ec2: Any,
    instance_types: Iterable[str],
    start: datetime,
    end: datetime,
    *,
    next_page_allowed: Callable[[], bool],
) -> SpotHistory:
    """The published Linux/UNIX spot prices from `start` to `end`, per (instance type, AZ).

    Reads every page, so a long week of price changes is read completely (`page_tokens.pages`:
    never a token twice, a next page only while `next_page_allowed()`, else PagesCutShortError).
    The API also returns the price in effect at `start`, dated before it; scoring treats it as
    the starting price.
    """
    history: dict[tuple[str, str], list[PricePoint]] = {}
    left_out: dict[str, list[tuple[str, str, datetime, str]]] = {}
    request = {
        "InstanceTypes": list(instance_types),
        "ProductDescriptions": [PRODUCT_DESCRIPTION],
        "StartTime": start,
        "EndTime": end,
    }
    for page in pages(
        ec2, "DescribeSpotPriceHistory", request, "NextToken", next_page_allowed=next_page_allowed
    ):
        # EC2 sends `spotPriceHistorySet` in every answer, empty or not: a page without it (a
        # proxy's) must not pass for types without spot prices.
        for entry in answer_field(page, "DescribeSpotPriceHistory", "SpotPriceHistory"):
            # EC2 sends each of these with every price: one without them (an item of a proxy's
            # answer) fails the read, the target's error, not the whole run with a KeyError.
            timestamp, instance_type, zone, price = (
                answer_field(entry, "DescribeSpotPriceHistory", field)
                for field in ("Timestamp", "InstanceType", "AvailabilityZone", "SpotPrice")
            )
            if timestamp.tzinfo is None:
                timestamp = timestamp.replace(tzinfo=UTC)
            text, moment = str(price), timestamp.astimezone(UTC)
            # A price dated after `end` (EC2 answers none past EndTime) would be taken for the
            # price in effect now, and decide the saving.
            why = NOT_A_PRICE if not is_price(text) else AFTER_THE_WINDOW if moment > end else None
            if why is not None:
                left_out.setdefault(instance_type, []).append((text, zone, moment, why))
                continue
            history.setdefault((instance_type, zone), []).append(PricePoint(moment, float(text)))
    return SpotHistory(history, left_out)


def on_demand_price(
    pricing: Any, region: str, instance_type: str, *, next_page_allowed: Callable[[], bool]
) -> tuple[OnDemandPrice | None, str | None]:
    """The on-demand price from the Pricing API, else from the bundled table.

    Returns (price or None, why the API was not used or None).
    """
    api_problem: str | None
    try:
        price = _price_from_api(pricing, region, instance_type, next_page_allowed)
        if price is not None:
            return OnDemandPrice(price, "pricing api"), None
        api_problem = "pricing api returned no matching product"
    except (ClientError, BotoCoreError, PagesCutShortError) as error:
        api_problem = f"pricing api failed: {_describe(error)}"
    except UnreadablePriceListError as error:
        api_problem = f"pricing api answered an unreadable price list entry: {error}"
    fallback = table_price(region, instance_type)
    if fallback is None:
        return (
            None,
            f"{api_problem}; the bundled table has no price for {instance_type} in {region}",
        )
    return OnDemandPrice(fallback, TABLE_SOURCES[region]), api_problem


def _price_from_api(
    pricing: Any, region: str, instance_type: str, next_page_allowed: Callable[[], bool]
) -> float | None:
    location = LOCATIONS.get(region)
    filters = [
        _term("instanceType", instance_type),
        _term("location", location) if location else _term("regionCode", region),
        _term("operatingSystem", "Linux"),
        _term("tenancy", "Shared"),
        _term("preInstalledSw", "NA"),
        _term("capacitystatus", "Used"),
    ]
    # A page may hold fewer products than asked for, none at all, or none with an on-demand
    # price, and still be followed by one that has it: every page is read until a price is found.
    request = {"ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": PRODUCTS_PAGE_SIZE}
    for page in pages(
        pricing, "GetProducts", request, "NextToken", next_page_allowed=next_page_allowed
    ):
        for document in page.get("PriceList", []):
            price = parse_on_demand_price(document)
            if price is not None:
                return price
    return None


def parse_on_demand_price(document: str | dict[str, Any]) -> float | None:
    """The hourly USD price of a PriceList entry's OnDemand term, None when it has none.

    Raises UnreadablePriceListError when the entry is not JSON (or nested deeper than the
    decoder goes), not shaped like a product, or its USD price is not decimal text (`DECIMAL`):
    the caller then uses the bundled table.
    """
    product: Any = document
    if isinstance(document, str):
        product, problem = json_or_problem(document)
        if problem is not None:
            raise UnreadablePriceListError(f"it {problem}")
    try:
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                # Only a dimension without a USD price is passed: a null in its place is no
                # price the Pricing API sends.
                usd = dimension.get("pricePerUnit", {}).get("USD", NO_USD_PRICE)
                if usd is NO_USD_PRICE:
                    continue
                price = _usd_price(usd)
                if price is None:
                    raise UnreadablePriceListError(f"USD {shown_value(usd)} is not a price")
                if price > 0:
                    return price
    except (ValueError, TypeError, AttributeError) as error:
        raise UnreadablePriceListError(cut_echo(str(error))) from error
    return None


def _usd_price(usd: object) -> float | None:
    """`usd` as a price, None when it is no price. The Pricing API sends every price as decimal
    text ("0.0960000000"): a JSON `true` would read as 1.0, a null or a number is no answer of
    its, and "inf", "-1" or "1e3" no price it writes (0 is one: a dimension the caller passes);
    nor is one above MAX_HOURLY_PRICE, which would make every spot price a saving of 100 %."""
    if not isinstance(usd, str) or DECIMAL.fullmatch(usd) is None:
        return None
    price = float(usd)
    return price if price <= MAX_HOURLY_PRICE else None


def history_window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The analysis window: the last `days` days up to `now`, on whole hours."""
    end = now.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(days=days), end


def _term(field: str, value: str) -> dict[str, str]:
    return {"Type": "TERM_MATCH", "Field": field, "Value": value}


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        # A proxy's 4xx page becomes the whole message: cut and escaped, the wording kept.
        details = refusal_text(error)
        return f"{details.get('Code', 'ClientError')}: {details.get('Message', '')}".strip()
    return call_error_text(error)
