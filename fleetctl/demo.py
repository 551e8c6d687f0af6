"""`make demo`: one working day of the dev stack, replayed locally against a moto server.

1. A moto server starts on 127.0.0.1 (a free port) and stops at the end, even on failure.
2. It gets what the dev stack would have (named from the offline plan), and the member account
   gets the stack file's clusters, two weeks of metrics, stale snapshots and an open port 22.
3. The day's schedules, taken from the offline plan with their payloads, fire in time order
   (rate schedules at most hourly); each target function runs in a warm worker with the
   environment the plan gives it, on the replayed clock: every invocation happens at its
   firing's instant, so dates, cooldowns, dedup windows and forecasts follow the replayed day.
   Objects written under raw/ and processed/ reach the report functions through the bucket's
   notifications, and alerts reach the notification router through a queue subscribed to the
   alert topics, as SNS would.
4. A timeline, node group sizes through the day, the alerts the local Slack/PagerDuty receiver
   got, and the reports (copied with the plan to ./out/) are printed.

The day starts from the last working evening's scale-down (replayed first), so the morning
scale-up has sizes to restore. The one setting the demo changes is said in its first lines
(`STACK_OVERRIDES`). The day has one incident: the health endpoint fails from 14:00 to 16:00.
In the afternoon an engineer holds one node group through the evening (`POST /scale`), so the
18:00 scale-down leaves it alone, says why, and scales the others. For a cluster in predictive
mode each hourly forecast asks the scaler for sizes (through the local receiver, as Lambda's
Invoke) or keeps the schedule, handing back to it the node groups the forecast sized; a
`predict` line shows which, with the confidence and reason.
After each firing the node groups' Auto Scaling groups follow EKS, as in AWS.
Each node group update the scaler starts goes to change_validator as its CloudTrail record
(as EventBridge delivers it), at the change's instant; the validator's callback schedules run at
the first later step at least a minute after their time, and a `validate` line gives each
verdict (passed, degraded with the figures that moved, failed). So that the baseline and the
bake have endpoint results to compare, the health monitor also runs at its own cadence over the
bake length before each scaling firing and after each change until a step past its bake (a
`probe` line only when the fleet is not healthy).
The last working evening only sets the day's starting sizes: its changes are not validated.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

from catalog import FUNCTIONS
from components.naming import function_name, member_role_name
from components.settings import ClusterSettings, FleetSettings
from fleetctl.demo_validation import (
    DEFAULT_BAKE_MINUTES,
    VALIDATOR,
    DaySteps,
    ScalerChange,
    scaler_changes,
    verdict_line,
)
from fleetctl.demo_world import (
    DemoWorld,
    aws_client,
    follow_node_group_scaling,
    role_credentials,
)
from fleetctl.exceptions import DemoError, PlanError
from fleetctl.function_workers import WorkerCrashedError, WorkerPool
from fleetctl.handler_environment import deployed_environment, deployed_functions
from fleetctl.local_world import local_world, stack_settings
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, run_program
from fleetctl.plan import render_json
from fleetctl.schedule_replay import Firing, PlannedSchedule, firings_on, planned_schedules
from fleetctl.validated_change import take_due_callbacks
from fleetctl.webhook_receiver import WebhookReceiver

DEMO_ZONE = ZoneInfo("Asia/Kolkata")
DEFAULT_OUT_DIR = REPO_ROOT / "out"
# Written into each --out directory the demo makes, which a later run may then replace whole.
DEMO_OUT_MARKER = ".lambda-fleet-demo"
RATE_SPACING_MINUTES = 60
# What the demo changes in the stack's settings, and why; printed before the day starts.
DEMO_DRY_RUN = False
# Functions whose invocations change node group sizes (the forecaster through the scaler).
SIZING_FUNCTIONS = ("eks_scaler", "demand_forecaster")
STACK_OVERRIDES = {
    "FLEET_DRY_RUN": (
        "true" if DEMO_DRY_RUN else "false",
        "dry_run: true only reports changes; the demo makes them to show node groups move "
        "(the inventory's dry_run, which the forecaster passes to the scaler, too)",
    ),
}
# An incident the day goes through: the cluster's health endpoint fails for two hours.
INCIDENT_START = time(14, 0)
# Widths that keep each printed line within a 132-column terminal.
TIMELINE_OUTCOME_WIDTH = 96
DECISION_WIDTH = 116
ALERT_WIDTH = 116
INCIDENT_END = time(16, 0)
# Around the incident the health monitor runs at its own 5-minute cadence, from a little before it
# until its error rate (over HEALTH_ERROR_RATE_WINDOW_MINUTES, 15 by default) has recovered.
INCIDENT_LEAD = timedelta(minutes=15)
INCIDENT_TAIL = timedelta(hours=1)
# The afternoon's hold: the last node group of the first cluster keeps its size until after the
# evening scale-down, as for a batch that must finish tonight.
HOLD_AT = time(16, 30)
HOLD_UNTIL = time(19, 30)
HOLD_REASON = "nightly batch must finish tonight"
HOLD_CALLER_ARN_USER = "platform-oncall"
# EventBridge Scheduler invokes a target shortly after its time, not on the second; the demo
# delivers a callback at the first step at least this long after its time.
SCHEDULER_DELIVERY = timedelta(minutes=1)
HEALTHY = "healthy"
"""The health monitor's status when every check passed."""


@dataclass
class Timeline:
    total: int
    lines: list[str] = field(default_factory=list)
    sizes: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failures: int = 0

    def record(self, at: datetime, function: str, outcome: str, done: int) -> None:
        # Invocations before the day (the last working evening) are labelled with their weekday.
        width = len(str(self.total))
        label = f"{done:>{width}}/{self.total}" if done else f"{at:%a}"
        self._print(label, at, f"{function:<20} {one_line(outcome, TIMELINE_OUTCOME_WIDTH)}")

    def note(self, at: datetime, text: str) -> None:
        """A line about the world rather than an invocation (the incident starting, ending)."""
        self._print("world", at, f"** {text} **")

    def decision(self, at: datetime, text: str) -> None:
        """A predictive scaling decision: the forecast's confidence, the reason, the outcome."""
        self._print("predict", at, one_line(text, DECISION_WIDTH))

    def verdict(self, at: datetime, text: str) -> None:
        """A change validation's verdict: the node group, passed / degraded / failed, and why."""
        self._print("validate", at, one_line(text, DECISION_WIDTH))

    def probe(self, at: datetime, outcome: str) -> None:
        """A health monitor run around a change that found the fleet not healthy."""
        text = one_line(outcome, TIMELINE_OUTCOME_WIDTH)
        self._print("probe", at, f"{'health_monitor':<20} {text}")

    def request(self, at: datetime, route: str, function: str, outcome: str) -> None:
        """A line for a request a person made through the HTTP API, rather than a schedule."""
        self._print(
            "http", at, f"{function:<20} {one_line(f'{route}: {outcome}', TIMELINE_OUTCOME_WIDTH)}"
        )

    def _print(self, label: str, at: datetime, text: str) -> None:
        line = f"[{label.center(2 * len(str(self.total)) + 1)}] {at:%H:%M} {text}"
        self.lines.append(line)
        print(line, flush=True)


def one_line(text: str, width: int) -> str:
    """`text` on one line of at most `width` characters, shortened at a word boundary."""
    return textwrap.shorten(text, width, placeholder=" ...")


def summarize(result: Any) -> str:
    """One line for the timeline out of whatever a handler answered."""
    if not isinstance(result, dict):
        return str(result)
    if "statusCode" in result:
        body = _json_body(result.get("body"))
        return "; ".join([f"HTTP {result['statusCode']}", *([summarize(body)] if body else [])])
    if "batchItemFailures" in result:
        failed = len(result["batchItemFailures"])
        return "all delivered" if not failed else f"{failed} failed, to be retried"
    parts = []
    if result.get("status"):
        parts.append(str(result["status"]))
    if result.get("error"):
        parts.append(str(result["error"]))
    for key, value in sorted(result.items()):
        if isinstance(value, list) and value and isinstance(value[0], dict):
            statuses = [str(item.get("status")) for item in value if item.get("status")]
            if statuses:
                counts = {status: statuses.count(status) for status in sorted(set(statuses))}
                parts.append(f"{key}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
            else:
                parts.append(f"{key}: {len(value)}")
            parts.extend(_totals(value))
            parts.extend(_held(value))
        elif key in {"counts", "summary"} and isinstance(value, dict):
            parts.append(
                f"{key}: "
                + ", ".join(
                    f"{k}={v}" for k, v in sorted(value.items()) if not isinstance(v, dict | list)
                )
            )
    return "; ".join(parts) or ", ".join(sorted(result))


def predictive_lines(result: Any) -> list[str]:
    """One line per predictive decision in a forecaster result: the cluster, whether the
    forecast sized it (each node group's wanted size and the scaler's answer) or the schedule
    was kept, and why, with the confidence, and which node groups went back to the schedule's
    size."""
    if not isinstance(result, dict):
        return []
    lines = []
    for cluster in result.get("clusters", []):
        decision = cluster.get("predictive") if isinstance(cluster, dict) else None
        if not isinstance(decision, dict):
            continue
        parts = [str(cluster.get("cluster"))]
        if decision.get("outcome") == "scaler_asked":
            parts.append(
                "forecast-driven, "
                + ", ".join(_asked(group) for group in decision.get("node_groups", []))
            )
        # A kept schedule's reason starts with "schedule kept: ..." already.
        parts.append(str(decision.get("reason")))
        line = ": ".join(parts)
        # A hand-back that changes nothing (the schedule's size stands) is left out.
        handed_back = [
            _handed_back(group)
            for group in decision.get("node_groups", [])
            if group.get("hand_back") and group.get("scaler_status") != "no_change_needed"
        ]
        if handed_back:
            line += "; back to the schedule: " + ", ".join(handed_back)
        lines.append(line)
    return lines


def _handed_back(group: dict[str, Any]) -> str:
    """`system -> 2 (scaling_initiated)`: a node group handed back to the schedule, its size
    (when the scaler set one) and the scaler's status."""
    applied = group.get("desired_size")
    to = f" -> {applied}" if applied is not None else ""
    return f"{group['name']}{to} ({group.get('scaler_status')})"


def _asked(group: dict[str, Any]) -> str:
    """`system 3 wanted -> 4 (scaling_initiated)`: what the forecast asked for one node group,
    the size the scaler set within its bounds (when it set one) and the scaler's status."""
    applied = group.get("desired_size")
    to = f" -> {applied}" if applied is not None else ""
    return f"{group['name']} {group['nodes_wanted']} wanted{to} ({group.get('scaler_status')})"


def _json_body(body: Any) -> dict[str, Any] | None:
    """An HTTP response's JSON object body, if it has one."""
    if not isinstance(body, str):
        return None
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _held(results: list[dict[str, Any]]) -> list[str]:
    """Why each held node group was left alone: the hold's reason, as the scaler gives it."""
    return [
        f"{item.get('nodegroup')} held: {item['hold'].get('reason')}"
        for item in results
        if item.get("status") == "held" and isinstance(item.get("hold"), dict)
    ]


def hold_request(settings: FleetSettings, at: datetime, until: datetime) -> dict[str, Any]:
    """`POST /scale` as the HTTP API hands it to the scaler (payload v2, IAM caller): a hold of
    the first cluster's last node group from `at` until `until`."""
    member = settings.members[0]
    cluster = member.clusters[0]
    body = {
        "action": "hold",
        "account_id": member.account_id,
        "region": member.cluster_region(cluster),
        "cluster": cluster.name,
        "nodegroups": [{"name": cluster.node_groups[-1].name}],
        "until": until.isoformat(),
        "reason": HOLD_REASON,
        "request_id": f"demo-hold-{at:%Y%m%d}",
    }
    hub = settings.hub.account_id
    caller = f"arn:aws:iam::{hub}:user/{HOLD_CALLER_ARN_USER}"
    return {
        "version": "2.0",
        "routeKey": "POST /scale",
        "rawPath": "/scale",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": hub,
            "apiId": "demo",
            "authorizer": {
                "iam": {
                    "accessKey": "ASIADEMO",
                    "accountId": hub,
                    "callerId": "AIDADEMO",
                    "userArn": caller,
                    "userId": "AIDADEMO",
                }
            },
            "domainName": f"demo.execute-api.{settings.hub.region}.amazonaws.com",
            "domainPrefix": "demo",
            "http": {
                "method": "POST",
                "path": "/scale",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "lambda-fleet-demo",
            },
            "requestId": f"demo-hold-{at:%Y%m%d}",
            "routeKey": "POST /scale",
            "stage": "$default",
            "time": at.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _totals(targets: list[dict[str, Any]]) -> list[str]:
    """Counts that targets report (created, deleted, findings...), added up across targets."""
    totals: dict[str, int] = {}
    for target in targets:
        counts = target.get("counts") if isinstance(target.get("counts"), dict) else target
        for name, number in counts.items():
            if isinstance(number, int) and not isinstance(number, bool) and number:
                totals[name] = totals.get(name, 0) + number
    return [f"{name}={number}" for name, number in sorted(totals.items())][:5]


@dataclass(frozen=True)
class MemberCluster:
    """A cluster of the stack with clients of its member account."""

    settings: ClusterSettings
    eks: Any
    autoscaling: Any


class DayReplay:
    def __init__(
        self,
        world: DemoWorld,
        pool: WorkerPool,
        settings: FleetSettings,
        stack: str,
        validator_environment: dict[str, str] | None = None,
    ) -> None:
        self.world = world
        self.pool = pool
        self.settings = settings
        self.stack = stack
        self.sqs = aws_client("sqs", world.endpoint_url, world.region, **world.hub_credentials)
        self.now = datetime.now(UTC)
        self._catalog_names = {function_name(stack, spec.name): spec.name for spec in FUNCTIONS}
        # Scaler changes not yet handed to change_validator (none when the stack has no
        # validator, or no scaler whose member role marks the fleet's own changes).
        self.validator_environment = validator_environment or {}
        self.pending_changes: list[ScalerChange] = []

    @property
    def validates_changes(self) -> bool:
        return bool(self.validator_environment.get("SCALER_MEMBER_ROLE_NAME"))

    @cached_property
    def scheduler(self) -> Any:
        """EventBridge Scheduler of the hub, where the validator's callbacks wait."""
        world = self.world
        return aws_client("scheduler", world.endpoint_url, world.region, **world.hub_credentials)

    @property
    def bake(self) -> timedelta:
        minutes = self.validator_environment.get("VALIDATION_BAKE_MINUTES")
        return timedelta(minutes=int(minutes or DEFAULT_BAKE_MINUTES))

    def _note_changes(self, function: str, result: Any, at: datetime) -> None:
        if function == "eks_scaler" and self.validates_changes:
            self.pending_changes.extend(scaler_changes(result, at))

    def invoke_function(self, deployed_name: str, event: Any) -> Any:
        """One function invoking another through Lambda's Invoke (the forecaster asking the
        scaler): the other's worker, at the caller's replayed instant."""
        name = self._catalog_names.get(deployed_name)
        if name is None:
            raise PlanError(f"no function named {deployed_name} in the {self.stack} stack")
        result = self.pool.invoke(name, event, self.now)
        self._note_changes(name, result, self.now)
        return result

    def invoke(self, timeline: Timeline, at: datetime, function: str, event: Any, done: int) -> Any:
        self.now = at
        try:
            result = self.pool.invoke(function, event, at)
        except WorkerCrashedError as error:
            timeline.failures += 1
            timeline.record(at, function, f"CRASHED: {error}", done)
            return None
        timeline.record(at, function, summarize(result), done)
        self._note_changes(function, result, at)
        for line in predictive_lines(result):
            timeline.decision(at, line)
        return result

    def play_firing(self, timeline: Timeline, firing: Firing, done: int, steps: DaySteps) -> None:
        """One firing and what follows it: deliveries, EKS acting on new sizes, each scaler
        change handed to the validator (with probes until its bake ends), due callbacks."""
        at = firing.at
        self.invoke(timeline, at, firing.schedule.function, firing.payload(), done)
        self.follow_up(timeline, at, done)
        self.follow_eks()
        for change in self.validate_changes(timeline, done):
            steps.after_change(change.at)
        self.run_due_callbacks(timeline, at, done)

    def play_probe(self, timeline: Timeline, firing: Firing, done: int) -> None:
        """The health monitor at its own cadence around a change (a line only when the fleet
        is not healthy, or the run crashed), then the callbacks due by then."""
        self.now = firing.at
        try:
            result = self.pool.invoke(firing.schedule.function, firing.payload(), firing.at)
        except WorkerCrashedError as error:
            timeline.failures += 1
            timeline.probe(firing.at, f"CRASHED: {error}")
            return
        if not isinstance(result, dict) or result.get("status") != HEALTHY:
            timeline.probe(firing.at, summarize(result))
        self.follow_up(timeline, firing.at, done)
        self.run_due_callbacks(timeline, firing.at, done)

    def validate_changes(self, timeline: Timeline, done: int) -> list[ScalerChange]:
        """Hand each new scaler change to change_validator as its CloudTrail record, at the
        change's instant, as EventBridge would; the changes handed over."""
        changes, self.pending_changes = self.pending_changes, []
        role = self.validator_environment.get("SCALER_MEMBER_ROLE_NAME", "")
        for change in changes:
            self._validate(timeline, change.at, change.cloudtrail_event(role), done)
        return changes

    def run_due_callbacks(self, timeline: Timeline, at: datetime, done: int) -> None:
        """The validator's one-time schedules that EventBridge Scheduler has delivered by `at`
        (due at least SCHEDULER_DELIVERY before it), fired at `at`."""
        if not self.validates_changes:
            return
        group = self.validator_environment["VALIDATION_SCHEDULE_GROUP"]
        for payload in take_due_callbacks(self.scheduler, group, at - SCHEDULER_DELIVERY):
            self._validate(timeline, at, payload, done)

    def _validate(self, timeline: Timeline, at: datetime, event: Any, done: int) -> None:
        self.now = at
        try:
            result = self.pool.invoke(VALIDATOR, event, at)
        except WorkerCrashedError as error:
            timeline.failures += 1
            timeline.record(at, VALIDATOR, f"CRASHED: {error}", done)
            return
        line = verdict_line(result)
        if line is None:
            timeline.record(at, VALIDATOR, summarize(result), done)
        else:
            timeline.verdict(at, line)
        self.follow_up(timeline, at, done)

    def place_hold(self, timeline: Timeline, at: datetime, until: datetime) -> Any:
        """The afternoon's hold, placed through the scaler as `POST /scale` would place it."""
        event = hold_request(self.settings, at, until)
        try:
            result = self.pool.invoke("eks_scaler", event, at)
        except WorkerCrashedError as error:
            timeline.failures += 1
            timeline.request(at, "POST /scale", "eks_scaler", f"CRASHED: {error}")
            return None
        timeline.request(at, "POST /scale", "eks_scaler", summarize(result))
        return result

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)

    def follow_up(self, timeline: Timeline, at: datetime, done: int) -> None:
        """Deliver bucket events to the report functions and alerts to the router, until quiet."""
        while True:
            delivered = False
            for message in self._drain(self.world.queues.bucket_events_url):
                body = json.loads(message["Body"])
                for record in body.get("Records", []):
                    # Keys arrive URL-encoded in S3 event notifications.
                    key = unquote_plus(record["s3"]["object"]["key"])
                    function = "report_processor" if key.startswith("raw/") else "report_generator"
                    if key.startswith("raw/rejected/"):
                        continue
                    self.invoke(timeline, at, function, {"Records": [record]}, done)
                    delivered = True
            alerts = self._drain(self.world.queues.alerts_url)
            for offset in range(0, len(alerts), 10):
                batch = alerts[offset : offset + 10]
                event = {
                    "Records": [
                        {
                            "messageId": message["MessageId"],
                            "receiptHandle": message["ReceiptHandle"],
                            "body": message["Body"],
                            "attributes": {},
                            "messageAttributes": {},
                            "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:demo",
                            "awsRegion": self.world.region,
                        }
                        for message in batch
                    ]
                }
                self.invoke(timeline, at, "notification_router", event, done)
                delivered = True
            if not delivered:
                return

    @cached_property
    def member_clusters(self) -> list[MemberCluster]:
        """Each cluster with EKS and Auto Scaling clients of its account and region, acting
        through the scaler's member role: the demo sees the node groups as the scaler does."""
        role = member_role_name(self.stack, "eks_scaler")
        endpoint = self.world.endpoint_url
        clusters = []
        for member in self.settings.members:
            for cluster in member.clusters:
                region = member.cluster_region(cluster)
                credentials = role_credentials(
                    endpoint, region, f"arn:aws:iam::{member.account_id}:role/{role}"
                )
                clusters.append(
                    MemberCluster(
                        settings=cluster,
                        eks=aws_client("eks", endpoint, region, **credentials),
                        autoscaling=aws_client("autoscaling", endpoint, region, **credentials),
                    )
                )
        return clusters

    def follow_eks(self) -> None:
        """Every node group's Auto Scaling groups brought to its EKS scaling config, as EKS
        does after UpdateNodegroupConfig, so the health monitor counts the nodes EKS asked for."""
        for cluster in self.member_clusters:
            for group in cluster.settings.node_groups:
                follow_node_group_scaling(
                    cluster.eks, cluster.autoscaling, cluster.settings.name, group.name
                )

    def node_group_sizes(self) -> dict[str, str]:
        sizes: dict[str, str] = {}
        for cluster in self.member_clusters:
            for group in cluster.settings.node_groups:
                scaling = cluster.eks.describe_nodegroup(
                    clusterName=cluster.settings.name, nodegroupName=group.name
                )["nodegroup"]["scalingConfig"]
                sizes[f"{cluster.settings.name}/{group.name}"] = (
                    f"{scaling['minSize']}/{scaling['desiredSize']}/{scaling['maxSize']}"
                )
        return sizes


def _play_incident(receiver: WebhookReceiver, timeline: Timeline, at: datetime) -> None:
    failing = INCIDENT_START <= at.time() < INCIDENT_END
    if failing and receiver.health_status == 200:
        receiver.health_status = 503
        timeline.note(at, "incident: the health endpoint starts answering 503")
    elif not failing and receiver.health_status != 200:
        receiver.health_status = 200
        timeline.note(at, "the health endpoint recovers")


def _previous_evening(schedules: list[PlannedSchedule], day: date) -> list[Firing]:
    """The last working evening's scale-downs (Friday's, before a Monday), so that the morning
    has sizes to restore, as on any working day."""
    for days_back in range(1, 8):
        evening = [
            firing
            for firing in firings_on(schedules, day - timedelta(days=days_back), DEMO_ZONE)
            if firing.schedule.function == "eks_scaler"
            and firing.schedule.payload.get("action") == "scale_down"
        ]
        if evening:
            return evening
    return []


def _replay_day() -> date:
    """Today if it is a working day, else the next Monday: the demo shows a working day."""
    today = datetime.now(DEMO_ZONE).date()
    return today if today.weekday() < 5 else today + timedelta(days=7 - today.weekday())


def _copy_reports(world: DemoWorld, out_dir: Path) -> list[Path]:
    s3 = aws_client("s3", world.endpoint_url, world.region, **world.hub_credentials)
    copied = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=world.data_bucket, Prefix="reports/"):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith((".xlsx", ".json", ".csv")):
                continue
            target = out_dir / key
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(world.data_bucket, key, str(target))
            copied.append(target)
    return sorted(copied)


def _refuse_an_out_dir_not_its_own(out_dir: Path) -> None:
    """Refuse an --out that is a file, or a directory of files the demo did not write: the demo
    replaces its --out directory whole, and `--out ~/reports` would delete someone's reports.
    Its own are the default `out/` (the local tools', where `invoke` writes logs too), an empty
    directory, and one holding the marker it writes into each --out."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DemoError(f"--out {str(out_dir)!r} is not a directory")
    own = (
        out_dir.resolve() == DEFAULT_OUT_DIR.resolve()
        or (out_dir / DEMO_OUT_MARKER).is_file()
        or not any(out_dir.iterdir())
    )
    if not own:
        raise DemoError(
            f"--out {str(out_dir)!r} holds files the demo did not write, and the "
            "demo replaces its --out directory whole; name a new or empty directory"
        )


def run_demo(stack: str = "dev", out_dir: Path = DEFAULT_OUT_DIR) -> int:
    started = clock.monotonic()
    _refuse_an_out_dir_not_its_own(out_dir)
    print(f"lambda-fleet demo: one working day of the {stack} stack, offline", flush=True)
    settings = stack_settings(stack)
    run = run_program(stack)
    schedules = planned_schedules(run)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / DEMO_OUT_MARKER).write_text(
        "written by `fleetctl demo`, which replaces this directory\n"
    )
    (out_dir / f"plan-{stack}.json").write_text(render_json(run))
    day = _replay_day()
    incident_window = (
        datetime.combine(day, INCIDENT_START, DEMO_ZONE) - INCIDENT_LEAD,
        datetime.combine(day, INCIDENT_END, DEMO_ZONE) + INCIDENT_TAIL,
    )
    firings: list[Firing] = firings_on(
        schedules,
        day,
        DEMO_ZONE,
        RATE_SPACING_MINUTES,
        cadence_windows={"health_monitor": incident_window},
    )
    print(
        f"plan: {len(run.resources)} resources, {len(schedules)} schedules -> "
        f"{len(firings)} firings on {day:%A %Y-%m-%d} (IST)",
        flush=True,
    )
    _print_overrides(run)
    # The world is as it would be at the end of the day: the metric history runs up to it, and
    # each function reads only what its replayed clock has reached.
    day_end = datetime.combine(day, time(23, 59), DEMO_ZONE)
    with local_world(stack, run, day_end, dry_run=DEMO_DRY_RUN) as local:
        world, receiver = local.world, local.receiver
        print(
            f"moto server on {world.endpoint_url}; Slack/PagerDuty receiver on {receiver.url}",
            flush=True,
        )
        timeline = Timeline(total=len(firings))
        environments = {
            function: {**environment, **_override_values(environment)}
            for function, environment in local.environments.items()
        }
        with WorkerPool(environments, out_dir / "logs") as pool:
            replay = DayReplay(world, pool, settings, stack, environments.get(VALIDATOR))
            receiver.function_invoker = replay.invoke_function
            for firing in _previous_evening(schedules, day):
                replay.invoke(timeline, firing.at, "eks_scaler", firing.payload(), 0)
                replay.follow_up(timeline, firing.at, 0)
                replay.follow_eks()
            replay.pending_changes.clear()
            timeline.sizes.append(("start", replay.node_group_sizes()))
            hold_at = datetime.combine(day, HOLD_AT, DEMO_ZONE)
            hold_pending = True
            steps = DaySteps(
                schedules,
                firings,
                replay.bake if replay.validates_changes else None,
                SIZING_FUNCTIONS,
            )
            done = 0
            while (step := steps.next_step()) is not None:
                if isinstance(step, datetime):
                    _play_incident(receiver, timeline, step)
                    replay.play_probe(timeline, steps.probe(step), done)
                    continue
                done, firing = step
                at = firing.at
                if hold_pending and at >= hold_at:
                    hold_pending = False
                    replay.place_hold(
                        timeline, hold_at, datetime.combine(day, HOLD_UNTIL, DEMO_ZONE)
                    )
                    replay.follow_up(timeline, hold_at, done - 1)
                _play_incident(receiver, timeline, at)
                replay.play_firing(timeline, firing, done, steps)
                if firing.schedule.function in SIZING_FUNCTIONS:
                    sizes = replay.node_group_sizes()
                    # A forecast that changed nothing adds no row.
                    if firing.schedule.function == "eks_scaler" or sizes != timeline.sizes[-1][1]:
                        timeline.sizes.append((f"{at:%H:%M}", sizes))
        _print_sizes(timeline)
        _print_alerts(receiver)
        copied = _copy_reports(world, out_dir)
    written = sorted([out_dir / f"plan-{stack}.json", *copied])
    print(f"\n{len(written)} files written (the plan and every report):")
    for path in written:
        print(f"  {_shown(path)}")
    logs = sorted((out_dir / "logs").glob("*.log"))
    print(f"\n{len(logs)} function logs in {_shown(out_dir / 'logs')}/ (one <function>.log each)")
    print(f"done in {clock.monotonic() - started:.0f} s; {timeline.failures} invocation(s) crashed")
    return 1 if timeline.failures else 0


def _override_values(environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, (value, _) in STACK_OVERRIDES.items() if name in environment}


def _print_overrides(run: ProgramRun) -> None:
    """Each setting the demo changes, with the stack's value and the reason, before the day."""
    stack_values = {
        name: value
        for spec in deployed_functions(run)
        for name, value in deployed_environment(run, spec).items()
        if name in STACK_OVERRIDES
    }
    for name, (value, reason) in STACK_OVERRIDES.items():
        if stack_values.get(name, value) != value:
            print(f"settings: {name}={value} instead of {stack_values[name]}: {reason}")


def _print_sizes(timeline: Timeline) -> None:
    print("\nnode group sizes through the day (min/desired/max):")
    groups = sorted({group for _, sizes in timeline.sizes for group in sizes})
    width = max([len(group) for group in groups] + [10])
    print(f"  {'time':<6} " + " ".join(f"{group:>{width}}" for group in groups))
    for label, sizes in timeline.sizes:
        print(f"  {label:<6} " + " ".join(f"{sizes.get(group, '-'):>{width}}" for group in groups))


def _shown(path: Path) -> str:
    """`path` as the person can use it from where they ran the demo: relative below it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _print_alerts(receiver: WebhookReceiver) -> None:
    print(f"\nalerts received by the local Slack/PagerDuty stand-in: {len(receiver.requests)}")
    for request in receiver.requests:
        body = request.body
        if isinstance(body, dict) and "payload" in body:
            text = f"{body['payload'].get('severity')}: {body['payload'].get('summary')}"
        elif isinstance(body, dict):
            text = str(body.get("text", body))
        else:
            text = str(body)
        print(f"  {request.path:<11} {one_line(text, ALERT_WIDTH)}")
