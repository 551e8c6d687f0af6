"""Reading the CUR files from S3: only the columns the aggregation uses (`cur.READ_COLUMNS`).

A CUR 2.0 export has about 90 columns, of which the aggregation uses 7 to 13; reading them all and
then selecting takes about five times the time and three times the memory. Parquet is read by
Arrow through `S3ObjectReader`, which turns each read Arrow asks for into one ranged GetObject of
exactly those bytes: the footer, then the used columns' chunks (near ones coalesced by Arrow's
pre-buffering). The AWS SDK for pandas (`wr.s3.read_parquet`, 3.17.1) reads ahead 20 MB at every
seek instead: on the benchmark's export (89 columns, 1,000,000 line items) it fetched about 330 MB
in 29 requests for 13 MB of used column chunks. CSV files (`.csv`, `.csv.gz`) are streamed, block
by block, through Arrow's CSV reader with the same column selection. Of a CUR 2.0 export, only
the billing period partitions (`BILLING_PERIOD=YYYY-MM`) the analysed period overlaps are read.
The function aggregates the line items a chunk of CHUNK_ROWS at a time (`aggregate_cur`) and
adds the chunks' groups up: read whole, the line items of a large fleet's month (millions; the
benchmark's one million peaked at 563-602 MiB) would not fit its 1024 MB.

Which files of a period: Data Exports writes each refresh's files under
`<export>/data/BILLING_PERIOD=YYYY-MM/` (with "create new", in a folder per execution, every
refresh kept) and then, once they are all delivered, replaces the period's manifest
`<export>/metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json`, whose `dataFiles` lists
that execution's files. A period with a manifest is read from exactly those files: every
refresh's folder would count each line item once per refresh kept, and files of a refresh still
being delivered would mix with the last complete one. A period without one (a hand-made or
legacy layout) is read from what is listed.
Every request goes through the function's boto3 client (its credentials, endpoint, retries and
region redirects).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.exceptions import (
    ObjectReadTimeoutError,
    ObjectTooLargeError,
    PagesCutShortError,
)
from fleet_shared.object_bodies import bounded_body, streamed_within
from fleet_shared.s3_listings import LISTING_CALL, listed_objects
from handlers.cost_analyzer.cur import (
    NUMBER_COLUMNS,
    READ_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT_COLUMNS,
    USAGE_START_COLUMN,
    aggregate_line_items,
    combine_aggregates,
    utc_timestamps,
)

CUR_SUFFIXES = (".parquet", ".csv", ".csv.gz")
_CSV_TYPES = {
    **dict.fromkeys(TEXT_COLUMNS, pa.string()),
    **dict.fromkeys(NUMBER_COLUMNS, pa.float64()),
}


_CSV_VALUE_ERROR = re.compile(r"CSV column #(?P<index>\d+): .*?invalid value '(?P<value>.*)'", re.S)
_ARROW_EMPTY_CSV = "Empty CSV file"
"""Arrow's error for a CSV without a line after the header (the header is read beforehand)."""
_BILLING_PERIOD = re.compile(r"(?:^|/)BILLING_PERIOD=(?P<month>\d{4}-\d{2})/")
_MANIFEST = re.compile(
    r"(?P<export>(?:.*/)?)metadata/BILLING_PERIOD=(?P<month>\d{4}-\d{2})/[^/]+-Manifest\.json"
)
"""A Data Exports manifest: the export's folder, then its billing period's metadata folder."""
VALUE_PREFIX_LENGTH = 40
"""How much of a bad value an error shows: enough to find it, never a whole hostile cell."""
CHUNK_ROWS = 1_000_000
"""The most line items aggregated at once (`aggregate_cur`; a chunk gathers Parquet batches or
CSV blocks up to it): the cost_cur benchmark reads and aggregates 1,000,000 at once within 602
MiB of peak resident size (docs/benchmarks.md), the function having 1024 MB."""
_BATCH_ROWS = 65_536
"""The line items Arrow decodes from Parquet at a time, gathered into chunks."""
MANIFEST_MAX_BYTES = 8 * 1024 * 1024
"""The largest Data Exports manifest read: its `columns` take a few kilobytes and each of its
`dataFiles` about 200 bytes, so room for some 40,000 files, where a month's export is a few
hundred; a larger object under the manifest's name is refused unread, where read whole, as
every manifest was, one of any size took the function past its memory."""


class CurFileError(ValueError):
    """A CUR file lacks a column the aggregation needs, or holds a value of the wrong type; or a
    manifest is not one, or names a file the function may not or cannot read."""


@dataclass(frozen=True)
class _Listed:
    key: str
    size: int


class S3ObjectReader(io.RawIOBase):
    """A seekable, read-only view of one S3 object: each read is one ranged GetObject of exactly
    the bytes asked for (an answer of more is refused: `ObjectTooLargeError`), all of them
    within `within_seconds` of the view's making when given (`ObjectReadTimeoutError` naming the
    object: a body that trickles, each part within the client's read timeout, is cut off)."""

    def __init__(
        self, s3: Any, bucket: str, key: str, size: int, *, within_seconds: float = math.inf
    ) -> None:
        super().__init__()
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._size = size
        self._position = 0
        self._within_seconds = within_seconds
        self._deadline = time.monotonic() + within_seconds

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._position + size)
        if end <= self._position:
            return b""
        if time.monotonic() >= self._deadline:
            raise ObjectReadTimeoutError(self._key, self._within_seconds)
        answer = self._s3.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end - 1}"
        )
        try:
            data = bounded_body(
                answer,
                self._key,
                end - self._position,
                within_seconds=self._deadline - time.monotonic(),
            )
        except ObjectReadTimeoutError as error:
            # The object's time, not what was left of it at this ranged read (none, or less
            # than none, when the answer's headers took it all).
            raise ObjectReadTimeoutError(self._key, self._within_seconds) from error
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def aggregate_cur(
    s3: Any,
    bucket: str,
    prefix: str,
    start: datetime,
    end: datetime,
    *,
    time_left: Callable[[], float] | None = None,
) -> pd.DataFrame:
    """`aggregate_line_items` of the CUR's line items from `start` to `end` (exclusive), read as
    `cur_chunks` reads them, one chunk at a time: the memory it takes is one chunk's and the
    groups', not the period's line items'."""
    return combine_aggregates(
        [
            aggregate_line_items(chunk.to_pandas(types_mapper=pd.ArrowDtype), start, end)
            for chunk in cur_chunks(s3, bucket, prefix, period=(start, end), time_left=time_left)
        ]
    )


def read_cur(
    s3: Any, bucket: str, prefix: str, *, period: tuple[datetime, datetime] | None = None
) -> pd.DataFrame:
    """Every chunk of `cur_chunks` stacked in one Arrow-backed frame (a column some files lack
    is null in those): the whole period's line items at once, for tools and tests."""
    tables = list(cur_chunks(s3, bucket, prefix, period=period))
    if not tables:
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    try:
        # A column some files lack (the tag map, or the flat tag columns) is null in those.
        stacked = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise CurFileError(f"CUR files under {prefix} differ in a column's type: {error}") from None
    return stacked.to_pandas(types_mapper=pd.ArrowDtype)


def cur_chunks(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    period: tuple[datetime, datetime] | None = None,
    time_left: Callable[[], float] | None = None,
) -> Iterator[pa.Table]:
    """The columns of `READ_COLUMNS` present in each Parquet and CSV file of the CUR under the
    prefix, in chunks of CHUNK_ROWS line items of one file, or up to one Parquet batch or CSV
    block more (`CurFileError` when a file lacks a required column). A billing period with a
    Data Exports manifest is read from the files its `dataFiles` lists, any other file from the
    listing (see the module's docstring). With `period` (start, end exclusive), a billing period
    partition (`BILLING_PERIOD=YYYY-MM`) is read only when its month overlaps the period. With
    `time_left` (the seconds the read may still take), each manifest and file is read, and
    each listing page after the first asked, only while it answers more than 0, else
    `CurFileError` says how far the read got, and a manifest's or file's bytes must come within
    the seconds it answered before its read, else `CurFileError` naming it: a month of many
    files, an endpoint answering empty page after page, or a body that trickles must not run
    the invocation past its deadline before the report is written."""
    months = _months(*period) if period is not None else None
    files = _files_to_read(s3, bucket, prefix, months, time_left)
    for position, item in enumerate(files):
        within = math.inf if time_left is None else time_left()
        if within <= 0:
            raise CurFileError(
                f"CUR read given up after {position} of {len(files)} files under "
                f"s3://{bucket}/{prefix}: too little time left in the invocation"
            )
        for table in _file_chunks(s3, bucket, item, within):
            _require_number_types(item.key, table.schema)
            index = table.schema.get_field_index(USAGE_START_COLUMN)
            # One type for the usage start, so Parquet and CSV chunks stack into one column.
            yield table.set_column(index, USAGE_START_COLUMN, _usage_starts(item.key, table))


def _usage_starts(key: str, table: pa.Table) -> pa.Array:
    """The usage start of each line item of a file as timestamp[ns, UTC]; `CurFileError` naming
    the file when the column holds no times or one is missing: a number would be taken for
    nanoseconds since 1970, and a line item without a start is in no period, its cost silently
    left out of the report."""
    values = table[USAGE_START_COLUMN].combine_chunks()
    kind = values.type
    times = pa.types.is_timestamp(kind) or pa.types.is_date(kind) or _is_text(kind)
    if not times and not pa.types.is_null(kind):
        raise CurFileError(f"CUR file {key}: {USAGE_START_COLUMN} is {kind}, not a time")
    try:
        usage_start = utc_timestamps(values)
    except ValueError as error:
        reason = str(error).split(". ", 1)[0][: VALUE_PREFIX_LENGTH + 80]
        raise CurFileError(
            f"CUR file {key}: {USAGE_START_COLUMN} is not a time: {reason}"
        ) from None
    if usage_start.null_count:
        raise CurFileError(
            f"CUR file {key}: {USAGE_START_COLUMN} is empty in {usage_start.null_count} line "
            "item(s)"
        )
    return usage_start


def _require_number_types(key: str, schema: pa.Schema) -> None:
    """`CurFileError` naming the file and the column when a cost or usage column is of a type
    that is no amount (true/false, a time): pandas would add true as 1. Text is judged value by
    value, when aggregated."""
    for column in NUMBER_COLUMNS:
        kind = schema.field(column).type
        if not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_decimal(kind)
            or pa.types.is_null(kind)
            or _is_text(kind)
        ):
            raise CurFileError(f"CUR file {key}: {column} is {kind}, not a number")


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _listed_key(item: object) -> str:
    """The key of a ListObjectsV2 `Contents` item. S3 sends it with each object, but botocore's
    parser leaves it out of an item whose page lacks it: UnreadableAnswerError naming the field
    fails the CUR section with a clear message, not a bare KeyError."""
    key = answer_field(item, LISTING_CALL, "Key")
    if not isinstance(key, str):
        raise UnreadableAnswerError(LISTING_CALL, "a text Key", key)
    return key


def _listed_size(item: object) -> int:
    """The size of a ListObjectsV2 `Contents` item, which bounds the file's ranged reads;
    UnreadableAnswerError when the item lacks it (as `_listed_key`)."""
    size = answer_field(item, LISTING_CALL, "Size")
    if not isinstance(size, int):
        raise UnreadableAnswerError(LISTING_CALL, "an integer Size", size)
    return size


def _files_to_read(
    s3: Any,
    bucket: str,
    prefix: str,
    months: frozenset[str] | None,
    time_left: Callable[[], float] | None,
) -> list[_Listed]:
    """The CUR files to read, each once: those the manifests of the wanted billing periods list,
    then the listed ones of the periods (and exports) without a manifest. A next page of the
    listing is asked, and a manifest read, only while `time_left()` answers more than 0, else
    `CurFileError`."""
    next_page_allowed = None if time_left is None else lambda: time_left() > 0
    sizes: dict[str, int] = {}
    listed_in_periods: list[str] = []
    manifests: list[str] = []
    manifested_folders: list[str] = []
    for item in _listing(s3, bucket, prefix, next_page_allowed):
        key = _listed_key(item)
        manifest = _MANIFEST.fullmatch(key)
        if manifest is not None and (months is None or manifest["month"] in months):
            manifests.append(key)
            manifested_folders.append(
                f"{manifest['export']}data/BILLING_PERIOD={manifest['month']}/"
            )
        if not key.endswith(CUR_SUFFIXES):
            continue
        sizes[key] = _listed_size(item)
        partition = _BILLING_PERIOD.search(key)
        if months is not None and partition is not None and partition["month"] not in months:
            # The export keeps every month it ever wrote: reading them all would grow the
            # run's time and memory with the export's age until Lambda killed it.
            continue
        listed_in_periods.append(key)
    chosen: dict[str, _Listed] = {}
    for manifest_key in manifests:
        for key in _manifest_data_keys(s3, bucket, prefix, manifest_key, time_left):
            if key not in sizes:
                raise CurFileError(
                    f"CUR manifest {manifest_key} lists {_short(key)}, which is not in "
                    f"s3://{bucket}/{prefix} (deleted by a refresh since?)"
                )
            chosen[key] = _Listed(key, sizes[key])
    folders = tuple(manifested_folders)
    for key in listed_in_periods:
        if not key.startswith(folders):
            chosen.setdefault(key, _Listed(key, sizes[key]))
    return list(chosen.values())


def _listing(
    s3: Any, bucket: str, prefix: str, next_page_allowed: Callable[[], bool] | None
) -> Iterator[dict[str, Any]]:
    """`listed_objects` under `prefix`; its PagesCutShortError as the `CurFileError` of the CUR
    section, naming the prefix and how many objects were listed."""
    count = 0
    try:
        for item in listed_objects(s3, bucket, prefix, next_page_allowed=next_page_allowed):
            count += 1
            yield item
    except PagesCutShortError:
        raise CurFileError(
            f"CUR listing of s3://{bucket}/{prefix} given up after {count} objects: too little "
            "time left in the invocation"
        ) from None


def _manifest_data_keys(
    s3: Any, bucket: str, prefix: str, manifest_key: str, time_left: Callable[[], float] | None
) -> list[str]:
    """The keys of the files a Data Exports manifest lists in `dataFiles`; `CurFileError` naming
    the manifest when it is not a JSON object with that list of S3 URIs of CUR files in `bucket`
    under `prefix`, or cannot be read (`_manifest_body`)."""
    body = _manifest_body(s3, bucket, manifest_key, time_left)
    try:
        manifest = json.loads(body)
    except ValueError as error:
        reason = str(error)[: VALUE_PREFIX_LENGTH + 40]
        raise CurFileError(f"CUR manifest {manifest_key} is not JSON: {reason}") from None
    except RecursionError:
        raise CurFileError(f"CUR manifest {manifest_key} is not JSON: nested too deeply") from None
    files = manifest.get("dataFiles") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        raise CurFileError(f"CUR manifest {manifest_key} lacks dataFiles, the list of its files")
    within = f"s3://{bucket}/{prefix}"
    keys = []
    for uri in files:
        if not isinstance(uri, str) or not uri.startswith(within):
            raise CurFileError(
                f"CUR manifest {manifest_key} lists {_short(uri)}, which is not a file under "
                f"{within}"
            )
        key = uri.removeprefix(f"s3://{bucket}/")
        if not key.endswith(CUR_SUFFIXES):
            raise CurFileError(
                f"CUR manifest {manifest_key} lists {_short(uri)}, which is not a Parquet or CSV "
                "file"
            )
        keys.append(key)
    return keys


def _manifest_body(
    s3: Any, bucket: str, manifest_key: str, time_left: Callable[[], float] | None
) -> bytes:
    """The bytes of a manifest, read only while `time_left()` answers more than 0 and within the
    seconds it answered (a body that trickles, each part within the client's read timeout,
    held the run until Lambda ended it), and refused past MANIFEST_MAX_BYTES: `CurFileError`
    naming the manifest otherwise."""
    within = None if time_left is None else time_left()
    if within is not None and within <= 0:
        raise CurFileError(
            f"CUR read given up before the manifest {manifest_key}: too little time left in the "
            "invocation"
        )
    answer = s3.get_object(Bucket=bucket, Key=manifest_key)
    try:
        return bounded_body(answer, manifest_key, MANIFEST_MAX_BYTES, within_seconds=within)
    except (ObjectTooLargeError, ObjectReadTimeoutError) as error:
        raise CurFileError(f"CUR manifest {error}") from None


def _short(value: object) -> str:
    """A value from a file, quoted and cut short for an error message."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:VALUE_PREFIX_LENGTH])


def _months(start: datetime, end: datetime) -> frozenset[str]:
    """The billing periods (`YYYY-MM`) from `start` to `end` (exclusive)."""
    last = end - timedelta(microseconds=1)
    months = []
    year, month = start.year, start.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return frozenset(months)


def _file_chunks(s3: Any, bucket: str, item: _Listed, within_seconds: float) -> Iterator[pa.Table]:
    """One file's columns in chunks (`_chunked`), its bytes all read within `within_seconds`;
    `CurFileError` naming the file when they are not (Parquet's ranged reads and a CSV's stream
    alike: a body that trickles held the run until Lambda ended it, with no report written), or
    are not what its name says (a truncated or foreign gzip, an empty or corrupt Parquet
    file)."""
    key = item.key
    try:
        if key.endswith(".parquet"):
            source = S3ObjectReader(s3, bucket, key, item.size, within_seconds=within_seconds)
            yield from _read_parquet(source, key)
        else:
            answer = s3.get_object(Bucket=bucket, Key=key)
            with streamed_within(answer, key, within_seconds) as body:
                yield from _read_csv(body, key)
    except (ObjectReadTimeoutError, ObjectTooLargeError) as error:
        raise CurFileError(f"CUR file {error}") from None
    except (CurFileError, BotoCoreError, ClientError):
        raise
    except (OSError, EOFError, ValueError) as error:
        # gzip's and Arrow's errors would otherwise escape the section (EOFError, OSError) and
        # fail the whole report, or name no file.
        reason = str(error).split("\n", 1)[0][: VALUE_PREFIX_LENGTH + 80]
        raise CurFileError(f"CUR file {key} cannot be read: {reason}") from None


def _read_parquet(source: S3ObjectReader, key: str) -> Iterator[pa.Table]:
    parquet = pq.ParquetFile(source, pre_buffer=True)
    present = set(parquet.schema_arrow.names)
    _require(key, present)
    columns = [column for column in READ_COLUMNS if column in present]
    yield from _chunked(parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns))


def _chunked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """`batches` gathered into tables of CHUNK_ROWS line items, or up to one batch more (the
    last one fewer): aggregated a chunk at a time, the memory taken does not grow with the
    month's line items; a chunk per batch would pay the group-by's overhead per batch."""
    gathered: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        gathered.append(batch)
        rows += batch.num_rows
        if rows >= CHUNK_ROWS:
            yield pa.Table.from_batches(gathered)
            gathered, rows = [], 0
    if rows:
        yield pa.Table.from_batches(gathered)


def _read_csv(body: Any, key: str) -> Iterator[pa.Table]:
    """The header line is read first, to select the columns the file has; text stays text (an
    account id keeps its leading zeros)."""
    source = gzip.GzipFile(fileobj=body) if key.endswith(".gz") else body
    names = next(csv.reader([source.readline().decode("utf-8-sig")]))
    present = set(names)
    _require(key, present)
    options = pa_csv.ConvertOptions(
        include_columns=[column for column in READ_COLUMNS if column in present],
        column_types={column: kind for column, kind in _CSV_TYPES.items() if column in present},
    )
    # Streamed block by block: `read_csv` would keep the whole decompressed text (a gigabyte for
    # a million line items) while it parses.
    try:
        reader = pa_csv.open_csv(
            pa.PythonFile(source, mode="r"),
            read_options=pa_csv.ReadOptions(column_names=names),
            convert_options=options,
        )
        yield from _chunked(iter(reader))
    except pa.ArrowInvalid as error:
        if str(error) == _ARROW_EMPTY_CSV:
            # Only the header line: a billing period without line items yet adds none.
            return
        raise CurFileError(_csv_value_error(key, names, error)) from None


def _csv_value_error(key: str, names: list[str], error: pa.ArrowInvalid) -> str:
    """Arrow's conversion error with the column named (Arrow numbers it) and the value cut."""
    found = _CSV_VALUE_ERROR.search(str(error))
    if found is None or int(found["index"]) >= len(names):
        return f"CUR file {key} cannot be read: {str(error)[:200]}"
    value = found["value"][:VALUE_PREFIX_LENGTH]
    column = names[int(found["index"])]
    # Arrow types the usage start from the file's first block: a later block's text fails there.
    kind = "a time" if column == USAGE_START_COLUMN else "a number"
    return f"CUR file {key}: {column} is not {kind}: {value!r}"


def _require(key: str, present: set[str]) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in present]
    if missing:
        raise CurFileError(f"CUR file {key} lacks the column(s) {', '.join(missing)}")
