"""The names docs/architecture.md gives the program's IAM path, member roles and member-events
bus are the names `components/naming.py` builds: a member account's administrator or an auditor
looks resources up by them."""

from __future__ import annotations

import re

from components.naming import (
    function_role_path,
    member_events_bus_name,
    member_role_name,
    scheduler_role_name,
)
from fleetctl.mocked_program import REPO_ROOT

STACK = "dev"
FUNCTION = "eks_scaler"


def _architecture() -> str:
    return " ".join((REPO_ROOT / "docs" / "architecture.md").read_text().split())


def test_the_member_role_name_the_architecture_gives_is_the_programs() -> None:
    # GIVEN the architecture's member role pattern and what it says of underscores
    found = re.search(r"\*\*Member roles\*\* `([^`]+)`(, dashes for underscores)?", _architecture())
    assert found, "docs/architecture.md no longer names the member roles"
    pattern, dashes = found[1], found[2] is not None
    # WHEN the pattern is filled in for the scaler as the page says
    function = FUNCTION.replace("_", "-") if dashes else FUNCTION
    named = pattern.replace("<stack>", STACK).replace("<function>", function)
    # THEN it is the name the program gives the scaler's member role
    assert named == member_role_name(STACK, FUNCTION)


def test_the_iam_path_and_bus_name_the_architecture_gives_are_the_programs() -> None:
    # GIVEN the architecture's text WHEN the program's path and bus name are written as patterns
    text = _architecture()
    path = function_role_path(STACK).replace(f"/{STACK}/", "/<stack>/")
    bus = member_events_bus_name(STACK).replace(f"-{STACK}-", "-<stack>-")
    # THEN the page gives both as they are
    assert f"IAM path `{path}`" in text
    assert f"`{bus}`" in text


def test_the_scheduler_role_names_the_architecture_gives_are_the_programs() -> None:
    # GIVEN the architecture's text WHEN the scheduler role names of a stack no other can meet
    # and of one named after the first part of a function's name are written as patterns
    text = _architecture()
    usual = scheduler_role_name(STACK).replace(f"-{STACK}-", "-<stack>-")
    own = scheduler_role_name("x-backup").replace("-x-backup-", "-<stack>-")
    # THEN the page gives both as they are, and the pair it names
    assert f"`{usual}`" in text
    assert f"`{own}`" in text
    assert f"`{scheduler_role_name('x').replace('-x-', '-x-backup-')}`" in text
