"""Command line of the local tools.

    python -m fleetctl plan --stack dev [--json | --diff BASE.json HEAD.json [--max-chars N]]
    python -m fleetctl invoke <function> --event <file|-> [--stack dev]
                              [--endpoint-url URL | --real-aws] [--log FILE]
    python -m fleetctl demo [--stack dev] [--out out]
    python -m fleetctl recommendations --stack dev (--file F | --endpoint-url URL)

Exit status: 0 success, 1 the function answered with an error or raised, 2 bad arguments or
input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fleetctl.control_characters import escape_control_characters
from fleetctl.exceptions import FleetctlError
from fleetctl.invoke import InvokeTarget, invoke, read_event, resolve_function
from fleetctl.mocked_program import REPO_ROOT, run_program
from fleetctl.plan import render_json, render_tree
from fleetctl.plan_diff import (
    COMMENT_MAX_CHARS,
    SHORTEST_MAX_CHARS,
    diff_plans,
    load_plan,
    render_markdown,
)
from fleetctl.recommendations import recommendations_patch

EXIT_OK = 0
EXIT_ERROR_RESULT = 1
EXIT_BAD_INPUT = 2


def _max_chars(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value != 0 and value < SHORTEST_MAX_CHARS:
        raise argparse.ArgumentTypeError(
            f"expected 0 (no limit) or a whole number of UTF-8 bytes from {SHORTEST_MAX_CHARS}"
        )
    return value


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
    plan.add_argument(
        "--max-chars",
        type=_max_chars,
        default=COMMENT_MAX_CHARS,
        help="with --diff: the longest Markdown printed, in UTF-8 bytes; resources that do not "
        f"fit are counted instead (default {COMMENT_MAX_CHARS}, under a pull request comment's "
        "limit; 0: all)",
    )
    invoke_command = commands.add_parser(
        "invoke", help="run a function's handler locally with the stack's environment for it"
    )
    invoke_command.add_argument("function", help="catalog name, e.g. eks_scaler")
    invoke_command.add_argument("--event", required=True, help="event JSON file, or - for stdin")
    invoke_command.add_argument("--stack", default="dev", help="stack whose environment to use")
    where = invoke_command.add_mutually_exclusive_group()
    where.add_argument(
        "--endpoint-url",
        help="another AWS endpoint (a moto server, LocalStack), used with fake credentials; "
        "default: the demo's world, started and stopped for this invocation",
    )
    where.add_argument(
        "--real-aws",
        action="store_true",
        help="act in real AWS with this shell's credentials, only in the stack's hub account",
    )
    invoke_command.add_argument(
        "--log",
        type=Path,
        help="where the function's log goes (default: out/logs/<function>.log)",
    )
    demo = commands.add_parser(
        "demo", help="replay one working day of a stack against a local moto server"
    )
    demo.add_argument("--stack", default="dev", help="stack to replay")
    demo.add_argument("--out", type=Path, default=REPO_ROOT / "out", help="where reports go")
    recommendations = commands.add_parser(
        "recommendations",
        help="print the scaling optimizer's latest recommendations as a patch to the stack file",
    )
    recommendations.add_argument("--stack", default="dev", help="stack whose file to patch")
    source = recommendations.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help="a recommendations document saved locally")
    source.add_argument(
        "--endpoint-url", help="the endpoint (a moto server, LocalStack) of the stack's data bucket"
    )
    return parser


def _plan(arguments: argparse.Namespace) -> int:
    if arguments.diff:
        base_path, head_path = arguments.diff
        difference = diff_plans(load_plan(base_path), load_plan(head_path))
        sys.stdout.write(render_markdown(difference, arguments.stack, arguments.max_chars))
        return EXIT_OK
    run = run_program(arguments.stack, REPO_ROOT)
    sys.stdout.write(render_json(run) if arguments.json else render_tree(run))
    return EXIT_OK


def _invoke(arguments: argparse.Namespace) -> int:
    spec = resolve_function(arguments.function)
    event = read_event(arguments.event)
    log_path = arguments.log or REPO_ROOT / "out" / "logs" / f"{spec.name}.log"
    outcome = invoke(
        spec.name,
        event,
        log_path=log_path,
        stack=arguments.stack,
        target=InvokeTarget(endpoint_url=arguments.endpoint_url, real_aws=arguments.real_aws),
        say=lambda line: print(
            f"fleetctl: {escape_control_characters(line)}", file=sys.stderr, flush=True
        ),
    )
    if outcome.crash is not None:
        print(f"fleetctl: {escape_control_characters(outcome.crash)}", file=sys.stderr)
        return EXIT_ERROR_RESULT
    sys.stdout.write(json.dumps(outcome.result, indent=2, sort_keys=True) + "\n")
    print(f"fleetctl: the function's log is in {log_path}", file=sys.stderr)
    return EXIT_ERROR_RESULT if outcome.is_error else EXIT_OK


def _demo(arguments: argparse.Namespace) -> int:
    from fleetctl.demo import run_demo  # noqa: PLC0415 - moto only when the demo runs

    return run_demo(arguments.stack, arguments.out)


def _recommendations(arguments: argparse.Namespace) -> int:
    sys.stdout.write(
        recommendations_patch(
            arguments.stack, file=arguments.file, endpoint_url=arguments.endpoint_url
        )
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    commands = {
        "plan": _plan,
        "invoke": _invoke,
        "demo": _demo,
        "recommendations": _recommendations,
    }
    try:
        return commands[arguments.command](arguments)
    except FleetctlError as error:
        print(f"fleetctl: {escape_control_characters(str(error))}", file=sys.stderr)
        return EXIT_BAD_INPUT
