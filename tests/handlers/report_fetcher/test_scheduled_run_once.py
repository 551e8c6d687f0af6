"""A scheduled run is fetched once, however many times EventBridge Scheduler delivers it.

The fetcher runs with its own SSM client (its retries and pacing), whose endpoint is one moto
does not serve: `SsmAnswers` answers it from botocore's send step with SSM's JSON for a small
dataset, counting every request that reaches it; faults are injected ahead of it, so botocore's
retries run. The state table, S3 and SNS are moto's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from catalog.functions import function_spec
from catalog.model import SCHEDULED_TIME, FixedSchedule
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.report_documents import PROCESSED_PREFIX, RAW_PREFIX, processed_key, run_id_of
from fleet_shared.timestamps import iso_z
from handlers.report_fetcher import app
from handlers.report_fetcher.environment import FetcherEnvironment
from handlers.report_fetcher.fetch import FetcherServices
from handlers.report_fetcher.run_claims import SCOPE
from tests.handlers.conftest import STATE_TABLE_NAME, FakeLambdaContext
from tests.handlers.deadlines import THREAD_REACHED_SECONDS
from tests.handlers.faults import fail_every_attempt, hold_first_attempt, refuse_completions
from tests.handlers.report_pipeline.support import (
    BUCKET,
    REGION,
    FakeSsm,
    create_bucket,
    keys_under,
    ssm_parameters,
    unreachable_url,
)

REGIONS = {
    "ap-south-1": ("Asia Pacific (Mumbai)", "aws"),
    "eu-west-1": ("Europe (Ireland)", "aws"),
}
SERVICES = {f"svc{index:02d}": (f"Service {index}", ["ap-south-1"]) for index in range(12)}
SERVICES["ec2"] = ("Amazon EC2", sorted(REGIONS))
SSM_ENDPOINT = "https://ssm.answered-in-process.invalid"
"""An endpoint moto does not serve: only `SsmAnswers` answers it, and nothing leaves the host."""


class SsmAnswers:
    """SSM's answers to GetParametersByPath and GetParameters for `FakeSsm`'s parameters, as
    botocore receives them from the wire; `calls` counts the requests that reached it."""

    def __init__(self, parameters: dict[str, str]) -> None:
        self._ssm = FakeSsm(parameters)

    @property
    def calls(self) -> int:
        return self._ssm.calls

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers["X-Amz-Target"]
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[1]
        arguments = json.loads(request.body)
        if operation == "GetParametersByPath":
            answer = self._ssm.get_parameters_by_path(**arguments)
        else:
            answer = self._ssm.get_parameters(**arguments)
        return AWSResponse(
            request.url,
            200,
            {"Content-Type": "application/x-amz-json-1.1"},
            _Body(json.dumps(answer).encode()),
        )


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


@dataclass
class Fetcher:
    """The fetcher of one container: `deliver(event)` invokes it as Scheduler does."""

    services: FetcherServices
    ssm: SsmAnswers
    deliver: Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def s3(alert_inbox: Any) -> Any:
    client = boto3.client("s3", region_name=REGION)
    create_bucket(client)
    return client


def _container(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> Fetcher:
    """The fetcher of one container, built from the variables set, SSM answered by
    `SsmAnswers`."""
    monkeypatch.setenv("REPORT_FEED_URL", unreachable_url())
    monkeypatch.setenv("REPORT_SSM_CALLS_PER_SECOND", "10000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", SSM_ENDPOINT)
    services = FetcherServices.create(
        app.FUNCTION.name, load_environment(FetcherEnvironment), clock=clock
    )
    answers = SsmAnswers(ssm_parameters(REGIONS, SERVICES))
    assert services.ssm.meta.endpoint_url == SSM_ENDPOINT
    services.ssm.meta.events.register("before-send.ssm", answers)
    monkeypatch.setattr(app.FUNCTION, "services", lambda: services)
    context = FakeLambdaContext()
    return Fetcher(services, answers, lambda event: app.lambda_handler(event, context))


@pytest.fixture
def fetcher(
    monkeypatch: pytest.MonkeyPatch,
    fake_clock: ManualClock,
    fleet_environment: dict[str, str],
    state_table: Any,
    s3: Any,
) -> Fetcher:
    """The fetcher of one container, with the state table and the data bucket in moto."""
    return _container(monkeypatch, fake_clock)


def _scheduled(run: str) -> dict[str, Any]:
    """The report-fetch schedule's payload as the catalog declares it, as Scheduler delivers a
    run scheduled for `run` (its scheduled-time attribute filled in)."""
    [schedule] = [
        trigger
        for trigger in function_spec("report_fetcher").triggers
        if isinstance(trigger, FixedSchedule)
    ]
    delivered: dict[str, Any] = json.loads(
        json.dumps(schedule.payload).replace(SCHEDULED_TIME, run)
    )
    return delivered


def _state_items(dynamodb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = dynamodb.scan(TableName=STATE_TABLE_NAME)["Items"]
    return items


@pytest.mark.parametrize("later", [timedelta(minutes=1), timedelta(hours=23)], ids=str)
def test_the_same_run_delivered_twice_is_fetched_once(
    fetcher: Fetcher, s3: Any, fake_clock: ManualClock, later: timedelta
) -> None:
    # GIVEN a scheduled run fetched once
    run = iso_z(fake_clock.now())
    first = fetcher.deliver(_scheduled(run))
    assert (first["status"], first["ssm_from_cache"]) == ("ok", False)
    calls = fetcher.ssm.calls
    assert calls == first["ssm_api_calls"] > 0
    # WHEN Scheduler delivers the same run again (at once, or on the next report day)
    fake_clock.advance(later.total_seconds())
    again = fetcher.deliver(_scheduled(run))
    # THEN the copy calls no SSM and writes nothing: it answers the first run's result
    assert fetcher.ssm.calls == calls
    assert again == {**first, "repeat": True}
    assert keys_under(s3, "raw/") == [first["key"]]


def test_a_copy_delivered_while_the_first_fetches_calls_no_ssm(
    fetcher: Fetcher, s3: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a run whose first delivery is in its first SSM call (held there)
    run = iso_z(fake_clock.now())
    held = hold_first_attempt(fetcher.services.ssm, "ssm", "GetParametersByPath")
    with ThreadPoolExecutor(max_workers=1) as pool:
        first_delivery = pool.submit(fetcher.deliver, _scheduled(run))
        try:
            assert held.entered.wait(THREAD_REACHED_SECONDS), "the first delivery made no SSM call"
            # WHEN Scheduler delivers the same run again
            copy = fetcher.deliver(_scheduled(run))
        finally:
            held.release()
        first = first_delivery.result(timeout=30)
    # THEN the copy answers that the run is in progress, having called no SSM
    assert copy == {"status": "in_progress", "run": run}
    # AND every SSM call was the first delivery's, which wrote the one raw document
    assert first["status"] == "ok"
    assert fetcher.ssm.calls == first["ssm_api_calls"]
    assert keys_under(s3, "raw/") == [first["key"]]


@pytest.mark.usefixtures("no_retry_waits")
def test_a_run_whose_fetch_failed_is_fetched_by_its_next_delivery(
    fetcher: Fetcher, s3: Any, fake_clock: ManualClock
) -> None:
    # GIVEN SSM unreachable for every attempt of its listings (botocore retries each)
    run = iso_z(fake_clock.now())
    fault = fail_every_attempt(fetcher.services.ssm, "ssm", "GetParametersByPath")
    failed = fetcher.deliver(_scheduled(run))
    assert failed["status"] == "error"
    assert fault.attempts > 1
    assert keys_under(s3, "raw/") == []
    # WHEN SSM answers again and Scheduler retries the run
    fault.healed = True
    fake_clock.advance(30)
    retry = fetcher.deliver(_scheduled(run))
    # THEN the retry fetches the run and writes its raw document
    assert (retry["status"], retry["ssm_from_cache"]) == ("ok", False)
    assert "repeat" not in retry
    assert fetcher.ssm.calls == retry["ssm_api_calls"] > 0
    assert keys_under(s3, "raw/") == [retry["key"]]


def test_the_next_run_is_fetched(fetcher: Fetcher, s3: Any, fake_clock: ManualClock) -> None:
    # GIVEN today's run fetched
    today = fetcher.deliver(_scheduled(iso_z(fake_clock.now())))
    calls = fetcher.ssm.calls
    # WHEN tomorrow's run is delivered
    fake_clock.advance(86400)
    tomorrow = fetcher.deliver(_scheduled(iso_z(fake_clock.now())))
    # THEN it is fetched: SSM read again for the new report day, a second raw document
    assert (tomorrow["status"], tomorrow["ssm_from_cache"]) == ("ok", False)
    assert "repeat" not in tomorrow
    assert fetcher.ssm.calls == 2 * calls
    assert keys_under(s3, "raw/") == sorted([today["key"], tomorrow["key"]])


@dataclass(frozen=True)
class DatedAttempt:
    """An attempt starting at `started` of the run scheduled for `run` (None: a fetch started
    by hand) in a stack scheduling in `zone`, and the report day it is filed under."""

    zone: str
    run: str | None
    started: str
    day: str


@pytest.mark.parametrize(
    "attempt",
    [
        DatedAttempt("UTC", "2025-06-01T23:50:00Z", "2025-06-02T00:10:00Z", "2025-06-01"),
        # 23:50 PDT, taken up 17 hours late: the report day is two days before the UTC start's
        DatedAttempt(
            "America/Los_Angeles", "2025-06-02T06:50:00Z", "2025-06-03T00:10:00Z", "2025-06-01"
        ),
        DatedAttempt("UTC", None, "2025-06-02T00:10:00Z", "2025-06-02"),
    ],
    ids=["retry-after-midnight", "replayed-late-west-of-utc", "by-hand"],
)
@pytest.mark.usefixtures("fleet_environment", "state_table")
def test_a_run_is_filed_under_its_scheduled_day_and_one_by_hand_under_the_clocks(
    monkeypatch: pytest.MonkeyPatch, fake_clock: ManualClock, s3: Any, attempt: DatedAttempt
) -> None:
    # GIVEN a stack scheduling in the attempt's zone, and the attempt starting
    monkeypatch.setenv("SCHEDULE_TIME_ZONE", attempt.zone)
    fake_clock.set(datetime.fromisoformat(attempt.started))
    fetcher = _container(monkeypatch, fake_clock)
    # WHEN it fetches its run
    result = fetcher.deliver(_scheduled(attempt.run) if attempt.run else {"action": "fetch"})
    # THEN its raw document is filed under the day in the zone of the time the run was scheduled
    # for (of the clock without `run`), its start the clock's time
    assert result["key"].startswith(f"raw/{attempt.day}/")
    raw = s3.get_object(Bucket=BUCKET, Key=result["key"])["Body"].read()
    metadata = json.loads(raw)["metadata"]
    assert metadata["report_day"] == attempt.day
    assert datetime.fromisoformat(metadata["started_at"]) == fake_clock.now()
    # AND the processor and the generator take its key for the run's, so they file it there too
    assert run_id_of(result["key"], RAW_PREFIX) == result["run_id"]
    processed = processed_key(result["run_id"], date.fromisoformat(attempt.day))
    assert run_id_of(processed, PROCESSED_PREFIX) == result["run_id"]


def test_a_late_retry_caches_for_its_own_day_so_the_next_days_run_reads_ssm(
    fetcher: Fetcher, s3: Any, fake_clock: ManualClock
) -> None:
    # GIVEN the run scheduled for 23:50 on June 1, fetched by an attempt starting at 00:10 on
    # June 2
    fake_clock.set(datetime(2025, 6, 2, 0, 10, tzinfo=UTC))
    late = fetcher.deliver(_scheduled("2025-06-01T23:50:00Z"))
    assert (late["status"], late["ssm_from_cache"]) == ("ok", False)
    calls = fetcher.ssm.calls
    # WHEN the run of June 2 is delivered at 23:50, within the cache's 24-hour TTL
    fake_clock.set(datetime(2025, 6, 2, 23, 50, tzinfo=UTC))
    today = fetcher.deliver(_scheduled("2025-06-02T23:50:00Z"))
    # THEN the entry the retry cached serves June 1 only: SSM is read again for June 2
    assert (today["status"], today["ssm_from_cache"]) == ("ok", False)
    assert fetcher.ssm.calls == 2 * calls
    assert [key.split("/")[1] for key in (late["key"], today["key"])] == [
        "2025-06-01",
        "2025-06-02",
    ]


@pytest.mark.parametrize(
    ("run", "problem"),
    [
        ("x" * 5000, "Input should be a valid datetime"),
        ("2025-06-02T03:00:00", "timezone"),
        ("2025-06-02T04:00:00Z", "is later than now"),
        ("2025-05-31T03:00:00Z", "is more than a day before now"),
    ],
    ids=["not-a-time", "without-zone", "in-the-future", "two-days-old"],
)
def test_a_bad_run_is_refused_naming_it_and_nothing_is_fetched(
    fetcher: Fetcher, s3: Any, dynamodb_client: Any, run: str, problem: str
) -> None:
    # GIVEN a schedule payload whose run is not one Scheduler sends now
    # WHEN it is delivered
    result = fetcher.deliver(_scheduled(run))
    # THEN one short message names `run` and says what is wrong with it
    assert result["status"] == "error"
    assert "run" in result["error"] and problem in result["error"]
    assert "x" * 200 not in result["error"]
    assert len(result["error"]) < 400
    # AND nothing is claimed, called or written
    assert _state_items(dynamodb_client) == []
    assert fetcher.ssm.calls == 0
    assert keys_under(s3, "") == []


@pytest.mark.usefixtures("no_retry_waits")
def test_a_fetched_run_whose_record_the_state_table_refused_keeps_its_claim(
    fetcher: Fetcher, s3: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a state table that refuses to record the run as fetched
    run = iso_z(fake_clock.now())
    refusal = refuse_completions(fetcher.services.hub_client("dynamodb"), SCOPE)
    # WHEN the run is fetched
    first = fetcher.deliver(_scheduled(run))
    # THEN its result stands: the raw document is written
    assert refusal.attempts > 0
    assert first["status"] == "ok"
    assert keys_under(s3, "raw/") == [first["key"]]
    # AND a copy delivered then finds the run still claimed: no SSM call, nothing written
    calls = fetcher.ssm.calls
    fake_clock.advance(10)
    copy = fetcher.deliver(_scheduled(run))
    assert copy == {"status": "in_progress", "run": run}
    assert fetcher.ssm.calls == calls
    assert keys_under(s3, "raw/") == [first["key"]]


def test_a_fetch_started_by_hand_without_run_claims_nothing_and_fetches_each_time(
    fetcher: Fetcher, s3: Any, dynamodb_client: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a fetch started by hand (no `run`)
    first = fetcher.deliver({"action": "fetch"})
    # WHEN it is started again
    fake_clock.advance(60)
    second = fetcher.deliver({"action": "fetch"})
    # THEN each writes its raw document (the second from the cache), as before runs were claimed
    assert (first["status"], second["status"]) == ("ok", "ok")
    assert second["ssm_from_cache"] is True
    assert keys_under(s3, "raw/") == sorted([first["key"], second["key"]])
    # AND nothing is written to the state table
    assert _state_items(dynamodb_client) == []


def test_a_scheduled_run_without_a_state_table_fails_the_invocation_naming_it(
    monkeypatch: pytest.MonkeyPatch,
    fake_clock: ManualClock,
    fleet_environment: dict[str, str],
    s3: Any,
) -> None:
    # GIVEN a deployment without STATE_TABLE_NAME, where runs cannot be claimed
    monkeypatch.delenv("STATE_TABLE_NAME")
    fetcher = _container(monkeypatch, fake_clock)
    # WHEN a scheduled run is delivered
    with pytest.raises(ConfigurationError) as raised:
        fetcher.deliver(_scheduled(iso_z(fake_clock.now())))
    # THEN the invocation fails naming the variable (the event is kept for a retry), having
    # called no SSM and written nothing
    assert "STATE_TABLE_NAME" in str(raised.value)
    assert fetcher.ssm.calls == 0
    assert keys_under(s3, "") == []
