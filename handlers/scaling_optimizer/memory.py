"""Lambda memory: the cost analyzer's latest rightsizing, as `memory_mb` lines of the stack file.

The cost analyzer writes `reports/cost/<date>/detail.json` daily; its `lambda_memory` entries
name deployed functions (`lf-<stack>-<name with dashes>`). Each entry that recommends a decrease
or an increase becomes `lambda-fleet:functions.<name>.memory_mb`, which the program uses instead
of the catalog's default.
"""

from __future__ import annotations

import json
from typing import Any

from fleet_shared.performance_documents import StackFileChange

COST_REPORTS_PREFIX = "reports/cost/"
DETAIL_NAME = "detail.json"
FUNCTIONS_KEY = "lambda-fleet:functions"


def latest_cost_detail(s3: Any, bucket: str) -> tuple[str, dict[str, Any]] | None:
    """The key and document of the newest cost detail, if any was written."""
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=COST_REPORTS_PREFIX
        )
        for item in page.get("Contents", [])
        if item["Key"].endswith(f"/{DETAIL_NAME}")
    ]
    if not keys:
        return None
    key = max(keys)
    return key, json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def memory_changes(detail: dict[str, Any], source_key: str, stack: str) -> list[StackFileChange]:
    """One change per fleet function whose memory the cost analyzer would change."""
    prefix = f"lf-{stack}-"
    changes: list[StackFileChange] = []
    for entry in detail.get("lambda_memory", []) or []:
        deployed = str(entry.get("function", ""))
        if entry.get("recommendation") not in {"decrease", "increase"}:
            continue
        if not deployed.startswith(prefix):
            continue
        name = deployed.removeprefix(prefix).replace("-", "_")
        changes.append(
            StackFileChange(
                path=[FUNCTIONS_KEY, name, "memory_mb"],
                current=int(entry["current_mb"]),
                recommended=int(entry["recommended_mb"]),
                evidence=(
                    f"{source_key}: at most {entry['max_used_mb']} MB used in "
                    f"{entry['invocations']} invocations; max x 1.3 rounded up to 64 MB; "
                    f"monthly saving {entry['monthly_saving_usd']} USD"
                ),
            )
        )
    return sorted(changes, key=lambda change: change.dotted())
