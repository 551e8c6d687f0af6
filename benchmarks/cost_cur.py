"""Cost CUR: the cost analyzer's reader and aggregation on a generated wide CUR in S3 (moto).

A CUR 2.0 export of 1,000,000 line items in 89 columns (`cur_files.py`, generated once under
`build/cur/`) is put into a moto server's S3 as Parquet and as gzipped CSV. For each, a fresh
process (`cost_cur_read.py`) runs the function's real reader and aggregation
(`cur_reader.aggregate_cur`: only the used columns, a chunk of line items at a time) and the
summary, and reports its wall and CPU time and its peak resident size (interpreter and imports
included, as Lambda counts memory). The goal, for Parquet: at most 3 s (read + aggregation) and
700 MiB.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pyarrow.parquet as pq

from benchmarks.cur_files import cur_files
from handlers.cost_analyzer.cur import READ_COLUMNS

REPO_ROOT = Path(__file__).resolve().parent.parent
LINE_ITEMS = 1_000_000
DAYS = 30
SEED = 7
END = datetime(2025, 6, 1, tzinfo=UTC)
START = END - timedelta(days=DAYS)
BUCKET = "cur-benchmark"
REGION = "ap-south-2"
GOAL_SECONDS = 3.0
GOAL_MIB = 700


def main() -> None:
    """Generate (once), upload, read in a child per format, print the figures and the verdict."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy; only when run

    interpreter = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {interpreter}")
    files = cur_files(LINE_ITEMS, START, DAYS, SEED)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    environment = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "handlers")]),
    }
    try:
        s3 = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"])
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        columns = pq.read_schema(files["parquet"]).names
        used = sum(column in columns for column in READ_COLUMNS)
        print(f"{LINE_ITEMS:,} line items, {len(columns)} columns, {used} read; "
              f"{DAYS} days, seed {SEED}")  # fmt: skip
        print(f"{'format':<9}{'MiB':>6}{'import s':>10}{'read+aggr. s':>14}{'summary s':>11}"
              f"{'cpu s':>7}{'peak MiB':>10}  goal")  # fmt: skip
        for name, path in files.items():
            prefix = f"{name.replace('.', '-')}/"
            s3.upload_file(str(path), BUCKET, f"{prefix}data/part-0.{name}")
            _report(name, path, _measure(prefix, environment))
    finally:
        server.stop()


def _measure(prefix: str, environment: dict[str, str]) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.cost_cur_read", BUCKET, prefix,
         START.isoformat(), END.isoformat()],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=environment,
    )  # fmt: skip
    figures: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def _report(name: str, path: Path, figures: dict[str, float]) -> None:
    total = figures["read_and_aggregate_seconds"]
    verdict = "n/a (Parquet only)"
    if name == "parquet":
        passed = total <= GOAL_SECONDS and figures["max_rss_mib"] <= GOAL_MIB
        verdict = f"{'PASS' if passed else 'FAIL'} (<= {GOAL_SECONDS:.0f} s, <= {GOAL_MIB} MiB)"
    print(
        f"{name:<9}{path.stat().st_size / 2**20:>6.0f}{figures['import_seconds']:>10.2f}"
        f"{total:>14.2f}{figures['summary_seconds']:>11.2f}"
        f"{figures['cpu_seconds']:>7.2f}{figures['max_rss_mib']:>10.0f}  {verdict}"
    )
    print(
        f"{'':<9}{figures['groups']:,} groups; total cost {figures['total_cost']:.2f} "
        f"USD, EKS node hours {figures['node_hours']:.0f}, spot share of node cost "
        f"{figures['spot_cost_share']:.1%}"
    )
