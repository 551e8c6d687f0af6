"""Behaviour of fleet_shared.event_parsing: events to models, bad input to one clear error."""

from __future__ import annotations

from typing import Literal

import pytest
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fleet_shared.event_parsing import decode_json, error_result, parse_event
from fleet_shared.exceptions import EventValidationError, LockNotAcquiredError
from handlers.demand_forecaster.models import ForecastRequest
from handlers.eks_scaler.models import ScalerEvent
from handlers.health_monitor.models import CheckClusterEvent
from handlers.performance_analyzer.models import AnalyzeClusterEvent
from handlers.spot_optimizer.models import RecommendMixEvent


class NodeGroupRequest(BaseModel):
    name: str
    desired_size: int


class ScaleRequest(BaseModel):
    action: Literal["scale_up", "scale_down"]
    nodegroups: list[NodeGroupRequest]


def test_valid_payload_becomes_the_model() -> None:
    # GIVEN a payload of the right shape WHEN parsed THEN the model holds its values
    request = parse_event(
        ScaleRequest, {"action": "scale_up", "nodegroups": [{"name": "a", "desired_size": 3}]}
    )
    assert request.nodegroups[0].desired_size == 3


def test_nested_error_names_the_field_path() -> None:
    # GIVEN a payload whose second node group has a non-numeric size
    payload = {
        "action": "scale_up",
        "nodegroups": [{"name": "a", "desired_size": 1}, {"name": "b", "desired_size": "x"}],
    }
    # WHEN parsed THEN the error names nodegroups[1].desired_size and the problem
    with pytest.raises(EventValidationError) as raised:
        parse_event(ScaleRequest, payload)
    assert raised.value.field == "nodegroups[1].desired_size"
    assert "valid integer" in raised.value.problem


def test_missing_field_is_named() -> None:
    # GIVEN a payload without `action` WHEN parsed THEN the error names `action`
    with pytest.raises(EventValidationError) as raised:
        parse_event(ScaleRequest, {"nodegroups": []})
    assert raised.value.field == "action"
    assert str(raised.value) == "invalid event: action: Field required"


@pytest.mark.parametrize("payload", [[1, 2], "scale", None])
def test_payload_that_is_not_an_object_is_reported_as_event(payload: object) -> None:
    # GIVEN a list, a string or nothing WHEN parsed THEN the field is `event`
    with pytest.raises(EventValidationError) as raised:
        parse_event(ScaleRequest, payload)
    assert raised.value.field == "event"
    assert "expected a JSON object" in raised.value.problem


def test_error_result_of_a_fleet_error_carries_its_message_and_context() -> None:
    # GIVEN a validation error WHEN turned into a result with context
    error = EventValidationError("nodegroups[0].desired_size", "must be >= 0")
    result = error_result(error, cluster="dev-apps")
    # THEN the result is the standard error shape
    assert result == {
        "status": "error",
        "error": "invalid event: nodegroups[0].desired_size: must be >= 0",
        "cluster": "dev-apps",
    }


def test_error_result_of_an_unexpected_exception_names_its_type() -> None:
    # GIVEN a KeyError, whose message alone is unreadable WHEN turned into a result
    # THEN the type is part of the message
    assert error_result(KeyError("name"))["error"] == "KeyError: 'name'"
    assert error_result(LockNotAcquiredError("scale", None, None))["error"] == (
        "lock scale is held"
    )


HOSTILE_MESSAGE = "denied\nAll checks passed \x1b[31mred\u2028next " + "x" * 5000
"""A peer's error message over several lines, with a terminal escape and a line separator, of
thousands of characters: its second line poses as a fact of the result."""


def test_error_result_of_a_foreign_error_quotes_it_escaped_and_cut() -> None:
    # GIVEN a refusal whose message is a peer's hostile text
    refusal = ClientError({"Error": {"Code": "AccessDenied", "Message": HOSTILE_MESSAGE}}, "Get")
    # WHEN turned into a result
    message = error_result(refusal)["error"]
    # THEN it is one line of 200 characters at most, its control characters written as escapes
    assert message.startswith(
        "ClientError: An error occurred (AccessDenied) when calling the Get operation: "
        "denied\\nAll checks passed \\x1b[31mred\\u2028next xxx"
    )
    assert message.isprintable()
    assert len(message) == 200
    # AND quoted again, the escaped text gains no second backslash
    requoted = error_result(RuntimeError(message))["error"]
    assert requoted.startswith(f"RuntimeError: {message[:120]}")


def test_error_result_of_a_validation_error_names_its_first_field_only() -> None:
    # GIVEN a document failing two rules, one of them on a 5,000-character value
    with pytest.raises(ValidationError) as raised:
        ScaleRequest.model_validate({"action": "x" * 5000, "nodegroups": "all"})
    # WHEN turned into a result
    message = error_result(raised.value)["error"]
    # THEN it is one line naming the first wrong field, without the value it refused
    assert message == "ValidationError: action: Input should be 'scale_up' or 'scale_down'"


def test_error_result_refuses_to_overwrite_status() -> None:
    # GIVEN context that would replace `status` WHEN building the result THEN it is refused
    with pytest.raises(TypeError):
        error_result(ValueError("x"), status="ok")


class StrictScaleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: str

    @field_validator("cluster")
    @classmethod
    def known_cluster(cls, value: str) -> str:
        if value != "dev-apps":
            raise ValueError(f"unknown cluster {value}")
        return value


def test_echoed_input_is_cut_to_200_characters() -> None:
    # GIVEN a 1 MB unknown field name, and a 1 MB value a validator repeats in its message
    huge = "x" * 1_000_000
    # WHEN parsed THEN the field path and the problem each keep at most 200 characters
    with pytest.raises(EventValidationError) as unknown_field:
        parse_event(StrictScaleRequest, {"cluster": "dev-apps", huge: 1})
    assert unknown_field.value.field.startswith("x" * 100)
    assert len(unknown_field.value.field) <= 200
    with pytest.raises(EventValidationError) as repeated_value:
        parse_event(StrictScaleRequest, {"cluster": huge})
    assert repeated_value.value.field == "cluster"
    assert repeated_value.value.problem.endswith("... (1000016 characters)")
    assert len(repeated_value.value.problem) == 200


def test_event_validation_error_built_by_hand_is_cut_too() -> None:
    # GIVEN a problem text repeating 5,000 characters of input WHEN raised as an error
    error = EventValidationError("body", "is not valid: " + "y" * 5000)
    # THEN its message keeps 200 characters of it
    assert len(str(error)) < 300


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ("[" * 50_000, "is JSON nested too deeply"),
        ('{"n": ' + "9" * 5000 + "}", "holds a number of more than 4,300 digits"),
    ],
)
def test_json_text_that_does_not_decode_is_an_error_on_its_field(text: str, problem: str) -> None:
    # GIVEN a message text that is not JSON, nested deeper than the decoder goes, or holding a
    # number Python refuses to convert
    # WHEN decoded THEN the error names the field (no RecursionError or ValueError)
    with pytest.raises(EventValidationError) as raised:
        decode_json(text, "Records[0].body")
    assert raised.value.field == "Records[0].body"
    assert raised.value.problem.startswith(problem)


@pytest.mark.parametrize(
    ("model", "event"),
    [
        pytest.param(
            ScalerEvent,
            {"action": "scale_up", "nodegroups": [{"name": "web"}]},
            id="eks_scaler",
        ),
        pytest.param(RecommendMixEvent, {"action": "recommend_node_group_mix"}, id="spot_mix"),
        pytest.param(ForecastRequest, {"action": "forecast"}, id="demand_forecaster"),
        pytest.param(CheckClusterEvent, {"action": "check_cluster"}, id="health_monitor"),
        pytest.param(AnalyzeClusterEvent, {"action": "analyze_cluster"}, id="performance_analyzer"),
    ],
)
@pytest.mark.parametrize(
    "cluster",
    ["<b>dev-apps</b>", "dev-apps\u0007\nforged line", "-dev", "x" * 10_000],
    ids=["markup", "control-characters", "leading-dash", "10000-characters"],
)
def test_a_cluster_name_eks_would_refuse_is_refused_naming_the_field(
    model: type[BaseModel], event: dict[str, object], cluster: str
) -> None:
    # GIVEN a cluster event whose cluster is not a name EKS allows
    payload = {**event, "account_id": "222222222222", "region": "ap-south-1", "cluster": cluster}
    # WHEN it is parsed
    with pytest.raises(EventValidationError) as refused:
        parse_event(model, payload)
    # THEN the one message names the field and quotes no more than a short prefix of the value
    assert refused.value.field == "cluster"
    assert "must be an EKS name" in str(refused.value)
    assert len(str(refused.value)) < 400


def test_a_node_group_name_eks_would_refuse_is_refused_naming_its_path() -> None:
    # GIVEN a scaler event whose second node group's name carries markup
    payload = {
        "action": "scale_down",
        "account_id": "222222222222",
        "region": "ap-south-1",
        "cluster": "dev-apps",
        "nodegroups": [{"name": "web", "desired_size": 1}, {"name": "<i>x</i>", "desired_size": 1}],
    }
    # WHEN it is parsed THEN the refusal names that node group's name
    with pytest.raises(EventValidationError) as refused:
        parse_event(ScalerEvent, payload)
    assert refused.value.field == "nodegroups[1].name"
