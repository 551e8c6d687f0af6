"""The series an alarm alerted an episode of, followed by the scans until that episode is over.

An alarm may fire on a metric no scan reads (outside ANOMALY_METRICS, or of a cluster the
inventory does not have): the episode it alerted is recorded like a scan's, but only a scan that
reads its series can find it over and resolve it, so its incident was never resolved, only
forgotten with its record. The alarm therefore keeps, in the index of open series
(`episodes.follow_series`), the metric query that reads the series; each scan reads those series
too (`scan.read_followed_series`), from ANOMALY_LOOKBACK_DAYS back (at most `MAX_POINTS` values)
and with the same recent window as its own, and resolves their episodes as its own. A scan only
follows such a series: a finding on it that continues no open episode is not alerted (the metric
is not one the scans watch), and the series leaves the index with its last open episode. The
series of an account the inventory no longer has are not read (its member role is gone with it):
a scan closes their episodes at once, saying the account left the fleet
(`scan.followed_of_left_members`). Those of an account the inventory has not listed yet (an alarm
its rule forwarded before, in the deployment that adds it) are not read either, nor closed: they
wait for it to be listed (`fleet_shared.listed_members`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_POINTS = 20_000
"""The most values read back per followed series, as per alarm (at a 1-minute period, about 14
days)."""


@dataclass(frozen=True)
class FollowedSeries:
    """How to read one series an alarm alerted an episode of: where, which metric statistic, the
    time zone of its seasonal profile (its cluster's, as the alarm profiled it) and its unit."""

    account_id: str
    region: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str
    period: int
    time_zone: str | None
    unit: str | None = None
    """The metric's unit as the alarm named it, by which its noise floor is chosen (None in an
    entry recorded before entries held it, or for an alarm without one)."""

    def to_value(self, recorded_at: str) -> dict[str, Any]:
        """The index's entry: the query and when an alarm last recorded it (`recorded_at`), so a
        scan that read the entry before an alarm renewed it does not drop the renewed one."""
        return {
            "account_id": self.account_id,
            "region": self.region,
            "namespace": self.namespace,
            "metric": self.metric,
            "dimensions": dict(self.dimensions),
            "stat": self.stat,
            "period": self.period,
            "time_zone": self.time_zone,
            "unit": self.unit,
            "recorded_at": recorded_at,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> FollowedSeries:
        """The series of an index entry (`to_value`)."""
        return cls(
            account_id=str(value["account_id"]),
            region=str(value["region"]),
            namespace=str(value["namespace"]),
            metric=str(value["metric"]),
            dimensions={str(name): str(item) for name, item in value["dimensions"].items()},
            stat=str(value["stat"]),
            period=int(value["period"]),
            time_zone=None if value["time_zone"] is None else str(value["time_zone"]),
            unit=None if value.get("unit") is None else str(value["unit"]),
        )
