"""Bundled on-demand prices: the fallback when the Pricing API cannot be used.

Linux, shared tenancy, no pre-installed software, USD per hour, for the instance types of
Pulumi.dev.yaml and Pulumi.prod.yaml plus the sibling generations that recommend_node_group_mix
proposes (m6g/m7g, c6g/c7g, r6g/r7g in large..4xlarge, and t4g.large), in the regions the stacks
use (ap-south-1, eu-west-1) and us-east-1.

Sources (each result names which one priced an instance type):
- us-east-1: the AWS Price List figures captured in karpenter-provider-aws,
  pkg/providers/pricing/zz_generated.pricing_aws.go, generated 2026-02-09 (r7g and t4g were not
  in the part read and are from the AWS EC2 On-Demand pricing page).
- ap-south-1 and eu-west-1: the AWS EC2 On-Demand pricing page as recorded by the author in
  2025-06; these figures were NOT re-checked against the Price List API when bundled.

THIS TABLE GOES STALE: refresh it whenever AWS changes prices or a stack adds an instance type
or region, from the Price List API, e.g. per type and region::

    aws pricing get-products --region us-east-1 --service-code AmazonEC2 --filters \
      Type=TERM_MATCH,Field=instanceType,Value=m7g.large \
      Type=TERM_MATCH,Field=regionCode,Value=ap-south-1 \
      Type=TERM_MATCH,Field=operatingSystem,Value=Linux \
      Type=TERM_MATCH,Field=tenancy,Value=Shared \
      Type=TERM_MATCH,Field=preInstalledSw,Value=NA \
      Type=TERM_MATCH,Field=capacitystatus,Value=Used

and update PRICES_AS_OF. The handler only uses this table when the live API fails.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-02-09 (us-east-1); 2025-06 (ap-south-1, eu-west-1)"

TABLE_SOURCES = {
    "us-east-1": "price table: karpenter-provider-aws zz_generated.pricing_aws.go, 2026-02-09",
    "ap-south-1": "price table: AWS EC2 on-demand pricing page, recorded 2025-06 (unverified)",
    "eu-west-1": "price table: AWS EC2 on-demand pricing page, recorded 2025-06 (unverified)",
}
"""How each region's prices were obtained, reported with every price taken from the table."""

_SIZE_FACTORS = {"large": 1, "xlarge": 2, "2xlarge": 4, "4xlarge": 8}

# Price of the `.large` size per region and family; larger sizes scale linearly, as they do in
# the AWS price list for these families.
_LARGE_PRICES: dict[str, dict[str, float]] = {
    "us-east-1": {
        "m6g": 0.0770,
        "m7g": 0.0816,
        "c6g": 0.0680,
        "c7g": 0.0725,
        "r6g": 0.1008,
        "r7g": 0.1071,
    },
    "ap-south-1": {
        "m6g": 0.0808,
        "m7g": 0.0858,
        "c6g": 0.0680,
        "c7g": 0.0722,
        "r6g": 0.1016,
        "r7g": 0.1079,
    },
    "eu-west-1": {
        "m6g": 0.0860,
        "m7g": 0.0912,
        "c6g": 0.0776,
        "c7g": 0.0825,
        "r6g": 0.1128,
        "r7g": 0.1198,
    },
}

_OTHER_PRICES: dict[str, dict[str, float]] = {
    "us-east-1": {"t4g.large": 0.0672},
    "ap-south-1": {"t4g.large": 0.0717},
    "eu-west-1": {"t4g.large": 0.0736},
}


def _build() -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for region, families in _LARGE_PRICES.items():
        prices = dict(_OTHER_PRICES.get(region, {}))
        for family, large in families.items():
            for size, factor in _SIZE_FACTORS.items():
                prices[f"{family}.{size}"] = round(large * factor, 6)
        table[region] = prices
    return table


ON_DEMAND_PRICES: dict[str, dict[str, float]] = _build()
"""region -> instance type -> USD per hour (Linux, shared tenancy)."""


def table_price(region: str, instance_type: str) -> float | None:
    """The bundled price, or None when the table does not cover the type in the region."""
    return ON_DEMAND_PRICES.get(region, {}).get(instance_type)
