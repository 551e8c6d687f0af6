"""Command line of the local tools: `python -m fleetctl plan --stack dev [--json]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fleetctl.exceptions import FleetctlError
from fleetctl.mocked_program import REPO_ROOT, run_program
from fleetctl.plan import render_json, render_tree
from fleetctl.plan_diff import diff_plans, load_plan, render_markdown

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetctl", description="Local tools of lambda-fleet: no AWS account needed."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan", help="run the program offline under Pulumi mocks and show every resource"
    )
    plan.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml)")
    plan.add_argument(
        "--json", action="store_true", help="print a stable, sorted JSON document for diffing"
    )
    plan.add_argument(
        "--diff",
        nargs=2,
        metavar=("BASE_JSON", "HEAD_JSON"),
        type=Path,
        help="compare two `plan --json` documents and print the difference as Markdown",
    )
    return parser


def _plan(arguments: argparse.Namespace) -> int:
    if arguments.diff:
        base_path, head_path = arguments.diff
        difference = diff_plans(load_plan(base_path), load_plan(head_path))
        sys.stdout.write(render_markdown(difference, arguments.stack))
        return EXIT_OK
    run = run_program(arguments.stack, REPO_ROOT)
    sys.stdout.write(render_json(run) if arguments.json else render_tree(run))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    commands = {"plan": _plan}
    try:
        return commands[arguments.command](arguments)
    except FleetctlError as error:
        print(f"fleetctl: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
