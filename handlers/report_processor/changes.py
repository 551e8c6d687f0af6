"""What changed since the previous processed run: services and regions added or removed."""

from __future__ import annotations

from fleet_shared.processed_documents import Changes, ProcessedDocument
from fleet_shared.report_documents import RawDocument


def changes_since(raw: RawDocument, previous: ProcessedDocument | None) -> Changes:
    """Set differences of service and region codes; all empty when there is no previous run."""
    if previous is None:
        return Changes(
            previous_run_id=None,
            services_added=[],
            services_removed=[],
            regions_added=[],
            regions_removed=[],
        )
    services = {service.code for service in raw.services}
    regions = {region.code for region in raw.regions}
    previous_services = {service.code for service in previous.services}
    previous_regions = {region.code for region in previous.regions}
    return Changes(
        previous_run_id=previous.metadata.run_id,
        services_added=sorted(services - previous_services),
        services_removed=sorted(previous_services - services),
        regions_added=sorted(regions - previous_regions),
        regions_removed=sorted(previous_regions - regions),
    )
