"""Untrusted text made safe for a channel: escaped for Slack, cut to what each channel accepts.

Titles, details, resources and alarm reasons come from events that people outside the fleet can
shape (anyone allowed `cloudwatch:SetAlarmState` writes an alarm's `NewStateReason`). Slack reads
`<...>` as a link, a mention or `<!channel>`, so every such field is escaped (`&`, `<`, `>`, the
three characters Slack decodes) before it goes into a Slack text, the `plain_text` header and the
fallback `text` included: Slack's formatting reference says all text in Slack uses the same
escaping and names text objects of both types. Text longer than a field accepts is cut on a word
boundary and ends with an ellipsis; for Slack the limit counts the escaped text in code points
(Slack's Block Kit reference gives its limits in characters, and Slack's own `slack_sdk` checks
them with `len`), and a cut never splits an entity such as `&amp;`. A field meant for one line
(title, resource, source, region, alert id) is made one line in every channel (`one_line`): a line
break in it would start a line that reads as a fact of the message, or a header of the e-mail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ELLIPSIS = "\u2026"

SLACK_SECTION_MAX = 3000
SLACK_HEADER_MAX = 150
SLACK_FIELD_MAX = 2000
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_TEXT_MAX = 1024
"""Each other one-line text of a PagerDuty event: source, component, region."""
PAGERDUTY_DETAIL_MAX = 30_000
"""PagerDuty refuses an event over 512,000 bytes, on every retry. JSON writes a character in 12
bytes at most (one outside the BMP as two `\\u` escapes), so a detail cut to this many stays
within 360,000 bytes and leaves room for the event's other texts (a detail SNS takes, 256 KB
of UTF-8, is up to three times as large escaped)."""

_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
"""Control characters and every other character `str.splitlines` breaks a line on."""
_LAST_WORD = re.compile(r"\s+\S*$")


def one_line(text: str) -> str:
    """`text` with each run of line breaks and control characters made one space: a field meant
    for one line (a title, a resource) cannot start a line that reads as another fact."""
    return _LINE_BREAKS.sub(" ", text)


def slack_escape(text: str) -> str:
    """`text` with `&`, `<` and `>` replaced by the entities Slack decodes back for display."""
    return "".join(_SLACK_ENTITIES.get(character, character) for character in text)


def slack_text(text: str, limit: int) -> str:
    """`text` escaped for Slack and, escaped, at most `limit` characters."""
    return fit(text, limit, slack_escape)


def fit(text: str, limit: int, escape: Callable[[str], str] = str, ellipsis: str = ELLIPSIS) -> str:
    """`escape(text)` when it has at most `limit` characters; otherwise the longest escaped
    prefix that ends on a word boundary (mid-word only when the text has no boundary in its
    second half), followed by `ellipsis`, within `limit`."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    budget = limit - len(ellipsis)
    length = 0
    used = 0
    for character in text:
        used += len(escape(character))
        if used > budget:
            break
        length += 1
    head = text[:length]
    if not text[length].isspace():
        last_word = _LAST_WORD.search(head)
        if last_word is not None and last_word.start() >= length // 2:
            head = head[: last_word.start()]
    return escape(head.rstrip()) + ellipsis
