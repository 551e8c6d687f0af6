"""Deduplicate one notification, then deliver it to the channels of its route that still need it.

Dedup: the same alert id, or the same source + resource + title, of the same kind (severity, or
`resolved`) is sent once per ROUTER_DEDUP_WINDOW_SECONDS within one episode. An alert is open (any
severity) or resolved; the newest notice seen for an alert id (a CloudWatch alarm's ALARM,
INSUFFICIENT_DATA and OK share one) is recorded with its phase and timestamp for 14 days, before
its delivery, and replaced only if unchanged since it was read (two notices handled at once are
judged one after the other). A newer notice of the other phase begins the next episode and goes out
to every channel of its route, however soon it comes (a resolution; a failure again after a
resolution); within a phase an escalation (warning -> critical) is a new kind and goes out, a
de-escalation or a repeat is a duplicate. A notice of the other phase that is not newer is a late
copy (an SNS retry, an SQS redelivery out of order, a DLQ redrive days later) and is suppressed, so
a resolved incident is not reopened by the trigger it resolved, nor a firing one closed by an older
resolution. The notices of one alert are delivered one episode after the other: a notice waits
(`in_progress`) while one of the episode before it is being delivered, and one whose episode ended
between its judgement and its claims is a late copy. The claim on a dedup key is an idempotent
request in the state table: it is completed only once every enabled channel of the route took the
alert; otherwise it is released on the way out and the message is retried (SQS redelivery, SNS
retry, DLQ redrive), so the retry is not mistaken for a duplicate. A key being sent by another
invocation at this moment answers `in_progress`, which is retried too. A claim lasts no longer
than its invocation (at most ROUTER_IN_PROGRESS_SECONDS): Lambda's retry of an invocation it ended,
or that could not release its claims (the state table given up), comes a minute after it and finds
the claims free.

Per channel: each channel that took the alert is recorded under its dedup keys (for the dedup
window from the latest attempt, or past a longer Retry-After the message waits for) as soon as it
did, so the retry sends only to the channels that failed or were not tried for lack of time. A
channel attempt starts only with time left for it and for the longest state table call recording
it (`delivery_policy.attempt_seconds`), so Lambda does not end the invocation between a send and
its record. Two copies of an alert share a dedup key, and a key is held by one invocation at a
time, so a channel is not sent the same alert twice within the window, except when it took the
alert without its answer arriving (a timeout after the peer read the request), when its record
could not be written and another channel failed, or when the state table answered no attempt of
the call recording it: a retry cannot tell those from a channel that never got it, and sends
again (PagerDuty's dedup key makes that harmless there). A table that answered no attempt is given
up for the invocation, the claims' completion included, so no further channel is started: the
retry sends them once, and only the channel whose record got no answer twice.

Redelivery: the platform hands a message it gave the router before to it again (Lambda's retry
of an alert topic's event that failed for another of its messages, an SQS redelivery, a redrive
from the queue's dead-letter queue days later under a new messageId), up to
ROUTER_REDELIVERY_SECONDS after it, which may be long past the dedup window. A message is claimed
under what it is (`message_key`: an SNS message by its MessageId and text, another queue message
by its text; an id reused with other text is another message) for its handling, and the claim is
completed once the message was answered for good (sent, skipped, duplicate), kept for
ROUTER_REDELIVERY_SECONDS: a redelivery of it is answered `redelivered`, neither sent to a channel
again (the dedup claims may have expired) nor counted as a suppressed duplicate (it is the same
notice, not another one). A message to be retried releases its claim, and records the channels
that took it for as long (`_MessageRecord`): its redrive is sent only to the others.

Correlation: each suppressed duplicate increments a counter in the state table; the next
notice that is sent carries the count ("7 duplicates suppressed since the last notice") and takes
it off the counter. The counter is replaced only if unchanged since it was read, so duplicates
handled at once are all counted, and none counted during a delivery is wiped by it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from contextlib import ExitStack
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Severity, alert_id
from fleet_shared.exceptions import RequestInProgressError, UnreadableStateValueError
from fleet_shared.handler import Invocation
from fleet_shared.state_table import IdempotentRequest, StateTable, VersionedValue
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.unanswered_endpoints import EndpointNotAnsweringError, left_unanswered
from handlers.notification_router.channels import CHANNELS
from handlers.notification_router.delivery import SKIPPED, UNFINISHED, ChannelOutcome, deliver
from handlers.notification_router.delivery_policy import DeliveryPolicy
from handlers.notification_router.formatting import OutgoingMessage
from handlers.notification_router.messages import Notification
from handlers.notification_router.services import RouterServices

_logger = logging.getLogger(__name__)

SCOPE = "notification_router"
MESSAGE_SCOPE = f"{SCOPE}/message"
"""The claims on the messages handled (`message_key`), apart from the dedup keys' claims."""
SUPPRESSED_VALUE = "suppressed"
DELIVERED_VALUE = "delivered"
LAST_NOTICE_VALUE = "last_notice"
ALERTED_VALUE = "alerted"
ROUTED_VALUE = "routed"
"""Saved beside the channels' records when an alert of an episode is first routed: a
resolution then tells "no channel took it" (every channel failed) from "no record"."""
NOT_ALERTED = "not sent: this channel never took the alert this resolves"
LAST_NOTICE_SECONDS = 14 * 24 * 3600
"""How long an alert's newest notice is remembered: as long as a message can wait in a dead-letter
queue (14 days), so a trigger redriven from it days later is still seen to be older than its
resolution."""
LAST_NOTICE_ATTEMPTS = 5
"""Reads of an alert's record before giving up (the message is retried): each failed write means
another invocation recorded a notice of that alert in between."""
SUPPRESSED_COUNT_ATTEMPTS = 5
"""Reads of a suppressed-duplicate counter before giving up changing it: each failed write means
another invocation counted a duplicate in between."""
OPEN = "open"
RESOLVED = "resolved"
OPEN_KINDS = tuple(severity.value for severity in Severity)
"""The kinds of the open phase: an alert of any severity."""

SENT = "sent"
DUPLICATE = "duplicate"
UNDELIVERED = "failed"
IN_PROGRESS = "in_progress"
NO_CHANNEL = "skipped"
NOT_STARTED = "not_started"
REDELIVERED = "redelivered"
RETRY_STATUSES = frozenset({UNDELIVERED, IN_PROGRESS, NOT_STARTED})
"""Outcomes whose message must be delivered again later (batch item failure, or raise)."""


def dedup_keys(notification: Notification, episode: int) -> list[str]:
    """The state-table keys that make this notification a duplicate in its `episode`: by id, and
    by source + resource + title (one key when the id is derived from those, as it usually is)."""
    names = (notification.alert.id, _content_key(notification))
    keys = [_dedup_key(name, notification.kind, episode) for name in names]
    return list(dict.fromkeys(keys))


def _dedup_key(name: str, kind: str, episode: int) -> str:
    """The dedup key of an alert id (or content key) for a kind of notice in an episode."""
    return f"{name}/{kind}/{episode}"


def phase_of(notification: Notification) -> str:
    """`resolved` for a resolution, else `open` (every severity: an escalation stays open)."""
    return RESOLVED if notification.resolves else OPEN


def episode_of(notification: Notification, last_notice: dict[str, Any] | None) -> int | None:
    """The episode `notification` belongs to, given the newest notice seen for its alert; None
    for a late copy: a notice of the other phase that is not newer than that one."""
    if last_notice is None:
        return 0
    if last_notice["phase"] == phase_of(notification):
        return int(last_notice["episode"])
    if notification.alert.timestamp <= parse_iso(last_notice["timestamp"]):
        return None
    return int(last_notice["episode"]) + 1


def _content_key(notification: Notification) -> str:
    alert = notification.alert
    return alert_id(alert.source, alert.resource, alert.title)


def message_key(text: str, sns_message_id: str | None = None) -> str:
    """The key of a message, the same however the platform hands it out again: an SNS message by
    its MessageId and text, whether its topic invoked the router with it or it came in an SNS
    envelope through the queue; a queue message that is no SNS envelope by its text alone, since
    a redrive from the dead-letter queue gives it a new messageId (SQS's redelivery keeps it).
    An id reused with other text (a direct invocation, an example event edited) is another
    message. A digest, so an id of any length or text makes a key of one size."""
    parts = ("sns", sns_message_id, text) if sns_message_id is not None else ("queue", text)
    return hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()


def route(
    notification: Notification,
    services: RouterServices,
    invocation: Invocation,
    *,
    message: str | None = None,
    receive_count: int = 1,
) -> dict[str, Any]:
    """Send `notification` unless it is a duplicate; the result says what happened per channel.
    `message` is the key of the message that carried it (`message_key`; None for a message
    without id, which is not recognised when redelivered); `receive_count` is the how-many-th
    delivery of the message this is (the queue's ApproximateReceiveCount; 1 from a topic), by
    which the wait before its retry goes on with the router's backoff (`_retry_after`)."""
    if message is None:
        return _route(notification, services, invocation, message=None, receive_count=receive_count)
    settings = services.environment
    try:
        with services.state.idempotent(
            MESSAGE_SCOPE,
            message,
            ttl_seconds=_redelivery_seconds(services),
            in_progress_seconds=settings.router_in_progress_seconds,
            # As the dedup claims: Lambda's retry of an invocation it ended must find it free.
            deadline=invocation,
        ) as handling:
            if handling.is_repeat:
                return {**_summary(notification), "status": REDELIVERED}
            result = _route(
                notification, services, invocation, message=message, receive_count=receive_count
            )
            if result["status"] not in RETRY_STATUSES:
                _complete_handling(handling, result["status"])
            return result
    except RequestInProgressError:
        return {**_summary(notification), "status": IN_PROGRESS}


def _complete_handling(handling: IdempotentRequest, status: str) -> None:
    """Record that the message was answered for good. A write that fails is logged, not raised:
    the message was handled (its channels took it), and a redelivery of it is then judged by the
    dedup claims, as a copy is."""
    try:
        handling.complete({"status": status})
    except (ClientError, BotoCoreError, RequestInProgressError) as error:
        _logger.warning(
            "message %s handled but not recorded (%s); a redelivery is judged as a copy",
            handling.request_id,
            error,
        )


def _summary(notification: Notification) -> dict[str, Any]:
    """What every result of `notification` starts with."""
    alert = notification.alert
    return {
        "alert_id": alert.id,
        "severity": alert.severity.value,
        "kind": notification.kind,
        "title": alert.title,
    }


def _route(
    notification: Notification,
    services: RouterServices,
    invocation: Invocation,
    *,
    message: str | None,
    receive_count: int,
) -> dict[str, Any]:
    """`route` for a notification, whichever message carried it (`message`: its key, or None)."""
    alert = notification.alert
    settings = services.environment
    window = settings.router_dedup_window_seconds
    last_notice_key = f"{SCOPE}/{alert.id}"
    counter_key = f"{SCOPE}/{_content_key(notification)}/{notification.kind}"
    summary = _summary(notification)
    try:
        episode = _record_notice(notification, services.state, last_notice_key)
    except RequestInProgressError:
        return {**summary, "status": IN_PROGRESS}
    if episode is None:
        return _late_copy(summary, services.state, counter_key, window)
    keys = dedup_keys(notification, episode)
    try:
        with ExitStack() as stack:
            requests = [
                stack.enter_context(
                    services.state.idempotent(
                        SCOPE,
                        key,
                        ttl_seconds=window,
                        in_progress_seconds=settings.router_in_progress_seconds,
                        # Ends with the invocation: Lambda's retry of one it ended, or of one
                        # that could not release the claim, comes a minute later and must act.
                        deadline=invocation,
                    )
                )
                for key in keys
            ]
            if any(request.is_repeat for request in requests):
                count = _count_suppressed(services.state, counter_key, window)
                return {**summary, "status": DUPLICATE, "suppressed_duplicates": count}

            if _previous_episode_in_delivery(services.state, notification, episode):
                return {**summary, "status": IN_PROGRESS}
            suppressed, counter = _suppressed(services.state, counter_key, window)
            silence = _TableSilence()
            message_record = _MessageRecord(services.state, message, _redelivery_seconds(services))
            delivered = _Delivered(
                services.state, keys, window, silence, taken_before=message_record.channels
            )
            route_names = settings.channels_for(notification.kind)
            names, not_alerted = _resolution_channels(notification, episode, route_names, services)
            alerted = _Alerted(services.state, alert.id, episode, silence)
            if not notification.resolves:
                alerted.mark_routed()
                # A channel that took the alert on an earlier delivery is not sent it again, and
                # the record its resolution goes by may be missing (its write failed, or Lambda
                # ended that invocation first): written again, or the resolution skips it.
                for channel in sorted(delivered.channels):
                    alerted.add(channel)
            if not _still_newest(services.state, last_notice_key, episode):
                return _late_copy(summary, services.state, counter_key, window)

            def record_sent(channel: str) -> None:
                delivered.add(channel)
                record_alerted(channel)

            def record_alerted(channel: str) -> None:
                # A channel that may show the alert (it took it, or timed out after the request
                # went out) gets its resolution: an incident must not be left open.
                if not notification.resolves:
                    alerted.add(channel)

            sent_outcomes = deliver(
                OutgoingMessage(notification, suppressed),
                [CHANNELS[name](services) for name in names],
                already_sent=delivered.channels,
                policy=services.delivery_policy,
                invocation=invocation,
                sleep=services.sleep,
                record_sent=record_sent,
                record_unconfirmed=record_alerted,
                unrecordable=lambda: silence.reason,
                holds=services.channel_holds,
            )
            by_channel = {outcome.channel: outcome for outcome in sent_outcomes}
            by_channel.update(
                (name, ChannelOutcome(name, SKIPPED, error=NOT_ALERTED)) for name in not_alerted
            )
            outcomes = [by_channel[name] for name in route_names]
            result = {**summary, "channels": [outcome.as_dict() for outcome in outcomes]}
            unfinished = [outcome for outcome in outcomes if outcome.status in UNFINISHED]
            if unfinished:
                retry_after = _retry_after(
                    unfinished, services.delivery_policy, receive_count=receive_count
                )
                if retry_after is not None:
                    result["retry_after_seconds"] = retry_after
                    # The channels that took it must stay known until the retry comes.
                    delivered.keep_for(retry_after + window)
                message_record.save(delivered.channels)
                # Leaving without completing releases the claims: the retry must send the rest.
                return {**result, "status": UNDELIVERED, "suppressed_duplicates": suppressed}
            if alerted.unrecorded:
                # Every channel took it, but without its record a channel gets no resolution (a
                # PagerDuty incident left open for good): the retry sends nothing, writes the
                # record again and completes the claims.
                message_record.save(delivered.channels)
                missing = ", ".join(sorted(alerted.unrecorded))
                return {
                    **result,
                    "status": UNDELIVERED,
                    "error": f"not recorded that {missing} took the alert, which its resolution "
                    "goes by: retried to record it",
                    "suppressed_duplicates": suppressed,
                }
            status = NO_CHANNEL if all(o.status == SKIPPED for o in outcomes) else SENT
            for request in requests:
                request.complete({"status": status})
            if suppressed:
                _uncount_suppressed(services.state, counter_key, counter, window)
            return {**result, "status": status, "suppressed_duplicates": suppressed}
    except RequestInProgressError:
        return {**summary, "status": IN_PROGRESS}


def _previous_episode_in_delivery(
    state: StateTable, notification: Notification, episode: int
) -> bool:
    """Whether another invocation is delivering a notice of the episode before `episode` (the
    other phase) right now. A resolution judged meanwhile would go only to the channels that took
    the alert so far, and the others would show it open for good; a trigger of the next episode
    could reach PagerDuty before that resolve, which would then close the new incident. Such a
    notice waits (`in_progress`): its retry comes after that invocation ended."""
    if episode == 0:
        return False
    kinds = OPEN_KINDS if notification.resolves else (RESOLVED,)
    return any(
        state.request_in_progress(SCOPE, _dedup_key(notification.alert.id, kind, episode - 1))
        for kind in kinds
    )


def _still_newest(state: StateTable, key: str, episode: int) -> bool:
    """Whether the alert's newest notice is still of `episode`, read again once this invocation
    holds its claims: a notice of the other phase recorded since (and delivered already, before
    the claims) makes this one a late copy, which must not reach a channel after it."""
    read = _read_record(state, key, LAST_NOTICE_VALUE)
    last_notice = _valid_last_notice(read.value if read is not None else None, key)
    return last_notice is None or last_notice["episode"] == episode


def _late_copy(
    summary: dict[str, Any], state: StateTable, counter_key: str, window_seconds: int
) -> dict[str, Any]:
    """The result of a late copy, counted among the suppressed duplicates."""
    count = _count_suppressed(state, counter_key, window_seconds)
    return {**summary, "status": DUPLICATE, "suppressed_duplicates": count, "late": True}


def _resolution_channels(
    notification: Notification,
    episode: int,
    route_names: tuple[str, ...],
    services: RouterServices,
) -> tuple[list[str], list[str]]:
    """The channels of the route to send to, and those left out: a resolution goes only to the
    channels that took the alert it resolves (the episode before its own), when that is
    recorded; with no record (expired, or older than the records) to every channel."""
    if not notification.resolves or episode == 0:
        return list(route_names), []
    alerted = _alerted_channels(services.state, notification.alert.id, episode - 1)
    if alerted is None:
        return list(route_names), []
    return (
        [name for name in route_names if name in alerted],
        [name for name in route_names if name not in alerted],
    )


class _TableSilence:
    """Why the state table can no longer record a send in this invocation (the first of its
    calls that got no answer), or None while it answers: a channel sent to after that would get
    the alert again on the retry, the claims being left uncompleted."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def note(self, error: ClientError | BotoCoreError) -> None:
        """Note a failed write: a silent table stops the delivery, other failures do not."""
        if self.reason is None and _table_silent(error):
            self.reason = (
                f"the state table did not answer, so a send could not be recorded ({error})"
            )


def _table_silent(error: ClientError | BotoCoreError) -> bool:
    """Whether a state table call was left unanswered (no attempt answered, or it ran to its
    bound on errors botocore retries: `unanswered_endpoints.left_unanswered`) or was refused for
    an earlier one: the table is given up for the rest of the invocation (`StateTable`), so
    nothing more is recorded in it, the claims' completion included."""
    return isinstance(error, EndpointNotAnsweringError) or left_unanswered(error)


def _alerted_key(alert_id: str, episode: int) -> str:
    return f"{SCOPE}/{alert_id}/{episode}"


def _alerted_channels(state: StateTable, alert_id: str, episode: int) -> frozenset[str] | None:
    """The channels recorded as having taken the alert in `episode` (`_Alerted`): none when it
    was routed and no channel took it, None when there is no record at all. A record is read by
    its presence: one whose text is unreadable still says its channel took the alert."""
    key = _alerted_key(alert_id, episode)
    names = frozenset(
        name for name in CHANNELS if _read_record(state, key, f"{ALERTED_VALUE}/{name}") is not None
    )
    if names or _read_record(state, key, ROUTED_VALUE) is not None:
        return names
    return None


class _Alerted:
    """The channels that took an alert in one open episode (or may have: an attempt that timed
    out after the request went out), one record each (two invocations adding channels of one
    alert cannot overwrite each other), kept as long as the alert's newest notice: its
    resolution may come days later."""

    def __init__(
        self, state: StateTable, alert_id: str, episode: int, silence: _TableSilence
    ) -> None:
        self._state = state
        self._key = _alerted_key(alert_id, episode)
        self._silence = silence
        self.unrecorded: set[str] = set()
        """The channels whose record could not be written in this invocation."""

    def mark_routed(self) -> None:
        """Record that the alert was routed, whether or not a channel takes it; a write that
        fails is logged (its resolution, if no channel takes it, then goes to every channel)."""
        self._save(ROUTED_VALUE, {}, "routing")

    def add(self, channel: str) -> None:
        """Record that `channel` took the alert; a write that fails is logged and the channel
        kept in `unrecorded` (the message is retried to write it: its resolution would leave
        that channel out, when another channel's record exists)."""
        name = f"{ALERTED_VALUE}/{channel}"
        if self._save(name, {"channel": channel}, f"alert to {channel}"):
            self.unrecorded.discard(channel)
        else:
            self.unrecorded.add(channel)

    def _save(self, name: str, value: dict[str, Any], what: str) -> bool:
        try:
            self._state.put_value(self._key, name, value, ttl_seconds=LAST_NOTICE_SECONDS)
        except (ClientError, BotoCoreError) as error:
            _logger.warning("%s not recorded under %s (%s)", what, self._key, error)
            self._silence.note(error)
            return False
        return True


class _Delivered:
    """The channels that took the alert, saved under each of its dedup keys for the window
    since the latest attempt at it."""

    def __init__(
        self,
        state: StateTable,
        keys: list[str],
        window_seconds: int,
        silence: _TableSilence,
        *,
        taken_before: frozenset[str],
    ) -> None:
        """`taken_before`: the channels that took the message carrying the alert on an earlier
        handling (`_MessageRecord`), which a redrive days later finds when the records under the
        dedup keys expired long ago."""
        self._state = state
        self._keys = [f"{SCOPE}/{key}" for key in keys]
        self._window_seconds = window_seconds
        self._silence = silence
        names = set(taken_before)
        for key in self._keys:
            read = _read_record(state, key, DELIVERED_VALUE)
            names.update(_delivered_channels(read.value if read is not None else {}, key))
        self.channels = frozenset(names)
        if self.channels:
            # A retry keeps the record for another window: SQS redelivers every few minutes for
            # longer than the window, and the channels that took the alert must stay known.
            self._save()

    def add(self, channel: str) -> None:
        """Record that `channel` took the alert. A write that fails is logged, not raised: the
        channel has the alert whatever the table says, so the delivery goes on to the other
        channels, and once all took it the completed claim stops a retry from sending any of
        them again (each later write also saves the channels before it)."""
        self.channels = self.channels | {channel}
        self._save()

    def keep_for(self, seconds: int) -> None:
        """Keep the record for `seconds` from now (a retry delayed past the window)."""
        if self.channels:
            self._save(ttl_seconds=seconds)

    def _save(self, ttl_seconds: int | None = None) -> None:
        for key in self._keys:
            try:
                self._state.put_value(
                    key,
                    DELIVERED_VALUE,
                    {"channels": sorted(self.channels)},
                    ttl_seconds=ttl_seconds or self._window_seconds,
                )
            except (ClientError, BotoCoreError) as error:
                _logger.warning(
                    "deliveries to %s not recorded under %s (%s)", sorted(self.channels), key, error
                )
                self._silence.note(error)


class _MessageRecord:
    """The channels that took one message, saved each time it is handed back for a retry (a
    channel did not take it) for as long as the platform may hand it out again
    (`ROUTER_REDELIVERY_SECONDS`, a redrive from the queue's dead-letter queue included): the
    redrive, days later, finds the records under the dedup keys long expired, and is sent only
    to the channels missing from this one. A message answered for good needs none: its
    completed claim answers the redrive `redelivered`. None for a message without key."""

    def __init__(self, state: StateTable, message: str | None, seconds: int) -> None:
        self._state = state
        self._key = None if message is None else f"{MESSAGE_SCOPE}/{message}"
        self._seconds = seconds
        read = None if self._key is None else _read_record(state, self._key, DELIVERED_VALUE)
        self.channels = frozenset(
            [] if read is None else _delivered_channels(read.value, str(self._key))
        )
        """The channels recorded as having taken the message on an earlier handling."""

    def save(self, channels: frozenset[str]) -> None:
        """Record that `channels` took the message, written again on each retry: a redrive gives
        the message another stay in the queues, which the record must outlast. A write that
        fails is logged, not raised: the message is retried anyway, and its next handling, within
        the dedup window, finds those channels under the dedup keys and writes them again."""
        if self._key is None or not channels:
            return
        try:
            self._state.put_value(
                self._key,
                DELIVERED_VALUE,
                {"channels": sorted(channels)},
                ttl_seconds=self._seconds,
            )
        except (ClientError, BotoCoreError) as error:
            _logger.warning(
                "deliveries to %s not recorded under %s (%s)", sorted(channels), self._key, error
            )


def _redelivery_seconds(services: RouterServices) -> int:
    """How long the router remembers a message it handled (`ROUTER_REDELIVERY_SECONDS`: as long
    as the platform may hand it out again, a redrive included), the dedup window when unset."""
    settings = services.environment
    return settings.router_redelivery_seconds or settings.router_dedup_window_seconds


def _delivered_channels(saved: dict[str, Any], key: str) -> list[str]:
    """The channels a record of the channels that took an alert (under dedup key `key`) names.
    One whose `channels` is no list (a hand edit, corruption) names none, and is logged: a
    number or null raised TypeError on every notice of the alert until the record expired, and
    a text was taken letter by letter."""
    channels = saved.get("channels", [])
    if not isinstance(channels, list):
        _logger.warning("channels that took the alert under %s are no list; taken as none", key)
        return []
    return [name for name in channels if isinstance(name, str)]


def _retry_after(
    unfinished: list[ChannelOutcome], policy: DeliveryPolicy, *, receive_count: int
) -> int | None:
    """Whole seconds before the message's retry may call its channels again: the longest wait a
    channel asked for (the others wait as long, so none is called too early), or None. A wait
    is never shorter than the router's own backoff before that channel's next attempt, its
    attempts counted over every delivery of the message (each took up to
    ROUTER_MAX_ATTEMPTS): a channel answering 429 with `Retry-After: 0` had the message handed
    back at once, and the queue's receives were spent in seconds, taking the alert to the
    dead-letter queue before the channel had any time."""
    earlier_attempts = (receive_count - 1) * policy.max_attempts
    asked = [
        max(o.retry_after_seconds, policy.backoff_before(earlier_attempts + o.attempts + 1))
        for o in unfinished
        if o.retry_after_seconds is not None
    ]
    return math.ceil(max(asked)) if asked else None


def _record_notice(notification: Notification, state: StateTable, key: str) -> int | None:
    """The episode of `notification` (None: a late copy), recording it as its alert's newest
    notice when it is; raises `RequestInProgressError` when other invocations kept changing the
    record for LAST_NOTICE_ATTEMPTS reads.

    The record is the newest notice seen, written before delivery (copies of it included, and
    while its delivery is retried): an older notice of the other phase is then a late copy. It
    is replaced only if unchanged since it was read: a resolution and a new failure handled at
    the same moment must not both judge by the record before either, or the failure is taken
    for a copy of the trigger the resolution closed, and the page is lost.
    """
    alert = notification.alert
    for _ in range(LAST_NOTICE_ATTEMPTS):
        read = _read_record(state, key, LAST_NOTICE_VALUE)
        last_notice = _valid_last_notice(read.value if read is not None else None, key)
        episode = episode_of(notification, last_notice)
        if episode is None or (
            last_notice is not None
            and (episode, alert.timestamp)
            <= (last_notice["episode"], parse_iso(last_notice["timestamp"]))
        ):
            return episode
        record = {
            "phase": phase_of(notification),
            "episode": episode,
            "timestamp": iso_z(alert.timestamp),
        }
        if state.replace_value(
            key, LAST_NOTICE_VALUE, record, read=read, ttl_seconds=LAST_NOTICE_SECONDS
        ):
            return episode
    raise RequestInProgressError(SCOPE, key)


def _read_record(state: StateTable, key: str, name: str) -> VersionedValue | None:
    """The router's record `name` under `key` as read, None when there is none. One that cannot
    be read (a hand edit, corruption: no stored text, text that is no DynamoDB string, or no JSON
    object) is read as an empty record with its version (its text, or None for none), and
    logged: raised, it failed every notice of its alert, each sent to the dead-letter queue until
    the record expired (14 days for the newest notice); read so, it is no notice and no channel,
    and `replace_value` replaces it only while it is still what was read."""
    try:
        return state.get_versioned_value(key, name)
    except UnreadableStateValueError as error:
        _logger.warning("%s; taken as an empty record", error)
        return VersionedValue({}, version=error.version)


def _valid_last_notice(value: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """The phase, episode and timestamp of the newest notice seen for an alert (the record under
    `key`), if recorded. A record without them, or whose timestamp is no time with a zone (a
    hand edit, corruption), counts as none, and is replaced by the notice judged against it:
    read as it was, its timestamp raised ValueError on every notice of the alert, each sent to
    the dead-letter queue until the record expired 14 days later, resolutions included."""
    if value is None:
        return None
    if not (
        value.get("phase") in (OPEN, RESOLVED)
        and isinstance(value.get("episode"), int)
        and isinstance(value.get("timestamp"), str)
    ):
        return None
    try:
        parse_iso(value["timestamp"])
    except ValueError:
        _logger.warning("newest notice under %s has no readable timestamp; taken as none", key)
        return None
    return value


def _count_suppressed(state: StateTable, counter_key: str, window_seconds: int) -> int:
    """Count one more suppressed duplicate; the count so far. The counter is replaced only if
    unchanged since it was read: two duplicates handled at once both wrote the count before them
    plus one, and one was lost. After SUPPRESSED_COUNT_ATTEMPTS lost races this one is logged
    and left uncounted: a count shown with the next notice is not worth the duplicate's retry."""
    for _ in range(SUPPRESSED_COUNT_ATTEMPTS):
        read = _read_record(state, counter_key, SUPPRESSED_VALUE)
        count = _count_of(read, counter_key) + 1
        if _replace_count(state, counter_key, count, read, window_seconds):
            return count
    _logger.warning("suppressed duplicate not counted under %s: it kept changing", counter_key)
    return count


def _suppressed(
    state: StateTable, counter_key: str, window_seconds: int
) -> tuple[int, VersionedValue | None]:
    """The duplicates of a notice suppressed since one was last sent (the counter under
    `counter_key`), and the counter as read (`_uncount_suppressed` takes them off it once the
    notice is sent). A counter with no readable count (its stored text no JSON object, a hand
    edit, corruption) counts none and is replaced by a zero count, only while it is still that
    text: raised, it sent every notice of its alert to the dead-letter queue while it was kept."""
    read = _read_record(state, counter_key, SUPPRESSED_VALUE)
    count = _count_of(read, counter_key)
    unreadable = read is not None and not _is_count(read.value.get("count"))
    if unreadable and _replace_count(state, counter_key, count, read, window_seconds):
        return count, VersionedValue.saved({"count": count})
    return count, read


def _uncount_suppressed(
    state: StateTable, counter_key: str, carried: VersionedValue | None, window_seconds: int
) -> None:
    """Take the duplicates a sent notice carried off the counter (`carried`: as `_suppressed`
    read it before the delivery), only while it is unchanged since read: those counted meanwhile
    stay for the next notice, where a reset to zero wiped them. Logged, not raised, when it kept
    changing for SUPPRESSED_COUNT_ATTEMPTS reads: the notice went out."""
    sent = _count_of(carried, counter_key)
    read = carried
    for _ in range(SUPPRESSED_COUNT_ATTEMPTS):
        if read is None:
            return
        left = max(_count_of(read, counter_key) - sent, 0)
        if _replace_count(state, counter_key, left, read, window_seconds):
            return
        read = _read_record(state, counter_key, SUPPRESSED_VALUE)
    _logger.warning("suppressed duplicates under %s not reset: it kept changing", counter_key)


def _replace_count(
    state: StateTable,
    counter_key: str,
    count: int,
    read: VersionedValue | None,
    window_seconds: int,
) -> bool:
    """Save `count` as the suppressed-duplicate counter under `counter_key`, kept for four dedup
    windows, only if it is still as `read`; False when another invocation changed it since."""
    return state.replace_value(
        counter_key, SUPPRESSED_VALUE, {"count": count}, read=read, ttl_seconds=4 * window_seconds
    )


def _count_of(read: VersionedValue | None, counter_key: str) -> int:
    """The count a suppressed-duplicate counter holds: 0 when there is none or it is no count
    (logged: a boolean or a negative number, which Python would take as one or less than none)."""
    count = read.value.get("count", 0) if read is not None else 0
    if _is_count(count):
        return count
    if read is not None and "count" in read.value:
        _logger.warning(
            "suppressed-duplicate counter under %s holds no count; taken as 0", counter_key
        )
    return 0


def _is_count(value: Any) -> bool:
    """Whether `value` is a count: a whole number, not negative, not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
