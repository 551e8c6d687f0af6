"""The README's stack-settings table names every top-level setting the program accepts."""

from __future__ import annotations

import re

from components.settings import FleetSettings
from fleetctl.mocked_program import REPO_ROOT


def _settings_table_first_cells() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Stack settings\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (.+?) \|", section, flags=re.MULTILINE)


def test_every_top_level_setting_has_a_row_in_the_readme():
    # GIVEN the settings model's top-level fields WHEN the README's settings table is read
    cells = _settings_table_first_cells()
    named = {match for cell in cells for match in re.findall(r"`([a-z_]+)[`.\[]", cell)}
    # THEN each field is named at the start of a setting in some row
    missing = sorted(set(FleetSettings.model_fields) - named)
    assert not missing, f"README settings table lacks: {missing}"
