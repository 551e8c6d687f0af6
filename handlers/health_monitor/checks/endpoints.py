"""The cluster's HTTP health endpoints from the inventory: status, latency and error rate.

Each endpoint is probed once per run, up to `PROBES_AT_ONCE` of a cluster's endpoints at once, so
a batch of endpoints that all time out takes about one timeout, not their sum. A batch is started
only while the invocation has its longest timeout left plus `CLUSTER_AWS_SECONDS` for the
cluster's AWS calls after it: a cluster whose probes all timing out would outlast the invocation
is probed in parts. The endpoints left are named in `not_probed` (their history and incidents
stay as they are) and kept in the state table, in the order they were to be probed, and the
next run probes them first: the endpoints take turns, none waits behind those probed before it.
An endpoint allowed longer than the stack file allows (`HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS`, in
a hand-edited or older inventory) is not probed but reported failed, naming `timeout_seconds`.
The outcome is added to the
endpoint's recent results in the state table, and the error rate is computed over the results of
the last HEALTH_ERROR_RATE_WINDOW_MINUTES, so an endpoint that fails one request in three is
flagged even when this run succeeded, and an endpoint that recovered passes once its failures are
older than the window (a window over time, not over a count of results: recovery shows within one
window whatever the cadence). A run one window back never counts (`SCHEDULE_JITTER`), and a
retried run counts once (`SAME_RUN`): at the default 5-minute cadence the 15-minute window always
holds the same 3 runs. Severity is the worst of: the probe itself failing (wrong status,
timeout: at least a warning), the latency against HEALTH_LATENCY_*_MS, and the error rate against
HEALTH_ERROR_RATE_* once the window holds HEALTH_ERROR_RATE_MIN_SAMPLES results (one failed
request is not a 100% error rate). Each result keeps its latency too
(`fleet_shared.endpoint_history`): the change validator reads them as the endpoint's baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Severity
from fleet_shared.aws_answers import call_error_text
from fleet_shared.endpoint_history import (
    HISTORY_RETENTION,
    HISTORY_VALUE,
    EndpointResult,
    endpoint_history_key,
    read_results,
)
from fleet_shared.inventory import HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS, HealthEndpoint
from fleet_shared.observability import observability_for
from fleet_shared.targets_left import TargetsLeftList, in_turn_order
from fleet_shared.validation_errors import shown_value
from handlers.health_monitor.checks.base import ClusterContext
from handlers.health_monitor.cluster_time import CLUSTER_AWS_SECONDS
from handlers.health_monitor.exceptions import HistoryNotStoredError
from handlers.health_monitor.probe import ProbeResult
from handlers.health_monitor.report import CheckResult, raise_severity, threshold_severity
from handlers.health_monitor.services import FUNCTION_NAME

logger = observability_for(FUNCTION_NAME).logger
ItemT = TypeVar("ItemT")

NAME = "endpoint"
SCHEDULE_JITTER = timedelta(seconds=30)
"""How far a run may start from its schedule's minute. The window leaves out results older than
itself minus this, so the run one window back never counts: without it, a run whose probe ended
a fraction of a second later than the previous one's counted a result more."""

SAME_RUN = timedelta(seconds=150)
"""A result this soon after the newest one stands for the same run: it is the platform's retry
of a failed run (one to three minutes later) or an alarm's check between two runs. It replaces
the newest result's outcome and keeps its time, so a retried run is one result of the window, not
two (two scheduled runs are at least 4.5 minutes apart). When the two overlapped and the later
probe's result was written first, the earlier probe's result, arriving second, gives the run its
time and keeps the later probe's outcome."""

PROBES_AT_ONCE = 8
"""A cluster's endpoints probed at once: each probe holds a thread for up to its timeout."""

HISTORY_WRITE_ATTEMPTS = 5
"""Reads and conditional writes of an endpoint's history before giving up: two runs overlap at
most (a scheduled run and a retried one), so more writers than that means something is wrong."""

NOT_PROBED_TTL_SECONDS = 24 * 3600
"""How long the endpoints a run left are remembered: a cluster that left the inventory leaves
nothing behind, and a forgotten list only means the next run starts in inventory order."""


def run(context: ClusterContext) -> list[CheckResult]:
    """One result per health endpoint of the cluster probed or refused in this run, in inventory
    order (none when the inventory lists none); the others are in `context.not_probed`."""
    endpoints = context.target.cluster.health_endpoints
    if not endpoints:
        return []
    refused = {
        index: _refused(endpoint)
        for index, endpoint in enumerate(endpoints)
        if endpoint.timeout_seconds > HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS
    }
    not_probed_list = _endpoints_left(context)
    left_before = not_probed_list.read(context.state, logger)
    in_turn = in_turn_order(range(len(endpoints)), left_before, lambda index: endpoints[index].name)
    turn = [index for index in in_turn if index not in refused]
    outcomes: dict[int, ProbeResult] = {}
    for batch in _batches(turn):
        longest = max(endpoints[index].timeout_seconds for index in batch)
        if not context.deadline.allows(CLUSTER_AWS_SECONDS + longest):
            break
        probes = _probe_batch(context, [endpoints[index] for index in batch])
        outcomes.update(zip(batch, probes, strict=True))
    # Kept in turn order: the next run takes them in that order, so none waits behind the
    # endpoints this run probed.
    left = [endpoints[index].name for index in turn if index not in outcomes]
    not_probed_list.save(context.state, left, left_before, logger)
    context.not_probed = [endpoints[index].name for index in sorted(turn) if index not in outcomes]
    results = refused | {
        index: _judge(context, endpoints[index], outcomes[index]) for index in sorted(outcomes)
    }
    return [results[index] for index in sorted(results)]


def _refused(endpoint: HealthEndpoint) -> CheckResult:
    """The result of an endpoint allowed longer than the stack file allows (a hand-edited or
    older inventory): not probed, since with the cluster's AWS calls its probe may fit in no
    invocation, and a batch that does not fit would stop the endpoints behind it every run."""
    return CheckResult.failed(
        NAME,
        endpoint.name,
        Severity.WARNING,
        f"timeout_seconds: {shown_value(endpoint.timeout_seconds)} is over "
        f"{HEALTH_ENDPOINT_MAX_TIMEOUT_SECONDS:g} s, the longest the stack file allows; not probed",
        url=endpoint.url,
    )


def _endpoints_left(context: ClusterContext) -> TargetsLeftList:
    """Where the names of the cluster's endpoints the last run left are kept."""
    return TargetsLeftList(
        f"{FUNCTION_NAME}/endpoints-not-probed/{context.target.label}",
        "endpoints",
        name="not_probed",
        ttl_seconds=NOT_PROBED_TTL_SECONDS,
    )


def _batches(items: Sequence[ItemT]) -> list[Sequence[ItemT]]:
    return [items[start : start + PROBES_AT_ONCE] for start in range(0, len(items), PROBES_AT_ONCE)]


def _probe_batch(context: ClusterContext, batch: Sequence[HealthEndpoint]) -> list[ProbeResult]:
    """The probes of `batch`, in order, all at once."""
    with ThreadPoolExecutor(max_workers=len(batch)) as pool:
        return list(
            pool.map(
                lambda endpoint: context.probe(
                    endpoint.url, endpoint.timeout_seconds, not _is_redirect(endpoint)
                ),
                batch,
            )
        )


def history_key(context: ClusterContext, endpoint: HealthEndpoint) -> str:
    """The state-table key of an endpoint's recent results."""
    return endpoint_history_key(context.target.label, endpoint.name)


def _judge(context: ClusterContext, endpoint: HealthEndpoint, outcome: ProbeResult) -> CheckResult:
    environment = context.environment
    succeeded = outcome.error is None and outcome.status_code == endpoint.expected_status
    error_rate: float | None
    history_error: str | None = None
    try:
        error_rate, samples = _record(context, endpoint, succeeded, outcome.latency_ms)
    except (ClientError, BotoCoreError, HistoryNotStoredError) as error:
        # The probe still judges this endpoint; only its error rate over the window is unknown,
        # and the cluster's other endpoints are checked as usual.
        error_rate, samples = None, 0
        history_error = f"its results could not be stored: {call_error_text(error)}"

    severity = Severity.INFO
    problems: list[str] = []
    if outcome.error is not None:
        severity = Severity.WARNING
        problems.append(f"request failed: {outcome.error}")
    elif outcome.status_code != endpoint.expected_status:
        severity = Severity.WARNING
        problems.append(f"status {outcome.status_code}, expected {endpoint.expected_status}")
    slow = threshold_severity(
        outcome.latency_ms,
        environment.health_latency_warning_ms,
        environment.health_latency_critical_ms,
    )
    if slow is not None:
        severity = raise_severity(severity, slow)
        problems.append(f"latency {outcome.latency_ms:.0f} ms")
    rated = error_rate is not None and samples >= environment.health_error_rate_min_samples
    failing = threshold_severity(
        error_rate if rated else None,
        environment.health_error_rate_warning,
        environment.health_error_rate_critical,
    )
    if failing is not None:
        severity = raise_severity(severity, failing)
        problems.append(
            f"error rate {error_rate:.0%} over the last "
            f"{environment.health_error_rate_window_minutes} minutes ({samples} checks)"
        )

    data: dict[str, Any] = {
        "url": endpoint.url,
        "status_code": outcome.status_code,
        "latency_ms": outcome.latency_ms,
        "error_rate": error_rate,
        "samples": samples,
    }
    if history_error is not None:
        data["history_error"] = history_error
    if not problems:
        detail = f"status {outcome.status_code} in {outcome.latency_ms:.0f} ms"
        return CheckResult.ok(NAME, endpoint.name, detail, **data)
    return CheckResult.failed(NAME, endpoint.name, severity, "; ".join(problems), **data)


def _record(
    context: ClusterContext, endpoint: HealthEndpoint, succeeded: bool, latency_ms: float
) -> tuple[float, int]:
    """Add this outcome to the endpoint's results (in place of the newest one when that is the
    same run, `SAME_RUN`), keep those of the last `HISTORY_RETENTION`; return (error rate, sample
    count) over the error-rate window.

    The results are kept longer than the window because the change validator reads them back
    for a whole bake, whose callback may come after the bake's last probe.
    The history is written only over what was read (two runs can overlap: a scheduled run and a
    retried one); when another run wrote in between, this outcome is added to what that run
    wrote, so neither result is lost. Raises HistoryNotStoredError when that happens on each of
    `HISTORY_WRITE_ATTEMPTS` attempts.
    """
    key = history_key(context, endpoint)
    now = context.clock.now()
    window_seconds = context.environment.health_error_rate_window_minutes * 60
    window_start = now - timedelta(seconds=window_seconds) + SCHEDULE_JITTER
    kept_seconds = max(window_seconds, int(HISTORY_RETENTION.total_seconds()))
    kept_from = now - timedelta(seconds=kept_seconds)
    for _ in range(HISTORY_WRITE_ATTEMPTS):
        read = context.state.get_versioned_value(key, HISTORY_VALUE)
        kept = [
            result
            for result in read_results(None if read is None else read.value)
            if result.at > kept_from
        ]
        this_run = EndpointResult(now, succeeded, round(latency_ms, 1))
        if kept and abs(now - kept[-1].at) < SAME_RUN:
            # One run seen twice: the first probe's time, the later probe's outcome (the later
            # probe's result may have been written first when the two overlapped).
            same_run = kept.pop()
            first, later = (same_run, this_run) if same_run.at <= now else (this_run, same_run)
            this_run = EndpointResult(first.at, later.ok, later.latency_ms)
        kept.append(this_run)
        # Every kept result is younger than the retention, so the item may expire with it: an
        # endpoint removed from the inventory leaves nothing behind.
        if context.state.replace_value(
            key,
            HISTORY_VALUE,
            {"results": [result.as_entry() for result in kept]},
            read=read,
            ttl_seconds=kept_seconds,
        ):
            recent = [result for result in kept if result.at > window_start]
            failures = sum(1 for result in recent if not result.ok)
            return round(failures / len(recent), 3), len(recent)
    raise HistoryNotStoredError(key, HISTORY_WRITE_ATTEMPTS)


def _is_redirect(endpoint: HealthEndpoint) -> bool:
    """Whether `endpoint` is expected to answer a redirect: its probe then does not follow it."""
    return 300 <= endpoint.expected_status < 400
