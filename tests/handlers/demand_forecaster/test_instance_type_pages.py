"""demand_forecaster's DescribeInstanceTypes over its pages, against moto."""

from __future__ import annotations

import boto3

from handlers.demand_forecaster.capacity import instance_capacities
from tests.handlers.deadlines import LambdaTime
from tests.handlers.endless_listings import EndlessSlowPages
from tests.handlers.faults import answer_the_same_page_token


def test_a_next_token_answered_again_fails_each_instance_type_naming_describe_instance_types(
    mocked_aws: None,
) -> None:
    # GIVEN EC2 (or a proxy before it) answering every page with the same NextToken
    ec2 = boto3.client("ec2", region_name="ap-south-1")
    repeated = answer_the_same_page_token(ec2, "DescribeInstanceTypes", "NextToken")
    # WHEN the capacities of two instance types are read
    capacities, errors = instance_capacities(ec2, {"m5.large", "c5.xlarge"})
    # THEN the batch and then each type alone stop at the first repeat (two pages each), and
    # each type's error names the operation and the token
    assert capacities == {}
    assert sorted(errors) == ["c5.xlarge", "m5.large"]
    assert all("DescribeInstanceTypes" in e and "'page-2'" in e for e in errors.values()), errors
    assert repeated.pages == 6


def test_pages_under_ever_new_tokens_fail_each_instance_type_after_one_page_per_type(
    mocked_aws: None,
) -> None:
    # GIVEN EC2 (or a proxy before it) answering every page with a next page under a token never
    # sent before
    ec2 = boto3.client("ec2", region_name="ap-south-1")
    endless = EndlessSlowPages(LambdaTime(seconds_left=300), 0.0, "NextToken")
    endless.register(ec2.meta.events, "ec2.DescribeInstanceTypes", "NextToken")
    # WHEN the capacities of two instance types are read
    capacities, errors = instance_capacities(ec2, {"m5.large", "c5.xlarge"})
    # THEN the batch stops after three pages (one per type and one more) and each type alone
    # after two, instead of paging until Lambda ends the run; each type's error names the
    # operation and that its pages would go on
    assert capacities == {}
    assert sorted(errors) == ["c5.xlarge", "m5.large"]
    assert all("DescribeInstanceTypes answered a next page" in e for e in errors.values()), errors
    assert endless.pages == 7
