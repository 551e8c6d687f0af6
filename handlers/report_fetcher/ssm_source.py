"""Regions and services from the AWS global-infrastructure public parameters in SSM.

Layout read (non-recursive listings, so endpoints and protocols below each entry are not paged
through)::

    /aws/service/global-infrastructure/regions                      -> region codes
    /aws/service/global-infrastructure/regions/<r>/longName          (also partition,
                                                                      geolocationCountry,
                                                                      geolocationRegion)
    /aws/service/global-infrastructure/regions/<r>/availability-zones -> AZ ids, where present
    /aws/service/global-infrastructure/regions/<r>/services          -> the services offered in r
    /aws/service/global-infrastructure/services                     -> service codes
    /aws/service/global-infrastructure/services/<s>/longName         (also marketingHomeURL)

The service -> regions relation is read per region (`/regions/<r>/services`), not per service
(`/services/<s>/regions`): both list the same pairs, but 39 long listings leave far fewer
part-filled pages than 400 short ones (about 950 calls instead of 1,120 on the full dataset).
Only services of the `/services` listing are kept, each with its regions in region-code order.

The two top-level listings run first, one after the other; everything else (one listing per
region, attributes in GetParameters batches of 10) goes through a bounded thread pool. Every
listing is paginated to its end (GetParametersByPath returns at most 10 per page). The client
paces and retries the calls (see `FetcherServices.ssm`); a call that still fails, or answers
something that is not its answer, raises and fails the whole fetch: a dataset with a silently
missing service would later read as "service removed".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fleet_shared.page_tokens import pages
from handlers.report_fetcher.exceptions import (
    EmptySsmListingError,
    ForeignSsmParameterError,
    SsmOutOfTimeError,
    UnreadableSsmAnswerError,
)

PARAMETER_ROOT = "/aws/service/global-infrastructure"
PAGE_SIZE = 10
"""GetParametersByPath's maximum page size."""
BATCH_SIZE = 10
"""GetParameters accepts at most 10 names per call."""

REGION_ATTRIBUTES = {
    "longName": "long_name",
    "partition": "partition",
    "geolocationCountry": "geolocation_country",
    "geolocationRegion": "geolocation_region",
}
SERVICE_ATTRIBUTES = {"longName": "long_name", "marketingHomeURL": "marketing_url"}
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""A region, service or zone code: a segment of an SSM parameter name (letters, digits, `_.-`),
not `.` or `..`, at most 100 characters (AWS's longest is 39)."""
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point: in a str from JSON always a lone one (json joins escaped pairs)."""


@dataclass(frozen=True)
class InfrastructureData:
    """The fetched dataset: region and service records as plain dicts, sorted by code."""

    regions: list[dict[str, Any]]
    services: list[dict[str, Any]]
    api_calls: int


STOP_MARGIN_SECONDS = 60.0
"""Time the fetch keeps when it stops calling SSM: for the calls in flight (each up to 5
attempts, paced), the pool to wind down and the failure to be reported before Lambda ends it."""


class _CallCounter:
    """Counts the API calls of one fetch (retries excluded), from several threads, and stops
    the fetch before a call that would start with less than STOP_MARGIN_SECONDS left."""

    def __init__(self, seconds_left: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._seconds_left = seconds_left
        self.count = 0

    def ensure_time(self) -> None:
        """Raise SsmOutOfTimeError when too little time is left to make another call."""
        seconds_left = self._seconds_left()
        if seconds_left < STOP_MARGIN_SECONDS:
            raise SsmOutOfTimeError(self.count, seconds_left)

    def add(self) -> None:
        with self._lock:
            self.count += 1


def _children(ssm: Any, path: str, counter: _CallCounter) -> list[str]:
    """The code (last path segment) of every parameter directly under `path`, over all pages; a
    NextToken answered again raises `RepeatedPageTokenError` (a failed fetch) instead of asking
    until the time left runs out, a parameter listed twice or not a code directly under `path`
    ForeignSsmParameterError."""
    names: list[str] = []
    listed: set[str] = set()
    request: dict[str, Any] = {"Path": path, "Recursive": False, "MaxResults": PAGE_SIZE}
    counter.ensure_time()
    for response in pages(ssm, "GetParametersByPath", request, "NextToken"):
        counter.add()
        for parameter in _parameters(response, "GetParametersByPath", "Name"):
            name = parameter["Name"]
            parent, _, code = name.rpartition("/")
            # The code names the SSM paths read next and the report's rows: one listed twice, or
            # of another path, would be a second or a foreign region (the raw document refusing
            # it, its cache entry every run of the day).
            if parent != path or not _CODE.fullmatch(code) or code in listed:
                raise ForeignSsmParameterError(path, name)
            listed.add(code)
            names.append(code)
        if response.get("NextToken"):
            counter.ensure_time()
    return names


def _values(ssm: Any, names: list[str], counter: _CallCounter) -> dict[str, str]:
    """Name -> value for the names that exist (GetParameters reports the others as invalid)."""
    counter.ensure_time()
    response = ssm.get_parameters(Names=names)
    counter.add()
    parameters = _parameters(response, "GetParameters", "Name", "Value")
    return {_text(parameter["Name"]): _text(parameter["Value"]) for parameter in parameters}


def _text(value: str) -> str:
    """`value` with each lone surrogate as U+FFFD. JSON can escape one (`"\\ud800"`) and botocore
    hands it on, but no UTF-8 document holds it: the cache entry and the raw document could not
    be written, and the processor could not read them."""
    return _LONE_SURROGATE.sub("\ufffd", value)


def _parameters(response: dict[str, Any], operation: str, *fields: str) -> list[dict[str, Any]]:
    """The answer's `Parameters`, each with the text `fields`; raises UnreadableSsmAnswerError
    for anything else, so the run fails as for a failed call (and says so) rather than with a
    KeyError."""
    parameters = response.get("Parameters")
    if not isinstance(parameters, list) or not all(
        isinstance(parameter, dict)
        and all(isinstance(parameter.get(field), str) for field in fields)
        for parameter in parameters
    ):
        raise UnreadableSsmAnswerError(operation, response)
    return parameters


def _batches(names: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(names), BATCH_SIZE):
        yield names[start : start + BATCH_SIZE]


def _attribute_parameter(root: str, code: str, attribute: str) -> str:
    """The parameter that holds `attribute` of the region or service `code` under `root`."""
    return f"{root}/{code}/{attribute}"


def _attributes(
    values: dict[str, str], root: str, code: str, attributes: dict[str, str]
) -> dict[str, str | None]:
    """The `attributes` (parameter name: field) of the region or service `code` under `root`,
    by field, read from `values` (by parameter); None where the entry has no such parameter."""
    return {
        field: values.get(_attribute_parameter(root, code, attribute))
        for attribute, field in attributes.items()
    }


def fetch_global_infrastructure(
    ssm: Any, max_workers: int, seconds_left: Callable[[], float]
) -> InfrastructureData:
    """Every region and service with their attributes and the service -> regions relation.

    `ssm` must be safe to share between threads (boto3 clients are); `max_workers` bounds the
    concurrent calls; `seconds_left` is the invocation's time left. Raises the botocore error of
    any call that fails after its retries, UnreadableSsmAnswerError for an answer that is not
    the call's, EmptySsmListingError when the region or the service listing is empty, and
    SsmOutOfTimeError rather than start a call with less than STOP_MARGIN_SECONDS left
    (throttled SSM paced down by the adaptive retries can take longer than the function's
    timeout, and a killed invocation reports nothing).
    """
    counter = _CallCounter(seconds_left)
    region_root = f"{PARAMETER_ROOT}/regions"
    service_root = f"{PARAMETER_ROOT}/services"
    region_codes = sorted(_children(ssm, region_root, counter))
    service_codes = sorted(_children(ssm, service_root, counter))
    # An empty top-level listing is a read that went wrong, not a world without regions: cached,
    # it would fail every run of the report day, SSM answering again or not.
    for path, codes in ((region_root, region_codes), (service_root, service_codes)):
        if not codes:
            raise EmptySsmListingError(path)

    attribute_names = [
        _attribute_parameter(region_root, code, attribute)
        for code in region_codes
        for attribute in REGION_ATTRIBUTES
    ] + [
        _attribute_parameter(service_root, code, attribute)
        for code in service_codes
        for attribute in SERVICE_ATTRIBUTES
    ]

    def listing(path: str) -> Callable[[], list[str]]:
        return lambda: _children(ssm, path, counter)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ssm") as pool:
        # The longest listings first, so the pool does not end waiting on one of them.
        offered_here_futures: dict[str, Future[list[str]]] = {
            code: pool.submit(listing(f"{region_root}/{code}/services")) for code in region_codes
        }
        attribute_futures = [
            pool.submit(_values, ssm, batch, counter) for batch in _batches(attribute_names)
        ]
        zone_futures: dict[str, Future[list[str]]] = {
            code: pool.submit(listing(f"{region_root}/{code}/availability-zones"))
            for code in region_codes
        }
        try:
            offered_here = {
                code: set(future.result()) for code, future in offered_here_futures.items()
            }
            values: dict[str, str] = {}
            for future in attribute_futures:
                values.update(future.result())
            zones = {code: sorted(future.result()) for code, future in zone_futures.items()}
        except BaseException:
            # The fetch has failed: do not spend the remaining calls before saying so.
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    offered = {
        service: [region for region in region_codes if service in offered_here[region]]
        for service in service_codes
    }
    regions = [
        {
            "code": code,
            **_attributes(values, region_root, code, REGION_ATTRIBUTES),
            "availability_zones": zones[code],
        }
        for code in region_codes
    ]
    services = [
        {
            "code": code,
            **_attributes(values, service_root, code, SERVICE_ATTRIBUTES),
            "regions": offered[code],
        }
        for code in service_codes
    ]
    return InfrastructureData(regions=regions, services=services, api_calls=counter.count)
