"""The end of an anomaly episode: one resolution for each episode whose alert went out.

Every scan records, per series it evaluated, the episodes whose alert was delivered and that
are still in its recent window (ANOMALY_RECENT_HOURS, or ANOMALY_COST_RECENT_DAYS for the daily
cost): the state table value `open_episodes` of `anomaly/<resource>`, with each episode's alert
and its span (the stamps of its first and last anomalous values); an alarm records the episodes
it alerted the same way (`record_alerted_episodes`). A record is saved only if no other writer
saved it since it was read, else the writer's changes (episodes added, dropped, spans grown) are
applied again on what was saved: a scan that saved what it read over an alarm's episode lost it,
and the next scan alerted that spike again. A finding that continues no open episode has its span
recorded as pending (`pending_until`, for as long as its delivery's claim) before its alert is
delivered: an alarm and a scan at once, each drawing the spike from its own start, each found no
episode and each alerted it. A scan's finding that overlaps
an open episode, or comes within `findings.episode_gap` of it, continues that episode under its
key (`continue_open_episodes`): each scan detects on a little more data, so a marginal spike's
run may start a sample later, or join two runs an earlier scan saw apart, and keying by the
exact start alone resolved the episode while the spike went on and alerted the "new" one.
An episode is over when a later scan evaluated its series and no longer finds it there, nor a
finding it continues, and the series' newest value is more than the episode gap after the
episode's last anomalous one: the metric has been back within its expected band for the whole
recent window and longer than a gap inside an episode. The scan then
delivers the alert's resolution (`Alert.resolution`: the same id, so the same PagerDuty dedup
key) with `deliver_once` under `<dedup key>/resolved`, and forgets the episode once SNS took it.
An episode whose alert never went out is never recorded, so it is never resolved; a series that
could not be read resolves nothing.

A series with no value in its recent window (it stopped reporting) does not show the metric back
within its band, so it resolves nothing while it is silent: its record is kept (saved again with
`silent_since`, its last value's time), and once it has been silent for ANOMALY_DEDUP_DAYS its
episodes are closed by a resolution saying so. A series no scan reads any more (its cluster left
the inventory, its metric left ANOMALY_METRICS, or its account cannot be read) is found through
the index `anomaly/open-series` (each series with open episodes, and the first scan that did not
read it); ANOMALY_DEDUP_DAYS after that scan its episodes are closed the same way, and at once
those of a series of an account that left the fleet, listed before and no longer
(`scan.series_of_left_members`, through `close_unread_series`'s `closed_now`). Records are kept
twice ANOMALY_DEDUP_DAYS, so they outlive that wait. Without this the episodes stayed open when
their record expired: their incidents never closed, and the series' next episode opened another
one beside them.

The index is kept in INDEX_PARTS values `open_series#<xx>`, a series in the one its name's digest
picks: one DynamoDB item holds 400 KB, which a few thousand series names fill, and a fleet-wide
incident is when that many are open. A scan replaces only the parts it changes, each only if no
other scan saved it since it was read (else it applies its changes again on what is saved).
A part also holds, under FOLLOWED, the query of each series an alarm alerted an episode of
(`follow_series`, `followed.py`), which the scans read too until its episodes are over; a scan
does not remove one an alarm followed again after the scan read the index.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.alert_delivery import PUBLISH_SECONDS, AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.state_table import ClaimDeadline, StateTable, ValuesRead, VersionedValue
from fleet_shared.timestamps import iso_z, parse_iso
from handlers.anomaly_detector.exceptions import OpenEpisodesNotSavedError
from handlers.anomaly_detector.findings import Finding, episode_gap, key_resource
from handlers.anomaly_detector.followed import FollowedSeries

OPEN_EPISODES = "open_episodes"
OPEN_SERIES_KEY = "anomaly/open-series"
OPEN_SERIES_PART_PREFIX = "open_series#"
INDEX_PARTS = 256
"""Parts of the index, a series in the one its name's SHA-256 picks: each holds about 1/256 of the
open series, so the index stays within DynamoDB's item size up to hundreds of thousands of them."""
RECORD_TTL_FACTOR = 2
"""A record is kept this many times ANOMALY_DEDUP_DAYS: longer than the wait before the episodes
of a series no longer read are closed, which needs the record's alerts."""
INDEX_ATTEMPTS = 3
"""Tries to save a part of the index against other scans saving it at the same time; the next
scan updates it again if all fail."""
PENDING = timedelta(seconds=PUBLISH_SECONDS)
"""How long the span of an episode whose alert a writer is delivering is kept before that alert is
recorded: as long as the delivery's claim turns away a concurrent copy."""
FOLLOWED = "followed"
"""The field of an index part that holds, per series an alarm alerted an episode of, the query
that reads it (`followed.FollowedSeries`): the scans read those series too, to resolve it."""
RECORD_ATTEMPTS = 5
"""Tries to save a series' record against other writers (a scan, alarms) saving it at the same
time; the invocation fails, to be retried, if all fail."""


@dataclass(frozen=True)
class EvaluatedSeries:
    """A series a scan evaluated: its resource, its recent window in words, whether it may
    resolve episodes (it has values in that window), and the time of its newest value (None
    when the read returned none)."""

    resource: str
    window: str
    resolves: bool = True
    last_value_at: datetime | None = None


@dataclass(frozen=True)
class Resolutions:
    """What ending the episodes did, and which evaluated series still have open episodes."""

    sent: int
    failures: list[AlertNotDeliveredError]
    open_series: frozenset[str] = frozenset()
    unreadable_parts: dict[str, UnreadableStateValueError] = field(default_factory=dict)
    """The parts of the index read again after another writer changed them, and found
    unreadable: left as they are, each one error of the scan."""
    unreadable_records: dict[str, UnreadableStateValueError] = field(default_factory=dict)
    """By resource, the records of open episodes that cannot be read (`read_record`): left as
    they are, each one error of the scan."""


def state_key(resource: str) -> str:
    """The state table key of a series' open episodes."""
    return f"anomaly/{key_resource(resource)}"


def read_record(table: StateTable, resource: str) -> VersionedValue | None:
    """The record of `resource`'s open episodes as saved, with its version; raises
    UnreadableStateValueError naming it when it cannot be read or is not shaped as a record (a
    hand edit, corruption): read as it is, one misshapen span raised a bare KeyError or
    ValueError that failed the whole scan, every series' alerts and resolutions with it."""
    read = table.get_versioned_value(state_key(resource), OPEN_EPISODES)
    if read is not None and not _is_record(read.value):
        raise UnreadableStateValueError(
            state_key(resource),
            OPEN_EPISODES,
            "not a record of open episodes (`episodes`: an alert by key; `spans`: kind, up, "
            "start, end and period_seconds by key; `silent_since`: a time)",
        )
    return read


def _is_record(value: dict[str, Any]) -> bool:
    """Whether `value` is shaped as a record of open episodes, every field a reader uses."""
    episodes = value.get("episodes", {})
    spans = value.get("spans", {})
    try:
        if "silent_since" in value:
            parse_iso(value["silent_since"])
        for alert in episodes.values():
            Alert.model_validate(alert)
        for span in spans.values():
            for name in ("start", "end", *(["pending_until"] if "pending_until" in span else [])):
                parse_iso(span[name])
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return all(
        isinstance(span.get("kind"), str)
        and isinstance(span.get("up"), bool)
        and type(span.get("period_seconds")) is int
        and span["period_seconds"] > 0
        for span in spans.values()
    )


@dataclass(frozen=True)
class ContinuedFindings:
    """The findings as `continue_open_episodes` keyed them, and the record of each of their
    series as it read or saved it (the `read` of the next save, which is conditional)."""

    findings: list[Finding]
    records: dict[str, VersionedValue | None]
    unreadable: dict[str, UnreadableStateValueError] = field(default_factory=dict)
    """By resource, the records that cannot be read (`read_record`): the series' findings are
    left out, neither alerted nor continued, and its record is left as it is."""


def continue_open_episodes(
    findings: list[Finding],
    table: StateTable,
    *,
    now: datetime,
    ttl_seconds: int,
    follow_only: frozenset[str] = frozenset(),
) -> ContinuedFindings:
    """`findings`, each that continues an open episode of its series recorded under another key
    (`Finding.continues`, same kind and direction), or one whose alert is being delivered, given
    that episode's key: the earliest one's when it continues several. The span of each finding
    that continues none is recorded as pending before its alert is delivered, so that a writer
    at the same time (an alarm and a scan) drawing the spike from another start continues it
    instead of alerting it a second time; a finding on a series in `follow_only` (read only to
    follow an alarm's episode, `followed.py`) that continues none is left out, as are the
    findings of a series whose record cannot be read (`ContinuedFindings.unreadable`)."""
    by_resource: dict[str, list[int]] = defaultdict(list)
    for index, finding in enumerate(findings):
        by_resource[finding.resource].append(index)
    continued: list[Finding | None] = list(findings)
    records: dict[str, VersionedValue | None] = {}
    unreadable: dict[str, UnreadableStateValueError] = {}
    for resource, indexes in by_resource.items():
        try:
            records[resource] = _continue_series(
                resource, [(index, findings[index]) for index in indexes], continued, table,
                now=now, ttl_seconds=ttl_seconds, follow_only=follow_only,
            )  # fmt: skip
        except UnreadableStateValueError as error:
            unreadable[resource] = error
            for index in indexes:
                continued[index] = None
    return ContinuedFindings(
        [finding for finding in continued if finding is not None], records, unreadable
    )


def _continue_series(
    resource: str,
    indexed: list[tuple[int, Finding]],
    continued: list[Finding | None],
    table: StateTable,
    *,
    now: datetime,
    ttl_seconds: int,
    follow_only: frozenset[str],
) -> VersionedValue | None:
    """`continue_open_episodes` for the findings of one series (`indexed`, by their index in
    `continued`, which is set); the series' record as read or saved."""
    for _ in range(RECORD_ATTEMPTS):
        read = read_record(table, resource)
        record = read.value if read is not None else {}
        episodes: dict[str, Any] = record.get("episodes", {})
        spans: dict[str, Any] = dict(record.get("spans", {}))
        for index, finding in indexed:
            key = finding.dedup_key()
            if key in episodes or (key in spans and _is_pending(spans[key], now)):
                continued[index] = finding
                continue
            matches = sorted(
                (span["start"], known)
                for known, span in spans.items()
                if (known in episodes or _is_pending(span, now)) and _is_continued_by(span, finding)
            )
            if matches:
                continued[index] = replace(finding, episode_key=matches[0][1])
                continue
            if resource in follow_only:
                continued[index] = None
                continue
            spans[key] = {**_span_of(finding), "pending_until": iso_z(now + PENDING)}
            continued[index] = finding
        if spans == record.get("spans", {}):
            return read
        pending = {**record, "episodes": episodes, "spans": spans}
        if table.replace_value(
            state_key(resource),
            OPEN_EPISODES,
            pending,
            read=read,
            ttl_seconds=RECORD_TTL_FACTOR * ttl_seconds,
        ):
            return VersionedValue.saved(pending)
    raise OpenEpisodesNotSavedError(resource, RECORD_ATTEMPTS)


def _is_pending(span: dict[str, Any], now: datetime) -> bool:
    """Whether `span` is of an episode whose alert a writer may be delivering right now."""
    return "pending_until" in span and parse_iso(span["pending_until"]) > now


def record_alerted_episodes(
    findings: list[Finding],
    delivered: dict[str, Alert],
    table: StateTable,
    *,
    ttl_seconds: int,
    now: datetime,
) -> list[str]:
    """Record the episodes of `findings` whose alert is out (`delivered`, by dedup key) as open,
    with their spans, as a scan records its own: an alarm's, so that a later scan drawing the
    same spike from another start continues it, and resolves it once it is over. The series
    with such an episode, in name order."""
    by_resource: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.dedup_key() in delivered:
            by_resource[finding.resource].append(finding)
    for resource, alerted in sorted(by_resource.items()):
        read = read_record(table, resource)
        record = read.value if read is not None else {}
        episodes: dict[str, Any] = dict(record.get("episodes", {}))
        spans: dict[str, Any] = dict(record.get("spans", {}))
        for finding in alerted:
            key = finding.dedup_key()
            episodes.setdefault(key, delivered[key].model_dump(mode="json"))
            spans[key] = _widened(spans.get(key), finding)
        changed = {**record, "episodes": episodes, "spans": spans}
        if changed != record:
            _save_record(table, resource, read, changed, ttl_seconds=ttl_seconds, now=now)
    return sorted(by_resource)


def _span_of(finding: Finding) -> dict[str, Any]:
    """What a record keeps of an episode to match later scans' findings to it."""
    return {
        "kind": finding.kind,
        "up": finding.up,
        "start": iso_z(finding.start),
        "end": iso_z(finding.end),
        "period_seconds": int(finding.period.total_seconds()),
    }


def _is_continued_by(span: dict[str, Any] | None, finding: Finding) -> bool:
    """Whether `finding` continues the recorded episode `span` (None: a record from before spans
    were kept, matched by its key alone)."""
    return (
        span is not None
        and (span["kind"], span["up"]) == (finding.kind, finding.up)
        and finding.continues(parse_iso(span["start"]), parse_iso(span["end"]))
    )


def _widened(span: dict[str, Any] | None, finding: Finding) -> dict[str, Any]:
    """The recorded span grown to cover `finding`."""
    grown = _span_of(finding)
    if span is not None:
        grown["start"] = min(span["start"], grown["start"])
        grown["end"] = max(span["end"], grown["end"])
    return grown


def _is_over(span: dict[str, Any] | None, series: EvaluatedSeries) -> bool:
    """Whether the series' newest value is more than the episode gap after the episode's last
    anomalous value, so no later value can continue it (a record without a span: yes)."""
    if span is None or series.last_value_at is None:
        return True
    gap = episode_gap(timedelta(seconds=span["period_seconds"]))
    return series.last_value_at - parse_iso(span["end"]) > gap


def resolve_ended_episodes(
    evaluated: list[EvaluatedSeries],
    findings: list[Finding],
    delivered: dict[str, Alert],
    table: StateTable,
    publisher: AlertPublisher,
    *,
    records: dict[str, VersionedValue | None],
    unreadable: Mapping[str, UnreadableStateValueError] | None = None,
    ttl_seconds: int,
    now: datetime,
    deadline: ClaimDeadline | None,
) -> Resolutions:
    """Record the delivered episodes of each evaluated series, and resolve those that ended
    (each resolution's claim bound to `deadline`, the invocation); close the episodes of a series
    silent for `ttl_seconds` (ANOMALY_DEDUP_DAYS). A series in `records` (read, or saved, by
    `continue_open_episodes`) is not read again: each save is conditional, so what another
    writer saved since is not lost. A series whose record cannot be read (in `unreadable`, as
    `continue_open_episodes` found it, or now) is left as it is, counted as still open so the
    index keeps it, and returned in `Resolutions.unreadable_records`."""
    unreadable_records = dict(unreadable or {})
    current: dict[str, list[Finding]] = {}
    for finding in findings:
        current.setdefault(finding.resource, []).append(finding)
    sent = 0
    failures: list[AlertNotDeliveredError] = []
    open_series: set[str] = set()
    for series in evaluated:
        if series.resource in records:
            read = records[series.resource]
        elif series.resource in unreadable_records:
            open_series.add(series.resource)
            continue
        else:
            try:
                read = read_record(table, series.resource)
            except UnreadableStateValueError as error:
                unreadable_records[series.resource] = error
                open_series.add(series.resource)
                continue
        record = read.value if read is not None else {}
        stored: dict[str, Any] = record.get("episodes", {})
        if not series.resolves:
            if read is not None and stored:
                closed = _close_if_silent_too_long(
                    series,
                    read,
                    table,
                    publisher,
                    ttl_seconds=ttl_seconds,
                    now=now,
                    deadline=deadline,
                )
                sent += closed.sent
                failures += closed.failures
                open_series |= closed.open_series
            continue
        spans: dict[str, Any] = dict(record.get("spans", {}))
        series_findings = current.get(series.resource, [])
        ongoing = {finding.dedup_key() for finding in series_findings} | {
            key
            for key in stored
            if any(_is_continued_by(spans.get(key), finding) for finding in series_findings)
        }
        # An episode not seen now, but within the gap of the newest value, may still go on.
        ongoing |= {key for key in stored if not _is_over(spans.get(key), series)}
        still_open = {key: alert for key, alert in stored.items() if key in ongoing}
        for key, alert in delivered.items():
            if key in ongoing and key not in still_open:
                still_open[key] = alert.model_dump(mode="json")
        for finding in series_findings:
            for key in still_open:
                if key == finding.dedup_key() or _is_continued_by(spans.get(key), finding):
                    spans[key] = _widened(spans.get(key), finding)
        for key in sorted(set(stored) - ongoing):
            alert = Alert.model_validate(stored[key])
            resolution = alert.resolution(
                f"{alert.title} is over: {series.resource} has been back within its expected "
                f"band for {series.window}.",
                now,
            )
            try:
                if deliver_once(
                    table,
                    publisher,
                    f"{key}/resolved",
                    resolution,
                    ttl_seconds,
                    deadline=deadline,
                ):
                    sent += 1
            except AlertNotDeliveredError as error:
                # Kept open, so the next scan (or the retry) sends the resolution.
                still_open[key] = stored[key]
                failures.append(error)
        if still_open or stored:
            # What is saved: an episode another writer (an alarm) recorded meanwhile is open too.
            still_open = _save_record(
                table,
                series.resource,
                read,
                {"episodes": still_open, "spans": spans},
                ttl_seconds=ttl_seconds,
                now=now,
            )
        if still_open:
            open_series.add(series.resource)
    return Resolutions(
        sent, failures, frozenset(open_series), unreadable_records=unreadable_records
    )


def _close_if_silent_too_long(
    series: EvaluatedSeries,
    read: VersionedValue,
    table: StateTable,
    publisher: AlertPublisher,
    *,
    ttl_seconds: int,
    now: datetime,
    deadline: ClaimDeadline | None,
) -> Resolutions:
    """Keep the open episodes of a silent series, or close them once it has been silent for
    `ttl_seconds`: one resolution each, saying the series stopped reporting (each claim bound to
    `deadline`, the invocation)."""
    record = read.value
    known = [parse_iso(record["silent_since"])] if "silent_since" in record else []
    if series.last_value_at is not None:
        known.append(series.last_value_at)
    silent_since = min(known, default=now)
    still_open: dict[str, Any] = record["episodes"]
    sent = 0
    failures: list[AlertNotDeliveredError] = []
    if now - silent_since >= timedelta(seconds=ttl_seconds):
        days = (now - silent_since).days
        reason = f"has reported no value since {iso_z(silent_since)} ({days} days)"
        sent, failures, still_open = _close_episodes(
            series.resource,
            still_open,
            reason,
            table,
            publisher,
            ttl_seconds=ttl_seconds,
            now=now,
            deadline=deadline,
        )
    still_open = _save_record(
        table,
        series.resource,
        read,
        {**record, "episodes": still_open, "silent_since": iso_z(silent_since)},
        ttl_seconds=ttl_seconds,
        now=now,
    )
    return Resolutions(sent, failures, frozenset({series.resource} if still_open else ()))


def read_index(table: StateTable) -> ValuesRead:
    """The parts of the index of open series, by name, each with its version, and the error of
    each part that cannot be read (a hand edit, corruption): such a part's series are neither
    followed nor closed, and the part is left as it is, while the others are worked as ever. A
    DynamoDB error fails the invocation: a scan cannot record the episodes it alerts without the
    table either (a record not saved fails it, RECORD_ATTEMPTS), and its retry reads the index
    again. A part that reads as JSON but is not shaped as one (its `series` no object of text
    or null by resource, its `followed` no object of entries `FollowedSeries` reads: a hand
    edit) is unreadable too, where it would raise a bare error in the middle of the scan."""
    read = table.readable_values_named(OPEN_SERIES_KEY, OPEN_SERIES_PART_PREFIX)
    misshapen = {name for name, part in read.values.items() if not _is_index_part(part.value)}
    if not misshapen:
        return read
    unreadable = dict(read.unreadable)
    for name in misshapen:
        unreadable[name] = _misshapen_part_error(name)
    values = {name: part for name, part in read.values.items() if name not in misshapen}
    return ValuesRead(values=values, unreadable=unreadable)


def _read_part_again(table: StateTable, name: str) -> VersionedValue | None:
    """The part `name` of the index as saved now, after another writer changed it; raises
    UnreadableStateValueError when it cannot be read or is not shaped as a part (a hand edit
    in between), as `read_index` names such a part."""
    read = table.get_versioned_value(OPEN_SERIES_KEY, name)
    if read is not None and not _is_index_part(read.value):
        raise _misshapen_part_error(name)
    return read


def _misshapen_part_error(name: str) -> UnreadableStateValueError:
    """The error of the part `name` of the index that reads as JSON but is not shaped as one."""
    return UnreadableStateValueError(
        OPEN_SERIES_KEY,
        name,
        f"not a part of the index (`series`: text or null by resource; `{FOLLOWED}`: "
        "an object by resource)",
    )


def _is_index_part(value: dict[str, Any]) -> bool:
    """Whether `value` is shaped as a part of the index of open series, each followed series'
    entry one `FollowedSeries` reads: an entry without its account, say, raised a bare KeyError
    in the middle of the scan, which then alerted and resolved nothing."""
    series = value.get("series")
    followed = value.get(FOLLOWED, {})
    return (
        isinstance(series, dict)
        and all(isinstance(since, str | None) for since in series.values())
        and isinstance(followed, dict)
        and all(_is_followed_entry(entry) for entry in followed.values())
    )


def _is_followed_entry(entry: object) -> bool:
    """Whether `entry` is an index entry `FollowedSeries.from_value` reads."""
    if not isinstance(entry, dict):
        return False
    try:
        FollowedSeries.from_value(entry)
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return True


def followed_in(parts: dict[str, VersionedValue]) -> dict[str, dict[str, Any]]:
    """The series alarms asked the scans to follow, with their entries, by resource."""
    return {
        resource: entry
        for part in parts.values()
        for resource, entry in part.value.get(FOLLOWED, {}).items()
    }


def follow_series(table: StateTable, followed: dict[str, dict[str, Any]]) -> None:
    """Put each series of `followed` (resource: its `FollowedSeries.to_value` entry) in the index
    as open and to be followed by the scans, again on what another writer saved meanwhile.
    Raises `OpenEpisodesNotSavedError` when a part could not be saved, so the alarm's invocation
    fails and its retry follows the series, and `UnreadableStateValueError` when a part it would
    change cannot be read, first or after another writer changed it (no retry reads it
    better)."""
    if not followed:
        return
    changes: dict[str, _IndexChanges] = defaultdict(_IndexChanges)
    for resource, entry in followed.items():
        changes[index_part(resource)].opened.add(resource)
        changes[index_part(resource)].followed[resource] = entry
    index = read_index(table)
    for name in sorted(changes):
        if name in index.unreadable:
            # Replacing the part would lose its series; the alarm's result names it.
            raise index.unreadable[name]
    unsaved, unreadable = _save_index_changes(table, index.values, changes, seen={})
    if unreadable:
        raise unreadable[min(unreadable)]
    if unsaved:
        raise OpenEpisodesNotSavedError(f"{OPEN_SERIES_KEY} {unsaved[0]}", INDEX_ATTEMPTS)


def close_unread_series(
    evaluated: list[EvaluatedSeries],
    open_series: frozenset[str],
    parts: dict[str, VersionedValue],
    table: StateTable,
    publisher: AlertPublisher,
    *,
    closed_now: Mapping[str, str] | None = None,
    unreadable_parts: frozenset[str] = frozenset(),
    ttl_seconds: int,
    now: datetime,
    deadline: ClaimDeadline | None,
) -> Resolutions:
    """Close the episodes of the series with open episodes that no scan has read for
    `ttl_seconds` (ANOMALY_DEDUP_DAYS), and at once those of the unread series of `closed_now`
    (resource: why none will be read), each claim bound to `deadline` (the invocation), and keep
    the index of open series (`parts`, as read before the scan) up to date: this scan's
    `open_series` (evaluated, episodes still open) are in it, its other evaluated series and the
    closed ones are not (nor followed any more), and an unread series is marked with when it was
    first missed; the parts of `unreadable_parts` (`read_index`) are left as they are, and so
    is a part found unreadable when read again after another writer changed it (returned in
    `Resolutions.unreadable_parts`), and a series whose record cannot be read stays in the
    index as it is (`Resolutions.unreadable_records`)."""
    closed_now = closed_now or {}
    read_resources = {series.resource for series in evaluated}
    index: dict[str, str | None] = {
        resource: missed_since
        for part in parts.values()
        for resource, missed_since in part.value["series"].items()
    }
    sent = 0
    failures: list[AlertNotDeliveredError] = []
    gone: set[str] = set()
    first_missed: dict[str, str] = {}
    unreadable_records: dict[str, UnreadableStateValueError] = {}
    for resource, missed_since in sorted(index.items()):
        if resource in read_resources:
            continue
        reason = closed_now.get(resource)
        if reason is None:
            if missed_since is None:
                first_missed[resource] = iso_z(now)
                continue
            if now - parse_iso(missed_since) < timedelta(seconds=ttl_seconds):
                continue
            days = (now - parse_iso(missed_since)).days
            reason = f"is no longer read by the scans since {missed_since} ({days} days)"
        try:
            read = read_record(table, resource)
        except UnreadableStateValueError as error:
            # Left in the index as it is, to be closed once its record is mended.
            unreadable_records[resource] = error
            continue
        record = read.value if read is not None else {}
        closed, not_sent, still_open = _close_episodes(
            resource,
            record.get("episodes", {}),
            reason,
            table,
            publisher,
            ttl_seconds=ttl_seconds,
            now=now,
            deadline=deadline,
        )
        sent += closed
        failures += not_sent
        if read is not None:
            still_open = _save_record(
                table,
                resource,
                read,
                {**record, "episodes": still_open},
                ttl_seconds=ttl_seconds,
                now=now,
            )
        if not still_open:
            gone.add(resource)
    unreadable_again = _update_index(
        table,
        parts,
        open_series,
        (read_resources - open_series) | gone,
        first_missed,
        seen=followed_in(parts),
        unreadable_parts=unreadable_parts,
    )
    return Resolutions(
        sent, failures, unreadable_parts=unreadable_again, unreadable_records=unreadable_records
    )


def index_part(resource: str) -> str:
    """The name of the index part that holds `resource`."""
    digest = hashlib.sha256(resource.encode("utf-8")).hexdigest()
    return f"{OPEN_SERIES_PART_PREFIX}{int(digest[:8], 16) % INDEX_PARTS:02x}"


@dataclass
class _IndexChanges:
    """One scan's changes to one part of the index."""

    opened: set[str] = field(default_factory=set)
    """Series the scan evaluated whose episodes are still open (no longer missed, if they were)."""
    removed: set[str] = field(default_factory=set)
    """Series the scan evaluated without open episodes, and unread series it closed."""
    first_missed: dict[str, str] = field(default_factory=dict)
    """Unread series the scan is the first to miss, with its time."""
    followed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Series an alarm alerted an episode of, with the entry of their query (`FollowedSeries`)."""

    def applied_to(self, saved: dict[str, Any], seen: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The part as `saved`, with these changes; a series another scan removed meanwhile is
        not marked missed again, and one an alarm followed since this scan read the index (its
        entry is not the one in `seen`) is not removed: its episode may be one the scan did not
        see."""
        saved_series: dict[str, str | None] = saved.get("series", {})
        saved_followed: dict[str, dict[str, Any]] = saved.get(FOLLOWED, {})
        removed = {
            resource
            for resource in self.removed
            if resource not in saved_followed or seen.get(resource) == saved_followed[resource]
        }
        index = {
            resource: since for resource, since in saved_series.items() if resource not in removed
        }
        index |= dict.fromkeys(self.opened)
        index |= {
            resource: since
            for resource, since in self.first_missed.items()
            if resource in index and index[resource] is None and resource not in self.opened
        }
        followed = {
            resource: entry for resource, entry in saved_followed.items() if resource not in removed
        }
        return _index_part_value(index, followed | self.followed)


def _index_part_value(
    series: dict[str, str | None], followed: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A part of the index as saved: its series, and the followed ones when there are some."""
    return {"series": series, **({FOLLOWED: followed} if followed else {})}


def _update_index(
    table: StateTable,
    parts: dict[str, VersionedValue],
    open_series: frozenset[str],
    removed: set[str],
    first_missed: dict[str, str],
    *,
    seen: dict[str, dict[str, Any]],
    unreadable_parts: frozenset[str],
) -> dict[str, UnreadableStateValueError]:
    """Apply this scan's changes to each part of the index they fall in, again on what another
    scan saved in that part meanwhile; a part not saved after INDEX_ATTEMPTS is left to the next
    scan. A part that cannot be read is left as it is: replacing it would lose its series, and
    a part saved as new where it stands is refused, then read again, unreadable. Returns the
    error of each part found unreadable only when read again (`_save_index_changes`)."""
    changes: dict[str, _IndexChanges] = defaultdict(_IndexChanges)
    for resource in open_series:
        changes[index_part(resource)].opened.add(resource)
    for resource in removed:
        changes[index_part(resource)].removed.add(resource)
    for resource, since in first_missed.items():
        changes[index_part(resource)].first_missed[resource] = since
    for name in unreadable_parts:
        changes.pop(name, None)
    return _save_index_changes(table, parts, changes, seen=seen)[1]


def _save_index_changes(
    table: StateTable,
    parts: dict[str, VersionedValue],
    changes: dict[str, _IndexChanges],
    *,
    seen: dict[str, dict[str, Any]],
) -> tuple[list[str], dict[str, UnreadableStateValueError]]:
    """Save `changes` in each part (`parts` as read), each again on what another writer saved
    in it meanwhile, up to INDEX_ATTEMPTS times; the names of the parts not saved, and the error
    of each part that, read again, could not be read (a hand edit in between: left as it is,
    where its bare KeyError or AttributeError failed the scan and left the parts after it)."""
    unsaved: list[str] = []
    unreadable: dict[str, UnreadableStateValueError] = {}
    for name in sorted(changes):
        read = parts.get(name)
        for _ in range(INDEX_ATTEMPTS):
            saved: dict[str, Any] = read.value if read is not None else {}
            part = changes[name].applied_to(saved, seen)
            if part == _index_part_value(saved.get("series", {}), saved.get(FOLLOWED, {})):
                break
            if table.replace_value(OPEN_SERIES_KEY, name, part, read=read):
                break
            try:
                read = _read_part_again(table, name)
            except UnreadableStateValueError as error:
                unreadable[name] = error
                break
        else:
            unsaved.append(name)
    return unsaved, unreadable


def _close_episodes(
    resource: str,
    episodes: dict[str, Any],
    reason: str,
    table: StateTable,
    publisher: AlertPublisher,
    *,
    ttl_seconds: int,
    now: datetime,
    deadline: ClaimDeadline | None,
) -> tuple[int, list[AlertNotDeliveredError], dict[str, Any]]:
    """Send one resolution per episode, saying why it is closed although the metric was not
    seen back within its band; (resolutions sent, failures, episodes still open)."""
    sent = 0
    failures: list[AlertNotDeliveredError] = []
    still_open = dict(episodes)
    for key in sorted(episodes):
        alert = Alert.model_validate(episodes[key])
        resolution = alert.resolution(
            f"{alert.title} is closed: {resource} {reason}, so the episode can no longer be "
            "followed.",
            now,
        )
        try:
            if deliver_once(
                table, publisher, f"{key}/resolved", resolution, ttl_seconds, deadline=deadline
            ):
                sent += 1
        except AlertNotDeliveredError as error:
            # Kept open, so the next scan (or the retry) sends the resolution.
            failures.append(error)
            continue
        del still_open[key]
    return sent, failures, still_open


def _save_record(
    table: StateTable,
    resource: str,
    read: VersionedValue | None,
    record: dict[str, Any],
    *,
    ttl_seconds: int,
    now: datetime,
) -> dict[str, Any]:
    """Save a series' record, with the spans of its open episodes and of those whose alert is
    being delivered only, if it is still as `read` (`record` was computed from it); else apply
    `record`'s changes again on what another writer (an alarm, or a scan) saved meanwhile, so
    neither loses the episodes the other recorded. The open episodes saved."""
    for _ in range(RECORD_ATTEMPTS):
        episodes = record["episodes"]
        spans = {
            key: span
            for key, span in record.get("spans", {}).items()
            if key in episodes or _is_pending(span, now)
        }
        if table.replace_value(
            state_key(resource),
            OPEN_EPISODES,
            {**record, "spans": spans},
            read=read,
            ttl_seconds=RECORD_TTL_FACTOR * ttl_seconds,
        ):
            return episodes
        saved = read_record(table, resource)
        record = _rebased(record, read.value if read is not None else {}, saved)
        read = saved
    raise OpenEpisodesNotSavedError(resource, RECORD_ATTEMPTS)


def _rebased(
    record: dict[str, Any], base: dict[str, Any], saved: VersionedValue | None
) -> dict[str, Any]:
    """`record`, computed from `base`, as changes applied on `saved` (what another writer saved
    since `base` was read): the episodes and other fields (`silent_since`) `record` set or
    dropped, the others as saved; an episode's span covering both writers' spans."""
    theirs = saved.value if saved is not None else {}
    kept = {name: value for name, value in theirs.items() if name not in base or name in record}
    ours_episodes: dict[str, Any] = record["episodes"]
    base_episodes: dict[str, Any] = base.get("episodes", {})
    dropped = set(base_episodes) - set(ours_episodes)
    episodes = {
        key: alert for key, alert in theirs.get("episodes", {}).items() if key not in dropped
    }
    episodes |= {key: alert for key, alert in ours_episodes.items() if key not in base_episodes}
    our_spans: dict[str, Any] = record.get("spans", {})
    their_spans: dict[str, Any] = theirs.get("spans", {})
    spans = {key: _covering(our_spans[key], their_spans.get(key)) for key in our_spans}
    spans |= {key: span for key, span in their_spans.items() if key not in our_spans}
    return {**kept, **record, "episodes": episodes, "spans": spans}


def _covering(span: dict[str, Any], other: dict[str, Any] | None) -> dict[str, Any]:
    """The span covering both (`span` when there is no other)."""
    if other is None:
        return span
    return {
        **span,
        "start": min(span["start"], other["start"]),
        "end": max(span["end"], other["end"]),
    }
