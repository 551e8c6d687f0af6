"""Command line of the local tools.

    python -m fleetctl plan --stack dev [--json | --diff BASE.json HEAD.json]
    python -m fleetctl invoke <function> --event <file|-> [--stack dev] [--endpoint-url URL]
                              [--account ID] [--region R]
    python -m fleetctl demo [--stack dev] [--out out]

Exit status: 0 success, 1 the function answered with an error, 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fleetctl.exceptions import FleetctlError
from fleetctl.invoke import invoke, read_event, resolve_function
from fleetctl.mocked_program import REPO_ROOT, run_program
from fleetctl.plan import render_json, render_tree
from fleetctl.plan_diff import diff_plans, load_plan, render_markdown

EXIT_OK = 0
EXIT_ERROR_RESULT = 1
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
    invoke_command = commands.add_parser(
        "invoke", help="run a function's handler locally with the stack's environment for it"
    )
    invoke_command.add_argument("function", help="catalog name, e.g. eks_scaler")
    invoke_command.add_argument("--event", required=True, help="event JSON file, or - for stdin")
    invoke_command.add_argument("--stack", default="dev", help="stack whose environment to use")
    invoke_command.add_argument(
        "--endpoint-url", help="AWS endpoint (a moto server, LocalStack); default: real AWS"
    )
    invoke_command.add_argument("--account", help="hub account id to act as")
    invoke_command.add_argument("--region", help="AWS region")
    demo = commands.add_parser(
        "demo", help="replay one working day of a stack against a local moto server"
    )
    demo.add_argument("--stack", default="dev", help="stack to replay")
    demo.add_argument("--out", type=Path, default=REPO_ROOT / "out", help="where reports go")
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


def _invoke(arguments: argparse.Namespace) -> int:
    resolve_function(arguments.function)
    event = read_event(arguments.event)
    outcome = invoke(
        arguments.function,
        event,
        stack=arguments.stack,
        endpoint_url=arguments.endpoint_url,
        account_id=arguments.account,
        region=arguments.region,
    )
    sys.stderr.write(outcome.stderr)
    if outcome.result is not None:
        sys.stdout.write(json.dumps(outcome.result, indent=2, sort_keys=True) + "\n")
    return EXIT_ERROR_RESULT if outcome.is_error else EXIT_OK


def _demo(arguments: argparse.Namespace) -> int:
    from fleetctl.demo import run_demo  # noqa: PLC0415 - moto only when the demo runs

    return run_demo(arguments.stack, arguments.out)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    commands = {"plan": _plan, "invoke": _invoke, "demo": _demo}
    try:
        return commands[arguments.command](arguments)
    except FleetctlError as error:
        print(f"fleetctl: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
