"""docs/benchmarks.md names the module of every benchmark `make bench` runs, so a reader of a
table finds the code to run again (`python -m benchmarks <name>`), and its header's "Latest
figures" date is the newest date the page records."""

from __future__ import annotations

import re

from fleetctl.mocked_program import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "benchmarks.md"
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _benchmark_names() -> list[str]:
    """`BENCHMARKS` of `benchmarks/__main__.py`, read from its source: importing it runs them."""
    source = (REPO_ROOT / "benchmarks" / "__main__.py").read_text()
    block = source.split("BENCHMARKS = (", 1)[1].split(")", 1)[0]
    return re.findall(r'"(\w+)"', block)


def test_the_benchmarks_page_names_the_module_of_every_benchmark_make_bench_runs() -> None:
    # GIVEN the benchmarks `make bench` runs
    names = _benchmark_names()
    assert names, "benchmarks/__main__.py no longer lists BENCHMARKS"
    # WHEN the page is searched for each one's module
    page = PAGE.read_text()
    # THEN each is named there
    assert [name for name in names if f"`benchmarks/{name}.py`" not in page] == []


def test_the_latest_figures_date_of_the_benchmarks_page_is_the_newest_it_records() -> None:
    # GIVEN the page's header and its body
    page = PAGE.read_text()
    found = re.search(r"Latest figures: (20\d\d-\d\d-\d\d)", page)
    assert found, "docs/benchmarks.md no longer says the date of its latest figures"
    # WHEN the dates the page records are read
    newest = max(DATE.findall(page))
    # THEN the header's date is the newest of them
    assert found[1] == newest
