"""Report pipeline: fetch -> process -> generate on moto's full global-infrastructure dataset.

A moto server on 127.0.0.1 (a real HTTP endpoint, reached through boto3's standard
AWS_ENDPOINT_URL) stands in for AWS; the launch-date feed is a small RSS document served on
127.0.0.1. Each handler is invoked with the event its predecessor's write would send. Printed:
wall time per stage and in total, and the AWS calls made (API calls, and HTTP requests including
retries), counted by a botocore hook registered on every session the handlers create; then the
SSM calls per API (and how many of them were the empty page that ends a listing whose last page
was full) with the time they take here (paced by the fetcher's rate limit) and at SSM's
quota of 40 per second, and process + generate against its 1.5 s goal. Then report_processor's
peak memory at its bounds: a raw document just under the largest it reads beside a previous run
just under the largest it reads, in each shape of `report_bound_documents`, each processed in a
fresh process (`report_processor_peak`), against the function's memory in the catalog.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import botocore.handlers

from catalog.functions import FUNCTIONS_BY_NAME
from fleetctl.local_state_table import create_state_table

# In Lambda the shared layer is on the path as `fleet_shared`; here it lives under handlers/.
REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = str(REPO_ROOT / "handlers")
if HANDLERS_DIR not in sys.path:
    sys.path.append(HANDLERS_DIR)

REGION = "ap-south-1"
ACCOUNT = "123456789012"
BUCKET = "lambda-fleet-data"  # the bucket of the example events
EXAMPLE_EVENT = REPO_ROOT / "events/report_processor/raw_object_created.json"
TABLE = "lambda-fleet-state"
SSM_QUOTA_PER_SECOND = 40
"""SSM's default throughput, shared by GetParameter, GetParameters and GetParametersByPath."""
SSM_CALLS_GOAL = 1130
PROCESS_AND_GENERATE_GOAL = 1.5
BOUND_DOCUMENTS_FIRST_DAY = date(2030, 1, 1)
"""The day of the first shape's documents at the bounds (`_print_peak_memory`): after the
chain's run, so each shape's previous run is the newest before its raw document."""
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>What\'s New</title>'
    b"<item><title>AWS Asia Pacific (Thailand) Region is now open</title>"
    b"<pubDate>Wed, 08 Jan 2025 17:00:00 GMT</pubDate></item></channel></rss>"
)


class _Counter:
    """Counts botocore events from every client in the process, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.requests = 0
        self.by_operation: Counter[str] = Counter()
        self.empty_pages_after_full_ones = 0
        """GetParametersByPath pages that answered a NextToken with nothing: the page before was
        full, so SSM sent a token, and only this call could show that the listing had ended."""

    def on_listing_parameters(
        self, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        context["continues_listing"] = "NextToken" in params

    def on_listing_page(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("continues_listing") and not parsed.get("Parameters"):
            with self._lock:
                self.empty_pages_after_full_ones += 1

    def on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls += 1
            self.by_operation[f"{model.service_model.service_name}:{model.name}"] += 1

    def on_send(self, **_: Any) -> None:
        with self._lock:
            self.requests += 1

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.calls, self.requests

    def operations(self) -> Counter[str]:
        with self._lock:
            return Counter(self.by_operation)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _feed_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *_: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _create_resources() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    create_state_table(boto3.client("dynamodb", region_name=REGION), TABLE)
    sns = boto3.client("sns", region_name=REGION)
    for name in ("fleet-alerts-warning", "fleet-alerts-info"):
        sns.create_topic(Name=name)


def _event(key: str) -> dict[str, Any]:
    """The notification S3 sends when `key` is written: the example event of report_processor
    with this key (URL-encoded as S3 does), ETag and size."""
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET, Key=key)
    event: dict[str, Any] = json.loads(EXAMPLE_EVENT.read_text())
    event["Records"][0]["s3"]["object"] |= {
        "key": quote_plus(key, safe="/"),
        "size": head["ContentLength"],
        "eTag": head["ETag"].strip('"'),
    }
    return event


def main() -> None:
    """Run the chain once and print the timings and call counts."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy; only when run

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    counter = _Counter()
    # Registered before any session exists, so every client the handlers build carries it.
    botocore.handlers.BUILTIN_HANDLERS.append(("before-call", counter.on_call))
    botocore.handlers.BUILTIN_HANDLERS.append(("before-send", counter.on_send))
    botocore.handlers.BUILTIN_HANDLERS.append(
        ("before-parameter-build.ssm.GetParametersByPath", counter.on_listing_parameters)
    )
    botocore.handlers.BUILTIN_HANDLERS.append(
        ("after-call.ssm.GetParametersByPath", counter.on_listing_page)
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    interpreter = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {interpreter}")
    print(f"moto server: http://{host}:{port}")
    try:
        with (
            _feed_server() as feed_url,
            _environment(
                {
                    "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_REGION": REGION,
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    "POWERTOOLS_LOG_LEVEL": "ERROR",
                    "DATA_BUCKET_NAME": BUCKET,
                    "STATE_TABLE_NAME": TABLE,
                    "HUB_ACCOUNT_ID": ACCOUNT,
                    "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleet-alerts-warning",
                    "ALERT_TOPIC_INFO_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleet-alerts-info",
                    "REPORT_FEED_URL": feed_url,
                }
            ),
        ):
            _run_chain(counter)
    finally:
        server.stop()


def _run_chain(counter: _Counter) -> None:
    # After HANDLERS_DIR is on the path, and after the counting hooks are registered.
    from fleet_shared.handler import Invocation  # noqa: PLC0415
    from handlers.report_fetcher import app as fetcher  # noqa: PLC0415
    from handlers.report_generator import app as generator  # noqa: PLC0415
    from handlers.report_processor import app as processor  # noqa: PLC0415

    _create_resources()
    total_started = time.perf_counter()
    stages: list[tuple[str, float, int, int]] = []

    def stage(name: str, run: Any) -> dict[str, Any]:
        calls, requests = counter.snapshot()
        started = time.perf_counter()
        result: dict[str, Any] = run()
        elapsed = time.perf_counter() - started
        after_calls, after_requests = counter.snapshot()
        stages.append((name, elapsed, after_calls - calls, after_requests - requests))
        if result.get("status") != "ok":
            raise RuntimeError(f"{name} failed: {result}")
        return result

    operations_before = counter.operations()
    fetched = stage(
        "fetch", lambda: fetcher.FUNCTION.invoke({"action": "fetch"}, Invocation.local())
    )
    ssm_calls = {
        operation.removeprefix("ssm:"): count
        for operation, count in sorted((counter.operations() - operations_before).items())
        if operation.startswith("ssm:")
    }
    raw_event = _event(fetched["key"])
    processed = stage("process", lambda: processor.FUNCTION.invoke(raw_event, Invocation.local()))
    processed_event = _event(processed["objects"][0]["processed_key"])
    stage("generate", lambda: generator.FUNCTION.invoke(processed_event, Invocation.local()))
    total = time.perf_counter() - total_started
    counts = fetched["counts"]
    print(
        f"dataset: {counts['regions']} regions, {counts['services']} services, "
        f"{counts['pairs']} pairs (feed: {fetched['feed_status']})"
    )
    print(f"{'stage':<10}{'seconds':>9}{'API calls':>11}{'requests':>10}")
    for name, elapsed, calls, requests in stages:
        print(f"{name:<10}{elapsed:>9.2f}{calls:>11}{requests:>10}")
    calls = sum(stage[2] for stage in stages)
    requests = sum(stage[3] for stage in stages)
    print(f"{'total':<10}{total:>9.2f}{calls:>11}{requests:>10}")
    _print_ssm(
        ssm_calls,
        counter.empty_pages_after_full_ones,
        stages[0][1],
        fetcher.FUNCTION.services().environment,
    )
    process_and_generate = stages[1][1] + stages[2][1]
    verdict = "under" if process_and_generate < PROCESS_AND_GENERATE_GOAL else "OVER"
    print(
        f"process + generate: {process_and_generate:.2f} s "
        f"({verdict} the {PROCESS_AND_GENERATE_GOAL} s goal)"
    )
    _print_peak_memory()


def _print_peak_memory() -> None:
    """report_processor's peak resident size on the documents at its bounds, one shape at a
    time, each in a fresh process, against its memory in the catalog (Lambda's MB are MiB)."""
    # After HANDLERS_DIR is on the path.
    from benchmarks.report_bound_documents import SHAPES, bound_documents  # noqa: PLC0415

    memory_mib = FUNCTIONS_BY_NAME["report_processor"].memory_mb
    s3 = boto3.client("s3", region_name=REGION)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), HANDLERS_DIR]),
    }
    print(f"report_processor at its bounds ({memory_mib} MB in the catalog), a fresh process each:")
    print(
        f"{'shape':<15}{'raw MiB':>8}{'previous MiB':>13}{'seconds':>9}"
        f"{'imports MiB':>12}{'peak MiB':>10}  verdict"
    )
    for index, shape in enumerate(SHAPES):
        documents = bound_documents(shape, BOUND_DOCUMENTS_FIRST_DAY + timedelta(days=2 * index))
        s3.put_object(Bucket=BUCKET, Key=documents.previous_key, Body=documents.previous)
        s3.put_object(Bucket=BUCKET, Key=documents.raw_key, Body=documents.raw)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as event_file:
            json.dump(_event(documents.raw_key), event_file)
            event_file.flush()
            completed = subprocess.run(
                [sys.executable, "-m", "benchmarks.report_processor_peak", event_file.name],
                capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=environment,
            )  # fmt: skip
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
        read_both = (figures["status"], figures["previous_run_id"]) == (
            "processed",
            documents.previous_run_id,
        )
        # A processed document over the generator's bound is refused once it is made, after
        # every read and every step the memory is measured for: its peak is one all the same.
        made_too_large = figures["status"] == "rejected" and str(figures["reason"]).startswith(
            "processed document:"
        )
        if not (read_both or made_too_large):
            verdict = f"NOT MEASURED: {figures['status']}, {figures['error'] or figures['reason']}"
        elif figures["max_rss_mib"] <= memory_mib:
            verdict = f"fits ({memory_mib - figures['max_rss_mib']:.0f} MiB to spare)"
        else:
            verdict = f"DOES NOT FIT ({figures['max_rss_mib'] - memory_mib:.0f} MiB over)"
        if made_too_large:
            verdict += f"; rejected, {figures['reason']}"
        print(
            f"{shape:<15}{len(documents.raw) / 2**20:>8.1f}"
            f"{len(documents.previous) / 2**20:>13.1f}{figures['seconds']:>9.1f}"
            f"{figures['imported_mib']:>12.0f}{figures['max_rss_mib']:>10.0f}  {verdict}"
        )


def _print_ssm(
    ssm_calls: dict[str, int], empty_pages: int, fetch_seconds: float, environment: Any
) -> None:
    """SSM calls per API, the empty last pages among them, and what the calls cost in time:
    against the moto server (paced by the fetcher's own limit) and at SSM's quota."""
    total = sum(ssm_calls.values())
    per_api = ", ".join(f"{operation} {count}" for operation, count in ssm_calls.items())
    print(f"SSM calls: {total} ({per_api}); goal at most {SSM_CALLS_GOAL}")
    print(
        f"  {empty_pages} of them answered a NextToken with an empty page (the listing's last "
        f"page had been full); without those, {total - empty_pages} calls"
    )
    limit = environment.report_ssm_calls_per_second
    print(
        f"SSM time: {fetch_seconds:.2f} s fetching against the moto server at the fetcher's "
        f"limit of {limit:g}/s (floor {total / limit:.2f} s); the same calls at SSM's quota of "
        f"{SSM_QUOTA_PER_SECOND}/s take {total / SSM_QUOTA_PER_SECOND:.2f} s"
    )
