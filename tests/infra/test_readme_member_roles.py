"""The README's name of the member roles (README, Roles) is the name the program gives them: a
member account's administrator grants, audits and finds each function's role by that name."""

from __future__ import annotations

import re

from catalog import FUNCTIONS
from fleetctl.local_world import stack_settings
from fleetctl.mocked_program import REPO_ROOT, ProgramRun

MEMBER_ROLES_ROW = re.compile(
    r"^\| member roles `(?P<pattern>[^`]+)`, dashes for underscores \(`(?P<example>[^`]+)`;",
    re.MULTILINE,
)


def test_member_roles_are_named_as_the_readme_says_dashes_for_underscores(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the README's pattern of a member role's name and its example of the scaler's
    found = MEMBER_ROLES_ROW.search((REPO_ROOT / "README.md").read_text())
    assert found, "README's roles table no longer names the member roles"
    pattern, example = found["pattern"], found["example"]
    # WHEN the dev plan's roles in its member account are read
    run = program_runs["dev"]
    settings = stack_settings("dev")
    (member,) = settings.members
    names_in_member = {
        role.inputs.get("name", "")
        for role in run.of_type("aws:iam/role:Role")
        if role.placement.account_id == member.account_id
    }
    member_role_names = {name for name in names_in_member if "-member-" in name}
    # THEN each function acting in members has the README's name, its underscores as dashes
    expected = {
        pattern.replace("<stack>", "dev").replace("<function>", spec.name.replace("_", "-"))
        for spec in settings.enabled_functions(FUNCTIONS)
        if spec.acts_in_members
    }
    assert member_role_names == expected
    # AND the README's example is the scaler's role
    assert example in member_role_names
    assert example == pattern.replace("<stack>", "dev").replace("<function>", "eks-scaler")
