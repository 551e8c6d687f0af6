"""The Excel workbook of one processed run (openpyxl).

Sheets: Summary (headline counts, when the SSM data was read and whether by this run or an
earlier one of the report day, quality score and rules, changes), Regions, Services, Matrix
(services as rows, regions as columns, header row and first column frozen at B2, available
cells filled, a colour scale on the coverage column and row), Changes. Every table has a styled
header row and an auto-filter, and column widths fitted to their longest value. The same
processed run gives the same bytes: the workbook's times are the run's `processed_at`.

Every value is data: a text starting with `=` is kept as text, not written as a formula, and
characters a worksheet cannot hold (every character XML 1.0 forbids: control characters, the
noncharacters U+FFFE and U+FFFF, lone surrogates) are shown as U+FFFD instead of failing or
corrupting the whole workbook. A text longer than a cell holds (`cells.CELL_LIMIT`) is cut to
fit and ends with `... (<n> characters)`, n its whole length, as in the CSV files, and the
Summary says how many texts were cut. The JSON files keep the text as it came, the CSV files too
but for an apostrophe before a text that starts like a formula (`tables.py`).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from fleet_shared.processed_documents import ProcessedDocument
from handlers.report_generator.cells import CutTexts

ZIP_EARLIEST_DATE = (1980, 1, 1, 0, 0, 0)
"""The earliest date a zip entry can carry: every entry of the workbook gets it."""
SHEETS = ("Summary", "Regions", "Services", "Matrix", "Changes")
REGION_HEADERS = (
    "Region",
    "Name",
    "Partition",
    "Country",
    "Geo region",
    "AZs",
    "Launch date",
    "Services",
    "Coverage %",
    "Rank",
)
SERVICE_HEADERS = ("Service", "Name", "Regions", "Coverage %", "Partitions", "Marketing URL")
CHANGE_HEADERS = ("Change", "Code", "Name")
COVERAGE = "Coverage %"

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill(fill_type="solid", start_color="1F4E78", end_color="1F4E78")
AVAILABLE_FILL = PatternFill(fill_type="solid", start_color="C6EFCE", end_color="C6EFCE")
MAX_WIDTH = 60
MIN_WIDTH = 6
NOT_XML_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""A character outside XML 1.0's `Char`: openpyxl refuses only the control characters and writes
U+FFFE, U+FFFF and lone surrogates into a sheet no reader can parse."""


def _put(sheet: Worksheet, row: int, column: int, value: Any, cuts: CutTexts) -> Cell:
    """Write `value` as data (see the module's docstring), cut to fit the cell by `cuts`."""
    if not isinstance(value, str):
        return sheet.cell(row=row, column=column, value=value)
    # Cut first: each replaced character is one code unit, as is its replacement.
    text = NOT_XML_CHARACTER.sub("\ufffd", cuts.fitted(value))
    cell = sheet.cell(row=row, column=column, value=text)
    # openpyxl takes a text starting with `=` for a formula, which a spreadsheet would run.
    cell.data_type = "s"
    return cell


def _header(sheet: Worksheet, row: int, headers: Sequence[str], cuts: CutTexts) -> None:
    for column, title in enumerate(headers, start=1):
        cell = _put(sheet, row, column, title, cuts)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center")


def _rows(sheet: Worksheet, start_row: int, rows: Iterable[Sequence[Any]], cuts: CutTexts) -> int:
    """Write `rows` from `start_row` on; returns the last row written (start_row - 1 if none)."""
    last = start_row - 1
    for last, row in enumerate(rows, start=start_row):
        for column, value in enumerate(row, start=1):
            _put(sheet, last, column, value, cuts)
    return last


def _by_column(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[int, Any]]:
    """(column, value) of every value of `rows`, written from column 1 on."""
    for row in rows:
        yield from enumerate(row, start=1)


def _fit_columns(sheet: Worksheet, written: Iterable[tuple[int, Any]]) -> None:
    """Fit each column to its longest value of `written` (column, value).

    From what was written, not from the sheet: its `iter_rows` makes a cell object for every
    empty cell of the rectangle it spans, so a sparse matrix of 2,000 regions by 2,500 services
    took 1.5 GB and 14 s, past the function's memory."""
    widths: dict[int, int] = {}
    for column, value in written:
        if value is not None:
            widths[column] = max(widths.get(column, 0), len(str(value)))
    for column, width in widths.items():
        letter = get_column_letter(column)
        sheet.column_dimensions[letter].width = min(MAX_WIDTH, max(MIN_WIDTH, width + 2))


def _table(
    sheet: Worksheet, headers: Sequence[str], rows: list[Sequence[Any]], cuts: CutTexts
) -> None:
    _header(sheet, 1, headers, cuts)
    _rows(sheet, 2, rows, cuts)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(1, len(rows)) + 1}"
    sheet.freeze_panes = "A2"
    _fit_columns(sheet, _by_column([headers, *rows]))


def _summary(sheet: Worksheet, document: ProcessedDocument, cuts: CutTexts) -> None:
    """The Summary sheet, written after every other sheet (and the CSV files) was cut by `cuts`:
    it names how many texts of the report were cut, its own included."""
    metadata, totals, quality, changes = (
        document.metadata,
        document.totals,
        document.quality,
        document.changes,
    )
    fetch = metadata.fetch
    headline: list[tuple[str, Any]] = [
        ("Run id", metadata.run_id),
        ("Run started at", fetch.started_at.isoformat()),
        # When SSM was read, not when the run started: a run served by the report day's cache
        # shows data read by an earlier run, and says so.
        ("Fetched at", fetch.ssm.fetched_at.isoformat()),
        (
            "Fetched by",
            "an earlier run of the report day (source cache)"
            if fetch.ssm.from_cache
            else "this run",
        ),
        ("Processed at", metadata.processed_at.isoformat()),
        ("Regions", totals.regions),
        ("Services", totals.services),
        ("Service-region pairs", totals.pairs),
        ("Partitions", ", ".join(f"{name}: {count}" for name, count in totals.partitions.items())),
        ("Regions with a launch date", fetch.counts.launch_dates),
        ("Launch-date feed", fetch.feed.status),
        ("Quality score", quality.score),
        ("Failing rules", ", ".join(quality.failing_rules) or "none"),
        ("Previous run", changes.previous_run_id or "none"),
        ("Services added", len(changes.services_added)),
        ("Services removed", len(changes.services_removed)),
        ("Regions added", len(changes.regions_added)),
        ("Regions removed", len(changes.regions_removed)),
        ("Warnings", "; ".join(fetch.warnings) or "none"),
    ]
    headline_headers = ("Item", "Value")
    rule_headers = ("Quality rule", "Passed", "Weight", "Checked", "Failing", "Examples")
    rules = [
        (
            rule.rule,
            "n/a" if not rule.applicable else ("yes" if rule.passed else "no"),
            rule.weight,
            rule.checked,
            rule.failing,
            ", ".join(rule.examples),
        )
        for rule in quality.rules
    ]
    # Counted before the sheet is written, so that the count includes its own texts.
    for _, value in _by_column([*headline, *rules]):
        if isinstance(value, str):
            cuts.fitted(value)
    if cuts:
        headline.append(
            (
                "Texts cut to fit a cell",
                f"{len(cuts)}: each ends with '... (<n> characters)', n its whole length, here "
                "and in the CSV files; report.json holds them whole",
            )
        )
    _header(sheet, 1, headline_headers, cuts)
    last = _rows(sheet, 2, headline, cuts)
    sheet.auto_filter.ref = f"A1:B{last}"
    rules_row = last + 2
    _header(sheet, rules_row, rule_headers, cuts)
    _rows(sheet, rules_row + 1, rules, cuts)
    sheet.freeze_panes = "A2"
    _fit_columns(sheet, _by_column([headline_headers, *headline, rule_headers, *rules]))


def _matrix(sheet: Worksheet, document: ProcessedDocument, cuts: CutTexts) -> None:
    regions = sorted(region.code for region in document.regions)
    region_coverage = {region.code: region.coverage_percent for region in document.regions}
    services = sorted(document.services, key=lambda service: service.code)
    headers = ("Service", *regions, COVERAGE)
    _header(sheet, 1, headers, cuts)
    column_of = {code: index for index, code in enumerate(regions, start=2)}
    coverage_column = len(regions) + 2
    for row, service in enumerate(services, start=2):
        _put(sheet, row, 1, service.code, cuts).font = Font(bold=True)
        for region in document.availability.get(service.code, []):
            cell = sheet.cell(row=row, column=column_of[region], value=1)
            cell.fill = AVAILABLE_FILL
            cell.alignment = Alignment(horizontal="center")
        sheet.cell(row=row, column=coverage_column, value=service.coverage_percent)
    last_service_row = len(services) + 1
    coverage_row = last_service_row + 1
    label = sheet.cell(row=coverage_row, column=1, value=COVERAGE)
    label.font = HEADER_FONT
    label.fill = HEADER_FILL
    coverage_by_region = (COVERAGE, *(region_coverage[region] for region in regions))
    for region, column in column_of.items():
        sheet.cell(row=coverage_row, column=column, value=region_coverage[region])

    scale = {
        "start_type": "num",
        "start_value": 0,
        "start_color": "F8696B",
        "mid_type": "num",
        "mid_value": 50,
        "mid_color": "FFEB84",
        "end_type": "num",
        "end_value": 100,
        "end_color": "63BE7B",
    }
    coverage_letter = get_column_letter(coverage_column)
    sheet.conditional_formatting.add(
        f"{coverage_letter}2:{coverage_letter}{last_service_row}", ColorScaleRule(**scale)
    )
    if regions:
        last_region_letter = get_column_letter(len(regions) + 1)
        sheet.conditional_formatting.add(
            f"B{coverage_row}:{last_region_letter}{coverage_row}", ColorScaleRule(**scale)
        )
    sheet.auto_filter.ref = f"A1:{coverage_letter}{last_service_row}"
    sheet.freeze_panes = "B2"
    # The available cells' `1` is never wider than its column's region code or coverage.
    _fit_columns(
        sheet,
        itertools.chain(
            _by_column([headers, coverage_by_region]),
            ((1, service.code) for service in services),
            ((coverage_column, service.coverage_percent) for service in services),
        ),
    )


def _changes(document: ProcessedDocument) -> list[Sequence[Any]]:
    changes = document.changes
    service_names = {service.code: service.long_name for service in document.services}
    region_names = {region.code: region.long_name for region in document.regions}
    rows: list[Sequence[Any]] = []
    rows += [("service added", code, service_names.get(code)) for code in changes.services_added]
    rows += [("service removed", code, None) for code in changes.services_removed]
    rows += [("region added", code, region_names.get(code)) for code in changes.regions_added]
    rows += [("region removed", code, None) for code in changes.regions_removed]
    return rows


def render_workbook(document: ProcessedDocument, cuts: CutTexts | None = None) -> bytes:
    """The .xlsx bytes of `document`; `cuts` holds the texts the CSV files of the report cut
    (none by default), and counts those the workbook cuts."""
    cuts = CutTexts() if cuts is None else cuts
    workbook = Workbook()
    summary = workbook.active
    summary.title = SHEETS[0]

    regions = sorted(document.regions, key=lambda region: (region.rank, region.code))
    _table(
        workbook.create_sheet("Regions"),
        REGION_HEADERS,
        [
            (
                region.code,
                region.long_name,
                region.partition,
                region.geolocation_country,
                region.geolocation_region,
                region.availability_zones,
                region.launch_date.isoformat() if region.launch_date else None,
                region.service_count,
                region.coverage_percent,
                region.rank,
            )
            for region in regions
        ],
        cuts,
    )
    _table(
        workbook.create_sheet("Services"),
        SERVICE_HEADERS,
        [
            (
                service.code,
                service.long_name,
                service.region_count,
                service.coverage_percent,
                ", ".join(service.partitions),
                service.marketing_url,
            )
            for service in sorted(document.services, key=lambda service: service.code)
        ],
        cuts,
    )
    _matrix(workbook.create_sheet("Matrix"), document, cuts)
    _table(workbook.create_sheet("Changes"), CHANGE_HEADERS, _changes(document), cuts)
    _summary(summary, document, cuts)

    # The run's time, not the clock's: the same processed run gives the same bytes (and sha256).
    processed_at = document.metadata.processed_at.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.created = workbook.properties.modified = processed_at
    written = io.BytesIO()
    # ExcelWriter rather than Workbook.save, which stamps `modified` with the clock.
    ExcelWriter(workbook, ZipFile(written, "w", ZIP_DEFLATED)).save()
    return _entries_dated(written.getvalue(), ZIP_EARLIEST_DATE)


def _entries_dated(archive: bytes, date_time: tuple[int, int, int, int, int, int]) -> bytes:
    """`archive` with every entry dated `date_time`: openpyxl dates them with the clock."""
    dated = io.BytesIO()
    with ZipFile(io.BytesIO(archive)) as source, ZipFile(dated, "w", ZIP_DEFLATED) as target:
        for entry in source.infolist():
            copy = ZipInfo(entry.filename, date_time=date_time)
            copy.compress_type = ZIP_DEFLATED
            copy.external_attr = entry.external_attr
            target.writestr(copy, source.read(entry))
    return dated.getvalue()
