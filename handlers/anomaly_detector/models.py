"""The events the anomaly detector accepts, as validated models.

- `{"action": "scan"}` (the schedule, every 15 minutes): every configured metric in every member
  account and region of the inventory, and the daily cost.
- the EventBridge "CloudWatch Alarm State Change" event: is the alarm's metric anomalous around
  the alarm time? Recognised by its `detail-type`, parsed with the fleet's `EventBridgeEvent`.
- `{"action": "detect", "series": [...], "timestamps": [...]}`: detection on the given series
  only, with no alert and no state (for people and other tools).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.field_types import AccountId, AwsRegion
from fleet_shared.numeric.robust_anomalies import MAX_ABS_VALUE
from fleet_shared.utc_times import UtcTime
from fleet_shared.validation_errors import shown_value
from handlers.anomaly_detector.followed import MAX_POINTS
from handlers.anomaly_detector.units import CloudWatchUnit

ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
ALARM_NAME_MAX_LENGTH = 255
"""CloudWatch's limit for an alarm name (PutMetricAlarm), which has no control characters."""
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
EARLIEST_TIMESTAMP = datetime(1677, 9, 22, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2262, 4, 11, tzinfo=UTC)
"""The days the detector's time index holds whole (pandas' nanosecond timestamps end a little
before 1677-09-22 and after 2262-04-11): a timestamp beyond them failed the invocation."""


class ActionEvent(BaseModel):
    """Only the action; the rest is validated by the action's model."""

    model_config = ConfigDict(defer_build=True)

    action: Literal["scan", "detect"]


class ScanRequest(BaseModel):
    """`{"action": "scan"}`."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["scan"]


class DetectRequest(BaseModel):
    """`{"action": "detect", "series": [numbers or null], "timestamps": [ISO 8601, distinct]}`.

    Values are limited to +-2**360, CloudWatch's own limit for a metric value, so every number of
    the result is finite.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["detect"]
    # The detector's time grows with the square of a sub-daily series' length (its local level
    # is a median of a day of values around each): 20,000 one-second values took 4.7 s of CPU,
    # 40,000 took 17.8 s, and 100,000 would run the function past its 300 s; a scan or an alarm
    # reads at most MAX_POINTS.
    series: list[float | None] = Field(min_length=1, max_length=MAX_POINTS)
    timestamps: list[datetime] = Field(min_length=1, max_length=MAX_POINTS)
    point_threshold: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    shift_threshold: float = Field(default=4.0, gt=0, allow_inf_nan=False)

    @field_validator("series")
    @classmethod
    def _finite(cls, values: list[float | None]) -> list[float | None]:
        for position, value in enumerate(values):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"value {position} is not a finite number")
            if value is not None and abs(value) > MAX_ABS_VALUE:
                raise ValueError(f"value {position} is beyond +-2**360 (CloudWatch's limit)")
        return values

    @field_validator("timestamps")
    @classmethod
    def _aware(cls, values: list[datetime]) -> list[datetime]:
        first_at: dict[datetime, int] = {}
        for position, value in enumerate(values):
            if value.tzinfo is None:
                raise ValueError(f"timestamp {position} has no time zone (add Z or +00:00)")
            if not EARLIEST_TIMESTAMP <= value <= LATEST_TIMESTAMP:
                raise ValueError(
                    f"timestamp {position} is not between {EARLIEST_TIMESTAMP:%Y-%m-%d} and "
                    f"{LATEST_TIMESTAMP:%Y-%m-%d}"
                )
            # One instant, one value: the detector kept the last value of a repeated instant
            # and dropped the others unsaid, in whatever offsets they were written.
            earlier = first_at.setdefault(value, position)
            if earlier != position:
                raise ValueError(f"timestamp {position} is the same instant as timestamp {earlier}")
        return values

    @model_validator(mode="after")
    def _same_length(self) -> DetectRequest:
        if len(self.series) != len(self.timestamps):
            raise ValueError(
                f"series has {len(self.series)} values but timestamps has {len(self.timestamps)}"
            )
        return self


_NUMBER = r"-?\d+(?:\.\d+)?"
_BOUND = rf"(?:{_NUMBER}%?)?"
STATISTIC = re.compile(
    rf"(?:SampleCount|Sum|Average|Minimum|Maximum|IQM|p{_NUMBER}|(?:tm|wm|tc|ts){_NUMBER}"
    rf"|(?:tm|wm|tc|ts|pr)\(\s*{_BOUND}\s*:\s*{_BOUND}\s*\))",
    re.IGNORECASE,
)
"""CloudWatch's statistics (`Average`, `p99`, `tm90`, `TM(10%:90%)`, `PR(:300)`, ...), matched
loosely (any case, any bounds): a statistic it does not know fails the whole GetMetricData
request, so every metric of every account and region, not only this one."""


def _cloudwatch_statistic(value: str) -> str:
    if not STATISTIC.fullmatch(value):
        raise ValueError(
            f"{shown_value(value)} is no CloudWatch statistic (Average, Sum, Minimum, "
            "Maximum, SampleCount, p99, tm90, TM(10%:90%), ...)"
        )
    return value


CloudWatchStatistic = Annotated[str, AfterValidator(_cloudwatch_statistic)]
CloudWatchName = Annotated[str, Field(min_length=1, max_length=255)]
"""A namespace, metric name or dimension name within CloudWatch's limit (PutMetricData)."""
DimensionValue = Annotated[str, Field(min_length=1, max_length=1024)]
MAX_DIMENSIONS = 30
"""CloudWatch's limits for a metric's dimensions: at most 30, each value at most 1,024
characters."""


class AlarmMetric(BaseModel):
    """`detail.configuration.metrics[].metricStat.metric` of an alarm event, held to CloudWatch's
    limits for a metric: its names reach the series' name (records, index, alert title), and one
    of hundreds of kilobytes (an event invoked by hand) made alerts SNS refuses and index parts
    past DynamoDB's item size, which other series share."""

    model_config = ConfigDict(defer_build=True)

    namespace: CloudWatchName
    name: CloudWatchName
    dimensions: dict[CloudWatchName, DimensionValue] = Field(
        default_factory=dict, max_length=MAX_DIMENSIONS
    )


ALARM_PERIOD_MAX_SECONDS = 7 * 24 * 3600
"""The longest period of an alarm's metric CloudWatch accepts (PutMetricAlarm: period times
evaluation periods at most 604,800 seconds)."""


class AlarmMetricStat(BaseModel):
    """A metric query's metric, period, statistic and unit."""

    model_config = ConfigDict(defer_build=True)

    metric: AlarmMetric
    # CloudWatch keeps an alarm's evaluation (period x evaluation periods) within 7 days; a longer
    # period cannot come from it, and would overflow the window arithmetic.
    period: int = Field(ge=1, le=ALARM_PERIOD_MAX_SECONDS)
    stat: CloudWatchStatistic
    unit: CloudWatchUnit | None = None
    """The alarm's unit, when it has one (GetMetricData answers none): its series' noise
    floor."""


class AlarmMetricQuery(BaseModel):
    """One query of the alarm; metric-math queries have no `metricStat`."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    id: str
    metric_stat: AlarmMetricStat | None = Field(default=None, alias="metricStat")
    return_data: bool = Field(default=True, alias="returnData")


ALARM_MAX_QUERIES = 20
ALARM_MAX_METRIC_STATS = 10
"""CloudWatch's limits for an alarm's queries (PutMetricAlarm: at most 20, of which at most 10
read a metric): each `metricStat` is one read, so an event with thousands of them (invoked by
hand) read until Lambda ended the invocation."""


class AlarmConfiguration(BaseModel):
    """The alarm's metric queries."""

    model_config = ConfigDict(defer_build=True)

    metrics: list[AlarmMetricQuery] = Field(default_factory=list, max_length=ALARM_MAX_QUERIES)

    @field_validator("metrics")
    @classmethod
    def _metric_stats_an_alarm_can_have(
        cls, metrics: list[AlarmMetricQuery]
    ) -> list[AlarmMetricQuery]:
        reads = sum(1 for item in metrics if item.metric_stat is not None)
        if reads > ALARM_MAX_METRIC_STATS:
            raise ValueError(
                f"{reads} queries with a metricStat, more than the {ALARM_MAX_METRIC_STATS} "
                "CloudWatch lets an alarm have"
            )
        return metrics


MAX_LOOKBACK_DAYS = 455
"""The most days of history read per series (ANOMALY_LOOKBACK_DAYS; CloudWatch keeps 15 months)."""


def _window_within_the_calendar(moment: datetime) -> datetime:
    """An alarm time whose metrics can be read: from MAX_LOOKBACK_DAYS and a period before it to
    a period after it, all inside the calendar (a time near year 1 or 9999 overflowed that
    arithmetic and failed the invocation)."""
    margin = timedelta(days=MAX_LOOKBACK_DAYS, seconds=2 * ALARM_PERIOD_MAX_SECONDS)
    if (
        not datetime.min.replace(tzinfo=UTC) + margin
        <= moment
        <= datetime.max.replace(tzinfo=UTC) - timedelta(seconds=2 * ALARM_PERIOD_MAX_SECONDS)
    ):
        raise ValueError(
            f"{shown_value(moment.isoformat())} leaves no room in the calendar for the "
            f"{MAX_LOOKBACK_DAYS} days of metrics read before it"
        )
    return moment


class AlarmState(BaseModel):
    """The state the alarm went to, and when (read in UTC)."""

    model_config = ConfigDict(defer_build=True)

    value: str
    timestamp: Annotated[UtcTime, AfterValidator(_window_within_the_calendar)]


class AlarmDetail(BaseModel):
    """`detail` of a "CloudWatch Alarm State Change" event (the fields used here)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    alarm_name: str = Field(alias="alarmName")
    """Goes into the alert's title: held to CloudWatch's own rule for alarm names."""

    @field_validator("alarm_name")
    @classmethod
    def _cloudwatch_alarm_name(cls, value: str) -> str:
        if not 1 <= len(value) <= ALARM_NAME_MAX_LENGTH or _CONTROL_CHARACTER.search(value):
            raise ValueError(
                f"must be a CloudWatch alarm name (1-{ALARM_NAME_MAX_LENGTH} characters, no "
                f"control characters), got {shown_value(value)}"
            )
        return value

    state: AlarmState
    configuration: AlarmConfiguration


class AlarmEvent(EventBridgeEvent):
    """The EventBridge "CloudWatch Alarm State Change" event with its typed `detail`."""

    model_config = ConfigDict(defer_build=True)

    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    account: AccountId
    region: AwsRegion
    detail: AlarmDetail  # type: ignore[assignment]  # typed, where the base takes any dict


AnomalyRequest = ScanRequest | DetectRequest | AlarmEvent


def is_alarm_event(event: object) -> bool:
    """Whether `event` looks like an alarm state change (then it is validated as one)."""
    return isinstance(event, dict) and event.get("detail-type") == ALARM_DETAIL_TYPE


def is_other_eventbridge_event(event: object) -> bool:
    """Whether `event` is shaped like an EventBridge event (a `detail-type` or `source`, no
    `action`) but is not an alarm state change: refused naming its `detail-type`."""
    return (
        isinstance(event, dict)
        and ("detail-type" in event or "source" in event)
        and "action" not in event
        and not is_alarm_event(event)
    )
