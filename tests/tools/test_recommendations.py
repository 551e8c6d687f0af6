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
from fleetctl.exceptions import RecommendationsError
from fleetctl.handler_environment import FAKE_CREDENTIALS
from fleetctl.local_world import moto_server, stack_settings
from fleetctl.mocked_program import REPO_ROOT
from fleetctl.recommendations import patched_text

# As the optimizer names them: list entries by their `name`.
SPOT_GROUP = [
    "lambda-fleet:members", "dev-workloads", "clusters", "dev-apps", "node_groups", "batch-spot"
]  # fmt: skip
SCHEDULE = [
    "lambda-fleet:members", "dev-workloads", "clusters", "dev-apps", "schedule", "off_hours_desired"
]  # fmt: skip
# As documents written before names had them: list entries by their index.
SPOT_GROUP_BY_INDEX = ["lambda-fleet:members", 0, "clusters", 0, "node_groups", 1]
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
        ('{"history_days": ' + "9" * 5000 + "}", "is not JSON: a number too long to read"),
        ("[" * 100_000, "is not JSON: nested too deeply"),
    ],
    ids=["not-json", "not-a-document", "other-stack", "huge-number", "deep-nesting"],
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


def _dev_file_with_node_groups_swapped() -> str:
    """The dev stack file with its cluster's two node groups in the other order, as a pull
    request that reorders them leaves it."""
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    system_start = text.index("            - name: system\n")
    spot_start = text.index("            - name: batch-spot\n")
    groups_end = text.index("          schedule:\n")
    return (
        text[:system_start]
        + text[spot_start:groups_end]
        + text[system_start:spot_start]
        + text[groups_end:]
    )


def _max_sizes(text: str) -> dict[str, int]:
    config = yaml.safe_load(text)["config"]
    groups = config["lambda-fleet:members"][0]["clusters"][0]["node_groups"]
    return {group["name"]: group["max_size"] for group in groups}


def test_a_change_lands_on_the_node_group_it_names_after_the_groups_were_reordered() -> None:
    # GIVEN the dev stack file with its node groups reordered since the optimizer's run, and a
    # recommendation of max_size 8 for batch-spot (6 in the file)
    reordered = _dev_file_with_node_groups_swapped()
    assert _max_sizes(reordered) == {"batch-spot": 6, "system": 4}
    change = StackFileChange(
        path=[*SPOT_GROUP, "max_size"], current=6, recommended=8, evidence="peak needed 8"
    )
    # WHEN the file is patched
    patched = patched_text(reordered, [change])
    # THEN batch-spot gets the new max_size, and system keeps its own
    assert _max_sizes(patched) == {"batch-spot": 8, "system": 4}


def test_an_index_path_to_a_value_the_file_no_longer_holds_is_refused_naming_it() -> None:
    # GIVEN the reordered dev stack file, and a recommendation written before paths named their
    # entries: max_size 6 -> 8 for node_groups[1], which is now system (max_size 4)
    reordered = _dev_file_with_node_groups_swapped()
    change = StackFileChange(
        path=[*SPOT_GROUP_BY_INDEX, "max_size"], current=6, recommended=8, evidence="peak"
    )
    # WHEN the file is patched
    with pytest.raises(RecommendationsError) as raised:
        patched_text(reordered, [change])
    # THEN it is refused in one line naming the value, what the file holds and what the
    # optimizer read, instead of giving system batch-spot's max_size
    message = str(raised.value)
    assert message.startswith("lambda-fleet:members[0].clusters[0].node_groups[1].max_size: ")
    assert "the stack file has '4' where the optimizer read 6" in message
    assert "\n" not in message


def test_a_node_group_renamed_since_the_run_is_named_as_missing() -> None:
    # GIVEN the dev stack file whose batch-spot group has been renamed spot since the run
    renamed = (REPO_ROOT / "Pulumi.dev.yaml").read_text().replace("name: batch-spot", "name: spot")
    change = StackFileChange(
        path=[*SPOT_GROUP, "max_size"], current=6, recommended=8, evidence="peak needed 8"
    )
    # WHEN the file is patched
    with pytest.raises(RecommendationsError) as raised:
        patched_text(renamed, [change])
    # THEN one line says which entry the file no longer has
    assert str(raised.value) == (
        "lambda-fleet:members[dev-workloads].clusters[dev-apps].node_groups[batch-spot]"
        ".max_size: the stack file has no node_groups entry named 'batch-spot' (renamed or "
        "removed since the optimizer's run)"
    )


def test_a_stack_file_that_writes_its_keys_without_the_namespace_is_patched_in_place() -> None:
    # GIVEN the dev stack file with `members:` and `functions:` written without the project's
    # namespace, as the Pulumi CLI reads them too (README, stack settings)
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace("  lambda-fleet:members:\n", "  members:\n")
    text = text.replace("  lambda-fleet:functions:\n", "  functions:\n")
    changes = [
        StackFileChange(
            path=[*SPOT_GROUP, "max_size"], current=6, recommended=8, evidence="peak needed 8"
        ),
        StackFileChange(
            path=["lambda-fleet:functions", "health_monitor", "memory_mb"],
            current=256,
            recommended=192,
            evidence="at most 120 MB used",
        ),
    ]
    # WHEN the file is patched
    patched = patched_text(text, changes)
    # THEN the values land in those keys, and no namespaced copy of either is added (which the
    # CLI would read beside the other, one of the two winning)
    config = yaml.safe_load(patched)["config"]
    assert "lambda-fleet:members" not in config and "lambda-fleet:functions" not in config
    groups = config["members"][0]["clusters"][0]["node_groups"]
    assert {group["name"]: group["max_size"] for group in groups} == {"system": 4, "batch-spot": 8}
    assert config["functions"]["health_monitor"] == {"memory_mb": 192}


def test_a_change_to_a_member_of_a_file_without_members_is_refused_not_added_as_keys() -> None:
    # GIVEN a stack file whose members list is under a misspelt key, so it has no members
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace("  lambda-fleet:members:\n", "  lambda-fleet:memberz:\n")
    change = StackFileChange(
        path=[*SPOT_GROUP, "max_size"], current=6, recommended=8, evidence="peak needed 8"
    )
    # WHEN the file is patched
    with pytest.raises(RecommendationsError) as raised:
        patched_text(text, [change])
    # THEN one line names the value, instead of a `lambda-fleet:members` mapping keyed by the
    # member's, cluster's and group's names being added to the file
    assert str(raised.value) == (
        "lambda-fleet:members[dev-workloads].clusters[dev-apps].node_groups[batch-spot].max_size:"
        " the stack file has no block mapping to add it to"
    )


@pytest.mark.parametrize("endpoint", ["notaurl", "http://", "http://bad host:5000"])
def test_an_endpoint_url_botocore_refuses_is_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    # GIVEN an --endpoint-url that is no endpoint URL (a missing scheme, no host, a space)
    # WHEN the recommendations are read from it
    status = main(["recommendations", "--stack", "dev", "--endpoint-url", endpoint])
    # THEN one line names the option and the value, exit 2, and nothing else is printed (botocore
    # refused it with a ValueError, which ended the command with a traceback)
    captured = capsys.readouterr()
    assert status == EXIT_BAD_INPUT
    assert captured.out == ""
    assert captured.err == (
        f"fleetctl: --endpoint-url {endpoint!r} is not an endpoint URL (such as "
        "http://127.0.0.1:5000)\n"
    )


def test_an_off_hours_size_of_a_schedule_removed_since_the_run_is_refused_not_added_back() -> None:
    # GIVEN the dev stack file whose cluster's schedule has been removed since the optimizer
    # read it, and a recommended off-hours size for batch-spot (0 when it was read)
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    start = text.index("          schedule:\n")
    end = text.index("          # The hourly forecast")
    without_schedule = text[:start] + text[end:]
    assert "off_hours_desired" not in without_schedule
    change = StackFileChange(
        path=[*SCHEDULE, "batch-spot"], current=0, recommended=1, evidence="night needs 1"
    )
    # WHEN the file is patched
    with pytest.raises(RecommendationsError) as raised:
        patched_text(without_schedule, [change])
    # THEN one line says the file no longer has the value the optimizer read, instead of adding
    # a `schedule:` with this one size back (a schedule at the default times, 08:00 to 18:00)
    assert str(raised.value) == (
        "lambda-fleet:members[dev-workloads].clusters[dev-apps].schedule.off_hours_desired"
        ".batch-spot: the stack file has no schedule here, where the optimizer read 0; deploy the "
        "file and let the optimizer run again, or set this value by hand"
    )


def _dev_file_ending_with_functions() -> str:
    """The dev stack file with `lambda-fleet:functions` moved to its end, so that a memory line
    is added after the file's last line."""
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    functions = text.index("  # Cleanup marks")
    after_functions = text.index("  lambda-fleet:schedule_time_zone:")
    return text[:functions] + text[after_functions:] + text[functions:after_functions]


@pytest.mark.parametrize(
    "saved",
    [
        (REPO_ROOT / "Pulumi.dev.yaml").read_text().replace("\n", "\r\n"),
        _dev_file_ending_with_functions().rstrip("\n"),
        _dev_file_ending_with_functions().rstrip("\n").replace("\n", "\r\n"),
    ],
    ids=["crlf", "no-final-newline", "crlf-no-final-newline"],
)
def test_the_patch_applies_to_a_stack_file_with_crlf_or_no_final_newline(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    saved: str,
) -> None:
    # GIVEN a dev stack file saved with CRLF line endings (an editor on Windows), or without a
    # newline after its last line, which the memory line is added after
    repository = tmp_path / "repository"
    repository.mkdir()
    stack_file = repository / "Pulumi.dev.yaml"
    stack_file.write_bytes(saved.encode())
    monkeypatch.setattr("fleetctl.recommendations.REPO_ROOT", repository)
    recommendations = tmp_path / "recommendations.json"
    recommendations.write_text(json.dumps(dev_recommendations()))

    # WHEN the patch is printed and applied with git
    status = main(["recommendations", "--stack", "dev", "--file", str(recommendations)])
    (tmp_path / "tune.patch").write_text(capsys.readouterr().out)
    applied = subprocess.run(
        ["git", "apply", "../tune.patch"],
        cwd=repository,
        capture_output=True,
        text=True,
        check=False,
    )

    # THEN it applies (it did not: the patch's lines ended in LF, or ran the file's last line
    # into the next), the file has the new values, and a CRLF file has CRLF lines only
    assert (status, applied.returncode) == (EXIT_OK, 0), applied.stderr
    patched = stack_file.read_bytes()
    assert _max_sizes(patched.decode()) == {"system": 4, "batch-spot": 8}
    assert yaml.safe_load(patched)["config"]["lambda-fleet:functions"]["health_monitor"] == {
        "memory_mb": 192
    }
    if "\r\n" in saved:
        assert patched.count(b"\n") == patched.count(b"\r\n")


@pytest.mark.parametrize(
    "edits",
    [
        # batch-spot's max_size anchored and read again elsewhere: writing over `&cap` would
        # leave `*cap` undefined, and the file no YAML
        [("max_size: 6", "max_size: &cap 6\n              disk_size_gb: *cap")],
        # batch-spot's max_size an alias of system's: the edit would land on system's line
        [("max_size: 4", "max_size: &cap 4"), ("max_size: 6", "max_size: *cap")],
    ],
    ids=["anchored-value", "aliased-value"],
)
def test_a_value_shared_through_a_yaml_anchor_is_refused_not_edited(
    edits: list[tuple[str, str]],
) -> None:
    # GIVEN the dev stack file with batch-spot's max_size shared through a YAML anchor
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    for written, shared in edits:
        text = text.replace(written, shared, 1)
    current = _max_sizes(text)["batch-spot"]
    change = StackFileChange(
        path=[*SPOT_GROUP, "max_size"], current=current, recommended=8, evidence="peak needed 8"
    )
    # WHEN the file is patched
    with pytest.raises(RecommendationsError) as raised:
        patched_text(text, [change])
    # THEN one line names the value and why, instead of an edit of the anchored text that
    # changed another node group's size or left an alias undefined
    assert str(raised.value) == (
        "lambda-fleet:members[dev-workloads].clusters[dev-apps].node_groups[batch-spot].max_size:"
        " the stack file shares this value through a YAML anchor (&name, *name) with other "
        "places; set it by hand where it is written"
    )


@pytest.mark.parametrize(
    ("max_size", "problem"),
    [
        (1, "node_groups[1].desired_size: desired_size 2 is above max_size 1"),
        (500, "node_groups[1].max_size: "),
    ],
    ids=["under-desired-size", "above-the-largest"],
)
def test_a_recommendation_the_settings_refuse_is_refused_not_printed_as_a_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], max_size: int, problem: str
) -> None:
    # GIVEN dev's recommendations edited by hand since the optimizer wrote them: batch-spot's
    # max_size set under its desired size (2), or above the 450 nodes the settings accept
    document = dev_recommendations()
    document["changes"][0]["recommended"] = max_size
    saved = tmp_path / "recommendations.json"
    saved.write_text(json.dumps(document))
    # WHEN they are printed
    status = main(["recommendations", "--stack", "dev", "--file", str(saved)])
    # THEN one line names the field the patched stack file would break, and no patch is printed
    # (it was, exit 0: `git apply` would have left a stack file the program refuses)
    captured = capsys.readouterr()
    assert (status, captured.out) == (EXIT_BAD_INPUT, "")
    assert captured.err.startswith(
        "fleetctl: the patched stack file would not pass the program's validation: "
        "Pulumi.dev.yaml: members[0].clusters[0]."
    )
    assert problem in captured.err and captured.err.count("\n") == 1


def test_a_key_is_added_after_a_mapping_whose_last_value_is_a_yaml_alias() -> None:
    # GIVEN the dev stack file whose last function's memory is an alias of cleanup_manager's
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace(
        "    cleanup_manager:\n      policy:\n",
        "    cleanup_manager:\n      memory_mb: &shared 512\n      policy:\n",
    )
    text = text.replace(
        "  lambda-fleet:schedule_time_zone:",
        "    cost_analyzer:\n      memory_mb: *shared\n  lambda-fleet:schedule_time_zone:",
    )
    change = StackFileChange(
        path=["lambda-fleet:functions", "health_monitor", "memory_mb"],
        current=256,
        recommended=192,
        evidence="at most 120 MB used",
    )
    # WHEN health_monitor's memory is added
    patched = patched_text(text, [change])
    # THEN it is added after the alias, at the end of the functions, and cleanup_manager keeps
    # its policy (the line was placed after the anchor's, in cleanup_manager, whose policy then
    # fell to health_monitor)
    functions = yaml.safe_load(patched)["config"]["lambda-fleet:functions"]
    assert functions["health_monitor"] == {"memory_mb": 192}
    assert functions["cost_analyzer"] == {"memory_mb": 512}
    assert functions["cleanup_manager"]["policy"]["mode"] == "notify"


def test_the_preamble_names_the_generation_time_in_utc_whatever_offset_the_file_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN dev's recommendations whose generation time was rewritten with India's offset
    document = dev_recommendations()
    document["generated_at"] = "2026-11-26T12:30:00+05:30"
    saved = tmp_path / "recommendations.json"
    saved.write_text(json.dumps(document))
    # WHEN they are printed
    status = main(["recommendations", "--stack", "dev", "--file", str(saved)])
    # THEN the preamble names that instant in UTC, as its `Z` says (not 12:30 local as UTC)
    assert status == EXIT_OK
    assert "generated at 2026-11-26T07:00:00Z from 84 analyses" in capsys.readouterr().out
