"""The processed document report_processor writes and report_generator reads (key and prefix
in `fleet_shared.report_documents`, with the raw document it is made from)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from fleet_shared.report_documents import RUN_ID_PATTERN, RawMetadata, ReportDocument
from fleet_shared.utc_times import UtcTime
from fleet_shared.validation_errors import shown_value

MATRIX_REGIONS_MAX = 16_382
"""The most regions a report shows: the workbook's Matrix sheet has a column per region beside its
service and coverage columns, and a worksheet has 16,384 (Excel reports a workbook with more as
damaged)."""
MATRIX_CELLS_MAX = 500_000
"""The most region x service cells a report has (AWS's today: about 14,000): matrix.csv holds
each and the Matrix sheet each one offered, so they take the generator's memory and time (a
matrix of a million, all offered, took 27 s and 400 MB to render; 5 million cells of an empty
matrix took it past its 1 GB until the columns were fitted from the values written)."""


PROCESSED_DOCUMENT_BYTES_MAX = 64 * 1024 * 1024
"""The largest processed document report_generator reads; a larger one fails unread, so
report_processor rejects the raw document it would make one from instead of writing it. One made
from a raw document of `RAW_DOCUMENT_BYTES_MAX` can be several times as large as it: about as
large for a matrix (10.5 MB from the 8.4 MB of a 500,000-cell matrix, 30.5 MB from 30.5 MB of
long names), but 115.3 MB from the 33.5 MB of 500,000 services in one region beside a previous
run of 447,000 others (each service's summary, and every one added and removed in the changes)."""


def matrix_too_large(regions: int, services: int) -> str | None:
    """Why a report of `regions` by `services` cannot be rendered, or None when it can."""
    cells = regions * services
    if cells <= MATRIX_CELLS_MAX:
        return None
    return (
        f"{services} services by {regions} regions make a matrix of {cells} cells, more than "
        f"the {MATRIX_CELLS_MAX} a report is rendered with"
    )


class RegionSummary(ReportDocument):
    """A region with its service count, coverage of all services and rank (1 = most services)."""

    code: str
    long_name: str | None
    partition: str | None
    geolocation_country: str | None
    geolocation_region: str | None
    availability_zones: int
    launch_date: date | None
    service_count: int
    coverage_percent: float
    rank: int


class ServiceSummary(ReportDocument):
    """A service with its region count, coverage of all regions and the partitions it is in."""

    code: str
    long_name: str | None
    marketing_url: str | None
    region_count: int
    coverage_percent: float
    partitions: list[str]


class QualityRuleResult(ReportDocument):
    """One declared data-quality rule: how many items it checked and which failed."""

    rule: str
    description: str
    weight: float
    checked: int
    failing: int
    examples: list[str]
    applicable: bool = True

    @property
    def passed(self) -> bool:
        """True when nothing failed (or the rule did not apply to this run)."""
        return self.failing == 0


class QualityReport(ReportDocument):
    """The quality score (0-100) and every rule's result."""

    score: float = Field(ge=0, le=100)
    rules: list[QualityRuleResult]
    failing_rules: list[str]


class Changes(ReportDocument):
    """What differs from the previous processed run (all empty when there is none)."""

    previous_run_id: str | None
    services_added: list[str]
    services_removed: list[str]
    regions_added: list[str]
    regions_removed: list[str]


class ProcessedMetadata(ReportDocument):
    """Where the processed document came from."""

    run_id: str = Field(pattern=f"^{RUN_ID_PATTERN}$")
    raw_key: str
    raw_etag: str
    processed_at: UtcTime
    fetch: RawMetadata


class ProcessedTotals(ReportDocument):
    """Headline counts of the processed run."""

    regions: int
    services: int
    pairs: int
    partitions: dict[str, int]


class ProcessedDocument(ReportDocument):
    """What report_processor writes to `processed/`.

    `availability` is the region x service matrix in compact form (service -> sorted regions,
    every service present, regions limited to the known regions); the generator pivots it back.
    """

    schema_version: Literal[1]
    metadata: ProcessedMetadata
    totals: ProcessedTotals
    regions: list[RegionSummary] = Field(max_length=MATRIX_REGIONS_MAX)
    services: list[ServiceSummary]
    availability: dict[str, list[str]]
    quality: QualityReport
    changes: Changes

    @field_validator("services")
    @classmethod
    def _renderable(
        cls, services: list[ServiceSummary], info: ValidationInfo
    ) -> list[ServiceSummary]:
        too_large = matrix_too_large(len(info.data.get("regions", [])), len(services))
        if too_large is not None:
            raise ValueError(too_large)
        return services

    @field_validator("availability")
    @classmethod
    def _known_regions_only(
        cls, availability: dict[str, list[str]], info: ValidationInfo
    ) -> dict[str, list[str]]:
        # The workbook's matrix has a column per known region only: an unknown one would fail
        # the generator's whole invocation instead of this one document.
        known = {region.code for region in info.data.get("regions", [])}
        for service, offered in availability.items():
            unknown = [region for region in offered if region not in known]
            if unknown:
                raise ValueError(
                    f"service {shown_value(service)} is offered in {shown_value(unknown[0])}, "
                    "which is not in regions"
                )
        return availability
