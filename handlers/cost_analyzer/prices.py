"""AWS Lambda prices used for the rightsizing savings.

Source: https://aws.amazon.com/lambda/pricing/ (on-demand compute, Arm architecture, first tier
of 7.5 billion GB-seconds per month), read on 2025-06-01. The fleet's functions run on arm64.
Prices differ slightly between some regions; regions not listed use the US East (N. Virginia)
price, and savings say which price they used. Requests cost the same whatever the memory, so
they are not part of a memory saving.
"""

from __future__ import annotations

PRICES_DATE = "2025-06-01"
PRICES_SOURCE = "https://aws.amazon.com/lambda/pricing/"
ARM64_PRICE_PER_GB_SECOND: dict[str, float] = {
    "us-east-1": 0.0000133334,
    "us-east-2": 0.0000133334,
    "us-west-2": 0.0000133334,
    "eu-west-1": 0.0000133334,
    "ap-south-1": 0.0000133334,
}
DEFAULT_REGION = "us-east-1"


def arm64_price_per_gb_second(region: str) -> tuple[float, str]:
    """The price per GB-second in `region`, and the region whose price it is."""
    if region in ARM64_PRICE_PER_GB_SECOND:
        return ARM64_PRICE_PER_GB_SECOND[region], region
    return ARM64_PRICE_PER_GB_SECOND[DEFAULT_REGION], DEFAULT_REGION
