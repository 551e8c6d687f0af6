"""The JSON and CSV outputs of one processed run, and the list of every file of a report.

- `report.json`: metadata, totals, quality, changes, regions and services (structured).
- `availability.json`: the compact variant, service -> regions.
- `pairs.csv`: one row per (region, service) pair where the service is offered.
- `regions.csv`, `services.csv`: the per-region and per-service summaries.
- `matrix.csv`: services as rows, regions as columns, 1 where offered and 0 elsewhere.

A CSV field longer than a spreadsheet cell holds is cut as the workbook cuts it (`cells.py`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fleet_shared.processed_documents import ProcessedDocument
from handlers.report_generator.cells import CutTexts
from handlers.report_generator.workbook import render_workbook

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
ROW_TERMINATOR = "\r\n"
"""What the CSV writer ends a row with before it becomes `\n` (see `_csv`)."""
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
"""What a spreadsheet opening a CSV file reads as the start of a formula: OWASP's list, and the
null character ASVS 5.0 (V1.2.10) adds, which a reader may drop before the `=` behind it."""
TEXT_MARK = "'"
"""What a spreadsheet shows a field behind as text, not a formula."""
UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
"""Unicode categories of what a reader skips or does not show before a formula: controls, format
characters (U+200B, U+FEFF, the bidirectional marks and overrides such as U+202E) and spaces."""
UNSEEN_OTHERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
"""The default-ignorable characters of other categories (a combining grapheme joiner, the Hangul
fillers): shown as nothing, like the format characters."""
COMPATIBILITY_FORM = "NFKC"
"""The normalisation that reads a full-width, small, superscript or subscript sign (U+FF1D, the
full-width `=`; U+FE62, the small `+`; U+207C, the superscript `=`) as the sign itself. Whether
a spreadsheet that normalises text takes such a sign at a field's start for the formula's own is
documented for none of them, and an apostrophe before a text costs nothing: every character
whose compatibility form is one of FORMULA_STARTS counts as it."""


@dataclass(frozen=True)
class RenderedFile:
    """One output file: its name inside the report prefix, bytes and content type."""

    name: str
    body: bytes
    content_type: str


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=False, ensure_ascii=False).encode("utf-8")


def _starts_like_a_formula(text: str) -> bool:
    """Whether `text` starts with one of FORMULA_STARTS (or a sign whose compatibility form is
    one: `COMPATIBILITY_FORM`), or with one of them behind characters a
    reader skips or does not show (`UNSEEN_CATEGORIES`, `UNSEEN_OTHERS`): `\u202e=1+1` or
    ` =1+1` looks like text to whoever reads the SSM value, and a spreadsheet that trims or
    ignores the prefix runs the formula."""
    for character in text:
        if character in FORMULA_STARTS or (
            not character.isascii()
            and unicodedata.normalize(COMPATIBILITY_FORM, character) in FORMULA_STARTS
        ):
            return True
        if character not in UNSEEN_OTHERS and unicodedata.category(character) not in (
            UNSEEN_CATEGORIES
        ):
            return False
    return False


def _as_text(value: Any, cuts: CutTexts) -> Any:
    """`value`, with an apostrophe before a text that starts like a formula
    (`_starts_like_a_formula`): the SSM values are not ours, and a spreadsheet opening the file
    would run `=HYPERLINK(...)` as a formula; with the apostrophe it shows the text. A text too
    long for a cell with it is cut by `cuts`."""
    if not isinstance(value, str):
        return value
    if _starts_like_a_formula(value):
        return TEXT_MARK + cuts.fitted(value, before=TEXT_MARK)
    return cuts.fitted(value)


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]], cuts: CutTexts) -> bytes:
    """CSV as the report has always written it: minimal quoting, `\n` line ends, UTF-8, and an
    empty field for a missing value; a field holding `\r` or `\n` is quoted, and a text that
    starts like a formula gets an apostrophe before it, one too long for a cell is cut by `cuts`
    (`_as_text`)."""
    buffer = io.StringIO()
    row_buffer = io.StringIO()
    # The writer quotes a field holding a character of its line terminator, so with `\n` alone a
    # bare `\r` went out unquoted and every reader split the row there: each row is written with
    # `\r\n` (quoting both) and its terminator then replaced by `\n`.
    writer = csv.writer(row_buffer, lineterminator=ROW_TERMINATOR)
    for row in itertools.chain([header], rows):
        row_buffer.seek(0)
        row_buffer.truncate()
        writer.writerow([_as_text(value, cuts) for value in row])
        buffer.write(row_buffer.getvalue().removesuffix(ROW_TERMINATOR))
        buffer.write("\n")
    return buffer.getvalue().encode("utf-8")


def _records_csv(records: list[dict[str, Any]], cuts: CutTexts) -> bytes:
    """One row per record, the columns in the records' field order."""
    header = list(records[0]) if records else []
    return _csv(header, ([record[column] for column in header] for record in records), cuts)


PAIR_COLUMNS = ("region", "region_name", "partition", "service", "service_name")


def pair_rows(
    document: ProcessedDocument,
) -> list[tuple[str, str | None, str | None, str, str | None]]:
    """One row per offered (region, service) pair with names and partition, sorted."""
    regions = {region.code: region for region in document.regions}
    services = {service.code: service for service in document.services}
    rows = []
    for service, offered in document.availability.items():
        for region in offered:
            known_region, known_service = regions.get(region), services.get(service)
            rows.append(
                (
                    region,
                    known_region.long_name if known_region else None,
                    known_region.partition if known_region else None,
                    service,
                    known_service.long_name if known_service else None,
                )
            )
    return sorted(rows, key=lambda row: (row[0], row[3]))


def matrix_rows(document: ProcessedDocument) -> tuple[list[str], list[list[str | int]]]:
    """Services x regions, 1 where offered, with the service code as first column: the header
    and the rows."""
    regions = sorted(region.code for region in document.regions)
    offered = {
        service: set(regions_offered) for service, regions_offered in document.availability.items()
    }
    rows: list[list[str | int]] = [
        [service, *(int(region in offered.get(service, ())) for region in regions)]
        for service in sorted(service.code for service in document.services)
    ]
    return ["service", *regions], rows


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
    regions = sorted(dumped["regions"], key=lambda region: (region["rank"], region["code"]))
    services = [
        {**service, "partitions": " ".join(service["partitions"])}
        for service in sorted(dumped["services"], key=lambda service: service["code"])
    ]
    cuts = CutTexts()
    # The CSV files first: the workbook's Summary counts the texts cut in every file.
    tables = [
        RenderedFile("pairs.csv", _csv(PAIR_COLUMNS, pair_rows(document), cuts), CSV_TYPE),
        RenderedFile("regions.csv", _records_csv(regions, cuts), CSV_TYPE),
        RenderedFile("services.csv", _records_csv(services, cuts), CSV_TYPE),
        RenderedFile("matrix.csv", _csv(*matrix_rows(document), cuts), CSV_TYPE),
    ]
    return [
        RenderedFile("report.xlsx", render_workbook(document, cuts), XLSX_TYPE),
        RenderedFile("report.json", _json(report), JSON_TYPE),
        RenderedFile("availability.json", _json(compact), JSON_TYPE),
        *tables,
    ]
