"""Member access episodes: one alert when a member account starts denying a function's member
role, one resolution when it stops.

A member that refuses the role (AccessDenied on AssumeRole) or the function's calls
(AccessDenied, AccessDeniedException, UnauthorizedOperation) is not served, night after night;
logged in the run's result alone, nobody heard of it. So each function that walks the inventory
(backup_scheduler, cleanup_manager: each an `AccessEpisodes`) keeps an episode record per account
in the state table (`AccessEpisodes.episode_key`), settled after every run that is not a dry run
(a dry run calls nothing that changes anything, so it cannot tell a member that allows those
calls):

- denied, no open episode: the alert goes out, then the episode is recorded open, with the
  calls IAM refused in the run (`refused_calls`, named as `fleet_shared.member_calls` names
  them: `ec2:CreateSnapshot`, `sts:AssumeRole`);
- denied, open episode: nothing goes out (the episode's last failure is noted, and its
  `refused_calls` become those the member did not answer in the run and those it refused);
- reached without a denial in every one of its targets, a call of the member answered with
  success in this run (a run that called nothing of the member, its target a repeat of one done,
  its steps given up, its kinds turned off, proves nothing), and each of the episode's
  `refused_calls` answered with success by the member in it or in a run since the episode
  noted it (a member call answered counts as its AssumeRole answered: a session cached from an
  earlier invocation asks STS nothing): the open episode is closed holding its resolution
  (`Alert.resolution`: same id, so the router resolves the alert it raised), then the
  resolution goes out and is dropped from the record. Any other call answered proves nothing of
  the call refused (a member may grant DescribeVolumes and still refuse CreateSnapshot): a
  reached run that answered some of the calls only drops those from `refused_calls`, and the
  episode stays open;
- any other outcome (a target not started, in progress, failed, or its AssumeRole unanswered by
  STS; targets reached without a member call answered) tells nothing of the member's grants: the
  episode stays as it is;
- an open episode without `refused_calls`, saved before they were recorded (or opened on a
  denial whose calls the record did not see), is resolved as every episode was then, by a
  reached run whatever call it answered; a denied run records its refused calls in it, and from
  then on it waits for them;
- no target at all, the account removed from the stack file: an open episode is closed as one
  reached is, its resolution saying the account is no longer in the inventory (else the alert
  stayed open for ever: no run serves that account again).

An open episode is listed in the index `AccessEpisodes.open_episodes_key` (one item per account,
written before the alert goes out, dropped once the episode is closed and its resolution out),
which is how a run finds the episodes of accounts it has no target of, with one read. The
episodes saved before the index existed (backup_scheduler's: `saved_before_index`) are not in
it, and one whose account then left the inventory was never resolved: such a function's runs
look for them once (`fleet_shared.earlier_values`: a Scan of the state table, at most
EARLIER_SEARCH_TIME_SHARE of the invocation's time left, going on next run from where it
stopped) and note in the index each one open or holding a resolution not out yet.

An account's settlement starts only with SETTLE_ACCOUNT_SECONDS left in the invocation (asked of
`seconds_left`): Lambda ending it half way, between SNS taking an alert and the alert's claim
completed, would have the next run send the alert again. The accounts left so keep their episodes
as they were, are named in the settlement's `not_settled`, and are settled by the next run
(spot_optimizer's fleet analysis, and backup_scheduler's and cleanup_manager's targets, keep that
time free after their last target).

Delivery is the shared layer's `deliver_once`, keyed by the account, the episode (named by the
closing time of the one before it, as health_monitor names its incidents) and `denied` or
`resolved`, so two runs that see one new denial at once send one alert. An alert SNS does not
take leaves the episode as it was, and a resolution stays in the closed record until SNS took
it, so a failed publish loses neither: the invocation fails once every account was settled
(`MemberAccessSettlement.raise_undelivered`), the platform's retry sends what is missing, and
so does the next run at the latest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, AlertPublisher, Severity
from fleet_shared.aws_answers import call_error_text
from fleet_shared.earlier_values import SearchTime, earlier_keys, save_search
from fleet_shared.exceptions import RequestInProgressError, UnreadableStateValueError
from fleet_shared.member_calls import ACCESS_DENIED_CODES, ASSUME_ROLE, MemberCalls
from fleet_shared.sessions import HUB_CALL_SECONDS, STATE_TABLE_CALL_SECONDS
from fleet_shared.state_table import ClaimDeadline, StateTable, VersionedValue
from fleet_shared.target_results import OK, PARTIAL
from fleet_shared.timestamps import iso_z
from fleet_shared.validation_errors import cut_echo

EPISODE_VALUE = "access_episode"
FIRST_EPISODE = "first"
"""What names the episode of an account that had none before (or whose last one was forgotten)."""
REFUSED_CALLS = "refused_calls"
"""The field of an open episode naming the calls it waits for the member to answer
(`fleet_shared.member_calls.call_name`), sorted; absent from the episodes saved before it."""
DELIVERY_TTL_SECONDS = 7 * 86400
"""How long a delivered alert or resolution is remembered: longer than the day between two
runs, so a run whose record write failed after SNS took the alert does not send it again."""
EPISODE_TTL_SECONDS = 35 * 86400
"""How long an episode is kept after it was last written: each run that finds the member denied
writes it again; a closed one names the next episode long after its delivery keys expired."""
SETTLE_STEPS = 6
"""Readings of an episode one account may take: closing, then publishing the resolution, then an
opening after it are three; the rest is for runs writing it at once."""
OPEN_EPISODE_PREFIX = "open#"
"""What begins the name of each item of the index of open episodes: `open#<account>`."""
DENIALS_NAMED = 5
"""The denied calls of each region an alert names; the count is whole."""
EARLIER_SEARCH_TIME_SHARE = 0.1
"""The share of the invocation's time left at the search's first page that the search for
episodes saved before the index may take: the run's targets are done by then, and what is left
is for settling the episodes and sending their alerts."""
SETTLE_ACCOUNT_SECONDS = STATE_TABLE_CALL_SECONDS + HUB_CALL_SECONDS
"""The time an account's settlement needs left to start (28 s): its state table calls, which hang
once at most (the table is given up for the invocation after one call it left unanswered), and
its publishes, SNS never answering (given up alike after one)."""
EARLIER_SEARCH_PAGE_ITEMS = 1000
"""Items a page of that Scan evaluates at most: the time left is checked at least this often."""
_REACHED = frozenset({OK, PARTIAL})


@dataclass(frozen=True)
class AccessEpisodes:
    """One function's access episodes: where it keeps them and what its alerts say."""

    source: str
    """The function: its alerts' source, and what begins its records' keys."""
    role: str
    """What the member denies, in the alert's title (`backup role`)."""
    consequence: str
    """What the denial stops and when a resolution follows, the alert's detail after the calls
    denied."""
    recovered: str
    """The detail of the resolution of an account reached again without a denial."""
    served: str
    """What the function no longer does for an account removed from the inventory, in the
    detail of its episode's resolution (`backed up`)."""
    saved_before_index: bool = False
    """Whether an earlier version saved episodes without the index: a run then looks for them
    once (the module docstring)."""

    def episode_key(self, account_id: str) -> str:
        """The state-table key of an account's access episode."""
        return f"{self.source}/member-access/{account_id}"

    @property
    def open_episodes_key(self) -> str:
        """The state-table key of the index of open episodes: an item `open#<account>` each."""
        return f"{self.source}/member-access-open"

    @property
    def earlier_search_key(self) -> str:
        """Where the search for episodes saved before the index keeps its progress, then its
        mark of being done."""
        return f"{self.open_episodes_key}/earlier"

    @property
    def left_the_inventory(self) -> str:
        """The detail of the resolution of an account removed from the inventory."""
        return (
            "The account is no longer in the fleet inventory (removed from the stack file): it "
            f"is not {self.served} any more, and its denial episode is closed."
        )


class EpisodeContendedError(Exception):
    """Other runs kept changing an account's episode while this one settled it."""

    def __init__(self, account_id: str) -> None:
        super().__init__(
            f"access episode of {account_id} changed at every one of {SETTLE_STEPS} readings"
        )


def refused_by_iam(error: BaseException | str | None) -> bool:
    """Whether `error` is an AWS call's refusal by IAM (ACCESS_DENIED_CODES)."""
    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") in ACCESS_DENIED_CODES
    )


def note_refused_call(refused: list[str], error: BaseException, resource_id: str = "") -> None:
    """Add the call `error` ended to `refused` (a target's `access_denied`) when IAM refused it:
    its operation, and `resource_id` when it acted on, or read, one resource."""
    if isinstance(error, ClientError) and refused_by_iam(error):
        refused.append(f"{error.operation_name} {resource_id}".rstrip())


@dataclass
class MemberAccessSettlement:
    """What settling a run's episodes sent, and what could not be."""

    alerted: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    undelivered: list[AlertNotDeliveredError] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    """Accounts whose episode the state table could not read or write, or a hand edit left
    unreadable: left as it was, for the next run (or a person) to settle."""
    not_settled: list[str] = field(default_factory=list)
    """Accounts whose turn came with less than SETTLE_ACCOUNT_SECONDS left in the invocation:
    their episodes left as they were, for the next run."""

    def summary(self) -> dict[str, Any]:
        """The accounts whose denial alerted and whose recovery was announced in this run, those
        whose episode could not be settled, and those left for lack of time."""
        summary: dict[str, Any] = {"alerted": self.alerted, "resolved": self.resolved}
        if self.errors:
            summary["errors"] = self.errors
        if self.not_settled:
            summary["not_settled"] = self.not_settled
        return summary

    def raise_undelivered(self) -> None:
        """Fail the invocation, so the platform retries the run, when an alert or resolution
        was not delivered: the retry sends it (a state table that failed does not: the episode
        stays as it was and the next run settles it, the invocation's result intact)."""
        if self.undelivered:
            raise self.undelivered[0]


@dataclass(frozen=True)
class _AccountOutcome:
    """What a run's targets of one account tell of its grants: `denied` (the calls refused, by
    region), `reached` (every target ran without a refusal, and a call of the member was
    answered), or neither; the member's calls IAM `refused` and those it `answered` with success
    in the run; `indexed` when the account is in the index of open episodes, and the text of the
    resolution that closes its episode (`resolved_by`); `departed` when the inventory no longer
    lists it, which closes its episode whatever it waits for."""

    account_id: str
    denials: dict[str, list[str]]
    reached: bool
    resolved_by: str
    indexed: bool = False
    refused: frozenset[str] = frozenset()
    answered: frozenset[str] = frozenset()
    departed: bool = False

    @property
    def denied(self) -> bool:
        return bool(self.denials)

    def still_refused(self, record: dict[str, Any]) -> Set[str] | None:
        """The calls the open episode `record` waits for after this run: those it waited for
        that the member did not answer in the run, and, in a run that found it denied, those
        IAM refused in it (a refusal its function did not count as a denial, a fallback's
        refused EKS call met in the warning that proved the role works, is no call the alert
        named); None for an episode that names none (saved before `refused_calls`) when the run
        adds none either."""
        refused = self.refused if self.denied else frozenset()
        waited = record.get(REFUSED_CALLS)
        if waited is None and not refused:
            return None
        return (set(waited or ()) - self.answered) | refused


def _outcomes(
    episodes: AccessEpisodes,
    targets: Iterable[dict[str, Any]],
    indexed: set[str],
    calls: MemberCalls,
) -> list[_AccountOutcome]:
    """The outcome of every account of `targets` (the whole inventory's), reached only when
    `calls` holds a call of the account answered, then one closing the episode of each account
    of the index (`indexed`) that the inventory no longer lists."""
    by_account: dict[str, list[dict[str, Any]]] = {}
    for target in targets:
        by_account.setdefault(target["account_id"], []).append(target)
    outcomes = []
    for account_id, account_targets in by_account.items():
        denials = {
            target["region"]: list(target["access_denied"])
            for target in account_targets
            if target.get("access_denied")
        }
        ran = all(target["status"] in _REACHED for target in account_targets)
        answered = calls.answered(account_id)
        if answered:
            # Made with the member role: its AssumeRole worked, in this invocation or in the one
            # whose session is cached.
            answered |= {ASSUME_ROLE}
        outcomes.append(
            _AccountOutcome(
                account_id,
                denials,
                ran and bool(answered),
                episodes.recovered,
                indexed=account_id in indexed,
                refused=calls.refused(account_id),
                answered=answered,
            )
        )
    outcomes.extend(
        _AccountOutcome(
            account_id, {}, True, episodes.left_the_inventory, indexed=True, departed=True
        )
        for account_id in sorted(indexed - set(by_account))
    )
    return outcomes


def open_episode_accounts(episodes: AccessEpisodes, state: StateTable) -> set[str]:
    """The accounts the index lists as having an open episode, or one whose resolution is not
    out yet (one Query); raises the state table's errors."""
    items = state.values_named(episodes.open_episodes_key, OPEN_EPISODE_PREFIX)
    return {name.removeprefix(OPEN_EPISODE_PREFIX) for name in items}


def settle_member_access(
    episodes: AccessEpisodes,
    state: StateTable,
    publisher: AlertPublisher,
    targets: Iterable[dict[str, Any]],
    *,
    now: datetime,
    deadline: ClaimDeadline,
    seconds_left: Callable[[], float],
    calls: MemberCalls,
) -> MemberAccessSettlement:
    """Open or close the `episodes` of every account of `targets` (summaries of one run, every
    target of the inventory, each with its `access_denied` calls; an account whose targets all
    ran is reached only when `calls`, the member calls answered and refused in this run,
    `UnansweredEndpoints.member_calls`, holds one of its calls answered with success, and its
    episode is closed only once each call it waits for was), and close that of every account
    the inventory no longer lists; every account is tried even when an earlier one failed, and when
    the index of open episodes cannot be read the accounts of `targets` are settled all the
    same. Each alert's claim is bound to `deadline`, the invocation; the search for episodes
    saved before the index to a share of `seconds_left()`, its time left, and an account is
    started only while that is more than SETTLE_ACCOUNT_SECONDS (`not_settled` else)."""
    settlement = MemberAccessSettlement()
    try:
        indexed = open_episode_accounts(episodes, state)
    except (ClientError, BotoCoreError) as error:
        indexed = set()
        settlement.errors.append(
            {"account_id": episodes.open_episodes_key, "error": call_error_text(error)}
        )
    if episodes.saved_before_index:
        try:
            indexed |= _earlier_open_accounts(
                episodes, state, indexed, now=now, seconds_left=seconds_left
            )
        except (ClientError, BotoCoreError) as error:
            # Searched again by the next run, from where the last saved search stopped.
            settlement.errors.append(
                {"account_id": episodes.earlier_search_key, "error": call_error_text(error)}
            )
    for outcome in _outcomes(episodes, targets, indexed, calls):
        if not outcome.denied and not outcome.reached:
            continue
        if seconds_left() <= SETTLE_ACCOUNT_SECONDS:
            # Left as it was, for the next run: never cut between an alert and its record.
            settlement.not_settled.append(outcome.account_id)
            continue
        try:
            _settle(episodes, outcome, state, publisher, settlement, now=now, deadline=deadline)
        except AlertNotDeliveredError as error:
            # Not when another run is publishing this very alert: it delivers it, or fails and
            # its retry does.
            if not isinstance(error.__cause__, RequestInProgressError):
                settlement.undelivered.append(error)
        except (
            ClientError,
            BotoCoreError,
            EpisodeContendedError,
            UnreadableStateValueError,
        ) as error:
            settlement.errors.append(
                {"account_id": outcome.account_id, "error": call_error_text(error)}
            )
    return settlement


def _earlier_open_accounts(
    episodes: AccessEpisodes,
    state: StateTable,
    indexed: set[str],
    *,
    now: datetime,
    seconds_left: Callable[[], float],
) -> set[str]:
    """The accounts not in the index (`indexed`) whose episode, saved before the index existed,
    is open or holds a resolution not out yet (or cannot be read, so that settling it reports
    it), each noted in the index; found by the one-time search as far as this run's share of
    time goes (`fleet_shared.earlier_values`), whose progress is saved once they are noted.
    Raises the state table's errors."""
    found = earlier_keys(
        state,
        episodes.earlier_search_key,
        value_name=EPISODE_VALUE,
        key_prefix=episodes.episode_key(""),
        page_items=EARLIER_SEARCH_PAGE_ITEMS,
        go_on=SearchTime(seconds_left, EARLIER_SEARCH_TIME_SHARE).go_on,
    )
    if found is None:
        return set()
    noted: set[str] = set()
    for key in found.keys:
        account_id = key.removeprefix(episodes.episode_key(""))
        if account_id in indexed:
            continue
        try:
            saved = _read(state, key)
        except UnreadableStateValueError:
            unsettled = True
        else:
            unsettled = saved is not None and (
                saved.value["open"] or saved.value.get("resolution") is not None
            )
        if unsettled:
            state.put_value(episodes.open_episodes_key, f"{OPEN_EPISODE_PREFIX}{account_id}", {})
            noted.add(account_id)
    save_search(state, episodes.earlier_search_key, found, iso_z(now))
    return noted


def _alert(episodes: AccessEpisodes, outcome: _AccountOutcome, now: datetime) -> Alert:
    regions = "; ".join(
        f"{region}: {', '.join(calls[:DENIALS_NAMED])}"
        + (f" and {len(calls) - DENIALS_NAMED} more" if len(calls) > DENIALS_NAMED else "")
        for region, calls in sorted(outcome.denials.items())
    )
    return Alert.create(
        severity=Severity.WARNING,
        source=episodes.source,
        title=f"Member {outcome.account_id} denies the {episodes.role}",
        # The refused resources are the member's names (a table's may take 255 characters):
        # cut, so the alert still says what it means.
        detail=f"Access denied ({cut_echo(regions)}): {episodes.consequence}",
        resource=f"account/{outcome.account_id}",
        account_id=outcome.account_id,
        timestamp=now,
    )


def _read(state: StateTable, key: str) -> VersionedValue | None:
    """The episode saved under `key`; raises UnreadableStateValueError for one not as saved
    here."""
    saved = state.get_versioned_value(key, EPISODE_VALUE)
    if saved is None:
        return None
    record = saved.value
    try:
        readable = isinstance(record.get("open"), bool) and isinstance(record.get("name"), str)
        if record.get("open"):
            Alert.model_validate(record["alert"])
        else:
            readable = readable and isinstance(record.get("closed_at"), str)
        if record.get("resolution") is not None:
            Alert.model_validate(record["resolution"])
        refused_calls = record.get(REFUSED_CALLS, [])
        readable = (
            readable
            and isinstance(refused_calls, list)
            and all(isinstance(call, str) for call in refused_calls)
        )
    except (KeyError, ValidationError):
        readable = False
    if not readable:
        raise UnreadableStateValueError(key, EPISODE_VALUE, "not an access episode as saved")
    return saved


def _settle(
    episodes: AccessEpisodes,
    outcome: _AccountOutcome,
    state: StateTable,
    publisher: AlertPublisher,
    settlement: MemberAccessSettlement,
    *,
    now: datetime,
    deadline: ClaimDeadline,
) -> None:
    """Bring the account's episode up to date, one step per reading of its record; each step
    publishes at most one alert and writes the record only if it is still what was read."""
    key = episodes.episode_key(outcome.account_id)
    for _ in range(SETTLE_STEPS):
        saved = _read(state, key)
        record = None if saved is None else saved.value
        if record is not None and record.get("resolution") is not None:
            # The last episode's resolution goes out before anything else of the account.
            resolution = Alert.model_validate(record["resolution"])
            delivery = f"{key}/{record['name']}/resolved"
            if deliver_once(
                state, publisher, delivery, resolution, DELIVERY_TTL_SECONDS, deadline=deadline
            ):
                settlement.resolved.append(outcome.account_id)
            delivered = {name: value for name, value in record.items() if name != "resolution"}
            state.replace_value(
                key, EPISODE_VALUE, delivered, read=saved, ttl_seconds=EPISODE_TTL_SECONDS
            )
            continue
        is_open = record is not None and record["open"]
        if outcome.denied and not outcome.indexed:
            # Listed before the alert goes out: an episode the index does not list could not be
            # closed once its account left the inventory.
            state.put_value(
                episodes.open_episodes_key, f"{OPEN_EPISODE_PREFIX}{outcome.account_id}", {}
            )
            outcome = replace(outcome, indexed=True)
        if outcome.denied and is_open:
            noted = _waiting_for(
                {**record, "last_denied_at": iso_z(now)}, outcome.still_refused(record)
            )
            if state.replace_value(
                key, EPISODE_VALUE, noted, read=saved, ttl_seconds=EPISODE_TTL_SECONDS
            ):
                return
            continue
        if outcome.denied:
            name = FIRST_EPISODE if record is None else str(record["closed_at"])
            alert = _alert(episodes, outcome, now)
            delivery = f"{key}/{name}/denied"
            if deliver_once(
                state, publisher, delivery, alert, DELIVERY_TTL_SECONDS, deadline=deadline
            ):
                settlement.alerted.append(outcome.account_id)
            opened = _waiting_for(
                {
                    "open": True,
                    "name": name,
                    "opened_at": iso_z(now),
                    "last_denied_at": iso_z(now),
                    "alert": alert.model_dump(mode="json"),
                },
                outcome.refused,
            )
            if state.replace_value(
                key, EPISODE_VALUE, opened, read=saved, ttl_seconds=EPISODE_TTL_SECONDS
            ):
                return
            continue
        if not is_open:
            if outcome.indexed:
                # Closed and its resolution out: nothing left for a later run to close.
                state.delete_value(
                    episodes.open_episodes_key, f"{OPEN_EPISODE_PREFIX}{outcome.account_id}"
                )
            return
        waiting = None if outcome.departed else outcome.still_refused(record)
        if waiting:
            # Calls the member was not seen answering since it refused them: still open, without
            # the calls it answered in this run.
            progress = _waiting_for(record, waiting)
            if progress == record or state.replace_value(
                key, EPISODE_VALUE, progress, read=saved, ttl_seconds=EPISODE_TTL_SECONDS
            ):
                return
            continue
        announced = Alert.model_validate(record["alert"])
        resolution = announced.resolution(outcome.resolved_by, now)
        # Closed before the resolution is published (by the next step): once it is out, no
        # lost write can leave the episode open, which would silence the member's next denial.
        closed = {
            "open": False,
            "name": record["name"],
            "closed_at": iso_z(now),
            "resolution": resolution.model_dump(mode="json"),
        }
        state.replace_value(key, EPISODE_VALUE, closed, read=saved, ttl_seconds=EPISODE_TTL_SECONDS)
    raise EpisodeContendedError(outcome.account_id)


def _waiting_for(record: dict[str, Any], calls: Set[str] | None) -> dict[str, Any]:
    """The open episode `record` waiting for `calls` (its `refused_calls`), or for none named
    when they are not known: it then resolves as those saved before the field did."""
    kept = {name: value for name, value in record.items() if name != REFUSED_CALLS}
    return {**kept, REFUSED_CALLS: sorted(calls)} if calls else kept
