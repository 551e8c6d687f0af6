"""What the optimizer works with: the fleet's services typed with the optimizer's environment.

Built once per container by the skeleton (app.py); tests build their own with a manual clock.
Member clients come per call from `member_client`; the inventory is read only by analyze_fleet
and the fallback's maintenance check.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.sessions import (
    MEMBER_CALL_CONFIG,
    MEMBER_CALL_SECONDS,
    bounded_config,
    longest_hung_call_seconds,
)
from fleet_shared.unanswered_endpoints import MEMBER_CALLS_GIVEN_UP_AFTER
from handlers.spot_optimizer.environment import SpotEnvironment
from handlers.spot_optimizer.prices import PRICING_REGION

FUNCTION_NAME = "spot_optimizer"

HUNG_ENDPOINT_SECONDS = MEMBER_CALLS_GIVEN_UP_AFTER * MEMBER_CALL_SECONDS
"""The most one member endpoint that never answers costs an invocation (34 s): its calls
(`sessions.MEMBER_CALL_SECONDS` each) until it is given up after two
(`fleet_shared.unanswered_endpoints`). The most an interruption's step spends on one hung
endpoint (the fallback's +1 whose answer was lost, then the read of the node group's size) is
this, within the 45 s the warning's claim lasts from its renewal before the step
(`interruptions.HANDLING_SECONDS`): no copy of the warning takes the claim over while this
invocation still works on it."""

PRICING_CONNECT_TIMEOUT_SECONDS = 2
PRICING_READ_TIMEOUT_SECONDS = 6
"""The Pricing API (GetProducts of one instance type, ten entries at most) answers within a
second or two; an endpoint silent this long is not going to answer, and the bundled table
stands in for it."""
PRICING_ATTEMPTS = 2
PRICING_CALL_CONFIG = bounded_config(
    connect_seconds=PRICING_CONNECT_TIMEOUT_SECONDS,
    read_seconds=PRICING_READ_TIMEOUT_SECONDS,
    attempts=PRICING_ATTEMPTS,
)
PRICING_CALL_SECONDS = longest_hung_call_seconds(PRICING_CALL_CONFIG)
"""The longest one Pricing call takes, every attempt timing out (17 s): that type is priced from
the bundled table, and the Pricing API is not asked again in the invocation (one hub endpoint,
asked for each instance type: `watched_hub_client`), so the other types, of every target, go to
the table at once. With botocore's defaults one hung GetProducts took about 6 minutes, per
type: Lambda ended the analysis at its 300 s timeout."""


class SpotServices(WatchedMemberServices[SpotEnvironment]):
    """The optimizer's services: environment, sessions, state table, alerts and clock."""

    member_call_config = MEMBER_CALL_CONFIG
    member_calls_given_up_after = MEMBER_CALLS_GIVEN_UP_AFTER

    def pricing_client(self) -> Any:
        """The hub's Pricing API client (`PRICING_REGION`), its calls bounded by
        `PRICING_CALL_CONFIG` and refused at once once the endpoint left one unanswered."""
        return self.sessions.watched_hub_client("pricing", PRICING_REGION, PRICING_CALL_CONFIG)
