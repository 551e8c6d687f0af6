"""What one cluster's turn may take: the time a cluster is started with, the member calls'
bound and the unanswered calls that fit in it, and how long a check's paged reads may go on.

A leaf module (no import of the checks or the services), since both the checks and the services
read these figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fleet_shared.handler import Invocation
from fleet_shared.sessions import MEMBER_CALL_CONFIG, longest_hung_call_seconds

CLUSTER_AWS_SECONDS = 20.0
"""What one cluster's AWS calls (EKS, Auto Scaling, CloudWatch, the state table, SNS) take when
their endpoints answer, botocore's retries included; the probes of its endpoints come on top, each
batch started only while this much is left after it."""
HUNG_MEMBER_CALL_SECONDS = longest_hung_call_seconds(MEMBER_CALL_CONFIG)
"""The longest one member call (EKS, Auto Scaling, CloudWatch, Elastic Load Balancing) takes when
its endpoint never answers, or throttles each attempt as its timeouts run out (17 s)."""
MEMBER_ENDPOINT_GIVEN_UP_AFTER = int(CLUSTER_AWS_SECONDS // HUNG_MEMBER_CALL_SECONDS)
"""Unanswered calls after which a member endpoint (one service of one account and region) is given
up for the rest of the invocation: as many as fit in the `CLUSTER_AWS_SECONDS` (20 s) a cluster is
started with, one. Every cluster of that account and region asks the same endpoint alike calls (a
DescribeCluster, a DescribeAlarms of the same alarms), so one left unanswered is the endpoint's,
and each cluster behind it would otherwise wait the whole bound again: a member with 8 clusters
behind a hung EKS took a fleet run's 120 s, and the other members' clusters were not started."""
REPORT_SECONDS = CLUSTER_AWS_SECONDS - HUNG_MEMBER_CALL_SECONDS
"""What a cluster's run needs after its last member call to settle its incidents and report:
what the `CLUSTER_AWS_SECONDS` it is started with leave after one hung call (3 s)."""
MEMBER_CALL_SECONDS_LEFT = HUNG_MEMBER_CALL_SECONDS + REPORT_SECONDS
"""The time that must be left to start a call to a member endpoint not yet given up: one hung
call and the report after it. In a regional outage each of a cluster's endpoints (EKS,
CloudWatch, Elastic Load Balancing, Auto Scaling) would otherwise cost a hung call, 68 s against
the 20 s the cluster was started with, and Lambda would end the run with no report."""
LISTING_SECONDS = CLUSTER_AWS_SECONDS
"""How long after a check's paged reads ask for their first follow-up they may still send a
request (20 s, the time a whole cluster is started with: a cluster's node groups or load balancers
are listed in a few seconds); one sent then may still take its bound (`HUNG_MEMBER_CALL_SECONDS`).
A member (or a proxy) answering page after page under new tokens held the cluster until its member
calls were refused for lack of time, and the clusters waiting for their turn were not started."""


def next_request_allowed(deadline: Invocation) -> Callable[[], bool]:
    """Whether a check's paged reads may send their next request: while less than
    LISTING_SECONDS passed since their first such question, asked before their second request
    (always without a deadline). The time left is asked only then: a read of one request asks
    none. When less than `MEMBER_CALL_SECONDS_LEFT` is left first, the member call is refused
    instead, and the check is `not_checked` as any other."""
    stop_below: float | None = None

    def allowed() -> bool:
        nonlocal stop_below
        left = deadline.remaining_seconds()
        if math.isinf(left):
            return True
        if stop_below is None:
            stop_below = left - LISTING_SECONDS
        return left > stop_below

    return allowed
