"""Report documents at report_processor's bounds: a raw document just under the largest it reads
(`RAW_DOCUMENT_BYTES_MAX`) and a previous processed run just under the largest it reads beside
it (`PROCESSED_DOCUMENT_BYTES_MAX`), both valid, in three shapes:

- `matrix`: the largest matrix a report has (1,000 regions x 500 services, every pair offered),
  the rest of the bytes in long names: few objects, long strings;
- `services`: services in one region, as many as the bytes hold (500,000 at most, the cells a
  report has), the previous run's all others (every one added and every one removed): the most
  objects the bytes hold;
- `unknown pairs`: one service offered in as many regions the document does not list as the
  bytes hold (the matrix bound counts listed regions only), beside the previous run of
  `services`: the most pairs the raw bytes hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fleet_shared.processed_documents import PROCESSED_DOCUMENT_BYTES_MAX
from fleet_shared.report_documents import (
    RAW_DOCUMENT_BYTES_MAX,
    RAW_PREFIX,
    processed_key,
    raw_key,
)

BELOW_BOUND = 1024
"""How far under its bound a document is made (bytes)."""
MATRIX_REGIONS = 1_000
MATRIX_SERVICES = 500
MANY_SERVICES = 500_000
"""As many cells as a report has, each a service in one region."""
RAW_SERVICE_BYTES = 60
"""About what a service in one region takes in a raw document, without its long name."""
PROCESSED_SERVICE_BYTES = 150
"""About what a service in one region takes in a processed document, without its long name."""
SHAPES = ("matrix", "services", "unknown pairs")


@dataclass(frozen=True)
class BoundDocuments:
    """One shape's previous processed run and raw document, with their keys."""

    shape: str
    previous_key: str
    previous: bytes
    raw_key: str
    raw: bytes
    previous_run_id: str


def bound_documents(
    shape: str,
    day: date,
    raw_bytes: int = RAW_DOCUMENT_BYTES_MAX,
    previous_bytes: int = PROCESSED_DOCUMENT_BYTES_MAX,
) -> BoundDocuments:
    """`shape`'s documents dated `day`, just under `raw_bytes` and `previous_bytes` (the bounds
    by default): the previous run at 00:00 UTC, the raw one at 01:00. Services and unknown
    regions are as many as the bytes hold, the most a report has at most."""
    stamp = day.strftime("%Y%m%d")
    previous_run_id, run_id = f"{stamp}T000000Z-0000000a", f"{stamp}T010000Z-0000000b"
    if shape == "matrix":
        regions = [f"r{index:04d}" for index in range(MATRIX_REGIONS)]
        services = {f"s{index:03d}": regions for index in range(MATRIX_SERVICES)}
        previous_regions, previous_services = regions, services
    else:
        previous_regions = ["r0"]
        previous_services = {
            f"p{index:06d}": previous_regions
            for index in range(min(MANY_SERVICES, previous_bytes // PROCESSED_SERVICE_BYTES))
        }
        regions = ["r0"]
        if shape == "services":
            services = {
                f"s{index:06d}": regions
                for index in range(min(MANY_SERVICES, raw_bytes // RAW_SERVICE_BYTES))
            }
        else:
            services = {"s0": _unknown_regions(raw_bytes)}
    previous = _padded(
        lambda padding: _processed(
            previous_run_id, day, previous_regions, previous_services, padding
        ),
        previous_bytes - BELOW_BOUND,
    )
    raw = _padded(
        lambda padding: _raw(run_id, day, regions, services, padding),
        raw_bytes - BELOW_BOUND,
    )
    return BoundDocuments(
        shape=shape,
        previous_key=processed_key(previous_run_id, day),
        previous=previous,
        raw_key=raw_key(run_id, day),
        raw=raw,
        previous_run_id=previous_run_id,
    )


def _unknown_regions(raw_bytes: int) -> list[str]:
    """As many distinct region codes as `raw_bytes` hold beside the rest of the document (the
    codes take 11 bytes each in it)."""
    return [f"u{index:07d}" for index in range((raw_bytes - 4096) // 11)]


def _padded(document: Callable[[int], dict[str, Any]], size: int) -> bytes:
    """`document(padding)` as compact JSON, with the padding (the characters of each long name)
    that brings it closest to `size` bytes without passing it."""
    unpadded = _json(document(0))
    names = unpadded.count(b'"long_name": ""')
    padding = (size - len(unpadded)) // names if names else 0
    body = _json(document(max(padding, 0)))
    if len(body) > size:
        raise ValueError(f"{len(body):,} bytes, more than the {size:,} aimed at")
    return body


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ": ")).encode("utf-8")


def _fetch_metadata(run_id: str, day: date, counts: dict[str, int]) -> dict[str, Any]:
    fetched = f"{day.isoformat()}T00:00:00Z"
    return {
        "run_id": run_id,
        "report_day": day.isoformat(),
        "started_at": fetched,
        "finished_at": fetched,
        "counts": counts,
        "ssm": {
            "parameter_root": "/aws/service/global-infrastructure",
            "region": "us-east-1",
            "fetched_at": fetched,
            "fingerprint": "0" * 64,
            "from_cache": False,
            "api_calls": 1,
        },
        "feed": {"url": "http://127.0.0.1/feed", "status": "unreachable", "items": 0},
        "warnings": [],
    }


def _raw(
    run_id: str, day: date, regions: list[str], services: dict[str, list[str]], padding: int
) -> dict[str, Any]:
    counts = {
        "regions": len(regions),
        "services": len(services),
        "pairs": sum(len(offered) for offered in services.values()),
        "launch_dates": 0,
    }
    return {
        "schema_version": 1,
        "metadata": _fetch_metadata(run_id, day, counts),
        "regions": [
            {"code": code, "long_name": "x" * padding, "partition": "aws"} for code in regions
        ],
        "services": [
            {"code": code, "long_name": "x" * padding, "regions": offered}
            for code, offered in services.items()
        ],
    }


def _processed(
    run_id: str, day: date, regions: list[str], services: dict[str, list[str]], padding: int
) -> dict[str, Any]:
    pairs = sum(len(offered) for offered in services.values())
    return {
        "schema_version": 1,
        "metadata": {
            "run_id": run_id,
            "raw_key": f"{RAW_PREFIX}{day.isoformat()}/{run_id}.json",
            "raw_etag": "0" * 32,
            "processed_at": f"{day.isoformat()}T00:00:01Z",
            "fetch": _fetch_metadata(
                run_id,
                day,
                {
                    "regions": len(regions),
                    "services": len(services),
                    "pairs": pairs,
                    "launch_dates": 0,
                },
            ),
        },
        "totals": {
            "regions": len(regions),
            "services": len(services),
            "pairs": pairs,
            "partitions": {"aws": len(regions)},
        },
        "regions": [
            {
                "code": code,
                "long_name": "x" * padding,
                "partition": "aws",
                "geolocation_country": None,
                "geolocation_region": None,
                "availability_zones": 0,
                "launch_date": None,
                "service_count": len(services),
                "coverage_percent": 100.0,
                "rank": 1,
            }
            for code in regions
        ],
        "services": [
            {
                "code": code,
                "long_name": "x" * padding,
                "marketing_url": None,
                "region_count": len(offered),
                "coverage_percent": 100.0,
                "partitions": ["aws"],
            }
            for code, offered in services.items()
        ],
        "availability": services,
        "quality": {"score": 100.0, "rules": [], "failing_rules": []},
        "changes": {
            "previous_run_id": None,
            "services_added": [],
            "services_removed": [],
            "regions_added": [],
            "regions_removed": [],
        },
    }
