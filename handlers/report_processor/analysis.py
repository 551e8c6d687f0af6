"""The region x service availability matrix and the per-region and per-service statistics.

Built with pandas from the raw document: one row per (service, region) pair, cross-tabulated
into a boolean matrix over the known regions (those in the region list) and every service.
Pairs naming a region that is not in the list are left out of the matrix and the counts and
reported by the quality check instead, so a coverage figure never counts a region nobody knows.

Coverage of a region is the share of all services offered there; coverage of a service is the
share of all regions it is offered in; both are percentages rounded to two decimals. Regions
are ranked by service count, most first; ties share the better rank (1, 2, 2, 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fleet_shared.processed_documents import RegionSummary, ServiceSummary
from fleet_shared.report_documents import RawDocument


@dataclass(frozen=True)
class Analysis:
    """The matrix (services x regions, bool) and the frames derived from it."""

    matrix: pd.DataFrame
    pairs: pd.DataFrame
    unknown_pairs: pd.DataFrame
    regions: list[RegionSummary]
    services: list[ServiceSummary]
    partitions: dict[str, int]

    @property
    def availability(self) -> dict[str, list[str]]:
        """The matrix in compact form: service -> sorted regions where it is offered."""
        return {service: sorted(row.index[row].tolist()) for service, row in self.matrix.iterrows()}


def _percent(part: pd.Series, whole: int) -> pd.Series:
    if whole == 0:
        return part * 0.0
    return (part / whole * 100).round(2)


def analyse(raw: RawDocument) -> Analysis:
    """Matrix, region statistics and service statistics of one raw document."""
    region_codes = [region.code for region in raw.regions]
    service_codes = [service.code for service in raw.services]
    region_frame = pd.DataFrame([region.model_dump() for region in raw.regions]).set_index("code")
    all_pairs = pd.DataFrame(
        [(service.code, region) for service in raw.services for region in service.regions],
        columns=["service", "region"],
    )
    known = all_pairs["region"].isin(region_codes)
    pairs = all_pairs[known].reset_index(drop=True)
    unknown_pairs = all_pairs[~known].reset_index(drop=True)

    matrix = (
        pd.crosstab(pairs["service"], pairs["region"]).astype(bool)
        if not pairs.empty
        else pd.DataFrame(dtype=bool)
    )
    matrix = matrix.reindex(index=service_codes, columns=region_codes, fill_value=False).astype(
        bool
    )
    matrix.index.name, matrix.columns.name = "service", "region"

    service_counts = matrix.sum(axis=0).astype(int)
    region_coverage = _percent(service_counts, len(service_codes))
    ranks = service_counts.rank(method="min", ascending=False).astype(int)
    region_counts = matrix.sum(axis=1).astype(int)
    service_coverage = _percent(region_counts, len(region_codes))

    partition_of = region_frame["partition"]
    pairs_with_partition = pairs.assign(partition=pairs["region"].map(partition_of)).dropna(
        subset=["partition"]
    )
    service_partitions = pairs_with_partition.groupby("service")["partition"].agg(
        lambda values: sorted(set(values))
    )
    partitions = {
        str(name): int(count)
        for name, count in region_frame["partition"].dropna().value_counts().sort_index().items()
    }

    regions = [
        RegionSummary(
            code=region.code,
            long_name=region.long_name,
            partition=region.partition,
            geolocation_country=region.geolocation_country,
            geolocation_region=region.geolocation_region,
            availability_zones=len(region.availability_zones),
            launch_date=region.launch_date,
            service_count=int(service_counts[region.code]),
            coverage_percent=float(region_coverage[region.code]),
            rank=int(ranks[region.code]),
        )
        for region in raw.regions
    ]
    services = [
        ServiceSummary(
            code=service.code,
            long_name=service.long_name,
            marketing_url=service.marketing_url,
            region_count=int(region_counts[service.code]),
            coverage_percent=float(service_coverage[service.code]),
            partitions=list(service_partitions.get(service.code, [])),
        )
        for service in raw.services
    ]
    return Analysis(
        matrix=matrix,
        pairs=pairs,
        unknown_pairs=unknown_pairs,
        regions=regions,
        services=services,
        partitions=partitions,
    )
