"""Secrets Manager values cached per container, for a limited time.

Every alert would otherwise cost one GetSecretValue per channel. The cache keeps each value for
ROUTER_SECRET_TTL_SECONDS, so a rotated webhook URL or routing key is picked up within that time
without a redeploy. A secret may be named or given as an ARN; an ARN's region is used for the
call, so a secret kept in another region works too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.clock import Clock


class SecretCache:
    """GetSecretValue results kept for `ttl_seconds` (0 disables caching)."""

    def __init__(
        self, client_for_region: Callable[[str | None], Any], clock: Clock, ttl_seconds: int
    ) -> None:
        """`client_for_region(region)` returns a Secrets Manager client (None: home region)."""
        self._client_for_region = client_for_region
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._values: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, secret_id: str) -> str:
        """The secret's string; raises botocore's ClientError when it cannot be read."""
        now = self._clock.now()
        with self._lock:
            cached = self._values.get(secret_id)
            if cached is not None and now < cached[1]:
                return cached[0]
        client = self._client_for_region(_region_of(secret_id))
        value = str(client.get_secret_value(SecretId=secret_id)["SecretString"])
        with self._lock:
            self._values[secret_id] = (value, now + self._ttl)
        return value


def _region_of(secret_id: str) -> str | None:
    parts = secret_id.split(":")
    return parts[3] if secret_id.startswith("arn:") and len(parts) > 3 and parts[3] else None
