"""The spot optimizer's member access episodes (fleet_shared.access_episodes): one alert when a
member account starts refusing the optimizer's member role, one resolution when it works again.

Both paths that assume the role settle the one episode of the account, so a refusal met by the
hourly fleet analysis and by interruption warnings alike alerts once:

- the fleet analysis: a target whose AssumeRole STS refused, or whose spot price history EC2
  refused (AccessDenied, UnauthorizedOperation: the role without its grant), is denied; a target
  analysed, its price history answered, is reached; any other outcome (not started, an endpoint
  that failed) tells nothing;
- an interruption warning: its AssumeRole refused is denied; its instance described (the role
  works) is reached, settled only when the account's episode is open or its resolution not yet
  out (`episode_pending`, one read), so a warning costs no more when all is well.

Every other member of the inventory is settled as not tried, so its episode stays as it was; an
open episode of an account the inventory no longer lists is closed, as the shared settlement
closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleet_shared.access_episodes import (
    EPISODE_VALUE,
    AccessEpisodes,
    MemberAccessSettlement,
    settle_member_access,
)
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.handler import Invocation
from handlers.spot_optimizer.services import FUNCTION_NAME, SpotServices

if TYPE_CHECKING:
    # The inventory's models are built when it is first read, not at import (cold start).
    from fleet_shared.inventory import FleetInventory

SPOT_ACCESS = AccessEpisodes(
    source=FUNCTION_NAME,
    role="spot optimizer role",
    consequence="the account's spot capacity is not analysed, its spot interruption warnings "
    "are not recorded and no on-demand fallback is proposed or made, until the member role "
    "exists there and trusts the function's. One alert per episode; a resolution follows when "
    "the role works again.",
    recovered="The member role works again: the account's spot capacity is analysed and its "
    "interruption warnings recorded.",
    served="analysed",
)
"""Under `spot_optimizer/member-access/<account>`, indexed in
`spot_optimizer/member-access-open`."""

ASSUME_ROLE = "sts:AssumeRole"
NOT_TRIED = "not_tried"
"""The status of a member whose role this run did not assume: its episode stays as it was."""


def settle_spot_access(
    services: SpotServices,
    inventory: FleetInventory,
    targets: list[dict[str, Any]],
    *,
    deadline: Invocation,
    answered: Callable[[str], bool] | None = None,
) -> MemberAccessSettlement:
    """Settle the episodes of the accounts of `targets` (`{"account_id", "region", "status",
    "access_denied"?}`, the status `ok` or `partial` when the role worked) and of every other
    member of `inventory` as not tried (the inventory as read, never passed over: without it an
    open episode would be closed as its account's departure); each alert's claim is bound to
    `deadline`, the invocation. An account is reached only when `answered(account)`: by default
    a call of the member answered with success in this invocation."""
    tried = {target["account_id"] for target in targets}
    untried = [
        {"account_id": member.account_id, "region": member.regions[0], "status": NOT_TRIED}
        for member in inventory.members
        if member.account_id not in tried
    ]
    return settle_member_access(
        SPOT_ACCESS,
        services.state,
        services.alerts,
        [*targets, *untried],
        now=services.clock.now(),
        deadline=deadline,
        # Never asked: the optimizer saved no episode before their index existed.
        seconds_left=deadline.remaining_seconds,
        answered=answered or services.sessions.unanswered_endpoints.member_answered,
    )


def episode_pending(services: SpotServices, account_id: str) -> bool:
    """Whether the account's episode is open or holds a resolution not yet delivered (one read
    of the state table, whose errors propagate); a record that cannot be read is, so that its
    settlement names it."""
    try:
        saved = services.state.get_value(SPOT_ACCESS.episode_key(account_id), EPISODE_VALUE)
    except UnreadableStateValueError:
        return True
    if saved is None:
        return False
    return saved.get("open") is not False or saved.get("resolution") is not None
