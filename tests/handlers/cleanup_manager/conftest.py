"""Fixtures of the cleanup manager tests: members A and B plus a denied one, a movable clock.

moto stamps snapshots and volumes with the real creation time, so instead of back-dating
resources the tests run the cleanup on a clock set in the future relative to creation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.responses import ActionResult
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse

from fleet_shared.clock import ManualClock
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.cleanup_manager import app
from handlers.cleanup_manager.cleanup import CleanupServices
from handlers.cleanup_manager.environment import CleanupEnvironment
from tests.handlers.member_accounts import REGION, share_botocore_models
from tests.handlers.member_targets import invoke_for_members_a_b_and_denied


@pytest.fixture(autouse=True)
def _fast_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No default AMI catalogue (not owned by the members anyway) and shared botocore models."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    share_botocore_models(monkeypatch)


@pytest.fixture(autouse=True)
def _images_name_their_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's AMIs as EC2's: an image registered with `BlockDeviceMappings` uses the snapshots
    they name (moto makes up a root snapshot of its own instead, left as it is when none is
    named), EC2 refusing to delete its root device's snapshot only, and DescribeImages takes the
    filter `block-device-mapping.snapshot-id`, which moto does not implement."""
    own_mappings = Ami.block_device_mappings.fget
    own_filter_value = Ami.get_filter_value

    def block_device_mappings(image: Ami) -> list[dict[str, Any]]:
        return getattr(image, "registered_mappings", None) or own_mappings(image)

    def get_filter_value(image: Ami, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "block-device-mapping.snapshot-id":
            return [
                mapping["Ebs"]["SnapshotId"]
                for mapping in image.block_device_mappings
                if mapping.get("Ebs", {}).get("SnapshotId")
            ]
        return own_filter_value(image, filter_name, method_name)

    def register_image(response: AmisResponse) -> ActionResult:
        backend = response.ec2_backend
        image = backend.register_image(
            response._get_param("Name"), response._get_param("Description", "")
        )
        mappings = response._get_param("BlockDeviceMappings", [])
        if mappings:
            backend.snapshots.pop(image.ebs_snapshot.id)
            image.registered_mappings = mappings
            image.root_device_name = response._get_param("RootDeviceName")
            for mapping in mappings:
                if mapping["DeviceName"] == image.root_device_name and "Ebs" in mapping:
                    backend.snapshots[mapping["Ebs"]["SnapshotId"]].from_ami = image.id
        return ActionResult({"ImageId": image.id})

    monkeypatch.setattr(Ami, "block_device_mappings", property(block_device_mappings))
    monkeypatch.setattr(Ami, "get_filter_value", get_filter_value)
    monkeypatch.setattr(AmisResponse, "register_image", register_image)


@pytest.fixture(autouse=True)
def provisioned_concurrency(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Function name -> the qualifiers with provisioned concurrency, as every session the handler
    opens answers ListProvisionedConcurrencyConfigs (moto does not implement it); a test adds
    entries. The answer is given in `before-call`, after the handler built the request."""
    configured: dict[str, list[str]] = {}

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        # /2019-09-30/functions/<name>/provisioned-concurrency
        name = params["url_path"].split("/")[3]
        configs = [
            {"FunctionArn": f"arn:aws:lambda:{REGION}:000000000000:function:{name}:{qualifier}"}
            for qualifier in configured.get(name, [])
        ]
        return AWSResponse(params["url"], 200, {}, None), {"ProvisionedConcurrencyConfigs": configs}

    on_every_session(monkeypatch, "before-call.lambda.ListProvisionedConcurrencyConfigs", answer)
    return configured


def on_every_session(
    monkeypatch: pytest.MonkeyPatch, event_name: str, handler: Callable[..., Any]
) -> None:
    """Register botocore `handler` for `event_name` on every session the handler opens (hub and
    member accounts alike), on top of what earlier calls registered."""
    new_session = AccountSessions._new_session

    def session_with_handler(**arguments: Any) -> Any:
        created = new_session(**arguments)
        created.events.register(event_name, handler)
        return created

    monkeypatch.setattr(AccountSessions, "_new_session", staticmethod(session_with_handler))


# The policy most tests run under: every kind, deleting once the notice has run out.
DELETING_POLICY = {"resources": ["snapshots", "volumes", "lambda_versions"], "mode": "delete"}


@pytest.fixture(autouse=True)
def cleanup_policy(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], None]:
    """Set CLEANUP_POLICY to the deleting policy; a test calls the result to set another."""

    def set_policy(policy: dict[str, Any]) -> None:
        monkeypatch.setenv("CLEANUP_POLICY", json.dumps(policy))

    set_policy(DELETING_POLICY)
    return set_policy


@pytest.fixture
def future_clock() -> ManualClock:
    """40 days after the resources the test creates now: snapshots are past the 30-day age."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=40))


@pytest.fixture
def built_services() -> list[CleanupServices]:
    """The services of the invocations, so a test can reach the clients the handler uses."""
    return []


@pytest.fixture
def cleaner(  # noqa: PLR0917 - pytest passes fixtures positionally
    state_table: StateTable,
    alert_inbox: Any,
    inventory_in_s3: dict[str, Any],
    future_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    built_services: list[CleanupServices],
) -> Callable[..., dict[str, Any]]:
    """Invoke the handler for members A, B and a member whose AssumeRole is denied.

    The environment is read again per call (a test may change a variable between runs); the
    services keep their sessions and the movable clock.
    """
    return invoke_for_members_a_b_and_denied(
        app.FUNCTION,
        lambda environment: CleanupServices.create(
            app.FUNCTION.name, environment, clock=future_clock
        ),
        CleanupEnvironment,
        built_services,
        monkeypatch,
    )
