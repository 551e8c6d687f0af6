"""report_processor on one raw document in a fresh process, as the benchmark `report_pipeline`
runs it for the documents at its bounds.

`python -m benchmarks.report_processor_peak <event file>` invokes the function with the S3
notification in the file (S3 and DynamoDB at AWS_ENDPOINT_URL, the function's variables in the
environment) and prints one JSON line: the resident size after the function's imports, the
process's peak resident size (interpreter and imports included, as Lambda counts memory), the
seconds the invocation took, and the object's result (with a rejection's reason).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.cost_cur_read import peak_resident_mib


def main(event_file: Path) -> dict[str, Any]:
    """Import the function, invoke it once; the figures."""
    from fleet_shared.handler import Invocation  # noqa: PLC0415 - measured after the imports
    from handlers.report_processor import app  # noqa: PLC0415

    imported_mib = _resident_mib()
    started = time.perf_counter()
    result = app.FUNCTION.invoke(json.loads(event_file.read_text()), Invocation.local())
    seconds = time.perf_counter() - started
    objects = result.get("objects") or [{}]
    return {
        "imported_mib": imported_mib,
        "max_rss_mib": peak_resident_mib(),
        "seconds": seconds,
        "status": objects[0].get("status", result.get("status")),
        "previous_run_id": objects[0].get("previous_run_id"),
        "error": objects[0].get("error", result.get("error")),
        "reason": objects[0].get("reason"),
    }


def _resident_mib() -> float:
    """This process's resident size now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
