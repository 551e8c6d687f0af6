"""report_processor on hand-made raw documents in moto S3: statistics, quality, changes,
rejection, ignored keys and duplicate events."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fleet_shared import state_table as state_table_module
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import LockNotAcquiredError, ObjectsToRetryError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.processed_documents import ProcessedTotals
from fleet_shared.report_documents import RawDocument
from fleet_shared.s3_events import OUTCOME_SECONDS, CreatedObject
from fleet_shared.state_table import StateTable
from handlers.report_processor import app
from handlers.report_processor import process as process_module
from handlers.report_processor import storage as storage_module
from handlers.report_processor.analysis import analyse
from handlers.report_processor.environment import ProcessorEnvironment
from handlers.report_processor.quality import check_quality
from tests.handlers.conftest import STATE_TABLE_NAME
from tests.handlers.deadlines import THREAD_REACHED_SECONDS, ContextRunningOutOfTime, LambdaTime
from tests.handlers.endless_listings import EndlessListing
from tests.handlers.faults import (
    InvocationKilledError,
    answer_malformed,
    fail_every_attempt,
    hang_first_attempt,
)
from tests.handlers.report_pipeline.support import (
    BUCKET,
    REGION,
    CompletionRecordFault,
    create_bucket,
    event_for,
    hang_completion_record,
    keys_under,
    put_json,
    raw_document,
    s3_event,
)
from tests.handlers.trickling_objects import trickling_get_object

Process = Callable[[object], dict[str, Any]]


RUN_1 = "20250601T050000Z-00000001"
RUN_2 = "20250602T050000Z-00000002"
REGIONS = {
    "ap-south-1": ("Asia Pacific (Mumbai)", "aws"),
    "eu-west-1": ("Europe (Ireland)", "aws"),
    "cn-north-1": ("China (Beijing)", "aws-cn"),
}
SERVICES = {
    "ec2": ("Amazon EC2", ["ap-south-1", "eu-west-1", "cn-north-1"]),
    "s3": ("Amazon S3", ["ap-south-1", "eu-west-1", "cn-north-1"]),
    "eks": ("Amazon EKS", ["ap-south-1", "eu-west-1"]),
    "braket": ("Amazon Braket", ["eu-west-1"]),
}


@pytest.fixture
def s3(alert_inbox: Any) -> Any:
    client = boto3.client("s3", region_name=REGION)
    create_bucket(client)
    return client


@pytest.fixture
def process(
    s3: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Process:
    """Invoke the handler with services on the manual clock (built once, as in one container)."""
    services = FunctionServices.create(
        app.FUNCTION.name, load_environment(ProcessorEnvironment), clock=fake_clock
    )
    monkeypatch.setattr(app.FUNCTION, "services", lambda: services)
    return lambda event: app.lambda_handler(event, lambda_context)


def _raw_key(run_id: str) -> str:
    return f"raw/{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}/{run_id}.json"


def _document(run_id: str, regions: Any = None, services: Any = None) -> dict[str, Any]:
    started = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return raw_document(run_id, regions or REGIONS, services or SERVICES, started_at=started)


def _processed(s3: Any, run_id: str) -> dict[str, Any]:
    key = _raw_key(run_id).replace("raw/", "processed/", 1)
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.mark.parametrize(
    ("tolerance", "failing"), [(50.0, 0), (49.9, 1)], ids=["by-the-tolerance", "by-more"]
)
def test_a_count_changed_by_the_tolerance_passes_the_counts_rule_and_by_more_fails_it(
    tolerance: float, failing: int
) -> None:
    # GIVEN a run with half the services of the run before (-50 %), its other counts unchanged
    raw = RawDocument.model_validate(_document(RUN_1))
    analysis = analyse(raw)
    totals = ProcessedTotals(
        regions=len(raw.regions),
        services=len(raw.services),
        pairs=len(analysis.pairs),
        partitions={},
    )
    previous = totals.model_copy(update={"services": 2 * totals.services})
    # WHEN the quality rules judge it with a count tolerance of 50 %, or just under
    quality = check_quality(raw, analysis, totals, previous, tolerance)
    # THEN the change by exactly the tolerance passes the counts rule, and a larger one fails it
    [counts] = [rule for rule in quality.rules if rule.rule == "counts_vs_previous"]
    assert (counts.checked, counts.failing) == (3, failing)


def test_statistics_rank_partitions_and_matrix(s3: Any, process: Process) -> None:
    # GIVEN a raw document with three regions and four services
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    # WHEN processed
    result = process(event)
    # THEN the processed document has coverage, rank (ties share), partitions and the matrix
    assert result["objects"][0]["status"] == "processed"
    document = _processed(s3, RUN_1)
    regions = {region["code"]: region for region in document["regions"]}
    assert regions["eu-west-1"]["service_count"] == 4
    assert regions["eu-west-1"]["coverage_percent"] == 100.0
    assert regions["eu-west-1"]["rank"] == 1
    assert regions["ap-south-1"]["service_count"] == 3
    assert regions["ap-south-1"]["rank"] == 2
    assert regions["cn-north-1"]["service_count"] == 2
    assert regions["cn-north-1"]["rank"] == 3
    services = {service["code"]: service for service in document["services"]}
    assert services["ec2"]["partitions"] == ["aws", "aws-cn"]
    assert services["braket"]["coverage_percent"] == 33.33
    assert document["availability"]["eks"] == ["ap-south-1", "eu-west-1"]
    assert document["totals"] == {
        "regions": 3,
        "services": 4,
        "pairs": 9,
        "partitions": {"aws": 2, "aws-cn": 1},
    }
    assert document["quality"]["score"] == 100.0
    assert document["changes"]["previous_run_id"] is None


def test_quality_rules_find_missing_names_and_empty_rows(s3: Any, process: Process) -> None:
    # GIVEN a region without a name and without services, a service without a name, one
    # without regions, and a pair naming a region that is not listed
    regions = {**REGIONS, "me-south-1": (None, "aws")}
    services = {
        **SERVICES,
        "nameless": (None, ["ap-south-1"]),
        "nowhere": ("Nowhere", []),
        "ghost": ("Ghost", ["xx-east-9"]),
    }
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1, regions, services))
    # WHEN processed
    process(event)
    # THEN each rule names its failing items and the score is the weighted pass ratio
    quality = _processed(s3, RUN_1)["quality"]
    rules = {rule["rule"]: rule for rule in quality["rules"]}
    assert rules["region_long_names"]["examples"] == ["me-south-1"]
    assert rules["service_long_names"]["examples"] == ["nameless"]
    assert rules["services_with_regions"]["examples"] == ["ghost", "nowhere"]
    assert rules["regions_with_services"]["examples"] == ["me-south-1"]
    assert rules["known_regions"]["examples"] == ["ghost@xx-east-9"]
    assert rules["counts_vs_previous"]["applicable"] is False
    assert quality["failing_rules"] == [
        "region_long_names",
        "service_long_names",
        "services_with_regions",
        "regions_with_services",
        "known_regions",
    ]
    expected = (
        (
            15 * (1 - 1 / 4)
            + 15 * (1 - 1 / 7)
            + 20 * (1 - 2 / 7)
            + 20 * (1 - 1 / 4)
            + 15 * (1 - 1 / 11)
        )
        / 85
        * 100
    )
    assert quality["score"] == round(expected, 1)


def test_changes_since_previous_run_show_a_service_added_and_a_region_removed(
    s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a processed first run
    process(put_json(s3, _raw_key(RUN_1), _document(RUN_1)))
    # WHEN a second run adds a service and loses a region
    regions = {code: value for code, value in REGIONS.items() if code != "cn-north-1"}
    services = {
        code: (name, [region for region in offered if region in regions])
        for code, (name, offered) in SERVICES.items()
    }
    services["bedrock"] = ("Amazon Bedrock", ["eu-west-1"])
    fake_clock.advance(86400)
    result = process(put_json(s3, _raw_key(RUN_2), _document(RUN_2, regions, services)))
    # THEN the changes name them, against the first run, and the count drift is flagged
    changes = _processed(s3, RUN_2)["changes"]
    assert changes == {
        "previous_run_id": RUN_1,
        "services_added": ["bedrock"],
        "services_removed": [],
        "regions_added": [],
        "regions_removed": ["cn-north-1"],
    }
    assert result["objects"][0]["changes"]["services_added"] == 1
    counts_rule = next(
        rule
        for rule in _processed(s3, RUN_2)["quality"]["rules"]
        if rule["rule"] == "counts_vs_previous"
    )
    assert counts_rule["failing"] == 3  # regions -33%, services +25%, pairs -11%
    # AND the first run processed again (new bytes) compares with what came BEFORE it, not with
    # the newest run
    replay = _document(RUN_1)
    replay["metadata"]["warnings"] = ["replayed"]
    process(put_json(s3, _raw_key(RUN_1), replay))
    assert _processed(s3, RUN_1)["changes"]["previous_run_id"] is None


def test_an_unreadable_newer_processed_run_is_skipped_for_the_newest_readable_one(
    s3: Any, process: Process, fake_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a processed first run, then three objects under processed/ that are not processed
    # documents: one not JSON, one a document missing its totals (by hand, or a torn write),
    # and one larger than a processed document may be (the first run's, padded past the limit,
    # which is lowered for the test)
    process(put_json(s3, _raw_key(RUN_1), _document(RUN_1)))
    middle = "20250601T120000Z-00000003"
    later = "20250601T180000Z-00000004"
    latest = "20250601T200000Z-00000005"
    s3.put_object(Bucket=BUCKET, Key=f"processed/2025-06-01/{middle}.json", Body=b"\xff not json")
    broken = _processed(s3, RUN_1)
    del broken["totals"]
    put_json(s3, f"processed/2025-06-01/{later}.json", broken)
    first = s3.get_object(Bucket=BUCKET, Key=f"processed/2025-06-01/{RUN_1}.json")["Body"].read()
    monkeypatch.setattr(storage_module, "PROCESSED_DOCUMENT_BYTES_MAX", len(first))
    s3.put_object(Bucket=BUCKET, Key=f"processed/2025-06-01/{latest}.json", Body=first + b" ")
    # WHEN the second run is processed
    fake_clock.advance(86400)
    result = process(put_json(s3, _raw_key(RUN_2), _document(RUN_2)))
    # THEN it is processed against the first run, naming what it skipped and why (the large
    # one by its size and the limit, unread)
    [processed] = result["objects"]
    assert processed["status"] == "processed"
    assert processed["previous_run_id"] == RUN_1
    assert processed["skipped_previous_runs"] == [
        {
            "key": f"processed/2025-06-01/{latest}.json",
            "reason": f"{len(first) + 1:,} bytes or more, more than the {len(first):,} a "
            "processed document may have; not read",
        },
        {"key": f"processed/2025-06-01/{later}.json", "reason": "totals: Field required"},
        {
            "key": f"processed/2025-06-01/{middle}.json",
            "reason": processed["skipped_previous_runs"][2]["reason"],
        },
    ]
    assert processed["skipped_previous_runs"][2]["reason"].startswith("document: Invalid JSON")
    assert _processed(s3, RUN_2)["changes"]["previous_run_id"] == RUN_1


def test_at_most_ten_unreadable_processed_runs_are_tried_before_comparing_with_none(
    s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a processed first run, then eleven junk objects under processed/ after it
    process(put_json(s3, _raw_key(RUN_1), _document(RUN_1)))
    for hour in range(6, 17):
        key = f"processed/2025-06-01/20250601T{hour:02d}0000Z-000000{hour:02d}.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"junk")
    # WHEN the second run is processed
    fake_clock.advance(86400)
    result = process(put_json(s3, _raw_key(RUN_2), _document(RUN_2)))
    # THEN it tried the ten newest, skipped them, and compares with no previous run
    [processed] = result["objects"]
    assert processed["status"] == "processed"
    assert len(processed["skipped_previous_runs"]) == 10
    assert processed["previous_run_id"] is None


NOT_A_DAY_RUN = "20250631T050000Z-0000000a"
"""A run id in the pattern whose date does not exist (June has 30 days): no run ever had it."""


def test_a_stray_processed_key_whose_run_id_is_not_a_date_is_not_a_previous_run(
    s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a processed first run, and an object put by hand under processed/ whose run id has
    # the pattern but a date that does not exist
    process(put_json(s3, _raw_key(RUN_1), _document(RUN_1)))
    s3.put_object(Bucket=BUCKET, Key=f"processed/2025-06-01/{NOT_A_DAY_RUN}.json", Body=b"{}")
    # WHEN the second run is processed (its listing of the processed runs meets that key)
    fake_clock.advance(86400)
    result = process(put_json(s3, _raw_key(RUN_2), _document(RUN_2)))
    # THEN the stray key is no processed run: the second run is compared with the first, where
    # reading its run id's date failed every later run of the pipeline
    [processed] = result["objects"]
    assert processed["status"] == "processed"
    assert processed["previous_run_id"] == RUN_1


def test_a_raw_key_whose_run_id_is_not_a_date_is_rejected_naming_the_key(
    s3: Any, process: Process
) -> None:
    # GIVEN a raw document under a key whose run id has the pattern but a date that does not
    # exist
    key = f"raw/2025-06-30/{NOT_A_DAY_RUN}.json"
    event = put_json(s3, key, _document(RUN_1))
    # WHEN processed
    result = process(event)["objects"][0]
    # THEN it is rejected as a key that does not follow the layout, instead of failing the
    # invocation (and every retry of it) with the date's ValueError
    assert result["status"] == "rejected"
    assert "key does not follow" in result["reason"]
    assert keys_under(s3, "processed/") == []


@pytest.mark.parametrize("report_day", ["2025-06-02", "2025-06-03"])
def test_a_raw_document_dated_another_day_than_its_key_is_rejected_naming_the_field(
    s3: Any, process: Process, report_day: str
) -> None:
    # GIVEN a raw document under raw/2025-06-01/ whose metadata dates it another report day (a
    # day or two later: its processed document and report would be filed apart from its raw
    # document)
    document = _document(RUN_1)
    document["metadata"]["report_day"] = report_day
    event = put_json(s3, _raw_key(RUN_1), document)
    # WHEN processed
    result = process(event)["objects"][0]
    # THEN it is rejected naming the field and both days, and nothing is written to processed/
    assert result["status"] == "rejected"
    assert result["reason"] == (
        f"metadata.report_day {report_day} does not match the key's day 2025-06-01"
    )
    assert keys_under(s3, "processed/") == []


def test_a_raw_document_listing_a_long_service_code_twice_is_rejected_quoting_a_short_prefix(
    s3: Any, process: Process
) -> None:
    # GIVEN a raw document whose counts add up but which lists a 10 kB service code twice
    long_code = "x" * 10_000
    document = _document(RUN_1, services={**SERVICES, long_code: ("Long", ["eu-west-1"])})
    document["services"].append(document["services"][-1])
    document["metadata"]["counts"]["services"] += 1
    document["metadata"]["counts"]["pairs"] += 1
    event = put_json(s3, _raw_key(RUN_1), document)
    # WHEN processed
    result = process(event)["objects"][0]
    # THEN it is rejected as a duplicate, quoting only a short prefix of the code
    assert result["status"] == "rejected"
    assert "duplicate service codes: 'xxx" in result["reason"]
    assert len(result["reason"]) < 300


def test_an_invalid_raw_document_is_moved_to_rejected_with_its_reason(
    s3: Any, process: Process, alert_inbox: Any
) -> None:
    # GIVEN a raw document whose counts do not add up
    document = _document(RUN_1)
    document["metadata"]["counts"]["pairs"] = 999
    key = _raw_key(RUN_1)
    event = put_json(s3, key, document)
    # WHEN processed
    result = process(event)["objects"][0]
    # THEN it is moved to raw/rejected/ with a reason, nothing is processed, and a warning goes out
    assert result["status"] == "rejected"
    assert "counts" in result["reason"]
    assert keys_under(s3, "raw/") == [
        "raw/rejected/2025-06-01/20250601T050000Z-00000001.json",
        "raw/rejected/2025-06-01/20250601T050000Z-00000001.reason.json",
    ]
    reason = json.loads(s3.get_object(Bucket=BUCKET, Key=result["reason_key"])["Body"].read())
    assert reason["key"] == key and reason["reason"] == result["reason"]
    moved = json.loads(s3.get_object(Bucket=BUCKET, Key=result["rejected_key"])["Body"].read())
    assert moved == document
    assert keys_under(s3, "processed/") == []
    alerts = alert_inbox.receive()
    assert [(a.alert["severity"], a.alert["title"]) for a in alerts] == [
        ("warning", "Raw availability document rejected")
    ]
    assert result["alert_published"] is True


def test_a_rejection_reason_object_over_its_size_limit_is_not_read_and_written_again(
    s3: Any, process: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an invalid raw document, and at its reason key an object naming its key and ETag
    # (as a rejection of it would) but larger than a reason may be (padded past the limit,
    # which is lowered for the test)
    key = _raw_key(RUN_1)
    event = put_json(s3, key, _invalid_document(RUN_1))
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    reason_key = "raw/rejected/2025-06-01/20250601T050000Z-00000001.reason.json"
    stray = json.dumps({"key": key, "etag": etag, "reason": "not this function's"}).encode()
    monkeypatch.setattr(storage_module, "REASON_BYTES_MAX", len(stray))
    s3.put_object(Bucket=BUCKET, Key=reason_key, Body=stray + b" ")
    # WHEN it is processed
    result = process(event)["objects"][0]
    # THEN the large object is not taken for a rejection written before: the document is
    # rejected with its own reason, written over the object
    assert result["status"] == "rejected"
    assert "counts" in result["reason"]
    written = json.loads(s3.get_object(Bucket=BUCKET, Key=reason_key)["Body"].read())
    assert written["reason"] == result["reason"]


def test_a_raw_document_over_the_size_limit_is_rejected_unread_naming_its_size(
    s3: Any, process: Process, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a raw document one byte longer than the processor reads (the limit lowered to it)
    key = _raw_key(RUN_1)
    event = put_json(s3, key, _document(RUN_1))
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    monkeypatch.setattr(process_module, "RAW_DOCUMENT_BYTES_MAX", size - 1)
    # WHEN processed
    result = process(event)["objects"][0]
    # THEN it is rejected naming its size and the limit, moved out of raw/ whole, and warned of
    assert result["status"] == "rejected"
    assert result["reason"] == (
        f"document: {size:,} bytes or more, more than the {size - 1:,} a raw document may have"
    )
    moved = s3.get_object(Bucket=BUCKET, Key=result["rejected_key"])
    assert moved["ContentLength"] == size
    assert keys_under(s3, "processed/") == []
    assert [a.alert["title"] for a in alert_inbox.receive()] == [
        "Raw availability document rejected"
    ]


def test_a_raw_document_whose_processed_document_report_generator_would_not_read_is_rejected(
    s3: Any, process: Process, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a valid raw document, and report_generator's read bound lowered under the size of
    # the processed document made from it
    key = _raw_key(RUN_1)
    document = _document(RUN_1)
    event = put_json(s3, key, document)
    monkeypatch.setattr(process_module, "PROCESSED_DOCUMENT_BYTES_MAX", 1000)
    # WHEN processed
    result = process(event)["objects"][0]
    # THEN the raw document is rejected naming the processed size and the bound, moved out of
    # raw/ whole with its reason, warned of, and nothing else is written
    assert result["status"] == "rejected"
    match = re.fullmatch(
        r"processed document: ([\d,]+) bytes, more than the 1,000 report_generator reads of one",
        result["reason"],
    )
    assert match is not None and int(match[1].replace(",", "")) > 1000
    moved = json.loads(s3.get_object(Bucket=BUCKET, Key=result["rejected_key"])["Body"].read())
    assert moved == document
    assert keys_under(s3, "") == [result["rejected_key"], result["reason_key"]]
    assert [a.alert["title"] for a in alert_inbox.receive()] == [
        "Raw availability document rejected"
    ]


def test_a_raw_document_listing_a_region_twice_for_a_service_is_rejected_naming_both(
    s3: Any, process: Process
) -> None:
    # GIVEN a raw document whose counts add up but whose EKS lists eu-west-1 twice (so its
    # pair count, 10, is one more than the matrix would hold)
    services = {**SERVICES, "eks": ("Amazon EKS", ["ap-south-1", "eu-west-1", "eu-west-1"])}
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1, services=services))
    # WHEN processed
    result = process(event)["objects"][0]
    # THEN it is rejected naming the service and the region, and nothing is processed
    assert result["status"] == "rejected"
    assert "'eks'" in result["reason"] and "'eu-west-1'" in result["reason"]
    assert keys_under(s3, "processed/") == []


def test_a_document_that_is_not_json_is_rejected(s3: Any, process: Process) -> None:
    # GIVEN bytes that are not JSON under a raw key
    key = _raw_key(RUN_1)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"<html>")
    event = event_for(s3, BUCKET, key)
    # WHEN processed THEN it is rejected naming the document
    result = process(event)["objects"][0]
    assert result["status"] == "rejected"
    assert result["reason"].startswith("document")


@pytest.mark.parametrize(
    "key",
    [
        "raw/rejected/2025-06-01/20250601T050000Z-00000001.json",
        "processed/2025-06-01/20250601T050000Z-00000001.json",
    ],
)
def test_keys_outside_raw_runs_are_ignored(s3: Any, process: Process, key: str) -> None:
    # GIVEN an event for a rejected document or another prefix
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    # WHEN handled THEN it is ignored and nothing moves
    result = process(s3_event(BUCKET, key, '"abc"'))["objects"][0]
    assert result["status"] == "ignored"
    assert keys_under(s3, "") == [key]


def test_a_duplicate_event_is_processed_once(
    s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a processed raw document
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    first = process(event)["objects"][0]
    written = _processed(s3, RUN_1)["metadata"]["processed_at"]
    # WHEN the same event arrives again later
    fake_clock.advance(timedelta(minutes=5).total_seconds())
    second = process(event)["objects"][0]
    # THEN the first result is returned and the processed document is not rewritten
    assert second["status"] == "repeat"
    assert second["processed_key"] == first["processed_key"]
    assert _processed(s3, RUN_1)["metadata"]["processed_at"] == written


def test_a_document_whose_invocation_was_killed_is_processed_by_the_platforms_retry(
    s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a raw document, and S3 never answering the write of its processed document, so the
    # invocation (60 s left) hangs there holding the object's claim until Lambda kills it
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    hang = hang_first_attempt(app.FUNCTION.services().hub_client("s3"), "s3", "PutObject")
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(process, event)
        assert hang.entered.wait(THREAD_REACHED_SECONDS)
        # WHEN Lambda kills it at its deadline and retries the event a minute later
        fake_clock.advance(60 + 60)
        retried = process(event)["objects"][0]
        hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)
    # THEN the retry processed the document (the dead invocation's claim did not answer
    # `in_progress`, which would end the retries with the document never processed)
    assert retried["status"] == "processed"
    assert _processed(s3, RUN_1)["metadata"]["run_id"] == RUN_1
    # AND a later copy of the event is a repeat
    assert process(event)["objects"][0]["status"] == "repeat"


def test_a_retry_of_an_invocation_killed_after_writing_its_document_does_not_write_it_again(
    s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a raw document whose processed document was written, and DynamoDB never answering
    # the write that records it done, so the invocation hangs there until Lambda kills it
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    hang = hang_completion_record(app.FUNCTION.services().hub_client("dynamodb"))
    processed_key = _raw_key(RUN_1).replace("raw/", "processed/", 1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(process, event)
        assert hang.entered.wait(THREAD_REACHED_SECONDS)
        written = s3.head_object(Bucket=BUCKET, Key=processed_key)["ETag"]
        written_at = _processed(s3, RUN_1)["metadata"]["processed_at"]
        # WHEN Lambda kills it at its deadline and retries the event two minutes later
        fake_clock.advance(120)
        retried = process(event)["objects"][0]
        hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)
    # THEN the retry answers with the document already written and does not write a second
    # version of it (which would start report_generator a second time for the same run)
    assert retried["status"] == "processed"
    assert retried["processed_key"] == processed_key
    assert s3.head_object(Bucket=BUCKET, Key=processed_key)["ETag"] == written
    assert _processed(s3, RUN_1)["metadata"]["processed_at"] == written_at


def test_a_malformed_event_is_refused_naming_the_field(process: Process) -> None:
    # GIVEN a notification without the object key WHEN handled THEN the field is named
    event = s3_event(BUCKET, "raw/x.json", '"abc"')
    del event["Records"][0]["s3"]["object"]["key"]
    result = process(event)
    assert result == {
        "status": "error",
        "error": "invalid event: Records[0].s3.object.key: Field required",
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda record: record.pop("s3"), "Records[0].s3"),
        (lambda record: record["s3"].pop("object"), "Records[0].s3.object"),
        (lambda record: record["s3"]["object"].pop("eTag"), "Records[0].s3.object.eTag"),
        (lambda record: record.update(eventName="ObjectRemoved:Delete"), "Records[0].eventName"),
    ],
)
def test_a_record_missing_its_object_or_of_another_kind_is_refused_naming_the_field(
    process: Process, s3: Any, change: Callable[[dict[str, Any]], object], field: str
) -> None:
    # GIVEN a notification whose record lacks a part S3 always sends, or is not ObjectCreated
    event = s3_event(BUCKET, _raw_key(RUN_1), '"abc"')
    change(event["Records"][0])
    # WHEN handled THEN one error names the field and nothing is written
    result = process(event)
    assert result["status"] == "error"
    assert result["error"].startswith(f"invalid event: {field}: ")
    assert keys_under(s3, "") == []


def test_a_run_is_processed_under_its_report_day_not_its_utc_day(s3: Any, process: Process) -> None:
    # GIVEN a raw document of a fetch at 23:30 UTC dated the next day in the schedule time zone
    run_id = "20250601T233000Z-00000003"
    document = _document(run_id)
    document["metadata"]["report_day"] = "2025-06-02"
    event = put_json(s3, f"raw/2025-06-02/{run_id}.json", document)
    # WHEN processed
    result = process(event)
    # THEN the processed document is under the report day too
    assert result["objects"][0]["processed_key"] == f"processed/2025-06-02/{run_id}.json"


def test_the_previous_run_is_the_one_before_in_time_after_the_schedule_time_zone_changed(
    s3: Any, process: Process
) -> None:
    # GIVEN a run at 20:00 UTC dated the next day in Asia/Kolkata, processed
    in_kolkata = "20250601T200000Z-00000004"
    first = _document(in_kolkata)
    first["metadata"]["report_day"] = "2025-06-02"
    process(put_json(s3, f"raw/2025-06-02/{in_kolkata}.json", first))
    # WHEN, the stack's schedule time zone changed to America/Los_Angeles, a run two hours later
    # (dated 2025-06-01 there) is processed
    in_los_angeles = "20250601T220000Z-00000005"
    second = _document(in_los_angeles)
    second["metadata"]["report_day"] = "2025-06-01"
    process(put_json(s3, f"raw/2025-06-01/{in_los_angeles}.json", second))
    # THEN it is compared with the run two hours before it, though that one's key sorts after
    assert _processed(s3, in_los_angeles)["changes"]["previous_run_id"] == in_kolkata


@pytest.fixture
def versioned_s3(s3: Any) -> Any:
    """The data bucket with versioning on, as the program creates it."""
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def versions_of(s3: Any, key: str) -> list[str]:
    """The version ids of `key` (the delete markers left out), newest first."""
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    return [version["VersionId"] for version in listed if version["Key"] == key]


def _invalid_document(run_id: str) -> dict[str, Any]:
    document = _document(run_id)
    document["metadata"]["counts"]["pairs"] = 999
    return document


def test_two_versions_in_one_notification_process_the_newer_and_never_the_older_over_it(
    versioned_s3: Any, process: Process, alert_inbox: Any
) -> None:
    # GIVEN a valid raw document fetched again as an invalid one in the versioned data bucket,
    # and one notification carrying both versions' records, each naming its own version
    key = _raw_key(RUN_1)
    valid = put_json(versioned_s3, key, _document(RUN_1))
    invalid = put_json(versioned_s3, key, _invalid_document(RUN_1))
    batch = {"Records": valid["Records"] + invalid["Records"]}
    # WHEN the processor handles the notification
    results = process(batch)["objects"]
    # THEN the older version, which the key no longer holds, is superseded and writes nothing;
    # the newer one is rejected by its own record, once, with one warning
    assert [result["status"] for result in results] == ["superseded", "rejected"]
    assert results[0]["version_id"] == valid["Records"][0]["s3"]["object"]["versionId"]
    assert keys_under(versioned_s3, "processed/") == []
    rejected = versioned_s3.get_object(Bucket=BUCKET, Key=results[1]["rejected_key"])
    assert json.loads(rejected["Body"].read()) == _invalid_document(RUN_1)
    assert [a.alert["title"] for a in alert_inbox.receive()] == [
        "Raw availability document rejected"
    ]
    # AND only the rejected version left raw/: the key holds the older version again
    older_version = valid["Records"][0]["s3"]["object"]["versionId"]
    assert versioned_s3.head_object(Bucket=BUCKET, Key=key)["VersionId"] == older_version


def test_a_late_event_of_an_older_version_leaves_the_newer_processed_document_alone(
    versioned_s3: Any, process: Process
) -> None:
    # GIVEN a raw document fetched twice, the newer version processed from its event
    key = _raw_key(RUN_1)
    older = put_json(versioned_s3, key, _document(RUN_1))
    newer = put_json(versioned_s3, key, _document(RUN_1, services=dict(list(SERVICES.items())[:3])))
    assert process(newer)["objects"][0]["status"] == "processed"
    processed_key = key.replace("raw/", "processed/", 1)
    written = versions_of(versioned_s3, processed_key)
    # WHEN the older version's event arrives afterwards (S3 does not order its notifications)
    result = process(older)["objects"][0]
    # THEN it is superseded: the processed document is still the newer version's, unwritten
    assert result["status"] == "superseded"
    assert versions_of(versioned_s3, processed_key) == written
    newer_etag = newer["Records"][0]["s3"]["object"]["eTag"]
    assert _processed(versioned_s3, RUN_1)["metadata"]["raw_etag"] == newer_etag


def test_the_version_the_event_names_is_read_even_when_a_newer_one_lands_first(
    versioned_s3: Any, process: Process
) -> None:
    # GIVEN the event of a raw document's only version, and a second fetch that writes a newer
    # version (one service fewer) just before the processor reads the document
    key = _raw_key(RUN_1)
    event = put_json(versioned_s3, key, _document(RUN_1))
    newer: list[dict[str, Any]] = []

    def fetch_again_first(params: dict[str, Any], **_: Any) -> None:
        if not newer and params["Key"] == key:
            newer_document = _document(RUN_1, services=dict(list(SERVICES.items())[:3]))
            newer.append(put_json(versioned_s3, key, newer_document))

    app.FUNCTION.services().hub_client("s3").meta.events.register(
        "before-parameter-build.s3.GetObject", fetch_again_first
    )
    # WHEN the processor handles the event
    result = process(event)["objects"][0]
    # THEN it did not process the newer version's data under this event: the newer version is
    # left to its own event, and nothing was written
    assert len(newer) == 1
    assert result["status"] == "superseded"
    assert keys_under(versioned_s3, "processed/") == []
    # AND the newer version's own event processes it
    assert process(newer[0])["objects"][0]["status"] == "processed"
    assert _processed(versioned_s3, RUN_1)["totals"]["services"] == 3


def test_a_newer_version_processed_while_an_older_one_is_never_overwritten_by_it(
    versioned_s3: Any, process: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a raw document being processed from its first version when a second fetch writes a
    # newer version and that version is processed at once, just before the first writes its
    # processed document (in this one thread the second cannot wait for the first: it does not
    # wait)
    monkeypatch.setattr(process_module, "RUN_LOCK_WAIT_SECONDS", 0.0)
    key = _raw_key(RUN_1)
    processed_key = key.replace("raw/", "processed/", 1)
    event = put_json(versioned_s3, key, _document(RUN_1))
    services = app.FUNCTION.services()
    newer: list[CreatedObject] = []
    meanwhile: list[dict[str, Any] | str] = []

    def newer_version_meanwhile(params: dict[str, Any], **_: Any) -> None:
        if newer or params["Key"] != processed_key:
            return
        newer_document = _document(RUN_1, services=dict(list(SERVICES.items())[:3]))
        record = put_json(versioned_s3, key, newer_document)["Records"][0]["s3"]["object"]
        newer.append(CreatedObject(BUCKET, key, record["eTag"], record["versionId"]))
        try:
            meanwhile.append(
                process_module.process_raw_document(
                    newer[0], services, app.FUNCTION.logger, Invocation.local()
                )
            )
        except LockNotAcquiredError:
            meanwhile.append("waited for the older version")

    services.hub_client("s3").meta.events.register(
        "before-parameter-build.s3.PutObject", newer_version_meanwhile
    )
    # WHEN the first version is processed
    assert process(event)["objects"][0]["status"] == "processed"
    # THEN the newer version waited for it, and is processed once it is done
    assert meanwhile == ["waited for the older version"]
    retried = process_module.process_raw_document(
        newer[0], services, app.FUNCTION.logger, Invocation.local()
    )
    assert retried["status"] == "processed"
    # AND the run's processed document is the newer version's
    assert _processed(versioned_s3, RUN_1)["metadata"]["raw_etag"] == newer[0].etag


def test_a_run_lock_taken_after_a_wait_ends_no_later_than_the_invocation(
    s3: Any,
    process: Process,
    state_table: StateTable,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an invocation with 100 s left, and the run's lock held by another version's
    # invocation, which releases it after 50 s of this one's waits
    lock_name = f"{process_module.RUN_LOCK_PREFIX}{RUN_1}"
    state_table.acquire_lock(lock_name, "other-version", lease_seconds=900)
    time = LambdaTime(seconds_left=100)
    invocation_ends = fake_clock.now() + timedelta(seconds=time.seconds_left)

    def wait(seconds: float) -> None:
        time.spend(seconds)
        fake_clock.advance(seconds)
        if time.spent == 50:
            state_table.release_lock(lock_name, "other-version")

    monkeypatch.setattr(state_table_module.time, "sleep", wait)
    lock_ends: list[datetime] = []

    def read_the_lease(**_: Any) -> None:
        item = boto3.client("dynamodb", region_name=REGION).get_item(
            TableName=STATE_TABLE_NAME, Key={"pk": {"S": f"LOCK#{lock_name}"}, "sk": {"S": "LOCK"}}
        )["Item"]
        lock_ends.append(datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC))

    services = app.FUNCTION.services()
    services.hub_client("s3").meta.events.register(
        "before-parameter-build.s3.GetObject", read_the_lease
    )
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))["Records"][0]["s3"]
    obj = CreatedObject(BUCKET, _raw_key(RUN_1), event["object"]["eTag"], None)
    # WHEN this invocation waits for the lock, takes it and processes the run
    result = process_module.process_raw_document(
        obj, services, app.FUNCTION.logger, Invocation.from_context(time.context())
    )
    # THEN its lease ended no later than the invocation: one killed at its deadline does not
    # keep its lock, and so refuse the platform's retry, for up to the wait longer
    assert result["status"] == "processed"
    assert time.spent == 50
    assert lock_ends
    assert max(lock_ends) <= invocation_ends


def test_a_processed_document_s3_did_not_take_is_written_by_the_platforms_retry(
    versioned_s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a raw document, and S3 failing every attempt (botocore's retries included) to take
    # its processed document
    event = put_json(versioned_s3, _raw_key(RUN_1), _document(RUN_1))
    fault = fail_every_attempt(app.FUNCTION.services().hub_client("s3"), "s3", "PutObject")
    # WHEN the processor handles the event
    # THEN the invocation fails naming the object, so Lambda retries the event (then sends it to
    # the dead-letter queue), instead of succeeding with the run never processed
    with pytest.raises(ObjectsToRetryError, match="EndpointConnectionError") as failed:
        process(event)
    assert [key for key, _ in failed.value.failures] == [_raw_key(RUN_1)]
    assert fault.attempts > 1
    assert keys_under(versioned_s3, "processed/") == []
    # WHEN S3 takes writes again by Lambda's retry a minute later
    fault.healed = True
    fake_clock.advance(60)
    retried = process(event)
    # THEN the retry processes the run, writing its processed document once
    assert retried["status"] == "ok"
    assert retried["objects"][0]["status"] == "processed"
    processed_key = _raw_key(RUN_1).replace("raw/", "processed/", 1)
    assert len(versions_of(versioned_s3, processed_key)) == 1
    # AND a further copy of the event is a repeat
    assert process(event)["objects"][0]["status"] == "repeat"


def test_a_processed_document_answered_with_a_proxys_page_is_written_by_the_platforms_retry(
    s3: Any, process: Process
) -> None:
    # GIVEN a raw document, and S3 answering the write of its processed document with a proxy's
    # well-formed page (HTTP 200), which botocore would read as the write made: it may not have
    # been made
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    client = app.FUNCTION.services().hub_client("s3")
    page = answer_malformed(
        client, "s3", "PutObject", b"<html>gateway</html>", url_part="processed/"
    )
    # WHEN the processor handles the event
    # THEN the invocation fails naming the answer, so Lambda retries the event, instead of
    # succeeding with the run maybe never processed
    with pytest.raises(ObjectsToRetryError, match="PutObject answered with markup"):
        process(event)
    assert page.answered == 1
    # AND WHEN Lambda retries the event with S3 answering the write itself
    client.meta.events.unregister("before-send.s3.PutObject", page)
    retried = process(event)
    # THEN the run is processed
    assert retried["objects"][0]["status"] == "processed"


@pytest.mark.parametrize(
    ("versioning", "etag"),
    [(False, None), (True, None), (True, '"cafe"')],
    ids=["unversioned", "versioned", "versioned, the cache's own etag"],
)
def test_a_raw_document_read_answered_with_a_proxys_page_is_processed_by_the_platforms_retry(
    s3: Any, process: Process, alert_inbox: Any, versioning: bool, etag: str | None
) -> None:
    # GIVEN a valid raw document, and S3 answering its read with a proxy's page (HTTP 200,
    # without the object's ETag), which botocore hands over as the object's bytes
    if versioning:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    alert_inbox.receive()
    client = app.FUNCTION.services().hub_client("s3")
    page = answer_malformed(
        client, "s3", "GetObject", b"<html>gateway</html>", url_part="raw/", etag=etag
    )
    # WHEN the processor handles the event
    # THEN the invocation fails naming the answer, so Lambda retries the event, instead of
    # rejecting the document as invalid (moved out of raw/, a warning sent) or failing it for
    # good
    with pytest.raises(ObjectsToRetryError, match="GetObject answered without"):
        process(event)
    assert page.answered >= 1
    assert keys_under(s3, "raw/rejected/") == []
    assert alert_inbox.receive() == []
    # AND WHEN Lambda retries the event with S3 answering the read itself
    client.meta.events.unregister("before-send.s3.GetObject", page)
    retried = process(event)
    # THEN the run is processed
    assert retried["objects"][0]["status"] == "processed"


def test_a_version_check_answered_with_a_proxys_headers_is_retried_not_superseded(
    versioned_s3: Any, process: Process
) -> None:
    # GIVEN a valid raw document, and its key's check for the version the event names (a HEAD)
    # answered by a proxy: HTTP 200 without S3's ETag and version headers
    event = put_json(versioned_s3, _raw_key(RUN_1), _document(RUN_1))
    client = app.FUNCTION.services().hub_client("s3")
    page = answer_malformed(client, "s3", "HeadObject", b"", url_part="raw/")
    # WHEN the processor handles the event
    # THEN the invocation fails naming the answer, so Lambda retries the event, instead of
    # recording the run superseded, after which no retry or copy of the event processes it
    with pytest.raises(ObjectsToRetryError, match="HeadObject answered without"):
        process(event)
    assert page.answered == 1
    # AND WHEN Lambda retries the event with S3 answering the check itself
    client.meta.events.unregister("before-send.s3.HeadObject", page)
    # THEN the run is processed
    assert process(event)["objects"][0]["status"] == "processed"


PREVIOUS_RUN_KEY = "processed/2025-05-31/20250531T050000Z-00000000.json"


@pytest.mark.parametrize(
    ("trickling_key", "document", "status"),
    [
        pytest.param(_raw_key(RUN_1), _document(RUN_1), "processed", id="raw document"),
        pytest.param(
            PREVIOUS_RUN_KEY, _document(RUN_1), "processed", id="previous run's processed document"
        ),
        pytest.param(
            storage_module.rejected_keys(_raw_key(RUN_1))[1],
            {"metadata": {}},
            "rejected",
            id="rejection reason already written",
        ),
    ],
)
def test_a_document_that_trickles_is_given_up_in_the_time_left_and_retried_naming_its_key(
    s3: Any, process: Process, trickling_key: str, document: dict[str, Any], status: str
) -> None:
    # GIVEN a raw document (valid, or not, then rejected) and an earlier run's processed
    # document (which does not validate), one of them (or the reason of an earlier rejection)
    # a body S3 sends a byte every 50 ms (each read well within the client's read timeout;
    # 40 s for its 800 bytes), and an invocation with the time to record the object's outcome
    # and 0.2 s more
    s3.put_object(Bucket=BUCKET, Key=PREVIOUS_RUN_KEY, Body=b"{}")
    event = put_json(s3, _raw_key(RUN_1), document)
    left = round((OUTCOME_SECONDS + 0.2) * 1000)
    client = app.FUNCTION.services().hub_client("s3")
    # WHEN the processor handles the event
    # THEN the read is given up once its time is up, long before its last byte, and the
    # invocation fails naming the key, so Lambda retries the event, instead of being ended by
    # Lambda in the read
    with (
        trickling_get_object(client, trickling_key, 800) as peer,
        pytest.raises(ObjectsToRetryError, match="did not all come within") as failed,
    ):
        app.lambda_handler(event, ContextRunningOutOfTime(millis_left=[left]))
    assert peer.sent < 800
    [(failed_key, error)] = failed.value.failures
    assert failed_key == _raw_key(RUN_1)
    assert trickling_key in error
    # AND WHEN Lambda retries the event with S3 sending the body at its usual pace
    retried = process(event)
    # THEN the run is processed (or the document rejected)
    assert retried["objects"][0]["status"] == status


def test_a_previous_run_listing_of_endless_empty_pages_is_cut_short_in_time_and_retried(
    s3: Any, process: Process
) -> None:
    # GIVEN a valid raw document, an invocation with 45 s left, and S3 answering every page of
    # the listing of the processed runs with no object and a next page under a new token, a
    # second a page
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    time = LambdaTime(45.0)
    listing = EndlessListing(time, "processed/")
    client = app.FUNCTION.services().hub_client("s3")
    client.meta.events.register_first("before-send.s3.ListObjectsV2", listing)
    # WHEN the processor handles the event
    # THEN the listing stops while the object's outcome still has its time, and the invocation
    # fails naming the key, so Lambda retries the event, instead of being ended by Lambda in
    # the listing or comparing the run with none
    with pytest.raises(ObjectsToRetryError, match="ListObjectsV2 read cut short") as failed:
        app.lambda_handler(event, time.context())
    assert listing.pages > 1
    assert time.seconds_left - time.spent >= OUTCOME_SECONDS
    assert [key for key, _ in failed.value.failures] == [_raw_key(RUN_1)]
    assert keys_under(s3, "processed/") == []


def test_a_retry_after_the_done_record_failed_keeps_the_processed_document_as_written(
    versioned_s3: Any, process: Process, fake_clock: ManualClock
) -> None:
    # GIVEN a raw document, and DynamoDB failing every attempt to record it done (its claim and
    # the run's lock go through)
    event = put_json(versioned_s3, _raw_key(RUN_1), _document(RUN_1))
    processed_key = _raw_key(RUN_1).replace("raw/", "processed/", 1)
    record_done = CompletionRecordFault("PutItem")
    dynamodb = app.FUNCTION.services().hub_client("dynamodb")
    dynamodb.meta.events.register_first("before-send.dynamodb.PutItem", record_done)
    # WHEN the processor handles the event
    # THEN the invocation fails after writing the processed document
    with pytest.raises(ObjectsToRetryError):
        process(event)
    written = versioned_s3.get_object(Bucket=BUCKET, Key=processed_key)["Body"].read()
    # WHEN DynamoDB answers again by Lambda's retry two minutes later
    record_done.healed = True
    fake_clock.advance(120)
    retried = process(event)["objects"][0]
    # THEN the retry answers with the document already written: byte for byte the same, and no
    # second version (which would start report_generator a second time for the run)
    assert retried["status"] == "processed"
    assert len(versions_of(versioned_s3, processed_key)) == 1
    assert versioned_s3.get_object(Bucket=BUCKET, Key=processed_key)["Body"].read() == written


def test_a_write_s3_refuses_is_reported_as_the_objects_error_with_a_warning_and_not_retried(
    s3: Any, process: Process, alert_inbox: Any
) -> None:
    # GIVEN a raw document, and S3 refusing the write of its processed document (access denied:
    # no retry makes it pass)
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))

    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")

    app.FUNCTION.services().hub_client("s3").meta.events.register("before-call.s3.PutObject", deny)
    # WHEN the processor handles the event
    result = process(event)
    # THEN the invocation succeeds with the object's error and the run partial: retrying the
    # event would only fail again
    assert result["status"] == "partial"
    [failed] = result["objects"]
    assert failed["status"] == "error"
    assert "AccessDenied" in failed["error"]
    assert keys_under(s3, "processed/") == []
    # AND a warning names the object and the error, since nothing else would say that the run's
    # processed document (and its report) is missing
    [warning] = [a.alert for a in alert_inbox.receive()]
    assert (warning["severity"], warning["title"]) == ("warning", "S3 object not handled")
    assert warning["resource"] == f"s3://{BUCKET}/{_raw_key(RUN_1)}"
    assert "AccessDenied" in warning["detail"]
    assert failed["alert_published"] is True


def test_a_previous_run_listing_answered_with_a_proxys_page_is_retried_not_a_first_run(
    s3: Any, process: Process, fake_clock: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN a processed first run, and S3 answering the listing of processed runs with a proxy's
    # well-formed page (HTTP 200), which botocore would parse into an answer without IsTruncated or
    # Contents
    process(put_json(s3, _raw_key(RUN_1), _document(RUN_1)))
    fake_clock.advance(86400)
    client = app.FUNCTION.services().hub_client("s3")
    page = answer_malformed(client, "s3", "ListObjectsV2", b"<html>gateway</html>")
    event = put_json(s3, _raw_key(RUN_2), _document(RUN_2))
    # WHEN the second run's raw document arrives
    # THEN it is not processed as a first run with nothing before it: the invocation fails naming
    # what the answer lacked, for Lambda to retry the event, and nothing is written for it yet
    with pytest.raises(
        ObjectsToRetryError, match="ListObjectsV2 answered without <ListBucketResult>"
    ):
        process(event)
    assert page.answered == 1
    assert keys_under(s3, "processed/") == [_raw_key(RUN_1).replace("raw/", "processed/", 1)]
    assert alert_inbox.receive() == []
    # AND WHEN Lambda retries the event with S3 answering the listing itself
    client.meta.events.unregister("before-send.s3.ListObjectsV2", page)
    retried = process(event)
    # THEN the run is processed against the first one
    assert retried["status"] == "ok"
    assert _raw_key(RUN_2).replace("raw/", "processed/", 1) in keys_under(s3, "processed/")


def test_a_rejection_whose_copy_is_answered_with_a_proxys_page_keeps_the_document_in_raw(
    s3: Any, process: Process, alert_inbox: Any
) -> None:
    # GIVEN an invalid raw document, and S3 answering its copy to raw/rejected/ with a proxy's
    # well-formed page (HTTP 200), which botocore would parse into a copy made: the copy may not
    # have been made
    key = _raw_key(RUN_1)
    event = put_json(s3, key, _invalid_document(RUN_1))
    client = app.FUNCTION.services().hub_client("s3")
    page = answer_malformed(client, "s3", "CopyObject", b"<html>gateway</html>")
    # WHEN the processor handles the event
    # THEN the invocation fails naming the answer, for Lambda to retry the event: the document
    # is still in raw/ (not deleted after a copy unconfirmed) and no warning went out yet
    with pytest.raises(ObjectsToRetryError, match="CopyObject answered without <CopyObjectResult>"):
        process(event)
    assert page.answered == 1
    assert key in keys_under(s3, "raw/")
    assert alert_inbox.receive() == []
    # AND WHEN Lambda retries the event with S3 answering the copy itself
    client.meta.events.unregister("before-send.s3.CopyObject", page)
    result = process(event)["objects"][0]
    # THEN the document is moved to raw/rejected/
    assert result["status"] == "rejected"
    assert keys_under(s3, "raw/") == [result["rejected_key"], result["reason_key"]]


def test_a_rejection_interrupted_before_its_delete_is_finished_by_the_retry_as_first_written(
    versioned_s3: Any, process: Process, fake_clock: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN an invalid raw document, and S3 failing every attempt to delete it from raw/ (its
    # copy to raw/rejected/ and the reason went through)
    key = _raw_key(RUN_1)
    event = put_json(versioned_s3, key, _invalid_document(RUN_1))
    s3_client = app.FUNCTION.services().hub_client("s3")
    fault = fail_every_attempt(s3_client, "s3", "DeleteObject")
    # WHEN the processor handles the event
    # THEN the invocation fails, the document still in raw/, and no warning has gone out yet
    with pytest.raises(ObjectsToRetryError, match="EndpointConnectionError"):
        process(event)
    assert key in keys_under(versioned_s3, "raw/")
    assert alert_inbox.receive() == []
    rejected_key, reason_key = (
        "raw/rejected/2025-06-01/20250601T050000Z-00000001.json",
        "raw/rejected/2025-06-01/20250601T050000Z-00000001.reason.json",
    )
    first_reason = versioned_s3.get_object(Bucket=BUCKET, Key=reason_key)["Body"].read()
    # WHEN S3 deletes again by Lambda's retry a minute later
    fault.healed = True
    fake_clock.advance(60)
    result = process(event)["objects"][0]
    # THEN the retry finishes the rejection: the document left raw/, one warning went out, and
    # the rejected copy and its reason are the first attempt's, byte for byte, each written once
    assert result["status"] == "rejected"
    assert keys_under(versioned_s3, "raw/") == [rejected_key, reason_key]
    assert [a.alert["title"] for a in alert_inbox.receive()] == [
        "Raw availability document rejected"
    ]
    assert versioned_s3.get_object(Bucket=BUCKET, Key=reason_key)["Body"].read() == first_reason
    assert len(versions_of(versioned_s3, reason_key)) == 1
    assert len(versions_of(versioned_s3, rejected_key)) == 1


def test_a_retry_of_a_rejection_whose_done_record_failed_answers_the_rejection(
    versioned_s3: Any, process: Process, fake_clock: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN an invalid raw document, and DynamoDB failing every attempt to record it done (its
    # claim and the run's lock go through)
    key = _raw_key(RUN_1)
    event = put_json(versioned_s3, key, _invalid_document(RUN_1))
    record_done = CompletionRecordFault("PutItem")
    dynamodb = app.FUNCTION.services().hub_client("dynamodb")
    dynamodb.meta.events.register_first("before-send.dynamodb.PutItem", record_done)
    # WHEN the processor handles the event
    # THEN the invocation fails after the whole rejection and its warning
    with pytest.raises(ObjectsToRetryError):
        process(event)
    assert key not in keys_under(versioned_s3, "raw/")
    [rejection] = alert_inbox.receive()
    assert rejection.alert["title"] == "Raw availability document rejected"
    # WHEN DynamoDB answers again by Lambda's retry two minutes later
    record_done.healed = True
    fake_clock.advance(120)
    retried = process(event)
    # THEN the retry answers the rejection already made, not an object it could not handle (the
    # version it no longer finds in raw/ is the one it moved to raw/rejected/), and its warning
    # is the same alert (one id, which the router sends once)
    assert retried["status"] == "ok", retried
    [result] = retried["objects"]
    assert (result["status"], result["rejected_key"]) == (
        "rejected",
        "raw/rejected/2025-06-01/20250601T050000Z-00000001.json",
    )
    assert result["reason"].startswith("document: metadata.counts")
    assert [a.alert["id"] for a in alert_inbox.receive()] == [rejection.alert["id"]]


def test_a_rejection_leaves_a_newer_version_landed_before_its_delete_current_for_its_event(
    versioned_s3: Any, process: Process, alert_inbox: Any
) -> None:
    # GIVEN an invalid raw document, and a second fetch that writes a valid newer version of the
    # same key just before the rejection deletes the invalid one from raw/
    key = _raw_key(RUN_1)
    event = put_json(versioned_s3, key, _invalid_document(RUN_1))
    rejected_version = event["Records"][0]["s3"]["object"]["versionId"]
    newer: list[dict[str, Any]] = []

    def fetch_again_before_the_delete(params: dict[str, Any], **_: Any) -> None:
        # before-call's params are the serialised request: the key is the end of its path.
        if not newer and params["url_path"].endswith(f"/{key}"):
            newer.append(put_json(versioned_s3, key, _document(RUN_1)))

    app.FUNCTION.services().hub_client("s3").meta.events.register(
        "before-call.s3.DeleteObject", fetch_again_before_the_delete
    )
    # WHEN the processor handles the invalid version's event
    result = process(event)["objects"][0]
    # THEN the invalid version is rejected once, and the newer version, which landed meanwhile,
    # is processed by its own event (no delete marker hid it, so it is not `superseded`)
    assert len(newer) == 1
    assert result["status"] == "rejected"
    newer_object = newer[0]["Records"][0]["s3"]["object"]
    assert process(newer[0])["objects"][0]["status"] == "processed"
    assert _processed(versioned_s3, RUN_1)["metadata"]["raw_etag"] == newer_object["eTag"]
    assert [a.alert["title"] for a in alert_inbox.receive()] == [
        "Raw availability document rejected"
    ]
    # AND raw/ holds the newer version only: the rejected one left it, the newer one is current
    newer_version = newer_object["versionId"]
    assert rejected_version != newer_version
    assert versions_of(versioned_s3, key) == [newer_version]
    assert versioned_s3.head_object(Bucket=BUCKET, Key=key)["VersionId"] == newer_version


def test_a_retry_finding_the_failed_attempts_claim_unreleased_fails_instead_of_ending_there(
    s3: Any,
    process: Process,
    fake_clock: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a raw document whose processing failed on S3 at the 20th second of a 300 s
    # invocation, while DynamoDB failed to release the object's claim (so it holds until that
    # invocation's deadline, 280 s on)
    monkeypatch.setattr(type(lambda_context), "get_remaining_time_in_millis", lambda _: 280_000)
    event = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    services = app.FUNCTION.services()
    s3_fault = fail_every_attempt(services.hub_client("s3"), "s3", "PutObject")
    fail_every_attempt(services.hub_client("dynamodb"), "dynamodb", "DeleteItem")
    with pytest.raises(ObjectsToRetryError):
        process(event)
    # WHEN S3 is back for Lambda's retry a minute later
    s3_fault.healed = True
    fake_clock.advance(60)
    # THEN that retry fails too, finding the object `in_progress`, so Lambda retries again and
    # then keeps the event in the dead-letter queue, instead of succeeding with the document
    # never processed
    with pytest.raises(ObjectsToRetryError, match="in progress"):
        process(event)
    # AND once the claim has expired, the event (redriven from the queue) processes the document
    fake_clock.advance(280)
    assert process(event)["objects"][0]["status"] == "processed"


def test_an_object_failed_for_good_beside_one_to_retry_is_warned_about_once_by_the_last_attempt(
    s3: Any, process: Process, fake_clock: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN one notification of two raw documents: S3 refuses reading the first (access denied)
    # and fails every attempt to take the second's processed document
    refused = put_json(s3, _raw_key(RUN_1), _document(RUN_1))
    failing = put_json(s3, _raw_key(RUN_2), _document(RUN_2))
    batch = {"Records": refused["Records"] + failing["Records"]}
    s3_client = app.FUNCTION.services().hub_client("s3")

    def deny_the_first(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == _raw_key(RUN_1):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetObject")

    s3_client.meta.events.register("before-parameter-build.s3.GetObject", deny_the_first)
    fault = fail_every_attempt(s3_client, "s3", "PutObject")
    # WHEN the processor handles it
    # THEN the invocation fails for the second document only, and no warning goes out yet (the
    # retry will meet the first document's refusal again)
    with pytest.raises(ObjectsToRetryError) as failed:
        process(batch)
    assert [key for key, _ in failed.value.failures] == [_raw_key(RUN_2)]
    assert alert_inbox.receive() == []
    # WHEN Lambda retries the event a minute later, S3 taking writes again
    fault.healed = True
    fake_clock.advance(60)
    result = process(batch)
    # THEN the second document is processed and the first is the run's error, warned about once
    assert [item["status"] for item in result["objects"]] == ["error", "processed"]
    assert [(a.alert["title"], a.alert["resource"]) for a in alert_inbox.receive()] == [
        ("S3 object not handled", f"s3://{BUCKET}/{_raw_key(RUN_1)}")
    ]
