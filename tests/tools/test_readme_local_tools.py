"""The README's "Local tools" table names every `fleetctl` command and only options it takes."""

from __future__ import annotations

import argparse
import re

from fleetctl import cli
from fleetctl.mocked_program import REPO_ROOT


def _table_commands() -> list[str]:
    """The first cell of each row of the README's Local tools table, without its backticks."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Local tools\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(fleetctl [^`]+)` \|", section, flags=re.MULTILINE)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    """The CLI's subcommands by name (argparse keeps them only in its private actions)."""
    [commands] = [
        action
        for action in cli._parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    return dict(commands.choices)


def test_the_readmes_local_tools_table_names_every_command_with_options_it_takes() -> None:
    # GIVEN the commands of the README's Local tools table and the CLI's own subcommands
    rows = _table_commands()
    subcommands = _subcommands()
    # WHEN each row's command and options are looked up in the CLI
    named = {row.split()[1] for row in rows}
    # THEN the table has a row for every command, and no command the CLI lacks
    assert named == set(subcommands)
    for row in rows:
        options = set(re.findall(r"--[a-z][a-z-]*", row))
        # AND every option a row shows is one its command takes
        taken = {
            option
            for action in subcommands[row.split()[1]]._actions
            for option in action.option_strings
        }
        assert options <= taken, (row, sorted(options - taken))
