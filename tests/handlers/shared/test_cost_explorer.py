"""fleet_shared.cost_explorer: GetCostAndUsage followed over its pages, against moto."""

from __future__ import annotations

from datetime import UTC, date, datetime

import boto3
import pytest
from botocore.exceptions import PaginationError

from fleet_shared.cost_explorer import CE_REGION, cost_and_usage, is_complete_day
from tests.handlers.faults import answer_the_same_page_token

START = date(2025, 6, 1)


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
