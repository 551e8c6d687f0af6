"""The JSON and CSV outputs of one processed run, and the list of every file of a report.

- `report.json`: metadata, totals, quality, changes, regions and services (structured).
- `availability.json`: the compact variant, service -> regions.
- `pairs.csv`: one row per (region, service) pair where the service is offered.
- `regions.csv`, `services.csv`: the per-region and per-service summaries.
- `matrix.csv`: services as rows, regions as columns, 1 where offered and 0 elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fleet_shared.report_documents import ProcessedDocument
from handlers.report_generator.workbook import render_workbook

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class RenderedFile:
    """One output file: its name inside the report prefix, bytes and content type."""

    name: str
    body: bytes
    content_type: str


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=False, ensure_ascii=False).encode("utf-8")


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def pairs_frame(document: ProcessedDocument) -> pd.DataFrame:
    """One row per offered (region, service) pair with names and partition, sorted."""
    regions = pd.DataFrame([region.model_dump() for region in document.regions])
    services = pd.DataFrame([service.model_dump() for service in document.services])
    pairs = pd.DataFrame(
        [
            (region, service)
            for service, offered in document.availability.items()
            for region in offered
        ],
        columns=["region", "service"],
    )
    pairs = pairs.merge(
        regions[["code", "long_name", "partition"]].rename(
            columns={"code": "region", "long_name": "region_name"}
        ),
        on="region",
        how="left",
    ).merge(
        services[["code", "long_name"]].rename(
            columns={"code": "service", "long_name": "service_name"}
        ),
        on="service",
        how="left",
    )
    columns = ["region", "region_name", "partition", "service", "service_name"]
    return pairs[columns].sort_values(["region", "service"]).reset_index(drop=True)


def matrix_frame(document: ProcessedDocument) -> pd.DataFrame:
    """Services x regions, 1 where offered, with the service code as first column."""
    regions = sorted(region.code for region in document.regions)
    services = sorted(service.code for service in document.services)
    matrix = pd.DataFrame(0, index=pd.Index(services, name="service"), columns=regions)
    for service, offered in document.availability.items():
        matrix.loc[service, offered] = 1
    return matrix.reset_index()


def render_files(document: ProcessedDocument, processed_key: str) -> list[RenderedFile]:
    """Every file of the report of `document` (read from `processed_key`), rendered in memory;
    nothing is written here."""
    dumped = document.model_dump(mode="json")
    report = {
        "metadata": {
            "run_id": document.metadata.run_id,
            "raw_key": document.metadata.raw_key,
            "processed_key": processed_key,
            "processed_at": dumped["metadata"]["processed_at"],
            "fetch": dumped["metadata"]["fetch"],
        },
        "totals": dumped["totals"],
        "quality": dumped["quality"],
        "changes": dumped["changes"],
        "regions": dumped["regions"],
        "services": dumped["services"],
    }
    compact = {"run_id": document.metadata.run_id, "services": document.availability}
    regions = pd.DataFrame(dumped["regions"]).sort_values(["rank", "code"])
    services = pd.DataFrame(dumped["services"]).sort_values("code")
    services["partitions"] = services["partitions"].map(" ".join)
    return [
        RenderedFile("report.xlsx", render_workbook(document), XLSX_TYPE),
        RenderedFile("report.json", _json(report), JSON_TYPE),
        RenderedFile("availability.json", _json(compact), JSON_TYPE),
        RenderedFile("pairs.csv", _csv(pairs_frame(document)), CSV_TYPE),
        RenderedFile("regions.csv", _csv(regions), CSV_TYPE),
        RenderedFile("services.csv", _csv(services), CSV_TYPE),
        RenderedFile("matrix.csv", _csv(matrix_frame(document)), CSV_TYPE),
    ]
