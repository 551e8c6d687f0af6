"""The demo's Cost Explorer: seeded daily cost answered for whatever period and grouping a
function asks, in the account the functions act in, so reports show spend and the spike."""

from __future__ import annotations

import json
from datetime import date, timedelta

import boto3
from moto import mock_aws

from fleet_shared.cost_explorer import CE_REGION, TOTAL, cost_and_usage
from fleetctl.demo_world import COMPUTE_SPIKE, SeededCosts, serve_seeded_costs

SPIKE = date(2026, 11, 25)
COSTS = SeededCosts(
    spike_day=SPIKE,
    hub_account_id="111111111111",
    member_account_id="222222222222",
    cluster_names=("dev-apps",),
)


def _request(start: date, end: date, group_by: list[dict[str, str]] | None = None) -> str:
    request: dict[str, object] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
    }
    if group_by:
        request["GroupBy"] = group_by
    return json.dumps(request)


def test_each_request_gets_the_days_it_asks_for_with_the_spike_on_its_day():
    # GIVEN seeded cost WHEN a month of daily totals ending with the spike day is asked
    answer = COSTS.answer(_request(SPIKE - timedelta(days=29), SPIKE + timedelta(days=1)))
    periods = answer["ResultsByTime"]
    # THEN there is one period per day, in order
    assert [p["TimePeriod"]["Start"] for p in periods][-1] == SPIKE.isoformat()
    assert len(periods) == 30
    # AND the spike day is the month's most expensive, by about the planted amount
    amounts = [float(p["Total"]["UnblendedCost"]["Amount"]) for p in periods]
    assert amounts[-1] == max(amounts)
    assert amounts[-1] - amounts[-8] > COMPUTE_SPIKE - 60


def test_grouped_requests_split_each_day_by_the_dimension_asked():
    # GIVEN one day's total
    day = SPIKE - timedelta(days=3)
    total = COSTS.answer(_request(day, day + timedelta(days=1)))["ResultsByTime"][0]
    expected = float(total["Total"]["UnblendedCost"]["Amount"])
    for dimension, keys in (
        ({"Type": "DIMENSION", "Key": "SERVICE"}, 3),
        ({"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, 2),
        ({"Type": "TAG", "Key": "cluster"}, 2),
    ):
        # WHEN the same day is asked grouped THEN the groups add up to the day's total
        groups = COSTS.answer(_request(day, day + timedelta(days=1), [dimension]))["ResultsByTime"][
            0
        ]["Groups"]
        assert len(groups) == keys
        amounts = [float(g["Metrics"]["UnblendedCost"]["Amount"]) for g in groups]
        assert abs(sum(amounts) - expected) < 0.05
    tagged = COSTS.answer(
        _request(day, day + timedelta(days=1), [{"Type": "TAG", "Key": "cluster"}])
    )
    assert [g["Keys"][0] for g in tagged["ResultsByTime"][0]["Groups"]] == [
        "cluster$dev-apps",
        "cluster$",
    ]


@mock_aws
def test_the_hub_account_reads_the_seeded_cost_through_cost_explorer_however_often_it_asks():
    # GIVEN the seeded cost served in the hub account (moto in this process)
    serve_seeded_costs(COSTS)
    ce = boto3.client(
        "ce",
        region_name=CE_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sts = boto3.client("sts", region_name=CE_REGION)
    issued = sts.assume_role(
        RoleArn="arn:aws:iam::111111111111:role/fleet", RoleSessionName="test"
    )["Credentials"]
    hub_ce = boto3.client(
        "ce",
        region_name=CE_REGION,
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
    )
    # WHEN the hub asks twice for the same period and once grouped
    start, end = SPIKE - timedelta(days=6), SPIKE + timedelta(days=1)
    first = cost_and_usage(hub_ce, start, end)
    second = cost_and_usage(hub_ce, start, end)
    by_service = cost_and_usage(
        hub_ce, start, end, group_by=[{"Type": "DIMENSION", "Key": "SERVICE"}]
    )
    # THEN every answer is the seeded cost of the days asked, and grouped answers are grouped
    assert first == second
    assert [point.group for point in first] == [TOTAL] * 7
    assert first[-1].amount == max(point.amount for point in first)
    assert len({point.group for point in by_service}) == 3
    # AND another account sees no cost
    assert cost_and_usage(ce, start, end) == []
