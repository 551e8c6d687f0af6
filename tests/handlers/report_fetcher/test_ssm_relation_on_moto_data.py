"""The service -> regions relation read per region, on moto's full global-infrastructure data.

The reference is the relation the fetcher used to read, one `/services/<s>/regions` listing per
service, computed here straight from the parameters. SSM is the in-memory fake (AWS's paging:
no NextToken after the last page), so the whole dataset runs in about a second.
"""

from __future__ import annotations

import math
from functools import cache

from handlers.report_fetcher.ssm_source import PARAMETER_ROOT, fetch_global_infrastructure
from tests.handlers.report_pipeline.support import FakeSsm, moto_global_infrastructure

REGIONS = f"{PARAMETER_ROOT}/regions/"
SERVICES = f"{PARAMETER_ROOT}/services/"
MAX_CALLS = 1130


def _segments(name: str, prefix: str) -> list[str]:
    return name[len(prefix) :].split("/")


@cache
def _moto_parameters() -> dict[str, str]:
    return moto_global_infrastructure()


def _per_service(parameters: dict[str, str]) -> dict[str, list[str]]:
    """Service -> regions as the `/services/<s>/regions` listings give it, for the services of
    the `/services` listing (a service with child parameters only is not listed)."""
    relation: dict[str, list[str]] = {
        name[len(SERVICES) :]: [] for name in parameters if _is_child(name, SERVICES)
    }
    for name in parameters:
        if name.startswith(SERVICES):
            parts = _segments(name, SERVICES)
            if len(parts) == 3 and parts[1] == "regions" and parts[0] in relation:
                relation[parts[0]].append(parts[2])
    return {service: sorted(regions) for service, regions in relation.items()}


def _is_child(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and "/" not in name[len(prefix) :]


def _per_region(parameters: dict[str, str]) -> set[tuple[str, str]]:
    """(service, region) pairs as the `/regions/<r>/services` listings give them."""
    return {
        (parts[2], parts[0])
        for name in parameters
        if name.startswith(REGIONS)
        and len(parts := _segments(name, REGIONS)) == 3
        and parts[1] == "services"
    }


def _consistent(parameters: dict[str, str]) -> dict[str, str]:
    """Moto's data with each region's service listing rebuilt from the per-service listings, as
    AWS keeps them (moto's two listings were captured at different times)."""
    kept = {
        name: value
        for name, value in parameters.items()
        if not (name.startswith(REGIONS) and _segments(name, REGIONS)[1:2] == ["services"])
    }
    for service, regions in _per_service(parameters).items():
        for region in regions:
            kept[f"{REGIONS}{region}/services/{service}"] = service
    return kept


def test_reading_per_region_gives_the_matrix_of_the_per_service_listings() -> None:
    # GIVEN moto's full dataset, with both listings of the relation in agreement as in AWS
    parameters = _consistent(_moto_parameters())
    ssm = FakeSsm(parameters)
    # WHEN the relation is fetched
    fetched = fetch_global_infrastructure(ssm, max_workers=8, seconds_left=lambda: math.inf)
    # THEN every listed service has exactly the regions its own listing gives
    matrix = {service["code"]: service["regions"] for service in fetched.services}
    assert matrix == _per_service(parameters)
    assert (len(fetched.regions), len(matrix)) == (39, 404)
    assert sum(len(regions) for regions in matrix.values()) == 9267
    # AND it took at most 1,130 calls, all counted
    assert fetched.api_calls == ssm.calls <= MAX_CALLS


def test_where_motos_two_listings_disagree_the_per_region_listing_is_read() -> None:
    # GIVEN moto's dataset as shipped, whose two listings disagree for two services
    parameters = _moto_parameters()
    per_region = _per_region(parameters)
    listed = _per_service(parameters)
    # WHEN the relation is fetched
    fetched = fetch_global_infrastructure(
        FakeSsm(parameters), max_workers=8, seconds_left=lambda: math.inf
    )
    matrix = {service["code"]: service["regions"] for service in fetched.services}
    # THEN every listed service has the regions whose listings name it
    for service in listed:
        assert matrix[service] == sorted(region for code, region in per_region if code == service)
    # AND only those two services differ from their own listings, each by regions added
    differing = {service for service in listed if matrix[service] != listed[service]}
    assert differing == {"securityagent", "supportauthz"}
    assert all(set(listed[service]) < set(matrix[service]) for service in differing)
