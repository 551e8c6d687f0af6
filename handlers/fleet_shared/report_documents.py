"""The documents the report pipeline passes through the data bucket, and where they live.

report_fetcher writes a raw document, report_processor reads it and writes a processed
document, report_generator reads that and writes the reports. Three functions in three
archives: the models live here, in the shared layer, so the writer and the reader of each
document validate against the same definition and cannot drift apart.

Keys (the day is the report day: the date in the stack's schedule time zone of the time the run
was scheduled for, or of the fetch's start for a fetch started by hand, `RawMetadata.report_day`;
the run id is the fetch's and is kept through the whole chain, so every artefact of one run is
found by its run id)::

    raw/<yyyy-mm-dd>/<run-id>.json               written by report_fetcher
    raw/rejected/<yyyy-mm-dd>/<run-id>.json      rejected raw documents (+ `.reason.json`)
    processed/<yyyy-mm-dd>/<run-id>.json         written by report_processor
    reports/<yyyy-mm-dd>/<run-id>/...            written by report_generator, `_manifest.json` last
    reports/latest/...                           a copy of the newest complete run
    cache/...                                    report_fetcher's source cache

Run ids are `<yyyymmddThhmmssZ>-<8 hex>` (the UTC start): they sort in time order, so "the
previous run" is the greatest run id before one's own. The report day does not always: after the
stack's schedule time zone changed, a later run can be dated a day before an earlier one, so the
key order under `processed/` is not the run order.

The processed document's models are in `fleet_shared.processed_documents`, so report_fetcher,
which writes only the raw document, does not build them at cold start.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleet_shared.utc_times import UtcTime
from fleet_shared.validation_errors import shown_value

SCHEMA_VERSION = 1

RAW_PREFIX = "raw/"
REJECTED_PREFIX = "raw/rejected/"
PROCESSED_PREFIX = "processed/"
REPORTS_PREFIX = "reports/"
REPORTS_LATEST_PREFIX = "reports/latest/"
CACHE_PREFIX = "cache/"
MANIFEST_NAME = "_manifest.json"

RAW_DOCUMENT_BYTES_MAX = 32 * 1024 * 1024
"""The largest raw document report_processor reads; a larger one is rejected unread. The
fetcher's document of AWS's regions and services (moto's copy of them) is about 250 kB, and one
of the largest matrix a report may have (`MATRIX_CELLS_MAX`) about 9 MB. What processing one
takes depends on its objects more than its bytes: 30 MB of long names took about 160 MiB above
the function's own, while one just under this bound of 500,000 services (the most a report has)
beside a previous run just under `PROCESSED_DOCUMENT_BYTES_MAX` peaked at 3,095 MiB, which the
function's memory in the catalog holds (the benchmark `report_pipeline`)."""

RUN_ID_PATTERN = r"\d{8}T\d{6}Z-[0-9a-f]{8}"
REPORT_DAY_SPREAD = timedelta(days=2)
"""How far a run's report day can be from the UTC day of its start (see `run_id_of`)."""
_RUN_KEY = re.compile(rf"(?P<day>\d{{4}}-\d{{2}}-\d{{2}})/(?P<run_id>{RUN_ID_PATTERN})\.json")


def new_run_id(started_at: datetime, suffix: str) -> str:
    """`<yyyymmddThhmmssZ>-<suffix>` for a run started at `started_at` (UTC); `suffix` is 8 hex."""
    run_id = f"{started_at.strftime('%Y%m%dT%H%M%SZ')}-{suffix}"
    if not re.fullmatch(RUN_ID_PATTERN, run_id):
        raise ValueError(f"run id suffix must be 8 lower-case hex digits, got {suffix!r}")
    return run_id


def run_day(run_id: str) -> date:
    """The UTC day encoded in a run id."""
    return datetime.strptime(run_id[:8], "%Y%m%d").date()


def raw_key(run_id: str, report_day: date) -> str:
    """`raw/<yyyy-mm-dd>/<run-id>.json`."""
    return f"{RAW_PREFIX}{report_day.isoformat()}/{run_id}.json"


def processed_key(run_id: str, report_day: date) -> str:
    """`processed/<yyyy-mm-dd>/<run-id>.json`."""
    return f"{PROCESSED_PREFIX}{report_day.isoformat()}/{run_id}.json"


def report_prefix(run_id: str, report_day: date) -> str:
    """`reports/<yyyy-mm-dd>/<run-id>/`."""
    return f"{REPORTS_PREFIX}{report_day.isoformat()}/{run_id}/"


def run_id_of(key: str, prefix: str) -> str | None:
    """The run id of `<prefix><yyyy-mm-dd>/<run-id>.json`, or None for any other key.

    The report day is within two days of the UTC day the run started (its run id's): the
    scheduled time's date in the schedule time zone is a day either side of its UTC date, and a
    scheduled run is taken up to a day late (`scheduled_runs.RUN_MAX_AGE`). A key whose day or
    run id only has the digits of a date (`20250631T...`, put there by hand) is another key: its
    date cannot be read, and no run started then."""
    if not key.startswith(prefix):
        return None
    match = _RUN_KEY.fullmatch(key[len(prefix) :])
    if match is None:
        return None
    try:
        day = date.fromisoformat(match["day"])
        started = run_day(match["run_id"])
    except ValueError:
        return None
    if abs(day - started) > REPORT_DAY_SPREAD:
        return None
    return match["run_id"]


def _repeated(codes: list[str]) -> set[str]:
    """The codes listed more than once in `codes`, found in one pass: counting each code's
    occurrences, a pass per code, kept the processor past its timeout on a document of a few MB,
    which was then never rejected."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for code in codes:
        if code in seen:
            repeated.add(code)
        seen.add(code)
    return repeated


class ReportDocument(BaseModel):
    """The base of the pipeline's documents: frozen, unknown fields refused, built on first use.

    A number must be finite: pydantic reads `NaN` and `Infinity` from JSON, which would go on
    into report.json, where no strict JSON reader takes them."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid", allow_inf_nan=False)


# Raw document (report_fetcher -> report_processor) --------------------------------------------


class RawRegion(ReportDocument):
    """One region as the SSM public parameters describe it; `launch_date` comes from the feed."""

    code: str = Field(min_length=1)
    long_name: str | None = None
    partition: str | None = None
    geolocation_country: str | None = None
    geolocation_region: str | None = None
    availability_zones: list[str] = Field(default_factory=list)
    launch_date: date | None = None


class RawService(ReportDocument):
    """One service with the regions it is offered in."""

    code: str = Field(min_length=1)
    long_name: str | None = None
    marketing_url: str | None = None
    regions: list[str] = Field(default_factory=list)


class SsmSource(ReportDocument):
    """Where the region and service data came from and whether the cache served it."""

    parameter_root: str
    region: str
    fetched_at: UtcTime
    fingerprint: str
    from_cache: bool
    api_calls: int = Field(ge=0)


class FeedSource(ReportDocument):
    """The launch-date feed: `status` says whether it was fetched, unchanged, cached or down."""

    url: str
    status: Literal["fetched", "not_modified", "cached", "unreachable"]
    fetched_at: UtcTime | None = None
    fingerprint: str | None = Field(
        default=None,
        description="sha256 of the feed's dated items as cached; None when unreachable (and in "
        "documents written before the feed carried one).",
    )
    items: int = Field(ge=0)


class RawCounts(ReportDocument):
    """Headline counts, checked against the lists when the document is validated."""

    regions: int = Field(ge=0)
    services: int = Field(ge=0)
    pairs: int = Field(ge=0)
    launch_dates: int = Field(ge=0)


class RawMetadata(ReportDocument):
    """Run id, timing, counts, sources and the warnings of one fetch."""

    run_id: str = Field(pattern=f"^{RUN_ID_PATTERN}$")
    report_day: date | None = Field(
        default=None,
        description="The date in the schedule time zone of the time the run was scheduled "
        "for (of the fetch's start for a fetch started by hand); documents written before it "
        "existed are dated by the run's UTC day.",
    )
    started_at: UtcTime
    finished_at: UtcTime
    counts: RawCounts
    ssm: SsmSource
    feed: FeedSource
    warnings: list[str] = Field(default_factory=list)

    @property
    def dated(self) -> date:
        """The day the run's keys carry: `report_day`, else the run's UTC day."""
        return self.report_day or run_day(self.run_id)


class RawDocument(ReportDocument):
    """What report_fetcher writes to `raw/`; report_processor rejects anything else."""

    schema_version: Literal[1]
    metadata: RawMetadata
    regions: list[RawRegion] = Field(min_length=1)
    services: list[RawService] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RawDocument:
        metadata = self.metadata
        if metadata.finished_at < metadata.started_at:
            raise ValueError("metadata.finished_at is before metadata.started_at")
        for kind, codes in (
            ("region", [region.code for region in self.regions]),
            ("service", [service.code for service in self.services]),
        ):
            duplicates = sorted(_repeated(codes))
            if duplicates:
                shown = ", ".join(shown_value(code) for code in duplicates[:5])
                raise ValueError(f"duplicate {kind} codes: {shown}")
        # A pair listed twice would be counted twice in the pairs total, once in the matrix.
        for service in self.services:
            repeated = _repeated(service.regions)
            if repeated:
                twice = next(region for region in service.regions if region in repeated)
                raise ValueError(
                    f"service {shown_value(service.code)} lists region {shown_value(twice)} "
                    "more than once"
                )
        actual = RawCounts(
            regions=len(self.regions),
            services=len(self.services),
            pairs=sum(len(service.regions) for service in self.services),
            launch_dates=sum(region.launch_date is not None for region in self.regions),
        )
        if actual != metadata.counts:
            raise ValueError(
                f"metadata.counts {metadata.counts.model_dump()} do not match the document "
                f"{actual.model_dump()}"
            )
        return self
