"""Why a file a person hands a local tool (a stack file, a plan, an event) cannot be read as
text, in a few words for a one-line refusal: the system's reason, or the first byte that is not
UTF-8, the one encoding the Pulumi CLI and JSON readers take."""

from __future__ import annotations


def unreadable(error: OSError | UnicodeDecodeError) -> str:
    """Why reading text failed with `error`, for one line."""
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text: byte {error.start} is {error.object[error.start]:#04x}"
    return error.strerror or type(error).__name__
