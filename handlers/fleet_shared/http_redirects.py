"""The redirects a fleet function's HTTP request follows: only to an http or https URL.

urllib's `HTTPRedirectHandler` follows a redirect to an ftp URL too, and ftplib makes that
connection itself, past every rule the caller's HTTP handlers apply to where they connect and
how long they take (health_monitor's address rule and connection tracking, report_fetcher's
time bound): a 302 to `ftp://169.254.169.254:80/` had health_monitor's probe connect to the
instance metadata service. `HttpRedirects` refuses a redirect of any other scheme with
`RedirectRefusedError` before anything connects; a caller with rules of its own (the same host
only) subclasses it.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any

from fleet_shared.validation_errors import shown_value

FOLLOWED_SCHEMES = frozenset({"http", "https"})
"""The schemes of the redirects a fleet function follows."""


class RedirectRefusedError(OSError):
    """An answer redirects to a URL of a scheme no fleet function follows. An OSError, as a
    refused connection is: callers report it as they report one."""


class HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect to an http or https URL only (see the module docstring)."""

    def redirect_request(  # noqa: PLR0917 (urllib's own signature)
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in FOLLOWED_SCHEMES:
            fp.close()
            raise RedirectRefusedError(
                f"redirect to {shown_value(newurl)} refused: only http and https redirects "
                "are followed"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)
