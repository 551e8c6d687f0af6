"""The spot optimizer against moto: analyses with the price-table fallback and moto's sparse spot
history, interruptions in a member account, the on-demand fallback under the shared node group
lock, the fleet analysis with a denied account, the mix recommendation and bad events."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ProxyConnectionError

from fleet_shared.exceptions import (
    ConfigurationError,
    InventoryError,
    InventoryUnreadableError,
)
from fleet_shared.handler import Invocation
from fleet_shared.node_group_holds import HOLD_NAME, Hold
from fleet_shared.node_group_locks import (
    NODE_GROUP_LOCK_LEASE_SECONDS,
    node_group_key,
    node_group_lock_name,
)
from fleet_shared.timestamps import iso_z
from fleet_shared.validation_errors import ECHO_LIMIT
from handlers.spot_optimizer import app
from handlers.spot_optimizer.keys import (
    LATEST_ANALYSIS,
    analysis_key,
    fallback_claim_key,
    zone_interruptions_key,
)
from handlers.spot_optimizer.mix import CAPACITY_BLOCK_LEFT_OUT
from handlers.spot_optimizer.services import SpotServices
from tests.handlers.faults import (
    ESCAPES_PAGE,
    ESCAPES_PAGE_QUOTED,
    MULTI_LINE_PAGE,
    MalformedAnswer,
    answer_malformed,
    fail_after_applying_then_refuse,
    fail_every_attempt,
    lose_first_answer,
    refuse_every_attempt,
    refuse_every_ec2_attempt,
    refuse_retry_after_lost_answer,
    refuse_unseen_by_moto,
    s3_error_every_attempt,
    throttle_then_refuse,
)
from tests.handlers.member_accounts import DENIED_MEMBER, MEMBER_A, REGION
from tests.handlers.spot_optimizer.conftest import (
    CLUSTER,
    SPOT_TYPES,
    at_the_fallback_threshold,
    change_the_inventory,
    change_the_inventory_document,
    create_node_group,
    desired_size,
    interrupt_batch_spot,
    interruption_event,
    launch_spot_instance,
    next_batch_spot_warning,
)

MakeServices = Callable[..., SpotServices]
Invoke = Callable[..., dict[str, Any]]


def analyze_event(*types: str) -> dict[str, Any]:
    return {
        "action": "analyze_opportunities",
        "account_id": MEMBER_A,
        "region": REGION,
        "instance_types": list(types),
    }


def mix_of_dev_apps_request() -> dict[str, Any]:
    """The request for the node group mix of dev-apps in member A."""
    return {
        "action": "recommend_node_group_mix",
        "account_id": MEMBER_A,
        "region": REGION,
        "cluster": CLUSTER,
    }


def record_zone_interruptions(
    services: SpotServices, instance_type: str, zone: str, n: int
) -> None:
    for _ in range(n):
        services.clock.advance(1)  # type: ignore[attr-defined]
        services.state.record_change(
            zone_interruptions_key(MEMBER_A, REGION, instance_type, zone),
            {"instance_type": instance_type},
            86400 * 8,
        )


def test_analysis_uses_the_price_table_and_reports_sparse_history_honestly(
    invoke: Invoke,
    make_services: MakeServices,
) -> None:
    # GIVEN moto (one old spot price per AZ), the Pricing API refusing GetProducts with a page
    # of many long lines (a proxy's), and two interruptions of m6g in 1a
    services = make_services()
    pricing = services.pricing_client()
    refuse_unseen_by_moto(
        pricing, "pricing", "GetProducts", "AccessDeniedException", MULTI_LINE_PAGE
    )
    record_zone_interruptions(services, "m6g.large", f"{REGION}a", 2)
    # WHEN two known types and one without spot offerings are analysed
    result = invoke(analyze_event("m6g.large", "m7g.large", "x9z.large"), services, "inv-1")
    # THEN on-demand prices come from the bundled table, which is named as the source
    by_type = {item["instance_type"]: item for item in result["results"]}
    m7g = by_type["m7g.large"]
    assert m7g["on_demand_price"] == 0.0858
    assert m7g["on_demand_source"].startswith("price table")
    assert m7g["pricing_note"].startswith(
        "pricing api failed: AccessDeniedException: <html>\\n<title>Console"
    )
    assert "\n" not in m7g["pricing_note"]
    assert len(m7g["pricing_note"]) < 2 * ECHO_LIMIT
    # AND a single history point per AZ is insufficient: neutral parts, low confidence
    assert {zone["availability_zone"] for zone in m7g["zones"]} == {
        f"{REGION}a",
        f"{REGION}b",
        f"{REGION}c",
    }
    assert all(zone["volatility"] == "insufficient history" for zone in m7g["zones"])
    assert m7g["confidence"] == "low"
    assert m7g["score"] == pytest.approx(67.5, abs=0.01)
    assert m7g["recommended"] is True
    # AND the recorded interruptions lower m6g's score in that AZ, so results rank m7g first
    m6g_zones = {zone["availability_zone"]: zone for zone in by_type["m6g.large"]["zones"]}
    assert m6g_zones[f"{REGION}a"]["interruptions_7d"] == 2
    assert m6g_zones[f"{REGION}a"]["score"] < m6g_zones[f"{REGION}b"]["score"]
    assert [item["instance_type"] for item in result["results"]] == [
        "m7g.large",
        "m6g.large",
        "x9z.large",
    ]
    # AND a type that cannot be analysed is reported, not fatal
    assert by_type["x9z.large"]["status"] == "error"


@pytest.mark.parametrize(
    "price_list_entry",
    [
        "{not json",
        # Nested deeper than Python's JSON reader recurses (it raises RecursionError).
        "[" * 100_000,
        json.dumps(
            {
                "terms": {
                    "OnDemand": {"t": {"priceDimensions": {"d": {"pricePerUnit": {"USD": "n/a"}}}}}
                }
            }
        ),
        json.dumps(["a list, not a product"]),
        json.dumps(
            {
                "terms": {
                    "OnDemand": {"t": {"priceDimensions": {"d": {"pricePerUnit": {"USD": "inf"}}}}}
                }
            }
        ),
        # The Pricing API writes every price as decimal text: a JSON true read as 1.0, a number
        # as a price it never wrote, a null or a negative price as no price at all; and no
        # instance type costs 250000 USD an hour (every spot price would save 100 %).
        *(
            json.dumps(
                {"terms": {"OnDemand": {"t": {"priceDimensions": {"d": {"pricePerUnit": usd}}}}}}
            )
            for usd in (
                {"USD": True},
                {"USD": 0.0999},
                {"USD": None},
                {"USD": "-0.0999"},
                {"USD": "250000.00"},
            )
        ),
    ],
)
def test_an_unreadable_pricing_answer_falls_back_to_the_price_table(
    invoke: Invoke, make_services: MakeServices, price_list_entry: str
) -> None:
    # GIVEN the Pricing API answering a price list entry the optimizer cannot read
    services = make_services()
    pricing = services.pricing_client()
    body = json.dumps({"FormatVersion": "aws_v1", "PriceList": [price_list_entry]}).encode()
    answered = answer_malformed(pricing, "pricing", "GetProducts", body)
    # WHEN two types are analysed
    result = invoke(analyze_event("m7g.large", "m6g.large"), services, "inv-1")
    # THEN each is priced from the bundled table, which says why the API was not used
    assert answered.answered == 2
    by_type = {item["instance_type"]: item for item in result["results"]}
    assert by_type["m7g.large"]["on_demand_price"] == 0.0858
    for item in by_type.values():
        assert item["status"] == "ok"
        assert item["on_demand_source"].startswith("price table")
        assert "pricing api answered an unreadable price list" in item["pricing_note"]


@dataclass
class _PagedPriceList:
    """Answers GetProducts in two pages: the first without a product (and a NextToken), the
    second, asked with that token, with the type's on-demand price."""

    price: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        asked = json.loads(request.body)
        self.requests.append(asked)
        if asked.get("NextToken") == "page-2":
            terms = {
                "OnDemand": {"t": {"priceDimensions": {"d": {"pricePerUnit": {"USD": self.price}}}}}
            }
            document: dict[str, Any] = {"PriceList": [json.dumps({"terms": terms})]}
        else:
            document = {"PriceList": [], "NextToken": "page-2"}
        body = json.dumps({"FormatVersion": "aws_v1", **document}).encode()
        return AWSResponse(
            request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, _JsonBody(body)
        )


@dataclass
class _JsonBody:
    body: bytes

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_an_on_demand_price_on_a_later_pricing_page_is_read_from_the_api(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN the Pricing API answering its first GetProducts page without a product, the price
    # on the next page
    services = make_services()
    pricing = services.pricing_client()
    paged = _PagedPriceList(price="0.0999")
    pricing.meta.events.register_first("before-send.pricing.GetProducts", paged)
    # WHEN one type is analysed
    result = invoke(analyze_event("m7g.large"), services, "inv-1")
    # THEN its price comes from the API's second page, not from the bundled table
    (item,) = result["results"]
    assert item["on_demand_price"] == 0.0999
    assert item["on_demand_source"] == "pricing api"
    assert "pricing_note" not in item
    assert [request.get("NextToken") for request in paged.requests] == [None, "page-2"]


def test_interruption_is_recorded_alerted_and_its_node_group_found(
    invoke: Invoke, make_services: MakeServices, alert_inbox: Any
) -> None:
    # GIVEN a spot instance of batch-spot in the member account
    services = make_services()
    instance_id = launch_spot_instance("c7g.large", f"{REGION}b")
    # WHEN its interruption warning arrives (twice, as EventBridge may deliver it)
    result = invoke(interruption_event(instance_id), services, "inv-1")
    repeat = invoke(interruption_event(instance_id), services, "inv-2")
    # THEN the node group is found from the tags and the interruption recorded once
    assert result["status"] == "recorded"
    assert (result["cluster"], result["nodegroup"]) == (CLUSTER, "batch-spot")
    assert (result["instance_type"], result["availability_zone"]) == ("c7g.large", f"{REGION}b")
    assert repeat["status"] == "duplicate"
    since = services.clock.now().replace(year=2020)
    history = services.state.query_history(
        zone_interruptions_key(MEMBER_A, REGION, "c7g.large", f"{REGION}b"), since
    )
    assert [change.record["instance_id"] for change in history] == [instance_id]
    # AND a warning alert names the node group
    alerts = alert_inbox.receive()
    assert [a.alert["severity"] for a in alerts] == ["warning"]
    assert alerts[0].alert["resource"] == f"{MEMBER_A}/{REGION}/{CLUSTER}/batch-spot"
    # AND the scaler's node group state is untouched (no cooldown started)
    key = node_group_key(MEMBER_A, REGION, CLUSTER, "batch-spot")
    assert services.state.latest_change(key) is None
    assert "fallback" not in result


MARKUP_TAG = "batch-spot<img src=x onerror=alert(1)>" + "x" * 200
"""A node group tag anyone who may tag instances can set: no EKS name, longer than any result
may repeat."""


def test_a_node_group_tag_that_is_no_eks_name_records_the_type_and_az_only(
    invoke: Invoke, make_services: MakeServices, alert_inbox: Any, member_eks: Any
) -> None:
    # GIVEN an interrupted instance whose eks:nodegroup-name tag is markup, and a threshold of 0
    # interruptions an hour with auto-apply on
    services = make_services(SPOT_AUTO_APPLY="true", SPOT_INTERRUPTION_THRESHOLD="0")
    instance_id = launch_spot_instance(node_group=MARKUP_TAG)
    # WHEN its interruption warning arrives
    result = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the interruption is recorded under its type/AZ only, the reason names the tag with
    # the start of its value, and no node group, key, fallback or alert carries the whole value
    assert result["status"] == "recorded"
    assert (result["cluster"], result["nodegroup"]) == (None, None)
    assert result["reason"].startswith("tag eks:nodegroup-name must be an EKS name")
    assert "fallback" not in result
    assert desired_size(member_eks, "system") == 2
    assert MARKUP_TAG[:41] not in json.dumps(result)
    history = services.state.query_history(
        zone_interruptions_key(MEMBER_A, REGION, "m7g.large", f"{REGION}a"),
        services.clock.now().replace(year=2020),
    )
    assert [change.record["instance_id"] for change in history] == [instance_id]
    [alert] = alert_inbox.receive()
    assert MARKUP_TAG[:41] not in json.dumps(alert.alert)


def interrupt_four(invoke: Invoke, services: SpotServices) -> dict[str, Any]:
    """Four interruptions of batch-spot within the hour (threshold 3); the last result."""
    result: dict[str, Any] = {}
    for _ in range(4):
        result = invoke(next_batch_spot_warning(services), services, "inv")
    return result


def auto_applying_services_and_their_member_eks(
    make_services: MakeServices,
) -> tuple[SpotServices, Any]:
    """Services with auto-apply on, and the member EKS client they send the fallback's
    UpdateNodegroupConfig through, where a test injects its fault."""
    services = make_services(SPOT_AUTO_APPLY="true")
    return services, services.member_client("eks", MEMBER_A, REGION)


def assert_the_plus_one_made_and_announced_once(
    result: dict[str, Any], member_eks: Any, alert_inbox: Any
) -> None:
    """The fallback reports its +1 of system as made, system is at 3 (from 2), and the notice of
    the +1 reached the alert topics once."""
    assert result["fallback"]["status"] == "scaling_initiated", result["fallback"]
    assert desired_size(member_eks, "system") == 3
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    assert titles.count(f"{CLUSTER}/system scaled (spot fallback): desired 2 -> 3") == 1


def assert_a_fifth_warning_adds_no_second_node(
    invoke: Invoke, services: SpotServices, member_eks: Any
) -> None:
    """A fifth interruption within the hour finds the hour's +1 applied, system staying at 3."""
    again = invoke(next_batch_spot_warning(services), services, "inv")
    assert again["fallback"]["status"] == "already_applied"
    assert desired_size(member_eks, "system") == 3


def test_threshold_exceeded_proposes_an_on_demand_increase(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply off WHEN batch-spot is interrupted four times in an hour
    result = interrupt_four(invoke, make_services())
    # THEN a +1 of the on-demand system group is proposed and nothing changes
    fallback = result["fallback"]
    assert fallback["status"] == "proposed"
    assert fallback["nodegroup"] == "system"
    assert fallback["new"]["desired_size"] == 3
    assert desired_size(member_eks, "system") == 2


def test_a_warning_handled_more_than_an_hour_late_records_but_adds_no_node(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply off and four interruptions of batch-spot in the last hour, over the
    # threshold of three (the fourth proposed the on-demand +1)
    services = make_services()
    interrupt_four(invoke, services)
    # WHEN a fifth warning is handled two hours after EC2 sent it (a redrive from the
    # dead-letter queue, or Lambda's retries of an invocation that kept failing)
    late = next_batch_spot_warning(services)
    late["time"] = iso_z(services.clock.now() - timedelta(hours=2))
    result = invoke(late, services, "inv")
    # THEN it is recorded, but no on-demand node is proposed for a burst that may be long over,
    # and the result says why
    assert result["status"] == "recorded"
    assert result["interruptions_last_hour"] == 4
    assert "fallback" not in result
    assert "more than an hour before it was handled" in result["reason"]
    assert desired_size(member_eks, "system") == 2


def test_a_warning_handled_late_does_not_count_toward_a_timely_warnings_hour(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, two interruptions of batch-spot in the last hour (one under the
    # threshold of three), and a third handled now that EC2 sent two hours ago
    services = make_services(SPOT_AUTO_APPLY="true")
    interrupt_batch_spot(invoke, services, times=2)
    late = next_batch_spot_warning(services)
    late["time"] = iso_z(services.clock.now() - timedelta(hours=2))
    invoke(late, services, "inv")
    # WHEN a timely warning follows: the fourth recorded in the hour, the third warned of in it
    result = invoke(next_batch_spot_warning(services), services, "inv")
    # THEN it counts the warnings sent in the hour only, at the threshold: no node is added for
    # the late warning's burst, two hours ago
    assert result["interruptions_last_hour"] == 3
    assert "fallback" not in result
    assert desired_size(member_eks, "system") == 2


def test_auto_apply_raises_the_member_on_demand_group_not_the_hubs(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, hub_eks: Any
) -> None:
    # GIVEN auto-apply on and the same cluster in the hub
    services = make_services(SPOT_AUTO_APPLY="true")
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the member's system group went from 2 to 3, the hub's did not
    assert result["fallback"]["status"] == "scaling_initiated"
    assert desired_size(member_eks, "system") == 3
    assert desired_size(hub_eks, "system") == 2
    # AND the change is recorded under the node group's key, as the scaler records its own
    change = services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system"))
    assert change is not None
    assert change.record["source"] == "spot_optimizer"
    assert change.record["new"]["desired_size"] == 3
    # AND a fifth interruption within the hour does not add another node
    assert_a_fifth_warning_adds_no_second_node(invoke, services, member_eks)


def test_a_fallback_eks_refused_is_applied_by_the_next_warning_of_the_hour(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, and EKS failing every attempt of UpdateNodegroupConfig
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    fault = fail_every_attempt(eks, "eks", "UpdateNodegroupConfig")
    # WHEN the threshold is exceeded
    failed = interrupt_four(invoke, services)
    # THEN the fallback failed after botocore's retries and the system group is unchanged
    assert failed["fallback"]["status"] == "error"
    assert fault.attempts > 1
    assert desired_size(member_eks, "system") == 2
    alert_inbox.receive()
    # WHEN EKS is back and a fifth interruption comes within the hour
    fault.healed = True
    again = invoke(next_batch_spot_warning(services), services, "inv")
    # THEN the +1 is applied now (the failed attempt did not use up the hour's one +1) and
    # announced once
    assert_the_plus_one_made_and_announced_once(again, member_eks, alert_inbox)


@pytest.mark.usefixtures("no_retry_waits")
def test_a_warning_whose_inventory_s3_fails_to_serve_is_recorded_and_its_fallback_is_an_error(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the hour, and then S3 answering
    # every attempt to read the fleet inventory with InternalError (500)
    services = at_the_fallback_threshold(make_services, invoke)
    failing_s3 = s3_error_every_attempt(services.sessions.hub_client("s3"), "GetObject")
    # WHEN a fourth warning exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv")
    # THEN the interruption is recorded and the invocation answers (an unreadable inventory is
    # reported here, as docs/functions/README.md says), its fallback an error naming S3's answer
    assert result["status"] == "recorded"
    assert failing_s3.attempts > 1
    assert result["fallback"]["status"] == "error"
    assert "InternalError" in result["fallback"]["error"]
    # AND nothing was changed: the floors and ceilings of the stack file are unknown
    assert desired_size(member_eks, "system") == 2


@pytest.mark.usefixtures("no_retry_waits")
def test_a_fallback_whose_retry_eks_refused_as_in_use_counts_as_the_hours_one_plus_one(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, and EKS applying the first UpdateNodegroupConfig but its answer lost,
    # then refusing botocore's retry with ResourceInUseException (the node group is updating)
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    fault = refuse_retry_after_lost_answer(
        eks, "eks", "UpdateNodegroupConfig", "ResourceInUseException"
    )
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the +1 the first attempt made is reported, recorded and announced as applied
    assert (fault.lost, fault.refused) == (1, 1)
    change = services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system"))
    assert change is not None
    assert change.record["new"]["desired_size"] == 3
    assert_the_plus_one_made_and_announced_once(result, member_eks, alert_inbox)
    # AND a fifth interruption within the hour does not add another node
    eks.meta.events.unregister("before-send.eks.UpdateNodegroupConfig", fault)
    assert_a_fifth_warning_adds_no_second_node(invoke, services, member_eks)


@pytest.mark.usefixtures("no_retry_waits")
def test_a_fallback_whose_answer_was_lost_and_whose_retry_could_not_connect_is_made_once(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, and EKS applying the first UpdateNodegroupConfig but its answer lost,
    # then botocore's retries failing to connect (botocore raises the last attempt's error)
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    fault = lose_first_answer(eks, "eks", "UpdateNodegroupConfig", then_unreachable=True)
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the +1 the first attempt made is reported, recorded and announced as applied
    assert fault.lost == 1
    assert_the_plus_one_made_and_announced_once(result, member_eks, alert_inbox)
    assert result["fallback"]["update_id"] is None
    # AND a fifth interruption within the hour, EKS answering again, adds no second node
    fault.unreachable_after = False
    assert_a_fifth_warning_adds_no_second_node(invoke, services, member_eks)


def test_a_fallback_whose_answer_cannot_be_read_counts_as_the_hours_one_plus_one(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, and EKS applying the UpdateNodegroupConfig but answering with a body
    # that cannot be read
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    malformed = answer_malformed(eks, "eks", "UpdateNodegroupConfig", b"<html>gateway</html>")
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the +1 EKS made is reported, recorded and announced as applied
    assert malformed.answered == 1
    assert_the_plus_one_made_and_announced_once(result, member_eks, alert_inbox)
    # AND a fifth interruption within the hour adds no second node
    assert_a_fifth_warning_adds_no_second_node(invoke, services, member_eks)


@pytest.mark.usefixtures("no_retry_waits")
def test_a_fallback_eks_applied_then_answered_with_a_server_error_is_made_once_in_the_hour(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, and EKS applying the first UpdateNodegroupConfig but answering it with
    # a server error (HTTP 500, which botocore retries), then refusing the retry with
    # ResourceInUseException (the node group is updating)
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    fault = fail_after_applying_then_refuse(
        eks, "eks", "UpdateNodegroupConfig", "ServerException", "ResourceInUseException"
    )
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the +1 EKS made is reported and announced as applied
    assert (fault.applied, fault.refused) == (1, 1)
    assert_the_plus_one_made_and_announced_once(result, member_eks, alert_inbox)
    # AND a fifth interruption within the hour, EKS answering again, adds no second node
    eks.meta.events.unregister("before-send.eks.UpdateNodegroupConfig", fault)
    assert_a_fifth_warning_adds_no_second_node(invoke, services, member_eks)


@pytest.mark.usefixtures("no_retry_waits")
def test_a_fallback_throttled_then_refused_leaves_the_hours_plus_one_to_the_next_warning(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, and EKS throttling the first UpdateNodegroupConfig and refusing
    # botocore's retry with ResourceInUseException: no attempt was applied
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    fault = throttle_then_refuse(eks, "eks", "UpdateNodegroupConfig", "ResourceInUseException")
    # WHEN the threshold is exceeded
    failed = interrupt_four(invoke, services)
    # THEN the fallback failed and the system group is unchanged
    assert fault.answered == 2
    assert failed["fallback"]["status"] == "error"
    assert "ResourceInUseException" in failed["fallback"]["error"]
    assert desired_size(member_eks, "system") == 2
    # WHEN EKS takes updates again and a fifth interruption comes within the hour
    fault.healed = True
    again = invoke(next_batch_spot_warning(services), services, "inv")
    # THEN the +1 is made now: the refused attempts did not use up the hour's one +1
    assert again["fallback"]["status"] == "scaling_initiated", again["fallback"]
    assert desired_size(member_eks, "system") == 3


def _proxy_refuses(request: Any, **_: Any) -> None:
    raise ProxyConnectionError(proxy_url="http://egress-proxy.invalid:3128")


@pytest.mark.usefixtures("no_retry_waits")
def test_a_fallback_the_proxy_never_passed_to_eks_leaves_the_hours_plus_one_to_the_next_warning(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, and the function's egress proxy refusing every attempt of
    # UpdateNodegroupConfig: no attempt reached EKS
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    eks.meta.events.register_first("before-send.eks.UpdateNodegroupConfig", _proxy_refuses)
    # WHEN the threshold is exceeded
    failed = interrupt_four(invoke, services)
    # THEN the fallback failed and the system group is unchanged
    assert failed["fallback"]["status"] == "error"
    assert desired_size(member_eks, "system") == 2
    # WHEN the proxy passes requests again and a fifth interruption comes within the hour
    eks.meta.events.unregister("before-send.eks.UpdateNodegroupConfig", _proxy_refuses)
    again = invoke(next_batch_spot_warning(services), services, "inv")
    # THEN the +1 is made now: the attempts that never reached EKS did not use up the hour's +1
    assert again["fallback"]["status"] == "scaling_initiated", again["fallback"]
    assert desired_size(member_eks, "system") == 3


def test_a_held_node_group_lock_blocks_the_fallback(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN the scaler holds the system group's lock
    services = make_services(SPOT_AUTO_APPLY="true")
    lock = node_group_lock_name(MEMBER_A, REGION, CLUSTER, "system")
    assert services.state.acquire_lock(lock, "eks_scaler:other", 600)
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the fallback reports the lock and the node group is unchanged
    assert result["fallback"]["status"] == "locked"
    assert desired_size(member_eks, "system") == 2


@pytest.mark.parametrize("auto_apply", ["true", "false"], ids=["applying", "proposing"])
def test_a_hold_on_the_on_demand_group_blocks_the_fallback(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, auto_apply: str
) -> None:
    # GIVEN auto-apply on (or off: the +1 only proposed), and the system group on hold until
    # tomorrow
    services = make_services(SPOT_AUTO_APPLY=auto_apply)
    now = services.clock.now()
    hold = Hold("nodegroup", "release freeze", iso_z(now + timedelta(days=1)), "oncall", iso_z(now))
    system = node_group_key(MEMBER_A, REGION, CLUSTER, "system")
    services.state.put_value(system, HOLD_NAME, hold.as_record())
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the fallback is held, naming the hold, neither made nor proposed, and the node group
    # is unchanged
    assert result["fallback"]["status"] == "held"
    assert "release freeze" in result["fallback"]["reason"]
    assert desired_size(member_eks, "system") == 2


def test_the_fallbacks_node_group_lock_ends_no_later_than_its_invocation(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, three warnings of the hour handled, and a fourth whose invocation has
    # 50 s left: less than the node group lock's 120 s lease and the minute after which Lambda
    # retries an invocation it killed
    services, eks = auto_applying_services_and_their_member_eks(make_services)
    for _ in range(3):
        invoke(next_batch_spot_warning(services), services, "inv")
    lock = node_group_lock_name(MEMBER_A, REGION, CLUSTER, "system")
    free_after_the_invocation: list[bool] = []

    def another_owner_after_the_deadline(**_: Any) -> None:
        held_at = services.clock.now()
        services.clock.set(held_at + timedelta(seconds=51))
        free_after_the_invocation.append(services.state.acquire_lock(lock, "eks_scaler:x", 60))
        services.state.release_lock(lock, "eks_scaler:x")
        services.clock.set(held_at)

    eks.meta.events.register_first(
        "before-send.eks.UpdateNodegroupConfig", another_owner_after_the_deadline
    )
    # WHEN the fourth warning's fallback makes its +1 while holding the system group's lock
    result = app.FUNCTION.invoke(
        next_batch_spot_warning(services), Invocation("inv-3", lambda: 50_000)
    )
    # THEN the lock was free a second after the invocation's end (the platform's retry of an
    # invocation killed holding it finds it free, not `locked`), and the +1 was made
    assert free_after_the_invocation == [True]
    assert result["fallback"]["status"] == "scaling_initiated", result["fallback"]
    assert desired_size(member_eks, "system") == 3


def test_a_stack_in_dry_run_proposes_the_fallback_and_changes_nothing(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN a stack in dry run (FLEET_DRY_RUN) with auto-apply on, and every operation the
    # function sends to the member's EKS and Auto Scaling recorded
    services = make_services(SPOT_AUTO_APPLY="true", FLEET_DRY_RUN="true")
    sent: list[str] = []
    for service in ("eks", "autoscaling"):
        client = services.member_client(service, MEMBER_A, REGION)
        client.meta.events.register(
            f"before-call.{service}", lambda model, **_: sent.append(model.name)
        )
    # WHEN four interruptions of batch-spot exceed the threshold within the hour
    result = interrupt_four(invoke, services)
    # THEN the +1 of system is proposed only: the member was only read, and system is unchanged
    assert result["fallback"]["status"] == "proposed"
    assert "DescribeNodegroup" in sent
    assert [name for name in sent if not name.startswith(("Describe", "List"))] == []
    assert desired_size(member_eks, "system") == 2
    # AND nothing of a change is in the state table: no change recorded, the node group's lock
    # and the hour's +1 both free
    assert services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system")) is None
    assert services.state.acquire_lock(
        node_group_lock_name(MEMBER_A, REGION, CLUSTER, "system"), "eks_scaler:next", 60
    )
    assert services.state.claim_once(fallback_claim_key(MEMBER_A, REGION, CLUSTER, "system"), 60)


def test_a_fleet_analysis_whose_inventory_s3_fails_to_serve_fails_so_the_platform_retries_it(
    invoke: Invoke, make_services: MakeServices, no_retry_waits: None
) -> None:
    # GIVEN S3 answering every attempt to read the fleet inventory with InternalError (500)
    services = make_services()
    failing_s3 = s3_error_every_attempt(services.sessions.hub_client("s3"), "GetObject")
    # WHEN the hourly schedule payload arrives
    # THEN the invocation fails after botocore's retries: an error result would end the run as a
    # success, with no retry and no Errors alarm
    with pytest.raises(InventoryUnreadableError, match="InternalError"):
        invoke({"action": "analyze_fleet"}, services, "inv-1")
    assert failing_s3.attempts > 1
    # WHEN S3 answers again and Lambda retries the run THEN the fleet is analysed
    failing_s3.healed = True
    retried = invoke({"action": "analyze_fleet"}, services, "inv-1")
    assert retried["summary"]["targets"] == 2


def test_a_fleet_analysis_whose_inventory_is_invalid_fails_naming_the_field(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN a fleet inventory S3 serves, with a cluster whose name is no text
    services = make_services()
    change_the_inventory(lambda cluster: cluster.update(name=123))
    # WHEN the hourly schedule payload arrives
    # THEN the invocation fails naming the field (the deployment is wrong: an error result would
    # end the run as a success, with no Errors alarm), as docs/functions/README.md says
    with pytest.raises(InventoryError, match=r"members\[0\]\.clusters\[0\]\.name"):
        invoke({"action": "analyze_fleet"}, services, "inv-1")


def test_a_dry_run_warning_only_proposes_even_with_auto_apply(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, and a threshold of 0 interruptions an hour
    services = make_services(SPOT_AUTO_APPLY="true", SPOT_INTERRUPTION_THRESHOLD="0")
    # WHEN an interruption warning of batch-spot marked dry run arrives
    warning = {**next_batch_spot_warning(services), "dry_run": True}
    result = invoke(warning, services, "inv-1")
    # THEN the +1 of system is proposed, and nothing changed
    assert result["dry_run"] is True
    assert result["fallback"]["status"] == "proposed"
    assert desired_size(member_eks, "system") == 2
    assert services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system")) is None


def test_a_warning_handled_in_dry_run_does_not_answer_for_its_real_delivery(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour, and a fourth
    # instance's warning handled in dry run (a test with a real instance id, or a stack still in
    # dry run when EventBridge first delivered it), its alert saying so
    services = at_the_fallback_threshold(make_services, invoke)
    warning = next_batch_spot_warning(services)
    alert_inbox.receive()
    tried = invoke({**warning, "dry_run": True}, services, "inv-dry")
    assert tried["fallback"]["status"] == "proposed"
    assert desired_size(member_eks, "system") == 2
    [dry_alert] = [item.alert for item in alert_inbox.receive()]
    assert "Handled in dry run" in dry_alert["detail"]
    # WHEN the same warning arrives without dry run
    result = invoke(warning, services, "inv-real")
    # THEN it is handled, not answered as a duplicate of the dry run: the +1 is made, and the
    # warning and the +1 are announced, the warning under an id of its own (the router would
    # drop it as a copy of the dry run's)
    assert result["status"] == "recorded", result
    assert result["fallback"]["status"] == "scaling_initiated"
    assert desired_size(member_eks, "system") == 3
    assert result["alerts_sent"] == 2
    warned = [item.alert for item in alert_inbox.receive()]
    [real_alert] = [alert for alert in warned if alert["title"] == dry_alert["title"]]
    assert real_alert["id"] != dry_alert["id"]
    assert "dry run" not in real_alert["detail"]
    # AND the interruption the dry run recorded is not counted twice
    assert result["interruptions_last_hour"] == tried["interruptions_last_hour"] == 4


def test_fleet_analysis_alerts_a_refusing_member_once_per_episode_its_warnings_share(
    invoke: Invoke,
    make_services: MakeServices,
    alert_inbox: Any,
    role_grants: list[Callable[[], None]],
) -> None:
    # GIVEN a member whose AssumeRole is refused, with a spot group in the inventory
    services = make_services()
    # WHEN the hourly fleet analysis runs
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN its target names the refused call, and the account's access alert goes out once
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[DENIED_MEMBER]["access_denied"] == ["sts:AssumeRole"]
    assert "access_denied" not in targets[MEMBER_A]
    assert result["access_alerts"] == {"alerted": [DENIED_MEMBER], "resolved": []}
    [alert] = [message.alert for message in alert_inbox.receive()]
    assert alert["title"] == f"Member {DENIED_MEMBER} denies the spot optimizer role"
    # WHEN a warning of the account meets the same refusal, and the next hour's analysis too
    services.clock.advance(60)  # type: ignore[attr-defined]
    invoke(interruption_event("i-0aaaaaaaaaaaaaaa1", DENIED_MEMBER), services, "inv-2")
    services.clock.advance(3600)  # type: ignore[attr-defined]
    invoke({"action": "analyze_fleet"}, services, "inv-3")
    # THEN neither alerts again: one episode, whichever path meets the refusal
    assert alert_inbox.receive() == []
    # WHEN the member grants the role again and the next hour's analysis runs
    for grant in role_grants:
        grant()
    services.clock.advance(3600)  # type: ignore[attr-defined]
    granted = invoke({"action": "analyze_fleet"}, services, "inv-4")
    # THEN the account is analysed and its alert resolved (same id), once
    assert {target["status"] for target in granted["targets"]} == {"ok"}
    assert granted["access_alerts"] == {"alerted": [], "resolved": [DENIED_MEMBER]}
    [resolution] = [message.alert for message in alert_inbox.receive()]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)


def drop_spot_groups_of(account_id: str) -> Callable[[dict[str, Any]], None]:
    """The stack file's edit that leaves member `account_id` without a spot node group."""

    def drop(document: dict[str, Any]) -> None:
        [member] = [m for m in document["members"] if m["account_id"] == account_id]
        for cluster in member["clusters"]:
            cluster["node_groups"] = [
                group for group in cluster["node_groups"] if group["capacity_type"] != "SPOT"
            ]

    return drop


def test_an_episode_of_a_member_left_with_no_spot_group_is_settled_by_an_access_check(
    invoke: Invoke,
    make_services: MakeServices,
    alert_inbox: Any,
    role_grants: list[Callable[[], None]],
) -> None:
    # GIVEN the refusing member's episode opened by an hourly analysis
    services = make_services()
    invoke({"action": "analyze_fleet"}, services, "inv-1")
    [alert] = [message.alert for message in alert_inbox.receive()]
    # WHEN the stack file no longer lists a spot node group of it, and the next hour's analysis
    # runs with the refusal lasting
    change_the_inventory_document(drop_spot_groups_of(DENIED_MEMBER))
    services.clock.advance(3600)  # type: ignore[attr-defined]
    refused = invoke({"action": "analyze_fleet"}, services, "inv-2")
    # THEN its role is tried and refused: the episode stays open, and nothing goes out
    [check] = refused["access_checks"]
    assert (check["account_id"], check["status"]) == (DENIED_MEMBER, "error")
    assert check["access_denied"] == ["sts:AssumeRole"]
    assert refused["access_alerts"] == {"alerted": [], "resolved": []}
    assert alert_inbox.receive() == []
    # WHEN the member grants the role again and the next hour's analysis runs
    for grant in role_grants:
        grant()
    services.clock.advance(3600)  # type: ignore[attr-defined]
    granted = invoke({"action": "analyze_fleet"}, services, "inv-3")
    # THEN the check's DescribeInstances is answered and the alert resolved (same id), once
    assert granted["access_checks"] == [
        {"account_id": DENIED_MEMBER, "region": REGION, "status": "ok"}
    ]
    assert granted["access_alerts"] == {"alerted": [], "resolved": [DENIED_MEMBER]}
    [resolution] = [message.alert for message in alert_inbox.receive()]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    # AND the next hour's analysis checks it no more
    services.clock.advance(3600)  # type: ignore[attr-defined]
    later = invoke({"action": "analyze_fleet"}, services, "inv-4")
    assert "access_checks" not in later
    assert alert_inbox.receive() == []


def test_an_episode_of_refused_spot_prices_of_a_member_left_with_no_spot_group_waits_for_them(
    invoke: Invoke, make_services: MakeServices, alert_inbox: Any
) -> None:
    # GIVEN member A's episode opened by an hourly analysis whose DescribeSpotPriceHistory its
    # EC2 refused with a proxy's page of many lines, and the stack file then listing no spot node
    # group of it
    services = make_services()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    refusal = refuse_every_ec2_attempt(ec2, "DescribeSpotPriceHistory", message=MULTI_LINE_PAGE)
    invoke({"action": "analyze_fleet"}, services, "inv-1")
    [alert] = [m.alert for m in alert_inbox.receive() if m.alert["account_id"] == MEMBER_A]
    change_the_inventory_document(drop_spot_groups_of(MEMBER_A))
    # WHEN the next hour's analysis checks its access, the refusal lasting
    services.clock.advance(3600)  # type: ignore[attr-defined]
    refused = invoke({"action": "analyze_fleet"}, services, "inv-2")
    # THEN the check's DescribeInstances answered does not resolve the episode: it asks the
    # refused call too, refused again
    [check] = [c for c in refused["access_checks"] if c["account_id"] == MEMBER_A]
    assert check["access_denied"] == ["DescribeSpotPriceHistory"]
    assert MEMBER_A not in refused["access_alerts"]["resolved"]
    # AND the check quotes the refusal on one line, cut
    assert "\n" not in check["error"] and len(check["error"]) < len(MULTI_LINE_PAGE)
    # WHEN the member's EC2 answers it again and the next hour's analysis runs
    ec2.meta.events.unregister("before-send.ec2.DescribeSpotPriceHistory", refusal)
    services.clock.advance(3600)  # type: ignore[attr-defined]
    granted = invoke({"action": "analyze_fleet"}, services, "inv-3")
    # THEN the alert is resolved (same id)
    assert MEMBER_A in granted["access_alerts"]["resolved"]
    [resolution] = [m.alert for m in alert_inbox.receive() if m.alert["account_id"] == MEMBER_A]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)


def test_fleet_analysis_alerts_a_member_whose_role_may_not_read_spot_prices(
    invoke: Invoke, make_services: MakeServices, alert_inbox: Any
) -> None:
    # GIVEN member A's EC2 refusing DescribeSpotPriceHistory to the member role, with a proxy's
    # page of many lines for its message
    services = make_services()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    refuse_every_ec2_attempt(ec2, "DescribeSpotPriceHistory", message=MULTI_LINE_PAGE)
    # WHEN the hourly fleet analysis runs
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN member A's target names the refused call and its access alert goes out, beside the
    # refusing member's
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["access_denied"] == ["DescribeSpotPriceHistory"]
    # AND the target quotes the refusal on one line, cut
    error = targets[MEMBER_A]["error"]
    assert "\n" not in error and len(error) < len(MULTI_LINE_PAGE)
    titles = {message.alert["title"] for message in alert_inbox.receive()}
    assert f"Member {MEMBER_A} denies the spot optimizer role" in titles
    assert len(titles) == 2


def test_fleet_analysis_saves_per_node_group_and_isolates_a_denied_account(
    invoke: Invoke,
    make_services: MakeServices,
) -> None:
    # GIVEN member A and a member whose AssumeRole is denied, each with a spot group
    services = make_services()
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN the denied account is reported and member A is analysed, and the run is partial
    assert result["status"] == "partial"
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[DENIED_MEMBER]["status"] == "error"
    assert "AccessDenied" in targets[DENIED_MEMBER]["error"]
    assert targets[MEMBER_A]["status"] == "ok"
    assert result["summary"] == {
        "targets": 2,
        "failed_targets": 1,
        "node_groups": 1,
        "unsaved_node_groups": 0,
    }
    # AND the latest analysis of batch-spot is saved in the state table
    saved = services.state.get_value(
        analysis_key(MEMBER_A, REGION, CLUSTER, "batch-spot"), LATEST_ANALYSIS
    )
    assert saved is not None
    assert [item["instance_type"] for item in saved["instance_types"]] == SPOT_TYPES


def test_a_dry_run_fleet_analysis_reports_and_saves_nothing(
    invoke: Invoke,
    make_services: MakeServices,
) -> None:
    # GIVEN member A with a spot group
    services = make_services()
    # WHEN the fleet is analysed in dry run
    result = invoke({"action": "analyze_fleet", "dry_run": True}, services, "inv-1")
    # THEN the analysis is reported
    assert result["dry_run"] is True
    targets = {target["account_id"]: target for target in result["targets"]}
    assert [group["nodegroup"] for group in targets[MEMBER_A]["node_groups"]] == ["batch-spot"]
    # AND no analysis is saved in the state table
    saved = services.state.get_value(
        analysis_key(MEMBER_A, REGION, CLUSTER, "batch-spot"), LATEST_ANALYSIS
    )
    assert saved is None


def test_fleet_analysis_whose_save_is_refused_reports_that_target_and_still_answers(
    invoke: Invoke,
    make_services: MakeServices,
) -> None:
    # GIVEN member A with a spot group, the denied member, and a state table refusing PutItem
    services = make_services()
    refuse_every_attempt(services.hub_client("dynamodb"), "dynamodb", "PutItem")
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN the run answers per target: member A failed on saving, the denied account on access
    assert result["status"] == "partial"
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "error"
    assert "AccessDeniedException" in targets[MEMBER_A]["error"]
    assert targets[DENIED_MEMBER]["status"] == "error"
    assert result["summary"]["failed_targets"] == 2


def test_fleet_analysis_saves_the_other_node_groups_when_one_save_is_refused(
    invoke: Invoke,
    make_services: MakeServices,
) -> None:
    # GIVEN a second spot group arm-spot in dev-apps, and the state table failing every attempt
    # to save batch-spot's analysis (and only that) with a proxy's page of escapes and lines
    inventory_key = "config/fleet-inventory.json"
    s3 = boto3.client("s3", region_name=REGION)
    document = json.loads(
        s3.get_object(Bucket="lambda-fleet-data", Key=inventory_key)["Body"].read()
    )
    groups = document["members"][0]["clusters"][0]["node_groups"]
    groups.append({**next(g for g in groups if g["name"] == "batch-spot"), "name": "arm-spot"})
    s3.put_object(
        Bucket="lambda-fleet-data", Key=inventory_key, Body=json.dumps(document).encode("utf-8")
    )
    services = make_services()
    refused = fail_every_attempt(
        services.hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        body_with=(f'{CLUSTER}/batch-spot"'.encode(),),
        server_error=ESCAPES_PAGE,
    )
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN arm-spot's analysis is saved and reported although batch-spot's save failed
    assert refused.attempts > 1
    assert services.state.get_value(
        analysis_key(MEMBER_A, REGION, CLUSTER, "arm-spot"), LATEST_ANALYSIS
    )
    targets = {target["account_id"]: target for target in result["targets"]}
    groups_of_a = {group["nodegroup"]: group for group in targets[MEMBER_A]["node_groups"]}
    assert "error" not in groups_of_a["arm-spot"]
    assert groups_of_a["batch-spot"]["error"].startswith("analysis not saved:")
    # AND the error quotes the page escaped on one line, cut
    assert ESCAPES_PAGE_QUOTED in groups_of_a["batch-spot"]["error"]
    assert groups_of_a["batch-spot"]["error"].isprintable()
    assert len(groups_of_a["batch-spot"]["error"]) < 600
    # AND the member is reported as partly done, and the run as partial
    assert targets[MEMBER_A]["status"] == "partial"
    assert result["status"] == "partial"
    assert result["summary"]["unsaved_node_groups"] == 1


def test_mix_recommendation_drops_weak_types_and_adds_siblings(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN a threshold of 65, two recent interruptions of c7g.large in every AZ, and beside
    # the on-demand and spot groups of dev-apps a node group of an EC2 capacity block
    services = make_services(SPOT_RECOMMEND_SCORE="65")
    for zone in ("a", "b", "c"):
        record_zone_interruptions(services, "c7g.large", f"{REGION}{zone}", 2)
    create_node_group(member_eks, MEMBER_A, "gpu-block", "CAPACITY_BLOCK", ["m7g.large"])
    # WHEN the mix of dev-apps is asked for
    result = invoke(mix_of_dev_apps_request(), services, "inv-1")
    # THEN the capacity block's group is left out and named, not mixed as if it were spot
    assert result["left_out_node_groups"] == [
        {"nodegroup": "gpu-block", "reason": CAPACITY_BLOCK_LEFT_OUT}
    ]
    # AND only the spot group is considered; c7g is dropped, m7g and m6g kept
    [group] = result["node_groups"]
    assert group["nodegroup"] == "batch-spot"
    assert [entry["instance_type"] for entry in group["drop"]] == ["c7g.large"]
    assert {entry["instance_type"] for entry in group["keep"]} == {"m7g.large", "m6g.large"}
    # AND additions are same-size siblings not already in the group
    added = {entry["instance_type"] for entry in group["add"]}
    assert added
    assert added <= {"c6g.large", "r6g.large", "r7g.large"}


def test_a_mix_names_the_prices_a_types_score_left_out(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN EC2 answering m7g.large's spot price in the first zone as no price ("NaN")
    services = make_services()

    def no_price_in_the_first_zone(parsed: dict[str, Any], **_: Any) -> None:
        for entry in parsed.get("SpotPriceHistory", []):
            if (entry["InstanceType"], entry["AvailabilityZone"]) == ("m7g.large", f"{REGION}a"):
                entry["SpotPrice"] = "NaN"

    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", no_price_in_the_first_zone)
    # WHEN the mix of dev-apps is asked for
    result = invoke(mix_of_dev_apps_request(), services, "inv-1")
    # THEN m7g.large is kept on the other zones' prices, and its entry names the price left out
    [group] = result["node_groups"]
    [m7g] = [entry for entry in group["keep"] if entry["instance_type"] == "m7g.large"]
    assert m7g["left_out"].startswith(f"SpotPrice: 1 value left out; the first 'NaN' in {REGION}a")
    assert all("left_out" not in entry for entry in group["keep"] if entry is not m7g)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([1, 2], "event"),
        ({"action": "optimize"}, "action"),
        (
            {"action": "analyze_opportunities", "account_id": MEMBER_A, "region": REGION},
            "instance_types",
        ),
        (
            {**analyze_event("m7g.large", "M7G LARGE")},
            "instance_types[1]",
        ),
        ({**analyze_event("m7g.large"), "account_id": "12"}, "account_id"),
        (
            {"action": "recommend_node_group_mix", "account_id": MEMBER_A, "region": REGION},
            "cluster",
        ),
        (
            {**interruption_event("i-0123456789abcdef0"), "detail": {"instance-id": "bogus"}},
            "detail.instance-id",
        ),
        (
            {
                **interruption_event("i-0123456789abcdef0"),
                "detail": {"instance-id": "i-0123456789abcdef0", "instance-action": "explode"},
            },
            "detail.instance-action",
        ),
    ],
)
def test_bad_events_name_the_field_and_change_nothing(
    invoke: Invoke, make_services: MakeServices, alert_inbox: Any, event: Any, field: str
) -> None:
    services = make_services()
    result = invoke(event, services, "inv-1")
    assert result["status"] == "error"
    assert f"invalid event: {field}:" in result["error"]
    assert alert_inbox.receive() == []


def test_a_mistyped_instance_type_is_refused_showing_the_start_of_the_value(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN an analysis request whose second type is mistyped, and one whose type is 1 MB long
    services = make_services()
    mistyped = analyze_event("m7g.large", "M7G LARGE")
    huge = analyze_event("m" * 1_000_000 + ".large")
    # WHEN they arrive
    refusals = [invoke(event, services, "inv-1")["error"] for event in (mistyped, huge)]
    # THEN each is one short line naming the type's position and showing the start of the value
    assert refusals[0] == (
        "invalid event: instance_types[1]: must be an EC2 instance type like m7g.large, "
        "got 'M7G LARGE'"
    )
    assert refusals[1].startswith("invalid event: instance_types[0]: ")
    assert "got 'mmmm" in refusals[1]
    assert len(refusals[1]) < 200


def test_interruption_of_an_unknown_instance_is_an_error_result(
    invoke: Invoke, make_services: MakeServices
) -> None:
    result = invoke(interruption_event("i-0123456789abcdef0"), make_services(), "inv-1")
    assert result["status"] == "error"
    assert "i-0123456789abcdef0" in result["error"]


def test_a_maintenance_window_blocks_the_on_demand_fallback(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on and the cluster in a maintenance window that covers the whole test
    def add_a_maintenance_window(cluster: dict[str, Any]) -> None:
        cluster["calendar"] = {
            "time_zone": "Asia/Kolkata",
            "maintenance_windows": [
                {
                    "start": "2025-06-01T00:00",
                    "end": "2025-06-03T00:00",
                    "reason": "node AMI rollout",
                }
            ],
        }

    change_the_inventory(add_a_maintenance_window)
    services = make_services(SPOT_AUTO_APPLY="true")
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the fallback says the window blocks it, and the on-demand group is unchanged
    assert result["fallback"]["status"] == "maintenance_window"
    assert "node AMI rollout" in result["fallback"]["reason"]
    assert desired_size(member_eks, "system") == 2
    # AND the interruption itself is still recorded
    assert result["status"] == "recorded"


def test_a_fallback_no_schedule_would_take_back_is_proposed_not_applied(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, and a cluster schedule that sizes batch-spot only: no scheduled
    # scale-down or restore ever sets system's size
    def schedule_batch_spot_only(cluster: dict[str, Any]) -> None:
        cluster["schedule"]["off_hours_desired"] = {"batch-spot": 0}

    change_the_inventory(schedule_batch_spot_only)
    services = make_services(SPOT_AUTO_APPLY="true")
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the +1 of system is only proposed, saying why: applied, it would stay for good (and
    # the next hours of interruptions would add more, up to its max_size)
    fallback = result["fallback"]
    assert fallback["status"] == "proposed"
    assert fallback["nodegroup"] == "system"
    assert fallback["new"]["desired_size"] == 3
    assert "no cluster schedule resets system" in fallback["note"]
    assert desired_size(member_eks, "system") == 2
    assert services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system")) is None


def _stack_max_size_of_system(max_size: int) -> Callable[[dict[str, Any]], None]:
    """An inventory change giving the system group the stack file's `max_size`."""

    def change(cluster: dict[str, Any]) -> None:
        system = next(group for group in cluster["node_groups"] if group["name"] == "system")
        system["max_size"] = max_size

    return change


def test_a_fallback_stops_at_the_stack_files_max_size_below_a_raised_eks_max_size(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, system at desired 2 of EKS maxSize 4 (raised by hand in the
    # console), while the stack file's max_size (the fleet inventory) is 2
    change_the_inventory(_stack_max_size_of_system(2))
    services = make_services(SPOT_AUTO_APPLY="true")
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the +1 is not made: the stack file's ceiling stops it, and the note says so
    fallback = result["fallback"]
    assert fallback["status"] == "at_max"
    assert fallback["new"] is None
    assert "the stack file's max_size 2" in fallback["note"]
    assert desired_size(member_eks, "system") == 2
    assert services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system")) is None


def test_a_fallback_below_the_stack_files_max_size_is_proposed_up_to_it(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply off, system at desired 2 of EKS maxSize 4 and the stack file's max_size 3
    change_the_inventory(_stack_max_size_of_system(3))
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, make_services())
    # THEN the +1 to 3 (within both bounds) is proposed
    fallback = result["fallback"]
    assert fallback["status"] == "proposed"
    assert fallback["new"]["desired_size"] == 3


def test_a_fallback_stops_at_the_eks_max_size_below_the_stack_files_max_size(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, system at desired 4 of EKS maxSize 4, while the stack file's max_size
    # (the fleet inventory) is 8, not applied yet
    change_the_inventory(_stack_max_size_of_system(8))
    member_eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": 4}
    )
    services = make_services(SPOT_AUTO_APPLY="true", SPOT_INTERRUPTION_THRESHOLD="0")
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN the +1 is not made: EKS's maxSize stops it
    fallback = result["fallback"]
    assert fallback["status"] == "at_max"
    assert fallback["new"] is None
    assert desired_size(member_eks, "system") == 4
    assert services.state.latest_change(node_group_key(MEMBER_A, REGION, CLUSTER, "system")) is None


def test_a_fallback_applied_whose_change_record_fails_is_still_reported_and_announced(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, and the state table failing every attempt to record the fallback
    # with a proxy's page of escapes and lines
    services = make_services(SPOT_AUTO_APPLY="true")
    refused = fail_every_attempt(
        services.hub_client("dynamodb"),
        "dynamodb",
        "TransactWriteItems",
        body_with=(b"spot_fallback",),
        server_error=ESCAPES_PAGE,
    )
    # WHEN the threshold is exceeded
    result = interrupt_four(invoke, services)
    # THEN the on-demand group got its +1, and the result says it was applied (not "error")
    assert refused.attempts > 0
    assert desired_size(member_eks, "system") == 3
    assert result["fallback"]["status"] == "scaling_initiated"
    assert "not recorded" in result["fallback"]["error"]
    # AND the error quotes the page escaped on one line, cut
    assert ESCAPES_PAGE_QUOTED in result["fallback"]["error"]
    assert result["fallback"]["error"].isprintable()
    assert len(result["fallback"]["error"]) < 600
    # AND the change is announced at info level
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    assert f"{CLUSTER}/system scaled (spot fallback): desired 2 -> 3" in titles


def _list_a_deleted_node_group_first(services: SpotServices) -> MalformedAnswer:
    """ListNodegroups of dev-apps names `a-deleted`, a group deleted before it is described."""
    body = json.dumps({"nodegroups": ["a-deleted", "batch-spot", "system"]}).encode()
    eks = services.member_client("eks", MEMBER_A, REGION)
    return answer_malformed(eks, "eks", "ListNodegroups", body)


def test_a_node_group_deleted_while_listed_does_not_stop_the_on_demand_fallback(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # a node group of dev-apps deleted between ListNodegroups and its DescribeNodegroup
    services = at_the_fallback_threshold(make_services, invoke)
    listing = _list_a_deleted_node_group_first(services)
    # WHEN the fourth interruption exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the listing naming the deleted group was read, the group passed over and the
    # on-demand group system gets its +1
    assert listing.answered == 1
    assert result["fallback"]["status"] == "scaling_initiated"
    assert result["fallback"]["nodegroup"] == "system"
    assert desired_size(member_eks, "system") == 3


def test_a_node_group_deleted_while_listed_does_not_stop_the_mix_recommendation(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN a node group of dev-apps deleted between ListNodegroups and its DescribeNodegroup
    services = make_services()
    listing = _list_a_deleted_node_group_first(services)
    # WHEN the mix of dev-apps is asked for
    result = invoke(mix_of_dev_apps_request(), services, "inv-1")
    # THEN the listing naming the deleted group was read, and the remaining spot group is
    # recommended for
    assert listing.answered == 1
    assert [group["nodegroup"] for group in result["node_groups"]] == ["batch-spot"]


def test_a_mix_whose_member_eks_fails_with_a_proxy_page_quotes_it_on_one_line(
    invoke: Invoke, make_services: MakeServices, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN member A's EKS failing every ListNodegroups with a proxy's page of escapes and lines
    caplog.set_level(logging.WARNING)
    services = make_services()
    eks = services.member_client("eks", MEMBER_A, REGION)
    fault = fail_every_attempt(eks, "eks", "ListNodegroups", server_error=ESCAPES_PAGE)
    # WHEN the mix of dev-apps is asked for
    result = invoke(mix_of_dev_apps_request(), services, "inv-1")
    # THEN the answer is an error naming the cluster
    assert fault.attempts > 1
    assert result["status"] == "error"
    assert result["cluster"] == CLUSTER
    # AND the log line quotes the page escaped on one line, cut, like the result
    [logged] = [record for record in caplog.records if record.getMessage() == "request failed"]
    for quoted in (logged.error, result["error"]):  # type: ignore[attr-defined]
        assert ESCAPES_PAGE_QUOTED in quoted
        assert quoted.isprintable()
        assert len(quoted) < 600


@dataclass
class _NodeGroupPagesInTurn:
    """Answers ListNodegroups with pages listing nothing under two next tokens in turn, and,
    from its `last` answer on, a page without one (so a reader that follows the cycle ends).
    The tokens are node group names, as moto's are: moto's handler sees every request too."""

    last: int = 20
    answered: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.answered += 1
        page: dict[str, Any] = {"nodegroups": []}
        if self.answered < self.last:
            page["nextToken"] = ("system", "batch-spot")[self.answered % 2]
        body = json.dumps(page).encode()
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _JsonBody(body))


def test_a_node_group_listing_whose_tokens_come_round_again_is_refused_at_once(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN member A's EKS answering ListNodegroups with two next tokens in turn
    services = make_services()
    pages = _NodeGroupPagesInTurn()
    eks = services.member_client("eks", MEMBER_A, REGION)
    eks.meta.events.register_first("before-send.eks.ListNodegroups", pages)
    # WHEN the mix of dev-apps is asked for
    result = invoke(mix_of_dev_apps_request(), services, "inv-1")
    # THEN the listing stops at the first token answered again, an error naming it, instead of
    # following the cycle until Lambda ends the invocation
    assert pages.answered == 3
    assert result["status"] == "error"
    assert "ListNodegroups answered the nextToken 'batch-spot' again" in result["error"]


@pytest.mark.parametrize("scaler_done", [False, True], ids=["scaler-holding", "scaler-done"])
def test_a_fallback_whose_lock_lease_ran_out_does_not_undo_the_scalers_change(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, scaler_done: bool
) -> None:
    # GIVEN auto-apply on and three interruptions of batch-spot in the last hour (threshold 3),
    # and EKS answering the fallback's read of system under the lock only after the lock's lease
    # ran out, by when the scaler took the lock and scaled system down to 1 (and, when done,
    # released the lock)
    services = at_the_fallback_threshold(make_services, invoke)
    lock = node_group_lock_name(MEMBER_A, REGION, CLUSTER, "system")
    reads_of_system: list[int] = []

    def scaler_acts_while_the_read_is_slow(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("nodegroup", {}).get("nodegroupName") != "system":
            return
        reads_of_system.append(1)
        if len(reads_of_system) == 2:  # the second read is the one under the lock
            services.clock.advance(NODE_GROUP_LOCK_LEASE_SECONDS + 10)  # type: ignore[attr-defined]
            assert services.state.acquire_lock(lock, "eks_scaler:scale-down", 600)
            member_eks.update_nodegroup_config(
                clusterName=CLUSTER, nodegroupName="system", scalingConfig={"desiredSize": 1}
            )
            if scaler_done:
                assert services.state.release_lock(lock, "eks_scaler:scale-down")

    eks = services.member_client("eks", MEMBER_A, REGION)
    eks.meta.events.register("after-call.eks.DescribeNodegroup", scaler_acts_while_the_read_is_slow)
    # WHEN the fourth interruption exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the fallback, no longer holding the lock, changes nothing: the scaler's 1 stands
    assert len(reads_of_system) == 2
    assert result["fallback"]["status"] == "locked"
    assert desired_size(member_eks, "system") == 1
    # AND the hour's +1 is not used up: the next warning after the scaler is done may apply it
    services.state.release_lock(lock, "eks_scaler:scale-down")
    again = invoke(next_batch_spot_warning(services), services, "inv-5")
    assert again["fallback"]["status"] == "scaling_initiated"
    assert desired_size(member_eks, "system") == 2


NOT_A_PRICE = "not a decimal price above 0 and at most 10000"
ABOVE_ON_DEMAND = "above the type's on-demand price 0.0858, which caps a spot price"
BELOW_THE_FLOOR = "below 5% of the type's on-demand price 0.0858, a discount no spot price gives"


@pytest.mark.parametrize(
    ("answered", "why"),
    [
        *(
            (answered, NOT_A_PRICE)
            for answered in ("NaN", "Infinity", "-0.5", "0.000000", "n/a", "1e-3", "250000.00")
        ),
        # Under the ceiling, but above m7g.large's on-demand price in ap-south-1.
        ("0.090000", ABOVE_ON_DEMAND),
        # moto's price of every pool, and a corrupt history's: m7g.large nearly free.
        ("0.000010", BELOW_THE_FLOOR),
        ("0.004000", BELOW_THE_FLOOR),
    ],
)
def test_a_spot_price_that_is_not_a_price_is_left_out_and_named(
    invoke: Invoke, make_services: MakeServices, answered: str, why: str
) -> None:
    # GIVEN EC2 answering m7g.large's spot price in the first zone as `answered`, no price or
    # none beside the type's on-demand price
    services = make_services()
    zone = f"{REGION}a"

    def replace(parsed: dict[str, Any], **_: Any) -> None:
        for entry in parsed.get("SpotPriceHistory", []):
            if (entry["InstanceType"], entry["AvailabilityZone"]) == ("m7g.large", zone):
                entry["SpotPrice"] = answered

    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", replace)
    # WHEN m7g.large is analysed
    result = invoke(analyze_event("m7g.large"), services, "inv-1")
    # THEN the zone is scored on no price, the others are, and the result names the price left out
    [m7g] = result["results"]
    assert m7g["status"] == "ok", m7g
    assert {item["availability_zone"] for item in m7g["zones"]} == {f"{REGION}b", f"{REGION}c"}
    assert m7g["score"] == pytest.approx(67.5, abs=0.01)
    assert m7g["recommended"] is True
    assert m7g["left_out"].startswith(
        f"SpotPrice: 1 value left out; the first {answered!r} in {zone} at "
    )
    assert m7g["left_out"].endswith(f": {why}")


def test_a_type_whose_every_spot_price_is_implausible_is_an_error_naming_why(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN EC2 answering m7g.large's spot price in every zone as 0.000010 USD an hour, as moto
    # does for every pool
    services = make_services()

    def nearly_free(parsed: dict[str, Any], **_: Any) -> None:
        for entry in parsed.get("SpotPriceHistory", []):
            if entry["InstanceType"] == "m7g.large":
                entry["SpotPrice"] = "0.000010"

    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", nearly_free)
    # WHEN m7g.large and m6g.large are analysed
    result = invoke(analyze_event("m7g.large", "m6g.large"), services, "inv-1")
    # THEN m7g.large gets no score (where it scored as nearly free), its error says that every
    # price was left out and its left_out why; m6g.large is scored
    by_type = {item["instance_type"]: item for item in result["results"]}
    m7g = by_type["m7g.large"]
    assert m7g["status"] == "error"
    assert "score" not in m7g
    assert m7g["error"] == (
        f"no plausible Linux/UNIX spot price for m7g.large in {REGION}: every price EC2 "
        "answered was left out"
    )
    assert m7g["left_out"].startswith("SpotPrice: 3 values left out; the first '0.000010' in ")
    assert m7g["left_out"].endswith(f": {BELOW_THE_FLOOR}")
    assert by_type["m6g.large"]["score"] == pytest.approx(67.5, abs=0.01)


def test_an_absurd_spot_price_beside_a_real_one_leaves_the_fleet_analysis_answering(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN EC2 answering m7g.large's history in the first zone with a real price and, an hour
    # later, 1e200 USD an hour: numbers whose volatility squares overflow a float
    services = make_services()
    zone = f"{REGION}a"
    hours_ago = services.clock.now().replace(minute=0, second=0, microsecond=0)

    def add_prices(parsed: dict[str, Any], **_: Any) -> None:
        entries = parsed.get("SpotPriceHistory", [])
        [first] = [
            e for e in entries if (e["InstanceType"], e["AvailabilityZone"]) == ("m7g.large", zone)
        ]
        for hours, price in ((3, "0.0500"), (2, "1e200")):
            entries.append(
                {**first, "SpotPrice": price, "Timestamp": hours_ago - timedelta(hours=hours)}
            )

    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", add_prices)
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN member A is analysed on its real prices, the absurd one left out, instead of an
    # OverflowError failing the whole run
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "ok", targets[MEMBER_A]
    [group] = targets[MEMBER_A]["node_groups"]
    m7g = next(item for item in group["instance_types"] if item["instance_type"] == "m7g.large")
    assert m7g["status"] == "ok"
    assert m7g["score"] is not None
    # AND the node group's saved analysis, like the result, names the price its score left out
    left_out = f"SpotPrice: 1 value left out; the first '1e200' in {zone} at "
    assert m7g["left_out"].startswith(left_out)
    saved = services.state.get_value(
        analysis_key(MEMBER_A, REGION, CLUSTER, "batch-spot"), LATEST_ANALYSIS
    )
    [saved_m7g] = [item for item in saved["instance_types"] if item["instance_type"] == "m7g.large"]
    assert saved_m7g["left_out"] == m7g["left_out"]


def test_a_spot_price_dated_after_the_window_is_left_out_not_taken_for_the_current_one(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN EC2 answering m7g.large's history in the first zone with, besides its price, one of
    # 0.0010 dated tomorrow (past the EndTime asked for)
    services = make_services()
    zone = f"{REGION}a"
    tomorrow = services.clock.now() + timedelta(days=1)

    def add_a_future_price(parsed: dict[str, Any], **_: Any) -> None:
        entries = parsed.get("SpotPriceHistory", [])
        [first] = [
            e for e in entries if (e["InstanceType"], e["AvailabilityZone"]) == ("m7g.large", zone)
        ]
        entries.append({**first, "SpotPrice": "0.0010", "Timestamp": tomorrow})

    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", add_a_future_price)
    # WHEN m7g.large is analysed
    result = invoke(analyze_event("m7g.large"), services, "inv-1")
    # THEN the zone's current price is the one in effect in the window, and the future one is
    # named as left out
    [m7g] = result["results"]
    zones = {item["availability_zone"]: item for item in m7g["zones"]}
    assert zones[zone]["spot_price"] == zones[f"{REGION}b"]["spot_price"] != 0.001
    assert m7g["left_out"].startswith(f"SpotPrice: 1 value left out; the first '0.0010' in {zone}")
    assert m7g["left_out"].endswith("dated after the window's end, so not in effect in it")


def test_an_interruption_record_ttl_shorter_than_the_risk_window_is_refused_naming_it(
    make_services: MakeServices,
) -> None:
    # GIVEN interruption records kept 3 days, while the interruption risk counts 7
    # WHEN the environment is read THEN it is refused naming the variable
    with pytest.raises(ConfigurationError) as raised:
        make_services(SPOT_HISTORY_TTL_DAYS="3")
    assert raised.value.variable == "SPOT_HISTORY_TTL_DAYS"
    assert "greater than or equal to 7" in raised.value.problem
