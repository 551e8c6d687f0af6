"""What one cluster's turn may take: the time a cluster is started with, and the member calls'
bound and the unanswered calls that fit in it.

A leaf module (no import of the checks or the services), since both the checks and the services
read these figures.
"""

from __future__ import annotations

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
