"""docs/functions/*.md: the generated sections are what the catalog and the models say."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from catalog import FUNCTIONS, function_spec
from catalog.model import ResourceRef
from components.member_permissions import ACTION_SCOPES
from components.naming import member_role_name
from fleetctl.function_docs import (
    DOCS_DIR,
    RESOURCE_DESCRIPTIONS,
    FunctionDocsError,
    environment_table,
    function_page,
    index_page,
    main,
    permissions_section,
    render_page,
    triggers_section,
)


@pytest.mark.parametrize("name", [spec.name for spec in FUNCTIONS])
def test_function_page_on_disk_is_what_the_generator_produces(name: str) -> None:
    # GIVEN the function's page WHEN its sections are generated from the catalog and its model
    page = function_page(name)
    # THEN every section could be generated and the page on disk is unchanged by it
    assert page.errors == ()
    assert page.current == page.generated, "run: python -m fleetctl.function_docs"


def test_index_page_on_disk_lists_the_common_variables_as_generated() -> None:
    # GIVEN the index page WHEN its common-variable table is generated
    page = index_page()
    # THEN it is the page on disk, with a row per variable every function gets
    assert page.errors == ()
    assert page.current == page.generated, "run: python -m fleetctl.function_docs"
    assert "| `FLEET_INVENTORY_KEY` | `config/fleet-inventory.json` |" in page.current


def test_every_fleet_resource_a_permission_can_name_is_described() -> None:
    # GIVEN the catalog's resource references WHEN the docs describe a statement
    # THEN each reference has words, so no permission is rendered as an internal name
    assert set(RESOURCE_DESCRIPTIONS) == set(ResourceRef)


def test_triggers_and_permissions_come_from_the_catalog_entry() -> None:
    # GIVEN the security scanner's catalog entry
    spec = function_spec("security_scanner")
    # WHEN its sections are rendered
    triggers = triggers_section(spec)
    permissions = permissions_section(spec)
    # THEN every trigger, size and member action appears, and its own queue statement
    assert "`rate(6 hours)`" in triggers
    assert "its own SQS queue, batches of 1" in triggers
    assert f"Memory {spec.memory_mb} MB, timeout {spec.timeout_seconds} s" in triggers
    for action in spec.member_actions:
        assert f"`{action}`" in permissions
    assert "| `sqs:DeleteMessage`, `sqs:GetQueueAttributes`" in permissions
    assert "its own queue" in permissions


@pytest.mark.parametrize("name", [spec.name for spec in FUNCTIONS if spec.member_actions])
def test_the_permissions_section_names_the_member_role_the_program_creates(name: str) -> None:
    # GIVEN a function that acts in member accounts WHEN its permissions section is rendered
    permissions = permissions_section(function_spec(name))
    # THEN it names the member role by the name the program gives it (dashes for underscores)
    assert f"member role `{member_role_name('<stack>', name)}`" in permissions


@pytest.mark.parametrize("name", [spec.name for spec in FUNCTIONS if spec.member_actions])
def test_the_permissions_section_says_which_member_actions_reach_only_the_declared_node_groups(
    name: str,
) -> None:
    spec = function_spec(name)
    # GIVEN a function acting in members WHEN its permissions section is rendered
    permissions = permissions_section(spec)
    # THEN each member action scoped to the stack's node groups says so, and no other does
    per_cluster = {
        action for action in spec.member_actions if ACTION_SCOPES[action].per_declared_cluster
    }
    for action in spec.member_actions:
        line = f"- `{action}` only on the node groups the stack file declares in that account"
        assert (line in permissions) == (action in per_cluster), action


class _Environment(BaseModel):
    described_days: int = Field(default=7, description="How long, in days.")
    required_name: str = Field(description="A name the function needs.")
    undescribed: str | None = None


def test_environment_rows_show_default_source_and_description() -> None:
    # GIVEN a model with a defaulted and a required field, one set by the program
    rows = environment_table(
        _Environment, ["described_days", "required_name"], {"REQUIRED_NAME": "state_table.name"}
    )
    # THEN each row names the variable, its default, where the program takes it from and why
    assert rows[2] == "| `DESCRIBED_DAYS` | `7` | not set | How long, in days. |"
    assert (
        rows[3]
        == "| `REQUIRED_NAME` | required | `state_table.name` | A name the function needs. |"
    )


def test_field_without_description_is_refused_naming_the_field() -> None:
    # GIVEN a field without a description WHEN its row is generated THEN the error names it
    with pytest.raises(FunctionDocsError, match="field undescribed has no description"):
        environment_table(_Environment, ["undescribed"], {})


def test_page_without_a_marker_is_refused_naming_the_section(tmp_path: Path) -> None:
    # GIVEN a page that lost its environment marker
    page = tmp_path / "backup_scheduler.md"
    page.write_text("# backup_scheduler\n\n<!-- generated:triggers -->\n<!-- /generated -->\n")
    # WHEN it is rendered THEN the error names the missing marker
    with pytest.raises(FunctionDocsError, match="missing marker <!-- generated:environment -->"):
        render_page(page, page.read_text(), {"triggers": lambda: "x", "environment": lambda: "y"})


def test_section_that_cannot_be_generated_keeps_its_text_and_is_reported(tmp_path: Path) -> None:
    # GIVEN a page whose environment section cannot be generated
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- generated:a -->\nold a\n<!-- /generated -->\n"
        "<!-- generated:b -->\nold b\n<!-- /generated -->\n"
    )

    def unavailable() -> str:
        raise FunctionDocsError("no model")

    # WHEN it is rendered
    result = render_page(page, page.read_text(), {"a": lambda: "new a", "b": unavailable})
    # THEN the other section is rewritten, this one kept, and the reason reported
    assert "new a\n" in result.generated
    assert "old b\n" in result.generated
    assert result.errors == (f"{page}: section b: no model",)


def test_check_lists_a_stale_page_and_changes_nothing_then_rewrite_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a copy of the docs whose backup_scheduler page has an edited generated table
    docs = tmp_path / "functions"
    shutil.copytree(DOCS_DIR, docs)
    page = docs / "backup_scheduler.md"
    edited = page.read_text().replace(
        "| `BACKUP_WEEKLY_DAY` | `SUN` |", "| `BACKUP_WEEKLY_DAY` | `MON` |"
    )
    page.write_text(edited)
    # WHEN checked
    status = main(["--check"], docs_dir=docs)
    # THEN it exits 1, lists the page and leaves it as it was
    assert status == 1
    assert f"stale: {page}" in capsys.readouterr().out
    assert page.read_text() == edited
    # WHEN rewritten THEN the page is the generated one again
    main([], docs_dir=docs)
    assert page.read_text() == (DOCS_DIR / "backup_scheduler.md").read_text()
