"""`fleetctl invoke` refuses bad arguments with one clear line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_shared.http_api_alias import invoked_through_the_api
from fleetctl.cli import EXIT_BAD_INPUT, main
from fleetctl.invoke import InvokeOutcome
from fleetctl.invoke_runner import invoked_function_arn
from fleetctl.mocked_program import REPO_ROOT


def _fleetctl(*arguments: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetctl", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )


def test_unknown_function_is_refused_naming_the_known_ones():
    completed = _fleetctl("invoke", "eks_scalar", "--event", "-", stdin="{}")
    assert completed.returncode == 2
    assert completed.stderr.startswith("fleetctl: unknown function 'eks_scalar'; known functions:")
    assert "eks_scaler" in completed.stderr


def test_unreadable_event_file_is_refused(tmp_path):
    completed = _fleetctl("invoke", "eks_scaler", "--event", str(tmp_path / "missing.json"))
    assert completed.returncode == 2
    assert "cannot read event" in completed.stderr


def test_event_file_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    # GIVEN an event file whose bytes are not UTF-8 (e.g. saved as UTF-16)
    event_file = tmp_path / "utf16.json"
    event_file.write_bytes(b"\xff\xfe{")
    # WHEN it is invoked
    completed = _fleetctl("invoke", "eks_scaler", "--event", str(event_file))
    # THEN it is refused as bad input with one line, not a traceback
    assert completed.returncode == 2
    assert completed.stderr == (
        f"fleetctl: cannot read event {event_file}: not UTF-8 text: byte 0 is 0xff\n"
    )
    assert "Traceback" not in completed.stderr


def test_event_that_is_not_json_is_refused():
    completed = _fleetctl("invoke", "eks_scaler", "--event", "-", stdin="{not json")
    assert completed.returncode == 2
    assert "event - is not JSON" in completed.stderr


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="nested-too-deeply"),
        pytest.param("1" + "0" * 5000, "a number too long to read", id="a-5001-digit-number"),
    ],
)
def test_an_event_python_cannot_read_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, reason: str
) -> None:
    # GIVEN an event file json parses but Python refuses to read (too deep, or a number too long)
    event_file = tmp_path / "event.json"
    event_file.write_text(text)
    # WHEN it is invoked
    status = main(["invoke", "eks_scaler", "--event", str(event_file)])
    # THEN it is refused as bad input in one line saying why, before anything runs
    assert status == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"fleetctl: event {event_file} is not JSON: {reason}\n"


def test_error_results_failed_http_answers_and_failed_batch_items_count_as_errors():
    assert InvokeOutcome({"status": "error", "error": "x"}).is_error
    assert InvokeOutcome({"statusCode": 400, "body": "{}"}).is_error
    assert InvokeOutcome({"batchItemFailures": [{"itemIdentifier": "1"}]}).is_error
    assert InvokeOutcome(None, crash="KeyError: 'x'").is_error
    assert InvokeOutcome({"results": [{"status": "error"}, {"status": "error"}]}).is_error
    assert not InvokeOutcome({"results": [{"status": "error"}, {"status": "dry_run"}]}).is_error
    # Every cluster of a forecaster's fleet run, every object of an S3 notification, every
    # member-account target failed: the run answers `partial`, and nothing was done. A run with
    # none to act on failed none.
    for targets in ("clusters", "objects", "targets"):
        assert InvokeOutcome({"status": "partial", targets: [{"status": "error"}]}).is_error
        assert not InvokeOutcome({"status": "partial", targets: [{"status": "ok"}]}).is_error
        assert not InvokeOutcome({"status": "ok", targets: []}).is_error
    assert not InvokeOutcome({"status": "ok", "targets": 2}).is_error
    assert not InvokeOutcome({"statusCode": 200}).is_error
    assert not InvokeOutcome({"batchItemFailures": []}).is_error


def test_a_log_path_that_is_a_directory_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a --log that names a directory
    event = REPO_ROOT / "events" / "eks_scaler" / "scale_up_schedule.json"
    # WHEN a function is invoked with it
    status = main(["invoke", "eks_scaler", "--event", str(event), "--log", str(tmp_path)])
    # THEN one line names the option and the path, exit 2, nothing was invoked (the log's
    # removal raised IsADirectoryError with a traceback, after the demo's world was started)
    captured = capsys.readouterr()
    assert status == EXIT_BAD_INPUT
    assert captured.out == ""
    assert captured.err == f"fleetctl: --log {str(tmp_path)!r} is a directory; name a file\n"


def test_the_local_runner_invokes_an_http_request_through_the_apis_alias_as_deployed():
    # GIVEN the scaler's example HTTP API request and its example schedule event
    events = REPO_ROOT / "events" / "eks_scaler"
    request = json.loads((events / "http_api_scale_up.json").read_text())
    schedule = json.loads((events / "scale_down_schedule.json").read_text())
    # WHEN the local runner names the ARN each is invoked through
    # THEN the request comes through the http-api alias, which the scaler believes, and the
    # schedule event through the function's own ARN, as EventBridge Scheduler invokes it
    assert invoked_through_the_api(invoked_function_arn("lambda-fleet-dev-eks-scaler", request))
    assert not invoked_through_the_api(
        invoked_function_arn("lambda-fleet-dev-eks-scaler", schedule)
    )
