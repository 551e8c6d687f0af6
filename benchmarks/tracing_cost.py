"""What `tracing: detailed` adds to a cold start: the Powertools Tracer and the X-Ray SDK it loads.

docs/tracing.md states the cost of detailed tracing; this is its measurement. For a few
functions, interpreters run in turn: the baseline (boto3 + pydantic, as `cold_start` defines
it), the handler's import as the stack deploys it by default (`active`:
POWERTOOLS_TRACE_DISABLED=true, no Tracer) and the same import in `detailed`
(POWERTOOLS_TRACE_DISABLED=false: the Tracer is built, the X-Ray SDK imported and botocore
patched). Each interpreter runs as in Lambda, with the archives the dev stack's program built
(see `cold_start`). Printed per function: the medians of the three imports, and of the extra
import time of detailed tracing per triple, in milliseconds and as a multiple of the baseline.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.cold_start import (
    HANDLER_CODE,
    STACK,
    baseline_code,
    baseline_libraries,
    interpreter_output,
    lambda_code,
    lambda_environment,
    median_interval,
)
from benchmarks.runtime_interpreter import handler_interpreter
from catalog import FUNCTIONS
from fleetctl.local_world import local_world
from fleetctl.mocked_program import run_program

TRIPLES = 15
FUNCTION_NAMES = ("eks_scaler", "notification_router", "cost_analyzer")
"""Two functions on boto3 and pydantic alone, and one on the pandas layer."""
TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"


def main(names: list[str] | None = None) -> None:
    started = time.perf_counter()
    specs = [spec for spec in FUNCTIONS if spec.name in (names or FUNCTION_NAMES)]
    python = handler_interpreter()
    run = run_program(STACK)
    with (
        local_world(STACK, run, datetime.now(UTC)) as local,
        tempfile.TemporaryDirectory() as code_directory,
    ):
        print(
            f"Python {python.version}; {TRIPLES} triples (baseline, active, detailed) in turn, "
            "each at the top of its interpreter's stack; LAMBDA_TASK_ROOT set; stack "
            f"{STACK}'s archives"
        )
        print(
            f"{'function':<20} {'baseline':<21} {'base ms':>8} {'active':>8} {'detailed':>8} "
            f"{'extra ms':>8} {'interval':>11} {'x base':>7}"
        )
        for spec in specs:
            code = lambda_code(run, spec, Path(code_directory), python)
            environment = lambda_environment(
                local.environments[spec.name], code, spec.timeout_seconds
            )
            baseline_source = baseline_code(spec.uses_pandas_layer)
            module = f"handlers.{spec.name}.app"
            baselines, actives, detaileds = [], [], []
            for _ in range(TRIPLES):
                [baseline] = interpreter_output(
                    python.executable, [baseline_source, "0"], environment
                )
                baselines.append(float(baseline))
                for tracing, imports in (("true", actives), ("false", detaileds)):
                    _, imported, _ = interpreter_output(
                        python.executable,
                        [HANDLER_CODE, module, spec.name, "import", "0"],
                        {**environment, TRACE_DISABLED: tracing},
                    )
                    imports.append(float(imported))
            extras = [
                detailed - active for active, detailed in zip(actives, detaileds, strict=True)
            ]
            low, high = median_interval(extras)
            base = statistics.median(baselines)
            extra = statistics.median(extras)
            print(
                f"{spec.name:<20} {baseline_libraries(spec):<21} {1000 * base:>8.0f} "
                f"{1000 * statistics.median(actives):>8.0f} "
                f"{1000 * statistics.median(detaileds):>8.0f} {1000 * extra:>8.0f} "
                f"{f'{1000 * low:.0f}-{1000 * high:.0f}':>11} {extra / base:>7.2f}",
                flush=True,
            )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
