"""The whole report chain on moto's full global-infrastructure dataset, run once per module.

fetch -> process -> generate, each handler invoked with the S3 event its predecessor's write
sends (built from the real key and ETag). The SSM client gets a few injected throttling
answers to show they are retried, not dropped: the matrix is still the one SSM lists. The run
takes most of this file's time (~20 s), so every test below reads its results instead of
running it again.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws
from openpyxl import load_workbook

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.processed_documents import ProcessedDocument
from handlers.report_fetcher import app as fetcher
from handlers.report_fetcher.environment import FetcherEnvironment
from handlers.report_fetcher.fetch import FetcherServices
from handlers.report_generator import app as generator
from handlers.report_generator.environment import GeneratorEnvironment
from handlers.report_generator.tables import render_files
from handlers.report_processor import app as processor
from handlers.report_processor.environment import ProcessorEnvironment
from tests.handlers.conftest import create_state_table
from tests.handlers.faults import throttle_attempts
from tests.handlers.report_pipeline.support import (
    BUCKET,
    REGION,
    FeedServer,
    create_bucket,
    event_for,
    keys_under,
    moto_global_infrastructure,
    rss,
)

ACCOUNT = "123456789012"
TABLE = "lambda-fleet-state"
ENVIRONMENT = {
    "DATA_BUCKET_NAME": BUCKET,
    "STATE_TABLE_NAME": TABLE,
    "HUB_ACCOUNT_ID": ACCOUNT,
    "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleet-alerts-warning",
    "ALERT_TOPIC_INFO_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleet-alerts-info",
}
START = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)
RUN_ID = "20250602T050000Z-0a1b2c3d"
THROTTLED_REQUESTS = (5, 300, 900)
REGIONS_ROOT = "/aws/service/global-infrastructure/regions/"


class FixedRunServices(FetcherServices):
    """The fetcher's services with the run id fixed, so the keys are known in advance."""

    def new_run_id(self, started_at: datetime) -> str:
        return RUN_ID


@dataclass
class ChainRun:
    s3: Any
    fetch: dict[str, Any]
    process: dict[str, Any]
    generate: dict[str, Any]
    generate_again: dict[str, Any]
    process_again: dict[str, Any]
    raw: dict[str, Any]
    processed: dict[str, Any]
    alerts: list[dict[str, Any]]
    throttles: int
    head_before_repeat: dict[str, str]


def _alerts(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    received = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return received
        for message in messages:
            received.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="module")
def chain() -> Iterator[ChainRun]:
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        s3 = boto3.client("s3", region_name=REGION)
        create_bucket(s3)
        create_state_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for name in ("fleet-alerts-warning", "fleet-alerts-info"):
            topic = sns.create_topic(Name=name)["TopicArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

        clock = ManualClock(START)
        feed = FeedServer(
            rss(
                [
                    (
                        "AWS Asia Pacific (Thailand) Region is now open",
                        "Wed, 08 Jan 2025 17:00:00 GMT",
                    ),
                    ("Amazon EC2 adds new instance types", "Thu, 09 Jan 2025 10:00:00 GMT"),
                ]
            )
        )
        with feed.running():
            environment = {**ENVIRONMENT, "REPORT_FEED_URL": feed.url}
            # The pace itself is shown in report_fetcher's rate-limit tests; at the default
            # 35 per second this run would only wait 32 s more.
            fetch_environment = {**environment, "REPORT_SSM_CALLS_PER_SECOND": "1000"}
            fetch_services = FixedRunServices.create(
                fetcher.FUNCTION.name,
                load_environment(FetcherEnvironment, fetch_environment),
                clock=clock,
            )
            injector = throttle_attempts(fetch_services.ssm, "ssm", *THROTTLED_REQUESTS)
            patch.setattr(fetcher.FUNCTION, "services", lambda: fetch_services)
            fetched = fetcher.FUNCTION.invoke({"action": "fetch"}, Invocation.local())

        clock.advance(60)
        process_services = FunctionServices.create(
            processor.FUNCTION.name,
            load_environment(ProcessorEnvironment, environment),
            clock=clock,
        )
        patch.setattr(processor.FUNCTION, "services", lambda: process_services)
        raw_event = event_for(s3, BUCKET, fetched["key"])
        processed = processor.FUNCTION.invoke(raw_event, Invocation.local())
        processed_key = processed["objects"][0]["processed_key"]

        clock.advance(60)
        generate_services = FunctionServices.create(
            generator.FUNCTION.name,
            load_environment(GeneratorEnvironment, environment),
            clock=clock,
        )
        patch.setattr(generator.FUNCTION, "services", lambda: generate_services)
        generate_event = event_for(s3, BUCKET, processed_key)
        generated = generator.FUNCTION.invoke(generate_event, Invocation.local())
        alerts = _alerts(sqs, queue_url)
        heads = {
            key: s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
            for key in generated["objects"][0]["keys"]
        }
        clock.advance(60)
        # The same events again, as S3's at-least-once delivery may send them.
        generated_again = generator.FUNCTION.invoke(generate_event, Invocation.local())
        processed_again = processor.FUNCTION.invoke(raw_event, Invocation.local())
        alerts += _alerts(sqs, queue_url)

        def read(key: str) -> dict[str, Any]:
            return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

        yield ChainRun(
            s3=s3,
            fetch=fetched,
            process=processed,
            generate=generated,
            generate_again=generated_again,
            process_again=processed_again,
            raw=read(fetched["key"]),
            processed=read(processed_key),
            alerts=alerts,
            throttles=injector.injected,
            head_before_repeat=heads,
        )


def _body(chain: ChainRun, key: str) -> bytes:
    return chain.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_fetch_reads_every_region_and_service_despite_throttling(chain: ChainRun) -> None:
    # GIVEN moto's global-infrastructure parameters and three throttled SSM requests
    # WHEN the fetcher ran THEN every region and listed service is in the raw document
    assert chain.throttles == len(THROTTLED_REQUESTS)
    assert chain.fetch["status"] == "ok"
    assert chain.fetch["key"] == f"raw/2025-06-02/{RUN_ID}.json"
    counts = chain.raw["metadata"]["counts"]
    # moto lists 404 services under /services (bcm-data-exports exists only as a child path)
    assert (counts["regions"], counts["services"]) == (39, 404)
    assert counts["pairs"] == sum(len(s["regions"]) for s in chain.raw["services"]) > 9000
    regions = {region["code"]: region for region in chain.raw["regions"]}
    assert regions["us-east-1"]["long_name"] == "US East (N. Virginia)"
    assert regions["us-east-1"]["partition"] == "aws"
    assert regions["cn-north-1"]["partition"] == "aws-cn"
    assert len(regions["us-east-1"]["availability_zones"]) == 6
    services = {service["code"]: service for service in chain.raw["services"]}
    assert "ap-south-1" in services["ec2"]["regions"]
    # AND the feed gave the Thailand region its launch date
    assert regions["ap-southeast-7"]["launch_date"] == "2025-01-08"
    assert counts["launch_dates"] == 1
    # AND each service has the regions whose SSM listings name it, as without throttling
    offered: dict[str, list[str]] = {}
    for name in moto_global_infrastructure():
        parts = name.removeprefix(REGIONS_ROOT).split("/")
        if name.startswith(REGIONS_ROOT) and len(parts) == 3 and parts[1] == "services":
            offered.setdefault(parts[2], []).append(parts[0])
    assert {s["code"]: s["regions"] for s in chain.raw["services"]} == {
        code: sorted(offered.get(code, [])) for code in services
    }
    # AND moto's paging (a NextToken after every full page) costs 3 calls over 1,128
    assert chain.raw["metadata"]["ssm"]["api_calls"] == 1131


def test_processor_statistics_agree_with_the_raw_document(chain: ChainRun) -> None:
    # GIVEN the raw document WHEN processed THEN counts, coverage and rank follow from it
    assert chain.process["objects"][0]["status"] == "processed"
    services = chain.raw["services"]
    offered_in = {
        region["code"]: sum(region["code"] in s["regions"] for s in services)
        for region in chain.raw["regions"]
    }
    summaries = {region["code"]: region for region in chain.processed["regions"]}
    for code, count in offered_in.items():
        assert summaries[code]["service_count"] == count
        assert summaries[code]["coverage_percent"] == round(count / len(services) * 100, 2)
    best = max(offered_in.values())
    assert all(
        (summaries[code]["rank"] == 1) == (count == best) for code, count in offered_in.items()
    )
    quality = chain.processed["quality"]
    assert quality["failing_rules"] == ["services_with_regions"]
    failing = next(rule for rule in quality["rules"] if rule["rule"] == "services_with_regions")
    assert set(failing["examples"]) == {"eventbridgev2", "iotthingsgraph", "sagemakerautopilot"}
    assert 99 < quality["score"] < 100


def test_workbook_sheets_headers_panes_and_cells_match_the_data(chain: ChainRun) -> None:
    # GIVEN the generated workbook
    prefix = chain.generate["objects"][0]["prefix"]
    workbook = load_workbook(io.BytesIO(_body(chain, f"{prefix}report.xlsx")))
    # THEN it has the five sheets, styled headers, filters and frozen panes
    assert workbook.sheetnames == ["Summary", "Regions", "Services", "Matrix", "Changes"]
    regions_sheet = workbook["Regions"]
    assert [cell.value for cell in regions_sheet[1]][:3] == ["Region", "Name", "Partition"]
    assert regions_sheet["A1"].font.bold
    assert regions_sheet.auto_filter.ref == "A1:J40"
    assert regions_sheet.freeze_panes == "A2"
    matrix = workbook["Matrix"]
    assert matrix.freeze_panes == "B2"
    region_codes = sorted(region["code"] for region in chain.raw["regions"])
    header = [cell.value for cell in matrix[1]]
    assert header == ["Service", *region_codes, "Coverage %"]
    assert matrix.column_dimensions["A"].width > 6
    # AND the matrix cells say where a service is offered, filled when available
    rows = {row[0].value: row for row in matrix.iter_rows(min_row=2)}
    column = {code: index for index, code in enumerate(header)}
    ec2 = rows["ec2"]
    assert ec2[column["ap-south-1"]].value == 1
    assert ec2[column["ap-south-1"]].fill.start_color.rgb.endswith("C6EFCE")
    offered = {s["code"]: set(s["regions"]) for s in chain.raw["services"]}
    for service in ("s3", "lambda", "iotthingsgraph"):
        for region in region_codes:
            expected = 1 if region in offered[service] else None
            assert rows[service][column[region]].value == expected
    coverage_row = rows["Coverage %"]
    summaries = {region["code"]: region for region in chain.processed["regions"]}
    assert coverage_row[column["us-east-1"]].value == summaries["us-east-1"]["coverage_percent"]
    ranges = [str(rule.sqref) for rule in matrix.conditional_formatting]
    assert len(ranges) == 2
    # AND the Summary sheet carries the headline figures
    summary = {row[0].value: row[1].value for row in workbook["Summary"].iter_rows(min_row=2)}
    assert summary["Regions"] == 39
    assert summary["Services"] == 404
    assert summary["Quality score"] == chain.processed["quality"]["score"]


def test_csv_outputs_count_one_row_per_pair_and_summary(chain: ChainRun) -> None:
    # GIVEN the CSV outputs THEN their row counts follow the pairs, regions and services
    prefix = chain.generate["objects"][0]["prefix"]
    pairs_total = chain.raw["metadata"]["counts"]["pairs"]

    def rows(name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(_body(chain, f"{prefix}{name}").decode())))

    pairs = rows("pairs.csv")
    assert len(pairs) == pairs_total
    assert {"region": "ap-south-1", "service": "ec2"}.items() <= next(
        row for row in pairs if row["region"] == "ap-south-1" and row["service"] == "ec2"
    ).items()
    assert len(rows("regions.csv")) == 39
    assert len(rows("services.csv")) == 404
    matrix = rows("matrix.csv")
    assert len(matrix) == 404
    assert sum(int(value) for row in matrix for key, value in row.items() if key != "service") == (
        pairs_total
    )


def test_reports_are_typed_listed_in_a_manifest_and_copied_to_latest(chain: ChainRun) -> None:
    # GIVEN the generator's result THEN every key exists with its content type
    result = chain.generate["objects"][0]
    keys = result["keys"]
    assert keys[-1].endswith("/_manifest.json")
    types = {
        key.rsplit(".", 1)[1]: chain.s3.head_object(Bucket=BUCKET, Key=key)["ContentType"]
        for key in keys
    }
    assert types["xlsx"].startswith("application/vnd.openxmlformats")
    assert types["csv"].startswith("text/csv")
    assert types["json"] == "application/json"
    # AND the manifest lists every file, and latest/ holds the same run
    manifest = json.loads(_body(chain, result["manifest_key"]))
    assert [entry["key"] for entry in manifest["files"]] == keys[:-1]
    latest = json.loads(_body(chain, "reports/latest/_manifest.json"))
    assert latest["run_id"] == RUN_ID
    assert _body(chain, "reports/latest/pairs.csv") == _body(chain, f"{result['prefix']}pairs.csv")
    compact = json.loads(_body(chain, f"{result['prefix']}availability.json"))
    assert compact["services"]["ec2"] == sorted(
        next(s for s in chain.raw["services"] if s["code"] == "ec2")["regions"]
    )
    # AND nothing was left under the temporary prefix
    assert keys_under(chain.s3, "tmp/") == []
    # AND one info alert lists the keys written
    ready = [alert for alert in chain.alerts if alert["severity"] == "info"]
    assert len(ready) == 1
    assert all(key in ready[0]["detail"] for key in keys)


def test_duplicate_events_produce_the_outputs_once(chain: ChainRun) -> None:
    # GIVEN the processor and generator events delivered a second time
    # THEN both say repeat, no object was rewritten and no second alert was raised
    assert chain.generate_again["objects"][0]["status"] == "repeat"
    assert chain.process_again["objects"][0]["status"] == "repeat"
    for key, etag in chain.head_before_repeat.items():
        assert chain.s3.head_object(Bucket=BUCKET, Key=key)["ETag"] == etag
    assert len(keys_under(chain.s3, "processed/")) == 1
    assert len([alert for alert in chain.alerts if alert["severity"] == "info"]) == 1


def _pandas_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _pandas_tables(document: ProcessedDocument) -> dict[str, bytes]:
    """The CSV files as the generator wrote them with pandas before it used the `csv` module:
    the reference the new files must equal byte for byte."""
    dumped = document.model_dump(mode="json")
    regions = pd.DataFrame(dumped["regions"])
    services = pd.DataFrame(dumped["services"])
    pairs = pd.DataFrame(
        [
            (region, service)
            for service, offered in document.availability.items()
            for region in offered
        ],
        columns=["region", "service"],
    )
    pairs = pairs.merge(
        regions[["code", "long_name", "partition"]].rename(
            columns={"code": "region", "long_name": "region_name"}
        ),
        on="region",
        how="left",
    ).merge(
        services[["code", "long_name"]].rename(
            columns={"code": "service", "long_name": "service_name"}
        ),
        on="service",
        how="left",
    )
    columns = ["region", "region_name", "partition", "service", "service_name"]
    pairs = pairs[columns].sort_values(["region", "service"]).reset_index(drop=True)
    matrix = pd.DataFrame(
        0,
        index=pd.Index(sorted(service.code for service in document.services), name="service"),
        columns=sorted(region.code for region in document.regions),
    )
    for service, offered in document.availability.items():
        matrix.loc[service, offered] = 1
    services["partitions"] = services["partitions"].map(" ".join)
    return {
        "pairs.csv": _pandas_csv(pairs),
        "regions.csv": _pandas_csv(regions.sort_values(["rank", "code"])),
        "services.csv": _pandas_csv(services.sort_values("code")),
        "matrix.csv": _pandas_csv(matrix.reset_index()),
    }


def _without_some_names(processed: dict[str, Any]) -> dict[str, Any]:
    """The document with missing names, partitions and dates, as a sparse feed leaves them."""
    sparse = copy.deepcopy(processed)
    for region in sparse["regions"][:3]:
        region.update(long_name=None, partition=None, launch_date=None)
    for service in sparse["services"][:3]:
        service.update(long_name=None, marketing_url=None)
    return sparse


@pytest.mark.parametrize("sparse", [False, True], ids=["full-dataset", "missing-names"])
def test_csv_files_are_byte_identical_to_what_pandas_wrote(chain: ChainRun, sparse: bool) -> None:
    # GIVEN the processed document of the full dataset (and one with names missing)
    processed = _without_some_names(chain.processed) if sparse else chain.processed
    document = ProcessedDocument.model_validate(processed)
    # WHEN the report files are rendered
    rendered = {file.name: file.body for file in render_files(document, "processed/x.json")}
    # THEN every CSV equals, byte for byte, what pandas' to_csv wrote from the same document
    for name, expected in _pandas_tables(document).items():
        assert rendered[name] == expected, name


def test_the_same_processed_run_renders_the_same_workbook_bytes(
    chain: ChainRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the processed document of the full dataset
    document = ProcessedDocument.model_validate(chain.processed)
    # WHEN its workbook is rendered, and again a day later by the clock
    first = {file.name: file.body for file in render_files(document, "processed/x.json")}
    a_day_later = time.time() + 86400
    monkeypatch.setattr(time, "time", lambda: a_day_later)
    again = {file.name: file.body for file in render_files(document, "processed/x.json")}
    # THEN the bytes are the same: the workbook carries the run's time, not the clock's
    assert first["report.xlsx"] == again["report.xlsx"]
    with zipfile.ZipFile(io.BytesIO(first["report.xlsx"])) as archive:
        assert {entry.date_time for entry in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    properties = load_workbook(io.BytesIO(first["report.xlsx"])).properties
    processed_at = document.metadata.processed_at.astimezone(UTC).replace(tzinfo=None)
    assert (properties.created, properties.modified) == (processed_at, processed_at)
