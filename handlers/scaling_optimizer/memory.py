"""Lambda memory: the cost analyzer's latest rightsizing, as `memory_mb` lines of the stack file.

The cost analyzer writes `reports/cost/<date>/detail.json` daily (its UTC date, ISO format, which
sorts in time order); the newest is looked for among those of the last RECENT_DETAIL_DAYS days
first, and the whole prefix listed only when none is there. Its `lambda_memory` entries
name deployed functions. Each entry for one of this stack's functions (by the inventory's exact
names: `lf-dev-eu-...` is stack `dev-eu`'s, not a function `eu-...` of stack `dev`) that
recommends a decrease or an increase becomes `lambda-fleet:functions.<name>.memory_mb`, which the
program uses instead of the catalog's default; never below the function's minimum in the inventory
(the catalog's, what it needs at its input bounds, which the program refuses to go below): a
decrease past it recommends the minimum, or nothing when the function has no more. A detail that
is not a JSON object with a list of entries, or an entry that does not validate (a size outside
what the stack file accepts, say), is left out and named in the notes: the patch must still pass
the program's validation. So is a detail larger than DETAIL_MAX_BYTES (refused unread) or holding
more than DETAIL_MAX_VALUES JSON values (refused unparsed): read whole, a huge or hostile detail
took the function past its memory, and Lambda ended the run with no recommendations written. Its
bytes are read only within the invocation's time left but for the writes (`latest_cost_detail`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleet_shared.inventory import FleetInventory
from fleet_shared.object_bodies import bounded_body
from fleet_shared.performance_documents import StackFileChange
from fleet_shared.s3_listings import listed_objects
from fleet_shared.validation_errors import cut_echo, first_error
from handlers.scaling_optimizer.document_bounds import json_values_bound

COST_REPORTS_PREFIX = "reports/cost/"
DETAIL_NAME = "detail.json"
FUNCTIONS_KEY = "lambda-fleet:functions"
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
"""The Lambda memory sizes the stack file's `memory_mb` accepts."""
CHANGING = frozenset({"decrease", "increase"})
DETAIL_MAX_BYTES = 32 * 1024 * 1024
"""The largest cost detail read. The cost analyzer's detail is mostly its daily costs: at most 90
days (`COST_LOOKBACK_DAYS`) of each service, account and cluster. One of 90 days of 300
services, 1,000 accounts and 200 clusters, with 1,000 top resources and 300 functions, is 20 MB
(`json.dumps` with indent 2, as written); the dev stack's demo writes 31 kB."""
DETAIL_MAX_VALUES = 1_500_000
"""The most JSON values a cost detail read may hold. Parsing takes memory per value, not per
byte: that 20 MB detail holds 680,000 values and took 43 MiB to parse, where 3 MB of nested
empty lists (1.5 million values) took 245 MiB, and 32 MB of them more than 2 GiB, past the
function's 512 MB."""
ENTRIES_NAMED = 10
"""The entries of a detail left out that the notes name one by one; the others are counted: a
detail of a million bad entries made notes of a hundred MB, past the 6 MB a Lambda result may
have, and the run failed."""
RECENT_DETAIL_DAYS = 14
"""How many days back the newest cost detail is looked for first. The cost analyzer writes one
a day, so the newest is within days; listing from there keeps the listing to a page, where the
whole prefix (two keys a day) grows by a page every 500 days, for ever."""


class CostDetail(BaseModel):
    """The part of the cost analyzer's detail the optimizer reads; entries are validated one by
    one (`MemoryRightsizing`), so one bad entry leaves out only itself."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    lambda_memory: list[Any] | None = None


class MemoryRightsizing(BaseModel):
    """One function's rightsizing that recommends a change."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    function: str
    current_mb: int
    recommended_mb: int = Field(ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)
    max_used_mb: int
    invocations: int
    monthly_saving_usd: float


def latest_cost_detail(
    s3: Any,
    bucket: str,
    now: datetime,
    *,
    next_page_allowed: Callable[[], bool],
    body_seconds: Callable[[], float],
) -> tuple[str, bytes] | None:
    """The key and body of the newest cost detail, if any was written: listed from the detail
    of RECENT_DETAIL_DAYS days before `now` on, and, only when none is there (a cost analyzer
    stopped for longer), from the start of the prefix. Raises ObjectTooLargeError for a detail
    over DETAIL_MAX_BYTES, and ObjectReadTimeoutError for one whose bytes have not all come
    within `body_seconds()`, asked once its GetObject answered (the invocation's time left
    but for the writes: a body that trickles held the run until Lambda ended it, with no
    recommendations written). Each next page of the listings is asked only while
    `next_page_allowed()`, else PagesCutShortError."""
    recent = (now.astimezone(UTC) - timedelta(days=RECENT_DETAIL_DAYS)).date()
    # A day's keys go on with `/`, so they sort after its bare prefix: that day's are listed.
    key = _newest_detail_key(
        s3, bucket, f"{COST_REPORTS_PREFIX}{recent.isoformat()}", next_page_allowed
    )
    if key is None:
        key = _newest_detail_key(s3, bucket, None, next_page_allowed)
    if key is None:
        return None
    answer = s3.get_object(Bucket=bucket, Key=key)
    return key, bounded_body(answer, key, DETAIL_MAX_BYTES, within_seconds=body_seconds())


def _newest_detail_key(
    s3: Any, bucket: str, start_after: str | None, next_page_allowed: Callable[[], bool]
) -> str | None:
    listing = listed_objects(
        s3,
        bucket,
        COST_REPORTS_PREFIX,
        start_after=start_after,
        next_page_allowed=next_page_allowed,
    )
    keys = [item["Key"] for item in listing if item["Key"].endswith(f"/{DETAIL_NAME}")]
    return max(keys, default=None)


def memory_changes(
    body: bytes, source_key: str, inventory: FleetInventory
) -> tuple[list[StackFileChange], list[str]]:
    """One change per function of the stack whose memory the cost analyzer would change, and a
    note per part of the detail left out because it does not validate."""
    values = json_values_bound(body)
    if values > DETAIL_MAX_VALUES:
        return [], [
            f"{cut_echo(source_key)}: about {values:,} JSON values, more than the "
            f"{DETAIL_MAX_VALUES:,} a cost detail may have; no memory recommended"
        ]
    try:
        detail = CostDetail.model_validate_json(body)
    except ValidationError as error:
        field, problem = first_error(error, root="document")
        return [], [f"{source_key}: not a cost detail ({field}: {problem}); no memory recommended"]
    changes: list[StackFileChange] = []
    notes: list[str] = []
    unnamed = 0
    for index, raw in enumerate(detail.lambda_memory or []):
        if not isinstance(raw, dict) or raw.get("recommendation") not in CHANGING:
            continue
        try:
            entry = MemoryRightsizing.model_validate(raw)
        except ValidationError as error:
            if len(notes) == ENTRIES_NAMED:
                unnamed += 1
                continue
            field, problem = first_error(error, root="entry")
            notes.append(f"{source_key}: lambda_memory[{index}].{field}: {problem}; left out")
            continue
        name = inventory.function_named(entry.function)
        if name is None:
            continue
        evidence = (
            f"{source_key}: at most {entry.max_used_mb} MB used in {entry.invocations} "
            f"invocations; max x 1.3 rounded up to 64 MB; monthly saving "
            f"{entry.monthly_saving_usd} USD"
        )
        recommended = entry.recommended_mb
        minimum = inventory.minimum_memory_mb.get(name, MIN_MEMORY_MB)
        if recommended < minimum:
            # The invocations measured were not at the function's input bounds; one that is
            # would end for lack of memory.
            if entry.current_mb <= minimum:
                notes.append(
                    f"{source_key}: {name}'s {recommended} MB is below its minimum of {minimum} "
                    "MB, what it needs at its input bounds; no memory recommended for it"
                )
                continue
            recommended = minimum
            evidence = (
                f"{evidence} (for {entry.recommended_mb} MB); {name}'s minimum, what it needs "
                "at its input bounds"
            )
        changes.append(
            StackFileChange(
                path=[FUNCTIONS_KEY, name, "memory_mb"],
                current=entry.current_mb,
                recommended=recommended,
                evidence=evidence,
            )
        )
    if unnamed:
        notes.append(f"{source_key}: {unnamed} more lambda_memory entries left out")
    return sorted(changes, key=lambda change: change.dotted()), notes
