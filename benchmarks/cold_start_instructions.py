"""Cold start counted, not timed: each handler's import against its baseline, in instructions.

The timed benchmark (`cold_start.py`) is the goal's measure, but on this shared 2-CPU machine a
single import's wall time moves by 10-15% from one interpreter to the next, so even the median of
many pairs moves between runs. valgrind's callgrind counts the instructions an interpreter
executes instead; with the hash seed fixed, the same archives give nearly the same count on every
run. The count leaves out time spent in the kernel (finding, opening and reading files) and
waiting on memory, so it cross-checks the timed ratios, and tells whether a change to the code
made the import cheaper, without replacing them.

The same code as the timed benchmark runs: the archives the dev stack's program built, unpacked
as /var/task and /opt, on the runtime's Python 3.12 with the environment the stack deploys. Each
count is an interpreter's minus that of one which imports nothing (`pass`), so the interpreter's
own start is left out of both sides. Skipped where valgrind is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.cold_start import (
    LIMIT,
    STACK,
    baseline_code,
    baseline_libraries,
    lambda_code,
    lambda_environment,
)
from benchmarks.runtime_interpreter import handler_interpreter
from catalog import FUNCTIONS
from fleetctl.handler_environment import deployed_environment, handler_environment
from fleetctl.local_world import stack_settings
from fleetctl.mocked_program import run_program

_COLLECTED = re.compile(r"Collected : (\d+)")
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
WORKERS = 2
"""Concurrent valgrind runs: counts do not depend on the machine's load."""


def instructions(
    valgrind: str, python: str, command: list[str], environment: dict[str, str]
) -> int:
    """Instructions an interpreter executes running `python -c *command` (its start included)."""
    with tempfile.TemporaryDirectory() as scratch:
        completed = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={scratch}/callgrind.out",
                python,
                "-c",
                *command,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=environment["LAMBDA_TASK_ROOT"],
            env={**environment, "PYTHONHASHSEED": "0"},
        )
    collected = _COLLECTED.search(completed.stderr)
    if completed.returncode != 0 or collected is None:
        raise RuntimeError(f"valgrind {command[0]!r} failed:\n{completed.stderr[-2000:]}")
    return int(collected.group(1))


def main(names: list[str] | None = None) -> None:
    """Every catalog function (or the `names` given)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed: skipped")
        return
    started = time.perf_counter()
    specs = [spec for spec in FUNCTIONS if not names or spec.name in names]
    python = handler_interpreter()
    run = run_program(STACK)
    region = stack_settings(STACK).hub.region
    with tempfile.TemporaryDirectory() as code_directory:
        environments = {
            spec.name: lambda_environment(
                handler_environment(
                    deployed_environment(run, spec),
                    function=spec.name,
                    region=region,
                    endpoint_url=None,
                    credentials=_CREDENTIALS,
                ),
                lambda_code(run, spec, Path(code_directory), python),
                spec.timeout_seconds,
            )
            for spec in specs
        }
        any_environment = environments[specs[0].name]

        def count(command: list[str], environment: dict[str, str] = any_environment) -> int:
            return instructions(valgrind, python.executable, command, environment)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            start = pool.submit(count, ["pass"])
            baselines = {
                pandas: pool.submit(count, [baseline_code(pandas), "0"])
                for pandas in {spec.uses_pandas_layer for spec in specs}
            }
            handlers = {
                spec.name: pool.submit(
                    count, [f"import handlers.{spec.name}.app"], environments[spec.name]
                )
                for spec in specs
            }
            interpreter_start = start.result()
            baseline = {
                pandas: future.result() - interpreter_start for pandas, future in baselines.items()
            }
            print(
                f"Python {python.version}; instructions (valgrind callgrind, PYTHONHASHSEED=0) "
                f"of each import, the interpreter's start ({interpreter_start / 1e6:.0f} M) "
                f"left out; limit {LIMIT}x"
            )
            print(f"{'function':<20} {'baseline':<21} {'base M':>8} {'imp M':>8} {'x import':>8}")
            within = 0
            for spec in specs:
                own = handlers[spec.name].result() - interpreter_start
                base = baseline[spec.uses_pandas_layer]
                within += own / base <= LIMIT
                print(
                    f"{spec.name:<20} {baseline_libraries(spec):<21} {base / 1e6:>8.0f} "
                    f"{own / 1e6:>8.0f} {own / base:>8.3f}",
                    flush=True,
                )
    print(
        f"{within} of {len(specs)} functions import within {LIMIT}x their baseline in "
        f"instructions ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
