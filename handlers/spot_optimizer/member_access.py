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

An account the fleet analysis has no target of (the stack file lists no spot node group of it
any more) whose episode is open gets an access check instead (`check_untargeted_access`): its
role assumed, one DescribeInstances and one DescribeSpotPriceHistory answered (the member calls
an episode can wait for: fleet_shared.access_episodes) resolve the episode, a refusal keeps it
open; no analysis nor warning of the account may come again, and the episode stayed open for
ever.

Every other member of the inventory is settled as not tried, so its episode stays as it was; an
open episode of an account the inventory no longer lists is closed, as the shared settlement
closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fleet_shared.access_episodes import (
    EPISODE_VALUE,
    SETTLE_ACCOUNT_SECONDS,
    AccessEpisodes,
    MemberAccessSettlement,
    open_episode_accounts,
    refused_by_iam,
    settle_member_access,
)
from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import FleetError, MemberAccessError, UnreadableStateValueError
from fleet_shared.handler import Invocation
from fleet_shared.member_calls import ASSUME_ROLE
from fleet_shared.observability import observability_for
from fleet_shared.sessions import HUB_CALL_SECONDS, MEMBER_CALL_SECONDS
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

NOT_TRIED = "not_tried"
"""The status of a member whose role this run did not assume: its episode stays as it was."""
ACCESS_CHECK_SECONDS = HUB_CALL_SECONDS + 2 * MEMBER_CALL_SECONDS + SETTLE_ACCOUNT_SECONDS
"""The time an access check needs left to start (77 s): its AssumeRole, its DescribeInstances and
its DescribeSpotPriceHistory each never answering, and its account's settlement after it
(`access_episodes.SETTLE_ACCOUNT_SECONDS`)."""
ACCESS_CHECK_PAGE_ITEMS = 5
"""The MaxResults of each call of an access check (DescribeInstances' least): the answer is the
evidence, not what it lists."""

logger = observability_for(FUNCTION_NAME).logger


def refused_call(error: Exception) -> str | None:
    """The member call IAM refused in `error` (the role's AssumeRole, or a call the role is not
    granted); None for any other failure, which tells nothing of the member's grants."""
    if isinstance(error, MemberAccessError):
        return ASSUME_ROLE if error.refused else None
    if isinstance(error, ClientError) and refused_by_iam(error):
        return error.operation_name
    return None


def check_untargeted_access(
    services: SpotServices,
    inventory: FleetInventory,
    targets: list[dict[str, Any]],
    *,
    deadline: Invocation,
) -> list[dict[str, Any]]:
    """An access check of each member of `inventory` that has no target in `targets` and an
    episode in the index of open episodes (one Query): in its first region, its role assumed and
    one page of DescribeInstances and of DescribeSpotPriceHistory asked, each check started only
    while `deadline` allows
    ACCESS_CHECK_SECONDS. Each `{"account_id", "region", "status": "ok"|"error"|"not_started",
    "error"?, "access_denied"?}`, settled as a target is. None when the index cannot be read:
    the settlement, which reads it too, reports it."""
    targeted = {target["account_id"] for target in targets}
    try:
        pending = open_episode_accounts(SPOT_ACCESS, services.state)
    except AWS_CALL_ERRORS as error:
        logger.warning("open access episodes not read", extra={"error": call_error_text(error)})
        return []
    checks = []
    for member in inventory.members:
        if member.account_id in targeted or member.account_id not in pending:
            continue
        check = {"account_id": member.account_id, "region": member.regions[0]}
        if not deadline.allows(ACCESS_CHECK_SECONDS):
            checks.append({**check, "status": "not_started"})
            continue
        try:
            ec2 = services.member_client("ec2", member.account_id, member.regions[0])
            ec2.describe_instances(MaxResults=ACCESS_CHECK_PAGE_ITEMS)
            ec2.describe_spot_price_history(MaxResults=ACCESS_CHECK_PAGE_ITEMS)
        except (FleetError, *AWS_CALL_ERRORS) as error:
            check.update(status="error", error=call_error_text(error))
            denied = refused_call(error)
            if denied is not None:
                check["access_denied"] = [denied]
            checks.append(check)
            continue
        checks.append({**check, "status": "ok"})
    return checks


def settle_spot_access(
    services: SpotServices,
    inventory: FleetInventory,
    targets: list[dict[str, Any]],
    *,
    deadline: Invocation,
) -> MemberAccessSettlement:
    """Settle the episodes of the accounts of `targets` (`{"account_id", "region", "status",
    "access_denied"?}`, the status `ok` or `partial` when the role worked) and of every other
    member of `inventory` as not tried (the inventory as read, never passed over: without it an
    open episode would be closed as its account's departure); each alert's claim is bound to
    `deadline`, the invocation. An account is reached only when a call of the member was
    answered with success in this invocation, and its episode closed once each call IAM refused
    it was (`UnansweredEndpoints.member_calls`)."""
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
        calls=services.sessions.unanswered_endpoints.member_calls,
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
