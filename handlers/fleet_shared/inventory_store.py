"""Reading the fleet inventory from the data bucket, parsed once per container.

`load_inventory` parses the object once and then only asks S3 whether it changed (a conditional
GET on its ETag), so a new deployment is picked up without a cold start. The models and the
parser live in `fleet_shared.inventory`, which has no AWS dependency.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.exceptions import InventoryError
from fleet_shared.inventory import FleetInventory, parse_inventory

_cache: dict[tuple[str, str], tuple[str, FleetInventory]] = {}
_cache_lock = threading.Lock()


def load_inventory(s3_client: Any, bucket: str, key: str) -> FleetInventory:
    """The inventory at s3://bucket/key, parsed again only when its ETag changed.

    Raises `InventoryError` when the object is missing, unreadable, or not a valid inventory.
    """
    location = f"s3://{bucket}/{key}"
    with _cache_lock:
        cached = _cache.get((bucket, key))
    request: dict[str, str] = {"Bucket": bucket, "Key": key}
    if cached is not None:
        request["IfNoneMatch"] = cached[0]
    try:
        response = s3_client.get_object(**request)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if cached is not None and code in ("304", "NotModified"):
            return cached[1]
        raise InventoryError(location, f"cannot be read: {code}") from error
    inventory = parse_inventory(response["Body"].read(), location)
    with _cache_lock:
        _cache[(bucket, key)] = (response["ETag"], inventory)
    return inventory
