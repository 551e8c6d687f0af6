"""Errors of the Pulumi program; each one is meant to be read by a platform engineer."""

from __future__ import annotations


class FleetProgramError(Exception):
    """Base of the errors the program reports instead of a traceback."""


# The most characters of a field path or of a problem that an error shows: a key or value of
# any length in a stack file still makes one short line.
MESSAGE_PART_LIMIT = 400


def one_short_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped (`\\n`), cut to
    MESSAGE_PART_LIMIT characters."""
    printable = "".join(
        character if character.isprintable() else repr(character)[1:-1] for character in text
    )
    if len(printable) <= MESSAGE_PART_LIMIT:
        return printable
    return f"{printable[: MESSAGE_PART_LIMIT - 3]}..."


class StackSettingsError(FleetProgramError):
    """A stack file breaks a rule; names the stack, the field path and what is wrong, in one
    short line whatever the file holds."""

    def __init__(self, stack: str, field: str, problem: str) -> None:
        self.stack = stack
        self.field = one_short_line(field)
        self.problem = one_short_line(problem)
        super().__init__(f"Pulumi.{stack}.yaml: {self.field}: {self.problem}")


class RuntimePythonError(FleetProgramError):
    """No usable interpreter of the functions' runtime version to compile the archives'
    bytecode with, or one that failed to compile them (components/bytecode.py)."""


class FieldValueError(ValueError):
    """Raised by a model validator to point the error at one field of the model it checks."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)
