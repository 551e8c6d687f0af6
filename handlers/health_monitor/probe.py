"""One HTTP GET of a health endpoint: status code and latency, with a timeout.

urllib is enough for a GET and ships with the runtime. An HTTP error status is a result, not an
exception: the check compares it with the endpoint's expected status. A timeout, a refused
connection, a TLS failure, an answer that is not HTTP or a redirect to a URL that is not one is
reported as an error with no status
code, its text cut to `ECHO_LIMIT` characters: http.client's error for an answer that is not HTTP
holds the whole line the server sent, up to 64 KB, which would reach the report and the alert.

The timeout bounds the whole answer, not each read: urllib's socket timeout applies to every
read alone, so an endpoint sending a byte at a time would hold the run for as long as it likes.
The request runs in a daemon thread that the probe waits for at most `timeout_seconds`; the
thread stops reading at its next chunk once the time is up.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from fleet_shared.validation_errors import cut_echo

USER_AGENT = "lambda-fleet-health-monitor"
READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProbeResult:
    """What one request returned: `status_code` is None when no response came back."""

    status_code: int | None
    latency_ms: float
    error: str | None = None


Probe = Callable[[str, float], ProbeResult]
"""`probe(url, timeout_seconds)`; injectable so a check can be run against any transport."""


def http_probe(url: str, timeout_seconds: float) -> ProbeResult:
    """GET `url`, following redirects, and time it until the body has been read; an answer not
    complete within `timeout_seconds` is a `TimeoutError`."""
    started = time.perf_counter()
    deadline = started + timeout_seconds
    answer: list[tuple[int | None, str | None]] = []
    worker = threading.Thread(target=lambda: answer.append(_get(url, deadline)), daemon=True)
    worker.start()
    worker.join(timeout_seconds)
    latency_ms = (time.perf_counter() - started) * 1000
    if not answer:
        status, error = None, f"TimeoutError: no complete answer within {timeout_seconds} s"
    else:
        status, error = answer[0]
    return ProbeResult(status, round(latency_ms, 1), error)


def _get(url: str, deadline: float) -> tuple[int | None, str | None]:
    """(status, error) of the GET, reading the body until `deadline` at the latest."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": USER_AGENT})
    try:
        timeout = max(deadline - time.perf_counter(), 0.001)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while response.read1(READ_CHUNK_BYTES):
                if time.perf_counter() > deadline:
                    raise TimeoutError("the answer did not end in time")
            return response.status, None
    except urllib.error.HTTPError as http_error:
        http_error.close()
        return http_error.code, None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as failure:
        # ValueError: a redirect to a URL no parser reads (`http://[::1`), or a host name IDNA
        # cannot encode. Uncaught, it ended the thread without an answer: reported as a timeout
        # it never was, with a traceback in the log.
        reason = getattr(failure, "reason", failure)
        return None, cut_echo(f"{type(reason).__name__}: {reason}")
