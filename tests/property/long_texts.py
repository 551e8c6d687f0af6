"""Long texts the property tests put into events and stack files, and how much of one a message
echoes: a message may repeat at most a short prefix of a bad value."""

from __future__ import annotations

from hypothesis import strategies as st

MARKER = "Zq"
"""Starts every long text the tests write: no field, setting or message of the project contains
it, so any run of the marker's characters in a message came from the input."""
_FILLER = "x0y1"


def long_texts(shortest: int, longest: int) -> st.SearchStrategy[str]:
    """Texts of `shortest` to `longest` characters, each the marker then filler."""
    return st.integers(min_value=shortest, max_value=longest).map(
        lambda length: (MARKER + _FILLER * (longest // len(_FILLER) + 1))[:length]
    )


def longest_echoed_run(message: str) -> int:
    """The most characters of a long text of the input that `message` repeats in one piece."""
    longest = 0
    start = message.find(MARKER)
    while start != -1:
        end = start
        while end < len(message) and message[end] in (MARKER + _FILLER):
            end += 1
        longest = max(longest, end - start)
        start = message.find(MARKER, end)
    return longest
