"""The README's function table is the catalog's, rendered: it cannot drift."""

from __future__ import annotations

from catalog import FUNCTIONS
from catalog.readme_table import functions_table
from fleetctl.mocked_program import REPO_ROOT


def test_readme_contains_the_function_table_rendered_from_the_catalog():
    # GIVEN the catalog WHEN its table is rendered THEN the README contains it verbatim
    readme = (REPO_ROOT / "README.md").read_text()
    assert functions_table() in readme


def test_function_table_has_one_row_per_catalog_function_linking_its_page_with_sizes():
    # GIVEN the rendered table WHEN its rows are read
    rows = [line for line in functions_table().splitlines() if line.startswith("| [`")]
    # THEN each catalog function has a row, in order, linking its page, with its sizes
    assert len(rows) == len(FUNCTIONS)
    for spec, row in zip(FUNCTIONS, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        page = f"docs/functions/{spec.name}.md"
        assert cells[0] == f"[`{spec.name}`]({page})"
        assert (REPO_ROOT / page).is_file()
        assert cells[1] == spec.description
        assert cells[3:5] == [str(spec.memory_mb), str(spec.timeout_seconds)]
