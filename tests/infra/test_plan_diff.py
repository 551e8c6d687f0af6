"""`fleetctl plan --diff`: what a reviewer sees when a pull request changes the stack file."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

from fleetctl.mocked_program import REPO_ROOT
from fleetctl.plan import plan_document
from fleetctl.plan_diff import diff_plans, render_markdown


def test_identical_plans_have_no_changes(program_runs):
    document = plan_document(program_runs["dev"])
    difference = diff_plans(document, copy.deepcopy(document))
    assert difference.is_empty
    assert render_markdown(difference, "dev") == "### Offline plan for `dev`: no changes\n"


def test_added_removed_and_changed_resources_are_reported_with_changed_inputs(program_runs):
    # GIVEN a base plan, and a head where one resource is gone, one is new and one changed
    base = plan_document(program_runs["prod"])
    head = copy.deepcopy(base)
    removed = head["resources"].pop(0)
    added = copy.deepcopy(head["resources"][0]) | {"urn": "urn:new", "name": "brand-new"}
    head["resources"].append(added)
    changed = next(r for r in head["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    changed["inputs"]["cidrBlock"] = "10.41.0.0/16"
    # WHEN the two are compared
    difference = diff_plans(base, head)
    text = render_markdown(difference, "prod")
    # THEN each kind of change is listed, with the changed input and its old and new values
    assert [r["urn"] for r in difference.added] == ["urn:new"]
    assert [r["urn"] for r in difference.removed] == [removed["urn"]]
    assert [(r["urn"], [c.path for c in cs]) for r, cs in difference.changed] == [
        (changed["urn"], ["inputs.cidrBlock"])
    ]
    assert "1 to add, 1 to change, 1 to remove" in text
    assert '`inputs.cidrBlock`: "10.40.0.0/16" → "10.41.0.0/16"' in text


def test_cli_diff_reads_two_plan_files(tmp_path, program_runs):
    base = plan_document(program_runs["dev"])
    head = copy.deepcopy(base)
    head["resources"] = head["resources"][1:]
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetctl",
            "plan",
            "--stack",
            "dev",
            "--diff",
            str(tmp_path / "base.json"),
            str(tmp_path / "head.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    assert "0 to add, 0 to change, 1 to remove" in completed.stdout


def test_cli_diff_rejects_a_file_that_is_not_a_plan(tmp_path):
    (tmp_path / "base.json").write_text("{}")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetctl",
            "plan",
            "--diff",
            str(tmp_path / "base.json"),
            str(tmp_path / "base.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 2
    assert "is not a plan document" in completed.stderr
