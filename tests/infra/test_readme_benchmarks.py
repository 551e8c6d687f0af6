"""The README's benchmark figures (README, Benchmarks) are figures docs/benchmarks.md records with
their method, date and load: the README says that page "has every table", so a figure only the
README gives has nothing behind it."""

from __future__ import annotations

import re

from fleetctl.mocked_program import REPO_ROOT

NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> list[str]:
    """Every number in `text`, without its thousands separators (1,131 and 1131 are one)."""
    return [number.replace(",", "") for number in NUMBER.findall(text)]


def test_every_figure_of_the_readme_benchmarks_section_is_recorded_in_docs_benchmarks() -> None:
    # GIVEN the README's Benchmarks section
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    # WHEN its numbers are looked up in the benchmarks page
    recorded = set(_numbers((REPO_ROOT / "docs" / "benchmarks.md").read_text()))
    unrecorded = [number for number in _numbers(section) if number not in recorded]
    # THEN each of them is there
    assert not unrecorded, f"README benchmark figures not in docs/benchmarks.md: {unrecorded}"
