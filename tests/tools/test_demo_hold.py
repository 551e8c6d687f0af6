"""The demo's afternoon hold: a `POST /scale` the scaler accepts, and the timeline's account of
the evening scale-down it holds back."""

from __future__ import annotations

import json
from datetime import datetime, time

from fleetctl.demo import DEMO_ZONE, HOLD_REASON, hold_request, summarize
from fleetctl.local_world import stack_settings
from handlers.eks_scaler.app import parse
from handlers.eks_scaler.models import Action

DAY = datetime(2026, 11, 26, tzinfo=DEMO_ZONE).date()


def test_the_demo_hold_is_a_post_scale_request_the_scaler_accepts():
    # GIVEN the dev stack and an afternoon hold until after the 18:00 scale-down
    settings = stack_settings("dev")
    at = datetime.combine(DAY, time(16, 30), DEMO_ZONE)
    until = datetime.combine(DAY, time(19, 30), DEMO_ZONE)
    # WHEN the demo builds the request and the scaler parses it
    call = parse(hold_request(settings, at, until))
    # THEN it is an HTTP hold of the first cluster's last node group, with the caller's ARN
    cluster = settings.members[0].clusters[0]
    assert call.over_http
    assert call.requested_by == "arn:aws:iam::111111111111:user/platform-oncall"
    assert call.event.action is Action.HOLD
    assert call.event.cluster == cluster.name
    assert [group.name for group in call.event.nodegroups] == [cluster.node_groups[-1].name]
    # AND it lasts past the evening scale-down, for the reason the timeline will show
    assert datetime.fromisoformat(call.event.until) == until
    assert call.event.reason == HOLD_REASON


def test_a_held_node_group_shows_its_reason_on_the_timeline():
    # GIVEN the evening scale-down's result with one node group held and one scaled
    result = {
        "results": [
            {"nodegroup": "system", "status": "scaling_initiated", "reason": "scale_down"},
            {
                "nodegroup": "batch-spot",
                "status": "held",
                "reason": "the node group is on hold until ...",
                "hold": {"reason": "nightly batch", "until": "2026-11-26T14:00:00Z"},
            },
        ]
    }
    # WHEN it is summarised THEN the line counts both and gives the hold's reason
    assert summarize(result) == (
        "results: 1 held, 1 scaling_initiated; batch-spot held: nightly batch"
    )


def test_an_http_answer_is_summarised_with_its_body():
    # GIVEN the scaler's HTTP answer to a hold
    answer = {
        "statusCode": 200,
        "body": json.dumps({"results": [{"nodegroup": "batch-spot", "status": "hold_placed"}]}),
    }
    # WHEN it is summarised THEN the status code and the body's outcome are on the line
    assert summarize(answer) == "HTTP 200; results: 1 hold_placed"
    assert summarize({"statusCode": 400, "body": "not json"}) == "HTTP 400"
