"""The hand-written parts of docs/functions/*.md that list what the code declares: eks_scaler's
actions and node group statuses, performance_analyzer's bottleneck rules, and the example events
of every function. A caller reading a page learns every action it may send and every status it
may get back; a list that drifts from the code hides one."""

from __future__ import annotations

import re

import pytest

from catalog import FUNCTIONS
from fleet_shared.cleanup_policy import CleanupPolicy
from fleetctl.mocked_program import REPO_ROOT
from handlers.eks_scaler.models import Action, Status
from handlers.health_monitor import checks as health_checks
from handlers.health_monitor.runner import MEMBER_ACCESS_CHECK
from handlers.performance_analyzer.bottlenecks import BOTTLENECK_RULES
from handlers.security_scanner import registry
from handlers.security_scanner.checks import load_checks

PAGES = REPO_ROOT / "docs" / "functions"
EVENTS = REPO_ROOT / "events"


def _page(function: str) -> str:
    """The page's text with its lines joined, the generated sections left out."""
    text = (PAGES / f"{function}.md").read_text()
    return " ".join(re.sub(r"<!-- generated:.*?<!-- /generated -->", "", text, flags=re.S).split())


def _outside_parentheses(text: str) -> str:
    """`text` without its parenthesised asides, nested ones included."""
    while True:
        shorter = re.sub(r"\([^()]*\)", "", text)
        if shorter == text:
            return text
        text = shorter


def _listed(text: str, start: str, end: str) -> set[str]:
    """The backticked words between `start` and `end` in `text`, asides left out."""
    found = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text)
    assert found, f"no list from {start!r} to {end!r}"
    return set(re.findall(r"`(\w+)`", _outside_parentheses(found[1])))


def test_the_scaler_page_lists_every_action_the_scaler_takes() -> None:
    # GIVEN the scaler page's list of actions
    listed = _listed(_page("eks_scaler"), "`action` is ", "; `desired_size` is")
    # WHEN the request model's actions are read
    # THEN the page lists each of them and no other
    assert listed == {action.value for action in Action}


def test_the_scaler_page_lists_every_status_a_node_group_or_hold_target_gets() -> None:
    # GIVEN the scaler page's statuses of a node group and of a hold's target
    page = _page("eks_scaler")
    node_groups = _listed(page, "`status` is ", "(that node group only")
    hold_targets = _listed(page, 'Results per target (`"*"` for the cluster): ', ". Holds are")
    # WHEN the result model's statuses are read
    # THEN the page lists each of them and no other
    assert node_groups | hold_targets == {status.value for status in Status}


def test_the_performance_page_has_one_row_per_bottleneck_rule_with_its_unit_and_levels() -> None:
    # GIVEN the performance_analyzer page's table of rules
    rows = re.findall(
        r"^\| `(\w+)` \| .+? \| (\w+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|$",
        (PAGES / "performance_analyzer.md").read_text(),
        flags=re.MULTILINE,
    )
    # WHEN the registered rules are read
    declared = [
        (rule.name, rule.unit, rule.threshold, rule.clear_level, rule.clear_runs)
        for rule in BOTTLENECK_RULES
    ]
    # THEN each has its row, in order, with its unit, threshold, clear level and clean runs
    assert [
        (name, unit, float(threshold), float(clear_level), int(clear_runs))
        for name, unit, threshold, clear_level, clear_runs in rows
    ] == declared


@pytest.mark.parametrize("function", [spec.name for spec in FUNCTIONS])
def test_each_example_event_of_a_function_is_named_on_its_page(function: str) -> None:
    # GIVEN the function's example events WHEN its page is read
    page = _page(function)
    # THEN the page names each of them
    unnamed = [path.name for path in sorted((EVENTS / function).glob("*.json"))]
    assert [name for name in unnamed if name not in page] == []


def test_the_function_reference_index_links_every_catalog_function_once() -> None:
    # GIVEN the index page's table of functions by area
    index = (PAGES / "README.md").read_text()
    # WHEN its links to function pages are read
    linked = re.findall(r"\[(\w+)\]\((\w+)\.md\)", index)
    # THEN each catalog function is linked once, by its name to its page
    assert sorted(linked) == sorted((spec.name, spec.name) for spec in FUNCTIONS)


def _table_rows(function: str, header: str) -> list[list[str]]:
    """The cells of each row of the page's table whose header row starts with `header`."""
    text = (PAGES / f"{function}.md").read_text()
    table = text.split(f"\n| {header} |", 1)[1].split("\n\n", 1)[0]
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in table.splitlines()[2:]
    ]


def _controls(cell: str) -> list[str]:
    """The control ids of a cell: `A / B`, or a range `FLEET.IAM.1-4`."""
    ids: list[str] = []
    for part in cell.split(" / "):
        ranged = re.fullmatch(r"(.+\.)(\d+)-(\d+)", part)
        if ranged:
            ids += [f"{ranged[1]}{n}" for n in range(int(ranged[2]), int(ranged[3]) + 1)]
        else:
            ids.append(part)
    return ids


def test_the_scanner_page_lists_every_control_with_its_severity() -> None:
    # GIVEN the security scanner page's table of controls (a row of several ids gives their
    # severities in turn: `CRITICAL / LOW` for 1-4 is critical, low, critical, low)
    listed: dict[str, str] = {}
    for controls, _, _, severities in _table_rows("security_scanner", "control"):
        levels = severities.split(" / ")
        for index, control in enumerate(_controls(controls)):
            listed[control] = levels[index % len(levels)]
    # WHEN the registered checks are read
    load_checks()
    registered = {check.control_id: check.severity.value for check in registry.checks()}
    # THEN the table lists each control with its severity, and no other
    assert listed == registered


def test_the_health_page_has_one_row_per_check_in_the_order_they_run() -> None:
    # GIVEN the health monitor page's table of checks WHEN the registered checks are read
    rows = [row[0].strip("`") for row in _table_rows("health_monitor", "check")]
    # THEN each check has its row, in the order the runner runs them, then the runner's own
    # check of the member role
    assert rows == [*(check.name for check in health_checks.CHECKS), MEMBER_ACCESS_CHECK]


def test_the_cleanup_page_describes_every_policy_key_with_its_default() -> None:
    # GIVEN the cleanup page's table of policy keys
    rows = {row[0].strip("`"): row[2] for row in _table_rows("cleanup_manager", "policy key")}
    # WHEN the policy model's fields are read
    fields = CleanupPolicy.model_fields
    # THEN each key has its row, and a number's or a word's default is the model's
    assert set(rows) == set(fields)
    for key, field in fields.items():
        if isinstance(field.default, int | str):
            assert rows[key] == f"`{field.default}`", key
