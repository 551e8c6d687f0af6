"""A member answer that is not its call's (HTTP 200 with a proxy's page) fails its node group
alone: the scaler's other node groups are scaled, and the result names what was missing."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pytest
from scaler_helpers import MEMBER_ACCOUNT_ID, REGION, event
from scaling_harness import Scaling
from test_eks_scaler_autoscalers import (
    DISCOVERY_TAGS,
    EVENING_SCALE_DOWN,
    by_group,
    declare_cluster_autoscaler,
    tag_auto_scaling_group,
)

from fleet_shared.validation_errors import ECHO_LIMIT
from tests.handlers.faults import MULTI_LINE_PAGE, answer_malformed

PROXY_PAGE = b"<html>gateway</html>"
"""A page EKS's JSON parser hands on as an answer without any of the call's fields."""
BROKEN_PROXY_PAGE = b"<html><body>Bad gateway<br></body></html>"
"""A page that is not well-formed XML: Auto Scaling's parser raises ResponseParserError."""
REFUSAL_OF_MANY_LINES = (
    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
    f"<Message>{xml_escape(MULTI_LINE_PAGE)}</Message></Error></ErrorResponse>"
).encode()
"""Auto Scaling's refusal (HTTP 403) whose message is a proxy's page of many long lines."""


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


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            (BROKEN_PROXY_PAGE, 200), "Unable to parse response", id="a-page-that-is-not-xml"
        ),
        pytest.param(
            (b"<html><body>Bad gateway</body></html>", 200),
            "DescribeTags answered without <DescribeTagsResponse>",
            id="a-gateways-well-formed-page",
        ),
        pytest.param(
            (b"<DescribeTagsResponse><DescribeTagsResult/></DescribeTagsResponse>", 200),
            "DescribeTags answered without Tags",
            id="the-calls-own-shape-without-its-list",
        ),
        pytest.param(
            (REFUSAL_OF_MANY_LINES, 403),
            "AccessDenied: <html>\\n<title>Console",
            id="a-refusal-of-many-long-lines",
        ),
    ],
)
def test_auto_scaling_tags_answered_with_a_page_fail_their_node_group_alone_not_scale_it(
    scaling: Scaling,
    inventory_in_s3: dict[str, Any],
    fleet_environment: dict[str, str],
    answer: tuple[bytes, int],
    reason: str,
) -> None:
    # GIVEN a cluster whose stack declares Cluster Autoscaler, web's group tagged for its
    # discovery, and Auto Scaling answering that group's DescribeTags with `answer` (a body and
    # its HTTP status): a page that is not XML, a gateway's well-formed page, the call's own shape
    # without the list it always sends, or a refusal whose message is a page of many long lines
    declare_cluster_autoscaler(inventory_in_s3, fleet_environment)
    web_group = tag_auto_scaling_group(scaling.member_eks, "web", DISCOVERY_TAGS)
    autoscaling = scaling.services.member_client("autoscaling", MEMBER_ACCOUNT_ID, REGION)
    body, status = answer
    page = answer_malformed(
        autoscaling,
        "autoscaling",
        "DescribeTags",
        body,
        body_with=web_group.encode(),
        status=status,
    )
    # WHEN the evening scale-down of system and web runs
    result = by_group(scaling.scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN web is an error saying why, in one short line (the answer's text cut, a code's
    # wording aside), left to Cluster Autoscaler unchanged rather than scaled as a group
    # without its tags, and system scales
    assert page.answered >= 1
    assert result["web"]["status"] == "error", result["web"]
    assert reason in result["web"]["reason"]
    assert "\n" not in result["web"]["reason"]
    assert len(result["web"]["reason"]) <= len("AccessDenied: ") + ECHO_LIMIT
    assert scaling.desired_size("web") == 3
    assert result["system"]["status"] == "scaling_initiated"
    assert scaling.desired_size("system") == 1


@pytest.mark.parametrize(
    ("described", "reasons"),
    [
        pytest.param(
            {"createdAt": "not-a-date"},
            ["DescribeNodegroup answered a value botocore cannot read", "Invalid timestamp"],
            id="timestamp",
        ),
        pytest.param(
            {"status": {"phase": "ACTIVE"}},
            ["DescribeNodegroup of system answered without a", "nodegroup.status"],
            id="status-not-text",
        ),
        pytest.param(
            {"capacityType": "RESERVED" * 50},
            ["DescribeNodegroup of system answered without a", "nodegroup.capacityType"],
            id="unknown-capacity",
        ),
    ],
)
def test_a_node_group_described_with_a_value_eks_cannot_send_fails_alone_naming_it(
    scaling: Scaling, described: dict[str, Any], reasons: list[str]
) -> None:
    # GIVEN the evening scale-down of system and web, where EKS answers DescribeNodegroup of
    # system with its JSON holding its sizes and a `createdAt` that is no timestamp (on which
    # botocore's parser raises a bare ValueError), a status that is no text or a capacity type
    # EKS does not have (botocore hands a JSON answer's enum values on unchecked)
    eks = scaling.services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    sizes = {"minSize": 1, "desiredSize": 2, "maxSize": 4}
    body = json.dumps(
        {"nodegroup": {"nodegroupName": "system", "scalingConfig": sizes, **described}}
    )
    answer = answer_malformed(
        eks,
        "eks",
        "DescribeNodegroup",
        body.encode(),
        url_part="/node-groups/system",
        content_type="application/json",
    )
    # WHEN the scaler is invoked
    result = by_group(scaling.scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN system is an error naming the call and the value it could not read, in a short line,
    # unchanged (not a bare TypeError ending the run, nor a capacity EKS does not have taken for
    # SPOT's), and web scales
    assert answer.answered >= 1
    assert result["system"]["status"] == "error"
    assert all(reason in result["system"]["reason"] for reason in reasons), result["system"]
    assert len(result["system"]["reason"]) <= 300
    assert scaling.desired_size("system") == 2
    assert result["web"]["status"] == "scaling_initiated"
    assert scaling.desired_size("web") == 2


def test_a_node_group_described_with_a_null_auto_scaling_group_fails_alone_not_the_run(
    scaling: Scaling, inventory_in_s3: dict[str, Any], fleet_environment: dict[str, str]
) -> None:
    # GIVEN a cluster whose stack declares Cluster Autoscaler, and EKS answering DescribeNodegroup
    # of system with its JSON listing a null among the node group's Auto Scaling groups (botocore
    # keeps a null among a list's items)
    declare_cluster_autoscaler(inventory_in_s3, fleet_environment)
    eks = scaling.services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    body = json.dumps(
        {"nodegroup": {"nodegroupName": "system", "resources": {"autoScalingGroups": [None]}}}
    )
    answer = answer_malformed(
        eks,
        "eks",
        "DescribeNodegroup",
        body.encode(),
        url_part="/node-groups/system",
        content_type="application/json",
    )
    # WHEN the evening scale-down of system and web runs
    result = by_group(scaling.scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN system is an error naming the call and the list, unchanged, instead of the bare
    # AttributeError that ended the run with web unscaled; web, whose groups Cluster Autoscaler
    # does not discover, scales
    assert answer.answered >= 1
    assert result["system"]["status"] == "error"
    assert result["system"]["reason"] == (
        "DescribeNodegroup of system answered without an object with a text name for each "
        "resources.autoScalingGroups, not its answer: [None]"
    )
    assert scaling.desired_size("system") == 2
    assert result["web"]["status"] == "scaling_initiated"
    assert scaling.desired_size("web") == 2
