"""The forecaster's invocations get the time its Lambda function has (the catalog's timeout),
since the fleet run starts a cluster only while that time allows it; each test starts in a new
container."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from catalog.functions import function_spec
from tests.handlers.conftest import FakeLambdaContext

TIMEOUT_SECONDS = function_spec("demand_forecaster").timeout_seconds


@dataclass(frozen=True)
class ForecasterLambdaContext(FakeLambdaContext):
    """A context at the start of an invocation of the forecaster."""

    def get_remaining_time_in_millis(self) -> int:
        """The function's whole timeout."""
        return TIMEOUT_SECONDS * 1000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A Lambda context for calling `lambda_handler(event, context)` directly."""
    return ForecasterLambdaContext()
