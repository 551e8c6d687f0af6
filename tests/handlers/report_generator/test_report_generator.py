"""report_generator on small processed runs: no partial report on failure, latest/ only moves
forward, ignored keys. (Workbook and CSV contents are checked on the full dataset in
tests/handlers/report_pipeline.)"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from openpyxl import load_workbook

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import LockNotAcquiredError, ObjectsToRetryError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.processed_documents import ProcessedDocument
from fleet_shared.s3_events import OUTCOME_SECONDS, CreatedObject
from fleet_shared.state_table import StateTable
from handlers.report_generator import app as generator
from handlers.report_generator import generate as generate_module
from handlers.report_generator import publish as publish_module
from handlers.report_generator.environment import GeneratorEnvironment
from handlers.report_generator.generate import generate_report
from handlers.report_generator.publish import MANIFEST_BYTES_MAX
from handlers.report_generator.workbook import render_workbook
from handlers.report_processor import app as processor
from handlers.report_processor.environment import ProcessorEnvironment
from tests.handlers.deadlines import THREAD_REACHED_SECONDS, ContextRunningOutOfTime, LambdaTime
from tests.handlers.endless_listings import EndlessListing
from tests.handlers.faults import (
    InjectedHang,
    InvocationKilledError,
    answer_malformed,
    fail_after_applying_then_refuse,
    lose_first_answer,
)
from tests.handlers.report_pipeline.support import (
    BUCKET,
    REGION,
    CopyIntoHang,
    create_bucket,
    event_for,
    hang_completion_record,
    hang_first_copy_into,
    keys_under,
    put_json,
    raw_document,
    s3_event,
)
from tests.handlers.trickling_objects import trickling_get_object

OLD_RUN = "20250601T050000Z-00000001"
NEW_RUN = "20250602T050000Z-00000002"
MIDDLE_RUN = "20250601T120000Z-00000003"
REGIONS = {"ap-south-1": ("Asia Pacific (Mumbai)", "aws"), "eu-west-1": ("Europe (Ireland)", "aws")}
SERVICES = {
    "ec2": ("Amazon EC2", ["ap-south-1", "eu-west-1"]),
    "eks": ("Amazon EKS", ["eu-west-1"]),
}

Invoke = Callable[[object], dict[str, Any]]
ProcessRun = Callable[[str], str]


class FailingCopy:
    """A hook on an S3 client that fails its n-th CopyObject, as a throttled or interrupted copy
    would."""

    def __init__(self, fail_at: int) -> None:
        self._fail_at = fail_at
        self.copies = 0

    def __call__(self, **_: Any) -> None:
        self.copies += 1
        if self.copies == self._fail_at:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "CopyObject")


def fail_the_third_copy(services: Any) -> None:
    """Make the third CopyObject of `services`' S3 client fail, as a throttled copy would."""
    services.hub_client("s3").meta.events.register(
        "before-call.s3.CopyObject", FailingCopy(fail_at=3)
    )


@contextmanager
def killed_while_hung(hang: InjectedHang, generate: Invoke, event: object) -> Iterator[None]:
    """The generator invoked with `event` in another thread until it hangs at `hang`; the block
    runs meanwhile (Lambda's retry), then Lambda kills the hung invocation."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(generate, event)
        assert hang.entered.wait(THREAD_REACHED_SECONDS)
        try:
            yield
        finally:
            hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)


def manifest_of(s3: Any, prefix: str) -> dict[str, Any]:
    """The manifest of the report under `prefix`."""
    return dict(
        json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}_manifest.json")["Body"].read())
    )


def reprocess(s3: Any, key: str) -> dict[str, Any]:
    """Write a second version of the processed document at `key` (processed again ten minutes
    later) and return that write's event."""
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    document["metadata"]["processed_at"] = "2025-06-01T05:10:00Z"
    return put_json(s3, key, document)


def reprocessed_into_one_notification(s3: Any, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The processed document at `key` written again (`reprocess`), and one notification with
    both versions' records, the first version's first; that and the second write's event."""
    first_version = event_for(s3, BUCKET, key)
    second_version = reprocess(s3, key)
    return {"Records": first_version["Records"] + second_version["Records"]}, second_version


@pytest.fixture
def s3(alert_inbox: Any) -> Any:
    client = boto3.client("s3", region_name=REGION)
    create_bucket(client)
    return client


@pytest.fixture
def generator_services(fake_clock: ManualClock, fleet_environment: dict[str, str]) -> Any:
    """The generator's services on the manual clock, built once as in one container."""
    return FunctionServices.create(
        generator.FUNCTION.name, load_environment(GeneratorEnvironment), clock=fake_clock
    )


@pytest.fixture
def generate(
    generator_services: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> Invoke:
    """Invoke the generator with `generator_services`."""
    monkeypatch.setattr(generator.FUNCTION, "services", lambda: generator_services)
    return lambda event: generator.lambda_handler(event, lambda_context)


@pytest.fixture
def process_raw(
    s3: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str, dict[str, Any]], str]:
    """`process_raw(key, document)`: write the raw document at `key`, process it (the processor
    on the manual clock), return the processed key."""
    services = FunctionServices.create(
        processor.FUNCTION.name, load_environment(ProcessorEnvironment), clock=fake_clock
    )
    monkeypatch.setattr(processor.FUNCTION, "services", lambda: services)

    def process_raw(key: str, document: dict[str, Any]) -> str:
        event = put_json(s3, key, document)
        return str(processor.lambda_handler(event, lambda_context)["objects"][0]["processed_key"])

    return process_raw


@pytest.fixture
def process_run(process_raw: Callable[[str, dict[str, Any]], str]) -> ProcessRun:
    """`process_run(run_id)`: write a raw document of the run, process it, return the
    processed key."""

    def process_run(run: str) -> str:
        started = datetime.strptime(run[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        document = raw_document(run, REGIONS, SERVICES, started_at=started)
        return process_raw(f"raw/{started:%Y-%m-%d}/{run}.json", document)

    return process_run


def test_a_failure_half_way_leaves_no_trusted_report_and_a_retry_completes(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun, alert_inbox: Any
) -> None:
    # GIVEN a processed run and an S3 client whose third copy into place fails
    key = process_run(OLD_RUN)
    alert_inbox.receive()
    event = event_for(s3, BUCKET, key)
    fail_the_third_copy(generator_services)
    # WHEN the generator runs
    # THEN the invocation fails naming the error (so Lambda retries the event), no manifest
    # exists, temporary files are gone, no alert was sent
    with pytest.raises(ObjectsToRetryError, match="SlowDown"):
        generate(event)
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    assert not any(key.endswith("_manifest.json") for key in keys_under(s3, "reports/"))
    assert len(keys_under(s3, prefix)) == 2  # two files copied before the failure, untrusted
    assert keys_under(s3, "tmp/") == []
    assert alert_inbox.receive() == []
    # WHEN the event is retried (the copy works now) THEN the report completes, manifest last
    retried = generate(event)
    assert retried["objects"][0]["status"] == "generated"
    manifest = manifest_of(s3, prefix)
    assert sorted(entry["key"] for entry in manifest["files"]) == [
        key for key in keys_under(s3, prefix) if not key.endswith("_manifest.json")
    ]


@pytest.mark.usefixtures("no_retry_waits")
def test_an_upload_s3_stored_then_answered_with_an_error_leaves_no_temporary_object(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN a processed run, and S3 storing the report's first upload under tmp/ and then
    # answering it with 500 InternalError, and botocore's retry with a refusal (HTTP 400)
    event = event_for(s3, BUCKET, process_run(OLD_RUN))
    fault = fail_after_applying_then_refuse(
        generator_services.hub_client("s3"), "s3", "PutObject", "InternalError", "AccessDenied"
    )
    # WHEN the generator runs
    # THEN the report fails, and the object S3 stored is deleted with the temporary files:
    # nothing is left under tmp/ or reports/
    assert generate(event)["objects"][0]["status"] == "error"
    assert (fault.applied, fault.refused) == (1, 1)
    assert keys_under(s3, "tmp/") == []
    assert keys_under(s3, "reports/") == []


def test_a_copy_into_place_answered_with_a_proxys_page_publishes_no_manifest(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun, alert_inbox: Any
) -> None:
    # GIVEN a processed run, and S3 answering the copies into place with a proxy's well-formed
    # page (HTTP 200), which botocore would parse into a copy made: the copy may not have been
    # made
    key = process_run(OLD_RUN)
    alert_inbox.receive()
    event = event_for(s3, BUCKET, key)
    client = generator_services.hub_client("s3")
    page = answer_malformed(client, "s3", "CopyObject", b"<html>gateway</html>")
    # WHEN the generator runs
    # THEN the invocation fails naming the answer, for Lambda to retry the event: no manifest
    # vouches for files whose copy is unconfirmed, temporary files are gone, no alert was sent
    with pytest.raises(ObjectsToRetryError, match="CopyObject answered without <CopyObjectResult>"):
        generate(event)
    assert page.answered == 1
    assert not any(key.endswith("_manifest.json") for key in keys_under(s3, "reports/"))
    assert keys_under(s3, "tmp/") == []
    assert alert_inbox.receive() == []
    # AND WHEN Lambda retries the event with S3 answering the copies itself
    client.meta.events.unregister("before-send.s3.CopyObject", page)
    retried = generate(event)["objects"][0]
    # THEN the report is published, its manifest matching its files
    assert retried["status"] == "generated"
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    assert sorted(entry["key"] for entry in manifest_of(s3, prefix)["files"]) == [
        listed for listed in keys_under(s3, prefix) if not listed.endswith("_manifest.json")
    ]


def test_a_run_generated_again_never_shows_a_manifest_that_does_not_match_its_files(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN a run whose report is complete, and its processed document written again (a
    # reprocessing: processed at a later time, so a new ETag and a different report.json)
    key = process_run(OLD_RUN)
    generate(event_for(s3, BUCKET, key))
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    document["metadata"]["processed_at"] = "2025-06-08T05:00:00Z"
    event = put_json(s3, key, document)
    # WHEN the report is generated again and its third copy into place fails
    fail_the_third_copy(generator_services)
    with pytest.raises(ObjectsToRetryError, match="SlowDown"):
        generate(event)
    # THEN the run does not keep a manifest whose sizes and hashes name files that have since
    # been replaced: a manifest that exists still describes the files next to it
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    if f"{prefix}_manifest.json" in keys_under(s3, prefix):
        manifest = manifest_of(s3, prefix)
        for entry in manifest["files"]:
            body = s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["name"]


def test_latest_only_moves_forward(s3: Any, generate: Invoke, process_run: ProcessRun) -> None:
    # GIVEN the newer run's report generated first
    new_key = process_run(NEW_RUN)
    assert generate(event_for(s3, BUCKET, new_key))["objects"][0]["latest_updated"]
    # WHEN an older run's report is generated afterwards
    old_key = process_run(OLD_RUN)
    result = generate(event_for(s3, BUCKET, old_key))["objects"][0]
    # THEN it gets its own report but latest/ keeps the newer run
    assert result["status"] == "generated"
    assert result["latest_updated"] is False
    latest = manifest_of(s3, "reports/latest/")
    assert latest["run_id"] == NEW_RUN
    assert f"reports/2025-06-01/{OLD_RUN}/_manifest.json" in keys_under(s3, "reports/")


@pytest.mark.parametrize(
    "manifest",
    [
        b"<html>gateway</html>",
        b"[]",
        b'{"files": []}',
        b'{"run_id": 99999999}',
        b'{"run_id": "99991231T235959Z-ffffffff"}',
    ],
    ids=["not json", "a list", "no run id", "a run id that is no run's", "a later id no run has"],
)
def test_a_latest_manifest_that_cannot_be_read_is_replaced_by_the_newest_run(
    s3: Any, generate: Invoke, process_run: ProcessRun, manifest: bytes
) -> None:
    # GIVEN the older run's report in latest/, whose manifest was then overwritten with what
    # names no run (by hand, or by a tool that is not the generator)
    generate(event_for(s3, BUCKET, process_run(OLD_RUN)))
    s3.put_object(Bucket=BUCKET, Key="reports/latest/_manifest.json", Body=manifest)
    # WHEN the newer run's report is generated
    result = generate(event_for(s3, BUCKET, process_run(NEW_RUN)))["objects"][0]
    # THEN the unreadable manifest counts as none: the newest complete run, this one, takes
    # latest/, instead of every later report failing on it
    assert (result["status"], result["latest_updated"]) == ("generated", True)
    assert manifest_of(s3, "reports/latest/")["run_id"] == NEW_RUN


def test_a_latest_manifest_over_the_size_limit_is_not_read(s3: Any) -> None:
    # GIVEN a manifest in latest/ naming a run, padded past the size a manifest may have
    manifest = f'{{"run_id": "{NEW_RUN}"}}'.encode()
    s3.put_object(
        Bucket=BUCKET,
        Key="reports/latest/_manifest.json",
        Body=manifest + b" " * (MANIFEST_BYTES_MAX - len(manifest) + 1),
    )
    # WHEN the run latest/ names is read THEN it names none: the manifest is not read, and the
    # newest complete run decides, as for a manifest that cannot be read
    assert publish_module.latest_run_id(s3, BUCKET) is None
    # AND one within the size limit is read
    s3.put_object(Bucket=BUCKET, Key="reports/latest/_manifest.json", Body=manifest)
    assert publish_module.latest_run_id(s3, BUCKET) == NEW_RUN


def test_latest_does_not_move_back_after_an_interrupted_update(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN latest/ holding a run of 1 June noon, then the newest run, whose own report is
    # complete but whose copy into latest/ failed after latest/ had lost its manifest
    generate(event_for(s3, BUCKET, process_run(MIDDLE_RUN)))
    failing = FailingCopy(fail_at=8)  # 7 copies into its own prefix, then the first into latest/
    client = generator_services.hub_client("s3")
    client.meta.events.register("before-call.s3.CopyObject", failing)
    new_event = event_for(s3, BUCKET, process_run(NEW_RUN))
    with pytest.raises(ObjectsToRetryError, match="SlowDown"):
        generate(new_event)
    client.meta.events.unregister("before-call.s3.CopyObject", failing)
    assert f"reports/2025-06-02/{NEW_RUN}/_manifest.json" in keys_under(s3, "reports/")
    # WHEN the report of a run older than both is generated
    result = generate(event_for(s3, BUCKET, process_run(OLD_RUN)))["objects"][0]
    # THEN it gets its own report but does not become latest/: latest/ only moves forward
    assert result["status"] == "generated"
    assert result["latest_updated"] is False
    assert "reports/latest/_manifest.json" not in keys_under(s3, "reports/")


def test_a_run_listing_answered_with_a_proxys_page_does_not_move_latest_back(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN the newest run's complete report, whose copy into latest/ failed after latest/ had
    # lost its manifest, and S3 answering the generator's listing of reports/ with a proxy's
    # well-formed page (HTTP 200), which botocore would parse into an answer without IsTruncated or
    # Contents
    client = generator_services.hub_client("s3")
    failing = FailingCopy(fail_at=8)  # 7 copies into its own prefix, then the first into latest/
    client.meta.events.register("before-call.s3.CopyObject", failing)
    with pytest.raises(ObjectsToRetryError, match="SlowDown"):
        generate(event_for(s3, BUCKET, process_run(NEW_RUN)))
    client.meta.events.unregister("before-call.s3.CopyObject", failing)
    old_event = event_for(s3, BUCKET, process_run(OLD_RUN))
    page = answer_malformed(client, "s3", "ListObjectsV2", b"<html>gateway</html>")
    # WHEN the report of an older run is generated
    # THEN the page does not pass for no complete report: the invocation fails naming what the
    # answer lacked, for Lambda to retry the event, and latest/ is not given the older run
    with pytest.raises(
        ObjectsToRetryError, match="ListObjectsV2 answered without <ListBucketResult>"
    ):
        generate(old_event)
    assert page.answered == 1
    assert "reports/latest/_manifest.json" not in keys_under(s3, "reports/")
    # AND WHEN Lambda retries the event with S3 answering the listing itself
    client.meta.events.unregister("before-send.s3.ListObjectsV2", page)
    retried = generate(old_event)["objects"][0]
    # THEN the older run gets its own report and still does not become latest/
    assert (retried["status"], retried["latest_updated"]) == ("generated", False)
    assert "reports/latest/_manifest.json" not in keys_under(s3, "reports/")


def test_two_reports_published_at_once_never_leave_latest_mixed_or_behind(
    s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN two processed runs whose reports are generated at the same time: the newer one's
    # report runs whole while the older one is copying its first file into latest/ (in this
    # one thread the newer one cannot wait for the older one to finish: it does not wait)
    monkeypatch.setattr(generate_module, "LATEST_LOCK_WAIT_SECONDS", 0.0)
    old_key, new_key = process_run(OLD_RUN), process_run(NEW_RUN)
    overlapping: list[dict[str, Any] | str] = []

    def newer_report_meanwhile(params: dict[str, Any], **_: Any) -> None:
        if overlapping or not params["Key"].startswith("reports/latest/"):
            return
        overlapping.append("started")
        head = s3.head_object(Bucket=BUCKET, Key=new_key)
        newer = CreatedObject(BUCKET, new_key, str(head["ETag"]).strip('"'))
        try:
            overlapping.append(
                generate_report(
                    newer, generator_services, generator.FUNCTION.logger, Invocation.local()
                )
            )
        except LockNotAcquiredError:
            overlapping.append("waited for the older report's update of latest/")

    generator_services.hub_client("s3").meta.events.register(
        "before-parameter-build.s3.CopyObject", newer_report_meanwhile
    )
    # WHEN the older run's report is generated
    generate(event_for(s3, BUCKET, old_key))
    # THEN latest/ is one run's report, all of it, with the manifest describing its files, and
    # it did not move back to the older run after the newer one had taken it
    assert len(overlapping) == 2
    latest = manifest_of(s3, "reports/latest/")
    for entry in latest["files"]:
        body = s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["name"]
    newer_took_latest = isinstance(overlapping[1], dict) and overlapping[1]["latest_updated"]
    assert latest["run_id"] == (NEW_RUN if newer_took_latest else OLD_RUN)


S3_CALL_SECONDS = 15
"""How long each of the older report's calls into latest/ takes in the test below: the most a
bounded hub S3 call can take."""


def test_a_report_whose_slow_calls_outlast_the_latest_lock_lease_never_moves_latest_back(  # noqa: PLR0917
    s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the older run's report replacing latest/ (300 s left) while every S3 call into
    # latest/ takes 15 s, so its ten calls outlast the lock's 120 s lease; and the newer run's
    # report arriving when the older one is about to write latest/'s manifest (it does not wait)
    monkeypatch.setattr(generate_module, "LATEST_LOCK_WAIT_SECONDS", 0.0)
    old_key, new_key = process_run(OLD_RUN), process_run(NEW_RUN)
    calls_into_latest: list[str] = []
    newer_attempts: list[str] = []

    def slow_call_into_latest(request: Any, **_: Any) -> None:
        if "/reports/latest/" not in request.url or newer_attempts == ["running"]:
            return
        calls_into_latest.append(request.method)
        if len(calls_into_latest) == 10:
            newer_attempts.append("running")
            head = s3.head_object(Bucket=BUCKET, Key=new_key)
            newer = CreatedObject(BUCKET, new_key, str(head["ETag"]).strip('"'))
            invocation = Invocation.from_context(ContextRunningOutOfTime(millis_left=[300_000]))
            try:
                generate_report(newer, generator_services, generator.FUNCTION.logger, invocation)
                newer_attempts[-1] = "generated"
            except LockNotAcquiredError:
                newer_attempts[-1] = "failed: latest/ locked"
        fake_clock.advance(S3_CALL_SECONDS)

    generator_services.hub_client("s3").meta.events.register(
        "before-send.s3", slow_call_into_latest
    )
    # WHEN the older run's report is generated, and Lambda retries the newer one's event if
    # that invocation failed
    older = generator.lambda_handler(
        event_for(s3, BUCKET, old_key), ContextRunningOutOfTime(millis_left=[300_000])
    )
    assert older["objects"][0]["status"] == "generated", older
    assert len(calls_into_latest) == 10
    if newer_attempts == ["failed: latest/ locked"]:
        generate(event_for(s3, BUCKET, new_key))
    # THEN latest/ holds the newer run, every file the one its manifest describes
    latest = manifest_of(s3, "reports/latest/")
    assert latest["run_id"] == NEW_RUN, newer_attempts
    for entry in latest["files"]:
        body = s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["name"]


COPY_INTO_LATEST_SECONDS = 50


def test_a_report_whose_copies_into_latest_outlast_the_first_lease_keeps_latest_locked(  # noqa: PLR0917
    s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the older run's report replacing latest/ (300 s left) while every copy into latest/
    # takes 50 s, so its first four outlast the lock's 120 s lease; and the newer run's report
    # arriving at its fourth copy (it does not wait for the lock)
    monkeypatch.setattr(generate_module, "LATEST_LOCK_WAIT_SECONDS", 0.0)
    old_key, new_key = process_run(OLD_RUN), process_run(NEW_RUN)
    copies_into_latest: list[str] = []
    newer_attempts: list[str] = []

    def slow_copy_into_latest(request: Any, **_: Any) -> None:
        copy = "x-amz-copy-source" in request.headers
        if "/reports/latest/" not in request.url or not copy or newer_attempts == ["running"]:
            return
        copies_into_latest.append(request.url)
        if len(copies_into_latest) == 4:
            newer_attempts.append("running")
            head = s3.head_object(Bucket=BUCKET, Key=new_key)
            newer = CreatedObject(BUCKET, new_key, str(head["ETag"]).strip('"'))
            invocation = Invocation.from_context(ContextRunningOutOfTime(millis_left=[300_000]))
            try:
                generate_report(newer, generator_services, generator.FUNCTION.logger, invocation)
                newer_attempts[-1] = "generated"
            except LockNotAcquiredError:
                newer_attempts[-1] = "failed: latest/ locked"
        fake_clock.advance(COPY_INTO_LATEST_SECONDS)

    generator_services.hub_client("s3").meta.events.register(
        "before-send.s3", slow_copy_into_latest
    )
    # WHEN the older run's report is generated, and Lambda retries the newer one's event
    older = generator.lambda_handler(
        event_for(s3, BUCKET, old_key), ContextRunningOutOfTime(millis_left=[300_000])
    )
    # THEN the older report kept the lock through its copies: the newer one found it locked
    assert older["objects"][0]["status"] == "generated", older
    assert newer_attempts == ["failed: latest/ locked"]
    # AND once retried, latest/ holds the newer run, every file the one its manifest describes
    generate(event_for(s3, BUCKET, new_key))
    latest = manifest_of(s3, "reports/latest/")
    assert latest["run_id"] == NEW_RUN
    for entry in latest["files"]:
        body = s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["name"]


def test_keys_that_are_not_processed_runs_are_ignored(s3: Any, generate: Invoke) -> None:
    # GIVEN an event for some other object under processed/
    result = generate(s3_event(BUCKET, "processed/notes.txt", '"abc"'))
    # THEN it is ignored and nothing is written
    assert result["objects"][0]["status"] == "ignored"
    assert keys_under(s3, "reports/") == []


def test_a_processed_key_whose_run_id_is_not_a_date_is_ignored(s3: Any, generate: Invoke) -> None:
    # GIVEN an event for an object under processed/ whose run id has the pattern but a date
    # that does not exist (June has 30 days)
    key = "processed/2025-06-30/20250631T050000Z-0000000a.json"
    # WHEN handled
    result = generate(s3_event(BUCKET, key, '"abc"'))
    # THEN it is ignored as not a processed run, instead of failing the invocation with the
    # date's ValueError; nothing is written
    assert result["objects"][0]["status"] == "ignored"
    assert keys_under(s3, "reports/") == []


def test_a_processed_document_that_does_not_validate_is_an_error_naming_its_first_field(
    s3: Any, state_table: StateTable, generate: Invoke, alert_inbox: Any
) -> None:
    # GIVEN a processed run whose run id is 5,000 characters ending in a Slack mention, and which
    # lacks every other field of a processed document
    bad_run_id = "x" * 5000 + "\n<!channel>"
    event = put_json(
        s3,
        f"processed/2025-06-01/{OLD_RUN}.json",
        {"schema_version": 1, "metadata": {"run_id": bad_run_id}},
    )
    # WHEN the generator runs
    result = generate(event)["objects"][0]
    # THEN the object's error is one line naming the first wrong field, not the pydantic dump of
    # every error with the values it refused
    assert result["status"] == "error"
    assert result["error"].startswith("ValidationError: metadata.run_id: String should match")
    assert "\n" not in result["error"]
    assert "xxxxxxxx" not in result["error"]
    assert "<!channel>" not in result["error"]
    # AND nothing was written or announced; one warning says the object was not handled, with
    # the same one-line error
    assert keys_under(s3, "reports/") == []
    [warning] = [received.alert for received in alert_inbox.receive()]
    assert warning["title"] == "S3 object not handled"
    assert result["error"] in warning["detail"]
    assert "<!channel>" not in warning["detail"]


@pytest.mark.parametrize(
    ("trickling_key", "after"),
    [
        pytest.param(f"processed/2025-06-01/{OLD_RUN}.json", 0.0, id="processed document"),
        pytest.param(
            "reports/latest/_manifest.json",
            publish_module.LATEST_READ_AFTER_SECONDS,
            id="latest manifest",
        ),
    ],
)
def test_a_document_that_trickles_is_given_up_in_the_time_left_and_retried(  # noqa: PLR0917
    s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    alert_inbox: Any,
    trickling_key: str,
    after: float,
) -> None:
    # GIVEN a processed run and a latest/ manifest, one of them a body S3 sends a byte every
    # 50 ms (each read well within the client's read timeout; 40 s for its 800 bytes), and an
    # invocation with the time to record the object's outcome, to do what still follows the
    # read when it fails (for latest/'s manifest: delete the temporary objects, release the
    # latest/ lock), and 0.2 s more
    key = process_run(OLD_RUN)
    s3.put_object(Bucket=BUCKET, Key="reports/latest/_manifest.json", Body=b"{}")
    alert_inbox.receive()
    event = event_for(s3, BUCKET, key)
    left = round((OUTCOME_SECONDS + after + 0.2) * 1000)
    # WHEN the generator handles the event
    # THEN the read is given up once its time is up, long before its last byte, and the
    # invocation fails naming the key, so Lambda retries the event, instead of being ended by
    # Lambda in the read
    with (
        trickling_get_object(generator_services.hub_client("s3"), trickling_key, 800) as peer,
        pytest.raises(ObjectsToRetryError, match="did not all come within") as failed,
    ):
        generator.lambda_handler(event, ContextRunningOutOfTime(millis_left=[left]))
    assert peer.sent < 800
    [(failed_key, error)] = failed.value.failures
    assert failed_key == key
    assert trickling_key in error
    # AND latest/ is untouched, no temporary object is left, and no warning says the object was
    # not handled (the retry handles it)
    assert keys_under(s3, "reports/latest/") == ["reports/latest/_manifest.json"]
    assert keys_under(s3, "tmp/") == []
    assert alert_inbox.receive() == []


def test_a_run_listing_of_endless_empty_pages_is_cut_short_in_time_and_retried(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN a processed run, a latest/ manifest that names no run (so the runs are listed), an
    # invocation with 80 s left, and S3 answering every page of the listing of the reports with
    # no object and a next page under a new token, a second a page
    key = process_run(OLD_RUN)
    s3.put_object(Bucket=BUCKET, Key="reports/latest/_manifest.json", Body=b"{}")
    time = LambdaTime(80.0)
    listing = EndlessListing(time, "reports/")
    client = generator_services.hub_client("s3")
    client.meta.events.register_first("before-send.s3.ListObjectsV2", listing)
    # WHEN the generator handles the event
    # THEN the listing stops while what follows a failed read and the object's outcome still
    # have their time, and the invocation fails naming the key, so Lambda retries the event
    with pytest.raises(ObjectsToRetryError, match="ListObjectsV2 read cut short") as failed:
        generator.lambda_handler(event_for(s3, BUCKET, key), time.context())
    assert listing.pages > 1
    reserve = OUTCOME_SECONDS + publish_module.LATEST_READ_AFTER_SECONDS
    assert time.seconds_left - time.spent >= reserve
    assert [failed_key for failed_key, _ in failed.value.failures] == [key]
    assert keys_under(s3, "reports/latest/") == ["reports/latest/_manifest.json"]


def test_a_processed_document_over_the_size_limit_is_an_error_read_no_further(
    s3: Any,
    generate: Invoke,
    process_run: ProcessRun,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a processed run one byte longer than the generator reads (the limit lowered to it)
    key = process_run(OLD_RUN)
    alert_inbox.receive()
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    monkeypatch.setattr(generate_module, "PROCESSED_DOCUMENT_BYTES_MAX", size - 1)
    # WHEN the generator runs
    result = generate(event_for(s3, BUCKET, key))["objects"][0]
    # THEN the object is an error naming its size and the limit; nothing is written, and one
    # warning says the object was not handled
    assert result["status"] == "error"
    assert f"{size:,} bytes or more, more than the {size - 1:,}" in result["error"]
    assert keys_under(s3, "reports/") == []
    assert [a.alert["title"] for a in alert_inbox.receive()] == ["S3 object not handled"]


def _offer_ec2_in_an_unknown_region(document: dict[str, Any]) -> None:
    document["availability"]["ec2"].append("xx-nowhere-1")


def _process_past_the_calendar_in_utc(document: dict[str, Any]) -> None:
    document["metadata"]["processed_at"] = "9999-12-31T23:59:59-14:00"


def _list_more_regions_than_a_worksheet_has_columns(document: dict[str, Any]) -> None:
    # 16,383 regions: the Matrix sheet would need 16,385 of a worksheet's 16,384 columns.
    region = document["regions"][0]
    extra = 16_383 - len(document["regions"])
    document["regions"] += [{**region, "code": f"xx-region-{index}"} for index in range(extra)]


def _make_more_matrix_cells_than_a_report_renders(document: dict[str, Any]) -> None:
    # 708 regions by 707 services: a matrix of 500,556 cells.
    region, service = document["regions"][0], document["services"][0]
    document["regions"] += [
        {**region, "code": f"xx-region-{index}"} for index in range(708 - len(document["regions"]))
    ]
    document["services"] += [
        {**service, "code": f"service-{index}"} for index in range(707 - len(document["services"]))
    ]


def _give_a_region_a_coverage_that_is_no_number(document: dict[str, Any]) -> None:
    # NaN: Python's JSON reads and writes it, no strict reader of report.json takes it.
    document["regions"][0]["coverage_percent"] = float("nan")


@pytest.mark.parametrize(
    ("alter", "field", "value"),
    [
        (_offer_ec2_in_an_unknown_region, "availability", "'xx-nowhere-1'"),
        (_process_past_the_calendar_in_utc, "metadata.processed_at", "'9999-12-31T23:59:59"),
        (_list_more_regions_than_a_worksheet_has_columns, "regions", "at most 16382 items"),
        (_give_a_region_a_coverage_that_is_no_number, "regions[0].coverage_percent", "finite"),
        (_make_more_matrix_cells_than_a_report_renders, "services", "707 services by 708 regions"),
    ],
)
def test_a_processed_document_with_an_impossible_value_is_an_error_naming_it(  # noqa: PLR0917
    s3: Any,
    generate: Invoke,
    process_run: ProcessRun,
    alert_inbox: Any,
    alter: Callable[[dict[str, Any]], None],
    field: str,
    value: str,
) -> None:
    # GIVEN a processed run whose availability names a region its region list does not have,
    # whose processing time has an offset that carries it past the calendar once in UTC, which
    # lists more regions than the Matrix sheet has columns for (Excel would report the workbook
    # as damaged), with a coverage that is no number (report.json would be no JSON), or with a
    # matrix of more cells than a report is rendered with in the function's memory
    key = process_run(OLD_RUN)
    alert_inbox.receive()
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    alter(document)
    event = put_json(s3, key, document)
    # WHEN the generator runs
    result = generate(event)["objects"][0]
    # THEN the object is an error naming the field and the value, and the invocation goes on
    assert result["status"] == "error"
    assert result["error"].startswith(f"ValidationError: {field}: ")
    assert value in result["error"]
    # AND nothing was written or announced; one warning says the object was not handled
    assert keys_under(s3, "reports/") == []
    assert [received.alert["title"] for received in alert_inbox.receive()] == [
        "S3 object not handled"
    ]


def test_a_report_whose_alert_sns_refuses_is_kept_and_not_generated_again(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN a processed run and an info topic that does not exist (SNS answers NotFound)
    key = process_run(OLD_RUN)
    boto3.client("sns", region_name=REGION).delete_topic(
        TopicArn=generator_services.environment.alert_topic_info_arn
    )
    event = event_for(s3, BUCKET, key)
    # WHEN the generator runs
    result = generate(event)["objects"][0]
    # THEN the report is published and the result says the alert was not
    assert result["status"] == "generated"
    assert result["alert_published"] is False
    assert f"reports/2025-06-01/{OLD_RUN}/_manifest.json" in keys_under(s3, "reports/")
    # AND the same event again is a repeat: the report is not written a second time
    assert generate(event)["objects"][0]["status"] == "repeat"


@pytest.mark.usefixtures("no_retry_waits")
def test_a_report_whose_announcement_claim_lost_its_answer_is_announced_once(
    s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun, alert_inbox: Any
) -> None:
    # GIVEN a processed run, and DynamoDB applying the claim of its report-ready alert but its
    # answer never arriving (botocore sends the claim again)
    event = event_for(s3, BUCKET, process_run(OLD_RUN))
    alert_inbox.receive()
    fault = lose_first_answer(
        generator_services.hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        body_with=(generate_module.ANNOUNCED_CLAIM_PREFIX.encode(),),
    )
    # WHEN the generator runs, and the same event comes again
    first = generate(event)["objects"][0]
    repeat = generate(event)["objects"][0]
    # THEN the first run announced the report, and it was announced once
    assert fault.lost == 1
    assert (first["status"], first["alert_published"]) == ("generated", True)
    assert repeat["status"] == "repeat"
    assert [alert.alert["title"] for alert in alert_inbox.receive()] == [
        f"Availability report {OLD_RUN} ready"
    ]


def test_names_that_look_like_formulas_or_hold_control_characters_stay_text_in_the_workbook(
    s3: Any, generate: Invoke, process_raw: Callable[[str, dict[str, Any]], str]
) -> None:
    # GIVEN a processed run whose service long name starts like a spreadsheet formula and whose
    # region long name holds a control character
    formula = '=HYPERLINK("http://127.0.0.1/x","click")'
    regions = {"ap-south-1": ("Asia Pacific\x07(Mumbai)", "aws")}
    document = raw_document(
        OLD_RUN,
        regions,
        {"ec2": (formula, ["ap-south-1"])},
        started_at=datetime(2025, 6, 1, 5, tzinfo=UTC),
    )
    key = process_raw(f"raw/2025-06-01/{OLD_RUN}.json", document)
    # WHEN the report is generated
    result = generate(event_for(s3, BUCKET, key))["objects"][0]
    # THEN it is generated, and the workbook keeps the formula-like name as text and shows the
    # control character as U+FFFD
    assert result["status"] == "generated"
    body = s3.get_object(Bucket=BUCKET, Key=f"reports/2025-06-01/{OLD_RUN}/report.xlsx")["Body"]
    workbook = load_workbook(io.BytesIO(body.read()))
    [service_name] = [
        cell for row in workbook["Services"].iter_rows(min_row=2) for cell in row[1:2]
    ]
    assert service_name.value == formula
    assert service_name.data_type == "s"
    region_names = [row[1].value for row in workbook["Regions"].iter_rows(min_row=2)]
    assert region_names == ["Asia Pacific\ufffd(Mumbai)"]


def test_names_that_look_like_formulas_stay_text_in_every_csv_file(
    s3: Any, generate: Invoke, process_raw: Callable[[str, dict[str, Any]], str]
) -> None:
    # GIVEN a processed run whose region and service long names start with each character a
    # spreadsheet opening a CSV file reads as the start of a formula (and a null character,
    # which ASVS 5.0 lists: a reader may drop it before the `=` behind it), or with one behind
    # characters a reader skips or does not show (a right-to-left override, a zero-width
    # space, a byte order mark, a space, a no-break space and a bidirectional isolate, a
    # Hangul filler), or with a sign whose compatibility form is one (full-width `=`, `+`,
    # `-` and `@`, a small `+`, a superscript `=`), and one name that starts with a space and is
    # no formula
    names = {
        "ap-south-1": '=HYPERLINK("http://127.0.0.1/x","click")',
        "eu-west-1": "+cmd|' /C calc'!A0",
        "ec2": "-2+3",
        "eks": "@SUM(1+1)",
        "s3": "\t=1+1",
        "sqs": "\x00=1+1",
        "sns": '\u202e=HYPERLINK("http://127.0.0.1/x")',
        "sts": "\u200b+1+1",
        "ssm": "\ufeff-2+3",
        "kms": " @SUM(1+1)",
        "iam": "\u00a0\u2066=1+1",
        "rds": "\u3164=1+1",
        "ecs": '\uff1dHYPERLINK("http://127.0.0.1/x")',
        "efs": "\uff0b1+1",
        "emr": "\uff0d2+3",
        "eks-auto": "\uff20SUM(1+1)",
        "glue": " \ufe621+1",
        "lambda": "\u207c1+1",
    }
    regions = {code: (names[code], "aws") for code in ("ap-south-1", "eu-west-1")}
    services = {
        "ec2": (names["ec2"], ["ap-south-1", "eu-west-1"]),
        **{code: (names[code], ["eu-west-1"]) for code in list(names)[3:]},
        "ecr": (" Amazon ECR", ["eu-west-1"]),
    }
    document = raw_document(
        OLD_RUN, regions, services, started_at=datetime(2025, 6, 1, 5, tzinfo=UTC)
    )
    key = process_raw(f"raw/2025-06-01/{OLD_RUN}.json", document)
    # WHEN the report is generated
    generate(event_for(s3, BUCKET, key))
    # THEN no field of any CSV file starts like a formula, nor does after the unseen characters:
    # each such name is written behind an apostrophe, which a spreadsheet shows as text, and the
    # name that is no formula is kept as it came; the JSON report keeps the names as they came
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    fields: list[str] = []
    for name in ("pairs.csv", "regions.csv", "services.csv", "matrix.csv"):
        body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}{name}")["Body"].read()
        fields.extend(field for row in csv.reader(io.StringIO(body.decode())) for field in row)
    assert not [
        field
        for field in fields
        if unicodedata.normalize("NFKC", field.lstrip(" \u00a0\u200b\u202e\u2066\u3164\ufeff")[:1])
        in ("=", "+", "-", "@", "\t", "\r", "\x00")
    ]
    assert {f"'{name}" for name in names.values()} <= set(fields)
    assert " Amazon ECR" in fields
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}report.json")["Body"].read())
    assert {region["long_name"] for region in report["regions"]} == {
        names["ap-south-1"],
        names["eu-west-1"],
    }


def test_a_run_served_by_the_cache_shows_when_its_data_was_read_not_when_it_started(
    s3: Any, generate: Invoke, process_raw: Callable[[str, dict[str, Any]], str]
) -> None:
    # GIVEN a run started at 12:00 whose SSM data came from the cache, read at 05:00 by the
    # first run of the report day
    document = raw_document(
        MIDDLE_RUN, REGIONS, SERVICES, started_at=datetime(2025, 6, 1, 12, tzinfo=UTC)
    )
    document["metadata"]["ssm"].update(fetched_at="2025-06-01T05:00:00Z", from_cache=True)
    key = process_raw(f"raw/2025-06-01/{MIDDLE_RUN}.json", document)
    # WHEN its report is generated
    generate(event_for(s3, BUCKET, key))
    # THEN the workbook's summary dates the data when SSM was read, and says an earlier run
    # read it, beside when this run started
    body = s3.get_object(Bucket=BUCKET, Key=f"reports/2025-06-01/{MIDDLE_RUN}/report.xlsx")
    workbook = load_workbook(io.BytesIO(body["Body"].read()))
    summary = {row[0].value: row[1].value for row in workbook["Summary"].iter_rows(min_row=2)}
    assert summary["Fetched at"] == "2025-06-01T05:00:00+00:00"
    assert summary["Fetched by"] == "an earlier run of the report day (source cache)"
    assert summary["Run started at"] == "2025-06-01T12:00:00+00:00"


def test_two_versions_of_a_runs_processed_document_in_one_batch_announce_the_report_once(
    s3: Any, generate: Invoke, process_run: ProcessRun, alert_inbox: Any
) -> None:
    # GIVEN a processed run whose document was written twice (a reprocessing: a new ETag), and
    # one notification carrying both versions' records
    key = process_run(OLD_RUN)
    alert_inbox.receive()
    batch, _ = reprocessed_into_one_notification(s3, key)
    # WHEN the generator handles the notification
    results = generate(batch)["objects"]
    # THEN the run has one report, announced once
    assert {result["run_id"] for result in results} == {OLD_RUN}
    assert [alert.alert["title"] for alert in alert_inbox.receive()] == [
        f"Availability report {OLD_RUN} ready"
    ]
    assert keys_under(s3, "reports/2025-06-01/") == sorted(
        f"reports/2025-06-01/{OLD_RUN}/{name}"
        for name in (
            "_manifest.json",
            "availability.json",
            "matrix.csv",
            "pairs.csv",
            "regions.csv",
            "report.json",
            "report.xlsx",
            "services.csv",
        )
    )


def test_a_name_holding_a_carriage_return_stays_in_its_own_field_of_every_csv_file(
    s3: Any, generate: Invoke, process_raw: Callable[[str, dict[str, Any]], str]
) -> None:
    # GIVEN a processed run whose region and service long names hold a bare carriage return
    region_name, service_name = "Asia Pacific\r(Mumbai)", "Amazon\rEC2"
    document = raw_document(
        OLD_RUN,
        {"ap-south-1": (region_name, "aws")},
        {"ec2": (service_name, ["ap-south-1"])},
        started_at=datetime(2025, 6, 1, 5, tzinfo=UTC),
    )
    key = process_raw(f"raw/2025-06-01/{OLD_RUN}.json", document)
    # WHEN the report is generated
    assert generate(event_for(s3, BUCKET, key))["objects"][0]["status"] == "generated"
    # THEN a CSV reader finds one row per record, every row as wide as the header, and the
    # names as they came
    prefix = f"reports/2025-06-01/{OLD_RUN}/"

    def rows(name: str) -> list[list[str]]:
        body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}{name}")["Body"].read().decode("utf-8")
        return list(csv.reader(io.StringIO(body, newline="")))

    pairs, regions, services_rows = rows("pairs.csv"), rows("regions.csv"), rows("services.csv")
    assert pairs[1:] == [["ap-south-1", region_name, "aws", "ec2", service_name]]
    assert len(regions) == 2 and len(regions[1]) == len(regions[0])
    assert regions[1][regions[0].index("long_name")] == region_name
    assert len(services_rows) == 2 and len(services_rows[1]) == len(services_rows[0])
    assert services_rows[1][services_rows[0].index("long_name")] == service_name


def test_a_retry_of_an_invocation_killed_after_announcing_does_not_announce_again(  # noqa: PLR0917
    s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a processed run whose report is published and announced, and DynamoDB never
    # answering the write that records it done, so the invocation hangs until Lambda kills it
    event = event_for(s3, BUCKET, process_run(OLD_RUN))
    alert_inbox.receive()
    hang = hang_completion_record(generator_services.hub_client("dynamodb"))
    with killed_while_hung(hang, generate, event):
        # WHEN Lambda kills it at its deadline and retries the event two minutes later
        fake_clock.advance(120)
        retried = generate(event)["objects"][0]
    # THEN the retry completes the report and the run was announced once
    assert retried["status"] == "generated"
    assert retried["alert_published"] is False
    assert [alert.alert["title"] for alert in alert_inbox.receive()] == [
        f"Availability report {OLD_RUN} ready"
    ]
    latest = manifest_of(s3, "reports/latest/")
    assert latest["run_id"] == OLD_RUN


def test_a_retry_of_an_invocation_killed_while_replacing_latest_completes_latest(  # noqa: PLR0917
    s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN latest/ holding the older run, then the newer run's report whose first copy into
    # latest/ never gets an answer: that invocation (60 s left) holds the latest/ lock, with
    # latest/'s manifest already deleted, until Lambda kills it
    monkeypatch.setattr(generate_module, "LATEST_LOCK_WAIT_SECONDS", 0.0)
    generate(event_for(s3, BUCKET, process_run(OLD_RUN)))
    event = event_for(s3, BUCKET, process_run(NEW_RUN))
    hang = hang_first_copy_into(generator_services.hub_client("s3"), "reports/latest/")
    with killed_while_hung(hang, generate, event):
        assert "reports/latest/_manifest.json" not in keys_under(s3, "reports/latest/")
        # WHEN Lambda kills it at its deadline and retries the event a minute after that
        fake_clock.advance(60 + 60)
        retried = generate(event)["objects"][0]
    # THEN the retry takes the dead invocation's lock and latest/ is the newer run, whole
    assert retried["status"] == "generated"
    assert retried["latest_updated"] is True
    latest = manifest_of(s3, "reports/latest/")
    assert latest["run_id"] == NEW_RUN
    for entry in latest["files"]:
        body = s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["name"]


def test_a_retry_of_an_invocation_killed_while_reading_latest_takes_its_lock(  # noqa: PLR0917
    s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN latest/ holding the older run, then the newer run's report whose read of latest/'s
    # manifest never gets an answer: that invocation (30 s left) holds the latest/ lock until
    # Lambda kills it
    monkeypatch.setattr(generate_module, "LATEST_LOCK_WAIT_SECONDS", 0.0)
    generate(event_for(s3, BUCKET, process_run(OLD_RUN)))
    event = event_for(s3, BUCKET, process_run(NEW_RUN))
    hang = CopyIntoHang("GetObject", url_part="/reports/latest/")
    generator_services.hub_client("s3").meta.events.register_first("before-send.s3.GetObject", hang)

    def with_30_seconds_left(event: object) -> dict[str, Any]:
        return generator.lambda_handler(event, ContextRunningOutOfTime(millis_left=[30_000]))

    with killed_while_hung(hang, with_30_seconds_left, event):
        # WHEN Lambda kills it at its deadline and retries the event a minute after that
        fake_clock.advance(30 + 60)
        retried = generate(event)["objects"][0]
    # THEN the retry finds the lock free (leased no longer than the dead invocation could run)
    # and moves latest/ to the newer run
    assert retried["status"] == "generated"
    assert retried["latest_updated"] is True
    assert manifest_of(s3, "reports/latest/")["run_id"] == NEW_RUN


def test_names_holding_characters_xml_forbids_show_as_replacement_in_a_readable_workbook(
    s3: Any, generate: Invoke, process_raw: Callable[[str, dict[str, Any]], str]
) -> None:
    # GIVEN a processed run whose names hold the noncharacters U+FFFF and U+FFFE: valid JSON,
    # but no XML document (so no worksheet) may contain them
    document = raw_document(
        OLD_RUN,
        {"ap-south-1": ("Asia Pacific\uffff(Mumbai)", "aws")},
        {"ec2": ("Amazon\ufffeEC2", ["ap-south-1"])},
        started_at=datetime(2025, 6, 1, 5, tzinfo=UTC),
    )
    key = process_raw(f"raw/2025-06-01/{OLD_RUN}.json", document)
    # WHEN the report is generated
    assert generate(event_for(s3, BUCKET, key))["objects"][0]["status"] == "generated"
    # THEN the workbook can be read, with each such character shown as U+FFFD
    body = s3.get_object(Bucket=BUCKET, Key=f"reports/2025-06-01/{OLD_RUN}/report.xlsx")["Body"]
    workbook = load_workbook(io.BytesIO(body.read()))
    assert [row[1].value for row in workbook["Regions"].iter_rows(min_row=2)] == [
        "Asia Pacific\ufffd(Mumbai)"
    ]
    assert [row[1].value for row in workbook["Services"].iter_rows(min_row=2)] == [
        "Amazon\ufffdEC2"
    ]


@pytest.mark.parametrize(
    ("start", "character", "characters"),
    [("Amazon ", "x", 40_000), ("Amazon ", "\U0001f600", 20_000), ("=", "x", 40_000)],
    ids=["ascii", "outside-the-bmp", "formula"],
)
def test_a_name_longer_than_a_cell_holds_is_cut_alike_in_the_workbook_and_csv_and_counted(  # noqa: PLR0917
    s3: Any,
    generate: Invoke,
    process_raw: Callable[[str, dict[str, Any]], str],
    start: str,
    character: str,
    characters: int,
) -> None:
    # GIVEN a processed run whose service long name is longer than an Excel cell holds (32,767
    # UTF-16 code units, as Excel counts: an emoji is two), which Excel reports as damaged in a
    # workbook, and cuts or carries into the next cells without a word in a CSV file
    name = start + character * characters
    document = raw_document(
        OLD_RUN,
        {"ap-south-1": ("Asia Pacific (Mumbai)", "aws")},
        {"ec2": (name, ["ap-south-1"])},
        started_at=datetime(2025, 6, 1, 5, tzinfo=UTC),
    )
    key = process_raw(f"raw/2025-06-01/{OLD_RUN}.json", document)
    # WHEN the report is generated
    assert generate(event_for(s3, BUCKET, key))["objects"][0]["status"] == "generated"
    # THEN no cell of the workbook and no field of a CSV file holds more than a cell can; the
    # name's cell and its fields are its start followed by its whole length (in a CSV file
    # behind the apostrophe of a formula); the Summary counts one text cut; report.json keeps
    # the name whole
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}report.xlsx")["Body"].read()
    workbook = load_workbook(io.BytesIO(body))
    texts = [
        cell.value
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if isinstance(cell.value, str)
    ]
    [shown] = [row[1].value for row in workbook["Services"].iter_rows(min_row=2)]
    fields: list[str] = []
    for csv_name in ("pairs.csv", "services.csv"):
        csv_body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}{csv_name}")["Body"].read()
        rows = list(csv.reader(io.StringIO(csv_body.decode("utf-8"), newline="")))
        fields.extend(field for row in rows for field in row)
    assert max(len(text.encode("utf-16-le")) // 2 for text in texts + fields) <= 32_767
    marker = f"... ({len(name)} characters)"
    mark = "'" if start == "=" else ""
    assert shown.endswith(marker)
    assert name.startswith(shown.removesuffix(marker))
    cut_fields = [field for field in fields if field.endswith(marker)]
    assert len(cut_fields) == 2  # the name's field of pairs.csv and services.csv
    for field in cut_fields:
        assert field.startswith(mark)
        assert name.startswith(field.removeprefix(mark).removesuffix(marker))
    summary = {row[0].value: row[1].value for row in workbook["Summary"].iter_rows(min_row=2)}
    assert summary["Texts cut to fit a cell"].startswith("1: ")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}report.json")["Body"].read())
    assert [service["long_name"] for service in report["services"]] == [name]


def test_a_sparse_matrix_is_rendered_without_an_object_per_empty_cell(
    s3: Any, process_raw: Callable[[str, dict[str, Any]], str]
) -> None:
    # GIVEN a processed run of 150 regions and 400 services offered nowhere: a matrix of 60,000
    # empty cells (fitting the columns from the sheet made an object of each: 18 MB here, and
    # past the function's 1 GB for a 230 kB raw document of 2,000 regions and 2,500 services)
    document = raw_document(
        OLD_RUN,
        {f"xx-region-{index}": (None, "aws") for index in range(150)},
        {f"service-{index}": (None, []) for index in range(400)},
        started_at=datetime(2025, 6, 1, 5, tzinfo=UTC),
    )
    key = process_raw(f"raw/2025-06-01/{OLD_RUN}.json", document)
    processed = ProcessedDocument.model_validate_json(
        s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    )
    # WHEN its workbook is rendered
    tracemalloc.start()
    try:
        render_workbook(processed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN it takes a few MB, as many as its written cells need
    assert peak < 10_000_000


def versions_of_each_key(s3: Any, prefix: str) -> dict[str, int]:
    """How many versions each key under `prefix` of the (versioned) data bucket has."""
    counts: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=prefix):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


@pytest.fixture
def versioned_s3(s3: Any) -> Any:
    """The data bucket with versioning on, as the program creates it."""
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def test_two_versions_in_one_batch_render_the_newer_once_and_never_the_older_over_it(
    versioned_s3: Any, generate: Invoke, process_run: ProcessRun, alert_inbox: Any
) -> None:
    # GIVEN a processed run written twice in the versioned data bucket (a reprocessing), and one
    # notification carrying both versions' records, each naming its own version
    key = process_run(OLD_RUN)
    alert_inbox.receive()
    batch, second_version = reprocessed_into_one_notification(versioned_s3, key)
    # WHEN the generator handles the notification
    results = generate(batch)["objects"]
    # THEN the older version, which the key no longer holds, is not rendered; the newer one is,
    # once: each file of the run's report was written once, from the newer version
    assert [result["status"] for result in results] == ["superseded", "generated"]
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    assert set(versions_of_each_key(versioned_s3, prefix).values()) == {1}
    newer_etag = second_version["Records"][0]["s3"]["object"]["eTag"]
    assert manifest_of(versioned_s3, prefix)["processed_etag"] == newer_etag
    # AND the run was announced once
    assert [alert.alert["title"] for alert in alert_inbox.receive()] == [
        f"Availability report {OLD_RUN} ready"
    ]


def test_a_late_event_of_an_older_version_leaves_the_newer_report_untouched(
    versioned_s3: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN a processed run written twice, the newer version's report generated from its event
    key = process_run(OLD_RUN)
    older_version = event_for(versioned_s3, BUCKET, key)
    newer_version = reprocess(versioned_s3, key)
    assert generate(newer_version)["objects"][0]["status"] == "generated"
    written = versions_of_each_key(versioned_s3, "reports/")
    # WHEN the older version's event arrives afterwards (S3 does not order its notifications)
    result = generate(older_version)["objects"][0]
    # THEN the older version is superseded: nothing is written, and the run's report and latest/
    # still describe the newer version
    assert result["status"] == "superseded"
    assert result["version_id"] == older_version["Records"][0]["s3"]["object"]["versionId"]
    assert versions_of_each_key(versioned_s3, "reports/") == written
    newer_etag = newer_version["Records"][0]["s3"]["object"]["eTag"]
    assert manifest_of(versioned_s3, f"reports/2025-06-01/{OLD_RUN}/")["processed_etag"] == (
        newer_etag
    )
    assert manifest_of(versioned_s3, "reports/latest/")["processed_etag"] == newer_etag


def test_the_version_the_event_names_is_read_even_when_a_newer_one_lands_first(
    versioned_s3: Any, generator_services: Any, generate: Invoke, process_run: ProcessRun
) -> None:
    # GIVEN the event of a processed run's only version, and a reprocessing that writes a newer
    # version just before the generator reads the document
    key = process_run(OLD_RUN)
    event = event_for(versioned_s3, BUCKET, key)
    newer: list[dict[str, Any]] = []

    def reprocess_first(params: dict[str, Any], **_: Any) -> None:
        if not newer and params["Key"] == key:
            newer.append(reprocess(versioned_s3, key))

    generator_services.hub_client("s3").meta.events.register(
        "before-parameter-build.s3.GetObject", reprocess_first
    )
    # WHEN the generator handles the event
    result = generate(event)["objects"][0]
    # THEN it did not render the newer version's data under this event: the newer version is
    # left to its own event, and nothing was written
    assert len(newer) == 1
    assert result["status"] == "superseded"
    assert keys_under(versioned_s3, "reports/") == []


def test_a_newer_version_published_while_an_older_one_is_never_replaced_by_it(
    versioned_s3: Any,
    generator_services: Any,
    generate: Invoke,
    process_run: ProcessRun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a processed run whose report is being published from its first version when a
    # reprocessing writes a second version and that version's report is generated at once (in
    # this one thread the second cannot wait for the first: it does not wait)
    monkeypatch.setattr(generate_module, "RUN_LOCK_WAIT_SECONDS", 0.0)
    key = process_run(OLD_RUN)
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    newer: list[CreatedObject] = []
    meanwhile: list[dict[str, Any] | str] = []

    def newer_version_meanwhile(params: dict[str, Any], **_: Any) -> None:
        if newer or not params["Key"].startswith(prefix):
            return
        record = reprocess(versioned_s3, key)["Records"][0]["s3"]["object"]
        newer.append(CreatedObject(BUCKET, key, record["eTag"], record["versionId"]))
        try:
            meanwhile.append(
                generate_report(
                    newer[0], generator_services, generator.FUNCTION.logger, Invocation.local()
                )
            )
        except LockNotAcquiredError:
            meanwhile.append("waited for the older version's report")

    generator_services.hub_client("s3").meta.events.register(
        "before-parameter-build.s3.CopyObject", newer_version_meanwhile
    )
    # WHEN the first version's report is generated
    assert generate(event_for(versioned_s3, BUCKET, key))["objects"][0]["status"] == "generated"
    # THEN the second version's report waited for it, and is generated once it is done
    assert meanwhile == ["waited for the older version's report"]
    retried = generate_report(
        newer[0], generator_services, generator.FUNCTION.logger, Invocation.local()
    )
    assert retried["status"] == "generated"
    # AND the run's report is the newer version's, and its manifest describes its files
    manifest = manifest_of(versioned_s3, prefix)
    assert manifest["processed_etag"] == newer[0].etag
    for entry in manifest["files"]:
        body = versioned_s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["name"]
