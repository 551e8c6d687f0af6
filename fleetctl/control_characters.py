"""Text shown on one line: control characters (line breaks, tabs, escapes) written as `\\xNN`."""

from __future__ import annotations

import re

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def escape_control_characters(text: str) -> str:
    """`text` with each control character shown as `\\xNN`: an exception text may quote an S3
    key or a stack value with a line break, which would split a one-line message in two (and
    could forge a second `fleetctl:` line) or start a new Markdown block."""
    return _CONTROL_CHARACTER.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
