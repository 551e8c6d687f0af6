"""A scheduled run is fetched once: its claim in the state table, keyed by the run.

EventBridge Scheduler delivers at least once: one run can reach the function twice at about the
same time, or again after an error. Each delivery carries the run's scheduled time (`run`), so
the first claims `IDEMPOTENCY#report_fetcher` / `<run>` and fetches; a copy arriving while it
fetches is answered `in_progress` and one arriving after it finished gets the first run's result
(`repeat: true`): neither calls SSM nor writes a raw document, which would start the processor
and the generator a second time. A run that failed (SSM unreadable, out of time) releases its
claim, so the next delivery of it fetches; the claim of an invocation Lambda ended at its
timeout frees by then (the claim never outlasts its invocation).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.exceptions import RequestInProgressError
from fleet_shared.handler import Invocation
from fleet_shared.scheduled_runs import RUN_MAX_AGE, accepted_run
from fleet_shared.target_results import IN_PROGRESS
from fleet_shared.timestamps import iso_z
from handlers.report_fetcher.fetch import FetcherServices

SCOPE = "report_fetcher"
RUN_RECORD_TTL_SECONDS = int(2 * RUN_MAX_AGE.total_seconds())
"""How long a fetched run's record answers its repeats: longer than the oldest `run` accepted
(RUN_MAX_AGE), so every delivery of a run the function takes still finds the record."""


def fetch_run_once(
    services: FetcherServices,
    run: datetime,
    invocation: Invocation,
    fetch: Callable[[], dict[str, Any]],
    logger: Any,
) -> dict[str, Any]:
    """`fetch()`'s result for the scheduled run `run`, fetched at most once.

    Raises EventValidationError naming `run` for one later than now or more than a day old
    (before any claim or call). A repeat of a fetched run answers the stored result with
    `repeat: true`, one of a run being fetched `{"status": "in_progress", "run"}`. A result
    other than `ok` releases the claim. A fetch whose completion the state table refused still
    answers its result (its raw document is written): the claim is then kept until it expires
    with the invocation, where a released one would let a copy fetch again at once.
    """
    run_id = iso_z(accepted_run(run, services.clock.now()))
    try:
        with services.state.idempotent(
            SCOPE, run_id, RUN_RECORD_TTL_SECONDS, deadline=invocation
        ) as claim:
            if claim.is_repeat and claim.result is not None:
                logger.info(
                    "run already fetched",
                    extra={"run": run_id, "key": claim.result.get("key")},
                )
                return {**claim.result, "repeat": True}
            result = fetch()
            if result.get("status") != "ok":
                return result
            try:
                claim.complete(result)
            except (ClientError, BotoCoreError, RequestInProgressError) as error:
                claim.hold()
                logger.warning(
                    "run fetched but its claim not completed",
                    extra={"run": run_id, "key": result.get("key"), "error": str(error)},
                )
            return result
    except RequestInProgressError:
        logger.info("run being fetched by another invocation", extra={"run": run_id})
        return {"status": IN_PROGRESS, "run": run_id}
