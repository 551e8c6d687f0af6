"""`make demo` end to end (README, "Two commands"): `fleetctl demo --stack dev` replays a working
day through the real handlers on a moto server on 127.0.0.1, prints a timeline, the node group
sizes and the alerts, copies the plan and the reports (xlsx, json, csv) to its out directory,
and can be run again at once: each run starts its own moto server on a free port and replaces
the directory.

The day takes 80 s or more of CPU, so it is replayed once; the second run is stopped as soon as
its own world is up, after it replaced the directory. `tests/conftest.py` starts this file
before all others, so that the other worker is not left idle while it runs at the end. The day's
report fetch is not paced at SSM's quota: against the moto server it would only wait, 1/35 s
before each of its ~1,100 SSM calls (over 30 s asleep); `test_ssm_rate_limit.py` of
report_fetcher checks the pacing.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from fleetctl import cli, demo
from fleetctl.function_workers import WorkerPool
from fleetctl.local_world import stack_settings

SIZES_HEADING = "node group sizes through the day (min/desired/max):"
# What the README's "Two commands" says the day goes through besides the scaler: forecasts, spot
# analysis, health checks, cost analysis, the security scan, the report chain and cleanup.
README_DAY_FUNCTIONS = (
    "demand_forecaster",
    "spot_optimizer",
    "health_monitor",
    "cost_analyzer",
    "security_scanner",
    "report_fetcher",
    "report_processor",
    "report_generator",
    "cleanup_manager",
)
UNPACED_FETCH = {"REPORT_SSM_CALLS_PER_SECOND": "10000"}
"""The report fetcher's SSM pace in the demo's day: the most the variable allows."""
MOTO_SERVER_LINE = re.compile(r"^moto server on http://127\.0\.0\.1:(\d+); ", re.MULTILINE)


class _SecondRunStoppedError(Exception):
    """Raised in place of the second run's function workers: the day is not replayed twice."""


def _timeline_outcomes(printed: str, at: str, function: str) -> list[str]:
    """What the timeline says of each numbered firing of `function` at `at` (HH:MM)."""
    line = re.compile(rf"^\[\s*\d+/\d+\s*\] {at} {function}\s+(.*)$", re.MULTILINE)
    return line.findall(printed)


def _functions_that_ran(printed: str) -> set[str]:
    """The functions with a timeline line (a firing of the day or what it led to) whose outcome is
    not an error result."""
    lines = re.findall(r"^\[\s*\d+/\d+\s*\] \d\d:\d\d (\w+)\s+(.*)$", printed, re.MULTILINE)
    return {function for function, outcome in lines if not outcome.startswith("error")}


def _desired_sizes(printed: str, node_group: str) -> list[tuple[str, int]]:
    """(row label, desired size of `node_group`) for each row of the printed sizes table."""
    table = printed.split(f"\n{SIZES_HEADING}\n", 1)[1].split("\n\n", 1)[0].splitlines()
    column = table[0].split().index(node_group)
    return [(row.split()[0], int(row.split()[column].split("/")[1])) for row in table[1:]]


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_demo_replays_the_dev_day_into_out_and_a_second_run_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the dev stack's cluster, whose first node group the afternoon's hold leaves alone
    cluster = stack_settings("dev").members[0].clusters[0]
    group = cluster.node_groups[0]
    assert cluster.schedule is not None and group is not cluster.node_groups[-1]
    column = f"{cluster.name}/{group.name}"
    out = tmp_path / "out"

    # WHEN the demo runs as `make demo` runs it, into a directory of its own (the report fetch
    # not paced at SSM's quota)
    monkeypatch.setattr(demo, "WorkerPool", _pool_with_unpaced_fetch)
    status = cli.main(["demo", "--stack", "dev", "--out", str(out)])
    printed = capsys.readouterr().out

    # THEN it succeeds and no invocation crashed
    assert status == cli.EXIT_OK, printed[-4000:]
    assert "done in " in printed and "; 0 invocation(s) crashed" in printed
    assert "CRASHED" not in printed
    # AND its moto server was on 127.0.0.1, and is stopped now that the demo is over
    [first_port] = MOTO_SERVER_LINE.findall(printed)
    assert _refuses_connections(int(first_port))
    # AND the plan and the reports, xlsx, json and csv, are in the out directory, none empty
    assert json.loads((out / "plan-dev.json").read_text())["stack"] == "dev"
    reports = [path for path in (out / "reports").rglob("*") if path.is_file()]
    for suffix in (".xlsx", ".json", ".csv"):
        of_kind = [path for path in reports if path.suffix == suffix]
        assert of_kind, f"no {suffix} report in {out}"
        assert all(path.stat().st_size > 0 for path in of_kind), of_kind
    # AND the timeline has the scaler's scheduled scale-up at 08:00 and scale-down at 18:00
    assert len(_timeline_outcomes(printed, "08:00", "eks_scaler")) == 1
    assert len(_timeline_outcomes(printed, "18:00", "eks_scaler")) == 1
    # AND the morning's cost report read the seeded CUR as well as Cost Explorer: no section of
    # it failed, and its CUR detail has the cluster's nodes
    assert _timeline_outcomes(printed, r"\d\d:\d\d", "cost_analyzer") == ["ok"]
    [cost_summary] = (out / "reports" / "cost").rglob("summary.json")
    cost_report = json.loads(cost_summary.read_text())
    assert cost_report["errors"] == [], cost_report["errors"]
    assert [c["cluster"] for c in cost_report["cur"]["eks_nodes"]["clusters"]] == [cluster.name]
    # AND every other function the README names for the day ran in it without an error result
    missing = sorted(set(README_DAY_FUNCTIONS) - _functions_that_ran(printed))
    assert not missing, f"the day never ran {missing}"
    # AND the dev cluster's node group starts at its night size, is at least at its day size
    # after 08:00 and back at its night size after 18:00
    sizes = _desired_sizes(printed, column)
    night = cluster.schedule.off_hours_desired[group.name]
    after = dict(sizes)  # a label's last row: after its firings
    assert sizes[0] == ("start", night)
    assert after["08:00"] >= group.desired_size > night
    assert after["18:00"] == night
    # AND the alerts the local Slack/PagerDuty stand-in received are listed
    assert re.search(
        r"^alerts received by the local Slack/PagerDuty stand-in: [1-9]", printed, re.M
    )

    # GIVEN a file left in the out directory since
    (out / "stray.txt").write_text("not the demo's")
    # WHEN the demo runs again into it at once, stopped once its own world is up
    monkeypatch.setattr(demo, "WorkerPool", _stop_the_second_run)
    with pytest.raises(_SecondRunStoppedError):
        cli.main(["demo", "--stack", "dev", "--out", str(out)])
    printed = capsys.readouterr().out

    # THEN it started its own moto server on 127.0.0.1, built its world in it, and stopped it
    [second_port] = MOTO_SERVER_LINE.findall(printed)
    assert _refuses_connections(int(second_port))
    # AND the directory was replaced: the stray file and the first run's reports are gone, and
    # the second run's plan is there
    assert not (out / "stray.txt").exists()
    assert not (out / "reports").exists()
    assert json.loads((out / "plan-dev.json").read_text())["stack"] == "dev"


def _pool_with_unpaced_fetch(environments: dict[str, dict[str, str]], log_dir: Path) -> WorkerPool:
    fetcher = {**environments["report_fetcher"], **UNPACED_FETCH}
    return WorkerPool({**environments, "report_fetcher": fetcher}, log_dir)


def _stop_the_second_run(*_: object) -> None:
    raise _SecondRunStoppedError
