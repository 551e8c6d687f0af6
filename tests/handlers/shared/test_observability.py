"""Behaviour of fleet_shared.observability: one set of Powertools utilities per function."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleet_shared.observability import NAMESPACE, observability_for


def emitted_json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_handler_logs_with_lambda_context_and_flushes_metrics(
    lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a handler wrapped by the function's observability (tracing disabled, no X-Ray)
    observability = observability_for("observability_probe")

    @observability.handler
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        observability.logger.info("scaling", extra={"cluster": event["cluster"]})
        observability.metrics.add_metric(name="NodeGroupsScaled", unit="Count", value=2)
        return {"status": "ok"}

    # WHEN it is invoked
    result = lambda_handler({"cluster": "dev-apps"}, lambda_context)
    # THEN it returns the handler's result, logs JSON with the service and request id,
    # and emits its metric in the LambdaFleet namespace
    assert result == {"status": "ok"}
    lines = emitted_json_lines(capsys.readouterr().out)
    [log] = [line for line in lines if line.get("message") == "scaling"]
    assert log["service"] == "observability_probe"
    assert log["cluster"] == "dev-apps"
    assert log["function_request_id"] == lambda_context.aws_request_id
    metric_lines = [line for line in lines if "NodeGroupsScaled" in line]
    assert metric_lines
    assert metric_lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE


def test_utilities_are_built_once_per_function() -> None:
    # GIVEN the same function asked twice and another function
    # WHEN compared THEN the first two are the same object and the third is not
    assert observability_for("probe_a") is observability_for("probe_a")
    assert observability_for("probe_a") is not observability_for("probe_b")


def test_service_name_comes_from_powertools_service_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN POWERTOOLS_SERVICE_NAME set WHEN the utilities are built THEN it names the service
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "scaler-service")
    assert observability_for("probe_with_service_name").service == "scaler-service"
    assert observability_for("probe_with_service_name").metrics.service == "scaler-service"


_PROBE = """
import sys
from fleet_shared.observability import observability_for
observability = observability_for("tracing_probe")
print(observability.tracer is not None, "aws_xray_sdk" in sys.modules)
"""


def _probe_tracing(environment: dict[str, str]) -> str:
    """Build a function's observability in a fresh interpreter (the X-Ray SDK patches botocore
    process-wide, so it must never load in the test process): 'tracer? SDK loaded?'."""
    handlers = Path(__file__).resolve().parents[3] / "handlers"
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(handlers), "AWS_DEFAULT_REGION": "ap-south-1", **environment},
    )
    return completed.stdout.strip()


@pytest.mark.parametrize(
    "environment",
    [
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"POWERTOOLS_TRACE_DISABLED": "false"},
        {},
    ],
    ids=["in-lambda-active-or-off", "outside-lambda", "outside-lambda-unset"],
)
def test_no_tracer_and_no_xray_sdk_unless_tracing_is_detailed(environment: dict[str, str]):
    # GIVEN tracing switched off for Powertools (active or off mode), or a run outside Lambda
    # WHEN a function's observability is built
    # THEN it has no tracer and the X-Ray SDK is never imported
    assert _probe_tracing(environment) == "False False"


def test_detailed_tracing_in_lambda_builds_the_powertools_tracer():
    # GIVEN a function in Lambda whose stack deploys detailed tracing
    environment = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}
    # WHEN its observability is built THEN it has the Powertools tracer, with the X-Ray SDK
    assert _probe_tracing(environment) == "True True"
