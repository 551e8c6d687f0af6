"""handle_interruption: a spot instance of a member account got its two-minute warning.

1. Claim the instance's warning as an idempotent request (EventBridge delivers at least once, and
   the platform retries a failed invocation). A repeat reuses the stored outcome: nothing is
   described, recorded or applied twice. A claim the state table refuses fails the invocation.
   The claim lasts HANDLING_SECONDS and is renewed before each later step, so a copy of the
   warning fails while an invocation handles it, and the platform's first retry of one that
   died early finds it free; an invocation whose claim a copy took over meanwhile stops.
2. Describe the instance in the member account (assumed role): type, AZ, and its node group from
   the `eks:cluster-name` / `eks:nodegroup-name` tags. Nothing is written when this fails (the
   claim is released). A member account that refuses the member role (AccessDenied on
   AssumeRole) is that account's error, which no retry mends: the warning's result is an error
   and the account's access episode (member_access.py, shared with the fleet analysis) is
   settled as denied, so its alert goes out when the refusal is new and never again while it
   lasts; the invocation fails only when SNS did not take that alert (its retry sends it). It
   failed for every refusal, and Lambda's two retries of the rule's asynchronous invocation met
   the same refusal, then the warning went to the function's dead-letter queue, announced to no
   one. An instance described while the account's episode is open settles it as reached, once
   the warning is recorded and announced (no settlement delays either): its resolution goes out.
3. Record the interruption under the type/AZ key and the node group's interruption key (keys.py;
   never the scaler's node group key, so the scaler's cooldown does not start), and prepare a
   warning alert. When the state table refuses a record the invocation fails (the claim is
   released), so the platform retries the warning; the retry adds only the missing records. A
   record of those keys whose time or data cannot be read is skipped, logged and counted
   (interruption_history), so it cannot fail the warnings of its node group or type/AZ.
4. When the node group had more than SPOT_INTERRUPTION_THRESHOLD interruptions in the last hour
   (and the warning was sent within the hour: a late one's burst may be over), propose a
   temporary +1 of one of the cluster's on-demand node groups (the first by name that no
   autoscaler manages and a cluster schedule sizes, else the first no autoscaler manages: see
   `_fallback_target`; within both its maxSize in EKS
   and the stack file's max_size from the fleet inventory, as the scaler), unless a hold
   (fleet_shared.node_group_holds) freezes that node group or its cluster: the fallback is then
   `held` and says why. With SPOT_AUTO_APPLY=true and no dry run, when the cluster's schedule sizes
   that node group and eks_scaler, which runs that schedule, is on in the stack (no schedule would
   take the +1 back otherwise), it is applied under the SAME node
   group lock as the scaler (fleet_shared.node_group_locks), recorded under the node group's state
   key as the scaler does, and announced at info level; at most once per hour per on-demand node
   group. The lease is renewed just before the change, which is not made when another owner took the
   lock while EKS was read, and the hold read again (placing one takes no lock). An eks_scaler
   change found made but not recorded (its answer lost: `fleet_shared.change_intents`) is then
   recorded, its notice delivered with the warning's alerts, before the +1, whose record would
   spend its intent; when the state table refuses, the fallback fails unchanged. A +1 that failed
   after an attempt whose answer was lost (EKS may have made it, whatever botocore's later attempts
   met) counts as made when the node group has the new size (else it is an error, the hour's +1
   taken all the same). The +1 is temporary in that the cluster's next scheduled scale-down or
   restore resets the sizes (the scaler's scale-down saves the size from before the +1s for the next
   restore: the record says `temporary`). A fallback that fails is reported in the result; the
   interruption stays recorded. Inside one of the cluster's maintenance windows (its calendar in the
   fleet inventory) nothing is proposed or changed: the result says `maintenance_window` and why.
5. The outcome (result and alerts) is stored as the request's result, then the alerts are
   delivered with `deliver_all`: each at most once, its claim completed only after SNS took it.
   When SNS (or the state table, for a delivery claim) fails the invocation fails, and the
   retry, a repeat, delivers only what did not go out; a repeat with nothing left to deliver
   answers `duplicate`. When the state table refuses the outcome, or a copy of the warning took
   the claim over meanwhile, what was done is still announced and the result says so
   (`idempotency_record`).

Recording and alerting happen in dry run too: they observe, they change no infrastructure. A
warning handled in dry run has a claim and an alert of its own (its alert says it was a dry run),
so its outcome never answers the same warning handled for real: the interruption it recorded is
not recorded twice, and the real one's fallback and alert still follow.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as EndpointUnreachableError

from fleet_shared.alert_delivery import deliver_all
from fleet_shared.alerts import Alert, Severity, alert_id
from fleet_shared.aws_answers import (
    AWS_CALL_ERRORS,
    UnreadableAnswerError,
    answer_field,
    call_error_text,
)
from fleet_shared.change_intents import (
    NOTICE_DELIVERERS,
    Notice,
    record_unspent_intents_change,
)
from fleet_shared.exceptions import (
    AnswerLostError,
    FleetError,
    InventoryUnreadableError,
    LockNotAcquiredError,
    MemberAccessError,
    RequestInProgressError,
)
from fleet_shared.field_types import (
    EKS_CLUSTER_NAME_LONGEST,
    EKS_NODE_GROUP_NAME_LONGEST,
    eks_name_problem,
)
from fleet_shared.handler import Invocation
from fleet_shared.member_calls import ASSUME_ROLE, call_name
from fleet_shared.node_group_autoscalers import (
    autoscaler_of_described,
    cluster_tags,
    declared_autoscaler,
)
from fleet_shared.node_group_holds import Hold, hold_in_force
from fleet_shared.node_group_locks import (
    NODE_GROUP_LOCK_LEASE_SECONDS,
    SPOT_FALLBACK_ACTION,
    TEMPORARY_CHANGE_FIELD,
    node_group_key,
    node_group_lock_name,
    node_group_resource,
)
from fleet_shared.node_group_updates import update_desired_size
from fleet_shared.observability import observability_for
from fleet_shared.state_table import ClaimDeadline, HeldLock, IdempotentRequest
from fleet_shared.target_results import OK
from fleet_shared.timestamps import iso_z
from fleet_shared.validation_errors import cut_echo
from handlers.spot_optimizer.exceptions import (
    InterruptionInProgressError,
    InterruptionNotRecordedError,
    NoticesNotDeliveredError,
)
from handlers.spot_optimizer.interruption_history import InterruptionHistories
from handlers.spot_optimizer.keys import (
    fallback_claim_key,
    instance_claim_key,
    node_group_interruptions_key,
    zone_interruptions_key,
)
from handlers.spot_optimizer.member_access import episode_pending, settle_spot_access
from handlers.spot_optimizer.models import InterruptionEvent
from handlers.spot_optimizer.node_groups import described_node_groups
from handlers.spot_optimizer.services import FUNCTION_NAME, SpotServices

if TYPE_CHECKING:
    # The inventory's models are built when it is first read, not at import (cold start).
    from fleet_shared.inventory import Cluster

logger = observability_for(FUNCTION_NAME).logger

CLUSTER_TAG = "eks:cluster-name"
NODE_GROUP_TAG = "eks:nodegroup-name"
INSTANCE_NOT_FOUND = "InvalidInstanceID.NotFound"
"""DescribeInstances' answer for an instance the account does not have: an error result, not
retried (a warning about an instance that does not exist will not exist on a retry either)."""
THRESHOLD_WINDOW = timedelta(hours=1)
CLAIM_TTL_SECONDS = 7 * 86400
HANDLING_SECONDS = 45
"""How long a claimed warning blocks a concurrent copy, renewed before each step of its handling
(recording, the fallback): shorter than the minute Lambda waits before retrying a failed event,
so the claim of an invocation that died early (out of memory, killed) is free for the first
retry, where one as long as the function's timeout sent the warning to the dead-letter queue."""
INTERRUPTION_SCOPE = "spot_interruption"
"""The idempotency scope of interruption warnings in the state table."""
DRY_RUN_INTERRUPTION_SCOPE = "spot_interruption_dry_run"
"""The scope of warnings handled in dry run: apart, so that a dry run's outcome (its +1 only
proposed, its alert sent) never answers the same warning handled for real, a test run with a
real instance id or a stack leaving dry run between a delivery and its retry."""
FALLBACK_CLAIM_SECONDS = 3600
SCALER_FUNCTION = "eks_scaler"
"""The function whose cluster schedules take a +1 back; a stack may switch it off."""
MEMBER_ACCESS = "member_access"
"""What a warning's first handling learnt of its account's member role, `REFUSED` or `WORKED`:
taken from its outcome before it is stored, since a repeat assumes no role."""
REFUSED = "refused"
WORKED = "worked"
HEADER_FIELDS = (
    "action",
    "account_id",
    "region",
    "instance_id",
    "dry_run",
    "instance_type",
    "availability_zone",
    "cluster",
    "nodegroup",
)


def handle_interruption(
    event: InterruptionEvent,
    services: SpotServices,
    *,
    dry_run: bool,
    owner: str,
    deadline: Invocation,
) -> dict[str, Any]:
    """The result: the instance, its node group, and the fallback proposal or change, if any.
    The notices' delivery claims are bound to `deadline` (the invocation).

    Raises `AlertNotDeliveredError` when SNS did not take an alert (the access alert of a
    member refusing the role included), `NoticesNotDeliveredError`
    when the state table did not take an alert's delivery claim, `InterruptionNotRecordedError`
    when it did not take the warning's claim or an interruption record, and
    `InterruptionInProgressError` while another invocation handles the same warning.
    """
    instance_id = event.detail.instance_id
    key = instance_claim_key(event.account, event.region, instance_id)
    try:
        with ExitStack() as claimed:
            try:
                request = claimed.enter_context(
                    services.state.idempotent(
                        DRY_RUN_INTERRUPTION_SCOPE if dry_run else INTERRUPTION_SCOPE,
                        key,
                        CLAIM_TTL_SECONDS,
                        HANDLING_SECONDS,
                        deadline=deadline,
                    )
                )
            except (ClientError, BotoCoreError) as error:
                # Nothing is done yet; an error result would drop the warning unannounced.
                raise InterruptionNotRecordedError(
                    instance_id, f"not claimed: {call_error_text(error)}"
                ) from error
            stored = request.result
            access = None
            if stored is None:
                stored = _record(
                    event, services, request, dry_run=dry_run, owner=owner, deadline=deadline
                )
                access = stored.pop(MEMBER_ACCESS, None)
                if not _unrecorded(stored):
                    stored = _completed(request, stored)
    except RequestInProgressError as error:
        raise InterruptionInProgressError(instance_id) from error
    if _unrecorded(stored):
        result = dict(stored["result"])
        return {**result, **_settled_access(services, result, access, deadline)}
    notices = [
        (notice["key"], Alert.model_validate(notice["alert"])) for notice in stored["notices"]
    ]
    try:
        sent = deliver_all(
            services.state,
            services.alerts,
            notices,
            CLAIM_TTL_SECONDS,
            deadline=deadline,
            also_claimed_by=NOTICE_DELIVERERS,
        )
    except (ClientError, BotoCoreError) as error:
        # An error result would not be retried, and what was done would never be announced.
        raise NoticesNotDeliveredError(call_error_text(error)) from error
    result: dict[str, Any] = stored["result"]
    if request.is_repeat and not sent:
        header = {name: result[name] for name in HEADER_FIELDS if name in result}
        return {**header, "status": "duplicate", "reason": "this warning was already handled"}
    return {
        **result,
        "alerts_sent": len(sent),
        **_settled_access(services, result, access, deadline),
    }


def _unrecorded(outcome: dict[str, Any]) -> bool:
    """Whether `outcome` is a warning's error with nothing recorded or to announce: it is not
    stored (the claim is released), so a redelivery handles the warning anew."""
    return outcome["result"]["status"] == "error" and not outcome["notices"]


def _completed(request: IdempotentRequest, stored: dict[str, Any]) -> dict[str, Any]:
    """Store the outcome of a handled warning. When the state table refuses, or a copy of the
    warning took the claim over while the fallback outlasted it, what was done stands and is
    still announced, and the result says the outcome was not stored: a redelivery finds the
    records made, the hour's +1 taken (`already_applied`) and the alerts sent, so nothing is done
    or announced twice; the copy's outcome has no +1 made here, whose notice only this
    invocation can send."""
    try:
        request.complete(stored)
    except (ClientError, BotoCoreError, RequestInProgressError) as error:
        logger.warning("interruption outcome not stored", extra={"error": call_error_text(error)})
        not_stored = f"not stored: {call_error_text(error)}"
        return {**stored, "result": {**stored["result"], "idempotency_record": not_stored}}
    return stored


def _record(
    event: InterruptionEvent,
    services: SpotServices,
    claim: IdempotentRequest,
    *,
    dry_run: bool,
    owner: str,
    deadline: ClaimDeadline | None,
) -> dict[str, Any]:
    """Describe, record and (past the threshold) fall back: `{"result", "notices"}`, where each
    notice is `{"key", "alert"}` for `deliver_all`. The warning's `claim` is renewed before the
    recording and before the fallback, whose node group lock ends no later than `deadline` (the
    invocation)."""
    account, region = event.account, event.region
    instance_id = event.detail.instance_id
    header: dict[str, Any] = {
        "action": "handle_interruption",
        "account_id": account,
        "region": region,
        "instance_id": instance_id,
        "dry_run": dry_run,
    }
    try:
        ec2 = services.member_client("ec2", account, region)
        reservations = answer_field(
            ec2.describe_instances(InstanceIds=[instance_id]),
            f"DescribeInstances of {instance_id}",
            "Reservations",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != INSTANCE_NOT_FOUND:
            # An error result is not retried: the warning would be lost unrecorded and
            # unannounced over a throttle or a member role that failed for a moment.
            raise InterruptionNotRecordedError(
                instance_id, f"not described: {call_error_text(error)}"
            ) from error
        reservations = []
    except MemberAccessError as error:
        if error.refused:
            failed = {**header, "status": "error", "error": call_error_text(error)}
            return {"result": failed, "notices": [], MEMBER_ACCESS: REFUSED}
        raise InterruptionNotRecordedError(
            instance_id, f"not described: {call_error_text(error)}"
        ) from error
    except AWS_CALL_ERRORS as error:
        raise InterruptionNotRecordedError(
            instance_id, f"not described: {call_error_text(error)}"
        ) from error
    try:
        described = _described_instance(reservations, f"DescribeInstances of {instance_id}")
    except UnreadableAnswerError as error:
        raise InterruptionNotRecordedError(
            instance_id, f"not described: {cut_echo(str(error))}"
        ) from error
    if described is None:
        error = f"instance {instance_id} not found"
        failed = {**header, "status": "error", "error": error}
        return {"result": failed, "notices": [], MEMBER_ACCESS: WORKED}
    instance_type, zone, tags = described
    cluster, group = tags.get(CLUSTER_TAG), tags.get(NODE_GROUP_TAG)
    tag_problem = _node_group_tag_problem(cluster, group)
    if tag_problem is not None:
        # Anyone who may tag instances in the member account sets these: a value that is no EKS
        # name would reach EKS, the state table's keys and the alerts whole.
        cluster, group = None, None
    header.update(
        instance_type=instance_type,
        availability_zone=zone,
        cluster=cluster,
        nodegroup=group,
    )

    _renew_claim(claim, instance_id)
    now = services.clock.now()
    record = {
        "instance_id": instance_id,
        "instance_type": instance_type,
        "availability_zone": zone,
        "cluster": cluster,
        "nodegroup": group,
        "instance_action": event.detail.instance_action,
        "warned_at": iso_z(event.time),
    }
    histories = InterruptionHistories(services.state)
    try:
        recent = _record_interruption(services, histories, account, region, record, now=now)
    except (ClientError, BotoCoreError) as error:
        raise InterruptionNotRecordedError(instance_id, call_error_text(error)) from error
    header["interruptions_last_hour"] = recent
    if histories.unreadable_records:
        header["unreadable_interruption_records"] = histories.unreadable_records
    # A dry run's alert is its own (delivery claim and id): it must not stand for the real one.
    instance_ref = f"{account}/{region}/{instance_id}{'/dry-run' if dry_run else ''}"
    notices = [_notice(f"{FUNCTION_NAME}/interruption/{instance_ref}", _alert(services, header))]

    threshold = services.environment.spot_interruption_threshold
    result: dict[str, Any] = {**header, "status": "recorded"}
    late = now - event.time > THRESHOLD_WINDOW
    if cluster and group and recent > threshold and late:
        # Handled hours after EC2 sent it (Lambda's retries, a redrive from the dead-letter
        # queue): its instance is long gone, and the burst the count shows may be long over.
        result["reason"] = (
            f"the warning was sent at {iso_z(event.time)}, more than an hour before it was "
            "handled: no on-demand fallback for a burst that may be over"
        )
    elif cluster and group and recent > threshold:
        _renew_claim(claim, instance_id)
        # `notices` gets the notice of an eks_scaler change the fallback found made and
        # recorded, whatever happens to the fallback after.
        try:
            fallback, fallback_alert = _on_demand_fallback(
                services,
                account=account,
                region=region,
                cluster=cluster,
                spot_group=group,
                recent=recent,
                dry_run=dry_run,
                owner=owner,
                notices_found=notices,
                deadline=deadline,
            )
        except (FleetError, InventoryUnreadableError, *AWS_CALL_ERRORS) as error:
            # Reported rather than raised: the interruption is recorded by now, and failing the
            # request would record it again on the retry.
            logger.warning(
                "on-demand fallback failed",
                extra={
                    "cluster": cluster,
                    "spot_nodegroup": group,
                    "error": call_error_text(error),
                },
            )
            fallback, fallback_alert = {"status": "error", "error": call_error_text(error)}, None
        result["fallback"] = fallback
        if fallback_alert is not None:
            notices.append(_notice(f"{FUNCTION_NAME}/fallback/{fallback_alert.id}", fallback_alert))
    elif tag_problem is not None:
        result["reason"] = f"{tag_problem}; only the type/AZ is recorded"
    elif not (cluster and group):
        result["reason"] = "the instance has no eks node group tags; only the type/AZ is recorded"
    return {"result": result, "notices": notices, MEMBER_ACCESS: WORKED}


def _settled_access(
    services: SpotServices, result: dict[str, Any], access: str | None, deadline: Invocation
) -> dict[str, Any]:
    """What the result of a warning (`result`) adds once its account's access episode is settled
    by what its first handling learnt of the role (`access`): after its alerts went out, so
    that no settlement delays recording or announcing the warning."""
    if access == REFUSED:
        return _refused_by_the_member(services, result, deadline)
    if access == WORKED:
        regained = _regained_access(services, result["account_id"], result["region"], deadline)
        return {} if regained is None else {"access_alerts": regained}
    return {}


def _refused_by_the_member(
    services: SpotServices, result: dict[str, Any], deadline: Invocation
) -> dict[str, Any]:
    """Settle the access episode of the account of a warning whose AssumeRole it refused
    (`result`) as denied: its alert goes out when the refusal is new. Returns what the result
    adds: the settlement's summary (`access_alerts`), or the `reason` no episode is kept for an
    account the inventory does not list (the event's `account` is anyone's text: a warning
    invoked by hand, or one redriven after the account left the fleet, would open an episode
    per account named, and the next analysis would close it as the account's departure). Raises
    AlertNotDeliveredError when SNS did not take the alert (the retry meets the refusal again
    and sends it), InventoryUnreadableError when S3 did not serve the inventory."""
    account = result["account_id"]
    inventory = services.inventory()
    if inventory.member(account) is None:
        return {"reason": f"account {account} is not a member of the fleet inventory"}
    denied = {
        "account_id": account,
        "region": result["region"],
        "status": "error",
        "access_denied": [ASSUME_ROLE],
    }
    settlement = settle_spot_access(services, inventory, [denied], deadline=deadline)
    settlement.raise_undelivered()
    return {"access_alerts": settlement.summary()}


def _regained_access(
    services: SpotServices, account: str, region: str, deadline: Invocation
) -> dict[str, Any] | None:
    """Settle the account's access episode as reached, its role having worked, when the episode
    is open or its resolution not yet out; the settlement's summary, None when there was none
    to settle. Raises nothing: a resolution not sent stays in the episode for the next
    settlement (the fleet analysis's, or the account's next warning), where failing the
    invocation would have the platform retry a warning handled, a repeat that settles nothing."""
    try:
        if not episode_pending(services, account):
            return None
        reached = {"account_id": account, "region": region, "status": OK}
        # Its DescribeInstances was answered, "not found" included: EC2 refuses a call the role
        # is not granted before it looks for the instance.
        services.sessions.unanswered_endpoints.member_calls.note_answered(
            account, call_name("ec2", "DescribeInstances")
        )
        settlement = settle_spot_access(
            services, services.inventory(), [reached], deadline=deadline
        )
    except (FleetError, InventoryUnreadableError, *AWS_CALL_ERRORS) as error:
        logger.warning("access episode not settled", extra={"error": call_error_text(error)})
        return {"errors": [{"account_id": account, "error": call_error_text(error)}]}
    summary = settlement.summary()
    if settlement.undelivered:
        summary["undelivered"] = [call_error_text(error) for error in settlement.undelivered]
    return summary


def _node_group_tag_problem(cluster: str | None, group: str | None) -> str | None:
    """Why the instance's node group tags name no EKS cluster and node group (a tag is there
    but no EKS name); None when they do, or are absent."""
    for tag, value, longest in (
        (CLUSTER_TAG, cluster, EKS_CLUSTER_NAME_LONGEST),
        (NODE_GROUP_TAG, group, EKS_NODE_GROUP_NAME_LONGEST),
    ):
        problem = None if value is None else eks_name_problem(value, longest)
        if problem is not None:
            return f"tag {tag} {problem}"
    return None


def _described_instance(
    reservations: list[Any], call: str
) -> tuple[str, str, dict[str, str]] | None:
    """The type, availability zone and tags of the instance DescribeInstances (`call`) answered
    in `reservations`; None when it lists none. Raises UnreadableAnswerError for a reservation,
    instance or tag without a field EC2 sends with each (a well-formed page EC2's parser reads
    without it): the warning then fails as for an unread answer, and is retried."""
    instances = [
        i for reservation in reservations for i in answer_field(reservation, call, "Instances")
    ]
    if not instances:
        return None
    instance = instances[0]
    tags = {
        answer_field(tag, call, "Key"): answer_field(tag, call, "Value")
        for tag in instance.get("Tags", [])
    }
    instance_type = answer_field(instance, call, "InstanceType")
    zone = answer_field(instance, call, "Placement", "AvailabilityZone")
    return instance_type, zone, tags


def _renew_claim(claim: IdempotentRequest, instance_id: str) -> None:
    """Renew the warning's claim before the next step. When a step outlasted the claim and a
    copy of the warning took it over, the copy does the work and this invocation stops, failing
    (its retry finds the copy's outcome)."""
    try:
        renewed = claim.renew()
    except (ClientError, BotoCoreError) as error:
        raise InterruptionNotRecordedError(
            instance_id, f"claim not renewed: {call_error_text(error)}"
        ) from error
    if not renewed:
        raise InterruptionInProgressError(instance_id)


def _record_interruption(
    services: SpotServices,
    histories: InterruptionHistories,
    account: str,
    region: str,
    record: dict[str, Any],
    *,
    now: datetime,
) -> int:
    """Record the interruption under its type/AZ key and, when the instance belongs to a node
    group, under the node group's key: that node group's interruptions warned of in the hour up
    to `now` (0 without a node group), an unreadable record among them counted
    (interruption_history). Read again after recording, so that warnings of the node group
    handled at the same time each count the others recorded by then."""
    zone_key = zone_interruptions_key(
        account, region, record["instance_type"], record["availability_zone"]
    )
    _record_once(services, histories, zone_key, record)
    cluster, group = record["cluster"], record["nodegroup"]
    if not (cluster and group):
        return 0
    group_key = node_group_interruptions_key(account, region, cluster, group)
    _record_once(services, histories, group_key, record)
    since = now - THRESHOLD_WINDOW
    return histories.read(group_key, since).warned_since(since)


def _record_once(
    services: SpotServices, histories: InterruptionHistories, key: str, record: dict[str, Any]
) -> None:
    """Add the interruption to `key`'s history unless an earlier attempt at this warning did
    (one that failed before its claim was completed, and was released for the retry)."""
    since = services.clock.now() - timedelta(seconds=CLAIM_TTL_SECONDS)
    for recorded in histories.read(key, since).records:
        if recorded.get("instance_id") == record["instance_id"]:
            return
    ttl = services.environment.spot_history_ttl_days * 86400
    services.state.record_change(key, record, ttl)


def _notice(key: str, alert: Alert) -> dict[str, Any]:
    return {"key": key, "alert": alert.model_dump(mode="json")}


def _alert(services: SpotServices, header: dict[str, Any]) -> Alert:
    account, region = header["account_id"], header["region"]
    if header["cluster"] and header["nodegroup"]:
        resource = node_group_resource(account, region, header["cluster"], header["nodegroup"])
    else:
        resource = f"{account}/{region}/{header['instance_id']}"
    title = (
        f"Spot interruption: {header['instance_type']} in {header['availability_zone']}"
        f" ({header['cluster'] or 'no cluster'}/{header['nodegroup'] or 'no node group'})"
    )
    detail = (
        f"Instance {header['instance_id']} ({header['instance_type']}, "
        f"{header['availability_zone']}) in {account}/{region} received a spot interruption "
        f"warning; {header['interruptions_last_hour']} interruption(s) of its node group in the "
        "last hour."
    )
    unreadable = header.get("unreadable_interruption_records")
    if unreadable:
        detail += (
            f" {unreadable} interruption record(s) of its type/AZ or node group in the state "
            "table could not be read and were skipped (named in the log); those of the node "
            "group in the last hour are counted above."
        )
    handled_as = ""
    if header["dry_run"]:
        detail += " Handled in dry run: no on-demand fallback is applied."
        handled_as = " dry-run"
    return Alert.create(
        severity=Severity.WARNING,
        source=FUNCTION_NAME,
        title=title,
        detail=detail,
        resource=resource,
        account_id=account,
        region=region,
        timestamp=services.clock.now(),
        # One alert per instance: the router must not fold two interruptions into one, nor the
        # real warning into its dry run's.
        id=alert_id(FUNCTION_NAME, resource, f"{title} {header['instance_id']}{handled_as}"),
    )


def _on_demand_fallback(
    services: SpotServices,
    *,
    account: str,
    region: str,
    cluster: str,
    spot_group: str,
    recent: int,
    dry_run: bool,
    owner: str,
    notices_found: list[Notice],
    deadline: ClaimDeadline | None,
) -> tuple[dict[str, Any], Alert | None]:
    """Find the on-demand sibling and propose or apply its +1: the fallback's result, and the
    notice of an applied +1 (`notices_found` gets those of the changes `_apply` found). The node
    group lock's lease ends no later than `deadline`: Lambda's retry of an invocation it killed
    holding it, a minute after, finds it free, where the full lease left the group `locked`."""
    reason = (
        f"{recent} interruptions of {spot_group} in the last hour exceed the threshold "
        f"{services.environment.spot_interruption_threshold}"
    )
    listed, scaler_off = _listed_cluster(services, account, region, cluster)
    window = _maintenance_window(services, listed, cluster)
    if window is not None:
        return {"status": "maintenance_window", "reason": f"{reason}; {window}"}, None
    eks = services.member_client("eks", account, region)
    target = _fallback_target(
        services,
        eks,
        account=account,
        region=region,
        cluster=cluster,
        listed=listed,
        scaler_off=scaler_off,
    )
    passed_over = {"passed_over": list(target.passed_over)} if target.passed_over else {}
    if target.group is None:
        if any("autoscaler" not in entry for entry in target.passed_over):
            why = "; ".join(
                f"{entry['nodegroup']} {entry['reason']}" for entry in target.passed_over
            )
            return {
                "status": "no_on_demand_group",
                "reason": f"{reason}; no ON_DEMAND group of {cluster} can take a +1: {why}; "
                "nothing was proposed or changed",
                **passed_over,
            }, None
        if target.passed_over:
            managed = "; ".join(
                f"{entry['nodegroup']} {entry['reason']}" for entry in target.passed_over
            )
            why = (
                f"{reason}; every ON_DEMAND group of {cluster} is managed by an autoscaler, which "
                f"sizes it from pending pods (a +1 would fight it or be undone): {managed}; "
                "nothing was proposed or changed"
            )
            return {"status": "autoscaler_managed", "reason": why, **passed_over}, None
        return {
            "status": "no_on_demand_group",
            "reason": f"{reason}; {cluster} has no ON_DEMAND group",
        }, None
    name = target.group["nodegroupName"]
    hold = hold_in_force(
        services.state, account, region, cluster, name, now=services.clock.now(), dry_run=dry_run
    )
    if hold is not None:
        return {**_held(name, reason, hold), **passed_over}, None
    stack_max_size = _stack_max_size(listed, name)
    proposal = _plan(target.group, stack_max_size)
    base = {"nodegroup": name, "reason": reason, **proposal, **passed_over}
    if proposal["new"] is None:
        return {**base, "status": "at_max"}, None
    if dry_run or not services.environment.spot_auto_apply:
        why = "dry run" if dry_run else "SPOT_AUTO_APPLY is false"
        return {**base, "status": "proposed", "note": f"{why}: nothing was changed"}, None
    if not target.scheduled:
        note = (
            f"{_not_reset_by_the_schedule(cluster, name, scaler_off=scaler_off)}, so a +1 "
            "would stay for good; nothing was changed"
        )
        return {**base, "status": "proposed", "note": note}, None
    lock = node_group_lock_name(account, region, cluster, name)
    try:
        with services.state.lock(
            lock, owner, NODE_GROUP_LOCK_LEASE_SECONDS, deadline=deadline
        ) as held:
            applied, notice = _apply(
                services,
                eks,
                account=account,
                region=region,
                cluster=cluster,
                name=name,
                spot_group=spot_group,
                reason=reason,
                stack_max_size=stack_max_size,
                held=held,
                notices_found=notices_found,
            )
            return {**applied, **passed_over}, notice
    except LockNotAcquiredError as error:
        return {**base, "status": "locked", "note": str(error)}, None


def _held(name: str, reason: str, hold: Hold) -> dict[str, Any]:
    """The fallback's result when `hold` freezes the on-demand group `name`."""
    return {
        "nodegroup": name,
        "status": "held",
        "reason": f"{reason}; skipped: {hold.explanation()}",
        "hold": hold.as_record(),
    }


def _listed_cluster(
    services: SpotServices, account: str, region: str, cluster: str
) -> tuple[Cluster | None, bool]:
    """The cluster as the fleet inventory lists it (None when it does not, or the function has
    no inventory: DATA_BUCKET_NAME unset), and whether the stack switched eks_scaler off, whose
    schedules run the clusters' scale-downs and restores. An inventory that cannot be read or is
    invalid raises InventoryUnreadableError or InventoryError: the fallback then fails rather
    than change a cluster whose calendar and schedule are unknown."""
    if services.environment.data_bucket_name is None:
        return None, False
    inventory = services.inventory()
    return (
        inventory.find_cluster(account, region, cluster),
        SCALER_FUNCTION not in inventory.functions,
    )


def _reset_by_the_schedule(listed: Cluster | None, name: str, *, scaler_off: bool) -> bool:
    """Whether the cluster's schedule sizes node group `name` (its scale-down and morning
    restore name the groups of `off_hours_desired`, and leave out the excluded ones) and runs
    (not with eks_scaler switched off: `scaler_off`), so that it takes a +1 back: a +1 no
    schedule resets would stay, and each hour of interruptions after would add one more."""
    schedule = listed.schedule if listed is not None else None
    return (
        not scaler_off
        and schedule is not None
        and name in schedule.off_hours_desired
        and name not in schedule.exclude_node_groups
    )


def _maintenance_window(services: SpotServices, listed: Cluster | None, cluster: str) -> str | None:
    """The maintenance window of the cluster's calendar (`listed`: the cluster in the inventory)
    that is on now, described; None outside them, and without a calendar known."""
    calendar = listed.calendar if listed is not None else None
    if calendar is None:
        return None
    window = calendar.maintenance_window_at(services.clock.now())
    if window is None:
        return None
    return (
        f"{cluster} is in its maintenance window {window.start:%Y-%m-%dT%H:%M} to "
        f"{window.end:%Y-%m-%dT%H:%M} ({calendar.time_zone}): {window.reason}; nothing was changed"
    )


@dataclass(frozen=True)
class FallbackTarget:
    """The on-demand node group the fallback's +1 goes to, and the ones it passed over."""

    group: dict[str, Any] | None
    """Its description (DescribeNodegroup's `nodegroup`); None when there is none to take it."""
    scheduled: bool
    """Whether a cluster schedule resets it (only then is the +1 applied)."""
    passed_over: tuple[dict[str, Any], ...]
    """`{"nodegroup", "reason"}` of each ON_DEMAND group not taken, in name order."""


def _fallback_target(
    services: SpotServices,
    eks: Any,
    *,
    account: str,
    region: str,
    cluster: str,
    listed: Cluster | None,
    scaler_off: bool,
) -> FallbackTarget:
    """The cluster's first ON_DEMAND node group by name that no autoscaler manages and that a
    cluster schedule resets; without one, the first that no autoscaler manages (proposed only:
    nothing would take its +1 back). An autoscaler-managed group is never taken: its autoscaler
    sets its size from pending pods, as eks_scaler leaves it alone (the rule, Cluster Autoscaler
    counting only where the stack file declares it, is `fleet_shared.node_group_autoscalers`).
    Nor is one the stack file does not declare (where the function has an inventory): eks_scaler
    changes declared node groups only, and such a group has no floor or max_size of the stack's."""
    declared = declared_autoscaler(listed)
    inventory_known = services.environment.data_bucket_name is not None
    autoscaling = services.member_client("autoscaling", account, region)
    tags_of_cluster: dict[str, str] | None = None
    first_unscheduled: dict[str, Any] | None = None
    passed_over: list[dict[str, Any]] = []
    for group in described_node_groups(eks, cluster):
        if group["capacityType"] != "ON_DEMAND":
            continue
        name = group["nodegroupName"]
        if inventory_known and (listed is None or listed.node_group(name) is None):
            passed_over.append({"nodegroup": name, "reason": _undeclared(cluster, name)})
            continue
        if tags_of_cluster is None:
            tags_of_cluster = cluster_tags(eks, cluster)
        autoscaler = autoscaler_of_described(
            autoscaling, cluster, tags_of_cluster, group, declared=declared
        )
        if autoscaler is not None:
            passed_over.append(
                {
                    "nodegroup": name,
                    "reason": f"{autoscaler.described()}: it sets the size itself",
                    "autoscaler": autoscaler.as_dict(),
                }
            )
        elif _reset_by_the_schedule(listed, name, scaler_off=scaler_off):
            return FallbackTarget(group, True, tuple(passed_over))
        else:
            passed_over.append(
                {
                    "nodegroup": name,
                    "reason": _not_reset_by_the_schedule(cluster, name, scaler_off=scaler_off),
                }
            )
            if first_unscheduled is None:
                first_unscheduled = group
    if first_unscheduled is None:
        return FallbackTarget(None, False, tuple(passed_over))
    taken = first_unscheduled["nodegroupName"]
    others = tuple(entry for entry in passed_over if entry["nodegroup"] != taken)
    return FallbackTarget(first_unscheduled, False, others)


def _undeclared(cluster: str, name: str) -> str:
    """Why node group `name`, which the stack file does not declare, takes no +1."""
    return (
        f"is not declared in the stack file for {cluster}: the fleet changes declared node "
        "groups only"
    )


def _not_reset_by_the_schedule(cluster: str, name: str, *, scaler_off: bool) -> str:
    """Why no cluster schedule takes a +1 of node group `name` back."""
    if scaler_off:
        return (
            f"no cluster schedule resets {name}: {SCALER_FUNCTION}, which runs the cluster "
            "schedules, is switched off in this stack (the fleet inventory lists no "
            f"{SCALER_FUNCTION})"
        )
    return (
        f"no cluster schedule resets {name}: the fleet inventory gives {cluster} no schedule "
        "that sizes it (schedule.off_hours_desired)"
    )


def _sizes(group: dict[str, Any]) -> dict[str, int]:
    """The sizes of the described node group `group`; raises UnreadableAnswerError when its
    description lacks one."""
    call = f"DescribeNodegroup of {group.get('nodegroupName')}"
    return {
        size: answer_field(group, call, "scalingConfig", field)
        for size, field in (
            ("min_size", "minSize"),
            ("desired_size", "desiredSize"),
            ("max_size", "maxSize"),
        )
    }


def _plan(group: dict[str, Any], stack_max_size: int | None) -> dict[str, Any]:
    """The +1 of the described node group `group`, within its maxSize in EKS and the stack file's
    `max_size` (`stack_max_size`, from the fleet inventory; None when it does not list the group),
    the lower of the two as eks_scaler bounds its own changes: a maxSize raised by hand in the
    console is no licence to outgrow the stack file. Raises UnreadableAnswerError when the
    description lacks a size."""
    previous = _sizes(group)
    if previous["desired_size"] >= previous["max_size"]:
        return {"previous": previous, "new": None}
    if stack_max_size is not None and previous["desired_size"] >= stack_max_size:
        note = (
            f"desired_size {previous['desired_size']} is at the stack file's max_size "
            f"{stack_max_size} (the fleet inventory), below the node group's maxSize "
            f"{previous['max_size']} in EKS; nothing was changed"
        )
        return {"previous": previous, "new": None, "note": note}
    return {"previous": previous, "new": {**previous, "desired_size": previous["desired_size"] + 1}}


def _stack_max_size(listed: Cluster | None, name: str) -> int | None:
    """The stack file's `max_size` of node group `name` (`listed`: its cluster in the fleet
    inventory); None when the inventory does not list it."""
    configured = listed.node_group(name) if listed is not None else None
    return configured.max_size if configured is not None else None


def _apply(
    services: SpotServices,
    eks: Any,
    *,
    account: str,
    region: str,
    cluster: str,
    name: str,
    spot_group: str,
    reason: str,
    stack_max_size: int | None,
    held: HeldLock,
    notices_found: list[Notice],
) -> tuple[dict[str, Any], Alert | None]:
    """Make the +1 under the node group lock `held`: its result, and its notice. `notices_found`
    gets the notice of an eks_scaler change found made but not recorded, recorded first."""
    # Re-read under the lock: the scaler may have changed the sizes since the proposal.
    group = _described(eks, cluster, name)
    plan = _plan(group, stack_max_size)
    base = {"nodegroup": name, "reason": reason, **plan}
    if plan["new"] is None:
        return {**base, "status": "at_max"}, None
    # A slow read (botocore's retries) can outlast the lease, and the scaler may then have
    # taken the lock and changed the sizes just read: renew the lease, or change nothing.
    if not held.renew():
        note = f"the lock's lease ran out while {name} was read, and another owner took {held.name}"
        return {**base, "new": None, "status": "locked", "note": note}, None
    # Placing a hold takes no node group lock: one placed since the check before the lock must
    # still stop the +1, as its `hold_placed` answer promised.
    hold = hold_in_force(
        services.state, account, region, cluster, name, now=services.clock.now(), dry_run=False
    )
    if hold is not None:
        return _held(name, reason, hold), None
    key = node_group_key(account, region, cluster, name)
    # An eks_scaler change made but not recorded (its answer lost) would be spent by the +1's
    # record, and never recorded nor announced: recorded first, or (refused) nothing is changed.
    found = record_unspent_intents_change(
        services.state,
        key,
        now=services.clock.now(),
        current_desired=plan["previous"]["desired_size"],
        recorded_by={"recorded_by": FUNCTION_NAME},
        history_ttl_seconds=_change_history_ttl_seconds(services),
    )
    if found is not None:
        notices_found.append(found)
    claim = fallback_claim_key(account, region, cluster, name)
    if not services.state.claim_once(claim, FALLBACK_CLAIM_SECONDS):
        return {
            **base,
            "new": None,
            "status": "already_applied",
            "note": "one +1 per hour",
        }, None
    try:
        update = update_desired_size(eks, cluster, name, plan["new"]["desired_size"])
    except AnswerLostError as error:
        # An attempt EKS got may have made the +1, whatever the later ones met (EKS refusing the
        # retry while that update runs, a retry that could not connect). The hour's claim is kept
        # either way: a second +1 in the hour must not follow one that may be made.
        update = _made_by_the_lost_attempt(eks, cluster, name, plan, error)
    except (ClientError, EndpointUnreachableError):
        # Every attempt was answered (refused or throttled) or never reached EKS (no connection:
        # refused, timed out, a proxy or TLS handshake that failed): nothing changed, so the
        # hour's one +1 is still to be made (the node group lock is held).
        services.state.release_once(claim)
        raise
    applied: dict[str, Any] = {
        **base,
        "status": "scaling_initiated",
        "update_id": update.get("id"),
    }
    try:
        services.state.record_change(
            key,
            {
                "source": FUNCTION_NAME,
                "action": SPOT_FALLBACK_ACTION,
                "previous": plan["previous"],
                "new": plan["new"],
                TEMPORARY_CHANGE_FIELD: True,
                "spot_nodegroup": spot_group,
                "reason": reason,
                "update_id": update.get("id"),
            },
            history_ttl_seconds=_change_history_ttl_seconds(services),
        )
    except (ClientError, BotoCoreError) as error:
        # The +1 is made: it is reported and announced as applied, never as a failed fallback.
        logger.warning(
            "spot fallback applied but not recorded",
            extra={"cluster": cluster, "nodegroup": name, "error": call_error_text(error)},
        )
        applied["error"] = (
            f"change not recorded in the node group's history: {call_error_text(error)}"
        )
    resource = node_group_resource(account, region, cluster, name)
    title = (
        f"{cluster}/{name} scaled (spot fallback): desired {plan['previous']['desired_size']} -> "
        f"{plan['new']['desired_size']}"
    )
    alert = Alert.create(
        severity=Severity.INFO,
        source=FUNCTION_NAME,
        title=title,
        detail=f"{reason}. Temporary +1 of the on-demand group ({_update_named(update)}).",
        resource=resource,
        account_id=account,
        region=region,
        timestamp=services.clock.now(),
        id=alert_id(FUNCTION_NAME, resource, f"{title} {update.get('id')}"),
    )
    return applied, alert


def _change_history_ttl_seconds(services: SpotServices) -> int:
    return services.environment.spot_change_history_ttl_days * 86400


def _made_by_the_lost_attempt(
    eks: Any, cluster: str, name: str, plan: dict[str, Any], lost: AnswerLostError
) -> dict[str, Any]:
    """The update of a +1 that failed after an attempt whose answer was lost (`lost`), when
    the node group now has the planned desired size (its id unknown: only the lost answer
    held it); raises `lost` when it does not."""
    now = _sizes(_described(eks, cluster, name))
    if now["desired_size"] != plan["new"]["desired_size"]:
        raise lost
    return {"id": None}


def _described(eks: Any, cluster: str, name: str) -> dict[str, Any]:
    """DescribeNodegroup's `nodegroup`; raises UnreadableAnswerError for an answer without it."""
    answer = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)
    return dict(answer_field(answer, f"DescribeNodegroup of {name}", "nodegroup"))


def _update_named(update: dict[str, Any]) -> str:
    """How the notice names the EKS update of a +1."""
    if update.get("id") is None:
        return "its update id was in EKS's answer, which was lost"
    return f"update {update['id']}"
