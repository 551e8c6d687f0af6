"""Predictive scaling: from a cluster's hourly forecast to the scaler's `predictive` request.

For a cluster whose stack file says `scaling.mode: predictive`, each `forecast_fleet` run decides
for the next hour (the forecast steps that overlap the hour after the run):
- without a forecast for a failure that says nothing about the cluster's load (a call refused,
  throttled, unanswered or answered with a page; a node group or instance type that could not be
  described), the node groups keep their sizes (`outcome: sizes_kept`, with SCALER_FUNCTION_NAME
  set): the scaler is not asked, and the run reports the failure. Handed back, a node group the
  forecast had raised above the schedule's size for the hour's load lost those nodes at once, on
  one throttled read;
- without a forecast because the history is too short (HISTORY_TOO_SHORT), with a
  history that has no data for more than MAX_HOURS_WITHOUT_HISTORY whole hours before the run's
  hour, with a confidence below `scaling.confidence_threshold`, or with a p90 or confidence of the
  hour that is not a finite number, the schedule is kept and the decision says why.
  The confidence is that of the steps the decision sizes on (their horizons' out-of-sample hit rate,
  each weighted by the minutes of the coming hour it covers), not of the whole horizon: a forecast 3
  hours out does not make the next hour's less trustworthy. Keeping the schedule hands every node
  group of the cluster back to it: the scaler is asked `predictive` with `hand_back: true` per node
  group, and returns a node group whose size the forecast set to the schedule's size for the hour
  (eks_scaler/predictive.py; the schedule's own or a person's last size stands). Without
  SCALER_FUNCTION_NAME nothing is asked;
- otherwise each node group is asked for the node count that keeps the p90 of the coming hour's
  demand (the forecast's `coming_hour.p90_vcpu`: the 0.9 quantile of the steps the hour spans,
  each step's conformal distribution weighted by its minutes of the hour) plus
  `headroom_percent`, at `target_utilization` percent of its nodes' allocatable vCPU (its share
  of the cluster's demand as `forecast.py` splits it), and, when memory is forecast too, the same
  for the hour's p90 memory demand (`p90_memory_mib`) and its nodes' allocatable memory: the
  larger of the two counts. The scaler bounds that count (working hours floor, floor, max_size,
  max_step) and applies it through the usual path (lock, cooldown, idempotency with the request
  id `predictive-<hour>`, the hour the run was scheduled in, the same for every attempt of the
  run that sizes; `predictive-hand-back-<hour>` for one that hands back; dry run, history,
  notice).
Every decision is recorded (fleet_shared/predictive_decisions.py) with the forecast of the hour,
its interval, the confidence, the capacity per node and the reason, and the scaler's answer per
node group (to the forecast's sizes or to the hand-back); one the state table refuses stands,
with `not_recorded` saying why.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import UnreadableAnswerError, call_error_text
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.inventory import Cluster, ClusterScaling
from fleet_shared.predictive_decisions import (
    DecisionNotRecordedError,
    decisions_key,
    record_decision,
)
from fleet_shared.scaler_requests import ask_scaler
from fleet_shared.timestamps import iso_z, parse_iso
from handlers.demand_forecaster.asked_sizes import first_asked
from handlers.demand_forecaster.exceptions import InsufficientHistoryError
from handlers.demand_forecaster.forecast import (
    PREDICTIVE_QUANTILE,
    NoHistoryError,
    share_of_the_hour,
)
from handlers.demand_forecaster.services import ForecasterServices

HOUR = timedelta(hours=1)
SIZES_KEPT = "sizes_kept"
"""A decision's `outcome` when the forecast failed for a reason that says nothing about the
cluster's load: the scaler is not asked, the node groups keep their sizes."""
HISTORY_TOO_SHORT = (InsufficientHistoryError, NoHistoryError)
"""The failures of a forecast that hand the cluster back to the schedule: its history is too
short to forecast from (a new cluster, Container Insights off), so no forecast can say what it
needs. Any other failure is of a call or an answer, and the next hour's forecast may well work."""
SCALER_ANSWER = "the scaler's predictive request"
"""The call an answer not shaped as the scaler's is named after."""
SCALER_IN_PROGRESS = "in_progress"
"""A node group's `scaler_status` when the scaler answered that the same request (another copy of
the run) is being carried out: not a failure."""
_ROUNDING = 1e-9
"""Demand exactly at a node boundary must not round up to one more node."""
MAX_HOURS_WITHOUT_HISTORY = 6
"""Whole hours without Container Insights data before the run's hour that a decision still sizes
across. The forecast starts after the last hour with data, and its confidence at long horizons
is measured on the history alone: a cluster whose agent stopped days ago kept a confidence of
0.95 on a generated daily pattern, and would have been sized on that pattern with nothing to
say its load had not changed. A few hours cover CloudWatch's late or lost periods."""


def nodes_for_demand(
    demand: float, share: float, allocatable_per_node: float, scaling: ClusterScaling
) -> int:
    """Nodes of `allocatable_per_node` that carry `share` of `demand` plus the headroom at the
    target utilisation (one resource: vCPU, or memory in MiB)."""
    needed = share * demand * (1 + scaling.headroom_percent / 100)
    capacity = allocatable_per_node * scaling.target_utilization / 100
    return max(0, math.ceil(needed / capacity - _ROUNDING))


def nodes_for_cpu_and_memory(
    p90_vcpu: float, p90_memory_mib: float | None, group: dict[str, Any], scaling: ClusterScaling
) -> int:
    """The nodes a node group (as `forecast.py` describes it) needs for its share of both
    demands: the larger count (CPU alone without a memory forecast)."""
    share = group["share_of_demand"]
    by_cpu = nodes_for_demand(p90_vcpu, share, group["allocatable_vcpu_per_node"], scaling)
    if p90_memory_mib is None:
        return by_cpu
    memory_per_node = group["allocatable_memory_mib_per_node"]
    return max(by_cpu, nodes_for_demand(p90_memory_mib, share, memory_per_node, scaling))


def hour_steps(forecast: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The forecast steps (hours labelled by their start) that overlap the hour after `now`."""
    return [
        step
        for step in forecast["forecast"]
        if parse_iso(step["timestamp"]) < now + HOUR and parse_iso(step["timestamp"]) + HOUR > now
    ]


def scale_predictively(
    services: ForecasterServices,
    account_id: str,
    cluster: Cluster,
    *,
    forecast: dict[str, Any] | None,
    problem: Exception | None,
    dry_run: bool,
    run: datetime | None = None,
) -> dict[str, Any]:
    """Decide, ask the scaler when the forecast may size the cluster or the schedule takes it
    back, record and return the decision; `problem` is why there is no `forecast`. `run` is
    the time the schedule's run was scheduled for (None: a run started by hand, now)."""
    now = services.clock.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    scaling = cluster.scaling
    decision: dict[str, Any] = {
        "decided_at": iso_z(now),
        "hour": iso_z(hour),
        "confidence_threshold": scaling.confidence_threshold,
        "quantile": PREDICTIVE_QUANTILE,
        "dry_run": dry_run,
    }
    if forecast is not None:
        decision.update(_forecast_facts(forecast, now))
    reason = _why_the_schedule_stays(services, forecast, problem, decision, scaling)
    if (
        forecast is None
        and problem is not None
        and not isinstance(problem, HISTORY_TOO_SHORT)
        and services.environment.scaler_function_name is not None
    ):
        decision.update(
            outcome=SIZES_KEPT,
            reason=(
                f"sizes kept: no forecast ({call_error_text(problem)}); the node groups keep "
                "their sizes until a forecast or the schedule changes them"
            ),
        )
    elif reason is None and forecast is not None:
        request_id = predictive_request_id(run or now, hand_back=False)
        node_groups = _node_groups(forecast, decision["forecast"], scaling)
        sized = (
            f"sized on the hour's p90 {_p90_in_words(decision['forecast'])} + "
            f"{scaling.headroom_percent:g}% headroom at {scaling.target_utilization:g}% "
            "utilisation"
        )
        first = _first_attempts_node_groups(services, account_id, cluster, request_id, node_groups)
        if first is not None and _sizes_in_words(first) != _sizes_in_words(node_groups):
            # The scaler refuses other sizes under the run's request id ("request_id reused"),
            # which read as a failed decision though the first attempt's stood: ask it again.
            sized = (
                f"the sizes of this run's first attempt ({_sizes_in_words(first)}) asked again "
                f"under its request id, not this attempt's ({_sizes_in_words(node_groups)} "
                f"{sized}): the scaler carries out one request a run"
            )
            node_groups = first
        wanted = [
            {"name": group["name"], "desired_size": group["nodes_wanted"]} for group in node_groups
        ]
        answer = _ask_scaler(
            services, account_id, cluster, wanted, request_id=request_id, dry_run=dry_run
        )
        _record_answer(decision, request_id, node_groups, answer)
        decision.update(
            outcome="scaler_asked",
            reason=(
                f"confidence {decision['hour_confidence']:.2f} >= "
                f"{scaling.confidence_threshold:.2f}: {sized}"
            ),
        )
    else:
        decision.update(outcome="schedule_kept", reason=f"schedule kept: {reason}")
        if services.environment.scaler_function_name is not None:
            request_id = predictive_request_id(run or now, hand_back=True)
            handed_back = [{"name": group.name, "hand_back": True} for group in cluster.node_groups]
            answer = _ask_scaler(
                services, account_id, cluster, handed_back, request_id=request_id, dry_run=dry_run
            )
            _record_answer(decision, request_id, handed_back, answer)
    if services.environment.state_table_name is None:
        # Raised, ConfigurationError made a decision the scaler acted on read as not made.
        decision["not_recorded"] = "decision not recorded: STATE_TABLE_NAME is not set"
        return decision
    try:
        record_decision(
            services.state, decisions_key(account_id, cluster.region, cluster.name), decision
        )
    except (
        ClientError,
        BotoCoreError,
        DecisionNotRecordedError,
        UnreadableStateValueError,
    ) as error:
        # The decision was made and the scaler answered it: its change stands, only the record
        # (what `analyze` shows) is missing, and the run must say so rather than "not made".
        decision["not_recorded"] = f"decision not recorded: {call_error_text(error)}"
    return decision


def predictive_request_id(run: datetime, *, hand_back: bool) -> str:
    """`predictive-<YYYY-MM-DDTHH>` of the hour (UTC) the run was scheduled in for the forecast's
    sizes, `predictive-hand-back-<YYYY-MM-DDTHH>` for handing the node groups back: every
    attempt of a run that decides the same, a retry after the hour turned included, is one
    request to the scaler, which then makes its change and sends its notice once; the next run,
    an hour later, is another. A retry that decides otherwise (its forecast now succeeds, or
    now fails) is another request: under one id the scaler answered it with the first attempt's
    stored result and did not act on it. A retry that sizes otherwise asks for the first
    attempt's sizes again (`_first_attempts_node_groups`): the scaler refuses other sizes under
    the run's id."""
    hour = run.astimezone(UTC).strftime("%Y-%m-%dT%H")
    return f"predictive-hand-back-{hour}" if hand_back else f"predictive-{hour}"


def _first_attempts_node_groups(
    services: ForecasterServices,
    account_id: str,
    cluster: Cluster,
    request_id: str,
    node_groups: list[dict[str, Any]],
) -> list[dict[str, Any]] | None:
    """The node groups, with the sizes wanted, that an earlier attempt of the run kept as asked
    under `request_id` (asked_sizes.py), `node_groups` being kept for the later ones; None when
    this is the first attempt, or they can be neither kept nor read (this attempt's sizes are
    then asked, as its decision says)."""
    if services.environment.state_table_name is None:
        return None
    try:
        return first_asked(
            services.state,
            decisions_key(account_id, cluster.region, cluster.name),
            request_id,
            node_groups,
        )
    except (ClientError, BotoCoreError, UnreadableStateValueError):
        return None


def _sizes_in_words(node_groups: list[dict[str, Any]]) -> str:
    """`system 3, workers 5`: the size each node group wants, in the order asked."""
    return ", ".join(f"{group['name']} {group['nodes_wanted']}" for group in node_groups)


def _forecast_facts(forecast: dict[str, Any], now: datetime) -> dict[str, Any]:
    coming_hour = forecast["coming_hour"]
    # The hour the forecast's p90 is of (the run's, seconds before `now`), for the steps and
    # their confidence too, so that the decision's figures are all of one hour.
    start = now if coming_hour is None else parse_iso(coming_hour["start"])
    steps = hour_steps(forecast, start)
    facts: dict[str, Any] = {
        "confidence": forecast["confidence"],
        "confidence_reason": forecast["confidence_reason"],
        "interval": forecast["interval"],
    }
    if steps and coming_hour is not None:
        facts["forecast"] = {
            "start": coming_hour["start"],
            "end": coming_hour["end"],
            "steps": steps,
            "demand_vcpu": max(step["demand_vcpu"] for step in steps),
            "lower_vcpu": max(step["lower_vcpu"] for step in steps),
            "upper_vcpu": max(step["upper_vcpu"] for step in steps),
            "p90_vcpu": coming_hour["p90_vcpu"],
            "p90_memory_mib": coming_hour.get("p90_memory_mib"),
        }
        # Unrounded: compared with the threshold, 0.84996 rounded to 0.85 passed 0.85.
        facts["hour_confidence"] = _confidence_over_the_hour(steps, start)
    return facts


def _confidence_over_the_hour(steps: list[dict[str, Any]], now: datetime) -> float:
    """The steps' confidences weighted by how much of the hour after `now` each covers: at 10:05
    the 10:00 step carries 55 minutes of the decision and the 11:00 step 5."""
    covered = [share_of_the_hour(parse_iso(step["timestamp"]), now) for step in steps]
    return sum(
        share * step["confidence"] for share, step in zip(covered, steps, strict=True)
    ) / sum(covered)


def _why_the_schedule_stays(
    services: ForecasterServices,
    forecast: dict[str, Any] | None,
    problem: Exception | None,
    decision: dict[str, Any],
    scaling: ClusterScaling,
) -> str | None:
    if forecast is None:
        return f"no forecast ({problem})"
    if "forecast" not in decision:
        return "the forecast does not reach the next hour (horizon_minutes too short)"
    last_hour = parse_iso(forecast["history"]["last_observation"])
    hours_without = round((parse_iso(decision["hour"]) - last_hour) / HOUR) - 1
    if hours_without > MAX_HOURS_WITHOUT_HISTORY:
        return (
            f"no history for the {hours_without} hours before this one (the last hour with data "
            f"began {iso_z(last_hour)}; at most {MAX_HOURS_WITHOUT_HISTORY} are allowed): "
            "Container Insights may have stopped reporting the cluster"
        )
    not_finite = _figures_not_finite(decision)
    if not_finite:
        # A NaN compares as neither below nor above the threshold: it must not read as confident,
        # nor reach the node count.
        return f"the forecast of the hour is not a finite number ({not_finite})"
    if decision["hour_confidence"] < scaling.confidence_threshold:
        return (
            f"confidence {_shown_below(decision['hour_confidence'], scaling.confidence_threshold)}"
            f" in the hour's steps is below the threshold {scaling.confidence_threshold:.2f} "
            f"({forecast['confidence_reason']})"
        )
    if services.environment.scaler_function_name is None:
        return "SCALER_FUNCTION_NAME is not set"
    return None


def _shown_below(confidence: float, threshold: float) -> str:
    """`confidence`, below `threshold`, with three decimals, or as many more as it takes to show
    it below: with two, 0.849 read "0.85 is below the threshold 0.85", and 0.84996 needs five."""
    for decimals in range(3, 10):
        shown = f"{confidence:.{decimals}f}"
        if float(shown) < threshold:
            return shown
    return repr(confidence)


def _figures_not_finite(decision: dict[str, Any]) -> str:
    """The figures of the hour the node count and the threshold use that are NaN or infinite,
    in words (empty when all are finite)."""
    hour = decision["forecast"]
    figures = {
        "p90_vcpu": hour["p90_vcpu"],
        "p90_memory_mib": hour["p90_memory_mib"],
        "hour_confidence": decision["hour_confidence"],
    }
    return ", ".join(
        f"{name} {value}"
        for name, value in figures.items()
        if value is not None and not math.isfinite(value)
    )


def _p90_in_words(hour: dict[str, Any]) -> str:
    words = f"{hour['p90_vcpu']:.2f} vCPU"
    if hour["p90_memory_mib"] is not None:
        words += f" and {hour['p90_memory_mib']:.0f} MiB"
    return words


def _node_groups(
    forecast: dict[str, Any], hour: dict[str, Any], scaling: ClusterScaling
) -> list[dict[str, Any]]:
    return [
        {
            "name": group["name"],
            "instance_type": group["instance_type"],
            "allocatable_vcpu_per_node": group["allocatable_vcpu_per_node"],
            "memory_mib_per_node": group["memory_mib_per_node"],
            "allocatable_memory_mib_per_node": group["allocatable_memory_mib_per_node"],
            "share_of_demand": group["share_of_demand"],
            "nodes_wanted": nodes_for_cpu_and_memory(
                hour["p90_vcpu"], hour["p90_memory_mib"], group, scaling
            ),
        }
        for group in forecast["node_groups"]
    ]


def _ask_scaler(
    services: ForecasterServices,
    account_id: str,
    cluster: Cluster,
    nodegroups: list[dict[str, Any]],
    *,
    request_id: str,
    dry_run: bool,
) -> dict[str, Any]:
    """The scaler's answer to a `predictive` request for `nodegroups` (the request's entries),
    or an error answer saying why there is none (never raises)."""
    payload = {
        "action": "predictive",
        "account_id": account_id,
        "region": cluster.region,
        "cluster": cluster.name,
        "nodegroups": nodegroups,
        "dry_run": dry_run,
        "request_id": request_id,
    }
    return ask_scaler(services.scaler_client, services.environment.scaler_function_name, payload)


def _record_answer(
    decision: dict[str, Any],
    request_id: str,
    node_groups: list[dict[str, Any]],
    answer: dict[str, Any],
) -> None:
    """The request id and each node group with the scaler's answer, in `decision`; an answer
    not shaped as the scaler's is the scaler's error for every node group, naming what it lacks
    (a TypeError or KeyError reading it ended the fleet run, every cluster after this one left
    without its forecast)."""
    try:
        answered = _with_answers(node_groups, answer)
    except UnreadableAnswerError as error:
        answer = {"status": "error", "error": str(error)}
        answered = _with_answers(node_groups, answer)
    decision.update(request_id=request_id, node_groups=answered)
    if answer.get("status") == "error":
        decision["scaler_error"] = answer.get("error")


def _with_answers(
    node_groups: list[dict[str, Any]], answer: dict[str, Any]
) -> list[dict[str, Any]]:
    by_name = _results_by_node_group(answer)
    # The same request running elsewhere (another copy of this run) is carried out there.
    whole_answer = (
        SCALER_IN_PROGRESS if answer.get("in_progress") is True else answer.get("status", "error")
    )
    answered = []
    for group in node_groups:
        item = by_name.get(group["name"], {})
        new = item.get("new") or {}
        answered.append(
            {
                **group,
                "scaler_status": item.get("status", whole_answer),
                "scaler_reason": item.get("reason", answer.get("error")),
                "desired_size": new.get("desired_size"),
            }
        )
    return answered


def _results_by_node_group(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The scaler's result of each node group it answered for, by name; raises
    UnreadableAnswerError naming the first field of `answer` not shaped as the scaler answers
    it (the refused value shown cut, its control characters escaped)."""
    for name in ("status", "error"):
        if answer.get(name) is not None and not isinstance(answer[name], str):
            raise UnreadableAnswerError(SCALER_ANSWER, f"{name} as text", answer)
    results = answer.get("results", [])
    if not isinstance(results, list):
        raise UnreadableAnswerError(SCALER_ANSWER, "results as a list", answer)
    by_name: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(results):
        field = f"results[{index}]"
        if not isinstance(item, dict):
            raise UnreadableAnswerError(SCALER_ANSWER, f"{field} as an object", results)
        if not isinstance(item.get("nodegroup"), str):
            raise UnreadableAnswerError(SCALER_ANSWER, f"{field}.nodegroup as text", item)
        for name in ("status", "reason"):
            if item.get(name) is not None and not isinstance(item[name], str):
                raise UnreadableAnswerError(SCALER_ANSWER, f"{field}.{name} as text", item)
        new = item.get("new")
        if new is not None and not (isinstance(new, dict) and _is_size(new.get("desired_size"))):
            raise UnreadableAnswerError(
                SCALER_ANSWER, f"{field}.new.desired_size as a whole number", item
            )
        by_name[item["nodegroup"]] = item
    return by_name


def _is_size(value: object) -> bool:
    """Whether `value` is a node count as the scaler answers one, or None (no change)."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool))
