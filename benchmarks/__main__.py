"""`python -m benchmarks [name ...]`: run every benchmark (or the named ones) in turn."""

from __future__ import annotations

import importlib
import os
import sys
import time

# As the program deploys the functions with numpy (components/function_wiring.py); set before
# any benchmark imports numpy. blas_threads sets it for its own interpreters.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

BENCHMARKS = (
    "cold_start",
    "cold_start_instructions",
    "tracing_cost",
    "package_sizes",
    "synthesis",
    "report_pipeline",
    "cost_cur",
    "forecast_backtest",
    "blas_threads",
    "predictive_replay",
)


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in names or BENCHMARKS:
        print(f"== {name} ({time.strftime('%Y-%m-%d %H:%M:%S')})", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
        print(flush=True)
    return 0


sys.exit(main(sys.argv[1:]))
