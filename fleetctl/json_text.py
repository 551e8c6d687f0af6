"""Reading JSON text a person hands a local tool (a plan, an event): every way `json` refuses it
is one error with the reason, never a traceback.

Besides `JSONDecodeError`, `json.loads` raises a plain ValueError for an integer of more than
4,300 digits (Python's limit on converting text to int) and RecursionError for arrays or
objects nested deeper than the interpreter's recursion limit.
"""

from __future__ import annotations

import json
from typing import Any

from fleetctl.exceptions import FleetctlError


class UnreadableJsonError(FleetctlError):
    """Text that `json` cannot read; the message is the reason, in one line."""


def read_json(text: str) -> Any:
    """The document `text` holds; raises UnreadableJsonError saying why it cannot be read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableJsonError(str(error)) from None
    except RecursionError:
        raise UnreadableJsonError("nested too deeply") from None
    except ValueError:
        raise UnreadableJsonError("a number too long to read") from None
