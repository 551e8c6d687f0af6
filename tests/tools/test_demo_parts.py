"""The demo's parts: warm workers that act like Lambda environments, the local receiver, and
the one-line summaries of the timeline."""

from __future__ import annotations

import os
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from fleetctl import cli, function_workers
from fleetctl.demo import Timeline, one_line, summarize
from fleetctl.function_workers import FunctionWorker, WorkerCrashedError, WorkerPool
from fleetctl.handler_environment import FAKE_CREDENTIALS
from fleetctl.local_world import moto_server
from fleetctl.mocked_program import REPO_ROOT
from fleetctl.webhook_receiver import FEED_PATH, HEALTH_PATH, WebhookReceiver


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "handlers")])
    environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    environment["AWS_DEFAULT_REGION"] = "ap-south-1"
    for name in ("STATE_TABLE_NAME", "DATA_BUCKET_NAME", "MEMBER_ROLE_NAME"):
        environment.pop(name, None)
    return environment


def test_a_worker_reports_a_configuration_error_as_one_line_naming_the_variable_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN the eks_scaler in a warm worker, deployed without its settings
    scale_up = {
        "action": "scale_up",
        "account_id": "222222222222",
        "region": "ap-south-1",
        "cluster": "c",
        "nodegroups": [{"name": "g"}],
    }
    started: list[FunctionWorker] = []

    class CountedWorker(FunctionWorker):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(function_workers, "FunctionWorker", CountedWorker)
    with WorkerPool({"eks_scaler": _environment()}, tmp_path) as pool:
        # WHEN two events arrive THEN each fails, as in Lambda, with one line naming the missing
        # variable and where the traceback is (what `fleetctl invoke` prints)
        for _ in range(2):
            with pytest.raises(WorkerCrashedError) as raised:
                pool.invoke("eks_scaler", scale_up)
            assert str(raised.value) == (
                "eks_scaler raised ConfigurationError: environment variable STATE_TABLE_NAME: "
                f"is required but not set; traceback in {tmp_path / 'eks_scaler.log'}"
            )
    # AND one warm worker answered both, as one Lambda environment would after a handler error
    assert len(started) == 1
    # AND the failure is in the function's log, as in CloudWatch Logs
    assert "STATE_TABLE_NAME" in (tmp_path / "eks_scaler.log").read_text()


def test_a_crashed_worker_is_reported_and_replaced(tmp_path: Path):
    # GIVEN the eks_scaler deployed without its shared layer: its worker ends on import
    environment = _environment()
    layer = tmp_path / "layer"
    environment["PYTHONPATH"] = str(layer)
    with WorkerPool({"eks_scaler": environment}, tmp_path) as pool:
        # WHEN an event arrives THEN the ended worker is reported, naming its log
        with pytest.raises(WorkerCrashedError, match="eks_scaler stopped"):
            pool.invoke("eks_scaler", {"action": "analyze"})
        # WHEN the layer is there for the next event
        layer.symlink_to(REPO_ROOT / "handlers", target_is_directory=True)
        # THEN a new worker imports the handler and answers it (without its settings, the
        # handler's own one-line error), where the ended one could only be reported again
        with pytest.raises(WorkerCrashedError, match="eks_scaler raised ConfigurationError"):
            pool.invoke("eks_scaler", {"action": "analyze"})


def test_each_moto_server_starts_empty_even_after_another_in_the_same_process():
    # GIVEN a moto server that was given a bucket, and stopped
    with moto_server("111111111111") as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **FAKE_CREDENTIALS)
        s3.create_bucket(Bucket="first-world")
    # WHEN another starts in the same process (moto keeps its data in the process)
    with moto_server("111111111111") as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **FAKE_CREDENTIALS)
        # THEN it has none of the first one's resources, and the same bucket can be made again
        assert s3.list_buckets()["Buckets"] == []
        s3.create_bucket(Bucket="first-world")


def test_receiver_records_posts_and_serves_the_feed_and_a_switchable_health_check():
    with WebhookReceiver() as receiver:
        request = urllib.request.Request(
            f"{receiver.url}/slack", data=b'{"text": "hello"}', method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{receiver.url}{FEED_PATH}", timeout=5) as response:
            assert b"<rss" in response.read()
        receiver.health_status = 503
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"{receiver.url}{HEALTH_PATH}", timeout=5)
        assert failed.value.code == 503
    assert [(r.path, r.body) for r in receiver.requests] == [("/slack", {"text": "hello"})]


def test_summaries_count_target_statuses_and_add_up_their_counts():
    result = {
        "status": "ok",
        "targets": [
            {"status": "ok", "counts": {"created": 2, "deleted": 1}},
            {"status": "denied", "counts": {"created": 0}},
        ],
    }
    assert summarize(result) == "ok; targets: 1 denied, 1 ok; created=2; deleted=1"
    assert summarize({"batchItemFailures": []}) == "all delivered"
    assert summarize({"statusCode": 400}) == "HTTP 400"


def test_long_lines_are_shortened_at_a_word_boundary():
    # GIVEN an alert line longer than the width
    text = "dev-apps: endpoint check failed for api - 222222222222/ap-south-1/dev-apps/endpoint/api"
    # WHEN it is shortened THEN it fits and keeps whole words only, marked as shortened
    shortened = one_line(text, 50)
    assert len(shortened) <= 50
    kept = shortened.removesuffix(" ...").split()
    assert shortened.endswith(" ...")
    assert kept == text.split()[: len(kept)]


def test_every_timeline_line_has_a_time_and_a_label(capsys):
    # GIVEN a day of 106 firings, an invocation of the evening before and a change in the world
    timeline = Timeline(total=106)
    evening = datetime(2026, 11, 25, 18, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    timeline.record(evening, "eks_scaler", "results: 2 scaling_initiated", 0)
    timeline.note(evening + timedelta(hours=20), "the health endpoint recovers")
    timeline.record(evening + timedelta(hours=20), "health_monitor", "healthy", 71)
    # THEN each line starts with a label in brackets and a time
    assert timeline.lines == [
        "[  Wed  ] 18:00 eks_scaler           results: 2 scaling_initiated",
        "[ world ] 14:00 ** the health endpoint recovers **",
        "[ 71/106] 14:00 health_monitor       healthy",
    ]


def test_the_demo_refuses_an_out_directory_holding_files_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a directory of someone's own files, named as the demo's --out
    own = tmp_path / "reports"
    own.mkdir()
    (own / "quarterly.xlsx").write_text("not the demo's")
    # WHEN the demo is asked to write into it
    status = cli.main(["demo", "--stack", "dev", "--out", str(own)])
    # THEN one line says why, exit 2, and the directory is left as it was (the demo replaces its
    # --out directory whole: it deleted whatever directory it was given)
    captured = capsys.readouterr()
    assert status == cli.EXIT_BAD_INPUT
    assert captured.err == (
        f"fleetctl: --out {str(own)!r} holds files the demo did not write, and the demo "
        "replaces its --out directory whole; name a new or empty directory\n"
    )
    assert (own / "quarterly.xlsx").read_text() == "not the demo's"


def test_the_demo_refuses_an_out_that_is_a_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a file named as the demo's --out
    named = tmp_path / "out"
    named.write_text("a file")
    # WHEN the demo is asked to write into it
    status = cli.main(["demo", "--stack", "dev", "--out", str(named)])
    # THEN one line says so, exit 2, no traceback (NotADirectoryError ended the command)
    captured = capsys.readouterr()
    assert status == cli.EXIT_BAD_INPUT
    assert captured.err == f"fleetctl: --out {str(named)!r} is not a directory\n"
    assert named.read_text() == "a file"
