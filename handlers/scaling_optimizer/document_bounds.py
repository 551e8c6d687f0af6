"""How much parsing a JSON document would build, counted on its text before it is parsed.

Parsing takes memory per value, not per byte: a few MB of nested empty lists take hundreds of
MiB to parse (pydantic builds the whole document, the fields a model ignores included), so a
byte cap alone does not keep a hostile document within the function's memory.
"""

from __future__ import annotations

import re

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)', re.DOTALL)
"""A JSON string, escapes included, or an unterminated one to the end of the text (so that no
text makes the search start again at every quote)."""


def json_values_bound(text: bytes) -> int:
    """How many values parsing the JSON `text` builds, never fewer: one more than its commas and
    opening brackets outside strings (each comma one more item, each container a value; an empty
    one counted once too many). Counted on the text, before anything is parsed."""
    skeleton = _JSON_STRING.sub(b"", text)
    return skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{") + 1
