"""A member answer that is not its call's (HTTP 200 with a proxy's page) fails its node group
alone: the scaler's other node groups are scaled, and the result names what was missing."""

from __future__ import annotations

from typing import Any

from scaler_helpers import MEMBER_ACCOUNT_ID, REGION, event
from scaling_harness import Scaling
from test_eks_scaler_autoscalers import (
    DISCOVERY_TAGS,
    EVENING_SCALE_DOWN,
    by_group,
    declare_cluster_autoscaler,
    tag_auto_scaling_group,
)

from tests.handlers.faults import answer_malformed

PROXY_PAGE = b"<html>gateway</html>"
"""A page EKS's JSON parser hands on as an answer without any of the call's fields."""
BROKEN_PROXY_PAGE = b"<html><body>Bad gateway<br></body></html>"
"""A page that is not well-formed XML: Auto Scaling's parser raises ResponseParserError."""


def test_a_node_group_described_with_a_proxy_page_fails_alone_naming_what_was_missing(
    scaling: Scaling,
) -> None:
    # GIVEN the evening scale-down of system and web, where EKS's DescribeNodegroup of system is
    # answered with a proxy's page (HTTP 200)
    eks = scaling.services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    page = answer_malformed(
        eks, "eks", "DescribeNodegroup", PROXY_PAGE, url_part="/node-groups/system"
    )
    # WHEN the scaler is invoked
    result = by_group(scaling.scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN system is an error naming the call and the missing field, unchanged, and web scales
    assert page.answered >= 1
    assert result["system"]["status"] == "error"
    assert "DescribeNodegroup of system answered without nodegroup" in result["system"]["reason"]
    assert scaling.desired_size("system") == 2
    assert result["web"]["status"] == "scaling_initiated"
    assert scaling.desired_size("web") == 2


def test_an_unparsable_auto_scaling_answer_fails_its_node_group_alone(
    scaling: Scaling, inventory_in_s3: dict[str, Any], fleet_environment: dict[str, str]
) -> None:
    # GIVEN a cluster whose stack declares Cluster Autoscaler, and Auto Scaling answering the
    # DescribeTags of web's group with a page that is not XML (HTTP 200)
    declare_cluster_autoscaler(inventory_in_s3, fleet_environment)
    web_group = tag_auto_scaling_group(scaling.member_eks, "web", DISCOVERY_TAGS)
    autoscaling = scaling.services.member_client("autoscaling", MEMBER_ACCOUNT_ID, REGION)
    page = answer_malformed(
        autoscaling, "autoscaling", "DescribeTags", BROKEN_PROXY_PAGE, body_with=web_group.encode()
    )
    # WHEN the evening scale-down of system and web runs
    result = by_group(scaling.scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN web is an error saying its answer could not be parsed, showing no more than the
    # start of the page, and system scales
    assert page.answered >= 1
    assert result["web"]["status"] == "error"
    assert "Unable to parse response" in result["web"]["reason"]
    assert len(result["web"]["reason"]) <= 200
    assert scaling.desired_size("web") == 3
    assert result["system"]["status"] == "scaling_initiated"
    assert scaling.desired_size("system") == 1


def test_a_well_formed_proxy_page_from_auto_scaling_fails_its_node_group_alone(
    scaling: Scaling, inventory_in_s3: dict[str, Any], fleet_environment: dict[str, str]
) -> None:
    # GIVEN a cluster whose stack declares Cluster Autoscaler, and Auto Scaling answering the
    # DescribeTags of web's group with a gateway's well-formed HTML page (HTTP 200)
    declare_cluster_autoscaler(inventory_in_s3, fleet_environment)
    web_group = tag_auto_scaling_group(scaling.member_eks, "web", DISCOVERY_TAGS)
    autoscaling = scaling.services.member_client("autoscaling", MEMBER_ACCOUNT_ID, REGION)
    page = answer_malformed(
        autoscaling,
        "autoscaling",
        "DescribeTags",
        b"<html><body>Bad gateway</body></html>",
        body_with=web_group.encode(),
    )
    # WHEN the evening scale-down of system and web runs
    result = by_group(scaling.scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN web is an error naming the call and the start of the page, unchanged, and system
    # scales
    assert page.answered >= 1
    assert result["web"]["status"] == "error"
    assert "DescribeTags answered without <DescribeTagsResponse>" in result["web"]["reason"]
    assert scaling.desired_size("web") == 3
    assert result["system"]["status"] == "scaling_initiated"
    assert scaling.desired_size("system") == 1


def test_auto_scaling_tags_answered_without_their_list_fail_the_node_group_not_scale_it(
    scaling: Scaling, inventory_in_s3: dict[str, Any], fleet_environment: dict[str, str]
) -> None:
    # GIVEN a cluster whose stack declares Cluster Autoscaler, web's group tagged for its
    # discovery, and Auto Scaling answering that group's DescribeTags with an answer of the
    # call's own shape holding none of its fields (HTTP 200), not even the list it always sends
    declare_cluster_autoscaler(inventory_in_s3, fleet_environment)
    web_group = tag_auto_scaling_group(scaling.member_eks, "web", DISCOVERY_TAGS)
    autoscaling = scaling.services.member_client("autoscaling", MEMBER_ACCOUNT_ID, REGION)
    page = answer_malformed(
        autoscaling,
        "autoscaling",
        "DescribeTags",
        b"<DescribeTagsResponse><DescribeTagsResult/></DescribeTagsResponse>",
        body_with=web_group.encode(),
    )
    # WHEN the evening scale-down of system and web runs
    result = by_group(scaling.scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN web is an error naming the call and the list it lacked, left to Cluster Autoscaler
    # unchanged rather than scaled as a group without its tags, and system scales
    assert page.answered >= 1
    assert result["web"]["status"] == "error", result["web"]
    assert "DescribeTags answered without Tags" in result["web"]["reason"]
    assert scaling.desired_size("web") == 3
    assert result["system"]["status"] == "scaling_initiated"
