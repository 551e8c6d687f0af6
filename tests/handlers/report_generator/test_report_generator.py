"""report_generator on small processed runs: no partial report on failure, latest/ only moves
forward, ignored keys. (Workbook and CSV contents are checked on the full dataset in
tests/handlers/report_pipeline.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fleet_shared.alerts import AlertPublisher
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.state_table import StateTable
from handlers.report_generator import app as generator
from handlers.report_processor import app as processor
from tests.handlers.report_pipeline.support import (
    BUCKET,
    REGION,
    create_bucket,
    event_for,
    keys_under,
    put_json,
    raw_document,
    s3_event,
)

OLD_RUN = "20250601T050000Z-00000001"
NEW_RUN = "20250602T050000Z-00000002"
REGIONS = {"ap-south-1": ("Asia Pacific (Mumbai)", "aws"), "eu-west-1": ("Europe (Ireland)", "aws")}
SERVICES = {
    "ec2": ("Amazon EC2", ["ap-south-1", "eu-west-1"]),
    "eks": ("Amazon EKS", ["eu-west-1"]),
}


class FailingCopies:
    """An S3 client whose n-th copy_object fails, as a throttled or interrupted copy would."""

    def __init__(self, s3: Any, fail_at: int) -> None:
        self._s3 = s3
        self._fail_at = fail_at
        self.copies = 0

    def copy_object(self, **request: Any) -> Any:
        self.copies += 1
        if self.copies == self._fail_at:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "CopyObject")
        return self._s3.copy_object(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


@pytest.fixture
def s3(alert_inbox: Any) -> Any:
    client = boto3.client("s3", region_name=REGION)
    create_bucket(client)
    return client


def _process(s3: Any, state: StateTable, clock: ManualClock, env: dict[str, str], run: str) -> str:
    environment = load_environment(processor.ProcessorEnvironment, env)
    deps = processor.ProcessorDependencies(
        environment=environment,
        s3=s3,
        state=state,
        alerts=AlertPublisher(boto3.client("sns", region_name=REGION), environment),
        clock=clock,
    )
    started = datetime.strptime(run[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    key = f"raw/{started:%Y-%m-%d}/{run}.json"
    event = put_json(s3, key, raw_document(run, REGIONS, SERVICES, started_at=started))
    return str(processor.handle(event, deps)["objects"][0]["processed_key"])


def _generator(
    s3: Any, state: StateTable, clock: ManualClock, env: dict[str, str]
) -> generator.GeneratorDependencies:
    environment = load_environment(generator.GeneratorEnvironment, env)
    attempts = iter(range(1, 100))
    return generator.GeneratorDependencies(
        environment=environment,
        s3=s3,
        state=state,
        alerts=AlertPublisher(boto3.client("sns", region_name=REGION), environment),
        clock=clock,
        new_attempt_id=lambda: f"attempt-{next(attempts)}",
    )


def test_a_failure_half_way_leaves_no_trusted_report_and_a_retry_completes(
    s3: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    fleet_environment: dict[str, str],
    alert_inbox: Any,
) -> None:
    # GIVEN a processed run and an S3 client whose third copy into place fails
    key = _process(s3, state_table, fake_clock, fleet_environment, OLD_RUN)
    alert_inbox.receive()
    event = event_for(s3, BUCKET, key)
    failing = FailingCopies(s3, fail_at=3)
    # WHEN the generator runs
    result = generator.handle(
        event, _generator(failing, state_table, fake_clock, fleet_environment)
    )["objects"][0]
    # THEN it reports the error, no manifest exists, temporary files are gone, no alert was sent
    assert result["status"] == "error"
    assert "SlowDown" in result["error"]
    prefix = f"reports/2025-06-01/{OLD_RUN}/"
    assert not any(key.endswith("_manifest.json") for key in keys_under(s3, "reports/"))
    assert len(keys_under(s3, prefix)) == 2  # two files copied before the failure, untrusted
    assert keys_under(s3, "tmp/") == []
    assert alert_inbox.receive() == []
    # WHEN the event is retried with a healthy client THEN the report completes, manifest last
    retried = generator.handle(event, _generator(s3, state_table, fake_clock, fleet_environment))
    assert retried["objects"][0]["status"] == "generated"
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"{prefix}_manifest.json")["Body"].read()
    )
    assert sorted(entry["key"] for entry in manifest["files"]) == [
        key for key in keys_under(s3, prefix) if not key.endswith("_manifest.json")
    ]


def test_latest_only_moves_forward(
    s3: Any, state_table: StateTable, fake_clock: ManualClock, fleet_environment: dict[str, str]
) -> None:
    # GIVEN the newer run's report generated first
    deps = _generator(s3, state_table, fake_clock, fleet_environment)
    new_key = _process(s3, state_table, fake_clock, fleet_environment, NEW_RUN)
    assert generator.handle(event_for(s3, BUCKET, new_key), deps)["objects"][0]["latest_updated"]
    # WHEN an older run's report is generated afterwards
    old_key = _process(s3, state_table, fake_clock, fleet_environment, OLD_RUN)
    result = generator.handle(event_for(s3, BUCKET, old_key), deps)["objects"][0]
    # THEN it gets its own report but latest/ keeps the newer run
    assert result["status"] == "generated"
    assert result["latest_updated"] is False
    latest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="reports/latest/_manifest.json")["Body"].read()
    )
    assert latest["run_id"] == NEW_RUN
    assert f"reports/2025-06-01/{OLD_RUN}/_manifest.json" in keys_under(s3, "reports/")


def test_keys_that_are_not_processed_runs_are_ignored(
    s3: Any, state_table: StateTable, fake_clock: ManualClock, fleet_environment: dict[str, str]
) -> None:
    # GIVEN an event for some other object under processed/
    deps = _generator(s3, state_table, fake_clock, fleet_environment)
    result = generator.handle(s3_event(BUCKET, "processed/notes.txt", '"abc"'), deps)
    # THEN it is ignored and nothing is written
    assert result["objects"][0]["status"] == "ignored"
    assert keys_under(s3, "reports/") == []
