"""CONTRIBUTING's "Repository layout" is the repository's: every path it names exists, every
top-level directory (the hidden ones aside) has its row, the fleetctl row names every command of
the CLI and the docs row every page under docs/. A contributor looks for a thing where that block
says it is."""

from __future__ import annotations

import argparse
import re

from catalog import FUNCTIONS
from fleetctl import cli
from fleetctl.mocked_program import REPO_ROOT

STACKS = ("dev", "prod")


def _layout_rows() -> dict[str, str]:
    """First column -> description, for each row of the layout's code block."""
    text = (REPO_ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("\n## Repository layout\n", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    rows = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in block.splitlines())
    return {row[0]: row[1] for row in rows if len(row) == 2}


def _expanded(path: str) -> list[str]:
    """`path` with `<stack>` and `<function>` replaced by every stack and function."""
    paths = [path]
    for placeholder, values in (
        ("<stack>", STACKS),
        ("<function>", [spec.name for spec in FUNCTIONS]),
    ):
        paths = (
            [candidate.replace(placeholder, value) for candidate in paths for value in values]
            if placeholder in path
            else paths
        )
    return paths


def _named_paths() -> list[str]:
    """Every path of the layout's first column (`a, b` names two)."""
    return [name.strip() for first in _layout_rows() for name in first.split(",")]


def test_every_path_the_layout_names_exists() -> None:
    # GIVEN the paths of the layout's first column WHEN each is looked up in the repository
    missing = [
        expanded
        for path in _named_paths()
        for expanded in _expanded(path)
        if not (REPO_ROOT / expanded).exists()
    ]
    # THEN none is missing
    assert not missing


def test_every_top_level_directory_has_a_row_in_the_layout() -> None:
    # GIVEN the repository's top-level directories, the hidden ones (tool settings) and those
    # .gitignore names (build output) aside
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and "*" not in line
    }
    directories = {
        path.name
        for path in REPO_ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name not in ignored
    }
    # WHEN the layout's rows are read
    listed = {path.split("/", 1)[0] for path in _named_paths()}
    # THEN each directory has one
    assert directories <= listed, sorted(directories - listed)


def test_the_fleetctl_row_names_every_command_of_the_cli() -> None:
    # GIVEN the CLI's subcommands (argparse keeps them only in its private actions)
    [commands] = [
        action
        for action in cli._parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    # WHEN the layout's fleetctl row is read
    row = _layout_rows()["fleetctl/"]
    # THEN it names each of them
    assert [name for name in commands.choices if name not in row] == []


def test_the_docs_row_names_every_page_under_docs() -> None:
    # GIVEN the pages under docs/ (the function reference is the one folder)
    pages = [path.stem.replace("_", " ") for path in sorted((REPO_ROOT / "docs").glob("*.md"))]
    # WHEN the layout's docs row is read
    row = _layout_rows()["docs/"]
    # THEN it names each page, and the function reference
    assert [page for page in pages if page not in row] == []
    assert "function reference" in row
