"""One inventory contract: what the program writes is what the handlers' parser reads."""

from __future__ import annotations

import json

import pytest

from components.buckets import INVENTORY_KEY
from components.settings import load_settings
from fleet_shared.inventory import FleetInventory, parse_inventory
from fleetctl.mocked_program import ProgramRun


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_inventory_is_read_back_unchanged_by_the_handlers_parser(
    stack: str, stack_settings_document, program_runs: dict[str, ProgramRun]
) -> None:
    # GIVEN the stack's settings, through the real settings loader
    settings = load_settings(stack, stack_settings_document(stack))
    expected = settings.inventory(stack)
    # WHEN the inventory object the program writes is read by the handlers' parser
    written = next(
        resource
        for resource in program_runs[stack].of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if resource.inputs.get("key") == INVENTORY_KEY
    )
    parsed = parse_inventory(written.inputs["content"], f"{stack} plan")
    # THEN it is the settings' inventory, with every member, cluster and node group
    assert isinstance(parsed, FleetInventory)
    assert parsed == expected
    assert [member.account_id for member in parsed.members] == [
        member.account_id for member in settings.members
    ]
    assert {
        (cluster.name, group.name, group.max_size)
        for _, cluster in parsed.clusters()
        for group in cluster.node_groups
    } == {
        (cluster.name, group.name, group.max_size)
        for member in settings.members
        for cluster in member.clusters
        for group in cluster.node_groups
    }
    # AND it names exactly the Lambda functions the program creates, by their catalog names
    created = {
        resource.inputs["name"]
        for resource in program_runs[stack].of_type("aws:lambda/function:Function")
    }
    assert set(parsed.functions.values()) == created
    assert {parsed.function_named(name) for name in created} == set(parsed.functions)


def test_schedule_times_survive_the_round_trip_as_clock_times(stack_settings_document) -> None:
    # GIVEN the dev settings, whose cluster scales up at 08:00
    settings = load_settings("dev", stack_settings_document("dev"))
    # WHEN its inventory is serialised and parsed as a handler does
    document = json.dumps(settings.inventory("dev").model_dump(mode="json"))
    inventory = parse_inventory(document, "dev")
    cluster = inventory.find_cluster("222222222222", "ap-south-1", "dev-apps")
    # THEN the schedule reads as the stack file says
    assert cluster is not None
    assert cluster.schedule is not None
    assert cluster.schedule.scale_up_time.isoformat(timespec="minutes") == "08:00"
    assert cluster.schedule.days == ("MON", "TUE", "WED", "THU", "FRI")
