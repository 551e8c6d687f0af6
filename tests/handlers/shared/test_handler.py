"""The handler skeleton: configuration and event errors as results, strict JSON, deadlines."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import pytest
from botocore.exceptions import ReadTimeoutError
from pydantic import BaseModel, Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.exceptions import (
    ConfigurationError,
    FleetError,
    LockNotAcquiredError,
)
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import FleetFunction, Invocation, strict_json
from tests.handlers.conftest import FakeLambdaContext
from tests.handlers.deadlines import LambdaTime, hang_every_attempt


class _Environment(FunctionEnvironment):
    state_table_name: str = Field(description="The state table.")


class _Request(BaseModel):
    action: Literal["run"]
    value: float = 1.0


def _declare(
    handle: Any, error_response: Any = None
) -> FleetFunction[_Environment, FunctionServices[_Environment]]:
    function: FleetFunction[_Environment, FunctionServices[_Environment]] = FleetFunction(
        "skeleton_test", _Environment
    )
    function.handler(_Request, error_response=error_response)(handle)
    return function


def _echo(request: _Request, services: Any, invocation: Invocation) -> dict[str, Any]:
    return {"status": "ok", "value": request.value, "table": services.environment.state_table_name}


def test_a_missing_variable_fails_the_invocation_naming_it_until_it_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a function whose required variable is not set
    monkeypatch.delenv("STATE_TABLE_NAME", raising=False)
    function = _declare(_echo)
    # WHEN it is invoked
    # THEN the invocation fails naming the variable: the deployment is wrong, not the event, so
    # the event is kept for Lambda's retries (a queue's messages come back, an asynchronous event
    # goes on to the dead-letter queue) and the Errors alarm fires, instead of an answer that
    # consumes it
    with pytest.raises(
        ConfigurationError,
        match=r"^environment variable STATE_TABLE_NAME: is required but not set$",
    ):
        function.lambda_handler({"action": "run"}, FakeLambdaContext())
    # AND once the variable is set, the same container works without a restart
    monkeypatch.setenv("STATE_TABLE_NAME", "state")
    assert function.lambda_handler({"action": "run"}, FakeLambdaContext())["table"] == "state"


def test_bad_event_is_an_error_result_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a configured function
    monkeypatch.setenv("STATE_TABLE_NAME", "state")
    function = _declare(_echo)
    # WHEN the event has a wrong action
    result = function.lambda_handler({"action": "explode"}, FakeLambdaContext())
    # THEN the error names the field
    assert result["status"] == "error"
    assert result["error"].startswith("invalid event: action:")


def test_fleet_error_while_handling_uses_the_declared_error_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a handler that refuses with a FleetError, answered as HTTP
    monkeypatch.setenv("STATE_TABLE_NAME", "state")

    def refuse(request: _Request, services: Any, invocation: Invocation) -> dict[str, Any]:
        raise LockNotAcquiredError("not valid JSON", None, None)

    def as_http(error: FleetError, event: object) -> dict[str, Any]:
        return {"statusCode": 400, "body": json.dumps({"error": str(error)})}

    function = _declare(refuse, as_http)
    # WHEN it is invoked
    result = function.lambda_handler({"action": "run"}, FakeLambdaContext())
    # THEN the declared response carries the message
    assert result["statusCode"] == 400
    assert "not valid JSON" in json.loads(result["body"])["error"]


def test_unexpected_exception_propagates_so_lambda_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a handler with a bug
    monkeypatch.setenv("STATE_TABLE_NAME", "state")

    def broken(request: _Request, services: Any, invocation: Invocation) -> dict[str, Any]:
        raise KeyError("missing")

    function = _declare(broken)
    # WHEN / THEN the exception reaches the runtime instead of becoming a result
    with pytest.raises(KeyError):
        function.lambda_handler({"action": "run"}, FakeLambdaContext())


def test_non_finite_numbers_are_returned_as_null(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a handler whose result holds an infinite number
    monkeypatch.setenv("STATE_TABLE_NAME", "state")

    def infinite(request: _Request, services: Any, invocation: Invocation) -> dict[str, Any]:
        return {"status": "ok", "ratio": math.inf, "scores": [1.0, math.nan]}

    function = _declare(infinite)
    # WHEN it is invoked
    result = function.lambda_handler({"action": "run"}, FakeLambdaContext())
    # THEN the result is standard JSON with nulls in their place
    assert json.dumps(result, allow_nan=False)
    assert result == {"status": "ok", "ratio": None, "scores": [1.0, None]}


def test_strict_json_returns_a_valid_result_unchanged() -> None:
    value = {"a": [1, 2.5, "x"], "b": None}
    assert strict_json(value) is value


def test_invocation_reads_the_time_left_from_the_lambda_context() -> None:
    # GIVEN a context with 10 seconds left
    class _Context(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 10_000

    invocation = Invocation.from_context(_Context())
    # THEN a 5-second step fits and a 12-second one does not
    assert invocation.remaining_seconds() == 10.0
    assert invocation.allows(5)
    assert not invocation.allows(12)
    assert invocation.request_id == FakeLambdaContext.aws_request_id
    assert Invocation.local().remaining_seconds() == math.inf
    # AND a claim taken now blocks other copies for those 10 s (the longest without a deadline)
    assert invocation.claim_seconds(900) == 10
    assert invocation.claim_seconds(5) == 5
    assert Invocation.local().claim_seconds(900) == 900


def test_a_function_declares_one_handler() -> None:
    function = _declare(_echo)
    with pytest.raises(TypeError):
        function.handler(_Request)(_echo)


def test_error_answer_texts_are_cut_and_an_http_body_stays_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a handler refusing with an error whose message repeats 1 MB of input, answered
    # once as the standard error result and once as HTTP
    monkeypatch.setenv("STATE_TABLE_NAME", "state")
    huge = "z" * 1_000_000

    def refuse(request: _Request, services: Any, invocation: Invocation) -> dict[str, Any]:
        raise FleetError(f"fleet inventory {huge}: cannot be read")

    def as_http(error: FleetError, event: object) -> dict[str, Any]:
        return {"statusCode": 400, "body": json.dumps({"error": str(error)})}

    # WHEN each is invoked
    plain = _declare(refuse).lambda_handler({"action": "run"}, FakeLambdaContext())
    http = _declare(refuse, as_http).lambda_handler({"action": "run"}, FakeLambdaContext())
    # THEN every text is cut to 1000 characters and says how long it was
    assert plain["status"] == "error"
    assert plain["error"].endswith("... (1000032 characters)")
    assert len(plain["error"]) == 1000
    # AND the HTTP body is still JSON, its message cut the same way
    assert json.loads(http["body"])["error"].endswith("... (1000032 characters)")
    assert len(http["body"]) < 1050


def _read_saved_sizes(request: _Request, services: Any, invocation: Invocation) -> dict[str, Any]:
    return {"status": "ok", "saved": services.state.get_value("dev-apps", "sizes")}


@pytest.mark.usefixtures("fleet_environment", "state_table", "no_retry_waits")
def test_the_next_invocation_asks_again_the_state_table_that_did_not_answer_the_last() -> None:
    # GIVEN a function whose state table (DynamoDB) did not answer a read of one invocation
    function = _declare(_read_saved_sizes)
    dynamodb = function.services().hub_client("dynamodb")
    hang = hang_every_attempt(dynamodb, "dynamodb", "GetItem", LambdaTime(seconds_left=900))
    with pytest.raises(ReadTimeoutError):
        function.lambda_handler({"action": "run"}, FakeLambdaContext())
    # WHEN DynamoDB answers again and the next invocation of the container reads
    dynamodb.meta.events.unregister("before-send.dynamodb.GetItem", hang.hang)
    result = function.lambda_handler({"action": "run"}, FakeLambdaContext())
    # THEN it asked DynamoDB and got its answer
    assert result == {"status": "ok", "saved": None}
