"""The documents performance_analyzer and scaling_optimizer pass through the data bucket.

performance_analyzer writes one analysis per cluster and run; scaling_optimizer reads the last
14 days of them and writes its recommendations; `fleetctl recommendations` reads those and
renders the patch to the stack file. Writer and readers live in different archives, so the
models live here, in the shared layer, and every reader validates against the writer's model.

Keys (UTC times; they sort in time order, so the newest document is the greatest key)::

    analyses/<account>/<region>/<cluster>/<yyyymmddThhmmssZ>.json    performance_analyzer
    recommendations/<yyyymmddThhmmssZ>.json                          scaling_optimizer
    recommendations/latest.json                                      a copy of the newest
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

ANALYSES_PREFIX = "analyses/"
RECOMMENDATIONS_PREFIX = "recommendations/"
LATEST_RECOMMENDATIONS_KEY = f"{RECOMMENDATIONS_PREFIX}latest.json"
_KEY_TIME = "%Y%m%dT%H%M%SZ"
MIN_UTILISATION = 0.0
MAX_MEASURED_UTILISATION = 105.0
"""Container Insights' node CPU and memory utilisation is a percent of the nodes' capacity, but a
saturated node group can be measured a little over it: such an hour counts as measured (leaving
it out would leave out the busiest hours, which decide max_size). The analyzer writes no hour
outside MIN_UTILISATION-MAX_MEASURED_UTILISATION, and the optimizer reads no analysis with one."""


def cluster_prefix(account_id: str, region: str, cluster: str) -> str:
    """`analyses/<account>/<region>/<cluster>/`: every analysis of one cluster."""
    return f"{ANALYSES_PREFIX}{account_id}/{region}/{cluster}/"


def analysis_key(account_id: str, region: str, cluster: str, analysed_at: datetime) -> str:
    """The key of the analysis of `cluster` made at `analysed_at` (UTC)."""
    return f"{cluster_prefix(account_id, region, cluster)}{analysed_at.strftime(_KEY_TIME)}.json"


def analyses_start_after(account_id: str, region: str, cluster: str, since: datetime) -> str:
    """The ListObjectsV2 `StartAfter` from which the analyses of `cluster` made at `since` or
    later are listed: the key up to `since`'s second, without its `Z.json`, sorts before the
    key of an analysis made in that second and after every earlier one (fixed-width UTC times
    sort in time order). An analysis made in `since`'s second but before `since` is still
    listed: a reader compares `analysis_time_of` with `since` itself."""
    second = since.astimezone(UTC).strftime(_KEY_TIME).removesuffix("Z")
    return f"{cluster_prefix(account_id, region, cluster)}{second}"


def analysis_time_of(key: str) -> datetime | None:
    """The analysis time a key encodes (aware, UTC), or None for a key of another shape."""
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    try:
        return datetime.strptime(f"{name}+0000", f"{_KEY_TIME}%z")
    except ValueError:
        return None


def recommendations_key(generated_at: datetime) -> str:
    """`recommendations/<yyyymmddThhmmssZ>.json`."""
    return f"{RECOMMENDATIONS_PREFIX}{generated_at.strftime(_KEY_TIME)}.json"


class _Document(BaseModel):
    # JSON has no NaN or Infinity, but Python's json module and pydantic read them: a document
    # holding one (not written by the analyzer, which has none) is refused, not sized on.
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid", allow_inf_nan=False)


# Analysis (performance_analyzer -> scaling_optimizer) ----------------------------------------


class MetricTrend(_Document):
    """One measured figure of the window and the same window a week earlier."""

    name: str
    unit: str
    value: float | None
    week_earlier: float | None
    change_percent: float | None
    """(value - week_earlier) / week_earlier x 100; None when either is missing or zero, or the
    change is beyond the largest float."""


class LoadBalancerLatency(_Document):
    """TargetResponseTime percentiles of one load balancer of the cluster over the window."""

    name: str
    p50_seconds: float | None
    p90_seconds: float | None
    p99_seconds: float | None


class Bottleneck(_Document):
    """A bottleneck rule that fired, with the figure that made it fire."""

    rule: str
    title: str
    metric: str
    unit: str
    value: float
    threshold: float
    evidence: str


class HourlyUtilisation(_Document):
    """One hour of the cluster's node utilisation (Container Insights, per cluster)."""

    hour: AwareDatetime
    """With its offset, as the analyzer writes it: an hour without one is no instant, and the
    optimizer compares hours with its own (aware) window."""
    cpu_percent: float | None
    memory_percent: float | None
    node_count: float | None


class PerformanceAnalysis(_Document):
    """What performance_analyzer writes for one cluster and run."""

    schema_version: Literal[1]
    account_id: str
    region: str
    cluster: str
    analysed_at: datetime
    window_start: datetime
    window_end: datetime
    scope: Literal["cluster"]
    """Container Insights' standard metrics have no node-group dimension: per-cluster figures."""
    metrics: list[MetricTrend]
    load_balancers: list[LoadBalancerLatency]
    bottlenecks: list[Bottleneck]
    regressions: list[str]
    """The rules that fire now and fired less (or not at all) a week earlier."""
    hourly: list[HourlyUtilisation]


# Recommendations (scaling_optimizer -> fleetctl recommendations) -----------------------------


PathSegment = str | int
# The stack file's lists whose entries a path names by their `name` (unique in each list), so
# that a change finds its entry after the file's lists were reordered or extended.
NAMED_LISTS = frozenset({"lambda-fleet:members", "clusters", "node_groups"})


class StackFileChange(_Document):
    """One value of `Pulumi.<stack>.yaml` to set, where, and why.

    `path` starts below `config`, e.g. `["lambda-fleet:members", "dev-workloads", "clusters",
    "dev-apps", "node_groups", "batch-spot", "max_size"]`: an entry of a `NAMED_LISTS` list by
    its name (an int, the entry's index, in documents written before names); `current` is the
    value the optimizer read, None when the key is not in the file yet.
    """

    path: list[PathSegment] = Field(min_length=2)
    current: int | None
    recommended: int
    evidence: str = Field(min_length=1)

    def dotted(self) -> str:
        """The path as `lambda-fleet:members[dev-workloads].clusters[dev-apps]...` for people to
        read."""
        text = str(self.path[0])
        for previous, segment in pairwise(self.path):
            in_list = isinstance(segment, int) or previous in NAMED_LISTS
            text += f"[{segment}]" if in_list else f".{segment}"
        return text


class ScalerSettingAdvice(_Document):
    """A scaler threshold or cooldown that would have kept utilisation on target with the fewest
    changes; these are the scaler's environment settings, which the stack file does not hold."""

    variable: str
    current: float
    recommended: float
    evidence: str


class Recommendations(_Document):
    """What scaling_optimizer writes: reviewable changes to the stack file, never applied."""

    schema_version: Literal[1]
    stack: str
    generated_at: datetime
    history_days: int = Field(ge=1)
    analyses_read: int = Field(ge=0)
    changes: list[StackFileChange]
    scaler_settings: list[ScalerSettingAdvice]
    notes: list[str] = Field(default_factory=list)
