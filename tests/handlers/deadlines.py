"""A Lambda context whose time runs out: for tests of handlers that stop starting work in time."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.handlers.conftest import FakeLambdaContext


@dataclass(frozen=True)
class ContextRunningOutOfTime(FakeLambdaContext):
    """Answers the time left from `millis_left`, one answer per question (the handler asks once
    per target), the last answer repeated once the others are used up."""

    millis_left: list[int] = field(default_factory=lambda: [60_000])

    def get_remaining_time_in_millis(self) -> int:
        """The next answer of `millis_left`."""
        if len(self.millis_left) > 1:
            return self.millis_left.pop(0)
        return self.millis_left[0]
