"""Lambda memory: the cost analyzer's latest rightsizing, as `memory_mb` lines of the stack file.

The cost analyzer writes `reports/cost/<date>/detail.json` daily; its `lambda_memory` entries
name deployed functions. Each entry for one of this stack's functions (by the inventory's exact
names: `lf-dev-eu-...` is stack `dev-eu`'s, not a function `eu-...` of stack `dev`) that
recommends a decrease or an increase becomes `lambda-fleet:functions.<name>.memory_mb`, which the
program uses instead of the catalog's default.
"""

from __future__ import annotations

import json
from typing import Any

from fleet_shared.inventory import FleetInventory
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


def memory_changes(
    detail: dict[str, Any], source_key: str, inventory: FleetInventory
) -> list[StackFileChange]:
    """One change per function of the stack whose memory the cost analyzer would change."""
    changes: list[StackFileChange] = []
    for entry in detail.get("lambda_memory", []) or []:
        if entry.get("recommendation") not in {"decrease", "increase"}:
            continue
        name = inventory.function_named(str(entry.get("function", "")))
        if name is None:
            continue
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
