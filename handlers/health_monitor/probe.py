"""One HTTP GET of a health endpoint: status code and latency, with a timeout.

urllib is enough for a GET and ships with the runtime. An HTTP error status is a result, not an
exception: the check compares it with the endpoint's expected status. A timeout, a refused
connection or a TLS failure is reported as an error with no status code.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

USER_AGENT = "lambda-fleet-health-monitor"


@dataclass(frozen=True)
class ProbeResult:
    """What one request returned: `status_code` is None when no response came back."""

    status_code: int | None
    latency_ms: float
    error: str | None = None


Probe = Callable[[str, float], ProbeResult]
"""`probe(url, timeout_seconds)`; injectable so a check can be run against any transport."""


def http_probe(url: str, timeout_seconds: float) -> ProbeResult:
    """GET `url`, following redirects, and time it until the body has been read."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": USER_AGENT})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            response.read()
            status: int | None = response.status
        error = None
    except urllib.error.HTTPError as http_error:
        status, error = http_error.code, None
        http_error.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as failure:
        reason = getattr(failure, "reason", failure)
        status, error = None, f"{type(reason).__name__}: {reason}"
    latency_ms = (time.perf_counter() - started) * 1000
    return ProbeResult(status, round(latency_ms, 1), error)
