"""What the tests of the functions that work through the members one target (account, region) at
a time share, backup_scheduler and cleanup_manager: the handler invoked for members A, B and a
member whose AssumeRole is denied, a target's result, the time a run leaves its targets, its
dry run and its inventory out of reach."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from catalog.functions import function_spec
from fleet_shared.access_episodes import SETTLE_ACCOUNT_SECONDS
from fleet_shared.environment import load_environment
from tests.handlers.deadlines import ContextRunningOutOfTime, LambdaTime, hang_every_attempt
from tests.handlers.faults import InjectedS3InternalError, s3_error_every_attempt
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_A,
    MEMBER_B,
    REGION,
    deny_assume_role,
    fleet_inventory,
)

DATA_BUCKET = "lambda-fleet-data"

Invoke = Callable[..., dict[str, Any]]


def write_inventory(*account_ids: str) -> None:
    """Replace the fleet inventory in the data bucket with one listing the given members."""
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET,
        Key="config/fleet-inventory.json",
        Body=json.dumps(fleet_inventory(*account_ids)).encode("utf-8"),
    )


def invoke_for_members_a_b_and_denied(
    function: Any,
    create_services: Callable[[Any], Any],
    environment_model: type[Any],
    built_services: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Invoke:
    """Write the inventory of members A, B and DENIED_MEMBER to the data bucket; the result
    invokes `function`'s handler, `invoke(event, context=None)`.

    Its services are made once per test by `create_services(environment)` (and appended to
    `built_services`, so a test can reach the clients the handler uses and hooks it registers
    there stay), the denied member's AssumeRole refused; the environment is read again per call,
    as a new container would, so a test can change a variable between runs. Without `context`
    the invocation has the function's whole timeout, as the schedule's invocation starts: a
    target starts only with time for its endpoints hanging.
    """
    write_inventory(MEMBER_A, MEMBER_B, DENIED_MEMBER)

    def services() -> Any:
        if not built_services:
            built = create_services(load_environment(environment_model))
            deny_assume_role(built.sessions.hub_client("sts"), DENIED_MEMBER)
            built_services.append(built)
        return dataclasses.replace(
            built_services[0], environment=load_environment(environment_model)
        )

    def invoke(event: Any, context: Any = None) -> dict[str, Any]:
        monkeypatch.setattr(function, "services", services)
        whole_invocation = ContextRunningOutOfTime(
            millis_left=[function_spec(function.name).timeout_seconds * 1000]
        )
        result: dict[str, Any] = function.lambda_handler(event, context or whole_invocation)
        return result

    return invoke


def target_of(result: dict[str, Any], account_id: str) -> dict[str, Any]:
    """The run's result for the target of `account_id`."""
    return next(t for t in result["targets"] if t["account_id"] == account_id)


def time_for_one_target() -> ContextRunningOutOfTime:
    """A Lambda context with time for the first target only: asked at each target's start."""
    return ContextRunningOutOfTime(millis_left=[300_000, 20_000])


def time_for_member_a_with_its_endpoints_hung(endpoints: int, after_targets: int = 0) -> list[Any]:
    """(seconds_left, member_a_started): a run with more than a target's budget (30 s) left, and
    one with time for the budget and one hung call (92 s) on each of member A's `endpoints`, and
    the time its function keeps free `after_targets` (settling access episodes, sending
    notices)."""
    return [
        pytest.param(100, False, id="more-than-the-budget-only"),
        pytest.param(
            30 + endpoints * 92 + after_targets + 1, True, id="the-budget-and-every-endpoint-bound"
        ),
    ]


TIME_FOR_MEMBER_A_WITH_ITS_ENDPOINTS_HUNG = time_for_member_a_with_its_endpoints_hung(
    2, SETTLE_ACCOUNT_SECONDS
)
"""time_for_member_a_with_its_endpoints_hung of backup_scheduler: two member endpoints, and an
account's settlement kept free after the last target."""


def assert_member_a_started_only_with_time_for_its_hung_calls(
    result: dict[str, Any], time: LambdaTime, *, member_a_started: bool
) -> None:
    """Lambda did not end the invocation of `result`: member A was started only with time for
    its hung calls (and spent it), and otherwise left for the next run untouched; the denied
    member is left last."""
    target_a = target_of(result, MEMBER_A)
    if member_a_started:
        assert target_a["status"] == "partial", target_a
        assert time.spent > 2 * 60, time.spent
    else:
        assert target_a["status"] == "not_started", target_a
        assert time.spent == 0
    assert result["not_started"][-1] == {"account_id": DENIED_MEMBER, "region": REGION}


def hang_member_a_endpoints(services: Any, time: LambdaTime, *calls: tuple[str, str]) -> None:
    """Make every attempt of each (service, operation) of `calls` in member A hang for its
    client's read timeout of `time`: endpoints that accept calls but never answer."""
    for service, operation in calls:
        client = services.member_client(service, MEMBER_A, REGION)
        hang_every_attempt(client, service, operation, time)


DRY_RUN_SWITCHES = ["event", "environment"]
"""The two ways of asking for a dry run: the event's `dry_run`, or FLEET_DRY_RUN."""


def dry_run_event(action: str, switch: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The event of `action`, a dry run by the event's `dry_run` or by FLEET_DRY_RUN (`switch`,
    one of DRY_RUN_SWITCHES)."""
    event: dict[str, Any] = {"action": action}
    if switch == "event":
        event["dry_run"] = True
    else:
        monkeypatch.setenv("FLEET_DRY_RUN", "true")
    return event


def inventory_unreadable(
    invoke: Invoke, action: str, built_services: list[Any]
) -> InjectedS3InternalError:
    """After a dry run of `action` built the services, the data bucket answering every attempt
    to read the fleet inventory with S3's InternalError, until healed."""
    invoke({"action": action, "dry_run": True})
    return s3_error_every_attempt(built_services[0].sessions.hub_client("s3"), "GetObject")
