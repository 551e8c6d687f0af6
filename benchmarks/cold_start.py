"""Cold start: import time of each handler module in a fresh interpreter, beside boto3 alone.

Both are measured in the same run, on the same machine, as the median of several fresh
interpreters, so the ratio says what our code adds to the import of the SDK every function pays.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from catalog import FUNCTIONS

REPO_ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5

_MEASURE = """
import time, importlib, sys
started = time.perf_counter()
importlib.import_module(sys.argv[1])
print(time.perf_counter() - started)
"""


def import_seconds(module: str) -> float:
    """Median import time of `module` in fresh interpreters laid out like Lambda's paths."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "handlers")])
    environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    samples = []
    for _ in range(REPEATS):
        completed = subprocess.run(
            [sys.executable, "-c", _MEASURE, module],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
            env=environment,
        )
        samples.append(float(completed.stdout.strip()))
    return statistics.median(samples)


def main() -> None:
    baseline = import_seconds("boto3")
    print(f"boto3 alone: {1000 * baseline:.0f} ms (median of {REPEATS} fresh interpreters)")
    print(f"{'function':<22} {'import ms':>10} {'x boto3':>8}")
    for spec in FUNCTIONS:
        if not (REPO_ROOT / spec.source_dir / "app.py").exists():
            print(f"{spec.name:<22} {'(no handler yet)':>19}")
            continue
        seconds = import_seconds(f"handlers.{spec.name}.app")
        print(f"{spec.name:<22} {1000 * seconds:>10.0f} {seconds / baseline:>8.2f}")
