"""fleet_shared.cost_explorer: GetCostAndUsage followed over its pages, against moto."""

from __future__ import annotations

from datetime import UTC, date, datetime

import boto3
import pytest
import requests
from botocore.exceptions import PaginationError

from fleet_shared.aws_answers import UnreadableAnswerError
from fleet_shared.cost_explorer import (
    CE_REGION,
    RECORD_TYPE_GROUP,
    cost_and_usage,
    is_complete_day,
)
from tests.handlers.faults import answer_the_same_page_token

START = date(2025, 6, 1)
CE_QUEUE_URL = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"


def test_a_next_page_token_answered_again_fails_the_read_naming_get_cost_and_usage(
    mocked_aws: None,
) -> None:
    # GIVEN Cost Explorer (or a proxy before it) answering every page with the same long
    # NextPageToken
    ce = boto3.client("ce", region_name=CE_REGION)
    token = "Y29zdC1wYWdl" * 400
    repeated = answer_the_same_page_token(ce, "GetCostAndUsage", "NextPageToken", token)
    # WHEN the daily cost is read
    with pytest.raises(PaginationError) as raised:
        cost_and_usage(ce, START, date(2025, 6, 30))
    # THEN the read fails at the first repeat, naming the operation and the token's start only
    message = str(raised.value)
    assert ("GetCostAndUsage" in message, token[:20] in message) == (True, True)
    assert len(message) < 200
    assert repeated.pages == 2


@pytest.mark.parametrize(
    ("now", "complete"),
    [
        (datetime(2025, 6, 2, 0, 5, tzinfo=UTC), False),
        (datetime(2025, 6, 2, 23, 59, 59, tzinfo=UTC), False),
        (datetime(2025, 6, 3, 0, 0, tzinfo=UTC), True),
    ],
)
def test_a_days_cost_is_complete_only_a_whole_day_after_it_ended(
    now: datetime, complete: bool
) -> None:
    # GIVEN the cost of 1 June (UTC), which ended at midnight on 2 June
    day = date(2025, 6, 1)
    # WHEN it is judged at `now`
    judged = is_complete_day(day, now)
    # THEN it is still filling until a day after it ended (COST_FILLING), complete from then on
    assert judged is complete


BY_SERVICE_AND_RECORD_TYPE = [{"Type": "DIMENSION", "Key": "SERVICE"}, RECORD_TYPE_GROUP]


def queue_one_group(keys: list[str], unit: str = "USD", estimated: object = False) -> None:
    """Queue a one-day Cost Explorer answer holding one group of `keys`, costing 3 `unit`, its
    `Estimated` flag as given."""
    period = {
        "TimePeriod": {"Start": "2025-06-01", "End": "2025-06-02"},
        "Estimated": estimated,
        "Groups": [{"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": "3", "Unit": unit}}}],
    }
    queued = {"results": [{"ResultsByTime": [period]}]}
    assert requests.post(CE_QUEUE_URL, json=queued).status_code == 201


def test_a_point_grouped_by_record_type_keeps_its_group_and_its_charge_type_apart(
    mocked_aws: None,
) -> None:
    # GIVEN Cost Explorer answering a request grouped by service and RECORD_TYPE with the
    # group (AWS Lambda, Tax)
    queue_one_group(["AWS Lambda", "Tax"])
    ce = boto3.client("ce", region_name=CE_REGION)
    # WHEN the daily cost is read
    [point] = cost_and_usage(ce, START, date(2025, 6, 2), group_by=BY_SERVICE_AND_RECORD_TYPE)
    # THEN the point's group is the service alone, and its record type the charge type
    assert (point.group, point.record_type) == ("AWS Lambda", "Tax")


@pytest.mark.parametrize(
    ("keys", "unit", "estimated", "named"),
    [
        (["AWS Lambda"], "USD", False, "lack the RECORD_TYPE key"),
        (["AWS Lambda", "Usage"], "U" * 5_000, False, "is not a currency code"),
        (["AWS Lambda", "Usage"], "USD", "false", "Estimated 'false' is not true or false"),
    ],
)
def test_a_group_cost_explorer_would_not_send_fails_the_read_naming_what_is_wrong(
    mocked_aws: None, keys: list[str], unit: str, estimated: object, named: str
) -> None:
    # GIVEN Cost Explorer (or a proxy) answering a request grouped by service and RECORD_TYPE
    # with a group of the service's key alone, an amount whose Unit is no currency code, or a
    # period whose Estimated flag is a text (botocore hands it on unchecked: "false" was true)
    queue_one_group(keys, unit, estimated)
    ce = boto3.client("ce", region_name=CE_REGION)
    # WHEN the daily cost is read
    with pytest.raises(UnreadableAnswerError) as raised:
        cost_and_usage(ce, START, date(2025, 6, 2), group_by=BY_SERVICE_AND_RECORD_TYPE)
    # THEN the read fails naming the period and what is wrong, quoting the start of the value
    # alone, rather than taking the service for a charge type or a text for a currency
    message = str(raised.value)
    assert ("ResultsByTime[0]" in message, named in message) == (True, True), message
    assert len(message) < 400
