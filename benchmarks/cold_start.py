"""Cold start: each handler's import, and its first invocation, beside the libraries it requires.

The design requires boto3 and pydantic of every function, plus pandas of the functions on the AWS
SDK for pandas layer (`uses_pandas_layer` in the catalog): that import is the function's
baseline. pydantic counts as `from pydantic import BaseModel, Field`: pydantic imports lazily, and
declaring any model with a field loads `pydantic.fields` (and with it `pydantic.types` and
`annotated_types`), which `BaseModel` alone does not.

Measured paired and alternating: baseline interpreter, handler interpreter, baseline, handler...
(`PAIRS` pairs per function), so a machine that slows down slows both sides of a pair; the
figure is the median of the pairs' ratios, printed with a distribution-free 95% interval for that
median. On this shared 2-CPU machine single pairs' ratios spread by about 0.2 (standard
deviation), which moved the median of 7 pairs by 0.05-0.15 between runs; 33 pairs narrow that.

Each pair imports at its own stack depth, the same on both sides: Python 3.12 keeps its frames in
16 KiB chunks and frees a chunk as soon as the stack drops back below it, so a loop of calls that
straddles a chunk boundary allocates and frees one on every call (CPython gh-142183; the fix,
one chunk kept per thread, went into 3.13 and later in 2026, not into 3.12). How often that
happens in an import depends on how deep the stack already is when the import starts, which in
Lambda the runtime decides. boto3 + pydantic imported from the top of `python -c` straddle
almost never (1 chunk); from other depths, about 1,000 times on average (up to 3,800), 10-15 µs
each. So the pairs start at `STACK_STEP` more frames each, spanning one chunk, rather than all
at the one depth that happens to favour the baseline.

Every interpreter runs as in Lambda: LAMBDA_TASK_ROOT set, the function's archive and the shared
layer's as the dev stack's program built them, unpacked as /var/task and /opt/python are (nothing
compiled is written back: Lambda's are read-only), and the environment the dev stack deploys
(POWERTOOLS_TRACE_DISABLED as its `tracing` setting says). The archives carry bytecode of the
runtime's Python 3.12 when the program found that interpreter (`lambda-fleet:bytecode`); run on
another version, the benchmark compiles the same sources the same way with its own interpreter
instead, and its header says which bytecode ran.

In the first `FIRST_PAIRS` pairs the handler interpreter then handles one representative event
from `events/<fn>/` against the demo's world (moto on 127.0.0.1, seeded as `fleetctl invoke`
seeds it), so that work moved from the import into the first call is still counted: "first" is
import plus that invocation. moto serves from this process, not the handler's, so neither moto's
imports nor its request handling is counted; the network round trips to it are.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from benchmarks.runtime_interpreter import handler_interpreter
from catalog import FUNCTIONS, FunctionSpec
from components.bytecode import RuntimePython, compile_bytecode
from fleetctl.demo_world import aws_client
from fleetctl.function_workers import WorkerPool
from fleetctl.local_world import LocalWorld, local_world
from fleetctl.mocked_program import ProgramRun, run_program

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"
STACK = "dev"
PAIRS = 33
FIRST_PAIRS = 7
"""Of the `PAIRS` pairs, those whose handler interpreter also handles the representative event."""
LIMIT = 1.25
INTERVAL_LEVEL = 0.95
STACK_STEP = 4
"""Frames of `at_depth` between one pair's stack depth and the next: 33 pairs span about one
16 KiB chunk of Python 3.12's data stack (about 135 of its frames)."""

# The representative event of each function: one that reads and reports without changing the
# world (dry runs, analyses), so the seven invocations see the same state.
REPRESENTATIVE_EVENTS = {
    "eks_scaler": "analyze.json",
    "spot_optimizer": "analyze_opportunities.json",
    "demand_forecaster": "forecast.json",
    "cost_analyzer": "analyze.json",
    "anomaly_detector": "scan.json",
    "health_monitor": "check_fleet.json",
    "security_scanner": "scan_dry_run.json",
    "notification_router": "sqs_batch.json",
    "cleanup_manager": "cleanup_dry_run.json",
    "backup_scheduler": "backup_dry_run.json",
    "report_fetcher": "scheduled_fetch.json",
    "report_processor": "raw_object_created.json",
    "report_generator": "processed_object_created.json",
    "change_validator": "scaler_change.json",
    "performance_analyzer": "analyze_fleet.json",
    "scaling_optimizer": "optimize.json",
}

_AT_DEPTH = """
def at_depth(levels, action):
    return at_depth(levels - 1, action) if levels else action()
"""

_BASELINE = (
    _AT_DEPTH
    + """
import sys, time


def libraries():
    import boto3
    from pydantic import BaseModel, Field
    {pandas}


started = time.perf_counter()
at_depth(int(sys.argv[1]), libraries)
print(time.perf_counter() - started)
"""
)

HANDLER_CODE = (
    _AT_DEPTH
    + """
import importlib, json, os, sys, time, uuid
started = time.perf_counter()
module = at_depth(int(sys.argv[4]), lambda: importlib.import_module(sys.argv[1]))
imported = time.perf_counter() - started
if sys.argv[3] == "import":
    print("imported", imported, "-")
    sys.exit()


class Context:
    function_name = sys.argv[2]
    memory_limit_in_mb = 256
    function_version = "$LATEST"
    invoked_function_arn = ""
    aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self):
        return int(os.environ["BENCHMARK_FUNCTION_TIMEOUT_SECONDS"]) * 1000


event = json.loads(sys.stdin.read())
result = module.lambda_handler(event, Context())
first = time.perf_counter() - started
answer = result if isinstance(result, dict) else {}
status = answer.get("status") or answer.get("statusCode") or ("error" in answer and "error")
print(status or "ok", imported, first)
"""
)


def baseline_code(uses_pandas_layer: bool) -> str:
    """The baseline interpreter's code: the libraries the design requires, timed."""
    return _BASELINE.format(pandas="import pandas" if uses_pandas_layer else "")


def interpreter_output(
    python: str, command: list[str], environment: dict[str, str], event: Any = None
) -> list[str]:
    completed = subprocess.run(
        [python, "-c", *command],
        input=json.dumps(event) if event is not None else "",
        capture_output=True,
        text=True,
        check=False,
        cwd=environment["LAMBDA_TASK_ROOT"],
        env=environment,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{command[1:]} failed:\n{completed.stderr[-2000:]}")
    return completed.stdout.split("\n")[-2].split()


def lambda_environment(
    environment: dict[str, str], code: LambdaCode, timeout_seconds: int
) -> dict[str, str]:
    # Lambda's /var/task and /opt are read-only: nothing a run compiles is kept for the next one.
    # The first invocation starts with the function's whole timeout left, as in Lambda: less
    # would make a budgeted function (security_scanner's scan) start no work at all.
    return {
        **environment,
        "BENCHMARK_FUNCTION_TIMEOUT_SECONDS": str(timeout_seconds),
        "LAMBDA_TASK_ROOT": str(code.task_root),
        "PYTHONPATH": os.pathsep.join([str(code.task_root), str(code.layer_python)]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass(frozen=True)
class LambdaCode:
    """A function's archive unpacked as /var/task and the shared layer's as /opt."""

    task_root: Path
    layer_python: Path
    bytecode: str


def _unpack(archive: Path, destination: Path, python: RuntimePython) -> str:
    """Unpack `archive` into `destination`; what bytecode it carries (and `python` runs).

    Bytecode of the runtime's interpreter (cpython-312) is ignored by another version, so when the
    handlers run on another one, its bytecode of the same sources, compiled the same way
    (`components/bytecode.py`), replaces the archive's.
    """
    with zipfile.ZipFile(archive) as zipped:
        contents = {name: zipped.read(name) for name in zipped.namelist()}
    bytecode_names = [name for name in contents if name.endswith(".pyc")]
    tag = "cpython-" + "".join(python.version.split(".")[:2])
    if bytecode_names and not all(f".{tag}.pyc" in name for name in bytecode_names):
        contents = {name: data for name, data in contents.items() if name not in bytecode_names}
        contents.update(compile_bytecode(python, contents))
        carried = f"the runtime's, recompiled as {tag} (no Python 3.12 here)"
    else:
        carried = f"the archives' own, {tag}" if bytecode_names else "none: sources only"
    for name, data in contents.items():
        path = destination / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return carried


def lambda_code(
    run: ProgramRun, spec: FunctionSpec, directory: Path, python: RuntimePython
) -> LambdaCode:
    """The archives the program built for `spec` (function and shared layer), unpacked."""
    function = next(
        resource
        for resource in run.of_type("aws:lambda/function:Function")
        if resource.inputs["handler"] == spec.handler
    )
    layer = run.of_type("aws:lambda/layerVersion:LayerVersion")[0]
    task_root, opt = directory / spec.name / "task", directory / spec.name / "opt"
    bytecode = _unpack(Path(function.inputs["code"].path), task_root, python)
    _unpack(Path(layer.inputs["code"].path), opt, python)
    return LambdaCode(task_root, opt / "python", bytecode)


def _s3_event(template: dict[str, Any], bucket: str, written: dict[str, Any]) -> dict[str, Any]:
    """The example S3 event, naming the object the world actually has: its key, ETag and version
    (the report functions act only on the object version an event names)."""
    record = json.loads(json.dumps(template["Records"][0]))
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"] = {**record["s3"]["object"], **written}
    return {"Records": [record]}


def _written_object(local: LocalWorld, prefix: str) -> dict[str, Any]:
    """The newest object under `prefix` in the data bucket, as the world's bucket events name it
    (key unquoted)."""
    world = local.world
    sqs = aws_client("sqs", world.endpoint_url, world.region, **world.hub_credentials)
    written: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=local.world.queues.bucket_events_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            for record in json.loads(message["Body"]).get("Records", []):
                s3_object = record["s3"]["object"]
                written.append({**s3_object, "key": unquote_plus(s3_object["key"])})
    matching = sorted(
        (entry for entry in written if entry["key"].startswith(prefix)),
        key=lambda entry: entry["key"],
    )
    if not matching:
        raise RuntimeError(f"the report pipeline wrote nothing under {prefix}")
    return matching[-1]


def _events(local: LocalWorld) -> dict[str, Any]:
    """Each function's representative event; the report pipeline is run once first, so the
    processor and the generator read objects that exist (and the fetcher's cache is warm, as it
    is on every run but the first of the day)."""
    events = {
        name: json.loads((EVENTS_DIR / name / file).read_text())
        for name, file in REPRESENTATIVE_EVENTS.items()
    }
    bucket = local.world.data_bucket
    with tempfile.TemporaryDirectory() as logs, WorkerPool(local.environments, Path(logs)) as pool:
        pool.invoke("report_fetcher", events["report_fetcher"])
        raw = _s3_event(events["report_processor"], bucket, _written_object(local, "raw/"))
        pool.invoke("report_processor", raw)
        processed = _s3_event(
            events["report_generator"], bucket, _written_object(local, "processed/")
        )
    events["report_processor"] = raw
    events["report_generator"] = processed
    return events


def median_interval(values: list[float], level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """A distribution-free interval for the median of `values`: their order statistics k and
    n + 1 - k, with k the largest for which P(Binomial(n, 1/2) < k) <= (1 - level) / 2, so the
    interval covers the median with probability at least `level` (7 values: their range)."""
    ordered = sorted(values)
    tail = (1 - level) / 2
    below, k = 0.0, 0
    while below + math.comb(len(ordered), k) / 2 ** len(ordered) <= tail:
        below += math.comb(len(ordered), k) / 2 ** len(ordered)
        k += 1
    k = max(k, 1)
    return ordered[k - 1], ordered[len(ordered) - k]


@dataclass(frozen=True)
class ColdStart:
    """Medians over the pairs: baseline and handler import seconds, and the two ratios, with the
    import ratio's interval and the standard deviation of single pairs' ratios; the statuses the
    first invocations returned (an error would make "first" meaningless)."""

    statuses: frozenset[str]
    baseline_seconds: float
    import_seconds: float
    import_ratio: float
    import_interval: tuple[float, float]
    pair_deviation: float
    first_ratio: float


def measure(
    spec: FunctionSpec, python: RuntimePython, environment: dict[str, str], event: Any
) -> ColdStart:
    """`PAIRS` alternating pairs of a baseline and a handler interpreter; in the first
    `FIRST_PAIRS` the handler interpreter also handles `event`."""
    baseline_source = baseline_code(spec.uses_pandas_layer)
    baselines, imports, import_ratios, first_ratios, statuses = [], [], [], [], set()
    for pair in range(PAIRS):
        invoke = pair < FIRST_PAIRS
        depth = str(STACK_STEP * pair)
        [baseline_text] = interpreter_output(
            python.executable, [baseline_source, depth], environment
        )
        status, imported_text, first_text = interpreter_output(
            python.executable,
            [
                HANDLER_CODE,
                f"handlers.{spec.name}.app",
                spec.name,
                "invoke" if invoke else "import",
                depth,
            ],
            environment,
            event if invoke else None,
        )
        baseline, imported = float(baseline_text), float(imported_text)
        baselines.append(baseline)
        imports.append(imported)
        import_ratios.append(imported / baseline)
        if invoke:
            statuses.add(status)
            first_ratios.append(float(first_text) / baseline)
    return ColdStart(
        frozenset(statuses),
        statistics.median(baselines),
        statistics.median(imports),
        statistics.median(import_ratios),
        median_interval(import_ratios),
        statistics.stdev(import_ratios),
        statistics.median(first_ratios),
    )


def baseline_libraries(spec: FunctionSpec) -> str:
    """The libraries of `spec`'s baseline, as the tables print them."""
    return "boto3+pydantic" + ("+pandas" if spec.uses_pandas_layer else "")


def _print_row(spec: FunctionSpec, cold_start: ColdStart) -> None:
    libraries = baseline_libraries(spec)
    result = "pass" if cold_start.import_ratio <= LIMIT else "FAIL"
    low, high = cold_start.import_interval
    print(
        f"{spec.name:<20} {libraries:<21} {1000 * cold_start.baseline_seconds:>8.0f} "
        f"{1000 * cold_start.import_seconds:>8.0f} {cold_start.import_ratio:>8.2f} "
        f"{f'{low:.2f}-{high:.2f}':>10} {cold_start.pair_deviation:>7.2f} "
        f"{cold_start.first_ratio:>7.2f}  {result:<6} "
        f"{'/'.join(sorted(cold_start.statuses))}",
        flush=True,
    )


def main(names: list[str] | None = None) -> None:
    """Every catalog function (or the `names` given)."""
    started = time.perf_counter()
    specs = [spec for spec in FUNCTIONS if not names or spec.name in names]
    python = handler_interpreter()
    run = run_program(STACK)
    with (
        local_world(STACK, run, datetime.now(UTC)) as local,
        tempfile.TemporaryDirectory() as code_directory,
    ):
        events = _events(local)
        codes = {spec.name: lambda_code(run, spec, Path(code_directory), python) for spec in specs}
        tracing = local.environments["eks_scaler"].get("POWERTOOLS_TRACE_DISABLED")
        print(
            f"Python {python.version}; paired and alternating, median of {PAIRS} pairs "
            f"({FIRST_PAIRS} with a first invocation), {INTERVAL_LEVEL:.0%} interval; "
            "LAMBDA_TASK_ROOT set; "
            f"stack {STACK}, POWERTOOLS_TRACE_DISABLED={tracing}; archives' bytecode: "
            f"{codes[specs[0].name].bytecode}; limit {LIMIT}x"
        )
        print(
            f"{'function':<20} {'baseline':<21} {'base ms':>8} {'imp ms':>8} "
            f"{'x import':>8} {'interval':>10} {'pair sd':>7} {'x first':>7}  result first status"
        )
        passed = surely_passed = 0
        for spec in specs:
            environment = lambda_environment(
                local.environments[spec.name], codes[spec.name], spec.timeout_seconds
            )
            cold_start = measure(spec, python, environment, events[spec.name])
            _print_row(spec, cold_start)
            passed += cold_start.import_ratio <= LIMIT
            surely_passed += cold_start.import_interval[1] <= LIMIT
    print(
        f"{passed} of {len(specs)} functions import within {LIMIT}x their baseline, "
        f"{surely_passed} with their whole interval ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
