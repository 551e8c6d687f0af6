"""Errors of the Pulumi program; each one is meant to be read by a platform engineer."""

from __future__ import annotations


class FleetProgramError(Exception):
    """Base of the errors the program reports instead of a traceback."""


class StackSettingsError(FleetProgramError):
    """A stack file breaks a rule; names the stack, the field path and what is wrong."""

    def __init__(self, stack: str, field: str, problem: str) -> None:
        self.stack = stack
        self.field = field
        self.problem = problem
        super().__init__(f"Pulumi.{stack}.yaml: {field}: {problem}")


class RuntimePythonError(FleetProgramError):
    """No usable interpreter of the functions' runtime version to compile the archives'
    bytecode with, or one that failed to compile them (components/bytecode.py)."""


class FieldValueError(ValueError):
    """Raised by a model validator to point the error at one field of the model it checks."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)
