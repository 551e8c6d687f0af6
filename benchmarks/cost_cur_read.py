"""The cost analyzer's CUR reading in a fresh process, as the benchmark `cost_cur` runs it.

`python -m benchmarks.cost_cur_read <bucket> <prefix> <start> <end>` reads the CUR under
s3://bucket/prefix as the function does (`cur_reader.aggregate_cur`: read and aggregated a chunk
of line items at a time; the S3 endpoint from AWS_ENDPOINT_URL), summarises it, and prints one
JSON line: seconds to import the reader, to read and aggregate, to summarise, the CPU seconds of
both (all threads; less sensitive than wall time to a busy machine), the process's peak resident
size, and the summary's totals.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

TOP_RESOURCES = 20


def main(bucket: str, prefix: str, start: datetime, end: datetime) -> dict[str, float]:
    """Read and aggregate, then summarise; the figures of each step."""
    started = time.perf_counter()
    import boto3  # noqa: PLC0415 - timed: the function's cold start pays it

    from handlers.cost_analyzer.cur import summarise  # noqa: PLC0415
    from handlers.cost_analyzer.cur_reader import aggregate_cur  # noqa: PLC0415

    imported = time.perf_counter()
    cpu_started = time.process_time()
    aggregate = aggregate_cur(boto3.client("s3"), bucket, prefix, start, end)
    aggregated = time.perf_counter()
    summary = summarise(aggregate, TOP_RESOURCES)
    done = time.perf_counter()
    cpu_seconds = time.process_time() - cpu_started
    return {
        "import_seconds": imported - started,
        "read_and_aggregate_seconds": aggregated - imported,
        "summary_seconds": done - aggregated,
        "cpu_seconds": cpu_seconds,
        "max_rss_mib": peak_resident_mib(),
        "groups": len(aggregate),
        "total_cost": summary["total_cost"],
        "node_hours": summary["eks_nodes"]["node_hours"],
        "spot_cost_share": summary["eks_nodes"]["spot_cost_share"],
    }


def peak_resident_mib() -> float:
    """This process's peak resident size since its exec (VmHWM). `ru_maxrss` would do on Lambda,
    but Linux carries it across fork and exec: here it would report the benchmark's parent, which
    holds the moto server and its objects."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    bucket_name, key_prefix, period_start, period_end = sys.argv[1:5]
    figures = main(
        bucket_name,
        key_prefix,
        datetime.fromisoformat(period_start),
        datetime.fromisoformat(period_end),
    )
    print(json.dumps(figures))
