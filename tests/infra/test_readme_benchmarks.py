"""The README's benchmark figures (README, Benchmarks) and its timings of the demo (Two
commands) are figures docs/benchmarks.md records with their method, date and load: the README
says that page "has every table", so a figure only the README gives has nothing behind it."""

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


def test_the_readmes_demo_timings_and_their_dates_are_recorded_in_docs_benchmarks() -> None:
    # GIVEN the README's timings of `make demo` (Two commands) and the dates it gives them
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    timing = readme.split("Once installed it took", 1)[1].split("the first run", 1)[0]
    seconds = re.findall(r"(\d[\d,]*) s\b", timing)
    dates = re.findall(r"\d{4}-\d\d-\d\d", timing)
    assert seconds and dates, "the README no longer gives the demo's timings with their dates"
    # WHEN they are looked up in the benchmarks page's demo section
    page = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    demo = " ".join(page.split("\n## demo\n", 1)[1].split("\n## ", 1)[0].split())
    # THEN each timing is there in seconds, and each date
    unrecorded = [f"{figure} s" for figure in seconds if not re.search(rf"\b{figure} s\b", demo)]
    unrecorded += [date for date in dates if date not in demo]
    assert not unrecorded, f"README demo figures not in docs/benchmarks.md#demo: {unrecorded}"
