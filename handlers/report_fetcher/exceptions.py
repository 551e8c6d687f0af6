"""Errors of report_fetcher."""

from __future__ import annotations

from typing import Any

from fleet_shared.validation_errors import shown_value


class SsmReadError(Exception):
    """SSM could not be read in full: the fetch fails, as for a call that failed."""


class UnreadableSsmAnswerError(SsmReadError):
    """SSM answered a call (HTTP 200) with something that is not that call's answer: botocore
    hands on a body it cannot parse as JSON as `{"message": <body>}`, so it raises nothing."""

    def __init__(self, operation: str, answer: dict[str, Any]) -> None:
        self.operation = operation
        content = {name: value for name, value in answer.items() if name != "ResponseMetadata"}
        super().__init__(
            f"{operation} answered without a list of named parameters: {shown_value(content)}"
        )


class ForeignSsmParameterError(SsmReadError):
    """A listing answered a parameter that is not a code directly under the path asked, or one
    it had answered already: the answer is not the listing's."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        super().__init__(
            f"GetParametersByPath under {path} answered {shown_value(name)}: not a code directly "
            "under it, or listed twice"
        )


class EmptySsmListingError(SsmReadError):
    """SSM listed nothing under a top-level path: no dataset has no regions or no services."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"GetParametersByPath listed no parameters under {path}")


class SsmOutOfTimeError(SsmReadError):
    """The invocation's time ran short before SSM was read in full."""

    def __init__(self, calls: int, seconds_left: float) -> None:
        self.calls = calls
        super().__init__(
            f"SSM not read within the invocation's time: stopped after {calls} calls with "
            f"{seconds_left:.0f} s left"
        )
