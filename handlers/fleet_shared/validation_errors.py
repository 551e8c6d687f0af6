"""One readable line out of a pydantic `ValidationError`.

Events, environment variables and the inventory are all validated by pydantic; users should read
"nodegroups[0].desired_size: Input should be a valid integer", not a multi-line dump.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")

ECHO_LIMIT = 200
"""The most characters of its input an error message repeats: enough to recognise the value,
and a 1 MB field cannot make a 1 MB answer (or log line)."""


def cut_echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as it is when it has at most `limit` characters, else its start and its length in
    `limit` characters (so a text cut once is not cut again)."""
    if len(text) <= limit:
        return text
    marker = f"... ({len(text)} characters)"
    return text[: max(limit - len(marker), 0)] + marker


_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters (C0, DEL, C1) and the other characters `str.splitlines` breaks a line on."""


def escaped_echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` with each control character or line separator written as its Python escape
    (`\\n`, `\\x1b`, `\\u2028`), then cut as `cut_echo` cuts it: a message a service (or a
    proxy) wrote, quoted in an error, stays one short line, and cannot start a line of a log, a
    report or an alert that reads as another fact."""
    escaped = _LINE_BREAKING.sub(
        lambda match: match.group().encode("unicode_escape").decode("ascii"), text
    )
    return cut_echo(escaped, limit)


def error_echo(error: BaseException, limit: int = ECHO_LIMIT) -> str:
    """An exception the fleet did not word, as a message or a result quotes it: `<type>:
    <message>` (its type alone when it has no message, its type because a message alone, "'name'"
    for a KeyError, is rarely readable), escaped and cut as `escaped_echo` does, since its message
    may repeat what a peer sent (botocore's ResponseParserError holds the whole page it could not
    parse, a ClientError the message a proxy filled with its page). A message escaped already
    (`\\n`) gains no second backslash."""
    named = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return escaped_echo(named, limit)


SHOWN_VALUE_LENGTH = 40
"""The most characters of a refused value a validation message quotes: enough to recognise it."""


def shown_value(value: object) -> str:
    """A refused value as a validation message quotes it: its repr, cut to SHOWN_VALUE_LENGTH
    characters, so one line stays one short line whatever was pasted."""
    text = repr(value)
    if len(text) > SHOWN_VALUE_LENGTH:
        return f"{text[: SHOWN_VALUE_LENGTH - 3]}..."
    return text


def echo_field(value: object) -> str | None:
    """A field of an event that is being ignored, as a result or log line repeats it: cut to
    ECHO_LIMIT characters (None stays None)."""
    return None if value is None else cut_echo(str(value))


def render_location(location: tuple[int | str, ...]) -> str:
    """`('nodegroups', 0, 'desired_size')` -> `nodegroups[0].desired_size`."""
    rendered = ""
    for part in location:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered


def first_error(error: ValidationError, root: str) -> tuple[str, str]:
    """The first error as (field path, problem); `root` is the path of the input as a whole.

    Both parts are escaped and cut as `escaped_echo` does: a path may hold a key of the input,
    and a problem the value it refuses."""
    details = error.errors(include_url=False)[0]
    message = details["msg"]
    for prefix in _MESSAGE_PREFIXES:
        message = message.removeprefix(prefix)
    return escaped_echo(render_location(tuple(details["loc"])) or root), escaped_echo(message)
