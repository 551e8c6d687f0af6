"""The README's "Pull-request previews" section is what the workflows do: the offline plan diff
and the pulumi preview of `.github/workflows/preview.yml`, and `make test` in
`.github/workflows/test.yml`."""

from __future__ import annotations

import re
from typing import Any

import yaml

from fleetctl.mocked_program import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
STACKS = ["dev", "prod"]
MATRIX_STACK = "${{ matrix.stack }}"


def _previews_section() -> str:
    """The README's "Pull-request previews" section, with its lines joined."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Pull-request previews\n", 1)[1].split("\n## ", 1)[0]
    return " ".join(section.split())


def _workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The workflow's `on:` (YAML 1.1, which PyYAML reads, takes the key `on` for true)."""
    triggers = workflow["on"] if "on" in workflow else workflow[True]
    return {triggers: None} if isinstance(triggers, str) else dict(triggers)


def _step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    """The job's one step that uses `action` (`owner/name`, any version)."""
    steps = [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]
    assert len(steps) == 1, f"{action} is used by {len(steps)} steps of the job"
    return steps[0]


def _shell(job: dict[str, Any]) -> list[str]:
    """Each `run:` of the job as one line: continuations joined, whitespace collapsed."""
    return [
        " ".join(step["run"].replace("\\\n", " ").split()) for step in job["steps"] if "run" in step
    ]


def test_previews_run_on_pull_requests_for_the_dev_and_prod_stacks():
    # GIVEN the README's word on when previews run and for which stacks
    assert "`.github/workflows/preview.yml` runs on pull requests, for `dev` and `prod`:" in (
        _previews_section()
    )
    # WHEN the preview workflow is read
    workflow = _workflow("preview.yml")
    # THEN pull requests, and only they, trigger it
    assert set(_triggers(workflow)) == {"pull_request"}
    # AND both of its jobs run once per stack, dev and prod, one failing not cancelling the other
    assert set(workflow["jobs"]) == {"offline-plan", "pulumi-preview"}
    for job in workflow["jobs"].values():
        assert job["strategy"]["matrix"] == {"stack": STACKS}
        assert job["strategy"]["fail-fast"] is False


def test_the_offline_plan_diffs_the_base_and_head_plans_into_a_sticky_comment_and_the_summary():
    # GIVEN the README's word on the offline plan
    section = _previews_section()
    assert (
        "**offline plan** (no credentials): `fleetctl plan --json` on the base and on the head, "
        "and `fleetctl plan --diff` of the two posted as a sticky comment (cut to fit) and, "
        "whole, the job summary;"
    ) in section
    # WHEN the preview workflow's offline-plan job is read
    job = _workflow("preview.yml")["jobs"]["offline-plan"]
    head_run, base_run, diff_run = [run for run in _shell(job) if "fleetctl plan" in run]
    # THEN it takes no credentials: no AWS action, no secret, no repository variable
    assert all(not step.get("uses", "").startswith("aws-actions/") for step in job["steps"])
    assert "secrets." not in str(job) and "vars." not in str(job)
    # AND the head's plan is made in the checkout of the pull request
    assert head_run == (
        f".venv/bin/python -m fleetctl plan --stack {MATRIX_STACK} --json "
        '> "$RUNNER_TEMP/head.json"'
    )
    # AND the base's in a worktree of the base commit, which the full-history checkout has
    assert _step_using(job, "actions/checkout")["with"]["fetch-depth"] == 0
    assert base_run.startswith(
        'git worktree add "$RUNNER_TEMP/base" "${{ github.event.pull_request.base.sha }}" '
        'cd "$RUNNER_TEMP/base" '
    )
    assert f'-m fleetctl plan --stack {MATRIX_STACK} --json > "$RUNNER_TEMP/base.json"' in base_run
    # AND the difference, base first, goes whole to the job summary and, cut to the default
    # length that fits, to a comment per stack that is replaced on each push (sticky)
    assert diff_run.startswith(
        f".venv/bin/python -m fleetctl plan --stack {MATRIX_STACK} "
        '--diff "$RUNNER_TEMP/base.json" "$RUNNER_TEMP/head.json" > "$RUNNER_TEMP/plan-diff.md"'
    )
    assert diff_run.endswith(
        f".venv/bin/python -m fleetctl plan --stack {MATRIX_STACK} --max-chars 0 "
        '--diff "$RUNNER_TEMP/base.json" "$RUNNER_TEMP/head.json" >> "$GITHUB_STEP_SUMMARY"'
    )
    comment = _step_using(job, "marocchino/sticky-pull-request-comment")["with"]
    assert comment["path"] == "${{ runner.temp }}/plan-diff.md"
    assert MATRIX_STACK in comment["header"]


def test_the_pulumi_preview_uses_oidc_credentials_and_the_organisations_stack():
    # GIVEN the README's word on the pulumi preview
    section = _previews_section()
    assert (
        "**pulumi preview**: `pulumi/actions` with `command: preview`, `diff: true` and "
        "`comment-on-pr: true`, with AWS credentials through OIDC "
        "(`aws-actions/configure-aws-credentials` assuming the role in the repository variable "
        "`AWS_PREVIEW_ROLE_ARN`, region `AWS_REGION`) and `PULUMI_ACCESS_TOKEN` from the "
        "repository secrets; the stack is `<PULUMI_ORG>/lambda-fleet/<stack>`."
    ) in section
    # WHEN the preview workflow's pulumi-preview job is read
    workflow = _workflow("preview.yml")
    job = workflow["jobs"]["pulumi-preview"]
    # THEN AWS credentials come from OIDC (an id token, no access keys), assuming the role in
    # the repository variable, in the region of the repository variable
    assert workflow["permissions"]["id-token"] == "write"
    credentials_step = _step_using(job, "aws-actions/configure-aws-credentials")
    credentials = credentials_step["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    assert credentials["aws-region"] == "${{ vars.AWS_REGION }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials)
    # AND pulumi/actions previews with the diff, commenting on the pull request, after that
    preview_step = _step_using(job, "pulumi/actions")
    preview = preview_step["with"]
    assert job["steps"].index(credentials_step) < job["steps"].index(preview_step)
    assert (preview["command"], preview["diff"], preview["comment-on-pr"]) == (
        "preview",
        True,
        True,
    )
    assert workflow["permissions"]["pull-requests"] == "write"
    # AND it logs in to Pulumi with the repository secret, on the organisation's stack of this
    # project
    assert preview_step["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["name"]
    assert project == "lambda-fleet"
    assert preview["stack-name"] == f"${{{{ vars.PULUMI_ORG }}}}/{project}/{MATRIX_STACK}"


def test_make_test_runs_on_every_push_and_pull_request():
    # GIVEN the README's word on the test workflow
    assert (
        "`.github/workflows/test.yml` runs `make test` on every push and pull request."
        in _previews_section()
    )
    # WHEN the test workflow is read
    workflow = _workflow("test.yml")
    # THEN every push and every pull request trigger it: no branch, tag or path filter
    assert _triggers(workflow) == {"push": None, "pull_request": None}
    # AND its one job runs `make test`, the README's command, as it is
    [job] = workflow["jobs"].values()
    assert [run for run in _shell(job) if re.search(r"\bmake\b", run)] == ["make test"]
