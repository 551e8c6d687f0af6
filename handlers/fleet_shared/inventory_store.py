"""Reading the fleet inventory from the data bucket, parsed once per container.

`load_inventory` parses the object once and then only asks S3 whether it changed (a conditional
GET on its ETag), so a new deployment is picked up without a cold start. The models and the
parser live in `fleet_shared.inventory`, which has no AWS dependency.

Two failures, two errors: an object that cannot be read (S3 failing after botocore's retries,
refusing, or without the object) raises `InventoryUnreadableError`, which fails the invocation so
Lambda retries it and the Errors alarm counts it; an object read but not a valid inventory raises
`InventoryError`, naming the field, which fails the invocation too (a `DeploymentError`: the
retries are for the Errors alarm, no retry mends the object).
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import InventoryUnreadableError
from fleet_shared.inventory import FleetInventory, parse_inventory

_cache: dict[tuple[str, str], tuple[str, FleetInventory]] = {}
_cache_lock = threading.Lock()


def load_inventory(s3_client: Any, bucket: str, key: str) -> FleetInventory:
    """The inventory at s3://bucket/key, parsed again only when its ETag changed.

    Raises `InventoryUnreadableError` when the object cannot be read (an error of S3 or of the
    connection after botocore's retries, a refusal, no object) and `InventoryError` when it is
    not a valid inventory.
    """
    location = f"s3://{bucket}/{key}"
    with _cache_lock:
        cached = _cache.get((bucket, key))
    request: dict[str, str] = {"Bucket": bucket, "Key": key}
    if cached is not None:
        request["IfNoneMatch"] = cached[0]
    try:
        response = s3_client.get_object(**request)
        document = response["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if cached is not None and code in ("304", "NotModified"):
            return cached[1]
        raise InventoryUnreadableError(location, call_error_text(error)) from error
    except AWS_CALL_ERRORS as error:
        raise InventoryUnreadableError(location, call_error_text(error)) from error
    inventory = parse_inventory(document, location)
    with _cache_lock:
        _cache[(bucket, key)] = (response["ETag"], inventory)
    return inventory
