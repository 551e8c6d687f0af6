"""`python -m benchmarks [name ...]`: run every benchmark (or the named ones) in turn."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = (
    "cold_start",
    "cold_start_instructions",
    "tracing_cost",
    "package_sizes",
    "synthesis",
    "report_pipeline",
    "cost_cur",
    "forecast_backtest",
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
