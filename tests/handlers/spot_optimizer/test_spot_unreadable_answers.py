"""A member answer that is not its call's (HTTP 200 with a proxy's page) fails its target alone:
the fleet analysis answers for every target, and a fallback so answered is reported while the
interruption stays recorded and announced."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from handlers.spot_optimizer.exceptions import InterruptionNotRecordedError
from handlers.spot_optimizer.services import SpotServices
from tests.handlers.faults import answer_malformed
from tests.handlers.member_accounts import DENIED_MEMBER, MEMBER_A, REGION
from tests.handlers.spot_optimizer.conftest import (
    CLUSTER,
    at_the_fallback_threshold,
    desired_size,
    interruption_event,
    launch_spot_instance,
    next_batch_spot_warning,
)

MakeServices = Callable[..., SpotServices]
Invoke = Callable[..., dict[str, Any]]

PROXY_PAGE = b"<html>gateway</html>"
"""A page EKS's JSON parser hands on as an answer without any of the call's fields."""
BROKEN_PROXY_PAGE = b"<html><body>Bad gateway<br></body></html>" + b"x" * 2000
"""A page that is not well-formed XML (EC2's parser raises ResponseParserError), longer than
any result may repeat."""


def test_a_fleet_analysis_whose_spot_history_is_an_unparsable_page_answers_per_target(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN member A's EC2 answering DescribeSpotPriceHistory with a page that is not XML, and
    # a member whose AssumeRole is denied
    services = make_services()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    page = answer_malformed(ec2, "ec2", "DescribeSpotPriceHistory", BROKEN_PROXY_PAGE)
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN the run answers per target: member A failed on the page in a short line, the denied
    # member on its access
    assert page.answered >= 1
    assert result["status"] == "partial"
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "error"
    assert "Unable to parse response" in targets[MEMBER_A]["error"]
    assert len(targets[MEMBER_A]["error"]) <= 200
    assert targets[DENIED_MEMBER]["status"] == "error"
    assert result["summary"]["failed_targets"] == 2


PRICES_WITH_A_BAD_DATE = (
    b'<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    b"<spotPriceHistorySet><item><instanceType>m5.large</instanceType><spotPrice>0.05"
    b"</spotPrice><timestamp>an hour ago</timestamp></item></spotPriceHistorySet>"
    b"</DescribeSpotPriceHistoryResponse>"
)
"""EC2's DescribeSpotPriceHistory answer whose one price's timestamp is no timestamp:
botocore's parser raises a bare ValueError on it."""


PRICES_WITHOUT_A_DATE = (
    b'<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    b"<spotPriceHistorySet><item><instanceType>m5.large</instanceType><spotPrice>0.05"
    b"</spotPrice><availabilityZone>ap-south-1a</availabilityZone></item>"
    b"</spotPriceHistorySet></DescribeSpotPriceHistoryResponse>"
)
"""EC2's DescribeSpotPriceHistory answer whose one price has no timestamp, which EC2 sends with
every price: botocore parses it into an item without `Timestamp`."""


def test_a_fleet_analysis_whose_spot_price_comes_without_its_timestamp_answers_per_target(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN member A's EC2 answering DescribeSpotPriceHistory with a price without its
    # timestamp, and a member whose AssumeRole is denied
    services = make_services()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    answer = answer_malformed(ec2, "ec2", "DescribeSpotPriceHistory", PRICES_WITHOUT_A_DATE)
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN the run answers per target, instead of the KeyError that failed the invocation:
    # member A failed naming the call and the field, the denied member on its access
    assert answer.answered >= 1
    assert result["status"] == "partial"
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "error"
    assert targets[MEMBER_A]["error"].startswith(
        "DescribeSpotPriceHistory answered without Timestamp, not its answer: "
    )
    assert targets[DENIED_MEMBER]["status"] == "error"
    assert result["summary"]["failed_targets"] == 2


def test_a_fleet_analysis_whose_spot_history_has_a_timestamp_botocore_cannot_parse_answers(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN member A's EC2 answering DescribeSpotPriceHistory with EC2's answer whose price's
    # timestamp is no timestamp, and a member whose AssumeRole is denied
    services = make_services()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    answer = answer_malformed(ec2, "ec2", "DescribeSpotPriceHistory", PRICES_WITH_A_BAD_DATE)
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN the run answers per target: member A failed naming the call and the value in a short
    # line, the denied member on its access
    assert answer.answered >= 1
    assert result["status"] == "partial"
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "error"
    assert (
        "DescribeSpotPriceHistory answered a value botocore cannot read: ValueError: Invalid"
        in targets[MEMBER_A]["error"]
    )
    assert len(targets[MEMBER_A]["error"]) <= 200
    assert targets[DENIED_MEMBER]["status"] == "error"
    assert result["summary"]["failed_targets"] == 2


def test_a_fallback_whose_on_demand_group_is_described_with_a_proxy_page_is_reported(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # EKS answering DescribeNodegroup of the on-demand group system with a proxy's page
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    eks = services.member_client("eks", MEMBER_A, REGION)
    page = answer_malformed(
        eks, "eks", "DescribeNodegroup", PROXY_PAGE, url_part="/node-groups/system"
    )
    # WHEN the fourth interruption exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the fallback is an error naming the call and what its answer lacked, system is
    # unchanged, and the interruption is recorded and announced
    assert page.answered >= 1
    assert result["status"] == "recorded"
    assert result["interruptions_last_hour"] == 4
    assert result["fallback"]["status"] == "error"
    assert "DescribeNodegroup of system answered without nodegroup" in result["fallback"]["error"]
    assert desired_size(member_eks, "system") == 2
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    assert len(titles) == 1
    assert CLUSTER in titles[0]
    assert titles[0].startswith("Spot interruption")


def test_a_fallback_whose_node_groups_are_listed_with_a_null_name_is_reported(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # EKS answering ListNodegroups with its JSON listing a null beside system (botocore keeps a
    # null among a list's items)
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    eks = services.member_client("eks", MEMBER_A, REGION)
    answer = answer_malformed(
        eks,
        "eks",
        "ListNodegroups",
        json.dumps({"nodegroups": ["system", None]}).encode(),
        content_type="application/json",
    )
    # WHEN the fourth interruption exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the fallback is an error naming the call and showing the names, instead of the bare
    # TypeError that failed the warning's invocation; system is unchanged, and the interruption
    # is recorded and announced
    assert answer.answered >= 1
    assert result["status"] == "recorded"
    assert result["fallback"] == {
        "status": "error",
        "error": f"ListNodegroups of {CLUSTER} answered without a text name for each of "
        "nodegroups, not its answer: ['system', None]",
    }
    assert desired_size(member_eks, "system") == 2
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    assert len(titles) == 1
    assert titles[0].startswith("Spot interruption")


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        pytest.param(PROXY_PAGE, "answered without Reservations", id="parsed-without-fields"),
        pytest.param(BROKEN_PROXY_PAGE, "Unable to parse response", id="not-xml"),
    ],
)
def test_a_warning_whose_instance_is_described_with_a_proxy_page_is_retried_and_recorded_once(
    invoke: Invoke, make_services: MakeServices, alert_inbox: Any, page: bytes, problem: str
) -> None:
    # GIVEN a spot instance of batch-spot, and member A's EC2 answering DescribeInstances with a
    # proxy's page
    services = make_services()
    instance_id = launch_spot_instance()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    malformed = answer_malformed(ec2, "ec2", "DescribeInstances", page)
    # WHEN its warning arrives THEN the invocation fails as for a failed DescribeInstances,
    # saying what was wrong in a short line, so the platform retries it
    with pytest.raises(InterruptionNotRecordedError, match="not described") as failed:
        invoke(interruption_event(instance_id), services, "inv-1")
    assert problem in str(failed.value)
    assert len(str(failed.value)) <= 300
    assert alert_inbox.receive() == []
    # WHEN the platform retries the warning with EC2 answering again
    ec2.meta.events.unregister("before-send.ec2.DescribeInstances", malformed)
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the interruption is recorded and announced once
    assert retried["status"] == "recorded"
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]


def test_a_mix_whose_node_groups_are_listed_with_a_proxy_page_is_an_error_not_an_empty_mix(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN dev-apps in member A with its spot node group, and EKS answering ListNodegroups
    # with a proxy's page (HTTP 200) that botocore hands on as an answer without the list
    services = make_services()
    eks = services.member_client("eks", MEMBER_A, REGION)
    page = answer_malformed(eks, "eks", "ListNodegroups", PROXY_PAGE)
    # WHEN the mix of dev-apps is asked for
    result = invoke(
        {
            "action": "recommend_node_group_mix",
            "account_id": MEMBER_A,
            "region": REGION,
            "cluster": CLUSTER,
        },
        services,
        "inv-1",
    )
    # THEN the answer is an error naming the call and what its answer lacked, not a cluster
    # without node groups
    assert page.answered >= 1
    assert result["status"] == "error"
    assert f"ListNodegroups of {CLUSTER} answered without nodegroups" in result["error"]
    assert "node_groups" not in result


def test_a_fleet_analysis_whose_spot_history_is_a_well_formed_page_fails_that_target(
    invoke: Invoke, make_services: MakeServices
) -> None:
    # GIVEN member A's EC2 answering DescribeSpotPriceHistory with a proxy's well-formed page
    # (HTTP 200), which botocore parses into an answer without any price history
    services = make_services()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    page = answer_malformed(ec2, "ec2", "DescribeSpotPriceHistory", PROXY_PAGE)
    # WHEN the hourly schedule payload arrives
    result = invoke({"action": "analyze_fleet"}, services, "inv-1")
    # THEN member A's target is an error naming the call and what its answer lacked, not an
    # analysis of types without spot prices
    assert page.answered >= 1
    targets = {target["account_id"]: target for target in result["targets"]}
    assert targets[MEMBER_A]["status"] == "error", targets[MEMBER_A]
    assert (
        "DescribeSpotPriceHistory answered without SpotPriceHistory" in targets[MEMBER_A]["error"]
    )


def described_system(**changes: Any) -> bytes:
    """EKS's DescribeNodegroup answer for the on-demand group system with `changes` (a field
    set to ... is left out)."""
    group: dict[str, Any] = {
        "nodegroupName": "system",
        "clusterName": CLUSTER,
        "capacityType": "ON_DEMAND",
        "instanceTypes": ["m7g.large"],
        "scalingConfig": {"minSize": 1, "desiredSize": 2, "maxSize": 4},
        "status": "ACTIVE",
    }
    group.update(changes)
    return json.dumps(
        {"nodegroup": {key: value for key, value in group.items() if value is not ...}}
    ).encode()


@pytest.mark.parametrize(
    "malformed",
    [
        pytest.param(
            (
                described_system(nodegroupName=...),
                "DescribeNodegroup of system answered without nodegroup.nodegroupName system, "
                "not its answer: None",
            ),
            id="without-its-name",
        ),
        pytest.param(
            (
                described_system(nodegroupName=7),
                "DescribeNodegroup of system answered without nodegroup.nodegroupName system, "
                "not its answer: 7",
            ),
            id="a-number-as-its-name",
        ),
    ],
)
def test_a_fallback_whose_on_demand_group_is_described_malformed_is_reported(
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    malformed: tuple[bytes, str],
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # EKS answering DescribeNodegroup of the on-demand group system with its JSON holding no
    # name or a number as its name (botocore hands a JSON answer's text on unchecked)
    answer, problem = malformed
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    eks = services.member_client("eks", MEMBER_A, REGION)
    described = answer_malformed(
        eks,
        "eks",
        "DescribeNodegroup",
        answer,
        url_part="/node-groups/system",
        content_type="application/json",
    )
    # WHEN the fourth interruption exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the fallback is an error naming the call and the field and showing its value only,
    # instead of the bare KeyError that failed the warning's invocation; system is
    # unchanged, and the interruption is recorded and announced
    assert described.answered >= 1
    assert result["status"] == "recorded"
    assert result["interruptions_last_hour"] == 4
    assert result["fallback"] == {"status": "error", "error": problem}
    assert desired_size(member_eks, "system") == 2
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    assert len(titles) == 1
    assert titles[0].startswith("Spot interruption")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param(
            {"nodegroupName": ...},
            "answered without nodegroup.nodegroupName batch-spot, not its answer: None",
            id="without-its-name",
        ),
        pytest.param(
            {"instanceTypes": ["m7g.large", None]},
            "answered without a text name for each of nodegroup.instanceTypes, not its answer: "
            "['m7g.large', None]",
            id="a-null-among-its-types",
        ),
        pytest.param(
            {"capacityType": "spot"},
            "answered without a nodegroup.capacityType of ON_DEMAND, SPOT or CAPACITY_BLOCK, "
            "not its answer: 'spot'",
            id="a-capacity-type-eks-lacks",
        ),
    ],
)
def test_a_mix_whose_spot_group_is_described_malformed_is_an_error_naming_it(
    invoke: Invoke, make_services: MakeServices, changes: dict[str, Any], problem: str
) -> None:
    # GIVEN dev-apps in member A, and EKS answering DescribeNodegroup of its spot group
    # batch-spot with its JSON holding a name, type or capacity type that is not one (an
    # unknown capacity type was taken for SPOT and mixed)
    services = make_services()
    eks = services.member_client("eks", MEMBER_A, REGION)
    spot_group = {
        "nodegroupName": "batch-spot",
        "capacityType": "SPOT",
        "instanceTypes": ["m7g.large"],
        **changes,
    }
    described = answer_malformed(
        eks,
        "eks",
        "DescribeNodegroup",
        json.dumps(
            {"nodegroup": {key: value for key, value in spot_group.items() if value is not ...}}
        ).encode(),
        url_part="/node-groups/batch-spot",
        content_type="application/json",
    )
    # WHEN the mix of dev-apps is asked for
    result = invoke(
        {
            "action": "recommend_node_group_mix",
            "account_id": MEMBER_A,
            "region": REGION,
            "cluster": CLUSTER,
        },
        services,
        "inv-1",
    )
    # THEN the answer is the cluster's error result naming the node group's call, the field and
    # its value, instead of the bare KeyError or AttributeError that failed the invocation
    assert described.answered >= 1
    assert result["status"] == "error"
    assert result["error"] == f"DescribeNodegroup of batch-spot {problem}"
    assert result["cluster"] == CLUSTER
    assert "node_groups" not in result


def described_instance(
    instance_id: str, *, placement: bool = True, tag_value: bool = True
) -> bytes:
    """EC2's DescribeInstances answer of `instance_id` in batch-spot, without its placement or its
    node group tag's value when asked."""
    zone = f"<placement><availabilityZone>{REGION}a</availabilityZone></placement>"
    value = "<value>batch-spot</value>" if tag_value else ""
    return (
        '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        "<reservationSet><item><reservationId>r-1</reservationId><instancesSet><item>"
        f"<instanceId>{instance_id}</instanceId><instanceType>m7g.large</instanceType>"
        f"{zone if placement else ''}<tagSet><item><key>eks:cluster-name</key>"
        f"<value>{CLUSTER}</value></item><item><key>eks:nodegroup-name</key>{value}</item>"
        "</tagSet></item></instancesSet></item></reservationSet></DescribeInstancesResponse>"
    ).encode()


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        pytest.param({"placement": False}, "Placement", id="without-placement"),
        pytest.param({"tag_value": False}, "Value", id="a-tag-without-value"),
    ],
)
def test_a_warning_whose_instance_is_described_without_a_field_is_retried_and_recorded_once(
    invoke: Invoke,
    make_services: MakeServices,
    alert_inbox: Any,
    fields: dict[str, bool],
    missing: str,
) -> None:
    # GIVEN a spot instance of batch-spot, and member A's EC2 answering DescribeInstances with
    # EC2's answer lacking a field EC2 sends (a well-formed page its parser reads without it)
    services = make_services()
    instance_id = launch_spot_instance()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    malformed = answer_malformed(
        ec2, "ec2", "DescribeInstances", described_instance(instance_id, **fields)
    )
    # WHEN its warning arrives THEN the invocation fails as for an unread DescribeInstances,
    # naming the call and the field in a short line instead of a bare KeyError, nothing announced
    with pytest.raises(InterruptionNotRecordedError, match="not described") as failed:
        invoke(interruption_event(instance_id), services, "inv-1")
    assert f"DescribeInstances of {instance_id} answered without {missing}" in str(failed.value)
    assert len(str(failed.value)) <= 300
    assert alert_inbox.receive() == []
    # WHEN the platform retries the warning with EC2 answering again
    ec2.meta.events.unregister("before-send.ec2.DescribeInstances", malformed)
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the interruption is recorded and announced once
    assert retried["status"] == "recorded"
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]
