"""The hand-written parts of docs/functions/*.md that list what the code declares: eks_scaler's
actions and node group statuses, performance_analyzer's bottleneck rules, and the example events
of every function. A caller reading a page learns every action it may send and every status it
may get back; a list that drifts from the code hides one."""

from __future__ import annotations

import re

import pytest

from catalog import FUNCTIONS
from fleetctl.mocked_program import REPO_ROOT
from handlers.eks_scaler.models import Action, Status
from handlers.performance_analyzer.bottlenecks import BOTTLENECK_RULES

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


def test_the_performance_page_has_one_row_per_bottleneck_rule_with_its_unit_and_threshold() -> None:
    # GIVEN the performance_analyzer page's table of rules
    rows = re.findall(
        r"^\| `(\w+)` \| .+? \| (\w+) \| ([\d.]+) \|$",
        (PAGES / "performance_analyzer.md").read_text(),
        flags=re.MULTILINE,
    )
    # WHEN the registered rules are read
    declared = [(rule.name, rule.unit, rule.threshold) for rule in BOTTLENECK_RULES]
    # THEN each has its row, in order, with its unit and threshold
    assert [(name, unit, float(threshold)) for name, unit, threshold in rows] == declared


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
