"""Synthesis: `fleetctl plan` time for generated stacks of 10, 50 and 100 member accounts.

Each member has two regions and one cluster with an on-demand and a spot node group, so the
per-account cost printed is what a platform team adds to every preview per account it manages.
The goal is at most 140 ms per member account at 100 members, still linear. Each size
is planned `RUNS_PER_SIZE` times and read on the median: on a shared 2-CPU machine one run of the
same code reads 112 to 160 ms per account, so a single run says more about the neighbours than
about the program. The range of the runs is printed beside it.
"""

from __future__ import annotations

import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from fleetctl.mocked_program import REPO_ROOT, read_stack_file, run_program
from fleetctl.plan import render_json

ACCOUNT_COUNTS = (10, 50, 100)
RUNS_PER_SIZE = 3
REGIONS = ("ap-south-1", "eu-west-1")
GOAL_MS_PER_ACCOUNT = 140


def generated_stack(member_count: int) -> dict[str, Any]:
    """The dev stack's hub and settings with `member_count` generated member accounts."""
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    template = config["lambda-fleet:members"][0]
    members = []
    for index in range(member_count):
        account_id = f"{500000000000 + index:012d}"
        member = yaml.safe_load(yaml.safe_dump(template))
        member.update(
            account_id=account_id,
            name=f"member-{index:03d}",
            deploy_role_arn=f"arn:aws:iam::{account_id}:role/lambda-fleet-deploy",
            regions=list(REGIONS),
            network={"stack_reference": f"acme/network/member-{index:03d}-{{region}}"},
        )
        for cluster in member["clusters"]:
            # An account of several regions names each cluster's region.
            cluster.update(name=f"apps-{index:03d}", region=REGIONS[0])
        members.append(member)
    return {**config, "lambda-fleet:members": members}


def _time_plan(project: Path, member_count: int) -> tuple[float, float, int]:
    """Wall and CPU seconds of one `fleetctl plan` (program and JSON), and its resource count."""
    (project / "Pulumi.bench.yaml").write_text(
        yaml.safe_dump({"config": generated_stack(member_count)})
    )
    started, started_cpu = time.perf_counter(), time.process_time()
    run = run_program("bench", project)
    render_json(run)
    return time.perf_counter() - started, time.process_time() - started_cpu, len(run.resources)


def main() -> None:
    interpreter = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {platform.machine()}, {interpreter}")
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        shutil.copy(REPO_ROOT / "__main__.py", project / "__main__.py")
        _time_plan(project, 1)
        print(
            f"{'members':>8} {'regions':>8} {'resources':>10} {'seconds':>9} {'cpu s':>7} "
            f"{'ms/account':>11} {'runs, ms/account':>17}"
        )
        ms_per_account = 0.0
        for count in ACCOUNT_COUNTS:
            runs = [_time_plan(project, count) for _ in range(RUNS_PER_SIZE)]
            seconds = statistics.median(wall for wall, _, _ in runs)
            cpu_seconds = statistics.median(cpu for _, cpu, _ in runs)
            resources = runs[0][2]
            run_ms = sorted(1000 * wall / count for wall, _, _ in runs)
            ms_per_account = 1000 * seconds / count
            print(
                f"{count:>8} {len(REGIONS):>8} {resources:>10} {seconds:>9.2f} "
                f"{cpu_seconds:>7.2f} {ms_per_account:>11.1f} "
                f"{f'{run_ms[0]:.1f}-{run_ms[-1]:.1f}':>17}"
            )
        verdict = "met" if ms_per_account <= GOAL_MS_PER_ACCOUNT else "NOT met"
        print(
            f"goal: {ACCOUNT_COUNTS[-1]} members at <= {GOAL_MS_PER_ACCOUNT} ms/account "
            f"(median of {RUNS_PER_SIZE} runs): {verdict} ({ms_per_account:.1f} ms)"
        )
