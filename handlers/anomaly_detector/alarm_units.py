"""The units of an alarm's metrics that its state change event leaves out, read from the alarm.

A series' noise floor follows its CloudWatch unit (`units.py`), and GetMetricData answers none:
an alarm event's metric without `metricStat.unit` took 0.001 of its own unit, so a departure of
5 bytes from a flat series was an anomaly. The alarm itself holds the unit (`Unit` of an alarm
on one metric, `Metrics[].MetricStat.Unit` of one with metric queries), one DescribeAlarms away
in the alarm's account and region. So the first metric read without a unit has the alarm read,
once an invocation, through the client of the metric reads (its bound, 25 s, and its record of
unanswered endpoints): after a read that was answered, so an endpoint that does not answer costs
the alarm no more than it did, and an alarm whose metrics all carry their unit reads nothing
more. A metric takes the unit the alarm gives that metric (namespace, name and dimensions; a
unit belongs to the metric's values, whatever the statistic), so an alarm changed since the
event lends no unit to a metric it no longer reads. A read that fails, an alarm gone or changed,
one without a unit either, or one naming several for the metric leaves it without one (the
floor of 0.001, as before), and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from fleet_shared.aws_answers import AWS_CALL_ERRORS, answer_field, call_error_text
from fleet_shared.metric_data import MetricQuery
from fleet_shared.sessions import AccountSessions
from fleet_shared.validation_errors import shown_value
from handlers.anomaly_detector.models import AlarmEvent
from handlers.anomaly_detector.target_calls import member_cloudwatch
from handlers.anomaly_detector.units import CloudWatchUnit

CLOUDWATCH_UNITS = frozenset(get_args(CloudWatchUnit))


class AlarmUnits:
    """The units an alarm event's metrics are in: the event's, else the alarm's own, read on the
    first need; and, by metric label, why each metric that has none has none."""

    def __init__(self, sessions: AccountSessions, event: AlarmEvent) -> None:
        self._sessions = sessions
        self._event = event
        self._alarm: Mapping[str, Any] | None = None
        self._unread_why: str | None = None
        self._read = False
        self.missing: dict[str, str] = {}
        """Why each metric (by label) asked for has no unit."""

    def unit_of(self, query: MetricQuery, label: str) -> str | None:
        """`query`'s unit, or the one the alarm gives its metric (the alarm read on the first
        query without one); None, noted in `missing`, when neither has one."""
        if query.unit is not None:
            return query.unit
        if not self._read:
            self._read_alarm()
        unit, why = self._alarm_unit(query)
        if why is not None:
            self.missing[label] = why
        return unit

    def known_unit_of(self, query: MetricQuery) -> str | None:
        """`query`'s unit, or the one the alarm gives its metric if the alarm was read: never
        reads it (for a metric not read, whose unit is not needed)."""
        if query.unit is not None or not self._read:
            return query.unit
        return self._alarm_unit(query)[0]

    def _read_alarm(self) -> None:
        self._read = True
        cloudwatch = member_cloudwatch(self._sessions, self._event.account, self._event.region)
        name = self._event.detail.alarm_name
        try:
            answer = cloudwatch.describe_alarms(AlarmNames=[name])
            alarms = answer_field(answer, "DescribeAlarms", "MetricAlarms")
        except AWS_CALL_ERRORS as error:
            self._unread_why = f"the alarm could not be read: {call_error_text(error)}"
            return
        named = (item for item in alarms if isinstance(item, Mapping))
        self._alarm = next((item for item in named if item.get("AlarmName") == name), None)
        if self._alarm is None:
            self._unread_why = "DescribeAlarms found no such alarm"

    def _alarm_unit(self, query: MetricQuery) -> tuple[str | None, str | None]:
        """The unit the alarm gives `query`'s metric, or None and why not."""
        if self._alarm is None:
            return None, self._unread_why
        stats = self._alarm.get("Metrics")
        holders = (
            [item.get("MetricStat") for item in stats if isinstance(item, Mapping)]
            if isinstance(stats, list) and stats
            else [self._alarm]
        )
        units = {
            holder.get("Unit")
            for holder in holders
            if isinstance(holder, Mapping) and _reads(holder, query)
        }
        if not units:
            return None, "the alarm no longer reads this metric"
        if len(units) > 1:
            return (
                None,
                f"the alarm names several units for it: {shown_value(sorted(map(str, units)))}",
            )
        [unit] = units
        if unit is None:
            return None, "the alarm names no unit for it either"
        if unit not in CLOUDWATCH_UNITS:
            return None, f"the alarm's unit {shown_value(unit)} is not a CloudWatch unit"
        return str(unit), None


def _reads(holder: Mapping[str, Any], query: MetricQuery) -> bool:
    """Whether `holder` (an alarm on one metric, or the `MetricStat` of an alarm's query) reads
    `query`'s metric: its namespace, name and dimensions."""
    metric = holder.get("Metric", holder)
    if not isinstance(metric, Mapping):
        return False
    dimensions = metric.get("Dimensions") or []
    named = {
        item.get("Name"): item.get("Value") for item in dimensions if isinstance(item, Mapping)
    }
    return (
        metric.get("Namespace") == query.namespace
        and metric.get("MetricName") == query.metric_name
        and named == dict(query.dimensions)
    )
