"""The change a scaler invocation is about to make, saved before UpdateNodegroupConfig.

An invocation that ends between the update and the change record (Lambda's deadline, a crash)
leaves the node group changed with no history entry, no cooldown and no notice: the retry of
the same request finds it at its target, and would report no change and announce nothing. So,
for a request with a `request_id`, the change record to be (with its notice) is saved first
under the node group's key, and that retry records the change from it, dated when the intent
was saved, and delivers its notice; until a change is recorded, the cooldown also counts from
the intent, and the intent's action is the node group's last change (a predictive hand-back
undoes a forecast's change recorded or not).
An intent is spent once a change is recorded at or after it (its own, or a later one), and
deleted when EKS refuses its update or never gets it (kept when the update's answer was lost:
the retry then records the change if it finds it made). A request without a `request_id` has no
retry to recognise.

The node group has one intent slot, and another request may come before that retry: Lambda
retries a minute or more later, and a scale-up (an HTTP `POST /scale`, the forecast's step up,
the morning's) waits for no cooldown. Its intent would replace the first one and its change
spend it: the first change, made, would never be recorded nor announced, and its retry would
make it again over the later change. So an invocation that finds, under the node group lock,
another request's unspent intent with the node group at its target records that change first,
as of when its intent was saved (so the history keeps the order of the changes), and delivers
its notice, keyed by that request as its own run's is: once. Should the state table refuse
that record, the node group fails without being changed, the intent kept. The first request's
retry then finds its change among the node group's last recorded ones and leaves the node group
as it is, delivering nothing new. A dry run records nothing. spot_optimizer's +1, under the same
lock, records such a change likewise: the reading and recording shared with it are
`fleet_shared.change_intents`.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.change_intents import (
    INTENT_NAME,
    NOTICE_FIELD,
    KeptIntent,
    Notice,
    kept_intent,
    record_found_change,
)
from fleet_shared.timestamps import iso_z
from handlers.eks_scaler.models import ScalerEvent, check_same_request
from handlers.eks_scaler.notices import notice_ttl_seconds
from handlers.eks_scaler.services import ScalerServices
from handlers.eks_scaler.sizing import Sizes


def save_intent(services: ScalerServices, key: str, record: dict[str, Any]) -> None:
    """Save `record` (a change record with its notice) as the change about to be made; kept as
    long as a `request_id` is remembered, since only a retry of that request uses it."""
    intent = {"prepared_at": iso_z(services.clock.now(), "microseconds"), "record": record}
    services.state.put_value(key, INTENT_NAME, intent, ttl_seconds=notice_ttl_seconds(services))


def other_requests_intent(intent: KeptIntent | None, event: ScalerEvent) -> KeptIntent | None:
    """The node group's last intent (`fleet_shared.change_intents.kept_intent`), if it is another
    request's than `event`'s: a change was made then unless its update failed, so the cooldown
    counts from it too, and it is the last change when the change itself was not recorded. The
    request's own intent does not count: its retry finds its change made (nothing to do), or not
    made (to be made now)."""
    if intent is None or _is_this_requests(intent, event):
        return None
    return intent


def this_requests_intent(intent: KeptIntent | None, event: ScalerEvent) -> KeptIntent | None:
    """The node group's last intent (`fleet_shared.change_intents.kept_intent`), if it is
    `event`'s own (its `request_id`)."""
    if intent is None or not _is_this_requests(intent, event):
        return None
    return intent


def _is_this_requests(intent: KeptIntent, event: ScalerEvent) -> bool:
    """Whether `event`'s request saved `intent`; raises EventValidationError naming
    `request_id` when a request that asked something else saved it under that id
    (`check_same_request`)."""
    if event.request_id is None or intent.record.get("request_id") != event.request_id:
        return False
    check_same_request(intent.record, event)
    return True


def drop_intent(services: ScalerServices, key: str, name: str) -> None:
    """Delete the intent of a change whose update failed. Should that fail too, the intent
    stays, harmless unless EKS took the update after all, and then true."""
    try:
        services.state.delete_value(key, INTENT_NAME)
    except (ClientError, BotoCoreError) as error:
        services.logger.warning(
            "intent of a failed change not deleted", extra={"nodegroup": name, "error": str(error)}
        )


def record_unrecorded_change(
    event: ScalerEvent, name: str, services: ScalerServices, key: str, current: Sizes
) -> Notice | None:
    """When this request's intent is not spent and the node group is at its target (`current`),
    the change was made by an invocation that ended before recording it: record it now and
    return its notice (also when the state table refuses the record: the notice is still owed).
    None otherwise."""
    intent = this_requests_intent(kept_intent(services.state, key), event)
    if intent is None or intent.desired_size != current.desired_size:
        return None
    latest = services.state.latest_change(key)
    if intent.spent_by(latest.changed_at if latest is not None else None):
        return None
    try:
        return record_found_change(
            services.state,
            key,
            intent,
            current_desired=current.desired_size,
            recorded_by={"recorded_by_retry": True},
            history_ttl_seconds=_history_ttl_seconds(services),
        )
    except (ClientError, BotoCoreError) as error:
        services.logger.warning(
            "unrecorded change still not recorded", extra={"nodegroup": name, "error": str(error)}
        )
    notice: Notice = intent.record[NOTICE_FIELD]
    return notice


def record_other_requests_change(
    event: ScalerEvent, services: ScalerServices, key: str, *, unspent: KeptIntent, current: Sizes
) -> Notice | None:
    """When the node group is at the target of another request's `unspent` intent (no change
    recorded at or after it), that request made its change and its invocation ended before
    recording it: record it now, as of when its intent was saved, and return its notice (keyed
    by that request). None otherwise: its update was not made (its retry makes it). A refusal of
    the state table is raised: this request must not then replace the intent, the one record of
    that change."""
    return record_found_change(
        services.state,
        key,
        unspent,
        current_desired=current.desired_size,
        recorded_by={"recorded_by_request": event.request_id},
        history_ttl_seconds=_history_ttl_seconds(services),
    )


def _history_ttl_seconds(services: ScalerServices) -> int:
    return services.environment.scaler_history_ttl_days * 86400
