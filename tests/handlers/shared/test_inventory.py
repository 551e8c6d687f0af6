"""Behaviour of fleet_shared.inventory: the inventory document in S3 as frozen models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import time
from typing import Any, get_args

import boto3
import pytest
from pydantic import BaseModel, ValidationError

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.exceptions import InventoryError, InventoryUnreadableError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.inventory import ClusterScaling, FleetInventory, parse_inventory
from fleet_shared.inventory_store import load_inventory
from tests.handlers.conftest import FakeLambdaContext
from tests.handlers.faults import MULTI_LINE_PAGE, refuse_every_s3_attempt, s3_error_every_attempt

BUCKET = "lambda-fleet-data"
KEY = "config/fleet-inventory.json"
MEMBER = "222222222222"
REGION = "ap-south-1"

# The fields of every inventory model as released, by model: the required ones, then the others.
# The functions of a release read the inventory the release before wrote until `pulumi up` writes
# the new one, after them. So a field is added only with a default, and none is removed (that
# inventory has it, and the models refuse a field they do not know). Never add a name to a
# model's required fields here; a new model, reached through a field with a default, enters with
# its own.
RELEASED_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "FleetInventory": (
        frozenset({"stack", "hub", "dry_run", "members"}),
        frozenset({"functions", "minimum_memory_mb"}),
    ),
    "HubAccount": (frozenset({"account_id", "region"}), frozenset()),
    "MemberAccount": (frozenset({"account_id", "name", "regions"}), frozenset({"clusters"})),
    "Cluster": (
        frozenset({"name", "region", "kubernetes_version", "node_groups"}),
        frozenset(
            {"existing", "autoscaler", "schedule", "calendar", "health_endpoints", "scaling"}
        ),
    ),
    "NodeGroup": (
        frozenset(
            {
                "name",
                "capacity_type",
                "instance_types",
                "min_size",
                "desired_size",
                "max_size",
                "floor",
            }
        ),
        frozenset(),
    ),
    "ScalingSchedule": (
        frozenset({"time_zone", "scale_up_time", "scale_down_time", "days"}),
        frozenset({"off_hours_desired", "exclude_node_groups"}),
    ),
    "ClusterCalendar": (
        frozenset({"time_zone"}),
        frozenset({"holidays", "working_days", "maintenance_windows"}),
    ),
    "MaintenanceWindow": (frozenset({"start", "end", "reason"}), frozenset()),
    "HealthEndpoint": (
        frozenset({"name", "url"}),
        frozenset({"timeout_seconds", "expected_status"}),
    ),
    "ClusterScaling": (
        frozenset(),
        frozenset(
            {
                "mode",
                "confidence_threshold",
                "target_utilization",
                "headroom_percent",
                "max_step",
                "working_hours_floor",
            }
        ),
    ),
}


class CountingS3:
    """An S3 client that counts GetObject calls and what they returned."""

    def __init__(self) -> None:
        self._s3 = boto3.client("s3", region_name=REGION)
        self.downloads = 0

    def get_object(self, **request: Any) -> dict[str, Any]:
        response = self._s3.get_object(**request)
        self.downloads += 1
        return dict(response)


def test_inventory_document_is_parsed_into_models(inventory_in_s3: dict[str, Any]) -> None:
    # GIVEN the inventory the program wrote WHEN it is loaded
    inventory = load_inventory(boto3.client("s3", region_name=REGION), BUCKET, KEY)
    # THEN clusters, node groups and schedules are typed
    cluster = inventory.find_cluster(MEMBER, REGION, "dev-apps")
    assert cluster is not None
    assert cluster.schedule is not None
    assert cluster.schedule.scale_down_time == time(18, 0)
    assert cluster.schedule.zone.key == "Asia/Kolkata"
    assert cluster.health_endpoints[0].expected_status == 200
    assert inventory.hub.account_id == "123456789012"
    assert inventory.dry_run is True


def test_unchanged_object_is_not_downloaded_again(inventory_in_s3: dict[str, Any]) -> None:
    # GIVEN an inventory already loaded in this container
    s3 = CountingS3()
    first = load_inventory(s3, BUCKET, KEY)
    downloads = s3.downloads
    # WHEN loaded again with the object unchanged THEN the cached model is returned
    assert load_inventory(s3, BUCKET, KEY) is first
    assert s3.downloads == downloads


def test_changed_object_is_parsed_again(inventory_in_s3: dict[str, Any]) -> None:
    # GIVEN a loaded inventory that a new deployment then rewrote with another stack name
    s3 = boto3.client("s3", region_name=REGION)
    assert load_inventory(s3, BUCKET, KEY).stack == "handlers"
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps({**inventory_in_s3, "stack": "dev2"}))
    # WHEN loaded again THEN the new content is returned
    assert load_inventory(s3, BUCKET, KEY).stack == "dev2"


def test_missing_object_cannot_be_read_naming_the_location(
    inventory_in_s3: dict[str, Any],
) -> None:
    # GIVEN no object at the key WHEN loaded
    # THEN InventoryUnreadableError names the location and S3's answer: a deployment that wrote
    # no inventory fails the invocation, so the Errors alarm tells people
    with pytest.raises(InventoryUnreadableError) as raised:
        load_inventory(boto3.client("s3", region_name=REGION), BUCKET, "config/missing.json")
    assert raised.value.location == f"s3://{BUCKET}/config/missing.json"
    assert "NoSuchKey" in raised.value.cause


def test_a_refusal_with_a_page_is_quoted_in_one_short_line(inventory_in_s3: dict[str, Any]) -> None:
    # GIVEN S3 (or a proxy before it) refusing the inventory's GetObject with a page: thousands
    # of characters over several lines, markup included, a later line posing as another fact
    s3 = boto3.client("s3", region_name=REGION)
    refusal = refuse_every_s3_attempt(s3, "GetObject", MULTI_LINE_PAGE)
    # WHEN the inventory is loaded
    with pytest.raises(InventoryUnreadableError) as raised:
        load_inventory(s3, BUCKET, KEY)
    # THEN the error names S3's code and quotes the page as every AWS error is quoted: cut, its
    # line breaks escaped, so each result, log line and alert that repeats it gets one line
    assert refusal.refused == 1
    assert "AccessDenied" in raised.value.cause
    assert "<html>\\n<title>" in raised.value.cause
    for text in (raised.value.cause, str(raised.value)):
        assert "\n" not in text and len(text) < 600, text


InventoryReader = FleetFunction[FunctionEnvironment, FunctionServices[FunctionEnvironment]]


def _inventory_reader() -> InventoryReader:
    """A function on the skeleton whose run reads the fleet inventory, as every scheduled run
    of the fleet does first."""
    function: InventoryReader = FleetFunction("inventory_reader", FunctionEnvironment)

    def handle(request: object, services: Any, invocation: Invocation) -> dict[str, Any]:
        return {"status": "ok", "stack": services.inventory().stack}

    function.handler(lambda event: event)(handle)
    return function


def test_an_inventory_s3_fails_to_serve_fails_the_invocation_after_botocores_retries(
    inventory_in_s3: dict[str, Any], no_retry_waits: None
) -> None:
    # GIVEN a function reading the inventory, and S3 answering every attempt of its GetObject
    # with InternalError (500), which botocore retries
    function = _inventory_reader()
    failing_s3 = s3_error_every_attempt(function.services().hub_client("s3"), "GetObject")
    # WHEN the scheduled run is invoked
    # THEN the invocation fails naming the inventory and S3's error, after botocore's retries:
    # an error result would end the run as a success, with no retry and no Errors alarm
    with pytest.raises(InventoryUnreadableError, match=r"s3://lambda-fleet-data/.*InternalError"):
        function.lambda_handler({"action": "run"}, FakeLambdaContext())
    assert failing_s3.attempts > 1
    # WHEN S3 answers again and Lambda retries the invocation THEN the run reads the inventory
    failing_s3.healed = True
    assert function.lambda_handler({"action": "run"}, FakeLambdaContext())["stack"] == "handlers"


def test_a_run_before_the_first_inventory_is_written_fails_and_its_retry_reads_it(
    inventory_in_s3: dict[str, Any],
) -> None:
    # GIVEN the first `pulumi up`: the functions exist, the inventory object, written after
    # every function, not yet
    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    function = _inventory_reader()
    # WHEN a run is invoked in between
    # THEN the invocation fails naming the inventory and S3's NoSuchKey, never reading an empty
    # or partial fleet
    with pytest.raises(InventoryUnreadableError, match=rf"s3://{BUCKET}/{KEY} .*NoSuchKey"):
        function.lambda_handler({"action": "run"}, FakeLambdaContext())
    # WHEN the program has written it and Lambda retries the run THEN the run reads it
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(inventory_in_s3))
    assert function.lambda_handler({"action": "run"}, FakeLambdaContext())["stack"] == "handlers"


def test_an_invalid_inventory_fails_the_invocation_naming_the_field(
    inventory_in_s3: dict[str, Any],
) -> None:
    # GIVEN an inventory whose member has no account id: the deployment is wrong, as with a bad
    # variable, and a scheduled run answered with an error result would end unnoticed
    s3 = boto3.client("s3", region_name=REGION)
    del inventory_in_s3["members"][0]["account_id"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(inventory_in_s3))
    # WHEN a function reading it is invoked
    # THEN the invocation fails (the Errors alarm counts it), naming the inventory and the field
    with pytest.raises(InventoryError) as raised:
        _inventory_reader().lambda_handler({"action": "run"}, FakeLambdaContext())
    assert f"s3://{BUCKET}/{KEY}" in str(raised.value)
    assert "members[0].account_id" in str(raised.value)


def _models_within(annotation: object) -> Iterator[type[BaseModel]]:
    """The models a field's type names, within unions, tuples and dicts."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from _models_within(argument)


def _inventory_models() -> list[type[BaseModel]]:
    """FleetInventory and every model its fields reach."""
    models: list[type[BaseModel]] = [FleetInventory]
    for model in models:
        for field in model.model_fields.values():
            for nested in _models_within(field.annotation):
                if nested not in models:
                    models.append(nested)
    return models


def test_no_inventory_field_is_required_unless_released_so_and_none_is_removed() -> None:
    # GIVEN every model the inventory is made of
    models = _inventory_models()
    # WHEN its fields are compared with those released
    # THEN every model is recorded: a new one enters with its own fields
    assert {model.__name__ for model in models} == set(RELEASED_FIELDS)
    for model in models:
        required, optional = RELEASED_FIELDS[model.__name__]
        fields = model.model_fields
        # AND no released field is gone: the inventory the release before wrote may have it
        assert required | optional <= set(fields), model.__name__
        # AND a field required now was required when released: one added without a default had
        # the new functions refuse the inventory the release before wrote, which they read in
        # every `pulumi up` until the program writes the new one
        now_required = {name for name, field in fields.items() if field.is_required()}
        assert now_required <= required, (model.__name__, now_required - required)


def test_an_inventory_the_first_release_wrote_is_read_with_defaults_for_every_later_field(
    inventory_document: dict[str, Any],
) -> None:
    # GIVEN the inventory as the first release (0.1.0) wrote it, without the fields added since
    for added in ("functions", "minimum_memory_mb"):
        del inventory_document[added]
    cluster = inventory_document["members"][0]["clusters"][0]
    for added in ("existing", "autoscaler", "calendar", "scaling"):
        del cluster[added]
    del cluster["schedule"]["exclude_node_groups"]
    # WHEN the functions of this release read it
    inventory = parse_inventory(json.dumps(inventory_document), "0.1.0 inventory")
    # THEN every later field takes its default
    assert (inventory.functions, inventory.minimum_memory_mb) == ({}, {})
    (_, read), *_ = inventory.clusters()
    assert (read.existing, read.autoscaler, read.calendar, read.scaling) == (
        False,
        "none",
        None,
        ClusterScaling(),
    )
    assert read.schedule is not None
    assert read.schedule.exclude_node_groups == ()


def test_helpers_find_accounts_clusters_and_node_groups(inventory_document: dict[str, Any]) -> None:
    # GIVEN a member with two regions and a second cluster
    member = inventory_document["members"][0]
    member["regions"].append("eu-west-1")
    member["clusters"].append(
        {**member["clusters"][0], "name": "eu-apps", "region": "eu-west-1", "schedule": None}
    )
    inventory = FleetInventory.model_validate(inventory_document)
    # WHEN the helpers are used THEN they find what exists and None for what does not
    assert list(inventory.account_regions()) == [(MEMBER, REGION), (MEMBER, "eu-west-1")]
    assert [cluster.name for _, cluster in inventory.clusters()] == ["dev-apps", "eu-apps"]
    node_group = inventory.find_node_group(MEMBER, REGION, "dev-apps", "system")
    assert node_group is not None
    assert node_group.floor == 1
    assert inventory.find_cluster(MEMBER, REGION, "eu-apps") is None
    assert inventory.find_node_group(MEMBER, REGION, "dev-apps", "gpu") is None
    assert inventory.member("999999999999") is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["members"][0]["clusters"][0]["node_groups"][0].update(desired_size=9), "max"),
        (
            lambda d: d["members"][0]["clusters"][0]["schedule"].update(time_zone="Mars/Base"),
            "zone",
        ),
        (lambda d: d["members"][0]["clusters"][0].update(region="eu-west-1"), "not among"),
        (
            lambda d: d["members"][0]["clusters"][0]["schedule"].update(off_hours_desired={"x": 1}),
            "unknown node groups",
        ),
        (lambda d: d["members"][0].update(account_id="2222"), "12-digit"),
        (lambda d: d.update(owner="team"), "Extra inputs"),
        (lambda d: d.update({"owner\nhub: ok": "team"}), "owner\\nhub: ok: Extra inputs"),
    ],
)
def test_inconsistent_inventory_is_rejected_naming_the_field(
    inventory_document: dict[str, Any], change: Any, problem: str
) -> None:
    # GIVEN an inventory with one inconsistency WHEN parsed THEN InventoryError says what
    change(inventory_document)
    with pytest.raises(InventoryError) as raised:
        parse_inventory(json.dumps(inventory_document), "test")
    assert problem in raised.value.problem


@pytest.mark.parametrize("zone", ["US", "Asia/" + "Kolkata" * 60])
@pytest.mark.parametrize("part", ["schedule", "calendar"])
def test_a_time_zone_the_zone_database_cannot_open_is_an_inventory_error_naming_the_field(
    inventory_document: dict[str, Any], part: str, zone: str
) -> None:
    # GIVEN a cluster whose schedule or calendar names a folder of the zone database (US, for
    # US/Eastern) or a name longer than any file name as its time zone
    cluster = inventory_document["members"][0]["clusters"][0]
    cluster.setdefault(part, {})["time_zone"] = zone
    # WHEN the inventory is parsed
    # THEN InventoryError names the field and says the zone is unknown, where the zone
    # database's OSError escaped as a bug
    with pytest.raises(InventoryError) as raised:
        parse_inventory(json.dumps(inventory_document), "test")
    assert f"{part}.time_zone" in raised.value.problem
    assert "unknown time zone" in raised.value.problem


def test_inventory_is_frozen(inventory_document: dict[str, Any]) -> None:
    # GIVEN a parsed inventory WHEN a field is assigned THEN pydantic refuses
    inventory = FleetInventory.model_validate(inventory_document)
    with pytest.raises(ValidationError):
        inventory.dry_run = False  # type: ignore[misc]


def test_document_that_is_not_json_is_an_inventory_error() -> None:
    # GIVEN a truncated document WHEN parsed THEN the error says it is not JSON
    with pytest.raises(InventoryError, match="not valid JSON"):
        parse_inventory(b'{"stack": ', "test")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b'{"stack": ' + b"9" * 5000 + b"}", "holds a number of more than 4,300 digits"),
        (b"[" * 50_000, "is JSON nested too deeply"),
    ],
    ids=["a-5000-digit-number", "deep"],
)
def test_json_python_cannot_read_is_an_inventory_error(document: bytes, problem: str) -> None:
    # GIVEN an inventory document json parses but Python refuses to read
    # WHEN parsed THEN the error names the document and why, not a ValueError or RecursionError
    with pytest.raises(InventoryError, match=problem):
        parse_inventory(document, "test")
