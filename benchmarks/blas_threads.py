"""What OpenBLAS's threads cost the forecaster: the reason the program sets OPENBLAS_NUM_THREADS=1.

numpy's OpenBLAS starts one thread per visible core, and a thread that has finished its part of
a matrix product spins while it waits for the next. The forecaster's products are small (168 x 86
normal equations, a few hundred per forecast), so the extra threads mostly wait; on a core they
share (a Lambda function below 1,769 MB has less than one vCPU, this machine when busy) they
take the CPU from the thread that works. Interpreters run in turn, with and without the
variable; each forecasts the same generated series (four weeks of history, 24 hours ahead) and
prints the median wall and CPU time of one forecast. The load average is printed with them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PAIRS = 5
SERIES = 6
HISTORY_HOURS = 28 * 24
VARIABLE = "OPENBLAS_NUM_THREADS"
FORECASTS = f"""
import json, sys, time
import numpy as np
from benchmarks.forecast_backtest import SEED, generated_series
from handlers.demand_forecaster.seasonal_model import forecast_demand

rng = np.random.default_rng(SEED)
series = [generated_series(index, rng).values[:{HISTORY_HOURS}] for index in range({SERIES})]
forecast_demand(series[0], 0, 24)
walls, cpus = [], []
for values in series:
    wall, cpu = time.perf_counter(), time.process_time()
    forecast_demand(values, 0, 24)
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
json.dump({{"wall": walls, "cpu": cpus}}, sys.stdout)
"""


def _forecast_times(one_thread: bool) -> dict[str, list[float]]:
    environment = {
        name: value for name, value in os.environ.items() if name not in (VARIABLE, "PYTHONPATH")
    }
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "handlers")])
    if one_thread:
        environment[VARIABLE] = "1"
    completed = subprocess.run(
        [sys.executable, "-c", FORECASTS],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        check=True,
    )
    times: dict[str, list[float]] = json.loads(completed.stdout)
    return times


def main() -> None:
    load_before = os.getloadavg()[0]
    runs: dict[bool, dict[str, list[float]]] = {
        False: {"wall": [], "cpu": []},
        True: {"wall": [], "cpu": []},
    }
    for _ in range(PAIRS):
        for one_thread in (False, True):
            for kind, values in _forecast_times(one_thread).items():
                runs[one_thread][kind].extend(values)
    load_after = os.getloadavg()[0]
    print(
        f"{PAIRS} pairs of interpreters, {SERIES} forecasts each ({HISTORY_HOURS} hours of "
        f"history, 24 ahead), {os.cpu_count()} cores, load average {load_before:.1f} before "
        f"and {load_after:.1f} after"
    )
    print(f"{'OpenBLAS threads':<28} {'wall ms':>9} {'CPU ms':>9}")
    for one_thread, label in ((False, "one per core (its default)"), (True, f"1 ({VARIABLE}=1)")):
        wall = statistics.median(runs[one_thread]["wall"]) * 1000
        cpu = statistics.median(runs[one_thread]["cpu"]) * 1000
        print(f"{label:<28} {wall:>9.0f} {cpu:>9.0f}")


if __name__ == "__main__":
    main()
