"""`fleetctl plan --diff`: what a reviewer sees when a pull request changes the stack file."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from markdown_it import MarkdownIt

from fleetctl.cli import EXIT_BAD_INPUT, main
from fleetctl.mocked_program import REPO_ROOT, read_stack_file, run_program
from fleetctl.plan import plan_document
from fleetctl.plan_diff import ITEMS, ChangedInput, PlanDiff, diff_plans, render_markdown


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
    assert '`inputs.cidrBlock`: `"10.40.0.0/16"` → `"10.41.0.0/16"`' in text


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


def test_cli_diff_refuses_a_directory_or_non_text_file_in_one_line(tmp_path):
    # GIVEN a directory and a file whose bytes are not UTF-8 given as plans
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{")
    for bad in (tmp_path, tmp_path / "binary.json"):
        # WHEN they are diffed
        completed = subprocess.run(
            [sys.executable, "-m", "fleetctl", "plan", "--diff", str(bad), str(bad)],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
        )
        # THEN one line names the file, exit 2, no traceback
        assert completed.returncode == 2
        assert completed.stderr.startswith(f"fleetctl: cannot read plan {bad}")
        assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="nested-too-deeply"),
        pytest.param("1" + "0" * 5000, "a number too long to read", id="a-5001-digit-number"),
    ],
)
def test_cli_diff_refuses_json_python_cannot_read_in_one_line(
    tmp_path, capsys: pytest.CaptureFixture[str], text: str, reason: str
):
    # GIVEN a file json parses but Python refuses to read (too deep, or a number too long)
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    # WHEN it is diffed
    status = main(["plan", "--diff", str(plan), str(plan)])
    # THEN one line names the file and why, exit 2, no traceback
    assert status == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"fleetctl: {plan} is not a plan document: {reason}\n"


def _with_new_member(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    member = copy.deepcopy(config["lambda-fleet:members"][0])
    member.update(
        account_id="333333333333",
        name="dev-analytics",
        deploy_role_arn="arn:aws:iam::333333333333:role/lambda-fleet-deploy",
    )
    member["clusters"][0]["name"] = "dev-analytics"
    config["lambda-fleet:members"].append(member)
    return config


def test_adding_a_member_shows_its_iam_changes_statement_by_statement(
    program_runs, project_with_stack
):
    # GIVEN the dev plan, and the same stack with a second member account
    base = plan_document(program_runs["dev"])
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    head = plan_document(run_program("dev", project_with_stack("dev", _with_new_member(config))))
    # WHEN the two plans are compared
    difference = diff_plans(base, head)
    text = render_markdown(difference, "dev")
    # THEN changed policies are shown per statement, with the new account's ARNs as added items
    policy_changes = [
        change
        for _, changes in difference.changed
        for change in changes
        if ".Statement[" in change.path
    ]
    assert policy_changes, "no policy statement changes in the diff"
    assert all(change.kind == ITEMS for change in policy_changes if "333333333333" in str(change))
    added_items = [item for change in policy_changes for item in change.after]
    assert any("333333333333" in str(item) for item in added_items)
    # AND no change line shows a whole JSON document as a value
    for line in text.splitlines():
        assert '"{\\"' not in line and '"[{' not in line, line
    # AND the inventory's new member shows as a changed field, not a truncated string
    assert any(
        change.path == "inputs.content.members[name=dev-analytics].account_id"
        for resource, changes in difference.changed
        if resource["type"] == "aws:s3/bucketObjectv2:BucketObjectv2"
        for change in changes
    )


def test_json_text_inputs_are_compared_as_documents():
    # GIVEN a policy whose statement gains a resource and an action, and a new statement
    before = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:a"},
            {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": ["arn:t1"]},
        ],
    }
    after = copy.deepcopy(before)
    after["Statement"][0]["Resource"] = ["arn:a", "arn:b"]
    after["Statement"][1]["Resource"] = ["arn:t1", "arn:t2"]
    after["Statement"].insert(0, {"Sid": "New", "Effect": "Deny", "Action": "*", "Resource": "*"})
    base = {"resources": [{"urn": "u", "type": "t", "name": "n", "inputs": {"policy": ""}}]}
    head = copy.deepcopy(base)
    base["resources"][0]["inputs"]["policy"] = json.dumps(before)
    head["resources"][0]["inputs"]["policy"] = json.dumps(after)
    # WHEN compared
    [(_, changes)] = diff_plans(base, head).changed
    # THEN each statement is matched by Sid or by effect and actions, not by position
    assert [(c.path, c.kind, c.before, c.after) for c in changes] == [
        ("inputs.policy.Statement[Sid=Read].Resource", ITEMS, [], ["arn:b"]),
        ("inputs.policy.Statement[Allow sns:Publish].Resource", ITEMS, [], ["arn:t2"]),
        ("inputs.policy.Statement[Sid=New].Action", "value", None, "*"),
        ("inputs.policy.Statement[Sid=New].Effect", "value", None, "Deny"),
        ("inputs.policy.Statement[Sid=New].Resource", "value", None, "*"),
        ("inputs.policy.Statement[Sid=New].Sid", "value", None, "New"),
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        "https://api.example.com/<!-- hidden -->",
        "https://api.example.com/`**x**`",
        "https://api.example.com/<img src=x onerror=alert(1)>",
        "line\n#### Removed\n- everything",
    ],
    ids=["html-comment", "backticks", "html-tag", "line-break"],
)
def test_a_stack_value_under_review_renders_as_text_and_hides_no_later_change(hostile: str):
    # GIVEN a pull request that changes a health check URL to a value written to break the
    # comment's Markdown, and an IAM policy that gains an action further down
    base = {
        "resources": [
            {
                "urn": "u1",
                "type": "aws:s3/bucketObjectv2:BucketObjectv2",
                "name": "inventory",
                "inputs": {"url": "https://api.example.com/healthz"},
            },
            {
                "urn": "u2",
                "type": "aws:iam/rolePolicy:RolePolicy",
                "name": "scaler",
                "inputs": {"actions": ["eks:DescribeNodegroup"]},
            },
        ]
    }
    head = copy.deepcopy(base)
    head["resources"][0]["inputs"]["url"] = hostile
    head["resources"][1]["inputs"]["actions"].append("iam:PassRole")
    # WHEN the diff is rendered as a pull-request comment (CommonMark)
    text = render_markdown(diff_plans(base, head), "dev")
    html = MarkdownIt("commonmark").render(text)
    # THEN the value is shown as code, no HTML from it is live, and the later change is visible
    assert "<!--" not in html and "<img" not in html
    assert "<strong>" not in html and "<em>" not in html
    assert "iam:PassRole" in html
    assert html.count("<li>") == 4
    assert html.count("<h4>") == 1


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        ([5], "resources[0]: expected a resource object, got 5"),
        ([{}], "resources[0].urn: required, as text"),
        ([{"urn": "urn:a"}], "resources[0].type: required, as text"),
        (
            [{"urn": "urn:a", "type": "aws:s3/bucket:Bucket", "name": "a", "inputs": ["x"]}],
            "resources[0].inputs: expected an object, got ['x']",
        ),
        (
            [
                {"urn": "urn:a", "type": "t", "name": "a"},
                {"urn": "urn:a", "type": "t", "name": "b"},
            ],
            "resources[1].urn: 'urn:a' is already the URN of resources[0]",
        ),
        (
            [{"urn": "urn:a", "type": "t", "name": "a", "account_id": "1"}],
            "resources[0].region: required beside account_id",
        ),
    ],
    ids=[
        "not-an-object",
        "no-urn",
        "no-type",
        "inputs-not-an-object",
        "urn-twice",
        "account-without-region",
    ],
)
def test_cli_diff_refuses_a_plan_whose_resources_are_not_resources_in_one_line(
    tmp_path, capsys: pytest.CaptureFixture[str], resources: list[Any], problem: str
) -> None:
    # GIVEN a plan document whose `resources` list holds something a plan never does, and a
    # valid empty plan
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resources": resources}))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"resources": []}))
    for base, head in ((empty, bad), (bad, empty)):
        # WHEN it is diffed against the empty plan, as head and as base
        status = main(["plan", "--diff", str(base), str(head)])
        # THEN one line names the file and the resource's field, exit 2, and nothing is printed
        # (a KeyError or TypeError ended the command with a traceback, and a URN listed twice
        # hid one of the two resources from the diff)
        captured = capsys.readouterr()
        assert status == EXIT_BAD_INPUT
        assert captured.out == ""
        assert captured.err == f"fleetctl: {bad} is not a plan document: {problem}\n"


def test_moving_a_cluster_to_another_region_shows_each_of_its_resources_moving(
    program_runs, project_with_stack
):
    # GIVEN the prod plan, and the same stack with its cluster payments-in moved from the
    # account's ap-south-1 to its eu-west-1 (same names, so the same URNs)
    base = plan_document(program_runs["prod"])
    config = read_stack_file(REPO_ROOT / "Pulumi.prod.yaml")
    cluster = config["lambda-fleet:members"][0]["clusters"][0]
    assert (cluster["name"], cluster["region"]) == ("payments-in", "ap-south-1")
    cluster["region"] = "eu-west-1"
    head = plan_document(run_program("prod", project_with_stack("prod", config)))
    # WHEN the two plans are compared
    difference = diff_plans(base, head)
    changed = {
        (resource["type"], resource["name"]): {change.path: change for change in changes}
        for resource, changes in difference.changed
    }
    # THEN every resource of the cluster that another region's provider now creates is changed,
    # naming the region it leaves and the one it goes to: its secrets key, whose inputs are all
    # the same, was left out of the diff, as if it stayed where it is
    moved = [
        ("aws:kms/key:Key", "fleet-payments-payments-in-secrets"),
        ("aws:kms/alias:Alias", "fleet-payments-payments-in-secrets"),
        ("aws:iam/role:Role", "fleet-payments-payments-in-nodes"),
        ("eks:index:Cluster", "fleet-payments-payments-in-cluster"),
        ("eks:index:ManagedNodeGroup", "fleet-payments-payments-in-api"),
    ]
    for key in moved:
        region = changed[key]["placement.region"]
        assert (region.before, region.after) == ("ap-south-1", "eu-west-1"), key
    # AND the AWS resources name the provider they move to (the pulumi-eks components keep the
    # eks provider and pass the region's AWS provider to their children)
    for key in moved[:3]:
        provider = changed[key]["placement.provider"]
        assert "ap-south-1" in provider.before and "eu-west-1" in provider.after, key
    # AND the rendered diff shows the move
    text = render_markdown(difference, "prod")
    assert '`placement.region`: `"ap-south-1"` → `"eu-west-1"`' in text
    # AND the other cluster of the account, which stays, shows no move
    assert not any(
        "payments-eu" in name and "placement.region" in paths
        for (_, name), paths in changed.items()
    )


def test_the_comment_limit_counts_utf8_bytes_so_multibyte_text_cannot_overrun_it():
    # GIVEN a diff of 60 changed resources with ten changed tags each: every change line holds
    # an arrow "→", one character but three bytes in UTF-8
    changed = [
        (
            {"urn": f"urn:{index}", "type": "aws:s3/bucket:Bucket", "name": f"b-{index:02}"},
            [ChangedInput(path=f"inputs.tags.t{tag}", before="a", after="b") for tag in range(10)],
        )
        for index in range(60)
    ]
    difference = PlanDiff(changed=changed)
    # WHEN it is rendered for comments of every limit from 1,060 to 1,100
    texts = {limit: render_markdown(difference, "prod", limit) for limit in range(1_060, 1_101)}
    # THEN each one's UTF-8 encoding, not only its character count, fits: within the limit
    # whether GitHub counts characters or bytes (counting characters overran 14 of them)
    assert all(len(text.encode("utf-8")) <= limit for limit, text in texts.items())
    text = texts[1_100]
    assert "resources not shown" in text
    assert "- ~ `aws:s3/bucket:Bucket` `b-00`" in text


def test_the_cli_diff_is_cut_by_default_to_the_readmes_limit_and_whole_with_max_chars_0(
    tmp_path, capsys
):
    # GIVEN the limit the README's Local tools table gives `plan --diff`, and two plans whose
    # Markdown is longer: 2,000 resources added
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    [stated] = re.findall(r"as Markdown of at most ([\d,]+) characters", readme)
    limit = int(stated.replace(",", ""))
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps({"resources": []}))
    added = [
        {"urn": f"urn:{index}", "type": "aws:s3/bucket:Bucket", "name": f"bucket-{index:04}"}
        for index in range(2_000)
    ]
    head.write_text(json.dumps({"resources": added}))
    # WHEN they are diffed without --max-chars, then with --max-chars 0
    assert main(["plan", "--diff", str(base), str(head)]) == 0
    cut = capsys.readouterr().out
    assert main(["plan", "--max-chars", "0", "--diff", str(base), str(head)]) == 0
    whole = capsys.readouterr().out
    # THEN the default output is cut to that limit, saying how many were left out; with 0 it
    # holds every resource
    assert len(whole.encode("utf-8")) > limit
    assert limit - 1_000 < len(cut.encode("utf-8")) <= limit
    assert " of 2000 resources not shown" in cut
    assert all(f"`bucket-{index:04}`" in whole for index in range(2_000))


def test_a_diff_longer_than_a_comment_keeps_whole_resources_and_counts_the_rest():
    # GIVEN a diff whose Markdown is far longer than the limit: 40 added resources, and one
    # changed resource with more changed inputs than fit at all
    added = [
        {"urn": f"urn:{index}", "type": "aws:s3/bucket:Bucket", "name": f"bucket-{index:03}"}
        for index in range(40)
    ]
    huge = {"urn": "urn:huge", "type": "aws:iam/role:Role", "name": "huge"}
    changes = [
        ChangedInput(path=f"inputs.tags.t{index}", before="a", after="b") for index in range(80)
    ]
    difference = PlanDiff(added=added, changed=[(huge, changes)])
    # WHEN it is rendered for a comment of at most 1,000 characters
    text = render_markdown(difference, "prod", max_chars=1_000)
    # THEN it fits, keeps the summary, shows the first resources whole (none cut), leaves the
    # oversized one out, and says how many were left out and how to see them all
    assert len(text) <= 1_000
    assert text.startswith("### Offline plan for `prod`: 40 to add, 1 to change, 0 to remove\n")
    shown = [line for line in text.splitlines() if line.startswith("- + ")]
    assert len(shown) > 10
    assert shown == [
        f"- + `aws:s3/bucket:Bucket` `bucket-{index:03}`" for index in range(len(shown))
    ]
    assert "huge" not in text
    assert f"_{41 - len(shown)} of 41 resources not shown" in text
    assert "--max-chars 0` shows them all._" in text
    assert render_markdown(difference, "prod") == render_markdown(difference, "prod", 10**6)
