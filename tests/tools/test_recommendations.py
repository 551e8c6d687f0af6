"""`fleetctl recommendations`: the optimizer's recommendations as a patch to the stack file,
offline, with one-line errors."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from components.settings import load_settings, settings_document
from fleet_shared.performance_documents import (
    Recommendations,
    ScalerSettingAdvice,
    StackFileChange,
)
from fleetctl.cli import EXIT_BAD_INPUT, EXIT_OK, main
from fleetctl.handler_environment import FAKE_CREDENTIALS
from fleetctl.local_world import moto_server, stack_settings
from fleetctl.mocked_program import REPO_ROOT

SPOT_GROUP = ["lambda-fleet:members", 0, "clusters", 0, "node_groups", 1]
SCHEDULE = ["lambda-fleet:members", 0, "clusters", 0, "schedule", "off_hours_desired"]
# The dev stack's data bucket and its region (`fleetctl plan --stack dev`: fleet-hub-buckets-data).
DEV_DATA_BUCKET = "lf-dev-111111111111-ap-south-1-data"
DEV_HUB_REGION = "ap-south-1"


def dev_recommendations(stack: str = "dev") -> dict[str, Any]:
    return Recommendations(
        schema_version=1,
        stack=stack,
        generated_at=datetime(2026, 11, 26, 7, tzinfo=UTC),
        history_days=14,
        analyses_read=84,
        changes=[
            StackFileChange(
                path=[*SPOT_GROUP, "max_size"], current=6, recommended=8, evidence="peak needed 8"
            ),
            StackFileChange(
                path=[*SCHEDULE, "batch-spot"], current=0, recommended=1, evidence="night needs 1"
            ),
            StackFileChange(
                path=[*SCHEDULE, "system"], current=1, recommended=2, evidence="night needs 2"
            ),
            StackFileChange(
                path=["lambda-fleet:functions", "health_monitor", "memory_mb"],
                current=256,
                recommended=192,
                evidence="at most 120 MB used",
            ),
        ],
        scaler_settings=[
            ScalerSettingAdvice(
                variable="SCALER_COOLDOWN_SECONDS",
                current=300,
                recommended=3600,
                evidence="fewer changes",
            )
        ],
    ).model_dump(mode="json")


def _assert_the_dev_patch_applies_and_keeps_the_stack_file_valid(
    patch: str, tmp_path: Path
) -> None:
    """`patch`, printed for `dev_recommendations()`, names the scaler setting above a diff with
    each value's evidence, and applies to the dev stack file, which then has the new values."""
    assert "SCALER_COOLDOWN_SECONDS: 300 -> 3600" in patch
    assert "+            off_hours_desired: {system: 2, batch-spot: 1}  # " in patch
    assert "night needs 2" in patch and "night needs 1" in patch
    # It applies to a copy of the stack file, which then passes validation with the new values.
    copy = tmp_path / "Pulumi.dev.yaml"
    copy.write_text((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    (tmp_path / "tune.patch").write_text(patch)
    subprocess.run(["git", "apply", "tune.patch"], cwd=tmp_path, check=True, capture_output=True)
    settings = load_settings("dev", settings_document(yaml.safe_load(copy.read_text())["config"]))
    cluster = settings.members[0].clusters[0]
    assert cluster.node_groups[1].max_size == 8
    assert cluster.schedule is not None
    assert cluster.schedule.off_hours_desired == {"system": 2, "batch-spot": 1}
    assert settings.function_memory_mb("health_monitor") == 192
    assert settings.cleanup_policy().mode == "notify"


def test_the_patch_applies_to_the_dev_stack_file_and_keeps_it_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN recommendations for the dev stack saved to a file
    saved = tmp_path / "recommendations.json"
    saved.write_text(json.dumps(dev_recommendations()))

    # WHEN they are printed
    status = main(["recommendations", "--stack", "dev", "--file", str(saved)])
    patch = capsys.readouterr().out

    # THEN the output names the scaler setting above a diff with each value's evidence, and it
    # applies to the stack file, which then passes validation with the new values
    assert status == EXIT_OK
    _assert_the_dev_patch_applies_and_keeps_the_stack_file_valid(patch, tmp_path)


def test_the_patch_is_read_from_the_stacks_data_bucket_at_a_local_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a moto server on 127.0.0.1 whose dev data bucket holds dev's latest recommendations
    with moto_server(stack_settings("dev").hub.account_id) as endpoint:
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name=DEV_HUB_REGION, **FAKE_CREDENTIALS
        )
        s3.create_bucket(
            Bucket=DEV_DATA_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": DEV_HUB_REGION},
        )
        s3.put_object(
            Bucket=DEV_DATA_BUCKET,
            Key="recommendations/latest.json",
            Body=json.dumps(dev_recommendations()),
        )

        # WHEN they are printed from that endpoint
        status = main(["recommendations", "--stack", "dev", "--endpoint-url", endpoint])
    printed = capsys.readouterr()

    # THEN the output is the same patch as from a saved file: the scaler setting, a diff with
    # each value's evidence, and it applies to the stack file, which stays valid
    assert status == EXIT_OK, printed.err
    _assert_the_dev_patch_applies_and_keeps_the_stack_file_valid(printed.out, tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        (json.dumps({"schema_version": 1}), "is not a recommendations document: stack"),
        (json.dumps(dev_recommendations(stack="prod")), "are for stack prod, not dev"),
    ],
    ids=["not-json", "not-a-document", "other-stack"],
)
def test_a_bad_recommendations_file_is_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    # GIVEN a file that is not dev's recommendations
    saved = tmp_path / "recommendations.json"
    saved.write_text(content)
    # WHEN it is printed
    status = main(["recommendations", "--stack", "dev", "--file", str(saved)])
    # THEN one line says what is wrong, and nothing else is printed
    captured = capsys.readouterr()
    assert status == EXIT_BAD_INPUT
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
    assert "Traceback" not in captured.err


def test_a_recommendations_file_that_is_not_text_is_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a file whose bytes are no Unicode text (a truncated UTF-16 file)
    saved = tmp_path / "recommendations.json"
    saved.write_bytes(b"\xff\xfe{")
    # WHEN it is printed
    status = main(["recommendations", "--stack", "dev", "--file", str(saved)])
    # THEN one line says what is wrong, and nothing else is printed
    captured = capsys.readouterr()
    assert status == EXIT_BAD_INPUT
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and f"{saved} is not JSON text" in captured.err


def test_a_missing_file_and_an_unknown_stack_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a file that does not exist, and a stack without a stack file
    missing = tmp_path / "missing.json"
    # WHEN each is asked for
    first = main(["recommendations", "--stack", "dev", "--file", str(missing)])
    first_error = capsys.readouterr().err
    second = main(["recommendations", "--stack", "nope", "--file", str(missing)])
    second_error = capsys.readouterr().err
    # THEN each is one line naming what is missing
    assert (first, second) == (EXIT_BAD_INPUT, EXIT_BAD_INPUT)
    assert f"cannot read {missing}" in first_error
    assert "no stack file Pulumi.nope.yaml" in second_error
